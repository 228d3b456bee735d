//! The librdkafka latency driver (`crates/weir-testkit/peers/c/latency.c`): a small C program on librdkafka 2.16
//! that produces at a fixed rate and reads the records back in the same process (see the file's header), for the
//! `latency_vs_peers` bench. kcat cannot do this (it cannot stamp a schedule into values, nor produce and consume
//! at once), and a Python driver on confluent-kafka would measure Python's loop, not librdkafka.
//!
//! [`RdkLatency::require`] builds it into `$CARGO_TARGET_DIR/rdk-latency/` (again whenever its sources or the
//! library are newer than the binary) and checks that it runs on librdkafka 2.16: see [`RdkDriver`] for the
//! compiler, the headers and the library.

use std::process::Command;
use std::time::Duration;

use super::rdk_driver::RdkDriver;

/// The compiled driver.
#[derive(Debug, Clone)]
pub struct RdkLatency {
    driver: RdkDriver,
}

impl RdkLatency {
    /// Builds the driver if it is missing or older than its source, and checks that it runs on librdkafka 2.16.
    /// Panics with what is missing (the headers, the library, a compiler) or the compiler's output.
    pub fn require() -> RdkLatency {
        RdkLatency {
            driver: RdkDriver::require("latency"),
        }
    }

    /// The librdkafka version the driver runs on (`rd_kafka_version_str()`), e.g. `2.16.0`.
    pub fn version(&self) -> &str {
        self.driver.version()
    }

    /// `rdk-latency BROKERS TOPIC PARTITIONS RATE DURATION_MS WARMUP_MS RECORD_SIZE [KEY=VALUE...]`; settings
    /// prefixed `producer.` or `consumer.` go to that client only. Prints one JSON object on stdout.
    #[allow(clippy::too_many_arguments)]
    pub fn command(
        &self,
        brokers: &str,
        topic: &str,
        partitions: i32,
        rate: u64,
        duration: Duration,
        warmup: Duration,
        record_size: usize,
        settings: &[&str],
    ) -> Command {
        let mut cmd = self.driver.command();
        cmd.args([brokers, topic])
            .arg(partitions.to_string())
            .arg(rate.to_string())
            .arg(duration.as_millis().to_string())
            .arg(warmup.as_millis().to_string())
            .arg(record_size.to_string())
            .args(settings);
        cmd
    }
}
