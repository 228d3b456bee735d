//! Other Kafka clients driven by tests: the Java client (the reference for semantics) and franz-go.

pub mod franz_go;
pub mod java;
