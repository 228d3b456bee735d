//! ApiVersions negotiation: for each API, the highest version both weir and the broker support.

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
        let mut versions = Vec::new();
        for &(key, min, max) in ours {
            let k = key as i16;
            let Some(theirs) = response.api_keys.iter().find(|a| a.api_key == k) else {
                continue;
            };
            let lo = min.max(theirs.min_version);
            let hi = max.min(theirs.max_version);
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
