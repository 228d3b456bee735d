//! What the Metadata decoder keeps for topic descriptions — replicas, in-sync and offline replicas, leader epoch,
//! topic id, whether internal, the cluster id — against `kafka-protocol`'s encoder at every version weir speaks,
//! and the bounds on the replica lists.

mod support;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataResponse, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use proptest::prelude::*;
use support::{all_truncations_fail, HUGE};
use weir_proto::metadata::decode_metadata_response;

/// `(index, leader, epoch, replicas, isr, offline)`.
type Partition = (i32, i32, i32, Vec<i32>, Vec<i32>, Vec<i32>);
/// `(name, id, internal, partitions)`.
type Topic = (String, [u8; 16], bool, Vec<Partition>);

/// A topic whose id is `id` (kafka-protocol's UUID type is built by decoding: this crate has no `uuid`).
fn topic_with_id(id: [u8; 16]) -> MetadataResponseTopic {
    let t = MetadataResponseTopic::default().with_name(Some(TopicName(StrBytes::from_static_str("x"))));
    let mut b = BytesMut::new();
    t.encode(&mut b, 12).unwrap();
    // Error code (2), name length (1) and "x" (1), then the id.
    b[4..20].copy_from_slice(&id);
    MetadataResponseTopic::decode(&mut b.freeze(), 12).unwrap()
}

fn ids(v: &[i32]) -> Vec<BrokerId> {
    v.iter().map(|&b| BrokerId(b)).collect()
}

fn encode(version: i16, cluster_id: &Option<String>, topics: &[Topic]) -> Bytes {
    let resp = MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(StrBytes::from_static_str("h"))
            .with_port(9092)])
        .with_cluster_id(if version >= 2 {
            cluster_id.clone().map(StrBytes::from_string)
        } else {
            None
        })
        .with_controller_id(BrokerId(1))
        .with_topics(
            topics
                .iter()
                .map(|(name, id, internal, parts)| {
                    MetadataResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                        .with_topic_id(topic_with_id(if version >= 10 { *id } else { [0; 16] }).topic_id)
                        .with_is_internal(*internal)
                        .with_partitions(
                            parts
                                .iter()
                                .map(|(idx, leader, epoch, replicas, isr, offline)| {
                                    MetadataResponsePartition::default()
                                        .with_partition_index(*idx)
                                        .with_leader_id(BrokerId(*leader))
                                        .with_leader_epoch(if version >= 7 { *epoch } else { -1 })
                                        .with_replica_nodes(ids(replicas))
                                        .with_isr_nodes(ids(isr))
                                        .with_offline_replicas(if version >= 5 {
                                            ids(offline)
                                        } else {
                                            vec![]
                                        })
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
    support::encode(&resp, version)
}

fn partition() -> impl Strategy<Value = Partition> {
    let list = || proptest::collection::vec(any::<i32>(), 0..5);
    (0i32..100, -1i32..5, any::<i32>(), list(), list(), list())
}

proptest! {
    #[test]
    fn replicas_isr_offline_ids_and_cluster_id_are_kept(
        version in 1i16..=12,
        cluster_id in proptest::option::of("[A-Za-z0-9_-]{1,22}"),
        topics in proptest::collection::vec(
            ("[a-z._-]{1,20}", any::<[u8; 16]>(), any::<bool>(), proptest::collection::vec(partition(), 0..4)),
            0..4),
    ) {
        let body = encode(version, &cluster_id, &topics);
        let got = decode_metadata_response(body.clone(), version).unwrap();
        prop_assert_eq!(&got.cluster_id, &if version >= 2 { cluster_id.clone() } else { None });
        prop_assert_eq!(got.topics.len(), topics.len());
        for (t, (name, id, internal, parts)) in got.topics.iter().zip(&topics) {
            prop_assert_eq!(t.name.as_deref(), Some(name.as_str()));
            prop_assert_eq!(t.is_internal, *internal);
            prop_assert_eq!(t.topic_id, if version >= 10 { *id } else { [0; 16] });
            prop_assert_eq!(t.partitions.len(), parts.len());
            for (p, (idx, leader, epoch, replicas, isr, offline)) in t.partitions.iter().zip(parts) {
                prop_assert_eq!((p.partition, p.leader_id), (*idx, *leader));
                prop_assert_eq!(p.leader_epoch, if version >= 7 { *epoch } else { -1 });
                prop_assert_eq!(&p.replicas, replicas);
                prop_assert_eq!(&p.isr, isr);
                prop_assert_eq!(&p.offline_replicas, &if version >= 5 { offline.clone() } else { vec![] });
            }
        }
        all_truncations_fail(&body, |b| decode_metadata_response(b, version))?;
    }
}

/// A replica list claiming more ids than the bytes left can hold is refused, at a non-flexible and a flexible
/// version, without reserving anything for it.
#[test]
fn replica_lists_longer_than_the_body_are_refused() {
    // v1: no brokers, controller 1, one topic "t" (no error, not internal) with one partition (no error, index
    // 0, leader 1), then a replica count of i32::MAX with 8 bytes behind it.
    let mut b = Vec::new();
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 1, b't', 0]);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    b.extend_from_slice(&[0; 8]);
    let e = decode_metadata_response(Bytes::from(b), 1).unwrap_err();
    assert!(e.to_string().contains("replica nodes"), "{e}");
    // v12: throttle, no brokers, null cluster id, controller 1, one topic: no error, "t", id, not internal, one
    // partition: no error, index 0, leader 1, epoch 0, then 2^31 - 1 replicas and a few bytes.
    let mut b = Vec::new();
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&[1, 0]);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&[2, 0, 0, 2, b't']);
    b.extend_from_slice(&[7; 16]);
    b.extend_from_slice(&[0, 2, 0, 0]);
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&HUGE);
    b.extend_from_slice(&[0; 12]);
    let e = decode_metadata_response(Bytes::from(b), 12).unwrap_err();
    assert!(e.to_string().contains("replica nodes"), "{e}");
}
