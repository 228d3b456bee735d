//! The configuration parser: properties text (`key=value` lines, as `weir -X` and property files give them) set
//! on a producer's, a consumer's, a group member's or a bare client's configuration, security settings included
//! (`sasl.jaas.config`, PEM material, passwords), then validated.
//!
//! Input: `[which]` then the text. Beyond "no panic": a property that was accepted, set again, changes nothing;
//! and no secret (a password, client secret, key or key password given in the text, also inside
//! `sasl.jaas.config`) ever shows in an error message or in the configuration's `Debug`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir::config::{ClientConfig, Pem, ProducerConfig, Secret};
use weir::consumer::ConsumerConfig;
use weir::group::GroupConfig;

/// Properties whose values are secrets, and `sasl.jaas.config`, whose options include them.
const SECRET_KEYS: &[&str] = &[
    "sasl.password",
    "sasl.oauthbearer.client.secret",
    "ssl.key.password",
    "ssl.keystore.key",
    "ssl.key.pem",
    "sasl.jaas.config",
];

trait Settable: std::fmt::Debug + Clone {
    fn set(&mut self, name: &str, value: &str) -> weir::Result<()>;
    fn validate(&self) {}
    fn client(&mut self) -> &mut ClientConfig;
}

impl Settable for ClientConfig {
    fn set(&mut self, name: &str, value: &str) -> weir::Result<()> {
        ClientConfig::set(self, name, value)
    }
    fn client(&mut self) -> &mut ClientConfig {
        self
    }
}

impl Settable for ProducerConfig {
    fn set(&mut self, name: &str, value: &str) -> weir::Result<()> {
        ProducerConfig::set(self, name, value)
    }
    fn validate(&self) {
        let _ = ProducerConfig::validate(self).map_err(|e| e.to_string());
    }
    fn client(&mut self) -> &mut ClientConfig {
        &mut self.client
    }
}

impl Settable for ConsumerConfig {
    fn set(&mut self, name: &str, value: &str) -> weir::Result<()> {
        ConsumerConfig::set(self, name, value)
    }
    fn client(&mut self) -> &mut ClientConfig {
        &mut self.client
    }
}

impl Settable for GroupConfig {
    fn set(&mut self, name: &str, value: &str) -> weir::Result<()> {
        GroupConfig::set(self, name, value)
    }
    fn client(&mut self) -> &mut ClientConfig {
        &mut self.consumer.client
    }
}

/// The secrets a value of `key` holds that are worth looking for in messages (at least 8 bytes, and found once
/// in the value): the whole value, or in a login module line the values of its `password` and `clientSecret`
/// options (the module's and options' names may be quoted in an error; the secrets never).
fn secrets_in<'a>(key: &str, value: &'a str) -> Vec<&'a str> {
    let candidates: Vec<&str> = if key == "sasl.jaas.config" {
        ["password=", "clientSecret="]
            .iter()
            .filter_map(|opt| {
                // The option where it starts a word (not inside the module's name or another option).
                let at = value
                    .match_indices(opt)
                    .find(|(i, _)| value[..*i].ends_with(char::is_whitespace))?
                    .0
                    + opt.len();
                let rest = value[at..].trim_start_matches('"');
                let end = rest.find(|c: char| c == '"' || c == ';' || c.is_whitespace()).unwrap_or(rest.len());
                Some(&rest[..end])
            })
            .collect()
    } else {
        vec![value.trim()]
    };
    candidates
        .into_iter()
        .filter(|s| s.len() >= 8 && value.matches(*s).count() == 1)
        .collect()
}

/// The same configuration with every secret replaced by another value.
fn with_other_secrets<C: Settable>(cfg: &C) -> C {
    let mut other = cfg.clone();
    let security = &mut other.client().security;
    let replace = |s: &mut Secret| *s = Secret::new(format!("other {}", s.expose().len()));
    replace(&mut security.sasl.password);
    replace(&mut security.sasl.oauth.client_secret);
    if let Some(s) = &mut security.tls.key_password {
        replace(s);
    }
    for pem in [&mut security.tls.key, &mut security.tls.certificate, &mut security.tls.ca] {
        if let Some(Pem::Inline(s)) = pem {
            replace(s);
        }
    }
    other
}

fn run<C: Settable>(mut cfg: C, text: &str) {
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else { continue };
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        match cfg.set(key, value) {
            Ok(()) => {
                let once = format!("{cfg:?}");
                let mut twice = cfg.clone();
                twice.set(key, value).expect("a value accepted once is accepted again");
                assert_eq!(once, format!("{twice:?}"), "setting {key} again changed the configuration");
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.is_empty());
                if SECRET_KEYS.contains(&key) {
                    for secret in secrets_in(key, value) {
                        // A leak is an error that shows the secret when it is there, and not when another value
                        // of the same length stands in its place (the message's own words may contain it).
                        let other = value.replacen(secret, &"#".repeat(secret.len()), 1);
                        let without = cfg.clone().set(key, &other).err().map(|e| e.to_string());
                        let shown_anyway = without.is_some_and(|m| m.contains(secret));
                        assert!(
                            !msg.contains(secret) || shown_anyway,
                            "the error for {key} shows a secret: {msg}"
                        );
                    }
                }
            }
        }
    }
    cfg.validate();
    // `Debug` does not depend on what the secrets are.
    assert_eq!(format!("{cfg:?}"), format!("{:?}", with_other_secrets(&cfg)), "a secret shows in Debug");
}

fuzz_target!(|data: &[u8]| {
    let [which, text @ ..] = data else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    match which % 4 {
        0 => run(ProducerConfig::new("localhost:9092"), text),
        1 => run(ConsumerConfig::new("localhost:9092"), text),
        2 => run(GroupConfig::new("localhost:9092", "group"), text),
        _ => run(ClientConfig::new("localhost:9092"), text),
    }
});
