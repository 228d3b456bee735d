//! The hand-written DescribeProducers response decoder against `kafka-protocol`'s encoder, and against
//! hostile input.

mod support;

use bytes::Bytes;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersResponse, ProducerId, TopicName};
use proptest::prelude::*;
use support::{all_truncations_fail, encode, s, tags, HUGE};
use weir_proto::describe_producers::{decode_describe_producers_response, ProducerState as Decoded};

type Producer = (i64, i32, i32, i64, i32, i64);
type Partition = (i32, i16, Option<String>, Vec<Producer>);

proptest! {
    #[test]
    fn describe_producers_matches_kafka_protocol(
        topics in proptest::collection::vec(("[a-z]{0,10}", proptest::collection::vec(
            (any::<i32>(), any::<i16>(), proptest::option::of("[a-z ]{0,10}"),
             proptest::collection::vec(any::<Producer>(), 0..3)), 0..4)), 0..4),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let mut resp = DescribeProducersResponse::default().with_throttle_time_ms(4).with_topics(
            topics.iter().map(|(n, ps): &(String, Vec<Partition>)| {
                let mut t = TopicResponse::default().with_name(TopicName(s(n))).with_partitions(
                    ps.iter().map(|p| {
                        let mut w = PartitionResponse::default()
                            .with_partition_index(p.0)
                            .with_error_code(p.1)
                            .with_error_message(p.2.as_deref().map(s))
                            .with_active_producers(p.3.iter().map(|a| {
                                let mut st = ProducerState::default()
                                    .with_producer_id(ProducerId(a.0))
                                    .with_producer_epoch(a.1)
                                    .with_last_sequence(a.2)
                                    .with_last_timestamp(a.3)
                                    .with_coordinator_epoch(a.4)
                                    .with_current_txn_start_offset(a.5);
                                st.unknown_tagged_fields = tags(true, &tag);
                                st
                            }).collect());
                        w.unknown_tagged_fields = tags(true, &tag);
                        w
                    }).collect());
                t.unknown_tagged_fields = tags(true, &tag);
                t
            }).collect());
        resp.unknown_tagged_fields = tags(true, &tag);
        let body = encode(&resp, 0);
        let got = decode_describe_producers_response(body.clone(), 0).unwrap();
        prop_assert_eq!(got.len(), topics.len());
        for (g, (n, ps)) in got.iter().zip(&topics) {
            prop_assert_eq!(&g.name, n);
            prop_assert_eq!(g.partitions.len(), ps.len());
            for (gp, p) in g.partitions.iter().zip(ps) {
                prop_assert_eq!((gp.partition, gp.error_code, &gp.error_message), (p.0, p.1, &p.2));
                let want: Vec<Decoded> = p.3.iter().map(|a| Decoded {
                    producer_id: a.0,
                    producer_epoch: a.1,
                    last_sequence: a.2,
                    last_timestamp: a.3,
                    coordinator_epoch: a.4,
                    current_txn_start_offset: a.5,
                }).collect();
                prop_assert_eq!(&gp.active_producers, &want);
            }
        }
        all_truncations_fail(&body, |b| decode_describe_producers_response(b, 0))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_describe_producers_response(Bytes::from(bytes), 0);
    }
}

#[test]
fn huge_counts_are_refused() {
    // Throttle, 2^31 - 1 topics.
    let mut b = vec![0; 4];
    b.extend_from_slice(&HUGE);
    assert!(decode_describe_producers_response(Bytes::from(b), 0).is_err());
    // Throttle, one topic "t", one partition (0, no error, null message), 2^31 - 1 producers.
    let mut b = vec![0, 0, 0, 0, 2, 2, b't', 2, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(&HUGE);
    assert!(decode_describe_producers_response(Bytes::from(b), 0).is_err());
}

#[test]
fn unsupported_versions_are_refused() {
    assert!(decode_describe_producers_response(Bytes::from(vec![0u8; 16]), 1).is_err());
    assert!(decode_describe_producers_response(Bytes::from(vec![0u8; 16]), -1).is_err());
}
