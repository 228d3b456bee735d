//! The consumer protocol's payloads inside the group APIs: the subscription a member announces in JoinGroup
//! (`ConsumerProtocolSubscription`) and the assignment the leader hands out through SyncGroup
//! (`ConsumerProtocolAssignment`), each a 2-byte version followed by the struct, as the Java client writes them.
//!
//! They come from other members — any client, any bug — so they are decoded here with the bounded reader
//! (kafka-protocol's decoders reserve whatever count the bytes claim). A version above the highest known (3) is
//! read as 3, its extra fields ignored, as the Java client does; a negative version is an error.

use bytes::Bytes;

use crate::wire::{prealloc, WireReader};
use crate::ProtoError;

/// The highest version of both payloads that weir knows.
pub const CONSUMER_PROTOCOL_MAX_VERSION: i16 = 3;

/// A decoded subscription.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerSubscription {
    /// Version the payload declared.
    pub version: i16,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Assignor-specific data.
    pub user_data: Option<Bytes>,
    /// Partitions the member owns, per topic (v1+).
    pub owned: Vec<(String, Vec<i32>)>,
    /// The generation the owned partitions belong to (v2+; -1 if unknown).
    pub generation: i32,
    /// The member's rack (v3+).
    pub rack: Option<String>,
}

/// A decoded assignment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerAssignment {
    /// Version the payload declared.
    pub version: i16,
    /// Assigned partitions, per topic, as sent.
    pub partitions: Vec<(String, Vec<i32>)>,
    /// Assignor-specific data.
    pub user_data: Option<Bytes>,
}

/// Reads the version prefix: the declared version and the one to read it as. A negative version is an error.
fn version(r: &mut WireReader) -> Result<(i16, i16), ProtoError> {
    let declared = r.i16("version")?;
    if declared < 0 {
        return Err(r.err("version (negative)"));
    }
    Ok((declared, declared.min(CONSUMER_PROTOCOL_MAX_VERSION)))
}

/// `[topic: string, partitions: [int32]]`, each count bounded by the bytes left.
fn topic_partitions(r: &mut WireReader, what: &str) -> Result<Vec<(String, Vec<i32>)>, ProtoError> {
    let n = r.count(false, 2 + 4, what)?.unwrap_or(0);
    let mut out = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let topic = r.required_string(false, "topic")?;
        let partitions = r.i32_array(false, "partitions")?;
        out.push((topic, partitions));
    }
    Ok(out)
}

/// Decodes a subscription (version prefix included). Bytes after the known fields are ignored.
pub fn decode_consumer_subscription(buf: Bytes) -> Result<ConsumerSubscription, ProtoError> {
    let mut r = WireReader::new(buf, "ConsumerProtocolSubscription", -1);
    let (declared, v) = version(&mut r)?;
    let mut r = WireReader::new(r.rest(), "ConsumerProtocolSubscription", declared);
    let n = r.count(false, 2, "topic count")?.unwrap_or(0);
    let mut topics = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        topics.push(r.required_string(false, "topic")?);
    }
    let user_data = r.nullable_bytes(false, "user data")?;
    let owned = if v >= 1 {
        topic_partitions(&mut r, "owned partitions")?
    } else {
        Vec::new()
    };
    let generation = if v >= 2 { r.i32("generation")? } else { -1 };
    let rack = if v >= 3 { r.string(false, "rack")? } else { None };
    Ok(ConsumerSubscription {
        version: declared,
        topics,
        user_data,
        owned,
        generation,
        rack,
    })
}

/// Decodes an assignment (version prefix included). An empty buffer is an empty assignment: what brokers hand
/// a member the leader gave nothing. Bytes after the known fields are ignored.
pub fn decode_consumer_assignment(buf: Bytes) -> Result<ConsumerAssignment, ProtoError> {
    if buf.is_empty() {
        return Ok(ConsumerAssignment::default());
    }
    let mut r = WireReader::new(buf, "ConsumerProtocolAssignment", -1);
    let (declared, _) = version(&mut r)?;
    let mut r = WireReader::new(r.rest(), "ConsumerProtocolAssignment", declared);
    let partitions = topic_partitions(&mut r, "assigned partitions")?;
    let user_data = r.nullable_bytes(false, "user data")?;
    Ok(ConsumerAssignment {
        version: declared,
        partitions,
        user_data,
    })
}

fn encode_versioned(msg: &impl kafka_protocol::protocol::Encodable) -> Bytes {
    use bytes::BufMut;
    let mut buf = bytes::BytesMut::new();
    buf.put_i16(CONSUMER_PROTOCOL_MAX_VERSION);
    msg.encode(&mut buf, CONSUMER_PROTOCOL_MAX_VERSION)
        .expect("every field of the payload exists at the latest version");
    buf.freeze()
}

impl ConsumerSubscription {
    /// Encodes as the Java client does: the version prefix, then the struct at
    /// [`CONSUMER_PROTOCOL_MAX_VERSION`] (the `version` field, what a decoded payload declared, is not used).
    pub fn encode(&self) -> Bytes {
        use crate::call::{wire_str, wire_topic};
        use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition;
        let msg = kafka_protocol::messages::ConsumerProtocolSubscription::default()
            .with_topics(self.topics.iter().map(|t| wire_str(t)).collect())
            .with_user_data(self.user_data.clone())
            .with_owned_partitions(
                self.owned
                    .iter()
                    .map(|(t, ps)| {
                        TopicPartition::default()
                            .with_topic(wire_topic(t))
                            .with_partitions(ps.clone())
                    })
                    .collect(),
            )
            .with_generation_id(self.generation)
            .with_rack_id(self.rack.as_deref().map(wire_str));
        encode_versioned(&msg)
    }
}

impl ConsumerAssignment {
    /// Encodes as the Java client does: the version prefix, then the struct at
    /// [`CONSUMER_PROTOCOL_MAX_VERSION`] (the `version` field is not used).
    pub fn encode(&self) -> Bytes {
        use crate::call::wire_topic;
        use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
        let msg = kafka_protocol::messages::ConsumerProtocolAssignment::default()
            .with_assigned_partitions(
                self.partitions
                    .iter()
                    .map(|(t, ps)| {
                        TopicPartition::default()
                            .with_topic(wire_topic(t))
                            .with_partitions(ps.clone())
                    })
                    .collect(),
            )
            .with_user_data(self.user_data.clone());
        encode_versioned(&msg)
    }
}
