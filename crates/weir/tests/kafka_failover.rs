//! Failover on a three-node Apache Kafka cluster (replication factor 3, `min.insync.replicas=2`): the broker
//! leading a partition is killed with SIGKILL while an idempotent `acks=all` producer writes and a consumer
//! reads. Nothing acknowledged is lost, nothing is duplicated or reordered, and neither the producer nor the
//! consumer surfaces an error to the application: leadership moves, and both follow it. Meanwhile a client
//! whose link to the killed node failed refreshes its metadata from the live nodes, never waiting for that link.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weir::admin::ConfigResource;
use weir::config::{ClientConfig, ProducerConfig};
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{Admin, Producer, ProducerRecord};
use weir_testkit::{unique_name, Kafka, Shape};

const PARTITIONS: i32 = 3;
const PER_PARTITION: i64 = 3000;
/// Sends awaited at a time, so the producer keeps a steady stream going through the kill.
const WINDOW: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_while_producing_and_consuming_loses_nothing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("WEIR_LOG"))
        .with_test_writer()
        .try_init();
    let mut kafka = Kafka::start(Shape::Three);
    let topic = unique_name("failover");
    kafka.create_topic(&topic, PARTITIONS);
    let bootstrap = kafka.bootstrap();

    // The producer: every record of every partition, in order, through the kill.
    let produced = Arc::new(AtomicU64::new(0));
    let mut pcfg = ProducerConfig::new(&bootstrap);
    pcfg.set("acks", "all").unwrap();
    pcfg.set("enable.idempotence", "true").unwrap();
    let producer = Producer::new(pcfg).unwrap();
    let producing = tokio::spawn({
        let (producer, topic, produced) = (producer.clone(), topic.clone(), produced.clone());
        async move {
            let mut window = std::collections::VecDeque::new();
            let mut offsets: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
            for i in 0..PER_PARTITION {
                for p in 0..PARTITIONS {
                    let record = ProducerRecord::new(topic.as_str(), format!("p{p}-r{i}")).partition(p);
                    let d = producer.send(record).await.expect("send");
                    window.push_back((p, i, d));
                    while window.len() > WINDOW {
                        let (p, i, d) = window.pop_front().unwrap();
                        let m = d.await.unwrap_or_else(|e| panic!("p{p}-r{i} not delivered: {e}"));
                        offsets.entry(p).or_default().push(m.offset);
                        produced.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            for (p, i, d) in window {
                let m = d.await.unwrap_or_else(|e| panic!("p{p}-r{i} not delivered: {e}"));
                offsets.entry(p).or_default().push(m.offset);
                produced.fetch_add(1, Ordering::Relaxed);
            }
            offsets
        }
    });

    // The consumer: reads everything, collecting errors rather than failing at the first.
    let consumer = Arc::new(Consumer::new(ConsumerConfig::new(&bootstrap)).unwrap());
    let tps: Vec<(TopicPartition, StartOffset)> = (0..PARTITIONS)
        .map(|p| (TopicPartition::new(topic.as_str(), p), StartOffset::Earliest))
        .collect();
    consumer.assign(&tps).await.unwrap();
    let consumed = Arc::new(AtomicU64::new(0));
    let consuming = tokio::spawn({
        let (consumer, consumed) = (consumer.clone(), consumed.clone());
        async move {
            let mut got: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
            let mut errors = Vec::new();
            let total = (PER_PARTITION * PARTITIONS as i64) as u64;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
            while consumed.load(Ordering::Relaxed) < total {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "consumed {} of {total}; errors: {errors:?}",
                    consumed.load(Ordering::Relaxed)
                );
                match consumer.poll(1000, Duration::from_millis(200)).await {
                    Ok(batch) => {
                        consumed.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        for r in batch {
                            let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
                            got.entry(r.partition).or_default().push((r.offset, v));
                        }
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (got, errors)
        }
    });

    // Kill partition 0's leader once a third is produced and some of it consumed.
    let third = (PER_PARTITION * PARTITIONS as i64 / 3) as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while produced.load(Ordering::Relaxed) < third || consumed.load(Ordering::Relaxed) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no progress before the kill"
        );
        tokio::time::sleep(Duration::from_millis(10)).await; // waiting for progress, bounded by the deadline
    }
    // A client whose reconnect backoff outlasts the test: once its link to the killed node has failed, a
    // metadata refresh that waited for that link would never finish.
    let mut wcfg = ClientConfig::new(&bootstrap);
    wcfg.set("reconnect.backoff.ms", "600000").unwrap();
    wcfg.set("reconnect.backoff.max.ms", "600000").unwrap();
    let watcher = Admin::new(wcfg).unwrap();
    assert_eq!(watcher.metadata().await.unwrap().brokers.len(), 3);
    let victim = kafka.leader(&topic, 0);
    kafka.kill(victim);
    let new_leader = kafka.leader_other_than(&topic, 0, victim);
    eprintln!(
        "killed node {victim} (leader of {topic}-0) at {} produced / {} consumed; new leader {new_leader}",
        produced.load(Ordering::Relaxed),
        consumed.load(Ordering::Relaxed)
    );
    // Only the killed node answers for its own configuration: the watcher's link to it fails and enters its
    // backoff; before the fix, that link was the first asked by every refresh.
    let described = watcher
        .describe_configs(&[ConfigResource::broker(victim)])
        .await
        .unwrap();
    assert!(described[0].1.is_err(), "node {victim} answered after SIGKILL");
    // Refreshes are answered by the live nodes until one reports the new leader (a live node may learn of it
    // a little after the one the testkit asked); the bound only catches a refresh stuck on the backoff.
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let m = watcher.metadata().await.expect("refresh answered by a live node");
            if m.topics.get(&topic).and_then(|t| t.leader(0)) == Some(new_leader) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await; // broker-side propagation
        }
    })
    .await
    .expect("a refresh waited for the killed node's link in its backoff");
    watcher.close().await.unwrap();

    let offsets = tokio::time::timeout(Duration::from_secs(180), producing)
        .await
        .expect("producer finished")
        .unwrap();
    producer.close().await.unwrap();
    let (got, errors) = tokio::time::timeout(Duration::from_secs(180), consuming)
        .await
        .expect("consumer finished")
        .unwrap();
    consumer.close().await.unwrap();

    assert!(errors.is_empty(), "errors surfaced to the consumer: {errors:?}");
    for p in 0..PARTITIONS {
        // Idempotence: each record acknowledged once, at the next offset (no duplicate written by a retry).
        assert_eq!(
            offsets[&p],
            (0..PER_PARTITION).collect::<Vec<_>>(),
            "partition {p}: acknowledged offsets"
        );
        let want: Vec<(i64, String)> = (0..PER_PARTITION).map(|i| (i, format!("p{p}-r{i}"))).collect();
        let have = &got[&p];
        assert_eq!(have.len(), want.len(), "partition {p}: records consumed");
        assert!(
            have == &want,
            "partition {p}: consumed records differ from what was produced"
        );
    }
}
