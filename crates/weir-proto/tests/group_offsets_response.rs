//! The hand-written OffsetCommit and OffsetFetch response decoders against `kafka-protocol`'s encoder at every
//! version weir speaks, and against hostile input.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitResponse, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;
use weir_proto::group_offsets::{decode_offset_commit_response, decode_offset_fetch_response};

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

type FetchPart = (i32, i64, i32, Option<String>, i16);
type Flat = (String, Vec<(i32, i64, Option<i32>, i16)>);

proptest! {
    #[test]
    fn offset_commit_matches_kafka_protocol(
        version in 2i16..=8,
        topics in proptest::collection::vec(
            ("[a-z]{1,10}", proptest::collection::vec((any::<i32>(), any::<i16>()), 0..4)), 0..4),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let mut resp = OffsetCommitResponse::default().with_throttle_time_ms(5).with_topics(
            topics.iter().map(|(n, ps)| OffsetCommitResponseTopic::default()
                .with_name(name(n))
                .with_partitions(ps.iter().map(|p| OffsetCommitResponsePartition::default()
                    .with_partition_index(p.0)
                    .with_error_code(p.1)).collect())).collect());
        resp.unknown_tagged_fields = tags(version >= 8, &tag);
        let body = encode(&resp, version);
        let got = decode_offset_commit_response(body.clone(), version).unwrap();
        let got: Vec<(String, Vec<(i32, i16)>)> = got.into_iter().map(|t| (t.name, t.partitions)).collect();
        prop_assert_eq!(got, topics);
        for cut in 0..body.len() {
            prop_assert!(decode_offset_commit_response(body.slice(..cut), version).is_err());
        }
    }

    #[test]
    fn offset_fetch_matches_kafka_protocol(
        version in 1i16..=7,
        error_code in any::<i16>(),
        topics in proptest::collection::vec(("[a-z]{1,10}", proptest::collection::vec(
            (any::<i32>(), any::<i64>(), any::<i32>(), proptest::option::of("[a-z]{0,8}"), any::<i16>()), 0..4)),
            0..4),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let mut resp = OffsetFetchResponse::default()
            .with_throttle_time_ms(4)
            .with_error_code(if version >= 2 { error_code } else { 0 })
            .with_topics(topics.iter().map(|(n, ps): &(String, Vec<FetchPart>)| OffsetFetchResponseTopic::default()
                .with_name(name(n))
                .with_partitions(ps.iter().map(|p| OffsetFetchResponsePartition::default()
                    .with_partition_index(p.0)
                    .with_committed_offset(p.1)
                    .with_committed_leader_epoch(if version >= 5 { p.2 } else { -1 })
                    .with_metadata(p.3.as_deref().map(|m| StrBytes::from_string(m.to_owned())))
                    .with_error_code(p.4)).collect())).collect());
        resp.unknown_tagged_fields = tags(version >= 6, &tag);
        let body = encode(&resp, version);
        let got = decode_offset_fetch_response(body.clone(), version).unwrap();
        prop_assert_eq!(got.error_code, if version >= 2 { error_code } else { 0 });
        let got: Vec<Flat> = got.topics.into_iter()
            .map(|t| (t.name, t.partitions.iter()
                .map(|p| (p.partition, p.committed_offset, p.committed_leader_epoch, p.error_code)).collect()))
            .collect();
        // The epoch from v5 on, a negative one (-1: not known) read as none.
        let want: Vec<Flat> = topics.iter()
            .map(|(n, ps)| (n.clone(), ps.iter()
                .map(|p| (p.0, p.1, Some(p.2).filter(|&e| version >= 5 && e >= 0), p.4)).collect()))
            .collect();
        prop_assert_eq!(got, want);
        for cut in 0..body.len() {
            prop_assert!(decode_offset_fetch_response(body.slice(..cut), version).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 1i16..=8, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let b = Bytes::from(bytes);
        let _ = decode_offset_commit_response(b.clone(), version.max(2));
        let _ = decode_offset_fetch_response(b, version.min(7));
    }
}

#[test]
fn huge_counts_are_refused() {
    // OffsetCommit v2: i32::MAX topics.
    let b = i32::MAX.to_be_bytes().to_vec();
    assert!(decode_offset_commit_response(Bytes::from(b), 2).is_err());
    // OffsetCommit v8: throttle, one topic "t", then a compact partition count of 2^31 - 1.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[2, 2, b't', 0x80, 0x80, 0x80, 0x80, 0x08]);
    assert!(decode_offset_commit_response(Bytes::from(b), 8).is_err());
    // OffsetFetch v1: one topic "t" with i32::MAX partitions.
    let mut b = 1i32.to_be_bytes().to_vec();
    b.extend_from_slice(&1i16.to_be_bytes());
    b.push(b't');
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_offset_fetch_response(Bytes::from(b), 1).is_err());
}

#[test]
fn unsupported_versions_are_refused() {
    assert!(decode_offset_commit_response(Bytes::new(), 1).is_err());
    assert!(decode_offset_commit_response(Bytes::new(), 9).is_err());
    assert!(decode_offset_fetch_response(Bytes::new(), 0).is_err());
    assert!(decode_offset_fetch_response(Bytes::new(), 8).is_err());
}
