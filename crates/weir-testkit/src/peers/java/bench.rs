//! The Java peer's throughput modes, for the side-by-side benches: `bench-produce` (one record value per line of
//! stdin) and `bench-consume` (each value and a newline on stdout), documented in
//! `peers/java/src/main/java/weir/peer/Bench.java`. Run the commands with
//! [`run_measured`](crate::peers::franz_go::run_measured) like the other clients'; [`JvmTimes::parse`] reads the
//! peer's own closing line from the child's stderr.
//!
//! These JVMs run with the JVM's defaults for the JIT and the collector (tiered compilation, G1 on a machine
//! the JVM takes for a server), unlike the interop subcommands' start-up options: a throughput run is seconds
//! long, and the C1-only, serial-GC settings that start the interop JVMs fast would understate the Java
//! client. Their wall time and CPU still include the JVM's start-up and warm-up.

use std::process::Command;

use super::JavaPeer;
use crate::peers::franz_go::json_number;

/// Options of the bench JVMs: the heap capped (at 1 GiB), everything else the JVM's default.
const BENCH_JVM_OPTIONS: &[&str] = &["-Xmx1g", "-Djava.awt.headless=true"];

/// What the peer measured inside its JVM, from its closing line on stderr.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JvmTimes {
    /// Records produced or consumed.
    pub records: u64,
    /// Seconds from the subcommand's start (the JVM up, the peer's class loaded) to its end.
    pub seconds: f64,
    /// The JVM's uptime at that end: `jvm_uptime_s - seconds` is the JVM's start-up before the subcommand.
    pub jvm_uptime_s: f64,
}

impl JvmTimes {
    /// The last `{"records": N, "seconds": S, "jvm_uptime_s": U}` line of `stderr`, if there is one.
    pub fn parse(stderr: &[u8]) -> Option<JvmTimes> {
        let text = String::from_utf8_lossy(stderr);
        let line = text.lines().rev().find(|l| l.contains("\"jvm_uptime_s\""))?;
        Some(JvmTimes {
            records: json_number(line, "records")? as u64,
            seconds: json_number(line, "seconds")?,
            jvm_uptime_s: json_number(line, "jvm_uptime_s")?,
        })
    }
}

impl JavaPeer {
    /// Whether the peer's jar has the bench modes: a peer built before them (the build is redone only by
    /// `scripts/setup-test-env java-peer`) would fail them with "unknown subcommand". Looks for the class's
    /// name, which a jar's directory stores uncompressed, without starting a JVM.
    pub fn has_bench_modes(&self) -> bool {
        std::fs::read(self.dir.join("weir-java-peer.jar")).is_ok_and(|jar| {
            let name = b"weir/peer/Bench.class";
            jar.windows(name.len()).any(|w| w == name)
        })
    }

    /// `java ... weir.peer.Main SUBCOMMAND` with the bench JVM options (see the module's doc).
    fn bench_command(&self, subcommand: &str) -> Command {
        self.command_with(BENCH_JVM_OPTIONS, subcommand)
    }

    /// `bench-produce`: one record per line of stdin to `topic`, idempotent, acks=all, linger 5 ms, batches
    /// compressed with `codec` (`none`, `gzip`, `snappy`, `lz4`, `zstd`), the Java defaults otherwise; `settings`
    /// are further producer properties (`key=value`).
    pub fn bench_produce_cmd(&self, bootstrap: &str, topic: &str, codec: &str, settings: &[&str]) -> Command {
        let mut cmd = self.bench_command("bench-produce");
        cmd.args(["--bootstrap", bootstrap, "--topic", topic, "--compression", codec]);
        for s in settings {
            cmd.args(["--config", s]);
        }
        cmd
    }

    /// `bench-consume`: every partition of `topic` from the beginning until `count` records, each value and a
    /// newline on stdout (`max.poll.records` 10000, the Java defaults otherwise); `settings` are further consumer
    /// properties (`key=value`).
    pub fn bench_consume_cmd(&self, bootstrap: &str, topic: &str, count: u64, settings: &[&str]) -> Command {
        let mut cmd = self.bench_command("bench-consume");
        cmd.args([
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--count",
            &count.to_string(),
        ]);
        for s in settings {
            cmd.args(["--config", s]);
        }
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_closing_line() {
        let stderr = b"WARN something\n{\"records\": 1000, \"seconds\": 1.250000, \"jvm_uptime_s\": 1.600}\n";
        assert_eq!(
            JvmTimes::parse(stderr),
            Some(JvmTimes {
                records: 1000,
                seconds: 1.25,
                jvm_uptime_s: 1.6
            })
        );
        assert_eq!(JvmTimes::parse(b"java-peer: failed\n"), None);
    }
}
