//! The hand-written Fetch response decoder against `kafka-protocol`'s encoder (independent implementation), and
//! against arbitrary bytes.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;
use weir_proto::fetch::decode_fetch_response;

type Part = (
    i32,
    i16,
    i64,
    i64,
    i64,
    Option<Vec<(i64, i64)>>,
    i32,
    Option<Vec<u8>>,
);

fn part() -> impl Strategy<Value = Part> {
    (
        any::<i32>(),
        any::<i16>(),
        any::<i64>(),
        any::<i64>(),
        any::<i64>(),
        proptest::option::of(proptest::collection::vec((any::<i64>(), any::<i64>()), 0..3)),
        any::<i32>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
    )
}

fn encode(version: i16, throttle: i32, error: i16, session: i32, topics: &[(String, Vec<Part>)]) -> Bytes {
    let resp = FetchResponse::default()
        .with_throttle_time_ms(throttle)
        .with_error_code(if version >= 7 { error } else { 0 })
        .with_session_id(if version >= 7 { session } else { 0 })
        .with_responses(
            topics
                .iter()
                .map(|(name, parts)| {
                    FetchableTopicResponse::default()
                        .with_topic(TopicName(StrBytes::from_string(name.clone())))
                        .with_partitions(
                            parts
                                .iter()
                                .map(|p| {
                                    PartitionData::default()
                                        .with_partition_index(p.0)
                                        .with_error_code(p.1)
                                        .with_high_watermark(p.2)
                                        .with_last_stable_offset(p.3)
                                        .with_log_start_offset(if version >= 5 { p.4 } else { -1 })
                                        .with_aborted_transactions(p.5.as_ref().map(|v| {
                                            v.iter()
                                                .map(|&(pid, off)| {
                                                    AbortedTransaction::default()
                                                        .with_producer_id(ProducerId(pid))
                                                        .with_first_offset(off)
                                                })
                                                .collect()
                                        }))
                                        .with_preferred_read_replica(BrokerId(if version >= 11 {
                                            p.6
                                        } else {
                                            -1
                                        }))
                                        .with_records(p.7.clone().map(Bytes::from))
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    let mut buf = BytesMut::new();
    resp.encode(&mut buf, version).unwrap();
    buf.freeze()
}

proptest! {
    #[test]
    fn matches_kafka_protocol(
        version in 4i16..=11,
        throttle in any::<i32>(),
        error in any::<i16>(),
        session in any::<i32>(),
        topics in proptest::collection::vec(("[a-z]{1,12}", proptest::collection::vec(part(), 0..4)), 0..4),
    ) {
        let body = encode(version, throttle, error, session, &topics);
        let got = decode_fetch_response(body.clone(), version).unwrap();
        prop_assert_eq!(got.throttle_time_ms, throttle);
        if version >= 7 {
            prop_assert_eq!((got.error_code, got.session_id), (error, session));
        }
        prop_assert_eq!(got.topics.len(), topics.len());
        for (t, (name, parts)) in got.topics.iter().zip(&topics) {
            prop_assert_eq!(&t.name, name);
            prop_assert_eq!(t.partitions.len(), parts.len());
            for (p, want) in t.partitions.iter().zip(parts) {
                prop_assert_eq!((p.partition, p.error_code, p.high_watermark, p.last_stable_offset),
                    (want.0, want.1, want.2, want.3));
                if version >= 5 {
                    prop_assert_eq!(p.log_start_offset, want.4);
                }
                if version >= 11 {
                    prop_assert_eq!(p.preferred_read_replica, want.6);
                }
                prop_assert_eq!(&p.aborted_transactions, &want.5.clone().unwrap_or_default());
                prop_assert_eq!(p.records.as_deref(), want.7.as_deref());
            }
        }
        // Every truncation is an error, never a panic.
        for cut in 0..body.len() {
            let r = decode_fetch_response(body.slice(..cut), version);
            prop_assert!(r.is_err() || cut == body.len());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 4i16..=11, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_fetch_response(Bytes::from(bytes), version);
    }
}

#[test]
fn huge_counts_are_refused_before_allocating() {
    // throttle, error, session, then a topic count of i32::MAX with nothing behind it.
    let mut b = vec![0u8; 10];
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_fetch_response(Bytes::from(b), 11).is_err());
    // One topic "t" claiming i32::MAX partitions.
    let mut b = vec![0u8; 10];
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&1i16.to_be_bytes());
    b.push(b't');
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_fetch_response(Bytes::from(b), 11).is_err());
}
