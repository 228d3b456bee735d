//! weir: a pure-Rust Apache Kafka client built for consumers under pressure.
//!
//! - [`Producer`]: a `Send + Sync` handle; `send` returns a delivery future resolved once the broker acknowledged.
//! - [`Admin`]: create, delete and list topics; list offsets; ACLs and SCRAM credentials.
//! - [`consumer`]: partition state table, fetchers and delivery.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
mod cluster;
pub mod config;
pub mod consumer;
pub mod error;
pub mod group;
mod net;
pub mod producer;
mod types;

pub use admin::Admin;
pub use cluster::{MetadataSnapshot, PartitionMetadata, TopicMetadata};
pub use error::{Error, ErrorKind, Result};
pub use producer::{Producer, ProducerRecord, RecordMetadata};
pub use types::TopicPartition;
pub use weir_proto::record::Compression;
