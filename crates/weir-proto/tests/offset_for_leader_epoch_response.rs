//! The hand-written OffsetForLeaderEpoch response decoder against `kafka-protocol`'s encoder, and against hostile
//! input.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochResponse, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;
use weir_proto::offset_for_leader_epoch::decode_offset_for_leader_epoch_response;

proptest! {
    #[test]
    fn matches_kafka_protocol(
        version in 2i16..=4,
        topics in proptest::collection::vec(("[a-z]{1,10}", proptest::collection::vec(
            (any::<i16>(), any::<i32>(), any::<i32>(), any::<i64>()), 0..4)), 0..4),
    ) {
        let resp = OffsetForLeaderEpochResponse::default().with_topics(
            topics.iter().map(|(name, parts)| OffsetForLeaderTopicResult::default()
                .with_topic(TopicName(StrBytes::from_string(name.clone())))
                .with_partitions(parts.iter().map(|p| EpochEndOffset::default()
                    .with_error_code(p.0)
                    .with_partition(p.1)
                    .with_leader_epoch(p.2)
                    .with_end_offset(p.3)).collect())).collect());
        let mut buf = BytesMut::new();
        resp.encode(&mut buf, version).unwrap();
        let body = buf.freeze();
        let got = decode_offset_for_leader_epoch_response(body.clone(), version).unwrap();
        let want: Vec<(String, i16, i32, i32, i64)> = topics.iter()
            .flat_map(|(n, ps)| ps.iter().map(move |p| (n.clone(), p.0, p.1, p.2, p.3))).collect();
        let got: Vec<(String, i16, i32, i32, i64)> = got.into_iter()
            .map(|o| (o.topic.to_string(), o.error_code, o.partition, o.leader_epoch, o.end_offset)).collect();
        prop_assert_eq!(got, want);
        for cut in 0..body.len() {
            prop_assert!(decode_offset_for_leader_epoch_response(body.slice(..cut), version).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 2i16..=4, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_offset_for_leader_epoch_response(Bytes::from(bytes), version);
    }
}
