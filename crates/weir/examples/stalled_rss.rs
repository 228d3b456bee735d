//! A stalled application does not make the consumer's memory grow with the backlog.
//!
//! A local Apache Kafka broker (weir-testkit), a 32-partition topic holding 32 × 8 MiB (256 MiB) of 1 KiB records, a consumer with
//! 1 MiB partition buffers and the default 64 MiB memory budget, assigned every partition from the start — and
//! an application that does not call `poll` for 5 s. Meanwhile this process's RSS (`VmRSS`) and
//! `buffered_bytes()` are sampled every 100 ms. Then everything is drained and checked (every offset of every
//! partition exactly once, in order). Done twice: uncompressed, and with zstd batches (decompression covered).
//!
//! The records are produced by a child process (this example re-run with `--produce`), so the baseline RSS is
//! not inflated, nor the peak hidden, by memory the producer allocated and the allocator kept.
//!
//! Run: `cargo run --release -p weir --example stalled_rss` (about 30 s; the Kafka jars must be installed, see
//! scripts/setup-test-env). Options via environment: `STALL_SECS` (5), `MIB_PER_PARTITION` (8), `VALUE_BYTES`
//! (1024).
//! Exits 1 if the buffered bytes ever exceed the memory budget or a record is lost, duplicated or reordered.
//! Beside RSS it reports the bytes live on the heap (a counting global allocator), which tell what the consumer
//! holds from what the allocator keeps.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{Producer, ProducerRecord};
use weir_testkit::bench_env::num as env;
use weir_testkit::counting_alloc::{self, status_bytes, CountingAllocator};

// Counts the bytes live on the heap, to tell what the consumer holds from what the allocator keeps.
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const PARTITIONS: i32 = 32;
/// Bytes of each value: `VALUE_BYTES` (1024; at least 16, for the partition and number it starts with).
fn value_len() -> usize {
    static LEN: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *LEN.get_or_init(|| env::<u64>("VALUE_BYTES", 1024).max(16) as usize)
}
const PARTITION_BUFFER: usize = 1 << 20;
/// Producer batch size: the most a partition buffer may pass its high watermark by (one batch).
const BATCH: usize = 256 << 10;
const MIB: f64 = (1 << 20) as f64;

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / MIB)
}

/// Child process: produce `per_partition` records of `value_len()` bytes into every partition of `topic`.
async fn produce(bootstrap: &str, topic: &str, codec: &str, per_partition: u64) -> weir::Result<()> {
    let mut cfg = ProducerConfig::new(bootstrap);
    cfg.set("compression.type", codec)?;
    cfg.batch_size = BATCH;
    let producer = Producer::new(cfg)?;
    // Compressible but not trivial: hex digits of an LCG (zstd gets roughly 2:1).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut pending = Vec::with_capacity(8192);
    for i in 0..per_partition {
        for p in 0..PARTITIONS {
            let mut v = format!("{p:02}:{i:08}:");
            while v.len() < value_len() {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                v.push_str(&format!("{:016x}", x >> 1));
            }
            v.truncate(value_len());
            pending.push(producer.send(ProducerRecord::new(topic, v).partition(p)).await?);
            if pending.len() == pending.capacity() {
                for d in pending.drain(..) {
                    d.await?;
                }
            }
        }
    }
    for d in pending.drain(..) {
        d.await?;
    }
    producer.close().await
}

#[derive(Default)]
struct Peaks {
    rss: AtomicU64,
    buffered: AtomicU64,
    partition: AtomicU64,
    samples: AtomicU64,
    over_budget: AtomicBool,
}

/// Samples RSS and buffered bytes every 100 ms until `stop`.
fn sampler(
    consumer: Arc<Consumer>,
    tps: Vec<TopicPartition>,
    peaks: Arc<Peaks>,
    budget: usize,
    stop: Arc<AtomicBool>,
    print: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let rss = status_bytes("VmRSS:");
            let buffered = consumer.buffered_bytes() as u64;
            let part = tps
                .iter()
                .filter_map(|tp| consumer.partition_buffered_bytes(tp))
                .max()
                .unwrap_or(0);
            peaks.rss.fetch_max(rss, Ordering::Relaxed);
            peaks.buffered.fetch_max(buffered, Ordering::Relaxed);
            peaks.partition.fetch_max(part, Ordering::Relaxed);
            let n = peaks.samples.fetch_add(1, Ordering::Relaxed);
            if buffered > budget as u64 {
                peaks.over_budget.store(true, Ordering::Relaxed);
                eprintln!(
                    "!! buffered {} exceeds the budget {}",
                    mib(buffered),
                    mib(budget as u64)
                );
            }
            if print && n % 10 == 0 {
                println!(
                    "  t={:>4.1}s  RSS {:>10}  buffered {:>10}  largest partition buffer {:>9}",
                    start.elapsed().as_secs_f64(),
                    mib(rss),
                    mib(buffered),
                    mib(part)
                );
            }
        }
    })
}

struct Outcome {
    ok: bool,
}

async fn scenario(bootstrap: &str, topic: &str, codec: &str, per_partition: u64, stall: u64) -> Outcome {
    // Produce in a child process.
    let t = Instant::now();
    let status = Command::new(std::env::current_exe().expect("current exe"))
        .args(["--produce", bootstrap, topic, codec, &per_partition.to_string()])
        .status()
        .expect("spawn producer");
    assert!(status.success(), "producer child failed: {status}");
    let total_records = per_partition * PARTITIONS as u64;
    let topic_bytes = total_records * value_len() as u64;
    println!(
        "\n== {codec}: topic {topic}, {PARTITIONS} partitions × {per_partition} records × {} B = {} of values \
         (produced in {:.1} s, batches ≤ {} KiB)",
        value_len(),
        mib(topic_bytes),
        t.elapsed().as_secs_f64(),
        BATCH >> 10
    );

    let baseline = status_bytes("VmRSS:");
    let heap_baseline = counting_alloc::live_bytes();
    counting_alloc::reset_peak();
    let cfg = ConsumerConfig::new(bootstrap).with_partition_buffer(PARTITION_BUFFER);
    let budget = cfg.memory_budget;
    let consumer = Arc::new(Consumer::new(cfg).expect("consumer"));
    let tps: Vec<TopicPartition> = (0..PARTITIONS).map(|p| TopicPartition::new(topic, p)).collect();
    let assignment: Vec<_> = tps.iter().map(|tp| (tp.clone(), StartOffset::Earliest)).collect();
    consumer.assign(&assignment).await.expect("assign");

    // The stalled application: no poll for `stall` seconds.
    let stalled = Arc::new(Peaks::default());
    let stop = Arc::new(AtomicBool::new(false));
    let task = sampler(
        consumer.clone(),
        tps.clone(),
        stalled.clone(),
        budget,
        stop.clone(),
        true,
    );
    tokio::time::sleep(Duration::from_secs(stall)).await;
    stop.store(true, Ordering::Relaxed);
    task.await.expect("sampler");
    let stats_stalled = consumer.stats();
    let (heap_stalled_peak, heap_stalled_end) = (counting_alloc::peak_bytes(), counting_alloc::live_bytes());

    // Drain everything, checking every offset once and in order.
    let draining = Arc::new(Peaks::default());
    let stop = Arc::new(AtomicBool::new(false));
    let task = sampler(
        consumer.clone(),
        tps.clone(),
        draining.clone(),
        budget,
        stop.clone(),
        false,
    );
    let t = Instant::now();
    let mut next: BTreeMap<i32, u64> = BTreeMap::new();
    let (mut got, mut bad) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(120);
    while got < total_records && Instant::now() < deadline {
        let batch = consumer.poll(500, Duration::from_secs(2)).await.expect("poll");
        if batch.is_empty() {
            continue;
        }
        for r in &batch {
            let n = next.entry(r.partition).or_insert(0);
            let len = r.value.as_ref().map_or(0, |v| v.len());
            if r.offset as u64 != *n || len != value_len() {
                bad += 1;
            }
            *n = r.offset as u64 + 1;
        }
        got += batch.len() as u64;
    }
    let drain_secs = t.elapsed().as_secs_f64();
    // Anything more than expected would be a duplicate.
    let extra = consumer
        .poll(500, Duration::from_millis(200))
        .await
        .expect("poll")
        .len() as u64;
    stop.store(true, Ordering::Relaxed);
    task.await.expect("sampler");
    let stats = consumer.stats();
    consumer.close().await.unwrap();
    let short: Vec<_> = (0..PARTITIONS)
        .filter(|p| next.get(p).copied().unwrap_or(0) != per_partition)
        .collect();

    let bound = (PARTITIONS as usize * (PARTITION_BUFFER + BATCH)) as u64;
    let peak = stalled.rss.load(Ordering::Relaxed).max(baseline);
    println!(
        "  stalled {stall} s ({} samples every 100 ms):",
        stalled.samples.load(Ordering::Relaxed)
    );
    println!("    baseline RSS before the consumer        {}", mib(baseline));
    println!(
        "    peak RSS while stalled                  {}  (+{} over baseline; topic holds {})",
        mib(peak),
        mib(peak - baseline),
        mib(topic_bytes)
    );
    println!(
        "    heap live while stalled                 peak {}, at the end {} (+{} / +{} over baseline)",
        mib(heap_stalled_peak),
        mib(heap_stalled_end),
        mib(heap_stalled_peak.saturating_sub(heap_baseline)),
        mib(heap_stalled_end.saturating_sub(heap_baseline))
    );
    println!(
        "    peak buffered bytes                     {}  (bound {PARTITIONS} × (1 MiB + one {} KiB batch) = {}; \
         32 × 1 MiB = 32.0 MiB; budget {})",
        mib(stalled.buffered.load(Ordering::Relaxed)),
        BATCH >> 10,
        mib(bound),
        mib(budget as u64)
    );
    println!(
        "    largest partition buffer                {}  (high watermark 1 MiB + one batch)",
        mib(stalled.partition.load(Ordering::Relaxed))
    );
    println!(
        "    fetches {}, bytes fetched {}, backpressure pauses {}, records delivered {}",
        stats_stalled.fetches,
        mib(stats_stalled.bytes_fetched),
        stats_stalled.backpressure_pauses,
        stats_stalled.records_delivered
    );
    println!(
        "  drained {got} of {total_records} records in {drain_secs:.1} s ({:.0} records/s); peak RSS while \
         draining {}, peak buffered {}; {} fetches, backpressure pauses/resumes {}/{}",
        got as f64 / drain_secs,
        mib(draining.rss.load(Ordering::Relaxed)),
        mib(draining.buffered.load(Ordering::Relaxed)),
        stats.fetches,
        stats.backpressure_pauses,
        stats.backpressure_resumes
    );

    let mut ok = true;
    if stalled.over_budget.load(Ordering::Relaxed) || draining.over_budget.load(Ordering::Relaxed) {
        println!(
            "  FAIL: buffered bytes exceeded the {} budget",
            mib(budget as u64)
        );
        ok = false;
    }
    if got != total_records || bad > 0 || extra > 0 || !short.is_empty() {
        println!(
            "  FAIL: {got}/{total_records} records, {bad} out of order or malformed, {extra} extra, \
             partitions not complete: {short:?}"
        );
        ok = false;
    }
    if stalled.buffered.load(Ordering::Relaxed) > bound {
        println!("  note: peak buffered above 32 × (1 MiB + one batch)");
    }
    if ok {
        println!("  OK: nothing lost, budget held");
    }
    Outcome { ok }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if args.get(1).map(String::as_str) == Some("--produce") {
        let n: u64 = args[5].parse().expect("records per partition");
        if let Err(e) = rt.block_on(produce(&args[2], &args[3], &args[4], n)) {
            eprintln!("producer: {e}");
            std::process::exit(1);
        }
        return;
    }
    let stall = env::<u64>("STALL_SECS", 5);
    let per_partition = env::<u64>("MIB_PER_PARTITION", 8) * (1 << 20) / value_len() as u64;
    let broker = weir_testkit::Kafka::start(weir_testkit::Shape::Single);
    let bootstrap = broker.bootstrap();
    let mut ok = true;
    for (topic, codec) in [("stalled-none", "none"), ("stalled-zstd", "zstd")] {
        broker.create_topic(topic, PARTITIONS);
        ok &= rt
            .block_on(scenario(&bootstrap, topic, codec, per_partition, stall))
            .ok;
    }
    println!("\nprocess peak RSS (VmHWM) {}", mib(status_bytes("VmHWM:")));
    drop(rt);
    drop(broker);
    std::process::exit(if ok { 0 } else { 1 });
}
