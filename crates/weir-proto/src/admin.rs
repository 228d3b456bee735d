//! The topic administration responses — CreateTopics (v2–v7) and DeleteTopics (v1–v6) — decoded here rather
//! than by `kafka-protocol`, so that no count from the wire is trusted before it is checked against the bytes
//! present. Only the fields weir uses are kept; tagged fields are skipped.

use bytes::Bytes;

use crate::call::ErrorCodes;
use crate::wire::{check_version, prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_create_topics_response`] reads.
pub const CREATE_TOPICS_VERSIONS: std::ops::RangeInclusive<i16> = 2..=7;
/// Versions [`decode_delete_topics_response`] reads.
pub const DELETE_TOPICS_VERSIONS: std::ops::RangeInclusive<i16> = 1..=6;

/// One topic's result in a CreateTopics response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// The broker's message for an error, if any.
    pub error_message: Option<String>,
}

impl ErrorCodes for CreatedTopic {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes a CreateTopics response body (after the response header) of `version` (2..=7): one result per
/// topic, in the order sent.
pub fn decode_create_topics_response(body: Bytes, version: i16) -> Result<Vec<CreatedTopic>, ProtoError> {
    const API: &str = "CreateTopics";
    check_version(API, version, &CREATE_TOPICS_VERSIONS)?;
    let flex = version >= 5;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    // Name, topic id (v7), error code, error message, then (v5+) partitions, replication factor, configs, tags.
    let min_topic = if flex {
        1 + if version >= 7 { 16 } else { 0 } + 2 + 1 + 4 + 2 + 1 + 1
    } else {
        2 + 2 + 2
    };
    // Name, value, read only, source, sensitive, tags.
    let min_config = 6;
    let topic_count = r.count(flex, min_topic, "topic count")?.unwrap_or(0);
    let mut topics = Vec::with_capacity(prealloc(topic_count));
    for _ in 0..topic_count {
        r.required_string(flex, "topic name")?;
        if version >= 7 {
            r.skip(16, "topic id")?;
        }
        let error_code = r.i16("error code")?;
        let error_message = r.string(flex, "error message")?;
        if flex {
            r.i32("partition count")?;
            r.i16("replication factor")?;
            let configs = r.count(true, min_config, "config count")?.unwrap_or(0);
            for _ in 0..configs {
                r.required_string(true, "config name")?;
                r.string(true, "config value")?;
                r.i8("read only")?;
                r.i8("config source")?;
                r.i8("is sensitive")?;
                r.tagged_fields()?;
            }
            r.tagged_fields()?;
        }
        topics.push(CreatedTopic {
            error_code,
            error_message,
        });
    }
    if flex {
        r.tagged_fields()?;
    }
    Ok(topics)
}

/// Decodes a DeleteTopics response body (after the response header) of `version` (1..=6): one error code per
/// topic (0 if none), in the order sent.
pub fn decode_delete_topics_response(body: Bytes, version: i16) -> Result<Vec<i16>, ProtoError> {
    const API: &str = "DeleteTopics";
    check_version(API, version, &DELETE_TOPICS_VERSIONS)?;
    let flex = version >= 4;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    // Name, topic id (v6), error code, error message (v5+), tags (v4+).
    let min_topic = if flex { 1 } else { 2 }
        + if version >= 6 { 16 } else { 0 }
        + 2
        + usize::from(version >= 5)
        + usize::from(flex);
    let count = r.count(flex, min_topic, "topic count")?.unwrap_or(0);
    let mut codes = Vec::with_capacity(prealloc(count));
    for _ in 0..count {
        r.string(flex, "topic name")?;
        if version >= 6 {
            r.skip(16, "topic id")?;
        }
        codes.push(r.i16("error code")?);
        if version >= 5 {
            r.string(true, "error message")?;
        }
        if flex {
            r.tagged_fields()?;
        }
    }
    if flex {
        r.tagged_fields()?;
    }
    Ok(codes)
}

/// One topic to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewTopic {
    /// The topic's name.
    pub name: String,
    /// Number of partitions (-1: the broker's default).
    pub partitions: i32,
    /// Replication factor (-1: the broker's default).
    pub replication_factor: i16,
    /// Topic configurations, `(name, value)`.
    pub configs: Vec<(String, String)>,
}

/// A CreateTopics request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateTopicsRequest {
    /// Topics to create.
    pub topics: Vec<NewTopic>,
    /// How long the controller may take.
    pub timeout_ms: i32,
}

impl CreateTopicsRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::CreateTopicsRequest {
        use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
        kafka_protocol::messages::CreateTopicsRequest::default()
            .with_topics(
                self.topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(crate::call::wire_topic(&t.name))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(crate::call::wire_str(k))
                                            .with_value(Some(crate::call::wire_str(v)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
            .with_timeout_ms(self.timeout_ms)
    }
}

/// A DeleteTopics request (by name).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteTopicsRequest {
    /// Topics to delete.
    pub names: Vec<String>,
    /// How long the controller may take.
    pub timeout_ms: i32,
}

impl DeleteTopicsRequest {
    pub(crate) fn to_wire(&self, version: i16) -> kafka_protocol::messages::DeleteTopicsRequest {
        use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
        let req = kafka_protocol::messages::DeleteTopicsRequest::default().with_timeout_ms(self.timeout_ms);
        let names = self.names.iter().map(|n| crate::call::wire_topic(n));
        if version >= 6 {
            req.with_topics(
                names
                    .map(|n| DeleteTopicState::default().with_name(Some(n)))
                    .collect(),
            )
        } else {
            req.with_topic_names(names.collect())
        }
    }
}
