//! The Metadata response (v1–v12), decoded here rather than by `kafka-protocol`: every client reads it at start
//! and periodically, and its counts come from the wire, so each is checked against the bytes that remain before
//! anything is reserved (kafka-protocol reserves `count × element size` first, which a hostile broker can turn
//! into an allocation failure that aborts the process).
//!
//! Everything a topic description needs is kept: per topic its id (v10+) and whether it is internal, per
//! partition its leader and leader epoch (v7+), replicas, in-sync replicas and offline replicas (v5+); and the
//! cluster id (v2+). Authorized-operation bit sets and tagged fields are skipped.

use bytes::Bytes;

use crate::call::ErrorCodes;
use crate::wire::{prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_metadata_response`] reads.
pub const METADATA_VERSIONS: std::ops::RangeInclusive<i16> = 1..=12;

/// A decoded Metadata response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MetadataResponse {
    /// Brokers: (node id, host, port).
    pub brokers: Vec<(i32, String, i32)>,
    /// The cluster id (v2+; `None` before, or if the broker sent null).
    pub cluster_id: Option<String>,
    /// Controller id, -1 if unknown.
    pub controller_id: i32,
    /// Topics.
    pub topics: Vec<MetadataTopic>,
}

impl ErrorCodes for MetadataResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.topics.error_codes(f);
    }
}

/// One topic of a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetadataTopic {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// Name (null only in v12+ responses addressed by topic id).
    pub name: Option<String>,
    /// The topic's id (v10+), the 16 bytes of its UUID; all zero before v10 or when the broker has none.
    pub topic_id: [u8; 16],
    /// Whether the topic is internal.
    pub is_internal: bool,
    /// Partitions.
    pub partitions: Vec<MetadataPartition>,
}

impl ErrorCodes for MetadataTopic {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
        self.partitions.error_codes(f);
    }
}

/// One partition of a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetadataPartition {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// Partition index.
    pub partition: i32,
    /// Leader broker id, -1 if none.
    pub leader_id: i32,
    /// Leader epoch (v7+; -1 before).
    pub leader_epoch: i32,
    /// The replicas' broker ids, the preferred leader first.
    pub replicas: Vec<i32>,
    /// The in-sync replicas' broker ids.
    pub isr: Vec<i32>,
    /// The broker ids of replicas that are offline (v5+; empty before).
    pub offline_replicas: Vec<i32>,
}

impl ErrorCodes for MetadataPartition {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes a Metadata response body (after the response header) of `version` (1..=12).
pub fn decode_metadata_response(body: Bytes, version: i16) -> Result<MetadataResponse, ProtoError> {
    if !METADATA_VERSIONS.contains(&version) {
        return Err(ProtoError::Decode {
            api: "Metadata",
            version,
            reason: "unsupported version".into(),
        });
    }
    let flex = version >= 9;
    let mut r = WireReader::new(body, "Metadata", version);
    if version >= 3 {
        r.i32("throttle time")?;
    }
    // Smallest broker: node id, host length (1 byte compact / 2), port, rack (1 / 2) (+ tags).
    let min_broker = if flex { 11 } else { 12 };
    let broker_count = r.count(flex, min_broker, "broker count")?.unwrap_or(0);
    let mut brokers = Vec::with_capacity(prealloc(broker_count));
    for _ in 0..broker_count {
        let id = r.i32("node id")?;
        let host = r.required_string(flex, "host")?;
        let port = r.i32("port")?;
        r.string(flex, "rack")?;
        if flex {
            r.tagged_fields()?;
        }
        brokers.push((id, host, port));
    }
    let cluster_id = if version >= 2 {
        r.string(flex, "cluster id")?
    } else {
        None
    };
    let controller_id = r.i32("controller id")?;
    let min_partition = 2 + 4 + 4 + if version >= 7 { 4 } else { 0 } + if flex { 4 } else { 8 };
    let min_topic =
        2 + if flex { 1 } else { 2 } + if version >= 10 { 16 } else { 0 } + 1 + if flex { 1 } else { 4 };
    let topic_count = r.count(flex, min_topic, "topic count")?.unwrap_or(0);
    let mut topics = Vec::with_capacity(prealloc(topic_count));
    for _ in 0..topic_count {
        let error_code = r.i16("topic error code")?;
        let name = r.string(flex, "topic name")?;
        let mut topic_id = [0u8; 16];
        if version >= 10 {
            topic_id.copy_from_slice(&r.bytes(16, "topic id")?);
        }
        let is_internal = r.i8("is internal")? != 0;
        let partition_count = r.count(flex, min_partition, "partition count")?.unwrap_or(0);
        let mut partitions = Vec::with_capacity(prealloc(partition_count));
        for _ in 0..partition_count {
            let error_code = r.i16("partition error code")?;
            let partition = r.i32("partition index")?;
            let leader_id = r.i32("leader id")?;
            let leader_epoch = if version >= 7 { r.i32("leader epoch")? } else { -1 };
            let replicas = r.i32_array(flex, "replica nodes")?;
            let isr = r.i32_array(flex, "isr nodes")?;
            let offline_replicas = if version >= 5 {
                r.i32_array(flex, "offline replicas")?
            } else {
                Vec::new()
            };
            if flex {
                r.tagged_fields()?;
            }
            partitions.push(MetadataPartition {
                error_code,
                partition,
                leader_id,
                leader_epoch,
                replicas,
                isr,
                offline_replicas,
            });
        }
        if version >= 8 {
            r.i32("topic authorized operations")?;
        }
        if flex {
            r.tagged_fields()?;
        }
        topics.push(MetadataTopic {
            error_code,
            name,
            topic_id,
            is_internal,
            partitions,
        });
    }
    if (8..=10).contains(&version) {
        r.i32("cluster authorized operations")?;
    }
    if flex {
        r.tagged_fields()?;
    }
    let _ = r.remaining();
    Ok(MetadataResponse {
        brokers,
        cluster_id,
        controller_id,
        topics,
    })
}

/// A Metadata request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataRequest {
    /// Topics to describe; `None` for every topic.
    pub topics: Option<Vec<String>>,
    /// Whether the broker may create topics it does not know (weir never asks for that).
    pub allow_auto_topic_creation: bool,
}

impl MetadataRequest {
    pub(crate) fn to_wire(&self, version: i16) -> kafka_protocol::messages::MetadataRequest {
        use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
        kafka_protocol::messages::MetadataRequest::default()
            .with_topics(self.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| MetadataRequestTopic::default().with_name(Some(crate::call::wire_topic(t))))
                    .collect()
            }))
            // Before v4 there is no such field (the broker's own setting decides).
            .with_allow_auto_topic_creation(self.allow_auto_topic_creation || version < 4)
    }
}
