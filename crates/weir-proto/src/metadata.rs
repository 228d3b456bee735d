//! The Metadata response (v1–v12), decoded here rather than by `kafka-protocol`: every client reads it at start
//! and periodically, and its counts come from the wire, so each is checked against the bytes that remain before
//! anything is reserved (kafka-protocol reserves `count × element size` first, which a hostile broker can turn
//! into an allocation failure that aborts the process).

use bytes::Bytes;

use crate::wire::{prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_metadata_response`] reads.
pub const METADATA_VERSIONS: std::ops::RangeInclusive<i16> = 1..=12;

/// A decoded Metadata response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataResponse {
    /// Brokers: (node id, host, port).
    pub brokers: Vec<(i32, String, i32)>,
    /// Controller id, -1 if unknown.
    pub controller_id: i32,
    /// Topics.
    pub topics: Vec<MetadataTopic>,
}

/// One topic of a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataTopic {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// Name (null only in v12+ responses addressed by topic id).
    pub name: Option<String>,
    /// Whether the topic is internal.
    pub is_internal: bool,
    /// Partitions.
    pub partitions: Vec<MetadataPartition>,
}

/// One partition of a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataPartition {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// Partition index.
    pub partition: i32,
    /// Leader broker id, -1 if none.
    pub leader_id: i32,
    /// Leader epoch (v7+; -1 before).
    pub leader_epoch: i32,
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
    if version >= 2 {
        r.string(flex, "cluster id")?;
    }
    let controller_id = r.i32("controller id")?;
    let min_partition = 2 + 4 + 4 + if version >= 7 { 4 } else { 0 } + if flex { 4 } else { 8 };
    let min_topic =
        2 + if flex { 1 } else { 2 } + if version >= 10 { 16 } else { 0 } + 1 + if flex { 1 } else { 4 };
    let topic_count = r.count(flex, min_topic, "topic count")?.unwrap_or(0);
    let mut topics = Vec::with_capacity(prealloc(topic_count));
    for _ in 0..topic_count {
        let error_code = r.i16("topic error code")?;
        let name = r.string(flex, "topic name")?;
        if version >= 10 {
            r.skip(16, "topic id")?;
        }
        let is_internal = r.i8("is internal")? != 0;
        let partition_count = r.count(flex, min_partition, "partition count")?.unwrap_or(0);
        let mut partitions = Vec::with_capacity(prealloc(partition_count));
        for _ in 0..partition_count {
            let error_code = r.i16("partition error code")?;
            let partition = r.i32("partition index")?;
            let leader_id = r.i32("leader id")?;
            let leader_epoch = if version >= 7 { r.i32("leader epoch")? } else { -1 };
            r.i32_array(flex, "replica nodes")?;
            r.i32_array(flex, "isr nodes")?;
            if version >= 5 {
                r.i32_array(flex, "offline replicas")?;
            }
            if flex {
                r.tagged_fields()?;
            }
            partitions.push(MetadataPartition {
                error_code,
                partition,
                leader_id,
                leader_epoch,
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
