//! The Produce response (v3–v11), decoded here rather than by `kafka-protocol`, so that no count from the wire
//! is trusted before it is checked against the bytes present.

use bytes::Bytes;

use crate::leader_hint::{
    read_current_leader, read_node_endpoints, CurrentLeader, NodeEndpoint, PRODUCE_CURRENT_LEADER_TAG,
    PRODUCE_NODE_ENDPOINTS_TAG,
};
use crate::wire::{prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_produce_response`] reads.
pub const PRODUCE_VERSIONS: std::ops::RangeInclusive<i16> = 3..=11;

/// A decoded Produce response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceResponse {
    /// Topics in the response.
    pub topics: Vec<ProduceTopic>,
    /// Throttle time the broker asks for.
    pub throttle_time_ms: i32,
    /// Where the brokers named in partitions' `current_leader` hints listen (v10+, KIP-951).
    pub node_endpoints: Vec<NodeEndpoint>,
}

/// Nothing: the producer's sender walks every partition of a Produce response and counts the codes it finds
/// there.
impl crate::call::ErrorCodes for ProduceResponse {
    fn error_codes(&self, _: &mut dyn FnMut(i16)) {}
}

/// One topic of a Produce response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceTopic {
    /// Topic name.
    pub name: String,
    /// Its partitions.
    pub partitions: Vec<ProducePartition>,
}

/// One partition of a Produce response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducePartition {
    /// Partition index.
    pub partition: i32,
    /// Error code, 0 if none.
    pub error_code: i16,
    /// Offset given to the first record of the batch.
    pub base_offset: i64,
    /// Log append time, -1 unless the topic uses it.
    pub log_append_time_ms: i64,
    /// Log start offset (v5+; -1 before).
    pub log_start_offset: i64,
    /// The broker's message for an error (v8+).
    pub error_message: Option<String>,
    /// With NOT_LEADER_OR_FOLLOWER (and similar), the leader the broker knows of (v10+, KIP-951).
    pub current_leader: Option<CurrentLeader>,
}

/// Decodes a Produce response body (after the response header) of `version` (3..=11).
pub fn decode_produce_response(body: Bytes, version: i16) -> Result<ProduceResponse, ProtoError> {
    if !PRODUCE_VERSIONS.contains(&version) {
        return Err(ProtoError::Decode {
            api: "Produce",
            version,
            reason: "unsupported version".into(),
        });
    }
    let flex = version >= 9;
    let mut r = WireReader::new(body, "Produce", version);
    let min_partition = 4 + 2 + 8 + 8 + if version >= 5 { 8 } else { 0 } + if version >= 8 { 2 } else { 0 };
    let topic_count = r.count(flex, 2, "topic count")?.unwrap_or(0);
    let mut topics = Vec::with_capacity(prealloc(topic_count));
    for _ in 0..topic_count {
        let name = r.required_string(flex, "topic name")?;
        let partition_count = r.count(flex, min_partition, "partition count")?.unwrap_or(0);
        let mut partitions = Vec::with_capacity(prealloc(partition_count));
        for _ in 0..partition_count {
            let partition = r.i32("partition")?;
            let error_code = r.i16("error code")?;
            let base_offset = r.i64("base offset")?;
            let log_append_time_ms = r.i64("log append time")?;
            let log_start_offset = if version >= 5 {
                r.i64("log start offset")?
            } else {
                -1
            };
            let mut error_message = None;
            if version >= 8 {
                let errors = r.count(flex, 5, "record error count")?.unwrap_or(0);
                for _ in 0..errors {
                    r.i32("batch index")?;
                    r.string(flex, "record error message")?;
                    if flex {
                        r.tagged_fields()?;
                    }
                }
                error_message = r.string(flex, "error message")?;
            }
            let mut current_leader = None;
            if flex {
                r.tagged_fields_with(|tag, field| {
                    if version >= 10 && tag == PRODUCE_CURRENT_LEADER_TAG {
                        current_leader = read_current_leader(field)?.known();
                    }
                    Ok(())
                })?;
            }
            partitions.push(ProducePartition {
                partition,
                error_code,
                base_offset,
                log_append_time_ms,
                log_start_offset,
                error_message,
                current_leader,
            });
        }
        if flex {
            r.tagged_fields()?;
        }
        topics.push(ProduceTopic { name, partitions });
    }
    let throttle_time_ms = r.i32("throttle time")?;
    let mut node_endpoints = Vec::new();
    if flex {
        r.tagged_fields_with(|tag, field| {
            if version >= 10 && tag == PRODUCE_NODE_ENDPOINTS_TAG {
                node_endpoints = read_node_endpoints(field)?;
            }
            Ok(())
        })?;
    }
    Ok(ProduceResponse {
        topics,
        throttle_time_ms,
        node_endpoints,
    })
}

/// Per topic, each partition's encoded record batches.
pub type ProduceData = Vec<(std::sync::Arc<str>, Vec<(i32, Bytes)>)>;

/// A Produce request: per topic, `(partition, record batches)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceRequest {
    /// The transactional id, if any.
    pub transactional_id: Option<String>,
    /// 0: no answer; 1: the leader's; -1: every in-sync replica's.
    pub acks: i16,
    /// How long the broker may wait for replication.
    pub timeout_ms: i32,
    /// Per topic, each partition's encoded record batches.
    pub topics: ProduceData,
}

impl ProduceRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::ProduceRequest {
        use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
        kafka_protocol::messages::ProduceRequest::default()
            .with_transactional_id(
                self.transactional_id
                    .as_deref()
                    .map(crate::call::wire_transactional_id),
            )
            .with_acks(self.acks)
            .with_timeout_ms(self.timeout_ms)
            .with_topic_data(
                self.topics
                    .iter()
                    .map(|(t, parts)| {
                        TopicProduceData::default()
                            .with_name(crate::call::wire_topic(t))
                            .with_partition_data(
                                parts
                                    .iter()
                                    .map(|(p, records)| {
                                        PartitionProduceData::default()
                                            .with_index(*p)
                                            .with_records(Some(records.clone()))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
    }
}
