//! ApiVersions negotiation: for each API, the highest version both weir and the broker support.

use std::ops::RangeInclusive;

use crate::call::{Call, ErrorCodes};
use crate::wire::prealloc;

/// Versions [`decode_api_versions_response`] reads.
pub const API_VERSIONS_VERSIONS: RangeInclusive<i16> = 0..=3;

/// An ApiVersions request; the client names itself (v3+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiVersionsRequest {
    /// The client software's name.
    pub software_name: String,
    /// The client software's version.
    pub software_version: String,
}

impl ApiVersionsRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::ApiVersionsRequest {
        kafka_protocol::messages::ApiVersionsRequest::default()
            .with_client_software_name(crate::call::wire_str(&self.software_name))
            .with_client_software_version(crate::call::wire_str(&self.software_version))
    }
}

/// The broker's version range per API key, from its ApiVersions response. The version of a call is the highest
/// both sides speak: [`VersionTable::version`] intersects the broker's range with the call's
/// [`Call::VERSIONS`], so there is no second list of weir's versions to keep in step with the calls.
///
/// A table built with [`VersionTable::from_response`] also keeps the cluster's finalized features (KIP-584) as
/// this broker last saw them, e.g. `transaction.version` ([`VersionTable::transaction_version`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionTable {
    /// Indexed by API key: the broker's `(min, max)`, `None` where it does not offer the API.
    ranges: Vec<Option<(i16, i16)>>,
    /// The epoch of `finalized_features`, -1 if the broker sent none.
    finalized_features_epoch: i64,
    /// `(name, min level, max level)` per finalized feature.
    finalized_features: Vec<(String, i16, i16)>,
}

impl Default for VersionTable {
    fn default() -> Self {
        Self {
            ranges: Vec::new(),
            finalized_features_epoch: -1,
            finalized_features: Vec::new(),
        }
    }
}

impl VersionTable {
    /// The table of a decoded ApiVersions response: its ranges (as [`VersionTable::from_ranges`]) and its
    /// finalized features.
    pub fn from_response(resp: &ApiVersionRanges) -> Self {
        Self {
            finalized_features_epoch: resp.finalized_features_epoch,
            finalized_features: resp.finalized_features.clone(),
            ..Self::from_ranges(&resp.ranges)
        }
    }

    /// The epoch of the finalized features (-1 if the broker sent none: ApiVersions before v3, or a cluster
    /// without feature versioning). Brokers learn of feature changes at different times: across brokers, the
    /// features with the highest epoch are the newest.
    pub fn finalized_features_epoch(&self) -> i64 {
        self.finalized_features_epoch
    }

    /// Every finalized feature, `(name, min level, max level)`; empty if the epoch is negative.
    pub fn finalized_features(&self) -> &[(String, i16, i16)] {
        if self.finalized_features_epoch < 0 {
            return &[];
        }
        &self.finalized_features
    }

    /// The finalized `(min level, max level)` of a feature, `None` if it is not finalized (a level of 0 is not
    /// sent by brokers: absent means 0) or the epoch is negative (the list is then not valid).
    pub fn finalized_feature(&self, name: &str) -> Option<(i16, i16)> {
        self.finalized_features()
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|&(_, min, max)| (min, max))
    }

    /// The cluster's finalized `transaction.version` (its max level), 0 if not finalized. 2 or more means the
    /// KIP-890 part 2 transaction protocol (see [`crate::txn`]).
    pub fn transaction_version(&self) -> i16 {
        self.finalized_feature(crate::txn::TRANSACTION_VERSION_FEATURE)
            .map_or(0, |(_, max)| max)
    }

    /// The table of a broker's decoded ranges `(api key, min, max)` (negative keys are ignored).
    pub fn from_ranges(theirs: &[(i16, i16, i16)]) -> Self {
        let mut ranges = Vec::new();
        for &(key, min, max) in theirs {
            let Ok(idx) = usize::try_from(key) else {
                continue;
            };
            // Keys are small; a broker claiming a huge key is ignored rather than allocated for.
            if idx > 1024 {
                continue;
            }
            if ranges.len() <= idx {
                ranges.resize(idx + 1, None);
            }
            ranges[idx] = Some((min, max));
        }
        Self {
            ranges,
            ..Self::default()
        }
    }

    /// The version to send `C` at: the highest both the broker and weir speak, or `None` if they share none.
    pub fn version<C: Call>(&self) -> Option<i16> {
        self.pick(C::KEY, &C::VERSIONS)
    }

    /// The highest version of `key` in both the broker's range and `ours`.
    pub fn pick(&self, key: i16, ours: &RangeInclusive<i16>) -> Option<i16> {
        let (their_min, their_max) = (*self.ranges.get(usize::try_from(key).ok()?)?)?;
        let lo = (*ours.start()).max(their_min);
        let hi = (*ours.end()).min(their_max);
        (lo <= hi).then_some(hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::FetchRequest;
    use crate::metadata::MetadataRequest;
    use crate::produce::ProduceRequest;

    #[test]
    fn picks_highest_common_version() {
        let t = VersionTable::from_ranges(&[(1, 0, 17), (3, 0, 9)]);
        assert_eq!(t.version::<FetchRequest>(), Some(17));
        assert_eq!(t.version::<MetadataRequest>(), Some(9));
        assert_eq!(t.version::<ProduceRequest>(), None);
    }

    #[test]
    fn no_overlap_means_unsupported() {
        let t = VersionTable::from_ranges(&[(0, 0, 2), (-1, 0, 3), (30_000, 0, 1)]);
        assert_eq!(t.version::<ProduceRequest>(), None);
        assert_eq!(t.pick(30_000, &(0..=1)), None);
    }
}

/// A decoded ApiVersions response: the error code, the broker's `(api key, min, max)` ranges and (v3+) the
/// cluster's finalized features.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionRanges {
    /// Error code (35 UNSUPPORTED_VERSION means: retry with v0, the list still tells what the broker has).
    pub error_code: i16,
    /// `(api key, min version, max version)` per API the broker offers.
    pub ranges: Vec<(i16, i16, i16)>,
    /// The epoch of `finalized_features` (tagged field 1, v3+); -1 when absent, and then the features are not
    /// valid.
    pub finalized_features_epoch: i64,
    /// `(name, min version level, max version level)` per finalized feature (tagged field 2, v3+), e.g.
    /// `("transaction.version", 2, 2)`. Brokers leave out features finalized at level 0.
    pub finalized_features: Vec<(String, i16, i16)>,
}

impl ErrorCodes for ApiVersionRanges {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

impl Default for ApiVersionRanges {
    fn default() -> Self {
        Self {
            error_code: 0,
            ranges: Vec::new(),
            finalized_features_epoch: -1,
            finalized_features: Vec::new(),
        }
    }
}

/// Decodes an ApiVersions response body (after its header, which is v0 at every version) of `version` (0..=3),
/// every count bounded by the bytes present. Of the tagged fields (v3), the finalized features (tags 1 and 2)
/// are read, each within its own size; the others (supported features, ...) are skipped.
pub fn decode_api_versions_response(
    body: bytes::Bytes,
    version: i16,
) -> Result<ApiVersionRanges, crate::ProtoError> {
    crate::wire::check_version("ApiVersions", version, &API_VERSIONS_VERSIONS)?;
    let flex = version >= 3;
    let mut r = crate::wire::WireReader::new(body, "ApiVersions", version);
    let error_code = r.i16("error code")?;
    let n = r
        .count(flex, if flex { 7 } else { 6 }, "api key count")?
        .unwrap_or(0);
    let mut ranges = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let key = r.i16("api key")?;
        let min = r.i16("min version")?;
        let max = r.i16("max version")?;
        if flex {
            r.tagged_fields()?;
        }
        ranges.push((key, min, max));
    }
    if version >= 1 {
        r.i32("throttle time")?;
    }
    let mut resp = ApiVersionRanges {
        error_code,
        ranges,
        ..ApiVersionRanges::default()
    };
    if flex {
        let n = r.uvarint("tagged field count")?;
        for _ in 0..n {
            let tag = r.uvarint("tag")?;
            let size = r.uvarint("tagged field size")? as usize;
            let field = r.bytes(size, "tagged field")?;
            let mut f = crate::wire::WireReader::new(field, "ApiVersions", version);
            match tag {
                1 => resp.finalized_features_epoch = f.i64("finalized features epoch")?,
                2 => resp.finalized_features = finalized_features(&mut f)?,
                _ => continue,
            }
            if f.remaining() != 0 {
                return Err(f.err(&format!("tagged field {tag} (size)")));
            }
        }
    }
    Ok(resp)
}

/// The `FinalizedFeatures` tagged field: a compact array of `(name, max version level, min version level)`,
/// returned as `(name, min, max)`.
fn finalized_features(r: &mut crate::wire::WireReader) -> Result<Vec<(String, i16, i16)>, crate::ProtoError> {
    // Smallest feature: name length, two levels, tags.
    let n = r.count(true, 6, "finalized feature count")?.unwrap_or(0);
    let mut features = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let name = r.required_string(true, "finalized feature name")?;
        let max = r.i16("max version level")?;
        let min = r.i16("min version level")?;
        r.tagged_fields()?;
        features.push((name, min, max));
    }
    Ok(features)
}

#[cfg(test)]
mod decode_tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::ApiVersionsResponse;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn decodes_what_kafka_protocol_encodes_at_every_version() {
        for version in 0..=3 {
            let resp = ApiVersionsResponse::default()
                .with_error_code(35)
                .with_api_keys(vec![
                    ApiVersion::default()
                        .with_api_key(1)
                        .with_min_version(4)
                        .with_max_version(17),
                    ApiVersion::default()
                        .with_api_key(3)
                        .with_min_version(0)
                        .with_max_version(12),
                ]);
            let mut buf = BytesMut::new();
            resp.encode(&mut buf, version).unwrap();
            let body = buf.freeze();
            let got = decode_api_versions_response(body.clone(), version).unwrap();
            assert_eq!(got.error_code, 35);
            assert_eq!(got.ranges, vec![(1, 4, 17), (3, 0, 12)]);
            let t = VersionTable::from_ranges(&got.ranges);
            assert_eq!(
                (
                    t.version::<crate::fetch::FetchRequest>(),
                    t.version::<crate::metadata::MetadataRequest>()
                ),
                (Some(17), Some(12))
            );
            for cut in 0..body.len() {
                assert!(
                    decode_api_versions_response(body.slice(..cut), version).is_err(),
                    "v{version} cut {cut}"
                );
            }
        }
        let mut hostile = 0i16.to_be_bytes().to_vec();
        hostile.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_api_versions_response(bytes::Bytes::from(hostile), 0).is_err());
    }

    fn kafka4_response() -> ApiVersionsResponse {
        use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
        use kafka_protocol::protocol::StrBytes;
        let s = |x: &str| StrBytes::from_string(x.to_owned());
        ApiVersionsResponse::default()
            .with_api_keys(vec![ApiVersion::default()
                .with_api_key(26)
                .with_min_version(0)
                .with_max_version(5)])
            .with_throttle_time_ms(1)
            .with_supported_features(vec![
                SupportedFeatureKey::default()
                    .with_name(s("transaction.version"))
                    .with_min_version(0)
                    .with_max_version(2),
                SupportedFeatureKey::default()
                    .with_name(s("metadata.version"))
                    .with_min_version(7)
                    .with_max_version(27),
            ])
            .with_finalized_features_epoch(1234)
            .with_finalized_features(vec![
                FinalizedFeatureKey::default()
                    .with_name(s("metadata.version"))
                    .with_min_version_level(27)
                    .with_max_version_level(27),
                FinalizedFeatureKey::default()
                    .with_name(s("transaction.version"))
                    .with_min_version_level(1)
                    .with_max_version_level(2),
            ])
            .with_zk_migration_ready(true)
            .with_unknown_tagged_field(9, bytes::Bytes::from_static(b"later"))
    }

    #[test]
    fn reads_finalized_features_from_a_v3_response() {
        let mut buf = BytesMut::new();
        kafka4_response().encode(&mut buf, 3).unwrap();
        let body = buf.freeze();
        let got = decode_api_versions_response(body.clone(), 3).unwrap();
        assert_eq!(got.ranges, vec![(26, 0, 5)]);
        assert_eq!(got.finalized_features_epoch, 1234);
        assert_eq!(
            got.finalized_features,
            vec![
                ("metadata.version".to_owned(), 27, 27),
                ("transaction.version".to_owned(), 1, 2)
            ]
        );
        let t = VersionTable::from_response(&got);
        assert_eq!(t.transaction_version(), 2);
        assert_eq!(t.finalized_feature("metadata.version"), Some((27, 27)));
        assert_eq!(t.finalized_feature("group.version"), None);
        assert_eq!(t.finalized_features_epoch(), 1234);
        assert_eq!(t.pick(26, &(0..=5)), Some(5));
        // The ranges-only constructor knows no features.
        assert_eq!(VersionTable::from_ranges(&got.ranges).transaction_version(), 0);
        assert_eq!(VersionTable::default().finalized_features_epoch(), -1);
        for cut in 0..body.len() {
            assert!(
                decode_api_versions_response(body.slice(..cut), 3).is_err(),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn no_finalized_features_without_an_epoch() {
        // v3 without tagged fields, and v0–v2 which have none.
        for version in 0..=3 {
            let mut buf = BytesMut::new();
            ApiVersionsResponse::default().encode(&mut buf, version).unwrap();
            let got = decode_api_versions_response(buf.freeze(), version).unwrap();
            assert_eq!(
                (got.finalized_features_epoch, got.finalized_features.len()),
                (-1, 0)
            );
            assert_eq!(VersionTable::from_response(&got).transaction_version(), 0);
        }
        // Features sent with a negative epoch are not valid.
        let resp = ApiVersionRanges {
            finalized_features: vec![("transaction.version".into(), 2, 2)],
            ..ApiVersionRanges::default()
        };
        assert_eq!(VersionTable::from_response(&resp).transaction_version(), 0);
        assert!(VersionTable::from_response(&resp).finalized_features().is_empty());
    }

    /// A v3 body: error 0, no api keys, throttle 0, then `tags`.
    fn v3_with_tags(tags: &[u8]) -> bytes::Bytes {
        let mut b = vec![0, 0, 1, 0, 0, 0, 0];
        b.extend_from_slice(tags);
        bytes::Bytes::from(b)
    }

    #[test]
    fn hand_built_finalized_features() {
        // Two tags: epoch 7 (8 bytes); one feature "tv" max 2 min 1 (1 + 1 + 2 + 2 + 2 + 1 = 9 bytes).
        let mut tags = vec![2, 1, 8];
        tags.extend_from_slice(&7i64.to_be_bytes());
        tags.extend_from_slice(&[2, 9, 2, 3, b't', b'v', 0, 2, 0, 1, 0]);
        let got = decode_api_versions_response(v3_with_tags(&tags), 3).unwrap();
        assert_eq!(got.finalized_features_epoch, 7);
        assert_eq!(got.finalized_features, vec![("tv".to_owned(), 1, 2)]);
        // A size that disagrees with the content is refused, both ways.
        let mut short = tags.clone();
        short[2] = 7;
        assert!(decode_api_versions_response(v3_with_tags(&short), 3).is_err());
        let mut long = vec![1, 1, 9];
        long.extend_from_slice(&7i64.to_be_bytes());
        long.push(0);
        assert!(decode_api_versions_response(v3_with_tags(&long), 3).is_err());
        // A huge feature count within a small tag is refused before anything is reserved.
        let huge = [1, 2, 6, 0x80, 0x80, 0x80, 0x80, 0x08, 0];
        assert!(decode_api_versions_response(v3_with_tags(&huge), 3).is_err());
        // A tag claiming more bytes than there are.
        let mut past = vec![1, 2, 0x80, 0x80, 0x80, 0x80, 0x08];
        past.extend_from_slice(&[1, 0]);
        assert!(decode_api_versions_response(v3_with_tags(&past), 3).is_err());
    }
}
