//! A stalled broker does not make the producer's memory grow: `buffer.memory` bounds what is queued, `send`
//! waits for room, then fails after `max.block.ms`.
//!
//! A local Apache Kafka broker (weir-testkit) and a 6-partition topic. The application sends 1 KiB records as
//! fast as it can from one task, keeping no delivery future (as a fire-and-forget producer does), for
//! `RUN_SECS` (10) in all; after 2 s the broker process is stopped (SIGSTOP) for `STALL_SECS` (5), then resumed
//! (SIGCONT). Every 100 ms it samples this process's RSS (`VmRSS`), the bytes live on the heap (a counting global
//! allocator) and the producer's queued records. It reports the peaks while the broker is stopped against
//! `buffer.memory` (`BUFFER_MIB`, default 32, the Java client's default), how many sends timed out, and checks,
//! after a flush, that every record whose `send` succeeded was written once (the partitions' end offsets add up
//! to the records accepted).
//!
//! Run: `cargo run --release -p weir --example producer_stall_rss` (the Kafka jars must be installed, see
//! scripts/setup-test-env). Exits 1 if the live heap passes `buffer.memory` + 16 MiB or a record is lost.

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{ErrorKind, Producer, ProducerRecord};
use weir_testkit::bench_env::num as env;
use weir_testkit::counting_alloc::{self, status_bytes, CountingAllocator};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const PARTITIONS: i32 = 6;
const MIB: f64 = (1 << 20) as f64;

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

fn main() {
    let run = Duration::from_secs(env::<u64>("RUN_SECS", 10));
    let stall = Duration::from_secs(env::<u64>("STALL_SECS", 5));
    let buffer = env::<u64>("BUFFER_MIB", 32) << 20;
    let broker = weir_testkit::Kafka::start(weir_testkit::Shape::Single);
    let pid = broker.pid(broker.node_ids()[0]).expect("the broker's pid");
    let topic = weir_testkit::unique_name("stall-rss");
    broker.create_topic(&topic, PARTITIONS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let mut cfg = ProducerConfig::new(&broker.bootstrap());
    cfg.buffer_memory = buffer as usize;
    cfg.set("max.block.ms", "1000").unwrap();
    let producer = Arc::new(rt.block_on(async { Producer::new(cfg) }).unwrap());

    let accepted = Arc::new(AtomicU64::new(0));
    let timed_out = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let (producer, accepted, timed_out, done, topic) = (
            producer.clone(),
            accepted.clone(),
            timed_out.clone(),
            done.clone(),
            topic.clone(),
        );
        rt.spawn(async move {
            let value = bytes::Bytes::from(vec![b'x'; 1024]);
            let mut i = 0u64;
            while !done.load(Ordering::Relaxed) {
                let r = ProducerRecord::new(&*topic, value.clone()).partition((i % PARTITIONS as u64) as i32);
                match producer.send(r).await {
                    Ok(_) => {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.kind() == ErrorKind::Retriable => {
                        timed_out.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => panic!("send: {e}"),
                }
                i += 1;
            }
        })
    };

    counting_alloc::reset_peak();
    let start = Instant::now();
    let stall_at = Duration::from_secs(2);
    let (mut stopped, mut resumed) = (false, false);
    let (mut peak_rss, mut peak_heap, mut peak_queued) = (0u64, 0u64, 0u64);
    let (mut before_rss, mut before_heap) = (0u64, 0u64);
    while start.elapsed() < run {
        std::thread::sleep(Duration::from_millis(100));
        let t = start.elapsed();
        if !stopped && t >= stall_at {
            before_rss = status_bytes("VmRSS:");
            before_heap = counting_alloc::live_bytes();
            signal(pid, "-STOP");
            stopped = true;
            eprintln!("producer_stall_rss: broker stopped at {t:.1?}");
        }
        if stopped && !resumed {
            peak_rss = peak_rss.max(status_bytes("VmRSS:"));
            peak_heap = peak_heap.max(counting_alloc::live_bytes());
            peak_queued = peak_queued.max(producer.stats().records_queued);
            if t >= stall_at + stall {
                signal(pid, "-CONT");
                resumed = true;
                eprintln!("producer_stall_rss: broker resumed at {t:.1?}");
            }
        }
    }
    if !resumed {
        signal(pid, "-CONT");
    }
    done.store(true, Ordering::Relaxed);
    rt.block_on(sender).unwrap();
    rt.block_on(producer.flush()).expect("flush");
    rt.block_on(producer.close()).expect("close");

    // Every accepted record was written once: the partitions' end offsets add up to them.
    let written: i64 = rt.block_on(async {
        let consumer = Consumer::new(ConsumerConfig::new(&broker.bootstrap())).unwrap();
        let mut total = 0;
        for p in 0..PARTITIONS {
            let tp = TopicPartition::new(topic.as_str(), p);
            consumer
                .assign(&[(tp.clone(), StartOffset::Latest)])
                .await
                .unwrap();
            total += consumer.position(&tp).unwrap();
        }
        consumer.close().await.unwrap();
        total
    });
    let accepted = accepted.load(Ordering::Relaxed);
    println!(
        "producer_stall_rss: buffer.memory {:.0} MiB; before the stall RSS {:.1} MiB, heap {:.1} MiB; while the \
         broker was stopped ({stall:?}) peak RSS {:.1} MiB, peak heap {:.1} MiB, peak queued records {peak_queued}; \
         {accepted} sends accepted, {} timed out (max.block.ms 1 s), {written} records written",
        buffer as f64 / MIB,
        before_rss as f64 / MIB,
        before_heap as f64 / MIB,
        peak_rss as f64 / MIB,
        peak_heap as f64 / MIB,
        timed_out.load(Ordering::Relaxed),
    );
    let mut failed = false;
    if peak_heap > buffer + (16 << 20) {
        eprintln!("producer_stall_rss: the live heap passed buffer.memory + 16 MiB");
        failed = true;
    }
    if written != accepted as i64 {
        eprintln!("producer_stall_rss: {accepted} accepted but {written} written");
        failed = true;
    }
    if timed_out.load(Ordering::Relaxed) == 0 {
        eprintln!("producer_stall_rss: no send timed out: the stall did not block the producer");
        failed = true;
    }
    std::process::exit(i32::from(failed));
}
