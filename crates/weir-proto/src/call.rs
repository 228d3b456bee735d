//! Typed protocol calls: each request message weir sends implements [`Call`], which names its API, the versions
//! weir speaks, how the request is encoded and how the response is decoded. A connection needs one generic
//! `call` for all of them, and the version table needs no list of its own: the versions weir speaks are the
//! [`Call::VERSIONS`] of the message being sent, intersected with the broker's range when it is sent.
//!
//! Requests are encoded with the pinned `kafka-protocol` crate (private to this crate); responses are decoded by
//! this crate's bounded decoders, never by kafka-protocol, whose array decoders trust counts from the wire.

use std::ops::RangeInclusive;

use bytes::Bytes;

use crate::ProtoError;

/// One request message of the Kafka protocol and its response.
pub trait Call {
    /// The API key.
    const KEY: i16;
    /// The API's name, for messages ("Fetch").
    const NAME: &'static str;
    /// The versions weir encodes the request and decodes the response at.
    const VERSIONS: RangeInclusive<i16>;
    /// The decoded response, which says which error codes it carries ([`ErrorCodes`]): a response type
    /// without them does not compile as a call's.
    type Response: ErrorCodes;

    /// Encodes the request with its header into one frame, size prefix included.
    fn encode(&self, version: i16, correlation_id: i32, client_id: Option<&str>)
        -> Result<Bytes, ProtoError>;

    /// Decodes a response frame (without its size prefix, with its header) of `version`.
    fn decode(frame: Bytes, version: i16) -> Result<Self::Response, ProtoError>;
}

/// Where a decoded response's Kafka error codes are, for whoever counts them (the client's request error
/// metric): every non-zero code it carries, the top-level one and those of its items (topics, partitions,
/// resources, groups, members, users, ACLs), in the order of the response. Implemented next to each response
/// type, and required of every [`Call::Response`], so that a call added later reports its errors without a
/// list kept elsewhere.
///
/// Produce and Fetch responses report nothing: the calls that carry data are walked partition by partition by
/// their callers anyway, which count the codes they find there.
pub trait ErrorCodes {
    /// Calls `f` once with each non-zero error code of the response.
    fn error_codes(&self, f: &mut dyn FnMut(i16));
}

/// A response that is one error code (Heartbeat, AddOffsetsToTxn), or one item's code.
impl ErrorCodes for i16 {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        if *self != 0 {
            f(*self);
        }
    }
}

/// A response that is a list of results (per topic, resource, group...): each one's codes, in order.
impl<T: ErrorCodes> ErrorCodes for Vec<T> {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        for item in self {
            item.error_codes(f);
        }
    }
}

/// Declares the [`Call`] implementations: `Request => Response, versions, decoder;`, each request named as
/// kafka-protocol names the message it encodes to. The list is also [`SPOKEN`], the APIs weir speaks, for
/// diagnostics and the tests that tie each entry's versions to its encoder and decoder.
macro_rules! calls {
    ($($req:ident => $resp:ty, $versions:expr, $decode:path;)*) => {
        $(
            impl Call for $req {
                const KEY: i16 = <kafka_protocol::messages::$req as kafka_protocol::protocol::Request>::KEY;
                const NAME: &'static str = api_name(Self::KEY);
                const VERSIONS: RangeInclusive<i16> = $versions;
                type Response = $resp;

                fn encode(
                    &self,
                    version: i16,
                    correlation_id: i32,
                    client_id: Option<&str>,
                ) -> Result<Bytes, ProtoError> {
                    crate::frame::encode_request(&self.to_wire(version), version, correlation_id, client_id)
                }

                fn decode(frame: Bytes, version: i16) -> Result<$resp, ProtoError> {
                    let body = crate::wire::strip_response_header(frame, response_header_version(Self::KEY, version))?;
                    $decode(body, version)
                }
            }
        )*

        /// The APIs weir speaks: `(key, name, versions)`, one per [`Call`] implementation.
        pub const SPOKEN: &[(i16, &str, RangeInclusive<i16>)] =
            &[$((<$req as Call>::KEY, <$req as Call>::NAME, <$req as Call>::VERSIONS)),*];

        #[cfg(test)]
        mod every_call {
            use super::*;

            /// Every version a call claims encodes (kafka-protocol can write the request) and is accepted by the
            /// decoder (a short body fails as truncated, not as an unsupported version).
            #[test]
            fn versions_are_encodable_and_decodable() {
                $(
                    for v in <$req as Call>::VERSIONS {
                        let req = <$req>::default();
                        let frame = req.encode(v, 7, Some("weir"))
                            .unwrap_or_else(|e| panic!("{} v{v}: {e}", <$req as Call>::NAME));
                        assert_eq!(
                            i16::from_be_bytes([frame[4], frame[5]]), <$req as Call>::KEY,
                            "{} v{v}: key in header", <$req as Call>::NAME
                        );
                        let err = $decode(Bytes::new(), v).err().map(|e| e.to_string()).unwrap_or_default();
                        assert!(!err.contains("unsupported version"), "{} v{v}: {err}", <$req as Call>::NAME);
                    }
                    let below = <$req as Call>::VERSIONS.start() - 1;
                    let err = $decode(Bytes::new(), below).err().map(|e| e.to_string()).unwrap_or_default();
                    assert!(
                        below < 0 || err.contains("unsupported version"),
                        "{} v{below} must be refused by the decoder: {err}", <$req as Call>::NAME
                    );
                    let above = <$req as Call>::VERSIONS.end() + 1;
                    let err = $decode(Bytes::new(), above).err().map(|e| e.to_string()).unwrap_or_default();
                    assert!(err.contains("unsupported version"), "{} v{above}: {err}", <$req as Call>::NAME);
                )*
            }
        }
    };
}

use crate::acl::{
    AclCreationResult, CreateAclsRequest, DeleteAclsFilterResult, DeleteAclsRequest, DescribeAclsRequest,
    DescribeAclsResponse,
};
use crate::admin::{CreateTopicsRequest, CreatedTopic, DeleteTopicsRequest};
use crate::configs::{
    AlteredConfigs, DescribeConfigsRequest, DescribedConfigs, IncrementalAlterConfigsRequest,
};
use crate::create_partitions::{CreatePartitionsRequest, CreatePartitionsResult};
use crate::delete_records::{DeleteRecordsRequest, DeletedRecords};
use crate::describe_cluster::{DescribeClusterRequest, DescribeClusterResponse};
use crate::describe_producers::{DescribeProducersRequest, ProducersTopic};
use crate::fetch::{FetchRequest, FetchResponse};
use crate::group::{
    FindCoordinatorRequest, FoundCoordinator, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};
use crate::group_admin::{
    ConsumerGroupDescribeRequest, DeleteGroupsRequest, DeletedGroup, DescribeGroupsRequest,
    DescribedConsumerGroup, DescribedGroup, ListGroupsRequest, ListGroupsResponse, OffsetDeleteRequest,
    OffsetDeleteResponse,
};
use crate::group_offsets::{CommitTopic, OffsetCommitRequest, OffsetFetchRequest, OffsetFetchResponse};
use crate::list_offsets::{ListOffsetsRequest, ListedOffset};
use crate::metadata::{MetadataRequest, MetadataResponse};
use crate::offset_for_leader_epoch::{EpochEndOffset, OffsetForLeaderEpochRequest};
use crate::produce::{ProduceRequest, ProduceResponse};
use crate::producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use crate::sasl::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use crate::scram_credentials::{
    AlterUserScramCredentialsRequest, AlteredUser, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};
use crate::txn::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, EndTxnResponse, TxnOffsetCommitRequest,
    TxnTopicResult,
};
use crate::versions::{ApiVersionRanges, ApiVersionsRequest};

calls! {
    ProduceRequest => ProduceResponse, crate::produce::PRODUCE_VERSIONS,
        crate::produce::decode_produce_response;
    FetchRequest => FetchResponse, crate::fetch::FETCH_VERSIONS, crate::fetch::decode_fetch_response;
    ListOffsetsRequest => Vec<ListedOffset>, crate::list_offsets::LIST_OFFSETS_VERSIONS,
        crate::list_offsets::decode_list_offsets_response;
    MetadataRequest => MetadataResponse, crate::metadata::METADATA_VERSIONS,
        crate::metadata::decode_metadata_response;
    OffsetCommitRequest => Vec<CommitTopic>, crate::group_offsets::OFFSET_COMMIT_VERSIONS,
        crate::group_offsets::decode_offset_commit_response;
    OffsetFetchRequest => OffsetFetchResponse, crate::group_offsets::OFFSET_FETCH_VERSIONS,
        crate::group_offsets::decode_offset_fetch_response;
    FindCoordinatorRequest => Vec<FoundCoordinator>, crate::group::FIND_COORDINATOR_VERSIONS,
        crate::group::decode_find_coordinator_response;
    JoinGroupRequest => JoinGroupResponse, crate::group::JOIN_GROUP_VERSIONS,
        crate::group::decode_join_group_response;
    HeartbeatRequest => i16, crate::group::HEARTBEAT_VERSIONS,
        crate::group::decode_heartbeat_response;
    LeaveGroupRequest => LeaveGroupResponse, crate::group::LEAVE_GROUP_VERSIONS,
        crate::group::decode_leave_group_response;
    SyncGroupRequest => SyncGroupResponse, crate::group::SYNC_GROUP_VERSIONS,
        crate::group::decode_sync_group_response;
    ApiVersionsRequest => ApiVersionRanges, crate::versions::API_VERSIONS_VERSIONS,
        crate::versions::decode_api_versions_response;
    CreateTopicsRequest => Vec<CreatedTopic>, crate::admin::CREATE_TOPICS_VERSIONS,
        crate::admin::decode_create_topics_response;
    DeleteTopicsRequest => Vec<i16>, crate::admin::DELETE_TOPICS_VERSIONS,
        crate::admin::decode_delete_topics_response;
    DescribeClusterRequest => DescribeClusterResponse, crate::describe_cluster::DESCRIBE_CLUSTER_VERSIONS,
        crate::describe_cluster::decode_describe_cluster_response;
    CreatePartitionsRequest => Vec<CreatePartitionsResult>,
        crate::create_partitions::CREATE_PARTITIONS_VERSIONS,
        crate::create_partitions::decode_create_partitions_response;
    DeleteRecordsRequest => Vec<DeletedRecords>, crate::delete_records::DELETE_RECORDS_VERSIONS,
        crate::delete_records::decode_delete_records_response;
    DescribeConfigsRequest => Vec<DescribedConfigs>, crate::configs::DESCRIBE_CONFIGS_VERSIONS,
        crate::configs::decode_describe_configs_response;
    IncrementalAlterConfigsRequest => Vec<AlteredConfigs>,
        crate::configs::INCREMENTAL_ALTER_CONFIGS_VERSIONS,
        crate::configs::decode_incremental_alter_configs_response;
    InitProducerIdRequest => InitProducerIdResponse,
        crate::producer_id::INIT_PRODUCER_ID_VERSIONS, crate::producer_id::decode_init_producer_id_response;
    SaslHandshakeRequest => SaslHandshakeResponse, crate::sasl::SASL_HANDSHAKE_VERSIONS,
        crate::sasl::decode_sasl_handshake_response;
    SaslAuthenticateRequest => SaslAuthenticateResponse, crate::sasl::SASL_AUTHENTICATE_VERSIONS,
        crate::sasl::decode_sasl_authenticate_response;
    DescribeAclsRequest => DescribeAclsResponse, crate::acl::DESCRIBE_ACLS_VERSIONS,
        crate::acl::decode_describe_acls_response;
    CreateAclsRequest => Vec<AclCreationResult>, crate::acl::CREATE_ACLS_VERSIONS,
        crate::acl::decode_create_acls_response;
    DeleteAclsRequest => Vec<DeleteAclsFilterResult>, crate::acl::DELETE_ACLS_VERSIONS,
        crate::acl::decode_delete_acls_response;
    DescribeUserScramCredentialsRequest => DescribeUserScramCredentialsResponse,
        crate::scram_credentials::DESCRIBE_USER_SCRAM_CREDENTIALS_VERSIONS,
        crate::scram_credentials::decode_describe_user_scram_credentials_response;
    AlterUserScramCredentialsRequest => Vec<AlteredUser>,
        crate::scram_credentials::ALTER_USER_SCRAM_CREDENTIALS_VERSIONS,
        crate::scram_credentials::decode_alter_user_scram_credentials_response;
    AddPartitionsToTxnRequest => Vec<TxnTopicResult>, crate::txn::ADD_PARTITIONS_TO_TXN_VERSIONS,
        crate::txn::decode_add_partitions_to_txn_response;
    AddOffsetsToTxnRequest => i16, crate::txn::ADD_OFFSETS_TO_TXN_VERSIONS,
        crate::txn::decode_add_offsets_to_txn_response;
    EndTxnRequest => EndTxnResponse, crate::txn::END_TXN_VERSIONS, crate::txn::decode_end_txn_response;
    TxnOffsetCommitRequest => Vec<TxnTopicResult>, crate::txn::TXN_OFFSET_COMMIT_VERSIONS,
        crate::txn::decode_txn_offset_commit_response;
    ListGroupsRequest => ListGroupsResponse, crate::group_admin::LIST_GROUPS_VERSIONS,
        crate::group_admin::decode_list_groups_response;
    DescribeGroupsRequest => Vec<DescribedGroup>, crate::group_admin::DESCRIBE_GROUPS_VERSIONS,
        crate::group_admin::decode_describe_groups_response;
    DeleteGroupsRequest => Vec<DeletedGroup>, crate::group_admin::DELETE_GROUPS_VERSIONS,
        crate::group_admin::decode_delete_groups_response;
    ConsumerGroupDescribeRequest => Vec<DescribedConsumerGroup>,
        crate::group_admin::CONSUMER_GROUP_DESCRIBE_VERSIONS,
        crate::group_admin::decode_consumer_group_describe_response;
    OffsetDeleteRequest => OffsetDeleteResponse, crate::group_admin::OFFSET_DELETE_VERSIONS,
        crate::group_admin::decode_offset_delete_response;
    DescribeProducersRequest => Vec<ProducersTopic>, crate::describe_producers::DESCRIBE_PRODUCERS_VERSIONS,
        crate::describe_producers::decode_describe_producers_response;
    OffsetForLeaderEpochRequest => Vec<EpochEndOffset>,
        crate::offset_for_leader_epoch::OFFSET_FOR_LEADER_EPOCH_VERSIONS,
        crate::offset_for_leader_epoch::decode_offset_for_leader_epoch_response;
}

/// The name of an API key, for messages ("Unknown" for keys weir does not speak).
pub const fn api_name(key: i16) -> &'static str {
    match key {
        0 => "Produce",
        1 => "Fetch",
        2 => "ListOffsets",
        3 => "Metadata",
        8 => "OffsetCommit",
        9 => "OffsetFetch",
        10 => "FindCoordinator",
        11 => "JoinGroup",
        12 => "Heartbeat",
        13 => "LeaveGroup",
        14 => "SyncGroup",
        17 => "SaslHandshake",
        18 => "ApiVersions",
        19 => "CreateTopics",
        20 => "DeleteTopics",
        21 => "DeleteRecords",
        32 => "DescribeConfigs",
        37 => "CreatePartitions",
        44 => "IncrementalAlterConfigs",
        60 => "DescribeCluster",
        22 => "InitProducerId",
        36 => "SaslAuthenticate",
        29 => "DescribeAcls",
        30 => "CreateAcls",
        31 => "DeleteAcls",
        50 => "DescribeUserScramCredentials",
        51 => "AlterUserScramCredentials",
        24 => "AddPartitionsToTxn",
        25 => "AddOffsetsToTxn",
        26 => "EndTxn",
        28 => "TxnOffsetCommit",
        15 => "DescribeGroups",
        16 => "ListGroups",
        42 => "DeleteGroups",
        47 => "OffsetDelete",
        61 => "DescribeProducers",
        69 => "ConsumerGroupDescribe",
        23 => "OffsetForLeaderEpoch",
        _ => "Unknown",
    }
}

/// The response header version of `key` at `version` (ApiVersions always answers with header v0).
fn response_header_version(key: i16, version: i16) -> i16 {
    kafka_protocol::messages::ApiKey::try_from(key)
        .map(|k| k.response_header_version(version))
        .unwrap_or(0)
}

/// Builds kafka-protocol's string type.
pub(crate) fn wire_str(s: &str) -> kafka_protocol::protocol::StrBytes {
    kafka_protocol::protocol::StrBytes::from_string(s.to_owned())
}

/// Builds kafka-protocol's group id type.
pub(crate) fn wire_group(s: &str) -> kafka_protocol::messages::GroupId {
    kafka_protocol::messages::GroupId(wire_str(s))
}

/// Builds kafka-protocol's transactional id type.
pub(crate) fn wire_transactional_id(s: &str) -> kafka_protocol::messages::TransactionalId {
    kafka_protocol::messages::TransactionalId(wire_str(s))
}

/// Builds kafka-protocol's topic name type.
pub(crate) fn wire_topic(s: &str) -> kafka_protocol::messages::TopicName {
    kafka_protocol::messages::TopicName(wire_str(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoken_names_every_api_by_its_key() {
        for (key, name, versions) in SPOKEN {
            assert_ne!(*name, "Unknown", "key {key}");
            let k = kafka_protocol::messages::ApiKey::try_from(*key).unwrap();
            assert_eq!(format!("{k:?}"), *name);
            assert!(!versions.is_empty(), "{name}");
        }
        let mut keys: Vec<i16> = SPOKEN.iter().map(|s| s.0).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), SPOKEN.len(), "one call per API");
    }
}

/// Every call's decoded response reports the error codes it carries ([`ErrorCodes`]): a representative
/// response of each, encoded by kafka-protocol at the highest version weir speaks, with codes at every level
/// that has them and some items without.
#[cfg(test)]
mod error_codes {
    use std::collections::BTreeSet;

    use bytes::BytesMut;
    use kafka_protocol::messages::{self as kp, ResponseHeader};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;

    /// `body` as a broker sends a response of `C` at version `v`, decoded by `C`: the codes it reports.
    fn reported_at<C: Call>(body: &impl Encodable, v: i16) -> Vec<i16> {
        let mut frame = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(7)
            .encode(&mut frame, response_header_version(C::KEY, v))
            .unwrap();
        body.encode(&mut frame, v)
            .unwrap_or_else(|e| panic!("{} v{v}: encode: {e}", C::NAME));
        let resp = C::decode(frame.freeze(), v).unwrap_or_else(|e| panic!("{} v{v}: {e}", C::NAME));
        let mut codes = Vec::new();
        resp.error_codes(&mut |c| codes.push(c));
        codes
    }

    /// [`reported_at`] the highest version of `C`.
    fn reported<C: Call>(body: &impl Encodable) -> Vec<i16> {
        reported_at::<C>(body, *C::VERSIONS.end())
    }

    fn s(x: &str) -> StrBytes {
        StrBytes::from_string(x.to_owned())
    }

    fn topic(x: &str) -> kp::TopicName {
        kp::TopicName(s(x))
    }

    fn group(x: &str) -> kp::GroupId {
        kp::GroupId(s(x))
    }

    #[test]
    fn every_call_reports_the_error_codes_of_its_response() {
        let mut checked = BTreeSet::new();
        macro_rules! case {
            ($req:ty, $body:expr, $want:expr) => {{
                let want: &[i16] = &$want;
                assert_eq!(reported::<$req>(&$body), want, "{}", <$req as Call>::NAME);
                assert!(
                    checked.insert(<$req as Call>::KEY),
                    "{} twice",
                    <$req as Call>::NAME
                );
            }};
        }
        use kp::{
            add_partitions_to_txn_response as apt, alter_user_scram_credentials_response as aus,
            consumer_group_describe_response as cgd, create_acls_response as cacl,
            create_partitions_response as cp, create_topics_response as ct, delete_acls_response as dacl,
            delete_groups_response as dg, delete_records_response as dr, delete_topics_response as dt,
            describe_configs_response as dc, describe_groups_response as dgr,
            describe_producers_response as dp, describe_user_scram_credentials_response as dus,
            find_coordinator_response as fc, incremental_alter_configs_response as iac,
            leave_group_response as lg, list_offsets_response as lo, metadata_response as md,
            offset_commit_response as oc, offset_delete_response as od, offset_fetch_response as of,
            offset_for_leader_epoch_response as ofle, txn_offset_commit_response as toc,
        };

        case!(
            ListOffsetsRequest,
            kp::ListOffsetsResponse::default().with_topics(vec![lo::ListOffsetsTopicResponse::default()
                .with_name(topic("t"))
                .with_partitions(vec![
                    lo::ListOffsetsPartitionResponse::default().with_partition_index(0),
                    lo::ListOffsetsPartitionResponse::default()
                        .with_partition_index(1)
                        .with_error_code(6),
                ])]),
            [6]
        );
        case!(
            MetadataRequest,
            kp::MetadataResponse::default().with_topics(vec![
                md::MetadataResponseTopic::default()
                    .with_name(Some(topic("missing")))
                    .with_error_code(3),
                md::MetadataResponseTopic::default()
                    .with_name(Some(topic("electing")))
                    .with_partitions(vec![
                        md::MetadataResponsePartition::default().with_partition_index(0),
                        md::MetadataResponsePartition::default()
                            .with_partition_index(1)
                            .with_error_code(5),
                    ]),
            ]),
            [3, 5]
        );
        case!(
            OffsetCommitRequest,
            kp::OffsetCommitResponse::default().with_topics(vec![oc::OffsetCommitResponseTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![
                    oc::OffsetCommitResponsePartition::default().with_partition_index(0),
                    oc::OffsetCommitResponsePartition::default()
                        .with_partition_index(1)
                        .with_error_code(22),
                ])]),
            [22]
        );
        case!(
            OffsetFetchRequest,
            kp::OffsetFetchResponse::default()
                .with_error_code(14)
                .with_topics(vec![of::OffsetFetchResponseTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![
                        of::OffsetFetchResponsePartition::default().with_partition_index(0),
                        of::OffsetFetchResponsePartition::default()
                            .with_partition_index(1)
                            .with_error_code(3),
                    ])]),
            [14, 3]
        );
        case!(
            FindCoordinatorRequest,
            kp::FindCoordinatorResponse::default().with_coordinators(vec![
                fc::Coordinator::default().with_key(s("a")),
                fc::Coordinator::default().with_key(s("b")).with_error_code(15),
            ]),
            [15]
        );
        case!(
            JoinGroupRequest,
            kp::JoinGroupResponse::default().with_error_code(79),
            [79]
        );
        case!(
            HeartbeatRequest,
            kp::HeartbeatResponse::default().with_error_code(27),
            [27]
        );
        case!(
            LeaveGroupRequest,
            kp::LeaveGroupResponse::default()
                .with_error_code(16)
                .with_members(vec![
                    lg::MemberResponse::default().with_member_id(s("m1")),
                    lg::MemberResponse::default()
                        .with_member_id(s("m2"))
                        .with_error_code(25),
                ]),
            [16, 25]
        );
        case!(
            SyncGroupRequest,
            kp::SyncGroupResponse::default().with_error_code(22),
            [22]
        );
        case!(
            ApiVersionsRequest,
            kp::ApiVersionsResponse::default().with_error_code(35),
            [35]
        );
        case!(
            CreateTopicsRequest,
            kp::CreateTopicsResponse::default().with_topics(vec![
                ct::CreatableTopicResult::default().with_name(topic("fresh")),
                ct::CreatableTopicResult::default()
                    .with_name(topic("taken"))
                    .with_error_code(36),
            ]),
            [36]
        );
        case!(
            DeleteTopicsRequest,
            kp::DeleteTopicsResponse::default().with_responses(vec![
                dt::DeletableTopicResult::default().with_name(Some(topic("gone"))),
                dt::DeletableTopicResult::default()
                    .with_name(Some(topic("missing")))
                    .with_error_code(3),
            ]),
            [3]
        );
        case!(
            DescribeClusterRequest,
            kp::DescribeClusterResponse::default().with_error_code(31),
            [31]
        );
        case!(
            CreatePartitionsRequest,
            kp::CreatePartitionsResponse::default().with_results(vec![
                cp::CreatePartitionsTopicResult::default().with_name(topic("grown")),
                cp::CreatePartitionsTopicResult::default()
                    .with_name(topic("t"))
                    .with_error_code(37),
            ]),
            [37]
        );
        case!(
            DeleteRecordsRequest,
            kp::DeleteRecordsResponse::default().with_topics(vec![dr::DeleteRecordsTopicResult::default()
                .with_name(topic("t"))
                .with_partitions(vec![
                    dr::DeleteRecordsPartitionResult::default().with_partition_index(0),
                    dr::DeleteRecordsPartitionResult::default()
                        .with_partition_index(1)
                        .with_error_code(1),
                ])]),
            [1]
        );
        case!(
            DescribeConfigsRequest,
            kp::DescribeConfigsResponse::default().with_results(vec![
                dc::DescribeConfigsResult::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t")),
                dc::DescribeConfigsResult::default()
                    .with_resource_type(2)
                    .with_resource_name(s("u"))
                    .with_error_code(29),
            ]),
            [29]
        );
        case!(
            IncrementalAlterConfigsRequest,
            kp::IncrementalAlterConfigsResponse::default().with_responses(vec![
                iac::AlterConfigsResourceResponse::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_error_code(40),
                iac::AlterConfigsResourceResponse::default()
                    .with_resource_type(2)
                    .with_resource_name(s("u")),
            ]),
            [40]
        );
        case!(
            InitProducerIdRequest,
            kp::InitProducerIdResponse::default().with_error_code(53),
            [53]
        );
        case!(
            SaslHandshakeRequest,
            kp::SaslHandshakeResponse::default().with_error_code(33),
            [33]
        );
        case!(
            SaslAuthenticateRequest,
            kp::SaslAuthenticateResponse::default().with_error_code(58),
            [58]
        );
        case!(
            DescribeAclsRequest,
            kp::DescribeAclsResponse::default().with_error_code(31),
            [31]
        );
        case!(
            CreateAclsRequest,
            kp::CreateAclsResponse::default().with_results(vec![
                cacl::AclCreationResult::default(),
                cacl::AclCreationResult::default().with_error_code(42),
            ]),
            [42]
        );
        case!(
            DeleteAclsRequest,
            kp::DeleteAclsResponse::default().with_filter_results(vec![
                dacl::DeleteAclsFilterResult::default().with_error_code(42),
                dacl::DeleteAclsFilterResult::default().with_matching_acls(vec![
                    dacl::DeleteAclsMatchingAcl::default()
                        .with_resource_type(2)
                        .with_pattern_type(3)
                        .with_operation(2)
                        .with_permission_type(3),
                    dacl::DeleteAclsMatchingAcl::default()
                        .with_resource_type(2)
                        .with_pattern_type(3)
                        .with_operation(2)
                        .with_permission_type(3)
                        .with_error_code(31),
                ]),
            ]),
            [42, 31]
        );
        case!(
            DescribeUserScramCredentialsRequest,
            kp::DescribeUserScramCredentialsResponse::default()
                .with_error_code(31)
                .with_results(vec![
                    dus::DescribeUserScramCredentialsResult::default().with_user(s("alice")),
                    dus::DescribeUserScramCredentialsResult::default()
                        .with_user(s("bob"))
                        .with_error_code(91),
                ]),
            [31, 91]
        );
        case!(
            AlterUserScramCredentialsRequest,
            kp::AlterUserScramCredentialsResponse::default().with_results(vec![
                aus::AlterUserScramCredentialsResult::default().with_user(s("alice")),
                aus::AlterUserScramCredentialsResult::default()
                    .with_user(s("bob"))
                    .with_error_code(96),
            ]),
            [96]
        );
        case!(
            AddPartitionsToTxnRequest,
            kp::AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(vec![
                apt::AddPartitionsToTxnTopicResult::default()
                    .with_name(topic("t"))
                    .with_results_by_partition(vec![
                        apt::AddPartitionsToTxnPartitionResult::default().with_partition_index(0),
                        apt::AddPartitionsToTxnPartitionResult::default()
                            .with_partition_index(1)
                            .with_partition_error_code(48),
                    ]),
            ]),
            [48]
        );
        case!(
            AddOffsetsToTxnRequest,
            kp::AddOffsetsToTxnResponse::default().with_error_code(47),
            [47]
        );
        case!(
            EndTxnRequest,
            kp::EndTxnResponse::default().with_error_code(48),
            [48]
        );
        case!(
            TxnOffsetCommitRequest,
            kp::TxnOffsetCommitResponse::default().with_topics(vec![
                toc::TxnOffsetCommitResponseTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![
                        toc::TxnOffsetCommitResponsePartition::default().with_partition_index(0),
                        toc::TxnOffsetCommitResponsePartition::default()
                            .with_partition_index(1)
                            .with_error_code(82),
                    ])
            ]),
            [82]
        );
        case!(
            ListGroupsRequest,
            kp::ListGroupsResponse::default().with_error_code(15),
            [15]
        );
        case!(
            DescribeGroupsRequest,
            kp::DescribeGroupsResponse::default().with_groups(vec![
                dgr::DescribedGroup::default().with_group_id(group("g1")),
                dgr::DescribedGroup::default()
                    .with_group_id(group("g2"))
                    .with_error_code(30),
            ]),
            [30]
        );
        case!(
            DeleteGroupsRequest,
            kp::DeleteGroupsResponse::default().with_results(vec![
                dg::DeletableGroupResult::default()
                    .with_group_id(group("g1"))
                    .with_error_code(68),
                dg::DeletableGroupResult::default().with_group_id(group("g2")),
            ]),
            [68]
        );
        case!(
            ConsumerGroupDescribeRequest,
            kp::ConsumerGroupDescribeResponse::default().with_groups(vec![
                cgd::DescribedGroup::default()
                    .with_group_id(group("g1"))
                    .with_error_code(69),
                cgd::DescribedGroup::default().with_group_id(group("g2")),
            ]),
            [69]
        );
        case!(
            OffsetDeleteRequest,
            kp::OffsetDeleteResponse::default()
                .with_error_code(30)
                .with_topics(vec![od::OffsetDeleteResponseTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![
                        od::OffsetDeleteResponsePartition::default().with_partition_index(0),
                        od::OffsetDeleteResponsePartition::default()
                            .with_partition_index(1)
                            .with_error_code(86),
                    ])]),
            [30, 86]
        );
        case!(
            DescribeProducersRequest,
            kp::DescribeProducersResponse::default().with_topics(vec![dp::TopicResponse::default()
                .with_name(topic("t"))
                .with_partitions(vec![
                    dp::PartitionResponse::default()
                        .with_partition_index(0)
                        .with_error_code(6),
                    dp::PartitionResponse::default().with_partition_index(1),
                ])]),
            [6]
        );

        case!(
            OffsetForLeaderEpochRequest,
            kp::OffsetForLeaderEpochResponse::default().with_topics(vec![
                ofle::OffsetForLeaderTopicResult::default()
                    .with_topic(topic("t"))
                    .with_partitions(vec![
                        ofle::EpochEndOffset::default().with_partition(0),
                        ofle::EpochEndOffset::default()
                            .with_partition(1)
                            .with_error_code(74),
                    ])
            ]),
            [74]
        );

        // Produce and Fetch report nothing: their callers count the codes they walk anyway.
        let produce = kp::ProduceResponse::default().with_responses(vec![
            kp::produce_response::TopicProduceResponse::default()
                .with_name(topic("t"))
                .with_partition_responses(vec![kp::produce_response::PartitionProduceResponse::default()
                    .with_index(0)
                    .with_error_code(10)]),
        ]);
        case!(ProduceRequest, produce, []);
        let fetch = kp::FetchResponse::default()
            .with_error_code(70)
            .with_responses(vec![kp::fetch_response::FetchableTopicResponse::default()
                .with_topic(topic("t"))
                .with_partitions(vec![kp::fetch_response::PartitionData::default()
                    .with_partition_index(0)
                    .with_error_code(1)])]);
        case!(FetchRequest, fetch, []);

        let spoken: BTreeSet<i16> = SPOKEN.iter().map(|s| s.0).collect();
        assert_eq!(checked, spoken, "every call has a case here");
    }

    /// A top-level code and per-item codes are found at every version weir speaks, not only the highest.
    #[test]
    fn codes_are_reported_at_every_version() {
        for v in HeartbeatRequest::VERSIONS {
            let failed = kp::HeartbeatResponse::default().with_error_code(27);
            assert_eq!(reported_at::<HeartbeatRequest>(&failed, v), [27], "v{v}");
            let ok = kp::HeartbeatResponse::default();
            assert!(reported_at::<HeartbeatRequest>(&ok, v).is_empty(), "v{v}");
        }
        for v in CreateTopicsRequest::VERSIONS {
            use kp::create_topics_response::CreatableTopicResult;
            let body = kp::CreateTopicsResponse::default().with_topics(vec![
                CreatableTopicResult::default().with_name(topic("fresh")),
                CreatableTopicResult::default()
                    .with_name(topic("taken"))
                    .with_error_code(36),
                CreatableTopicResult::default()
                    .with_name(topic("bad"))
                    .with_error_code(17),
            ]);
            assert_eq!(reported_at::<CreateTopicsRequest>(&body, v), [36, 17], "v{v}");
        }
    }
}
