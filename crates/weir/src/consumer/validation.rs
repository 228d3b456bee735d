//! Validating a fetch position after a leader change (KIP-320): was the log fetched truncated?
//!
//! A partition's fetch position comes with the leader epoch of the last batch fetched up to it. When the router
//! finds the partition under a new leader epoch, the partition's next fetch waits (its ticket parked) while the
//! new leader is asked where that epoch ends in its log (OffsetForLeaderEpoch). Ending at or past the position,
//! the log is the one fetched, and fetching goes on. Ending before it, the log was truncated (an unclean leader
//! election gave leadership to a replica that never had the records from there on): with a reset policy the
//! partition goes back to where the logs part, or to its delivered position if that is earlier (the records
//! between are still the leader's); with `auto.offset.reset=none` the partition stops and
//! [`Error::LogTruncation`] is reported, as the Java client throws `LogTruncationException`. A leader that knows
//! no epoch at or below the one asked cannot say where the logs part: `auto.offset.reset` decides.
//!
//! The partitions a fetcher finds due together are asked about together, one request per leader. Leadership
//! moving again meanwhile (a fenced or unknown epoch, a lost connection) sends the partition back to the router,
//! still due for validation. A seek or unassign meanwhile releases the
//! parked ticket, and the answer is ignored.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use weir_proto::offset_for_leader_epoch::EpochEndOffset;

use super::config::OffsetReset;
use super::partition::Partition;
use super::state_table::{FetchGroupId, FetchTicket};
use super::Inner;
use crate::cluster::EpochAsk;
use crate::error::{Error, Result};

/// What the new leader's answer says about a fetch position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The leader's log holds everything up to the position, as fetched.
    Valid,
    /// The log was truncated below the position: it parts from the one fetched at `divergent`.
    Truncated { divergent: i64 },
    /// The leader knows no epoch at or below the one asked: where the logs part is unknown.
    Unknown,
}

/// Judges `position` by the leader's answer: the largest epoch of its log not above the one asked
/// (`leader_epoch`) and the offset where it ends (`end_offset`), each -1 if unknown.
pub(crate) fn verdict(position: i64, leader_epoch: i32, end_offset: i64) -> Verdict {
    if end_offset < 0 || leader_epoch < 0 {
        Verdict::Unknown
    } else if end_offset < position {
        Verdict::Truncated {
            divergent: end_offset,
        }
    } else {
        Verdict::Valid
    }
}

/// A partition whose position waits for validation: its parked fetch ticket and the leader epoch of the last
/// batch fetched.
pub(crate) struct Due {
    pub(crate) partition: Arc<Partition>,
    pub(crate) ticket: FetchTicket,
    pub(crate) fetched_epoch: i32,
}

impl Inner {
    /// Validates the positions of `due` (their fetch tickets parked) against their current leaders: one
    /// OffsetForLeaderEpoch request per leader (see the module documentation).
    pub(crate) fn spawn_validation(self: &Arc<Self>, due: Vec<Due>) {
        let inner = self.clone();
        tokio::spawn(async move {
            let asks: Vec<EpochAsk> = due
                .iter()
                .map(|d| EpochAsk {
                    tp: d.partition.topic_partition().clone(),
                    current_leader_epoch: d.partition.slot().leader_epoch.load(Ordering::Relaxed),
                    leader_epoch: d.fetched_epoch,
                })
                .collect();
            let answers = inner.cluster.epoch_ends(&asks).await;
            // The answers first; partitions to ask again (a transient failure) go back to the router after the
            // retry backoff, so that a leader that keeps failing is not asked in a loop.
            let mut again = Vec::new();
            for ((d, ask), answer) in due.into_iter().zip(&asks).zip(answers) {
                match answer {
                    Err(e) if e.is_retriable() => again.push((d, ask.current_leader_epoch, Err(e))),
                    answer => inner.settle(d, ask.current_leader_epoch, answer),
                }
            }
            if !again.is_empty() {
                tokio::time::sleep(inner.cfg.client.retry_backoff).await;
                for (d, current, answer) in again {
                    inner.settle(d, current, answer);
                }
            }
        });
    }

    /// Acts on the leader's answer about one partition's position.
    fn settle(self: &Arc<Self>, due: Due, current: i32, answer: Result<EpochEndOffset>) {
        let Due {
            partition: p,
            ticket,
            fetched_epoch,
        } = due;
        if self.is_closed() || p.epoch() != ticket.epoch {
            return; // Closed, or sought or unassigned meanwhile: the ticket was released.
        }
        let tp = p.topic_partition();
        let slot = p.slot();
        let end = match answer {
            Ok(end) => end,
            Err(Error::UnsupportedApi { .. }) => {
                // A broker that cannot tell: fetch on, as the Java client does.
                p.unpark(ticket);
                return;
            }
            Err(e) if e.is_retriable() => {
                // Leadership moved again, or the leader is unreachable: through the router (fresh metadata,
                // with its backoff), then validated again.
                tracing::debug!(%tp, error = %e, "position validation failed; retrying");
                slot.stale_leader.store(true, Ordering::Relaxed);
                slot.validate.store(true, Ordering::Relaxed);
                p.set_fetch_group(FetchGroupId::UNROUTED);
                p.unpark(ticket);
                return;
            }
            Err(e) => {
                // Not allowed, say: the partition stops until a seek, as when a fetch fails so.
                self.report(e);
                return;
            }
        };
        let position = ticket.position;
        let divergent = match verdict(position, end.leader_epoch, end.end_offset) {
            Verdict::Valid => {
                p.unpark(ticket);
                return;
            }
            Verdict::Truncated { divergent } => Some(divergent),
            Verdict::Unknown => None,
        };
        self.stats.log_truncations.fetch_add(1, Ordering::Relaxed);
        let reset = self.cfg.auto_offset_reset;
        tracing::warn!(%tp, position, divergent, fetched_epoch, leader_epoch = current, ?reset,
            "log truncated below the fetch position (unclean leader election)");
        match (divergent, reset) {
            (_, OffsetReset::None) => self.report(Error::LogTruncation {
                topic: tp.topic.to_string(),
                partition: tp.partition,
                offset: position,
                divergent_offset: divergent,
            }),
            (Some(divergent), _) => {
                // Records delivered before the logs part were the new leader's too: not delivered again.
                let to = divergent.min(slot.delivered.load(Ordering::SeqCst));
                let _ = self.seek_to(tp, to);
            }
            (None, _) => self.spawn_offset_reset(p.clone(), position),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_within_the_epoch_is_valid() {
        assert_eq!(verdict(10, 3, 10), Verdict::Valid);
        assert_eq!(verdict(10, 3, 25), Verdict::Valid);
    }

    #[test]
    fn an_epoch_ending_before_the_position_is_a_truncation() {
        assert_eq!(verdict(10, 3, 7), Verdict::Truncated { divergent: 7 });
        assert_eq!(verdict(10, 2, 0), Verdict::Truncated { divergent: 0 });
    }

    #[test]
    fn an_unknown_epoch_or_offset_leaves_the_divergence_unknown() {
        assert_eq!(verdict(10, -1, 5), Verdict::Unknown);
        assert_eq!(verdict(10, 3, -1), Verdict::Unknown);
    }
}
