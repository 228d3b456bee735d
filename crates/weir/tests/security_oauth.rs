//! SASL/OAUTHBEARER on real Apache Kafka, the broker validating JWTs against the JWKS of an OpenID Connect
//! provider on loopback (`weir_testkit::oidc::OidcServer`): weir's own OIDC client (KIP-768) and an
//! application's token provider; an expired token, a wrong client secret and the token endpoint down are typed
//! errors within the request timeout, with no secret in them. (Tokens renewed while clients work:
//! `security_reauth.rs`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use weir::config::{ClientConfig, OAuthToken, ProducerConfig, Secret, TokenFuture, TokenProvider};
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{Admin, Error, Producer, ProducerRecord};
use weir_testkit::oidc::OidcServer;
use weir_testkit::{unique_name, Kafka, SecureOptions, SecurityProtocol, Shape};

struct Cluster {
    oidc: OidcServer,
    kafka: Kafka,
}

/// One OIDC provider and one broker (OAUTHBEARER on SASL_PLAINTEXT and SASL_SSL) for the binary. Sessions end
/// with their token (`connections.max.reauth.ms` on, longer than any token here).
fn cluster() -> &'static Cluster {
    static C: OnceLock<Cluster> = OnceLock::new();
    C.get_or_init(|| {
        let oidc = OidcServer::start();
        let (mut settings, jvm_options) = oidc.broker_settings(SecurityProtocol::SaslPlaintext);
        let (ssl, _) = oidc.broker_settings(SecurityProtocol::SaslSsl);
        settings.extend(ssl);
        settings.dedup();
        let kafka = Kafka::start_secure(
            Shape::Single,
            &SecureOptions {
                reauth_ms: Some(3_600_000),
                settings,
                jvm_options,
                ..Default::default()
            },
        );
        Cluster { oidc, kafka }
    })
}

fn config(c: &Cluster, protocol: SecurityProtocol, extra: &[(&str, &str)]) -> ClientConfig {
    let mut cfg = ClientConfig::new(&c.kafka.listener(protocol));
    cfg.set("security.protocol", protocol.name()).unwrap();
    cfg.set("sasl.mechanism", "OAUTHBEARER").unwrap();
    cfg.set("request.timeout.ms", "10000").unwrap();
    if protocol.tls() {
        let ca = c.kafka.pki().unwrap().ca_cert_path.display().to_string();
        cfg.set("ssl.ca.location", &ca).unwrap();
    }
    for (k, v) in extra {
        cfg.set(k, v).unwrap();
    }
    cfg
}

/// weir's own OIDC client, configured as a Java client is.
fn oidc_config(c: &Cluster, protocol: SecurityProtocol, secret: &str) -> ClientConfig {
    let jaas = format!(
        r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId="{}" clientSecret="{secret}" scope="kafka";"#,
        OidcServer::CLIENT_ID
    );
    config(
        c,
        protocol,
        &[
            ("sasl.oauthbearer.token.endpoint.url", &c.oidc.token_url()),
            ("sasl.jaas.config", &jaas),
        ],
    )
}

async fn round_trip(c: &Cluster, client: ClientConfig, n: usize) {
    let topic = unique_name("oauth");
    c.kafka.create_topic(&topic, 1);
    let mut pc = ProducerConfig::new("unused:1");
    pc.client = client.clone();
    let producer = Producer::new(pc).unwrap();
    let mut acks = Vec::new();
    for i in 0..n {
        acks.push(
            producer
                .send(ProducerRecord::new(topic.as_str(), format!("v{i}")))
                .await
                .unwrap(),
        );
    }
    for a in acks {
        a.await.unwrap();
    }
    producer.close().await.unwrap();
    let mut cc = ConsumerConfig::new("unused:1");
    cc.client = client;
    let consumer = Consumer::new(cc).unwrap();
    consumer
        .assign(&[(TopicPartition::new(topic.as_str(), 0), StartOffset::Earliest)])
        .await
        .unwrap();
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < n && Instant::now() < deadline {
        got += consumer
            .poll(1000, Duration::from_millis(200))
            .await
            .unwrap()
            .len();
    }
    consumer.close().await.unwrap();
    assert_eq!(got, n);
}

#[tokio::test]
async fn weirs_oidc_client_over_sasl_plaintext_and_sasl_ssl() {
    let c = cluster();
    for protocol in [SecurityProtocol::SaslPlaintext, SecurityProtocol::SaslSsl] {
        round_trip(c, oidc_config(c, protocol, OidcServer::CLIENT_SECRET), 100).await;
    }
    let seen = c.oidc.last_token_request().unwrap();
    assert_eq!(seen.scope.as_deref(), Some("kafka"), "{seen:?}");
}

/// The application's tokens, minted by the provider, counted.
#[derive(Debug)]
struct Minted {
    oidc: &'static OidcServer,
    lifetime: Duration,
    calls: AtomicUsize,
}

impl TokenProvider for Minted {
    fn token(&self) -> TokenFuture<'_> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let token = match self.lifetime.is_zero() {
            true => self.oidc.mint_expired(OidcServer::CLIENT_ID),
            false => self.oidc.mint(OidcServer::CLIENT_ID, self.lifetime),
        };
        let lifetime = self.lifetime;
        Box::pin(async move { Ok(OAuthToken::new(Secret::new(token), lifetime)) })
    }
}

#[tokio::test]
async fn an_applications_token_provider() {
    let c = cluster();
    let minted = Arc::new(Minted {
        oidc: &c.oidc,
        lifetime: Duration::from_secs(3600),
        calls: AtomicUsize::new(0),
    });
    let mut cfg = config(c, SecurityProtocol::SaslPlaintext, &[]);
    cfg.security.sasl.token_provider = Some(weir::config::TokenSource(minted.clone()));
    round_trip(c, cfg, 50).await;
    assert!(
        minted.calls.load(Ordering::Relaxed) >= 2,
        "one token per connection"
    );
}

async fn fails_fast(cfg: ClientConfig) -> Error {
    let t0 = Instant::now();
    let admin = Admin::new(cfg).unwrap();
    let e = tokio::time::timeout(Duration::from_secs(15), admin.list_topics())
        .await
        .expect("a hang")
        .expect_err("succeeded");
    assert!(t0.elapsed() < Duration::from_secs(12), "{:?}: {e}", t0.elapsed());
    e
}

#[tokio::test]
async fn an_expired_token_a_wrong_secret_and_a_down_endpoint_are_clear_errors() {
    let c = cluster();
    let expired = Arc::new(Minted {
        oidc: &c.oidc,
        lifetime: Duration::ZERO,
        calls: AtomicUsize::new(0),
    });
    let mut cfg = config(c, SecurityProtocol::SaslPlaintext, &[]);
    cfg.security.sasl.token_provider = Some(weir::config::TokenSource(expired));
    let e = fails_fast(cfg).await;
    assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
    assert!(e.to_string().contains("invalid_token"), "{e}");

    let e = fails_fast(oidc_config(c, SecurityProtocol::SaslPlaintext, "not-the-secret")).await;
    assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("not-the-secret"), "{e:?}");
    assert!(e.to_string().contains("invalid_client"), "{e}");

    c.oidc.set_down(true);
    let e = fails_fast(oidc_config(
        c,
        SecurityProtocol::SaslPlaintext,
        OidcServer::CLIENT_SECRET,
    ))
    .await;
    c.oidc.set_down(false);
    assert!(e.is_retriable(), "{e:?}");
    assert!(e.to_string().contains(&c.oidc.token_url()), "{e}");
}
