//! Tests of the secure cluster harness ([`Kafka::start_secure`], [`weir_testkit::Pki`]) with Apache Kafka's own
//! Java client (`crates/weir-testkit/java/Probe.java`, run by the JDK's single-file launcher on the broker's
//! jars), independently of weir's TLS and SASL: the listeners, users, ACL principals and certificates are what the
//! harness documents, and the certificates meant to be refused are refused for the documented reason.

use std::path::Path;
use std::time::Duration;

use weir_testkit::pki::{CLIENT_KEY_PASSWORD, CLIENT_PRINCIPAL};
use weir_testkit::{unique_name, Kafka, SecureOptions, SecurityProtocol, ServerCert, Shape};

/// Bound on one probe run (all its steps; each client call has its own 20-30 s timeout).
const PROBE_TIMEOUT: Duration = Duration::from_secs(120);

#[path = "support/probe.rs"]
mod support;

use support::{fails_with, ok, Outcome, Step};

/// Runs the steps in one JVM; one outcome per step.
fn probe(steps: Vec<Step>) -> Vec<Outcome> {
    support::probe(&[], steps, PROBE_TIMEOUT)
}

fn without_keystore(config: Vec<(String, String)>) -> Vec<(String, String)> {
    config
        .into_iter()
        .filter(|(k, _)| !k.starts_with("ssl.keystore"))
        .collect()
}

fn replace(mut config: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    config.retain(|(k, _)| k != key);
    config.push((key.to_string(), value.to_string()));
    config
}

fn at(path: &Path) -> String {
    format!("@{}", path.display())
}

/// One single-node cluster with ACLs, required client certificates and SCRAM and PLAIN users: every listener,
/// mechanism and principal the harness documents, and the client key in both its forms.
#[test]
fn secure_cluster_listeners_users_and_principals() {
    let opts = SecureOptions {
        client_auth_required: true,
        acls: true,
        scram_users: vec![("alice".into(), "alice-secret".into())],
        plain_users: vec![("bob".into(), "bob-secret".into())],
        // Accepted by the broker (long enough not to matter to the probe's short connections).
        reauth_ms: Some(600_000),
        settings: vec![("log.retention.ms".into(), "3600000".into())],
        ..SecureOptions::default()
    };
    let kafka = Kafka::start_secure(Shape::Single, &opts);
    eprintln!(
        "secure single-node Kafka {} started in {:?}",
        kafka.version(),
        kafka.started_in()
    );
    let pki = kafka.pki().expect("a secure cluster has a Pki");
    let props = std::fs::read_to_string(kafka.log_path(1).with_file_name("server.properties")).unwrap();
    for line in [
        "connections.max.reauth.ms=600000",
        "log.retention.ms=3600000",
        "listener.name.ssl.ssl.client.auth=required",
    ] {
        assert!(
            props.lines().any(|l| l == line),
            "{line} not in server.properties:\n{props}"
        );
    }
    assert!(pki.ca_cert_path.starts_with(std::env::temp_dir()));
    let topic = unique_name("secure");
    // The harness's own PLAINTEXT listener (User:ANONYMOUS, a super user) still creates topics.
    kafka.create_topic(&topic, 1);

    use SecurityProtocol::*;
    let admin512 = kafka.java_client_config(SaslSsl, Some(("SCRAM-SHA-512", "admin", "admin-secret")));
    let alice256 = kafka.java_client_config(SaslPlaintext, Some(("SCRAM-SHA-256", "alice", "alice-secret")));
    let bob_plain = kafka.java_client_config(SaslSsl, Some(("PLAIN", "bob", "bob-secret")));
    let admin_plain = kafka.java_client_config(SaslPlaintext, Some(("PLAIN", "admin", "admin-secret")));
    let alice_bad = kafka.java_client_config(SaslSsl, Some(("SCRAM-SHA-512", "alice", "not-her-password")));
    let cert = kafka.java_client_config(Ssl, None);
    let no_cert = without_keystore(kafka.java_client_config(Ssl, None));

    let r = probe(vec![
        Step::new("topics", &admin512),
        Step::new("produce", &admin512).arg("probe.topic", &topic),
        Step::new("produce", &alice256).arg("probe.topic", &topic),
        Step::new("topics", &bob_plain),
        Step::new("topics", &admin_plain),
        Step::new("topics", &alice_bad),
        Step::new("produce", &cert).arg("probe.topic", &topic),
        Step::new("allow-write", &admin512)
            .arg("probe.topic", &topic)
            .arg("probe.principal", CLIENT_PRINCIPAL),
        Step::new("produce", &cert)
            .arg("probe.topic", &topic)
            .arg("probe.attempts", "10"),
        Step::new("decrypt-key", &[])
            .arg("probe.encrypted", &at(&pki.client_key_encrypted_path))
            .arg("probe.plain", &at(&pki.client.key_path))
            .arg("probe.password", CLIENT_KEY_PASSWORD),
        Step::new("topics", &no_cert),
    ]);
    // SCRAM-SHA-512 over SASL_SSL as the super user admin: sees and writes the topic.
    let topics = ok(&r[0], "admin, SASL_SSL, SCRAM-SHA-512, list topics");
    assert!(topics.split(',').any(|t| t == topic), "admin sees {topics}");
    assert_eq!(ok(&r[1], "admin, SASL_SSL, SCRAM-SHA-512, produce"), "0:0");
    // SCRAM-SHA-256 over SASL_PLAINTEXT as alice: authenticated, but no ACL lets her write.
    fails_with(
        &r[2],
        "alice produce without ACL",
        &["TopicAuthorizationException"],
    );
    // PLAIN over SASL_SSL as bob: authenticated, and without ACLs he sees no topic.
    let topics = ok(&r[3], "bob, SASL_SSL, PLAIN, list topics");
    assert!(!topics.split(',').any(|t| t == topic), "bob sees {topics}");
    let topics = ok(&r[4], "admin, SASL_PLAINTEXT, PLAIN, list topics");
    assert!(topics.split(',').any(|t| t == topic), "admin sees {topics}");
    fails_with(&r[5], "a wrong SCRAM password", &["SaslAuthenticationException"]);
    // SSL with the client certificate: the principal is User:CN=weir-client, allowed once an ACL names it.
    fails_with(
        &r[6],
        "client certificate before its ACL",
        &["TopicAuthorizationException"],
    );
    ok(&r[7], "admin creates an ACL");
    assert_eq!(ok(&r[8], "client certificate produce after its ACL"), "0:1");
    // The encrypted client key (PBES2 PKCS#8) decrypts with the JDK to the plain one (Kafka's PEM keystore
    // cannot read PBES2 keys on Java 17, JDK-8231581, so the Java client uses the plain key).
    assert_eq!(
        ok(&r[9], "decrypting the encrypted client key"),
        "PBEWithHmacSHA256AndAES_256"
    );
    // The SSL listener requires a client certificate.
    fails_with(
        &r[10],
        "SSL without a client certificate",
        &["SslAuthenticationException"],
    );
}

/// A cluster serving the rogue CA's broker certificate: refused by a client that trusts the CA, on both TLS
/// listeners, and accepted by one that trusts the rogue CA (so the certificate itself is sound).
#[test]
fn rogue_broker_certificate_is_refused() {
    let kafka = Kafka::start_secure(
        Shape::Single,
        &SecureOptions {
            server_cert: ServerCert::Rogue,
            ..SecureOptions::default()
        },
    );
    let pki = kafka.pki().unwrap();
    let trusts_rogue = replace(
        kafka.java_client_config(SecurityProtocol::Ssl, None),
        "ssl.truststore.location",
        &pki.rogue_ca_cert_path.display().to_string(),
    );
    let r = probe(vec![
        Step::new("topics", &kafka.java_client_config(SecurityProtocol::Ssl, None)),
        Step::new(
            "topics",
            &kafka.java_client_config(
                SecurityProtocol::SaslSsl,
                Some(("SCRAM-SHA-256", "admin", "admin-secret")),
            ),
        ),
        Step::new("topics", &trusts_rogue),
    ]);
    let untrusted = [
        "SslAuthenticationException",
        "SSLHandshakeException",
        "unable to find valid certification path",
    ];
    fails_with(&r[0], "SSL, rogue certificate", &untrusted);
    fails_with(&r[1], "SASL_SSL, rogue certificate", &untrusted);
    ok(&r[2], "SSL trusting the rogue CA");
}

/// A cluster serving the CA-signed certificate for `wrong.example`: refused for its host name on both TLS
/// listeners, accepted with host name checks off (so the certificate is otherwise sound).
#[test]
fn wrong_host_broker_certificate_is_refused() {
    let kafka = Kafka::start_secure(
        Shape::Single,
        &SecureOptions {
            server_cert: ServerCert::WrongHost,
            ..SecureOptions::default()
        },
    );
    let r = probe(vec![
        Step::new("topics", &kafka.java_client_config(SecurityProtocol::Ssl, None)),
        Step::new(
            "topics",
            &kafka.java_client_config(
                SecurityProtocol::SaslSsl,
                Some(("PLAIN", "admin", "admin-secret")),
            ),
        ),
        Step::new(
            "topics",
            &replace(
                kafka.java_client_config(SecurityProtocol::Ssl, None),
                "ssl.endpoint.identification.algorithm",
                "",
            ),
        ),
    ]);
    let wrong_host = ["SslAuthenticationException", "CertificateException", "127.0.0.1"];
    fails_with(&r[0], "SSL, wrong host", &wrong_host);
    fails_with(&r[1], "SASL_SSL, wrong host", &wrong_host);
    ok(&r[2], "SSL without host name checks");
}

/// Three nodes: every node advertises its secure listeners (a record to each partition reaches its leader,
/// whichever node that is, through the addresses the metadata gave).
#[test]
fn three_node_secure_cluster_advertises_every_listener() {
    let kafka = Kafka::start_secure(
        Shape::Three,
        &SecureOptions {
            scram_users: vec![("alice".into(), "alice-secret".into())],
            ..SecureOptions::default()
        },
    );
    for p in SecurityProtocol::SECURE {
        assert_eq!(kafka.listener(p).split(',').count(), 3, "{p:?}");
    }
    let topic = unique_name("secure3");
    kafka.create_topic(&topic, 3);
    let leaders: Vec<i32> = (0..3).map(|p| kafka.leader(&topic, p)).collect();
    let mut steps = Vec::new();
    for (protocol, sasl) in [
        (
            SecurityProtocol::SaslSsl,
            Some(("SCRAM-SHA-512", "alice", "alice-secret")),
        ),
        (
            SecurityProtocol::SaslPlaintext,
            Some(("SCRAM-SHA-256", "alice", "alice-secret")),
        ),
        (SecurityProtocol::Ssl, None),
    ] {
        for partition in 0..3 {
            steps.push(
                Step::new("produce", &kafka.java_client_config(protocol, sasl))
                    .arg("probe.topic", &topic)
                    .arg("probe.partition", &partition.to_string()),
            );
        }
    }
    let r = probe(steps);
    for (i, o) in r.iter().enumerate() {
        let partition = i % 3;
        let got = ok(
            o,
            &format!("step {i}: partition {partition} (leader {})", leaders[partition]),
        );
        assert!(got.starts_with(&format!("{partition}:")), "{got}");
    }
}
