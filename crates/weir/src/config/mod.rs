//! Typed configuration, also settable with the Java client's / librdkafka's property names, resolved through one
//! table ([`properties::PROPERTIES`]) for every configuration: client, producer, consumer and group.
//!
//! ```
//! use weir::config::ProducerConfig;
//! let mut cfg = ProducerConfig::new("127.0.0.1:9092");
//! cfg.set("linger.ms", "10").unwrap();
//! cfg.set("compression.type", "zstd").unwrap();
//! assert!(cfg.set("no.such.key", "1").is_err());
//! ```

use std::time::Duration;

use weir_proto::record::Compression;

use crate::error::{Error, Result};

mod oauth;
pub mod properties;
mod secret;
mod security;

pub use oauth::{OAuthConfig, OAuthToken, TokenFuture, TokenProvider, TokenSource};
use properties::{resolve, Key, Scope};
pub use secret::Secret;
pub use security::{Pem, SaslConfig, SaslMechanism, SecurityConfig, SecurityProtocol, TlsConfig};

/// Settings every weir client shares.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` addresses used to discover the cluster (`bootstrap.servers`).
    pub bootstrap_servers: Vec<String>,
    /// Sent with every request (`client.id`).
    pub client_id: String,
    /// How long a request may wait for its response (`request.timeout.ms`, default 30 s).
    pub request_timeout: Duration,
    /// TCP connect timeout (`socket.connection.setup.timeout.ms`, default 10 s).
    pub connect_timeout: Duration,
    /// Metadata is refreshed at least this often (`metadata.max.age.ms`, default 5 min).
    pub metadata_max_age: Duration,
    /// First delay before reconnecting to a broker (`reconnect.backoff.ms`, default 50 ms).
    pub reconnect_backoff: Duration,
    /// Largest reconnect delay (`reconnect.backoff.max.ms`, default 1 s).
    pub reconnect_backoff_max: Duration,
    /// Delay before the first retry of a failed request (`retry.backoff.ms`, default 100 ms); it doubles with
    /// each further failure of the same operation, up to `retry_backoff_max`.
    pub retry_backoff: Duration,
    /// Largest delay between retries (`retry.backoff.max.ms`, default 1 s, as the Java client's).
    pub retry_backoff_max: Duration,
    /// Largest response frame accepted (`receive.message.max.bytes`, default 100 MiB).
    pub max_response_size: usize,
    /// Requests that may be in flight on one connection (`max.in.flight.requests.per.connection`, default 5).
    pub max_in_flight: usize,
    /// How long an operation on a topic waits for the cluster to know it (`max.block.ms`, default 60 s, as the
    /// Java producer): a topic just created reaches the brokers' metadata a little later. A topic the cluster
    /// still does not have after this is [`Error::UnknownTopic`]. A producer's `send` also waits this long in
    /// all for room in `buffer.memory`, then fails with [`Error::Timeout`] (retriable: the broker or the
    /// partition is behind), as the Java client's `send`.
    pub max_block: Duration,
    /// TLS and SASL (`security.protocol`, `ssl.*`, `sasl.*`); plaintext by default.
    pub security: SecurityConfig,
}

impl ClientConfig {
    /// The longest delay between retries: `retry.backoff.max.ms`, or `retry.backoff.ms` if that is longer (a
    /// later retry never waits less than the first).
    pub(crate) fn retry_backoff_cap(&self) -> Duration {
        self.retry_backoff_max.max(self.retry_backoff)
    }

    /// The delay after `previous` for the next retry: twice as long, within [`ClientConfig::retry_backoff_cap`].
    pub(crate) fn next_retry_backoff(&self, previous: Duration) -> Duration {
        (previous * 2).min(self.retry_backoff_cap())
    }

    /// Defaults with the given comma-separated bootstrap list.
    pub fn new(bootstrap: &str) -> Self {
        Self {
            bootstrap_servers: split_list(bootstrap),
            client_id: "weir".into(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            metadata_max_age: Duration::from_secs(300),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_secs(1),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            max_response_size: weir_proto::frame::DEFAULT_MAX_FRAME_SIZE,
            max_in_flight: 5,
            max_block: Duration::from_secs(60),
            security: SecurityConfig::default(),
        }
    }

    /// Sets one property by its Java / librdkafka name; an unknown key, or one of another configuration, is an
    /// error.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let key = resolve(name, Scope::Client)?;
        self.apply(key, name, value).map(|_| ())
    }

    /// Applies `key` if it is a client property; `Ok(false)` if it is not.
    pub(crate) fn apply(&mut self, key: Key, name: &str, value: &str) -> Result<bool> {
        match key {
            Key::BootstrapServers => self.bootstrap_servers = split_list(value),
            Key::ClientId => self.client_id = value.to_owned(),
            Key::RequestTimeout => self.request_timeout = ms(name, value)?,
            Key::ConnectTimeout => self.connect_timeout = ms(name, value)?,
            Key::MetadataMaxAge => self.metadata_max_age = ms(name, value)?,
            Key::ReconnectBackoff => self.reconnect_backoff = ms(name, value)?,
            Key::ReconnectBackoffMax => self.reconnect_backoff_max = ms(name, value)?,
            Key::RetryBackoff => self.retry_backoff = ms(name, value)?,
            Key::RetryBackoffMax => self.retry_backoff_max = ms(name, value)?,
            Key::MaxBlock => self.max_block = ms(name, value)?,
            Key::MaxResponseSize => self.max_response_size = num(name, value)?,
            Key::MaxInFlight => self.max_in_flight = num::<usize>(name, value)?.max(1),
            _ => return self.security.apply(key, name, value),
        }
        Ok(true)
    }
}

/// How many acknowledgements a produce request waits for (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: fire and forget; the broker sends no response, so delivery is never confirmed.
    None,
    /// `acks=1`: the leader has written the record.
    Leader,
    /// `acks=all` / `-1`: all in-sync replicas have it.
    All,
}

impl Acks {
    /// The wire value.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Producer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Shared client settings.
    pub client: ClientConfig,
    /// How long a partition's batch may wait for more records (`linger.ms`, default 5 ms as librdkafka).
    pub linger: Duration,
    /// Largest batch in bytes before it is sent (`batch.size`, default 1 MiB).
    pub batch_size: usize,
    /// Batch compression (`compression.type` / `compression.codec`, default none).
    pub compression: Compression,
    /// Acknowledgements required (`acks`, default all).
    pub acks: Acks,
    /// Idempotent delivery: no duplicates from retries, order kept per partition (`enable.idempotence`, default on).
    pub idempotence: bool,
    /// Upper bound on the time from `send` to a delivery report, retries included (`delivery.timeout.ms`, 120 s).
    pub delivery_timeout: Duration,
    /// Largest single record (`message.max.bytes` / `max.request.size`, default 1 MiB).
    pub max_record_size: usize,
    /// Bytes of records buffered before `send` waits (`buffer.memory`, default 32 MiB, as the Java client): the
    /// producer's queued and in-flight records never take more. `send` waits for room up to `max.block.ms`,
    /// then returns [`Error::Timeout`].
    pub buffer_memory: usize,
    /// Makes the producer transactional (`transactional.id`): records are sent in transactions
    /// ([`crate::Producer::init_transactions`]). Implies idempotence.
    pub transactional_id: Option<String>,
    /// How long the coordinator lets a transaction stay open before aborting it (`transaction.timeout.ms`,
    /// default 60 s).
    pub transaction_timeout: Duration,
}

impl ProducerConfig {
    /// Defaults with the given comma-separated bootstrap list.
    pub fn new(bootstrap: &str) -> Self {
        Self {
            client: ClientConfig::new(bootstrap),
            linger: Duration::from_millis(5),
            batch_size: 1024 * 1024,
            compression: Compression::None,
            acks: Acks::All,
            idempotence: true,
            delivery_timeout: Duration::from_secs(120),
            max_record_size: 1024 * 1024,
            buffer_memory: 32 * 1024 * 1024,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
        }
    }

    /// Sets one property by its Java / librdkafka name (client properties included); an unknown key, or one of
    /// another configuration, is an error.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let key = resolve(name, Scope::Producer)?;
        if self.client.apply(key, name, value)? {
            return Ok(());
        }
        match key {
            Key::Linger => self.linger = ms(name, value)?,
            Key::BatchSize => self.batch_size = num::<usize>(name, value)?.max(64),
            Key::Compression => {
                self.compression = value
                    .parse()
                    .map_err(|_| Error::Config(format!("{name}: unknown codec {value:?}")))?
            }
            Key::Acks => {
                self.acks = match value {
                    "0" => Acks::None,
                    "1" => Acks::Leader,
                    "all" | "-1" => Acks::All,
                    _ => {
                        return Err(Error::Config(format!(
                            "acks: expected 0, 1, all or -1, got {value:?}"
                        )))
                    }
                }
            }
            Key::Idempotence => self.idempotence = boolean(name, value)?,
            Key::DeliveryTimeout => self.delivery_timeout = ms(name, value)?,
            Key::MaxRecordSize => self.max_record_size = num(name, value)?,
            Key::BufferMemory => self.buffer_memory = num(name, value)?,
            Key::BufferMemoryKb => self.buffer_memory = kib(name, value)?,
            Key::TransactionalId => self.transactional_id = Some(value.to_owned()).filter(|v| !v.is_empty()),
            Key::TransactionTimeout => self.transaction_timeout = ms(name, value)?,
            _ => unreachable!("resolve checked the scope of {name}"),
        }
        Ok(())
    }

    /// Checks combinations that cannot work together.
    pub fn validate(&self) -> Result<()> {
        if self.client.bootstrap_servers.is_empty() {
            return Err(Error::Config("bootstrap.servers is empty".into()));
        }
        if self.transactional_id.is_some() && !self.idempotence {
            return Err(Error::Config(
                "transactional.id requires enable.idempotence=true".into(),
            ));
        }
        if self.idempotence && self.acks != Acks::All {
            return Err(Error::Config(
                "enable.idempotence=true requires acks=all (set enable.idempotence=false to use acks 0 or 1)"
                    .into(),
            ));
        }
        Ok(())
    }
}

pub(crate) fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(crate) fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::Config(format!("{key}: expected a non-negative number, got {value:?}")))
}

/// A size given in KiB (librdkafka's `*.kbytes`), in bytes; one that does not fit a `usize` in bytes is an error
/// (not a product that overflows).
pub(crate) fn kib(key: &str, value: &str) -> Result<usize> {
    num::<usize>(key, value)?.checked_mul(1024).ok_or_else(|| {
        Error::Config(format!(
            "{key}: {value:?} KiB is more bytes than this machine can address"
        ))
    })
}

pub(crate) fn ms(key: &str, value: &str) -> Result<Duration> {
    num::<u64>(key, value).map(Duration::from_millis)
}

pub(crate) fn boolean(key: &str, value: &str) -> Result<bool> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::Config(format!(
            "{key}: expected true or false, got {value:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_doubling_up_to_retry_backoff_max() {
        let mut c = ClientConfig::new("a:1");
        let steps = |c: &ClientConfig| {
            std::iter::successors(Some(c.retry_backoff), |&b| Some(c.next_retry_backoff(b)))
                .take(6)
                .map(|b| b.as_millis())
                .collect::<Vec<_>>()
        };
        assert_eq!(steps(&c), [100, 200, 400, 800, 1000, 1000]);
        c.set("retry.backoff.max.ms", "250").unwrap();
        assert_eq!(steps(&c), [100, 200, 250, 250, 250, 250]);
        c.set("retry.backoff.ms", "2000").unwrap();
        assert_eq!(steps(&c), [2000, 2000, 2000, 2000, 2000, 2000]);
        assert!(c.set("retry.backoff.max.ms", "soon").is_err());
    }

    #[test]
    fn java_and_librdkafka_names_accepted() {
        let mut c = ProducerConfig::new("a:1, b:2");
        assert_eq!(c.client.bootstrap_servers, ["a:1", "b:2"]);
        c.set("queue.buffering.max.ms", "20").unwrap();
        assert_eq!(c.linger, Duration::from_millis(20));
        c.set("compression.codec", "lz4").unwrap();
        assert_eq!(c.compression, Compression::Lz4);
        c.set("acks", "1").unwrap();
        assert!(c.validate().is_err(), "idempotence needs acks=all");
        c.set("enable.idempotence", "false").unwrap();
        c.validate().unwrap();
        let err = c.set("lingerr.ms", "1").unwrap_err().to_string();
        assert!(err.contains("lingerr.ms"), "{err}");
        assert!(c.set("linger.ms", "soon").is_err());
    }

    #[test]
    fn sizes_in_kib_that_overflow_bytes_are_errors() {
        let mut p = ProducerConfig::new("a:1");
        p.set("queue.buffering.max.kbytes", "4").unwrap();
        assert_eq!(p.buffer_memory, 4096);
        let huge = (usize::MAX / 1024 + 1).to_string();
        let err = p
            .set("queue.buffering.max.kbytes", &huge)
            .unwrap_err()
            .to_string();
        assert!(err.contains("queue.buffering.max.kbytes"), "{err}");
        assert_eq!(p.buffer_memory, 4096, "a refused value changes nothing");
        let mut c = crate::consumer::ConsumerConfig::new("a:1");
        c.set("queued.max.messages.kbytes", "2").unwrap();
        assert_eq!(c.memory_budget, 2048);
        assert!(c.set("queued.max.messages.kbytes", &huge).is_err());
        assert_eq!(c.memory_budget, 2048);
    }
}
