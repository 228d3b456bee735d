//! Connections to brokers: one reader and one writer task per connection, correlation-id multiplexing,
//! pipelining, request timeouts, reconnect with backoff; TLS through rustls and SASL (PLAIN, SCRAM) as the
//! client's [`Transport`] says.
//!
//! A [`Connection`] is a cheap handle; the tasks own the socket. A request future that is dropped never corrupts
//! the connection: the frame is handed whole to the writer task, its response is read and discarded, and its
//! in-flight slot is freed when that response arrives or the connection dies.
//!
//! Every request is counted and timed per API and broker ([`metrics`]: requests, errors by Kafka error name,
//! latency, in flight; connections opened and closed; SASL outcomes) and runs in a `kafka_request` span at debug
//! level (API, version, broker, correlation id).

mod broker;
mod connection;
pub(crate) mod metrics;
mod oidc;
mod oidc_tokens;
mod sasl;
mod tls;
mod transport;

pub(crate) use broker::{BrokerLink, LinkState};
pub(crate) use connection::Connection;
pub(crate) use transport::Transport;
