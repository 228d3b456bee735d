//! New-leader hints in Fetch answers (KIP-951, Fetch v16+) on a three-node Apache Kafka cluster: a consumer
//! whose partition's leadership moves while it reads follows the leader the old one names, without asking for
//! metadata.
//!
//! The leadership move is a preferred-leader election, so that the old leader stays up and answers: the
//! partition's preferred leader is killed (its leadership moves to another replica, which the consumer finds
//! through metadata, the old leader being unreachable), then restarted; the controller's automatic leader
//! rebalance (checked every second here) gives the partition back to it. The replica that led meanwhile answers
//! the consumer's next fetch with NOT_LEADER_OR_FOLLOWER (or FENCED_LEADER_EPOCH) naming the preferred leader
//! and its endpoint. The consumer's metadata refreshes are counted (`kafka.client.metadata_refresh_total` of its
//! client id, through a `DebuggingRecorder` installed for this test alone) across both moves: the crash needs
//! them, the election must not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use weir::config::{ClientConfig, ProducerConfig};
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{Admin, Producer, ProducerRecord};
use weir_testkit::{unique_name, Kafka, Shape};

#[path = "support/read_records.rs"]
mod read_records;
use read_records::read;

/// Records produced in each phase.
const N: usize = 20;

/// The sum of counter `name` labelled `client_id = id`, over every snapshot taken so far (a snapshot resets
/// what it reads).
struct Counter {
    snapshotter: Snapshotter,
    sums: HashMap<String, u64>,
}

impl Counter {
    fn read(&mut self, name: &str, id: &str) -> u64 {
        for (ck, _, _, value) in self.snapshotter.snapshot().into_vec() {
            let (_, key) = ck.into_parts();
            let client = key
                .labels()
                .find(|l| l.key() == "client_id")
                .map(|l| l.value().to_owned());
            if let (DebugValue::Counter(n), Some(client)) = (value, client) {
                *self.sums.entry(format!("{}/{client}", key.name())).or_default() += n;
            }
        }
        self.sums.get(&format!("{name}/{id}")).copied().unwrap_or(0)
    }
}

async fn produce(bootstrap: &str, topic: &str, prefix: &str) {
    let mut cfg = ProducerConfig::new(bootstrap);
    cfg.set("client.id", "hint-test-producer").unwrap();
    let producer = Producer::new(cfg).unwrap();
    let mut pending = Vec::new();
    for i in 0..N {
        let record = ProducerRecord::new(topic, format!("{prefix}-{i}")).partition(0);
        pending.push(producer.send(record).await.unwrap());
    }
    for d in pending {
        d.await.expect("acknowledged");
    }
    producer.close().await.unwrap();
}

/// Runs a blocking testkit call off the runtime's only thread, so that the clients keep running meanwhile.
async fn blocking<T: Send + 'static>(
    kafka: &Arc<Mutex<Kafka>>,
    f: impl FnOnce(&mut Kafka) -> T + Send + 'static,
) -> T {
    let kafka = kafka.clone();
    tokio::task::spawn_blocking(move || f(&mut kafka.lock().unwrap()))
        .await
        .unwrap()
}

#[test]
fn a_preferred_leader_election_is_followed_by_the_hint_without_metadata() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("WEIR_LOG"))
        .with_test_writer()
        .try_init();
    // The controller gives partitions back to their preferred leader within a second of it being in sync.
    let kafka = Kafka::start_with(
        Shape::Three,
        &[
            ("auto.leader.rebalance.enable", "true"),
            ("leader.imbalance.check.interval.seconds", "1"),
        ],
    );
    let bootstrap = kafka.bootstrap();
    let kafka = Arc::new(Mutex::new(kafka));
    let recorder = DebuggingRecorder::new();
    let mut counter = Counter {
        snapshotter: recorder.snapshotter(),
        sums: HashMap::new(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(async {
            let topic = unique_name("hinted");
            let admin = Admin::new(ClientConfig::new(&bootstrap)).unwrap();
            admin.create_topic(&topic, 1, 3).await.unwrap();
            let t = topic.clone();
            let preferred = blocking(&kafka, move |k| k.leader(&t, 0)).await;
            let t = topic.clone();
            blocking(&kafka, move |k| k.wait_in_sync(&t)).await;
            produce(&bootstrap, &topic, "a").await;

            let client_id = unique_name("hinted-consumer");
            let mut cfg = ConsumerConfig::new(&bootstrap);
            cfg.set("client.id", &client_id).unwrap();
            // No refresh falls due by age during the test: every one counted has a cause.
            cfg.set("metadata.max.age.ms", "600000").unwrap();
            let consumer = Consumer::new(cfg).unwrap();
            consumer
                .assign(&[(TopicPartition::new(topic.as_str(), 0), StartOffset::Earliest)])
                .await
                .unwrap();
            let mut offsets: Vec<i64> = read(&consumer, N).await.iter().map(|r| r.offset).collect();
            let at_start = counter.read("kafka.client.metadata_refresh_total", &client_id);

            // The preferred leader crashes: its replica elsewhere takes over; the consumer can only find it
            // through metadata.
            blocking(&kafka, move |k| k.kill(preferred)).await;
            let t = topic.clone();
            let interim = blocking(&kafka, move |k| k.leader_other_than(&t, 0, preferred)).await;
            produce(&bootstrap, &topic, "b").await;
            offsets.extend(read(&consumer, N).await.iter().map(|r| r.offset));
            let after_crash = counter.read("kafka.client.metadata_refresh_total", &client_id);
            assert_eq!(
                consumer.stats().leader_hint_moves,
                0,
                "nobody to answer with a hint"
            );

            // It comes back and is elected again; the interim leader, still up, names it to the consumer.
            blocking(&kafka, move |k| k.restart(preferred)).await;
            let t = topic.clone();
            let back = blocking(&kafka, move |k| k.leader_other_than(&t, 0, interim)).await;
            assert_eq!(back, preferred, "the preferred leader is elected again");
            produce(&bootstrap, &topic, "c").await;
            offsets.extend(read(&consumer, N).await.iter().map(|r| r.offset));
            let after_election = counter.read("kafka.client.metadata_refresh_total", &client_id);
            let hinted = consumer.stats().leader_hint_moves;
            eprintln!(
                "leader {preferred} -> {interim} (crash) -> {back} (election): consumer metadata refreshes \
                 {at_start} at start, +{} over the crash, +{} over the election; hinted moves {hinted}",
                after_crash - at_start,
                after_election - after_crash
            );
            assert_eq!(
                offsets,
                (0..3 * N as i64).collect::<Vec<_>>(),
                "every record once, in order"
            );
            assert!(after_crash > at_start, "the crash is found through metadata");
            assert_eq!(hinted, 1, "the election is followed through the hint");
            assert_eq!(
                after_election, after_crash,
                "no metadata refresh over the election"
            );
            consumer.close().await.unwrap();
            admin.close().await.unwrap();
        })
    });
}
