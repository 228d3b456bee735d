//! weir and franz-go (github.com/twmb/franz-go, the peer in crates/weir-testkit/peers/go) against real Apache
//! Kafka: each reads exactly what the other writes — partitions, offsets, keys, values, headers, timestamps —
//! with every compression codec on the writing side.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{Compression, Producer, ProducerRecord};
use weir_testkit::peers::franz_go::{json_number, run_measured, FranzGo, Input, PeerRecord};
use weir_testkit::{unique_name, Kafka};

const PARTITIONS: i32 = 3;
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// The mix each direction is checked with: null, empty and binary keys; null, empty, binary and 256 KiB
/// values; no headers, several headers with repeated names, null and empty header values; all partitions.
fn samples() -> Vec<PeerRecord> {
    (0..300u32)
        .map(|i| {
            let key: Option<Vec<u8>> = match i % 5 {
                0 => None,
                1 => Some(Vec::new()),
                2 => Some(vec![0, 0xff, (i % 256) as u8, b'\n', b'\t']),
                _ => Some(format!("key-{i}").into_bytes()),
            };
            let value: Option<Vec<u8>> = match i % 13 {
                0 => None,
                1 => Some(Vec::new()),
                2 => Some((0..=255u8).cycle().take(1000 + i as usize).collect()),
                3 if i < 100 => Some(vec![b'z'; 256 * 1024]),
                _ => Some(format!("value-{i}-{}", "x".repeat((i % 70) as usize)).into_bytes()),
            };
            let mut r = PeerRecord {
                partition: (i % PARTITIONS as u32) as i32,
                offset: -1,
                timestamp: -1,
                key,
                value,
                headers: Vec::new(),
            };
            if i % 3 == 0 {
                r = r
                    .header("trace", Some(format!("t-{i}").as_bytes()))
                    .header("null", None)
                    .header("empty", Some(b""))
                    .header("trace", Some(&[1, 2, 3, 0xfe]));
            }
            r
        })
        .collect()
}

fn codec(name: &str) -> Compression {
    name.parse()
        .unwrap_or_else(|_| panic!("weir does not know codec {name}"))
}

/// Compares what a reader got with what was written at `placed` (partition, offset of each sample, in order).
fn check_same(
    what: &str,
    written: &[PeerRecord],
    placed: &[(i32, i64)],
    read: &BTreeMap<(i32, i64), PeerRecord>,
    timestamps: Option<&[i64]>,
) {
    assert_eq!(placed.len(), written.len(), "{what}: every record acknowledged");
    assert_eq!(read.len(), written.len(), "{what}: record count");
    // Offsets are dense per partition and follow the order of writing.
    let mut next = BTreeMap::new();
    for (i, (w, &(p, o))) in written.iter().zip(placed).enumerate() {
        assert_eq!(p, w.partition, "{what}: record {i} landed in partition {p}");
        let n = next.entry(p).or_insert(0i64);
        assert_eq!(o, *n, "{what}: record {i} offset");
        *n += 1;
        let r = read
            .get(&(p, o))
            .unwrap_or_else(|| panic!("{what}: record {i} ({p}@{o}) not read"));
        assert_eq!(r.key, w.key, "{what}: key of record {i} ({p}@{o})");
        assert_eq!(r.value, w.value, "{what}: value of record {i} ({p}@{o})");
        assert_eq!(r.headers, w.headers, "{what}: headers of record {i} ({p}@{o})");
        if let Some(ts) = timestamps {
            assert_eq!(r.timestamp, ts[i], "{what}: timestamp of record {i} ({p}@{o})");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn franz_go_reads_what_weir_writes() {
    let fg = FranzGo::require();
    let kafka = Kafka::shared();
    let written = samples();
    for name in CODECS {
        let topic = unique_name(&format!("fg-from-weir-{name}"));
        kafka.create_topic(&topic, PARTITIONS);
        let mut cfg = ProducerConfig::new(&kafka.bootstrap());
        cfg.compression = codec(name);
        let producer = Producer::new(cfg).unwrap();
        // Explicit create times, distinct per record, so that franz-go must decode each one's delta.
        let base = 1_700_000_000_000i64;
        let timestamps: Vec<i64> = (0..written.len() as i64).map(|i| base + i * 1_001).collect();
        let mut deliveries = Vec::new();
        for (w, ts) in written.iter().zip(&timestamps) {
            let mut r = ProducerRecord::tombstone(&topic)
                .partition(w.partition)
                .timestamp(*ts);
            r.key = w.key.clone().map(Bytes::from);
            r.value = w.value.clone().map(Bytes::from);
            for (k, v) in &w.headers {
                r = r.header(k.clone(), v.clone().map(Bytes::from));
            }
            deliveries.push(producer.send(r).await.unwrap());
        }
        let mut placed = Vec::new();
        for d in deliveries {
            let md = d.await.unwrap();
            placed.push((md.partition, md.offset));
        }
        producer.close().await.unwrap();

        let read: BTreeMap<(i32, i64), PeerRecord> = tokio::task::spawn_blocking({
            let (fg, b, t, n) = (fg.clone(), kafka.bootstrap(), topic.clone(), written.len() as u64);
            move || fg.consume_records(&b, &t, n)
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| ((r.partition, r.offset), r))
        .collect();
        check_same(
            &format!("weir ({name}) -> franz-go {}", fg.version()),
            &written,
            &placed,
            &read,
            Some(&timestamps),
        );
    }
}

/// Reads `count` records of a `partitions`-partition topic from the start with weir.
async fn weir_read_all(bootstrap: &str, topic: &str, partitions: i32, count: usize) -> Vec<PeerRecord> {
    let mut cfg = ConsumerConfig::new(bootstrap);
    cfg.set("fetch.wait.max.ms", "50").unwrap();
    let consumer = Consumer::new(cfg).unwrap();
    let tps: Vec<_> = (0..partitions)
        .map(|p| (TopicPartition::new(topic, p), StartOffset::Earliest))
        .collect();
    consumer.assign(&tps).await.unwrap();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while out.len() < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "weir read {} of {count} records of {topic} in 60 s",
            out.len()
        );
        for r in consumer.poll(1000, Duration::from_millis(500)).await.unwrap() {
            out.push(PeerRecord {
                partition: r.partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key.map(|b| b.to_vec()),
                value: r.value.map(|b| b.to_vec()),
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k, v.map(|b| b.to_vec())))
                    .collect(),
            });
        }
    }
    consumer.close().await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_reads_what_franz_go_writes() {
    let fg = FranzGo::require();
    let kafka = Kafka::shared();
    let written = samples();
    for name in CODECS {
        let topic = unique_name(&format!("weir-from-fg-{name}"));
        kafka.create_topic(&topic, PARTITIONS);
        let (placed, theirs) = tokio::task::spawn_blocking({
            let (fg, b, t, w) = (fg.clone(), kafka.bootstrap(), topic.clone(), written.clone());
            move || {
                let placed = fg.produce_records_compressed(&b, &t, &w, name);
                // franz-go's own reading, for the timestamps it set at produce time.
                let theirs = fg.consume_records(&b, &t, w.len() as u64);
                (placed, theirs)
            }
        })
        .await
        .unwrap();
        let got = weir_read_all(&kafka.bootstrap(), &topic, PARTITIONS, written.len()).await;
        assert_eq!(got.len(), written.len(), "weir read exactly what was written");
        // weir delivers each partition in offset order.
        let mut last = BTreeMap::new();
        for r in &got {
            let prev = last.insert(r.partition, r.offset);
            assert!(
                prev.is_none_or(|p| p + 1 == r.offset),
                "partition {} out of order at {}",
                r.partition,
                r.offset
            );
        }
        let read: BTreeMap<(i32, i64), PeerRecord> =
            got.into_iter().map(|r| ((r.partition, r.offset), r)).collect();
        let mut ts = vec![0i64; written.len()];
        let theirs: BTreeMap<(i32, i64), i64> = theirs
            .iter()
            .map(|r| ((r.partition, r.offset), r.timestamp))
            .collect();
        for (i, po) in placed.iter().enumerate() {
            ts[i] = theirs[po];
        }
        check_same(
            &format!("franz-go {} ({name}) -> weir", fg.version()),
            &written,
            &placed,
            &read,
            Some(&ts),
        );
    }
}

/// A larger, unkeyed volume through franz-go's sticky partitioner: weir reads every record once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_reads_a_franz_go_bulk_produce() {
    let fg = FranzGo::require();
    let kafka = Kafka::shared();
    let topic = unique_name("weir-from-fg-bulk");
    kafka.create_topic(&topic, 6);
    const N: u64 = 50_000;
    let out = tokio::task::spawn_blocking({
        let (fg, b, t) = (fg.clone(), kafka.bootstrap(), topic.clone());
        move || {
            run_measured(
                fg.produce_cmd(&b, &t, N, 100, false),
                Input::Null,
                false,
                Duration::from_secs(120),
            )
        }
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stdout);
    assert_eq!(json_number(&summary, "records"), Some(N as f64));
    let got = weir_read_all(&kafka.bootstrap(), &topic, 6, N as usize).await;
    let mut seen = vec![false; N as usize];
    for r in &got {
        let v = r.value.as_deref().unwrap();
        assert_eq!(v.len(), 100);
        // The peer's values start with the record number, zero-padded to 10 digits.
        let i: usize = std::str::from_utf8(&v[..10]).unwrap().parse().unwrap();
        assert!(!seen[i], "record {i} read twice");
        seen[i] = true;
    }
    assert!(seen.iter().all(|&s| s), "every record read");
}
