//! weir's own OAUTHBEARER token provider (KIP-768): tokens from an OpenID Connect token endpoint
//! ([`super::oidc::fetch_token`]), one fetch at a time for all of a client's connections, kept until 80% of
//! their lifetime (the Java client's `sasl.login.refresh.window.factor`), then fetched again. A fetch that fails
//! for a transient reason (the endpoint down, a timeout) is retried twice with backoff; while the old token is
//! still valid it is used meanwhile.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::oidc::{fetch_token, TokenRequest};
use crate::config::{OAuthConfig, OAuthToken, Secret, TokenFuture, TokenProvider};
use crate::error::{Error, Result};

/// The share of a token's lifetime after which a new one is fetched.
const REFRESH_AT: f64 = 0.8;
/// Retries of a fetch that failed for a transient reason, and the first pause before one (doubled each time).
const RETRIES: u32 = 2;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

struct Cached {
    value: Secret,
    expires: Instant,
    refresh: Instant,
}

/// Tokens from an OIDC endpoint by the client-credentials grant.
pub(crate) struct OidcTokens {
    request: TokenRequest,
    current: tokio::sync::Mutex<Option<Cached>>,
}

impl fmt::Debug for OidcTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcTokens")
            .field("endpoint", &self.request.endpoint)
            .field("client_id", &self.request.client_id)
            .finish_non_exhaustive()
    }
}

impl OidcTokens {
    /// A provider for `oauth`; `tls` verifies an https endpoint, each fetch is bounded by `timeout`.
    pub(crate) fn new(
        oauth: &OAuthConfig,
        tls: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Result<OidcTokens> {
        if oauth.token_endpoint_url.is_empty() {
            return Err(Error::Config(
                "OAUTHBEARER needs sasl.oauthbearer.token.endpoint.url, or a TokenProvider from the application"
                    .into(),
            ));
        }
        if oauth.client_id.is_empty() || oauth.client_secret.is_empty() {
            return Err(Error::Config(
                "OAUTHBEARER by OIDC needs a client id and secret (sasl.oauthbearer.client.id and \
                 .client.secret, or clientId and clientSecret in sasl.jaas.config)"
                    .into(),
            ));
        }
        Ok(OidcTokens {
            request: TokenRequest {
                endpoint: oauth.token_endpoint_url.clone(),
                client_id: oauth.client_id.clone(),
                client_secret: oauth.client_secret.clone(),
                scope: oauth.scope.clone(),
                timeout,
                tls,
            },
            current: tokio::sync::Mutex::new(None),
        })
    }

    async fn fresh(&self) -> Result<OAuthToken> {
        let mut current = self.current.lock().await;
        let now = Instant::now();
        if let Some(c) = current.as_ref().filter(|c| now < c.refresh) {
            return Ok(OAuthToken::new(c.value.clone(), c.expires - now));
        }
        let mut backoff = FIRST_BACKOFF;
        let mut retries = 0;
        let fetched = loop {
            match fetch_token(&self.request).await {
                Ok(t) => break t,
                Err(e) if e.is_retriable() && retries < RETRIES => {
                    tracing::debug!(error = %e, "token fetch failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    retries += 1;
                }
                Err(e) => {
                    let now = Instant::now();
                    if let Some(c) = current.as_ref().filter(|c| now < c.expires) {
                        tracing::warn!(error = %e, "token fetch failed; using the current token until it expires");
                        return Ok(OAuthToken::new(c.value.clone(), c.expires - now));
                    }
                    return Err(e);
                }
            }
        };
        let now = Instant::now();
        tracing::debug!(lifetime = ?fetched.lifetime, principal = ?fetched.principal, "token fetched");
        *current = Some(Cached {
            value: fetched.value.clone(),
            expires: now + fetched.lifetime,
            refresh: now + fetched.lifetime.mul_f64(REFRESH_AT),
        });
        Ok(OAuthToken::new(fetched.value, fetched.lifetime))
    }
}

impl TokenProvider for OidcTokens {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(self.fresh())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_testkit::oidc::OidcServer;

    fn provider(server: &OidcServer) -> OidcTokens {
        let oauth = OAuthConfig {
            token_endpoint_url: server.token_url(),
            client_id: OidcServer::CLIENT_ID.into(),
            client_secret: Secret::new(OidcServer::CLIENT_SECRET),
            scope: None,
        };
        OidcTokens::new(&oauth, None, Duration::from_secs(5)).unwrap()
    }

    #[tokio::test]
    async fn one_fetch_serves_until_the_refresh_point() {
        let server = OidcServer::start();
        server.set_token_lifetime(Duration::from_secs(3600));
        let p = provider(&server);
        let a = p.token().await.unwrap();
        let b = p.token().await.unwrap();
        assert_eq!(a.value, b.value);
        assert_eq!(server.tokens_issued(), 1);
        assert!(a.lifetime > Duration::from_secs(3590), "{:?}", a.lifetime);
        // A lifetime of 1 s is refreshed after 0.8 s.
        server.set_token_lifetime(Duration::from_secs(1));
        let p = provider(&server);
        p.token().await.unwrap();
        tokio::time::sleep(Duration::from_millis(850)).await;
        p.token().await.unwrap();
        assert_eq!(server.tokens_issued(), 3);
    }

    #[tokio::test]
    async fn a_down_endpoint_is_retried_then_reported_and_the_current_token_bridges_it() {
        let server = OidcServer::start();
        server.set_token_lifetime(Duration::from_secs(6));
        let p = provider(&server);
        // The JWT's exp is in whole seconds: the lifetime the provider took is what counts.
        let lifetime = p.token().await.unwrap().lifetime;
        server.set_down(true);
        tokio::time::sleep(lifetime.mul_f64(REFRESH_AT) + Duration::from_millis(100)).await;
        let before = server.token_requests();
        // Past the refresh point, before expiry: the current token, after three tries.
        p.token().await.unwrap();
        assert_eq!(server.token_requests() - before, 1 + RETRIES as u64);
        tokio::time::sleep(lifetime.mul_f64(1.0 - REFRESH_AT)).await;
        let e = p.token().await.unwrap_err();
        assert!(e.is_retriable(), "{e:?}");
    }
}
