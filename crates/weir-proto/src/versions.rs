//! ApiVersions negotiation: for each API, the highest version both weir and the broker support.

use std::ops::RangeInclusive;

use crate::call::Call;
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionTable {
    /// Indexed by API key: the broker's `(min, max)`, `None` where it does not offer the API.
    ranges: Vec<Option<(i16, i16)>>,
}

impl VersionTable {
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
        Self { ranges }
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
        assert_eq!(t.version::<FetchRequest>(), Some(11));
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
