//! Every configuration property weir knows, in one table: its names (the Java client's first, then librdkafka's
//! and weir's aliases), the configuration it belongs to, and what it sets. The `set` of every configuration
//! resolves names here, so an alias works wherever its property does, and a property given to the wrong
//! configuration says where it belongs.

use crate::error::{Error, Result};

/// The configuration a property belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// Every client ([`super::ClientConfig`]).
    Client,
    /// Producers ([`super::ProducerConfig`]).
    Producer,
    /// Consumers and group members ([`crate::consumer::ConsumerConfig`]).
    Consumer,
    /// Group members ([`crate::group::GroupConfig`]).
    Group,
}

impl Scope {
    fn name(self) -> &'static str {
        match self {
            Scope::Client => "client",
            Scope::Producer => "producer",
            Scope::Consumer => "consumer",
            Scope::Group => "group",
        }
    }

    /// Whether a configuration of scope `self` takes properties of `other`.
    fn takes(self, other: Scope) -> bool {
        other == Scope::Client || other == self || (self == Scope::Group && other == Scope::Consumer)
    }
}

/// One property.
#[derive(Debug, Clone, Copy)]
pub struct Property {
    /// Its names: the Java client's first, then librdkafka's and weir's.
    pub names: &'static [&'static str],
    /// The configuration it belongs to.
    pub scope: Scope,
    /// What it sets.
    pub doc: &'static str,
    pub(crate) key: Key,
}

macro_rules! properties {
    ($($key:ident $scope:ident [$($name:literal),+] $doc:literal;)*) => {
        /// A property, by what it sets.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Key {
            $($key,)*
        }

        /// Every property weir knows.
        pub const PROPERTIES: &[Property] = &[
            $(Property { names: &[$($name),+], scope: Scope::$scope, doc: $doc, key: Key::$key },)*
        ];
    };
}

properties! {
    BootstrapServers Client ["bootstrap.servers", "metadata.broker.list"] "host:port list to discover the cluster";
    ClientId Client ["client.id"] "sent with every request";
    RequestTimeout Client ["request.timeout.ms", "socket.timeout.ms"] "how long a request waits for its response";
    ConnectTimeout Client ["socket.connection.setup.timeout.ms"] "TCP connect timeout";
    MetadataMaxAge Client ["metadata.max.age.ms", "topic.metadata.refresh.interval.ms"] "metadata refresh period";
    ReconnectBackoff Client ["reconnect.backoff.ms"] "first delay before reconnecting";
    ReconnectBackoffMax Client ["reconnect.backoff.max.ms"] "largest reconnect delay";
    RetryBackoff Client ["retry.backoff.ms"] "first delay between retries (doubling)";
    RetryBackoffMax Client ["retry.backoff.max.ms"] "largest delay between retries";
    MaxBlock Client ["max.block.ms"]
        "how long an operation waits for a topic to be known, and a send for room in buffer.memory";
    MaxResponseSize Client ["receive.message.max.bytes", "fetch.max.bytes.response"] "largest response frame";
    MaxInFlight Client ["max.in.flight.requests.per.connection", "max.in.flight"] "requests in flight per connection";
    SecurityProtocol Client ["security.protocol"] "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL";
    SaslMechanism Client ["sasl.mechanism", "sasl.mechanisms"] "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER";
    SaslUsername Client ["sasl.username"] "SASL user name";
    SaslPassword Client ["sasl.password"] "SASL password (secret)";
    SaslJaasConfig Client ["sasl.jaas.config"]
        "Java login module line: Plain/ScramLoginModule (username, password) or OAuthBearerLoginModule (clientId, clientSecret, scope); secret";
    OAuthTokenEndpoint Client ["sasl.oauthbearer.token.endpoint.url"] "OIDC token endpoint for OAUTHBEARER tokens";
    OAuthClientId Client ["sasl.oauthbearer.client.id"] "OIDC client id";
    OAuthClientSecret Client ["sasl.oauthbearer.client.secret"] "OIDC client secret (secret)";
    OAuthScope Client ["sasl.oauthbearer.scope"] "OIDC scope asked for";
    OAuthMethod Client ["sasl.oauthbearer.method"] "oidc (librdkafka's name for the built-in OIDC provider)";
    SslCaLocation Client ["ssl.truststore.location", "ssl.ca.location"] "PEM file of the CAs brokers are verified against";
    SslCaPem Client ["ssl.truststore.certificates", "ssl.ca.pem"] "the same, inline PEM";
    SslCertificateLocation Client ["ssl.certificate.location"] "PEM file of this client's certificate chain";
    SslCertificatePem Client ["ssl.keystore.certificate.chain", "ssl.certificate.pem"] "the same, inline PEM";
    SslKeyLocation Client ["ssl.key.location"] "PEM file of this client's private key";
    SslKeyPem Client ["ssl.keystore.key", "ssl.key.pem"] "the same, inline PEM (secret)";
    SslKeystoreLocation Client ["ssl.keystore.location"] "PEM file with this client's key and certificate chain";
    SslKeyPassword Client ["ssl.key.password"] "password of an encrypted PKCS#8 key (secret)";
    SslStoreType Client ["ssl.truststore.type", "ssl.keystore.type"] "PEM (the only store type weir reads)";
    SslStorePassword Client ["ssl.truststore.password", "ssl.keystore.password"] "refused: PEM stores have none";
    SslEndpointIdentification Client ["ssl.endpoint.identification.algorithm"]
        "https (default) checks the broker's host name; empty or none skips the check";
    SslVerifyCertificates Client ["enable.ssl.certificate.verification"]
        "false skips verifying broker certificates altogether (insecure)";
    Linger Producer ["linger.ms", "queue.buffering.max.ms"] "how long a batch waits for more records";
    BatchSize Producer ["batch.size"] "largest batch in bytes";
    Compression Producer ["compression.type", "compression.codec"] "none, gzip, snappy, lz4 or zstd";
    Acks Producer ["acks", "request.required.acks"] "0, 1 or all";
    Idempotence Producer ["enable.idempotence"] "no duplicates from retries, order kept";
    DeliveryTimeout Producer ["delivery.timeout.ms", "message.timeout.ms"] "bound from send to delivery report";
    MaxRecordSize Producer ["max.request.size", "message.max.bytes"] "largest single record";
    BufferMemory Producer ["buffer.memory"] "bytes buffered before send waits";
    BufferMemoryKb Producer ["queue.buffering.max.kbytes"] "the same, in KiB";
    TransactionalId Producer ["transactional.id"] "makes the producer transactional";
    TransactionTimeout Producer ["transaction.timeout.ms"] "how long a transaction may stay open";
    FetchMaxWait Consumer ["fetch.max.wait.ms", "fetch.wait.max.ms"] "how long the broker may hold a fetch";
    FetchMinBytes Consumer ["fetch.min.bytes"] "bytes the broker gathers before answering";
    FetchMaxBytes Consumer ["fetch.max.bytes"] "largest fetch response";
    PartitionBuffer Consumer ["max.partition.fetch.bytes", "fetch.message.max.bytes", "weir.partition.buffer.bytes"]
        "per-partition buffer high watermark (the low one is set to half)";
    PartitionBufferLow Consumer ["weir.partition.buffer.low.bytes"] "per-partition buffer low watermark";
    BufferTarget Consumer ["weir.buffer.target.ms"]
        "rate-sized buffers: each partition buffers this long of what it drains (0: fixed watermarks)";
    PartitionBufferMin Consumer ["weir.partition.buffer.min.bytes"]
        "smallest rate-sized partition buffer (the fair share of the budget when that is smaller)";
    MemoryBudget Consumer ["weir.memory.budget.bytes"] "consumer-wide budget of buffered bytes";
    MemoryBudgetKb Consumer ["queued.max.messages.kbytes"] "the same, in KiB";
    AutoOffsetReset Consumer ["auto.offset.reset"] "earliest, latest or none";
    CheckCrcs Consumer ["check.crcs"]
        "verify the CRC of fetched batches (a damaged one is fetched again, three fetches in all, then reported)";
    FetchesInFlight Consumer ["weir.fetches.in.flight"] "fetch requests in flight per broker";
    IsolationLevel Consumer ["isolation.level"] "read_uncommitted (default) or read_committed";
    ClientRack Consumer ["client.rack"]
        "the consumer's rack: fetch from a replica in it when the brokers have a rack-aware replica selector";
    MetricsInterval Consumer ["weir.metrics.interval.ms"]
        "how often per-partition metrics are published (default 1000; 0: never)";
    GroupId Group ["group.id"] "the group";
    GroupInstanceId Group ["group.instance.id"] "static membership";
    SessionTimeout Group ["session.timeout.ms"] "the coordinator evicts a silent member after this";
    HeartbeatInterval Group ["heartbeat.interval.ms"] "heartbeat period";
    MaxPollInterval Group ["max.poll.interval.ms"] "longest time between polls; also the rebalance timeout";
    AssignmentStrategy Group ["partition.assignment.strategy"] "range, roundrobin, cooperative-sticky";
    AutoCommit Group ["enable.auto.commit"] "commit delivered positions periodically, on revoke and on close";
    AutoCommitInterval Group ["auto.commit.interval.ms"] "period of auto-commit";
}

/// The property `name` stands for, if a configuration of `scope` takes it.
pub(crate) fn resolve(name: &str, scope: Scope) -> Result<Key> {
    let Some(p) = PROPERTIES.iter().find(|p| p.names.contains(&name)) else {
        return Err(Error::Config(format!("unknown configuration property {name:?}")));
    };
    if !scope.takes(p.scope) {
        return Err(Error::Config(format!(
            "{name:?} is a {} property; a {} configuration does not take it",
            p.scope.name(),
            scope.name()
        )));
    }
    Ok(p.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_means_one_property() {
        let mut names: Vec<&str> = PROPERTIES.iter().flat_map(|p| p.names.iter().copied()).collect();
        let all = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all, "a name listed twice");
    }

    #[test]
    fn a_property_of_another_configuration_says_where_it_belongs() {
        assert_eq!(resolve("linger.ms", Scope::Producer).unwrap(), Key::Linger);
        assert_eq!(
            resolve("metadata.broker.list", Scope::Group).unwrap(),
            Key::BootstrapServers
        );
        assert_eq!(
            resolve("fetch.max.bytes", Scope::Group).unwrap(),
            Key::FetchMaxBytes
        );
        let e = resolve("fetch.max.bytes", Scope::Producer)
            .unwrap_err()
            .to_string();
        assert!(e.contains("consumer property"), "{e}");
        let e = resolve("group.id", Scope::Consumer).unwrap_err().to_string();
        assert!(e.contains("group property"), "{e}");
        let e = resolve("lingerr.ms", Scope::Producer).unwrap_err().to_string();
        assert!(e.contains("unknown") && e.contains("lingerr.ms"), "{e}");
    }
}
