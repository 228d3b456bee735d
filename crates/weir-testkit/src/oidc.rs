//! [`OidcServer`]: a small OpenID Connect provider on loopback for OAUTHBEARER tests (KIP-768): it issues
//! RS256-signed JWT access tokens by the client credentials grant, publishes the verification key as a JWKS, and
//! tells a Kafka broker how to validate its tokens ([`OidcServer::broker_settings`]).
//!
//! | request | answer |
//! |---|---|
//! | `GET /jwks.json` | `{"keys":[{"kty":"RSA","kid":…,"n":…,"e":…}]}`: the one signing key |
//! | `GET /.well-known/openid-configuration` | `issuer`, `token_endpoint`, `jwks_uri` |
//! | `POST /token`, `grant_type=client_credentials` | `{"access_token":JWT,"token_type":"Bearer","expires_in":N}` |
//!
//! The token endpoint authenticates the client by HTTP Basic (`Authorization: Basic base64(id:secret)`, KIP-768's
//! default; the id and secret may also be form-urlencoded first, as RFC 6749 §2.3.1 says) or by the form fields
//! `client_id` and `client_secret`. Unknown clients and wrong secrets get `401` with an OAuth error body
//! (`{"error":"invalid_client",…}`); an unsupported grant gets `400`. Tokens carry `sub` (the client id, or the
//! subject given with [`OidcServer::add_client_as`]), `iss` ([`OidcServer::issuer`]), `aud`
//! ([`OidcServer::AUDIENCE`]), `iat`, `exp` (now + [`OidcServer::set_token_lifetime`]), `jti`, and `scope` when
//! the request asked for one.
//!
//! Knobs for failure tests, all thread-safe: [`OidcServer::set_down`] (`503` on `/token`),
//! [`OidcServer::set_delay`] (answer `/token` late), [`OidcServer::set_canned`] (answer `/token` with any bytes:
//! oversized, not JSON, chunked, ...); counters of requests and tokens; and [`OidcServer::last_token_request`].
//!
//! The signing key is a fixed 2048-bit RSA test key embedded in this file (generating one takes about a second in
//! a debug build; a fixed key starts instantly). It protects nothing: anyone can mint tokens with it, which is the
//! point for tests ([`OidcServer::mint`], [`OidcServer::mint_expired`], [`OidcServer::mint_claims`]).
//!
//! The server is a std thread accepting on `127.0.0.1:0`, one short-lived thread per connection (so a delayed
//! `/token` never holds up `/jwks.json`), one request per connection (`Connection: close`), every socket bounded
//! by a 10 s timeout. Dropping the [`OidcServer`] stops it.
//!
//! ```no_run
//! use weir_testkit::oidc::OidcServer;
//! use weir_testkit::{Kafka, SecureOptions, SecurityProtocol, Shape};
//!
//! let oidc = OidcServer::start(); // before the broker: it fetches the JWKS when it starts
//! let (settings, jvm_options) = oidc.broker_settings(SecurityProtocol::SaslPlaintext);
//! let kafka = Kafka::start_secure(Shape::Single, &SecureOptions { settings, jvm_options, ..Default::default() });
//! let token = oidc.mint("alice", std::time::Duration::from_secs(600));
//! # let _ = (kafka, token);
//! ```

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RsaPublicKeyComponents, RSA_PKCS1_SHA256};
use serde_json::{json, Value};

use crate::SecurityProtocol;

/// The fixed RSA-2048 signing key (PKCS#8), for tests only: it is public, so tokens it signs prove nothing outside
/// a test.
const TEST_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDUo5Xa6rJKnEsd
cNAIME0USz3JShGICDNWm4UPJ+eO8Ls+AGVOMcTAq4C2t+wj3SR8PsRdyjSpW2YD
2RpTGiZGcDu91gCOKbRuJqEbShIRFRlhAR0fbqy/sWUqnWiutFgQvjk0JI5q1glM
gj+13FulRgrV3JYe1lOisNwVK1YAbPJCU46lC8IRlv+9spYOgKy0I2iBYz0wH/L4
yIkqlmNku5OX1egX41QA5kfzdCwZ4qwRmxRVs7OpOSVL2k1WxjL04LW25+PhND0a
et823pTUdjsochdrFavz0HBa8LOHge0FeBtwEal08+OTywIHU1ZTVpNN7qekXTyb
/4pSjqaZAgMBAAECggEACGVy0mBRrMG7jMZBAKgsZjCLMdQoTKj+PF1xuJjiLnIl
ApxWlurYkqVzAXc4iAYAap0grEKcWuxn/J9PyDF2vdgXejYY2YQ3qRQ1zyalzGGu
TRB5/oOK2k4X6ShEBobKf20mqkw5op0gl6vNwwTLfZz+N1Zsrkg9dZjqmwKWDitf
5SAnnwTaf7d+JdZUhZvfJrWOw3Tedectp+P4d4KZBLLePR61uWURvb+XfRODA8Rq
fMgV5wRtyIjI+vhoIfrolF1m2ss0KKLBc5bW4Gr3MmvCVXwZcroxWwPryGKmZRWX
1shD1AX/x4C9z2MyMMYa+8c/lg2k/fi+9b+8tzsi8QKBgQDuQxJ5513EUi0gN+DP
FJinEkNE2wVDjAeV3B+cUwj9iUATsx2NDpxP8ujNdquireNvmZPhvgsoAYZwbia/
9pF8xjAfk9f12ANJ4crijuMQJVgEBy0VmVd5kpKoinOQHhgAv7gfxnl7WFC13lvf
ZuOovWkAwJdqfA14ORR1y7T4hQKBgQDkeC0VYGzEiDGtS5BzY9YuBATVYODhw1oT
AoBUjDlRbfaMshNDlJrkMuVlcvhKBb6Nm6TgfmE4UtzMRrjiUJJRtMaLyi57mD8M
WqE4gCab36Kzfrs1z+EMzpslleHJjdvzyxJeC5ZrQfXFNesSU6P+hLY3lvkd0PJP
EiVNLL5cBQKBgQDGqA/YqmtJDEdpzI1Zu8+HxbdmysL5zeBpOA73NViSpIRTqI1k
FiGIm302CtMSoa+3VjKyDtWYdqUUSxNuDPTDNy/atFdlOMWNLYEPI5n41VosiZsy
nhcMW4SCmGXAbQcQYMnxXHffuwQYj5zEiTIaeEr7gJj/BQ3qBpWjncR3TQKBgHhk
l6VHHanm9v6R7jnQJ2IyPfXPSlHNpp6T19o11lKBtsVnZV1cZs7PvzBZiFtBcauf
lB+0mTib+bwvnGet+5zQvTuWvC3nCXpSG9jxNuc2zr71jmOJ+tbL3NfOhp+2gGyU
20Xxpz84D/HvOsN6jdWmS3s5tGaw368pKbzkUh+dAoGAWPHuvP3rnR1RLONtNZSu
iywNlaHv/4bz9Hf6zys6G9hWhIOHaf0w1ID7plClnMstXNtlVrqIjTIEpEu9kL1z
enJPwLoynvWIt3mSPJQDHvRM/vOYuqBjoIaZlgsvNN8qLGodD+97dXIJPQb6N5Dd
//DJMBAg7YxeopNI1F0o+WM=
-----END PRIVATE KEY-----";

/// Bound on reading a request and writing a response.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head or body the server reads.
const MAX_REQUEST: usize = 64 << 10;

/// How a [`CannedResponse`] delimits its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// `Content-Length: <len>`.
    #[default]
    ContentLength,
    /// `Transfer-Encoding: chunked`, in chunks of 16 KiB (so the client cannot know the size up front).
    Chunked,
    /// Neither: the body ends when the server closes the connection.
    Close,
}

/// What `/token` answers while set with [`OidcServer::set_canned`], whatever the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedResponse {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: String,
    /// The body, sent as is.
    pub body: Vec<u8>,
    /// How the body is delimited.
    pub framing: Framing,
}

impl CannedResponse {
    /// `status` with a JSON body.
    pub fn json(status: u16, body: &Value) -> CannedResponse {
        CannedResponse {
            status,
            content_type: "application/json".into(),
            body: body.to_string().into_bytes(),
            framing: Framing::ContentLength,
        }
    }
}

/// How a client authenticated a `/token` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic`.
    Basic,
    /// The `client_id` and `client_secret` form fields.
    Form,
}

/// A `/token` request as the server understood it ([`OidcServer::last_token_request`]). The secret is not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequestSeen {
    /// The client id presented (`None` when there was none).
    pub client_id: Option<String>,
    /// How it was presented.
    pub auth: Option<ClientAuth>,
    /// `grant_type`.
    pub grant_type: Option<String>,
    /// `scope`, when sent.
    pub scope: Option<String>,
    /// The request's `Content-Type`.
    pub content_type: Option<String>,
    /// The request's `Accept`.
    pub accept: Option<String>,
}

/// A registered client.
struct Client {
    secret: String,
    subject: String,
}

/// What the knobs change.
struct State {
    clients: HashMap<String, Client>,
    lifetime: Duration,
    down: bool,
    delay: Duration,
    canned: Option<CannedResponse>,
    last: Option<TokenRequestSeen>,
}

struct Shared {
    key: RsaKeyPair,
    rng: SystemRandom,
    jwks: String,
    issuer: String,
    state: Mutex<State>,
    token_requests: AtomicU64,
    tokens_issued: AtomicU64,
    jwks_requests: AtomicU64,
    stop: AtomicBool,
}

/// A test OpenID Connect provider on `127.0.0.1` (see the [module docs](self)).
pub struct OidcServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for OidcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcServer")
            .field("issuer", &self.shared.issuer)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs()
}

impl OidcServer {
    /// The client every server knows ([`Self::CLIENT_SECRET`]); its tokens' `sub` is its id.
    pub const CLIENT_ID: &'static str = "weir-app";
    /// The secret of [`Self::CLIENT_ID`].
    pub const CLIENT_SECRET: &'static str = "weir-app-secret";
    /// The `aud` claim of every token the server issues, and the audience a broker is told to expect.
    pub const AUDIENCE: &'static str = "kafka";
    /// The `kid` of the signing key (in the JWKS and in every token's header).
    pub const KEY_ID: &'static str = "weir-testkit-1";
    /// The token lifetime until [`Self::set_token_lifetime`] changes it.
    pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

    /// Starts a server on a free loopback port. Panics if it cannot listen.
    pub fn start() -> OidcServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("weir-testkit: OIDC server: bind");
        let addr = listener
            .local_addr()
            .expect("weir-testkit: OIDC server: local_addr");
        let key = test_key();
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(key.public());
        let jwks = json!({"keys": [{
            "kty": "RSA",
            "kid": Self::KEY_ID,
            "use": "sig",
            "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(&public.n),
            "e": URL_SAFE_NO_PAD.encode(&public.e),
        }]})
        .to_string();
        let mut clients = HashMap::new();
        clients.insert(
            Self::CLIENT_ID.to_string(),
            Client {
                secret: Self::CLIENT_SECRET.to_string(),
                subject: Self::CLIENT_ID.to_string(),
            },
        );
        let shared = Arc::new(Shared {
            key,
            rng: SystemRandom::new(),
            jwks,
            issuer: format!("http://{addr}"),
            state: Mutex::new(State {
                clients,
                lifetime: Self::DEFAULT_LIFETIME,
                down: false,
                delay: Duration::ZERO,
                canned: None,
                last: None,
            }),
            token_requests: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
            jwks_requests: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name(format!("oidc-{}", addr.port()))
            .spawn(move || accept_loop(listener, s))
            .expect("weir-testkit: OIDC server: spawn");
        OidcServer {
            shared,
            addr,
            accept: Some(accept),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the `iss` of its tokens.
    pub fn issuer(&self) -> String {
        self.shared.issuer.clone()
    }

    /// `http://127.0.0.1:PORT/jwks.json`.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks.json", self.shared.issuer)
    }

    /// `http://127.0.0.1:PORT/token`.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.shared.issuer)
    }

    /// [`Self::AUDIENCE`].
    pub fn audience(&self) -> &'static str {
        Self::AUDIENCE
    }

    /// Registers (or replaces) a client whose tokens' `sub` is its id.
    pub fn add_client(&self, id: &str, secret: &str) {
        self.add_client_as(id, secret, id);
    }

    /// Registers (or replaces) a client whose tokens' `sub` is `subject` (the principal a broker sees).
    pub fn add_client_as(&self, id: &str, secret: &str, subject: &str) {
        self.state().clients.insert(
            id.to_string(),
            Client {
                secret: secret.to_string(),
                subject: subject.to_string(),
            },
        );
    }

    /// The lifetime (`expires_in`, and `exp - iat`) of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state().lifetime = lifetime;
    }

    /// While `true`, `/token` answers `503` (`{"error":"temporarily_unavailable"}`); `/jwks.json` still works.
    pub fn set_down(&self, down: bool) {
        self.state().down = down;
    }

    /// `/token` waits this long before answering (zero: not at all).
    pub fn set_delay(&self, delay: Duration) {
        self.state().delay = delay;
    }

    /// While `Some`, `/token` answers with exactly this, whatever the request (after [`Self::set_delay`]).
    pub fn set_canned(&self, response: Option<CannedResponse>) {
        self.state().canned = response;
    }

    /// `/token` requests received (answered or not).
    pub fn token_requests(&self) -> u64 {
        self.shared.token_requests.load(Ordering::SeqCst)
    }

    /// Tokens issued by `/token` (not counting [`Self::mint`] and friends).
    pub fn tokens_issued(&self) -> u64 {
        self.shared.tokens_issued.load(Ordering::SeqCst)
    }

    /// `/jwks.json` requests received.
    pub fn jwks_requests(&self) -> u64 {
        self.shared.jwks_requests.load(Ordering::SeqCst)
    }

    /// The last `/token` request that reached the credential check (not while down or canned).
    pub fn last_token_request(&self) -> Option<TokenRequestSeen> {
        self.state().last.clone()
    }

    /// A token for `subject`, valid from now for `lifetime`, as `/token` would issue (no `scope`).
    pub fn mint(&self, subject: &str, lifetime: Duration) -> String {
        let now = now_secs();
        self.mint_claims(&self.claims(subject, now, now + lifetime.as_secs(), None))
    }

    /// A well-signed token for `subject` that expired five minutes ago (beyond Kafka's default 30 s
    /// `sasl.oauthbearer.clock.skew.seconds`): a broker must refuse it.
    pub fn mint_expired(&self, subject: &str) -> String {
        let now = now_secs();
        self.mint_claims(&self.claims(subject, now - 600, now - 300, None))
    }

    /// A token with exactly these claims (a JSON object), signed with the server's key (e.g. a wrong `aud`).
    pub fn mint_claims(&self, claims: &Value) -> String {
        self.shared.sign(claims)
    }

    /// The claims `/token` puts in a token.
    fn claims(&self, subject: &str, iat: u64, exp: u64, scope: Option<&str>) -> Value {
        self.shared.claims(subject, iat, exp, scope)
    }

    /// Broker settings and JVM options for validating this server's tokens on `listener` (a SASL one) with
    /// Kafka's `OAuthBearerValidatorCallbackHandler`, for [`crate::SecureOptions::settings`] and
    /// [`crate::SecureOptions::jvm_options`]:
    ///
    /// ```text
    /// listener.name.<l>.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER
    /// listener.name.<l>.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;
    /// listener.name.<l>.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler
    /// listener.name.<l>.oauthbearer.sasl.oauthbearer.jwks.endpoint.url=<jwks url>
    /// sasl.oauthbearer.expected.audience=kafka
    /// sasl.oauthbearer.expected.issuer=<issuer>
    /// -Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=<jwks url>,<token url>
    /// ```
    ///
    /// The principal of a client is `User:<sub>`. Kafka 4.x allows no OAuth URL unless that JVM property names it
    /// exactly. The broker fetches the JWKS when it starts, so start the server first. Call it for both SASL
    /// listeners to enable OAUTHBEARER on each (the JVM options are the same).
    pub fn broker_settings(&self, listener: SecurityProtocol) -> (Vec<(String, String)>, Vec<String>) {
        assert!(
            listener.sasl(),
            "weir-testkit: OAUTHBEARER needs a SASL listener, not {}",
            listener.name()
        );
        let l = listener.listener_prefix();
        let settings = vec![
            (
                format!("{l}sasl.enabled.mechanisms"),
                format!("{},OAUTHBEARER", crate::SecureOptions::SASL_MECHANISMS),
            ),
            (
                format!("{l}oauthbearer.sasl.jaas.config"),
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;".into(),
            ),
            (
                format!("{l}oauthbearer.sasl.server.callback.handler.class"),
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler".into(),
            ),
            (
                format!("{l}oauthbearer.sasl.oauthbearer.jwks.endpoint.url"),
                self.jwks_url(),
            ),
            ("sasl.oauthbearer.expected.audience".into(), Self::AUDIENCE.into()),
            ("sasl.oauthbearer.expected.issuer".into(), self.issuer()),
        ];
        (settings, vec![self.allowed_urls_jvm_option()])
    }

    /// `-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=<jwks url>,<token url>`: the JVM option a broker or a
    /// Java client needs to reach this server.
    pub fn allowed_urls_jvm_option(&self) -> String {
        format!(
            "-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={},{}",
            self.jwks_url(),
            self.token_url()
        )
    }

    /// Apache Kafka Java client properties for OAUTHBEARER with this server's client credentials grant
    /// (`sasl.mechanism`, `sasl.login.callback.handler.class`, `sasl.oauthbearer.token.endpoint.url`,
    /// `sasl.jaas.config` with `clientId`, `clientSecret` and `scope`), to add to
    /// `Kafka::java_client_config(protocol, None)`; the client's JVM also needs
    /// [`Self::allowed_urls_jvm_option`].
    pub fn java_client_config(
        &self,
        client_id: &str,
        client_secret: &str,
        scope: Option<&str>,
    ) -> Vec<(String, String)> {
        let scope = scope.map(|s| format!(" scope=\"{s}\"")).unwrap_or_default();
        vec![
            ("sasl.mechanism".into(), "OAUTHBEARER".into()),
            (
                "sasl.login.callback.handler.class".into(),
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler".into(),
            ),
            ("sasl.oauthbearer.token.endpoint.url".into(), self.token_url()),
            (
                "sasl.jaas.config".into(),
                format!(
                    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
                     clientId=\"{client_id}\" clientSecret=\"{client_secret}\"{scope};"
                ),
            ),
        ]
    }
}

impl Drop for OidcServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop (a refused or failed connection is fine: it only has to return from accept).
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// The embedded test key.
fn test_key() -> RsaKeyPair {
    let b64: String = TEST_KEY_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD
        .decode(b64)
        .expect("weir-testkit: the embedded OIDC key is base64");
    RsaKeyPair::from_pkcs8(&der).expect("weir-testkit: the embedded OIDC key is an RSA PKCS#8 key")
}

impl Shared {
    fn claims(&self, subject: &str, iat: u64, exp: u64, scope: Option<&str>) -> Value {
        static JTI: AtomicU64 = AtomicU64::new(0);
        let mut c = json!({
            "sub": subject,
            "iss": self.issuer,
            "aud": OidcServer::AUDIENCE,
            "iat": iat,
            "exp": exp,
            "jti": format!("{}-{}", std::process::id(), JTI.fetch_add(1, Ordering::Relaxed)),
        });
        if let Some(s) = scope {
            c["scope"] = Value::from(s);
        }
        c
    }

    /// `header.claims.signature`, RS256, with the key's `kid`.
    fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": OidcServer::KEY_ID});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, input.as_bytes(), &mut sig)
            .expect("weir-testkit: RS256 signing");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = conn else { continue };
        let s = shared.clone();
        // A connection's thread ends with its one request (bounded by IO_TIMEOUT and the configured delay).
        let _ = std::thread::Builder::new()
            .name("oidc-conn".into())
            .spawn(move || serve(stream, &s));
    }
}

/// A parsed request.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response to write.
struct Response {
    status: u16,
    content_type: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    framing: Framing,
}

impl Response {
    fn json(status: u16, body: &Value) -> Response {
        Response {
            status,
            content_type: "application/json".into(),
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
            framing: Framing::ContentLength,
        }
    }

    fn error(status: u16, error: &str, description: &str) -> Response {
        Response::json(status, &json!({"error": error, "error_description": description}))
    }
}

fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    if shared.stop.load(Ordering::SeqCst) {
        return;
    }
    let response = match read_request(&mut stream) {
        Ok(Some(req)) => route(&req, shared),
        Ok(None) => return, // closed without a request (e.g. the wake-up connection of Drop)
        Err(r) => r,
    };
    let _ = write_response(&mut stream, &response);
    let _ = stream.shutdown(Shutdown::Both);
}

/// Reads one request: `Ok(None)` when the peer closed before sending anything, `Err` with the error response for
/// a malformed one.
fn read_request(stream: &mut TcpStream) -> Result<Option<Request>, Response> {
    let bad = |what: &str| Response::error(400, "invalid_request", what);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_REQUEST {
            return Err(bad("request head too large"));
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(bad("truncated request head")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) if buf.is_empty() => return Ok(None),
            Err(_) => return Err(bad("truncated request head")),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(_version)) = (first.next(), first.next(), first.next()) else {
        return Err(bad("malformed request line"));
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut req = Request {
        method: method.to_string(),
        path: target.split('?').next().unwrap_or("").to_string(),
        headers,
        body: buf[head_end + 4..].to_vec(),
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"))
    {
        return Err(Response::error(
            501,
            "invalid_request",
            "chunked request bodies are not supported",
        ));
    }
    let len: usize = match req.header("content-length") {
        None => 0,
        Some(v) => v.parse().map_err(|_| bad("bad Content-Length"))?,
    };
    if len > MAX_REQUEST {
        return Err(bad("request body too large"));
    }
    while req.body.len() < len {
        match stream.read(&mut chunk) {
            Ok(0) => return Err(bad("truncated request body")),
            Ok(n) => req.body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Err(bad("truncated request body")),
        }
    }
    req.body.truncate(len);
    Ok(Some(req))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn route(req: &Request, shared: &Shared) -> Response {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/jwks.json") => {
            shared.jwks_requests.fetch_add(1, Ordering::SeqCst);
            Response {
                status: 200,
                content_type: "application/json".into(),
                headers: Vec::new(),
                body: shared.jwks.clone().into_bytes(),
                framing: Framing::ContentLength,
            }
        }
        ("GET", "/.well-known/openid-configuration") => Response::json(
            200,
            &json!({
                "issuer": shared.issuer,
                "token_endpoint": format!("{}/token", shared.issuer),
                "jwks_uri": format!("{}/jwks.json", shared.issuer),
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }),
        ),
        (_, "/token") => {
            shared.token_requests.fetch_add(1, Ordering::SeqCst);
            token(req, shared)
        }
        (_, "/jwks.json" | "/.well-known/openid-configuration") => {
            Response::error(405, "invalid_request", "method not allowed")
        }
        _ => Response::error(404, "not_found", "no such endpoint"),
    }
}

/// `/token`: the client credentials grant.
fn token(req: &Request, shared: &Shared) -> Response {
    let (delay, canned, down) = {
        let st = shared.state();
        (st.delay, st.canned.clone(), st.down)
    };
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    if let Some(c) = canned {
        return Response {
            status: c.status,
            content_type: c.content_type,
            headers: Vec::new(),
            body: c.body,
            framing: c.framing,
        };
    }
    if down {
        return Response::error(503, "temporarily_unavailable", "the test server is set down");
    }
    if req.method != "POST" {
        return Response::error(405, "invalid_request", "the token endpoint takes POST");
    }
    let form = parse_form(&req.body);
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    // The client: HTTP Basic, else the form fields.
    let basic = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(i, p)| (i.to_string(), p.to_string())));
    let (credentials, auth) = match (basic, field("client_id")) {
        (Some(c), _) => (Some(c), Some(ClientAuth::Basic)),
        (None, Some(id)) => (
            Some((id, field("client_secret").unwrap_or_default())),
            Some(ClientAuth::Form),
        ),
        (None, None) => (None, None),
    };
    let grant_type = field("grant_type");
    let scope = field("scope");
    let mut st = shared.state();
    st.last = Some(TokenRequestSeen {
        client_id: credentials.as_ref().map(|(id, _)| id.clone()),
        auth,
        grant_type: grant_type.clone(),
        scope: scope.clone(),
        content_type: req.header("content-type").map(str::to_string),
        accept: req.header("accept").map(str::to_string),
    });
    let Some((id, secret)) = credentials else {
        let mut r = Response::error(401, "invalid_client", "no client authentication");
        r.headers
            .push(("WWW-Authenticate".into(), "Basic realm=\"weir-testkit\"".into()));
        return r;
    };
    // RFC 6749 §2.3.1 form-encodes the id and secret inside Basic; Kafka's client does not by default
    // (sasl.oauthbearer.header.urlencode=false). Accept both.
    let client = st
        .clients
        .get(&id)
        .or_else(|| st.clients.get(&form_decode(&id)))
        .filter(|c| c.secret == secret || c.secret == form_decode(&secret));
    let Some(client) = client else {
        let mut r = Response::error(401, "invalid_client", "client authentication failed");
        if auth == Some(ClientAuth::Basic) {
            r.headers
                .push(("WWW-Authenticate".into(), "Basic realm=\"weir-testkit\"".into()));
        }
        return r;
    };
    if grant_type.as_deref() != Some("client_credentials") {
        return Response::error(
            400,
            "unsupported_grant_type",
            "only client_credentials is supported",
        );
    }
    let subject = client.subject.clone();
    let lifetime = st.lifetime.as_secs();
    drop(st);
    let now = now_secs();
    let jwt = shared.sign(&shared.claims(&subject, now, now + lifetime, scope.as_deref()));
    shared.tokens_issued.fetch_add(1, Ordering::SeqCst);
    let mut body = json!({"access_token": jwt, "token_type": "Bearer", "expires_in": lifetime});
    if let Some(s) = scope {
        body["scope"] = Value::from(s);
    }
    let mut r = Response::json(200, &body);
    r.headers.push(("Cache-Control".into(), "no-store".into()));
    r
}

/// `application/x-www-form-urlencoded` pairs.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

/// Decodes `+` and `%XX` (an invalid escape stays as it is).
fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                match (
                    b.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                    b.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn write_response(stream: &mut TcpStream, r: &Response) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nConnection: close\r\n",
        r.status,
        reason(r.status),
        r.content_type
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    match r.framing {
        Framing::ContentLength => head.push_str(&format!("Content-Length: {}\r\n", r.body.len())),
        Framing::Chunked => head.push_str("Transfer-Encoding: chunked\r\n"),
        Framing::Close => {}
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    match r.framing {
        Framing::ContentLength | Framing::Close => stream.write_all(&r.body)?,
        Framing::Chunked => {
            for c in r.body.chunks(16 << 10) {
                stream.write_all(format!("{:x}\r\n", c.len()).as_bytes())?;
                stream.write_all(c)?;
                stream.write_all(b"\r\n")?;
            }
            stream.write_all(b"0\r\n\r\n")?;
        }
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(form_decode("a+b%20c%3Ad"), "a b c:d");
        assert_eq!(form_decode("100%"), "100%");
        assert_eq!(form_decode("%zz%4"), "%zz%4");
        assert_eq!(
            parse_form(b"grant_type=client_credentials&scope=a+b&x"),
            [
                ("grant_type".to_string(), "client_credentials".to_string()),
                ("scope".to_string(), "a b".to_string()),
                ("x".to_string(), String::new()),
            ]
        );
    }

    #[test]
    fn tokens_are_rs256_jwts_with_the_documented_claims() {
        let s = OidcServer::start();
        let t = s.mint("alice", Duration::from_secs(60));
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], OidcServer::KEY_ID);
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["iss"], Value::from(s.issuer()));
        assert_eq!(claims["aud"], "kafka");
        let (iat, exp) = (claims["iat"].as_u64().unwrap(), claims["exp"].as_u64().unwrap());
        assert_eq!(exp - iat, 60);
        // The signature verifies with the public key the JWKS publishes.
        let public = RsaPublicKeyComponents::<Vec<u8>>::from(s.shared.key.public());
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let input = format!("{}.{}", parts[0], parts[1]);
        public
            .verify(
                &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                input.as_bytes(),
                &sig,
            )
            .unwrap();
        let expired = s.mint_expired("alice");
        let claims: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(expired.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert!(claims["exp"].as_u64().unwrap() + 300 <= now_secs());
    }
}
