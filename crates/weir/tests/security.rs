//! weir over TLS and SASL on real Apache Kafka: produce and consume over every listener and mechanism, each way
//! of giving certificates and keys, interop with librdkafka (kcat) and the Java client over SASL_SSL, sessions that expire (KIP-368) while tests run, and the failures a user meets
//! (a wrong password, an untrusted or misnamed certificate, TLS to a plaintext port and the reverse) as clear,
//! typed errors within the request timeout.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use weir::config::{ClientConfig, ProducerConfig};
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{Admin, Error, ErrorKind, Producer, ProducerRecord};
use weir_testkit::pki::{ServerCert, CLIENT_KEY_PASSWORD};
use weir_testkit::{unique_name, Kafka, SecureOptions, SecurityProtocol, Shape};

/// The session lifetime the brokers set (`connections.max.reauth.ms`): short, so that every test here also
/// runs across re-authentications.
const REAUTH_MS: u64 = 2_500;
const ALICE: (&str, &str) = ("alice", "alice-secret");

/// The cluster of this binary: the client certificate required on SSL, alice for PLAIN and SCRAM, sessions of
/// [`REAUTH_MS`].
fn secure() -> &'static Kafka {
    static K: OnceLock<Kafka> = OnceLock::new();
    K.get_or_init(|| {
        let user = vec![(ALICE.0.to_string(), ALICE.1.to_string())];
        Kafka::start_secure(
            Shape::Single,
            &SecureOptions {
                client_auth_required: true,
                scram_users: user.clone(),
                plain_users: user,
                reauth_ms: Some(REAUTH_MS),
                ..Default::default()
            },
        )
    })
}

/// Client settings for `protocol` on `kafka`: TLS trusting the cluster's CA with the client certificate (on
/// SSL), SASL as `mechanism` with alice's credentials.
fn settings(kafka: &Kafka, protocol: SecurityProtocol, mechanism: Option<&str>) -> Vec<(String, String)> {
    let pki = kafka.pki().unwrap();
    let mut s = vec![("security.protocol".to_string(), protocol.name().to_string())];
    if protocol.tls() {
        s.push(("ssl.ca.location".into(), pki.ca_cert_path.display().to_string()));
    }
    if protocol == SecurityProtocol::Ssl {
        s.push((
            "ssl.certificate.location".into(),
            pki.client.cert_path.display().to_string(),
        ));
        s.push((
            "ssl.key.location".into(),
            pki.client.key_path.display().to_string(),
        ));
    }
    if let Some(m) = mechanism {
        s.push(("sasl.mechanism".into(), m.into()));
        s.push(("sasl.username".into(), ALICE.0.into()));
        s.push(("sasl.password".into(), ALICE.1.into()));
    }
    s
}

fn client_config(bootstrap: &str, settings: &[(String, String)]) -> ClientConfig {
    let mut c = ClientConfig::new(bootstrap);
    c.set("request.timeout.ms", "10000").unwrap();
    for (k, v) in settings {
        c.set(k, v).unwrap();
    }
    c
}

/// Produces `n` records to a new topic and reads them back, both through `settings` on `bootstrap`.
async fn round_trip(kafka: &Kafka, bootstrap: &str, settings: &[(String, String)], n: usize) {
    let topic = unique_name("sec");
    kafka.create_topic(&topic, 2);
    let client = client_config(bootstrap, settings);
    let mut pc = ProducerConfig::new(bootstrap);
    pc.client = client.clone();
    let producer = Producer::new(pc).unwrap();
    let mut acks = Vec::new();
    for i in 0..n {
        let r = ProducerRecord::new(topic.as_str(), format!("v{i}")).partition((i % 2) as i32);
        acks.push(producer.send(r).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
    producer.close().await.unwrap();

    let mut got = read_values(client, &topic, 2, n).await;
    got.sort();
    let mut want: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(got, want);
}

#[tokio::test]
async fn ssl_with_a_client_certificate_from_files() {
    let k = secure();
    round_trip(
        k,
        &k.listener(SecurityProtocol::Ssl),
        &settings(k, SecurityProtocol::Ssl, None),
        200,
    )
    .await;
}

#[tokio::test]
async fn ssl_with_inline_pem_and_an_encrypted_key() {
    let k = secure();
    let pki = k.pki().unwrap();
    let s: Vec<(String, String)> = [
        ("security.protocol", "SSL"),
        ("ssl.ca.pem", pki.ca_cert_pem.as_str()),
        ("ssl.certificate.pem", pki.client.cert_pem.as_str()),
        ("ssl.key.pem", pki.client_key_encrypted_pem.as_str()),
        ("ssl.key.password", CLIENT_KEY_PASSWORD),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    round_trip(k, &k.listener(SecurityProtocol::Ssl), &s, 50).await;
}

#[tokio::test]
async fn ssl_with_the_java_clients_pem_store_settings() {
    let k = secure();
    // As a Java client configuration has them: PEM truststore and keystore.
    let s: Vec<(String, String)> = k
        .java_client_config(SecurityProtocol::Ssl, None)
        .into_iter()
        .filter(|(key, _)| key != "bootstrap.servers")
        .collect();
    assert!(s.iter().any(|(key, _)| key == "ssl.keystore.location"), "{s:?}");
    round_trip(k, &k.listener(SecurityProtocol::Ssl), &s, 50).await;
}

#[tokio::test]
async fn sasl_plaintext_with_plain_and_both_scram_mechanisms() {
    let k = secure();
    let l = k.listener(SecurityProtocol::SaslPlaintext);
    for m in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        round_trip(k, &l, &settings(k, SecurityProtocol::SaslPlaintext, Some(m)), 50).await;
    }
}

#[tokio::test]
async fn sasl_ssl_with_a_java_jaas_config() {
    let k = secure();
    let s: Vec<(String, String)> = k
        .java_client_config(
            SecurityProtocol::SaslSsl,
            Some(("SCRAM-SHA-512", ALICE.0, ALICE.1)),
        )
        .into_iter()
        .filter(|(key, _)| key != "bootstrap.servers")
        .collect();
    assert!(s.iter().any(|(key, _)| key == "sasl.jaas.config"), "{s:?}");
    round_trip(k, &k.listener(SecurityProtocol::SaslSsl), &s, 200).await;
    round_trip(
        k,
        &k.listener(SecurityProtocol::SaslSsl),
        &settings(k, SecurityProtocol::SaslSsl, Some("PLAIN")),
        50,
    )
    .await;
}

/// Runs `op` and returns its error, checking that it came within the request timeout.
async fn fails_fast<T: std::fmt::Debug>(op: impl std::future::Future<Output = weir::Result<T>>) -> Error {
    let t0 = Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(15), op)
        .await
        .expect("no answer within the request timeout: a hang")
        .expect_err("the operation succeeded");
    assert!(
        t0.elapsed() < Duration::from_secs(12),
        "took {:?}: {e}",
        t0.elapsed()
    );
    e
}

#[tokio::test]
async fn a_wrong_password_or_an_unknown_user_is_an_authentication_error() {
    let k = secure();
    for protocol in [SecurityProtocol::SaslPlaintext, SecurityProtocol::SaslSsl] {
        for (user, password) in [("alice", "not-her-password"), ("mallory", "whatever-secret")] {
            for m in ["PLAIN", "SCRAM-SHA-512"] {
                let mut s = settings(k, protocol, Some(m));
                s.retain(|(key, _)| !key.starts_with("sasl.username") && !key.starts_with("sasl.password"));
                s.push(("sasl.username".into(), user.into()));
                s.push(("sasl.password".into(), password.into()));
                let admin = Admin::new(client_config(&k.listener(protocol), &s)).unwrap();
                let e = fails_fast(admin.list_topics()).await;
                assert!(matches!(e, Error::Authentication { .. }), "{m} {user}: {e:?}");
                assert_eq!(e.kind(), ErrorKind::Fatal);
                let shown = format!("{e} {e:?}");
                assert!(!shown.contains(password), "the password leaked: {shown}");
                assert!(shown.contains(m), "{shown}");
            }
        }
    }
}

#[tokio::test]
async fn a_mechanism_the_listener_does_not_enable_is_named() {
    let k = secure();
    // SASL on the SSL listener (which has no SASL): the broker refuses the handshake.
    let mut s = settings(k, SecurityProtocol::SaslSsl, Some("PLAIN"));
    s.push((
        "ssl.certificate.location".into(),
        k.pki().unwrap().client.cert_path.display().to_string(),
    ));
    s.push((
        "ssl.key.location".into(),
        k.pki().unwrap().client.key_path.display().to_string(),
    ));
    let admin = Admin::new(client_config(&k.listener(SecurityProtocol::Ssl), &s)).unwrap();
    let e = fails_fast(admin.list_topics()).await;
    assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error() {
    let k = secure();
    let pki = k.pki().unwrap();
    let mut s = settings(k, SecurityProtocol::SaslSsl, Some("PLAIN"));
    s.push((
        "ssl.ca.location".into(),
        pki.rogue_ca_cert_path.display().to_string(),
    ));
    let admin = Admin::new(client_config(&k.listener(SecurityProtocol::SaslSsl), &s)).unwrap();
    let e = fails_fast(admin.list_topics()).await;
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
    assert!(e.to_string().contains("not signed by a trusted CA"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Fatal);
    // Only the loudly named setting turns verification off.
    s.push(("enable.ssl.certificate.verification".into(), "false".into()));
    let admin = Admin::new(client_config(&k.listener(SecurityProtocol::SaslSsl), &s)).unwrap();
    admin.list_topics().await.unwrap();
}

/// By host name: the certificate's DNS name is checked (and sent as SNI), then the brokers' advertised address.
#[tokio::test]
async fn ssl_by_host_name() {
    let k = secure();
    let by_name = k
        .listener(SecurityProtocol::Ssl)
        .replace("127.0.0.1", "localhost");
    round_trip(k, &by_name, &settings(k, SecurityProtocol::Ssl, None), 20).await;
}

#[tokio::test]
async fn without_its_client_certificate_the_ssl_listener_refuses() {
    let k = secure();
    let mut s = settings(k, SecurityProtocol::Ssl, None);
    s.retain(|(key, _)| !key.starts_with("ssl.certificate") && !key.starts_with("ssl.key"));
    let admin = Admin::new(client_config(&k.listener(SecurityProtocol::Ssl), &s)).unwrap();
    let e = fails_fast(admin.list_topics()).await;
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
}

#[tokio::test]
async fn tls_to_a_plaintext_port_and_plaintext_to_a_tls_port_say_so() {
    let k = secure();
    let tls_to_plain = Admin::new(client_config(
        &k.bootstrap(),
        &settings(k, SecurityProtocol::Ssl, None),
    ))
    .unwrap();
    let e = fails_fast(tls_to_plain.list_topics()).await;
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
    assert!(e.to_string().contains("TLS listener"), "{e}");

    let plain_to_tls = Admin::new(client_config(&k.listener(SecurityProtocol::Ssl), &[])).unwrap();
    let e = fails_fast(plain_to_tls.list_topics()).await;
    assert!(e.to_string().contains("TLS"), "{e:?}");
}

/// The certificate names another host: refused, unless the host name check is turned off by name.
#[tokio::test]
async fn a_certificate_for_another_host_is_refused_unless_the_check_is_off() {
    let k = Kafka::start_secure(
        Shape::Single,
        &SecureOptions {
            server_cert: ServerCert::WrongHost,
            ..Default::default()
        },
    );
    let admin_settings = |check: Option<&str>| {
        let mut s = settings(&k, SecurityProtocol::SaslSsl, None);
        s.push(("sasl.mechanism".into(), "PLAIN".into()));
        s.push(("sasl.username".into(), SecureOptions::ADMIN_USER.into()));
        s.push(("sasl.password".into(), SecureOptions::ADMIN_PASSWORD.into()));
        if let Some(c) = check {
            s.push(("ssl.endpoint.identification.algorithm".into(), c.into()));
        }
        client_config(&k.listener(SecurityProtocol::SaslSsl), &s)
    };
    let e = fails_fast(Admin::new(admin_settings(None)).unwrap().list_topics()).await;
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
    assert!(e.to_string().contains("does not name the host"), "{e}");
    let topic = unique_name("wrong-host");
    k.create_topic(&topic, 1);
    let topics = Admin::new(admin_settings(Some("")))
        .unwrap()
        .list_topics()
        .await
        .unwrap();
    assert!(topics.contains(&topic), "{topics:?}");
}

/// librdkafka's properties for alice over SASL_SSL with `mechanism` (kcat `-X`).
fn kcat_sasl_ssl(k: &Kafka, mechanism: &str) -> Vec<String> {
    let ca = k.pki().unwrap().ca_cert_path.display().to_string();
    [
        "security.protocol=SASL_SSL".to_string(),
        format!("sasl.mechanisms={mechanism}"),
        format!("sasl.username={}", ALICE.0),
        format!("sasl.password={}", ALICE.1),
        format!("ssl.ca.location={ca}"),
    ]
    .into_iter()
    .flat_map(|x| ["-X".to_string(), x])
    .collect()
}

/// The Java client's properties for alice over SASL_SSL with `mechanism` (the peer's `--config`).
fn java_sasl_ssl(k: &Kafka, mechanism: &str) -> Vec<String> {
    k.java_client_config(SecurityProtocol::SaslSsl, Some((mechanism, ALICE.0, ALICE.1)))
        .into_iter()
        .filter(|(key, _)| key != "bootstrap.servers")
        .flat_map(|(key, value)| ["--config".to_string(), format!("{key}={value}")])
        .collect()
}

/// The values of the first `n` records of partitions `0..partitions` of `topic`, read from the start.
async fn read_values(client: ClientConfig, topic: &str, partitions: i32, n: usize) -> Vec<String> {
    let mut cc = ConsumerConfig::new("unused:1");
    cc.client = client;
    let consumer = Consumer::new(cc).unwrap();
    let starts: Vec<_> = (0..partitions)
        .map(|p| (TopicPartition::new(topic, p), StartOffset::Earliest))
        .collect();
    consumer.assign(&starts).await.unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < n && Instant::now() < deadline {
        for r in consumer.poll(1000, Duration::from_millis(200)).await.unwrap() {
            got.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
    }
    consumer.close().await.unwrap();
    got
}

async fn weir_reads(k: &Kafka, topic: &str, n: usize, mechanism: &str) -> Vec<String> {
    let bootstrap = k.listener(SecurityProtocol::SaslSsl);
    let client = client_config(
        &bootstrap,
        &settings(k, SecurityProtocol::SaslSsl, Some(mechanism)),
    );
    read_values(client, topic, 1, n).await
}

/// kcat (librdkafka) and the Java client, with the same credentials over SASL_SSL, read what weir wrote, and
/// weir reads what they wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_and_java_interoperate_over_sasl_ssl() {
    let k = secure();
    let kcat = weir_testkit::Kcat::require();
    let java = weir_testkit::peers::java::JavaPeer::require();
    let bootstrap = k.listener(SecurityProtocol::SaslSsl);
    let n = 100;
    let want: Vec<String> = (0..n).map(|i| format!("weir-{i}")).collect();

    // weir writes; kcat and Java read.
    let topic = unique_name("sec-interop");
    k.create_topic(&topic, 1);
    let mut pc = ProducerConfig::new(&bootstrap);
    pc.client = client_config(
        &bootstrap,
        &settings(k, SecurityProtocol::SaslSsl, Some("SCRAM-SHA-512")),
    );
    let producer = Producer::new(pc).unwrap();
    let mut acks = Vec::new();
    for v in &want {
        let r = ProducerRecord::new(topic.as_str(), v.clone()).partition(0);
        acks.push(producer.send(r).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
    producer.close().await.unwrap();
    let kcat_args = kcat_sasl_ssl(k, "SCRAM-SHA-512");
    let args: Vec<&str> = kcat_args.iter().map(String::as_str).collect();
    let read = tokio::task::block_in_place(|| kcat.consume_all(&bootstrap, &topic, "%s\n", &args));
    let read: Vec<String> = String::from_utf8(read)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(read, want, "kcat over SASL_SSL");
    let java_args = java_sasl_ssl(k, "SCRAM-SHA-256");
    let args: Vec<&str> = java_args.iter().map(String::as_str).collect();
    let read = tokio::task::block_in_place(|| {
        java.consume_with(&bootstrap, &topic, n, None, Duration::from_secs(60), &args)
    });
    let read: Vec<String> = read
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    assert_eq!(read, want, "Java over SASL_SSL");

    // kcat writes; weir reads.
    let topic = unique_name("sec-interop");
    k.create_topic(&topic, 1);
    let lines: String = (0..n).map(|i| format!("kcat-{i}\n")).collect();
    let kcat_args = kcat_sasl_ssl(k, "PLAIN");
    let args: Vec<&str> = kcat_args.iter().map(String::as_str).collect();
    let out =
        tokio::task::block_in_place(|| kcat.produce(&bootstrap, &topic, Some(0), lines.as_bytes(), &args));
    assert!(
        out.status.success(),
        "kcat -P: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want: Vec<String> = lines.lines().map(str::to_owned).collect();
    assert_eq!(
        weir_reads(k, &topic, n, "SCRAM-SHA-256").await,
        want,
        "weir reads kcat's"
    );

    // Java writes; weir reads.
    let topic = unique_name("sec-interop");
    k.create_topic(&topic, 1);
    let records: Vec<weir_testkit::peers::java::PeerRecord> = (0..n)
        .map(|i| weir_testkit::peers::java::PeerRecord::new(format!("java-{i}").as_bytes()).partition(0))
        .collect();
    let java_args = java_sasl_ssl(k, "SCRAM-SHA-512");
    let args: Vec<&str> = java_args.iter().map(String::as_str).collect();
    tokio::task::block_in_place(|| java.produce_with(&bootstrap, &topic, &args, &records));
    let want: Vec<String> = (0..n).map(|i| format!("java-{i}")).collect();
    assert_eq!(weir_reads(k, &topic, n, "PLAIN").await, want, "weir reads Java's");
}
