//! The Fetch response (v4–v17), decoded here rather than by `kafka-protocol`: it is the largest and most frequent
//! response a consumer reads, its record data must stay zero-copy, and every count in it comes from the wire, so
//! each array length is checked against the bytes that remain before anything is reserved for it.
//!
//! Layout (response header already removed):
//!
//! ```text
//! throttle_time_ms i32 | error_code i16 (v7+) | session_id i32 (v7+) |
//! [topic string (v4-v12) | topic_id uuid (v13+) |
//!  [partition i32 | error_code i16 | high_watermark i64 | last_stable_offset i64 |
//!   log_start_offset i64 (v5+) | [producer_id i64 | first_offset i64 | tags (v12+)] (nullable) |
//!   preferred_read_replica i32 (v11+) | records nullable bytes |
//!   tags (v12+: 0 DivergingEpoch, 1 CurrentLeader, 2 SnapshotId)] |
//!  tags (v12+)] |
//! tags (v12+; v16+: 0 NodeEndpoints)
//! ```
//!
//! From v12 (flexible) strings, arrays and the records' length are compact (unsigned varint length + 1). From
//! v13 topics are named by their 16-byte id only (KIP-516). From v16 a broker that no longer leads a partition
//! answers NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH with the leader it knows of (`CurrentLeader`) and that
//! leader's endpoint (`NodeEndpoints`), KIP-951. v17 changes only the request (a follower's directory id).
//! `DivergingEpoch` and `SnapshotId` concern followers and KRaft voters, not consumers: skipped.

use bytes::Bytes;

use crate::leader_hint::{
    read_current_leader, read_node_endpoints, CurrentLeader, NodeEndpoint, FETCH_CURRENT_LEADER_TAG,
    FETCH_NODE_ENDPOINTS_TAG,
};
use crate::wire::{prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_fetch_response`] reads.
pub const FETCH_VERSIONS: std::ops::RangeInclusive<i16> = 4..=17;

/// The first version whose requests and responses name topics by id instead of by name (KIP-516).
pub const FETCH_TOPIC_ID_VERSION: i16 = 13;

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
    /// Where the brokers named in partitions' `current_leader` hints listen (v16+, KIP-951).
    pub node_endpoints: Vec<NodeEndpoint>,
}

/// Nothing: the consumer's fetcher reads the top-level and per-partition codes of every Fetch response and
/// counts them there.
impl crate::call::ErrorCodes for FetchResponse {
    fn error_codes(&self, _: &mut dyn FnMut(i16)) {}
}

/// One topic of a Fetch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchTopic {
    /// Topic name (v4–v12; empty from v13, where the topic is named by `topic_id` only).
    pub name: String,
    /// The topic's id (v13+; all zero before).
    pub topic_id: [u8; 16],
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
    /// With NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH, the leader the broker knows of, if it names one at
    /// a known epoch (v12+ on the wire; filled by brokers from v16, KIP-951).
    pub current_leader: Option<CurrentLeader>,
}

/// Decodes a Fetch response body (after the response header) of `version` (4..=17).
pub fn decode_fetch_response(body: Bytes, version: i16) -> Result<FetchResponse, ProtoError> {
    let mut r = WireReader::new(body, "Fetch", version);
    if !FETCH_VERSIONS.contains(&version) {
        return Err(ProtoError::Decode {
            api: "Fetch",
            version,
            reason: "unsupported version".into(),
        });
    }
    let flex = version >= 12;
    let by_id = version >= FETCH_TOPIC_ID_VERSION;
    let throttle_time_ms = r.i32("throttle time")?;
    let (error_code, session_id) = if version >= 7 {
        (r.i16("error code")?, r.i32("session id")?)
    } else {
        (0, 0)
    };
    // Smallest topic: its name (2-byte length, 1 compact) or id (16), partition count (4, 1 compact), tags (1).
    let min_topic = match (flex, by_id) {
        (false, _) => 2 + 4,
        (true, false) => 1 + 1 + 1,
        (true, true) => 16 + 1 + 1,
    };
    // Smallest partition: 4+2+8+8 (+8 v5+) + aborted count (4, 1 compact) (+4 v11+) + records length (4, 1
    // compact) + tags (1 flexible).
    let min_partition = 22
        + if version >= 5 { 8 } else { 0 }
        + if version >= 11 { 4 } else { 0 }
        + if flex { 1 + 1 + 1 } else { 4 + 4 };
    let min_aborted = 16 + usize::from(flex);
    let topic_count = r.count(flex, min_topic, "topic count")?.unwrap_or(0);
    let mut topics = Vec::with_capacity(prealloc(topic_count));
    for _ in 0..topic_count {
        let mut topic = FetchTopic::default();
        if by_id {
            topic.topic_id.copy_from_slice(&r.bytes(16, "topic id")?);
        } else {
            topic.name = r.required_string(flex, "topic name")?;
        }
        let partition_count = r.count(flex, min_partition, "partition count")?.unwrap_or(0);
        topic.partitions.reserve(prealloc(partition_count));
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
            let aborted_count = r
                .count(flex, min_aborted, "aborted transaction count")?
                .unwrap_or(0);
            let mut aborted_transactions = Vec::with_capacity(prealloc(aborted_count));
            for _ in 0..aborted_count {
                aborted_transactions.push((r.i64("producer id")?, r.i64("first offset")?));
                if flex {
                    r.tagged_fields()?;
                }
            }
            let preferred_read_replica = if version >= 11 {
                r.i32("preferred read replica")?
            } else {
                -1
            };
            let records = r.nullable_bytes(flex, "records")?;
            let mut current_leader = None;
            if flex {
                r.tagged_fields_with(|tag, field| {
                    if tag == FETCH_CURRENT_LEADER_TAG {
                        current_leader = read_current_leader(field)?.known();
                    }
                    Ok(())
                })?;
            }
            topic.partitions.push(FetchPartition {
                partition,
                error_code,
                high_watermark,
                last_stable_offset,
                log_start_offset,
                aborted_transactions,
                preferred_read_replica,
                records,
                current_leader,
            });
        }
        if flex {
            r.tagged_fields()?;
        }
        topics.push(topic);
    }
    let mut node_endpoints = Vec::new();
    if flex {
        r.tagged_fields_with(|tag, field| {
            if version >= 16 && tag == FETCH_NODE_ENDPOINTS_TAG {
                node_endpoints = read_node_endpoints(field)?;
            }
            Ok(())
        })?;
    }
    Ok(FetchResponse {
        throttle_time_ms,
        error_code,
        session_id,
        topics,
        node_endpoints,
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

/// The partitions of one topic in a Fetch request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FetchTopicRequest {
    /// The topic's name (sent up to v12).
    pub name: String,
    /// The topic's id (sent from v13, [`FETCH_TOPIC_ID_VERSION`]; must then be known, not all zero).
    pub topic_id: [u8; 16],
    /// Its partitions.
    pub partitions: Vec<FetchPartitionRequest>,
}

/// Partitions of one topic that a fetch session forgets (v7+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ForgottenTopicRequest {
    /// The topic's name (sent v7–v12).
    pub name: String,
    /// The topic's id as the session holds it (sent from v13).
    pub topic_id: [u8; 16],
    /// The partitions to forget.
    pub partitions: Vec<i32>,
}

/// A Fetch request, as a consumer: replica id -1 (a field up to v14, and from v15 the absent `ReplicaState`,
/// whose defaults say the same).
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
    pub topics: Vec<FetchTopicRequest>,
    /// Partitions to drop from the session (v7+), per topic.
    pub forgotten: Vec<ForgottenTopicRequest>,
    /// The consumer's rack (`client.rack`, v11+; empty for none): a broker with a rack-aware replica selector
    /// answers with a replica to read from instead (KIP-392).
    pub rack_id: String,
}

impl FetchRequest {
    /// Both the name and the id of each topic are handed to the encoder, which writes the one `version` has.
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
                    .map(|t| {
                        FetchTopic::default()
                            .with_topic(crate::call::wire_topic(&t.name))
                            .with_topic_id(uuid::Uuid::from_bytes(t.topic_id))
                            .with_partitions(
                                t.partitions
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
                    .map(|t| {
                        ForgottenTopic::default()
                            .with_topic(crate::call::wire_topic(&t.name))
                            .with_topic_id(uuid::Uuid::from_bytes(t.topic_id))
                            .with_partitions(t.partitions.clone())
                    })
                    .collect(),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Call;
    use kafka_protocol::protocol::Decodable;

    /// The request as a broker reads it (kafka-protocol's decoder), at every version: topics by name up to v12
    /// and by id from v13, forgotten partitions likewise, and a consumer's replica id (-1) either way.
    #[test]
    fn a_broker_reads_topics_by_name_then_by_id() {
        let id = |b: u8| [b; 16];
        let req = FetchRequest {
            max_wait_ms: 500,
            min_bytes: 1,
            max_bytes: 1 << 20,
            isolation_level: 1,
            session_id: 7,
            session_epoch: 3,
            topics: vec![FetchTopicRequest {
                name: "orders".into(),
                topic_id: id(1),
                partitions: vec![FetchPartitionRequest {
                    partition: 2,
                    fetch_offset: 42,
                    max_bytes: 4096,
                    current_leader_epoch: 5,
                }],
            }],
            forgotten: vec![ForgottenTopicRequest {
                name: "gone".into(),
                topic_id: id(2),
                partitions: vec![0, 3],
            }],
            rack_id: "r1".into(),
        };
        for version in FETCH_VERSIONS {
            // Sessions, and so forgotten partitions, begin at v7.
            let mut req = req.clone();
            if version < 7 {
                req.forgotten.clear();
            }
            let frame = req.encode(version, 9, Some("weir")).unwrap();
            let mut body = frame.slice(4..);
            let header_version = kafka_protocol::messages::ApiKey::Fetch.request_header_version(version);
            kafka_protocol::messages::RequestHeader::decode(&mut body, header_version).unwrap();
            let got = kafka_protocol::messages::FetchRequest::decode(&mut body, version).unwrap();
            assert!(body.is_empty(), "v{version}: every byte read");
            assert_eq!(got.replica_id.0, -1, "v{version}");
            assert_eq!(got.replica_state.replica_id.0, -1, "v{version}");
            let t = &got.topics[0];
            let p = &t.partitions[0];
            assert_eq!(
                (p.partition, p.fetch_offset, p.partition_max_bytes),
                (2, 42, 4096)
            );
            if version >= 9 {
                assert_eq!(p.current_leader_epoch, 5);
            }
            if version < 7 {
                assert_eq!(&*t.topic.0, "orders");
                continue;
            }
            let f = &got.forgotten_topics_data[0];
            if version >= FETCH_TOPIC_ID_VERSION {
                assert_eq!(t.topic_id.into_bytes(), id(1), "v{version}");
                assert_eq!(f.topic_id.into_bytes(), id(2), "v{version}");
                assert!(t.topic.is_empty() && f.topic.is_empty(), "v{version}: no names");
            } else {
                assert_eq!((&*t.topic.0, &*f.topic.0), ("orders", "gone"), "v{version}");
            }
            assert_eq!(f.partitions, [0, 3]);
            assert_eq!((got.session_id, got.session_epoch), (7, 3));
            if version >= 11 {
                assert_eq!(&*got.rack_id, "r1");
            }
        }
    }
}
