//! Where leader epochs end in partitions' logs (OffsetForLeaderEpoch), asked of each partition's leader: how a
//! consumer finds out, after a leader change, whether the log it fetched was truncated (KIP-320).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use weir_proto::offset_for_leader_epoch::{EpochEndOffset, EpochQuery, OffsetForLeaderEpochRequest};

use super::Cluster;
use crate::error::{check, Error, KafkaCode, Result};
use crate::types::TopicPartition;

/// One partition to ask about: where does `leader_epoch` end, for a client that knows the partition at
/// `current_leader_epoch` (a leader on a newer epoch answers FENCED_LEADER_EPOCH)?
#[derive(Debug, Clone)]
pub(crate) struct EpochAsk {
    pub(crate) tp: TopicPartition,
    pub(crate) current_leader_epoch: i32,
    pub(crate) leader_epoch: i32,
}

impl Cluster {
    /// Asks each partition's leader where the epoch asked ends in its log: one request per leader, all leaders
    /// at once. One answer per ask, in order. One attempt: the caller decides what to retry.
    pub(crate) async fn epoch_ends(&self, asks: &[EpochAsk]) -> Vec<Result<EpochEndOffset>> {
        let mut out: Vec<Option<Result<EpochEndOffset>>> = asks.iter().map(|_| None).collect();
        let mut by_leader: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        for (i, ask) in asks.iter().enumerate() {
            match self.topic(&ask.tp.topic).await.and_then(|t| {
                t.leader(ask.tp.partition).ok_or_else(|| Error::Kafka {
                    code: KafkaCode::LeaderNotAvailable,
                    context: format!("{} has no leader", ask.tp),
                })
            }) {
                Ok(leader) => by_leader.entry(leader).or_default().push(i),
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        let calls = by_leader.into_iter().map(|(leader, idx)| async move {
            let mut topics: BTreeMap<&str, Vec<EpochQuery>> = BTreeMap::new();
            for &i in &idx {
                let a = &asks[i];
                topics.entry(&a.tp.topic).or_default().push(EpochQuery {
                    partition: a.tp.partition,
                    current_leader_epoch: a.current_leader_epoch,
                    leader_epoch: a.leader_epoch,
                });
            }
            let req = OffsetForLeaderEpochRequest {
                topics: topics.into_iter().map(|(t, q)| (t.to_owned(), q)).collect(),
            };
            let answered = async { self.link(leader)?.get().await?.call(&req).await }.await;
            (idx, answered)
        });
        for (idx, answered) in futures::future::join_all(calls).await {
            match answered {
                Err(e) => {
                    for i in idx {
                        out[i] = Some(Err(e.clone()));
                    }
                }
                Ok(answers) => {
                    let mut by_tp: HashMap<(Arc<str>, i32), EpochEndOffset> = answers
                        .into_iter()
                        .map(|a| ((a.topic.clone(), a.partition), a))
                        .collect();
                    for i in idx {
                        let tp = &asks[i].tp;
                        out[i] = Some(match by_tp.remove(&(tp.topic.clone(), tp.partition)) {
                            None => Err(Error::Kafka {
                                code: KafkaCode::UnknownTopicOrPartition,
                                context: format!(
                                    "offset for leader epoch {tp}: the leader's answer leaves it out"
                                ),
                            }),
                            Some(a) => {
                                check(a.error_code, || format!("offset for leader epoch {tp}")).map(|()| a)
                            }
                        });
                    }
                }
            }
        }
        out.into_iter().map(|o| o.expect("every ask answered")).collect()
    }
}
