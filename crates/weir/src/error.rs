//! weir's error type: one enum that says what the caller can do next.

use std::sync::Arc;
use std::time::Duration;

use weir_proto::record::RecordError;
pub use weir_proto::KafkaCode;
use weir_proto::ProtoError;

use crate::consumer::NotAssigned;

/// What a caller can do about an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Transient: trying the same thing again later may succeed (weir already retried where it could).
    Retriable,
    /// The operation cannot succeed as asked; retrying will not help.
    Fatal,
    /// The caller asked for something invalid (bad configuration, unknown partition, use after close).
    Caller,
}

/// Every error weir returns. Cloning is cheap (sources are shared), so one failure can be handed to every
/// operation it ended (each pending request of a lost connection, each record of a failed batch) with its kind,
/// code and source intact.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A connection to a broker failed or was lost.
    #[error("connection to {broker} failed: {source}")]
    Io {
        /// Address of the broker.
        broker: String,
        /// The underlying I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A request got no answer in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// How long weir waited.
        after: Duration,
    },
    /// The broker sent bytes weir cannot understand; the connection was dropped.
    #[error("protocol error from {broker}: {source}")]
    Protocol {
        /// Address of the broker.
        broker: String,
        /// What failed to decode.
        #[source]
        source: ProtoError,
    },
    /// The broker answered with a Kafka error code.
    #[error("{context}: broker error {code} ({})", code.code())]
    Kafka {
        /// The error code, by name.
        code: KafkaCode,
        /// What was being done (topic, partition, request).
        context: String,
    },
    /// weir could not encode a request or a record batch (a batch too large, a codec failure); nothing was sent.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// The encoder's finding.
        #[source]
        source: ProtoError,
    },
    /// Fetched data of a partition is corrupt (bad CRC, unknown codec, malformed record). A batch failing its CRC
    /// is reported only once three fetches in a row found it damaged (damage in transit is survived by fetching
    /// it again); the partition then stops at `offset` until a seek.
    #[error("corrupt data in {topic}-{partition} near offset {offset}: {source}")]
    CorruptRecords {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset where decoding failed.
        offset: i64,
        /// The decoder's finding.
        #[source]
        source: RecordError,
    },
    /// The partition's log was truncated below the consumer's fetch position (an unclean leader election: the
    /// new leader never had the records fetched from `divergent_offset` on), and `auto.offset.reset` is `none`.
    /// The partition stops until a seek; seeking to `divergent_offset` reads the new leader's log from where it
    /// parts from the one read. With a reset policy the consumer repositions itself instead and reports the
    /// truncation in its statistics and log (KIP-320; the Java client's `LogTruncationException`).
    #[error("log of {topic}-{partition} truncated below the fetch position {offset}{}", match divergent_offset {
        Some(d) => format!(" (it diverges from offset {d})"),
        None => " (where it diverges is unknown)".to_string(),
    })]
    LogTruncation {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The fetch position when the truncation was found.
        offset: i64,
        /// The first offset where the new leader's log may differ from the one fetched, when the leader knows.
        divergent_offset: Option<i64>,
    },
    /// The broker does not support an API weir needs, at any version weir speaks.
    #[error("broker {broker} does not support {api} at a version weir speaks")]
    UnsupportedApi {
        /// Address of the broker.
        broker: String,
        /// The API.
        api: &'static str,
    },
    /// The TLS handshake with a broker failed: its certificate is not trusted or does not name the host, the
    /// listener does not speak TLS (or speaks only TLS), or a key or certificate could not be used.
    #[error("TLS with {broker} failed: {reason}")]
    Tls {
        /// Address of the broker.
        broker: String,
        /// What went wrong, and what to check.
        reason: String,
    },
    /// The broker refused this client's credentials (SASL), or the mechanism is not enabled on the listener.
    /// Retrying with the same credentials will not help.
    #[error("authentication with {broker} failed: {reason}")]
    Authentication {
        /// Address of the broker.
        broker: String,
        /// The broker's explanation, or what was refused.
        reason: String,
    },
    /// Invalid configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An argument the operation cannot take (e.g. seeking a partition that is not assigned).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A topic is not known to the cluster (after refreshing metadata).
    #[error("unknown topic or partition: {0}")]
    UnknownTopic(String),
    /// A record is larger than the producer may send.
    #[error("record of {size} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// Encoded size of the record.
        size: usize,
        /// Configured maximum.
        max: usize,
    },
    /// A commit was refused before it was sent: this member does not own the partitions (the group rebalanced
    /// them away, or is rebalancing). Do not retry these offsets: the partitions' new owner resumes from the
    /// last commit. (The Java client's `CommitFailedException`.)
    #[error("commit refused: {0}")]
    CommitFailed(String),
    /// The client was closed; the operation did not run.
    #[error("the client is closed")]
    Closed,
    /// The record was not written: its transaction was aborted before it was sent.
    #[error("the transaction was aborted before the record was sent")]
    TransactionAborted,
    /// A pause or resume named partitions that are not assigned (it did its work on the others).
    #[error(transparent)]
    NotAssigned(#[from] NotAssigned),
}

impl Error {
    /// Whether retrying later may succeed.
    pub fn is_retriable(&self) -> bool {
        self.kind() == ErrorKind::Retriable
    }

    /// What the caller can do about it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } | Error::Timeout { .. } => ErrorKind::Retriable,
            Error::Kafka { code, .. } if code.is_retriable() => ErrorKind::Retriable,
            Error::Kafka { .. }
            | Error::Protocol { .. }
            | Error::Encode { .. }
            | Error::CorruptRecords { .. }
            | Error::LogTruncation { .. }
            | Error::CommitFailed(_) => ErrorKind::Fatal,
            Error::UnsupportedApi { .. } | Error::Tls { .. } | Error::Authentication { .. } => {
                ErrorKind::Fatal
            }
            Error::Config(_)
            | Error::InvalidArgument(_)
            | Error::UnknownTopic(_)
            | Error::RecordTooLarge { .. }
            | Error::NotAssigned(_)
            | Error::TransactionAborted
            | Error::Closed => ErrorKind::Caller,
        }
    }

    /// The Kafka error code, when the broker sent one.
    pub fn kafka_code(&self) -> Option<KafkaCode> {
        match self {
            Error::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Builds an [`Error::Io`].
    pub(crate) fn io(broker: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            broker: broker.into(),
            source: Arc::new(source),
        }
    }

    /// Builds an [`Error::Kafka`] from a non-zero error code.
    pub(crate) fn kafka(code: i16, context: impl Into<String>) -> Error {
        Error::Kafka {
            code: KafkaCode::from_code(code).unwrap_or(KafkaCode::Unknown(code)),
            context: context.into(),
        }
    }
}

/// Turns a response error code into `Ok(())` or an [`Error::Kafka`].
pub(crate) fn check(code: i16, context: impl FnOnce() -> String) -> Result<(), Error> {
    KafkaCode::check(code).map_err(|code| Error::Kafka {
        code,
        context: context(),
    })
}

/// `Result` with weir's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_codes_map_by_name_and_retriability() {
        let e = Error::kafka(6, "produce t-0");
        assert_eq!(e.kafka_code(), Some(KafkaCode::NotLeaderOrFollower));
        assert!(e.is_retriable());
        assert!(e.to_string().contains("NotLeaderOrFollower"));
        let e = Error::kafka(29, "x");
        assert_eq!(e.kind(), ErrorKind::Fatal);
        assert!(!Error::Closed.is_retriable());
    }

    #[test]
    fn clones_keep_kind_code_and_source() {
        use std::error::Error as _;
        let io = Error::io(
            "b:9092",
            std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer"),
        );
        let copy = io.clone();
        assert!(copy.is_retriable());
        let source = copy
            .source()
            .unwrap()
            .downcast_ref::<Arc<std::io::Error>>()
            .unwrap();
        assert_eq!(source.kind(), std::io::ErrorKind::ConnectionReset);
        assert_eq!(copy.to_string(), io.to_string());
        let proto = Error::Protocol {
            broker: "b:9092".into(),
            source: ProtoError::NegativeFrameSize(-3),
        };
        assert!(matches!(
            proto.clone(),
            Error::Protocol {
                source: ProtoError::NegativeFrameSize(-3),
                ..
            }
        ));
        let kafka = Error::kafka(82, "Heartbeat g");
        assert_eq!(kafka.clone().kafka_code(), Some(KafkaCode::FencedInstanceId));
        assert_eq!(kafka.clone().kind(), ErrorKind::Fatal);
    }
}
