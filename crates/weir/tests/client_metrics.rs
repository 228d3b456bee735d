//! The client's metrics on real Apache Kafka, read through a `DebuggingRecorder` installed for each test alone
//! (`metrics::with_local_recorder` around a current-thread runtime, on which every task of the clients runs):
//! records, bytes and batches a producer reports against what it was given; requests per API against what was
//! sent; Kafka errors by API and name (a topic created twice, a record the topic refuses); connections opened and
//! closed; SASL authentications; and the request and refresh spans.
//!
//! The cluster is secure (a `SASL_PLAINTEXT` listener besides the `PLAINTEXT` one the other tests use), with
//! SASL sessions of 2 s (`connections.max.reauth.ms`) and no ACLs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use metrics::{Key, Unit};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;
use weir::config::{ClientConfig, ProducerConfig};
use weir::error::KafkaCode;
use weir::{Admin, Error, Producer, ProducerRecord};
use weir_testkit::{unique_name, unique_topic, Kafka, SecureOptions, SecurityProtocol, Shape};

fn cluster() -> &'static Kafka {
    static K: OnceLock<Kafka> = OnceLock::new();
    K.get_or_init(|| {
        Kafka::start_secure(
            Shape::Single,
            &SecureOptions {
                reauth_ms: Some(2000),
                ..Default::default()
            },
        )
    })
}

/// Runs `test` on a current-thread runtime with a recorder of its own, which it reads through [`Recorded`].
fn with_recorder<F: Future<Output = ()>>(test: impl FnOnce(Recorded) -> F) {
    let _ = cluster();
    let recorder = DebuggingRecorder::new();
    let recorded = Recorded::new(recorder.snapshotter());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || rt.block_on(test(recorded)));
}

/// Everything recorded so far. A snapshot of a `DebuggingRecorder` resets what it reads (counters and gauges to
/// 0, histograms emptied), so each one is added to what earlier ones read: counters and the gauges weir only
/// increments and decrements are sums of their snapshots.
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
                DebugValue::Gauge(v) => *self.gauges.entry(key).or_default() += v.into_inner(),
                DebugValue::Histogram(v) => self
                    .histograms
                    .entry(key)
                    .or_default()
                    .extend(v.into_iter().map(|x| x.into_inner())),
            }
        }
    }

    /// Whether `key` is `name` with every label of `labels`.
    fn matches(key: &Key, name: &str, labels: &[(&str, &str)]) -> bool {
        key.name() == name
            && labels
                .iter()
                .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
    }

    /// The sum of the counters `name` with `labels` (over the labels not given).
    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let m = self
            .counters
            .iter()
            .filter(|(k, _)| Self::matches(k, name, labels));
        m.map(|(_, v)| v).sum()
    }

    /// The sum of the gauges `name` with `labels`.
    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let m = self.gauges.iter().filter(|(k, _)| Self::matches(k, name, labels));
        m.map(|(_, v)| v).sum()
    }

    /// The samples of the one histogram `name` with `labels`, in the order recorded.
    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let mut m = self
            .histograms
            .iter()
            .filter(|(k, _)| Self::matches(k, name, labels));
        let (_, v) = m
            .next()
            .unwrap_or_else(|| panic!("no histogram {name} {labels:?}"));
        assert!(m.next().is_none(), "several histograms {name} {labels:?}");
        v.clone()
    }

    /// The values of label `label` among the counters `name` with `labels`.
    fn label_values(&self, name: &str, labels: &[(&str, &str)], label: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .counters
            .keys()
            .filter(|k| Self::matches(k, name, labels))
            .filter_map(|k| {
                k.labels()
                    .find(|l| l.key() == label)
                    .map(|l| l.value().to_owned())
            })
            .collect();
        values.sort();
        values.dedup();
        values
    }

    fn unit(&self, kind: MetricKind, name: &str) -> Option<Unit> {
        self.units.get(&(kind, name.to_owned())).copied().flatten()
    }
}

/// Size in bytes of a record batch holding one record with no key, no headers and a value of `value` bytes
/// (record batch v2: a 61-byte header, then the record: its length, attributes, timestamp delta 0, offset delta
/// 0, key length -1, value length and value, header count 0, each integer a zigzag varint).
fn one_record_batch_size(value: usize) -> usize {
    let varint = |v: i64| {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        let mut n = 1;
        while z >= 0x80 {
            z >>= 7;
            n += 1;
        }
        n
    };
    let body = 1 + varint(0) + varint(0) + varint(-1) + varint(value as i64) + value + varint(0);
    61 + varint(body as i64) + body
}

#[test]
fn batch_size_formula() {
    // 61 + length (2) + attributes, deltas, key length (4) + value length (2) + 100 + headers (1).
    assert_eq!(one_record_batch_size(100), 170);
    assert_eq!(one_record_batch_size(10), 61 + 1 + 4 + 1 + 10 + 1);
}

/// Polls `cond` (reading the recorder first) until it holds; panics after 20 s with `what`.
async fn eventually(rec: &mut Recorded, what: &str, mut cond: impl FnMut(&Recorded) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        rec.update();
        if cond(rec) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never true: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const VALUE: usize = 100;

/// A producer's records, bytes, batches, requests per API and connections, against what it was given.
#[test]
fn producer_counts_match_what_was_sent() {
    with_recorder(|mut rec| async move {
        let k = cluster();
        let topic = unique_topic("metrics-produce");
        k.create_topic(&topic, 1);
        let client_id = unique_name("metrics-producer");
        let id = [("client_id", client_id.as_str())];
        let mut cfg = ProducerConfig::new(&k.bootstrap());
        cfg.set("client.id", &client_id).unwrap();
        let producer = Producer::new(cfg).unwrap();

        // One at a time: one record per batch, each of a size known in advance.
        const ONE_BY_ONE: usize = 20;
        for i in 0..ONE_BY_ONE {
            let value = format!("{i:0VALUE$}");
            let d = producer.send(ProducerRecord::new(&topic, value)).await.unwrap();
            d.await.unwrap();
        }
        // Then many at once: batched as the producer likes.
        const PIPELINED: usize = 3000;
        let mut ds = Vec::new();
        for i in 0..PIPELINED {
            let value = format!("{i:0VALUE$}");
            ds.push(producer.send(ProducerRecord::new(&topic, value)).await.unwrap());
        }
        for d in ds {
            d.await.unwrap();
        }
        producer.flush().await.unwrap();
        rec.update();

        let n = (ONE_BY_ONE + PIPELINED) as u64;
        let stats = producer.stats();
        assert_eq!(stats.records_sent, n, "{stats:?}");
        assert_eq!(rec.counter("kafka.producer.record_send_total", &id), n);
        assert_eq!(rec.counter("kafka.producer.record_error_total", &id), 0);
        assert_eq!(
            (stats.records_queued, stats.batches_in_flight, stats.record_errors),
            (0, 0, 0)
        );

        // Batches: the first ONE_BY_ONE held one record each, of the size the format gives.
        let batch_records = rec.histogram("kafka.producer.batch_size_records", &id);
        let batch_bytes = rec.histogram("kafka.producer.batch_size_bytes", &id);
        assert_eq!(batch_records.len(), batch_bytes.len());
        assert!(
            batch_records[..ONE_BY_ONE].iter().all(|&r| r == 1.0),
            "{batch_records:?}"
        );
        let expected = one_record_batch_size(VALUE) as f64;
        assert!(
            batch_bytes[..ONE_BY_ONE].iter().all(|&b| b == expected),
            "{batch_bytes:?}"
        );
        assert!(
            batch_records.len() < ONE_BY_ONE + PIPELINED,
            "the pipelined records were batched"
        );
        assert_eq!(batch_records.iter().sum::<f64>() as u64, n);
        // Bytes acknowledged: every batch, once, as sent.
        let bytes = rec.counter("kafka.producer.byte_total", &id);
        assert_eq!(bytes, batch_bytes.iter().sum::<f64>() as u64);
        assert_eq!(stats.bytes_sent, bytes);
        assert_eq!(stats.batches_sent, batch_bytes.len() as u64);
        assert!(
            bytes > (n as usize * VALUE) as u64,
            "{bytes} bytes for {n} records of {VALUE} B"
        );

        // Requests: one partition, so one batch per Produce request (plus a retry of any batch that had one).
        let requests = |api: &str| rec.counter("kafka.client.request_total", &[id[0], ("api", api)]);
        let retried = rec.counter("kafka.producer.record_retry_total", &id);
        assert_eq!(requests("Produce"), stats.produce_requests);
        if retried == 0 {
            assert_eq!(requests("Produce"), batch_bytes.len() as u64);
        } else {
            assert!(requests("Produce") > batch_bytes.len() as u64);
        }
        // One InitProducerId, and one more after each retriable refusal (COORDINATOR_LOAD_IN_PROGRESS, from a
        // cluster this fresh).
        let init_errors = rec.counter(
            "kafka.client.request_error_total",
            &[id[0], ("api", "InitProducerId")],
        );
        assert_eq!(requests("InitProducerId"), 1 + init_errors);
        let refreshes = rec.counter("kafka.client.metadata_refresh_total", &id);
        assert!(refreshes >= 1);
        assert_eq!(requests("Metadata"), refreshes);
        assert_eq!(
            rec.label_values("kafka.client.request_total", &id, "api"),
            ["ApiVersions", "InitProducerId", "Metadata", "Produce"]
        );
        // Every Produce request was answered, its latency recorded both per request and per produce.
        let latencies = rec.histogram(
            "kafka.client.request_latency_seconds",
            &[id[0], ("api", "Produce")],
        );
        assert_eq!(latencies.len() as u64, requests("Produce"));
        assert!(latencies.iter().all(|&s| s > 0.0 && s < 30.0), "{latencies:?}");
        let produce = rec.histogram("kafka.producer.produce_latency_seconds", &id);
        assert_eq!(produce.len() as u64, requests("Produce"));
        assert_eq!(rec.gauge("kafka.client.requests_in_flight", &id), 0.0);
        assert_eq!(
            rec.unit(MetricKind::Histogram, "kafka.client.request_latency_seconds"),
            Some(Unit::Seconds)
        );
        assert_eq!(
            rec.unit(MetricKind::Counter, "kafka.producer.byte_total"),
            Some(Unit::Bytes)
        );

        // Connections: one to the bootstrap address (metadata, the producer id), one to the partition's leader
        // (its link in the metadata), each opened by an ApiVersions exchange.
        let created = rec.counter("kafka.client.connection_creation_total", &id);
        assert_eq!(created, 2);
        assert_eq!(requests("ApiVersions"), created);
        assert_eq!(rec.gauge("kafka.client.connection_count", &id), 2.0);
        assert_eq!(rec.counter("kafka.client.connection_close_total", &id), 0);
        let errors = |api: &str| rec.counter("kafka.client.request_error_total", &[id[0], ("api", api)]);
        assert_eq!(errors("Produce"), 0);

        producer.close().await.unwrap();
        drop(producer);
        eventually(
            &mut rec,
            "every connection closed once the producer is gone",
            |r| r.gauge("kafka.client.connection_count", &id) == 0.0,
        )
        .await;
        assert_eq!(rec.counter("kafka.client.connection_close_total", &id), created);
    });
}

/// Kafka errors counted by API and name: CreateTopics of a topic that exists, DeleteTopics of one that does not,
/// and a Produce whose record the topic refuses (also a record error of the producer).
#[test]
fn errors_are_counted_by_api_and_name() {
    with_recorder(|mut rec| async move {
        let k = cluster();
        let client_id = unique_name("metrics-admin");
        let id = [("client_id", client_id.as_str())];
        let mut cfg = ClientConfig::new(&k.bootstrap());
        cfg.set("client.id", &client_id).unwrap();
        let admin = Admin::new(cfg).unwrap();
        let topic = unique_topic("metrics-errors");
        admin.create_topic(&topic, 1, 1).await.unwrap();
        let again = admin.create_topic(&topic, 1, 1).await.unwrap_err();
        assert!(
            matches!(
                again,
                Error::Kafka {
                    code: KafkaCode::TopicAlreadyExists,
                    ..
                }
            ),
            "{again}"
        );
        let missing = admin
            .delete_topic(&unique_topic("metrics-missing"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                missing,
                Error::Kafka {
                    code: KafkaCode::UnknownTopicOrPartition,
                    ..
                }
            ),
            "{missing}"
        );
        rec.update();
        let api = |api: &'static str| [id[0], ("api", api)];
        assert_eq!(rec.counter("kafka.client.request_total", &api("CreateTopics")), 2);
        assert_eq!(rec.counter("kafka.client.request_total", &api("DeleteTopics")), 1);
        let errors = |api: &'static str| {
            rec.label_values(
                "kafka.client.request_error_total",
                &[id[0], ("api", api)],
                "error",
            )
        };
        assert_eq!(errors("CreateTopics"), ["TOPIC_ALREADY_EXISTS"]);
        assert_eq!(
            rec.counter(
                "kafka.client.request_error_total",
                &[id[0], ("error", "TOPIC_ALREADY_EXISTS")]
            ),
            1
        );
        assert_eq!(errors("DeleteTopics"), ["UNKNOWN_TOPIC_OR_PARTITION"]);
        assert_eq!(
            rec.counter("kafka.client.request_error_total", &api("DeleteTopics")),
            1
        );
        admin.delete_topic(&topic).await.unwrap();
        drop(admin);

        // A record larger than the topic takes: refused by the broker, not retried.
        let small = unique_topic("metrics-small");
        k.create_topic_with(&small, 1, &[("max.message.bytes", "1024")]);
        let producer_id = unique_name("metrics-refused");
        let pid = [("client_id", producer_id.as_str())];
        let mut cfg = ProducerConfig::new(&k.bootstrap());
        cfg.set("client.id", &producer_id).unwrap();
        let producer = Producer::new(cfg).unwrap();
        let ok = producer.send(ProducerRecord::new(&small, "fits")).await.unwrap();
        ok.await.unwrap();
        let big = producer
            .send(ProducerRecord::new(&small, vec![b'x'; 4000]))
            .await
            .unwrap();
        let refused = big.await.unwrap_err();
        assert!(
            matches!(
                refused,
                Error::Kafka {
                    code: KafkaCode::MessageTooLarge,
                    ..
                }
            ),
            "{refused}"
        );
        rec.update();
        assert_eq!(
            rec.label_values(
                "kafka.client.request_error_total",
                &[pid[0], ("api", "Produce")],
                "error"
            ),
            ["MESSAGE_TOO_LARGE"]
        );
        // (Other calls may have had their own errors: a fresh cluster answers the first InitProducerId with
        // COORDINATOR_LOAD_IN_PROGRESS, retried.)
        assert_eq!(
            rec.counter("kafka.client.request_error_total", &[pid[0], ("api", "Produce")]),
            1
        );
        assert_eq!(rec.counter("kafka.producer.record_error_total", &pid), 1);
        assert_eq!(rec.counter("kafka.producer.record_send_total", &pid), 1);
        let stats = producer.stats();
        assert_eq!((stats.records_sent, stats.record_errors), (1, 1), "{stats:?}");
        producer.close().await.unwrap();
    });
}

/// SASL authentications counted per outcome, on the `SASL_PLAINTEXT` listener, re-authentications (KIP-368: the
/// cluster ends sessions after 2 s) included.
#[test]
fn authentications_are_counted() {
    with_recorder(|mut rec| async move {
        let k = cluster();
        let listener = k.listener(SecurityProtocol::SaslPlaintext);
        let admin_as = |client_id: &str, password: &str| {
            let mut c = ClientConfig::new(&listener);
            c.set("client.id", client_id).unwrap();
            c.set("security.protocol", "SASL_PLAINTEXT").unwrap();
            c.set("sasl.mechanism", "SCRAM-SHA-256").unwrap();
            c.set("sasl.username", SecureOptions::ADMIN_USER).unwrap();
            c.set("sasl.password", password).unwrap();
            c.set("max.block.ms", "2000").unwrap();
            Admin::new(c).unwrap()
        };
        let ok = |rec: &Recorded, id: &str| {
            rec.counter(
                "kafka.client.successful_authentication_total",
                &[("client_id", id)],
            )
        };
        let failed = |rec: &Recorded, id: &str| {
            rec.counter("kafka.client.failed_authentication_total", &[("client_id", id)])
        };
        let created = |rec: &Recorded, id: &str| {
            rec.counter("kafka.client.connection_creation_total", &[("client_id", id)])
        };

        let good_id = unique_name("metrics-auth-ok");
        let good = admin_as(&good_id, SecureOptions::ADMIN_PASSWORD);
        good.list_topics().await.unwrap();
        rec.update();
        assert_eq!(created(&rec, &good_id), 1);
        assert_eq!((ok(&rec, &good_id), failed(&rec, &good_id)), (1, 0));

        let bad_id = unique_name("metrics-auth-refused");
        let bad = admin_as(&bad_id, "not-the-password");
        let refused = bad.list_topics().await.unwrap_err();
        assert!(matches!(refused, Error::Authentication { .. }), "{refused}");
        rec.update();
        // Each connection of the refused client failed to authenticate, and none stayed open.
        assert!(failed(&rec, &bad_id) >= 1);
        assert_eq!(
            (ok(&rec, &bad_id), failed(&rec, &bad_id)),
            (0, created(&rec, &bad_id))
        );
        let bad_labels = [("client_id", bad_id.as_str())];
        assert_eq!(rec.gauge("kafka.client.connection_count", &bad_labels), 0.0);
        assert_eq!(
            rec.counter(
                "kafka.client.request_error_total",
                &[bad_labels[0], ("api", "SaslAuthenticate")]
            ),
            failed(&rec, &bad_id)
        );

        // The good client's one connection re-authenticates before each session ends, by its writer task.
        eventually(&mut rec, "two re-authentications", |r| ok(r, &good_id) >= 3).await;
        good.list_topics().await.unwrap();
        rec.update();
        assert_eq!((created(&rec, &good_id), failed(&rec, &good_id)), (1, 0));
        let handshakes = rec.counter(
            "kafka.client.request_total",
            &[("client_id", &good_id), ("api", "SaslHandshake")],
        );
        assert_eq!(handshakes, ok(&rec, &good_id), "one handshake per authentication");
    });
}

/// One span seen by [`Spans`]: its name and fields.
#[derive(Debug, Clone)]
struct SeenSpan {
    name: &'static str,
    fields: HashMap<String, String>,
}

/// A layer keeping every span opened and the fields recorded on it later. (The registry reuses the id of a
/// closed span: an id names the latest span given it.)
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<SeenSpans>>);

#[derive(Default)]
struct SeenSpans {
    spans: Vec<SeenSpan>,
    /// Index in `spans` of the latest span given each id.
    by_id: HashMap<u64, usize>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, _: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let name = attrs.metadata().name();
        let mut seen = self.0.lock().unwrap();
        let SeenSpans { spans, by_id } = &mut *seen;
        by_id.insert(id.into_u64(), spans.len());
        spans.push(SeenSpan { name, fields });
    }
    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, _: Context<'_, S>) {
        let mut seen = self.0.lock().unwrap();
        let SeenSpans { spans, by_id } = &mut *seen;
        if let Some(&i) = by_id.get(&id.into_u64()) {
            values.record(&mut Fields(&mut spans[i].fields));
        }
    }
}

/// A span per request (API, version, broker, correlation id) and per metadata refresh, at debug level.
#[test]
fn requests_and_refreshes_have_spans() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    with_recorder(|_| async move {
        let k = cluster();
        let admin = Admin::new(ClientConfig::new(&k.bootstrap())).unwrap();
        admin.list_topics().await.unwrap();
        admin.list_topics().await.unwrap();
    });
    let seen: Vec<SeenSpan> = spans.0.lock().unwrap().spans.clone();
    let requests: Vec<&SeenSpan> = seen.iter().filter(|s| s.name == "kafka_request").collect();
    let api = |s: &SeenSpan| s.fields.get("api").cloned().unwrap_or_default();
    let metadata: Vec<&&SeenSpan> = requests.iter().filter(|s| api(s) == "Metadata").collect();
    assert_eq!(metadata.len(), 2, "{requests:#?}");
    assert!(requests.iter().any(|s| api(s) == "ApiVersions"), "{requests:#?}");
    let mut ids = Vec::new();
    for s in &requests {
        for field in ["version", "broker", "correlation_id"] {
            assert!(s.fields.contains_key(field), "{field} missing: {s:#?}");
        }
        // The admin client's one connection: to the bootstrap address.
        assert_eq!(s.fields["broker"], cluster().bootstrap());
        ids.push(s.fields["correlation_id"].parse::<i32>().unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        requests.len(),
        "correlation ids are unique on the one connection"
    );
    let refreshes: Vec<&SeenSpan> = seen.iter().filter(|s| s.name == "metadata_refresh").collect();
    assert_eq!(refreshes.len(), 2, "{seen:#?}");
    assert!(refreshes
        .iter()
        .all(|s| s.fields["all"] == "true" && s.fields.contains_key("brokers")));
}
