//! Per-partition accumulation of records into batches, shared by the producer handles and the sender task.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{Notify, Semaphore, TryAcquireError};
use tokio::time::Instant;
use weir_proto::record::{BatchBuilder, BatchOptions, ProducerIds};

use super::delivery::{BatchDelivery, BatchOutcome, DeliveryFuture};
use super::metrics::ProducerMetrics;
use super::partitioner::partition_for_key;
use super::transaction::Transactions;
use super::ProducerRecord;
use crate::cluster::Cluster;
use crate::config::ProducerConfig;
use crate::error::{Error, Result};

/// Records of one partition on their way to the broker: an open builder, or sealed bytes once drained.
pub(super) struct PendingBatch {
    pub(super) builder: Option<BatchBuilder>,
    pub(super) sealed: Option<Bytes>,
    /// Resolved once for all the batch's records; each record's future holds it.
    pub(super) delivery: Arc<BatchDelivery>,
    /// Records in the batch.
    pub(super) records: usize,
    /// Bytes of `buffer.memory` this batch holds.
    pub(super) memory: usize,
    pub(super) created: Instant,
    pub(super) full: bool,
    pub(super) attempts: u32,
    pub(super) retry_at: Option<Instant>,
}

/// A batch dropped unresolved (the producer went away) fails its records with [`Error::Closed`] rather than
/// leaving their futures pending; after [`Accumulator::complete`] this does nothing.
impl Drop for PendingBatch {
    fn drop(&mut self) {
        self.delivery.resolve(BatchOutcome::Failed(Error::Closed));
    }
}

#[derive(Default)]
pub(super) struct PartitionQueue {
    pub(super) batches: VecDeque<PendingBatch>,
    /// One batch per partition is in flight at a time, so retries can never reorder records.
    pub(super) in_flight: bool,
    pub(super) next_sequence: i32,
}

impl State {
    /// A batch of `topic`/`partition` was closed (drained or full): unkeyed records move to a new partition.
    pub(super) fn batch_closed(&mut self, topic: &Arc<str>, partition: i32) {
        if self.sticky.get(topic) == Some(&partition) {
            self.sticky.remove(topic);
        }
    }
}

#[derive(Default)]
pub(super) struct State {
    pub(super) partitions: HashMap<(Arc<str>, i32), PartitionQueue>,
    /// The partition unkeyed records of a topic go to until its batch closes (Java's sticky partitioner).
    sticky: HashMap<Arc<str>, i32>,
    topic_names: HashMap<String, Arc<str>>,
    pub(super) flushing: usize,
}

pub(crate) struct Accumulator {
    pub(super) cfg: ProducerConfig,
    pub(super) cluster: Arc<Cluster>,
    pub(super) state: Mutex<State>,
    /// Wakes the sender task: a batch opened or filled, a flush began, a partition became free.
    pub(super) wake: Notify,
    memory: Semaphore,
    outstanding: AtomicUsize,
    idle: Notify,
    pub(super) closed: AtomicBool,
    pub(super) ids: Mutex<ProducerIds>,
    /// A batch that carried sequence numbers failed for good, leaving a gap: the sender must start a new
    /// producer epoch (InitProducerId) and renumber what is queued before sending more. (A transactional
    /// producer does so when the transaction is aborted.)
    pub(super) reinit: AtomicBool,
    /// The transactions of a producer with a `transactional.id`.
    pub(super) txn: Option<Transactions>,
    /// Counters for [`super::Producer::stats`] and the metrics.
    pub(super) metrics: ProducerMetrics,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Accumulator {
    pub(super) fn new(cfg: ProducerConfig, cluster: Arc<Cluster>) -> Self {
        let memory = Semaphore::new(cfg.buffer_memory.min(Semaphore::MAX_PERMITS));
        Self {
            metrics: ProducerMetrics::new(&cfg.client.client_id),
            cluster,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            memory,
            outstanding: AtomicUsize::new(0),
            idle: Notify::new(),
            closed: AtomicBool::new(false),
            ids: Mutex::new(ProducerIds::NONE),
            reinit: AtomicBool::new(false),
            txn: cfg
                .transactional_id
                .clone()
                .map(|id| Transactions::new(id, cfg.transaction_timeout)),
            cfg,
        }
    }

    pub(super) async fn append(&self, rec: ProducerRecord) -> Result<DeliveryFuture> {
        let started = tokio::time::Instant::now();
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(txn) = &self.txn {
            txn.check_send()?;
        }
        let size = record_size(&rec);
        if size > self.cfg.max_record_size {
            return Err(Error::RecordTooLarge {
                size,
                max: self.cfg.max_record_size,
            });
        }
        let meta = self.cluster.topic(&rec.topic).await?;
        let count = meta.partition_count();
        let explicit = match (rec.partition, &rec.key) {
            (Some(p), _) if (0..count).contains(&p) => Some(p),
            (Some(p), _) => {
                return Err(Error::UnknownTopic(format!(
                    "{}-{p} (topic has {count} partitions)",
                    rec.topic
                )))
            }
            (None, Some(k)) => Some(partition_for_key(k, count)),
            (None, None) => None,
        };
        // Waits for room in `buffer.memory` for what is left of `max.block.ms` (the metadata wait took the rest),
        // as the Java client: a stalled broker or partition makes `send` wait, then fail, never grow the queue.
        // Room at once is the common case: no timer is set up for it.
        let memory = size.min(self.cfg.buffer_memory);
        let permit = match self.memory.try_acquire_many(memory as u32) {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(Error::Closed),
            Err(TryAcquireError::NoPermits) => {
                let max_block = self.cfg.client.max_block;
                let waited = self.memory.acquire_many(memory as u32);
                tokio::time::timeout_at(started + max_block, waited)
                    .await
                    .map_err(|_| Error::Timeout {
                        what: format!(
                            "room for a record of {size} bytes in buffer.memory ({} bytes, all queued or \
                             in flight)",
                            self.cfg.buffer_memory
                        ),
                        after: max_block,
                    })?
                    .map_err(|_| Error::Closed)?
            }
        };
        permit.forget();

        let headers: Vec<(&str, Option<&[u8]>)> = rec
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        let mut st = self.state.lock().unwrap();
        if self.closed.load(Ordering::Acquire) {
            drop(st);
            self.memory.add_permits(memory);
            return Err(Error::Closed);
        }
        let State {
            partitions,
            sticky,
            topic_names,
            ..
        } = &mut *st;
        // Looked up by reference: the name is allocated only the first time a topic is seen.
        let topic = match topic_names.get(&rec.topic) {
            Some(t) => t.clone(),
            None => {
                let t: Arc<str> = Arc::from(rec.topic.as_str());
                topic_names.insert(rec.topic.clone(), t.clone());
                t
            }
        };
        let partition = explicit.unwrap_or_else(|| {
            // Partition counts only grow, so a stored choice stays valid.
            *sticky
                .entry(topic.clone())
                .or_insert_with(|| (rand::random::<u32>() % count.max(1) as u32) as i32)
        });
        let queue = partitions.entry((topic.clone(), partition)).or_default();
        let fits = |b: &PendingBatch| {
            b.builder.is_some()
                && !b.full
                && (b.records == 0
                    || b.builder.as_ref().unwrap().estimated_size() + size <= self.cfg.batch_size)
        };
        let mut opened = false;
        if !queue.batches.back().is_some_and(fits) {
            if let Some(last) = queue.batches.back_mut() {
                last.full = true;
            }
            queue.batches.push_back(PendingBatch {
                builder: Some(BatchBuilder::new(BatchOptions {
                    compression: self.cfg.compression,
                    transactional: self.txn.is_some(),
                    ..Default::default()
                })),
                sealed: None,
                delivery: Arc::default(),
                records: 0,
                memory: 0,
                created: Instant::now(),
                full: false,
                attempts: 0,
                retry_at: None,
            });
            opened = true;
        }
        let batch = queue.batches.back_mut().expect("just ensured");
        let builder = batch.builder.as_mut().expect("open batch");
        let estimated = builder.push(
            rec.timestamp.unwrap_or_else(now_ms),
            rec.key.as_deref(),
            rec.value.as_deref(),
            &headers,
        );
        // More records than u32 in one batch cannot be: a batch's record count is an i32 on the wire.
        let delivery = DeliveryFuture::new(batch.delivery.clone(), batch.records as u32);
        batch.records += 1;
        batch.memory += memory;
        let filled = estimated >= self.cfg.batch_size;
        if filled {
            batch.full = true;
            if explicit.is_none() {
                sticky.remove(&topic);
            }
        }
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        drop(st);
        if opened || filled {
            self.wake.notify_one();
        }
        Ok(delivery)
    }

    /// Resolves the deliveries of a finished batch and returns its memory.
    pub(super) fn complete(&self, batch: PendingBatch, outcome: BatchOutcome) {
        let n = batch.records;
        let failed = if matches!(outcome, BatchOutcome::Failed(_)) {
            n
        } else {
            0
        };
        batch.delivery.resolve(outcome);
        let bytes = batch.sealed.as_ref().map_or(0, Bytes::len);
        self.metrics.resolved(n - failed, bytes, failed);
        self.memory.add_permits(batch.memory);
        let left = self.outstanding.fetch_sub(n, Ordering::AcqRel) - n;
        self.metrics.queued(left);
        if left == 0 {
            self.idle.notify_waiters();
        }
    }

    pub(super) fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// Takes a new producer id or epoch (a transactional producer's): every partition's sequence starts at 0.
    pub(super) fn start_producer_id(&self, ids: ProducerIds) {
        *self.ids.lock().unwrap() = ids;
        for q in self.state.lock().unwrap().partitions.values_mut() {
            q.next_sequence = 0;
        }
        self.wake.notify_one();
    }

    /// A write of the open transaction failed for good: the transaction must be aborted, and whoever waits
    /// for its records (a commit) learns it now.
    pub(super) fn txn_failed(&self, e: &Error) {
        if let Some(txn) = &self.txn {
            txn.write_failed(e);
            self.idle.notify_waiters();
        }
    }

    /// Waits until every record sent so far is answered.
    pub(super) async fn flush(&self) -> Result<()> {
        self.wait_answered(false).await
    }

    /// Waits until every record sent so far is answered, or, with `unless_stuck`, until the open transaction
    /// can no longer send them (it must be aborted: a commit gives up then). An abort waits for every record:
    /// a write still in flight when the abort ends would join the next transaction.
    pub(super) async fn wait_answered(&self, unless_stuck: bool) -> Result<()> {
        self.state.lock().unwrap().flushing += 1;
        self.wake.notify_one();
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            let stuck = unless_stuck && self.txn.as_ref().is_some_and(|t| t.stuck());
            if self.outstanding() == 0 || stuck {
                break;
            }
            idle.await;
        }
        self.state.lock().unwrap().flushing -= 1;
        Ok(())
    }

    pub(super) async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.flush().await?;
        self.wake.notify_one();
        Ok(())
    }
}

/// Upper bound of a record's encoded size in a batch.
fn record_size(rec: &ProducerRecord) -> usize {
    let kv = rec.key.as_ref().map_or(0, |k| k.len()) + rec.value.as_ref().map_or(0, |v| v.len());
    let headers: usize = rec
        .headers
        .iter()
        .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()) + 10)
        .sum();
    kv + headers + 32
}
