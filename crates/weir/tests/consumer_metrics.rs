//! The consumer's statistics (`Consumer::stats`, `GroupConsumer::stats`) and metrics on real Apache Kafka, read
//! through a `DebuggingRecorder` installed for each test alone (`metrics::with_local_recorder` around a
//! current-thread runtime, on which every task of the clients runs, the per-partition metrics task included):
//! records and bytes consumed against known traffic, lag to zero, pause reasons, backpressure, rebalances,
//! the snapshot agreeing with the metrics, and the errors of fetches counted by name.

#[path = "support/group.rs"]
mod group;

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use metrics::{Key, Unit};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, ConsumerRecord, PartitionStats, StartOffset, TopicPartition};
use weir::group::{GroupConsumer, MemberState};
use weir::{Producer, ProducerRecord};
use weir_testkit::{unique_name, unique_topic, Kafka};

/// Runs `test` on a current-thread runtime with a recorder of its own, which it reads through [`Recorded`].
fn with_recorder<F: Future<Output = ()>>(test: impl FnOnce(Recorded) -> F) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("WEIR_LOG"))
        .with_test_writer()
        .try_init();
    let _ = Kafka::shared();
    let recorder = DebuggingRecorder::new();
    let recorded = Recorded::new(recorder.snapshotter());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || rt.block_on(test(recorded)));
}

/// What was recorded. A snapshot of a `DebuggingRecorder` resets what it reads (counters and gauges to 0,
/// histograms emptied), so counters and histograms add up every snapshot, and a gauge is what the latest
/// snapshot read: what was set since the one before, or 0. The per-partition gauges are all set together by
/// one pass of the metrics task, and on a current-thread runtime no pass runs while a snapshot is read: a
/// partition's gauges in one snapshot are all from the latest pass or all 0 (the buffer limit, never 0 once
/// set, tells which).
struct Recorded {
    snapshotter: Snapshotter,
    counters: HashMap<Key, u64>,
    gauges: HashMap<Key, f64>,
    histograms: HashMap<Key, Vec<f64>>,
    units: HashMap<(MetricKind, String), Option<Unit>>,
}

impl Recorded {
    fn new(snapshotter: Snapshotter) -> Self {
        Self {
            snapshotter,
            counters: HashMap::new(),
            gauges: HashMap::new(),
            histograms: HashMap::new(),
            units: HashMap::new(),
        }
    }

    /// Reads what was recorded since the last call.
    fn update(&mut self) {
        for (ck, unit, _, value) in self.snapshotter.snapshot().into_vec() {
            let (kind, key) = ck.into_parts();
            self.units.insert((kind, key.name().to_owned()), unit);
            match value {
                DebugValue::Counter(n) => *self.counters.entry(key).or_default() += n,
                DebugValue::Gauge(v) => {
                    self.gauges.insert(key, v.into_inner());
                }
                DebugValue::Histogram(v) => self
                    .histograms
                    .entry(key)
                    .or_default()
                    .extend(v.into_iter().map(|x| x.into_inner())),
            }
        }
    }

    /// Whether `key` is `name` with exactly `labels`.
    fn matches(key: &Key, name: &str, labels: &[(&str, &str)]) -> bool {
        key.name() == name
            && key.labels().count() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
    }

    fn find<'a, T>(map: &'a HashMap<Key, T>, name: &str, labels: &[(&str, &str)]) -> Option<&'a T> {
        let mut m = map.iter().filter(|(k, _)| Self::matches(k, name, labels));
        let found = m.next().map(|(_, v)| v);
        assert!(m.next().is_none(), "several {name} {labels:?}");
        found
    }

    /// The counter `name` with `labels` (0 if never registered).
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        Self::find(&self.counters, name, labels).copied().unwrap_or(0)
    }

    /// The gauge `name` with `labels` as the latest snapshot read it (`None` if never registered).
    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        Self::find(&self.gauges, name, labels).copied()
    }

    /// The samples of the histogram `name` with `labels`, in the order recorded.
    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        Self::find(&self.histograms, name, labels)
            .cloned()
            .unwrap_or_default()
    }

    fn unit(&self, kind: MetricKind, name: &str) -> Option<Unit> {
        self.units.get(&(kind, name.to_owned())).copied().flatten()
    }

    /// The gauges of one partition of the consumer `client_id` from the latest pass of the metrics task, if
    /// the latest snapshot came after one (see [`Recorded`]).
    fn partition(&self, client_id: &str, tp: &TopicPartition) -> Option<PartitionGauges> {
        let partition = tp.partition.to_string();
        let labels = [
            ("client_id", client_id),
            ("topic", &*tp.topic),
            ("partition", partition.as_str()),
        ];
        let gauge = |name: &str| self.gauge(name, &labels);
        let paused = |reason: &str| {
            let mut l = labels.to_vec();
            l.push(("reason", reason));
            self.gauge("kafka.consumer.partition.paused", &l)
        };
        let limit = gauge("kafka.consumer.partition.buffer_limit_bytes")?;
        (limit > 0.0).then(|| PartitionGauges {
            buffered: gauge("kafka.consumer.partition.buffered_bytes").unwrap(),
            limit,
            paused_by_application: paused("application").unwrap(),
            paused_by_backpressure: paused("backpressure").unwrap(),
            lag: gauge("kafka.consumer.partition.records_lag").unwrap(),
        })
    }

    /// The request errors of the client `client_id` counted for `api` and `error`, summed over brokers.
    fn request_errors(&self, client_id: &str, api: &str, error: &str) -> u64 {
        let labels = [("client_id", client_id), ("api", api), ("error", error)];
        self.counters
            .iter()
            .filter(|(k, _)| {
                k.name() == "kafka.client.request_error_total"
                    && labels
                        .iter()
                        .all(|(n, v)| k.labels().any(|l| l.key() == *n && l.value() == *v))
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// The per-partition fetch counter of the consumer `client_id`.
    fn partition_fetches(&self, client_id: &str, tp: &TopicPartition) -> u64 {
        let partition = tp.partition.to_string();
        self.counter(
            "kafka.consumer.partition.fetch_total",
            &[
                ("client_id", client_id),
                ("topic", &*tp.topic),
                ("partition", partition.as_str()),
            ],
        )
    }
}

/// One partition's gauges, as one pass of the metrics task set them.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PartitionGauges {
    buffered: f64,
    limit: f64,
    paused_by_application: f64,
    paused_by_backpressure: f64,
    lag: f64,
}

impl PartitionGauges {
    /// What the gauges should say for `s`.
    fn of(s: &PartitionStats) -> PartitionGauges {
        PartitionGauges {
            buffered: s.buffered_bytes as f64,
            limit: s.buffer_limit as f64,
            paused_by_application: f64::from(u8::from(s.paused)),
            paused_by_backpressure: f64::from(u8::from(s.backpressured)),
            lag: s.lag.unwrap_or(0) as f64,
        }
    }
}

/// Polls `cond` (reading the recorder first) until it holds; panics after 30 s with `what`.
async fn eventually(rec: &mut Recorded, what: impl Fn() -> String, mut cond: impl FnMut(&Recorded) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        rec.update();
        if cond(rec) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never true: {}", what());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (bounded) until `cond` holds for the consumer's statistics.
async fn until_stats(c: &Consumer, what: &str, cond: impl Fn(&weir::consumer::ConsumerStats) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let s = c.stats();
        if cond(&s) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never true: {what}: {s:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const KEY_BYTES: usize = 8;

/// Produces `n` records to `partition` of `topic`, keys of [`KEY_BYTES`] and values of `value` bytes.
async fn produce(topic: &str, partition: i32, n: usize, value: usize) {
    let mut cfg = ProducerConfig::new(&Kafka::shared().bootstrap());
    cfg.set("linger.ms", "5").unwrap();
    let producer = Producer::new(cfg).unwrap();
    let mut sent = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("key-{i:04}");
        assert_eq!(key.len(), KEY_BYTES);
        let rec = ProducerRecord::new(topic, vec![b'v'; value])
            .key(key)
            .partition(partition);
        sent.push(producer.send(rec).await.unwrap());
    }
    for d in sent {
        d.await.unwrap();
    }
    producer.close().await.unwrap();
}

fn consumer(client_id: &str, settings: &[(&str, &str)]) -> Consumer {
    let mut cfg = ConsumerConfig::new(&Kafka::shared().bootstrap());
    cfg.set("client.id", client_id).unwrap();
    cfg.set("fetch.wait.max.ms", "100").unwrap();
    for (k, v) in settings {
        cfg.set(k, v).unwrap();
    }
    Consumer::new(cfg).unwrap()
}

async fn poll_n(c: &Consumer, want: usize) -> Vec<ConsumerRecord> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while got.len() < want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {want} records",
            got.len()
        );
        got.extend(c.poll(1000, Duration::from_millis(100)).await.unwrap());
    }
    assert_eq!(got.len(), want, "more records than produced");
    got
}

/// Records and bytes consumed match what was produced, in the snapshot and in the metrics; lag goes from the
/// whole partition (fetched and buffered records count) to 0; the fetch counters and the latency histogram
/// agree with the snapshot's fetches.
#[test]
fn consumed_records_bytes_fetches_and_lag_match_the_traffic() {
    with_recorder(|mut rec| async move {
        const PER_PARTITION: usize = 100;
        const VALUE: usize = 100;
        let topic = unique_topic("cm-traffic");
        Kafka::shared().create_topic(&topic, 3);
        for p in 0..3 {
            produce(&topic, p, PER_PARTITION, VALUE).await;
        }
        let client_id = unique_name("cm-traffic");
        let c = consumer(&client_id, &[("weir.metrics.interval.ms", "50")]);
        let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new(topic.as_str(), p)).collect();
        let starts: Vec<_> = tps.iter().map(|tp| (tp.clone(), StartOffset::Earliest)).collect();
        c.assign(&starts).await.unwrap();

        // Everything fetched, nothing delivered: the whole partition is lag.
        until_stats(&c, "every record fetched", |s| {
            s.partitions.len() == 3
                && s.partitions
                    .iter()
                    .all(|p| p.records_fetched == PER_PARTITION as u64)
        })
        .await;
        let s = c.stats();
        for p in &s.partitions {
            assert_eq!(p.position, 0);
            assert_eq!(p.high_watermark, Some(PER_PARTITION as i64));
            assert_eq!(p.last_stable_offset, Some(PER_PARTITION as i64));
            assert_eq!(p.lag, Some(PER_PARTITION as i64));
            assert_eq!(p.buffered_records, PER_PARTITION as u64);
            assert!(
                p.buffered_bytes >= (PER_PARTITION * (KEY_BYTES + VALUE)) as u64,
                "{p:?}"
            );
            assert!(!p.paused && !p.held && !p.backpressured, "{p:?}");
            assert!(p.fetches >= 1);
        }
        assert_eq!(s.records_fetched, 3 * PER_PARTITION as u64);
        assert_eq!(
            s.buffered_bytes as u64,
            s.partitions.iter().map(|p| p.buffered_bytes).sum::<u64>()
        );
        eventually(
            &mut rec,
            || "the lag gauges say the whole partitions".into(),
            |r| {
                tps.iter().all(|tp| {
                    r.partition(&client_id, tp)
                        .is_some_and(|g| g.lag == PER_PARTITION as f64 && g.buffered > 0.0)
                })
            },
        )
        .await;
        // Nothing moves while nothing is polled: the gauges are the snapshot's.
        let s = c.stats();
        for p in &s.partitions {
            assert_eq!(
                rec.partition(&client_id, &p.topic_partition),
                Some(PartitionGauges::of(p))
            );
        }

        let records = poll_n(&c, 3 * PER_PARTITION).await;
        let payload: usize = records
            .iter()
            .map(|r| r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()))
            .sum();
        let want_bytes = 3 * PER_PARTITION * (KEY_BYTES + VALUE);
        assert_eq!(payload, want_bytes);
        let s = c.stats();
        assert_eq!(s.records_delivered, 3 * PER_PARTITION as u64);
        assert_eq!(s.bytes_delivered, want_bytes as u64);
        for p in &s.partitions {
            assert_eq!((p.position, p.lag), (PER_PARTITION as i64, Some(0)), "{p:?}");
            assert_eq!((p.buffered_bytes, p.buffered_records), (0, 0), "{p:?}");
        }
        rec.update();
        let me = [("client_id", client_id.as_str())];
        assert_eq!(
            rec.counter("kafka.consumer.records_consumed_total", &me),
            3 * PER_PARTITION as u64
        );
        assert_eq!(
            rec.counter("kafka.consumer.bytes_consumed_total", &me),
            want_bytes as u64
        );
        eventually(
            &mut rec,
            || "the lag gauges reach 0".into(),
            |r| {
                tps.iter().all(|tp| {
                    r.partition(&client_id, tp)
                        .is_some_and(|g| g.lag == 0.0 && g.buffered == 0.0)
                })
            },
        )
        .await;

        // Once closed, nothing is fetched any more and the task publishes the last fetches: the counters
        // equal the snapshot's, one latency sample per fetch.
        c.close().await.unwrap();
        eventually(
            &mut rec,
            || format!("fetch counters equal the snapshot's: {:#?}", c.stats()),
            |r| {
                let s = c.stats();
                r.counter("kafka.consumer.fetch_total", &me) == s.fetches
                    && s.partitions
                        .iter()
                        .all(|p| r.partition_fetches(&client_id, &p.topic_partition) == p.fetches)
            },
        )
        .await;
        let s = c.stats();
        assert!(
            s.fetches >= 1 && s.partitions.iter().all(|p| p.fetches >= 1),
            "{s:?}"
        );
        let latencies = rec.histogram("kafka.consumer.fetch_latency_seconds", &me);
        assert_eq!(latencies.len() as u64, s.fetches);
        assert!(latencies.iter().all(|&l| l > 0.0 && l < 30.0), "{latencies:?}");
        assert_eq!(
            rec.unit(MetricKind::Counter, "kafka.consumer.bytes_consumed_total"),
            Some(Unit::Bytes)
        );
        assert_eq!(
            rec.unit(MetricKind::Histogram, "kafka.consumer.fetch_latency_seconds"),
            Some(Unit::Seconds)
        );
    });
}

/// A fetch from past the end of the log is refused with OFFSET_OUT_OF_RANGE: counted once as an error of the
/// Fetch API, by name, and the consumer recovers by `auto.offset.reset` (earliest) and reads every record.
#[test]
fn a_fetch_error_is_counted_by_name() {
    with_recorder(|mut rec| async move {
        let topic = unique_topic("cm-fetch-error");
        Kafka::shared().create_topic(&topic, 1);
        produce(&topic, 0, 5, 10).await;
        let client_id = unique_name("cm-fetch-error");
        let c = consumer(&client_id, &[("auto.offset.reset", "earliest")]);
        let tp = TopicPartition::new(topic.as_str(), 0);
        c.assign(&[(tp, StartOffset::Offset(1000))]).await.unwrap();
        let records = poll_n(&c, 5).await;
        assert_eq!(
            records.iter().map(|r| r.offset).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        // The refused fetch came before the records, which came after the reset.
        rec.update();
        assert_eq!(rec.request_errors(&client_id, "Fetch", "OFFSET_OUT_OF_RANGE"), 1);
        c.close().await.unwrap();
    });
}

/// A partition the application paused is reported paused by reason `application`; one whose buffer passed its
/// limit (a small partition buffer) by reason `backpressure`, until it drains; a partition unassigned has its
/// gauges zeroed. The gauges agree with the snapshot throughout. (The metrics task is off: each pass is made
/// by the test, so that no snapshot comes between a pass and the next.)
#[test]
fn paused_and_backpressured_partitions_are_reported_by_reason() {
    with_recorder(|mut rec| async move {
        const LIMIT: usize = 16 << 10;
        let topic = unique_topic("cm-pause");
        Kafka::shared().create_topic(&topic, 2);
        produce(&topic, 0, 10, 200).await;
        produce(&topic, 1, 300, 200).await;
        let client_id = unique_name("cm-pause");
        let c = consumer(
            &client_id,
            &[
                ("weir.metrics.interval.ms", "0"),
                ("weir.partition.buffer.bytes", &LIMIT.to_string()),
            ],
        );
        let (p0, p1) = (
            TopicPartition::new(topic.as_str(), 0),
            TopicPartition::new(topic.as_str(), 1),
        );
        c.assign(&[
            (p0.clone(), StartOffset::Earliest),
            (p1.clone(), StartOffset::Earliest),
        ])
        .await
        .unwrap();
        c.pause(std::slice::from_ref(&p0)).unwrap();
        until_stats(&c, "partition 1 backpressured", |s| {
            s.partitions
                .iter()
                .any(|p| p.topic_partition == p1 && p.backpressured)
        })
        .await;

        c.publish_partition_metrics();
        rec.update();
        let s = c.stats();
        let (s0, s1) = (&s.partitions[0], &s.partitions[1]);
        assert!(s0.paused && !s0.backpressured, "{s0:?}");
        assert!(
            !s1.paused && s1.backpressured && s1.buffered_bytes >= LIMIT as u64,
            "{s1:?}"
        );
        assert_eq!((s0.buffer_limit, s1.buffer_limit), (LIMIT as u64, LIMIT as u64));
        let (g0, g1) = (
            rec.partition(&client_id, &p0).unwrap(),
            rec.partition(&client_id, &p1).unwrap(),
        );
        assert_eq!(g0, PartitionGauges::of(s0));
        assert_eq!(g1, PartitionGauges::of(s1));
        assert_eq!((g0.paused_by_application, g0.paused_by_backpressure), (1.0, 0.0));
        assert_eq!((g1.paused_by_application, g1.paused_by_backpressure), (0.0, 1.0));

        // Draining partition 1 (partition 0 stays paused: none of its records is delivered).
        let records = poll_n(&c, 300).await;
        assert!(records.iter().all(|r| r.partition == 1));
        until_stats(&c, "partition 1 drained and caught up", |s| {
            s.partitions[1].lag == Some(0) && !s.partitions[1].backpressured
        })
        .await;
        c.publish_partition_metrics();
        rec.update();
        let g1 = rec.partition(&client_id, &p1).unwrap();
        assert_eq!((g1.paused_by_backpressure, g1.lag), (0.0, 0.0));
        assert!(c.stats().backpressure_pauses >= 1);

        // Partition 0 unassigned: the pass after it zeroes its gauges (the pass before set them again).
        c.publish_partition_metrics();
        c.unassign(std::slice::from_ref(&p0));
        c.publish_partition_metrics();
        rec.update();
        let labels = [
            ("client_id", client_id.as_str()),
            ("topic", topic.as_str()),
            ("partition", "0"),
        ];
        let mut paused = labels.to_vec();
        paused.push(("reason", "application"));
        assert_eq!(rec.gauge("kafka.consumer.partition.paused", &paused), Some(0.0));
        assert_eq!(
            rec.gauge("kafka.consumer.partition.buffer_limit_bytes", &labels),
            Some(0.0)
        );
        let s = c.stats();
        assert_eq!(s.partitions.len(), 1);
        assert_eq!(s.partitions[0].topic_partition, p1);
        c.close().await.unwrap();
    });
}

/// A member's rebalances are counted in its statistics and its metrics alike: joining, then a second member
/// joining; the latency histogram holds one sample per rebalance, the last equal to the snapshot's.
#[test]
fn group_rebalances_are_counted() {
    with_recorder(|mut rec| async move {
        let broker = Kafka::shared();
        let topic = unique_topic("cm-group");
        broker.create_topic(&topic, 2);
        let group_id = unique_name("cm-group");
        let member = |client_id: &str| {
            let mut cfg = group::group_config(broker, &group_id, &[("client.id", client_id)]);
            cfg.set("weir.metrics.interval.ms", "50").unwrap();
            let m = GroupConsumer::new(cfg).unwrap();
            m.subscribe(&[&topic]);
            m
        };
        let (id_a, id_b) = (unique_name("cm-a"), unique_name("cm-b"));
        let a = member(&id_a);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !(a.stats().state == MemberState::Stable && a.assignment().len() == 2) {
            assert!(tokio::time::Instant::now() < deadline, "{:?}", a.stats());
            a.poll(100, Duration::from_millis(50)).await.unwrap();
        }
        let s = a.stats();
        assert_eq!(s.rebalances, 1, "{s:?}");
        assert!(s.generation >= 1 && !s.member_id.is_empty(), "{s:?}");
        assert_eq!(
            s.partitions.len(),
            2,
            "the consumer's partitions, through the group's stats"
        );
        let labels_a = [("client_id", id_a.as_str()), ("group", group_id.as_str())];
        rec.update();
        assert_eq!(rec.counter("kafka.consumer.rebalance_total", &labels_a), 1);
        let samples = rec.histogram("kafka.consumer.rebalance_latency_seconds", &labels_a);
        assert_eq!(samples.len(), 1);
        assert!((samples[0] - s.last_rebalance.unwrap().as_secs_f64()).abs() < 1e-9);

        // A second member: both rebalance, and the first counts a second rebalance.
        let b = member(&id_b);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            a.poll(100, Duration::from_millis(50)).await.unwrap();
            b.poll(100, Duration::from_millis(50)).await.unwrap();
            let (sa, sb) = (a.stats(), b.stats());
            if sa.state == MemberState::Stable
                && sb.state == MemberState::Stable
                && a.assignment().len() == 1
                && b.assignment().len() == 1
            {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "{sa:?} {sb:?}");
        }
        let s = a.stats();
        assert!(s.rebalances >= 2, "{s:?}");
        rec.update();
        assert_eq!(
            rec.counter("kafka.consumer.rebalance_total", &labels_a),
            s.rebalances
        );
        let samples = rec.histogram("kafka.consumer.rebalance_latency_seconds", &labels_a);
        assert_eq!(samples.len() as u64, s.rebalances);
        assert!((samples.last().unwrap() - s.last_rebalance.unwrap().as_secs_f64()).abs() < 1e-9);
        let labels_b = [("client_id", id_b.as_str()), ("group", group_id.as_str())];
        assert_eq!(
            rec.counter("kafka.consumer.rebalance_total", &labels_b),
            b.stats().rebalances
        );
        a.close().await.unwrap();
        b.close().await.unwrap();
    });
}

/// Events at info level or above from weir, kept by [`nothing_is_logged_at_info_in_the_steady_state`].
#[derive(Clone, Default)]
struct Loud(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Loud {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() <= tracing::Level::INFO && meta.target().starts_with("weir") {
            let mut text = String::new();
            struct Text<'a>(&'a mut String);
            impl tracing::field::Visit for Text<'_> {
                fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                    self.0.push_str(&format!("{}={value:?} ", field.name()));
                }
            }
            event.record(&mut Text(&mut text));
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {}: {text}", meta.level(), meta.target()));
        }
    }
}

/// Once a group member is stable, producing and consuming logs nothing at info level or above (the
/// rebalance that made it stable may: it is rare), so an application's logs stay quiet in the steady state.
#[test]
fn nothing_is_logged_at_info_in_the_steady_state() {
    use tracing_subscriber::layer::SubscriberExt;
    let loud = Loud::default();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(loud.clone()));
    with_recorder(|_| async move {
        let broker = Kafka::shared();
        let topic = unique_topic("cm-quiet");
        broker.create_topic(&topic, 3);
        let group_id = unique_name("cm-quiet");
        let member = GroupConsumer::new(group::group_config(broker, &group_id, &[])).unwrap();
        member.subscribe(&[&topic]);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !(member.stats().state == MemberState::Stable && member.assignment().len() == 3) {
            assert!(tokio::time::Instant::now() < deadline, "{:?}", member.stats());
            member.poll(100, Duration::from_millis(50)).await.unwrap();
        }
        // The layer sees weir's events: the join logged its rebalance at info.
        let joined = std::mem::take(&mut *loud.0.lock().unwrap());
        assert!(joined.iter().any(|e| e.contains("rebalance")), "{joined:#?}");

        // The steady state: records produced to every partition and consumed, offsets committed.
        for p in 0..3 {
            produce(&topic, p, 200, 50).await;
        }
        let mut got = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while got < 600 {
            assert!(tokio::time::Instant::now() < deadline, "{got} of 600 records");
            got += member.poll(1000, Duration::from_millis(100)).await.unwrap().len();
        }
        member.commit_delivered().await.unwrap();
        assert_eq!(
            member.stats().rebalances,
            1,
            "no rebalance happened in the steady state"
        );
        let logged = loud.0.lock().unwrap().clone();
        assert!(logged.is_empty(), "logged in the steady state: {logged:#?}");
        member.close().await.unwrap();
    });
}
