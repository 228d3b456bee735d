//! Active producers of partitions (DescribeProducers, KIP-664): the idempotent and transactional producers a
//! partition's leader keeps state for, as `kafka-transactions.sh describe-producers` shows them.
//!
//! ```no_run
//! use weir::TopicPartition;
//! # async fn demo(admin: weir::Admin) -> weir::Result<()> {
//! for (tp, producers) in admin.describe_producers(&[TopicPartition::new("orders", 0)]).await? {
//!     for p in producers? {
//!         println!("{tp}: producer {} epoch {} open transaction at {:?}", p.producer_id, p.producer_epoch,
//!             p.current_txn_start_offset);
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};

use weir_proto::describe_producers::DescribeProducersRequest;

use super::{count_mismatch, Admin};
use crate::cluster::RetryWindow;
use crate::error::{check, Error, KafkaCode, Result};
use crate::types::TopicPartition;

/// One producer a partition's leader holds state for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActiveProducer {
    /// The producer id.
    pub producer_id: i64,
    /// The producer's epoch.
    pub producer_epoch: i32,
    /// The sequence number of the last record the partition has from it (-1 if none).
    pub last_sequence: i32,
    /// The timestamp of its last write, in ms since the epoch (-1 if unknown).
    pub last_timestamp: i64,
    /// The epoch of the transaction coordinator that last wrote a transaction marker for it, if any.
    pub coordinator_epoch: Option<i32>,
    /// The first offset of its open transaction on the partition, if one is open.
    pub current_txn_start_offset: Option<i64>,
}

impl Admin {
    /// The active producers of each of `partitions` (repeats asked once), asked of each partition's leader:
    /// one entry per partition, sorted, with its own outcome (producers sorted by id, or the partition's
    /// error: [`Error::UnknownTopic`] for a partition that does not exist, [`Error::Kafka`] with
    /// `TopicAuthorizationFailed`, ...). A partition whose leader moved is asked again after a metadata
    /// refresh, for at most `max.block.ms`.
    pub async fn describe_producers(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Result<Vec<ActiveProducer>>)>> {
        let cluster = self.cluster()?;
        let mut pending: Vec<TopicPartition> = partitions.to_vec();
        pending.sort();
        pending.dedup();
        let mut done: BTreeMap<TopicPartition, Result<Vec<ActiveProducer>>> = BTreeMap::new();
        let mut retry = RetryWindow::new(cluster.config());
        while !pending.is_empty() {
            let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
            let mut again: Vec<(TopicPartition, Error)> = Vec::new();
            for tp in pending.drain(..) {
                let meta = match cluster.topic(&tp.topic).await {
                    Ok(m) => m,
                    Err(e) => {
                        done.insert(tp, Err(e));
                        continue;
                    }
                };
                if tp.partition < 0 || tp.partition >= meta.partition_count() {
                    let unknown = Error::UnknownTopic(tp.to_string());
                    done.insert(tp, Err(unknown));
                    continue;
                }
                match meta.leader(tp.partition) {
                    Some(leader) => by_leader.entry(leader).or_default().push(tp),
                    None => again.push((
                        tp.clone(),
                        Error::Kafka {
                            code: KafkaCode::LeaderNotAvailable,
                            context: format!("DescribeProducers {tp}: no leader"),
                        },
                    )),
                }
            }
            let asks = by_leader.into_iter().map(|(leader, tps)| async move {
                let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
                for tp in &tps {
                    topics.entry(&tp.topic).or_default().push(tp.partition);
                }
                let req = DescribeProducersRequest {
                    topics: topics.into_iter().map(|(t, ps)| (t.to_owned(), ps)).collect(),
                };
                let answer = async {
                    let conn = cluster.link(leader)?.get().await?;
                    let resp = conn.call(&req).await?;
                    Ok::<_, Error>((conn, resp))
                }
                .await;
                let (conn, resp) = match answer {
                    Ok(a) => a,
                    Err(e) => return tps.into_iter().map(|tp| (tp, Err(e.clone()))).collect::<Vec<_>>(),
                };
                let mut found: HashMap<(String, i32), Result<Vec<ActiveProducer>>> = HashMap::new();
                for t in resp {
                    for p in t.partitions {
                        let tp = format!("{}-{}", t.name, p.partition);
                        let msg = p
                            .error_message
                            .filter(|m| !m.is_empty())
                            .map(|m| format!(": {m}"));
                        let outcome = check(p.error_code, || {
                            format!("DescribeProducers {tp}{}", msg.unwrap_or_default())
                        })
                        .map(|()| {
                            let mut producers: Vec<ActiveProducer> = p
                                .active_producers
                                .iter()
                                .map(|s| ActiveProducer {
                                    producer_id: s.producer_id,
                                    producer_epoch: s.producer_epoch,
                                    last_sequence: s.last_sequence,
                                    last_timestamp: s.last_timestamp,
                                    coordinator_epoch: Some(s.coordinator_epoch).filter(|&e| e >= 0),
                                    current_txn_start_offset: Some(s.current_txn_start_offset)
                                        .filter(|&o| o >= 0),
                                })
                                .collect();
                            producers.sort_by_key(|s| s.producer_id);
                            producers
                        });
                        found.insert((t.name.clone(), p.partition), outcome);
                    }
                }
                tps.into_iter()
                    .map(|tp| {
                        let outcome = found
                            .remove(&(tp.topic.to_string(), tp.partition))
                            .unwrap_or_else(|| {
                                Err(count_mismatch::<DescribeProducersRequest>(
                                    &conn,
                                    format!("no result for {tp}"),
                                ))
                            });
                        (tp, outcome)
                    })
                    .collect()
            });
            for (tp, outcome) in futures::future::join_all(asks).await.into_iter().flatten() {
                match outcome {
                    Err(e) if e.is_retriable() => again.push((tp, e)),
                    outcome => {
                        done.insert(tp, outcome);
                    }
                }
            }
            if again.is_empty() {
                break;
            }
            if !retry.wait().await {
                done.extend(again.into_iter().map(|(tp, e)| (tp, Err(e))));
                break;
            }
            tracing::debug!(partitions = again.len(), error = %again[0].1, "DescribeProducers: asking again");
            cluster.refresh(false).await.ok();
            pending = again.into_iter().map(|(tp, _)| tp).collect();
        }
        Ok(done.into_iter().collect())
    }
}
