//! The hand-written AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit and EndTxn response decoders against
//! `kafka-protocol`'s encoder at every version weir speaks, and against hostile input.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnResponse, AddPartitionsToTxnResponse, EndTxnResponse, ProducerId, TopicName,
    TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;
use weir_proto::txn::{
    decode_add_offsets_to_txn_response, decode_add_partitions_to_txn_response, decode_end_txn_response,
    decode_txn_offset_commit_response, ADD_OFFSETS_TO_TXN_VERSIONS, ADD_PARTITIONS_TO_TXN_VERSIONS,
    END_TXN_VERSIONS, TXN_OFFSET_COMMIT_VERSIONS,
};

fn encode<M: Encodable>(m: &M, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    m.encode(&mut buf, version).unwrap();
    buf.freeze()
}

fn name(x: &str) -> TopicName {
    TopicName(StrBytes::from_string(x.to_owned()))
}

/// An unknown top-level tagged field for flexible versions, to check that tags are skipped.
fn tags(flex: bool, tag: &Option<Vec<u8>>) -> BTreeMap<i32, Bytes> {
    match tag {
        Some(t) if flex => BTreeMap::from([(42, Bytes::from(t.clone()))]),
        _ => BTreeMap::new(),
    }
}

type Topics = Vec<(String, Vec<(i32, i16)>)>;

fn topics() -> impl Strategy<Value = Topics> {
    proptest::collection::vec(
        (
            "[a-z]{1,10}",
            proptest::collection::vec((any::<i32>(), any::<i16>()), 0..4),
        ),
        0..4,
    )
}

fn tag() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8))
}

proptest! {
    #[test]
    fn add_partitions_to_txn_matches_kafka_protocol(
        version in ADD_PARTITIONS_TO_TXN_VERSIONS,
        topics in topics(),
        tag in tag(),
        nested_tag in tag(),
    ) {
        let mut resp = AddPartitionsToTxnResponse::default()
            .with_throttle_time_ms(7)
            .with_results_by_topic_v3_and_below(topics.iter().map(|(n, ps)| {
                let mut t = AddPartitionsToTxnTopicResult::default()
                    .with_name(name(n))
                    .with_results_by_partition(ps.iter().map(|p| AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(p.0)
                        .with_partition_error_code(p.1)).collect());
                t.unknown_tagged_fields = tags(version >= 3, &nested_tag);
                t
            }).collect());
        resp.unknown_tagged_fields = tags(version >= 3, &tag);
        let body = encode(&resp, version);
        let got = decode_add_partitions_to_txn_response(body.clone(), version).unwrap();
        let got: Topics = got.into_iter().map(|t| (t.name, t.partitions)).collect();
        prop_assert_eq!(got, topics);
        for cut in 0..body.len() {
            prop_assert!(decode_add_partitions_to_txn_response(body.slice(..cut), version).is_err());
        }
    }

    #[test]
    fn txn_offset_commit_matches_kafka_protocol(
        version in TXN_OFFSET_COMMIT_VERSIONS,
        topics in topics(),
        tag in tag(),
        nested_tag in tag(),
    ) {
        let flex = version >= 3;
        let mut resp = TxnOffsetCommitResponse::default()
            .with_throttle_time_ms(3)
            .with_topics(topics.iter().map(|(n, ps)| {
                let mut t = TxnOffsetCommitResponseTopic::default()
                    .with_name(name(n))
                    .with_partitions(ps.iter().map(|p| {
                        let mut part = TxnOffsetCommitResponsePartition::default()
                            .with_partition_index(p.0)
                            .with_error_code(p.1);
                        part.unknown_tagged_fields = tags(flex, &nested_tag);
                        part
                    }).collect());
                t.unknown_tagged_fields = tags(flex, &nested_tag);
                t
            }).collect());
        resp.unknown_tagged_fields = tags(flex, &tag);
        let body = encode(&resp, version);
        let got = decode_txn_offset_commit_response(body.clone(), version).unwrap();
        let got: Topics = got.into_iter().map(|t| (t.name, t.partitions)).collect();
        prop_assert_eq!(got, topics);
        for cut in 0..body.len() {
            prop_assert!(decode_txn_offset_commit_response(body.slice(..cut), version).is_err());
        }
    }

    #[test]
    fn add_offsets_to_txn_matches_kafka_protocol(
        version in ADD_OFFSETS_TO_TXN_VERSIONS,
        error_code in any::<i16>(),
        tag in tag(),
    ) {
        let mut resp = AddOffsetsToTxnResponse::default().with_throttle_time_ms(9).with_error_code(error_code);
        resp.unknown_tagged_fields = tags(version >= 3, &tag);
        let body = encode(&resp, version);
        prop_assert_eq!(decode_add_offsets_to_txn_response(body.clone(), version).unwrap(), error_code);
        for cut in 0..body.len() {
            prop_assert!(decode_add_offsets_to_txn_response(body.slice(..cut), version).is_err());
        }
    }

    #[test]
    fn end_txn_matches_kafka_protocol(
        version in END_TXN_VERSIONS,
        error_code in any::<i16>(),
        producer_id in any::<i64>(),
        epoch in any::<i16>(),
        tag in tag(),
    ) {
        let mut resp = EndTxnResponse::default()
            .with_throttle_time_ms(2)
            .with_error_code(error_code);
        if version >= 5 {
            resp = resp.with_producer_id(ProducerId(producer_id)).with_producer_epoch(epoch);
        }
        resp.unknown_tagged_fields = tags(version >= 3, &tag);
        let body = encode(&resp, version);
        let got = decode_end_txn_response(body.clone(), version).unwrap();
        let want = if version >= 5 { (producer_id, epoch) } else { (-1, -1) };
        prop_assert_eq!((got.error_code, got.producer_id, got.producer_epoch), (error_code, want.0, want.1));
        for cut in 0..body.len() {
            prop_assert!(decode_end_txn_response(body.slice(..cut), version).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 0i16..=5, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let b = Bytes::from(bytes);
        let _ = decode_add_partitions_to_txn_response(b.clone(), version.min(3));
        let _ = decode_add_offsets_to_txn_response(b.clone(), version.min(4));
        let _ = decode_txn_offset_commit_response(b.clone(), version);
        let _ = decode_end_txn_response(b, version);
    }
}

#[test]
fn huge_counts_are_refused() {
    // v0 (classic arrays): throttle, then i32::MAX topics.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    let b = Bytes::from(b);
    assert!(decode_add_partitions_to_txn_response(b.clone(), 0).is_err());
    assert!(decode_txn_offset_commit_response(b, 0).is_err());
    // v0: one topic "t" with i32::MAX partitions.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&1i16.to_be_bytes());
    b.push(b't');
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    let b = Bytes::from(b);
    assert!(decode_add_partitions_to_txn_response(b.clone(), 0).is_err());
    assert!(decode_txn_offset_commit_response(b, 0).is_err());
    // v3 (compact arrays): throttle, a compact topic count of 2^31 - 1.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x08]);
    let b = Bytes::from(b);
    assert!(decode_add_partitions_to_txn_response(b.clone(), 3).is_err());
    assert!(decode_txn_offset_commit_response(b, 5).is_err());
    // v3: one topic "t", then a compact partition count of 2^31 - 1.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[2, 2, b't', 0x80, 0x80, 0x80, 0x80, 0x08]);
    let b = Bytes::from(b);
    assert!(decode_add_partitions_to_txn_response(b.clone(), 3).is_err());
    assert!(decode_txn_offset_commit_response(b, 4).is_err());
    // A varint longer than 5 bytes.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[0xff; 6]);
    assert!(decode_txn_offset_commit_response(Bytes::from(b), 3).is_err());
}

#[test]
fn a_huge_tagged_field_is_refused() {
    // EndTxn v5 and AddOffsetsToTxn v4: the fixed fields, then one tag claiming 2^31 bytes.
    let mut b = vec![0u8; 4 + 2 + 8 + 2];
    b.extend_from_slice(&[1, 0, 0x80, 0x80, 0x80, 0x80, 0x08]);
    assert!(decode_end_txn_response(Bytes::from(b), 5).is_err());
    let mut b = vec![0u8; 4 + 2];
    b.extend_from_slice(&[1, 0, 0x80, 0x80, 0x80, 0x80, 0x08]);
    assert!(decode_add_offsets_to_txn_response(Bytes::from(b), 4).is_err());
}

#[test]
fn unsupported_versions_are_refused() {
    let b = Bytes::from(vec![0u8; 32]);
    // AddPartitionsToTxn v4+ is the broker-to-broker form.
    assert!(decode_add_partitions_to_txn_response(b.clone(), 4).is_err());
    assert!(decode_add_partitions_to_txn_response(b.clone(), -1).is_err());
    assert!(decode_add_offsets_to_txn_response(b.clone(), 5).is_err());
    assert!(decode_txn_offset_commit_response(b.clone(), 6).is_err());
    assert!(decode_end_txn_response(b.clone(), 6).is_err());
    assert!(decode_end_txn_response(b, -1).is_err());
}
