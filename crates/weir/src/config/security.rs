//! How connections to brokers are secured: TLS ([`TlsConfig`]) and SASL ([`SaslConfig`]), chosen by
//! [`SecurityProtocol`], settable with the Java client's and librdkafka's property names (`sasl.jaas.config`
//! included, so a Java configuration pastes in).
//!
//! ```
//! use weir::config::{ClientConfig, SaslMechanism, SecurityProtocol};
//! let mut cfg = ClientConfig::new("broker:9093");
//! cfg.set("security.protocol", "SASL_SSL").unwrap();
//! cfg.set("sasl.mechanism", "SCRAM-SHA-512").unwrap();
//! cfg.set(
//!     "sasl.jaas.config",
//!     r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="s3cret";"#,
//! )
//! .unwrap();
//! assert_eq!(cfg.security.protocol, SecurityProtocol::SaslSsl);
//! assert_eq!(cfg.security.sasl.mechanism, Some(SaslMechanism::ScramSha512));
//! assert_eq!(cfg.security.sasl.username, "alice");
//! assert!(!format!("{cfg:?}").contains("s3cret"));
//! ```

use std::path::PathBuf;
use std::str::FromStr;

use super::properties::Key;
use super::{OAuthConfig, Secret, TokenProvider, TokenSource};
use crate::error::{Error, Result};

/// The transport and authentication of every broker connection (`security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// TCP, no authentication (the default).
    #[default]
    Plaintext,
    /// TLS; the client is authenticated by its certificate if it has one.
    Ssl,
    /// SASL over TCP.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether connections use TLS.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

impl FromStr for SecurityProtocol {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => SecurityProtocol::Plaintext,
            "SSL" => SecurityProtocol::Ssl,
            "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
            "SASL_SSL" => SecurityProtocol::SaslSsl,
            _ => {
                return Err(Error::Config(format!(
                    "security.protocol: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got {s:?}"
                )))
            }
        })
    }
}

const MECHANISMS: &str = "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER";

/// The SASL mechanisms weir speaks (`sasl.mechanism`). GSSAPI (Kerberos) and AWS_MSK_IAM are not among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaslMechanism {
    /// `PLAIN`: user name and password, in the clear (use it over TLS).
    Plain,
    /// `SCRAM-SHA-256`: salted challenge-response; the password never crosses the wire.
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `OAUTHBEARER`: an OAuth bearer token, from the application ([`super::TokenProvider`]) or from an OpenID
    /// Connect token endpoint ([`super::OAuthConfig`]).
    OAuthBearer,
}

impl SaslMechanism {
    /// The name the broker knows it by.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

impl FromStr for SaslMechanism {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "PLAIN" => SaslMechanism::Plain,
            "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
            "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
            "OAUTHBEARER" => SaslMechanism::OAuthBearer,
            "GSSAPI" | "AWS_MSK_IAM" => {
                return Err(Error::Config(format!(
                    "sasl.mechanism: weir does not support {s} (it speaks {MECHANISMS})"
                )))
            }
            _ => {
                return Err(Error::Config(format!(
                    "sasl.mechanism: expected one of {MECHANISMS}, got {s:?}"
                )))
            }
        })
    }
}

/// PEM data: a file, or the text itself (held as a [`Secret`], since it may be a private key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    /// A PEM file.
    File(PathBuf),
    /// PEM text.
    Inline(Secret),
}

/// TLS settings (used when [`SecurityProtocol::tls`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The CA certificates brokers are verified against (`ssl.ca.location`, or `ssl.truststore.location` with
    /// `ssl.truststore.type=PEM`; inline: `ssl.ca.pem`, `ssl.truststore.certificates`). `None`: the system's
    /// roots.
    pub ca: Option<Pem>,
    /// This client's certificate chain, for mutual TLS (`ssl.certificate.location`, `ssl.certificate.pem`,
    /// `ssl.keystore.certificate.chain`, or the certificates of `ssl.keystore.location`).
    pub certificate: Option<Pem>,
    /// This client's private key, PKCS#8, PKCS#1 or SEC1 (`ssl.key.location`, `ssl.key.pem`,
    /// `ssl.keystore.key`, or the key of `ssl.keystore.location`). An encrypted PKCS#8 key needs
    /// [`TlsConfig::key_password`].
    pub key: Option<Pem>,
    /// The password of an encrypted key (`ssl.key.password`).
    pub key_password: Option<Secret>,
    /// Whether the broker's certificate must name the host weir connected to (on by default;
    /// `ssl.endpoint.identification.algorithm` empty or `none` turns it off, as in the Java client).
    pub verify_hostname: bool,
    /// Whether the broker's certificate is verified at all (on by default; off only with
    /// `enable.ssl.certificate.verification=false`, which makes TLS worthless against an active attacker: weir
    /// logs a warning on every connection made that way).
    pub verify_certificates: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            ca: None,
            certificate: None,
            key: None,
            key_password: None,
            verify_hostname: true,
            verify_certificates: true,
        }
    }
}

/// SASL settings (used when [`SecurityProtocol::sasl`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslConfig {
    /// The mechanism (`sasl.mechanism`); required with SASL.
    pub mechanism: Option<SaslMechanism>,
    /// User name (`sasl.username`, or `username` in `sasl.jaas.config`).
    pub username: String,
    /// Password (`sasl.password`, or `password` in `sasl.jaas.config`).
    pub password: Secret,
    /// OAUTHBEARER: the token endpoint weir fetches tokens from, when no [`SaslConfig::token_provider`] is set.
    pub oauth: OAuthConfig,
    /// OAUTHBEARER: the application's source of tokens ([`SaslConfig::set_token_provider`]).
    pub token_provider: Option<TokenSource>,
}

impl SaslConfig {
    /// Makes `provider` the source of OAUTHBEARER tokens.
    pub fn set_token_provider(&mut self, provider: impl TokenProvider + 'static) {
        self.token_provider = Some(TokenSource(std::sync::Arc::new(provider)));
    }
}

/// TLS and SASL, as [`crate::config::ClientConfig::security`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityConfig {
    /// `security.protocol`.
    pub protocol: SecurityProtocol,
    /// TLS settings.
    pub tls: TlsConfig,
    /// SASL settings.
    pub sasl: SaslConfig,
}

impl SecurityConfig {
    /// Applies `key` if it is a security property; `Ok(false)` if it is not. Errors never repeat the value of a
    /// secret property.
    pub(crate) fn apply(&mut self, key: Key, name: &str, value: &str) -> Result<bool> {
        let tls = &mut self.tls;
        match key {
            Key::SecurityProtocol => self.protocol = value.parse()?,
            Key::SaslMechanism => self.sasl.mechanism = Some(value.parse()?),
            Key::SaslUsername => self.sasl.username = value.to_owned(),
            Key::SaslPassword => self.sasl.password = Secret::new(value),
            Key::SaslJaasConfig => apply_jaas(&mut self.sasl, value)?,
            Key::OAuthTokenEndpoint => self.sasl.oauth.token_endpoint_url = value.to_owned(),
            Key::OAuthClientId => self.sasl.oauth.client_id = value.to_owned(),
            Key::OAuthClientSecret => self.sasl.oauth.client_secret = Secret::new(value),
            Key::OAuthScope => self.sasl.oauth.scope = Some(value.to_owned()).filter(|s| !s.is_empty()),
            Key::OAuthMethod => {
                if !value.eq_ignore_ascii_case("oidc") {
                    return Err(Error::Config(format!(
                        "{name}: weir fetches tokens by OIDC (oidc), or takes them from the application's \
                         TokenProvider; got {value:?}"
                    )));
                }
            }
            Key::SslCaLocation => tls.ca = file(value),
            Key::SslCaPem => tls.ca = inline(value),
            Key::SslCertificateLocation => tls.certificate = file(value),
            Key::SslCertificatePem => tls.certificate = inline(value),
            Key::SslKeyLocation => tls.key = file(value),
            Key::SslKeyPem => tls.key = inline(value),
            Key::SslKeystoreLocation => {
                tls.certificate = file(value);
                tls.key = file(value);
            }
            Key::SslKeyPassword => tls.key_password = Some(Secret::new(value)).filter(|s| !s.is_empty()),
            Key::SslStoreType => {
                if !value.eq_ignore_ascii_case("PEM") {
                    return Err(Error::Config(format!(
                        "{name}: weir reads PEM only, got {value:?} (convert a JKS or PKCS12 store to PEM)"
                    )));
                }
            }
            Key::SslStorePassword => {
                return Err(Error::Config(format!(
                    "{name}: PEM stores have no password (an encrypted key's password is ssl.key.password)"
                )))
            }
            Key::SslEndpointIdentification => {
                tls.verify_hostname = match value.to_ascii_lowercase().as_str() {
                    "https" => true,
                    "" | "none" => false,
                    _ => {
                        return Err(Error::Config(format!(
                        "{name}: expected https, or empty / none to skip the host name check, got {value:?}"
                    )))
                    }
                }
            }
            Key::SslVerifyCertificates => tls.verify_certificates = super::boolean(name, value)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

fn file(value: &str) -> Option<Pem> {
    (!value.is_empty()).then(|| Pem::File(PathBuf::from(value)))
}

fn inline(value: &str) -> Option<Pem> {
    (!value.is_empty()).then(|| Pem::Inline(Secret::new(value)))
}

/// Reads a Java `sasl.jaas.config`: `<login module class> <flag> [name=value ...];`, values bare or in double
/// quotes (with `\` escapes). PlainLoginModule and ScramLoginModule give `username` and `password`,
/// OAuthBearerLoginModule `clientId`, `clientSecret` and `scope`; other options are ignored, as the Java client
/// ignores options a module does not know.
fn apply_jaas(sasl: &mut SaslConfig, value: &str) -> Result<()> {
    let bad = |what: &str| {
        // Never the value itself: it holds the password.
        Error::Config(format!(
            "sasl.jaas.config: {what} (expected `<LoginModule> required name=\"value\" ...;`)"
        ))
    };
    let mut tokens = JaasTokens { rest: value.trim() };
    let module = tokens.word().ok_or_else(|| bad("no login module"))?;
    if !["PlainLoginModule", "ScramLoginModule", "OAuthBearerLoginModule"]
        .iter()
        .any(|m| module.ends_with(m))
    {
        return Err(bad(&format!(
            "login module {module} is not one weir reads (PlainLoginModule, ScramLoginModule, OAuthBearerLoginModule)"
        )));
    }
    match tokens.word().as_deref() {
        Some("required" | "requisite" | "sufficient" | "optional") => {}
        _ => return Err(bad("no control flag after the login module")),
    }
    let mut index = 0;
    loop {
        tokens.skip_space();
        if tokens.rest.starts_with(';') || tokens.rest.is_empty() {
            break;
        }
        index += 1;
        let name = tokens.word().ok_or_else(|| bad("an option with no name"))?;
        // A word read as an option's name may be part of a password (after a stray quote): an error names only
        // the options weir knows, and numbers the others.
        let named = match name.as_str() {
            "username" | "password" | "clientId" | "clientSecret" | "scope" => format!("option {name}"),
            _ => format!("option {index}"),
        };
        tokens.skip_space();
        if !tokens.eat('=') {
            return Err(bad(&format!("{named} has no `=`")));
        }
        let v = tokens
            .value()
            .ok_or_else(|| bad(&format!("{named} has no value")))?;
        match name.as_str() {
            "username" => sasl.username = v,
            "password" => sasl.password = Secret::new(v),
            "clientId" => sasl.oauth.client_id = v,
            "clientSecret" => sasl.oauth.client_secret = Secret::new(v),
            "scope" => sasl.oauth.scope = Some(v).filter(|s| !s.is_empty()),
            _ => {}
        }
    }
    Ok(())
}

struct JaasTokens<'a> {
    rest: &'a str,
}

impl JaasTokens<'_> {
    fn skip_space(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }

    /// A bare word: up to white space, `=` or `;`.
    fn word(&mut self) -> Option<String> {
        self.skip_space();
        let end = self
            .rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == ';')
            .unwrap_or(self.rest.len());
        let (w, r) = self.rest.split_at(end);
        self.rest = r;
        (!w.is_empty()).then(|| w.to_owned())
    }

    /// A bare word or a double-quoted string with `\` escapes.
    fn value(&mut self) -> Option<String> {
        self.skip_space();
        let Some(quoted) = self.rest.strip_prefix('"') else {
            return self.word();
        };
        let mut out = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &quoted[i + 1..];
                    return Some(out);
                }
                '\\' => out.push(chars.next()?.1),
                c => out.push(c),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClientConfig;

    #[test]
    fn jaas_config_in_the_java_syntax() {
        let mut cfg = ClientConfig::new("b:1");
        cfg.set(
            "sasl.jaas.config",
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="al ice"   password="p\"w;d" other=x;"#,
        )
        .unwrap();
        assert_eq!(cfg.security.sasl.username, "al ice");
        assert_eq!(cfg.security.sasl.password.expose(), "p\"w;d");
        cfg.set(
            "sasl.jaas.config",
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=bob password=pw2;",
        )
        .unwrap();
        assert_eq!(cfg.security.sasl.username, "bob");
        assert_eq!(cfg.security.sasl.password.expose(), "pw2");
        cfg.set(
            "sasl.jaas.config",
            r#"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required
               clientId="svc" clientSecret="s3" scope="kafka";"#,
        )
        .unwrap();
        let oauth = &cfg.security.sasl.oauth;
        assert_eq!(
            (oauth.client_id.as_str(), oauth.client_secret.expose()),
            ("svc", "s3")
        );
        assert_eq!(oauth.scope.as_deref(), Some("kafka"));
        assert!(!format!("{cfg:?}").contains("s3\""));
    }

    #[test]
    fn a_bad_jaas_config_is_refused_without_repeating_the_password() {
        let mut cfg = ClientConfig::new("b:1");
        for bad in [
            r#"PlainLoginModule username="u" password="hunter2";"#,
            r#"PlainLoginModule required username="u" password="hunter2"#,
            r#"PlainLoginModule required username="u" password hunter2;"#,
            r#"com.sun.security.auth.module.Krb5LoginModule required password="hunter2";"#,
            // An unescaped quote inside the password: the rest of it reads as an option without `=`.
            r#"PlainLoginModule required username="u" password="x"hunter2;"#,
            r#"PlainLoginModule required username="u" password="x" hunter2"#,
        ] {
            let e = cfg.set("sasl.jaas.config", bad).unwrap_err().to_string();
            assert!(e.contains("sasl.jaas.config"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn tls_settings_by_java_and_librdkafka_names() {
        let mut cfg = ClientConfig::new("b:1");
        cfg.set("security.protocol", "ssl").unwrap();
        cfg.set("ssl.truststore.type", "PEM").unwrap();
        cfg.set("ssl.truststore.location", "/ca.pem").unwrap();
        cfg.set("ssl.keystore.location", "/ks.pem").unwrap();
        cfg.set("ssl.key.password", "kp").unwrap();
        cfg.set("ssl.endpoint.identification.algorithm", "").unwrap();
        let tls = &cfg.security.tls;
        assert_eq!(tls.ca, Some(Pem::File("/ca.pem".into())));
        assert_eq!(tls.certificate, Some(Pem::File("/ks.pem".into())));
        assert_eq!(tls.key, Some(Pem::File("/ks.pem".into())));
        assert!(!tls.verify_hostname && tls.verify_certificates);
        cfg.set("ssl.key.pem", "-----BEGIN PRIVATE KEY-----").unwrap();
        assert!(!format!("{cfg:?}").contains("BEGIN PRIVATE KEY"));
        assert!(cfg.set("ssl.keystore.type", "JKS").is_err());
        assert!(cfg.set("ssl.truststore.password", "x").is_err());
        assert!(cfg
            .set("sasl.mechanism", "GSSAPI")
            .unwrap_err()
            .to_string()
            .contains("not support"));
    }
}
