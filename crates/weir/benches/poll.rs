//! `poll` costs O(records delivered), not O(assigned partitions).
//!
//! One Apache Kafka broker (weir-testkit). Topic `active`: 1 partition pre-filled with 200,000 records of
//! 100 B. Topic `idle`: 5,000 empty partitions. For N in {0, 1,000, 5,000}, a fresh consumer is assigned the
//! active partition plus N idle partitions, all N paused, and the bench measures records/s delivered by
//! `poll(500, 1 s)` from the active partition (seeking back to offset 0 when it reaches the end).
//!
//! This is end-to-end throughput (fetch from the broker with `fetch.wait.max.ms=10`, decode, deliver), so the
//! absolute figures depend on the broker; the point is the ratio between the three cases (target ≈ 1.0).
//! `iter_custom`: one iteration = one record delivered. After criterion's report the bench prints its own
//! summary (all records / all measured time per case) with the ratios to N = 0.
//!
//! Run with `cargo bench -p weir --bench poll` (about 1 minute on 2 cores; the broker's jars come from
//! scripts/setup-test-env).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{Producer, ProducerRecord};

const RECORDS: i64 = 200_000;
const VALUE_BYTES: usize = 100;
const IDLE_PARTITIONS: i32 = 5_000;
const CASES: [i32; 3] = [0, 1_000, 5_000];
const MAX_RECORDS: usize = 500;

/// (case, idle partitions, records delivered, measured time) over every `iter_custom` call.
static TOTALS: Mutex<Vec<(&str, i32, u64, Duration)>> = Mutex::new(Vec::new());

/// Partition buffer of the `buffered` case: the whole active partition fits (below the 64 MiB budget).
const BIG_BUFFER: usize = 48 << 20;

async fn fill(bootstrap: &str) {
    let producer = Producer::new(ProducerConfig::new(bootstrap)).expect("producer");
    let mut pending = Vec::with_capacity(8192);
    for i in 0..RECORDS {
        let value = format!("{i:>10}-{}", "x".repeat(VALUE_BYTES - 11));
        let rec = ProducerRecord::new("active", value).partition(0);
        pending.push(producer.send(rec).await.expect("send"));
        if pending.len() == pending.capacity() {
            for d in pending.drain(..) {
                d.await.expect("delivery");
            }
        }
    }
    for d in pending.drain(..) {
        d.await.expect("delivery");
    }
    producer.close().await.expect("close producer");
}

async fn consumer_with_idle(bootstrap: &str, idle: i32, partition_buffer: usize) -> Consumer {
    let mut cfg = ConsumerConfig::new(bootstrap).with_partition_buffer(partition_buffer);
    // Paused partitions count in the fair share of the budget (budget / assigned partitions): a budget of one
    // partition buffer per assigned partition keeps the active partition's share at its whole buffer, so the
    // cases differ only in the idle partitions, as the bench means. Only the active partition buffers anything.
    let budget = (partition_buffer * (idle as usize + 1)).max(64 << 20);
    cfg.set("weir.memory.budget.bytes", &budget.to_string())
        .expect("config");
    cfg.set("fetch.wait.max.ms", "10").expect("config"); // a short long-poll: the bench measures delivery, not waiting
    let consumer = Consumer::new(cfg).expect("consumer");
    let idle_tps: Vec<TopicPartition> = (0..idle).map(|p| TopicPartition::new("idle", p)).collect();
    if !idle_tps.is_empty() {
        // Explicit offsets: no ListOffsets round trip per partition.
        let assignment: Vec<_> = idle_tps
            .iter()
            .map(|tp| (tp.clone(), StartOffset::Offset(0)))
            .collect();
        consumer.assign(&assignment).await.expect("assign idle");
        consumer.pause(&idle_tps).unwrap();
    }
    consumer
        .assign(&[(TopicPartition::new("active", 0), StartOffset::Offset(0))])
        .await
        .expect("assign active");
    assert_eq!(consumer.paused().len(), idle as usize);
    assert_eq!(consumer.assignment().len(), idle as usize + 1);
    // Let the idle partitions' first (empty) fetches, issued before `pause`, settle.
    tokio::time::sleep(Duration::from_millis(200)).await;
    consumer
}

/// Polls until at least `want` records were delivered; returns (delivered, elapsed).
async fn drive(consumer: &Consumer, tp: &TopicPartition, next: &mut i64, want: u64) -> (u64, Duration) {
    let start = Instant::now();
    let mut got = 0u64;
    while got < want {
        let batch = consumer
            .poll(MAX_RECORDS, Duration::from_secs(1))
            .await
            .expect("poll");
        assert!(
            !batch.is_empty(),
            "poll timed out with records left (next offset {next})"
        );
        for r in &batch {
            debug_assert_eq!(r.partition, 0);
            assert_eq!(r.offset, *next, "records out of order or lost");
            *next += 1;
        }
        got += batch.len() as u64;
        if *next >= RECORDS {
            consumer.seek(tp, StartOffset::Offset(0)).await.expect("seek");
            *next = 0;
        }
    }
    (got, start.elapsed())
}

/// Like [`drive`], but times only `poll` calls served from a full buffer: before each pass over the
/// partition it seeks to 0 and waits (untimed) until the whole partition is buffered again.
async fn drive_buffered(
    consumer: &Consumer,
    tp: &TopicPartition,
    next: &mut i64,
    full: &mut usize,
    want: u64,
) -> (u64, Duration) {
    let mut got = 0u64;
    let mut timed = Duration::ZERO;
    while got < want {
        if *next == 0 {
            wait_full(consumer, tp, full).await;
        }
        let start = Instant::now();
        while got < want && *next < RECORDS {
            let batch = consumer
                .poll(MAX_RECORDS, Duration::from_secs(1))
                .await
                .expect("poll");
            assert!(
                !batch.is_empty(),
                "poll timed out with records left (next offset {next})"
            );
            for r in &batch {
                assert_eq!(r.offset, *next, "records out of order or lost");
                *next += 1;
            }
            got += batch.len() as u64;
        }
        timed += start.elapsed();
        if *next >= RECORDS {
            consumer.seek(tp, StartOffset::Offset(0)).await.expect("seek");
            *next = 0;
        }
    }
    (got, timed)
}

/// Waits until the active partition is entirely buffered. The first time, "entirely" is learned: the
/// buffered bytes stop growing for 150 ms with the high watermark at the end of the log.
async fn wait_full(consumer: &Consumer, tp: &TopicPartition, full: &mut usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut last, mut since) = (0u64, Instant::now());
    loop {
        assert!(
            Instant::now() < deadline,
            "the active partition never got fully buffered"
        );
        let b = consumer.partition_buffered_bytes(tp).unwrap_or(0);
        if *full > 0 {
            if b as usize >= *full {
                return;
            }
        } else if b != last {
            (last, since) = (b, Instant::now());
        } else if b > 0
            && consumer.high_watermark(tp) == Some(RECORDS)
            && since.elapsed() >= Duration::from_millis(150)
        {
            *full = b as usize;
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn bench_poll(c: &mut Criterion, rt: &tokio::runtime::Runtime, bootstrap: &str) {
    let tp = TopicPartition::new("active", 0);
    for (name, buffer) in [("fetching", 1 << 20), ("buffered", BIG_BUFFER)] {
        let mut group = c.benchmark_group(format!("poll_{name}"));
        group.throughput(Throughput::Elements(1)); // one iteration = one record
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(if name == "fetching" { 6 } else { 3 }));
        for idle in CASES {
            let consumer = rt.block_on(consumer_with_idle(bootstrap, idle, buffer));
            let mut next = 0i64;
            let mut full = 0usize;
            group.bench_function(BenchmarkId::new("idle_paused", idle), |b| {
                b.iter_custom(|iters| {
                    let (got, elapsed) = if name == "fetching" {
                        rt.block_on(drive(&consumer, &tp, &mut next, iters))
                    } else {
                        rt.block_on(drive_buffered(&consumer, &tp, &mut next, &mut full, iters))
                    };
                    TOTALS.lock().unwrap().push((name, idle, got, elapsed));
                    // poll returns whole batches of up to 500: scale to the `iters` records asked for.
                    elapsed.mul_f64(iters as f64 / got as f64)
                })
            });
            let stats = consumer.stats();
            eprintln!(
                "  {name} idle={idle}: {} fetches, {} records delivered, {} backpressure pauses{}",
                stats.fetches,
                stats.records_delivered,
                stats.backpressure_pauses,
                if full > 0 {
                    format!(", full buffer {full} B")
                } else {
                    String::new()
                }
            );
            rt.block_on(consumer.close()).unwrap();
            drop(consumer);
        }
        group.finish();
    }
}

fn summary() {
    let totals = TOTALS.lock().unwrap();
    let rate = |case: &str, idle: i32| {
        let (n, t) = totals
            .iter()
            .filter(|(c, i, _, _)| *c == case && *i == idle)
            .fold((0u64, Duration::ZERO), |(n, t), (_, _, g, e)| (n + g, t + *e));
        (n, t, n as f64 / t.as_secs_f64().max(1e-9))
    };
    println!("\npoll throughput (warm-up and measured iterations together; records / timed seconds):");
    println!(
        "{:>9} {:>12} {:>12} {:>9} {:>14} {:>8}",
        "case", "idle paused", "records", "seconds", "records/s", "vs 0"
    );
    for case in ["fetching", "buffered"] {
        let (_, _, base) = rate(case, 0);
        for idle in CASES {
            let (n, t, r) = rate(case, idle);
            if n == 0 {
                continue;
            }
            println!(
                "{case:>9} {idle:>12} {n:>12} {:>9.2} {r:>14.0} {:>7.3}x",
                t.as_secs_f64(),
                r / base
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let broker = weir_testkit::Kafka::start(weir_testkit::Shape::Single);
    let bootstrap = broker.bootstrap();
    broker.create_topic("active", 1);
    broker.create_topic("idle", IDLE_PARTITIONS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let t = Instant::now();
    rt.block_on(fill(&bootstrap));
    eprintln!(
        "broker {bootstrap}: active = 1 partition x {RECORDS} records of {VALUE_BYTES} B (filled in {:.1} s), \
         idle = {IDLE_PARTITIONS} partitions",
        t.elapsed().as_secs_f64()
    );
    bench_poll(&mut c, &rt, &bootstrap);
    c.final_summary();
    summary();
    drop(rt);
    drop(broker);
}
