//! Secrets never leak: every configuration type is formatted with every secret property set, every error weir
//! returns for bad credentials or keys is formatted, and everything weir logs at TRACE while it authenticates
//! (successfully and not) on real Apache Kafka is searched for the secrets. Its own binary: it installs the
//! process-wide log subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir::config::{ClientConfig, ProducerConfig};
use weir::consumer::ConsumerConfig;
use weir::group::GroupConfig;
use weir::{Admin, Producer, ProducerRecord};
use weir_testkit::pki::CLIENT_KEY_PASSWORD;
use weir_testkit::{unique_name, Kafka, SecureOptions, SecurityProtocol, Shape};

const PASSWORD: &str = "pw-7f3a9c";
const USER: &str = "leaktest";

/// Every string that must never appear.
fn secrets(k: &Kafka) -> Vec<String> {
    let pki = k.pki().unwrap();
    let key_body = |pem: &str| pem.lines().nth(1).unwrap_or_default().to_string();
    vec![
        PASSWORD.into(),
        CLIENT_KEY_PASSWORD.into(),
        "hunter2-jaas".into(),
        key_body(&pki.client.key_pem),
        key_body(&pki.client_key_encrypted_pem),
    ]
}

fn assert_clean(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "{what} shows a secret ({s:?}):\n{text}"
        );
    }
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_debug_errors_or_logs() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let k = Kafka::start_secure(
        Shape::Single,
        &SecureOptions {
            scram_users: vec![(USER.into(), PASSWORD.into())],
            plain_users: vec![(USER.into(), PASSWORD.into())],
            ..Default::default()
        },
    );
    let secrets = secrets(&k);
    let pki = k.pki().unwrap();

    // Every secret property set, on every configuration.
    let secret_settings = [
        ("sasl.password", PASSWORD.to_string()),
        (
            "sasl.jaas.config",
            format!(
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="{USER}" password="hunter2-jaas";"#
            ),
        ),
        ("ssl.key.pem", pki.client_key_encrypted_pem.clone()),
        ("ssl.keystore.key", pki.client.key_pem.clone()),
        ("ssl.key.password", CLIENT_KEY_PASSWORD.to_string()),
    ];
    let mut client = ClientConfig::new(&k.bootstrap());
    let mut producer = ProducerConfig::new(&k.bootstrap());
    let mut consumer = ConsumerConfig::new(&k.bootstrap());
    let mut group = GroupConfig::new(&k.bootstrap(), "g");
    for (key, value) in &secret_settings {
        client.set(key, value).unwrap();
        producer.set(key, value).unwrap();
        consumer.set(key, value).unwrap();
        group.set(key, value).unwrap();
    }
    for (what, text) in [
        ("ClientConfig", format!("{client:?} {client:#?}")),
        ("ProducerConfig", format!("{producer:?}")),
        ("ConsumerConfig", format!("{consumer:?}")),
        ("GroupConfig", format!("{group:?}")),
    ] {
        assert_clean(what, &text, &secrets);
    }

    // Errors: a bad key password, a malformed jaas config, a wrong password on the wire.
    let mut bad_key = ClientConfig::new(&k.listener(SecurityProtocol::Ssl));
    for (key, value) in [
        ("security.protocol", "SSL"),
        ("ssl.ca.location", &pki.ca_cert_path.display().to_string()),
        (
            "ssl.certificate.location",
            &pki.client.cert_path.display().to_string(),
        ),
        ("ssl.key.pem", &pki.client_key_encrypted_pem),
        ("ssl.key.password", "hunter2-jaas"),
    ] {
        bad_key.set(key, value).unwrap();
    }
    let e = Admin::new(bad_key)
        .err()
        .expect("a wrong key password is refused");
    assert_clean("key password error", &format!("{e} {e:?}"), &secrets);
    assert!(e.to_string().contains("ssl.key.password"), "{e}");

    let e = ClientConfig::new("b:1")
        .set(
            "sasl.jaas.config",
            r#"PlainLoginModule required password="hunter2-jaas"#,
        )
        .unwrap_err();
    assert_clean("jaas error", &format!("{e} {e:?}"), &secrets);

    for mechanism in ["PLAIN", "SCRAM-SHA-256"] {
        for password in [PASSWORD, "hunter2-jaas"] {
            let mut cfg = ProducerConfig::new(&k.listener(SecurityProtocol::SaslPlaintext));
            for (key, value) in [
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", mechanism),
                ("sasl.username", USER),
                ("sasl.password", password),
                ("request.timeout.ms", "10000"),
            ] {
                cfg.set(key, value).unwrap();
            }
            let topic = unique_name("leak");
            k.create_topic(&topic, 1);
            let producer = Producer::new(cfg).unwrap();
            let sent = async {
                producer
                    .send(ProducerRecord::new(topic.as_str(), "v"))
                    .await?
                    .await
            };
            let outcome = tokio::time::timeout(Duration::from_secs(30), sent).await.unwrap();
            match (password == PASSWORD, outcome) {
                (true, Ok(_)) => {}
                (false, Err(e)) => {
                    assert!(matches!(e, weir::Error::Authentication { .. }), "{e:?}");
                    assert_clean("authentication error", &format!("{e} {e:?}"), &secrets);
                }
                (good, other) => panic!("{mechanism} with the right password: {good}: {other:?}"),
            }
            producer.close().await.unwrap();
        }
    }

    let logged = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("authenticated"),
        "TRACE logging did not capture weir"
    );
    assert_clean("the log", &logged, &secrets);
}
