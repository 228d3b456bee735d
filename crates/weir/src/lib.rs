//! weir: a pure-Rust Apache Kafka client built for consumers under pressure.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod consumer;
