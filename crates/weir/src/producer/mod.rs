//! The producer: a `Send + Sync` handle whose [`Producer::send`] returns a delivery future.
//!
//! Records are accumulated per partition into record batches (linger and batch size), sent by one sender task
//! with several requests in flight per broker, retried with backoff, and — idempotence being on by default —
//! carry producer id and sequence numbers, so retries never duplicate and order holds per partition.
//!
//! ```no_run
//! # async fn demo() -> weir::Result<()> {
//! use weir::{Producer, ProducerRecord, config::ProducerConfig};
//! let producer = Producer::new(ProducerConfig::new("127.0.0.1:9092"))?;
//! let delivery = producer.send(ProducerRecord::new("events", "hello").key("k1")).await?;
//! let meta = delivery.await?; // resolved once the broker acknowledged the record
//! println!("{}-{}@{}", meta.topic, meta.partition, meta.offset);
//! producer.close().await?;
//! # Ok(()) }
//! ```

mod accumulator;
mod delivery;
mod metrics;
pub mod partitioner;
mod sender;
mod transaction;

pub use delivery::DeliveryFuture;
pub use metrics::ProducerStats;
pub use transaction::ConsumerGroupMetadata;

use std::sync::Arc;

use bytes::Bytes;

use crate::cluster::Cluster;
use crate::config::ProducerConfig;
use crate::error::{Error, Result};
use accumulator::Accumulator;

/// A record to send.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    /// Destination topic.
    pub topic: String,
    /// Explicit partition; `None` lets the partitioner choose (murmur2 of the key, sticky when unkeyed).
    pub partition: Option<i32>,
    /// Key (`None` is a null key).
    pub key: Option<Bytes>,
    /// Value (`None` is a null value, a tombstone).
    pub value: Option<Bytes>,
    /// Headers in order; values may be null.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Create time in ms since the epoch; `None` means now.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and no key.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    /// A record with a null value (tombstone).
    pub fn tombstone(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            ..Default::default()
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sends to this partition instead of asking the partitioner.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Appends a header.
    pub fn header(mut self, key: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push((key.into(), value));
        self
    }

    /// Sets the create timestamp (ms since the epoch).
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }
}

/// Where a delivered record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic (shared by the records of a batch).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset assigned by the broker; -1 with `acks=0`, where the broker does not say.
    pub offset: i64,
}

/// A Kafka producer. Cheap to clone; all clones share one sender task.
#[derive(Clone)]
pub struct Producer {
    acc: Arc<Accumulator>,
}

impl Producer {
    /// A producer for the cluster in `cfg`. Connects lazily; must be called inside a tokio runtime.
    pub fn new(cfg: ProducerConfig) -> Result<Producer> {
        cfg.validate()?;
        let cluster = Cluster::new(cfg.client.clone())?;
        metrics::describe();
        let acc = Arc::new(Accumulator::new(cfg, cluster));
        tokio::spawn(sender::run(acc.clone()));
        Ok(Producer { acc })
    }

    /// Queues `record` and returns a future that resolves when the broker has acknowledged it.
    ///
    /// Waits (asynchronously) when `buffer.memory` is exhausted, and for metadata of a topic seen the first
    /// time. Fails at once for an unknown topic, an out-of-range partition or an oversized record.
    ///
    /// Cancel-safe: dropped before it returns, the record was not queued and holds no memory.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        self.acc.append(record).await
    }

    /// Sends everything queued now (ignoring linger) and waits until every record sent before this call has a
    /// delivery result.
    pub async fn flush(&self) -> Result<()> {
        self.acc.flush().await
    }

    fn transactions(&self) -> Result<&transaction::Transactions> {
        self.acc.txn.as_ref().ok_or_else(|| {
            Error::InvalidArgument(
                "transactions need a transactional.id in the producer's configuration".into(),
            )
        })
    }

    /// Registers the `transactional.id` with its transaction coordinator and gets the producer id and epoch:
    /// any older producer of the same id is fenced, and its open transaction aborted. Call once, before the
    /// first transaction.
    ///
    /// ```no_run
    /// # async fn demo() -> weir::Result<()> {
    /// use weir::{Producer, ProducerRecord, config::ProducerConfig};
    /// let mut cfg = ProducerConfig::new("127.0.0.1:9092");
    /// cfg.set("transactional.id", "orders-copier-1")?;
    /// let producer = Producer::new(cfg)?;
    /// producer.init_transactions().await?;
    /// producer.begin_transaction()?;
    /// let _ack = producer.send(ProducerRecord::new("orders-copy", "o-1")).await?;
    /// producer.commit_transaction().await?; // every record of it, visible at once to read_committed
    /// # Ok(()) }
    /// ```
    pub async fn init_transactions(&self) -> Result<()> {
        let ids = self.transactions()?.init(&self.acc.cluster, None).await?;
        self.acc.start_producer_id(ids);
        Ok(())
    }

    /// Opens a transaction: records sent from now on belong to it.
    pub fn begin_transaction(&self) -> Result<()> {
        self.transactions()?.begin()
    }

    /// Makes `offsets` (the next record to consume, per partition) part of the open transaction, committed for
    /// `group` when it commits (consume-transform-produce). `group` is the consumer's group metadata
    /// ([`crate::group::GroupConsumer::group_metadata`]): offsets of a member that lost the partitions are
    /// refused.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[(crate::TopicPartition, i64)],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let txn = self.transactions()?;
        let ids = *self.acc.ids.lock().unwrap();
        txn.send_offsets(&self.acc.cluster, ids, offsets, group).await
    }

    /// Commits the open transaction: waits until every record of it is acknowledged, then ends it. If a record
    /// or the offsets failed, nothing is committed and the error is returned: abort the transaction
    /// ([`Producer::abort_transaction`]) and carry on. A fencing error (another producer took the
    /// transactional id) finishes this producer: every later call returns it.
    pub async fn commit_transaction(&self) -> Result<()> {
        let txn = self.transactions()?;
        txn.check_send()?;
        self.acc.wait_answered(true).await?;
        let ids = *self.acc.ids.lock().unwrap();
        txn.end(&self.acc.cluster, ids, true).await
    }

    /// Aborts the open transaction: records not sent yet fail with [`Error::TransactionAborted`], those in
    /// flight are answered first, and read_committed consumers never see any of them. The producer stays
    /// usable (after a failed write, with a new epoch).
    pub async fn abort_transaction(&self) -> Result<()> {
        let txn = self.transactions()?;
        if let transaction::Phase::Fatal(e) = txn.phase() {
            return Err(e);
        }
        sender::fail_all(&self.acc, &Error::TransactionAborted);
        self.acc.flush().await?;
        let ids = *self.acc.ids.lock().unwrap();
        txn.end(&self.acc.cluster, ids, false).await?;
        if self.acc.reinit.swap(false, std::sync::atomic::Ordering::AcqRel) {
            // A write failed and left a gap in its partition's sequence: a new epoch (KIP-360).
            let ids = txn.init(&self.acc.cluster, Some(ids)).await?;
            self.acc.start_producer_id(ids);
        }
        Ok(())
    }

    /// The producer's counters now: records and bytes acknowledged, records failed and retried, what is queued
    /// and in flight. Cheap (atomic loads); the same figures go to the `metrics` facade's recorder, if one is
    /// installed, as `kafka.producer.*` with the label `client_id`.
    pub fn stats(&self) -> ProducerStats {
        self.acc.metrics.stats(self.acc.outstanding())
    }

    /// Delivers or fails every pending record, then stops the sender task. Sends after close fail with
    /// [`Error::Closed`].
    pub async fn close(&self) -> Result<()> {
        self.acc.close().await
    }
}
