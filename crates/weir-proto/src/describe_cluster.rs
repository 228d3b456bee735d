//! The DescribeCluster request (v0–v2, all flexible) and its response, decoded here rather than by
//! `kafka-protocol`, so that no count from the wire is trusted before it is checked against the bytes present.
//! Tagged fields are skipped.
//!
//! v1 adds the endpoint type asked for (weir asks for brokers, 1, the only one a broker serves); v2 adds fenced
//! brokers (listed only when asked for) and each broker's `is_fenced`.

use bytes::Bytes;

use crate::call::ErrorCodes;
use crate::wire::{check_version, prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_describe_cluster_response`] reads.
pub const DESCRIBE_CLUSTER_VERSIONS: std::ops::RangeInclusive<i16> = 0..=2;

/// The endpoint type of brokers (DescribeCluster v1+): the client listeners of the brokers.
pub const ENDPOINT_TYPE_BROKERS: i8 = 1;

/// A DescribeCluster request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeClusterRequest {
    /// Whether the response carries the operations this client may perform on the cluster.
    pub include_cluster_authorized_operations: bool,
    /// Whether fenced brokers are listed too (v2+; ignored before, where they never are).
    pub include_fenced_brokers: bool,
}

impl DescribeClusterRequest {
    pub(crate) fn to_wire(&self, version: i16) -> kafka_protocol::messages::DescribeClusterRequest {
        kafka_protocol::messages::DescribeClusterRequest::default()
            .with_include_cluster_authorized_operations(self.include_cluster_authorized_operations)
            .with_endpoint_type(ENDPOINT_TYPE_BROKERS)
            .with_include_fenced_brokers(self.include_fenced_brokers && version >= 2)
    }
}

/// One broker of a DescribeCluster response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ClusterBroker {
    /// The broker's id.
    pub broker_id: i32,
    /// Its host name.
    pub host: String,
    /// Its port.
    pub port: i32,
    /// Its rack, if it has one.
    pub rack: Option<String>,
    /// Whether it is fenced (v2+; false before).
    pub is_fenced: bool,
}

/// A decoded DescribeCluster response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DescribeClusterResponse {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// The broker's message for an error, if any.
    pub error_message: Option<String>,
    /// The endpoint type the brokers are listed with (v1+; 1, brokers, before).
    pub endpoint_type: i8,
    /// The cluster id.
    pub cluster_id: String,
    /// The controller's id as the answering broker knows it, -1 if none (in KRaft clusters, a broker chosen to
    /// receive requests meant for the controller).
    pub controller_id: i32,
    /// The brokers.
    pub brokers: Vec<ClusterBroker>,
    /// A bit set of the operations this client may perform on the cluster (`i32::MIN` when not asked for).
    pub cluster_authorized_operations: i32,
}

impl ErrorCodes for DescribeClusterResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes a DescribeCluster response body (after the response header) of `version` (0..=2).
pub fn decode_describe_cluster_response(
    body: Bytes,
    version: i16,
) -> Result<DescribeClusterResponse, ProtoError> {
    const API: &str = "DescribeCluster";
    check_version(API, version, &DESCRIBE_CLUSTER_VERSIONS)?;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    let error_code = r.i16("error code")?;
    let error_message = r.string(true, "error message")?;
    let endpoint_type = if version >= 1 {
        r.i8("endpoint type")?
    } else {
        ENDPOINT_TYPE_BROKERS
    };
    let cluster_id = r.required_string(true, "cluster id")?;
    let controller_id = r.i32("controller id")?;
    // Id, host, port, rack, is fenced (v2), tags.
    let min_broker = 4 + 1 + 4 + 1 + usize::from(version >= 2) + 1;
    let n = r.count(true, min_broker, "broker count")?.unwrap_or(0);
    let mut brokers = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let broker_id = r.i32("broker id")?;
        let host = r.required_string(true, "host")?;
        let port = r.i32("port")?;
        let rack = r.string(true, "rack")?;
        let is_fenced = version >= 2 && r.bool("is fenced")?;
        r.tagged_fields()?;
        brokers.push(ClusterBroker {
            broker_id,
            host,
            port,
            rack,
            is_fenced,
        });
    }
    let cluster_authorized_operations = r.i32("cluster authorized operations")?;
    r.tagged_fields()?;
    Ok(DescribeClusterResponse {
        error_code,
        error_message,
        endpoint_type,
        cluster_id,
        controller_id,
        brokers,
        cluster_authorized_operations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_brokers_are_asked_for_only_where_the_field_exists() {
        let req = DescribeClusterRequest {
            include_cluster_authorized_operations: true,
            include_fenced_brokers: true,
        };
        let v2 = req.to_wire(2);
        assert!(v2.include_fenced_brokers && v2.include_cluster_authorized_operations);
        assert_eq!(v2.endpoint_type, ENDPOINT_TYPE_BROKERS);
        assert!(!req.to_wire(1).include_fenced_brokers);
        assert!(!req.to_wire(0).include_fenced_brokers);
    }
}
