//! The finalized features of the hand-written ApiVersions decoder against `kafka-protocol`'s encoder, with the
//! other tagged fields around them, and against hostile input.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;
use weir_proto::versions::{decode_api_versions_response, VersionTable};

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_owned())
}

proptest! {
    #[test]
    fn finalized_features_match_kafka_protocol(
        keys in proptest::collection::vec((any::<i16>(), any::<i16>(), any::<i16>()), 0..4),
        supported in proptest::collection::vec(("[a-z.]{1,20}", any::<i16>(), any::<i16>()), 0..3),
        epoch in proptest::option::of(0i64..=i64::MAX),
        features in proptest::collection::vec(("[a-z.]{1,20}", any::<i16>(), any::<i16>()), 0..4),
        zk_migration_ready in any::<bool>(),
        unknown in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
    ) {
        let mut resp = ApiVersionsResponse::default()
            .with_api_keys(keys.iter().map(|&(k, min, max)| ApiVersion::default()
                .with_api_key(k).with_min_version(min).with_max_version(max)).collect())
            .with_throttle_time_ms(5)
            .with_supported_features(supported.iter().map(|(n, min, max)| SupportedFeatureKey::default()
                .with_name(s(n)).with_min_version(*min).with_max_version(*max)).collect())
            .with_finalized_features_epoch(epoch.unwrap_or(-1))
            .with_finalized_features(features.iter().map(|(n, min, max)| FinalizedFeatureKey::default()
                .with_name(s(n)).with_min_version_level(*min).with_max_version_level(*max)).collect())
            .with_zk_migration_ready(zk_migration_ready);
        if let Some(u) = &unknown {
            resp = resp.with_unknown_tagged_field(40, Bytes::from(u.clone()));
        }
        let mut buf = BytesMut::new();
        resp.encode(&mut buf, 3).unwrap();
        let body = buf.freeze();
        let got = decode_api_versions_response(body.clone(), 3).unwrap();
        prop_assert_eq!(&got.ranges, &keys);
        prop_assert_eq!(got.finalized_features_epoch, epoch.unwrap_or(-1));
        prop_assert_eq!(&got.finalized_features, &features);
        let table = VersionTable::from_response(&got);
        let tv = features.iter().find(|f| f.0 == "transaction.version").map_or(0, |f| f.2);
        prop_assert_eq!(table.transaction_version(), if epoch.is_some() { tv } else { 0 });
        for cut in 0..body.len() {
            prop_assert!(decode_api_versions_response(body.slice(..cut), 3).is_err());
        }
    }

    #[test]
    fn arbitrary_tags_never_panic(tags in proptest::collection::vec(any::<u8>(), 0..128)) {
        let mut b = vec![0, 0, 1, 0, 0, 0, 0];
        b.extend_from_slice(&tags);
        let _ = decode_api_versions_response(Bytes::from(b), 3);
    }
}
