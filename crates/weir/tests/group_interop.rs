//! A weir member and a foreign member in one group on real Apache Kafka: both get partitions, together they
//! consume everything exactly once, with either one joining first (and so, usually, leading: the coordinator
//! makes the first member to join the leader). The foreign members: librdkafka (confluent-kafka 2.16; all three
//! assignors) and kafka-python 2.2 (an independent, pure-Python implementation of the Java client's consumer
//! protocol, which announces version-0 subscriptions; range and roundrobin, the assignors it has).
//! A rebalance moves partitions at committed offsets, inside batches of many records.

#[path = "support/group.rs"]
mod group;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use group::{group_config, produce_numbered};
use weir::group::GroupConsumer;
use weir_testkit::{unique_topic, Kafka, Python};

/// A librdkafka member. Prints `A parts` / `V parts` from its assign / revoke callbacks and `R p o value` per
/// record, until the file `stop` exists.
const RDKAFKA_MEMBER: &str = r#"
import os, sys
from confluent_kafka import Consumer
brokers, topic, group, strategy, stop = sys.argv[1:6]
c = Consumer({'bootstrap.servers': brokers, 'group.id': group, 'partition.assignment.strategy': strategy,
              'auto.offset.reset': 'earliest', 'session.timeout.ms': 10000,
              'heartbeat.interval.ms': 200, 'enable.auto.commit': True, 'auto.commit.interval.ms': 200})
def on_assign(consumer, parts):
    print('A ' + ','.join(str(p.partition) for p in parts), flush=True)
def on_revoke(consumer, parts):
    print('V ' + ','.join(str(p.partition) for p in parts), flush=True)
c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
while not os.path.exists(stop):
    m = c.poll(0.05)
    if m is None or m.error():
        continue
    print('R %d %d %s' % (m.partition(), m.offset(), m.value().decode()), flush=True)
c.close()
print('CLOSED', flush=True)
"#;

/// A kafka-python member, printing as [`RDKAFKA_MEMBER`] does.
const KAFKA_PYTHON_MEMBER: &str = r#"
import os, sys
from kafka import KafkaConsumer, ConsumerRebalanceListener
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
brokers, topic, group, strategy, stop = sys.argv[1:6]
assignor = {'range': RangePartitionAssignor, 'roundrobin': RoundRobinPartitionAssignor}[strategy]
c = KafkaConsumer(bootstrap_servers=brokers, group_id=group, auto_offset_reset='earliest',
                  partition_assignment_strategy=[assignor], session_timeout_ms=10000,
                  heartbeat_interval_ms=200, enable_auto_commit=True, auto_commit_interval_ms=200)
class Listener(ConsumerRebalanceListener):
    def on_partitions_assigned(self, parts):
        print('A ' + ','.join(str(p.partition) for p in parts), flush=True)
    def on_partitions_revoked(self, parts):
        print('V ' + ','.join(str(p.partition) for p in parts), flush=True)
c.subscribe([topic], listener=Listener())
while not os.path.exists(stop):
    for records in c.poll(timeout_ms=50).values():
        for m in records:
            print('R %d %d %s' % (m.partition, m.offset, m.value.decode()), flush=True)
c.close()
print('CLOSED', flush=True)
"#;

/// A foreign member's client.
#[derive(Clone, Copy, Debug)]
enum Foreign {
    Librdkafka,
    KafkaPython,
}

struct RdMember {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    stop: std::path::PathBuf,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl RdMember {
    fn start(
        py: &Python,
        client: Foreign,
        broker: &Kafka,
        topic: &str,
        group: &str,
        strategy: &str,
    ) -> RdMember {
        let script = match client {
            Foreign::Librdkafka => RDKAFKA_MEMBER,
            Foreign::KafkaPython => KAFKA_PYTHON_MEMBER,
        };
        let stop = std::env::temp_dir().join(format!("weir-stop-{}", unique_topic("rd")));
        let mut child = py
            .command()
            .arg("-c")
            .arg(script)
            .args([
                &broker.bootstrap(),
                topic,
                group,
                strategy,
                stop.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(|l| l.ok()) {
                sink.lock().unwrap().push(l);
            }
        });
        RdMember {
            child,
            lines,
            stop,
            reader: Some(reader),
        }
    }

    /// Its assignment (partitions), if it has been assigned anything yet: assign callbacks add, revoke
    /// callbacks remove (eager callbacks list everything, cooperative ones only the change).
    fn assignment(&self) -> Option<Vec<i32>> {
        let lines = self.lines.lock().unwrap();
        let mut now = std::collections::BTreeSet::new();
        let mut assigned = false;
        for l in lines.iter() {
            let (add, list) = match l.split_at_checked(2) {
                Some(("A ", rest)) => (true, rest),
                Some(("V ", rest)) => (false, rest),
                _ => continue,
            };
            assigned |= add;
            for p in list.split(',').filter(|s| !s.is_empty()) {
                let p: i32 = p.parse().unwrap();
                if add {
                    now.insert(p);
                } else {
                    now.remove(&p);
                }
            }
        }
        assigned.then(|| now.into_iter().collect())
    }

    fn records(&self) -> Vec<(i32, i64)> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("R "))
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                let (p, o): (i32, i64) = (f[0].parse().unwrap(), f[1].parse().unwrap());
                assert_eq!(f[2], format!("p{p}-r{o}"));
                (p, o)
            })
            .collect()
    }

    fn stop(mut self) -> Vec<String> {
        std::fs::write(&self.stop, b"").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("foreign member did not stop");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.reader.take().unwrap().join().unwrap();
        let _ = std::fs::remove_file(&self.stop);
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for RdMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = std::fs::remove_file(&self.stop);
    }
}

fn weir_member(broker: &Kafka, group: &str, strategy: &str) -> GroupConsumer {
    GroupConsumer::new(group_config(
        broker,
        group,
        &[("partition.assignment.strategy", strategy)],
    ))
    .unwrap()
}

async fn poll(w: &GroupConsumer, seen: &mut Vec<(i32, i64)>) {
    for r in w.poll(100, Duration::from_millis(50)).await.unwrap() {
        assert_eq!(
            r.value.as_deref().unwrap(),
            format!("p{}-r{}", r.partition, r.offset).as_bytes()
        );
        seen.push((r.partition, r.offset));
    }
}

async fn share_a_group(strategy: &str, weir_first: bool) {
    share_a_group_with(Foreign::Librdkafka, strategy, weir_first).await
}

async fn share_a_group_with(client: Foreign, strategy: &str, weir_first: bool) {
    let Some(py) = Python::require_or_skip() else {
        return;
    };
    let broker = Kafka::shared();
    let topic = unique_topic(&format!("grp-rd-{strategy}"));
    broker.create_topic(&topic, 4);
    let group = unique_topic("g-rd");
    // Some records before the second member joins, so the first handover moves partitions mid-stream.
    produce_numbered(broker, &topic, 4, 0..10).await;

    let mut weir_seen: Vec<(i32, i64)> = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(90);
    let (w, rd) = if weir_first {
        let w = weir_member(broker, &group, strategy);
        w.subscribe(&[&topic]);
        while w.assignment().len() < 4 {
            poll(&w, &mut weir_seen).await;
            assert!(
                tokio::time::Instant::now() < until,
                "weir member got no assignment"
            );
        }
        let rd = RdMember::start(&py, client, broker, &topic, &group, strategy);
        (w, rd)
    } else {
        let rd = RdMember::start(&py, client, broker, &topic, &group, strategy);
        while rd.assignment().is_none_or(|a| a.len() < 4) {
            assert!(
                tokio::time::Instant::now() < until,
                "{client:?} member got no assignment"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let w = weir_member(broker, &group, strategy);
        w.subscribe(&[&topic]);
        (w, rd)
    };
    // Both members must end up with two partitions each (every assignor splits 4 as 2 / 2).
    loop {
        poll(&w, &mut weir_seen).await;
        let mine = w.assignment();
        let theirs = rd.assignment().unwrap_or_default();
        if mine.len() == 2 && theirs.len() == 2 {
            let mut all: Vec<i32> = mine
                .iter()
                .map(|tp| tp.partition)
                .chain(theirs.iter().copied())
                .collect();
            all.sort();
            assert_eq!(all, vec![0, 1, 2, 3], "weir {mine:?} {client:?} {theirs:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "no split: weir {mine:?} {client:?} {theirs:?}"
        );
    }
    let mine: Vec<i32> = w.assignment().iter().map(|tp| tp.partition).collect();
    produce_numbered(broker, &topic, 4, 10..30).await;
    while weir_seen.len() + rd.records().len() < 120 {
        poll(&w, &mut weir_seen).await;
        assert!(
            tokio::time::Instant::now() < until,
            "{} + {} of 120 records",
            weir_seen.len(),
            rd.records().len()
        );
    }
    for _ in 0..5 {
        poll(&w, &mut weir_seen).await;
    }
    let lines = rd.stop();
    w.close().await.unwrap();
    let rd_seen: Vec<(i32, i64)> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("R "))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap())
        })
        .collect();
    // Records after the split went to the partition's owner.
    assert!(weir_seen
        .iter()
        .filter(|(_, o)| *o >= 10)
        .all(|(p, _)| mine.contains(p)));
    assert!(rd_seen
        .iter()
        .filter(|(_, o)| *o >= 10)
        .all(|(p, _)| !mine.contains(p)));
    assert_eq!(weir_seen.iter().filter(|(_, o)| *o >= 10).count(), 40);
    let mut count: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for k in weir_seen.iter().chain(rd_seen.iter()) {
        *count.entry(*k).or_default() += 1;
    }
    let dups: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    assert_eq!(count.len(), 120, "lost records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_first_then_librdkafka_range() {
    share_a_group("range", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_first_then_weir_range() {
    share_a_group("range", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_first_then_librdkafka_roundrobin() {
    share_a_group("roundrobin", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_first_then_weir_roundrobin() {
    share_a_group("roundrobin", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_first_then_librdkafka_cooperative_sticky() {
    share_a_group("cooperative-sticky", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_first_then_weir_cooperative_sticky() {
    share_a_group("cooperative-sticky", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_first_then_kafka_python_range() {
    share_a_group_with(Foreign::KafkaPython, "range", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_python_first_then_weir_roundrobin() {
    share_a_group_with(Foreign::KafkaPython, "roundrobin", false).await;
}
