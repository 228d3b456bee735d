//! The hand-written ListOffsets response decoder against `kafka-protocol`'s encoder, and against hostile input.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsResponse, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;
use weir_proto::list_offsets::decode_list_offsets_response;

proptest! {
    #[test]
    fn matches_kafka_protocol(
        version in 1i16..=8,
        topics in proptest::collection::vec(("[a-z]{1,10}", proptest::collection::vec(
            (any::<i32>(), any::<i16>(), any::<i64>(), any::<i64>(), any::<i32>()), 0..4)), 0..4),
    ) {
        let resp = ListOffsetsResponse::default().with_topics(
            topics.iter().map(|(name, parts)| ListOffsetsTopicResponse::default()
                .with_name(TopicName(StrBytes::from_string(name.clone())))
                .with_partitions(parts.iter().map(|p| ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.0)
                    .with_error_code(p.1)
                    .with_timestamp(p.2)
                    .with_offset(p.3)
                    .with_leader_epoch(if version >= 4 { p.4 } else { -1 })).collect())).collect());
        let mut buf = BytesMut::new();
        resp.encode(&mut buf, version).unwrap();
        let body = buf.freeze();
        let got = decode_list_offsets_response(body.clone(), version).unwrap();
        let want: Vec<(String, i32, i16, i64, i64)> = topics.iter()
            .flat_map(|(n, ps)| ps.iter().map(move |p| (n.clone(), p.0, p.1, p.2, p.3))).collect();
        let got: Vec<(String, i32, i16, i64, i64)> = got.into_iter()
            .map(|o| (o.topic.to_string(), o.partition, o.error_code, o.timestamp, o.offset)).collect();
        prop_assert_eq!(got, want);
        for cut in 0..body.len() {
            prop_assert!(decode_list_offsets_response(body.slice(..cut), version).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 1i16..=8, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_list_offsets_response(Bytes::from(bytes), version);
    }
}
