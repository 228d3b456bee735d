//! The hand-written DescribeCluster, CreatePartitions and DeleteRecords response decoders against
//! `kafka-protocol`'s encoder at every version weir speaks, and against hostile input.

mod support;

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsResponse, DeleteRecordsResponse, DescribeClusterResponse, TopicName,
};
use proptest::prelude::*;
use support::{all_truncations_fail, encode, s, tags, HUGE};
use weir_proto::create_partitions::decode_create_partitions_response;
use weir_proto::delete_records::decode_delete_records_response;
use weir_proto::describe_cluster::decode_describe_cluster_response;

/// `(id, host, port, rack, fenced)`.
type Broker = (i32, String, i32, Option<String>, bool);

proptest! {
    #[test]
    fn describe_cluster_matches_kafka_protocol(
        version in 0i16..=2,
        error_code in any::<i16>(),
        message in proptest::option::of("[a-z ]{0,16}"),
        cluster_id in "[A-Za-z0-9_-]{0,22}",
        controller in any::<i32>(),
        brokers in proptest::collection::vec(
            (any::<i32>(), "[a-z0-9.]{1,20}", any::<i32>(), proptest::option::of("[a-z0-9]{0,6}"), any::<bool>()),
            0..5),
        authorized in any::<i32>(),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let mut resp = DescribeClusterResponse::default()
            .with_throttle_time_ms(1)
            .with_error_code(error_code)
            .with_error_message(message.as_deref().map(s))
            .with_cluster_id(s(&cluster_id))
            .with_controller_id(BrokerId(controller))
            .with_cluster_authorized_operations(authorized)
            .with_brokers(brokers.iter().map(|b: &Broker| {
                let mut x = DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.0))
                    .with_host(s(&b.1))
                    .with_port(b.2)
                    .with_rack(b.3.as_deref().map(s))
                    .with_is_fenced(b.4 && version >= 2);
                x.unknown_tagged_fields = tags(true, &tag);
                x
            }).collect());
        resp.unknown_tagged_fields = tags(true, &tag);
        let body = encode(&resp, version);
        let got = decode_describe_cluster_response(body.clone(), version).unwrap();
        prop_assert_eq!((got.error_code, &got.error_message), (error_code, &message));
        prop_assert_eq!((&got.cluster_id, got.controller_id), (&cluster_id, controller));
        prop_assert_eq!((got.endpoint_type, got.cluster_authorized_operations), (1, authorized));
        let got_brokers: Vec<Broker> = got.brokers.iter()
            .map(|b| (b.broker_id, b.host.clone(), b.port, b.rack.clone(), b.is_fenced))
            .collect();
        let want: Vec<Broker> = brokers.iter().map(|b| (b.0, b.1.clone(), b.2, b.3.clone(), b.4 && version >= 2)).collect();
        prop_assert_eq!(got_brokers, want);
        all_truncations_fail(&body, |b| decode_describe_cluster_response(b, version))?;
    }

    #[test]
    fn create_partitions_matches_kafka_protocol(
        version in 0i16..=3,
        results in proptest::collection::vec(("[a-z]{1,10}", any::<i16>(), proptest::option::of("[a-z ]{0,16}")), 0..5),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let flex = version >= 2;
        let mut resp = CreatePartitionsResponse::default().with_throttle_time_ms(3).with_results(
            results.iter().map(|(n, c, m)| {
                let mut r = CreatePartitionsTopicResult::default()
                    .with_name(TopicName(s(n)))
                    .with_error_code(*c)
                    .with_error_message(m.as_deref().map(s));
                r.unknown_tagged_fields = tags(flex, &tag);
                r
            }).collect());
        resp.unknown_tagged_fields = tags(flex, &tag);
        let body = encode(&resp, version);
        let got = decode_create_partitions_response(body.clone(), version).unwrap();
        let got: Vec<(String, i16, Option<String>)> =
            got.into_iter().map(|r| (r.topic, r.error_code, r.error_message)).collect();
        prop_assert_eq!(got, results);
        all_truncations_fail(&body, |b| decode_create_partitions_response(b, version))?;
    }

    #[test]
    fn delete_records_matches_kafka_protocol(
        version in 0i16..=2,
        topics in proptest::collection::vec(
            ("[a-z]{1,10}", proptest::collection::vec((any::<i32>(), any::<i64>(), any::<i16>()), 0..4)), 0..4),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let flex = version >= 2;
        let mut resp = DeleteRecordsResponse::default().with_throttle_time_ms(3).with_topics(
            topics.iter().map(|(n, parts)| {
                let mut t = DeleteRecordsTopicResult::default()
                    .with_name(TopicName(s(n)))
                    .with_partitions(parts.iter().map(|&(p, lw, c)| {
                        let mut x = DeleteRecordsPartitionResult::default()
                            .with_partition_index(p)
                            .with_low_watermark(lw)
                            .with_error_code(c);
                        x.unknown_tagged_fields = tags(flex, &tag);
                        x
                    }).collect());
                t.unknown_tagged_fields = tags(flex, &tag);
                t
            }).collect());
        resp.unknown_tagged_fields = tags(flex, &tag);
        let body = encode(&resp, version);
        let got = decode_delete_records_response(body.clone(), version).unwrap();
        let got: Vec<(String, i32, i64, i16)> = got
            .into_iter()
            .map(|d| (d.topic.to_string(), d.partition, d.low_watermark, d.error_code))
            .collect();
        let want: Vec<(String, i32, i64, i16)> = topics
            .iter()
            .flat_map(|(n, parts)| parts.iter().map(move |&(p, lw, c)| (n.clone(), p, lw, c)))
            .collect();
        prop_assert_eq!(got, want);
        all_truncations_fail(&body, |b| decode_delete_records_response(b, version))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 0i16..=3, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let b = Bytes::from(bytes);
        let _ = decode_describe_cluster_response(b.clone(), version.min(2));
        let _ = decode_create_partitions_response(b.clone(), version);
        let _ = decode_delete_records_response(b, version.min(2));
    }
}

#[test]
fn huge_counts_are_refused() {
    // DescribeCluster v2: throttle, no error, null message, endpoint type 1, cluster id "c", controller 1,
    // then 2^31 - 1 brokers.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[0, 0, 0, 1, 2, b'c']);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&HUGE);
    let e = decode_describe_cluster_response(Bytes::from(b), 2).unwrap_err();
    assert!(e.to_string().contains("broker count"), "{e}");
    // CreatePartitions v0 / v2: i32::MAX and 2^31 - 1 results.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_create_partitions_response(Bytes::from(b), 0).is_err());
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&HUGE);
    assert!(decode_create_partitions_response(Bytes::from(b), 2).is_err());
    // DeleteRecords v2: one topic "t" with 2^31 - 1 partitions.
    let mut b = 0i32.to_be_bytes().to_vec();
    b.extend_from_slice(&[2, 2, b't']);
    b.extend_from_slice(&HUGE);
    let e = decode_delete_records_response(Bytes::from(b), 2).unwrap_err();
    assert!(e.to_string().contains("partition count"), "{e}");
}

#[test]
fn unsupported_versions_are_refused() {
    let body = || Bytes::from(vec![0u8; 16]);
    for v in [-1, 3] {
        assert!(decode_describe_cluster_response(body(), v).is_err());
        assert!(decode_delete_records_response(body(), v).is_err());
    }
    for v in [-1, 4] {
        assert!(decode_create_partitions_response(body(), v).is_err());
    }
}
