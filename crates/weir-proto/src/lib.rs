//! Sans-IO pieces of the Kafka protocol used by weir.
//!
//! Nothing here touches a socket, a clock or an async runtime: bytes go in, bytes or typed values come out.
//!
//! - [`frame`]: the 4-byte size prefix around every request and response, bounded before allocating;
//!   request encoding for control-plane messages from the pinned `kafka-protocol` crate (responses are decoded
//!   by the modules below, never by kafka-protocol, whose array decoders trust counts from the wire).
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
//! - [`admin`]: the CreateTopics and DeleteTopics responses, likewise.
//! - [`record`]: the record batch v2 codec (lazy, zero-copy decode; incremental builder; compression; CRC-32C).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod consumer_protocol;
pub mod error;
pub mod fetch;
pub mod frame;
pub mod group;
pub mod group_offsets;
pub mod list_offsets;
pub mod metadata;
pub mod produce;
pub mod producer_id;
pub mod record;
pub mod versions;
mod wire;

pub use wire::strip_response_header;

pub use error::ProtoError;
pub use kafka_protocol;
