//! Tests of [`OidcServer`]: its HTTP endpoints as a client sees them, and that a real Kafka broker configured by
//! [`OidcServer::broker_settings`] accepts its tokens (fetched by Apache Kafka's own Java client with the client
//! credentials grant, or handed to it as a file), takes the principal from `sub`, and refuses an expired token, a
//! token for another audience and a client with the wrong secret. The Java side is
//! `crates/weir-testkit/java/Probe.java`, run as in `tests/secure_kafka.rs`, with the JVM options OAuth needs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use weir_testkit::oidc::{CannedResponse, ClientAuth, Framing, OidcServer};
use weir_testkit::{unique_name, Kafka, SecureOptions, SecurityProtocol, Shape};

/// One HTTP/1.1 request to the server: (status, body).
fn http(
    server: &OidcServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
        server.addr(),
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The endpoints, both client authentications, the error answers and the knobs, over plain HTTP.
#[test]
fn endpoints_and_knobs() {
    let s = OidcServer::start();
    assert_eq!(s.issuer(), format!("http://{}", s.addr()));
    assert_eq!(s.jwks_url(), format!("{}/jwks.json", s.issuer()));
    assert_eq!(s.token_url(), format!("{}/token", s.issuer()));

    let (status, body) = http(&s, "GET", "/jwks.json", &[], "");
    assert_eq!(status, 200);
    let jwks: Value = serde_json::from_str(&body).unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["kid"], OidcServer::KEY_ID);
    assert_eq!(key["e"], "AQAB");
    assert_eq!(
        URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap().len(),
        256
    );
    assert_eq!(s.jwks_requests(), 1);
    let (status, body) = http(&s, "GET", "/.well-known/openid-configuration", &[], "");
    assert_eq!(status, 200);
    let discovery: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(discovery["token_endpoint"], Value::from(s.token_url()));

    // HTTP Basic, with a scope.
    s.set_token_lifetime(Duration::from_secs(90));
    let auth = basic(OidcServer::CLIENT_ID, OidcServer::CLIENT_SECRET);
    let (status, body) = http(
        &s,
        "POST",
        "/token",
        &[FORM, ("Authorization", &auth)],
        "grant_type=client_credentials&scope=kafka.read+kafka.write",
    );
    assert_eq!(status, 200, "{body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 90);
    let c = claims(token["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], OidcServer::CLIENT_ID);
    assert_eq!(c["iss"], Value::from(s.issuer()));
    assert_eq!(c["aud"], "kafka");
    assert_eq!(c["scope"], "kafka.read kafka.write");
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 90);
    assert!(c["iat"].as_u64().unwrap().abs_diff(now()) < 5);
    let seen = s.last_token_request().unwrap();
    assert_eq!(seen.auth, Some(ClientAuth::Basic));
    assert_eq!(seen.client_id.as_deref(), Some(OidcServer::CLIENT_ID));
    assert_eq!(seen.scope.as_deref(), Some("kafka.read kafka.write"));

    // Form fields, for a client with its own subject.
    s.add_client_as("svc", "s3cret", "User-Svc");
    let (status, body) = http(
        &s,
        "POST",
        "/token",
        &[FORM],
        "grant_type=client_credentials&client_id=svc&client_secret=s3cret",
    );
    assert_eq!(status, 200, "{body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(claims(token["access_token"].as_str().unwrap())["sub"], "User-Svc");
    assert_eq!(s.last_token_request().unwrap().auth, Some(ClientAuth::Form));
    assert_eq!(s.tokens_issued(), 2);

    // Wrong secret, unknown client, no client: 401 with an OAuth error; a wrong grant: 400.
    let (wrong, unknown) = (basic(OidcServer::CLIENT_ID, "wrong"), basic("nobody", "x"));
    for headers in [
        vec![FORM, ("Authorization", wrong.as_str())],
        vec![FORM, ("Authorization", unknown.as_str())],
        vec![FORM],
    ] {
        let (status, body) = http(&s, "POST", "/token", &headers, "grant_type=client_credentials");
        assert_eq!(status, 401, "{body}");
        let e: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(e["error"], "invalid_client");
    }
    let (status, body) = http(
        &s,
        "POST",
        "/token",
        &[FORM, ("Authorization", &auth)],
        "grant_type=password",
    );
    assert_eq!(
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap()["error"].clone()
        ),
        (400, json!("unsupported_grant_type"))
    );
    assert_eq!(s.tokens_issued(), 2);

    // Down: 503, the JWKS still served.
    s.set_down(true);
    let (status, _) = http(
        &s,
        "POST",
        "/token",
        &[FORM, ("Authorization", &auth)],
        "grant_type=client_credentials",
    );
    assert_eq!(status, 503);
    assert_eq!(http(&s, "GET", "/jwks.json", &[], "").0, 200);
    s.set_down(false);

    // Canned answers, in each framing, and a delay.
    for framing in [Framing::ContentLength, Framing::Chunked, Framing::Close] {
        s.set_canned(Some(CannedResponse {
            status: 200,
            content_type: "text/html".into(),
            body: b"<html>not json</html>".to_vec(),
            framing,
        }));
        let (status, body) = http(&s, "POST", "/token", &[FORM], "");
        assert_eq!(status, 200);
        match framing {
            Framing::Chunked => assert_eq!(body, "15\r\n<html>not json</html>\r\n0\r\n\r\n"),
            _ => assert_eq!(body, "<html>not json</html>"),
        }
    }
    s.set_canned(None);
    s.set_delay(Duration::from_millis(300));
    let t = Instant::now();
    let (status, _) = http(
        &s,
        "POST",
        "/token",
        &[FORM, ("Authorization", &auth)],
        "grant_type=client_credentials",
    );
    assert_eq!(status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(s.token_requests(), 11);
    assert_eq!(s.tokens_issued(), 3);
}

/// Bound on one probe run.
const PROBE_TIMEOUT: Duration = Duration::from_secs(180);

#[path = "support/probe.rs"]
mod support;

use support::{fails_with, ok, Outcome, Step};

/// Runs the steps in one JVM started with `jvm_options`; one outcome per step.
fn probe(jvm_options: &[String], steps: Vec<Step>) -> Vec<Outcome> {
    support::probe(jvm_options, steps, PROBE_TIMEOUT)
}

/// Java client properties for OAUTHBEARER with a token read from `file` (an application-supplied token: Kafka's
/// `FileJwtRetriever`, chosen by a `file:` token endpoint URL).
fn file_token_config(kafka: &Kafka, file: &Path) -> Vec<(String, String)> {
    let mut c = kafka.java_client_config(SecurityProtocol::SaslPlaintext, None);
    c.extend([
        ("sasl.mechanism".to_string(), "OAUTHBEARER".to_string()),
        (
            "sasl.login.callback.handler.class".into(),
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler".into(),
        ),
        (
            "sasl.oauthbearer.token.endpoint.url".into(),
            format!("file://{}", file.display()),
        ),
        (
            "sasl.jaas.config".into(),
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;".into(),
        ),
    ]);
    c
}

/// A single-node cluster with OAUTHBEARER on `SASL_PLAINTEXT`, validating the server's tokens, with ACLs on so
/// that the principal (`User:<sub>`) shows.
#[test]
fn broker_validates_the_servers_tokens() {
    let oidc = OidcServer::start();
    // Started first: the broker fetches the JWKS as it starts.
    let (settings, jvm_options) = oidc.broker_settings(SecurityProtocol::SaslPlaintext);
    let kafka = Kafka::start_secure(
        Shape::Single,
        &SecureOptions {
            acls: true,
            settings,
            jvm_options,
            ..SecureOptions::default()
        },
    );
    eprintln!(
        "Kafka {} with OAUTHBEARER started in {:?}",
        kafka.version(),
        kafka.started_in()
    );
    assert!(oidc.jwks_requests() >= 1, "the broker did not fetch the JWKS");
    let topic = unique_name("oidc");
    kafka.create_topic(&topic, 1);

    let dir: PathBuf = std::env::temp_dir().join(unique_name("weir-oidc"));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, token: &str| {
        let p = dir.join(name);
        std::fs::write(&p, token).unwrap();
        p
    };
    let valid = write(
        "valid.jwt",
        &oidc.mint(OidcServer::CLIENT_ID, Duration::from_secs(600)),
    );
    let mallory = write("mallory.jwt", &oidc.mint("mallory", Duration::from_secs(600)));
    let expired = write("expired.jwt", &oidc.mint_expired(OidcServer::CLIENT_ID));
    let mut other_aud = claims(&oidc.mint(OidcServer::CLIENT_ID, Duration::from_secs(600)));
    other_aud["aud"] = json!("not-kafka");
    let other_aud = write("other-aud.jwt", &oidc.mint_claims(&other_aud));
    let files = [&valid, &mallory, &expired, &other_aud].map(|p| p.display().to_string());
    // A `file:` token endpoint is a URL too: Kafka checks it against allowed.urls, and the file against
    // allowed.files.
    let file_urls = files.clone().map(|f| format!("file://{f}"));
    let jvm = vec![
        format!("{},{}", oidc.allowed_urls_jvm_option(), file_urls.join(",")),
        format!(
            "-Dorg.apache.kafka.sasl.oauthbearer.allowed.files={}",
            files.join(",")
        ),
    ];
    let client_credentials = |secret: &str| {
        let mut c = kafka.java_client_config(SecurityProtocol::SaslPlaintext, None);
        c.extend(oidc.java_client_config(OidcServer::CLIENT_ID, secret, Some("kafka.produce")));
        c
    };
    let app = client_credentials(OidcServer::CLIENT_SECRET);
    let admin = kafka.java_client_config(
        SecurityProtocol::SaslPlaintext,
        Some(("PLAIN", "admin", "admin-secret")),
    );
    let r = probe(
        &jvm,
        vec![
            // Authenticated as User:weir-app, which may not write yet.
            Step::new("produce", &app).arg("probe.topic", &topic),
            Step::new("allow-write", &admin)
                .arg("probe.topic", &topic)
                .arg("probe.principal", &format!("User:{}", OidcServer::CLIENT_ID)),
            Step::new("produce", &app)
                .arg("probe.topic", &topic)
                .arg("probe.attempts", "10"),
            // Application-supplied tokens.
            Step::new("produce", &file_token_config(&kafka, &valid)).arg("probe.topic", &topic),
            Step::new("produce", &file_token_config(&kafka, &mallory)).arg("probe.topic", &topic),
            Step::new("topics", &file_token_config(&kafka, &expired)),
            Step::new("topics", &file_token_config(&kafka, &other_aud)),
            Step::new("topics", &client_credentials("wrong-secret")),
        ],
    );
    fails_with(&r[0], "weir-app before its ACL", &["TopicAuthorizationException"]);
    ok(&r[1], "ACL for User:weir-app");
    assert!(ok(&r[2], "weir-app with its ACL").starts_with("0:"));
    let seen = oidc
        .last_token_request()
        .expect("the Java client asked for a token");
    assert_eq!(seen.auth, Some(ClientAuth::Basic), "{seen:?}");
    assert_eq!(seen.grant_type.as_deref(), Some("client_credentials"));
    assert_eq!(seen.scope.as_deref(), Some("kafka.produce"));
    assert!(oidc.tokens_issued() >= 1);
    ok(&r[3], "a minted token for weir-app");
    fails_with(
        &r[4],
        "a minted token for mallory (no ACL)",
        &["TopicAuthorizationException"],
    );
    fails_with(&r[5], "an expired token", &["SaslAuthenticationException"]);
    fails_with(
        &r[6],
        "a token for another audience",
        &["SaslAuthenticationException"],
    );
    fails_with(&r[7], "the wrong client secret", &["401"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
