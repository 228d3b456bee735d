//! Administration: create, delete and list topics; list offsets; metadata.
//!
//! ```no_run
//! # async fn demo() -> weir::Result<()> {
//! let admin = weir::Admin::connect(weir::config::ClientConfig::new("127.0.0.1:9092"))?;
//! admin.create_topic("events", 6, 1).await?;
//! let ends = admin.list_offsets("events", weir::admin::OffsetSpec::Latest).await?;
//! println!("{ends:?}");
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, DeleteTopicsRequest, ListOffsetsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use weir_proto::admin::{decode_create_topics_response, decode_delete_topics_response};
use weir_proto::list_offsets::decode_list_offsets_response;

use crate::cluster::{Cluster, MetadataSnapshot};
use crate::config::ClientConfig;
use crate::error::{check, Error, KafkaCode, Result};

/// Which offset [`Admin::list_offsets`] looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The offset the next record will get (high watermark).
    Latest,
    /// The earliest offset whose timestamp is at or after this many ms since the epoch.
    Timestamp(i64),
}

impl OffsetSpec {
    pub(crate) fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// A cluster administration client. Cheap to clone.
#[derive(Clone)]
pub struct Admin {
    cluster: Arc<Cluster>,
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

impl Admin {
    /// An admin client for the cluster behind `cfg.bootstrap_servers`. Connects lazily.
    pub fn connect(cfg: ClientConfig) -> Result<Admin> {
        Ok(Admin {
            cluster: Cluster::new(cfg)?,
        })
    }

    /// Creates a topic. Already existing is an error (`TopicAlreadyExists`).
    pub async fn create_topic(&self, name: &str, partitions: i32, replication_factor: i16) -> Result<()> {
        let req = CreateTopicsRequest::default()
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(name))
                .with_num_partitions(partitions)
                .with_replication_factor(replication_factor)])
            .with_timeout_ms(self.cluster.config().request_timeout.as_millis() as i32);
        let conn = self.cluster.controller_connection().await?;
        let version = conn.version(ApiKey::CreateTopics)?;
        let body = conn.request_body(&req, version).await?;
        let topics = decode_create_topics_response(body, version).map_err(|e| conn.bad_response(e))?;
        for t in topics {
            let msg = t.error_message.unwrap_or_default();
            check(t.error_code, || format!("create topic {name} {msg}"))?;
        }
        Ok(())
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let conn = self.cluster.controller_connection().await?;
        let version = conn.version(kafka_protocol::messages::ApiKey::DeleteTopics)?;
        let mut req = DeleteTopicsRequest::default()
            .with_timeout_ms(self.cluster.config().request_timeout.as_millis() as i32);
        if version >= 6 {
            req = req.with_topics(vec![DeleteTopicState::default().with_name(Some(topic_name(name)))]);
        } else {
            req = req.with_topic_names(vec![topic_name(name)]);
        }
        let body = conn.request_body(&req, version).await?;
        let codes = decode_delete_topics_response(body, version).map_err(|e| conn.bad_response(e))?;
        for code in codes {
            check(code, || format!("delete topic {name}"))?;
        }
        Ok(())
    }

    /// Metadata of every topic in the cluster.
    pub async fn metadata(&self) -> Result<Arc<MetadataSnapshot>> {
        self.cluster.refresh(true).await
    }

    /// Names of all topics, sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self.metadata().await?.topics.keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    /// The offset `spec` of every partition of `topic`, asked of each partition's leader.
    pub async fn list_offsets(&self, topic: &str, spec: OffsetSpec) -> Result<BTreeMap<i32, i64>> {
        let meta = self.cluster.topic(topic).await?;
        let partitions: Vec<i32> = (0..meta.partition_count()).collect();
        list_offsets(&self.cluster, topic, &partitions, spec).await
    }
}

/// Looks up offsets of `partitions` of `topic`, grouped by leader.
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    topic: &str,
    partitions: &[i32],
    spec: OffsetSpec,
) -> Result<BTreeMap<i32, i64>> {
    let meta = cluster.topic(topic).await?;
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for &p in partitions {
        let leader = meta
            .leader(p)
            .ok_or_else(|| Error::kafka(5, format!("{topic}-{p} has no leader")))?;
        by_leader.entry(leader).or_default().push(p);
    }
    let mut out = BTreeMap::new();
    for (leader, parts) in by_leader {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(
                    parts
                        .iter()
                        .map(|&p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_current_leader_epoch(-1)
                                .with_timestamp(spec.wire())
                        })
                        .collect(),
                )]);
        let conn = cluster.link(leader)?.get().await?;
        let version = conn.version(ApiKey::ListOffsets)?;
        let body = conn.request_body(&req, version).await?;
        let listed = decode_list_offsets_response(body, version).map_err(|e| conn.bad_response(e))?;
        for p in listed {
            if let Some(code) = KafkaCode::try_from_code(p.error_code) {
                if code.is_retriable() {
                    cluster.refresh(false).await.ok();
                }
                return Err(Error::Kafka {
                    code,
                    context: format!("list offsets {topic}-{}", p.partition),
                });
            }
            out.insert(p.partition, p.offset);
        }
    }
    Ok(out)
}
