//! The hand-written Metadata response decoder against `kafka-protocol`'s encoder, and against hostile input.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataResponse, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;
use weir_proto::metadata::decode_metadata_response;

type Topic = (i16, String, bool, Vec<(i16, i32, i32, i32, Vec<i32>)>);

fn encode(version: i16, brokers: &[(i32, String, i32)], controller: i32, topics: &[Topic]) -> Bytes {
    let resp = MetadataResponse::default()
        .with_brokers(
            brokers
                .iter()
                .map(|(id, host, port)| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(*id))
                        .with_host(StrBytes::from_string(host.clone()))
                        .with_port(*port)
                        .with_rack(Some(StrBytes::from_static_str("r1")))
                })
                .collect(),
        )
        .with_cluster_id(if version >= 2 {
            Some(StrBytes::from_static_str("c"))
        } else {
            None
        })
        .with_controller_id(BrokerId(controller))
        .with_topics(
            topics
                .iter()
                .map(|(err, name, internal, parts)| {
                    MetadataResponseTopic::default()
                        .with_error_code(*err)
                        .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                        .with_is_internal(*internal)
                        .with_partitions(
                            parts
                                .iter()
                                .map(|(e, idx, leader, epoch, replicas)| {
                                    MetadataResponsePartition::default()
                                        .with_error_code(*e)
                                        .with_partition_index(*idx)
                                        .with_leader_id(BrokerId(*leader))
                                        .with_leader_epoch(if version >= 7 { *epoch } else { -1 })
                                        .with_replica_nodes(replicas.iter().map(|&r| BrokerId(r)).collect())
                                        .with_isr_nodes(replicas.iter().map(|&r| BrokerId(r)).collect())
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

fn topic() -> impl Strategy<Value = Topic> {
    (
        any::<i16>(),
        "[a-z._-]{1,20}",
        any::<bool>(),
        proptest::collection::vec(
            (
                any::<i16>(),
                0i32..100,
                -1i32..5,
                any::<i32>(),
                proptest::collection::vec(0i32..5, 0..4),
            ),
            0..5,
        ),
    )
}

proptest! {
    #[test]
    fn matches_kafka_protocol(
        version in 1i16..=12,
        brokers in proptest::collection::vec((any::<i32>(), "[a-z0-9.]{1,30}", 1i32..65536), 0..4),
        controller in any::<i32>(),
        topics in proptest::collection::vec(topic(), 0..5),
    ) {
        let body = encode(version, &brokers, controller, &topics);
        let got = decode_metadata_response(body.clone(), version).unwrap();
        prop_assert_eq!(&got.brokers, &brokers);
        prop_assert_eq!(got.controller_id, controller);
        prop_assert_eq!(got.topics.len(), topics.len());
        for (t, (err, name, internal, parts)) in got.topics.iter().zip(&topics) {
            prop_assert_eq!((t.error_code, t.name.as_deref(), t.is_internal), (*err, Some(name.as_str()), *internal));
            prop_assert_eq!(t.partitions.len(), parts.len());
            for (p, (e, idx, leader, epoch, _)) in t.partitions.iter().zip(parts) {
                prop_assert_eq!((p.error_code, p.partition, p.leader_id), (*e, *idx, *leader));
                if version >= 7 {
                    prop_assert_eq!(p.leader_epoch, *epoch);
                }
            }
        }
        for cut in 0..body.len() {
            prop_assert!(decode_metadata_response(body.slice(..cut), version).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 1i16..=12, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_metadata_response(Bytes::from(bytes), version);
    }
}

#[test]
fn a_topic_claiming_i32_max_partitions_is_refused_without_allocating() {
    // v1: no brokers, controller 1, one topic "t" with a partition count of i32::MAX and nothing behind it.
    let mut b = Vec::new();
    b.extend_from_slice(&0i32.to_be_bytes()); // brokers
    b.extend_from_slice(&1i32.to_be_bytes()); // controller
    b.extend_from_slice(&1i32.to_be_bytes()); // topics
    b.extend_from_slice(&0i16.to_be_bytes()); // error
    b.extend_from_slice(&1i16.to_be_bytes());
    b.push(b't');
    b.push(0); // internal
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_metadata_response(Bytes::from(b), 1).is_err());
}
