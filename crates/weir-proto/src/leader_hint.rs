//! New-leader hints (KIP-951): a broker that no longer leads a partition names the leader it knows of in its
//! Produce (v10+) and Fetch (v16+) answers, with that leader's endpoint, so that a client can move the partition
//! there without asking for metadata first. Both are tagged fields, decoded here for both responses.

use crate::wire::WireReader;
use crate::ProtoError;

/// The tag of a partition's `CurrentLeader` in Produce v10+ responses.
pub(crate) const PRODUCE_CURRENT_LEADER_TAG: u32 = 0;
/// The tag of the top-level `NodeEndpoints` in Produce v10+ responses.
pub(crate) const PRODUCE_NODE_ENDPOINTS_TAG: u32 = 0;
/// The tag of a partition's `CurrentLeader` in Fetch v12+ responses (filled by brokers from v16).
pub(crate) const FETCH_CURRENT_LEADER_TAG: u32 = 1;
/// The tag of the top-level `NodeEndpoints` in Fetch v16+ responses.
pub(crate) const FETCH_NODE_ENDPOINTS_TAG: u32 = 0;

/// A partition's leader as the answering broker knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentLeader {
    /// The leader's node id (-1: unknown).
    pub leader_id: i32,
    /// Its leader epoch (-1: unknown).
    pub leader_epoch: i32,
}

impl CurrentLeader {
    /// The hint, if it names a leader at a known epoch.
    pub fn known(self) -> Option<CurrentLeader> {
        (self.leader_id >= 0 && self.leader_epoch >= 0).then_some(self)
    }
}

/// Where a broker named in a hint listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEndpoint {
    /// Node id.
    pub node_id: i32,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i32,
}

/// Reads a `CurrentLeader` structure: leader id, leader epoch, tagged fields.
pub(crate) fn read_current_leader(r: &mut WireReader) -> Result<CurrentLeader, ProtoError> {
    let leader_id = r.i32("current leader id")?;
    let leader_epoch = r.i32("current leader epoch")?;
    r.tagged_fields()?;
    Ok(CurrentLeader {
        leader_id,
        leader_epoch,
    })
}

/// Reads a compact array of `NodeEndpoint`s (node id, host, port, rack, tagged fields), bounded by the bytes
/// present.
pub(crate) fn read_node_endpoints(r: &mut WireReader) -> Result<Vec<NodeEndpoint>, ProtoError> {
    // Node id, host (length), port, rack (null), tags.
    let n = r
        .count(true, 4 + 1 + 4 + 1 + 1, "node endpoint count")?
        .unwrap_or(0);
    let mut out = Vec::with_capacity(crate::wire::prealloc(n));
    for _ in 0..n {
        let node_id = r.i32("node id")?;
        let host = r.required_string(true, "node host")?;
        let port = r.i32("node port")?;
        r.string(true, "node rack")?;
        r.tagged_fields()?;
        out.push(NodeEndpoint { node_id, host, port });
    }
    Ok(out)
}
