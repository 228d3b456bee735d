//! SASL OAUTHBEARER (RFC 7628) as Kafka speaks it: one message with the token and any extensions; an answer
//! with content is the broker's error report (a JSON object), the end of the exchange.

use super::Mechanism;
use crate::config::OAuthToken;

/// One OAUTHBEARER exchange, with a token already obtained.
pub(crate) struct OAuthBearer {
    token: OAuthToken,
    sent: bool,
}

impl OAuthBearer {
    pub(crate) fn new(token: OAuthToken) -> OAuthBearer {
        OAuthBearer { token, sent: false }
    }
}

/// RFC 7628's separator of key/value pairs.
const KVSEP: u8 = 0x01;

impl Mechanism for OAuthBearer {
    fn start(&mut self) -> Vec<u8> {
        self.sent = true;
        // gs2 header without authorization identity, then auth=Bearer <token>, extensions, and an empty pair.
        let mut m = b"n,,".to_vec();
        m.push(KVSEP);
        m.extend_from_slice(b"auth=Bearer ");
        m.extend_from_slice(self.token.value.expose().as_bytes());
        m.push(KVSEP);
        for (k, v) in &self.token.extensions {
            m.extend_from_slice(k.as_bytes());
            m.push(b'=');
            m.extend_from_slice(v.as_bytes());
            m.push(KVSEP);
        }
        m.push(KVSEP);
        m
    }

    fn step(&mut self, answer: &[u8]) -> Result<Option<Vec<u8>>, String> {
        if !self.sent {
            return Err("OAUTHBEARER message out of turn".into());
        }
        if answer.is_empty() {
            return Ok(None);
        }
        // The broker's error report carries no secret: a status, and the scope or configuration it wanted.
        let report: String = String::from_utf8_lossy(answer).chars().take(512).collect();
        Err(format!("the broker refused the token: {report}"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Secret;

    #[test]
    fn the_token_and_extensions_in_one_message() {
        let mut t = OAuthToken::new(Secret::new("abc.def.ghi"), Duration::from_secs(60));
        t.extensions.push(("traceId".into(), "123".into()));
        let mut m = OAuthBearer::new(t);
        assert_eq!(
            m.start(),
            b"n,,\x01auth=Bearer abc.def.ghi\x01traceId=123\x01\x01"
        );
        assert_eq!(m.step(b""), Ok(None));
        let e = m.step(br#"{"status":"invalid_token"}"#).unwrap_err();
        assert!(e.contains("invalid_token") && !e.contains("abc.def"), "{e}");
    }
}
