//! Re-authentication (KIP-368) on real Apache Kafka, under load: a producer and a consumer busy for several
//! session lifetimes renew every session in time, so the broker closes no connection and nothing is lost; with
//! SCRAM (sessions of `connections.max.reauth.ms`) and with OAUTHBEARER tokens from weir's OIDC client that
//! expire every 6 s (sessions end with the token, so each renewal needs a fresh one). Its own binary: it counts
//! weir's debug events process-wide.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::config::{ClientConfig, ProducerConfig};
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{Producer, ProducerRecord};
use weir_testkit::oidc::OidcServer;
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

/// Produces and consumes on a new topic for `lifetimes` sessions of `session`: no error, nothing lost, in
/// order; then checks that the broker closed no connection and that sessions were renewed.
async fn busy(k: &Kafka, events: &Events, client: ClientConfig, session: Duration, lifetimes: u32) {
    let closed_before = events.closed_by_broker.load(Ordering::Relaxed);
    let renewed_before = events.reauthenticated.load(Ordering::Relaxed);
    let topic = unique_name("reauth");
    k.create_topic(&topic, 1);
    let mut pc = ProducerConfig::new("unused:1");
    pc.client = client.clone();
    let producer = Producer::new(pc).unwrap();
    let mut cc = ConsumerConfig::new("unused:1");
    cc.client = client;
    let consumer = Consumer::new(cc).unwrap();
    consumer
        .assign(&[(TopicPartition::new(topic.as_str(), 0), StartOffset::Earliest)])
        .await
        .unwrap();
    let until = Instant::now() + session * lifetimes;
    let (mut sent, mut got) = (0usize, 0usize);
    while Instant::now() < until || got < sent {
        if Instant::now() < until {
            for _ in 0..20 {
                producer
                    .send(ProducerRecord::new(topic.as_str(), format!("r{sent}")))
                    .await
                    .unwrap()
                    .await
                    .unwrap();
                sent += 1;
            }
        }
        for r in consumer.poll(1000, Duration::from_millis(50)).await.unwrap() {
            assert_eq!(r.offset, got as i64);
            got += 1;
        }
    }
    producer.close().await.unwrap();
    consumer.close().await.unwrap();
    let renewed = events.reauthenticated.load(Ordering::Relaxed) - renewed_before;
    let closed = events.closed_by_broker.load(Ordering::Relaxed) - closed_before;
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

#[tokio::test]
async fn sessions_are_renewed_without_interrupting_work() {
    use tracing_subscriber::layer::SubscriberExt;
    let events = Arc::new(Events::default());
    let subscriber = tracing_subscriber::registry()
        .with(Counting(events.clone()))
        .with(tracing_subscriber::filter::LevelFilter::DEBUG);
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let oidc = OidcServer::start();
    let (settings, jvm_options) = oidc.broker_settings(SecurityProtocol::SaslSsl);
    let k = Kafka::start_secure(
        Shape::Single,
        &SecureOptions {
            reauth_ms: Some(REAUTH_MS),
            settings,
            jvm_options,
            ..Default::default()
        },
    );
    let client = |mechanism: &[(&str, &str)]| {
        let mut c = ClientConfig::new(&k.listener(SecurityProtocol::SaslSsl));
        let ca = k.pki().unwrap().ca_cert_path.display().to_string();
        c.set("security.protocol", "SASL_SSL").unwrap();
        c.set("ssl.ca.location", &ca).unwrap();
        for (key, value) in mechanism {
            c.set(key, value).unwrap();
        }
        c
    };

    let scram = client(&[
        ("sasl.mechanism", "SCRAM-SHA-256"),
        ("sasl.username", SecureOptions::ADMIN_USER),
        ("sasl.password", SecureOptions::ADMIN_PASSWORD),
    ]);
    busy(&k, &events, scram, Duration::from_millis(REAUTH_MS), 4).await;
    assert!(events.authenticated.load(Ordering::Relaxed) >= 2);

    // Sessions end with the token or after REAUTH_MS, whichever comes first; a token is replaced at 80% of its
    // life, so no session is shorter than 1.2 s, and renewals (at least a second apart) keep up.
    let token_lifetime = Duration::from_secs(6);
    oidc.set_token_lifetime(token_lifetime);
    let oauth = client(&[
        ("sasl.mechanism", "OAUTHBEARER"),
        ("sasl.oauthbearer.token.endpoint.url", &oidc.token_url()),
        ("sasl.oauthbearer.client.id", OidcServer::CLIENT_ID),
        ("sasl.oauthbearer.client.secret", OidcServer::CLIENT_SECRET),
    ]);
    let issued = oidc.tokens_issued();
    let t0 = Instant::now();
    busy(&k, &events, oauth, token_lifetime, 3).await;
    // One token at a time for all of a client's connections, renewed at 80% of its life (which the JWT's
    // whole-second exp may shorten to 5 s): per client (a producer and a consumer here) at most one per 4 s,
    // plus the first. Without sharing, each connection would fetch one at each renewal, every 1-2 s.
    let issued = oidc.tokens_issued() - issued;
    let bound = 2 * ((t0.elapsed().as_secs_f64() / 4.0).ceil() as u64 + 1);
    assert!(
        (3..=bound).contains(&issued),
        "tokens fetched: {issued} in {:?}",
        t0.elapsed()
    );
}
