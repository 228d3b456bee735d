//! The hand-written group administration response decoders (ListGroups, DescribeGroups, DeleteGroups,
//! ConsumerGroupDescribe, OffsetDelete) against `kafka-protocol`'s encoder at every version weir speaks, and
//! against hostile input.

mod support;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup as WireConsumerGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup as WireGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup as WireListed;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeResponse, DeleteGroupsResponse, DescribeGroupsResponse, GroupId, ListGroupsResponse,
    OffsetDeleteResponse, TopicName,
};
use kafka_protocol::protocol::Decodable;
use proptest::prelude::*;
use support::{all_truncations_fail, encode, s, tags, HUGE};
use weir_proto::group_admin::{
    decode_consumer_group_describe_response, decode_delete_groups_response, decode_describe_groups_response,
    decode_list_groups_response, decode_offset_delete_response, AssignedTopic, ListedGroup,
};

fn gid(x: &str) -> GroupId {
    GroupId(s(x))
}

fn topic(x: &str) -> TopicName {
    TopicName(s(x))
}

/// `t` with topic id `id` (kafka-protocol's UUID type is set from a decoded struct: the only public way in
/// without depending on the `uuid` crate).
fn with_topic_id(mut t: TopicPartitions, id: [u8; 16]) -> TopicPartitions {
    let mut b = BytesMut::new();
    b.extend_from_slice(&id);
    b.extend_from_slice(&[1, 1, 0]); // empty name, no partitions, no tags
    t.topic_id = TopicPartitions::decode(&mut b.freeze(), 0).unwrap().topic_id;
    t
}

type Listed = (String, String, String, String);

proptest! {
    #[test]
    fn list_groups_matches_kafka_protocol(
        version in 0i16..=5,
        error_code in any::<i16>(),
        groups in proptest::collection::vec(("[a-z-]{0,10}", "[a-z]{0,8}", "[A-Za-z]{0,12}", "[a-z]{0,8}"), 0..5),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let flex = version >= 3;
        let mut resp = ListGroupsResponse::default()
            .with_throttle_time_ms(if version >= 1 { 9 } else { 0 })
            .with_error_code(error_code)
            .with_groups(groups.iter().map(|g: &Listed| {
                let mut w = WireListed::default().with_group_id(gid(&g.0)).with_protocol_type(s(&g.1));
                if version >= 4 {
                    w = w.with_group_state(s(&g.2));
                }
                if version >= 5 {
                    w = w.with_group_type(s(&g.3));
                }
                w.unknown_tagged_fields = tags(flex, &tag);
                w
            }).collect());
        resp.unknown_tagged_fields = tags(flex, &tag);
        let body = encode(&resp, version);
        let got = decode_list_groups_response(body.clone(), version).unwrap();
        prop_assert_eq!(got.error_code, error_code);
        let want: Vec<ListedGroup> = groups.iter().map(|g| ListedGroup {
            group_id: g.0.clone(),
            protocol_type: g.1.clone(),
            group_state: (version >= 4).then(|| g.2.clone()),
            group_type: (version >= 5).then(|| g.3.clone()),
        }).collect();
        prop_assert_eq!(got.groups, want);
        all_truncations_fail(&body, |b| decode_list_groups_response(b, version))?;
    }

    #[test]
    fn describe_groups_matches_kafka_protocol(
        version in 0i16..=6,
        groups in proptest::collection::vec((
            any::<i16>(), proptest::option::of("[a-z ]{0,10}"), "[a-z-]{0,10}", "[A-Za-z]{0,12}", "[a-z]{0,8}",
            "[a-z]{0,8}", any::<i32>(),
            proptest::collection::vec((
                "[a-z0-9-]{0,12}", proptest::option::of("[a-z]{0,6}"), "[a-z-]{0,8}", "[/0-9.]{0,10}",
                proptest::collection::vec(any::<u8>(), 0..12), proptest::collection::vec(any::<u8>(), 0..12),
            ), 0..4),
        ), 0..4),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let flex = version >= 5;
        let mut resp = DescribeGroupsResponse::default()
            .with_throttle_time_ms(if version >= 1 { 3 } else { 0 })
            .with_groups(groups.iter().map(|g| {
                let mut w = WireGroup::default()
                    .with_error_code(g.0)
                    .with_error_message(if version >= 6 { g.1.as_deref().map(s) } else { None })
                    .with_group_id(gid(&g.2))
                    .with_group_state(s(&g.3))
                    .with_protocol_type(s(&g.4))
                    .with_protocol_data(s(&g.5))
                    .with_authorized_operations(if version >= 3 { g.6 } else { i32::MIN })
                    .with_members(g.7.iter().map(|m| {
                        let mut wm = DescribedGroupMember::default()
                            .with_member_id(s(&m.0))
                            .with_group_instance_id(if version >= 4 { m.1.as_deref().map(s) } else { None })
                            .with_client_id(s(&m.2))
                            .with_client_host(s(&m.3))
                            .with_member_metadata(Bytes::from(m.4.clone()))
                            .with_member_assignment(Bytes::from(m.5.clone()));
                        wm.unknown_tagged_fields = tags(flex, &tag);
                        wm
                    }).collect());
                w.unknown_tagged_fields = tags(flex, &tag);
                w
            }).collect());
        resp.unknown_tagged_fields = tags(flex, &tag);
        let body = encode(&resp, version);
        let got = decode_describe_groups_response(body.clone(), version).unwrap();
        prop_assert_eq!(got.len(), groups.len());
        for (d, g) in got.iter().zip(&groups) {
            prop_assert_eq!(d.error_code, g.0);
            prop_assert_eq!(&d.error_message, &if version >= 6 { g.1.clone() } else { None });
            prop_assert_eq!((&d.group_id, &d.group_state, &d.protocol_type, &d.protocol_data), (&g.2, &g.3, &g.4, &g.5));
            prop_assert_eq!(d.authorized_operations, if version >= 3 { g.6 } else { i32::MIN });
            prop_assert_eq!(d.members.len(), g.7.len());
            for (dm, m) in d.members.iter().zip(&g.7) {
                prop_assert_eq!(&dm.member_id, &m.0);
                prop_assert_eq!(&dm.group_instance_id, &if version >= 4 { m.1.clone() } else { None });
                prop_assert_eq!((&dm.client_id, &dm.client_host), (&m.2, &m.3));
                prop_assert_eq!(&dm.member_metadata[..], &m.4[..]);
                prop_assert_eq!(&dm.member_assignment[..], &m.5[..]);
            }
        }
        all_truncations_fail(&body, |b| decode_describe_groups_response(b, version))?;
    }

    #[test]
    fn delete_groups_matches_kafka_protocol(
        version in 0i16..=2,
        results in proptest::collection::vec(("[a-z-]{0,10}", any::<i16>()), 0..5),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let flex = version >= 2;
        let mut resp = DeleteGroupsResponse::default().with_throttle_time_ms(1).with_results(
            results.iter().map(|(g, c)| {
                let mut r = DeletableGroupResult::default().with_group_id(gid(g)).with_error_code(*c);
                r.unknown_tagged_fields = tags(flex, &tag);
                r
            }).collect());
        resp.unknown_tagged_fields = tags(flex, &tag);
        let body = encode(&resp, version);
        let got: Vec<(String, i16)> = decode_delete_groups_response(body.clone(), version)
            .unwrap()
            .into_iter()
            .map(|d| (d.group_id, d.error_code))
            .collect();
        prop_assert_eq!(got, results);
        all_truncations_fail(&body, |b| decode_delete_groups_response(b, version))?;
    }

    #[test]
    fn consumer_group_describe_matches_kafka_protocol(
        version in 0i16..=1,
        groups in proptest::collection::vec((
            any::<i16>(), proptest::option::of("[a-z ]{0,10}"), "[a-z-]{0,10}", "[A-Za-z]{0,12}", any::<i32>(),
            any::<i32>(), "[a-z]{0,8}", any::<i32>(),
            proptest::collection::vec((
                "[a-zA-Z0-9]{0,12}", proptest::option::of("[a-z]{0,6}"), proptest::option::of("[a-z]{0,4}"),
                any::<i32>(), "[a-z-]{0,8}", "[/0-9.]{0,10}", proptest::collection::vec("[a-z]{0,6}", 0..3),
                proptest::option::of("[a-z.*]{0,6}"),
                proptest::collection::vec((any::<[u8; 16]>(), "[a-z]{0,6}", proptest::collection::vec(any::<i32>(), 0..4)), 0..3),
                proptest::collection::vec((any::<[u8; 16]>(), "[a-z]{0,6}", proptest::collection::vec(any::<i32>(), 0..4)), 0..3),
                any::<i8>(),
            ), 0..3),
        ), 0..3),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        type Topics = Vec<([u8; 16], String, Vec<i32>)>;
        let wire_assignment = |ts: &Topics| {
            let mut a = Assignment::default().with_topic_partitions(ts.iter().map(|(id, n, ps)| {
                let mut t = with_topic_id(
                    TopicPartitions::default().with_topic_name(topic(n)).with_partitions(ps.clone()),
                    *id,
                );
                t.unknown_tagged_fields = tags(true, &tag);
                t
            }).collect());
            a.unknown_tagged_fields = tags(true, &tag);
            a
        };
        let mut resp = ConsumerGroupDescribeResponse::default().with_throttle_time_ms(2).with_groups(
            groups.iter().map(|g| {
                let mut w = WireConsumerGroup::default()
                    .with_error_code(g.0)
                    .with_error_message(g.1.as_deref().map(s))
                    .with_group_id(gid(&g.2))
                    .with_group_state(s(&g.3))
                    .with_group_epoch(g.4)
                    .with_assignment_epoch(g.5)
                    .with_assignor_name(s(&g.6))
                    .with_authorized_operations(g.7)
                    .with_members(g.8.iter().map(|m| {
                        let mut wm = Member::default()
                            .with_member_id(s(&m.0))
                            .with_instance_id(m.1.as_deref().map(s))
                            .with_rack_id(m.2.as_deref().map(s))
                            .with_member_epoch(m.3)
                            .with_client_id(s(&m.4))
                            .with_client_host(s(&m.5))
                            .with_subscribed_topic_names(m.6.iter().map(|t| topic(t)).collect())
                            .with_subscribed_topic_regex(m.7.as_deref().map(s))
                            .with_assignment(wire_assignment(&m.8))
                            .with_target_assignment(wire_assignment(&m.9))
                            .with_member_type(if version >= 1 { m.10 } else { -1 });
                        wm.unknown_tagged_fields = tags(true, &tag);
                        wm
                    }).collect());
                w.unknown_tagged_fields = tags(true, &tag);
                w
            }).collect());
        resp.unknown_tagged_fields = tags(true, &tag);
        let body = encode(&resp, version);
        let got = decode_consumer_group_describe_response(body.clone(), version).unwrap();
        let assigned = |ts: &Topics| -> Vec<AssignedTopic> {
            ts.iter().map(|(id, n, ps)| AssignedTopic { topic_id: *id, topic_name: n.clone(), partitions: ps.clone() }).collect()
        };
        prop_assert_eq!(got.len(), groups.len());
        for (d, g) in got.iter().zip(&groups) {
            prop_assert_eq!((d.error_code, &d.error_message, &d.group_id, &d.group_state), (g.0, &g.1, &g.2, &g.3));
            prop_assert_eq!((d.group_epoch, d.assignment_epoch, &d.assignor_name, d.authorized_operations), (g.4, g.5, &g.6, g.7));
            prop_assert_eq!(d.members.len(), g.8.len());
            for (dm, m) in d.members.iter().zip(&g.8) {
                prop_assert_eq!((&dm.member_id, &dm.instance_id, &dm.rack_id, dm.member_epoch), (&m.0, &m.1, &m.2, m.3));
                prop_assert_eq!((&dm.client_id, &dm.client_host), (&m.4, &m.5));
                prop_assert_eq!((&dm.subscribed_topic_names, &dm.subscribed_topic_regex), (&m.6, &m.7));
                prop_assert_eq!(&dm.assignment, &assigned(&m.8));
                prop_assert_eq!(&dm.target_assignment, &assigned(&m.9));
                prop_assert_eq!(dm.member_type, if version >= 1 { m.10 } else { -1 });
            }
        }
        all_truncations_fail(&body, |b| decode_consumer_group_describe_response(b, version))?;
    }

    #[test]
    fn offset_delete_matches_kafka_protocol(
        error_code in any::<i16>(),
        topics in proptest::collection::vec(
            ("[a-z]{1,10}", proptest::collection::vec((any::<i32>(), any::<i16>()), 0..4)), 0..4),
    ) {
        let resp = OffsetDeleteResponse::default()
            .with_error_code(error_code)
            .with_throttle_time_ms(7)
            .with_topics(topics.iter().map(|(n, ps)| OffsetDeleteResponseTopic::default()
                .with_name(topic(n))
                .with_partitions(ps.iter().map(|&(p, c)| OffsetDeleteResponsePartition::default()
                    .with_partition_index(p)
                    .with_error_code(c)).collect())).collect());
        let body = encode(&resp, 0);
        let got = decode_offset_delete_response(body.clone(), 0).unwrap();
        prop_assert_eq!(got.error_code, error_code);
        let got: Vec<(String, Vec<(i32, i16)>)> = got.topics.into_iter().map(|t| (t.name, t.partitions)).collect();
        prop_assert_eq!(got, topics);
        all_truncations_fail(&body, |b| decode_offset_delete_response(b, 0))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 0i16..=6, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let b = Bytes::from(bytes);
        let _ = decode_list_groups_response(b.clone(), version.min(5));
        let _ = decode_describe_groups_response(b.clone(), version);
        let _ = decode_delete_groups_response(b.clone(), version.min(2));
        let _ = decode_consumer_group_describe_response(b.clone(), version.min(1));
        let _ = decode_offset_delete_response(b, 0);
    }
}

#[test]
fn huge_counts_are_refused() {
    // ListGroups v0: no error, i32::MAX groups.
    let mut b = 0i16.to_be_bytes().to_vec();
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_list_groups_response(Bytes::from(b), 0).is_err());
    // ListGroups v5: throttle, no error, 2^31 - 1 groups.
    let mut b = vec![0; 6];
    b.extend_from_slice(&HUGE);
    assert!(decode_list_groups_response(Bytes::from(b), 5).is_err());
    // DescribeGroups v5: throttle, one group (error 0, id "g", state, type, data), 2^31 - 1 members.
    let mut b = vec![0, 0, 0, 0, 2, 0, 0, 2, b'g', 1, 1, 1];
    b.extend_from_slice(&HUGE);
    assert!(decode_describe_groups_response(Bytes::from(b), 5).is_err());
    // DescribeGroups v0: one group, one member whose assignment claims i32::MAX bytes.
    let mut b = 1i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[0, 0, 0, 1, b'g', 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&[0, 1, b'm', 0, 1, b'c', 0, 1, b'h']);
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_describe_groups_response(Bytes::from(b), 0).is_err());
    // DeleteGroups v2, ConsumerGroupDescribe v1: throttle, 2^31 - 1 results.
    let mut b = vec![0; 4];
    b.extend_from_slice(&HUGE);
    assert!(decode_delete_groups_response(Bytes::from(b.clone()), 2).is_err());
    assert!(decode_consumer_group_describe_response(Bytes::from(b), 1).is_err());
    // OffsetDelete: no error, throttle, i32::MAX topics.
    let mut b = vec![0; 6];
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_offset_delete_response(Bytes::from(b), 0).is_err());
}

#[test]
fn unsupported_versions_are_refused() {
    let body = || Bytes::from(vec![0u8; 32]);
    assert!(decode_list_groups_response(body(), 6).is_err());
    assert!(decode_describe_groups_response(body(), 7).is_err());
    assert!(decode_delete_groups_response(body(), 3).is_err());
    assert!(decode_consumer_group_describe_response(body(), 2).is_err());
    assert!(decode_offset_delete_response(body(), 1).is_err());
    assert!(decode_list_groups_response(body(), -1).is_err());
}
