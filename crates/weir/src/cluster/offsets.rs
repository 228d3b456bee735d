//! Offset lookups (ListOffsets): the offset of a position (earliest, latest) or a time, per partition, asked of
//! each partition's leader.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use weir_proto::list_offsets::ListOffsetsRequest;

use super::{Cluster, RetryWindow, TopicMetadata};
use crate::error::{Error, KafkaCode, Result};
use crate::types::TopicPartition;

/// Which offset a lookup by time or position finds ([`crate::Admin::list_offsets`], the consumer's start
/// offsets).
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

impl Cluster {
    /// Looks up offsets of `partitions` of `topic`: one request per leader.
    pub(crate) async fn list_offsets(
        &self,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<i32, i64>> {
        let topic: Arc<str> = Arc::from(topic);
        let tps: Vec<TopicPartition> = partitions
            .iter()
            .map(|&p| TopicPartition::new(Arc::clone(&topic), p))
            .collect();
        Ok(self
            .list_offsets_of(&tps, spec, 0)
            .await?
            .into_iter()
            .map(|(tp, o)| (tp.partition, o))
            .collect())
    }

    /// Looks up offsets of `partitions` (any topics): one request per leader, all leaders asked at once, at
    /// `isolation_level` (1, read_committed: `Latest` is the last stable offset). Partitions
    /// whose leader answers with a retriable error (a leader just elected or moved, a topic just created) are asked
    /// again after a metadata refresh, with backoff, for at most `max.block.ms`, as the Java client does.
    pub(crate) async fn list_offsets_of(
        &self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
        isolation_level: i8,
    ) -> Result<HashMap<TopicPartition, i64>> {
        let mut retry = RetryWindow::new(self.config());
        let mut out = HashMap::with_capacity(partitions.len());
        let mut todo: Vec<TopicPartition> = partitions.to_vec();
        loop {
            let err = match self
                .list_offsets_once(&todo, spec, isolation_level, &mut out)
                .await
            {
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
            self.refresh(false).await.ok();
        }
    }

    /// One round of [`list_offsets_of`]: answers go into `out`; returns the errors of the partitions that failed.
    async fn list_offsets_once(
        &self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
        isolation_level: i8,
        out: &mut HashMap<TopicPartition, i64>,
    ) -> Result<Vec<Error>> {
        let mut failed = Vec::new();
        let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
        let mut meta: HashMap<&str, Arc<TopicMetadata>> = HashMap::new();
        for tp in partitions {
            let t = match meta.get(&*tp.topic) {
                Some(t) => t,
                None => {
                    let t = self.topic(&tp.topic).await?;
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
                isolation_level,
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
            self.link(leader)?.get().await?.call(&req).await
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
}
