//! The DeleteRecords request (v0–v2, flexible from v2) and its response, decoded here rather than by
//! `kafka-protocol`, so that no count from the wire is trusted before it is checked against the bytes present.
//! Tagged fields are skipped.
//!
//! DeleteRecords moves a partition's log start offset forward: records before it can no longer be read (the
//! segments that hold only such records are deleted). It is served by each partition's leader.

use std::sync::Arc;

use bytes::Bytes;

use crate::call::ErrorCodes;
use crate::wire::{check_version, prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_delete_records_response`] reads.
pub const DELETE_RECORDS_VERSIONS: std::ops::RangeInclusive<i16> = 0..=2;

/// The offset that asks for every record to go: up to the high watermark.
pub const DELETE_TO_HIGH_WATERMARK: i64 = -1;

/// A DeleteRecords request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteRecordsRequest {
    /// Per topic, `(partition, offset)`: records before `offset` go ([`DELETE_TO_HIGH_WATERMARK`]: all).
    pub topics: Vec<(String, Vec<(i32, i64)>)>,
    /// How long the leader may wait for the followers to move their log start too.
    pub timeout_ms: i32,
}

impl DeleteRecordsRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::DeleteRecordsRequest {
        use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
        kafka_protocol::messages::DeleteRecordsRequest::default()
            .with_topics(
                self.topics
                    .iter()
                    .map(|(topic, parts)| {
                        DeleteRecordsTopic::default()
                            .with_name(crate::call::wire_topic(topic))
                            .with_partitions(
                                parts
                                    .iter()
                                    .map(|&(p, offset)| {
                                        DeleteRecordsPartition::default()
                                            .with_partition_index(p)
                                            .with_offset(offset)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
            .with_timeout_ms(self.timeout_ms)
    }
}

/// One partition's result in a DeleteRecords response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeletedRecords {
    /// The topic (one allocation per topic, shared by its partitions).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The partition's log start offset after the deletion (-1 on error).
    pub low_watermark: i64,
    /// Error code, 0 if none.
    pub error_code: i16,
}

impl ErrorCodes for DeletedRecords {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes a DeleteRecords response body (after the response header) of `version` (0..=2): one result per
/// partition.
pub fn decode_delete_records_response(body: Bytes, version: i16) -> Result<Vec<DeletedRecords>, ProtoError> {
    const API: &str = "DeleteRecords";
    check_version(API, version, &DELETE_RECORDS_VERSIONS)?;
    let flex = version >= 2;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    // Name, partition count, tags (flexible).
    let min_topic = if flex { 1 + 1 + 1 } else { 2 + 4 };
    // Index, low watermark, error code, tags (flexible).
    let min_partition = 4 + 8 + 2 + usize::from(flex);
    let topics = r.count(flex, min_topic, "topic count")?.unwrap_or(0);
    let mut out = Vec::new();
    for _ in 0..topics {
        let topic: Arc<str> = r.required_string(flex, "topic name")?.into();
        let n = r.count(flex, min_partition, "partition count")?.unwrap_or(0);
        out.reserve(prealloc(n));
        for _ in 0..n {
            let partition = r.i32("partition index")?;
            let low_watermark = r.i64("low watermark")?;
            let error_code = r.i16("error code")?;
            if flex {
                r.tagged_fields()?;
            }
            out.push(DeletedRecords {
                topic: topic.clone(),
                partition,
                low_watermark,
                error_code,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_every_field() {
        let req = DeleteRecordsRequest {
            topics: vec![("t".into(), vec![(0, 5), (2, DELETE_TO_HIGH_WATERMARK)])],
            timeout_ms: 900,
        }
        .to_wire(2);
        assert_eq!(req.timeout_ms, 900);
        assert_eq!(&*req.topics[0].name.0, "t");
        let parts: Vec<(i32, i64)> = req.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.offset))
            .collect();
        assert_eq!(parts, vec![(0, 5), (2, -1)]);
    }
}
