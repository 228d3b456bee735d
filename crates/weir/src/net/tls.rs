//! The rustls client configuration of a [`TlsConfig`]: trusted CAs (given, or the system's), the client's
//! certificate and key for mutual TLS (an encrypted PKCS#8 key decrypted with RustCrypto), and the two ways to
//! weaken verification (no host name check; no verification at all), each only when asked by name.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{Pem, TlsConfig};
use crate::error::{Error, Result};

/// Builds the rustls configuration, reading every file now: a missing file or a bad key is a configuration
/// error when the client is created, not a failure of its first connection.
pub(crate) fn client_config(cfg: &TlsConfig) -> Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = if cfg.verify_certificates {
        let roots = Arc::new(roots(cfg)?);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| Error::Config(format!("TLS: the trusted CAs cannot be used: {e}")))?;
        if cfg.verify_hostname {
            webpki
        } else {
            Arc::new(Relaxed {
                chain: Some(webpki),
                algorithms: provider.signature_verification_algorithms,
            })
        }
    } else {
        Arc::new(Relaxed {
            chain: None,
            algorithms: provider.signature_verification_algorithms,
        })
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    let config = match (&cfg.certificate, &cfg.key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, "ssl.certificate.location")?;
            let key = private_key(key, cfg)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Config(format!("TLS: the client certificate and key do not fit: {e}")))?
        }
        (Some(_), None) => {
            return Err(Error::Config(
                "TLS: a client certificate needs its key (ssl.key.location)".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(Error::Config(
                "TLS: a client key needs its certificate (ssl.certificate.location)".into(),
            ))
        }
    };
    Ok(Arc::new(config))
}

/// The name to verify the broker's certificate against: the host of `addr` (`host:port`, `[v6]:port`).
pub(crate) fn server_name(addr: &str) -> Result<ServerName<'static>> {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => addr,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned())
        .map_err(|_| Error::Config(format!("TLS: {host:?} is not a host name or an IP address")))
}

fn read(pem: &Pem, setting: &str) -> Result<Vec<u8>> {
    match pem {
        Pem::File(path) => std::fs::read(path)
            .map_err(|e| Error::Config(format!("{setting}: cannot read {}: {e}", path.display()))),
        Pem::Inline(text) => Ok(text.expose().as_bytes().to_vec()),
    }
}

fn roots(cfg: &TlsConfig) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match &cfg.ca {
        Some(ca) => {
            for cert in certificates(ca, "ssl.ca.location")? {
                roots.add(cert).map_err(|e| {
                    Error::Config(format!("ssl.ca.location: a CA certificate is unusable: {e}"))
                })?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(Error::Config(format!(
                    "TLS: no system CA certificates found ({} errors); set ssl.ca.location",
                    found.errors.len()
                )));
            }
        }
    }
    Ok(roots)
}

fn certificates(pem: &Pem, setting: &str) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = read(pem, setting)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Config(format!("{setting}: not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{setting}: no certificate in it (weir reads PEM, not JKS or PKCS12)"
        )));
    }
    Ok(certs)
}

const ENCRYPTED_KEY: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";

fn private_key(pem: &Pem, cfg: &TlsConfig) -> Result<PrivateKeyDer<'static>> {
    let bytes = read(pem, "ssl.key.location")?;
    let text = String::from_utf8_lossy(&bytes);
    let Some(start) = text.find(ENCRYPTED_KEY) else {
        if cfg.key_password.is_some() {
            tracing::debug!("ssl.key.password is set but the key is not encrypted; it is not needed");
        }
        return PrivateKeyDer::from_pem_slice(&bytes)
            .map_err(|_| Error::Config("ssl.key.location: no PEM private key in it".into()));
    };
    let password = cfg.key_password.as_ref().ok_or_else(|| {
        Error::Config("ssl.key.location: the key is encrypted; set ssl.key.password".into())
    })?;
    use pkcs8::der::Decode as _;
    // Only the encrypted key's block: a keystore file has certificates around it.
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let block = &text[start..];
    let block = &block.as_bytes()[..block.find(END).map_or(block.len(), |i| i + END.len())];
    let (_label, der) = pkcs8::der::pem::decode_vec(block)
        .map_err(|_| Error::Config("ssl.key.location: the encrypted key is not valid PEM".into()))?;
    let info = pkcs8::EncryptedPrivateKeyInfo::from_der(&der)
        .map_err(|_| Error::Config("ssl.key.location: the encrypted key is not PKCS#8".into()))?;
    let plain = info.decrypt(password.expose()).map_err(|_| {
        Error::Config(
            "ssl.key.location: the key cannot be decrypted: wrong ssl.key.password, or an unsupported cipher"
                .into(),
        )
    })?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        plain.as_bytes().to_vec(),
    )))
}

/// Verification weakened by name: the chain verified but not the host name (`chain`:
/// `ssl.endpoint.identification.algorithm=`), or no certificate verified at all (no `chain`:
/// `enable.ssl.certificate.verification=false`). The handshake's signatures are checked either way, so the
/// session is encrypted to whoever holds the certificate's key.
#[derive(Debug)]
struct Relaxed {
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        // webpki checks the name after the chain: a name error means the chain was good.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The error of a failed read: [`Error::Tls`] when TLS refused the session (with TLS 1.3 a broker refuses a
/// client certificate after the client finished its handshake, so it shows here), else [`Error::Io`].
pub(crate) fn read_error(broker: &str, e: std::io::Error) -> Error {
    match e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
        true => Error::Tls {
            broker: broker.to_owned(),
            reason: explain(&e),
        },
        false => Error::io(broker, e),
    }
}

/// What a failed handshake means to the user, from rustls's error (carried inside the `io::Error`).
pub(crate) fn explain(e: &std::io::Error) -> String {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => format!(
                "the broker's certificate is not signed by a trusted CA ({c:?}; set ssl.ca.location to its CA)"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                "the broker's certificate does not name the host connected to ({c}; connect by a name it lists, \
                 or set ssl.endpoint.identification.algorithm= to skip the check)"
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the broker's certificate has expired ({c})")
            }
            other => format!("the broker's certificate was refused: {other}"),
        },
        Some(rustls::Error::InvalidMessage(_)) | Some(rustls::Error::InappropriateMessage { .. }) => format!(
            "the broker did not answer in TLS ({}): is this a TLS listener? (security.protocol is SSL or SASL_SSL)",
            inner.map(ToString::to_string).unwrap_or_default()
        ),
        Some(rustls::Error::AlertReceived(alert)) => format!(
            "the broker refused the handshake ({alert:?}): if it requires a client certificate, set \
             ssl.certificate.location and ssl.key.location"
        ),
        Some(other) => other.to_string(),
        None if matches!(
            e.kind(),
            std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
        ) =>
        {
            format!(
                "the broker closed the connection during the TLS handshake ({e}): is this a TLS listener? \
                 (security.protocol is SSL or SASL_SSL)"
            )
        }
        None => e.to_string(),
    }
}
