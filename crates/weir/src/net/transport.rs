//! How a connection to a broker is made: TCP, then TLS if configured; SASL runs on the connection afterwards
//! ([`super::sasl`]). A [`Transport`] is built once per client from its security settings, so files are read
//! and keys parsed when the client is created.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::sasl::Sasl;
use super::tls;
use crate::config::ClientConfig;
use crate::error::{Error, Result};

/// What every connection of one client does to reach a broker: TLS (if any) and SASL (if any).
pub(crate) struct Transport {
    tls: Option<TlsConnector>,
    insecure: bool,
    sasl: Option<Arc<Sasl>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl.as_ref().map(|s| s.mechanism().name()))
            .finish()
    }
}

/// A connected stream, before it is split between the reader and the writer task.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    /// The transport `cfg` asks for; every setting is checked and every file read here.
    pub(crate) fn new(client: &ClientConfig) -> Result<Arc<Transport>> {
        let cfg = &client.security;
        let tls_config = match cfg.protocol.tls() {
            true => Some(tls::client_config(&cfg.tls)?),
            false => None,
        };
        let sasl = match cfg.protocol.sasl() {
            true => Some(Arc::new(Sasl::new(&cfg.sasl, client, tls_config.as_ref())?)),
            false => None,
        };
        let tls = tls_config.map(TlsConnector::from);
        Ok(Arc::new(Transport {
            tls,
            insecure: !cfg.tls.verify_certificates,
            sasl,
        }))
    }

    /// The SASL settings, when connections authenticate.
    pub(crate) fn sasl(&self) -> Option<&Arc<Sasl>> {
        self.sasl.as_ref()
    }

    /// Connects to `addr` and completes the TLS handshake, within `connect_timeout`.
    pub(crate) async fn connect(&self, addr: &str, cfg: &ClientConfig) -> Result<Stream> {
        let timed_out = || Error::Timeout {
            what: format!("connecting to {addr}"),
            after: cfg.connect_timeout,
        };
        let deadline = tokio::time::Instant::now() + cfg.connect_timeout;
        let tcp = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| Error::io(addr, e))?;
        tcp.set_nodelay(true).map_err(|e| Error::io(addr, e))?;
        let Some(tls) = &self.tls else {
            return Ok(Stream::Plain(tcp));
        };
        if self.insecure {
            tracing::warn!(
                broker = addr,
                "TLS without certificate verification (enable.ssl.certificate.verification=false)"
            );
        }
        let name = tls::server_name(addr)?;
        let stream = tokio::time::timeout_at(deadline, tls.connect(name, tcp))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| Error::Tls {
                broker: addr.to_owned(),
                reason: tls::explain(&e),
            })?;
        Ok(Stream::Tls(Box::new(stream)))
    }
}
