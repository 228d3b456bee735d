//! The clients of the side-by-side produce/consume benches and how each one is started: weir (the bench's own
//! binary re-executed as a child, see [`run_child`](super::run_child)), franz-go (its peer), librdkafka (kcat)
//! and the Java client (its peer's bench modes). [`Lineup::produce_then_consume`] runs one client's pass: produce
//! an input file (one record per line on the child's stdin) to a fresh topic, then read the topic back from the
//! start (each value and a newline on the child's stdout, counted here), every outcome checked.
//!
//! Settings, aligned where the defaults differ: idempotent producer, acks=all, linger 5 ms and the same
//! compression codec on every client; everything else each client's default (notably the batch size: 1 MiB for
//! weir, franz-go and librdkafka, 16 KiB for the Java client). Consumers read every partition from the start
//! without a group, polling up to 16384 (weir), 10000 (franz-go, Java: `max.poll.records`) records at a time.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use weir_testkit::peers::franz_go::{run_measured, FranzGo, Input, Measured};
use weir_testkit::peers::java::{JavaPeer, JvmTimes};
use weir_testkit::Kcat;

use super::check;

/// One client of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Weir,
    FranzGo,
    Librdkafka,
    Java,
}

impl Client {
    /// Every client, in the order of the tables.
    pub const ALL: [Client; 4] = [Client::Weir, Client::FranzGo, Client::Librdkafka, Client::Java];

    /// The name in tables and results lines.
    pub fn name(self) -> &'static str {
        match self {
            Client::Weir => "weir",
            Client::FranzGo => "franz-go",
            Client::Librdkafka => "librdkafka",
            Client::Java => "java",
        }
    }

    /// The client called `name` (as [`Client::name`] gives it).
    pub fn from_name(name: &str) -> Option<Client> {
        Client::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// What one pass produces and reads back.
#[derive(Debug, Clone, Copy)]
pub struct Workload<'a> {
    pub bootstrap: &'a str,
    /// A topic that exists, empty, with `partitions` partitions.
    pub topic: &'a str,
    pub partitions: i32,
    /// Lines of the input file: the records to read back.
    pub records: u64,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub codec: &'a str,
}

/// One client's pass: its produce and its consume, measured; for the Java client also what its JVM measured.
#[derive(Debug, Clone)]
pub struct Pass {
    pub produce: Measured,
    pub consume: Measured,
    /// The Java peer's own figures (produce, consume); `None` for the other clients.
    pub jvm: Option<(JvmTimes, JvmTimes)>,
}

/// The clients compared and what starts them.
pub struct Lineup {
    /// The environment variable that makes the bench binary run as a weir child (its value: the mode).
    pub child_env: &'static str,
    pub franz_go: FranzGo,
    pub kcat: Kcat,
    /// `None`: the Java peer is not built (or predates the bench modes); the Java client is left out.
    pub java: Option<JavaPeer>,
    /// Extra Java producer properties from `JAVA_PRODUCER_SETTINGS` (`key=value,key=value`; none by default),
    /// to see what a setting changes (e.g. `batch.size=1048576`, the others' batch size).
    pub java_producer_settings: Vec<String>,
}

impl Lineup {
    /// Every peer found (franz-go and kcat required; the Java peer optional, with the reason it is missing).
    pub fn require(child_env: &'static str) -> (Lineup, Option<String>) {
        let (java, missing) = match JavaPeer::find() {
            Ok(j) if j.has_bench_modes() => (Some(j), None),
            Ok(_) => (
                None,
                Some(
                    "the Java peer predates its bench modes: run scripts/setup-test-env java-peer".to_owned(),
                ),
            ),
            Err(e) => (None, Some(e)),
        };
        let lineup = Lineup {
            child_env,
            franz_go: FranzGo::require(),
            kcat: Kcat::require(),
            java,
            java_producer_settings: std::env::var("JAVA_PRODUCER_SETTINGS")
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        (lineup, missing)
    }

    /// The clients this lineup can run, in table order.
    pub fn clients(&self) -> Vec<Client> {
        Client::ALL
            .into_iter()
            .filter(|c| *c != Client::Java || self.java.is_some())
            .collect()
    }

    /// The bench binary as a weir child in `mode` with `args`.
    pub fn weir_child(&self, mode: &str, args: &[String]) -> Command {
        let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
        cmd.env(self.child_env, mode).args(args);
        cmd
    }

    /// The command producing stdin's lines to `w.topic`.
    pub fn produce_cmd(&self, c: Client, w: &Workload) -> Command {
        match c {
            Client::Weir => self.weir_child(
                "produce",
                &[
                    w.bootstrap.to_owned(),
                    w.topic.to_owned(),
                    format!("compression.type={}", w.codec),
                ],
            ),
            Client::FranzGo => {
                let mut cmd = self.franz_go.produce_lines_cmd(w.bootstrap, w.topic);
                cmd.args(["--compression", w.codec]);
                cmd
            }
            Client::Librdkafka => {
                let mut cmd = self.kcat.command();
                cmd.args(["-P", "-b", w.bootstrap, "-t", w.topic]);
                for s in [
                    "linger.ms=5",
                    "enable.idempotence=true",
                    "acks=all",
                    &format!("compression.codec={}", w.codec),
                ] {
                    cmd.args(["-X", s]);
                }
                cmd
            }
            Client::Java => self.java.as_ref().expect("the Java peer").bench_produce_cmd(
                w.bootstrap,
                w.topic,
                w.codec,
                &self
                    .java_producer_settings
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
            ),
        }
    }

    /// The command reading `w.records` records of `w.topic` from the start, each value and a newline on stdout.
    pub fn consume_cmd(&self, c: Client, w: &Workload) -> Command {
        match c {
            Client::Weir => self.weir_child(
                "consume",
                &[
                    w.bootstrap.to_owned(),
                    w.topic.to_owned(),
                    w.partitions.to_string(),
                    w.records.to_string(),
                ],
            ),
            Client::FranzGo => self.franz_go.consume_cmd(w.bootstrap, w.topic, w.records),
            Client::Librdkafka => {
                let mut cmd = self.kcat.command();
                cmd.args([
                    "-C",
                    "-b",
                    w.bootstrap,
                    "-t",
                    w.topic,
                    "-o",
                    "beginning",
                    "-e",
                    "-q",
                ]);
                cmd
            }
            Client::Java => self.java.as_ref().expect("the Java peer").bench_consume_cmd(
                w.bootstrap,
                w.topic,
                w.records,
                &[],
            ),
        }
    }

    /// `c` produces `input` (`w.records` lines) to `w.topic`, then reads it back; panics (with the child's
    /// stderr) if either fails or the count read back differs.
    pub fn produce_then_consume(&self, c: Client, w: &Workload, input: &Path, timeout: Duration) -> Pass {
        let name = c.name();
        let produce = run_measured(self.produce_cmd(c, w), Input::File(input), false, timeout);
        check(&format!("{name} produce to {}", w.topic), &produce);
        let consume = run_measured(self.consume_cmd(c, w), Input::Null, true, timeout);
        check(&format!("{name} consume of {}", w.topic), &consume);
        assert_eq!(
            consume.lines, w.records,
            "{name} read back {} of {} records of {}",
            consume.lines, w.records, w.topic
        );
        let jvm = (c == Client::Java).then(|| {
            let times = |m: &Measured, op: &str| {
                JvmTimes::parse(&m.stderr).unwrap_or_else(|| {
                    panic!(
                        "the Java peer's {op} printed no closing line: {}",
                        String::from_utf8_lossy(&m.stderr)
                    )
                })
            };
            let (p, r) = (times(&produce, "bench-produce"), times(&consume, "bench-consume"));
            assert_eq!(
                p.records, w.records,
                "the Java peer produced {} records",
                p.records
            );
            (p, r)
        });
        Pass {
            produce,
            consume,
            jvm,
        }
    }
}
