//! weir against Apache Kafka's own Java client, the reference peer (`weir_testkit::peers::java`: kafka-clients at
//! the broker's version), on the shared single-node Kafka:
//!
//! * records written by weir with each codec are read byte for byte by the Java consumer (keys, values, null key,
//!   null and empty values, headers with null and empty values, explicit and default timestamps), and records
//!   the Java producer writes with each codec are read identically by weir; the log segments show batches of the
//!   codec asked for;
//! * keyed records without a partition land where Java's partitioner puts them;
//! * weir and Java members share a classic group (range, cooperative-sticky; either one first, hence leading),
//!   consume everything exactly once together, and when one leaves the other takes every partition over at the
//!   committed offsets;
//! * offsets committed by weir are what Java reads, and offsets committed by Java are where weir starts.
//!
//! Needs `scripts/setup-test-env` (Kafka and the Java peer). `WEIR_LOG=weir=debug` logs weir;
//! `WEIR_JAVA_PEER_LOG=info` makes the Java client log more (to stderr, shown in failure messages).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, ConsumerRecord, StartOffset, TopicPartition};
use weir::group::{GroupConfig, GroupConsumer};
use weir::{Compression, Producer, ProducerRecord};
use weir_testkit::peers::java::{
    assignment_of, committed_of, records_of, ConsumedRecord, JavaPeer, Member, PeerRecord,
};
use weir_testkit::{unique_name, Kafka};

/// Bound of every wait for the cluster or a peer in these tests.
const WAIT: Duration = Duration::from_secs(60);

fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("WEIR_LOG"))
        .with_test_writer()
        .try_init();
}

/// Runs a blocking call to the Java peer without stalling the runtime's other tasks (the weir clients').
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// `Some(bytes)` as a short description for failure messages (length and a prefix).
fn show(b: &Option<Vec<u8>>) -> String {
    match b {
        None => "null".into(),
        Some(b) if b.len() <= 48 => format!("{:?}", String::from_utf8_lossy(b)),
        Some(b) => format!(
            "{} bytes starting {:?}",
            b.len(),
            String::from_utf8_lossy(&b[..32])
        ),
    }
}

/// Asserts equal bytes with a readable message (large values are not printed whole).
fn assert_bytes(what: &str, got: &Option<Vec<u8>>, want: &Option<Vec<u8>>) {
    if got != want {
        let diff = match (got, want) {
            (Some(g), Some(w)) => {
                let at = g
                    .iter()
                    .zip(w.iter())
                    .position(|(a, b)| a != b)
                    .unwrap_or(g.len().min(w.len()));
                format!(" (first difference at byte {at})")
            }
            _ => String::new(),
        };
        panic!("{what}: got {}, want {}{diff}", show(got), show(want));
    }
}

/// The mix every codec is checked with: keyed records and records with an explicit partition; null key, empty
/// key; null, empty, binary and 300 kB values; no headers, headers with null and empty values, repeated, empty
/// and non-ASCII header keys; explicit create times (around `now`) and a few left to the producer.
fn sample(now: i64) -> Vec<PeerRecord> {
    let mut v = Vec::new();
    for i in 0..150u32 {
        let key = match i % 9 {
            0 => None,
            1 => Some(Vec::new()),
            2 => Some(vec![0, 0xff, b'\n', b'"', b'\\', 0x80]),
            _ => Some(format!("key-{i}").into_bytes()),
        };
        let value = match i % 11 {
            0 => None,
            1 => Some(Vec::new()),
            2 => Some((0..=255u8).collect()),
            _ => Some(format!("value-{i}-{}", "x".repeat((i % 50) as usize)).into_bytes()),
        };
        let headers: Vec<(String, Option<Vec<u8>>)> = match i % 4 {
            0 => vec![],
            1 => vec![("h1".into(), Some(vec![0, 1, 2, 255])), ("h-null".into(), None)],
            2 => vec![
                ("dup".into(), Some(b"a".to_vec())),
                ("dup".into(), Some(b"b".to_vec())),
                ("empty".into(), Some(Vec::new())),
                ("clé-\u{1F511}".into(), Some("välue".as_bytes().to_vec())),
            ],
            _ => vec![
                ("only-null".into(), None),
                (String::new(), Some(b"empty key".to_vec())),
            ],
        };
        v.push(PeerRecord {
            partition: (i % 5 == 0).then_some((i % 3) as i32),
            key,
            value,
            headers,
            timestamp: (i % 13 != 0).then_some(now - 60_000 + i as i64),
        });
    }
    // 300 kB, compressible but not trivially.
    let big: Vec<u8> = (0..300_000u32)
        .map(|i| ((i / 7) % 251) as u8 ^ (i % 3) as u8)
        .collect();
    v.push(PeerRecord {
        partition: Some(1),
        key: Some(b"big".to_vec()),
        value: Some(big),
        headers: vec![("size".into(), Some(b"300000".to_vec()))],
        timestamp: Some(now - 1),
    });
    v
}

fn weir_record(topic: &str, r: &PeerRecord) -> ProducerRecord {
    let mut w = ProducerRecord::tombstone(topic);
    w.partition = r.partition;
    w.key = r.key.clone().map(Bytes::from);
    w.value = r.value.clone().map(Bytes::from);
    w.headers = r
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().map(Bytes::from)))
        .collect();
    w.timestamp = r.timestamp;
    w
}

/// Sends `records` with a weir producer compressing with `codec`; the (partition, offset) of each.
async fn weir_produce(
    kafka: &Kafka,
    topic: &str,
    codec: Compression,
    records: &[PeerRecord],
) -> Vec<(i32, i64)> {
    let mut cfg = ProducerConfig::new(&kafka.bootstrap());
    cfg.set("compression.type", codec.name()).unwrap();
    let producer = Producer::new(cfg).unwrap();
    let mut deliveries = Vec::new();
    for r in records {
        deliveries.push(producer.send(weir_record(topic, r)).await.unwrap());
    }
    let mut written = Vec::new();
    for (i, d) in deliveries.into_iter().enumerate() {
        let m = d
            .await
            .unwrap_or_else(|e| panic!("{codec}: record {i} not delivered: {e}"));
        written.push((m.partition, m.offset));
    }
    producer.close().await.unwrap();
    written
}

/// The codec of every record batch in the log segments of `topic`'s partitions, read from the broker's data
/// directory (batch attributes, bits 0..=2), to check that a producer compressed as asked.
fn batch_codecs(kafka: &Kafka, topic: &str, partitions: i32) -> Vec<(i32, Compression)> {
    let node = kafka.node_ids()[0];
    let data = kafka.data_dir(node);
    let mut out = Vec::new();
    for p in 0..partitions {
        let dir = data.join(format!("{topic}-{p}"));
        let mut segments: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading the log directory {}: {e}", dir.display()))
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        segments.sort();
        for seg in segments {
            let bytes = std::fs::read(&seg).unwrap();
            let mut at = 0;
            // Batch: baseOffset i64, batchLength i32, partitionLeaderEpoch i32, magic i8, crc u32, attributes i16.
            while at + 23 <= bytes.len() {
                let len = i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap());
                if len <= 0 {
                    break;
                }
                assert_eq!(
                    bytes[at + 16],
                    2,
                    "magic of the batch at byte {at} of {}",
                    seg.display()
                );
                let attributes = i16::from_be_bytes(bytes[at + 21..at + 23].try_into().unwrap());
                let codec = Compression::from_attributes(attributes).unwrap_or_else(|| {
                    panic!("codec bits {attributes:#x} at byte {at} of {}", seg.display())
                });
                out.push((p, codec));
                at += 12 + len as usize;
            }
        }
    }
    out
}

fn assert_batches_use(kafka: &Kafka, topic: &str, partitions: i32, codec: Compression, writer: &str) {
    let codecs = batch_codecs(kafka, topic, partitions);
    assert!(!codecs.is_empty(), "no batches found in the log of {topic}");
    let wrong: Vec<_> = codecs.iter().filter(|(_, c)| *c != codec).collect();
    assert!(
        wrong.is_empty(),
        "{writer} asked for {codec}, but {} of {} batches are not: {wrong:?}",
        wrong.len(),
        codecs.len()
    );
}

async fn weir_writes_java_reads(codec: Compression) {
    init_logging();
    let kafka = Kafka::shared();
    let java = JavaPeer::require();
    let topic = unique_name(&format!("w2j-{codec}"));
    kafka.create_topic(&topic, 3);
    let t0 = now_ms();
    let records = sample(t0);
    let written = weir_produce(kafka, &topic, codec, &records).await;
    let t1 = now_ms();

    // Offsets are dense per partition, in send order.
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for (i, (p, o)) in written.iter().enumerate() {
        let n = next.entry(*p).or_insert(0);
        assert_eq!(*o, *n, "{codec}: record {i} at {p}@{o}, expected offset {n}");
        *n += 1;
    }
    assert_batches_use(kafka, &topic, 3, codec, "weir");

    let read = blocking(|| java.consume(&kafka.bootstrap(), &topic, records.len(), None, WAIT));
    let by_pos: BTreeMap<(i32, i64), &ConsumedRecord> =
        read.iter().map(|r| ((r.partition, r.offset), r)).collect();
    assert_eq!(by_pos.len(), records.len(), "{codec}: Java read a record twice");
    for (i, (r, &(p, o))) in records.iter().zip(&written).enumerate() {
        let at = format!("{codec}: record {i} at {p}@{o}");
        if let Some(want) = r.partition {
            assert_eq!(p, want, "{at}: partition");
        }
        let got = by_pos
            .get(&(p, o))
            .unwrap_or_else(|| panic!("{at}: not read by Java"));
        assert_bytes(&format!("{at}: key"), &got.key, &r.key);
        assert_bytes(&format!("{at}: value"), &got.value, &r.value);
        assert_eq!(got.headers, r.headers, "{at}: headers");
        match r.timestamp {
            Some(ts) => assert_eq!(got.timestamp, ts, "{at}: timestamp"),
            None => assert!(
                (t0..=t1).contains(&got.timestamp),
                "{at}: default timestamp {} not within the send ({t0}..={t1})",
                got.timestamp
            ),
        }
        assert_eq!(got.timestamp_type, "CreateTime", "{at}: timestamp type");
    }
}

async fn java_writes_weir_reads(codec: Compression) {
    init_logging();
    let kafka = Kafka::shared();
    let java = JavaPeer::require();
    let topic = unique_name(&format!("j2w-{codec}"));
    kafka.create_topic(&topic, 3);
    let records = sample(now_ms());
    let produced = blocking(|| java.produce(&kafka.bootstrap(), &topic, codec.name(), &records));
    assert_batches_use(kafka, &topic, 3, codec, "the Java producer");

    let mut cfg = ConsumerConfig::new(&kafka.bootstrap());
    cfg.set("fetch.max.wait.ms", "100").unwrap();
    let consumer = Consumer::new(cfg).unwrap();
    let parts: Vec<_> = (0..3)
        .map(|p| (TopicPartition::new(topic.as_str(), p), StartOffset::Earliest))
        .collect();
    consumer.assign(&parts).await.unwrap();
    let mut got: BTreeMap<(i32, i64), ConsumerRecord> = BTreeMap::new();
    let until = Instant::now() + WAIT;
    while got.len() < records.len() {
        for r in consumer.poll(1000, Duration::from_millis(200)).await.unwrap() {
            let pos = (r.partition, r.offset);
            if let Some(old) = got.insert(pos, r) {
                panic!("{codec}: weir delivered {pos:?} twice (first: {old:?})");
            }
        }
        assert!(
            Instant::now() < until,
            "{codec}: weir read {} of {} records within {WAIT:?}",
            got.len(),
            records.len()
        );
    }
    consumer.close().await.unwrap();

    for (i, (r, m)) in records.iter().zip(&produced).enumerate() {
        let at = format!("{codec}: record {i} at {}@{}", m.partition, m.offset);
        if let Some(want) = r.partition {
            assert_eq!(m.partition, want, "{at}: partition");
        }
        let w = got
            .get(&(m.partition, m.offset))
            .unwrap_or_else(|| panic!("{at}: not read by weir"));
        let key = w.key.as_ref().map(|b| b.to_vec());
        let value = w.value.as_ref().map(|b| b.to_vec());
        assert_bytes(&format!("{at}: key"), &key, &r.key);
        assert_bytes(&format!("{at}: value"), &value, &r.value);
        let headers: Vec<(String, Option<Vec<u8>>)> = w
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_ref().map(|b| b.to_vec())))
            .collect();
        assert_eq!(headers, r.headers, "{at}: headers");
        // The producer's acknowledgement carries the create time it gave records without one.
        assert_eq!(w.timestamp, r.timestamp.unwrap_or(m.timestamp), "{at}: timestamp");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_writes_java_reads_none() {
    weir_writes_java_reads(Compression::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_writes_java_reads_gzip() {
    weir_writes_java_reads(Compression::Gzip).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_writes_java_reads_snappy() {
    weir_writes_java_reads(Compression::Snappy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_writes_java_reads_lz4() {
    weir_writes_java_reads(Compression::Lz4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_writes_java_reads_zstd() {
    weir_writes_java_reads(Compression::Zstd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_writes_weir_reads_none() {
    java_writes_weir_reads(Compression::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_writes_weir_reads_gzip() {
    java_writes_weir_reads(Compression::Gzip).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_writes_weir_reads_snappy() {
    java_writes_weir_reads(Compression::Snappy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_writes_weir_reads_lz4() {
    java_writes_weir_reads(Compression::Lz4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_writes_weir_reads_zstd() {
    java_writes_weir_reads(Compression::Zstd).await;
}

/// A small xorshift generator: the keys differ from run to run, and the seed is in every failure message.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_land_where_java_puts_them() {
    init_logging();
    let kafka = Kafka::shared();
    let java = JavaPeer::require();
    let seed = (now_ms() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rng = Rng(seed);
    let mut keys: Vec<Vec<u8>> = vec![Vec::new(), b"a".to_vec(), b"key-1".to_vec(), vec![0xff; 4]];
    while keys.len() < 400 {
        let len = (rng.next() % 41) as usize;
        keys.push((0..len).map(|_| rng.next() as u8).collect());
    }
    let key_refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let partitioner = blocking(|| java.partition(7, &key_refs));

    let ours = unique_name("keys-weir");
    let theirs = unique_name("keys-java");
    kafka.create_topic(&ours, 7);
    kafka.create_topic(&theirs, 7);
    let records: Vec<PeerRecord> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| PeerRecord {
            key: Some(k.clone()),
            value: Some(i.to_string().into_bytes()),
            ..PeerRecord::default()
        })
        .collect();
    let weir_written = weir_produce(kafka, &ours, Compression::None, &records).await;
    let java_written = blocking(|| java.produce(&kafka.bootstrap(), &theirs, "none", &records));

    let mut wrong = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let (w, j, p) = (weir_written[i].0, java_written[i].partition, partitioner[i]);
        if w != p || j != p {
            wrong.push(format!(
                "key {} ({} bytes): weir {w}, Java producer {j}, Java partitioner {p}",
                hex(k),
                k.len()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} keys disagree (seed {seed:#x}):\n{}",
        wrong.len(),
        keys.len(),
        wrong.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
    // The keys spread: every partition got some.
    let used: BTreeSet<i32> = partitioner.iter().copied().collect();
    assert_eq!(used.len(), 7, "keys landed on {used:?} only (seed {seed:#x})");
}

// ---------------------------------------------------------------------------------------------------------------
// Groups

/// A weir member of `group` with the Java peer's group timing (session 10 s, heartbeat 500 ms), earliest, and
/// auto-commit every 200 ms (so also on revoke and on close) when `auto_commit`.
fn weir_member(kafka: &Kafka, group: &str, assignor: &str, auto_commit: bool) -> GroupConsumer {
    init_logging();
    let mut cfg = GroupConfig::new(&kafka.bootstrap(), group);
    for (k, v) in [
        ("partition.assignment.strategy", assignor),
        ("auto.offset.reset", "earliest"),
        ("fetch.max.wait.ms", "100"),
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "500"),
        ("enable.auto.commit", if auto_commit { "true" } else { "false" }),
        ("auto.commit.interval.ms", "200"),
    ] {
        cfg.set(k, v).unwrap();
    }
    GroupConsumer::new(cfg).unwrap()
}

fn value_of(p: i32, o: i64) -> String {
    format!("p{p}-o{o}")
}

/// Produces, to each of `partitions` partitions, the records of offsets `range` (values `p{p}-o{o}`); checks
/// that they got those offsets.
async fn produce_values(kafka: &Kafka, topic: &str, partitions: i32, range: std::ops::Range<i64>) {
    let producer = Producer::new(ProducerConfig::new(&kafka.bootstrap())).unwrap();
    let mut deliveries = Vec::new();
    for o in range {
        for p in 0..partitions {
            let d = producer
                .send(ProducerRecord::new(topic, value_of(p, o)).partition(p))
                .await
                .unwrap();
            deliveries.push((p, o, d));
        }
    }
    for (p, o, d) in deliveries {
        assert_eq!(d.await.unwrap().offset, o, "offset of {topic}-{p}");
    }
    producer.close().await.unwrap();
}

/// Polls `w` once (up to 100 ms), checking values and appending (partition, offset) to `seen`.
async fn poll_into(w: &GroupConsumer, seen: &mut Vec<(i32, i64)>) {
    for r in w.poll(500, Duration::from_millis(100)).await.unwrap() {
        assert_eq!(
            r.value.as_deref(),
            Some(value_of(r.partition, r.offset).as_bytes()),
            "weir read a wrong value"
        );
        seen.push((r.partition, r.offset));
    }
}

fn partitions_of(w: &GroupConsumer) -> BTreeSet<i32> {
    w.assignment().iter().map(|tp| tp.partition).collect()
}

/// The Java member's records, with their values checked.
fn java_records(events: &[weir_testkit::peers::java::MemberEvent]) -> Vec<(i32, i64)> {
    records_of(events)
        .into_iter()
        .map(|(p, o, v)| {
            assert_eq!(
                v,
                Some(value_of(p, o).into_bytes()),
                "Java read a wrong value at {p}@{o}"
            );
            (p, o)
        })
        .collect()
}

/// Every (partition, offset) of `0..partitions` × `0..end` seen exactly once in `a` and `b` together; the
/// message lists what is missing and what is duplicated.
fn exactly_once(a: &[(i32, i64)], b: &[(i32, i64)], partitions: i32, end: i64) -> Result<(), String> {
    let mut count: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for k in a.iter().chain(b) {
        *count.entry(*k).or_default() += 1;
    }
    let missing: Vec<_> = (0..partitions)
        .flat_map(|p| (0..end).map(move |o| (p, o)))
        .filter(|k| !count.contains_key(k))
        .collect();
    let dups: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    let extra: Vec<_> = count
        .keys()
        .filter(|(p, o)| *p >= partitions || *o >= end)
        .collect();
    if missing.is_empty() && dups.is_empty() && extra.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "missing {missing:?}; duplicated {dups:?}; unexpected {extra:?}"
        ))
    }
}

fn covered(a: &[(i32, i64)], b: &[(i32, i64)], partitions: i32, end: i64) -> bool {
    let all: BTreeSet<&(i32, i64)> = a.iter().chain(b).collect();
    (0..partitions).all(|p| (0..end).all(|o| all.contains(&(p, o))))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Weir,
    Java,
}

/// A weir member and a Java member (committing what it reads) in one classic group on a 4-partition topic.
/// `first` joins first, alone (so it leads: the coordinator makes the first member the leader), takes all four
/// partitions and reads the first 40 records; the other joins, the group splits 2/2 and together they read 80
/// more exactly once (and each only from its own partitions); then `leaver` leaves, the other takes all four
/// partitions over at the committed offsets and reads the last 40: every record exactly once, and the group's
/// committed offsets (read by Java's Admin) at the end of every partition.
async fn share_a_group(assignor: &str, first: Who, leaver: Who) {
    init_logging();
    let kafka = Kafka::shared();
    let java = JavaPeer::require();
    let bootstrap = kafka.bootstrap();
    let topic = unique_name(&format!("jgrp-{assignor}"));
    kafka.create_topic(&topic, 4);
    let group = unique_name(&format!("jg-{assignor}"));
    let all: BTreeSet<i32> = (0..4).collect();
    produce_values(kafka, &topic, 4, 0..10).await;

    let mut weir_seen: Vec<(i32, i64)> = Vec::new();
    let (w, jm): (GroupConsumer, Member) = match first {
        Who::Java => {
            let jm = java.member(&bootstrap, &group, &topic, assignor, true);
            blocking(|| {
                jm.wait_until(
                    "all 4 partitions, the first 40 records read and committed",
                    WAIT,
                    |ev| {
                        assignment_of(ev).is_some_and(|a| a.len() == 4)
                            && committed_of(ev).values().filter(|o| **o == 10).count() == 4
                    },
                )
            });
            let w = weir_member(kafka, &group, assignor, true);
            w.subscribe(&[&topic]);
            (w, jm)
        }
        Who::Weir => {
            let w = weir_member(kafka, &group, assignor, true);
            w.subscribe(&[&topic]);
            let until = Instant::now() + WAIT;
            while partitions_of(&w) != all || weir_seen.len() < 40 {
                poll_into(&w, &mut weir_seen).await;
                assert!(
                    Instant::now() < until,
                    "weir alone: partitions {:?}, {} of 40 records within {WAIT:?}",
                    partitions_of(&w),
                    weir_seen.len()
                );
            }
            let jm = java.member(&bootstrap, &group, &topic, assignor, true);
            (w, jm)
        }
    };

    // The split: two partitions each.
    let until = Instant::now() + WAIT;
    let (mine, theirs) = loop {
        poll_into(&w, &mut weir_seen).await;
        let mine = partitions_of(&w);
        let theirs = jm.assignment().unwrap_or_default();
        if mine.len() == 2 && theirs.len() == 2 {
            assert_eq!(
                mine.union(&theirs).copied().collect::<BTreeSet<_>>(),
                all,
                "weir {mine:?}, Java {theirs:?}"
            );
            break (mine, theirs);
        }
        assert!(
            Instant::now() < until,
            "no 2/2 split within {WAIT:?}: weir {mine:?}, Java {theirs:?}\n{}",
            jm.describe()
        );
    };

    // Together: 80 more records, each read once, by the partition's owner.
    produce_values(kafka, &topic, 4, 10..30).await;
    let until = Instant::now() + WAIT;
    while !covered(&weir_seen, &java_records(&jm.events()), 4, 30) {
        poll_into(&w, &mut weir_seen).await;
        let j = java_records(&jm.events());
        assert!(
            Instant::now() < until,
            "records 0..30 not all read within {WAIT:?}: {}\nweir read {} records\n{}",
            exactly_once(&weir_seen, &j, 4, 30).unwrap_err(),
            weir_seen.len(),
            jm.describe()
        );
    }
    // Anything read twice would arrive now.
    for _ in 0..5 {
        poll_into(&w, &mut weir_seen).await;
    }
    let j = java_records(&jm.events());
    if let Err(e) = exactly_once(&weir_seen, &j, 4, 30) {
        panic!("after the split: {e}\n{}", jm.describe());
    }
    let strays: Vec<_> = weir_seen
        .iter()
        .filter(|(p, o)| *o >= 10 && !mine.contains(p))
        .collect();
    assert!(
        strays.is_empty(),
        "weir read {strays:?} outside its partitions {mine:?}"
    );
    let strays: Vec<_> = j
        .iter()
        .filter(|(p, o)| *o >= 10 && !theirs.contains(p))
        .collect();
    assert!(
        strays.is_empty(),
        "Java read {strays:?} outside its partitions {theirs:?}"
    );

    // One leaves; the other takes everything over at the committed offsets.
    let java_seen = match leaver {
        Who::Java => {
            let events = blocking(|| jm.close());
            let committed = committed_of(&events);
            for p in &theirs {
                assert_eq!(
                    committed.get(p),
                    Some(&30),
                    "Java's last commit of partition {p}: {committed:?}"
                );
            }
            let until = Instant::now() + WAIT;
            while partitions_of(&w) != all {
                poll_into(&w, &mut weir_seen).await;
                assert!(
                    Instant::now() < until,
                    "weir has {:?}, not all 4 partitions, {WAIT:?} after Java left",
                    partitions_of(&w)
                );
            }
            produce_values(kafka, &topic, 4, 30..40).await;
            let j = java_records(&events);
            let until = Instant::now() + WAIT;
            while !covered(&weir_seen, &j, 4, 40) {
                poll_into(&w, &mut weir_seen).await;
                assert!(
                    Instant::now() < until,
                    "after Java left: {}",
                    exactly_once(&weir_seen, &j, 4, 40).unwrap_err()
                );
            }
            for _ in 0..5 {
                poll_into(&w, &mut weir_seen).await;
            }
            w.close().await.unwrap();
            j
        }
        Who::Weir => {
            w.close().await.unwrap();
            blocking(|| {
                jm.wait_until("all 4 partitions after weir left", WAIT, |ev| {
                    assignment_of(ev).is_some_and(|a| a == all)
                })
            });
            produce_values(kafka, &topic, 4, 30..40).await;
            blocking(|| {
                jm.wait_until("every record after weir left", WAIT, |ev| {
                    covered(
                        &weir_seen,
                        &records_of(ev)
                            .into_iter()
                            .map(|(p, o, _)| (p, o))
                            .collect::<Vec<_>>(),
                        4,
                        40,
                    )
                })
            });
            // No need to wait for duplicates: a partition's records arrive in offset order, so a re-read from a
            // stale committed offset would have come before the last records, which are in.
            let events = blocking(|| jm.close());
            java_records(&events)
        }
    };
    if let Err(e) = exactly_once(&weir_seen, &java_seen, 4, 40) {
        panic!("{assignor}, {first:?} first, {leaver:?} left: {e}");
    }
    // The member that stayed committed everything it read before leaving.
    let committed = blocking(|| java.committed(&bootstrap, &group, &topic, 4));
    assert_eq!(
        committed,
        vec![Some(40); 4],
        "the group's committed offsets at the end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_first_then_weir_range_java_leaves() {
    share_a_group("range", Who::Java, Who::Java).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_first_then_java_range_weir_leaves() {
    share_a_group("range", Who::Weir, Who::Weir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_first_then_weir_cooperative_sticky_weir_leaves() {
    share_a_group("cooperative-sticky", Who::Java, Who::Weir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_first_then_java_cooperative_sticky_java_leaves() {
    share_a_group("cooperative-sticky", Who::Weir, Who::Java).await;
}

/// Offsets weir commits (explicitly, and by auto-commit on close) are what Java's Admin reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_reads_offsets_weir_committed() {
    let kafka = Kafka::shared();
    let java = JavaPeer::require();
    let bootstrap = kafka.bootstrap();
    let topic = unique_name("joff-w2j");
    kafka.create_topic(&topic, 4);
    produce_values(kafka, &topic, 4, 0..10).await;
    let tp = |p| TopicPartition::new(topic.as_str(), p);

    // Explicit commits, auto-commit off: partition 3 is never committed.
    let group = unique_name("joff-explicit");
    let w = weir_member(kafka, &group, "range", false);
    w.subscribe(&[&topic]);
    let mut seen = Vec::new();
    let until = Instant::now() + WAIT;
    while partitions_of(&w).len() < 4 {
        poll_into(&w, &mut seen).await;
        assert!(
            Instant::now() < until,
            "weir got {:?} within {WAIT:?}",
            partitions_of(&w)
        );
    }
    w.commit_sync(&[(tp(0), 3), (tp(1), 10), (tp(2), 0)])
        .await
        .unwrap();
    w.close().await.unwrap();
    let got = blocking(|| java.committed(&bootstrap, &group, &topic, 4));
    assert_eq!(
        got,
        vec![Some(3), Some(10), Some(0), None],
        "explicit commits of {group}"
    );

    // Auto-commit: everything read, committed on close.
    let group = unique_name("joff-auto");
    let w = weir_member(kafka, &group, "range", true);
    w.subscribe(&[&topic]);
    let mut seen = Vec::new();
    let until = Instant::now() + WAIT;
    while seen.len() < 40 {
        poll_into(&w, &mut seen).await;
        assert!(
            Instant::now() < until,
            "weir read {} of 40 records within {WAIT:?}",
            seen.len()
        );
    }
    w.close().await.unwrap();
    let got = blocking(|| java.committed(&bootstrap, &group, &topic, 4));
    assert_eq!(got, vec![Some(10); 4], "auto-commit on close of {group}");
}

/// Offsets Java commits are where a weir member starts (earliest where nothing was committed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_starts_where_java_committed() {
    let kafka = Kafka::shared();
    let java = JavaPeer::require();
    let bootstrap = kafka.bootstrap();
    let topic = unique_name("joff-j2w");
    kafka.create_topic(&topic, 4);
    produce_values(kafka, &topic, 4, 0..10).await;
    let group = unique_name("joff-java");
    blocking(|| java.commit(&bootstrap, &group, &topic, &[(0, 4), (1, 0), (2, 10)]));
    assert_eq!(
        blocking(|| java.committed(&bootstrap, &group, &topic, 4)),
        vec![Some(4), Some(0), Some(10), None]
    );

    let w = weir_member(kafka, &group, "range", false);
    w.subscribe(&[&topic]);
    let tps: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new(topic.as_str(), p)).collect();
    let committed = w.committed(&tps).await.unwrap();
    let committed: BTreeMap<i32, Option<i64>> =
        committed.into_iter().map(|(tp, o)| (tp.partition, o)).collect();
    assert_eq!(
        committed,
        BTreeMap::from([(0, Some(4)), (1, Some(0)), (2, Some(10)), (3, None)]),
        "weir's view of the offsets Java committed"
    );
    let want: Vec<(i32, i64)> = (4..10)
        .map(|o| (0, o))
        .chain((0..10).map(|o| (1, o)))
        .chain((0..10).map(|o| (3, o)))
        .collect();
    let mut seen = Vec::new();
    let until = Instant::now() + WAIT;
    while seen.len() < want.len() {
        poll_into(&w, &mut seen).await;
        assert!(
            Instant::now() < until,
            "weir read {seen:?} within {WAIT:?}, expected {want:?} (assignment {:?})",
            partitions_of(&w)
        );
    }
    for _ in 0..5 {
        poll_into(&w, &mut seen).await;
    }
    w.close().await.unwrap();
    seen.sort();
    assert_eq!(seen, want, "what weir read, starting from Java's commits");
}
