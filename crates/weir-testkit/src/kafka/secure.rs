//! Clusters with TLS and SASL listeners ([`Kafka::start_secure`]): besides the harness's own `PLAINTEXT`
//! listener and the `CONTROLLER` listener, every node listens on `SSL`, `SASL_PLAINTEXT` and `SASL_SSL`, each on
//! its own free loopback port and advertised, with certificates generated afresh for the cluster ([`Pki`], in
//! the cluster's directory, removed with it).
//!
//! The principals clients get are documented on [`SecureOptions`].

use std::path::Path;

use super::{Kafka, Shape};
use crate::pki::{Pki, ServerCert};

/// The security protocol of a client listener (Kafka's `security.protocol`, and the listener's name here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// `PLAINTEXT`: the harness's own listener ([`Kafka::bootstrap`]); principal `User:ANONYMOUS`.
    Plaintext,
    /// `SSL`: TLS; client certificates required when [`SecureOptions::client_auth_required`].
    Ssl,
    /// `SASL_PLAINTEXT`: SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) without TLS.
    SaslPlaintext,
    /// `SASL_SSL`: SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) over TLS; no client certificate asked for.
    SaslSsl,
}

impl SecurityProtocol {
    /// The listeners a secure cluster adds to `PLAINTEXT`.
    pub const SECURE: [SecurityProtocol; 3] = [
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL` (also the listener's name).
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// The prefix of broker settings for this listener only: `listener.name.<lowercase name>.`.
    pub fn listener_prefix(self) -> String {
        format!("listener.name.{}.", self.name().to_ascii_lowercase())
    }

    /// Whether the listener speaks TLS.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether the listener authenticates with SASL.
    pub fn sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

/// How [`Kafka::start_secure`] sets up TLS, SASL and authorization. `Default`: trusted broker certificate, no
/// client certificates required, no ACLs, no users but `admin`.
///
/// Principals, as the brokers authenticate clients (they matter when [`SecureOptions::acls`] is on):
///
/// | listener | client | principal |
/// |---|---|---|
/// | `PLAINTEXT` | anyone (the harness itself, inter-broker traffic) | `User:ANONYMOUS` (a super user) |
/// | `SSL` | with the client certificate | `User:CN=weir-client` ([`crate::pki::CLIENT_PRINCIPAL`]) |
/// | `SSL` | without a certificate (only when `client_auth_required` is off) | `User:ANONYMOUS` (a super user!) |
/// | `SASL_PLAINTEXT`, `SASL_SSL` | PLAIN or SCRAM user `NAME` | `User:NAME` |
///
/// `User:admin` (password `admin-secret`, PLAIN and both SCRAM mechanisms) always exists and is a super user
/// when ACLs are on.
#[derive(Debug, Clone, Default)]
pub struct SecureOptions {
    /// The certificate the brokers' TLS listeners (`SSL`, `SASL_SSL`) serve.
    pub server_cert: ServerCert,
    /// `ssl.client.auth=required` on the `SSL` listener (else `none`; `SASL_SSL` never asks for one). Without
    /// it, an `SSL` client that sends no certificate is `User:ANONYMOUS`, a super user when [`Self::acls`].
    pub client_auth_required: bool,
    /// Authorization on: `StandardAuthorizer`, `super.users=User:ANONYMOUS;User:admin`,
    /// `allow.everyone.if.no.acl.found=false` (only super users may use a resource without ACLs). Principals:
    /// see the table [above](SecureOptions).
    pub acls: bool,
    /// SCRAM users (name, password), created for SCRAM-SHA-256 and SCRAM-SHA-512 when the storage is formatted
    /// (besides `admin`). Names and passwords: no `,`, `"`, `\`, `[`, `]`, `=`, `;` or whitespace.
    pub scram_users: Vec<(String, String)>,
    /// PLAIN users (name, password), in the listeners' JAAS configuration (besides `admin`). Same character
    /// rules as [`Self::scram_users`].
    pub plain_users: Vec<(String, String)>,
    /// `connections.max.reauth.ms` for the whole broker (KIP-368: a SASL session expires after this long and the
    /// client must re-authenticate); Kafka's default (0: never) when `None`.
    pub reauth_ms: Option<u64>,
    /// Extra broker settings, applied after the harness's own (secure ones included), e.g. an `OAUTHBEARER`
    /// listener configuration: `listener.name.sasl_plaintext.sasl.enabled.mechanisms` and
    /// `listener.name.sasl_plaintext.oauthbearer.sasl.*`.
    pub settings: Vec<(String, String)>,
    /// Extra JVM options of the brokers, e.g.
    /// `-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=http://127.0.0.1:PORT/jwks.json`.
    pub jvm_options: Vec<String>,
}

impl SecureOptions {
    /// The user every secure cluster has, for PLAIN and both SCRAM mechanisms; a super user when ACLs are on.
    pub const ADMIN_USER: &'static str = "admin";
    /// The password of [`Self::ADMIN_USER`].
    pub const ADMIN_PASSWORD: &'static str = "admin-secret";
    /// The SASL mechanisms the `SASL_PLAINTEXT` and `SASL_SSL` listeners enable.
    pub const SASL_MECHANISMS: &'static str = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512";
}

/// The TLS/SASL side of a running secure cluster.
#[derive(Debug)]
pub(super) struct Secure {
    pub(super) opts: SecureOptions,
    pub(super) pki: Pki,
}

/// Refuses names and passwords that the JAAS configuration or `StorageTool --add-scram` would misread.
fn check_credential(kind: &str, (name, password): &(String, String)) -> Result<(), String> {
    for s in [name, password] {
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || ",\"\\[]=;".contains(c)) {
            return Err(format!(
                "{kind} user {name:?}: names and passwords must be non-empty without whitespace or any of ,\"\\[]=;"
            ));
        }
    }
    Ok(())
}

/// `admin` first, then `users`; a later entry of the same name replaces an earlier one.
fn with_admin(users: &[(String, String)]) -> Vec<(String, String)> {
    let mut all = vec![(
        SecureOptions::ADMIN_USER.to_string(),
        SecureOptions::ADMIN_PASSWORD.to_string(),
    )];
    for u in users {
        all.retain(|(n, _)| *n != u.0);
        all.push(u.clone());
    }
    all
}

impl Secure {
    /// Checks `opts` and generates the certificates in `cluster_dir/pki`.
    pub(super) fn new(cluster_dir: &Path, opts: &SecureOptions) -> Result<Secure, String> {
        for u in &opts.scram_users {
            check_credential("SCRAM", u)?;
        }
        for u in &opts.plain_users {
            check_credential("PLAIN", u)?;
        }
        let pki = Pki::generate(&cluster_dir.join("pki"))?;
        Ok(Secure {
            opts: opts.clone(),
            pki,
        })
    }

    /// The broker settings for the secure listeners, authorization and re-authentication (the same on every
    /// node; the listeners themselves are written with the node's ports).
    pub(super) fn broker_settings(&self) -> Vec<(String, String)> {
        let mut s: Vec<(String, String)> = Vec::new();
        let mut set = |k: String, v: String| s.push((k, v));
        let keystore = self
            .pki
            .keystore_path(self.opts.server_cert)
            .display()
            .to_string();
        let truststore = self.pki.ca_cert_path.display().to_string();
        for p in [SecurityProtocol::Ssl, SecurityProtocol::SaslSsl] {
            let l = p.listener_prefix();
            set(format!("{l}ssl.keystore.type"), "PEM".into());
            set(format!("{l}ssl.keystore.location"), keystore.clone());
            set(format!("{l}ssl.truststore.type"), "PEM".into());
            set(format!("{l}ssl.truststore.location"), truststore.clone());
            let auth = p == SecurityProtocol::Ssl && self.opts.client_auth_required;
            set(
                format!("{l}ssl.client.auth"),
                if auth { "required" } else { "none" }.into(),
            );
        }
        let plain_users: String = with_admin(&self.opts.plain_users)
            .iter()
            .map(|(n, pw)| format!(" user_{n}=\"{pw}\""))
            .collect();
        for p in [SecurityProtocol::SaslPlaintext, SecurityProtocol::SaslSsl] {
            let l = p.listener_prefix();
            set(
                format!("{l}sasl.enabled.mechanisms"),
                SecureOptions::SASL_MECHANISMS.into(),
            );
            set(
                format!("{l}plain.sasl.jaas.config"),
                format!("org.apache.kafka.common.security.plain.PlainLoginModule required{plain_users};"),
            );
            for m in ["scram-sha-256", "scram-sha-512"] {
                set(
                    format!("{l}{m}.sasl.jaas.config"),
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;".into(),
                );
            }
        }
        if let Some(ms) = self.opts.reauth_ms {
            set("connections.max.reauth.ms".into(), ms.to_string());
        }
        if self.opts.acls {
            set(
                "authorizer.class.name".into(),
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
            );
            set(
                "super.users".into(),
                format!("User:ANONYMOUS;User:{}", SecureOptions::ADMIN_USER),
            );
            set("allow.everyone.if.no.acl.found".into(), "false".into());
        }
        s.extend(self.opts.settings.iter().cloned());
        s
    }

    /// `StorageTool format` arguments creating the SCRAM users (admin included) for both mechanisms.
    pub(super) fn format_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (name, password) in with_admin(&self.opts.scram_users) {
            for m in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
                args.push("--add-scram".to_string());
                args.push(format!("{m}=[name={name},password={password}]"));
            }
        }
        args
    }
}

impl Kafka {
    /// Starts a cluster of `shape` with `SSL`, `SASL_PLAINTEXT` and `SASL_SSL` listeners set up as `opts` says,
    /// next to the `PLAINTEXT` one the harness itself uses ([`Kafka::bootstrap`], [`Kafka::create_topic`]).
    /// Panics with the cause and the log to read if it cannot start.
    pub fn start_secure(shape: Shape, opts: &SecureOptions) -> Kafka {
        Kafka::try_start_secure(shape, opts)
            .unwrap_or_else(|e| panic!("weir-testkit: secure Kafka did not start: {e}"))
    }

    /// Like [`Kafka::start_secure`]; the error names the cause and, when a node failed, the log to read.
    pub fn try_start_secure(shape: Shape, opts: &SecureOptions) -> Result<Kafka, String> {
        Kafka::try_start_inner(shape, &[], Some(opts), None).map(|(k, _)| k)
    }

    /// `"127.0.0.1:P1,127.0.0.1:P2,..."`: every node's listener for `protocol` (the bootstrap servers for a
    /// client of that protocol). Panics for a secure protocol on a cluster not started with
    /// [`Kafka::start_secure`].
    pub fn listener(&self, protocol: SecurityProtocol) -> String {
        let addrs: Vec<String> = self
            .node_ids()
            .into_iter()
            .map(|id| format!("127.0.0.1:{}", self.listener_port(id, protocol)))
            .collect();
        addrs.join(",")
    }

    /// Node `id`'s port for `protocol`. Panics for a secure protocol on a cluster not started with
    /// [`Kafka::start_secure`].
    pub fn listener_port(&self, id: i32, protocol: SecurityProtocol) -> u16 {
        let n = &self.nodes[self.index(id)];
        if protocol == SecurityProtocol::Plaintext {
            return n.client_port;
        }
        n.secure_ports
            .iter()
            .find(|(p, _)| *p == protocol)
            .map(|(_, port)| *port)
            .unwrap_or_else(|| {
                panic!(
                    "weir-testkit: this cluster has no {} listener (start it with Kafka::start_secure)",
                    protocol.name()
                )
            })
    }

    /// The certificates of a cluster started with [`Kafka::start_secure`] (in its directory, fresh for it).
    pub fn pki(&self) -> Option<&Pki> {
        self.secure.as_ref().map(|s| &s.pki)
    }

    /// The options a secure cluster was started with.
    pub fn secure_options(&self) -> Option<&SecureOptions> {
        self.secure.as_ref().map(|s| &s.opts)
    }

    /// Apache Kafka Java client properties (`key`, `value`) for connecting to this cluster's `protocol`
    /// listener (e.g. for the Java peer's `--config KEY=VALUE`): `bootstrap.servers`, `security.protocol`;
    /// for TLS the CA as a PEM truststore (host names checked, Java's default), and on `SSL` the client
    /// certificate ([`crate::pki::CLIENT_PRINCIPAL`]) as a PEM keystore; for SASL `sasl.mechanism` and
    /// `sasl.jaas.config` of `sasl` = (mechanism: `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`; user; password).
    pub fn java_client_config(
        &self,
        protocol: SecurityProtocol,
        sasl: Option<(&str, &str, &str)>,
    ) -> Vec<(String, String)> {
        let mut c = vec![
            ("bootstrap.servers".to_string(), self.listener(protocol)),
            ("security.protocol".to_string(), protocol.name().to_string()),
        ];
        if protocol.tls() {
            let pki = self.pki().expect("weir-testkit: a TLS listener without a Pki");
            c.push(("ssl.truststore.type".into(), "PEM".into()));
            c.push((
                "ssl.truststore.location".into(),
                pki.ca_cert_path.display().to_string(),
            ));
            if protocol == SecurityProtocol::Ssl {
                c.push(("ssl.keystore.type".into(), "PEM".into()));
                c.push((
                    "ssl.keystore.location".into(),
                    pki.client.keystore_path.display().to_string(),
                ));
            }
        }
        if let (true, Some((mechanism, user, password))) = (protocol.sasl(), sasl) {
            let module = if mechanism == "PLAIN" {
                "org.apache.kafka.common.security.plain.PlainLoginModule"
            } else {
                "org.apache.kafka.common.security.scram.ScramLoginModule"
            };
            c.push(("sasl.mechanism".into(), mechanism.to_string()));
            c.push((
                "sasl.jaas.config".into(),
                format!("{module} required username=\"{user}\" password=\"{password}\";"),
            ));
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secure(opts: SecureOptions) -> (Secure, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(crate::unique_name("weir-secure"));
        (Secure::new(&dir, &opts).unwrap(), dir)
    }

    #[test]
    fn settings_and_format_arguments() {
        let (s, dir) = secure(SecureOptions {
            server_cert: ServerCert::WrongHost,
            client_auth_required: true,
            acls: true,
            scram_users: vec![("alice".into(), "a-secret".into())],
            plain_users: vec![
                ("bob".into(), "b-secret".into()),
                ("admin".into(), "other".into()),
            ],
            reauth_ms: Some(5000),
            settings: vec![(
                "listener.name.sasl_plaintext.sasl.enabled.mechanisms".into(),
                "OAUTHBEARER".into(),
            )],
            ..SecureOptions::default()
        });
        let set = s.broker_settings();
        let get = |k: &str| -> Vec<&str> {
            set.iter()
                .filter(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert_eq!(get("listener.name.ssl.ssl.client.auth"), ["required"]);
        assert_eq!(get("listener.name.sasl_ssl.ssl.client.auth"), ["none"]);
        assert_eq!(
            get("listener.name.ssl.ssl.keystore.location"),
            [s.pki.wrong_host_broker.keystore_path.display().to_string()]
        );
        assert_eq!(
            get("listener.name.sasl_ssl.plain.sasl.jaas.config"),
            ["org.apache.kafka.common.security.plain.PlainLoginModule required user_bob=\"b-secret\" user_admin=\"other\";"]
        );
        assert_eq!(get("connections.max.reauth.ms"), ["5000"]);
        assert_eq!(get("super.users"), ["User:ANONYMOUS;User:admin"]);
        // The caller's settings come last, so they win over the harness's.
        assert_eq!(
            set.last().unwrap(),
            &(
                "listener.name.sasl_plaintext.sasl.enabled.mechanisms".to_string(),
                "OAUTHBEARER".to_string()
            )
        );
        assert!(
            get("ssl.keystore.password").is_empty()
                && get("listener.name.ssl.ssl.keystore.password").is_empty()
        );
        assert_eq!(
            s.format_args(),
            [
                "--add-scram",
                "SCRAM-SHA-256=[name=admin,password=admin-secret]",
                "--add-scram",
                "SCRAM-SHA-512=[name=admin,password=admin-secret]",
                "--add-scram",
                "SCRAM-SHA-256=[name=alice,password=a-secret]",
                "--add-scram",
                "SCRAM-SHA-512=[name=alice,password=a-secret]",
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn refuses_credentials_that_would_be_misread() {
        let dir = std::env::temp_dir().join(crate::unique_name("weir-secure"));
        for bad in ["a,b", "a\"b", "a b", "a]", ""] {
            let opts = SecureOptions {
                scram_users: vec![("alice".into(), bad.into())],
                ..SecureOptions::default()
            };
            assert!(Secure::new(&dir, &opts).is_err(), "{bad:?}");
        }
        assert!(!dir.exists());
    }
}
