//! Rate-sized against fixed fair-share buffers under skewed load, on Apache Kafka.
//!
//! `cargo bench -p weir --bench skewed_buffers` (about 3 minutes with the defaults). Starts its own single-node
//! Kafka (`weir_testkit::Kafka::start(Shape::Single)`) and a 64-partition topic:
//! - **one hot partition** (0), pre-filled with `HOT_RECORDS` records of `VALUE_BYTES` bytes, read from its start
//!   by each run and drained at full speed: the application only counts its records;
//! - **63 cold partitions**, written at 100 records/s each by a producer in this process for the whole bench,
//!   read from their end by each run.
//!
//! Every run makes a consumer with the same 16 MiB budget (`BUDGET_MIB`) and the default partition buffer (8 MiB,
//! the ceiling), and polls until the hot partition is drained or `RUN_SECS` passed. The modes, alternated run by
//! run (`RUNS`, 3): **fixed**, the fair share of the budget per partition (`weir.buffer.target.ms=0`, 256 KiB
//! here); **rate-T** for each target window T in `TARGETS` (ms, `1000`).
//!
//! Measured per run:
//! - hot records/s;
//! - the peak of the buffered bytes, sampled every millisecond (against the budget);
//! - backpressure transitions per second (`backpressure_pauses + backpressure_resumes` of `Consumer::stats`);
//! - the longest gap between two deliveries of one cold partition (records arrive at each every 10 ms);
//! - the process's CPU seconds (the cold producer included, the same in every mode).
//!
//! Then **rates that change** (`SWAPS`, 4; 0 skips it): partitions 0 and 1 take turns being hot, every
//! `SWAP_SECS` (10) s, with rate-sized buffers (1 s). The hot one is drained at `SWAP_RATE` (20,000) records/s, the
//! other is paused (drains nothing). Per swap: how long the newly hot partition's limit takes to reach 90% of
//! what the previous hot one had, and how long the previous one's takes to fall to a quarter of it.
//!
//! `RTT_MS` (0) adds a network's round trip: the clients then reach the broker through
//! [`weir_testkit::chaos`]'s proxy, which delays every chunk by half of it each way (`Behaviour::Latency`; the
//! proxy's copying shares the machine's cores with everything else, in every mode alike).
//!
//! Printed: every run, then per mode the medians [min–max] and the ratio of hot records/s to the fixed mode's.
//! With `WEIR_BENCH_OUT=FILE`, one results line per run in the shared benchmark format.

#[allow(dead_code)]
mod clients;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clients::stats;
use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{Producer, ProducerRecord};
use weir_testkit::bench_env::{list as env_list, num as env_num};
use weir_testkit::chaos::Behaviour;
use weir_testkit::cpu_time::process_cpu;
use weir_testkit::{bench_out, unique_name, Kafka, Shape};

const BENCH: &str = "skewed_buffers";
const PARTITIONS: i32 = 64;
/// Records per second written to each cold partition.
const COLD_RATE: u64 = 100;

struct Run {
    hot_per_s: f64,
    peak_mib: f64,
    transitions_per_s: f64,
    cold_gap_ms: f64,
    cpu_s: f64,
    /// Records the hot partition's fetches brought, on average.
    hot_per_fetch: f64,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` (no tests here)
    }
    let runs: usize = env_num("RUNS", 3);
    let hot_records: u64 = env_num("HOT_RECORDS", 3_000_000);
    let value_bytes: usize = env_num("VALUE_BYTES", 100);
    let run_secs: u64 = env_num("RUN_SECS", 20);
    let budget = env_num::<usize>("BUDGET_MIB", 16) << 20;
    let mut modes = vec![0u64];
    modes.extend(
        env_list("TARGETS", "1000")
            .iter()
            .map(|t| t.parse::<u64>().expect("a target in ms")),
    );

    let rtt_ms: u64 = env_num("RTT_MS", 0);
    // With a round trip to emulate, the clients reach the broker through a proxy that delays every chunk by
    // half of it each way (after the prefill).
    let (broker, proxy) = match rtt_ms {
        0 => (Kafka::start(Shape::Single), None),
        _ => {
            let (k, c) = Kafka::start_proxied(Shape::Single, &[]);
            (k, Some(c))
        }
    };
    let bootstrap = broker.bootstrap();
    let topic = unique_name("skewed");
    broker.create_topic(&topic, PARTITIONS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    let swaps: u32 = env_num("SWAPS", 4);
    let swap_secs: u64 = env_num("SWAP_SECS", 10);
    let swap_rate: u64 = env_num("SWAP_RATE", 20_000);
    let t0 = Instant::now();
    rt.block_on(prefill(&bootstrap, &topic, 0, hot_records, value_bytes));
    if swaps > 0 {
        // Partition 1's backlog for its turns (partition 0 has the hot records).
        let needed = swap_rate * swap_secs * u64::from(swaps.div_ceil(2)) * 11 / 10;
        rt.block_on(prefill(&bootstrap, &topic, 1, needed, value_bytes));
    }
    eprintln!(
        "{BENCH}: {hot_records} hot records of {value_bytes} B written in {:.1?}",
        t0.elapsed()
    );
    if let Some(proxy) = &proxy {
        proxy.set(Behaviour::Latency {
            one_way: Duration::from_micros(rtt_ms * 500),
        });
    }

    let stop = Arc::new(AtomicBool::new(false));
    let cold = rt.spawn(cold_writer(bootstrap.clone(), topic.clone(), stop.clone()));

    let mut results: Vec<(u64, Vec<Run>)> = modes.iter().map(|&m| (m, Vec::new())).collect();
    for run in 1..=runs {
        for (target, out) in results.iter_mut() {
            let r = rt.block_on(measure(
                &bootstrap,
                &topic,
                *target,
                budget,
                hot_records,
                run_secs,
            ));
            let mode = mode_name(*target);
            eprintln!(
                "{BENCH}: run {run} {mode}: hot {:.0} records/s, peak buffered {:.1} MiB, {:.1} transitions/s, \
                 longest cold gap {:.0} ms, CPU {:.2} s, {:.0} hot records per fetch",
                r.hot_per_s, r.peak_mib, r.transitions_per_s, r.cold_gap_ms, r.cpu_s, r.hot_per_fetch
            );
            bench_out::record(
                BENCH,
                &format!("1 hot + 63 cold partitions, 16 MiB budget, {rtt_ms} ms round trip"),
                &mode,
                run,
                &[("target_ms", (*target as f64).into())],
                &[
                    ("records_per_s", r.hot_per_s),
                    ("peak_buffered_mib", r.peak_mib),
                    ("transitions_per_s", r.transitions_per_s),
                    ("cold_gap_ms", r.cold_gap_ms),
                    ("cpu_s", r.cpu_s),
                ],
            );
            out.push(r);
        }
    }
    let follows = match swaps {
        0 => Vec::new(),
        n => rt.block_on(follow(
            &bootstrap,
            &topic,
            budget,
            n,
            Duration::from_secs(swap_secs),
            swap_rate,
        )),
    };
    stop.store(true, Ordering::Relaxed);
    rt.block_on(cold).unwrap();

    let fixed_hot = stats(&results[0].1.iter().map(|r| r.hot_per_s).collect::<Vec<_>>()).0;
    println!(
        "\n{BENCH}: 1 hot partition drained at full speed, 63 cold at {COLD_RATE} records/s, {} MiB budget, \
         {hot_records} x {value_bytes} B hot records, {rtt_ms} ms added round trip; medians [min-max] of {runs}\n",
        budget >> 20
    );
    println!("| mode | hot records/s | vs fixed | peak buffered MiB | transitions/s | longest cold gap ms | CPU s |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (target, rs) in &results {
        let col = |f: fn(&Run) -> f64| {
            let (med, lo, hi) = stats(&rs.iter().map(f).collect::<Vec<_>>());
            format!("{med:.1} [{lo:.1}–{hi:.1}]")
        };
        let hot = stats(&rs.iter().map(|r| r.hot_per_s).collect::<Vec<_>>()).0;
        println!(
            "| {} | {} | {:.2}x | {} | {} | {} | {} |",
            mode_name(*target),
            col(|r| r.hot_per_s),
            hot / fixed_hot,
            col(|r| r.peak_mib),
            col(|r| r.transitions_per_s),
            col(|r| r.cold_gap_ms),
            col(|r| r.cpu_s),
        );
    }
    if !follows.is_empty() {
        println!(
            "\n{BENCH}: rates that change: partitions 0 and 1 hot in turn ({swap_rate} records/s) every \
             {swap_secs} s, rate-sized 1 s\n"
        );
        println!(
            "| swap | new hot partition's limit at 90% of the old one's, ms | old one's at a quarter, ms |"
        );
        println!("|---:|---:|---:|");
        for (i, (grown, shrunk)) in follows.iter().enumerate() {
            let ms = |d: &Option<Duration>| d.map_or("not reached".to_owned(), |d| d.as_millis().to_string());
            println!("| {} | {} | {} |", i + 1, ms(grown), ms(shrunk));
        }
    }
}

fn mode_name(target: u64) -> String {
    match target {
        0 => "fixed".to_owned(),
        t => format!("rate-{t}"),
    }
}

/// Writes `records` records to `partition`.
async fn prefill(bootstrap: &str, topic: &str, partition: i32, records: u64, value_bytes: usize) {
    let producer = Producer::new(ProducerConfig::new(bootstrap)).unwrap();
    let value = bytes::Bytes::from(vec![b'h'; value_bytes]);
    let mut pending = Vec::with_capacity(65_536);
    for _ in 0..records {
        pending.push(
            producer
                .send(ProducerRecord::new(topic, value.clone()).partition(partition))
                .await
                .unwrap(),
        );
        if pending.len() == pending.capacity() {
            for d in pending.drain(..) {
                d.await.unwrap();
            }
        }
    }
    for d in pending {
        d.await.unwrap();
    }
    producer.close().await.unwrap();
}

/// Writes `COLD_RATE` records per second to each cold partition until `stop`.
async fn cold_writer(bootstrap: String, topic: String, stop: Arc<AtomicBool>) {
    let producer = Producer::new(ProducerConfig::new(&bootstrap)).unwrap();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / COLD_RATE));
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        for p in 1..PARTITIONS {
            // Delivery is not awaited: the producer's buffer bounds what is pending.
            let _ = producer
                .send(ProducerRecord::new(&*topic, format!("{p}:{n}")).partition(p))
                .await;
        }
        n += 1;
    }
    producer.close().await.unwrap();
}

async fn measure(bootstrap: &str, topic: &str, target: u64, budget: usize, hot: u64, run_secs: u64) -> Run {
    let mut cfg = ConsumerConfig::new(bootstrap);
    cfg.memory_budget = budget;
    cfg.set("weir.buffer.target.ms", &target.to_string()).unwrap();
    let consumer = Arc::new(Consumer::new(cfg).unwrap());
    let mut assignment = vec![(TopicPartition::new(topic, 0), StartOffset::Earliest)];
    assignment.extend((1..PARTITIONS).map(|p| (TopicPartition::new(topic, p), StartOffset::Latest)));
    consumer.assign(&assignment).await.unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (consumer, done, peak) = (consumer.clone(), done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(consumer.buffered_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let cpu0 = process_cpu();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(run_secs);
    let mut hot_read = 0u64;
    let mut last_cold: Vec<Option<Instant>> = vec![None; PARTITIONS as usize];
    let mut cold_gap = Duration::ZERO;
    while hot_read < hot && Instant::now() < deadline {
        let batch = consumer.poll(10_000, Duration::from_millis(100)).await.unwrap();
        let now = Instant::now();
        for r in batch {
            if r.partition == 0 {
                hot_read += 1;
            } else if let Some(last) = last_cold[r.partition as usize].replace(now) {
                cold_gap = cold_gap.max(now - last);
            }
        }
    }
    let elapsed = start.elapsed();
    let cpu = process_cpu() - cpu0;
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let s = consumer.stats();
    consumer.close().await.unwrap();
    let hot_stats = s.partitions.iter().find(|p| p.topic_partition.partition == 0);
    let hot_per_fetch = hot_stats.map_or(0.0, |p| p.records_fetched as f64 / p.fetches.max(1) as f64);
    Run {
        hot_per_fetch,
        hot_per_s: hot_read as f64 / elapsed.as_secs_f64(),
        peak_mib: peak.load(Ordering::Relaxed) as f64 / (1 << 20) as f64,
        transitions_per_s: (s.backpressure_pauses + s.backpressure_resumes) as f64 / elapsed.as_secs_f64(),
        cold_gap_ms: cold_gap.as_secs_f64() * 1000.0,
        cpu_s: cpu.as_secs_f64(),
    }
}

/// Partitions 0 and 1 hot in turn: returns per swap how long the newly hot partition's limit took to reach 90% of
/// the previous hot one's, and the previous one's to fall to a quarter of it (`None`: not within the phase).
async fn follow(
    bootstrap: &str,
    topic: &str,
    budget: usize,
    swaps: u32,
    phase: Duration,
    rate: u64,
) -> Vec<(Option<Duration>, Option<Duration>)> {
    let mut cfg = ConsumerConfig::new(bootstrap);
    cfg.memory_budget = budget;
    cfg.set("weir.buffer.target.ms", "1000").unwrap();
    let consumer = Consumer::new(cfg).unwrap();
    let tp = |p: i32| TopicPartition::new(topic, p);
    let mut assignment = vec![(tp(0), StartOffset::Earliest), (tp(1), StartOffset::Earliest)];
    assignment.extend((2..PARTITIONS).map(|p| (tp(p), StartOffset::Latest)));
    consumer.assign(&assignment).await.unwrap();
    consumer.pause(&[tp(1)]).unwrap();
    let limit = |p: i32| consumer.partition_view(&tp(p)).map_or(0, |v| v.buffer_limit);
    let mut hot = 0;
    let mut out = Vec::new();
    // (when the swap happened, the old hot partition's limit then, grown after, shrunk after)
    let mut swap: Option<(Instant, u64, Option<Duration>, Option<Duration>)> = None;
    let mut phase_start = Instant::now();
    let mut taken = 0u64;
    loop {
        let now = Instant::now();
        if let Some((at, old_limit, grown, shrunk)) = &mut swap {
            if grown.is_none() && limit(hot) * 10 >= old_limit.saturating_mul(9) {
                *grown = Some(now - *at);
            }
            if shrunk.is_none() && limit(1 - hot) * 4 <= *old_limit {
                *shrunk = Some(now - *at);
            }
        }
        if now - phase_start >= phase {
            if let Some((_, _, grown, shrunk)) = swap.take() {
                out.push((grown, shrunk));
            }
            if out.len() == swaps as usize {
                break;
            }
            let old_limit = limit(hot);
            consumer.pause(&[tp(hot)]).unwrap();
            hot = 1 - hot;
            consumer.resume(&[tp(hot)]).unwrap();
            eprintln!("{BENCH}: swap: partition {hot} hot, the other's limit was {old_limit} B");
            swap = Some((Instant::now(), old_limit, None, None));
            phase_start = Instant::now();
            taken = 0;
        }
        // Paced: the hot partition is drained at `rate` records/s (cold records come along).
        let allowed = (rate as f64 * phase_start.elapsed().as_secs_f64()) as u64;
        if taken >= allowed {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        let max = (allowed - taken).min(1000) as usize;
        for r in consumer.poll(max, Duration::from_millis(10)).await.unwrap() {
            if r.partition == hot {
                taken += 1;
            }
        }
    }
    consumer.close().await.unwrap();
    out
}
