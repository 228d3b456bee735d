//! Other Kafka clients driven by tests: the Java client (the reference for semantics), franz-go, and a C driver on
//! librdkafka for the latency bench.

pub mod franz_go;
pub mod java;
pub mod rdk_latency;
