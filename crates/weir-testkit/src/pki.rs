//! Certificates for TLS tests, generated fresh in a directory ([`Pki::generate`]): a CA, a broker certificate it
//! signed (SANs `IP:127.0.0.1`, `DNS:localhost`), a client certificate it signed (CN [`CLIENT_CN`]), and two
//! broker certificates that a client trusting the CA must refuse: one signed by an unrelated "rogue" CA and
//! one signed by the CA for the wrong host (`DNS:wrong.example` only).
//!
//! Everything is PEM, each item both in memory and in a file of the directory. Keys are ECDSA P-256 in
//! unencrypted PKCS#8 (`BEGIN PRIVATE KEY`), the form Kafka's `ssl.keystore.type=PEM` reads; the client key is
//! also written encrypted (`BEGIN ENCRYPTED PRIVATE KEY`, PBES2: PBKDF2-HMAC-SHA256 and AES-256-CBC) with the
//! password [`CLIENT_KEY_PASSWORD`].
//!
//! Files in the directory:
//!
//! | file | content |
//! |---|---|
//! | `ca.pem` | the CA certificate (the truststore of clients and brokers) |
//! | `broker-cert.pem`, `broker-key.pem` | the broker certificate and key |
//! | `broker-keystore.pem` | key, certificate, CA certificate: a Kafka PEM keystore |
//! | `client-cert.pem`, `client-key.pem` | the client certificate (CN=`weir-client`) and key |
//! | `client-key-encrypted.pem` | the same key, encrypted with [`CLIENT_KEY_PASSWORD`] |
//! | `client-keystore.pem` | key, certificate, CA certificate: a Java client's PEM keystore |
//! | `rogue-ca.pem` | the unrelated CA |
//! | `rogue-broker-{cert,key,keystore}.pem` | a broker certificate signed by the rogue CA (right SANs) |
//! | `wrong-host-broker-{cert,key,keystore}.pem` | a broker certificate signed by the CA, SAN `DNS:wrong.example` |

use std::fs;
use std::path::{Path, PathBuf};

use pkcs8::pkcs5::pbes2;
use pkcs8::LineEnding;
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The password of [`Pki::client_key_encrypted_pem`].
pub const CLIENT_KEY_PASSWORD: &str = "client-key-secret";
/// The common name of the client certificate. Kafka's SSL listener (default `ssl.principal.mapping.rules`)
/// authenticates it as `User:CN=weir-client` ([`CLIENT_PRINCIPAL`]).
pub const CLIENT_CN: &str = "weir-client";
/// The principal Kafka gives a client presenting the client certificate on an SSL listener.
pub const CLIENT_PRINCIPAL: &str = "User:CN=weir-client";
/// PBKDF2 iterations of the encrypted client key.
const PBKDF2_ITERATIONS: u32 = 10_000;

/// Which broker certificate a cluster's TLS listeners serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServerCert {
    /// Signed by the CA ([`Pki::ca_cert_pem`]), SANs `IP:127.0.0.1` and `DNS:localhost`: a client trusting the
    /// CA accepts it.
    #[default]
    Trusted,
    /// Signed by an unrelated CA ([`Pki::rogue_ca_cert_pem`]), right SANs: a client trusting the CA refuses it
    /// as untrusted.
    Rogue,
    /// Signed by the CA, SAN only `DNS:wrong.example`: a client checking the host name refuses it.
    WrongHost,
}

/// A certificate and its key, in memory and on disk.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate (PEM, one `CERTIFICATE` block).
    pub cert_pem: String,
    /// The key, unencrypted PKCS#8 (PEM, `PRIVATE KEY`).
    pub key_pem: String,
    /// The certificate chain: this certificate, then its issuer's (PEM).
    pub chain_pem: String,
    /// Key then chain: the content of a Kafka `ssl.keystore.type=PEM` keystore file.
    pub keystore_pem: String,
    /// File holding [`Identity::cert_pem`].
    pub cert_path: PathBuf,
    /// File holding [`Identity::key_pem`].
    pub key_path: PathBuf,
    /// File holding [`Identity::keystore_pem`] (for `ssl.keystore.location` with `ssl.keystore.type=PEM`).
    pub keystore_path: PathBuf,
}

/// Fresh certificates for TLS tests, written to a directory. See the [module documentation](self) for the files.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The directory the files are in.
    pub dir: PathBuf,
    /// The CA certificate (PEM): what clients trust.
    pub ca_cert_pem: String,
    /// `ca.pem`.
    pub ca_cert_path: PathBuf,
    /// The CA's key (PEM, PKCS#8), to sign further certificates with (see [`Pki::issue_client`]). Not written
    /// to disk.
    pub ca_key_pem: String,
    /// The broker certificate signed by the CA, SANs `IP:127.0.0.1`, `DNS:localhost` (`broker-*.pem`).
    pub broker: Identity,
    /// The client certificate signed by the CA, CN=[`CLIENT_CN`] (`client-*.pem`).
    pub client: Identity,
    /// The client key encrypted as PKCS#8 (PEM, `ENCRYPTED PRIVATE KEY`; PBES2 with PBKDF2-HMAC-SHA256 and
    /// AES-256-CBC) with [`CLIENT_KEY_PASSWORD`].
    ///
    /// Kafka's Java PEM keystore (`ssl.keystore.key` + `ssl.key.password`) cannot read it on Java 17 ("PBES2
    /// SecretKeyFactory not available", JDK-8231581): give Java clients [`Pki::client`]'s plain key. The JDK's
    /// JCE itself decrypts it (`PBEWithHmacSHA256AndAES_256`), as do OpenSSL and the `pkcs8` crate.
    pub client_key_encrypted_pem: String,
    /// `client-key-encrypted.pem`.
    pub client_key_encrypted_path: PathBuf,
    /// The unrelated CA's certificate (PEM).
    pub rogue_ca_cert_pem: String,
    /// `rogue-ca.pem`.
    pub rogue_ca_cert_path: PathBuf,
    /// A broker certificate signed by the rogue CA, SANs `IP:127.0.0.1`, `DNS:localhost`
    /// (`rogue-broker-*.pem`).
    pub rogue_broker: Identity,
    /// A broker certificate signed by the CA, SAN `DNS:wrong.example` only (`wrong-host-broker-*.pem`).
    pub wrong_host_broker: Identity,
    /// The CA's parameters (its name), to sign further certificates with.
    ca_params: CertificateParams,
}

/// The signing side of a CA.
struct Ca {
    cert_pem: String,
    params: CertificateParams,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(cn: &str) -> Result<Ca, String> {
        let key = KeyPair::generate().map_err(err("CA key"))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err("CA params"))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "weir tests");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params);
        let cert = params.self_signed(&key).map_err(err("CA certificate"))?;
        Ok(Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params.clone(), key),
            params,
        })
    }

    /// A leaf certificate for `cn` with `sans`, for a server (`server`) or a client.
    fn issue(&self, cn: &str, sans: &[&str], server: bool) -> Result<(String, KeyPair), String> {
        let key = KeyPair::generate().map_err(err("key"))?;
        let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).map_err(err("certificate params"))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(err("signing a certificate"))?;
        Ok((cert.pem(), key))
    }
}

/// Valid from 2020 to 2100: long enough, and years every TLS stack reads alike (UTCTime up to 2049).
fn validity(params: &mut CertificateParams) {
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2100, 1, 1);
}

fn err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("generating certificates: {what}: {e}")
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes `<name>-cert.pem`, `<name>-key.pem` and `<name>-keystore.pem` in `dir`.
fn identity(
    dir: &Path,
    name: &str,
    cert_pem: String,
    key: &KeyPair,
    issuer_pem: &str,
) -> Result<Identity, String> {
    let key_pem = key.serialize_pem();
    let chain_pem = format!("{cert_pem}{issuer_pem}");
    let keystore_pem = format!("{key_pem}{chain_pem}");
    let id = Identity {
        cert_path: dir.join(format!("{name}-cert.pem")),
        key_path: dir.join(format!("{name}-key.pem")),
        keystore_path: dir.join(format!("{name}-keystore.pem")),
        cert_pem,
        key_pem,
        chain_pem,
        keystore_pem,
    };
    write(&id.cert_path, &id.cert_pem)?;
    write(&id.key_path, &id.key_pem)?;
    write(&id.keystore_path, &id.keystore_pem)?;
    Ok(id)
}

/// `key` (PKCS#8 DER) encrypted with `password`: PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC; PEM.
fn encrypt_key(key: &KeyPair, password: &str) -> Result<String, String> {
    let info = pkcs8::PrivateKeyInfo::try_from(key.serialized_der()).map_err(err("parsing a key"))?;
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut iv);
    let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(PBKDF2_ITERATIONS, &salt, &iv)
        .map_err(err("PBES2 parameters"))?;
    let doc = info
        .encrypt_with_params(params, password)
        .map_err(err("encrypting a key"))?;
    let pem = doc
        .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
        .map_err(err("encoding a key"))?;
    Ok(pem.as_str().to_string())
}

impl Pki {
    /// Generates everything afresh and writes the files into `dir` (created if missing).
    pub fn generate(dir: &Path) -> Result<Pki, String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let ca = Ca::new("weir test CA")?;
        let rogue = Ca::new("weir rogue CA")?;
        let good_sans = ["127.0.0.1", "localhost"];

        let (cert, key) = ca.issue("localhost", &good_sans, true)?;
        let broker = identity(dir, "broker", cert, &key, &ca.cert_pem)?;
        let (cert, key) = ca.issue(CLIENT_CN, &[], false)?;
        let client = identity(dir, "client", cert, &key, &ca.cert_pem)?;
        let client_key_encrypted_pem = encrypt_key(&key, CLIENT_KEY_PASSWORD)?;
        let (cert, key) = rogue.issue("localhost", &good_sans, true)?;
        let rogue_broker = identity(dir, "rogue-broker", cert, &key, &rogue.cert_pem)?;
        let (cert, key) = ca.issue("wrong.example", &["wrong.example"], true)?;
        let wrong_host_broker = identity(dir, "wrong-host-broker", cert, &key, &ca.cert_pem)?;

        let pki = Pki {
            dir: dir.to_path_buf(),
            ca_cert_path: dir.join("ca.pem"),
            ca_key_pem: ca.issuer.key().serialize_pem(),
            ca_cert_pem: ca.cert_pem,
            broker,
            client,
            client_key_encrypted_path: dir.join("client-key-encrypted.pem"),
            client_key_encrypted_pem,
            rogue_ca_cert_path: dir.join("rogue-ca.pem"),
            rogue_ca_cert_pem: rogue.cert_pem,
            rogue_broker,
            wrong_host_broker,
            ca_params: ca.params,
        };
        write(&pki.ca_cert_path, &pki.ca_cert_pem)?;
        write(&pki.client_key_encrypted_path, &pki.client_key_encrypted_pem)?;
        write(&pki.rogue_ca_cert_path, &pki.rogue_ca_cert_pem)?;
        Ok(pki)
    }

    /// The broker certificate and key of a variant.
    pub fn server(&self, which: ServerCert) -> &Identity {
        match which {
            ServerCert::Trusted => &self.broker,
            ServerCert::Rogue => &self.rogue_broker,
            ServerCert::WrongHost => &self.wrong_host_broker,
        }
    }

    /// The Kafka PEM keystore (key, certificate, issuer's certificate) of a broker certificate variant.
    pub fn keystore_pem(&self, which: ServerCert) -> &str {
        &self.server(which).keystore_pem
    }

    /// The file holding [`Pki::keystore_pem`] of a variant.
    pub fn keystore_path(&self, which: ServerCert) -> &Path {
        &self.server(which).keystore_path
    }

    /// Issues another client certificate signed by the CA with common name `cn` (Kafka's principal on an SSL
    /// listener: `User:CN=<cn>`), written as `client-<name>-{cert,key,keystore}.pem`.
    pub fn issue_client(&self, name: &str, cn: &str) -> Result<Identity, String> {
        let key = KeyPair::from_pem(&self.ca_key_pem).map_err(err("CA key"))?;
        let ca = Ca {
            cert_pem: self.ca_cert_pem.clone(),
            params: self.ca_params.clone(),
            issuer: Issuer::new(self.ca_params.clone(), key),
        };
        let (cert, key) = ca.issue(cn, &[], false)?;
        identity(
            &self.dir,
            &format!("client-{name}"),
            cert,
            &key,
            &self.ca_cert_pem,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_the_files_and_pem_kinds() {
        let dir = std::env::temp_dir().join(crate::unique_name("weir-pki"));
        let pki = Pki::generate(&dir).unwrap();
        for f in [
            "ca.pem",
            "broker-cert.pem",
            "broker-key.pem",
            "broker-keystore.pem",
            "client-cert.pem",
            "client-key.pem",
            "client-key-encrypted.pem",
            "client-keystore.pem",
            "rogue-ca.pem",
            "rogue-broker-keystore.pem",
            "wrong-host-broker-keystore.pem",
        ] {
            assert!(dir.join(f).is_file(), "{f}");
        }
        assert!(pki.broker.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(pki
            .client_key_encrypted_pem
            .starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
        assert_eq!(pki.broker.keystore_pem.matches("BEGIN CERTIFICATE").count(), 2);
        assert_ne!(pki.ca_cert_pem, pki.rogue_ca_cert_pem);

        // The encrypted key decrypts, with the password, to the plain one.
        let (_, doc) = pkcs8::SecretDocument::from_pem(&pki.client_key_encrypted_pem).unwrap();
        let enc = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes()).unwrap();
        let plain = enc.decrypt(CLIENT_KEY_PASSWORD).unwrap();
        let (_, want) = pkcs8::SecretDocument::from_pem(&pki.client.key_pem).unwrap();
        assert_eq!(plain.as_bytes(), want.as_bytes());
        assert!(enc.decrypt("wrong").is_err());

        let other = pki.issue_client("bob", "bob").unwrap();
        assert!(other.keystore_path.ends_with("client-bob-keystore.pem"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
