//! The hand-written CreateAcls, DescribeAcls and DeleteAcls response decoders against `kafka-protocol`'s
//! encoder at every version weir speaks, and against hostile input.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{CreateAclsResponse, DeleteAclsResponse, DescribeAclsResponse};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;
use weir_proto::acl::{
    decode_create_acls_response, decode_delete_acls_response, decode_describe_acls_response, Acl,
    AclOperation, AclPermissionType, PatternType, ResourceType,
};

fn encode<M: Encodable>(m: &M, version: i16) -> Bytes {
    let mut buf = BytesMut::new();
    m.encode(&mut buf, version).unwrap();
    buf.freeze()
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_owned())
}

fn tags(tag: &Option<Vec<u8>>) -> BTreeMap<i32, Bytes> {
    match tag {
        Some(t) => BTreeMap::from([(42, Bytes::from(t.clone()))]),
        None => BTreeMap::new(),
    }
}

/// (resource type, name, pattern type, principal, host, operation, permission)
type RawAcl = (i8, String, i8, String, String, i8, i8);

fn raw_acl() -> impl Strategy<Value = RawAcl> {
    (
        any::<i8>(),
        "[a-z*-]{0,8}",
        any::<i8>(),
        "User:[a-z]{0,6}",
        "[0-9.*]{1,7}",
        any::<i8>(),
        any::<i8>(),
    )
}

fn typed(a: &RawAcl) -> Acl {
    Acl {
        resource_type: ResourceType::from_code(a.0),
        resource_name: a.1.clone(),
        pattern_type: PatternType::from_code(a.2),
        principal: a.3.clone(),
        host: a.4.clone(),
        operation: AclOperation::from_code(a.5),
        permission_type: AclPermissionType::from_code(a.6),
    }
}

proptest! {
    #[test]
    fn create_acls_matches_kafka_protocol(
        version in 2i16..=3,
        results in proptest::collection::vec((any::<i16>(), proptest::option::of("[a-z ]{0,16}")), 0..5),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let mut resp = CreateAclsResponse::default().with_throttle_time_ms(4).with_results(
            results.iter().map(|(c, m)| AclCreationResult::default()
                .with_error_code(*c)
                .with_error_message(m.as_deref().map(s))).collect());
        resp.unknown_tagged_fields = tags(&tag);
        let body = encode(&resp, version);
        let got = decode_create_acls_response(body.clone(), version).unwrap();
        let got: Vec<(i16, Option<String>)> = got.into_iter().map(|r| (r.error_code, r.error_message)).collect();
        prop_assert_eq!(got, results);
        for cut in 0..body.len() {
            prop_assert!(decode_create_acls_response(body.slice(..cut), version).is_err());
        }
    }

    #[test]
    fn describe_acls_matches_kafka_protocol(
        version in 2i16..=3,
        error_code in any::<i16>(),
        message in proptest::option::of("[a-z ]{0,16}"),
        resources in proptest::collection::vec(
            ((any::<i8>(), "[a-z*-]{0,8}", any::<i8>()),
             proptest::collection::vec(("User:[a-z]{0,6}", "[0-9.*]{1,7}", any::<i8>(), any::<i8>()), 0..4)),
            0..4),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let mut resp = DescribeAclsResponse::default()
            .with_throttle_time_ms(1)
            .with_error_code(error_code)
            .with_error_message(message.as_deref().map(s))
            .with_resources(resources.iter().map(|((rt, name, pt), acls)| {
                let mut r = DescribeAclsResource::default()
                    .with_resource_type(*rt)
                    .with_resource_name(s(name))
                    .with_pattern_type(*pt)
                    .with_acls(acls.iter().map(|(p, h, o, perm)| AclDescription::default()
                        .with_principal(s(p))
                        .with_host(s(h))
                        .with_operation(*o)
                        .with_permission_type(*perm)).collect());
                r.unknown_tagged_fields = tags(&tag);
                r
            }).collect());
        resp.unknown_tagged_fields = tags(&tag);
        let body = encode(&resp, version);
        let got = decode_describe_acls_response(body.clone(), version).unwrap();
        prop_assert_eq!(got.error_code, error_code);
        prop_assert_eq!(got.error_message, message);
        let want: Vec<Acl> = resources.iter().flat_map(|((rt, name, pt), acls)| {
            acls.iter().map(move |(p, h, o, perm)| typed(&(*rt, name.clone(), *pt, p.clone(), h.clone(), *o, *perm)))
        }).collect();
        prop_assert_eq!(got.acls, want);
        for cut in 0..body.len() {
            prop_assert!(decode_describe_acls_response(body.slice(..cut), version).is_err());
        }
    }

    #[test]
    fn delete_acls_matches_kafka_protocol(
        version in 2i16..=3,
        filters in proptest::collection::vec(
            (any::<i16>(), proptest::option::of("[a-z ]{0,12}"),
             proptest::collection::vec((any::<i16>(), proptest::option::of("[a-z]{0,6}"), raw_acl()), 0..4)),
            0..4),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let mut resp = DeleteAclsResponse::default().with_throttle_time_ms(2).with_filter_results(
            filters.iter().map(|(code, msg, matching)| DeleteAclsFilterResult::default()
                .with_error_code(*code)
                .with_error_message(msg.as_deref().map(s))
                .with_matching_acls(matching.iter().map(|(c, m, a)| {
                    let mut x = DeleteAclsMatchingAcl::default()
                        .with_error_code(*c)
                        .with_error_message(m.as_deref().map(s))
                        .with_resource_type(a.0)
                        .with_resource_name(s(&a.1))
                        .with_pattern_type(a.2)
                        .with_principal(s(&a.3))
                        .with_host(s(&a.4))
                        .with_operation(a.5)
                        .with_permission_type(a.6);
                    x.unknown_tagged_fields = tags(&tag);
                    x
                }).collect())).collect());
        resp.unknown_tagged_fields = tags(&tag);
        let body = encode(&resp, version);
        let got = decode_delete_acls_response(body.clone(), version).unwrap();
        prop_assert_eq!(got.len(), filters.len());
        for (g, (code, msg, matching)) in got.iter().zip(&filters) {
            prop_assert_eq!(g.error_code, *code);
            prop_assert_eq!(&g.error_message, msg);
            prop_assert_eq!(g.matching.len(), matching.len());
            for (d, (c, m, a)) in g.matching.iter().zip(matching) {
                prop_assert_eq!(d.error_code, *c);
                prop_assert_eq!(&d.error_message, m);
                prop_assert_eq!(&d.acl, &typed(a));
            }
        }
        for cut in 0..body.len() {
            prop_assert!(decode_delete_acls_response(body.slice(..cut), version).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 2i16..=3, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let b = Bytes::from(bytes);
        let _ = decode_create_acls_response(b.clone(), version);
        let _ = decode_describe_acls_response(b.clone(), version);
        let _ = decode_delete_acls_response(b, version);
    }
}

#[test]
fn huge_counts_are_refused() {
    // Throttle, then a compact count of 2^31 - 1 results in a few bytes.
    let huge = [0x80, 0x80, 0x80, 0x80, 0x08];
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&huge);
    assert!(decode_create_acls_response(Bytes::from(b.clone()), 2).is_err());
    assert!(decode_delete_acls_response(Bytes::from(b), 3).is_err());
    // DescribeAcls: throttle, no error, null message, 2^31 - 1 resources.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[0, 0, 0]);
    b.extend_from_slice(&huge);
    assert!(decode_describe_acls_response(Bytes::from(b.clone()), 3).is_err());
    // ... one resource (TOPIC "t", LITERAL) with 2^31 - 1 ACLs.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[0, 0, 0, 2, 2, 2, b't', 3]);
    b.extend_from_slice(&huge);
    assert!(decode_describe_acls_response(Bytes::from(b), 3).is_err());
    // DeleteAcls: one filter result, no error, null message, 2^31 - 1 matching ACLs.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[2, 0, 0, 0]);
    b.extend_from_slice(&huge);
    assert!(decode_delete_acls_response(Bytes::from(b), 2).is_err());
}

#[test]
fn unsupported_versions_are_refused() {
    let body = || Bytes::from(vec![0u8; 16]);
    for v in [-1, 0, 1, 4] {
        assert!(decode_create_acls_response(body(), v).is_err(), "v{v}");
        assert!(decode_describe_acls_response(body(), v).is_err(), "v{v}");
        assert!(decode_delete_acls_response(body(), v).is_err(), "v{v}");
    }
}

#[test]
fn random_and_truncated_inputs_never_panic() {
    // A deterministic xorshift stream of bodies, valid prefixes followed by noise, at both versions.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..20_000 {
        let len = (next() % 64) as usize;
        let mut b: Vec<u8> = vec![0, 0, 0, 0, 1];
        b.extend((0..len).map(|_| next() as u8));
        for version in 2..=3 {
            let body = Bytes::from(b.clone());
            let _ = decode_create_acls_response(body.clone(), version);
            let _ = decode_describe_acls_response(body.clone(), version);
            let _ = decode_delete_acls_response(body, version);
        }
    }
}
