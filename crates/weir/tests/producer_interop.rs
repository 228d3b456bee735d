//! weir's producer against real Apache Kafka, read back through librdkafka 2.16 (confluent-kafka).

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use weir::admin::OffsetSpec;
use weir::config::{ClientConfig, ProducerConfig};
use weir::{Admin, Compression, Producer, ProducerRecord};
use weir_testkit::{unique_topic, Kafka, Python};

/// Reads every record of `topic` with confluent-kafka and prints one JSON line per record.
const READ_ALL: &str = r#"
import sys, json, base64
from confluent_kafka import Consumer, TopicPartition
brokers, topic, parts, expected = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = Consumer({'bootstrap.servers': brokers, 'group.id': 'weir-interop', 'enable.auto.commit': False,
              'fetch.message.max.bytes': 4194304, 'receive.message.max.bytes': 104857600})
c.assign([TopicPartition(topic, p, 0) for p in range(parts)])
b64 = lambda b: None if b is None else base64.b64encode(b).decode()
seen, idle = 0, 0
while seen < expected and idle < 100:
    m = c.poll(0.1)
    if m is None:
        idle += 1
        continue
    if m.error():
        raise SystemExit(str(m.error()))
    idle = 0
    seen += 1
    hs = [[k, b64(v)] for k, v in (m.headers() or [])]
    print(json.dumps({'p': m.partition(), 'o': m.offset(), 'k': b64(m.key()), 'v': b64(m.value()), 'h': hs}))
c.close()
"#;

/// Produces the records with confluent-kafka (`codec`), keyed records without an explicit partition.
const WRITE_ALL: &str = r#"
import sys, json, base64
from confluent_kafka import Producer
brokers, topic, codec = sys.argv[1], sys.argv[2], sys.argv[3]
p = Producer({'bootstrap.servers': brokers, 'compression.codec': codec, 'linger.ms': 5,
              'message.max.bytes': 4194304, 'partitioner': 'murmur2_random'})
d = lambda s: None if s is None else base64.b64decode(s)
errors = []
def report(err, msg):
    if err is not None:
        errors.append(str(err))
for line in sys.stdin:
    r = json.loads(line)
    kw = {'headers': [(k, d(v)) for k, v in r['h']]} if r['h'] else {}
    if r['p'] is not None:
        kw['partition'] = r['p']
    p.produce(topic, value=d(r['v']), key=d(r['k']), on_delivery=report, **kw)
assert p.flush(30) == 0
assert not errors, errors
"#;

#[derive(Debug, Clone, PartialEq)]
struct Rec {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn b64d(v: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v)
        .expect("base64")
}

fn b64e(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Parses the reader's JSON lines (a tiny parser for exactly the shape READ_ALL prints).
fn parse_lines(out: &[u8]) -> Vec<Rec> {
    let text = String::from_utf8(out.to_vec()).unwrap();
    text.lines()
        .map(|l| {
            let field = |name: &str| -> Option<Vec<u8>> {
                let at = l.find(&format!("\"{name}\": ")).unwrap() + name.len() + 4;
                let rest = &l[at..];
                if rest.starts_with("null") {
                    None
                } else {
                    let end = rest[1..].find('"').unwrap();
                    Some(b64d(&rest[1..1 + end]))
                }
            };
            let num = |name: &str| -> i64 {
                let at = l.find(&format!("\"{name}\": ")).unwrap() + name.len() + 4;
                l[at..].split([',', '}']).next().unwrap().trim().parse().unwrap()
            };
            let h_at = l.find("\"h\": ").unwrap() + 5;
            let hs = &l[h_at..l.len() - 1];
            let mut headers = Vec::new();
            for item in hs
                .trim_matches(['[', ']'])
                .split("], [")
                .filter(|s| !s.is_empty())
            {
                let mut parts = item.splitn(2, ", ");
                let k = parts.next().unwrap().trim_matches(['[', '"']).to_string();
                let v = parts.next().unwrap().trim_matches([']', '"']);
                headers.push((k, (v != "null").then(|| b64d(v))));
            }
            Rec {
                partition: num("p") as i32,
                offset: num("o"),
                key: field("k"),
                value: field("v"),
                headers,
            }
        })
        .collect()
}

/// The mix every codec is checked with: keys, headers, null key, null and empty value, a 1 MiB value.
type Sample = (
    Option<i32>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
);

fn sample_records() -> Vec<Sample> {
    let mut v = Vec::new();
    for i in 0..200u32 {
        let key = (i % 7 != 0).then(|| format!("key-{i}").into_bytes());
        let value = match i % 11 {
            0 => None,
            1 => Some(Vec::new()),
            _ => Some(format!("value-{i}-{}", "x".repeat((i % 50) as usize)).into_bytes()),
        };
        let headers = if i % 3 == 0 {
            vec![
                ("h1".to_string(), Some(vec![0, 1, 2, 255])),
                ("h-null".to_string(), None),
            ]
        } else {
            vec![]
        };
        v.push((None, key, value, headers));
    }
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    v.push((Some(0), Some(b"big".to_vec()), Some(big), vec![]));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_writes_librdkafka_reads_every_codec() {
    let Some(py) = Python::require_or_skip() else {
        return;
    };
    let broker = Kafka::shared();
    for codec in Compression::ALL {
        let topic = unique_topic(&format!("w2r-{codec}"));
        // Room for the 1 MiB record, uncompressed (the broker's default limit is 1 MiB per batch).
        broker.create_topic_with(&topic, 3, &[("max.message.bytes", "4194304")]);
        let mut cfg = ProducerConfig::new(&broker.bootstrap());
        cfg.compression = codec;
        cfg.set("message.max.bytes", "4194304").unwrap();
        let producer = Producer::new(cfg).unwrap();
        let mut deliveries = Vec::new();
        let sample = sample_records();
        for (p, k, v, h) in &sample {
            let mut r = ProducerRecord::tombstone(&topic);
            r.partition = *p;
            r.key = k.clone().map(Bytes::from);
            r.value = v.clone().map(Bytes::from);
            r.headers = h
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().map(Bytes::from)))
                .collect();
            deliveries.push(producer.send(r).await.unwrap());
        }
        let mut written = Vec::new();
        for d in deliveries {
            written.push(d.await.unwrap());
        }
        producer.close().await.unwrap();

        // Offsets are dense per partition and in send order.
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for m in &written {
            let n = next.entry(m.partition).or_insert(0);
            assert_eq!(
                m.offset, *n,
                "{codec}: offsets of {}-{} out of order",
                m.topic, m.partition
            );
            *n += 1;
        }

        let out = py.run_script(
            READ_ALL,
            &[&broker.bootstrap(), &topic, "3", &sample.len().to_string()],
        );
        assert!(
            out.status.success(),
            "{codec}: reader failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let read = parse_lines(&out.stdout);
        assert_eq!(read.len(), sample.len(), "{codec}: record count");
        let by_pos: BTreeMap<(i32, i64), &Rec> = read.iter().map(|r| ((r.partition, r.offset), r)).collect();
        for ((_, k, v, h), m) in sample.iter().zip(&written) {
            let r = by_pos[&(m.partition, m.offset)];
            assert_eq!(&r.key, k, "{codec}: key at {}@{}", m.partition, m.offset);
            assert_eq!(&r.value, v, "{codec}: value at {}@{}", m.partition, m.offset);
            assert_eq!(&r.headers, h, "{codec}: headers at {}@{}", m.partition, m.offset);
        }
        // Keyed records land where librdkafka's murmur2_random puts them: checked by having librdkafka
        // write the same keys below and comparing partitions.
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_land_where_librdkafka_puts_them() {
    let Some(py) = Python::require_or_skip() else {
        return;
    };
    let broker = Kafka::shared();
    let admin = Admin::new(ClientConfig::new(&broker.bootstrap())).unwrap();
    let ours = unique_topic("keys-weir");
    let theirs = unique_topic("keys-rdk");
    admin.create_topic(&ours, 7, 1).await.unwrap();
    admin.create_topic(&theirs, 7, 1).await.unwrap();
    let keys: Vec<String> = (0..300).map(|i| format!("user-{i}-{}", i * 7919)).collect();

    let producer = Producer::new(ProducerConfig::new(&broker.bootstrap())).unwrap();
    let mut weir_partition = BTreeMap::new();
    for k in &keys {
        let d = producer
            .send(ProducerRecord::new(&ours, k.clone()).key(k.clone()))
            .await
            .unwrap();
        weir_partition.insert(k.clone(), d.await.unwrap().partition);
    }
    producer.close().await.unwrap();

    let input: String = keys
        .iter()
        .map(|k| {
            format!(
                "{{\"p\": null, \"k\": \"{}\", \"v\": \"{}\", \"h\": []}}\n",
                b64e(k.as_bytes()),
                b64e(k.as_bytes())
            )
        })
        .collect();
    let mut cmd = py.command();
    cmd.arg("-c")
        .arg(WRITE_ALL)
        .args([&broker.bootstrap(), &theirs, "none"]);
    let out = run_with_stdin(cmd, input.as_bytes());
    assert!(
        out.status.success(),
        "librdkafka producer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = py.run_script(
        READ_ALL,
        &[&broker.bootstrap(), &theirs, "7", &keys.len().to_string()],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let read = parse_lines(&out.stdout);
    assert_eq!(read.len(), keys.len());
    for r in read {
        let k = String::from_utf8(r.key.unwrap()).unwrap();
        assert_eq!(weir_partition[&k], r.partition, "key {k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_topics_and_offsets() {
    let broker = Kafka::shared();
    let admin = Admin::new(ClientConfig::new(&broker.bootstrap())).unwrap();
    let topic = unique_topic("admin");
    admin.create_topic(&topic, 2, 1).await.unwrap();
    let err = admin.create_topic(&topic, 2, 1).await.unwrap_err();
    assert_eq!(
        err.kafka_code(),
        Some(weir::error::KafkaCode::TopicAlreadyExists),
        "{err}"
    );
    // Kafka creates a topic in the controller; the broker's metadata has it a moment later (as with Java's
    // Admin, create_topic does not wait for that).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !admin.list_topics().await.unwrap().contains(&topic) {
        assert!(tokio::time::Instant::now() < deadline, "{topic} never listed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await; // polling metadata, bounded
    }

    let producer = Producer::new(ProducerConfig::new(&broker.bootstrap())).unwrap();
    // All sent before any is awaited, so that batches hold several records: Latest is the end of the log.
    let mut sent = Vec::new();
    for i in 0..10 {
        sent.push(
            producer
                .send(ProducerRecord::new(&topic, format!("v{i}")).partition(i % 2))
                .await
                .unwrap(),
        );
    }
    for (i, m) in sent.into_iter().enumerate() {
        assert_eq!(m.await.unwrap().offset, (i / 2) as i64);
    }
    producer.close().await.unwrap();
    let latest = admin.list_offsets(&topic, OffsetSpec::Latest).await.unwrap();
    assert_eq!(latest.into_iter().collect::<Vec<_>>(), vec![(0, 5), (1, 5)]);
    let earliest = admin.list_offsets(&topic, OffsetSpec::Earliest).await.unwrap();
    assert_eq!(earliest.into_iter().collect::<Vec<_>>(), vec![(0, 0), (1, 0)]);

    // A topic the cluster does not know is waited for up to max.block.ms, then refused.
    let mut cfg = ProducerConfig::new(&broker.bootstrap());
    cfg.set("max.block.ms", "300").unwrap();
    let missing = Producer::new(cfg).unwrap();
    let err = missing
        .send(ProducerRecord::new("no-such-topic-weir", "x"))
        .await
        .expect_err("unknown topic");
    assert!(matches!(err, weir::Error::UnknownTopic(_)), "{err}");
}

fn run_with_stdin(mut cmd: std::process::Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unkeyed_records_spread_over_partitions() {
    let broker = Kafka::shared();
    let admin = Admin::new(ClientConfig::new(&broker.bootstrap())).unwrap();
    let topic = unique_topic("sticky");
    admin.create_topic(&topic, 3, 1).await.unwrap();
    let producer = Producer::new(ProducerConfig::new(&broker.bootstrap())).unwrap();
    let mut counts = BTreeMap::new();
    // Sticky partitioning: a partition keeps unkeyed records until its batch closes, then another is picked.
    for round in 0..30 {
        let mut ds = Vec::new();
        for i in 0..100 {
            ds.push(
                producer
                    .send(ProducerRecord::new(&topic, format!("{round}-{i}")))
                    .await
                    .unwrap(),
            );
        }
        for d in ds {
            *counts.entry(d.await.unwrap().partition).or_insert(0) += 1;
        }
    }
    producer.close().await.unwrap();
    assert_eq!(counts.values().sum::<i32>(), 3000);
    assert_eq!(counts.len(), 3, "30 batches all landed on {counts:?}");
}
