//! The OffsetForLeaderEpoch request (v2–v4, flexible from v4) and its response, decoded here rather than by
//! `kafka-protocol`, so that no count from the wire is trusted before it is checked against the bytes present.
//! Tagged fields are skipped.
//!
//! A consumer asks a partition's leader where a leader epoch ends in its log (KIP-320): the epoch of the last
//! batch it fetched. If that end lies before the consumer's position, the log it read was truncated (an
//! unclean leader election) and the records from there on were never in the new leader's log.

use std::sync::Arc;

use bytes::Bytes;

use crate::call::ErrorCodes;
use crate::wire::{check_version, prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_offset_for_leader_epoch_response`] reads (Kafka 4 serves 2 and later).
pub const OFFSET_FOR_LEADER_EPOCH_VERSIONS: std::ops::RangeInclusive<i16> = 2..=4;

/// One partition asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochQuery {
    /// The partition.
    pub partition: i32,
    /// The leader epoch the consumer knows the partition by (the broker fences an older one), -1 for none.
    pub current_leader_epoch: i32,
    /// The epoch whose end offset is asked for.
    pub leader_epoch: i32,
}

/// An OffsetForLeaderEpoch request from a consumer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetForLeaderEpochRequest {
    /// Per topic, the partitions asked about.
    pub topics: Vec<(String, Vec<EpochQuery>)>,
}

impl OffsetForLeaderEpochRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::OffsetForLeaderEpochRequest {
        use kafka_protocol::messages::offset_for_leader_epoch_request::{
            OffsetForLeaderPartition, OffsetForLeaderTopic,
        };
        kafka_protocol::messages::OffsetForLeaderEpochRequest::default()
            // A consumer, not a follower (v3+).
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_topics(
                self.topics
                    .iter()
                    .map(|(topic, parts)| {
                        OffsetForLeaderTopic::default()
                            .with_topic(crate::call::wire_topic(topic))
                            .with_partitions(
                                parts
                                    .iter()
                                    .map(|q| {
                                        OffsetForLeaderPartition::default()
                                            .with_partition(q.partition)
                                            .with_current_leader_epoch(q.current_leader_epoch)
                                            .with_leader_epoch(q.leader_epoch)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
    }
}

/// One partition's answer: where the asked epoch ends in the leader's log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EpochEndOffset {
    /// The topic (one allocation per topic, shared by its partitions).
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// Error code, 0 if none.
    pub error_code: i16,
    /// The largest epoch of the leader's log not above the asked one, -1 if unknown.
    pub leader_epoch: i32,
    /// The offset that epoch ends at (the first offset of the next epoch, or the log end), -1 if unknown.
    pub end_offset: i64,
}

impl ErrorCodes for EpochEndOffset {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes an OffsetForLeaderEpoch response body (after the response header) of `version` (2..=4): one answer
/// per partition.
pub fn decode_offset_for_leader_epoch_response(
    body: Bytes,
    version: i16,
) -> Result<Vec<EpochEndOffset>, ProtoError> {
    const API: &str = "OffsetForLeaderEpoch";
    check_version(API, version, &OFFSET_FOR_LEADER_EPOCH_VERSIONS)?;
    let flex = version >= 4;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    // Name, partition count, tags (flexible).
    let min_topic = if flex { 1 + 1 + 1 } else { 2 + 4 };
    // Error code, partition, leader epoch, end offset, tags (flexible).
    let min_partition = 2 + 4 + 4 + 8 + usize::from(flex);
    let topics = r.count(flex, min_topic, "topic count")?.unwrap_or(0);
    let mut out = Vec::new();
    for _ in 0..topics {
        let topic: Arc<str> = r.required_string(flex, "topic name")?.into();
        let n = r.count(flex, min_partition, "partition count")?.unwrap_or(0);
        out.reserve(prealloc(n));
        for _ in 0..n {
            let error_code = r.i16("error code")?;
            let partition = r.i32("partition")?;
            let leader_epoch = r.i32("leader epoch")?;
            let end_offset = r.i64("end offset")?;
            if flex {
                r.tagged_fields()?;
            }
            out.push(EpochEndOffset {
                topic: topic.clone(),
                partition,
                error_code,
                leader_epoch,
                end_offset,
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
        let req = OffsetForLeaderEpochRequest {
            topics: vec![(
                "t".into(),
                vec![EpochQuery {
                    partition: 3,
                    current_leader_epoch: 7,
                    leader_epoch: 5,
                }],
            )],
        }
        .to_wire(4);
        assert_eq!(req.replica_id.0, -1);
        assert_eq!(&*req.topics[0].topic.0, "t");
        let p = &req.topics[0].partitions[0];
        assert_eq!((p.partition, p.current_leader_epoch, p.leader_epoch), (3, 7, 5));
    }
}
