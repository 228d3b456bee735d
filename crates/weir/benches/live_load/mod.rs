//! The load a live pause/resume measurement runs under, shared by `pause_resume.rs` (`-- live`) and
//! `pause_resume_vs_franz.rs`: a trickle producer writing small records to random partitions (so fetches carry
//! data and some resumed partitions have records buffered), the application's poll loop, and their counters.
//! Each bench target is its own crate and includes this with `mod live_load;`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weir::config::ProducerConfig;
use weir::consumer::{Consumer, TopicPartition};
use weir::{Producer, ProducerRecord};

/// Background producer: `PER_TICK` records every `TICK` (2,000 records/s), at most `MAX_RECORDS`.
const TICK: Duration = Duration::from_millis(10);
const PER_TICK: usize = 20;
const MAX_RECORDS: u64 = 1_000_000;
/// The producer skips a tick while more than this many records await their acknowledgement.
const MAX_UNACKED: u64 = 2_000;
const LINGER_MS: &str = "50";
const VALUE: &str = "trickle-record-0123456789abcdef"; // 32 B
/// `fetch.wait.max.ms` of the live consumer.
pub const FETCH_WAIT_MS: &str = "20";

/// A xorshift64 random source: cheap enough to sit inside the measured loops.
pub struct Xorshift(pub u64);

impl Xorshift {
    /// The next value.
    #[inline]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Counters of the background tasks (producer and the application's poll loop).
#[derive(Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub send_failed: AtomicU64,
    pub skipped_ticks: AtomicU64,
    pub polls: AtomicU64,
    pub empty_polls: AtomicU64,
    pub polled_records: AtomicU64,
    pub poll_errors: AtomicU64,
}

/// The trickle: `PER_TICK` small records to random partitions of `tps` every `TICK` until `stop`.
pub async fn produce(
    bootstrap: String,
    tps: Arc<Vec<TopicPartition>>,
    stop: Arc<AtomicBool>,
    c: Arc<Counters>,
) {
    let mut cfg = ProducerConfig::new(&bootstrap);
    cfg.set("linger.ms", LINGER_MS).expect("config");
    let producer = Producer::new(cfg).expect("producer");
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rng = Xorshift(0x0DDB_1A5E_5BAD_5EED);
    while !stop.load(Ordering::Relaxed) && c.sent.load(Ordering::Relaxed) < MAX_RECORDS {
        tick.tick().await;
        let settled = c.acked.load(Ordering::Relaxed) + c.send_failed.load(Ordering::Relaxed);
        if c.sent.load(Ordering::Relaxed).saturating_sub(settled) > MAX_UNACKED {
            c.skipped_ticks.fetch_add(1, Ordering::Relaxed);
            continue; // the broker is behind: a trickle, not a backlog
        }
        let mut deliveries = Vec::with_capacity(PER_TICK);
        for _ in 0..PER_TICK {
            let tp = &tps[(rng.next() % tps.len() as u64) as usize];
            let rec = ProducerRecord::new(&*tp.topic, VALUE).partition(tp.partition);
            match producer.send(rec).await {
                Ok(d) => deliveries.push(d),
                Err(_) => _ = c.send_failed.fetch_add(1, Ordering::Relaxed),
            }
            c.sent.fetch_add(1, Ordering::Relaxed);
        }
        let c = c.clone();
        tokio::spawn(async move {
            for d in deliveries {
                let counter = if d.await.is_ok() { &c.acked } else { &c.send_failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let _ = producer.close().await;
}

/// The application's poll loop: `poll(500, 100 ms)` until `stop`, the records counted and dropped.
pub async fn poll_loop(consumer: Arc<Consumer>, stop: Arc<AtomicBool>, c: Arc<Counters>) {
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(500, Duration::from_millis(100)).await {
            Ok(records) => {
                c.polls.fetch_add(1, Ordering::Relaxed);
                if records.is_empty() {
                    c.empty_polls.fetch_add(1, Ordering::Relaxed);
                }
                c.polled_records
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                if c.poll_errors.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!("live: poll error: {e}");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// One line saying the consumer was live: its fetches and deliveries, the poll loop's and the producer's
/// counters (`c` may be one `Counters` for both, or the consumer's alone).
pub fn liveness(consumer: &Consumer, c: &Counters, producer: &Counters) -> String {
    let s = consumer.stats();
    format!(
        "{} fetches, {} records delivered (poll loop: {} polls, {} empty, {} records, {} errors), \
         {} B buffered; producer: {} sent, {} acked, {} failed, {} ticks skipped (broker behind)",
        s.fetches,
        s.records_delivered,
        c.polls.load(Ordering::Relaxed),
        c.empty_polls.load(Ordering::Relaxed),
        c.polled_records.load(Ordering::Relaxed),
        c.poll_errors.load(Ordering::Relaxed),
        s.buffered_bytes,
        producer.sent.load(Ordering::Relaxed),
        producer.acked.load(Ordering::Relaxed),
        producer.send_failed.load(Ordering::Relaxed),
        producer.skipped_ticks.load(Ordering::Relaxed),
    )
}
