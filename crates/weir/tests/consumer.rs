//! The consumer against real Apache Kafka: no loss or duplication across pause / resume / seek with a slow
//! consumer, pause takes effect immediately, bounded buffers, and librdkafka-written data reads identically.

use std::collections::BTreeMap;
use std::time::Duration;

use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, ConsumerRecord, StartOffset, TopicPartition};
use weir::{Producer, ProducerRecord};
use weir_testkit::{unique_topic, Kafka, Python};

fn consumer_config(broker: &Kafka) -> ConsumerConfig {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("WEIR_LOG"))
        .with_test_writer()
        .try_init();
    ConsumerConfig::new(&broker.bootstrap())
}

/// The shared cluster with a new topic of `partitions` partitions.
fn broker_with_topic(prefix: &str, partitions: i32) -> (&'static Kafka, String) {
    let broker = Kafka::shared();
    let topic = unique_topic(prefix);
    broker.create_topic(&topic, partitions);
    (broker, topic)
}

async fn produce(broker: &Kafka, topic: &str, partitions: i32, per_partition: usize) {
    produce_range(broker, topic, partitions, 0..per_partition).await
}

async fn produce_range(broker: &Kafka, topic: &str, partitions: i32, range: std::ops::Range<usize>) {
    let mut cfg = ProducerConfig::new(&broker.bootstrap());
    // Small batches: a partition buffer passes its high watermark by at most one batch.
    cfg.set("batch.size", "8192").unwrap();
    let producer = Producer::new(cfg).unwrap();
    let mut ds = Vec::new();
    for i in range {
        for p in 0..partitions {
            let value = format!("p{p}-r{i}-{}", "x".repeat(100));
            ds.push(
                producer
                    .send(ProducerRecord::new(topic, value).partition(p))
                    .await
                    .unwrap(),
            );
        }
    }
    for d in ds {
        d.await.unwrap();
    }
    producer.close().await.unwrap();
}

/// Assigns partitions `0..n` of `topic` from the earliest offset; returns them.
async fn assign_from_earliest(c: &Consumer, topic: &str, n: i32) -> Vec<TopicPartition> {
    let tps: Vec<TopicPartition> = (0..n).map(|p| TopicPartition::new(topic, p)).collect();
    let starts: Vec<_> = tps.iter().map(|tp| (tp.clone(), StartOffset::Earliest)).collect();
    c.assign(&starts).await.unwrap();
    tps
}

/// Polls until `want` records arrived (bounded by a generous deadline so a bug fails instead of hanging).
async fn poll_n(c: &Consumer, want: usize, max: usize) -> Vec<ConsumerRecord> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while got.len() < want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {want} records arrived",
            got.len()
        );
        got.extend(c.poll(max, Duration::from_millis(200)).await.unwrap());
    }
    got
}

fn check_dense(records: &[ConsumerRecord], partitions: i32, per_partition: usize) {
    let mut next: BTreeMap<i32, i64> = (0..partitions).map(|p| (p, 0)).collect();
    for r in records {
        let n = next.get_mut(&r.partition).unwrap();
        assert_eq!(
            r.offset, *n,
            "partition {}: offset out of order / lost / duplicated",
            r.partition
        );
        let want = format!("p{}-r{}-", r.partition, r.offset);
        assert!(r.value.as_ref().unwrap().starts_with(want.as_bytes()));
        *n += 1;
    }
    assert!(next.values().all(|&n| n == per_partition as i64), "{next:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_with_pause_resume_loses_nothing() {
    let (broker, topic) = broker_with_topic("slow", 4);
    let per = 3000;
    produce(broker, &topic, 4, per).await;

    // Small buffers so backpressure (high/low watermark) kicks in constantly.
    let cfg = consumer_config(broker).with_partition_buffer(32 * 1024);
    let c = Consumer::new(cfg).unwrap();
    let tps = assign_from_earliest(&c, &topic, 4).await;

    let mut all = Vec::new();
    let mut round = 0;
    while all.len() < 4 * per {
        round += 1;
        let paused = &tps[round % 4];
        c.pause(std::slice::from_ref(paused)).unwrap();
        let batch = c.poll(97, Duration::from_millis(200)).await.unwrap();
        assert!(
            batch.iter().all(|r| r.partition != paused.partition),
            "paused partition delivered"
        );
        // High watermark plus at most one batch (8 KiB of payload, accounted with per-record overhead).
        assert!(c.partition_buffered_bytes(paused).unwrap() <= 32 * 1024 + 16 * 1024);
        all.extend(batch);
        c.resume(std::slice::from_ref(paused)).unwrap();
        tokio::task::yield_now().await;
        assert!(round < 100_000, "no progress");
    }
    check_dense(&all, 4, per);
    assert!(c.buffered_bytes() <= 4 * 64 * 1024);
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_partition_keeps_its_buffer_and_seek_rewinds() {
    let (broker, topic) = broker_with_topic("pause", 2);
    produce_range(broker, &topic, 2, 0..500).await;
    let c = Consumer::new(consumer_config(broker)).unwrap();
    let t0 = TopicPartition::new(topic.as_str(), 0);
    let t1 = TopicPartition::new(topic.as_str(), 1);
    c.assign(&[
        (t0.clone(), StartOffset::Earliest),
        (t1.clone(), StartOffset::Earliest),
    ])
    .await
    .unwrap();
    c.pause(std::slice::from_ref(&t0)).unwrap();
    assert_eq!(c.paused(), vec![t0.clone()]);
    let got = poll_n(&c, 500, 1000).await;
    assert!(got.iter().all(|r| r.partition == 1));
    assert_eq!(c.position(&t1), Some(500));
    assert_eq!(c.position(&t0), Some(0));
    // Nothing of t0 is delivered while paused, even when asked repeatedly.
    assert!(c.poll(100, Duration::from_millis(100)).await.unwrap().is_empty());
    c.resume(std::slice::from_ref(&t0)).unwrap();
    let got = poll_n(&c, 500, 1000).await;
    check_dense(&got, 1, 500);

    // Seek back into the middle of a batch (one producer call of 500 records per partition makes batches far
    // longer than one record): records from 437 again, exactly once each, none before it.
    c.seek(&t0, StartOffset::Offset(437)).await.unwrap();
    let again = poll_n(&c, 63, 1000).await;
    assert_eq!(again.first().unwrap().offset, 437);
    assert_eq!(again.last().unwrap().offset, 499);
    assert_eq!(again.len(), 63);
    assert_eq!(c.position(&t0), Some(500));
    c.close().await.unwrap();
    // close wakes a pending poll at once and it returns nothing.
    assert!(c.poll(10, Duration::from_secs(30)).await.unwrap().is_empty());
}

/// librdkafka writes (every codec), weir reads identically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_writes_weir_reads_every_codec() {
    let Some(py) = Python::require_or_skip() else {
        return;
    };
    let broker = Kafka::shared();
    const WRITE: &str = r#"
import sys
from confluent_kafka import Producer
brokers, topic, codec = sys.argv[1], sys.argv[2], sys.argv[3]
p = Producer({'bootstrap.servers': brokers, 'compression.codec': codec, 'linger.ms': 5, 'message.max.bytes': 4194304})
errors = []
def report(err, msg):
    if err is not None:
        errors.append(str(err))
for i in range(300):
    key = None if i % 5 == 0 else ('k%d' % i).encode()
    value = None if i % 13 == 0 else (b'' if i % 13 == 1 else (('v%d-' % i) * (i % 40 + 1)).encode())
    headers = [('h', b'\x00\x01' + bytes([i % 256])), ('n', None)] if i % 4 == 0 else None
    p.produce(topic, value=value, key=key, partition=i % 2, headers=headers, on_delivery=report)
p.produce(topic, value=bytes((j * 7) % 256 for j in range(1 << 20)), key=b'big', partition=0, on_delivery=report)
assert p.flush(30) == 0
assert not errors, errors
"#;
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = unique_topic(&format!("r2w-{codec}"));
        // Room for the 1 MiB record, uncompressed (the broker's default limit is 1 MiB per batch).
        broker.create_topic_with(&topic, 2, &[("max.message.bytes", "4194304")]);
        let out = py.run_script(WRITE, &[&broker.bootstrap(), &topic, codec]);
        assert!(
            out.status.success(),
            "{codec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut cfg = consumer_config(broker).with_partition_buffer(4 << 20);
        cfg.set("weir.memory.budget.bytes", "16777216").unwrap();
        let c = Consumer::new(cfg).unwrap();
        c.assign(&[
            (TopicPartition::new(topic.as_str(), 0), StartOffset::Earliest),
            (TopicPartition::new(topic.as_str(), 1), StartOffset::Earliest),
        ])
        .await
        .unwrap();
        let got = poll_n(&c, 301, 1000).await;
        assert_eq!(got.len(), 301, "{codec}");
        let mut seen = BTreeMap::new();
        for r in &got {
            if r.key.as_deref() == Some(b"big") {
                let want: Vec<u8> = (0..1 << 20).map(|j: u32| ((j * 7) % 256) as u8).collect();
                assert_eq!(r.value.as_deref(), Some(&want[..]), "{codec}: 1 MiB value");
                continue;
            }
            // Partition p holds i = p, p+2, ... in order, so the i-th record of partition p is i*2+p.
            let i = (r.offset * 2 + r.partition as i64) as usize;
            let key = (i % 5 != 0).then(|| format!("k{i}").into_bytes());
            let value = match i % 13 {
                0 => None,
                1 => Some(Vec::new()),
                _ => Some(format!("v{i}-").repeat(i % 40 + 1).into_bytes()),
            };
            assert_eq!(r.key.as_deref(), key.as_deref(), "{codec}: key of record {i}");
            assert_eq!(
                r.value.as_deref(),
                value.as_deref(),
                "{codec}: value of record {i}"
            );
            let headers: Vec<(String, Option<Vec<u8>>)> = r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.as_ref().map(|v| v.to_vec())))
                .collect();
            let want_h = if i % 4 == 0 {
                vec![
                    ("h".to_string(), Some(vec![0, 1, (i % 256) as u8])),
                    ("n".to_string(), None),
                ]
            } else {
                vec![]
            };
            assert_eq!(headers, want_h, "{codec}: headers of record {i}");
            assert!(seen.insert(i, ()).is_none(), "{codec}: duplicate {i}");
        }
        assert_eq!(seen.len(), 300, "{codec}");
        c.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_partition_streams_and_the_record_stream() {
    use futures::StreamExt;
    let (broker, topic) = broker_with_topic("streams", 4);
    produce(broker, &topic, 4, 700).await;
    let c =
        std::sync::Arc::new(Consumer::new(consumer_config(broker).with_partition_buffer(16 * 1024)).unwrap());
    let tps = assign_from_earliest(&c, &topic, 4).await;

    // Partitions 0 and 1 each get their own task; 2 and 3 go through the shared record stream.
    let mut tasks = Vec::new();
    for tp in &tps[..2] {
        let mut s = Box::pin(c.partition_stream(tp, 64).unwrap());
        let p = tp.partition;
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < 700 {
                let batch = tokio::time::timeout(Duration::from_secs(30), s.next())
                    .await
                    .unwrap()
                    .unwrap();
                assert!(batch.iter().all(|r| r.partition == p));
                got.extend(batch);
            }
            got
        }));
    }
    let mut rest = Vec::new();
    {
        let mut s = Box::pin(c.stream(100));
        while rest.len() < 1400 {
            let r = tokio::time::timeout(Duration::from_secs(30), s.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert!(
                r.partition >= 2,
                "a detached partition went through the shared stream"
            );
            rest.push(r);
        }
    }
    for p in [2, 3] {
        let offsets: Vec<i64> = rest
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, (0..700).collect::<Vec<i64>>(), "partition {p}");
    }
    let mut own = Vec::new();
    for t in tasks {
        own.extend(t.await.unwrap());
    }
    for p in [0, 1] {
        // Each partition's own task saw its records in order, exactly once.
        let offsets: Vec<i64> = own
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect();
        assert_eq!(offsets, (0..700).collect::<Vec<i64>>(), "partition {p}");
    }
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_handle_pause_and_resume() {
    let (broker, topic) = broker_with_topic("handle", 1);
    produce(broker, &topic, 1, 300).await;
    let tp = TopicPartition::new(topic.as_str(), 0);
    let c = Consumer::new(consumer_config(broker)).unwrap();
    c.assign(&[(tp.clone(), StartOffset::Earliest)]).await.unwrap();
    let h = c.partition(&tp).unwrap();
    h.pause().unwrap();
    assert!(h.is_paused() && c.paused() == vec![tp.clone()]);
    assert!(c.poll(10, Duration::from_millis(200)).await.unwrap().is_empty());
    h.resume().unwrap();
    check_dense(&poll_n(&c, 300, 1000).await, 1, 300);
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_paused_partitions_never_starve_the_others() {
    let (broker, topic) = broker_with_topic("fair", 4);
    produce(broker, &topic, 4, 2000).await;
    // 1 MiB buffers would let three partitions take the whole 256 KiB budget; the fair share is 64 KiB each
    // (fixed watermarks; rate-sized buffers are covered by rate_sized_buffers.rs).
    let mut cfg = consumer_config(broker).with_partition_buffer(1 << 20);
    cfg.memory_budget = 256 * 1024;
    cfg.set("weir.buffer.target.ms", "0").unwrap();
    let c = Consumer::new(cfg).unwrap();
    let tps = assign_from_earliest(&c, &topic, 4).await;
    c.pause(&tps[3..]).unwrap();
    // Let partitions 0..3 fill their buffers without delivering anything.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while (0..3).any(|p| c.partition_view(&tps[p]).unwrap().buffered_bytes < 48 * 1024) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "buffers did not fill: {:?}",
            c.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await; // waiting for a condition, bounded by the deadline
    }
    assert!(c.buffered_bytes() <= 256 * 1024);
    c.pause(&tps[..3]).unwrap();
    c.resume(&tps[3..]).unwrap();
    let got = poll_n(&c, 2000, 500).await;
    assert!(
        got.iter().all(|r| r.partition == 3),
        "a paused partition delivered"
    );
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..2000).collect::<Vec<i64>>()
    );
    assert!(c.buffered_bytes() <= 256 * 1024);
    c.close().await.unwrap();
}

/// A partition whose buffer is one batch short of its high watermark is full: a stalled application's consumer
/// stops fetching it (instead of fetching the same batch again and again, which it cannot take), and fetches it
/// again once the application drains it to the low watermark. Nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_one_batch_short_of_full_is_not_fetched_again_until_drained() {
    let (broker, topic) = broker_with_topic("one-batch-short", 1);
    // Batches of about 64 KiB of 1 KiB records; a 200 KiB buffer takes two (~144 KiB in memory), and the
    // room left (~56 KiB) is less than the third.
    let mut pcfg = ProducerConfig::new(&broker.bootstrap());
    pcfg.set("batch.size", "65536").unwrap();
    pcfg.set("linger.ms", "50").unwrap();
    let producer = Producer::new(pcfg).unwrap();
    let mut ds = Vec::new();
    for i in 0..600 {
        let value = format!("{i:06}-{}", "v".repeat(1017));
        ds.push(
            producer
                .send(ProducerRecord::new(&topic, value).partition(0))
                .await
                .unwrap(),
        );
    }
    for d in ds {
        d.await.unwrap();
    }
    producer.close().await.unwrap();

    let c = Consumer::new(consumer_config(broker).with_partition_buffer(200 * 1024)).unwrap();
    let tps = assign_from_earliest(&c, &topic, 1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let view = c.partition_view(&tps[0]).unwrap();
        if view.backpressured {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the partition never counted as full: {view:?} ({} fetches)",
            c.stats().fetches
        );
        tokio::time::sleep(Duration::from_millis(5)).await; // waiting for a condition, bounded by the deadline
    }
    let view = c.partition_view(&tps[0]).unwrap();
    assert!(
        view.buffered_bytes < 200 * 1024,
        "full one batch short of the high watermark, not at it: {view:?}"
    );
    // Stalled: no fetch at all while nothing is delivered (before, the same batch was fetched in a loop,
    // thousands of times a second).
    let fetches = c.stats().fetches;
    tokio::time::sleep(Duration::from_millis(300)).await; // a window in which nothing may happen
    assert!(
        c.stats().fetches <= fetches + 1,
        "fetched while full: {} fetches in 300 ms",
        c.stats().fetches - fetches
    );
    let got = poll_n(&c, 600, 100).await;
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..600).collect::<Vec<i64>>()
    );
    c.close().await.unwrap();
}

/// Resuming a partition with nothing buffered wakes no one; resuming many partitions with records buffered wakes
/// a waiting `poll` once. Pausing or resuming partitions that are not assigned says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_wakes_poll_once_and_only_for_buffered_records() {
    let (broker, topic) = broker_with_topic("wakeups", 8);
    produce(broker, &topic, 4, 50).await; // partitions 0..4 get records, 4..8 stay empty
    let c = std::sync::Arc::new(Consumer::new(consumer_config(broker)).unwrap());
    let tps = assign_from_earliest(&c, &topic, 8).await;
    // Partitions 0..4 fetch their records (one response each: far below the buffer), then are paused full.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tps[..4]
        .iter()
        .any(|tp| c.partition_buffered_bytes(tp) == Some(0))
    {
        assert!(tokio::time::Instant::now() < deadline, "records did not arrive");
        tokio::time::sleep(Duration::from_millis(5)).await; // waiting for a condition, bounded by the deadline
    }
    c.pause(&tps[..4]).unwrap();
    // A poll serves the delivery queue: the paused partitions leave it, nothing is delivered.
    assert!(c.poll(10, Duration::from_millis(100)).await.unwrap().is_empty());
    let before = c.stats().delivery_wakeups;

    // Empty partitions, resumed one by one, through handles and in a batch (their fetchers stay live).
    let handles: Vec<_> = tps[4..].iter().map(|tp| c.partition(tp).unwrap()).collect();
    for _ in 0..1000 {
        for (tp, h) in tps[4..].iter().zip(&handles) {
            c.pause(std::slice::from_ref(tp)).unwrap();
            c.resume(std::slice::from_ref(tp)).unwrap();
            h.pause().unwrap();
            h.resume().unwrap();
        }
        c.pause(&tps[4..]).unwrap();
        c.resume(&tps[4..]).unwrap();
    }
    assert_eq!(
        c.stats().delivery_wakeups,
        before,
        "a resume with nothing buffered woke poll"
    );

    // Four partitions with records buffered, resumed in one call while a poll waits: one wake-up.
    let poller = tokio::spawn({
        let c = c.clone();
        async move { poll_n(&c, 200, 1000).await }
    });
    c.resume(&tps[..4]).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(60), poller)
        .await
        .expect("poll woken")
        .unwrap();
    check_dense(&got, 4, 50);
    assert_eq!(
        c.stats().delivery_wakeups,
        before + 1,
        "one wake-up for one resume call"
    );

    // Not assigned: named in the error, the assigned ones are still paused.
    let gone = TopicPartition::new(topic.as_str(), 99);
    let err = c.pause(&[tps[0].clone(), gone.clone()]).unwrap_err();
    assert_eq!(err.partitions, vec![gone.clone()]);
    assert!(c.paused().contains(&tps[0]));
    assert_eq!(
        c.resume(std::slice::from_ref(&gone)).unwrap_err().partitions,
        vec![gone]
    );
    c.unassign(&tps[4..5]);
    assert_eq!(handles[0].pause().unwrap_err().partitions, vec![tps[4].clone()]);
    assert!(handles[0].resume().is_err());
    c.close().await.unwrap();
}

/// Start offsets by timestamp and from the end, as Kafka answers them: a timestamp before every record starts at
/// the first, one after every record at the end of the log (Kafka finds no offset; weir falls back to the end);
/// `FromEnd(n)` starts exactly n records before the end, and never before the log start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_by_timestamp_and_from_end() {
    let (broker, topic) = broker_with_topic("by-time", 4);
    produce(broker, &topic, 4, 10).await;
    let c = Consumer::new(consumer_config(broker)).unwrap();
    let tp: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new(topic.as_str(), p)).collect();
    let future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 3_600_000;
    c.assign(&[
        (tp[0].clone(), StartOffset::Timestamp(0)),
        (tp[1].clone(), StartOffset::FromEnd(3)),
        (tp[2].clone(), StartOffset::FromEnd(1000)),
        (tp[3].clone(), StartOffset::Timestamp(future)),
    ])
    .await
    .unwrap();
    assert_eq!(c.position(&tp[0]), Some(0), "before every record: the first");
    assert_eq!(c.position(&tp[1]), Some(7), "three before the end");
    assert_eq!(c.position(&tp[2]), Some(0), "not before the log start");
    assert_eq!(c.position(&tp[3]), Some(10), "after every record: the end");
    let got = poll_n(&c, 23, 100).await;
    let offsets = |p: i32| {
        got.iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect::<Vec<_>>()
    };
    assert_eq!(offsets(0), (0..10).collect::<Vec<_>>());
    assert_eq!(offsets(1), vec![7, 8, 9]);
    assert_eq!(offsets(2), (0..10).collect::<Vec<_>>());
    assert!(offsets(3).is_empty());
    c.close().await.unwrap();
}

/// KIP-227 with the real broker: once a session is established, fetches are incremental; a paused partition
/// leaves the session and comes back on resume with nothing lost or repeated; the broker never refuses the
/// session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sessions_are_incremental_and_paused_partitions_leave_and_return() {
    let (broker, topic) = broker_with_topic("sessions", 4);
    produce_range(broker, &topic, 4, 0..200).await;
    let c = Consumer::new(consumer_config(broker)).unwrap();
    let tps = assign_from_earliest(&c, &topic, 4).await;
    check_dense(&poll_n(&c, 800, 1000).await, 4, 200);
    // Idle partitions: the fetchers keep long-polling the broker, in their sessions.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while c.stats().incremental_fetches < 4 {
        assert!(tokio::time::Instant::now() < deadline, "{:?}", c.stats());
        assert!(c.poll(10, Duration::from_millis(100)).await.unwrap().is_empty());
    }
    let before = c.stats();
    c.pause(&tps[..1]).unwrap();
    produce_range(broker, &topic, 4, 200..300).await;
    let got = poll_n(&c, 300, 1000).await;
    assert!(
        got.iter().all(|r| r.partition != 0),
        "a paused partition delivered"
    );
    // The fetch that carried those records may have been in flight, with partition 0 in it, when the pause
    // landed; the next one leaves partition 0 out of its session (counted when the broker answers it).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while c.stats().forgotten_partitions == before.forgotten_partitions {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the paused partition never left a session: {:?}",
            c.stats()
        );
        assert!(c.poll(10, Duration::from_millis(100)).await.unwrap().is_empty());
    }
    c.resume(&tps[..1]).unwrap();
    let got = poll_n(&c, 100, 1000).await;
    assert_eq!(
        got.iter().map(|r| (r.partition, r.offset)).collect::<Vec<_>>(),
        (200..300).map(|o| (0, o)).collect::<Vec<_>>()
    );
    let after = c.stats();
    assert!(
        after.incremental_fetches > before.incremental_fetches,
        "{after:?}"
    );
    assert_eq!(after.fetch_session_errors, 0, "{after:?}");
    c.close().await.unwrap();
}

/// Long polling with the default `fetch.wait.max.ms` (500 ms): the broker holds a fetch of an idle partition
/// until a record arrives and answers then, so a record is delivered long before the max wait. Twenty records,
/// each produced into the idle partition once the previous one was delivered; the median delay from the
/// producer's acknowledgement to delivery is far below 500 ms (a fetch that waited out its max wait would
/// put it at or above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_delivers_a_new_record_well_before_the_max_wait() {
    let (broker, topic) = broker_with_topic("long-poll", 1);
    let c = Consumer::new(consumer_config(broker)).unwrap();
    assign_from_earliest(&c, &topic, 1).await;
    let producer = Producer::new(ProducerConfig::new(&broker.bootstrap())).unwrap();
    let mut delays = Vec::new();
    for i in 0..20 {
        // The partition is idle: nothing is buffered, the fetchers wait at the broker.
        assert!(c.poll(10, Duration::from_millis(50)).await.unwrap().is_empty());
        let d = producer
            .send(ProducerRecord::new(topic.as_str(), format!("r{i}")).partition(0))
            .await
            .unwrap();
        d.await.unwrap();
        let acked = std::time::Instant::now();
        let got = poll_n(&c, 1, 10).await;
        delays.push(acked.elapsed());
        assert_eq!(got[0].offset, i);
    }
    producer.close().await.unwrap();
    delays.sort();
    let median = delays[delays.len() / 2];
    assert!(
        median < Duration::from_millis(250),
        "median delay {median:?} (all: {delays:?}): fetches wait out fetch.wait.max.ms"
    );
    c.close().await.unwrap();
}

/// OffsetOutOfRange from the real broker (a position past the end of the log), under each reset policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_out_of_range_under_each_reset_policy() {
    let (broker, topic) = broker_with_topic("oor", 3);
    produce_range(broker, &topic, 3, 0..5).await;
    let tp = |p| TopicPartition::new(topic.as_str(), p);
    let consumer = |policy: &str| {
        let mut cfg = consumer_config(broker);
        cfg.set("auto.offset.reset", policy).unwrap();
        Consumer::new(cfg).unwrap()
    };

    // earliest: from the start of the log.
    let c = consumer("earliest");
    c.assign(&[(tp(0), StartOffset::Offset(1000))]).await.unwrap();
    let got = poll_n(&c, 5, 100).await;
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..5).collect::<Vec<_>>()
    );
    c.close().await.unwrap();

    // latest: from the end; only what is produced afterwards is delivered.
    let c = consumer("latest");
    c.assign(&[(tp(1), StartOffset::Offset(1000))]).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while c.position(&tp(1)) != Some(5) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "position {:?}",
            c.position(&tp(1))
        );
        assert!(c.poll(10, Duration::from_millis(50)).await.unwrap().is_empty());
    }
    let producer = Producer::new(ProducerConfig::new(&broker.bootstrap())).unwrap();
    for i in 5..8 {
        let d = producer
            .send(ProducerRecord::new(topic.as_str(), format!("p1-r{i}-")).partition(1))
            .await
            .unwrap();
        d.await.unwrap();
    }
    producer.close().await.unwrap();
    let got = poll_n(&c, 3, 100).await;
    assert_eq!(got.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![5, 6, 7]);
    c.close().await.unwrap();

    // none: an error naming the partition, which stays stopped until a seek; other partitions go on.
    let c = consumer("none");
    c.assign(&[
        (tp(2), StartOffset::Offset(1000)),
        (tp(0), StartOffset::Offset(0)),
    ])
    .await
    .unwrap();
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let err = loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no OffsetOutOfRange error"
        );
        match c.poll(100, Duration::from_millis(100)).await {
            Ok(batch) => records.extend(batch),
            Err(e) => break e,
        }
    };
    assert_eq!(
        err.kafka_code(),
        Some(weir::error::KafkaCode::OffsetOutOfRange),
        "{err}"
    );
    assert!(err.to_string().contains(&format!("{topic}-2")), "{err}");
    records.extend(poll_n(&c, 5 - records.len(), 100).await);
    assert!(records.iter().all(|r| r.partition == 0));
    c.seek(&tp(2), StartOffset::Offset(2)).await.unwrap();
    let got = poll_n(&c, 3, 100).await;
    assert_eq!(
        got.iter().map(|r| (r.partition, r.offset)).collect::<Vec<_>>(),
        vec![(2, 2), (2, 3), (2, 4)]
    );
    c.close().await.unwrap();
}

/// Batches larger than a partition's share of the budget (80 partitions under a 2 MiB budget: about 26 KiB of
/// memory, half that on the wire, each, for batches of about 80 KB): Kafka returns a batch larger than a
/// partition's ask whole only for the first partition of a response and nothing for the others, so a consumer
/// asking every partition for its share alone moves about one partition per fetch. Every partition gets its
/// records, responses carrying several partitions' batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_larger_than_the_fair_share_flow_from_every_partition() {
    const PARTITIONS: i32 = 80;
    const PER: usize = 1000;
    let (broker, topic) = broker_with_topic("big-batches", PARTITIONS);
    let mut pcfg = ProducerConfig::new(&broker.bootstrap());
    pcfg.set("batch.size", "262144").unwrap();
    pcfg.set("linger.ms", "200").unwrap();
    let producer = Producer::new(pcfg).unwrap();
    let mut sent = Vec::new();
    for i in 0..PER {
        for p in 0..PARTITIONS {
            let value = format!("p{p}-r{i}-{}", "x".repeat(100));
            sent.push(
                producer
                    .send(ProducerRecord::new(topic.as_str(), value).partition(p))
                    .await
                    .unwrap(),
            );
        }
    }
    for d in sent {
        d.await.unwrap();
    }
    producer.close().await.unwrap();

    let mut cfg = consumer_config(broker);
    cfg.memory_budget = 2 << 20;
    let c = Consumer::new(cfg).unwrap();
    assign_from_earliest(&c, &topic, PARTITIONS).await;
    let got = poll_n(&c, PARTITIONS as usize * PER, 10_000).await;
    check_dense(&got, PARTITIONS, PER);
    let stats = c.stats();
    eprintln!("{stats:?}");
    assert!(
        stats.fetches < PARTITIONS as u64,
        "{} fetches for {PARTITIONS} partitions of one or two batches each: about one partition per response",
        stats.fetches
    );
    c.close().await.unwrap();
}
