//! The hand-written Produce response decoder against `kafka-protocol`'s encoder, and against hostile input.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceResponse, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;
use weir_proto::produce::decode_produce_response;

type Part = (i32, i16, i64, i64, i64, Option<String>, u8);

fn encode(version: i16, throttle: i32, topics: &[(String, Vec<Part>)]) -> Bytes {
    let resp = ProduceResponse::default()
        .with_throttle_time_ms(throttle)
        .with_responses(
            topics
                .iter()
                .map(|(name, parts)| {
                    TopicProduceResponse::default()
                        .with_name(TopicName(StrBytes::from_string(name.clone())))
                        .with_partition_responses(
                            parts
                                .iter()
                                .map(|p| {
                                    let v8 = version >= 8;
                                    PartitionProduceResponse::default()
                                        .with_index(p.0)
                                        .with_error_code(p.1)
                                        .with_base_offset(p.2)
                                        .with_log_append_time_ms(p.3)
                                        .with_log_start_offset(if version >= 5 { p.4 } else { -1 })
                                        .with_error_message(if v8 {
                                            p.5.clone().map(StrBytes::from_string)
                                        } else {
                                            None
                                        })
                                        .with_record_errors(if v8 {
                                            (0..p.6)
                                                .map(|i| {
                                                    BatchIndexAndErrorMessage::default()
                                                        .with_batch_index(i as i32)
                                                        .with_batch_index_error_message(Some(
                                                            StrBytes::from_static_str("bad"),
                                                        ))
                                                })
                                                .collect()
                                        } else {
                                            vec![]
                                        })
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
        version in 3i16..=11,
        throttle in any::<i32>(),
        topics in proptest::collection::vec(("[a-z]{1,10}", proptest::collection::vec(
            (any::<i32>(), any::<i16>(), any::<i64>(), any::<i64>(), any::<i64>(),
             proptest::option::of("[a-z ]{0,20}"), 0u8..3), 0..4)), 0..4),
    ) {
        let body = encode(version, throttle, &topics);
        let got = decode_produce_response(body.clone(), version).unwrap();
        prop_assert_eq!(got.throttle_time_ms, throttle);
        prop_assert_eq!(got.topics.len(), topics.len());
        for (t, (name, parts)) in got.topics.iter().zip(&topics) {
            prop_assert_eq!(&t.name, name);
            prop_assert_eq!(t.partitions.len(), parts.len());
            for (p, w) in t.partitions.iter().zip(parts) {
                prop_assert_eq!((p.partition, p.error_code, p.base_offset, p.log_append_time_ms), (w.0, w.1, w.2, w.3));
                if version >= 5 {
                    prop_assert_eq!(p.log_start_offset, w.4);
                }
                if version >= 8 {
                    prop_assert_eq!(&p.error_message, &w.5);
                }
            }
        }
        for cut in 0..body.len() {
            prop_assert!(decode_produce_response(body.slice(..cut), version).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 3i16..=11, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_produce_response(Bytes::from(bytes), version);
    }
}

#[test]
fn huge_counts_are_refused() {
    let mut b = Vec::new();
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_produce_response(Bytes::from(b), 3).is_err());
}

proptest! {
    /// KIP-951 hints (v10+): each partition's current leader (when it names one at a known epoch) and the
    /// endpoints of the brokers named.
    #[test]
    fn leader_hints_match_kafka_protocol(
        version in 10i16..=11,
        leaders in proptest::collection::vec((-1i32..5, -1i32..1000), 0..5),
        endpoints in proptest::collection::vec(
            (any::<i32>(), "[a-z.]{1,20}", any::<i32>(), proptest::option::of("[a-z]{1,5}")), 0..4),
    ) {
        use kafka_protocol::messages::produce_response::{LeaderIdAndEpoch, NodeEndpoint};
        use kafka_protocol::messages::BrokerId;
        let resp = ProduceResponse::default()
            .with_responses(vec![TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_responses(leaders.iter().enumerate().map(|(i, &(id, epoch))| {
                    PartitionProduceResponse::default()
                        .with_index(i as i32)
                        .with_error_code(6)
                        .with_current_leader(LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(id))
                            .with_leader_epoch(epoch))
                }).collect())])
            .with_node_endpoints(endpoints.iter().map(|(id, host, port, rack)| NodeEndpoint::default()
                .with_node_id(BrokerId(*id))
                .with_host(StrBytes::from_string(host.clone()))
                .with_port(*port)
                .with_rack(rack.clone().map(StrBytes::from_string))).collect());
        let mut buf = BytesMut::new();
        resp.encode(&mut buf, version).unwrap();
        let body = buf.freeze();
        let got = decode_produce_response(body.clone(), version).unwrap();
        let want: Vec<Option<(i32, i32)>> = leaders.iter()
            .map(|&(id, epoch)| (id >= 0 && epoch >= 0).then_some((id, epoch))).collect();
        let have: Vec<Option<(i32, i32)>> = got.topics[0].partitions.iter()
            .map(|p| p.current_leader.map(|l| (l.leader_id, l.leader_epoch))).collect();
        prop_assert_eq!(have, want);
        let want: Vec<(i32, String, i32)> = endpoints.iter().map(|(id, h, p, _)| (*id, h.clone(), *p)).collect();
        let have: Vec<(i32, String, i32)> = got.node_endpoints.iter()
            .map(|e| (e.node_id, e.host.clone(), e.port)).collect();
        prop_assert_eq!(have, want);
        for cut in 0..body.len() {
            prop_assert!(decode_produce_response(body.slice(..cut), version).is_err());
        }
    }
}
