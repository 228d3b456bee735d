//! Other Kafka clients driven by tests: the Java client (the reference for semantics), franz-go, and C drivers on
//! librdkafka (built by [`rdk_driver`]) for the latency bench and the bounded-buffer workload of `vs_peers`.

pub mod franz_go;
pub mod java;
pub mod rdk_driver;
pub mod rdk_latency;
pub mod rdk_pressure;
