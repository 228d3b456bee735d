//! SASL authentication of a new connection: SaslHandshake names the mechanism, then SaslAuthenticate carries
//! the mechanism's messages until it is done. The mechanisms are pure state machines ([`Mechanism`]); this
//! module drives one over a connection.

mod oauth_bearer;
mod plain;
mod scram;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use rand::RngCore;
use weir_proto::sasl::{SaslAuthenticateRequest, SaslHandshakeRequest};
use weir_proto::KafkaCode;

use weir_proto::Call;

use super::oidc_tokens::OidcTokens;
use crate::config::{ClientConfig, SaslConfig, SaslMechanism, TokenProvider};
use crate::error::{Error, Result};

/// The client side of one SASL mechanism's exchange.
pub(crate) trait Mechanism: Send {
    /// The first message.
    fn start(&mut self) -> Vec<u8>;
    /// The broker's answer to the last message: the next message, or `None` when the exchange is complete.
    /// An `Err` says why the exchange failed (never with a secret in it).
    fn step(&mut self, answer: &[u8]) -> Result<Option<Vec<u8>>, String>;
}

/// A client's SASL settings, checked: the mechanism, and for OAUTHBEARER where its tokens come from.
pub(crate) struct Sasl {
    cfg: SaslConfig,
    mechanism: SaslMechanism,
    tokens: Option<Arc<dyn TokenProvider>>,
}

impl Sasl {
    /// Checks what authentication needs before any connection is made.
    /// `tls`: the connections' TLS configuration, if they use TLS (an https token endpoint is verified with it).
    pub(crate) fn new(
        cfg: &SaslConfig,
        client: &ClientConfig,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<Sasl> {
        let mechanism = cfg.mechanism.ok_or_else(|| {
            Error::Config(
                "SASL needs sasl.mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)".into(),
            )
        })?;
        let tokens = match mechanism {
            SaslMechanism::OAuthBearer => Some(token_source(cfg, client, tls)?),
            _ if cfg.username.is_empty() => {
                return Err(Error::Config(format!(
                    "SASL {} needs a user name (sasl.username, or username in sasl.jaas.config)",
                    mechanism.name()
                )))
            }
            _ => None,
        };
        Ok(Sasl {
            cfg: cfg.clone(),
            mechanism,
            tokens,
        })
    }

    /// The mechanism.
    pub(crate) fn mechanism(&self) -> SaslMechanism {
        self.mechanism
    }

    /// A fresh exchange of the mechanism (for OAUTHBEARER, with a token from its source).
    async fn exchange(&self) -> Result<Box<dyn Mechanism>> {
        let cfg = &self.cfg;
        let scram = |hash| {
            let mut nonce = [0u8; 24];
            rand::thread_rng().fill_bytes(&mut nonce);
            let nonce = base64::engine::general_purpose::STANDARD.encode(nonce);
            Box::new(scram::Scram::new(
                hash,
                &cfg.username,
                cfg.password.clone(),
                nonce,
            )) as Box<dyn Mechanism>
        };
        Ok(match self.mechanism {
            SaslMechanism::Plain => Box::new(plain::Plain::new(&cfg.username, cfg.password.clone())),
            SaslMechanism::ScramSha256 => scram(scram::Hash::Sha256),
            SaslMechanism::ScramSha512 => scram(scram::Hash::Sha512),
            SaslMechanism::OAuthBearer => {
                let source = self.tokens.as_ref().expect("OAUTHBEARER has a token source");
                Box::new(oauth_bearer::OAuthBearer::new(source.token().await?))
            }
        })
    }
}

/// The application's token provider, else weir's own OIDC client (an https endpoint verified with the client's
/// TLS settings, as the Java client does).
fn token_source(
    cfg: &SaslConfig,
    client: &ClientConfig,
    connections_tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Arc<dyn TokenProvider>> {
    if let Some(p) = &cfg.token_provider {
        return Ok(p.0.clone());
    }
    let endpoint = &cfg.oauth.token_endpoint_url;
    let tls = match (endpoint.starts_with("https://"), connections_tls) {
        (false, _) => None,
        (true, Some(tls)) => Some(tls.clone()),
        (true, None) => Some(super::tls::client_config(&client.security.tls)?),
    };
    Ok(Arc::new(OidcTokens::new(
        &cfg.oauth,
        tls,
        client.request_timeout,
    )?))
}

/// Where a SASL exchange sends its requests: the connection itself while it is being set up, the writer task
/// when it re-authenticates.
pub(crate) trait SaslChannel: Send {
    /// The broker's address, for errors.
    fn broker(&self) -> &str;
    /// Sends `req` and waits for its answer.
    fn call<C: Call + Sync>(
        &mut self,
        req: &C,
    ) -> impl std::future::Future<Output = Result<C::Response>> + Send
    where
        C::Response: Send;
}

/// The broker's minimum time between two re-authentications of a connection (Kafka's
/// `MIN_REAUTH_INTERVAL_ONE_SECOND_NANOS`); one sooner is refused with ILLEGAL_SASL_STATE.
pub(crate) const MIN_REAUTH_INTERVAL: Duration = Duration::from_millis(1010);

/// When to re-authenticate a session of `lifetime`: at 85 to 95% of it, at random, as the Java client does (so
/// that a client's connections do not all re-authenticate at once), and at least a second before it ends (half
/// of it, for sessions of two seconds or less), so that the exchange reaches the broker in time.
pub(crate) fn reauthenticate_after(lifetime: Duration) -> Duration {
    // (A session shorter than MIN_REAUTH_INTERVAL cannot be renewed in time after a re-authentication: the
    // broker closes it when it ends and the client reconnects. Tokens that short are for tests only.)
    let jittered = lifetime.mul_f64(rand::Rng::gen_range(&mut rand::thread_rng(), 0.85..0.95));
    let margin = Duration::from_secs(1).min(lifetime / 2);
    jittered.min(lifetime - margin)
}

/// Authenticates over `conn` (versions negotiated): a first authentication, or a re-authentication of an
/// authenticated connection. Returns the session lifetime the broker set (KIP-368), if any.
pub(crate) async fn authenticate(conn: &mut impl SaslChannel, sasl: &Sasl) -> Result<Option<Duration>> {
    let which = sasl.mechanism;
    let broker = conn.broker().to_owned();
    let refused = |reason: String| Error::Authentication {
        broker: broker.clone(),
        reason,
    };
    let hs = conn
        .call(&SaslHandshakeRequest {
            mechanism: which.name().into(),
        })
        .await?;
    match KafkaCode::check(hs.error_code) {
        Ok(()) => {}
        Err(KafkaCode::UnsupportedSaslMechanism) => {
            return Err(refused(format!(
                "the listener does not enable {} (it enables {})",
                which.name(),
                hs.mechanisms.join(", ")
            )))
        }
        Err(code) => {
            return Err(refused(format!(
                "SaslHandshake for {} answered {code:?} (a listener without SASL answers IllegalSaslState)",
                which.name()
            )))
        }
    }
    let mut m = sasl.exchange().await?;
    let mut message = m.start();
    let who = match which {
        SaslMechanism::OAuthBearer => String::new(),
        _ => format!(" as {:?}", sasl.cfg.username),
    };
    loop {
        let r = conn
            .call(&SaslAuthenticateRequest {
                auth_bytes: message.into(),
            })
            .await?;
        if r.error_code != 0 {
            let code = KafkaCode::from_code(r.error_code).unwrap_or(KafkaCode::Unknown(r.error_code));
            return Err(refused(match r.error_message {
                Some(msg) if !msg.is_empty() => format!("{}{who}: {msg}", which.name()),
                _ => format!("{}{who}: {code:?}", which.name()),
            }));
        }
        match m.step(&r.auth_bytes).map_err(&refused)? {
            Some(next) => message = next,
            None => {
                let lifetime = u64::try_from(r.session_lifetime_ms).ok().filter(|ms| *ms > 0);
                return Ok(lifetime.map(Duration::from_millis));
            }
        }
    }
}
