//! The consumer group offset responses — OffsetCommit (v2–v8) and OffsetFetch (v1–v7) — decoded here rather
//! than by `kafka-protocol`, so that no count from the wire is trusted before it is checked against the bytes
//! present. Only the fields weir uses are kept; tagged fields are skipped.

use bytes::Bytes;

use crate::call::ErrorCodes;
use crate::wire::{check_version, prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_offset_commit_response`] reads.
pub const OFFSET_COMMIT_VERSIONS: std::ops::RangeInclusive<i16> = 2..=8;
/// Versions [`decode_offset_fetch_response`] reads.
pub const OFFSET_FETCH_VERSIONS: std::ops::RangeInclusive<i16> = 1..=7;

/// One topic of an OffsetCommit, AddPartitionsToTxn or TxnOffsetCommit response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitTopic {
    /// Topic name.
    pub name: String,
    /// Per-partition results: (partition, error code).
    pub partitions: Vec<(i32, i16)>,
}

impl ErrorCodes for CommitTopic {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for (_, code) in &self.partitions {
            code.error_codes(f);
        }
    }
}

/// Reads `[topic name, [partition, error code]]`: the per-partition results of OffsetCommit, AddPartitionsToTxn
/// (v0–v3) and TxnOffsetCommit.
pub(crate) fn topic_errors(r: &mut WireReader, flex: bool) -> Result<Vec<CommitTopic>, ProtoError> {
    // Smallest topic: name length and partition count (+ tags); smallest partition: index, error (+ tags).
    let (min_topic, min_partition) = if flex { (3, 7) } else { (6, 6) };
    let topic_count = r.count(flex, min_topic, "topic count")?.unwrap_or(0);
    let mut topics = Vec::with_capacity(prealloc(topic_count));
    for _ in 0..topic_count {
        let name = r.required_string(flex, "topic name")?;
        let partition_count = r.count(flex, min_partition, "partition count")?.unwrap_or(0);
        let mut partitions = Vec::with_capacity(prealloc(partition_count));
        for _ in 0..partition_count {
            let partition = r.i32("partition")?;
            let error_code = r.i16("error code")?;
            if flex {
                r.tagged_fields()?;
            }
            partitions.push((partition, error_code));
        }
        if flex {
            r.tagged_fields()?;
        }
        topics.push(CommitTopic { name, partitions });
    }
    Ok(topics)
}

/// Decodes an OffsetCommit response body (after the response header) of `version` (2..=8): its topics.
pub fn decode_offset_commit_response(body: Bytes, version: i16) -> Result<Vec<CommitTopic>, ProtoError> {
    const API: &str = "OffsetCommit";
    check_version(API, version, &OFFSET_COMMIT_VERSIONS)?;
    let flex = version >= 8;
    let mut r = WireReader::new(body, API, version);
    if version >= 3 {
        r.i32("throttle time")?;
    }
    let topics = topic_errors(&mut r, flex)?;
    if flex {
        r.tagged_fields()?;
    }
    Ok(topics)
}

/// A decoded OffsetFetch response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetFetchResponse {
    /// Group-level error code (v2+; 0 before).
    pub error_code: i16,
    /// Topics in the response.
    pub topics: Vec<FetchedTopic>,
}

impl ErrorCodes for OffsetFetchResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
        self.topics.error_codes(f);
    }
}

/// One topic of an OffsetFetch response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedTopic {
    /// Topic name.
    pub name: String,
    /// Its partitions.
    pub partitions: Vec<FetchedOffset>,
}

impl ErrorCodes for FetchedTopic {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.partitions.error_codes(f);
    }
}

/// One partition of an OffsetFetch response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchedOffset {
    /// Partition index.
    pub partition: i32,
    /// The committed offset, -1 if none.
    pub committed_offset: i64,
    /// The leader epoch of the record before the committed offset, as the committer knew it (v5+; `None` before,
    /// or when the committer did not say): what a consumer starting there validates its position against
    /// (KIP-320).
    pub committed_leader_epoch: Option<i32>,
    /// Error code, 0 if none.
    pub error_code: i16,
}

impl ErrorCodes for FetchedOffset {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes an OffsetFetch response body (after the response header) of `version` (1..=7).
pub fn decode_offset_fetch_response(body: Bytes, version: i16) -> Result<OffsetFetchResponse, ProtoError> {
    const API: &str = "OffsetFetch";
    check_version(API, version, &OFFSET_FETCH_VERSIONS)?;
    let flex = version >= 6;
    let mut r = WireReader::new(body, API, version);
    if version >= 3 {
        r.i32("throttle time")?;
    }
    let min_topic = if flex { 3 } else { 6 };
    // Index, offset, leader epoch (v5+), metadata length, error (+ tags).
    let min_partition =
        4 + 8 + if version >= 5 { 4 } else { 0 } + if flex { 1 } else { 2 } + 2 + usize::from(flex);
    let topic_count = r.count(flex, min_topic, "topic count")?.unwrap_or(0);
    let mut topics = Vec::with_capacity(prealloc(topic_count));
    for _ in 0..topic_count {
        let name = r.required_string(flex, "topic name")?;
        let partition_count = r.count(flex, min_partition, "partition count")?.unwrap_or(0);
        let mut partitions = Vec::with_capacity(prealloc(partition_count));
        for _ in 0..partition_count {
            let partition = r.i32("partition")?;
            let committed_offset = r.i64("committed offset")?;
            let committed_leader_epoch = if version >= 5 {
                Some(r.i32("committed leader epoch")?).filter(|&e| e >= 0)
            } else {
                None
            };
            r.string(flex, "metadata")?;
            let error_code = r.i16("error code")?;
            if flex {
                r.tagged_fields()?;
            }
            partitions.push(FetchedOffset {
                partition,
                committed_offset,
                committed_leader_epoch,
                error_code,
            });
        }
        if flex {
            r.tagged_fields()?;
        }
        topics.push(FetchedTopic { name, partitions });
    }
    let error_code = if version >= 2 { r.i16("error code")? } else { 0 };
    if flex {
        r.tagged_fields()?;
    }
    Ok(OffsetFetchResponse { error_code, topics })
}

/// One partition's offset in an OffsetCommit request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitOffset {
    /// Partition index.
    pub partition: i32,
    /// The offset to commit: the next record to read.
    pub offset: i64,
    /// The leader epoch of the record before `offset` (v6+), if known: lets the consumer that starts there
    /// detect a truncated log (KIP-320).
    pub leader_epoch: Option<i32>,
}

/// An OffsetCommit request: per topic, its partitions' offsets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetCommitRequest {
    /// The group.
    pub group_id: String,
    /// The member's generation (-1 for a commit from outside the group).
    pub generation_id: i32,
    /// The member id ("" from outside the group).
    pub member_id: String,
    /// The static instance id (v7+), if any.
    pub group_instance_id: Option<String>,
    /// The offsets, per topic.
    pub topics: Vec<(String, Vec<CommitOffset>)>,
}

impl OffsetCommitRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::OffsetCommitRequest {
        use crate::call::{wire_str, wire_topic};
        use kafka_protocol::messages::offset_commit_request::{
            OffsetCommitRequestPartition, OffsetCommitRequestTopic,
        };
        kafka_protocol::messages::OffsetCommitRequest::default()
            .with_group_id(crate::call::wire_group(&self.group_id))
            .with_generation_id_or_member_epoch(self.generation_id)
            .with_member_id(wire_str(&self.member_id))
            .with_group_instance_id(self.group_instance_id.as_deref().map(wire_str))
            .with_retention_time_ms(-1)
            .with_topics(
                self.topics
                    .iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(wire_topic(t))
                            .with_partitions(
                                ps.iter()
                                    .map(|c| {
                                        OffsetCommitRequestPartition::default()
                                            .with_partition_index(c.partition)
                                            .with_committed_offset(c.offset)
                                            .with_committed_leader_epoch(c.leader_epoch.unwrap_or(-1))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
    }
}

/// An OffsetFetch request: the committed offsets of a group's partitions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetFetchRequest {
    /// The group.
    pub group_id: String,
    /// Partitions per topic; `None` for every partition the group has offsets for.
    pub topics: Option<Vec<(String, Vec<i32>)>>,
    /// v7+: a partition whose offset a transaction is still committing answers UNSTABLE_OFFSET_COMMIT (to ask
    /// again) instead of its previous offset (KIP-447). Older versions have no such guarantee.
    pub require_stable: bool,
}

impl OffsetFetchRequest {
    pub(crate) fn to_wire(&self, version: i16) -> kafka_protocol::messages::OffsetFetchRequest {
        use crate::call::wire_topic;
        use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
        kafka_protocol::messages::OffsetFetchRequest::default()
            .with_group_id(crate::call::wire_group(&self.group_id))
            .with_require_stable(self.require_stable && version >= 7)
            .with_topics(self.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|(t, ps)| {
                        OffsetFetchRequestTopic::default()
                            .with_name(wire_topic(t))
                            .with_partition_indexes(ps.clone())
                    })
                    .collect()
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_carries_the_leader_epoch_it_knows_and_minus_one_otherwise() {
        let at = |partition, leader_epoch| CommitOffset {
            partition,
            offset: 10,
            leader_epoch,
        };
        let req = OffsetCommitRequest {
            group_id: "g".into(),
            generation_id: 3,
            member_id: "m".into(),
            group_instance_id: None,
            topics: vec![("t".into(), vec![at(0, Some(7)), at(1, None)])],
        };
        let wire = req.to_wire(8);
        let epochs: Vec<(i32, i64, i32)> = wire.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.committed_offset, p.committed_leader_epoch))
            .collect();
        assert_eq!(epochs, [(0, 10, 7), (1, 10, -1)]);
    }
}
