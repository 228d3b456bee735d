//! Immutable metadata snapshots.

use std::collections::HashMap;
use std::sync::Arc;

use weir_proto::metadata::MetadataResponse;

use crate::error::KafkaCode;

/// One partition's leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Partition index.
    pub id: i32,
    /// Broker id of the leader, or -1 when there is none right now.
    pub leader: i32,
    /// Leader epoch.
    pub leader_epoch: i32,
    /// A per-partition error, such as `LeaderNotAvailable`.
    pub error: Option<KafkaCode>,
}

/// One topic's partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// The topic's id (KIP-516; Metadata v10+): the 16 bytes of its UUID, all zero when the broker did not say.
    /// Fetch v13+ names topics by it.
    pub topic_id: [u8; 16],
    /// Partitions, indexed by partition id.
    pub partitions: Vec<PartitionMetadata>,
    /// Whether the topic is internal (`__consumer_offsets`).
    pub internal: bool,
}

impl TopicMetadata {
    /// Number of partitions.
    pub fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }

    /// Partition `partition`, if the topic has it.
    pub fn partition(&self, partition: i32) -> Option<&PartitionMetadata> {
        self.partitions.get(usize::try_from(partition).ok()?)
    }

    /// Leader of `partition`, if it has one.
    pub fn leader(&self, partition: i32) -> Option<i32> {
        self.partition(partition).map(|p| p.leader).filter(|&l| l >= 0)
    }
}

/// A consistent view of the cluster at one moment. Readers hold an `Arc` to it; refresh swaps in a new one.
#[derive(Debug, Clone, Default)]
pub struct MetadataSnapshot {
    /// Broker id to `host:port`.
    pub brokers: HashMap<i32, String>,
    /// Topics with usable metadata.
    pub topics: HashMap<String, Arc<TopicMetadata>>,
    /// Topics the cluster reported an error for (e.g. `UnknownTopicOrPartition`).
    pub topic_errors: HashMap<String, KafkaCode>,
    /// Controller broker id, or -1.
    pub controller_id: i32,
}

impl MetadataSnapshot {
    pub(crate) fn from_response(resp: &MetadataResponse) -> Self {
        let brokers = resp
            .brokers
            .iter()
            .map(|(id, host, port)| (*id, format!("{host}:{port}")))
            .collect();
        let mut topics = HashMap::new();
        let mut topic_errors = HashMap::new();
        for t in &resp.topics {
            let Some(name) = t.name.clone() else { continue };
            if let Some(code) = KafkaCode::from_code(t.error_code) {
                topic_errors.insert(name, code);
                continue;
            }
            let mut partitions: Vec<PartitionMetadata> = t
                .partitions
                .iter()
                .map(|p| PartitionMetadata {
                    id: p.partition,
                    leader: p.leader_id,
                    leader_epoch: p.leader_epoch,
                    error: KafkaCode::from_code(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.id);
            // Partition ids are dense 0..n in Kafka; anything else is unusable metadata.
            if partitions.iter().enumerate().any(|(i, p)| p.id != i as i32) {
                continue;
            }
            topics.insert(
                name.clone(),
                Arc::new(TopicMetadata {
                    name,
                    topic_id: t.topic_id,
                    partitions,
                    internal: t.is_internal,
                }),
            );
        }
        Self {
            brokers,
            topics,
            topic_errors,
            controller_id: resp.controller_id,
        }
    }

    /// `self` updated with everything `fresh` reports.
    pub(crate) fn merged_with(&self, fresh: MetadataSnapshot) -> Self {
        let mut out = self.clone();
        out.brokers = fresh.brokers;
        out.controller_id = fresh.controller_id;
        for (name, err) in fresh.topic_errors {
            out.topics.remove(&name);
            out.topic_errors.insert(name, err);
        }
        for (name, t) in fresh.topics {
            out.topic_errors.remove(&name);
            out.topics.insert(name, t);
        }
        out
    }

    /// A topic's metadata.
    pub fn topic(&self, name: &str) -> Option<Arc<TopicMetadata>> {
        self.topics.get(name).cloned()
    }
}
