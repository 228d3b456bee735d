//! SASL PLAIN (RFC 4616): the user name and password in one message.

use super::Mechanism;
use crate::config::Secret;

/// One PLAIN exchange.
pub(crate) struct Plain {
    username: String,
    password: Secret,
    sent: bool,
}

impl Plain {
    pub(crate) fn new(username: &str, password: Secret) -> Plain {
        Plain {
            username: username.to_owned(),
            password,
            sent: false,
        }
    }
}

impl Mechanism for Plain {
    fn start(&mut self) -> Vec<u8> {
        self.sent = true;
        // authzid (empty) NUL authcid NUL password.
        let mut m = Vec::with_capacity(2 + self.username.len() + self.password.expose().len());
        m.push(0);
        m.extend_from_slice(self.username.as_bytes());
        m.push(0);
        m.extend_from_slice(self.password.expose().as_bytes());
        m
    }

    fn step(&mut self, _answer: &[u8]) -> Result<Option<Vec<u8>>, String> {
        if !self.sent {
            return Err("PLAIN message out of turn".into());
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_then_done() {
        let mut p = Plain::new("alice", Secret::new("pw"));
        assert_eq!(p.start(), b"\0alice\0pw");
        assert_eq!(p.step(b""), Ok(None));
    }
}
