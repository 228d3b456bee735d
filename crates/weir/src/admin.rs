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

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use weir_proto::admin::{CreateTopicsRequest, DeleteTopicsRequest, NewTopic};
use weir_proto::list_offsets::ListOffsetsRequest;

use crate::cluster::{Cluster, MetadataSnapshot, RetryWindow, TopicMetadata};
use crate::config::ClientConfig;
use crate::consumer::TopicPartition;
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

impl Admin {
    /// An admin client for the cluster behind `cfg.bootstrap_servers`. Connects lazily.
    pub fn connect(cfg: ClientConfig) -> Result<Admin> {
        Ok(Admin {
            cluster: Cluster::new(cfg)?,
        })
    }

    /// Creates a topic. Already existing is an error (`TopicAlreadyExists`).
    pub async fn create_topic(&self, name: &str, partitions: i32, replication_factor: i16) -> Result<()> {
        let req = CreateTopicsRequest {
            topics: vec![NewTopic {
                name: name.to_owned(),
                partitions,
                replication_factor,
                configs: Vec::new(),
            }],
            timeout_ms: self.cluster.config().request_timeout.as_millis() as i32,
        };
        let topics = self.cluster.controller_connection().await?.call(&req).await?;
        for t in topics {
            let msg = t.error_message.unwrap_or_default();
            check(t.error_code, || format!("create topic {name} {msg}"))?;
        }
        Ok(())
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let req = DeleteTopicsRequest {
            names: vec![name.to_owned()],
            timeout_ms: self.cluster.config().request_timeout.as_millis() as i32,
        };
        let codes = self.cluster.controller_connection().await?.call(&req).await?;
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

/// Looks up offsets of `partitions` of `topic`: one request per leader.
pub(crate) async fn list_offsets(
    cluster: &Cluster,
    topic: &str,
    partitions: &[i32],
    spec: OffsetSpec,
) -> Result<BTreeMap<i32, i64>> {
    let topic: Arc<str> = Arc::from(topic);
    let tps: Vec<TopicPartition> = partitions
        .iter()
        .map(|&p| TopicPartition::new(Arc::clone(&topic), p))
        .collect();
    Ok(list_offsets_of(cluster, &tps, spec)
        .await?
        .into_iter()
        .map(|(tp, o)| (tp.partition, o))
        .collect())
}

/// Looks up offsets of `partitions` (any topics): one request per leader, all leaders asked at once. Partitions
/// whose leader answers with a retriable error (a leader just elected or moved, a topic just created) are asked
/// again after a metadata refresh, with backoff, for at most `max.block.ms`, as the Java client does.
pub(crate) async fn list_offsets_of(
    cluster: &Cluster,
    partitions: &[TopicPartition],
    spec: OffsetSpec,
) -> Result<HashMap<TopicPartition, i64>> {
    let mut retry = RetryWindow::new(cluster.config());
    let mut out = HashMap::with_capacity(partitions.len());
    let mut todo: Vec<TopicPartition> = partitions.to_vec();
    loop {
        let err = match list_offsets_once(cluster, &todo, spec, &mut out).await {
            Ok(failed) => match failed.into_iter().next() {
                None => return Ok(out),
                Some(e) => e,
            },
            Err(e) => e,
        };
        if !err.is_retriable() || !retry.wait().await {
            return Err(err);
        }
        tracing::debug!(error = %err, "list offsets: retrying");
        todo.retain(|tp| !out.contains_key(tp));
        cluster.refresh(false).await.ok();
    }
}

/// One round of [`list_offsets_of`]: answers go into `out`; returns the errors of the partitions that failed.
async fn list_offsets_once(
    cluster: &Cluster,
    partitions: &[TopicPartition],
    spec: OffsetSpec,
    out: &mut HashMap<TopicPartition, i64>,
) -> Result<Vec<Error>> {
    let mut failed = Vec::new();
    let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
    let mut meta: HashMap<&str, Arc<TopicMetadata>> = HashMap::new();
    for tp in partitions {
        let t = match meta.get(&*tp.topic) {
            Some(t) => t,
            None => {
                let t = cluster.topic(&tp.topic).await?;
                meta.entry(&tp.topic).or_insert(t)
            }
        };
        let Some(leader) = t.leader(tp.partition) else {
            failed.push(Error::Kafka {
                code: KafkaCode::LeaderNotAvailable,
                context: format!("{tp} has no leader"),
            });
            continue;
        };
        by_leader
            .entry(leader)
            .or_default()
            .entry(&tp.topic)
            .or_default()
            .push(tp.partition);
    }
    let asks = by_leader.into_iter().map(|(leader, topics)| async move {
        let req = ListOffsetsRequest {
            isolation_level: 0,
            topics: topics
                .into_iter()
                .map(|(topic, parts)| {
                    (
                        topic.to_owned(),
                        parts.iter().map(|&p| (p, spec.wire())).collect(),
                    )
                })
                .collect(),
        };
        cluster.link(leader)?.get().await?.call(&req).await
    });
    for listed in futures::future::join_all(asks).await {
        let listed = match listed {
            Ok(l) => l,
            Err(e) => {
                failed.push(e);
                continue;
            }
        };
        for p in listed {
            if let Some(code) = KafkaCode::from_code(p.error_code) {
                failed.push(Error::Kafka {
                    code,
                    context: format!("list offsets {}-{}", p.topic, p.partition),
                });
                continue;
            }
            out.insert(TopicPartition::new(p.topic, p.partition), p.offset);
        }
    }
    // A fatal error decides; otherwise any retriable one asks for another round.
    failed.sort_by_key(|e| e.is_retriable());
    Ok(failed)
}
