//! The backpressure demo: a local Apache Kafka broker (single node, started here), a topic with many partitions, a fast producer and a deliberately
//! slow consumer whose per-partition buffers fill, stop fetching at the high watermark and resume under the low
//! one, all by configuration. A live per-partition view, then a summary.
//!
//! Run it with `scripts/demo` (installs the Kafka jars when missing). Options via environment:
//! `DEMO_RECORDS` (default 200000), `DEMO_PARTITIONS` (12), `DEMO_BUFFER` (per-partition high watermark,
//! default 131072), `DEMO_BUDGET` (consumer-wide, default 1048576), `DEMO_RATE` (records/s the consumer
//! processes, default 40000).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::config::{ClientConfig, ProducerConfig};
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{Admin, Producer, ProducerRecord};
use weir_testkit::bench_env::num as env;
use weir_testkit::counting_alloc;

fn kib(b: u64) -> String {
    format!("{:>6.1} KiB", b as f64 / 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> weir::Result<()> {
    let records = env::<usize>("DEMO_RECORDS", 200_000);
    let partitions = env::<usize>("DEMO_PARTITIONS", 12) as i32;
    let buffer = env::<usize>("DEMO_BUFFER", 128 * 1024);
    let budget = env::<usize>("DEMO_BUDGET", 1024 * 1024);
    let rate = env::<usize>("DEMO_RATE", 40_000).max(1);

    eprintln!("starting a local Apache Kafka broker ...");
    let broker = weir_testkit::Kafka::shared();
    eprintln!(
        "Kafka {} started in {:.1?}",
        broker.version(),
        broker.started_in()
    );
    let bootstrap = broker.bootstrap();
    let topic = "weir-demo";
    Admin::new(ClientConfig::new(&bootstrap))?
        .create_topic(topic, partitions, 1)
        .await?;
    println!("broker {bootstrap}: topic {topic} with {partitions} partitions; {records} records of ~100 B");

    // The fast producer: keyed records, so some partitions get more than others.
    let produced = Arc::new(AtomicU64::new(0));
    let producer = Producer::new(ProducerConfig::new(&bootstrap))?;
    let producer_task = {
        let produced = produced.clone();
        let producer = producer.clone();
        tokio::spawn(async move {
            let mut pending = Vec::with_capacity(4096);
            for i in 0..records {
                let key = format!("user-{}", i % 1000 + (i % 7) * 13);
                let value = format!("{i:>10}-{}", "x".repeat(88));
                pending.push(producer.send(ProducerRecord::new(topic, value).key(key)).await?);
                if pending.len() == 4096 {
                    for d in pending.drain(..) {
                        d.await?;
                        produced.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            for d in pending.drain(..) {
                d.await?;
                produced.fetch_add(1, Ordering::Relaxed);
            }
            producer.close().await
        })
    };

    // The slow consumer.
    let mut cfg = ConsumerConfig::new(&bootstrap).with_partition_buffer(buffer);
    cfg.memory_budget = budget.max(buffer);
    let consumer = Arc::new(Consumer::new(cfg)?);
    let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition::new(topic, p)).collect();
    consumer
        .assign(
            &tps.iter()
                .map(|tp| (tp.clone(), StartOffset::Earliest))
                .collect::<Vec<_>>(),
        )
        .await?;
    let limit = consumer.partition_view(&tps[0]).map_or(0, |v| v.buffer_limit);
    println!(
        "consumer: per-partition buffer {} asked; each starts at {} and grows to what the consumer drains from \
         it in a second, within the {} budget ({} each, its fair share, when all drain alike); fetching \
         resumes at half; processing {rate} records/s",
        kib(buffer as u64).trim(),
        kib(limit).trim(),
        kib(budget as u64).trim(),
        kib((budget / partitions.max(1) as usize).min(buffer) as u64).trim()
    );

    let peak = Arc::new(AtomicU64::new(0));
    let view = tokio::spawn(live_view(
        consumer.clone(),
        tps.clone(),
        produced.clone(),
        peak.clone(),
        budget,
    ));

    let started = Instant::now();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    let (mut consumed, mut out_of_order) = (0u64, 0u64);
    let per_record = Duration::from_secs_f64(1.0 / rate as f64);
    while consumed < records as u64 {
        let batch = consumer.poll(500, Duration::from_secs(5)).await?;
        peak.fetch_max(consumer.buffered_bytes() as u64, Ordering::Relaxed);
        if batch.is_empty() && producer_task.is_finished() {
            break; // nothing more is coming
        }
        for r in &batch {
            let n = next.entry(r.partition).or_insert(0);
            if r.offset != *n {
                out_of_order += 1;
            }
            *n = r.offset + 1;
        }
        consumed += batch.len() as u64;
        // "Process" the batch slowly: the application is the bottleneck, as it often is.
        tokio::time::sleep(per_record * batch.len() as u32).await;
    }
    let elapsed = started.elapsed();
    view.abort();
    let _ = view.await;
    producer_task.await.expect("producer task")?;
    let stats = consumer.stats();
    consumer.close().await.unwrap();

    let produced = produced.load(Ordering::Relaxed);
    let lost = produced.saturating_sub(consumed);
    println!("\n── summary ─────────────────────────────────────────────");
    println!("records produced        {produced}");
    println!(
        "records consumed        {consumed} in {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "backpressure pauses     {} (a partition's buffer reached its high watermark)",
        stats.backpressure_pauses
    );
    println!(
        "backpressure resumes    {} (drained to the low watermark, fetching again)",
        stats.backpressure_resumes
    );
    println!("fetch requests          {}", stats.fetches);
    println!(
        "peak buffered           {} of a {} budget ({:.0}%)",
        kib(peak.load(Ordering::Relaxed)).trim(),
        kib(budget as u64).trim(),
        100.0 * peak.load(Ordering::Relaxed) as f64 / budget as f64
    );
    let rss = counting_alloc::status_bytes("VmHWM:");
    if rss > 0 {
        println!(
            "peak RSS of this process {:.1} MiB (broker runs separately)",
            rss as f64 / (1024.0 * 1024.0)
        );
    }
    println!("records lost            {lost}");
    println!("out of order / dupes    {out_of_order}");
    if lost != 0 || out_of_order != 0 {
        std::process::exit(1);
    }
    Ok(())
}

async fn live_view(
    consumer: Arc<Consumer>,
    tps: Vec<TopicPartition>,
    produced: Arc<AtomicU64>,
    peak: Arc<AtomicU64>,
    budget: usize,
) {
    let tty = std::io::stdout().is_terminal();
    let mut drawn = 0usize;
    let mut tick = tokio::time::interval(Duration::from_millis(if tty { 200 } else { 1000 }));
    loop {
        tick.tick().await;
        let stats = consumer.stats();
        peak.fetch_max(stats.buffered_bytes as u64, Ordering::Relaxed);
        let mut out = String::new();
        if tty {
            if drawn > 0 {
                out.push_str(&format!("\x1b[{drawn}A"));
            }
            let mut lines = 0;
            for tp in &tps {
                let Some(v) = consumer.partition_view(tp) else {
                    continue;
                };
                let high = v.buffer_limit.max(1);
                let fill = ((v.buffered_bytes as f64 / high as f64) * 20.0).round().min(20.0) as usize;
                let state = if v.paused {
                    "paused"
                } else if v.backpressured {
                    "FULL: not fetching"
                } else {
                    "fetching"
                };
                out.push_str(&format!(
                    "\x1b[2K p{:<3} [{}{}] {} of {}  drained {}/s  delivered {:>8} of {:>8}  {state}\n",
                    tp.partition,
                    "#".repeat(fill),
                    ".".repeat(20 - fill),
                    kib(v.buffered_bytes),
                    kib(v.buffer_limit),
                    kib(v.drain_rate),
                    v.position,
                    v.high_watermark.max(0),
                ));
                lines += 1;
            }
            out.push_str(&format!(
                "\x1b[2K produced {:>8}  delivered {:>8}  buffered {} / budget {}  pauses {}  resumes {}\n",
                produced.load(Ordering::Relaxed),
                stats.records_delivered,
                kib(stats.buffered_bytes as u64),
                kib(budget as u64),
                stats.backpressure_pauses,
                stats.backpressure_resumes
            ));
            drawn = lines + 1;
        } else {
            out.push_str(&format!(
                "produced {:>8}  delivered {:>8}  buffered {}  pauses {}  resumes {}\n",
                produced.load(Ordering::Relaxed),
                stats.records_delivered,
                kib(stats.buffered_bytes as u64),
                stats.backpressure_pauses,
                stats.backpressure_resumes
            ));
        }
        let mut so = std::io::stdout().lock();
        let _ = so.write_all(out.as_bytes());
        let _ = so.flush();
    }
}
