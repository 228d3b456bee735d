//! The "consumer" protocol's member metadata, encoded as the Java client does: a big-endian `i16` version, then
//! `ConsumerProtocolSubscription` / `ConsumerProtocolAssignment` at that version (fields of later versions are
//! appended, so a reader takes the prefix it knows of a newer version and ignores the rest).

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The version weir writes (the Java client's `CONSUMER_PROTOCOL_LATEST_VERSION`).
pub(crate) const VERSION: i16 = 3;
/// The highest version the decoder knows; newer versions are read as this one.
const MAX_KNOWN: i16 = 3;

/// One member's subscription as announced in JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Topics the member wants.
    pub topics: Vec<String>,
    /// Opaque assignor data.
    pub user_data: Option<Bytes>,
    /// Partitions the member owns now (cooperative protocols; empty for eager).
    pub owned: BTreeMap<String, Vec<i32>>,
    /// The generation the owned partitions belong to, -1 if none.
    pub generation: i32,
    /// Rack of the member, if configured.
    pub rack: Option<String>,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription {
            topics: Vec::new(),
            user_data: None,
            owned: BTreeMap::new(),
            generation: -1,
            rack: None,
        }
    }
}

/// One member's assignment as distributed in SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// Partitions by topic.
    pub partitions: BTreeMap<String, Vec<i32>>,
    /// Opaque assignor data.
    pub user_data: Option<Bytes>,
}

/// Why member metadata could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataError(pub String);

impl std::fmt::Display for MetadataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_owned())
}

fn read_version(buf: &mut Bytes) -> Result<i16, MetadataError> {
    if buf.remaining() < 2 {
        return Err(MetadataError("member metadata shorter than its version".into()));
    }
    let v = buf.get_i16();
    if v < 0 {
        return Err(MetadataError(format!("member metadata has negative version {v}")));
    }
    Ok(v.min(MAX_KNOWN))
}

impl Subscription {
    /// Encodes as the Java client does (version prefix + struct).
    pub fn encode(&self) -> Bytes {
        let msg = ConsumerProtocolSubscription::default()
            .with_topics(self.topics.iter().map(|t| s(t)).collect())
            .with_user_data(self.user_data.clone())
            .with_owned_partitions(
                self.owned
                    .iter()
                    .map(|(t, ps)| {
                        OwnedTopic::default()
                            .with_topic(TopicName(s(t)))
                            .with_partitions(ps.clone())
                    })
                    .collect(),
            )
            .with_generation_id(self.generation)
            .with_rack_id(self.rack.as_deref().map(s));
        let mut buf = BytesMut::new();
        buf.put_i16(VERSION);
        msg.encode(&mut buf, VERSION).expect("subscription encodes");
        buf.freeze()
    }

    /// Decodes any version (newer versions by their known prefix).
    pub fn decode(mut buf: Bytes) -> Result<Subscription, MetadataError> {
        let v = read_version(&mut buf)?;
        let m = ConsumerProtocolSubscription::decode(&mut buf, v)
            .map_err(|e| MetadataError(format!("corrupt subscription v{v}: {e}")))?;
        Ok(Subscription {
            topics: m.topics.iter().map(|t| t.to_string()).collect(),
            user_data: m.user_data,
            owned: m
                .owned_partitions
                .into_iter()
                .map(|t| (t.topic.0.to_string(), t.partitions))
                .collect(),
            generation: m.generation_id,
            rack: m.rack_id.map(|r| r.to_string()),
        })
    }
}

impl Assignment {
    /// Encodes as the Java client does (version prefix + struct).
    pub fn encode(&self) -> Bytes {
        let msg = ConsumerProtocolAssignment::default()
            .with_assigned_partitions(
                self.partitions
                    .iter()
                    .map(|(t, ps)| {
                        AssignedTopic::default()
                            .with_topic(TopicName(s(t)))
                            .with_partitions(ps.clone())
                    })
                    .collect(),
            )
            .with_user_data(self.user_data.clone());
        let mut buf = BytesMut::new();
        buf.put_i16(VERSION);
        msg.encode(&mut buf, VERSION).expect("assignment encodes");
        buf.freeze()
    }

    /// Decodes any version. An empty buffer is an empty assignment (what a leader sends to a member it gave
    /// nothing, and what brokers hand members the leader did not mention).
    pub fn decode(mut buf: Bytes) -> Result<Assignment, MetadataError> {
        if buf.is_empty() {
            return Ok(Assignment::default());
        }
        let v = read_version(&mut buf)?;
        let m = ConsumerProtocolAssignment::decode(&mut buf, v)
            .map_err(|e| MetadataError(format!("corrupt assignment v{v}: {e}")))?;
        let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for t in m.assigned_partitions {
            partitions
                .entry(t.topic.0.to_string())
                .or_default()
                .extend(t.partitions);
        }
        Ok(Assignment {
            partitions,
            user_data: m.user_data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_round_trip_and_java_layout() {
        let sub = Subscription {
            topics: vec!["a".into(), "bb".into()],
            ..Default::default()
        };
        let bytes = sub.encode();
        // version 3, [2 topics] "a" "bb", null user data, [0 owned], generation -1, null rack.
        let want: &[u8] = &[
            0, 3, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'b', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(&bytes[..], want);
        assert_eq!(Subscription::decode(bytes).unwrap(), sub);

        let full = Subscription {
            topics: vec!["t".into()],
            user_data: Some(Bytes::from_static(b"u")),
            owned: [("t".to_string(), vec![0, 2])].into(),
            generation: 7,
            rack: Some("r1".into()),
        };
        assert_eq!(Subscription::decode(full.encode()).unwrap(), full);
    }

    #[test]
    fn subscription_v0_and_future_versions() {
        // A v0 subscription (what older clients send): topics and user data only.
        let mut b = BytesMut::new();
        b.put_i16(0);
        ConsumerProtocolSubscription::default()
            .with_topics(vec![s("x")])
            .encode(&mut b, 0)
            .unwrap();
        let got = Subscription::decode(b.freeze()).unwrap();
        assert_eq!(got.topics, vec!["x".to_string()]);
        assert_eq!(got.generation, -1);
        // A hypothetical v9 with trailing fields: read as v3, the rest ignored.
        let mut b = BytesMut::new();
        b.put_i16(9);
        ConsumerProtocolSubscription::default()
            .with_topics(vec![s("y")])
            .encode(&mut b, 3)
            .unwrap();
        b.put_slice(b"future fields");
        assert_eq!(
            Subscription::decode(b.freeze()).unwrap().topics,
            vec!["y".to_string()]
        );
    }

    #[test]
    fn corrupt_metadata_is_an_error() {
        assert!(Subscription::decode(Bytes::from_static(&[0])).is_err());
        assert!(Subscription::decode(Bytes::from_static(&[0, 0, 0, 0, 0, 5, 0])).is_err());
        assert!(Subscription::decode(Bytes::from_static(&[0xff, 0xff])).is_err());
        assert!(Assignment::decode(Bytes::from_static(&[0, 1, 0, 0, 0, 1])).is_err());
    }

    #[test]
    fn assignment_round_trip() {
        let a = Assignment {
            partitions: [("t".to_string(), vec![0, 3]), ("u".to_string(), vec![1])].into(),
            user_data: None,
        };
        let bytes = a.encode();
        assert_eq!(&bytes[..2], &[0, 3]);
        assert_eq!(Assignment::decode(bytes).unwrap(), a);
        assert_eq!(Assignment::decode(Bytes::new()).unwrap(), Assignment::default());
        // v0 from an older leader.
        let mut b = BytesMut::new();
        b.put_i16(0);
        ConsumerProtocolAssignment::default()
            .with_assigned_partitions(vec![AssignedTopic::default()
                .with_topic(TopicName(s("t")))
                .with_partitions(vec![5])])
            .encode(&mut b, 0)
            .unwrap();
        assert_eq!(
            Assignment::decode(b.freeze()).unwrap().partitions,
            [("t".to_string(), vec![5])].into()
        );
    }
}
