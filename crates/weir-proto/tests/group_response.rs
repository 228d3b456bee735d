//! The hand-written group membership response decoders (FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup) against `kafka-protocol`'s encoder at every version weir speaks, and against hostile input.

mod support;

use bytes::Bytes;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorResponse, HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse,
    SyncGroupResponse,
};
use proptest::prelude::*;
use support::{all_truncations_fail, encode, s, tags, HUGE};
use weir_proto::group::{
    decode_find_coordinator_response, decode_heartbeat_response, decode_join_group_response,
    decode_leave_group_response, decode_sync_group_response,
};

type Coord = (i16, i32, String, i32, Option<String>);

proptest! {
    #[test]
    fn find_coordinator_matches_kafka_protocol(
        version in 0i16..=4,
        single in (any::<i16>(), any::<i32>(), "[a-z.]{0,12}", any::<i32>(), proptest::option::of("[a-z ]{0,12}")),
        many in proptest::collection::vec(
            (any::<i16>(), any::<i32>(), "[a-z.]{0,12}", any::<i32>(), proptest::option::of("[a-z ]{0,12}")), 0..4),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let mut resp = FindCoordinatorResponse::default().with_throttle_time_ms(7);
        let want: Vec<Coord> = if version >= 4 {
            resp = resp.with_coordinators(many.iter().map(|c| Coordinator::default()
                .with_key(s("g"))
                .with_error_code(c.0)
                .with_node_id(BrokerId(c.1))
                .with_host(s(&c.2))
                .with_port(c.3)
                .with_error_message(c.4.as_deref().map(s))).collect());
            many.clone()
        } else {
            resp = resp
                .with_error_code(single.0)
                .with_node_id(BrokerId(single.1))
                .with_host(s(&single.2))
                .with_port(single.3)
                .with_error_message(if version >= 1 { single.4.as_deref().map(s) } else { None });
            vec![single.clone()]
        };
        resp.unknown_tagged_fields = tags(version >= 3, &tag);
        let body = encode(&resp, version);
        let got = decode_find_coordinator_response(body.clone(), version).unwrap();
        let got: Vec<(i16, i32, String, i32)> =
            got.into_iter().map(|c| (c.error_code, c.node_id, c.host, c.port)).collect();
        let want: Vec<(i16, i32, String, i32)> =
            want.into_iter().map(|c| (c.0, c.1, c.2, c.3)).collect();
        prop_assert_eq!(got, want);
        all_truncations_fail(&body, |b| decode_find_coordinator_response(b, version))?;
    }

    #[test]
    fn join_group_matches_kafka_protocol(
        version in 0i16..=9,
        error_code in any::<i16>(),
        generation in any::<i32>(),
        protocol_type in proptest::option::of("[a-z]{0,8}"),
        protocol_name in proptest::option::of("[a-z-]{0,12}"),
        leader in "[a-z0-9-]{0,12}",
        skip in any::<bool>(),
        member_id in "[a-z0-9-]{0,12}",
        members in proptest::collection::vec(
            ("[a-z0-9-]{0,12}", proptest::option::of("[a-z]{0,6}"), proptest::collection::vec(any::<u8>(), 0..16)),
            0..4),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        // Before v6 the protocol name is not nullable on the wire; kafka-protocol writes null anyway.
        let protocol_name = if version < 6 { Some(protocol_name.unwrap_or_default()) } else { protocol_name };
        let mut resp = JoinGroupResponse::default()
            .with_throttle_time_ms(3)
            .with_error_code(error_code)
            .with_generation_id(generation)
            .with_protocol_type(if version >= 7 { protocol_type.as_deref().map(s) } else { None })
            .with_protocol_name(protocol_name.as_deref().map(s))
            .with_leader(s(&leader))
            .with_skip_assignment(version >= 9 && skip)
            .with_member_id(s(&member_id))
            .with_members(members.iter().map(|m| JoinGroupResponseMember::default()
                .with_member_id(s(&m.0))
                .with_group_instance_id(if version >= 5 { m.1.as_deref().map(s) } else { None })
                .with_metadata(Bytes::from(m.2.clone()))).collect());
        resp.unknown_tagged_fields = tags(version >= 6, &tag);
        let body = encode(&resp, version);
        let got = decode_join_group_response(body.clone(), version).unwrap();
        prop_assert_eq!((got.error_code, got.generation_id), (error_code, generation));
        prop_assert_eq!(&got.protocol_name, &protocol_name);
        prop_assert_eq!(&got.leader, &leader);
        prop_assert_eq!(got.skip_assignment, version >= 9 && skip);
        prop_assert_eq!(&got.member_id, &member_id);
        prop_assert_eq!(got.members.len(), members.len());
        for (g, w) in got.members.iter().zip(&members) {
            prop_assert_eq!(&g.member_id, &w.0);
            if version >= 5 {
                prop_assert_eq!(&g.group_instance_id, &w.1);
            } else {
                prop_assert_eq!(&g.group_instance_id, &None);
            }
            prop_assert_eq!(&g.metadata[..], &w.2[..]);
        }
        all_truncations_fail(&body, |b| decode_join_group_response(b, version))?;
    }

    #[test]
    fn sync_group_matches_kafka_protocol(
        version in 0i16..=5,
        error_code in any::<i16>(),
        protocol in proptest::option::of("[a-z]{0,8}"),
        assignment in proptest::collection::vec(any::<u8>(), 0..32),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let v5 = version >= 5;
        let mut resp = SyncGroupResponse::default()
            .with_throttle_time_ms(1)
            .with_error_code(error_code)
            .with_protocol_type(if v5 { protocol.as_deref().map(s) } else { None })
            .with_protocol_name(if v5 { protocol.as_deref().map(s) } else { None })
            .with_assignment(Bytes::from(assignment.clone()));
        resp.unknown_tagged_fields = tags(version >= 4, &tag);
        let body = encode(&resp, version);
        let got = decode_sync_group_response(body.clone(), version).unwrap();
        prop_assert_eq!(got.error_code, error_code);
        prop_assert_eq!(&got.assignment[..], &assignment[..]);
        all_truncations_fail(&body, |b| decode_sync_group_response(b, version))?;
    }

    #[test]
    fn heartbeat_matches_kafka_protocol(
        version in 0i16..=4,
        error_code in any::<i16>(),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let mut resp = HeartbeatResponse::default().with_throttle_time_ms(9).with_error_code(error_code);
        resp.unknown_tagged_fields = tags(version >= 4, &tag);
        let body = encode(&resp, version);
        prop_assert_eq!(decode_heartbeat_response(body.clone(), version).unwrap(), error_code);
        all_truncations_fail(&body, |b| decode_heartbeat_response(b, version))?;
    }

    #[test]
    fn leave_group_matches_kafka_protocol(
        version in 0i16..=5,
        error_code in any::<i16>(),
        members in proptest::collection::vec(
            ("[a-z0-9-]{0,12}", proptest::option::of("[a-z]{1,6}"), any::<i16>()), 0..4),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let members = if version >= 3 { members } else { vec![] };
        let mut resp = LeaveGroupResponse::default()
            .with_throttle_time_ms(2)
            .with_error_code(error_code)
            .with_members(members.iter().map(|m| MemberResponse::default()
                .with_member_id(s(&m.0))
                .with_group_instance_id(m.1.as_deref().map(s))
                .with_error_code(m.2)).collect());
        resp.unknown_tagged_fields = tags(version >= 4, &tag);
        let body = encode(&resp, version);
        let got = decode_leave_group_response(body.clone(), version).unwrap();
        prop_assert_eq!(got.error_code, error_code);
        let got: Vec<(String, i16)> = got.members.into_iter().map(|m| (m.member_id, m.error_code)).collect();
        let want: Vec<(String, i16)> = members.iter().map(|m| (m.0.clone(), m.2)).collect();
        prop_assert_eq!(got, want);
        all_truncations_fail(&body, |b| decode_leave_group_response(b, version))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 0i16..=9, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let b = Bytes::from(bytes);
        let _ = decode_find_coordinator_response(b.clone(), version.min(4));
        let _ = decode_join_group_response(b.clone(), version);
        let _ = decode_sync_group_response(b.clone(), version.min(5));
        let _ = decode_heartbeat_response(b.clone(), version.min(4));
        let _ = decode_leave_group_response(b, version.min(5));
    }
}

#[test]
fn huge_counts_are_refused() {
    // FindCoordinator v4: throttle, then a compact coordinator count of 2^31 - 1 (varint of 2^31).
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&HUGE);
    assert!(decode_find_coordinator_response(Bytes::from(b), 4).is_err());

    // JoinGroup v0: error, generation, protocol "", leader "", member id "", then i32::MAX members.
    let mut b = Vec::new();
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    for _ in 0..3 {
        b.extend_from_slice(&0i16.to_be_bytes());
    }
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_join_group_response(Bytes::from(b), 0).is_err());

    // SyncGroup v0: error, then an assignment of i32::MAX bytes.
    let mut b = 0i16.to_be_bytes().to_vec();
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_sync_group_response(Bytes::from(b), 0).is_err());

    // LeaveGroup v3: throttle, error, then i32::MAX members.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_leave_group_response(Bytes::from(b), 3).is_err());
}

#[test]
fn unsupported_versions_are_refused() {
    assert!(decode_find_coordinator_response(Bytes::new(), 5).is_err());
    assert!(decode_join_group_response(Bytes::new(), 10).is_err());
    assert!(decode_sync_group_response(Bytes::new(), -1).is_err());
    assert!(decode_heartbeat_response(Bytes::new(), 5).is_err());
    assert!(decode_leave_group_response(Bytes::new(), 6).is_err());
}
