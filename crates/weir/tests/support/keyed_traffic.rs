//! Keyed traffic for broker-failure tests: an idempotent `acks=all` producer writes a steady stream of keyed
//! records to every partition of a topic while a consumer reads them back, until the test has done its damage
//! and asks for a last stretch. Then everything is checked: each acknowledged record was written once (the
//! acknowledged offsets of a partition are 0, 1, 2, ...: a retry that wrote a batch twice leaves a gap), each
//! was read back once and in order with its key and value (both carry the partition and the sequence), and
//! neither the producer nor the consumer surfaced an error: broker failures cost latency, nothing else.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{Producer, ProducerRecord};

/// One record per partition every `ROUND_EVERY`: 200 rounds a second, so the stream is flowing whenever a
/// broker fails, and a minute of failures makes a few thousand records per partition.
const ROUND_EVERY: Duration = Duration::from_millis(5);
/// Sends awaited at a time: the producer keeps this many records in flight through a failure.
const WINDOW: usize = 200;
/// Bound of one wait for progress (a failover, a restart's catch-up).
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(90);
/// Bound for the consumer to read the last acknowledged record once the producer has stopped.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// The key of record `i` of partition `p`.
fn key(p: i32, i: i64) -> String {
    format!("k{p}-{i}")
}

/// The value of record `i` of partition `p`.
fn value(p: i32, i: i64) -> String {
    format!("v{p}-{i}")
}

/// What the producer saw: per partition, the offset of each acknowledged record in sequence order; the slowest
/// acknowledgement.
struct Produced {
    offsets: BTreeMap<i32, Vec<i64>>,
    slowest: Duration,
}

/// What the consumer saw: per partition, (offset, key, value) in the order received; the errors it surfaced.
struct Consumed {
    records: BTreeMap<i32, Vec<(i64, String, String)>>,
    errors: Vec<String>,
}

/// What a finished run amounted to, for the test's log.
#[derive(Debug)]
pub struct Summary {
    /// Records per partition, all acknowledged and read back.
    pub per_partition: i64,
    /// The slowest acknowledgement of a send.
    pub slowest_ack: Duration,
}

/// A producer and a consumer running over one topic (see the module's documentation).
pub struct Traffic {
    topic: String,
    partitions: i32,
    producer: Producer,
    consumer: Arc<Consumer>,
    acknowledged: Arc<AtomicU64>,
    consumed: Arc<AtomicU64>,
    /// Rounds the producer is to add once told to finish.
    finish_after: watch::Sender<Option<i64>>,
    /// Records the consumer is to read in all, once known.
    expect: watch::Sender<Option<u64>>,
    producing: JoinHandle<Produced>,
    consuming: JoinHandle<Consumed>,
}

impl Traffic {
    /// Starts producing to and consuming (assigned, from the earliest offset) every partition of `topic`.
    /// `WEIR_LOG` turns the client's logging on.
    pub async fn start(bootstrap: &str, topic: &str, partitions: i32) -> Traffic {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("WEIR_LOG"))
            .with_test_writer()
            .try_init();
        let mut pcfg = ProducerConfig::new(bootstrap);
        pcfg.set("acks", "all").unwrap();
        pcfg.set("enable.idempotence", "true").unwrap();
        let producer = Producer::new(pcfg).unwrap();
        let consumer = Arc::new(Consumer::new(ConsumerConfig::new(bootstrap)).unwrap());
        let tps: Vec<(TopicPartition, StartOffset)> = (0..partitions)
            .map(|p| (TopicPartition::new(topic, p), StartOffset::Earliest))
            .collect();
        consumer.assign(&tps).await.unwrap();
        let acknowledged = Arc::new(AtomicU64::new(0));
        let consumed = Arc::new(AtomicU64::new(0));
        let (finish_after, finish_rx) = watch::channel(None);
        let (expect, expect_rx) = watch::channel(None);
        let producing = tokio::spawn(produce(
            producer.clone(),
            topic.to_string(),
            partitions,
            acknowledged.clone(),
            finish_rx,
        ));
        let consuming = tokio::spawn(consume(consumer.clone(), consumed.clone(), expect_rx));
        Traffic {
            topic: topic.to_string(),
            partitions,
            producer,
            consumer,
            acknowledged,
            consumed,
            finish_after,
            expect,
            producing,
            consuming,
        }
    }

    /// Records acknowledged so far.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed)
    }

    /// Records consumed so far.
    pub fn consumed(&self) -> u64 {
        self.consumed.load(Ordering::Relaxed)
    }

    /// Waits until `records` more have been acknowledged and `records` more consumed than when called: the
    /// stream flows (again). Panics, saying `when`, after a bounded wait or if the producer or consumer
    /// stopped.
    pub async fn wait_progress(&self, records: u64, when: &str) {
        let (a0, c0) = (self.acknowledged(), self.consumed());
        let t0 = Instant::now();
        while self.acknowledged() < a0 + records || self.consumed() < c0 + records {
            assert!(
                !self.producing.is_finished() && !self.consuming.is_finished(),
                "{when}: the producer or the consumer stopped (see its panic above)"
            );
            assert!(
                t0.elapsed() < PROGRESS_TIMEOUT,
                "{when}: {} acknowledged and {} consumed in {PROGRESS_TIMEOUT:?}, waiting for {records} of each",
                self.acknowledged() - a0,
                self.consumed() - c0
            );
            tokio::time::sleep(Duration::from_millis(10)).await; // polling the counters, bounded above
        }
        eprintln!(
            "{}: {when}: {records} more acknowledged and consumed in {:?} ({} / {} in all)",
            self.topic,
            t0.elapsed(),
            self.acknowledged(),
            self.consumed()
        );
    }

    /// Lets the producer add `rounds` more records per partition and stop, lets the consumer read everything,
    /// and checks the run (see the module's documentation). Panics on the first check that fails.
    pub async fn finish(self, rounds: i64) -> Summary {
        self.finish_after.send_replace(Some(rounds));
        let produced = match tokio::time::timeout(DRAIN_TIMEOUT, self.producing).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("the producer did not finish within {DRAIN_TIMEOUT:?}"),
        };
        self.producer.close().await.expect("closing the producer");
        let total: usize = produced.offsets.values().map(Vec::len).sum();
        self.expect.send_replace(Some(total as u64));
        let consumed =
            match tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_secs(10), self.consuming).await {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
                Err(_) => panic!("the consumer did not finish within {DRAIN_TIMEOUT:?}"),
            };
        self.consumer.close().await.expect("closing the consumer");

        assert!(
            consumed.errors.is_empty(),
            "errors surfaced to the consumer: {:?}",
            consumed.errors
        );
        let per_partition = produced.offsets.get(&0).map_or(0, |o| o.len() as i64);
        assert_eq!(
            produced.offsets.len(),
            self.partitions as usize,
            "partitions produced to"
        );
        for p in 0..self.partitions {
            // Idempotence: each record acknowledged once, at the next offset (no duplicate written by a retry).
            let offsets = &produced.offsets[&p];
            assert_eq!(
                offsets.len() as i64,
                per_partition,
                "partition {p}: records acknowledged"
            );
            if let Some(i) = (0..per_partition).find(|&i| offsets[i as usize] != i) {
                panic!(
                    "{}/{p}: record {i} acknowledged at offset {} (a duplicate or a gap before it); offsets {}..: {:?}",
                    self.topic,
                    offsets[i as usize],
                    i.saturating_sub(3),
                    &offsets[i.saturating_sub(3) as usize..offsets.len().min(i as usize + 4)]
                );
            }
            // Every acknowledged record read back once, in order, with its key and value.
            let want: Vec<(i64, String, String)> =
                (0..per_partition).map(|i| (i, key(p, i), value(p, i))).collect();
            let have = consumed.records.get(&p).map(Vec::as_slice).unwrap_or_default();
            if have != want.as_slice() {
                let at = have
                    .iter()
                    .zip(&want)
                    .position(|(h, w)| h != w)
                    .unwrap_or(have.len().min(want.len()));
                panic!(
                    "{}/{p}: consumed {} records, {per_partition} acknowledged; first difference at #{at}: read {:?}, \
                     expected {:?}",
                    self.topic,
                    have.len(),
                    have.get(at),
                    want.get(at)
                );
            }
        }
        let summary = Summary {
            per_partition,
            slowest_ack: produced.slowest,
        };
        eprintln!("{}: {summary:?}", self.topic);
        summary
    }
}

/// The producer: one record per partition every [`ROUND_EVERY`] (keys and values carrying partition and
/// sequence), [`WINDOW`] in flight, until told to add a number of rounds and stop. A failed send panics: the
/// application would have seen that error.
async fn produce(
    producer: Producer,
    topic: String,
    partitions: i32,
    acknowledged: Arc<AtomicU64>,
    mut finish_after: watch::Receiver<Option<i64>>,
) -> Produced {
    let mut window = VecDeque::new();
    let mut produced = Produced {
        offsets: BTreeMap::new(),
        slowest: Duration::ZERO,
    };
    let ack = |(p, i, sent, m): (i32, i64, Instant, weir::Result<weir::RecordMetadata>),
               produced: &mut Produced| {
        let m = m.unwrap_or_else(|e| panic!("{topic}/{p} record {i} not delivered: {e}"));
        produced.slowest = produced.slowest.max(sent.elapsed());
        produced.offsets.entry(p).or_default().push(m.offset);
        acknowledged.fetch_add(1, Ordering::Relaxed);
    };
    let mut tick = tokio::time::interval(ROUND_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut end = None;
    let mut i = 0i64;
    while end.is_none_or(|end| i < end) {
        if end.is_none() {
            if let Some(rounds) = *finish_after.borrow_and_update() {
                end = Some(i + rounds);
                continue;
            }
        }
        tick.tick().await;
        for p in 0..partitions {
            let record = ProducerRecord::new(topic.as_str(), value(p, i))
                .key(key(p, i))
                .partition(p);
            let d = producer
                .send(record)
                .await
                .unwrap_or_else(|e| panic!("{topic}/{p} record {i}: send failed: {e}"));
            window.push_back((p, i, Instant::now(), d));
            while window.len() > WINDOW {
                let (p, i, sent, d) = window.pop_front().unwrap();
                ack((p, i, sent, d.await), &mut produced);
            }
        }
        i += 1;
    }
    for (p, i, sent, d) in window {
        ack((p, i, sent, d.await), &mut produced);
    }
    produced
}

/// The consumer: polls until it has read the number of records it is told to expect, collecting errors
/// rather than stopping at the first; then one more poll, to catch a record read twice at the very end.
async fn consume(
    consumer: Arc<Consumer>,
    consumed: Arc<AtomicU64>,
    expect: watch::Receiver<Option<u64>>,
) -> Consumed {
    let mut out = Consumed {
        records: BTreeMap::new(),
        errors: Vec::new(),
    };
    let take = |batch: Vec<weir::consumer::ConsumerRecord>, out: &mut Consumed| {
        consumed.fetch_add(batch.len() as u64, Ordering::Relaxed);
        for r in batch {
            let text = |b: Option<bytes::Bytes>| String::from_utf8(b.unwrap_or_default().to_vec()).unwrap();
            out.records
                .entry(r.partition)
                .or_default()
                .push((r.offset, text(r.key), text(r.value)));
        }
    };
    let mut deadline = None;
    loop {
        let total = *expect.borrow();
        if let Some(total) = total {
            if consumed.load(Ordering::Relaxed) >= total {
                break;
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + DRAIN_TIMEOUT);
            assert!(
                Instant::now() < deadline,
                "consumed {} of {total} acknowledged records in {DRAIN_TIMEOUT:?}; errors: {:?}",
                consumed.load(Ordering::Relaxed),
                out.errors
            );
        }
        match consumer.poll(1000, Duration::from_millis(200)).await {
            Ok(batch) => take(batch, &mut out),
            Err(e) => out.errors.push(e.to_string()),
        }
    }
    match consumer.poll(1000, Duration::from_millis(300)).await {
        Ok(batch) => take(batch, &mut out),
        Err(e) => out.errors.push(e.to_string()),
    }
    out
}
