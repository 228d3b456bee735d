//! The transaction APIs of a transactional producer — AddPartitionsToTxn (v0–v3), AddOffsetsToTxn (v0–v4),
//! TxnOffsetCommit (v0–v5) and EndTxn (v0–v5): requests encoded with `kafka-protocol`, responses decoded here, so
//! that no count from the wire is trusted before it is checked against the bytes present. Tagged fields are
//! skipped.
//!
//! AddPartitionsToTxn, AddOffsetsToTxn and EndTxn go to the transaction coordinator (FindCoordinator key type 1,
//! keyed by the transactional id); TxnOffsetCommit goes to the group coordinator (key type 0, keyed by the group).
//!
//! # Transaction versions
//!
//! The broker tells which transaction protocol a client speaks by the request versions it sends, so the versions
//! depend on the cluster's finalized `transaction.version` feature (see
//! [`VersionTable::transaction_version`](crate::versions::VersionTable::transaction_version)):
//!
//! - below 2 (TV0/TV1, the protocol of Kafka 0.11–3.x): partitions are added with AddPartitionsToTxn before the
//!   first Produce to them, offsets with AddOffsetsToTxn before TxnOffsetCommit; Produce must stay at v11 or
//!   below, TxnOffsetCommit and EndTxn at v4 or below ([`txn_offset_commit_versions`], [`end_txn_versions`]);
//! - 2 (TV2, KIP-890 part 2, Kafka 4.0+): Produce v12+ and TxnOffsetCommit v5 add their partition to the
//!   transaction implicitly (AddPartitionsToTxn and AddOffsetsToTxn are not sent), and EndTxn v5 bumps the
//!   producer epoch: its response carries the producer id and epoch of the next transaction.

use std::ops::RangeInclusive;

use bytes::Bytes;

use crate::call::ErrorCodes;
use crate::wire::{check_version, WireReader};
use crate::ProtoError;

/// Versions [`decode_add_partitions_to_txn_response`] reads: the client form. v4+ is the broker-to-broker form
/// (batched transactions, `VerifyOnly`), never sent by clients.
pub const ADD_PARTITIONS_TO_TXN_VERSIONS: RangeInclusive<i16> = 0..=3;
/// Versions [`decode_add_offsets_to_txn_response`] reads.
pub const ADD_OFFSETS_TO_TXN_VERSIONS: RangeInclusive<i16> = 0..=4;
/// Versions [`decode_txn_offset_commit_response`] reads. v5 is for transaction version 2 only
/// ([`txn_offset_commit_versions`]).
pub const TXN_OFFSET_COMMIT_VERSIONS: RangeInclusive<i16> = 0..=5;
/// Versions [`decode_end_txn_response`] reads. v5 is for transaction version 2 only ([`end_txn_versions`]).
pub const END_TXN_VERSIONS: RangeInclusive<i16> = 0..=5;

/// The name of the finalized feature telling the cluster's transaction protocol.
pub const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";
/// The first `transaction.version` level with the KIP-890 part 2 protocol (implicit partition adds, epoch bump
/// on every EndTxn).
pub const TRANSACTION_VERSION_2: i16 = 2;
/// The highest Produce version a transactional producer may send under transaction version 0 or 1: v12+ tells
/// the broker the client speaks transaction version 2 and adds the partition to the transaction implicitly.
pub const PRODUCE_MAX_VERSION_BEFORE_TV2: i16 = 11;
/// The highest TxnOffsetCommit version under transaction version 0 or 1.
pub const TXN_OFFSET_COMMIT_MAX_VERSION_BEFORE_TV2: i16 = 4;
/// The highest EndTxn version under transaction version 0 or 1: v5 makes the coordinator bump the epoch.
pub const END_TXN_MAX_VERSION_BEFORE_TV2: i16 = 4;

/// The TxnOffsetCommit versions a transaction of the given protocol may be committed with (to intersect with the
/// broker's range, e.g. [`VersionTable::pick`](crate::versions::VersionTable::pick)): v5 only under transaction
/// version 2 (the request also adds the group's offsets partition to the transaction, replacing
/// AddOffsetsToTxn), v0–v4 otherwise.
pub const fn txn_offset_commit_versions(tv2: bool) -> RangeInclusive<i16> {
    if tv2 {
        RangeInclusive::new(5, 5)
    } else {
        RangeInclusive::new(0, TXN_OFFSET_COMMIT_MAX_VERSION_BEFORE_TV2)
    }
}

/// The EndTxn versions a transaction of the given protocol may be ended with: v5 only under transaction version
/// 2 (the coordinator bumps the epoch and answers with the producer id and epoch to use next), v0–v4 otherwise.
/// A transaction is ended with the protocol it was started with.
pub const fn end_txn_versions(tv2: bool) -> RangeInclusive<i16> {
    if tv2 {
        RangeInclusive::new(5, 5)
    } else {
        RangeInclusive::new(0, END_TXN_MAX_VERSION_BEFORE_TV2)
    }
}

/// One topic of an AddPartitionsToTxn or TxnOffsetCommit response: per partition, its error code.
pub type TxnTopicResult = crate::group_offsets::CommitTopic;

/// Decodes an AddPartitionsToTxn response body (after the response header) of `version` (0..=3): per topic, per
/// partition, its error code (v0–v3 have no top-level error code: a request-level error is repeated on every
/// partition).
pub fn decode_add_partitions_to_txn_response(
    body: Bytes,
    version: i16,
) -> Result<Vec<TxnTopicResult>, ProtoError> {
    const API: &str = "AddPartitionsToTxn";
    check_version(API, version, &ADD_PARTITIONS_TO_TXN_VERSIONS)?;
    let flex = version >= 3;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    let topics = crate::group_offsets::topic_errors(&mut r, flex)?;
    if flex {
        r.tagged_fields()?;
    }
    Ok(topics)
}

/// Decodes an AddOffsetsToTxn response body (after the response header) of `version` (0..=4): its error code.
pub fn decode_add_offsets_to_txn_response(body: Bytes, version: i16) -> Result<i16, ProtoError> {
    const API: &str = "AddOffsetsToTxn";
    check_version(API, version, &ADD_OFFSETS_TO_TXN_VERSIONS)?;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    let error_code = r.i16("error code")?;
    if version >= 3 {
        r.tagged_fields()?;
    }
    Ok(error_code)
}

/// Decodes a TxnOffsetCommit response body (after the response header) of `version` (0..=5): per topic, per
/// partition, its error code.
pub fn decode_txn_offset_commit_response(
    body: Bytes,
    version: i16,
) -> Result<Vec<TxnTopicResult>, ProtoError> {
    const API: &str = "TxnOffsetCommit";
    check_version(API, version, &TXN_OFFSET_COMMIT_VERSIONS)?;
    let flex = version >= 3;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    let topics = crate::group_offsets::topic_errors(&mut r, flex)?;
    if flex {
        r.tagged_fields()?;
    }
    Ok(topics)
}

/// A decoded EndTxn response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnResponse {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// v5+ (transaction version 2): the producer id for the next transaction — the same one with its epoch
    /// bumped, or a new one with epoch 0 when the epoch ran out; -1 before v5 and on errors.
    pub producer_id: i64,
    /// v5+: the epoch for the next transaction; -1 before v5 and on errors.
    pub producer_epoch: i16,
}

impl ErrorCodes for EndTxnResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

impl Default for EndTxnResponse {
    fn default() -> Self {
        EndTxnResponse {
            error_code: 0,
            producer_id: -1,
            producer_epoch: -1,
        }
    }
}

/// Decodes an EndTxn response body (after the response header) of `version` (0..=5).
pub fn decode_end_txn_response(body: Bytes, version: i16) -> Result<EndTxnResponse, ProtoError> {
    const API: &str = "EndTxn";
    check_version(API, version, &END_TXN_VERSIONS)?;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    let error_code = r.i16("error code")?;
    let (producer_id, producer_epoch) = if version >= 5 {
        (r.i64("producer id")?, r.i16("producer epoch")?)
    } else {
        (-1, -1)
    };
    if version >= 3 {
        r.tagged_fields()?;
    }
    Ok(EndTxnResponse {
        error_code,
        producer_id,
        producer_epoch,
    })
}

/// An AddPartitionsToTxn request (client form, v0–v3): adds partitions to the ongoing transaction before the
/// first Produce to them. Transaction version 2 clients do not send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPartitionsToTxnRequest {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id from InitProducerId.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The partitions to add, per topic.
    pub topics: Vec<(String, Vec<i32>)>,
}

impl Default for AddPartitionsToTxnRequest {
    fn default() -> Self {
        AddPartitionsToTxnRequest {
            transactional_id: String::new(),
            producer_id: -1,
            producer_epoch: -1,
            topics: Vec::new(),
        }
    }
}

impl AddPartitionsToTxnRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::AddPartitionsToTxnRequest {
        use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
        // The `V3AndBelow*` fields: what Kafka's `AddPartitionsToTxnRequest.Builder.forClient` fills, for v0–v3.
        kafka_protocol::messages::AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(crate::call::wire_transactional_id(&self.transactional_id))
            .with_v3_and_below_producer_id(kafka_protocol::messages::ProducerId(self.producer_id))
            .with_v3_and_below_producer_epoch(self.producer_epoch)
            .with_v3_and_below_topics(
                self.topics
                    .iter()
                    .map(|(t, ps)| {
                        AddPartitionsToTxnTopic::default()
                            .with_name(crate::call::wire_topic(t))
                            .with_partitions(ps.clone())
                    })
                    .collect(),
            )
    }
}

/// An AddOffsetsToTxn request: adds the group's offsets partition to the ongoing transaction before
/// TxnOffsetCommit. Transaction version 2 clients do not send it (TxnOffsetCommit v5 does it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOffsetsToTxnRequest {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id from InitProducerId.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The consumer group whose offsets the transaction commits.
    pub group_id: String,
}

impl Default for AddOffsetsToTxnRequest {
    fn default() -> Self {
        AddOffsetsToTxnRequest {
            transactional_id: String::new(),
            producer_id: -1,
            producer_epoch: -1,
            group_id: String::new(),
        }
    }
}

impl AddOffsetsToTxnRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::AddOffsetsToTxnRequest {
        kafka_protocol::messages::AddOffsetsToTxnRequest::default()
            .with_transactional_id(crate::call::wire_transactional_id(&self.transactional_id))
            .with_producer_id(kafka_protocol::messages::ProducerId(self.producer_id))
            .with_producer_epoch(self.producer_epoch)
            .with_group_id(crate::call::wire_group(&self.group_id))
    }
}

/// One partition's offset in a [`TxnOffsetCommitRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffset {
    /// Partition index.
    pub partition: i32,
    /// The offset to commit (the next record to consume).
    pub offset: i64,
    /// The leader epoch of the last consumed record (v2+), -1 if unknown.
    pub leader_epoch: i32,
    /// Metadata kept with the offset, if any.
    pub metadata: Option<String>,
}

/// A TxnOffsetCommit request, sent to the group coordinator: offsets committed when the transaction commits.
///
/// The group metadata (`generation_id`, `member_id`, `group_instance_id`) needs v3 (Kafka 2.5+); below v3 it
/// must be left at its defaults (-1, "", `None`), else encoding fails rather than drop the fencing it provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitRequest {
    /// The transactional id.
    pub transactional_id: String,
    /// The consumer group.
    pub group_id: String,
    /// The producer id from InitProducerId.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The consumer's generation (v3+), -1 for none.
    pub generation_id: i32,
    /// The consumer's member id (v3+), "" for none.
    pub member_id: String,
    /// The consumer's static instance id (v3+), if any.
    pub group_instance_id: Option<String>,
    /// The offsets, per topic.
    pub topics: Vec<(String, Vec<TxnOffset>)>,
}

impl Default for TxnOffsetCommitRequest {
    fn default() -> Self {
        TxnOffsetCommitRequest {
            transactional_id: String::new(),
            group_id: String::new(),
            producer_id: -1,
            producer_epoch: -1,
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            topics: Vec::new(),
        }
    }
}

impl TxnOffsetCommitRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::TxnOffsetCommitRequest {
        use crate::call::{wire_str, wire_topic};
        use kafka_protocol::messages::txn_offset_commit_request::{
            TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
        };
        kafka_protocol::messages::TxnOffsetCommitRequest::default()
            .with_transactional_id(crate::call::wire_transactional_id(&self.transactional_id))
            .with_group_id(crate::call::wire_group(&self.group_id))
            .with_producer_id(kafka_protocol::messages::ProducerId(self.producer_id))
            .with_producer_epoch(self.producer_epoch)
            .with_generation_id(self.generation_id)
            .with_member_id(wire_str(&self.member_id))
            .with_group_instance_id(self.group_instance_id.as_deref().map(wire_str))
            .with_topics(
                self.topics
                    .iter()
                    .map(|(t, ps)| {
                        TxnOffsetCommitRequestTopic::default()
                            .with_name(wire_topic(t))
                            .with_partitions(
                                ps.iter()
                                    .map(|p| {
                                        TxnOffsetCommitRequestPartition::default()
                                            .with_partition_index(p.partition)
                                            .with_committed_offset(p.offset)
                                            .with_committed_leader_epoch(p.leader_epoch)
                                            .with_committed_metadata(p.metadata.as_deref().map(wire_str))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
    }
}

/// An EndTxn request: commits or aborts the ongoing transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndTxnRequest {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id of the transaction.
    pub producer_id: i64,
    /// The epoch of the transaction.
    pub producer_epoch: i16,
    /// `true` to commit, `false` to abort.
    pub committed: bool,
}

impl Default for EndTxnRequest {
    fn default() -> Self {
        EndTxnRequest {
            transactional_id: String::new(),
            producer_id: -1,
            producer_epoch: -1,
            committed: false,
        }
    }
}

impl EndTxnRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::EndTxnRequest {
        kafka_protocol::messages::EndTxnRequest::default()
            .with_transactional_id(crate::call::wire_transactional_id(&self.transactional_id))
            .with_producer_id(kafka_protocol::messages::ProducerId(self.producer_id))
            .with_producer_epoch(self.producer_epoch)
            .with_committed(self.committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Call;
    use crate::versions::VersionTable;
    use bytes::Buf;

    /// The encoded request body (after the size prefix and the request header v1/v2 written for `version`).
    fn encoded<C: Call>(req: &C, version: i16) -> Bytes {
        req.encode(version, 7, Some("weir")).unwrap()
    }

    #[test]
    fn add_partitions_to_txn_uses_the_client_fields() {
        let req = AddPartitionsToTxnRequest {
            transactional_id: "tx".into(),
            producer_id: 42,
            producer_epoch: 3,
            topics: vec![("t".into(), vec![0, 2])],
        };
        // v3: flexible; the body ends with tx id, producer id, epoch, topics, tags.
        let frame = encoded(&req, 3);
        let mut tail = Vec::new();
        tail.extend_from_slice(&[3, b't', b'x']);
        tail.extend_from_slice(&42i64.to_be_bytes());
        tail.extend_from_slice(&3i16.to_be_bytes());
        tail.extend_from_slice(&[2, 2, b't', 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0]);
        assert!(frame.ends_with(&tail), "{frame:?}");
        // v0: classic strings and arrays.
        let frame = encoded(&req, 0);
        let mut tail = Vec::new();
        tail.extend_from_slice(&[0, 2, b't', b'x']);
        tail.extend_from_slice(&42i64.to_be_bytes());
        tail.extend_from_slice(&3i16.to_be_bytes());
        tail.extend_from_slice(&[0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert!(frame.ends_with(&tail), "{frame:?}");
    }

    #[test]
    fn group_metadata_needs_txn_offset_commit_v3() {
        let req = TxnOffsetCommitRequest {
            transactional_id: "tx".into(),
            group_id: "g".into(),
            producer_id: 1,
            producer_epoch: 0,
            generation_id: 5,
            member_id: "m".into(),
            group_instance_id: None,
            topics: vec![(
                "t".into(),
                vec![TxnOffset {
                    partition: 0,
                    offset: 10,
                    leader_epoch: 2,
                    metadata: None,
                }],
            )],
        };
        for v in 3..=5 {
            assert!(req.encode(v, 1, None).is_ok(), "v{v}");
        }
        for v in 0..=2 {
            assert!(
                req.encode(v, 1, None).is_err(),
                "v{v}: group metadata dropped silently"
            );
        }
        let outside_group = TxnOffsetCommitRequest {
            generation_id: -1,
            member_id: String::new(),
            ..req
        };
        for v in 0..=2 {
            assert!(outside_group.encode(v, 1, None).is_ok(), "v{v}");
        }
    }

    #[test]
    fn end_txn_encodes_the_outcome() {
        for (committed, byte) in [(true, 1u8), (false, 0u8)] {
            let req = EndTxnRequest {
                transactional_id: "tx".into(),
                producer_id: 9,
                producer_epoch: 4,
                committed,
            };
            for v in END_TXN_VERSIONS {
                let frame = encoded(&req, v);
                let flex = v >= 3;
                let mut end = frame.clone();
                end.advance(frame.len() - 1 - usize::from(flex));
                assert_eq!(end[0], byte, "v{v}");
            }
        }
    }

    #[test]
    fn versions_by_transaction_protocol() {
        // A Kafka 4 broker offers EndTxn and TxnOffsetCommit v0–v5.
        let t = VersionTable::from_ranges(&[(26, 0, 5), (28, 0, 5)]);
        assert_eq!(t.pick(26, &end_txn_versions(true)), Some(5));
        assert_eq!(t.pick(26, &end_txn_versions(false)), Some(4));
        assert_eq!(t.pick(28, &txn_offset_commit_versions(true)), Some(5));
        assert_eq!(t.pick(28, &txn_offset_commit_versions(false)), Some(4));
        // A Kafka 3.x broker cannot speak transaction version 2.
        let t = VersionTable::from_ranges(&[(26, 0, 4), (28, 0, 4)]);
        assert_eq!(t.pick(26, &end_txn_versions(true)), None);
        assert_eq!(t.pick(28, &txn_offset_commit_versions(true)), None);
        assert_eq!(t.pick(26, &end_txn_versions(false)), Some(4));
        // Every range is within what the calls speak.
        for tv2 in [false, true] {
            for (r, all) in [
                (end_txn_versions(tv2), END_TXN_VERSIONS),
                (txn_offset_commit_versions(tv2), TXN_OFFSET_COMMIT_VERSIONS),
            ] {
                assert!(all.contains(r.start()) && all.contains(r.end()));
            }
        }
        assert_eq!(
            *END_TXN_VERSIONS.end(),
            <EndTxnRequest as Call>::VERSIONS.into_inner().1
        );
        assert!(PRODUCE_MAX_VERSION_BEFORE_TV2 <= *crate::produce::PRODUCE_VERSIONS.end());
    }
}
