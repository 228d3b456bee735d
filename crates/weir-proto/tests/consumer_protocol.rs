//! The hand-written consumer protocol decoders (member subscriptions and assignments) against `kafka-protocol`'s
//! encoder at every version, and against hostile input.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;
use weir_proto::consumer_protocol::{decode_consumer_assignment, decode_consumer_subscription};

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_owned())
}

/// Version prefix + struct, as the Java client writes member metadata.
fn with_version(version: i16, msg: &impl Encodable, at: i16) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(version);
    msg.encode(&mut b, at).unwrap();
    b.freeze()
}

fn topic_partitions() -> impl Strategy<Value = Vec<(String, Vec<i32>)>> {
    proptest::collection::vec(
        ("[a-z._-]{1,12}", proptest::collection::vec(any::<i32>(), 0..6)),
        0..5,
    )
}

proptest! {
    #[test]
    fn subscription_matches_kafka_protocol(
        version in 0i16..=3,
        topics in proptest::collection::vec("[a-zA-Z0-9._-]{0,20}", 0..6),
        user_data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        owned in topic_partitions(),
        generation in any::<i32>(),
        rack in proptest::option::of("[a-z0-9-]{0,8}"),
    ) {
        let msg = ConsumerProtocolSubscription::default()
            .with_topics(topics.iter().map(|t| s(t)).collect())
            .with_user_data(user_data.clone().map(Bytes::from))
            .with_owned_partitions(owned.iter().map(|(t, ps)| {
                OwnedTopic::default().with_topic(TopicName(s(t))).with_partitions(ps.clone())
            }).collect())
            .with_generation_id(generation)
            .with_rack_id(rack.as_deref().map(s));
        let bytes = with_version(version, &msg, version);
        let got = decode_consumer_subscription(bytes.clone()).unwrap();
        prop_assert_eq!(got.version, version);
        prop_assert_eq!(&got.topics, &topics);
        prop_assert_eq!(got.user_data, user_data.map(Bytes::from));
        prop_assert_eq!(&got.owned, &if version >= 1 { owned } else { Vec::new() });
        prop_assert_eq!(got.generation, if version >= 2 { generation } else { -1 });
        prop_assert_eq!(got.rack, if version >= 3 { rack } else { None });
        // Every cut inside the fields is an error (only the version prefix of an empty topic list and null user
        // data can look complete early, and a cut never does: the fields that follow are missing).
        for cut in 0..bytes.len() {
            prop_assert!(decode_consumer_subscription(bytes.slice(..cut)).is_err());
        }
    }

    #[test]
    fn assignment_matches_kafka_protocol(
        version in 0i16..=3,
        partitions in topic_partitions(),
        user_data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
    ) {
        let msg = ConsumerProtocolAssignment::default()
            .with_assigned_partitions(partitions.iter().map(|(t, ps)| {
                AssignedTopic::default().with_topic(TopicName(s(t))).with_partitions(ps.clone())
            }).collect())
            .with_user_data(user_data.clone().map(Bytes::from));
        let bytes = with_version(version, &msg, version);
        let got = decode_consumer_assignment(bytes.clone()).unwrap();
        prop_assert_eq!(got.version, version);
        prop_assert_eq!(&got.partitions, &partitions);
        prop_assert_eq!(got.user_data, user_data.map(Bytes::from));
        for cut in 1..bytes.len() {
            prop_assert!(decode_consumer_assignment(bytes.slice(..cut)).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
        let _ = decode_consumer_subscription(Bytes::from(bytes.clone()));
        let _ = decode_consumer_assignment(Bytes::from(bytes));
    }
}

#[test]
fn huge_counts_are_refused_without_allocating() {
    for count in [i32::MAX, 1 << 20, 3] {
        let mut b = vec![0, 0];
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(&[0, 1, b'x']); // one short topic where `count` are claimed
        assert!(decode_consumer_subscription(Bytes::from(b.clone())).is_err());
        assert!(decode_consumer_assignment(Bytes::from(b)).is_err());
    }
    // A partition list claiming 2^31-1 entries inside an otherwise sound assignment.
    let mut b = vec![0, 0, 0, 0, 0, 1, 0, 1, b't'];
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_consumer_assignment(Bytes::from(b)).is_err());
}

#[test]
fn versions_beyond_3_are_read_as_3_and_negative_ones_refused() {
    let msg = ConsumerProtocolSubscription::default()
        .with_topics(vec![s("t")])
        .with_generation_id(9)
        .with_rack_id(Some(s("r1")));
    let mut bytes = BytesMut::from(&with_version(7, &msg, 3)[..]);
    bytes.extend_from_slice(&[1, 2, 3]); // a field of version 7 weir does not know
    let got = decode_consumer_subscription(bytes.freeze()).unwrap();
    assert_eq!(
        (got.version, got.topics, got.generation, got.rack),
        (7, vec!["t".to_string()], 9, Some("r1".to_string()))
    );
    assert!(decode_consumer_subscription(with_version(-1, &msg, 3)).is_err());
    assert!(decode_consumer_assignment(Bytes::from_static(&[0xff, 0xff, 0, 0, 0, 0])).is_err());
    assert!(decode_consumer_assignment(Bytes::new())
        .unwrap()
        .partitions
        .is_empty());
}
