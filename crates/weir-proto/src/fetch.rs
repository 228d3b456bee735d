//! The Fetch response (v4–v11), decoded here rather than by `kafka-protocol`: it is the largest and most frequent
//! response a consumer reads, its record data must stay zero-copy, and every count in it comes from the wire, so
//! each array length is checked against the bytes that remain before anything is reserved for it.
//!
//! Layout (non-flexible versions; response header v0 already removed):
//!
//! ```text
//! throttle_time_ms i32 | error_code i16 (v7+) | session_id i32 (v7+) |
//! [topic string | [partition i32 | error_code i16 | high_watermark i64 | last_stable_offset i64 |
//!   log_start_offset i64 (v5+) | [producer_id i64 | first_offset i64] (nullable) |
//!   preferred_read_replica i32 (v11+) | records nullable bytes]]
//! ```

use bytes::Bytes;

use crate::wire::{prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_fetch_response`] reads.
pub const FETCH_VERSIONS: std::ops::RangeInclusive<i16> = 4..=11;

/// A decoded Fetch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchResponse {
    /// Throttle time the broker asks for.
    pub throttle_time_ms: i32,
    /// Top-level error (fetch sessions), 0 if none.
    pub error_code: i16,
    /// Fetch session id, 0 if none.
    pub session_id: i32,
    /// Topics in the response.
    pub topics: Vec<FetchTopic>,
}

/// Nothing: the consumer's fetcher reads the top-level and per-partition codes of every Fetch response and
/// counts them there.
impl crate::call::ErrorCodes for FetchResponse {
    fn error_codes(&self, _: &mut dyn FnMut(i16)) {}
}

/// One topic of a Fetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchTopic {
    /// Topic name.
    pub name: String,
    /// Its partitions.
    pub partitions: Vec<FetchPartition>,
}

/// One partition of a Fetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPartition {
    /// Partition index.
    pub partition: i32,
    /// Error code, 0 if none.
    pub error_code: i16,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset.
    pub last_stable_offset: i64,
    /// Log start offset (v5+; -1 before).
    pub log_start_offset: i64,
    /// Aborted transactions: (producer id, first offset).
    pub aborted_transactions: Vec<(i64, i64)>,
    /// Preferred read replica (v11+; -1 before).
    pub preferred_read_replica: i32,
    /// The record batches, a zero-copy slice of the response.
    pub records: Option<Bytes>,
}

/// Decodes a Fetch response body (after the response header) of `version` (4..=11).
pub fn decode_fetch_response(body: Bytes, version: i16) -> Result<FetchResponse, ProtoError> {
    let mut r = WireReader::new(body, "Fetch", version);
    if !FETCH_VERSIONS.contains(&version) {
        return Err(ProtoError::Decode {
            api: "Fetch",
            version,
            reason: "unsupported version".into(),
        });
    }
    let throttle_time_ms = r.i32("throttle time")?;
    let (error_code, session_id) = if version >= 7 {
        (r.i16("error code")?, r.i32("session id")?)
    } else {
        (0, 0)
    };
    // Smallest topic: 2-byte name length + 4-byte partition count. Smallest partition: 4+2+8+8 (+8 v5+)
    // + 4 (aborted count) (+4 v11) + 4 (records length).
    let min_partition = 30 + if version >= 5 { 8 } else { 0 } + if version >= 11 { 4 } else { 0 };
    let topic_count = r.count(false, 6, "topic count")?.unwrap_or(0);
    let mut topics = Vec::with_capacity(prealloc(topic_count));
    for _ in 0..topic_count {
        let name = r.required_string(false, "topic name")?;
        let partition_count = r.count(false, min_partition, "partition count")?.unwrap_or(0);
        let mut partitions = Vec::with_capacity(prealloc(partition_count));
        for _ in 0..partition_count {
            let partition = r.i32("partition")?;
            let error_code = r.i16("partition error code")?;
            let high_watermark = r.i64("high watermark")?;
            let last_stable_offset = r.i64("last stable offset")?;
            let log_start_offset = if version >= 5 {
                r.i64("log start offset")?
            } else {
                -1
            };
            let aborted_count = r.count(false, 16, "aborted transaction count")?.unwrap_or(0);
            let mut aborted_transactions = Vec::with_capacity(prealloc(aborted_count));
            for _ in 0..aborted_count {
                aborted_transactions.push((r.i64("producer id")?, r.i64("first offset")?));
            }
            let preferred_read_replica = if version >= 11 {
                r.i32("preferred read replica")?
            } else {
                -1
            };
            let records = match r.i32("records length")? {
                -1 => None,
                n => {
                    let n = usize::try_from(n).map_err(|_| r.err("records length"))?;
                    Some(r.bytes(n, "records")?)
                }
            };
            partitions.push(FetchPartition {
                partition,
                error_code,
                high_watermark,
                last_stable_offset,
                log_start_offset,
                aborted_transactions,
                preferred_read_replica,
                records,
            });
        }
        topics.push(FetchTopic { name, partitions });
    }
    Ok(FetchResponse {
        throttle_time_ms,
        error_code,
        session_id,
        topics,
    })
}

/// One partition of a Fetch request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchPartitionRequest {
    /// The partition.
    pub partition: i32,
    /// The offset to fetch from.
    pub fetch_offset: i64,
    /// At most this many bytes for this partition (a first batch larger than it still comes whole).
    pub max_bytes: i32,
    /// The leader epoch the consumer knows (v9+; -1: unknown). A broker whose epoch differs answers
    /// FENCED_LEADER_EPOCH (ours is older) or UNKNOWN_LEADER_EPOCH (ours is newer) instead of serving stale or
    /// diverging data.
    pub current_leader_epoch: i32,
}

/// A Fetch request (as a consumer: replica id -1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchRequest {
    /// How long the broker may wait for `min_bytes`.
    pub max_wait_ms: i32,
    /// The broker answers once it has this many bytes (or `max_wait_ms` passed).
    pub min_bytes: i32,
    /// At most this many bytes in the response (a first batch larger than it still comes whole).
    pub max_bytes: i32,
    /// 0: read uncommitted; 1: read committed.
    pub isolation_level: i8,
    /// The fetch session (v7+), 0 for none.
    pub session_id: i32,
    /// The session epoch (v7+): 0 opens a session, -1 asks for none, else the next epoch.
    pub session_epoch: i32,
    /// Partitions to fetch, per topic.
    pub topics: Vec<(String, Vec<FetchPartitionRequest>)>,
    /// Partitions to drop from the session (v7+), per topic.
    pub forgotten: Vec<(String, Vec<i32>)>,
    /// The consumer's rack (`client.rack`, v11+; empty for none): a broker with a rack-aware replica selector
    /// answers with a replica to read from instead (KIP-392).
    pub rack_id: String,
}

impl FetchRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::FetchRequest {
        use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
        kafka_protocol::messages::FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(self.max_wait_ms)
            .with_min_bytes(self.min_bytes)
            .with_max_bytes(self.max_bytes)
            .with_isolation_level(self.isolation_level)
            .with_session_id(self.session_id)
            .with_session_epoch(self.session_epoch)
            .with_rack_id(kafka_protocol::protocol::StrBytes::from_string(
                self.rack_id.clone(),
            ))
            .with_topics(
                self.topics
                    .iter()
                    .map(|(t, parts)| {
                        FetchTopic::default()
                            .with_topic(crate::call::wire_topic(t))
                            .with_partitions(
                                parts
                                    .iter()
                                    .map(|p| {
                                        FetchPartition::default()
                                            .with_partition(p.partition)
                                            .with_current_leader_epoch(p.current_leader_epoch)
                                            .with_fetch_offset(p.fetch_offset)
                                            .with_last_fetched_epoch(-1)
                                            .with_log_start_offset(-1)
                                            .with_partition_max_bytes(p.max_bytes)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
            .with_forgotten_topics_data(
                self.forgotten
                    .iter()
                    .map(|(t, parts)| {
                        ForgottenTopic::default()
                            .with_topic(crate::call::wire_topic(t))
                            .with_partitions(parts.clone())
                    })
                    .collect(),
            )
    }
}
