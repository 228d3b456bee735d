//! The ListOffsets response (v1–v8), decoded here rather than by `kafka-protocol`, so that no count from the
//! wire is trusted before it is checked against the bytes present.

use bytes::Bytes;

use crate::call::ErrorCodes;
use crate::wire::{prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_list_offsets_response`] reads.
pub const LIST_OFFSETS_VERSIONS: std::ops::RangeInclusive<i16> = 1..=8;

/// One partition's answer: (topic, partition, error code, timestamp, offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedOffset {
    /// Topic (one allocation per topic, shared by its partitions).
    pub topic: std::sync::Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Error code, 0 if none.
    pub error_code: i16,
    /// Timestamp of the record found (-1 for earliest/latest lookups).
    pub timestamp: i64,
    /// The offset.
    pub offset: i64,
}

impl ErrorCodes for ListedOffset {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes a ListOffsets response body (after the response header) of `version` (1..=8).
pub fn decode_list_offsets_response(body: Bytes, version: i16) -> Result<Vec<ListedOffset>, ProtoError> {
    if !LIST_OFFSETS_VERSIONS.contains(&version) {
        return Err(ProtoError::Decode {
            api: "ListOffsets",
            version,
            reason: "unsupported version".into(),
        });
    }
    let flex = version >= 6;
    let mut r = WireReader::new(body, "ListOffsets", version);
    if version >= 2 {
        r.i32("throttle time")?;
    }
    let min_partition = 4 + 2 + 8 + 8 + if version >= 4 { 4 } else { 0 };
    let mut out = Vec::new();
    let topic_count = r.count(flex, 2, "topic count")?.unwrap_or(0);
    for _ in 0..topic_count {
        let topic: std::sync::Arc<str> = r.required_string(flex, "topic name")?.into();
        let partition_count = r.count(flex, min_partition, "partition count")?.unwrap_or(0);
        out.reserve(prealloc(partition_count));
        for _ in 0..partition_count {
            let partition = r.i32("partition")?;
            let error_code = r.i16("error code")?;
            let timestamp = r.i64("timestamp")?;
            let offset = r.i64("offset")?;
            if version >= 4 {
                r.i32("leader epoch")?;
            }
            if flex {
                r.tagged_fields()?;
            }
            out.push(ListedOffset {
                topic: topic.clone(),
                partition,
                error_code,
                timestamp,
                offset,
            });
        }
        if flex {
            r.tagged_fields()?;
        }
    }
    if flex {
        r.tagged_fields()?;
    }
    Ok(out)
}

/// A ListOffsets request: per topic, `(partition, timestamp)` where the timestamp is -1 (latest), -2
/// (earliest) or a time in milliseconds (the first offset at or after it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOffsetsRequest {
    /// 0: read uncommitted; 1: read committed (v2+).
    pub isolation_level: i8,
    /// Per topic, the partitions and the timestamp to look up.
    pub topics: Vec<(String, Vec<(i32, i64)>)>,
}

impl ListOffsetsRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::ListOffsetsRequest {
        use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
        kafka_protocol::messages::ListOffsetsRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_isolation_level(self.isolation_level)
            .with_topics(
                self.topics
                    .iter()
                    .map(|(topic, parts)| {
                        ListOffsetsTopic::default()
                            .with_name(crate::call::wire_topic(topic))
                            .with_partitions(
                                parts
                                    .iter()
                                    .map(|&(p, ts)| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(p)
                                            .with_current_leader_epoch(-1)
                                            .with_timestamp(ts)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
    }
}
