//! The SASL requests (SaslHandshake v1, SaslAuthenticate v0–v2) and their responses, decoded by hand like every
//! response weir reads. The mechanisms themselves (what the authentication bytes say) live in the client.
//!
//! The authentication bytes carry credentials (a PLAIN password, a SCRAM proof, an OAuth token): the `Debug` of
//! [`SaslAuthenticateRequest`] and [`SaslAuthenticateResponse`] shows their length only.

use std::fmt;

use bytes::Bytes;

use crate::call::ErrorCodes;
use crate::wire::{check_version, prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_sasl_handshake_response`] reads. v0 (bytes after it are raw GSSAPI tokens, not Kafka
/// frames) is not spoken.
pub const SASL_HANDSHAKE_VERSIONS: std::ops::RangeInclusive<i16> = 1..=1;
/// Versions [`decode_sasl_authenticate_response`] reads. v1 adds the session lifetime (KIP-368).
pub const SASL_AUTHENTICATE_VERSIONS: std::ops::RangeInclusive<i16> = 0..=2;

/// A SaslHandshake request: the mechanism the client wants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslHandshakeRequest {
    /// E.g. `"SCRAM-SHA-512"`.
    pub mechanism: String,
}

impl SaslHandshakeRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::SaslHandshakeRequest {
        kafka_protocol::messages::SaslHandshakeRequest::default()
            .with_mechanism(crate::call::wire_str(&self.mechanism))
    }
}

/// A decoded SaslHandshake response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslHandshakeResponse {
    /// Error code, 0 if none (33 UNSUPPORTED_SASL_MECHANISM, 34 ILLEGAL_SASL_STATE).
    pub error_code: i16,
    /// The mechanisms the listener enables.
    pub mechanisms: Vec<String>,
}

impl ErrorCodes for SaslHandshakeResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes a SaslHandshake response body of `version`.
pub fn decode_sasl_handshake_response(
    body: Bytes,
    version: i16,
) -> Result<SaslHandshakeResponse, ProtoError> {
    const API: &str = "SaslHandshake";
    check_version(API, version, &SASL_HANDSHAKE_VERSIONS)?;
    let mut r = WireReader::new(body, API, version);
    let error_code = r.i16("error code")?;
    let n = r.count(false, 2, "mechanisms")?.unwrap_or(0);
    let mut mechanisms = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        mechanisms.push(r.required_string(false, "mechanism")?);
    }
    Ok(SaslHandshakeResponse {
        error_code,
        mechanisms,
    })
}

/// A SaslAuthenticate request: one message of the mechanism's exchange.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SaslAuthenticateRequest {
    /// The mechanism's bytes (secret).
    pub auth_bytes: Bytes,
}

impl fmt::Debug for SaslAuthenticateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslAuthenticateRequest")
            .field("auth_bytes", &format_args!("<{} bytes>", self.auth_bytes.len()))
            .finish()
    }
}

impl SaslAuthenticateRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::SaslAuthenticateRequest {
        kafka_protocol::messages::SaslAuthenticateRequest::default().with_auth_bytes(self.auth_bytes.clone())
    }
}

/// A decoded SaslAuthenticate response.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SaslAuthenticateResponse {
    /// Error code, 0 if none (58 SASL_AUTHENTICATION_FAILED).
    pub error_code: i16,
    /// The broker's explanation of a failure.
    pub error_message: Option<String>,
    /// The mechanism's answer (may be secret).
    pub auth_bytes: Bytes,
    /// v1+: how long the session lasts before the client must authenticate again (KIP-368); 0 when it does not
    /// expire.
    pub session_lifetime_ms: i64,
}

impl ErrorCodes for SaslAuthenticateResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

impl fmt::Debug for SaslAuthenticateResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslAuthenticateResponse")
            .field("error_code", &self.error_code)
            .field("error_message", &self.error_message)
            .field("auth_bytes", &format_args!("<{} bytes>", self.auth_bytes.len()))
            .field("session_lifetime_ms", &self.session_lifetime_ms)
            .finish()
    }
}

/// Decodes a SaslAuthenticate response body of `version`.
pub fn decode_sasl_authenticate_response(
    body: Bytes,
    version: i16,
) -> Result<SaslAuthenticateResponse, ProtoError> {
    const API: &str = "SaslAuthenticate";
    check_version(API, version, &SASL_AUTHENTICATE_VERSIONS)?;
    let flexible = version >= 2;
    let mut r = WireReader::new(body, API, version);
    let error_code = r.i16("error code")?;
    let error_message = r.string(flexible, "error message")?;
    let auth_bytes = r.nullable_bytes(flexible, "auth bytes")?.unwrap_or_default();
    let session_lifetime_ms = if version >= 1 {
        r.i64("session lifetime")?
    } else {
        0
    };
    if flexible {
        r.tagged_fields()?;
    }
    Ok(SaslAuthenticateResponse {
        error_code,
        error_message,
        auth_bytes,
        session_lifetime_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticate_response_v2_decodes_and_debug_hides_the_bytes() {
        // error 58, message "bad", auth bytes "secret", lifetime 3600000, no tags.
        let mut b = vec![0, 58, 4, b'b', b'a', b'd', 7];
        b.extend_from_slice(b"secret");
        b.extend_from_slice(&3_600_000i64.to_be_bytes());
        b.push(0);
        let r = decode_sasl_authenticate_response(Bytes::from(b), 2).unwrap();
        assert_eq!(r.error_code, 58);
        assert_eq!(r.error_message.as_deref(), Some("bad"));
        assert_eq!(&r.auth_bytes[..], b"secret");
        assert_eq!(r.session_lifetime_ms, 3_600_000);
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("secret") && shown.contains("<6 bytes>"),
            "{shown}"
        );
        let req = SaslAuthenticateRequest {
            auth_bytes: Bytes::from_static(b"\0alice\0hunter2"),
        };
        assert!(!format!("{req:?}").contains("hunter2"));
    }

    #[test]
    fn handshake_response_bounds_its_count() {
        // A count of 1,000,000 mechanisms in a 6-byte body is refused before allocating.
        let b = Bytes::from_static(&[0, 33, 0, 0x0f, 0x42, 0x40]);
        assert!(decode_sasl_handshake_response(b, 1).is_err());
        let mut ok = vec![0, 0, 0, 0, 0, 2];
        for m in ["PLAIN", "SCRAM-SHA-256"] {
            ok.extend_from_slice(&(m.len() as i16).to_be_bytes());
            ok.extend_from_slice(m.as_bytes());
        }
        let r = decode_sasl_handshake_response(Bytes::from(ok), 1).unwrap();
        assert_eq!(r.mechanisms, ["PLAIN", "SCRAM-SHA-256"]);
    }
}
