//! The "consumer" protocol's member metadata, encoded as the Java client does: a big-endian `i16` version, then
//! `ConsumerProtocolSubscription` / `ConsumerProtocolAssignment` at that version (fields of later versions are
//! appended, so a reader takes the prefix it knows of a newer version and ignores the rest). Encoded and decoded
//! by weir-proto (decoded with its bounded decoders, since the bytes come from other members).

use std::collections::BTreeMap;

use bytes::Bytes;
use weir_proto::consumer_protocol::{
    decode_consumer_assignment, decode_consumer_subscription, ConsumerAssignment, ConsumerSubscription,
};

/// The version weir writes (the Java client's `CONSUMER_PROTOCOL_LATEST_VERSION`).
const VERSION: i16 = weir_proto::consumer_protocol::CONSUMER_PROTOCOL_MAX_VERSION;

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

impl Subscription {
    /// Encodes as the Java client does (version prefix + struct).
    pub fn encode(&self) -> Bytes {
        ConsumerSubscription {
            version: VERSION,
            topics: self.topics.clone(),
            user_data: self.user_data.clone(),
            owned: self.owned.iter().map(|(t, ps)| (t.clone(), ps.clone())).collect(),
            generation: self.generation,
            rack: self.rack.clone(),
        }
        .encode()
    }

    /// Decodes any version (newer versions by their known prefix), bounded: a count the bytes cannot hold is an
    /// error, never an allocation.
    pub fn decode(buf: Bytes) -> Result<Subscription, MetadataError> {
        let m = decode_consumer_subscription(buf)
            .map_err(|e| MetadataError(format!("corrupt subscription: {e}")))?;
        Ok(Subscription {
            topics: m.topics,
            user_data: m.user_data,
            owned: m
                .owned
                .into_iter()
                .fold(BTreeMap::new(), |mut owned, (topic, ps)| {
                    owned.entry(topic).or_insert_with(Vec::new).extend(ps);
                    owned
                }),
            generation: m.generation,
            rack: m.rack,
        })
    }
}

impl Assignment {
    /// Encodes as the Java client does (version prefix + struct).
    pub fn encode(&self) -> Bytes {
        ConsumerAssignment {
            version: VERSION,
            partitions: self
                .partitions
                .iter()
                .map(|(t, ps)| (t.clone(), ps.clone()))
                .collect(),
            user_data: self.user_data.clone(),
        }
        .encode()
    }

    /// Decodes any version, bounded. An empty buffer is an empty assignment (what a leader sends to a member it
    /// gave nothing, and what brokers hand members the leader did not mention).
    pub fn decode(buf: Bytes) -> Result<Assignment, MetadataError> {
        let m =
            decode_consumer_assignment(buf).map_err(|e| MetadataError(format!("corrupt assignment: {e}")))?;
        let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, ps) in m.partitions {
            partitions.entry(topic).or_default().extend(ps);
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
        let v0: &[u8] = &[0, 0, 0, 0, 0, 1, 0, 1, b'x', 0xff, 0xff, 0xff, 0xff];
        let got = Subscription::decode(Bytes::from_static(v0)).unwrap();
        assert_eq!(got.topics, vec!["x".to_string()]);
        assert_eq!(got.generation, -1);
        // A hypothetical v9 with trailing fields: read as v3, the rest ignored.
        let mut v9 = vec![0, 9];
        v9.extend_from_slice(
            &Subscription {
                topics: vec!["y".into()],
                ..Default::default()
            }
            .encode()[2..],
        );
        v9.extend_from_slice(b"future fields");
        assert_eq!(
            Subscription::decode(Bytes::from(v9)).unwrap().topics,
            vec!["y".to_string()]
        );
    }

    #[test]
    fn corrupt_metadata_is_an_error() {
        assert!(Subscription::decode(Bytes::from_static(&[0])).is_err());
        assert!(Subscription::decode(Bytes::from_static(&[0, 0, 0, 0, 0, 5, 0])).is_err());
        assert!(Subscription::decode(Bytes::from_static(&[0xff, 0xff])).is_err());
        assert!(Assignment::decode(Bytes::from_static(&[0, 1, 0, 0, 0, 1])).is_err());
        // Counts the bytes cannot hold are refused before anything is reserved (kafka-protocol's decoder aborted
        // the process on these).
        assert!(Subscription::decode(Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff])).is_err());
        assert!(Assignment::decode(Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff])).is_err());
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
        // version 0, [1 topic] "t" [1 partition] 5, null user data.
        let v0: &[u8] = &[
            0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(
            Assignment::decode(Bytes::from_static(v0)).unwrap().partitions,
            [("t".to_string(), vec![5])].into()
        );
    }
}
