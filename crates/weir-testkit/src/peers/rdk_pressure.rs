//! The librdkafka pressure driver (`crates/weir-testkit/peers/c/pressure.c`): the bounded-buffer workload of the
//! `vs_peers` bench (section b) on librdkafka 2.16, the same design as the franz-go peer's `pressure` subcommand
//! (`peers/go/pressure.go`) and weir's side in `crates/weir/benches/vs_peers.rs` (see the file's header). kcat
//! cannot pause a partition, and a Python driver on confluent-kafka would measure Python's loop, not librdkafka.
//!
//! [`RdkPressure::require`] builds it into `$CARGO_TARGET_DIR/rdk-pressure/` (again whenever its sources or the
//! library are newer than the binary) and checks that it runs on librdkafka 2.16: see [`RdkDriver`] for the
//! compiler, the headers and the library.

use std::process::Command;

use super::franz_go::Pressure;
use super::rdk_driver::RdkDriver;

/// The compiled driver.
#[derive(Debug, Clone)]
pub struct RdkPressure {
    driver: RdkDriver,
}

impl RdkPressure {
    /// Builds the driver if it is missing or older than its source, and checks that it runs on librdkafka 2.16.
    /// Panics with what is missing (the headers, the library, a compiler) or the compiler's output.
    pub fn require() -> RdkPressure {
        RdkPressure {
            driver: RdkDriver::require("pressure"),
        }
    }

    /// The librdkafka version the driver runs on (`rd_kafka_version_str()`), e.g. `2.16.0`.
    pub fn version(&self) -> &str {
        self.driver.version()
    }

    /// `rdk-pressure --brokers B --topic T --partitions P ...`: the workload with the settings `p` (the flags of
    /// [`FranzGo::pressure_cmd`](super::franz_go::FranzGo::pressure_cmd), with `--duration-ms` and `--warmup-ms`
    /// in milliseconds). Further librdkafka properties may be appended as `KEY=VALUE` arguments. Prints one JSON
    /// object with the keys the franz-go peer prints; read it with
    /// [`json_number`](super::franz_go::json_number).
    pub fn pressure_cmd(&self, brokers: &str, topic: &str, p: &Pressure) -> Command {
        let mut cmd = self.driver.command();
        cmd.args(["--brokers", brokers, "--topic", topic])
            .args(["--partitions", &p.partitions.to_string()])
            .args(["--workers", &p.workers.to_string()])
            .args(["--buffer", &p.buffer.to_string()])
            .args(["--resume-below", &p.resume_below.to_string()])
            .args(["--duration-ms", &p.duration.as_millis().to_string()])
            .args(["--warmup-ms", &p.warmup.as_millis().to_string()])
            .args(["--work-rounds", &p.work_rounds.to_string()])
            .args(["--poll-max", &p.poll_max.to_string()])
            .args(["--fetch-max-wait-ms", &p.fetch_max_wait.as_millis().to_string()]);
        cmd
    }
}
