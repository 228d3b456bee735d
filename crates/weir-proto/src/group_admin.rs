//! The consumer group administration requests — ListGroups (v0–v5), DescribeGroups (v0–v6), DeleteGroups
//! (v0–v2), ConsumerGroupDescribe (v0–v1, KIP-848's consumer protocol) and OffsetDelete (v0) — and their
//! responses, decoded here rather than by `kafka-protocol`, so that no count from the wire is trusted before
//! it is checked against the bytes present. Tagged fields are skipped.
//!
//! Member metadata and assignments of DescribeGroups stay raw bytes (zero-copy slices of the response): they
//! are whatever the group's members sent, decoded (bounded) by [`crate::consumer_protocol`] when the group's
//! protocol type is `consumer`.

use bytes::Bytes;

use crate::call::ErrorCodes;
use crate::group_offsets::{topic_errors, CommitTopic};
use crate::wire::{check_version, prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_list_groups_response`] reads.
pub const LIST_GROUPS_VERSIONS: std::ops::RangeInclusive<i16> = 0..=5;
/// Versions [`decode_describe_groups_response`] reads.
pub const DESCRIBE_GROUPS_VERSIONS: std::ops::RangeInclusive<i16> = 0..=6;
/// Versions [`decode_delete_groups_response`] reads (v3 adds only an error message, which the pinned encoder
/// cannot ask for).
pub const DELETE_GROUPS_VERSIONS: std::ops::RangeInclusive<i16> = 0..=2;
/// Versions [`decode_consumer_group_describe_response`] reads.
pub const CONSUMER_GROUP_DESCRIBE_VERSIONS: std::ops::RangeInclusive<i16> = 0..=1;
/// Versions [`decode_offset_delete_response`] reads.
pub const OFFSET_DELETE_VERSIONS: std::ops::RangeInclusive<i16> = 0..=0;

/// The first ListGroups version with a states filter (KIP-518).
pub const LIST_GROUPS_STATES_FILTER_VERSION: i16 = 4;
/// The first ListGroups version with a types filter (KIP-848).
pub const LIST_GROUPS_TYPES_FILTER_VERSION: i16 = 5;

/// A ListGroups request: the groups one broker coordinates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListGroupsRequest {
    /// Only groups in these states ("Stable", "Empty", ...); empty for every state. Sent from v4 on: an older
    /// version answers every group, and the caller filters.
    pub states_filter: Vec<String>,
    /// Only groups of these types ("classic", "consumer", "share"); empty for every type. Sent from v5 on: an
    /// older version answers every group, and the caller filters.
    pub types_filter: Vec<String>,
}

impl ListGroupsRequest {
    pub(crate) fn to_wire(&self, version: i16) -> kafka_protocol::messages::ListGroupsRequest {
        use crate::call::wire_str;
        let mut req = kafka_protocol::messages::ListGroupsRequest::default();
        if version >= LIST_GROUPS_STATES_FILTER_VERSION {
            req = req.with_states_filter(self.states_filter.iter().map(|s| wire_str(s)).collect());
        }
        if version >= LIST_GROUPS_TYPES_FILTER_VERSION {
            req = req.with_types_filter(self.types_filter.iter().map(|s| wire_str(s)).collect());
        }
        req
    }
}

/// One group of a ListGroups response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListedGroup {
    /// The group id.
    pub group_id: String,
    /// The protocol type ("consumer" for consumers; "" for a group that only commits offsets).
    pub protocol_type: String,
    /// The group's state (v4+).
    pub group_state: Option<String>,
    /// The group's type: "classic", "consumer", "share", ... (v5+).
    pub group_type: Option<String>,
}

/// A decoded ListGroups response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListGroupsResponse {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// The groups the broker coordinates.
    pub groups: Vec<ListedGroup>,
}

impl ErrorCodes for ListGroupsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes a ListGroups response body (after the response header) of `version` (0..=5).
pub fn decode_list_groups_response(body: Bytes, version: i16) -> Result<ListGroupsResponse, ProtoError> {
    const API: &str = "ListGroups";
    check_version(API, version, &LIST_GROUPS_VERSIONS)?;
    let flex = version >= 3;
    let mut r = WireReader::new(body, API, version);
    if version >= 1 {
        r.i32("throttle time")?;
    }
    let error_code = r.i16("error code")?;
    // Group id, protocol type, state (v4+), type (v5+), tags.
    let min_group = if flex {
        2 + usize::from(version >= 4) + usize::from(version >= 5) + 1
    } else {
        2 + 2
    };
    let n = r.count(flex, min_group, "group count")?.unwrap_or(0);
    let mut groups = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let group_id = r.required_string(flex, "group id")?;
        let protocol_type = r.required_string(flex, "protocol type")?;
        let group_state = if version >= 4 {
            Some(r.required_string(flex, "group state")?)
        } else {
            None
        };
        let group_type = if version >= 5 {
            Some(r.required_string(flex, "group type")?)
        } else {
            None
        };
        if flex {
            r.tagged_fields()?;
        }
        groups.push(ListedGroup {
            group_id,
            protocol_type,
            group_state,
            group_type,
        });
    }
    if flex {
        r.tagged_fields()?;
    }
    Ok(ListGroupsResponse { error_code, groups })
}

/// A DescribeGroups request (classic groups).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeGroupsRequest {
    /// The groups to describe (all coordinated by the broker asked).
    pub groups: Vec<String>,
}

impl DescribeGroupsRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::DescribeGroupsRequest {
        kafka_protocol::messages::DescribeGroupsRequest::default()
            .with_groups(self.groups.iter().map(|g| crate::call::wire_group(g)).collect())
    }
}

/// One member of a DescribeGroups response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribedGroupMember {
    /// The member id.
    pub member_id: String,
    /// The static instance id (v4+), if any.
    pub group_instance_id: Option<String>,
    /// The client id of the member's last JoinGroup.
    pub client_id: String,
    /// The host the member connects from (as the broker saw it, e.g. `/127.0.0.1`).
    pub client_host: String,
    /// The member's metadata for the group's protocol (a subscription, for consumers), raw.
    pub member_metadata: Bytes,
    /// The member's assignment from the leader (consumer protocol encoding, for consumers), raw.
    pub member_assignment: Bytes,
}

/// One group of a DescribeGroups response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribedGroup {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// The broker's message for an error (v6+), if any.
    pub error_message: Option<String>,
    /// The group id.
    pub group_id: String,
    /// The group's state ("Stable", "Empty", "Dead", ...).
    pub group_state: String,
    /// The protocol type ("consumer"), or "".
    pub protocol_type: String,
    /// The protocol the group chose (for consumers, the assignor), or "".
    pub protocol_data: String,
    /// The members.
    pub members: Vec<DescribedGroupMember>,
    /// The operations this client may perform on the group, as a bit field (v3+; `i32::MIN` if not asked).
    pub authorized_operations: i32,
}

impl ErrorCodes for DescribedGroup {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes a DescribeGroups response body (after the response header) of `version` (0..=6): one result per
/// group asked.
pub fn decode_describe_groups_response(body: Bytes, version: i16) -> Result<Vec<DescribedGroup>, ProtoError> {
    const API: &str = "DescribeGroups";
    check_version(API, version, &DESCRIBE_GROUPS_VERSIONS)?;
    let flex = version >= 5;
    let mut r = WireReader::new(body, API, version);
    if version >= 1 {
        r.i32("throttle time")?;
    }
    // Error, message (v6+), id, state, protocol type, protocol data, member count, operations (v3+), tags.
    let min_group = if flex {
        2 + usize::from(version >= 6) + 4 + 1 + 4 + 1
    } else {
        2 + 4 * 2 + 4 + if version >= 3 { 4 } else { 0 }
    };
    // Member id, instance id (v4+), client id, host, metadata, assignment, tags.
    let min_member = if flex {
        1 + 1 + 1 + 1 + 1 + 1 + 1
    } else {
        2 + if version >= 4 { 2 } else { 0 } + 2 + 2 + 4 + 4
    };
    let n = r.count(flex, min_group, "group count")?.unwrap_or(0);
    let mut groups = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let error_code = r.i16("error code")?;
        let error_message = if version >= 6 {
            r.string(flex, "error message")?
        } else {
            None
        };
        let group_id = r.required_string(flex, "group id")?;
        let group_state = r.required_string(flex, "group state")?;
        let protocol_type = r.required_string(flex, "protocol type")?;
        let protocol_data = r.required_string(flex, "protocol data")?;
        let m = r.count(flex, min_member, "member count")?.unwrap_or(0);
        let mut members = Vec::with_capacity(prealloc(m));
        for _ in 0..m {
            let member_id = r.required_string(flex, "member id")?;
            let group_instance_id = if version >= 4 {
                r.string(flex, "group instance id")?
            } else {
                None
            };
            let client_id = r.required_string(flex, "client id")?;
            let client_host = r.required_string(flex, "client host")?;
            let member_metadata = r
                .nullable_bytes(flex, "member metadata")?
                .ok_or_else(|| r.err("member metadata (null)"))?;
            let member_assignment = r
                .nullable_bytes(flex, "member assignment")?
                .ok_or_else(|| r.err("member assignment (null)"))?;
            if flex {
                r.tagged_fields()?;
            }
            members.push(DescribedGroupMember {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                member_metadata,
                member_assignment,
            });
        }
        let authorized_operations = if version >= 3 {
            r.i32("authorized operations")?
        } else {
            i32::MIN
        };
        if flex {
            r.tagged_fields()?;
        }
        groups.push(DescribedGroup {
            error_code,
            error_message,
            group_id,
            group_state,
            protocol_type,
            protocol_data,
            members,
            authorized_operations,
        });
    }
    if flex {
        r.tagged_fields()?;
    }
    Ok(groups)
}

/// A DeleteGroups request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteGroupsRequest {
    /// The groups to delete (all coordinated by the broker asked).
    pub groups: Vec<String>,
}

impl DeleteGroupsRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::DeleteGroupsRequest {
        kafka_protocol::messages::DeleteGroupsRequest::default()
            .with_groups_names(self.groups.iter().map(|g| crate::call::wire_group(g)).collect())
    }
}

/// One group's result in a DeleteGroups response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeletedGroup {
    /// The group id.
    pub group_id: String,
    /// Error code, 0 if the group was deleted (68 NON_EMPTY_GROUP: it has members).
    pub error_code: i16,
}

impl ErrorCodes for DeletedGroup {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes a DeleteGroups response body (after the response header) of `version` (0..=2).
pub fn decode_delete_groups_response(body: Bytes, version: i16) -> Result<Vec<DeletedGroup>, ProtoError> {
    const API: &str = "DeleteGroups";
    check_version(API, version, &DELETE_GROUPS_VERSIONS)?;
    let flex = version >= 2;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    // Group id (1 byte compact, 2 not), error code, tags (flexible): 4 bytes either way.
    let min_result = 4;
    let n = r.count(flex, min_result, "result count")?.unwrap_or(0);
    let mut results = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let group_id = r.required_string(flex, "group id")?;
        let error_code = r.i16("error code")?;
        if flex {
            r.tagged_fields()?;
        }
        results.push(DeletedGroup { group_id, error_code });
    }
    if flex {
        r.tagged_fields()?;
    }
    Ok(results)
}

/// A ConsumerGroupDescribe request (groups of the KIP-848 consumer protocol).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerGroupDescribeRequest {
    /// The groups to describe (all coordinated by the broker asked).
    pub groups: Vec<String>,
}

impl ConsumerGroupDescribeRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::ConsumerGroupDescribeRequest {
        kafka_protocol::messages::ConsumerGroupDescribeRequest::default()
            .with_group_ids(self.groups.iter().map(|g| crate::call::wire_group(g)).collect())
    }
}

/// Partitions of one topic in a consumer-protocol member's assignment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssignedTopic {
    /// The topic's id.
    pub topic_id: [u8; 16],
    /// The topic's name.
    pub topic_name: String,
    /// The partitions.
    pub partitions: Vec<i32>,
}

/// One member of a ConsumerGroupDescribe response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerGroupMember {
    /// The member id.
    pub member_id: String,
    /// The static instance id, if any.
    pub instance_id: Option<String>,
    /// The member's rack, if any.
    pub rack_id: Option<String>,
    /// The member's epoch.
    pub member_epoch: i32,
    /// The client id.
    pub client_id: String,
    /// The host the member connects from.
    pub client_host: String,
    /// The topics the member subscribes to by name.
    pub subscribed_topic_names: Vec<String>,
    /// The regular expression the member subscribes with, if any.
    pub subscribed_topic_regex: Option<String>,
    /// The partitions the member owns now.
    pub assignment: Vec<AssignedTopic>,
    /// The partitions the coordinator wants the member to own once it has reconciled.
    pub target_assignment: Vec<AssignedTopic>,
    /// -1 unknown, 0 a classic member (joined with JoinGroup), 1 a consumer-protocol member (v1+; -1 before).
    pub member_type: i8,
}

/// One group of a ConsumerGroupDescribe response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribedConsumerGroup {
    /// Error code, 0 if none (69 GROUP_ID_NOT_FOUND: no consumer-protocol group of that id, perhaps a classic
    /// one).
    pub error_code: i16,
    /// The broker's message for an error, if any.
    pub error_message: Option<String>,
    /// The group id.
    pub group_id: String,
    /// The group's state ("Stable", "Assigning", "Reconciling", "Empty", ...).
    pub group_state: String,
    /// The group's epoch.
    pub group_epoch: i32,
    /// The epoch of the group's target assignment.
    pub assignment_epoch: i32,
    /// The server-side assignor the group uses.
    pub assignor_name: String,
    /// The members.
    pub members: Vec<ConsumerGroupMember>,
    /// The operations this client may perform on the group, as a bit field (`i32::MIN` if not asked).
    pub authorized_operations: i32,
}

impl ErrorCodes for DescribedConsumerGroup {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// `[topic id, topic name, [partition]]` with its tags, then the struct's tags: a member's assignment.
fn assignment(r: &mut WireReader, what: &str) -> Result<Vec<AssignedTopic>, ProtoError> {
    // Topic id, name, partition count, tags.
    let n = r.count(true, 16 + 1 + 1 + 1, what)?.unwrap_or(0);
    let mut topics = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let raw = r.bytes(16, "topic id")?;
        let mut topic_id = [0u8; 16];
        topic_id.copy_from_slice(&raw);
        let topic_name = r.required_string(true, "topic name")?;
        let partitions = r.i32_array(true, "partitions")?;
        r.tagged_fields()?;
        topics.push(AssignedTopic {
            topic_id,
            topic_name,
            partitions,
        });
    }
    r.tagged_fields()?;
    Ok(topics)
}

/// Decodes a ConsumerGroupDescribe response body (after the response header) of `version` (0..=1): one result
/// per group asked.
pub fn decode_consumer_group_describe_response(
    body: Bytes,
    version: i16,
) -> Result<Vec<DescribedConsumerGroup>, ProtoError> {
    const API: &str = "ConsumerGroupDescribe";
    check_version(API, version, &CONSUMER_GROUP_DESCRIBE_VERSIONS)?;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    // Error, message, id, state, group epoch, assignment epoch, assignor, member count, operations, tags.
    let min_group = 2 + 1 + 1 + 1 + 4 + 4 + 1 + 1 + 4 + 1;
    // Member id, instance id, rack, epoch, client id, host, topic names, regex, two assignments (count and
    // tags each), member type (v1+), tags.
    let min_member = 1 + 1 + 1 + 4 + 1 + 1 + 1 + 1 + 2 + 2 + usize::from(version >= 1) + 1;
    let n = r.count(true, min_group, "group count")?.unwrap_or(0);
    let mut groups = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let error_code = r.i16("error code")?;
        let error_message = r.string(true, "error message")?;
        let group_id = r.required_string(true, "group id")?;
        let group_state = r.required_string(true, "group state")?;
        let group_epoch = r.i32("group epoch")?;
        let assignment_epoch = r.i32("assignment epoch")?;
        let assignor_name = r.required_string(true, "assignor name")?;
        let m = r.count(true, min_member, "member count")?.unwrap_or(0);
        let mut members = Vec::with_capacity(prealloc(m));
        for _ in 0..m {
            let member_id = r.required_string(true, "member id")?;
            let instance_id = r.string(true, "instance id")?;
            let rack_id = r.string(true, "rack id")?;
            let member_epoch = r.i32("member epoch")?;
            let client_id = r.required_string(true, "client id")?;
            let client_host = r.required_string(true, "client host")?;
            let t = r.count(true, 1, "subscribed topic count")?.unwrap_or(0);
            let mut subscribed_topic_names = Vec::with_capacity(prealloc(t));
            for _ in 0..t {
                subscribed_topic_names.push(r.required_string(true, "subscribed topic")?);
            }
            let subscribed_topic_regex = r.string(true, "subscribed topic regex")?;
            let assignment_now = assignment(&mut r, "assigned topic count")?;
            let target_assignment = assignment(&mut r, "target topic count")?;
            let member_type = if version >= 1 { r.i8("member type")? } else { -1 };
            r.tagged_fields()?;
            members.push(ConsumerGroupMember {
                member_id,
                instance_id,
                rack_id,
                member_epoch,
                client_id,
                client_host,
                subscribed_topic_names,
                subscribed_topic_regex,
                assignment: assignment_now,
                target_assignment,
                member_type,
            });
        }
        let authorized_operations = r.i32("authorized operations")?;
        r.tagged_fields()?;
        groups.push(DescribedConsumerGroup {
            error_code,
            error_message,
            group_id,
            group_state,
            group_epoch,
            assignment_epoch,
            assignor_name,
            members,
            authorized_operations,
        });
    }
    r.tagged_fields()?;
    Ok(groups)
}

/// An OffsetDelete request: forget a group's committed offsets of some partitions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetDeleteRequest {
    /// The group.
    pub group_id: String,
    /// Partitions per topic.
    pub topics: Vec<(String, Vec<i32>)>,
}

impl OffsetDeleteRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::OffsetDeleteRequest {
        use kafka_protocol::messages::offset_delete_request::{
            OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
        };
        kafka_protocol::messages::OffsetDeleteRequest::default()
            .with_group_id(crate::call::wire_group(&self.group_id))
            .with_topics(
                self.topics
                    .iter()
                    .map(|(t, ps)| {
                        OffsetDeleteRequestTopic::default()
                            .with_name(crate::call::wire_topic(t))
                            .with_partitions(
                                ps.iter()
                                    .map(|&p| OffsetDeleteRequestPartition::default().with_partition_index(p))
                                    .collect(),
                            )
                    })
                    .collect(),
            )
    }
}

/// A decoded OffsetDelete response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OffsetDeleteResponse {
    /// Error code of the whole request (the group's), 0 if none.
    pub error_code: i16,
    /// Per-partition results (86 GROUP_SUBSCRIBED_TO_TOPIC: the group's members still consume the topic).
    pub topics: Vec<CommitTopic>,
}

impl ErrorCodes for OffsetDeleteResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
        self.topics.error_codes(f);
    }
}

/// Decodes an OffsetDelete response body (after the response header) of `version` (0).
pub fn decode_offset_delete_response(body: Bytes, version: i16) -> Result<OffsetDeleteResponse, ProtoError> {
    const API: &str = "OffsetDelete";
    check_version(API, version, &OFFSET_DELETE_VERSIONS)?;
    let mut r = WireReader::new(body, API, version);
    let error_code = r.i16("error code")?;
    r.i32("throttle time")?;
    let topics = topic_errors(&mut r, false)?;
    Ok(OffsetDeleteResponse { error_code, topics })
}

#[cfg(test)]
mod request_tests {
    use super::*;

    #[test]
    fn list_groups_sends_filters_only_where_the_version_has_them() {
        let req = ListGroupsRequest {
            states_filter: vec!["Stable".into()],
            types_filter: vec!["consumer".into()],
        };
        let v3 = req.to_wire(3);
        assert!(v3.states_filter.is_empty() && v3.types_filter.is_empty());
        let v4 = req.to_wire(4);
        assert_eq!(v4.states_filter.len(), 1);
        assert!(v4.types_filter.is_empty());
        let v5 = req.to_wire(5);
        assert_eq!(&*v5.types_filter[0], "consumer");
        assert_eq!(&*v5.states_filter[0], "Stable");
        use crate::Call;
        for v in LIST_GROUPS_VERSIONS {
            req.encode(v, 1, None).unwrap();
        }
    }

    #[test]
    fn requests_carry_every_field() {
        let d = DescribeGroupsRequest {
            groups: vec!["a".into(), "b".into()],
        }
        .to_wire(6);
        assert_eq!(d.groups.len(), 2);
        assert!(!d.include_authorized_operations);
        let del = DeleteGroupsRequest {
            groups: vec!["x".into()],
        }
        .to_wire(2);
        assert_eq!(&*del.groups_names[0].0, "x");
        let c = ConsumerGroupDescribeRequest {
            groups: vec!["c".into()],
        }
        .to_wire(1);
        assert_eq!(&*c.group_ids[0].0, "c");
        let o = OffsetDeleteRequest {
            group_id: "g".into(),
            topics: vec![("t".into(), vec![0, 2])],
        }
        .to_wire(0);
        assert_eq!(&*o.group_id.0, "g");
        let parts: Vec<i32> = o.topics[0].partitions.iter().map(|p| p.partition_index).collect();
        assert_eq!((&*o.topics[0].name.0, parts), ("t", vec![0, 2]));
    }
}
