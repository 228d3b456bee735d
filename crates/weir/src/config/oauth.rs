//! SASL/OAUTHBEARER tokens: where they come from. Either the application supplies them ([`TokenProvider`]),
//! or weir fetches them itself from an OpenID Connect token endpoint with the client-credentials grant
//! ([`OAuthConfig`], KIP-768), and fetches a new one before the old one expires.
//!
//! ```
//! use std::time::Duration;
//! use weir::config::{ClientConfig, OAuthToken, Secret, TokenProvider};
//!
//! /// Tokens from the application's own identity system.
//! #[derive(Debug)]
//! struct FromVault;
//!
//! impl TokenProvider for FromVault {
//!     fn token(&self) -> weir::config::TokenFuture<'_> {
//!         Box::pin(async {
//!             Ok(OAuthToken::new(Secret::new("eyJ..."), Duration::from_secs(3600)))
//!         })
//!     }
//! }
//!
//! let mut cfg = ClientConfig::new("broker:9093");
//! cfg.set("security.protocol", "SASL_SSL").unwrap();
//! cfg.set("sasl.mechanism", "OAUTHBEARER").unwrap();
//! cfg.security.sasl.set_token_provider(FromVault);
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::Secret;
use crate::error::Result;

/// An OAuth bearer token for SASL/OAUTHBEARER.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OAuthToken {
    /// The token (a JWT, for brokers validating with a JWKS).
    pub value: Secret,
    /// How long it stays valid from now. weir asks for a new one before it ends, and brokers end the session
    /// when it does (re-authentication, KIP-368, renews it in time).
    pub lifetime: Duration,
    /// SASL extensions sent with the token (`key=value` pairs the broker's validator may read).
    pub extensions: Vec<(String, String)>,
}

impl OAuthToken {
    /// A token valid for `lifetime`, without extensions.
    pub fn new(value: Secret, lifetime: Duration) -> OAuthToken {
        OAuthToken {
            value,
            lifetime,
            extensions: Vec::new(),
        }
    }
}

/// The future [`TokenProvider::token`] returns.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<OAuthToken>> + Send + 'a>>;

/// A source of OAUTHBEARER tokens, called for every authentication and re-authentication. It should answer
/// from a cache while its token is fresh: weir calls it once per connection per session. An error is reported
/// as the connection's failure; make it an [`crate::Error::Authentication`] when the credentials are refused
/// (weir stops retrying) and a retriable error when the identity provider is down.
pub trait TokenProvider: Send + Sync + fmt::Debug {
    /// A valid token.
    fn token(&self) -> TokenFuture<'_>;
}

/// A [`TokenProvider`] held by a configuration: equal only to itself.
#[derive(Clone)]
pub struct TokenSource(pub Arc<dyn TokenProvider>);

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl PartialEq for TokenSource {
    fn eq(&self, other: &TokenSource) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TokenSource {}

/// The OpenID Connect client-credentials settings of weir's own token provider (KIP-768). Used with
/// OAUTHBEARER when no [`TokenProvider`] is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OAuthConfig {
    /// The token endpoint (`sasl.oauthbearer.token.endpoint.url`), `https://` (or `http://` for a local
    /// identity provider). An https endpoint is verified like the brokers: against `ssl.ca.location` if set,
    /// else the system's roots.
    pub token_endpoint_url: String,
    /// The client id (`sasl.oauthbearer.client.id`, or `clientId` in `sasl.jaas.config`).
    pub client_id: String,
    /// The client secret (`sasl.oauthbearer.client.secret`, or `clientSecret` in `sasl.jaas.config`).
    pub client_secret: Secret,
    /// The scope asked for (`sasl.oauthbearer.scope`, or `scope` in `sasl.jaas.config`), if any.
    pub scope: Option<String>,
}
