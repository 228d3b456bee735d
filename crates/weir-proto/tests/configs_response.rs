//! The hand-written DescribeConfigs and IncrementalAlterConfigs response decoders against `kafka-protocol`'s
//! encoder at every version weir speaks, and against hostile input: truncation, absurd counts, values larger
//! than the body, unknown codes, sensitive values sent anyway.

mod support;

use bytes::Bytes;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{DescribeConfigsResponse, IncrementalAlterConfigsResponse};
use proptest::prelude::*;
use support::{all_truncations_fail, encode, s, tags, HUGE};
use weir_proto::configs::{
    decode_describe_configs_response, decode_incremental_alter_configs_response, ConfigResourceType,
    ConfigSource, ConfigType,
};

/// `(name, value, read only, source, sensitive, synonyms (name, value, source), type, documentation)`.
type Entry = (
    String,
    Option<String>,
    bool,
    i8,
    bool,
    Vec<(String, Option<String>, i8)>,
    i8,
    Option<String>,
);
/// `(error code, message, resource type, resource name, entries)`.
type Resource = (i16, Option<String>, i8, String, Vec<Entry>);

fn entry() -> impl Strategy<Value = Entry> {
    (
        "[a-z.]{1,20}",
        proptest::option::of("[a-zA-Z0-9,.=:]{0,24}"),
        any::<bool>(),
        any::<i8>(),
        any::<bool>(),
        proptest::collection::vec(
            ("[a-z.]{1,16}", proptest::option::of("[a-z0-9]{0,8}"), any::<i8>()),
            0..3,
        ),
        any::<i8>(),
        proptest::option::of("[a-z ]{0,20}"),
    )
}

fn resource() -> impl Strategy<Value = Resource> {
    (
        any::<i16>(),
        proptest::option::of("[a-z ]{0,16}"),
        any::<i8>(),
        "[a-z0-9-]{0,12}",
        proptest::collection::vec(entry(), 0..4),
    )
}

fn describe_response(version: i16, resources: &[Resource], tag: &Option<Vec<u8>>) -> DescribeConfigsResponse {
    let flex = version >= 4;
    let mut resp = DescribeConfigsResponse::default()
        .with_throttle_time_ms(4)
        .with_results(
            resources
                .iter()
                .map(|(code, msg, rtype, rname, entries)| {
                    let mut r = DescribeConfigsResult::default()
                        .with_error_code(*code)
                        .with_error_message(msg.as_deref().map(s))
                        .with_resource_type(*rtype)
                        .with_resource_name(s(rname))
                        .with_configs(
                            entries
                                .iter()
                                .map(|e| {
                                    let mut c = DescribeConfigsResourceResult::default()
                                        .with_name(s(&e.0))
                                        .with_value(e.1.as_deref().map(s))
                                        .with_read_only(e.2)
                                        .with_config_source(e.3)
                                        .with_is_sensitive(e.4)
                                        .with_synonyms(
                                            e.5.iter()
                                                .map(|(n, v, src)| {
                                                    let mut y = DescribeConfigsSynonym::default()
                                                        .with_name(s(n))
                                                        .with_value(v.as_deref().map(s))
                                                        .with_source(*src);
                                                    y.unknown_tagged_fields = tags(flex, tag);
                                                    y
                                                })
                                                .collect(),
                                        );
                                    if version >= 3 {
                                        c = c.with_config_type(e.6).with_documentation(e.7.as_deref().map(s));
                                    }
                                    c.unknown_tagged_fields = tags(flex, tag);
                                    c
                                })
                                .collect(),
                        );
                    r.unknown_tagged_fields = tags(flex, tag);
                    r
                })
                .collect(),
        );
    resp.unknown_tagged_fields = tags(flex, tag);
    resp
}

proptest! {
    #[test]
    fn describe_configs_matches_kafka_protocol(
        version in 1i16..=4,
        resources in proptest::collection::vec(resource(), 0..4),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let body = encode(&describe_response(version, &resources, &tag), version);
        let got = decode_describe_configs_response(body.clone(), version).unwrap();
        prop_assert_eq!(got.len(), resources.len());
        for (g, (code, msg, rtype, rname, entries)) in got.iter().zip(&resources) {
            prop_assert_eq!(g.error_code, *code);
            prop_assert_eq!(&g.error_message, msg);
            prop_assert_eq!(g.resource_type, ConfigResourceType::from_code(*rtype));
            prop_assert_eq!(&g.resource_name, rname);
            prop_assert_eq!(g.entries.len(), entries.len());
            for (c, e) in g.entries.iter().zip(entries) {
                let sensitive = e.4;
                prop_assert_eq!(&c.name, &e.0);
                // A sensitive value never reaches the decoded entry, nor do its synonyms' values.
                prop_assert_eq!(&c.value, &if sensitive { None } else { e.1.clone() });
                prop_assert_eq!((c.read_only, c.sensitive), (e.2, sensitive));
                prop_assert_eq!(c.source, ConfigSource::from_code(e.3));
                let want: Vec<(String, Option<String>, ConfigSource)> = e.5.iter()
                    .map(|(n, v, src)| (n.clone(), if sensitive { None } else { v.clone() }, ConfigSource::from_code(*src)))
                    .collect();
                let synonyms: Vec<(String, Option<String>, ConfigSource)> =
                    c.synonyms.iter().map(|y| (y.name.clone(), y.value.clone(), y.source)).collect();
                prop_assert_eq!(synonyms, want);
                if version >= 3 {
                    prop_assert_eq!(c.config_type, ConfigType::from_code(e.6));
                    prop_assert_eq!(&c.documentation, &e.7);
                } else {
                    prop_assert_eq!(c.config_type, ConfigType::Unknown(0));
                    prop_assert_eq!(&c.documentation, &None);
                }
                if sensitive {
                    let shown = format!("{c:?}");
                    prop_assert!(shown.contains(&e.0), "{}", shown);
                }
            }
        }
        all_truncations_fail(&body, |b| decode_describe_configs_response(b, version))?;
    }

    #[test]
    fn incremental_alter_configs_matches_kafka_protocol(
        version in 0i16..=1,
        results in proptest::collection::vec(
            (any::<i16>(), proptest::option::of("[a-z ]{0,16}"), any::<i8>(), "[a-z0-9-]{0,12}"), 0..5),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let flex = version >= 1;
        let mut resp = IncrementalAlterConfigsResponse::default().with_throttle_time_ms(2).with_responses(
            results.iter().map(|(code, msg, rtype, rname)| {
                let mut r = AlterConfigsResourceResponse::default()
                    .with_error_code(*code)
                    .with_error_message(msg.as_deref().map(s))
                    .with_resource_type(*rtype)
                    .with_resource_name(s(rname));
                r.unknown_tagged_fields = tags(flex, &tag);
                r
            }).collect());
        resp.unknown_tagged_fields = tags(flex, &tag);
        let body = encode(&resp, version);
        let got = decode_incremental_alter_configs_response(body.clone(), version).unwrap();
        let got: Vec<(i16, Option<String>, ConfigResourceType, String)> = got
            .into_iter()
            .map(|r| (r.error_code, r.error_message, r.resource_type, r.resource_name))
            .collect();
        let want: Vec<(i16, Option<String>, ConfigResourceType, String)> = results
            .iter()
            .map(|(c, m, t, n)| (*c, m.clone(), ConfigResourceType::from_code(*t), n.clone()))
            .collect();
        prop_assert_eq!(got, want);
        all_truncations_fail(&body, |b| decode_incremental_alter_configs_response(b, version))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 0i16..=4, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let b = Bytes::from(bytes);
        let _ = decode_describe_configs_response(b.clone(), version.max(1));
        let _ = decode_incremental_alter_configs_response(b, version.min(1));
    }
}

/// A value of any size is read whole: it is bounded by the body only. Kafka's encoders write strings of up to
/// 32767 bytes; a compact string (v4) can announce more, and a megabyte is read as well.
#[test]
fn values_of_any_size_are_read_whole() {
    let largest = "v".repeat(i16::MAX as usize);
    let resources: Vec<Resource> = vec![(
        0,
        None,
        2,
        "t".into(),
        vec![(
            "big.one".into(),
            Some(largest.clone()),
            false,
            1,
            false,
            vec![("big.one".into(), Some("x".into()), 1)],
            2,
            None,
        )],
    )];
    for version in 1..=4 {
        let body = encode(&describe_response(version, &resources, &None), version);
        let got = decode_describe_configs_response(body.clone(), version).unwrap();
        assert_eq!(
            got[0].entries[0].value.as_deref(),
            Some(largest.as_str()),
            "v{version}"
        );
        assert!(decode_describe_configs_response(body.slice(..body.len() - 2), version).is_err());
    }
    // v4 by hand: throttle, 1 result: no error, null message, TOPIC, "t", 1 config: "k" = 1 MiB, not read only,
    // source 1, not sensitive, no synonyms, type 2, null documentation; tags.
    let mib = 1usize << 20;
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[2, 0, 0, 0, 2, 2, b't', 2, 2, b'k']);
    let mut n = mib as u32 + 1;
    while n >= 0x80 {
        b.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    b.push(n as u8);
    b.extend(std::iter::repeat_n(b'm', mib));
    b.extend_from_slice(&[0, 1, 0, 1, 2, 0, 0, 0, 0]);
    let body = Bytes::from(b);
    let got = decode_describe_configs_response(body.clone(), 4).unwrap();
    assert_eq!(got[0].entries[0].value.as_ref().map(String::len), Some(mib));
    assert_eq!(got[0].entries[0].source, ConfigSource::DynamicTopicConfig);
    for cut in [body.len() - 1, body.len() - 10, 40] {
        assert!(decode_describe_configs_response(body.slice(..cut), 4).is_err());
    }
}

/// A value claiming more bytes than the body holds is refused before anything is allocated for it.
#[test]
fn a_value_longer_than_the_body_is_refused() {
    // v4: throttle, 1 result: no error, null message, TOPIC, "t", 1 config: "k", then a value of 2^31 bytes.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[2, 0, 0, 0, 2, 2, b't', 2, 2, b'k']);
    b.extend_from_slice(&[0x81, 0x80, 0x80, 0x80, 0x08]);
    b.extend_from_slice(b"short");
    let e = decode_describe_configs_response(Bytes::from(b), 4).unwrap_err();
    assert!(e.to_string().contains("config value"), "{e}");
    // v1: the same with a 16-bit length of 32767 and 5 bytes behind it.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0xff, 0xff, 2, 0, 1, b't']);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&[0, 1, b'k', 0x7f, 0xff]);
    b.extend_from_slice(b"short, and nothing more");
    let e = decode_describe_configs_response(Bytes::from(b), 1).unwrap_err();
    assert!(e.to_string().contains("config value"), "{e}");
}

#[test]
fn huge_counts_are_refused() {
    // DescribeConfigs v4: throttle, 2^31 - 1 results.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&HUGE);
    assert!(decode_describe_configs_response(Bytes::from(b), 4).is_err());
    // ... one result (no error, null message, TOPIC, "t") with 2^31 - 1 configs.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[2, 0, 0, 0, 2, 2, b't']);
    b.extend_from_slice(&HUGE);
    assert!(decode_describe_configs_response(Bytes::from(b), 4).is_err());
    // ... one config "k" = null, not read only, source 5, not sensitive, with 2^31 - 1 synonyms.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[2, 0, 0, 0, 2, 2, b't', 2, 2, b'k', 0, 0, 5, 0]);
    b.extend_from_slice(&HUGE);
    assert!(decode_describe_configs_response(Bytes::from(b), 4).is_err());
    // DescribeConfigs v1: i32::MAX results.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_describe_configs_response(Bytes::from(b), 1).is_err());
    // IncrementalAlterConfigs v0 and v1.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_incremental_alter_configs_response(Bytes::from(b), 0).is_err());
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&HUGE);
    assert!(decode_incremental_alter_configs_response(Bytes::from(b), 1).is_err());
}

#[test]
fn unknown_sources_types_and_resource_types_are_kept() {
    let resources: Vec<Resource> = vec![(
        0,
        None,
        77,
        "x".into(),
        vec![(
            "k".into(),
            Some("v".into()),
            false,
            99,
            false,
            vec![("k".into(), None, -3)],
            42,
            None,
        )],
    )];
    let body = encode(&describe_response(4, &resources, &None), 4);
    let got = decode_describe_configs_response(body, 4).unwrap();
    assert_eq!(got[0].resource_type, ConfigResourceType::Unknown(77));
    let e = &got[0].entries[0];
    assert_eq!(e.source, ConfigSource::Unknown(99));
    assert_eq!(e.config_type, ConfigType::Unknown(42));
    assert_eq!(e.synonyms[0].source, ConfigSource::Unknown(-3));
    assert_eq!(e.value.as_deref(), Some("v"));
}

#[test]
fn unsupported_versions_are_refused() {
    let body = || Bytes::from(vec![0u8; 16]);
    for v in [0, 5] {
        let e = decode_describe_configs_response(body(), v).unwrap_err();
        assert!(e.to_string().contains("unsupported version"), "{e}");
    }
    for v in [-1, 2] {
        let e = decode_incremental_alter_configs_response(body(), v).unwrap_err();
        assert!(e.to_string().contains("unsupported version"), "{e}");
    }
}
