//! The hand-written CreateTopics and DeleteTopics response decoders against `kafka-protocol`'s encoder at every
//! version weir speaks, and against hostile input.

mod support;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{CreateTopicsResponse, DeleteTopicsResponse, TopicName};
use proptest::prelude::*;
use support::{all_truncations_fail, encode, s, tags, HUGE};
use weir_proto::admin::{decode_create_topics_response, decode_delete_topics_response};

type Created = (
    String,
    i16,
    Option<String>,
    i32,
    i16,
    Option<Vec<(String, Option<String>)>>,
    i16,
);

proptest! {
    #[test]
    fn create_topics_matches_kafka_protocol(
        version in 2i16..=7,
        topics in proptest::collection::vec(
            ("[a-z]{1,10}", any::<i16>(), proptest::option::of("[a-z ]{0,16}"), any::<i32>(), any::<i16>(),
             proptest::option::of(proptest::collection::vec(
                 ("[a-z.]{1,10}", proptest::option::of("[a-z0-9]{0,6}")), 0..3)),
             any::<i16>()),
            0..4),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let v5 = version >= 5;
        let mut resp = CreateTopicsResponse::default().with_throttle_time_ms(8).with_topics(
            topics.iter().map(|t: &Created| {
                let mut r = CreatableTopicResult::default()
                    .with_name(TopicName(s(&t.0)))
                    .with_error_code(t.1)
                    .with_error_message(t.2.as_deref().map(s));
                if v5 {
                    r = r
                        .with_num_partitions(t.3)
                        .with_replication_factor(t.4)
                        .with_configs(t.5.as_ref().map(|cs| cs.iter().map(|c| CreatableTopicConfigs::default()
                            .with_name(s(&c.0))
                            .with_value(c.1.as_deref().map(s))
                            .with_read_only(true)
                            .with_config_source(3)
                            .with_is_sensitive(c.1.is_none())).collect()))
                        .with_topic_config_error_code(t.6);
                }
                r
            }).collect());
        resp.unknown_tagged_fields = tags(v5, &tag);
        let body = encode(&resp, version);
        let got = decode_create_topics_response(body.clone(), version).unwrap();
        let got: Vec<(i16, Option<String>)> = got.into_iter().map(|t| (t.error_code, t.error_message)).collect();
        let want: Vec<(i16, Option<String>)> = topics.iter().map(|t| (t.1, t.2.clone())).collect();
        prop_assert_eq!(got, want);
        all_truncations_fail(&body, |b| decode_create_topics_response(b, version))?;
    }

    #[test]
    fn delete_topics_matches_kafka_protocol(
        version in 1i16..=6,
        topics in proptest::collection::vec(
            ("[a-z]{1,10}", any::<i16>(), proptest::option::of("[a-z ]{0,16}")), 0..4),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let mut resp = DeleteTopicsResponse::default().with_throttle_time_ms(6).with_responses(
            topics.iter().map(|t| DeletableTopicResult::default()
                .with_name(Some(TopicName(s(&t.0))))
                .with_error_code(t.1)
                .with_error_message(if version >= 5 { t.2.as_deref().map(s) } else { None })).collect());
        resp.unknown_tagged_fields = tags(version >= 4, &tag);
        let body = encode(&resp, version);
        let got = decode_delete_topics_response(body.clone(), version).unwrap();
        let want: Vec<i16> = topics.iter().map(|t| t.1).collect();
        prop_assert_eq!(got, want);
        all_truncations_fail(&body, |b| decode_delete_topics_response(b, version))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 1i16..=7, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let b = Bytes::from(bytes);
        let _ = decode_create_topics_response(b.clone(), version.max(2));
        let _ = decode_delete_topics_response(b, version.min(6));
    }
}

#[test]
fn huge_counts_are_refused() {
    // CreateTopics v2 and DeleteTopics v1: throttle, then i32::MAX topics.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_create_topics_response(Bytes::from(b.clone()), 2).is_err());
    assert!(decode_delete_topics_response(Bytes::from(b), 1).is_err());
    // CreateTopics v5: one topic "t", no error, null message, 1 partition, rf 1, then 2^31 - 1 configs.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[2, 2, b't', 0, 0, 0]);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&1i16.to_be_bytes());
    b.extend_from_slice(&HUGE);
    assert!(decode_create_topics_response(Bytes::from(b), 5).is_err());
}

#[test]
fn unsupported_versions_are_refused() {
    assert!(decode_create_topics_response(Bytes::new(), 1).is_err());
    assert!(decode_create_topics_response(Bytes::new(), 8).is_err());
    assert!(decode_delete_topics_response(Bytes::new(), 0).is_err());
    assert!(decode_delete_topics_response(Bytes::new(), 7).is_err());
}
