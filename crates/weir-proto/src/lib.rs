//! Sans-IO pieces of the Kafka protocol used by weir.
//!
//! Nothing here touches a socket, a clock or an async runtime: bytes go in, bytes or typed values come out.
//!
//! - [`call`]: the [`Call`] trait every request message implements (API key, versions, encoding, decoding);
//!   requests are encoded with the pinned `kafka-protocol` crate, a private dependency (responses are decoded
//!   by the modules below, never by kafka-protocol, whose array decoders trust counts from the wire).
//! - [`frame`]: the 4-byte size prefix around every request and response, bounded before allocating.
//! - [`versions`]: ApiVersions negotiation — per API, the highest version both sides support.
//! - [`fetch`]: the Fetch response, decoded by hand: zero-copy records, every count bounded by the bytes present.
//! - [`metadata`]: the Metadata response, decoded by hand for the same reason.
//! - [`produce`], [`list_offsets`]: the Produce and ListOffsets responses, likewise.
//! - [`group`]: the group membership responses (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup),
//!   likewise.
//! - [`consumer_protocol`]: the subscription and assignment payloads members exchange through the group APIs,
//!   likewise.
//! - [`group_offsets`]: the OffsetCommit and OffsetFetch responses, likewise.
//! - [`producer_id`]: the InitProducerId response, likewise.
//! - [`txn`]: the transaction APIs (AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn): requests and
//!   responses, likewise, and which versions each transaction protocol (`transaction.version`) may send.
//! - [`admin`]: the CreateTopics and DeleteTopics responses, likewise.
//! - [`describe_cluster`], [`create_partitions`], [`delete_records`]: the DescribeCluster, CreatePartitions and
//!   DeleteRecords requests and responses, likewise.
//! - [`configs`]: the DescribeConfigs and IncrementalAlterConfigs requests and responses, likewise, with the
//!   typed codes of a configuration (resource type, source, type, operation); sensitive values kept out of
//!   memory and `Debug`.
//! - [`sasl`]: the SaslHandshake and SaslAuthenticate requests and responses (the mechanisms live in the client).
//! - [`acl`]: the CreateAcls, DescribeAcls and DeleteAcls requests and responses, and the typed codes of an ACL
//!   (resource type, pattern type, operation, permission).
//! - [`scram_credentials`]: the DescribeUserScramCredentials and AlterUserScramCredentials requests and
//!   responses (salts and salted passwords hidden from `Debug`).
//! - [`group_admin`]: the consumer group administration requests and responses (ListGroups, DescribeGroups,
//!   DeleteGroups, ConsumerGroupDescribe, OffsetDelete), likewise.
//! - [`describe_producers`]: the DescribeProducers request and response (a partition's active producers),
//!   likewise.
//! - [`kafka_code`]: the Kafka error codes by name, with whether each is retriable.
//! - [`record`]: the record batch v2 codec (lazy, zero-copy decode; incremental builder; compression; CRC-32C).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod acl;
pub mod admin;
pub mod call;
pub mod configs;
pub mod consumer_protocol;
pub mod create_partitions;
pub mod delete_records;
pub mod describe_cluster;
pub mod describe_producers;
pub mod error;
pub mod fetch;
pub mod frame;
pub mod group;
pub mod group_admin;
pub mod group_offsets;
pub mod kafka_code;
pub mod leader_hint;
pub mod list_offsets;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod producer_id;
pub mod record;
pub mod sasl;
pub mod scram_credentials;
pub mod txn;
pub mod versions;
mod wire;

pub use wire::strip_response_header;

pub use call::Call;
pub use error::ProtoError;
pub use kafka_code::KafkaCode;
