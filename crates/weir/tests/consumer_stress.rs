//! Stress on a real broker: 8 threads pause and resume random partitions while 64 partitions are consumed.
//! Invariants: no loss, no duplication, offset order per partition, a partition paused by the polling thread
//! delivers nothing until it resumes it, and buffered bytes never exceed the budget.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{Producer, ProducerRecord};
use weir_testkit::{unique_topic, Kafka};

#[path = "support/buffered_peak.rs"]
mod buffered_peak;
use buffered_peak::BufferedPeak;

const PARTITIONS: i32 = 64;
const PER_PARTITION: usize = 400;
const BUDGET: usize = 256 * 1024;
/// The largest record batch the producer builds here (its default `batch.size`).
const MAX_BATCH: usize = 16 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_threads_pause_and_resume_while_64_partitions_are_consumed() {
    stress("0").await;
}

/// The same with rate-sized buffers: the sizing task moves every partition's watermarks meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_with_rate_sized_buffers() {
    stress("200").await;
}

/// Consumes the topic with `weir.buffer.target.ms` set to `target_ms` while 8 threads pause and resume.
async fn stress(target_ms: &str) {
    let broker = Kafka::shared();
    let topic = unique_topic("stress");
    broker.create_topic(&topic, PARTITIONS);
    let producer = Producer::new(ProducerConfig::new(&broker.bootstrap())).unwrap();
    let mut ds = Vec::new();
    for i in 0..PER_PARTITION {
        for p in 0..PARTITIONS {
            let v = format!("{p}:{i}:{}", "y".repeat(60 + (i % 50)));
            ds.push(
                producer
                    .send(ProducerRecord::new(&topic, v).partition(p))
                    .await
                    .unwrap(),
            );
        }
    }
    for d in ds {
        d.await.unwrap();
    }
    producer.close().await.unwrap();

    let mut cfg = ConsumerConfig::new(&broker.bootstrap()).with_partition_buffer(16 * 1024);
    cfg.memory_budget = BUDGET;
    cfg.set("fetch.wait.max.ms", "10").unwrap();
    cfg.set("weir.buffer.target.ms", target_ms).unwrap();
    cfg.set("weir.partition.buffer.min.bytes", "1024").unwrap();
    let consumer = Arc::new(Consumer::new(cfg).unwrap());
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    consumer
        .assign(
            &tps.iter()
                .map(|tp| (tp.clone(), StartOffset::Earliest))
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let pairs = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    // 8 threads hammer partitions 8..64 (the polling task owns 0..8 for its exact pause check).
    for t in 0..8u64 {
        let (consumer, done, pairs, tps) = (consumer.clone(), done.clone(), pairs.clone(), tps.clone());
        threads.push(std::thread::spawn(move || {
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
            while !done.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let tp = &tps[8 + (x % (PARTITIONS as u64 - 8)) as usize];
                consumer.pause(std::slice::from_ref(tp)).unwrap();
                std::thread::yield_now();
                consumer.resume(std::slice::from_ref(tp)).unwrap();
                pairs.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let monitor = BufferedPeak::start(consumer.clone());

    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let mut total = 0;
    let mut round = 0usize;
    let mut pairs_seen = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while total < PARTITIONS as usize * PER_PARTITION {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stalled at {total} records"
        );
        round += 1;
        // Interleave for certain: at least one pause/resume pair by the other threads between two polls
        // (on a loaded machine the threads could otherwise be starved until the records are all read).
        while pairs.load(Ordering::Relaxed) == pairs_seen {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the pausing threads stopped"
            );
            tokio::task::yield_now().await;
        }
        pairs_seen = pairs.load(Ordering::Relaxed);
        let mine = &tps[round % 8];
        consumer.pause(std::slice::from_ref(mine)).unwrap();
        let batch = consumer.poll(300, Duration::from_millis(100)).await.unwrap();
        for r in &batch {
            assert_ne!(
                r.partition, mine.partition,
                "a partition paused before poll delivered a record"
            );
            let n = next.entry(r.partition).or_insert(0);
            assert_eq!(
                r.offset, *n,
                "partition {}: lost, duplicated or out of order",
                r.partition
            );
            let want = format!("{}:{}:", r.partition, r.offset);
            assert!(r.value.as_ref().unwrap().starts_with(want.as_bytes()));
            *n += 1;
        }
        total += batch.len();
        consumer.resume(std::slice::from_ref(mine)).unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }

    assert!(next.values().all(|&n| n == PER_PARTITION as i64));
    // The budget holds to within one record batch (the state table's invariant 8): a fetch planned while
    // nothing was buffered may take its first batch whole even past its grant, so that a batch larger than
    // the grant still makes progress, while a fetch on another lane fills its own grant.
    let peak = monitor.stop();
    assert!(
        peak <= BUDGET + MAX_BATCH,
        "buffered {peak} bytes, budget {BUDGET} + one batch {MAX_BATCH}"
    );
    assert!(peak > 0);
    consumer.close().await.unwrap();
}
