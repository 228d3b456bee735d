//! The consumer: partition state table, per-partition buffers with hysteresis, fetchers, delivery.
//!
//! ```no_run
//! # async fn demo() -> weir::Result<()> {
//! use std::time::Duration;
//! use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
//! let consumer = Consumer::new(ConsumerConfig::new("127.0.0.1:9092").with_partition_buffer(4 << 20))?;
//! consumer.assign(&[(TopicPartition::new("events", 0), StartOffset::Earliest)]).await?;
//! loop {
//!     let records = consumer.poll(500, Duration::from_secs(1)).await?;
//!     if records.is_empty() { break; }
//!     for r in &records { println!("{}-{}@{}", r.topic, r.partition, r.offset); }
//! }
//! consumer.close().await?;
//! # Ok(()) }
//! ```
//!
//! How it works: every assigned partition has a cell in the state table (`consumer/state_table`) (atomics: position,
//! epoch, paused, backpressured, in flight, buffered bytes). One fetcher task per leader broker begins fetches
//! only for partitions that became fetchable (its ready queue), keeps up to `fetches_in_flight` requests
//! outstanding, decodes responses off the application's thread and appends records to per-partition buffers.
//! A partition whose buffer reaches its high watermark stops being fetched until `poll` drains it to the low
//! watermark; the consumer-wide budget caps the sum. `pause` is one atomic operation and keeps buffered data;
//! `poll` visits only partitions with deliverable data (a queue), so paused or idle partitions cost nothing.
//!
//! Watching it: [`Consumer::stats`] is a snapshot of the counters and of every assigned partition (position, high
//! watermark, lag, buffer and its limit, pause and backpressure), read from the same atomics without a lock.
//! Metrics go through the `metrics` facade to whatever recorder the application installed: consumer-wide
//! counters and the fetch latency are updated once per fetch response or `poll` call, and a task copies the
//! per-partition gauges from the table every `weir.metrics.interval.ms` (`metrics.rs`). With tracing, each
//! fetch request is a `fetch` span (debug), and trace events follow records from the response (`buffered`, with
//! topic, partition and offsets) to `poll` (`delivered`).

mod aborted;
mod config;
mod crc_retry;
mod decode;
mod fetch_apply;
// Lock-free lookups need raw pointers: an `ArcSwap` guard per by-name call cost more than the pause itself.
#[allow(unsafe_code)]
mod directory;
mod fetcher;
// Lock-free lists need raw pointers: a push that locked a mutex was the cost of resume in profiles.
#[allow(unsafe_code)]
mod intrusive_list;
mod metrics;
mod partition;
mod rate_sizing;
mod record;
mod record_queue;
mod router;
mod session;
mod signal;
mod validation;
// Public only to the benchmarks (`features = ["internals"]`, which weir's dev-dependency on itself turns on):
// the table is measured alone there. Applications use it through `Consumer`.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod state_table;
#[cfg(not(feature = "internals"))]
mod state_table;
mod stats;
mod sync;

pub use config::{ConsumerConfig, IsolationLevel, OffsetReset};
pub use record::ConsumerRecord;
pub use state_table::PartitionState;
pub use state_table::{NotAssigned, PartitionHandle, TopicPartition};
pub use stats::{ConsumerStats, PartitionStats};

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::cluster::Cluster;
use crate::cluster::OffsetSpec;
use crate::error::{Error, KafkaCode, Result};
use fetcher::Fetcher;
use intrusive_list::IntrusiveList;
use metrics::ConsumerMetrics;
use partition::{DeliverLink, Partition, PartitionSlot, Taken};
use signal::Signal;
use state_table::{ReadyWaker, StateTable, StateTableConfig};

/// Partition numbers `assign` takes are below this. The state table indexes each topic's partitions in an array, so
/// a number from a buggy caller or a hostile group leader must not make it allocate gigabytes; Kafka clusters stay
/// far below (tens of thousands of partitions per topic at most).
pub const MAX_PARTITION: i32 = 1 << 20;

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The log start offset.
    Earliest,
    /// The end of the log: only records written from now on.
    Latest,
    /// This exact offset.
    Offset(i64),
    /// `N` records before the end (kcat's `-o -N`), not before the log start.
    FromEnd(i64),
    /// The first offset whose timestamp is at or after this many ms since the epoch.
    Timestamp(i64),
}

/// A Kafka consumer of explicitly assigned partitions. `Send + Sync`; share it with an `Arc`.
pub struct Consumer {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) cfg: ConsumerConfig,
    pub(crate) cluster: Arc<Cluster>,
    /// Every partition ever assigned: its state and its buffer, one lookup by name.
    pub(crate) table: StateTable<PartitionSlot>,
    assign_lock: tokio::sync::Mutex<()>,
    fetchers: Mutex<HashMap<i32, Arc<Fetcher>>>,
    router_wake: Arc<Signal>,
    /// Partitions with records to deliver (lock-free; `PartitionSlot::queued` keeps each in it at most once).
    deliver: IntrusiveList<Partition, DeliverLink>,
    /// Wakes a `poll` waiting for records, once per empty-to-non-empty change of `deliver`.
    deliver_wake: Signal,
    /// The partitions `poll` took from `deliver` and has not served yet; its lock lets one `poll` run at a time.
    polling: tokio::sync::Mutex<VecDeque<Arc<Partition>>>,
    errors: Mutex<VecDeque<Error>>,
    events: Notify,
    closed: AtomicBool,
    pub(crate) stats: StatCounters,
    /// Handles of the consumer-wide metrics.
    pub(crate) metrics: ConsumerMetrics,
    /// Memory the records of one wire byte cost once decoded, in thousandths (an average over recent fetches;
    /// 0 until measured, taken as 1000). A fetch asks the broker for its memory grant divided by this, so that
    /// what arrives fits the grant instead of being fetched again.
    pub(crate) memory_per_wire_milli: AtomicU64,
    /// Wire size of the largest record batch fetched lately: every partition is asked for at least this much
    /// (see `fetcher::partition_ask`).
    pub(crate) batch_floor: AtomicU64,
}

#[derive(Default)]
pub(crate) struct StatCounters {
    pub(crate) backpressure_pauses: AtomicU64,
    pub(crate) backpressure_resumes: AtomicU64,
    pub(crate) records_delivered: AtomicU64,
    pub(crate) bytes_delivered: AtomicU64,
    pub(crate) records_fetched: AtomicU64,
    pub(crate) bytes_fetched: AtomicU64,
    pub(crate) fetches: AtomicU64,
    pub(crate) incremental_fetches: AtomicU64,
    pub(crate) forgotten_partitions: AtomicU64,
    pub(crate) fetch_session_errors: AtomicU64,
    pub(crate) log_truncations: AtomicU64,
    pub(crate) leader_hint_moves: AtomicU64,
}

/// One partition's state, for monitoring (see [`Consumer::partition_view`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionView {
    /// Paused by the application.
    pub paused: bool,
    /// Buffer above its high watermark (not fetched until it drains to the low watermark).
    pub backpressured: bool,
    /// Buffered, undelivered bytes.
    pub buffered_bytes: u64,
    /// The partition's high watermark in bytes right now: the configured buffer, or the fair share of the
    /// budget when that is smaller; with rate-sized buffers (`weir.buffer.target.ms`), its drain rate times the
    /// target window, within the floor, the ceiling and the budget.
    pub buffer_limit: u64,
    /// How fast the application drains the partition, in bytes of memory per second, a moving average over
    /// about a second (rate-sized buffers; 0 in the fixed mode).
    pub drain_rate: u64,
    /// Next offset `poll` returns.
    pub position: i64,
    /// High watermark from the latest fetch (under read_committed, the last stable offset), -1 before the
    /// first.
    pub high_watermark: i64,
    /// The broker that answered the partition's latest fetch (its leader, or with `client.rack` a replica in
    /// the consumer's rack), -1 before the first.
    pub fetched_from: i32,
}

impl Consumer {
    /// A consumer for the cluster in `cfg`. Connects lazily; must be called inside a tokio runtime.
    pub fn new(cfg: ConsumerConfig) -> Result<Consumer> {
        cfg.validate()?;
        let cluster = Cluster::new(cfg.client.clone())?;
        let router_wake = Arc::new(Signal::default());
        let table = StateTable::with_unrouted_waker(
            StateTableConfig {
                high_watermark: cfg.partition_buffer as u64,
                low_watermark: cfg.partition_buffer_low as u64,
                max_buffered_bytes: cfg.memory_budget,
            },
            router_wake.clone() as Arc<dyn ReadyWaker>,
        );
        let inner = Arc::new(Inner {
            cluster,
            table,
            assign_lock: tokio::sync::Mutex::new(()),
            fetchers: Mutex::new(HashMap::new()),
            router_wake,
            deliver: IntrusiveList::default(),
            deliver_wake: Signal::default(),
            polling: tokio::sync::Mutex::new(VecDeque::new()),
            errors: Mutex::new(VecDeque::new()),
            events: Notify::new(),
            closed: AtomicBool::new(false),
            stats: StatCounters::default(),
            metrics: ConsumerMetrics::new(&cfg.client.client_id),
            memory_per_wire_milli: AtomicU64::new(0),
            batch_floor: AtomicU64::new(0),
            cfg,
        });
        tokio::spawn(router::route(inner.clone()));
        if let Some(sizing) = rate_sizing::Sizing::of(&inner.cfg) {
            tokio::spawn(rate_sizing::run(Arc::downgrade(&inner), sizing));
        }
        if !inner.cfg.metrics_interval.is_zero() {
            tokio::spawn(metrics::publish(
                Arc::downgrade(&inner),
                inner.cfg.metrics_interval,
            ));
        }
        Ok(Consumer { inner })
    }

    /// Starts consuming `partitions`, each from its start offset. Already assigned partitions are re-positioned
    /// (their pause state is kept).
    pub async fn assign(&self, partitions: &[(TopicPartition, StartOffset)]) -> Result<()> {
        self.assign_with(partitions, AssignAs::Running).await
    }

    /// [`Consumer::assign`], with every given partition held by the assignment's owner (a consumer group
    /// setting a new assignment up): nothing is fetched or delivered until [`Consumer::release`]; the
    /// application's own pause state is kept apart.
    pub(crate) async fn assign_held(&self, partitions: &[(TopicPartition, StartOffset)]) -> Result<()> {
        self.assign_with(partitions, AssignAs::Held).await
    }

    /// Holds partitions: no record of theirs is fetched or delivered until released, whatever the
    /// application's pause or resume calls do meanwhile.
    pub(crate) fn hold(&self, partitions: &[TopicPartition]) {
        self.inner.table.hold(partitions);
    }

    /// Releases held partitions: they run again unless the application paused them.
    pub(crate) fn release(&self, partitions: &[TopicPartition]) {
        let inner = &self.inner;
        inner.delivering(|ready| inner.table.release(partitions, ready));
    }

    async fn assign_with(&self, partitions: &[(TopicPartition, StartOffset)], how: AssignAs) -> Result<()> {
        let inner = &self.inner;
        if let Some((tp, _)) = partitions
            .iter()
            .find(|(tp, _)| !(0..MAX_PARTITION).contains(&tp.partition))
        {
            return Err(Error::InvalidArgument(format!(
                "{tp}: partition numbers go from 0 to {}",
                MAX_PARTITION - 1
            )));
        }
        let _guard = inner.assign_lock.lock().await;
        inner
            .cluster
            .add_interest(partitions.iter().map(|(tp, _)| &*tp.topic));
        let partitions = inner.authorized(partitions).await;
        let mut resolved = inner.resolve_all(&partitions).await?;
        // A partition named twice starts where its last start says.
        let mut seen = HashSet::with_capacity(resolved.len());
        resolved.reverse();
        resolved.retain(|(tp, _)| seen.insert(tp.clone()));
        resolved.reverse();
        match how {
            AssignAs::Running => inner.table.assign(&resolved),
            AssignAs::Held => inner.table.assign_held(&resolved),
        }
        for (tp, offset) in &resolved {
            let p = inner.table.cell_ref(tp).expect("just assigned");
            p.reset(p.epoch(), *offset);
        }
        inner.share_budget();
        Ok(())
    }

    /// Stops consuming `partitions`: in-flight fetches for them are discarded quietly, buffered records dropped.
    pub fn unassign(&self, partitions: &[TopicPartition]) {
        self.unassigned(self.inner.table.unassign(partitions));
    }

    /// [`Consumer::unassign`], except partitions the application paused: they stay assigned and paused (a
    /// consumer group keeps them through a rebalance, so the pause survives it).
    pub(crate) fn unassign_unless_paused(&self, partitions: &[TopicPartition]) {
        self.unassigned(self.inner.table.unassign_unless_paused(partitions));
    }

    /// Resets the buffers of partitions the table just unassigned.
    fn unassigned(&self, changes: Vec<(Arc<Partition>, state_table::EpochChange)>) {
        for (p, change) in changes {
            p.reset(change.epoch, -1);
            let slot = p.slot();
            // Unknown again until a fetch after the next assign (a group member getting a partition back).
            slot.log_end.store(-1, Ordering::SeqCst);
            slot.high_watermark.store(-1, Ordering::Relaxed);
            slot.last_stable_offset.store(-1, Ordering::Relaxed);
            slot.detached.store(false, Ordering::SeqCst);
            slot.data_ready.notify_waiters();
        }
        self.inner.share_budget();
    }

    /// Moves the position of an assigned partition; buffered records and in-flight results are discarded.
    pub async fn seek(&self, tp: &TopicPartition, to: StartOffset) -> Result<()> {
        let offset = self.inner.resolve(tp, to).await?;
        self.inner.seek_to(tp, offset)
    }

    /// The offset of the next record `poll` returns for `tp`, if assigned.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        let p = self.inner.table.cell_ref(tp)?;
        p.is_assigned()
            .then(|| p.slot().delivered.load(Ordering::Acquire))
    }

    /// The leader epoch of the last record delivered from `tp`, if its delivered position is `offset` and the
    /// epoch is known: what a commit of `offset` carries (KIP-320).
    pub(crate) fn delivered_epoch_at(&self, tp: &TopicPartition, offset: i64) -> Option<i32> {
        let p = self.inner.table.cell_ref(tp)?;
        if !p.is_assigned() {
            return None;
        }
        match p.delivered_with_epoch() {
            (position, epoch) if position == offset => epoch,
            _ => None,
        }
    }

    /// Marks `tp`'s position (just set, and not fetched from yet) as reached under leader epoch `leader_epoch`,
    /// to be validated against the leader's log before its first fetch (KIP-320): a committed offset restored
    /// with the epoch its committer knew.
    pub(crate) fn validate_position(&self, tp: &TopicPartition, leader_epoch: i32) {
        if let Some(p) = self.inner.table.cell_ref(tp) {
            p.slot().set_fetched_epoch(p.epoch(), leader_epoch);
            p.slot().validate.store(true, Ordering::Relaxed);
        }
    }

    /// The partition's high watermark as of the latest fetch response (-1 before the first); under
    /// read_committed, its last stable offset: where the records this consumer can read end.
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        Some(
            self.inner
                .table
                .cell_ref(tp)?
                .slot()
                .log_end
                .load(Ordering::SeqCst),
        )
    }

    /// Pauses partitions: from the moment this returns, no record of theirs is delivered and they are not
    /// fetched. Buffered records are kept and delivered after `resume`. One lookup and one atomic operation per
    /// partition, no lock, from any thread.
    ///
    /// Partitions that are not assigned are left alone and named in the `Err` (the others are paused all the
    /// same).
    pub fn pause(&self, partitions: &[TopicPartition]) -> std::result::Result<(), NotAssigned> {
        self.inner.table.pause(partitions)
    }

    /// Waits for any delivery of `partitions` in progress to finish (a `poll` that checked the pause flag just
    /// before a `pause`), so that their positions are final: after `pause` then `settle`, `position` counts every
    /// record that was or will be returned. Used before committing the positions of revoked partitions.
    pub(crate) fn settle(&self, partitions: &[TopicPartition]) {
        for tp in partitions {
            if let Some(p) = self.inner.table.cell_ref(tp) {
                p.settle();
            }
        }
    }

    /// Resumes partitions paused with [`Consumer::pause`]; their buffered records become deliverable. One lookup
    /// and one atomic operation per partition, no lock; a partition with records buffered is queued for delivery
    /// (lock-free), and a waiting `poll` is woken once for the whole call. Resuming a partition with nothing
    /// buffered wakes nothing.
    ///
    /// Partitions that are not assigned are left alone and named in the `Err` (the others are resumed all the
    /// same).
    pub fn resume(&self, partitions: &[TopicPartition]) -> std::result::Result<(), NotAssigned> {
        let inner = &self.inner;
        inner.delivering(|ready| inner.table.resume_with(partitions, ready))
    }

    /// A pre-resolved handle on an assigned partition, for hot loops: its `pause` is a single atomic operation,
    /// with no lookup. `None` if the partition is not assigned.
    ///
    /// ```no_run
    /// # fn f(consumer: &weir::consumer::Consumer, tp: &weir::consumer::TopicPartition) {
    /// let handle = consumer.partition(tp).unwrap();
    /// handle.pause().unwrap();   // one atomic fetch_or
    /// handle.resume().unwrap();  // one atomic op, plus queueing for delivery if records are buffered
    /// # }
    /// ```
    pub fn partition(&self, tp: &TopicPartition) -> Option<ConsumerPartition> {
        let p = self.inner.table.cell(tp)?;
        p.is_assigned().then(|| ConsumerPartition {
            p,
            inner: self.inner.clone(),
        })
    }

    /// Pauses every assigned partition of `topics` (one lookup per topic). Returns how many partitions.
    pub fn pause_topics(&self, topics: &[&str]) -> usize {
        self.inner.table.pause_topics(topics)
    }

    /// Resumes every assigned partition of `topics` (one lookup per topic), waking a waiting `poll` once if any
    /// of them has records buffered. Returns how many partitions.
    pub fn resume_topics(&self, topics: &[&str]) -> usize {
        let inner = &self.inner;
        inner.delivering(|ready| inner.table.resume_topics(topics, ready))
    }

    /// The paused assigned partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.inner.table.paused()
    }

    /// The assigned partitions.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.inner.table.assigned()
    }

    /// Sum of buffered bytes of memory (fetched, undelivered records) across partitions.
    pub fn buffered_bytes(&self) -> usize {
        self.inner.table.buffered_total()
    }

    /// Buffered bytes of one partition.
    pub fn partition_buffered_bytes(&self, tp: &TopicPartition) -> Option<u64> {
        Some(self.inner.table.cell_ref(tp)?.buffered_bytes())
    }

    /// Waits up to `timeout` for records and returns at most `max_records`, grouped by partition (each
    /// partition's records contiguous and in offset order). Returns an empty `Vec` on timeout or once closed.
    /// An actionable per-partition error (corrupt data, offset out of range without a reset policy,
    /// authorization) is returned as `Err` once; other partitions keep being consumed.
    ///
    /// Cancel-safe: dropped before it returns, it has taken no record (the next call returns them).
    pub async fn poll(&self, max_records: usize, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let mut payload = 0;
        let polled = self.poll_counting(max_records, timeout, &mut payload).await;
        if let Ok(records) = &polled {
            // Once per call, not per record or partition.
            self.inner.metrics.consumed(records.len(), payload);
        }
        polled
    }

    /// [`Consumer::poll`], adding the payload bytes of the records it returns to `payload`.
    async fn poll_counting(
        &self,
        max_records: usize,
        timeout: Duration,
        payload: &mut u64,
    ) -> Result<Vec<ConsumerRecord>> {
        let inner = &self.inner;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Vec::new();
        let mut queue = inner.polling.lock().await;
        let max = max_records.max(1);
        loop {
            if inner.is_closed() {
                return Ok(out);
            }
            if out.is_empty() {
                if let Some(e) = inner.errors.lock().unwrap().pop_front() {
                    return Err(e);
                }
            }
            if queue.is_empty() {
                queue.extend(inner.deliver.take_all());
            }
            let Some(p) = queue.pop_front() else {
                if !out.is_empty() {
                    return Ok(out);
                }
                let events = inner.events.notified();
                tokio::select! {
                    _ = inner.deliver_wake.wait() => continue,
                    _ = events => continue,
                    _ = tokio::time::sleep_until(deadline) => return Ok(out),
                }
            };
            // A swap, not a store: a resume clears PAUSED and then swaps `queued` to true, while we clear `queued`
            // and then read PAUSED in `take`. Either its swap comes after ours (it sees false and queues the
            // partition), or ours reads its write and, AcqRel, sees PAUSED cleared. (A fetcher appending records
            // is ordered by the buffer lock, which `take` takes.)
            p.slot().queued.swap(false, Ordering::AcqRel);
            let taken = inner.take(&p, max - out.len(), &mut out);
            *payload += taken.payload;
            if taken.more && !p.slot().queued.swap(true, Ordering::AcqRel) {
                // Records left: serve the partition again after the others (it stays queued, in our hands).
                queue.push_back(p);
            }
            if out.len() >= max {
                return Ok(out);
            }
        }
    }

    /// All records as an async stream: each item is a record, or an actionable per-partition error (the
    /// stream goes on after it). Ends when the consumer is closed. Records are taken from [`Consumer::poll`]
    /// in batches of up to `batch`; records the stream holds but has not yielded when it is dropped count as
    /// delivered (the position has moved past them).
    pub fn stream(&self, batch: usize) -> impl futures::Stream<Item = Result<ConsumerRecord>> + '_ {
        let state: (VecDeque<ConsumerRecord>, &Consumer) = (VecDeque::new(), self);
        futures::stream::unfold(state, move |(mut buf, c)| async move {
            loop {
                if let Some(r) = buf.pop_front() {
                    return Some((Ok(r), (buf, c)));
                }
                if c.is_closed() {
                    return None;
                }
                match c.poll(batch, Duration::from_secs(3600)).await {
                    Ok(v) => buf.extend(v),
                    Err(e) => return Some((Err(e), (buf, c))),
                }
            }
        })
    }

    /// One partition's records as a stream of batches (each up to `max_batch` records, in offset order), so
    /// that each partition can be processed by its own task. From this call on, the partition's records are
    /// delivered only through this stream, not by `poll`. Pause and resume apply as usual. The stream ends when
    /// the consumer closes or the partition is unassigned. `None` if the partition is not assigned.
    pub fn partition_stream(
        &self,
        tp: &TopicPartition,
        max_batch: usize,
    ) -> Option<impl futures::Stream<Item = Vec<ConsumerRecord>> + Send + 'static> {
        let p = self.inner.table.cell(tp)?;
        if !p.is_assigned() {
            return None;
        }
        p.slot().detached.store(true, Ordering::SeqCst);
        let inner = self.inner.clone();
        let max = max_batch.max(1);
        Some(futures::stream::unfold(
            (inner, p),
            move |(inner, slot)| async move {
                let out = loop {
                    let notified = slot.slot().data_ready.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if inner.is_closed() || !slot.is_assigned() {
                        return None;
                    }
                    let mut out = Vec::new();
                    let taken = inner.take(&slot, max, &mut out);
                    inner.metrics.consumed(taken.records, taken.payload);
                    if !out.is_empty() {
                        break out;
                    }
                    tokio::select! {
                        _ = notified => {}
                        _ = inner.events.notified() => {}
                    }
                };
                Some((out, (inner, slot)))
            },
        ))
    }

    /// Stops fetching and wakes a pending `poll` (which returns no records); buffered records are dropped and
    /// in-flight fetches discarded without errors; later polls return no records. Dropping the consumer does the
    /// same.
    pub async fn close(&self) -> Result<()> {
        self.shut_down();
        Ok(())
    }

    /// [`Consumer::close`], for callers that cannot await (drop, the group's shutdown).
    pub(crate) fn shut_down(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.events.notify_waiters();
        self.inner
            .table
            .for_each_cell(|p| p.slot().data_ready.notify_waiters());
        self.inner.router_wake.wake();
        for f in self.inner.fetchers.lock().unwrap().values() {
            f.wake.wake();
        }
    }

    /// The configuration this consumer runs with.
    pub fn config(&self) -> &ConsumerConfig {
        &self.inner.cfg
    }

    /// A snapshot of the consumer: counters since it was created (records and bytes delivered and fetched,
    /// fetches, backpressure), and every assigned partition's position, high watermark, lag, buffer and pause
    /// state (see [`ConsumerStats`]). Lock-free: one pass over the assigned partitions' atomics, about a
    /// millisecond for 10,000 partitions; `poll`, fetches, pause and resume never wait for it. Cheap enough to
    /// call every second.
    pub fn stats(&self) -> ConsumerStats {
        self.inner.stats_snapshot()
    }

    /// One pass of the per-partition metrics task, now (it runs every `weir.metrics.interval.ms`). For the
    /// benchmarks; not part of weir's API.
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn publish_partition_metrics(&self) {
        metrics::publish_once(&self.inner);
    }

    /// One assigned partition's state, for monitoring (`None` if the partition is not assigned).
    pub fn partition_view(&self, tp: &TopicPartition) -> Option<PartitionView> {
        let p = self.inner.table.cell_ref(tp)?;
        let snap = p.snapshot();
        if !snap.assigned {
            return None;
        }
        Some(PartitionView {
            paused: snap.paused,
            backpressured: snap.backpressured,
            buffered_bytes: snap.buffered,
            buffer_limit: p.watermarks().0,
            drain_rate: p.slot().drain.rate(),
            position: p.slot().delivered.load(Ordering::Acquire),
            high_watermark: p.slot().log_end.load(Ordering::SeqCst),
            fetched_from: p.slot().fetched_from.load(Ordering::Relaxed),
        })
    }

    /// Whether [`Consumer::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// A handle on one assigned partition of a [`Consumer`] (see [`Consumer::partition`]): pause and resume with no
/// lookup. Cheap to clone; stays valid across pauses and seeks.
#[derive(Clone)]
pub struct ConsumerPartition {
    p: Arc<Partition>,
    inner: Arc<Inner>,
}

impl ConsumerPartition {
    /// The partition.
    pub fn topic_partition(&self) -> &TopicPartition {
        self.p.topic_partition()
    }

    /// Pauses the partition: one atomic operation. Buffered records are kept. `Err` if the partition is no
    /// longer assigned (nothing was done).
    #[inline]
    pub fn pause(&self) -> std::result::Result<(), NotAssigned> {
        if self.p.pause().assigned {
            Ok(())
        } else {
            Err(self.not_assigned())
        }
    }

    /// Resumes the partition: one atomic operation, plus queueing it for delivery (lock-free, waking a waiting
    /// `poll`) if it has records buffered. `Err` if the partition is no longer assigned (nothing was done).
    #[inline]
    pub fn resume(&self) -> std::result::Result<(), NotAssigned> {
        if self.inner.delivering(|ready| self.p.resume_then(ready)) {
            Ok(())
        } else {
            Err(self.not_assigned())
        }
    }

    #[cold]
    fn not_assigned(&self) -> NotAssigned {
        NotAssigned {
            partitions: vec![self.p.topic_partition().clone()],
        }
    }

    /// Whether the partition is paused.
    pub fn is_paused(&self) -> bool {
        self.p.is_paused()
    }

    /// Buffered, undelivered bytes.
    pub fn buffered_bytes(&self) -> u64 {
        self.p.buffered_bytes()
    }
}

impl std::fmt::Debug for ConsumerPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ConsumerPartition")
            .field(self.p.topic_partition())
            .finish()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// How [`Consumer::assign_with`] leaves the partitions it assigns.
#[derive(Clone, Copy)]
enum AssignAs {
    Running,
    Held,
}

impl Inner {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Queues `p` for delivery (or wakes its own stream) if it is not paused or held and not already queued.
    /// Returns whether the delivery queue was empty: the caller then wakes `poll` with
    /// [`Inner::wake_delivery`], once for however many partitions it queued.
    pub(crate) fn ready(&self, p: &Partition) -> bool {
        if p.is_stopped() {
            return false;
        }
        let slot = p.slot();
        if slot.detached.load(Ordering::SeqCst) {
            slot.data_ready.notify_one();
            false
        } else if !slot.queued.swap(true, Ordering::AcqRel) {
            self.deliver.push(p.arc())
        } else {
            false
        }
    }

    /// Runs `f`, which hands partitions that may have become deliverable to the callback it gets (queued by
    /// [`Inner::ready`]), then wakes a waiting `poll` once if any of them went onto an empty delivery queue.
    fn delivering<R>(&self, f: impl FnOnce(&mut dyn FnMut(&Partition)) -> R) -> R {
        let mut wake = false;
        let r = f(&mut |p| wake |= self.ready(p));
        self.wake_delivery(wake);
        r
    }

    /// Wakes a waiting `poll` if `wake` (some partition was queued on an empty delivery queue).
    pub(crate) fn wake_delivery(&self, wake: bool) {
        if wake {
            self.deliver_wake.wake();
        }
    }

    /// Takes up to `max` records of `p` into `out`, accounting them as consumed in the statistics (the caller
    /// counts them in the metrics).
    fn take(&self, p: &Arc<Partition>, max: usize, out: &mut Vec<ConsumerRecord>) -> Taken {
        let start = out.len();
        let taken = p.take(max, out);
        if taken.records == 0 {
            return taken;
        }
        self.stats
            .records_delivered
            .fetch_add(taken.records as u64, Ordering::Relaxed);
        self.stats
            .bytes_delivered
            .fetch_add(taken.payload, Ordering::Relaxed);
        p.slot().drain.record(taken.bytes);
        if p.consume(taken.bytes) && p.slot().backpressured.swap(false, Ordering::Relaxed) {
            self.stats.backpressure_resumes.fetch_add(1, Ordering::Relaxed);
        }
        // The last step of a record's way from the socket (the fetcher's "buffered" event) to the application.
        tracing::trace!(topic = %p.topic_partition().topic, partition = p.topic_partition().partition,
            first = out[start].offset, last = out[out.len() - 1].offset, records = taken.records, "delivered");
        taken
    }

    /// Sets the table's watermarks, those of every partition without its own: with fixed watermarks, each
    /// partition's fair share of the budget, `min(partition buffer, budget / assigned partitions)`, so that full
    /// or paused partitions never take the budget others need; with rate-sized buffers, the floor, where a
    /// partition starts before its drain rate sizes it (a stalled application never buffers more). The low
    /// watermark keeps its configured ratio.
    fn share_budget(&self) {
        let n = self.table.assigned().len().max(1);
        let (high, low) = match rate_sizing::Sizing::of(&self.cfg) {
            Some(sizing) => {
                let floor = sizing.floor(n);
                (floor, sizing.low(floor))
            }
            None => {
                let high = self.cfg.partition_buffer.min(self.cfg.memory_budget / n).max(1);
                let low = (high as u128 * self.cfg.partition_buffer_low as u128
                    / self.cfg.partition_buffer.max(1) as u128) as u64;
                (high as u64, low)
            }
        };
        self.table.set_watermarks(high, low);
    }

    /// Queues an actionable error for `poll`.
    pub(crate) fn report(&self, e: Error) {
        tracing::warn!(error = %e, "consumer partition error");
        self.errors.lock().unwrap().push_back(e);
        self.events.notify_waiters();
    }

    /// The partitions of topics this client may describe. Those of a topic it may not are left out and the
    /// refusal is reported (through `poll`), once per topic, as the Java client reports a
    /// TopicAuthorizationException: the other topics are consumed. One look at the metadata (refreshed once if
    /// a topic is not in it yet); any other trouble is left to the offset lookups, and partitions assigned at
    /// an explicit offset need no metadata at all.
    async fn authorized(
        &self,
        partitions: &[(TopicPartition, StartOffset)],
    ) -> Vec<(TopicPartition, StartOffset)> {
        let topics: BTreeSet<&str> = partitions.iter().map(|(tp, _)| &*tp.topic).collect();
        let mut snap = self.cluster.snapshot();
        let unknown = |snap: &crate::MetadataSnapshot, t: &str| {
            snap.topic(t).is_none() && !snap.topic_errors.contains_key(t)
        };
        if topics.iter().any(|t| unknown(&snap, t)) {
            if let Ok(fresh) = self.cluster.refresh(false).await {
                snap = fresh;
            }
        }
        let denied: Vec<&str> = topics
            .into_iter()
            .filter(|t| snap.topic_errors.get(*t) == Some(&KafkaCode::TopicAuthorizationFailed))
            .collect();
        for t in &denied {
            self.report(Error::Kafka {
                code: KafkaCode::TopicAuthorizationFailed,
                context: format!("metadata of topic {t}"),
            });
        }
        partitions
            .iter()
            .filter(|(tp, _)| !denied.contains(&&*tp.topic))
            .cloned()
            .collect()
    }

    async fn resolve(&self, tp: &TopicPartition, start: StartOffset) -> Result<i64> {
        let resolved = self.resolve_all(&[(tp.clone(), start)]).await?;
        Ok(resolved[0].1)
    }

    /// Resolves start offsets to offsets: one ListOffsets request per leader (all leaders at once) for each
    /// kind of offset asked for, however many partitions.
    async fn resolve_all(
        &self,
        parts: &[(TopicPartition, StartOffset)],
    ) -> Result<Vec<(TopicPartition, i64)>> {
        // Each partition once per kind of offset (Kafka refuses a request naming a partition twice).
        let mut asks: Vec<(OffsetSpec, BTreeSet<TopicPartition>)> = Vec::new();
        fn ask(
            asks: &mut Vec<(OffsetSpec, BTreeSet<TopicPartition>)>,
            spec: OffsetSpec,
            tp: &TopicPartition,
        ) {
            match asks.iter_mut().find(|(s, _)| *s == spec) {
                Some((_, tps)) => {
                    tps.insert(tp.clone());
                }
                None => asks.push((spec, BTreeSet::from([tp.clone()]))),
            }
        }
        for (tp, start) in parts {
            match *start {
                StartOffset::Offset(_) => {}
                StartOffset::Earliest => ask(&mut asks, OffsetSpec::Earliest, tp),
                StartOffset::Latest => ask(&mut asks, OffsetSpec::Latest, tp),
                // Not before the log start.
                StartOffset::FromEnd(_) => {
                    ask(&mut asks, OffsetSpec::Latest, tp);
                    ask(&mut asks, OffsetSpec::Earliest, tp);
                }
                StartOffset::Timestamp(t) => ask(&mut asks, OffsetSpec::Timestamp(t), tp),
            }
        }
        let mut found = self.list_offsets_by_kind(asks).await?;
        // The end of the log for a timestamp no record is at or after: asked only for those partitions.
        let mut fallback = Vec::new();
        for (tp, start) in parts {
            if let StartOffset::Timestamp(t) = *start {
                let at = found.iter().find(|(s, _)| *s == OffsetSpec::Timestamp(t));
                if at.and_then(|(_, o)| o.get(tp)).is_some_and(|&o| o < 0) {
                    ask(&mut fallback, OffsetSpec::Latest, tp);
                }
            }
        }
        if !fallback.is_empty() {
            let ends = self.list_offsets_by_kind(fallback).await?;
            match found.iter_mut().find(|(s, _)| *s == OffsetSpec::Latest) {
                Some((_, offsets)) => offsets.extend(ends.into_iter().flat_map(|(_, o)| o)),
                None => found.extend(ends),
            }
        }
        let get = |spec: OffsetSpec, tp: &TopicPartition| {
            found
                .iter()
                .find(|(s, _)| *s == spec)
                .and_then(|(_, offsets)| offsets.get(tp).copied())
                .ok_or_else(|| Error::UnknownTopic(tp.to_string()))
        };
        parts
            .iter()
            .map(|(tp, start)| {
                let offset = match *start {
                    StartOffset::Offset(o) => o,
                    StartOffset::Earliest => get(OffsetSpec::Earliest, tp)?,
                    StartOffset::Latest => get(OffsetSpec::Latest, tp)?,
                    StartOffset::FromEnd(n) => {
                        (get(OffsetSpec::Latest, tp)? - n.max(0)).max(get(OffsetSpec::Earliest, tp)?)
                    }
                    StartOffset::Timestamp(t) => match get(OffsetSpec::Timestamp(t), tp)? {
                        o if o < 0 => get(OffsetSpec::Latest, tp)?,
                        o => o,
                    },
                };
                Ok((tp.clone(), offset))
            })
            .collect()
    }

    /// Looks up each kind of offset for its partitions, all kinds at once.
    async fn list_offsets_by_kind(
        &self,
        asks: Vec<(OffsetSpec, BTreeSet<TopicPartition>)>,
    ) -> Result<Vec<(OffsetSpec, HashMap<TopicPartition, i64>)>> {
        futures::future::try_join_all(asks.into_iter().map(|(spec, tps)| async move {
            let tps: Vec<TopicPartition> = tps.into_iter().collect();
            Ok::<_, Error>((
                spec,
                self.cluster
                    .list_offsets_of(&tps, spec, self.cfg.isolation_level.wire())
                    .await?,
            ))
        }))
        .await
    }

    fn seek_to(&self, tp: &TopicPartition, offset: i64) -> Result<()> {
        let change = self
            .table
            .seek(tp, offset)
            .ok_or_else(|| Error::InvalidArgument(format!("{tp} is not assigned")))?;
        if let Some(p) = self.table.cell_ref(tp) {
            p.reset(change.epoch, offset);
        }
        Ok(())
    }

    /// Applies `auto.offset.reset` to a partition whose fetch position is out of range.
    pub(crate) fn spawn_offset_reset(self: &Arc<Self>, slot: Arc<Partition>, position: i64) {
        let inner = self.clone();
        tokio::spawn(async move {
            let start = match inner.cfg.auto_offset_reset {
                OffsetReset::Earliest => StartOffset::Earliest,
                OffsetReset::Latest => StartOffset::Latest,
                OffsetReset::None => {
                    inner.report(Error::Kafka {
                        code: KafkaCode::OffsetOutOfRange,
                        context: format!(
                            "fetch {} at offset {position} (auto.offset.reset=none)",
                            slot.topic_partition()
                        ),
                    });
                    return;
                }
            };
            let mut backoff = inner.cfg.client.retry_backoff;
            while !inner.is_closed() {
                match inner.resolve(slot.topic_partition(), start).await {
                    Ok(offset) => {
                        tracing::debug!(tp = %slot.topic_partition(), from = position, to = offset, "offset reset");
                        let _ = inner.seek_to(slot.topic_partition(), offset);
                        return;
                    }
                    Err(e) if !e.is_retriable() => {
                        // Not allowed, or not there: retrying will not help. The partition stays parked until a
                        // seek.
                        inner.report(e);
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(tp = %slot.topic_partition(), error = %e, "offset reset failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = inner.cfg.client.next_retry_backoff(backoff);
                    }
                }
            }
        });
    }

    /// The fetcher for `broker`, started on first use.
    pub(crate) fn fetcher(self: &Arc<Self>, broker: i32) -> Arc<Fetcher> {
        let mut fetchers = self.fetchers.lock().unwrap();
        fetchers
            .entry(broker)
            .or_insert_with(|| {
                let wake = Arc::new(Signal::default());
                let group = self
                    .table
                    .register_fetch_group(wake.clone() as Arc<dyn ReadyWaker>);
                let f = Arc::new(Fetcher { broker, group, wake });
                tokio::spawn(f.clone().run(self.clone()));
                f
            })
            .clone()
    }
}
