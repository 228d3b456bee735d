//! Re-authentication (KIP-368) on real Apache Kafka, under load: a producer and a consumer busy for several
//! session lifetimes renew every session in time, so the broker closes no connection and nothing is lost. Its
//! own binary: it counts weir's debug events process-wide.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::config::{ClientConfig, ProducerConfig};
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{Producer, ProducerRecord};
use weir_testkit::{unique_name, Kafka, SecureOptions, SecurityProtocol, Shape};

/// The session lifetime the broker sets (`connections.max.reauth.ms`).
const REAUTH_MS: u64 = 2_000;

/// Counts weir's debug events by message.
#[derive(Default)]
struct Events {
    reauthenticated: AtomicUsize,
    authenticated: AtomicUsize,
    closed_by_broker: AtomicUsize,
}

struct Counting(Arc<Events>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Counting
where
    S: for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut m = Message(String::new());
        event.record(&mut m);
        let counter = match m.0.as_str() {
            "re-authenticated" => &self.0.reauthenticated,
            "authenticated" => &self.0.authenticated,
            "connection closed by broker" => &self.0.closed_by_broker,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A consumer and a producer busy for several session lifetimes: every connection re-authenticates in time, so
/// the broker closes none, and nothing is lost.
#[tokio::test]
async fn sessions_are_renewed_without_interrupting_work() {
    use tracing_subscriber::layer::SubscriberExt;
    let events = Arc::new(Events::default());
    let subscriber = tracing_subscriber::registry()
        .with(Counting(events.clone()))
        .with(tracing_subscriber::filter::LevelFilter::DEBUG);
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let k = Kafka::start_secure(
        Shape::Single,
        &SecureOptions {
            reauth_ms: Some(REAUTH_MS),
            ..Default::default()
        },
    );
    let bootstrap = k.listener(SecurityProtocol::SaslSsl);
    let mut client = ClientConfig::new(&bootstrap);
    for (key, value) in [
        ("security.protocol", "SASL_SSL"),
        (
            "ssl.ca.location",
            &k.pki().unwrap().ca_cert_path.display().to_string(),
        ),
        ("sasl.mechanism", "SCRAM-SHA-256"),
        ("sasl.username", SecureOptions::ADMIN_USER),
        ("sasl.password", SecureOptions::ADMIN_PASSWORD),
    ] {
        client.set(key, value).unwrap();
    }
    let topic = unique_name("reauth");
    k.create_topic(&topic, 1);
    let mut pc = ProducerConfig::new(&bootstrap);
    pc.client = client.clone();
    let producer = Producer::new(pc).unwrap();
    let mut cc = ConsumerConfig::new(&bootstrap);
    cc.client = client;
    let consumer = Consumer::new(cc).unwrap();
    consumer
        .assign(&[(TopicPartition::new(topic.as_str(), 0), StartOffset::Earliest)])
        .await
        .unwrap();

    let lifetimes = 4;
    let until = Instant::now() + Duration::from_millis(REAUTH_MS * lifetimes);
    let (mut sent, mut got) = (0usize, 0usize);
    while Instant::now() < until {
        for _ in 0..20 {
            producer
                .send(ProducerRecord::new(topic.as_str(), format!("r{sent}")))
                .await
                .unwrap()
                .await
                .unwrap();
            sent += 1;
        }
        for r in consumer.poll(1000, Duration::from_millis(50)).await.unwrap() {
            assert_eq!(r.offset, got as i64);
            got += 1;
        }
    }
    while got < sent {
        for r in consumer.poll(1000, Duration::from_millis(200)).await.unwrap() {
            assert_eq!(r.offset, got as i64);
            got += 1;
        }
    }
    let authenticated = events.authenticated.load(Ordering::Relaxed);
    let renewed = events.reauthenticated.load(Ordering::Relaxed);
    let closed = events.closed_by_broker.load(Ordering::Relaxed);
    producer.close().await.unwrap();
    consumer.close().await.unwrap();
    assert!(authenticated >= 2, "connections authenticated: {authenticated}");
    // Each connection lived about `lifetimes` sessions: at least the producer's and a fetch connection renewed
    // more than once.
    assert!(
        renewed >= 2 * (lifetimes as usize - 2),
        "re-authentications: {renewed}"
    );
    assert_eq!(
        closed, 0,
        "the broker closed connections: sessions were not renewed in time"
    );
}
