//! Where a leader epoch ends in a partition's log (OffsetForLeaderEpoch), asked of the partition's leader: how a
//! consumer finds out, after a leader change, whether the log it fetched was truncated (KIP-320).

use weir_proto::offset_for_leader_epoch::{EpochEndOffset, EpochQuery, OffsetForLeaderEpochRequest};

use super::Cluster;
use crate::error::{check, Error, KafkaCode, Result};
use crate::types::TopicPartition;

impl Cluster {
    /// Asks the leader of `tp` where `leader_epoch` ends in its log, as a client that knows the partition at
    /// `current_leader_epoch` (a leader on a newer epoch answers FENCED_LEADER_EPOCH). One attempt: the caller
    /// decides what to retry.
    pub(crate) async fn epoch_end(
        &self,
        tp: &TopicPartition,
        current_leader_epoch: i32,
        leader_epoch: i32,
    ) -> Result<EpochEndOffset> {
        let leader = self
            .topic(&tp.topic)
            .await?
            .leader(tp.partition)
            .ok_or_else(|| Error::Kafka {
                code: KafkaCode::LeaderNotAvailable,
                context: format!("{tp} has no leader"),
            })?;
        let req = OffsetForLeaderEpochRequest {
            topics: vec![(
                tp.topic.to_string(),
                vec![EpochQuery {
                    partition: tp.partition,
                    current_leader_epoch,
                    leader_epoch,
                }],
            )],
        };
        let answers = self.link(leader)?.get().await?.call(&req).await?;
        let answer = answers
            .into_iter()
            .find(|a| *a.topic == *tp.topic && a.partition == tp.partition)
            .ok_or_else(|| Error::Kafka {
                code: KafkaCode::UnknownTopicOrPartition,
                context: format!("offset for leader epoch {tp}: the leader's answer leaves it out"),
            })?;
        check(answer.error_code, || format!("offset for leader epoch {tp}"))?;
        Ok(answer)
    }
}
