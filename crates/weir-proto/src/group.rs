//! The consumer group membership responses — FindCoordinator (v0–v4), JoinGroup (v0–v9), SyncGroup (v0–v5),
//! Heartbeat (v0–v4) and LeaveGroup (v0–v5) — decoded here rather than by `kafka-protocol`, so that no count
//! from the wire is trusted before it is checked against the bytes present. Only the fields weir uses are
//! kept; tagged fields are skipped.

use bytes::Bytes;

use crate::call::ErrorCodes;
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

impl ErrorCodes for FoundCoordinator {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
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

impl ErrorCodes for JoinGroupResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
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

impl ErrorCodes for SyncGroupResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
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

impl ErrorCodes for LeaveGroupResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
        self.members.error_codes(f);
    }
}

/// One member's result in a LeaveGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftMember {
    /// The member id.
    pub member_id: String,
    /// Error code, 0 if none.
    pub error_code: i16,
}

impl ErrorCodes for LeftMember {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
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

/// A FindCoordinator request for one key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindCoordinatorRequest {
    /// The group id (key type 0) or transactional id (key type 1).
    pub key: String,
    /// 0: group; 1: transaction.
    pub key_type: i8,
}

impl FindCoordinatorRequest {
    pub(crate) fn to_wire(&self, version: i16) -> kafka_protocol::messages::FindCoordinatorRequest {
        let req = kafka_protocol::messages::FindCoordinatorRequest::default().with_key_type(self.key_type);
        let key = crate::call::wire_str(&self.key);
        if version >= 4 {
            req.with_coordinator_keys(vec![key])
        } else {
            req.with_key(key)
        }
    }
}

/// A JoinGroup request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinGroupRequest {
    /// The group.
    pub group_id: String,
    /// How long the coordinator waits for a heartbeat before removing the member.
    pub session_timeout_ms: i32,
    /// How long the coordinator waits for members to rejoin (v1+).
    pub rebalance_timeout_ms: i32,
    /// The member id ("" for a new member).
    pub member_id: String,
    /// The static instance id (v5+), if any.
    pub group_instance_id: Option<String>,
    /// The protocol type ("consumer").
    pub protocol_type: String,
    /// The protocols offered, `(name, metadata)`, in order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// Why the member joins (v8+), if said.
    pub reason: Option<String>,
}

impl JoinGroupRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::JoinGroupRequest {
        use crate::call::wire_str;
        use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
        kafka_protocol::messages::JoinGroupRequest::default()
            .with_group_id(crate::call::wire_group(&self.group_id))
            .with_session_timeout_ms(self.session_timeout_ms)
            .with_rebalance_timeout_ms(self.rebalance_timeout_ms)
            .with_member_id(wire_str(&self.member_id))
            .with_group_instance_id(self.group_instance_id.as_deref().map(wire_str))
            .with_protocol_type(wire_str(&self.protocol_type))
            .with_protocols(
                self.protocols
                    .iter()
                    .map(|(name, metadata)| {
                        JoinGroupRequestProtocol::default()
                            .with_name(wire_str(name))
                            .with_metadata(metadata.clone())
                    })
                    .collect(),
            )
            .with_reason(self.reason.as_deref().map(wire_str))
    }
}

/// A SyncGroup request; the leader sends the assignments, `(member id, assignment)`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncGroupRequest {
    /// The group.
    pub group_id: String,
    /// The generation joined.
    pub generation_id: i32,
    /// The member id.
    pub member_id: String,
    /// The static instance id (v3+), if any.
    pub group_instance_id: Option<String>,
    /// The protocol type (v5+).
    pub protocol_type: Option<String>,
    /// The protocol the group chose (v5+).
    pub protocol_name: Option<String>,
    /// Assignments per member (leader only).
    pub assignments: Vec<(String, Bytes)>,
}

impl SyncGroupRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::SyncGroupRequest {
        use crate::call::wire_str;
        use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
        kafka_protocol::messages::SyncGroupRequest::default()
            .with_group_id(crate::call::wire_group(&self.group_id))
            .with_generation_id(self.generation_id)
            .with_member_id(wire_str(&self.member_id))
            .with_group_instance_id(self.group_instance_id.as_deref().map(wire_str))
            .with_protocol_type(self.protocol_type.as_deref().map(wire_str))
            .with_protocol_name(self.protocol_name.as_deref().map(wire_str))
            .with_assignments(
                self.assignments
                    .iter()
                    .map(|(member, assignment)| {
                        SyncGroupRequestAssignment::default()
                            .with_member_id(wire_str(member))
                            .with_assignment(assignment.clone())
                    })
                    .collect(),
            )
    }
}

/// A Heartbeat request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatRequest {
    /// The group.
    pub group_id: String,
    /// The member's generation.
    pub generation_id: i32,
    /// The member id.
    pub member_id: String,
    /// The static instance id (v3+), if any.
    pub group_instance_id: Option<String>,
}

impl HeartbeatRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::HeartbeatRequest {
        use crate::call::wire_str;
        kafka_protocol::messages::HeartbeatRequest::default()
            .with_group_id(crate::call::wire_group(&self.group_id))
            .with_generation_id(self.generation_id)
            .with_member_id(wire_str(&self.member_id))
            .with_group_instance_id(self.group_instance_id.as_deref().map(wire_str))
    }
}

/// A LeaveGroup request for one member.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaveGroupRequest {
    /// The group.
    pub group_id: String,
    /// The member id.
    pub member_id: String,
    /// The static instance id (v3+), if any.
    pub group_instance_id: Option<String>,
    /// Why the member leaves (v5+), if said.
    pub reason: Option<String>,
}

impl LeaveGroupRequest {
    pub(crate) fn to_wire(&self, version: i16) -> kafka_protocol::messages::LeaveGroupRequest {
        use crate::call::wire_str;
        use kafka_protocol::messages::leave_group_request::MemberIdentity;
        let req = kafka_protocol::messages::LeaveGroupRequest::default()
            .with_group_id(crate::call::wire_group(&self.group_id));
        if version >= 3 {
            req.with_members(vec![MemberIdentity::default()
                .with_member_id(wire_str(&self.member_id))
                .with_group_instance_id(self.group_instance_id.as_deref().map(wire_str))
                .with_reason(self.reason.as_deref().map(wire_str))])
        } else {
            req.with_member_id(wire_str(&self.member_id))
        }
    }
}
