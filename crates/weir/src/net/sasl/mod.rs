//! SASL authentication of a new connection: SaslHandshake names the mechanism, then SaslAuthenticate carries
//! the mechanism's messages until it is done. The mechanisms are pure state machines ([`Mechanism`]); this
//! module drives one over a connection.

mod plain;
mod scram;

use std::time::Duration;

use base64::Engine as _;
use rand::RngCore;
use weir_proto::sasl::{SaslAuthenticateRequest, SaslHandshakeRequest};
use weir_proto::KafkaCode;

use weir_proto::Call;

use crate::config::{SaslConfig, SaslMechanism};
use crate::error::{Error, Result};

/// The client side of one SASL mechanism's exchange.
pub(crate) trait Mechanism: Send {
    /// The first message.
    fn start(&mut self) -> Vec<u8>;
    /// The broker's answer to the last message: the next message, or `None` when the exchange is complete.
    /// An `Err` says why the exchange failed (never with a secret in it).
    fn step(&mut self, answer: &[u8]) -> Result<Option<Vec<u8>>, String>;
}

/// A fresh exchange of the configured mechanism.
fn mechanism(cfg: &SaslConfig, which: SaslMechanism) -> Box<dyn Mechanism> {
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
    match which {
        SaslMechanism::Plain => Box::new(plain::Plain::new(&cfg.username, cfg.password.clone())),
        SaslMechanism::ScramSha256 => scram(scram::Hash::Sha256),
        SaslMechanism::ScramSha512 => scram(scram::Hash::Sha512),
    }
}

/// Checks what authentication needs before any connection is made.
pub(crate) fn validate(cfg: &SaslConfig) -> Result<SaslMechanism> {
    let m = cfg.mechanism.ok_or_else(|| {
        Error::Config("SASL needs sasl.mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)".into())
    })?;
    if cfg.username.is_empty() {
        return Err(Error::Config(format!(
            "SASL {} needs a user name (sasl.username, or username in sasl.jaas.config)",
            m.name()
        )));
    }
    Ok(m)
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

/// When to re-authenticate a session of `lifetime`: at 85 to 95% of it, at random, as the Java client does (so
/// that a client's connections do not all re-authenticate at once).
pub(crate) fn reauthenticate_after(lifetime: Duration) -> Duration {
    lifetime.mul_f64(rand::Rng::gen_range(&mut rand::thread_rng(), 0.85..0.95))
}

/// Authenticates over `conn` (versions negotiated): a first authentication, or a re-authentication of an
/// authenticated connection. Returns the session lifetime the broker set (KIP-368), if any.
pub(crate) async fn authenticate(
    conn: &mut impl SaslChannel,
    cfg: &SaslConfig,
    which: SaslMechanism,
) -> Result<Option<Duration>> {
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
                "SaslHandshake for {} answered {code:?}: is this a SASL listener?",
                which.name()
            )))
        }
    }
    let mut m = mechanism(cfg, which);
    let mut message = m.start();
    loop {
        let r = conn
            .call(&SaslAuthenticateRequest {
                auth_bytes: message.into(),
            })
            .await?;
        if r.error_code != 0 {
            let code = KafkaCode::from_code(r.error_code).unwrap_or(KafkaCode::Unknown(r.error_code));
            return Err(refused(match r.error_message {
                Some(msg) if !msg.is_empty() => format!("{} as {:?}: {msg}", which.name(), cfg.username),
                _ => format!("{} as {:?}: {code:?}", which.name(), cfg.username),
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
