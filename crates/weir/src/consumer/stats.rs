//! The consumer's statistics: counters of its life so far and, per assigned partition, where it stands
//! ([`ConsumerStats`], from [`super::Consumer::stats`]). Everything is read from atomics: taking a snapshot walks
//! the state table (one pass over the cells, no lock, nothing on `poll`'s path waits for it).

use std::cmp::Ordering as Order;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::partition::Partition;
use super::{Inner, TopicPartition};

/// A snapshot of a consumer: counters since it was created, and the state of every assigned partition (see
/// [`super::Consumer::stats`]). Counters only grow; the rest is the state when the snapshot was taken (each
/// field read atomically, the whole not at one instant).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConsumerStats {
    /// Times a partition's buffer reached its high watermark and fetching it stopped.
    pub backpressure_pauses: u64,
    /// Times a backpressured partition drained to its low watermark and fetching resumed.
    pub backpressure_resumes: u64,
    /// Records returned by `poll` (and the streams): the records consumed.
    pub records_delivered: u64,
    /// Bytes of the keys, values and headers of the records returned by `poll` (and the streams): the bytes
    /// consumed.
    pub bytes_delivered: u64,
    /// Records fetched and buffered (later delivered, or dropped by a seek, an unassign or close).
    pub records_fetched: u64,
    /// Wire bytes of the record batches those records came from.
    pub bytes_fetched: u64,
    /// Fetch requests completed.
    pub fetches: u64,
    /// Fetch requests answered within an established fetch session (KIP-227): they listed only partitions
    /// new to the session or at a new offset.
    pub incremental_fetches: u64,
    /// Partitions removed from a fetch session (paused, backpressured, unassigned, or fetched elsewhere).
    pub forgotten_partitions: u64,
    /// Fetch sessions the broker refused (evicted, or an epoch out of step); each was started afresh.
    pub fetch_session_errors: u64,
    /// Times a partition's log was found truncated below its fetch position after a leader change (KIP-320:
    /// an unclean leader election). With a reset policy the partition was repositioned (to where the logs part,
    /// or by `auto.offset.reset` when that is unknown); with `none`, [`crate::Error::LogTruncation`] was reported.
    pub log_truncations: u64,
    /// Times a partition moved to the leader a broker named in its fetch answer (NOT_LEADER_OR_FOLLOWER or
    /// FENCED_LEADER_EPOCH with a newer leader, Fetch v16+, KIP-951), without a metadata refresh.
    pub leader_hint_moves: u64,
    /// Bytes of memory buffered right now (fetched, undelivered records), all partitions.
    pub buffered_bytes: usize,
    /// Times a `poll` waiting for records was woken because records became deliverable (one per batch of
    /// partitions that became deliverable together; none for a resume of a partition with nothing buffered).
    pub delivery_wakeups: u64,
    /// The consumer-wide budget of buffered bytes (`weir.memory.budget.bytes`).
    pub memory_budget: usize,
    /// The target window of rate-sized buffers (`weir.buffer.target.ms`): each partition's limit is its drain
    /// rate times this; zero with fixed watermarks.
    pub buffer_target: Duration,
    /// Every assigned partition, sorted by topic and partition.
    pub partitions: Vec<PartitionStats>,
}

/// One assigned partition in a [`ConsumerStats`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionStats {
    /// The partition.
    pub topic_partition: TopicPartition,
    /// Next offset `poll` returns (what a commit of everything delivered commits).
    pub position: i64,
    /// The broker's high watermark from the latest fetch of the partition (`None` before the first since it
    /// was assigned).
    pub high_watermark: Option<i64>,
    /// The last stable offset from the latest fetch (`None` before the first, or from a broker that does not
    /// report it).
    pub last_stable_offset: Option<i64>,
    /// Records between the position and the end of the partition: the high watermark, or under
    /// read_committed the last stable offset, as the Java client counts it (`None` before the first fetch).
    /// Records fetched but not yet delivered count as lag.
    pub lag: Option<i64>,
    /// Buffered, undelivered bytes of memory.
    pub buffered_bytes: u64,
    /// Buffered, undelivered records.
    pub buffered_records: u64,
    /// The partition's buffer limit (high watermark) in bytes now: the configured partition buffer, or the fair
    /// share of the memory budget when that is smaller; with rate-sized buffers (`weir.buffer.target.ms`), its
    /// drain rate times the target window, within the floor, the ceiling and the budget.
    pub buffer_limit: u64,
    /// How fast the application drains the partition, in bytes of memory per second, a moving average over
    /// about a second (rate-sized buffers; 0 in the fixed mode). `buffer_limit` over it is the time the buffer
    /// lasts.
    pub drain_rate: u64,
    /// Paused by the application.
    pub paused: bool,
    /// Held by a consumer group while it rebalances (nothing fetched or delivered meanwhile).
    pub held: bool,
    /// Its buffer passed the limit: not fetched until it drains to the low watermark.
    pub backpressured: bool,
    /// Fetch responses that answered for this partition, since it was first assigned to this consumer.
    pub fetches: u64,
    /// Records fetched for this partition, since it was first assigned to this consumer.
    pub records_fetched: u64,
}

impl PartitionStats {
    /// `p`'s state now; `None` if it is not assigned.
    pub(crate) fn of(p: &Partition) -> Option<PartitionStats> {
        let state = p.snapshot();
        if !state.assigned {
            return None;
        }
        let slot = p.slot();
        let known = |o: i64| (o >= 0).then_some(o);
        let position = slot.delivered.load(Ordering::Acquire);
        let end = slot.log_end.load(Ordering::Relaxed);
        Some(PartitionStats {
            topic_partition: p.topic_partition().clone(),
            position,
            high_watermark: known(slot.high_watermark.load(Ordering::Relaxed)),
            last_stable_offset: known(slot.last_stable_offset.load(Ordering::Relaxed)),
            lag: known(end).map(|end| end.saturating_sub(position).max(0)),
            buffered_bytes: state.buffered,
            buffered_records: slot.buffered_records.load(Ordering::Relaxed),
            buffer_limit: p.watermarks().0,
            drain_rate: slot.drain.rate(),
            paused: state.paused,
            held: state.held,
            backpressured: state.backpressured,
            fetches: slot.fetches.load(Ordering::Relaxed),
            records_fetched: slot.records_fetched.load(Ordering::Relaxed),
        })
    }
}

impl Inner {
    /// The snapshot of [`super::Consumer::stats`].
    pub(crate) fn stats_snapshot(&self) -> ConsumerStats {
        let s = &self.stats;
        let mut partitions = Vec::new();
        self.table
            .for_each_cell(|p| partitions.extend(PartitionStats::of(p)));
        sort_by_partition(&mut partitions);
        ConsumerStats {
            backpressure_pauses: s.backpressure_pauses.load(Ordering::Relaxed),
            backpressure_resumes: s.backpressure_resumes.load(Ordering::Relaxed),
            records_delivered: s.records_delivered.load(Ordering::Relaxed),
            bytes_delivered: s.bytes_delivered.load(Ordering::Relaxed),
            records_fetched: s.records_fetched.load(Ordering::Relaxed),
            bytes_fetched: s.bytes_fetched.load(Ordering::Relaxed),
            fetches: s.fetches.load(Ordering::Relaxed),
            incremental_fetches: s.incremental_fetches.load(Ordering::Relaxed),
            forgotten_partitions: s.forgotten_partitions.load(Ordering::Relaxed),
            fetch_session_errors: s.fetch_session_errors.load(Ordering::Relaxed),
            log_truncations: s.log_truncations.load(Ordering::Relaxed),
            leader_hint_moves: s.leader_hint_moves.load(Ordering::Relaxed),
            buffered_bytes: self.table.buffered_total(),
            delivery_wakeups: self.deliver_wake.wakeups(),
            memory_budget: self.cfg.memory_budget,
            buffer_target: self.cfg.buffer_target,
            partitions,
        }
    }
}

/// Sorts by topic, then partition. The table walks each topic's partitions in order, all sharing the table's
/// copy of the topic name, so a stable sort that compares names only across topics merges a few sorted runs.
fn sort_by_partition(partitions: &mut [PartitionStats]) {
    partitions.sort_by(|a, b| {
        let (a, b) = (&a.topic_partition, &b.topic_partition);
        let topic = match Arc::ptr_eq(&a.topic, &b.topic) {
            true => Order::Equal,
            false => a.topic.cmp(&b.topic),
        };
        topic.then(a.partition.cmp(&b.partition))
    });
}

#[cfg(all(test, not(feature = "loom-model")))]
mod tests {
    use super::*;

    fn stats(topic: &Arc<str>, partition: i32) -> PartitionStats {
        PartitionStats {
            topic_partition: TopicPartition::new(topic.clone(), partition),
            position: 0,
            high_watermark: None,
            last_stable_offset: None,
            lag: None,
            buffered_bytes: 0,
            buffered_records: 0,
            buffer_limit: 0,
            drain_rate: 0,
            paused: false,
            held: false,
            backpressured: false,
            fetches: 0,
            records_fetched: 0,
        }
    }

    #[test]
    fn partitions_sort_by_topic_then_partition_whether_names_are_shared_or_not() {
        let (a, b) = (Arc::<str>::from("a"), Arc::<str>::from("b"));
        let a_again = Arc::<str>::from("a");
        let mut v = vec![
            stats(&b, 0),
            stats(&b, 1),
            stats(&a, 2),
            stats(&a_again, 0),
            stats(&a, 1),
        ];
        sort_by_partition(&mut v);
        let got: Vec<String> = v.iter().map(|p| p.topic_partition.to_string()).collect();
        assert_eq!(got, ["a-0", "a-1", "a-2", "b-0", "b-1"]);
    }
}
