//! The consumer group membership responses — FindCoordinator (v0–v4), JoinGroup (v0–v9), SyncGroup (v0–v5),
//! Heartbeat (v0–v4) and LeaveGroup (v0–v5) — decoded here rather than by `kafka-protocol`, so that no count
//! from the wire is trusted before it is checked against the bytes present. Only the fields weir uses are
//! kept; tagged fields are skipped.

use bytes::Bytes;

use crate::wire::{check_version, prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_find_coordinator_response`] reads.
pub const FIND_COORDINATOR_VERSIONS: std::ops::RangeInclusive<i16> = 0..=4;
/// Versions [`decode_join_group_response`] reads.
pub const JOIN_GROUP_VERSIONS: std::ops::RangeInclusive<i16> = 0..=9;
/// Versions [`decode_sync_group_response`] reads.
pub const SYNC_GROUP_VERSIONS: std::ops::RangeInclusive<i16> = 0..=5;
/// Versions [`decode_heartbeat_response`] reads.
pub const HEARTBEAT_VERSIONS: std::ops::RangeInclusive<i16> = 0..=4;
/// Versions [`decode_leave_group_response`] reads.
pub const LEAVE_GROUP_VERSIONS: std::ops::RangeInclusive<i16> = 0..=5;

/// One coordinator of a FindCoordinator response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCoordinator {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// The coordinator's node id.
    pub node_id: i32,
    /// The coordinator's host.
    pub host: String,
    /// The coordinator's port.
    pub port: i32,
}

/// Decodes a FindCoordinator response body (after the response header) of `version` (0..=4).
///
/// Versions 0–3 answer for one key: the result is that single coordinator. Version 4 answers a list (weir
/// asks for one key, so expects one entry, but the list is returned as sent).
pub fn decode_find_coordinator_response(
    body: Bytes,
    version: i16,
) -> Result<Vec<FoundCoordinator>, ProtoError> {
    const API: &str = "FindCoordinator";
    check_version(API, version, &FIND_COORDINATOR_VERSIONS)?;
    let flex = version >= 3;
    let mut r = WireReader::new(body, API, version);
    if version >= 1 {
        r.i32("throttle time")?;
    }
    let out = if version >= 4 {
        // key, node id, host, port, error code, error message, tags.
        let n = r
            .count(true, 1 + 4 + 1 + 4 + 2 + 1 + 1, "coordinator count")?
            .unwrap_or(0);
        let mut out = Vec::with_capacity(prealloc(n));
        for _ in 0..n {
            r.required_string(true, "key")?;
            let node_id = r.i32("node id")?;
            let host = r.required_string(true, "host")?;
            let port = r.i32("port")?;
            let error_code = r.i16("error code")?;
            r.string(true, "error message")?;
            r.tagged_fields()?;
            out.push(FoundCoordinator {
                error_code,
                node_id,
                host,
                port,
            });
        }
        out
    } else {
        let error_code = r.i16("error code")?;
        if version >= 1 {
            r.string(flex, "error message")?;
        }
        let node_id = r.i32("node id")?;
        let host = r.required_string(flex, "host")?;
        let port = r.i32("port")?;
        vec![FoundCoordinator {
            error_code,
            node_id,
            host,
            port,
        }]
    };
    if flex {
        r.tagged_fields()?;
    }
    Ok(out)
}

/// A decoded JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinGroupResponse {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// The generation of the group.
    pub generation_id: i32,
    /// The assignor the group chose (null in some error answers).
    pub protocol_name: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// Whether the leader must skip the assignment (v9+; the broker assigns).
    pub skip_assignment: bool,
    /// This member's id.
    pub member_id: String,
    /// The members (sent to the leader only).
    pub members: Vec<JoinGroupMember>,
}

/// One member of a JoinGroup response, as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGroupMember {
    /// The member id.
    pub member_id: String,
    /// The static instance id (v5+), if any.
    pub group_instance_id: Option<String>,
    /// The member's subscription (protocol metadata).
    pub metadata: Bytes,
}

/// Decodes a JoinGroup response body (after the response header) of `version` (0..=9).
pub fn decode_join_group_response(body: Bytes, version: i16) -> Result<JoinGroupResponse, ProtoError> {
    const API: &str = "JoinGroup";
    check_version(API, version, &JOIN_GROUP_VERSIONS)?;
    let flex = version >= 6;
    let mut r = WireReader::new(body, API, version);
    if version >= 2 {
        r.i32("throttle time")?;
    }
    let error_code = r.i16("error code")?;
    let generation_id = r.i32("generation id")?;
    if version >= 7 {
        r.string(true, "protocol type")?;
    }
    let protocol_name = r.string(flex, "protocol name")?;
    let leader = r.required_string(flex, "leader")?;
    let skip_assignment = if version >= 9 {
        r.bool("skip assignment")?
    } else {
        false
    };
    let member_id = r.required_string(flex, "member id")?;
    let min_member = if flex {
        1 + 1 + 1 + 1
    } else {
        2 + if version >= 5 { 2 } else { 0 } + 4
    };
    let n = r.count(flex, min_member, "member count")?.unwrap_or(0);
    let mut members = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let member_id = r.required_string(flex, "member id")?;
        let group_instance_id = if version >= 5 {
            r.string(flex, "group instance id")?
        } else {
            None
        };
        let metadata = r
            .nullable_bytes(flex, "member metadata")?
            .ok_or_else(|| r.err("member metadata (null)"))?;
        if flex {
            r.tagged_fields()?;
        }
        members.push(JoinGroupMember {
            member_id,
            group_instance_id,
            metadata,
        });
    }
    if flex {
        r.tagged_fields()?;
    }
    Ok(JoinGroupResponse {
        error_code,
        generation_id,
        protocol_name,
        leader,
        skip_assignment,
        member_id,
        members,
    })
}

/// A decoded SyncGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncGroupResponse {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// This member's assignment (consumer protocol encoding).
    pub assignment: Bytes,
}

/// Decodes a SyncGroup response body (after the response header) of `version` (0..=5).
pub fn decode_sync_group_response(body: Bytes, version: i16) -> Result<SyncGroupResponse, ProtoError> {
    const API: &str = "SyncGroup";
    check_version(API, version, &SYNC_GROUP_VERSIONS)?;
    let flex = version >= 4;
    let mut r = WireReader::new(body, API, version);
    if version >= 1 {
        r.i32("throttle time")?;
    }
    let error_code = r.i16("error code")?;
    if version >= 5 {
        r.string(true, "protocol type")?;
        r.string(true, "protocol name")?;
    }
    let assignment = r
        .nullable_bytes(flex, "assignment")?
        .ok_or_else(|| r.err("assignment (null)"))?;
    if flex {
        r.tagged_fields()?;
    }
    Ok(SyncGroupResponse {
        error_code,
        assignment,
    })
}

/// Decodes a Heartbeat response body (after the response header) of `version` (0..=4): its error code.
pub fn decode_heartbeat_response(body: Bytes, version: i16) -> Result<i16, ProtoError> {
    const API: &str = "Heartbeat";
    check_version(API, version, &HEARTBEAT_VERSIONS)?;
    let mut r = WireReader::new(body, API, version);
    if version >= 1 {
        r.i32("throttle time")?;
    }
    let error_code = r.i16("error code")?;
    if version >= 4 {
        r.tagged_fields()?;
    }
    Ok(error_code)
}

/// A decoded LeaveGroup response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaveGroupResponse {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// Per-member results (v3+; empty before).
    pub members: Vec<LeftMember>,
}

/// One member's result in a LeaveGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftMember {
    /// The member id.
    pub member_id: String,
    /// Error code, 0 if none.
    pub error_code: i16,
}

/// Decodes a LeaveGroup response body (after the response header) of `version` (0..=5).
pub fn decode_leave_group_response(body: Bytes, version: i16) -> Result<LeaveGroupResponse, ProtoError> {
    const API: &str = "LeaveGroup";
    check_version(API, version, &LEAVE_GROUP_VERSIONS)?;
    let flex = version >= 4;
    let mut r = WireReader::new(body, API, version);
    if version >= 1 {
        r.i32("throttle time")?;
    }
    let error_code = r.i16("error code")?;
    let mut members = Vec::new();
    if version >= 3 {
        let min_member = if flex { 1 + 1 + 2 + 1 } else { 2 + 2 + 2 };
        let n = r.count(flex, min_member, "member count")?.unwrap_or(0);
        members.reserve(prealloc(n));
        for _ in 0..n {
            let member_id = r.required_string(flex, "member id")?;
            r.string(flex, "group instance id")?;
            let error_code = r.i16("member error code")?;
            if flex {
                r.tagged_fields()?;
            }
            members.push(LeftMember {
                member_id,
                error_code,
            });
        }
    }
    if flex {
        r.tagged_fields()?;
    }
    Ok(LeaveGroupResponse { error_code, members })
}
