//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the client side, without channel binding (`n,,`),
//! as Kafka speaks it. Pure: the nonce is an argument, the hashing is RustCrypto's.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::Mechanism;
use crate::config::Secret;

/// The hash a SCRAM mechanism is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Hash::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi()`: PBKDF2 with this hash's HMAC.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Hash::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec(),
            Hash::Sha512 => pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec(),
        }
    }
}

/// Fewer iterations than this are refused, as the Java client refuses them: a broker (or a man in the middle)
/// asking for a weak derivation of the password.
const MIN_ITERATIONS: u32 = 4096;
/// More than this is refused too: the count comes from the wire, and the work is the client's.
const MAX_ITERATIONS: u32 = 1_000_000;

enum State {
    Initial,
    /// Sent client-first; waits for server-first.
    First {
        client_first_bare: String,
    },
    /// Sent client-final; waits for server-final, which must carry this signature.
    Final {
        server_signature: Vec<u8>,
    },
    Done,
}

/// One SCRAM exchange.
pub(crate) struct Scram {
    hash: Hash,
    username: String,
    password: Secret,
    nonce: String,
    state: State,
}

impl Scram {
    /// An exchange for `username`, with the client nonce `nonce` (printable, no `,`).
    pub(crate) fn new(hash: Hash, username: &str, password: Secret, nonce: String) -> Scram {
        Scram {
            hash,
            username: username.to_owned(),
            password,
            nonce,
            state: State::Initial,
        }
    }

    fn client_final(&mut self, client_first_bare: &str, server_first: &str) -> Result<Vec<u8>, String> {
        let attrs = attributes(server_first);
        if let Some(e) = attrs.get('e') {
            return Err(format!("the broker refused SCRAM: {e}"));
        }
        let nonce = attrs
            .get('r')
            .ok_or("the broker's first SCRAM message has no nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the broker's SCRAM nonce does not extend the client's".into());
        }
        let salt = attrs
            .get('s')
            .and_then(|s| B64.decode(s).ok())
            .ok_or("the broker's first SCRAM message has no valid salt")?;
        let iterations: u32 = attrs
            .get('i')
            .and_then(|i| i.parse().ok())
            .ok_or("the broker's first SCRAM message has no valid iteration count")?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "the broker asked for {iterations} SCRAM iterations (weir accepts {MIN_ITERATIONS} to {MAX_ITERATIONS})"
            ));
        }
        let h = self.hash;
        let salted = h.salted_password(self.password.expose().as_bytes(), &salt, iterations);
        let client_key = h.hmac(&salted, b"Client Key");
        let stored_key = h.digest(&client_key);
        // "biws" is base64("n,,"): no channel binding, no authorization identity.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = h.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = h.hmac(&salted, b"Server Key");
        self.state = State::Final {
            server_signature: h.hmac(&server_key, auth_message.as_bytes()),
        };
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }
}

impl Mechanism for Scram {
    fn start(&mut self) -> Vec<u8> {
        let bare = format!("n={},r={}", escape(&self.username), self.nonce);
        let first = format!("n,,{bare}").into_bytes();
        self.state = State::First {
            client_first_bare: bare,
        };
        first
    }

    fn step(&mut self, answer: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let answer = std::str::from_utf8(answer).map_err(|_| "the broker's SCRAM message is not UTF-8")?;
        match std::mem::replace(&mut self.state, State::Done) {
            State::First { client_first_bare } => self.client_final(&client_first_bare, answer).map(Some),
            State::Final { server_signature } => {
                let attrs = attributes(answer);
                if let Some(e) = attrs.get('e') {
                    return Err(format!("the broker refused SCRAM: {e}"));
                }
                let v = attrs
                    .get('v')
                    .and_then(|v| B64.decode(v).ok())
                    .ok_or("the broker's final SCRAM message has no valid signature")?;
                if !bool::from(v.ct_eq(&server_signature)) {
                    return Err(
                        "the broker's SCRAM signature is wrong: it does not know this user's key".into(),
                    );
                }
                Ok(None)
            }
            State::Initial | State::Done => Err("SCRAM message out of turn".into()),
        }
    }
}

/// `saslname`: `=` and `,` escaped.
fn escape(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The `x=value` attributes of a SCRAM message.
struct Attributes<'a>(Vec<(char, &'a str)>);

impl<'a> Attributes<'a> {
    fn get(&self, key: char) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

fn attributes(msg: &str) -> Attributes<'_> {
    Attributes(
        msg.split(',')
            .filter_map(|a| {
                let mut chars = a.chars();
                let key = chars.next()?;
                let value = chars.as_str().strip_prefix('=')?;
                Some((key, value))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exchange of RFC 7677, section 3.
    #[test]
    fn rfc_7677_sha256_exchange() {
        let mut s = Scram::new(
            Hash::Sha256,
            "user",
            Secret::new("pencil"),
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(s.start(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = s.step(server_first).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(client_final).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            s.step(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap(),
            None
        );
    }

    #[test]
    fn a_wrong_server_signature_a_foreign_nonce_and_weak_iterations_are_refused() {
        let first = b"r=abcXYZ,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let mut s = Scram::new(Hash::Sha512, "u,=", Secret::new("pw"), "abc".into());
        assert_eq!(s.start(), b"n,,n=u=2C=3D,r=abc");
        s.step(first).unwrap().unwrap();
        let e = s.step(b"v=AAAA").unwrap_err();
        assert!(e.contains("signature"), "{e}");

        let mut s = Scram::new(Hash::Sha512, "u", Secret::new("pw"), "abc".into());
        s.start();
        let e = s.step(b"r=zzzXYZ,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096").unwrap_err();
        assert!(e.contains("nonce"), "{e}");

        for i in ["1", "4095", "999999999", "x"] {
            let mut s = Scram::new(Hash::Sha256, "u", Secret::new("pw"), "abc".into());
            s.start();
            let msg = format!("r=abcXYZ,s=W22ZaJ0SNY7soEsUEjb6gQ==,i={i}");
            assert!(s.step(msg.as_bytes()).unwrap_err().contains("iteration"), "{i}");
        }

        let mut s = Scram::new(Hash::Sha256, "u", Secret::new("pw"), "abc".into());
        s.start();
        let e = s.step(b"e=unknown-user").unwrap_err();
        assert!(e.contains("unknown-user"), "{e}");
    }
}
