//! ApiVersions negotiation: for each API, the highest version both weir and the broker support.

use crate::wire::prealloc;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

/// The versions weir speaks, per API: `(api, min, max)`.
///
/// Maxima are capped below what `kafka-protocol` can encode where a later version changes semantics weir does
/// not implement yet (Fetch and Produce v13+ address topics by id instead of name). Fetch stops at v11, the last
/// version without tagged fields: tansu 0.6.0 puts a top-level tag 0 (node endpoints, a v16+ field) into v12
/// responses, which a strict decoder must refuse.
pub const WEIR_VERSIONS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 11),
    (ApiKey::Fetch, 4, 11),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 0, 4),
];

/// The negotiated version per API key. Cheap to copy around behind an `Arc`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionTable {
    /// Indexed by API key; `None` where the broker does not offer the API or no version overlaps.
    versions: Vec<Option<i16>>,
}

impl VersionTable {
    /// Intersects the broker's offered ranges with [`WEIR_VERSIONS`].
    pub fn negotiate(response: &ApiVersionsResponse) -> Self {
        Self::negotiate_with(response, WEIR_VERSIONS)
    }

    /// Intersects the broker's offered ranges with `ours`.
    pub fn negotiate_with(response: &ApiVersionsResponse, ours: &[(ApiKey, i16, i16)]) -> Self {
        let theirs: Vec<(i16, i16, i16)> = response
            .api_keys
            .iter()
            .map(|a| (a.api_key, a.min_version, a.max_version))
            .collect();
        Self::from_ranges_with(&theirs, ours)
    }

    /// Intersects decoded broker ranges `(api key, min, max)` with [`WEIR_VERSIONS`].
    pub fn from_ranges(theirs: &[(i16, i16, i16)]) -> Self {
        Self::from_ranges_with(theirs, WEIR_VERSIONS)
    }

    fn from_ranges_with(theirs: &[(i16, i16, i16)], ours: &[(ApiKey, i16, i16)]) -> Self {
        let mut versions = Vec::new();
        for &(key, min, max) in ours {
            let k = key as i16;
            let Some(&(_, their_min, their_max)) = theirs.iter().find(|a| a.0 == k) else {
                continue;
            };
            let lo = min.max(their_min);
            let hi = max.min(their_max);
            if lo <= hi {
                let idx = k as usize;
                if versions.len() <= idx {
                    versions.resize(idx + 1, None);
                }
                versions[idx] = Some(hi);
            }
        }
        Self { versions }
    }

    /// The version to use for `key`, or `None` if the broker and weir share none.
    pub fn get(&self, key: ApiKey) -> Option<i16> {
        self.versions.get(key as i16 as usize).copied().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;

    fn offered(list: &[(ApiKey, i16, i16)]) -> ApiVersionsResponse {
        ApiVersionsResponse::default().with_api_keys(
            list.iter()
                .map(|&(k, lo, hi)| {
                    ApiVersion::default()
                        .with_api_key(k as i16)
                        .with_min_version(lo)
                        .with_max_version(hi)
                })
                .collect(),
        )
    }

    #[test]
    fn picks_highest_common_version() {
        let t = VersionTable::negotiate(&offered(&[(ApiKey::Fetch, 0, 17), (ApiKey::Metadata, 0, 9)]));
        assert_eq!(t.get(ApiKey::Fetch), Some(11));
        assert_eq!(t.get(ApiKey::Metadata), Some(9));
        assert_eq!(t.get(ApiKey::Produce), None);
    }

    #[test]
    fn no_overlap_means_unsupported() {
        let t = VersionTable::negotiate(&offered(&[(ApiKey::Produce, 0, 2)]));
        assert_eq!(t.get(ApiKey::Produce), None);
    }
}

/// A decoded ApiVersions response: the error code and the broker's `(api key, min, max)` ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiVersionRanges {
    /// Error code (35 UNSUPPORTED_VERSION means: retry with v0, the list still tells what the broker has).
    pub error_code: i16,
    /// `(api key, min version, max version)` per API the broker offers.
    pub ranges: Vec<(i16, i16, i16)>,
}

/// Decodes an ApiVersions response body (after its header, which is v0 at every version) of `version` (0..=3),
/// every count bounded by the bytes present. Tagged fields (v3) are skipped.
pub fn decode_api_versions_response(
    body: bytes::Bytes,
    version: i16,
) -> Result<ApiVersionRanges, crate::ProtoError> {
    if !(0..=3).contains(&version) {
        return Err(crate::ProtoError::Decode {
            api: "ApiVersions",
            version,
            reason: "unsupported version".into(),
        });
    }
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
    if flex {
        r.tagged_fields()?;
    }
    Ok(ApiVersionRanges { error_code, ranges })
}

#[cfg(test)]
mod decode_tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
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
                (t.get(ApiKey::Fetch), t.get(ApiKey::Metadata)),
                (Some(11), Some(12))
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
}
