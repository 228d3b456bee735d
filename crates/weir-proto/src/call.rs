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
    /// The decoded response.
    type Response;

    /// Encodes the request with its header into one frame, size prefix included.
    fn encode(&self, version: i16, correlation_id: i32, client_id: Option<&str>)
        -> Result<Bytes, ProtoError>;

    /// Decodes a response frame (without its size prefix, with its header) of `version`.
    fn decode(frame: Bytes, version: i16) -> Result<Self::Response, ProtoError>;
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
