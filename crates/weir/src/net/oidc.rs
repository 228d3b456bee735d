//! The token fetch of weir's built-in OAUTHBEARER token provider (KIP-768): the OAuth 2 client credentials grant
//! (RFC 6749 §4.4) against an OpenID Connect provider's token endpoint, as Kafka's
//! `OAuthBearerLoginCallbackHandler` does it:
//!
//! ```text
//! POST <endpoint>
//! Authorization: Basic base64(client_id ":" client_secret)
//! Content-Type: application/x-www-form-urlencoded
//! Accept: application/json
//!
//! grant_type=client_credentials[&scope=<scope>]
//! ```
//!
//! and from the JSON answer, `access_token` and `expires_in` ([`fetch_token`]). As in the Java client (whose
//! `sasl.oauthbearer.header.urlencode` is off by default), the id and secret go into the Basic header as they are,
//! not form-encoded first.
//!
//! Bounds and errors:
//! * The whole exchange (connect, TLS, request, response) is bounded by [`TokenRequest::timeout`]:
//!   [`Error::Timeout`] past it.
//! * The response body is at most [`MAX_RESPONSE`] bytes: a `Content-Length` above it is refused before any of the
//!   body is read, and a body without one is refused as soon as it grows past it.
//! * A refused connection, a lost one, `408`, `429` and `5xx` are [`Error::Io`] (retriable); TLS failures are
//!   [`Error::Tls`]; other `4xx` (bad credentials), redirects (not followed) and a `2xx` body that is not JSON or
//!   has no `access_token` are [`Error::Authentication`]; a bad URL is [`Error::Config`].
//! * No error ever holds the client secret or the token: the endpoint is named without any user info or query, a
//!   provider's error body contributes only its `error` and `error_description` strings (shortened, with the
//!   secret cut out should a provider echo it), and other bodies are not quoted at all.
//!
//! The token itself is decoded (not verified: the broker verifies it) for the principal (`sub`) and, when the
//! answer has no `expires_in`, for the lifetime (`exp`).
//!
//! Why hyper: the HTTP client is `hyper` 1.x (`client` + `http1` only) with `hyper-util`'s tokio adapter and
//! `http-body-util`'s `Limited`, over weir's own tokio `TcpStream` and `tokio-rustls` (so TLS is the same rustls
//! and ring as the broker connections, and the caller's `rustls::ClientConfig` is used as is). Measured on the
//! project's 2-core machine, a cold debug build of tokio + tokio-rustls + serde_json takes 23.9 s (38 crates);
//! adding this hyper stack takes it to 27.6 s (+3.7 s, +14 crates), while `reqwest` 0.12 (no default features,
//! `rustls-tls-manual-roots-no-provider`) takes it to 38.0 s (+14.1 s, +81 crates: its pooling client, tower,
//! url/idna, ...), none of which a once-an-hour POST needs. JSON is `serde_json::Value` (no serde derive).

use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::{Secret, TlsConfig};
use crate::error::{Error, Result};

/// The largest token endpoint response weir reads (a token response is a few KiB).
pub(crate) const MAX_RESPONSE: usize = 1 << 20;

/// Longest provider-supplied text (`error`, `error_description`) quoted in an error.
const MAX_QUOTED: usize = 200;

/// What to ask the token endpoint for.
#[derive(Debug, Clone)]
pub(crate) struct TokenRequest {
    /// The token endpoint: an `http://` or `https://` URL (`sasl.oauthbearer.token.endpoint.url`).
    pub(crate) endpoint: String,
    /// `sasl.oauthbearer.client.credentials.client.id` (or `clientId` in the JAAS configuration).
    pub(crate) client_id: String,
    /// `sasl.oauthbearer.client.credentials.client.secret` (or `clientSecret`).
    pub(crate) client_secret: Secret,
    /// `sasl.oauthbearer.scope` (or `scope`); not sent when `None` or blank.
    pub(crate) scope: Option<String>,
    /// Bound on the whole exchange.
    pub(crate) timeout: Duration,
    /// TLS for an `https` endpoint; `None`: the system's trusted CAs, host name checked.
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
}

/// A token from the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// The access token (a JWT, for a broker with Kafka's `OAuthBearerValidatorCallbackHandler`).
    pub(crate) value: Secret,
    /// How long it is valid from when the answer arrived: `expires_in`, else the JWT's `exp` minus now. May be
    /// zero (an `expires_in` of 0).
    pub(crate) lifetime: Duration,
    /// The JWT's `sub` (read without verifying the token), the principal the broker will most likely see.
    pub(crate) principal: Option<String>,
}

/// Fetches a token by the client credentials grant (see the [module docs](self)).
pub(crate) async fn fetch_token(req: &TokenRequest) -> Result<Token> {
    let target = Target::parse(&req.endpoint)?;
    if req.client_id.is_empty() || req.client_secret.is_empty() {
        return Err(Error::Config(
            "OAUTHBEARER: the client credentials grant needs a client id and a client secret".into(),
        ));
    }
    match tokio::time::timeout(req.timeout, exchange(req, &target)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout {
            what: format!("the OAuth token request to {}", target.name),
            after: req.timeout,
        }),
    }
}

/// The parsed endpoint.
#[derive(Debug)]
struct Target {
    https: bool,
    /// The host as in the URL (`[::1]` bracketed), for `Host`.
    authority: String,
    /// The host for connecting and for the TLS server name (no brackets).
    host: String,
    port: u16,
    /// The path and query (query included: some providers want one).
    path: String,
    /// `scheme://host[:port]/path`: how errors name the endpoint (no user info, no query).
    name: String,
}

impl Target {
    fn parse(endpoint: &str) -> Result<Target> {
        let bad = |why: &str| Error::Config(format!("sasl.oauthbearer.token.endpoint.url: {why}"));
        let uri: Uri = endpoint
            .trim()
            .parse()
            .map_err(|_| bad("not a valid http:// or https:// URL"))?;
        let https = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            Some(s) => return Err(bad(&format!("the scheme must be http or https, not {s}"))),
            None => return Err(bad("not an absolute http:// or https:// URL")),
        };
        let authority = uri.authority().ok_or_else(|| bad("the URL has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad(
                "user info in the URL is not supported (the client id and secret are sent in the Authorization header)",
            ));
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(bad("the URL has no host"));
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let path = if path.is_empty() { "/" } else { path };
        Ok(Target {
            https,
            authority: authority.as_str().to_string(),
            host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
            port,
            path: path.to_string(),
            name: format!(
                "{}://{}{}",
                if https { "https" } else { "http" },
                authority.as_str(),
                uri.path()
            ),
        })
    }
}

/// Connect, TLS when https, then one request.
async fn exchange(req: &TokenRequest, t: &Target) -> Result<Token> {
    let tcp = TcpStream::connect((t.host.as_str(), t.port))
        .await
        .map_err(|e| Error::io(&t.name, e))?;
    let _ = tcp.set_nodelay(true);
    let (status, content_type, body) = if t.https {
        let config = match &req.tls {
            Some(c) => c.clone(),
            None => super::tls::client_config(&TlsConfig::default())?,
        };
        let name = ServerName::try_from(t.host.clone()).map_err(|_| {
            Error::Config(format!(
                "sasl.oauthbearer.token.endpoint.url: {:?} is not a host name or an IP address",
                t.host
            ))
        })?;
        let tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| Error::Tls {
                broker: t.name.clone(),
                reason: super::tls::explain(&e),
            })?;
        post(req, t, TokioIo::new(tls)).await?
    } else {
        post(req, t, TokioIo::new(tcp)).await?
    };
    answer(req, t, status, content_type.as_deref(), &body)
}

/// The request body: `grant_type=client_credentials[&scope=...]`.
fn form(scope: Option<&str>) -> String {
    let mut f = String::from("grant_type=client_credentials");
    if let Some(s) = scope.map(str::trim).filter(|s| !s.is_empty()) {
        f.push_str("&scope=");
        f.push_str(&form_encode(s));
    }
    f
}

/// `application/x-www-form-urlencoded` encoding of one value (as Java's `URLEncoder`: unreserved characters as
/// they are, space as `+`, everything else `%XX`).
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Sends the POST on `io` and reads the answer: (status, content type, body of at most [`MAX_RESPONSE`]).
async fn post<I>(req: &TokenRequest, t: &Target, io: I) -> Result<(StatusCode, Option<String>, Bytes)>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let lost = |e: hyper::Error| http_error(&t.name, e);
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io)
        .await
        .map_err(lost)?;
    let credentials = format!("{}:{}", req.client_id, req.client_secret.expose());
    let mut authorization = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(credentials)))
        .expect("base64 is a valid header value");
    authorization.set_sensitive(true);
    let request = Request::post(t.path.as_str())
        .header(header::HOST, t.authority.as_str())
        .header(header::AUTHORIZATION, authorization)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json")
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::USER_AGENT, concat!("weir/", env!("CARGO_PKG_VERSION")))
        .body(Full::new(Bytes::from(form(req.scope.as_deref()))))
        .map_err(|_| {
            Error::Config("sasl.oauthbearer.token.endpoint.url: the URL cannot be requested".into())
        })?;
    let exchange = async move {
        let response = sender.send_request(request).await.map_err(lost)?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let length = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if length.is_some_and(|n| n > MAX_RESPONSE as u64) {
            return Err(too_large(&t.name));
        }
        let body = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| match e.downcast::<hyper::Error>() {
                Ok(e) => http_error(&t.name, *e),
                Err(_) => too_large(&t.name), // http_body_util::LengthLimitError
            })?
            .to_bytes();
        Ok((status, content_type, body))
    };
    // The connection is driven only until the exchange is done; dropping it then closes the socket.
    let mut exchange = pin!(exchange);
    let mut conn = pin!(conn);
    let mut conn_done = false;
    loop {
        tokio::select! {
            r = &mut exchange => return r,
            // A connection error also fails the exchange, which reports it.
            _ = &mut conn, if !conn_done => conn_done = true,
        }
    }
}

fn too_large(name: &str) -> Error {
    Error::Authentication {
        broker: name.to_string(),
        reason: format!(
            "the token endpoint's response is larger than {} KiB: is sasl.oauthbearer.token.endpoint.url the token endpoint?",
            MAX_RESPONSE >> 10
        ),
    }
}

/// A failed HTTP exchange: retriable, as a lost connection.
fn http_error(name: &str, e: hyper::Error) -> Error {
    use std::error::Error as _;
    let kind = e
        .source()
        .and_then(|s| s.downcast_ref::<io::Error>())
        .map_or(io::ErrorKind::Other, io::Error::kind);
    Error::io(name, io::Error::new(kind, format!("HTTP: {e}")))
}

/// Turns the answer into a token or an error.
fn answer(
    req: &TokenRequest,
    t: &Target,
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Token> {
    let refused = |reason: String| Error::Authentication {
        broker: t.name.clone(),
        reason,
    };
    let status_text = match status.canonical_reason() {
        Some(r) => format!("HTTP {} {r}", status.as_u16()),
        None => format!("HTTP {}", status.as_u16()),
    };
    if !status.is_success() {
        let detail = oauth_error(body, req)
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        return Err(match status.as_u16() {
            408 | 429 | 500..=599 => Error::io(
                &t.name,
                io::Error::other(format!("the token endpoint answered {status_text}{detail}")),
            ),
            300..=399 => refused(format!(
                "the token endpoint answered {status_text}, a redirect (not followed): check \
                 sasl.oauthbearer.token.endpoint.url"
            )),
            400..=499 => refused(format!(
                "the token endpoint refused the client credentials: {status_text}{detail}"
            )),
            _ => Error::io(
                &t.name,
                io::Error::other(format!("the token endpoint answered {status_text}")),
            ),
        });
    }
    let json: Value = serde_json::from_slice(body).map_err(|_| {
        refused(format!(
            "the token endpoint's {status_text} response is not JSON (Content-Type: {})",
            content_type.map_or_else(|| "none".to_string(), |c| quote(c, req))
        ))
    })?;
    let access_token = match json.get("access_token") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => {
            return Err(refused(
                "the token endpoint's response has no access_token".into(),
            ))
        }
    };
    let claims = jwt_claims(&access_token);
    let principal = claims
        .as_ref()
        .and_then(|c| c.get("sub"))
        .and_then(Value::as_str)
        .map(str::to_string);
    // The JWT's exp is what the broker enforces (to the second): when the token has one, the lifetime is not
    // longer than it, whatever expires_in says.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let until_exp = claims
        .as_ref()
        .and_then(|c| c.get("exp"))
        .and_then(seconds)
        .map(|exp| exp.saturating_sub(now));
    let expires_in =
        match json.get("expires_in") {
            Some(v) => Some(seconds(v).ok_or_else(|| {
                refused("the token endpoint's expires_in is not a number of seconds".into())
            })?),
            None => None,
        };
    let lifetime = match (expires_in, until_exp) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) => a,
        (None, Some(b)) if !b.is_zero() => b,
        (None, Some(_)) => {
            return Err(refused(
                "the token endpoint gave a token that has already expired".into(),
            ))
        }
        (None, None) => return Err(refused(
            "the token endpoint's response has no expires_in, and the token is not a JWT with an exp claim"
                .into(),
        )),
    };
    Ok(Token {
        value: Secret::new(access_token),
        lifetime,
        principal,
    })
}

/// A non-negative number of seconds: a JSON number, or a string holding one (some providers send
/// `"expires_in": "3600"`).
fn seconds(v: &Value) -> Option<Duration> {
    let f = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    (f.is_finite() && (0.0..1e15).contains(&f)).then(|| Duration::from_secs_f64(f))
}

/// The claims of a JWT (`header.claims.signature`), not verified; `None` when it is not one.
fn jwt_claims(token: &str) -> Option<serde_json::Map<String, Value>> {
    let mut parts = token.split('.');
    let (_header, claims, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json = URL_SAFE_NO_PAD.decode(claims.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&json).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// `error: error_description` of an OAuth error body (RFC 6749 §5.2), when it is one.
fn oauth_error(body: &[u8], req: &TokenRequest) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let field = |k: &str| {
        json.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    match (field("error"), field("error_description")) {
        (Some(e), Some(d)) => Some(format!("{}: {}", quote(e, req), quote(d, req))),
        (Some(e), None) => Some(quote(e, req)),
        (None, Some(d)) => Some(quote(d, req)),
        (None, None) => None,
    }
}

/// Provider-supplied text made safe to put in an error: the client secret cut out (should the provider echo it),
/// control characters dropped, at most [`MAX_QUOTED`] characters.
fn quote(s: &str, req: &TokenRequest) -> String {
    let secret = req.client_secret.expose();
    let mut s = if secret.is_empty() {
        s.to_string()
    } else {
        s.replace(secret, "<redacted>")
    };
    s.retain(|c| !c.is_control());
    if s.chars().count() > MAX_QUOTED {
        s = s.chars().take(MAX_QUOTED).collect::<String>() + "...";
    }
    s
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde_json::json;
    use weir_testkit::oidc::{CannedResponse, ClientAuth, Framing, OidcServer};

    use rustls::pki_types::pem::PemObject;

    use super::*;
    use crate::config::Pem;

    fn request(server: &OidcServer, secret: &str) -> TokenRequest {
        TokenRequest {
            endpoint: server.token_url(),
            client_id: OidcServer::CLIENT_ID.into(),
            client_secret: Secret::new(secret),
            scope: Some("kafka.read kafka.write".into()),
            timeout: Duration::from_secs(10),
            tls: None,
        }
    }

    /// Every way the error can be shown.
    fn texts(e: &Error) -> String {
        format!(
            "{e} {e:?} {:?}",
            std::error::Error::source(e).map(|s| s.to_string())
        )
    }

    #[tokio::test]
    async fn fetches_a_token_with_basic_auth_and_scope() {
        let s = OidcServer::start();
        s.set_token_lifetime(Duration::from_secs(120));
        let t = fetch_token(&request(&s, OidcServer::CLIENT_SECRET))
            .await
            .unwrap();
        // expires_in says 120 s; the JWT's exp, whole seconds, may end up to a second sooner.
        assert!(
            (Duration::from_secs(118)..=Duration::from_secs(120)).contains(&t.lifetime),
            "{:?}",
            t.lifetime
        );
        assert_eq!(t.principal.as_deref(), Some(OidcServer::CLIENT_ID));
        let claims = jwt_claims(t.value.expose()).unwrap();
        assert_eq!(claims["iss"], Value::from(s.issuer()));
        assert_eq!(claims["scope"], "kafka.read kafka.write");
        let seen = s.last_token_request().unwrap();
        assert_eq!(seen.auth, Some(ClientAuth::Basic));
        assert_eq!(seen.client_id.as_deref(), Some(OidcServer::CLIENT_ID));
        assert_eq!(seen.grant_type.as_deref(), Some("client_credentials"));
        assert_eq!(seen.scope.as_deref(), Some("kafka.read kafka.write"));
        assert_eq!(
            seen.content_type.as_deref(),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(seen.accept.as_deref(), Some("application/json"));
        assert_eq!(format!("{t:?}").matches("Secret(<redacted>)").count(), 1);

        // No scope: none sent; a subject other than the client id.
        s.add_client_as("svc", "svc-secret", "service-account-7");
        let t = fetch_token(&TokenRequest {
            client_id: "svc".into(),
            scope: Some("  ".into()),
            ..request(&s, "svc-secret")
        })
        .await
        .unwrap();
        assert_eq!(t.principal.as_deref(), Some("service-account-7"));
        assert_eq!(s.last_token_request().unwrap().scope, None);
        assert_eq!(s.tokens_issued(), 2);
    }

    #[tokio::test]
    async fn lifetime_from_exp_or_a_string_expires_in() {
        let s = OidcServer::start();
        let jwt = s.mint("alice", Duration::from_secs(300));
        s.set_canned(Some(CannedResponse::json(
            200,
            &json!({"access_token": jwt, "token_type": "Bearer"}),
        )));
        let t = fetch_token(&request(&s, "any")).await.unwrap();
        assert!(
            (Duration::from_secs(295)..=Duration::from_secs(300)).contains(&t.lifetime),
            "{:?}",
            t.lifetime
        );
        assert_eq!(t.principal.as_deref(), Some("alice"));
        assert_eq!(t.value.expose(), jwt);

        // An opaque token with a string expires_in: no principal.
        s.set_canned(Some(CannedResponse::json(
            200,
            &json!({"access_token": "opaque", "expires_in": "60"}),
        )));
        let t = fetch_token(&request(&s, "any")).await.unwrap();
        assert_eq!((t.lifetime, t.principal), (Duration::from_secs(60), None));

        // No lifetime anywhere, or an expired JWT without expires_in: refused.
        for body in [
            json!({"access_token": "opaque"}),
            json!({"access_token": s.mint_expired("alice")}),
            json!({"access_token": "opaque", "expires_in": -5}),
        ] {
            s.set_canned(Some(CannedResponse::json(200, &body)));
            let e = fetch_token(&request(&s, "any")).await.unwrap_err();
            assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
        }
    }

    #[tokio::test]
    async fn bad_credentials_are_fatal_and_never_show_the_secret() {
        let s = OidcServer::start();
        let secret = "hunter2-not-the-secret";
        let e = fetch_token(&request(&s, secret)).await.unwrap_err();
        assert!(!e.is_retriable());
        let Error::Authentication { broker, reason } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(broker, &s.token_url());
        assert!(
            reason.contains("401") && reason.contains("invalid_client"),
            "{reason}"
        );
        assert!(!texts(&e).contains(secret), "{}", texts(&e));

        // A provider that echoes the secret in its error: cut out.
        s.set_canned(Some(CannedResponse::json(
            400,
            &json!({"error": "invalid_request", "error_description": format!("bad secret {secret}\n")}),
        )));
        let e = fetch_token(&request(&s, secret)).await.unwrap_err();
        assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
        assert!(texts(&e).contains("bad secret <redacted>"), "{}", texts(&e));
        assert!(!texts(&e).contains(secret));
    }

    #[tokio::test]
    async fn unavailable_endpoint_is_retriable() {
        let s = OidcServer::start();
        s.set_down(true);
        let e = fetch_token(&request(&s, OidcServer::CLIENT_SECRET))
            .await
            .unwrap_err();
        assert!(e.is_retriable() && matches!(e, Error::Io { .. }), "{e:?}");
        assert!(
            texts(&e).contains("503") && texts(&e).contains("temporarily_unavailable"),
            "{}",
            texts(&e)
        );
        s.set_down(false);
        fetch_token(&request(&s, OidcServer::CLIENT_SECRET))
            .await
            .unwrap();

        for status in [429, 502] {
            s.set_canned(Some(CannedResponse::json(status, &json!({}))));
            let e = fetch_token(&request(&s, OidcServer::CLIENT_SECRET))
                .await
                .unwrap_err();
            assert!(e.is_retriable(), "{status}: {e:?}");
        }

        // Nobody listening.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = fetch_token(&TokenRequest {
            endpoint: format!("http://127.0.0.1:{port}/token"),
            ..request(&s, OidcServer::CLIENT_SECRET)
        })
        .await
        .unwrap_err();
        assert!(e.is_retriable() && matches!(e, Error::Io { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn oversized_responses_are_refused() {
        let s = OidcServer::start();
        let mut body = br#"{"access_token":"x","pad":""#.to_vec();
        body.resize(2 << 20, b'a');
        body.extend_from_slice(b"\"}");
        for framing in [Framing::ContentLength, Framing::Chunked, Framing::Close] {
            s.set_canned(Some(CannedResponse {
                status: 200,
                content_type: "application/json".into(),
                body: body.clone(),
                framing,
            }));
            let t = Instant::now();
            let e = fetch_token(&request(&s, "any")).await.unwrap_err();
            assert!(
                matches!(&e, Error::Authentication { reason, .. } if reason.contains("larger than 1024 KiB")),
                "{framing:?}: {e:?}"
            );
            assert!(t.elapsed() < Duration::from_secs(5));
        }
        // Exactly at the limit is fine.
        let mut body = br#"{"access_token":"x","expires_in":5,"pad":""#.to_vec();
        body.resize(MAX_RESPONSE - 2, b'a');
        body.extend_from_slice(b"\"}");
        s.set_canned(Some(CannedResponse {
            status: 200,
            content_type: "application/json".into(),
            body,
            framing: Framing::Chunked,
        }));
        fetch_token(&request(&s, "any")).await.unwrap();
    }

    #[tokio::test]
    async fn malformed_answers_are_clear_errors() {
        let s = OidcServer::start();
        let cases = [
            (
                CannedResponse {
                    status: 200,
                    content_type: "text/html".into(),
                    body: b"<html>".to_vec(),
                    framing: Framing::ContentLength,
                },
                "not JSON (Content-Type: text/html)",
            ),
            (
                CannedResponse::json(200, &json!({"token_type": "Bearer"})),
                "no access_token",
            ),
            (
                CannedResponse::json(200, &json!({"access_token": 5})),
                "no access_token",
            ),
            (
                CannedResponse::json(200, &json!({"access_token": "x", "expires_in": "soon"})),
                "expires_in",
            ),
            (CannedResponse::json(302, &json!({})), "redirect"),
        ];
        for (canned, needle) in cases {
            s.set_canned(Some(canned));
            let e = fetch_token(&request(&s, "any")).await.unwrap_err();
            assert!(
                matches!(&e, Error::Authentication { reason, .. } if reason.contains(needle)),
                "{needle}: {e:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_timeout_bounds_the_exchange() {
        let s = OidcServer::start();
        s.set_delay(Duration::from_secs(3));
        let t = Instant::now();
        let e = fetch_token(&TokenRequest {
            timeout: Duration::from_millis(200),
            ..request(&s, OidcServer::CLIENT_SECRET)
        })
        .await
        .unwrap_err();
        assert!(
            matches!(e, Error::Timeout { after, .. } if after == Duration::from_millis(200)),
            "{e:?}"
        );
        assert!(e.is_retriable());
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }

    #[tokio::test]
    async fn bad_urls_are_configuration_errors() {
        let s = OidcServer::start();
        for url in [
            "",
            "not a url",
            "/token",
            "ftp://127.0.0.1/token",
            "http://user:pw@127.0.0.1/token",
            "file:///tmp/token",
        ] {
            let e = fetch_token(&TokenRequest {
                endpoint: url.into(),
                ..request(&s, OidcServer::CLIENT_SECRET)
            })
            .await
            .unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{url}: {e:?}");
            assert!(!texts(&e).contains("pw@"), "{e}");
        }
        let e = fetch_token(&TokenRequest {
            client_secret: Secret::default(),
            ..request(&s, "")
        })
        .await
        .unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        // The name in errors drops the query.
        let t = Target::parse("HTTPS://idp.example:8443/oauth2/token?tenant=x").unwrap();
        assert_eq!(
            (t.https, t.port, t.path.as_str()),
            (true, 8443, "/oauth2/token?tenant=x")
        );
        assert_eq!(t.name, "https://idp.example:8443/oauth2/token");
        let t = Target::parse("http://[::1]/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.authority.as_str(), t.port),
            ("::1", "[::1]", 80)
        );
    }

    #[test]
    fn form_encoding_matches_javas_url_encoder() {
        assert_eq!(form(None), "grant_type=client_credentials");
        assert_eq!(
            form(Some("api://kafka/.default a*b~c")),
            "grant_type=client_credentials&scope=api%3A%2F%2Fkafka%2F.default+a*b%7Ec"
        );
    }

    /// https: a TLS front (the testkit's broker certificate, for 127.0.0.1) that forwards to the OIDC server.
    #[tokio::test]
    async fn https_endpoint() {
        let dir = std::env::temp_dir().join(weir_testkit::unique_name("weir-oidc-tls"));
        let pki = weir_testkit::Pki::generate(&dir).unwrap();
        let s = OidcServer::start();
        let certs: Vec<_> =
            rustls::pki_types::CertificateDer::pem_slice_iter(pki.broker.chain_pem.as_bytes())
                .collect::<std::result::Result<_, _>>()
                .unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(pki.broker.key_pem.as_bytes()).unwrap();
        let server =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = s.addr();
        let front = tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut up = TcpStream::connect(upstream).await.unwrap();
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
                    }
                });
            }
        });
        let tls = super::super::tls::client_config(&TlsConfig {
            ca: Some(Pem::File(pki.ca_cert_path.clone())),
            ..TlsConfig::default()
        })
        .unwrap();
        let req = TokenRequest {
            endpoint: format!("https://127.0.0.1:{port}/token"),
            tls: Some(tls),
            ..request(&s, OidcServer::CLIENT_SECRET)
        };
        let t = fetch_token(&req).await.unwrap();
        assert_eq!(t.principal.as_deref(), Some(OidcServer::CLIENT_ID));
        // The system's CAs do not know the testkit's CA (or there are none on this machine).
        let e = fetch_token(&TokenRequest { tls: None, ..req }).await.unwrap_err();
        assert!(
            matches!(&e, Error::Tls { .. })
                || matches!(&e, Error::Config(m) if m.contains("no system CA certificates")),
            "{e:?}"
        );
        front.abort();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
