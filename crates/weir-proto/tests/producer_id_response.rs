//! The hand-written InitProducerId response decoder against `kafka-protocol`'s encoder at every version weir
//! speaks, and against hostile input.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{InitProducerIdResponse, ProducerId};
use kafka_protocol::protocol::Encodable;
use proptest::prelude::*;
use weir_proto::producer_id::decode_init_producer_id_response;

proptest! {
    #[test]
    fn matches_kafka_protocol(
        version in 0i16..=4,
        error_code in any::<i16>(),
        producer_id in any::<i64>(),
        epoch in any::<i16>(),
        tag in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let mut resp = InitProducerIdResponse::default()
            .with_throttle_time_ms(3)
            .with_error_code(error_code)
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch);
        if let (Some(t), true) = (&tag, version >= 2) {
            resp.unknown_tagged_fields = BTreeMap::from([(42, Bytes::from(t.clone()))]);
        }
        let mut buf = BytesMut::new();
        resp.encode(&mut buf, version).unwrap();
        let body = buf.freeze();
        let got = decode_init_producer_id_response(body.clone(), version).unwrap();
        prop_assert_eq!((got.error_code, got.producer_id, got.producer_epoch), (error_code, producer_id, epoch));
        for cut in 0..body.len() {
            prop_assert!(decode_init_producer_id_response(body.slice(..cut), version).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 0i16..=4, bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_init_producer_id_response(Bytes::from(bytes), version);
    }
}

#[test]
fn a_huge_tagged_field_is_refused() {
    // v2: throttle, error, id, epoch, then one tag claiming 2^31 bytes.
    let mut b = vec![0u8; 4 + 2 + 8 + 2];
    b.extend_from_slice(&[1, 0, 0x80, 0x80, 0x80, 0x80, 0x08]);
    assert!(decode_init_producer_id_response(Bytes::from(b), 2).is_err());
}

#[test]
fn unsupported_versions_are_refused() {
    assert!(decode_init_producer_id_response(Bytes::from(vec![0u8; 16]), 5).is_err());
    assert!(decode_init_producer_id_response(Bytes::from(vec![0u8; 16]), -1).is_err());
}
