//! The franz-go peer (`crates/weir-testkit/peers/go`): a small Go program on github.com/twmb/franz-go (the
//! version pinned in its `go.mod`), built by `scripts/setup-test-env franz-go` into `$REPO/.peers/go`.
//!
//! * interop: [`FranzGo::produce_records`] writes given records to given partitions and returns their offsets;
//!   [`FranzGo::consume_records`] reads a topic from the start (every partition, no group) and returns every
//!   record with its key, value, headers, partition, offset and timestamp;
//! * benchmarks: [`FranzGo::produce_cmd`], [`FranzGo::consume_cmd`], [`FranzGo::pressure_cmd`] build the
//!   commands, and [`run_measured`] runs any child (franz-go, kcat, weir) and reports its wall time, CPU time
//!   and peak RSS.
//!
//! CPU time and peak RSS come from the kernel's accounting of the child itself: [`run_measured`] reaps it with
//! `wait4(2)`, whose `struct rusage` holds the child's user and system time and its `ru_maxrss` (the peak
//! resident set, KiB). This needs no `/usr/bin/time`, counts only that process (not the parent or siblings),
//! and is the same for every client measured.
//!
//! ```no_run
//! use weir_testkit::peers::franz_go::{FranzGo, PeerRecord};
//! use weir_testkit::{unique_name, Kafka};
//!
//! let kafka = Kafka::shared();
//! let topic = unique_name("fg");
//! kafka.create_topic(&topic, 2);
//! let fg = FranzGo::require();
//! let offsets = fg.produce_records(&kafka.bootstrap(), &topic, &[PeerRecord::new(1, Some(b"k"), Some(b"v"))]);
//! assert_eq!(offsets, vec![(1, 0)]);
//! let got = fg.consume_records(&kafka.bootstrap(), &topic, 1);
//! assert_eq!(got[0].value.as_deref(), Some(&b"v"[..]));
//! ```

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::process::{feed_stdin, read_to_end, run_with_timeout, TOOL_TIMEOUT};
use crate::{repo_root, SETUP_HINT};

/// The franz-go peer binary.
#[derive(Debug, Clone)]
pub struct FranzGo {
    bin: PathBuf,
    version: String,
}

impl FranzGo {
    /// `$WEIR_FRANZ_GO`, else `$REPO/.peers/go/franz-go-peer`, if it runs; `None` if missing. A binary older than
    /// its sources is rebuilt first (by `peers/go/build`, which needs `go`).
    pub fn find() -> Option<FranzGo> {
        static FOUND: OnceLock<Option<FranzGo>> = OnceLock::new();
        FOUND.get_or_init(FranzGo::probe).clone()
    }

    fn probe() -> Option<FranzGo> {
        let bin = match std::env::var_os("WEIR_FRANZ_GO").filter(|p| !p.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => {
                let bin = repo_root().join(".peers/go/franz-go-peer");
                if bin.exists() && stale(&bin) {
                    let script = repo_root().join("crates/weir-testkit/peers/go/build");
                    let out = run_with_timeout(Command::new(script), None, Duration::from_secs(600));
                    if !out.status.success() {
                        panic!(
                            "weir-testkit: rebuilding the franz-go peer failed: {}{}",
                            String::from_utf8_lossy(&out.stdout),
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                }
                bin
            }
        };
        if !bin.is_file() {
            return None;
        }
        let out = Command::new(&bin)
            .arg("version")
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && version.starts_with('v')).then_some(FranzGo { bin, version })
    }

    /// Like [`FranzGo::find`], but panics with setup instructions when the peer is missing.
    pub fn require() -> FranzGo {
        FranzGo::find().unwrap_or_else(|| {
            panic!(
                "weir-testkit: the franz-go peer was not found ($WEIR_FRANZ_GO or {}/.peers/go/franz-go-peer): \
                 {SETUP_HINT}, or `scripts/setup-test-env franz-go` for this peer alone (needs Go 1.26)",
                repo_root().display()
            )
        })
    }

    /// Path of the peer binary.
    pub fn path(&self) -> &Path {
        &self.bin
    }

    /// The franz-go module version the peer was built with, e.g. `v1.22.3`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// A command running the peer (add a subcommand and its flags).
    pub fn command(&self) -> Command {
        Command::new(&self.bin)
    }

    /// `produce --brokers B --topic T --count N --size S` (idempotent, acks=all, linger 5 ms, no compression,
    /// franz-go's sticky partitioner); with `round_robin`, records go to the partitions in turn. Prints
    /// `{"records":N,"seconds":X}` on stdout.
    pub fn produce_cmd(
        &self,
        brokers: &str,
        topic: &str,
        count: u64,
        size: usize,
        round_robin: bool,
    ) -> Command {
        let mut cmd = self.command();
        cmd.args(["produce", "--brokers", brokers, "--topic", topic])
            .args(["--count", &count.to_string(), "--size", &size.to_string()]);
        if round_robin {
            cmd.arg("--round-robin");
        }
        cmd
    }

    /// `produce --count N --size S --chunk C --partitions P`: record `i` goes to partition `(i / C) % P`, so
    /// that `N = k·C·P` gives every partition exactly `k·C` records, written in batches of up to `C`.
    pub fn produce_chunked_cmd(
        &self,
        brokers: &str,
        topic: &str,
        count: u64,
        size: usize,
        chunk: u64,
        partitions: i32,
    ) -> Command {
        let mut cmd = self.produce_cmd(brokers, topic, count, size, false);
        cmd.args([
            "--chunk",
            &chunk.to_string(),
            "--partitions",
            &partitions.to_string(),
        ]);
        cmd
    }

    /// `produce --input -`: one record per line of stdin (the newline stripped), otherwise as
    /// [`FranzGo::produce_cmd`].
    pub fn produce_lines_cmd(&self, brokers: &str, topic: &str) -> Command {
        let mut cmd = self.command();
        cmd.args(["produce", "--brokers", brokers, "--topic", topic, "--input", "-"]);
        cmd
    }

    /// `consume --brokers B --topic T --count N --out values`: every partition from the start (no group) until
    /// `count` records, each value and a newline on stdout, the summary on stderr.
    pub fn consume_cmd(&self, brokers: &str, topic: &str, count: u64) -> Command {
        let mut cmd = self.command();
        cmd.args(["consume", "--brokers", brokers, "--topic", topic])
            .args(["--count", &count.to_string(), "--out", "values"]);
        cmd
    }

    /// `pressure ...`: the bounded-buffer workload (see `peers/go/pressure.go`); prints one JSON object, read
    /// it with [`json_number`].
    pub fn pressure_cmd(&self, brokers: &str, topic: &str, p: &Pressure) -> Command {
        let mut cmd = self.command();
        cmd.args(["pressure", "--brokers", brokers, "--topic", topic])
            .args(["--partitions", &p.partitions.to_string()])
            .args(["--workers", &p.workers.to_string()])
            .args(["--buffer", &p.buffer.to_string()])
            .args(["--resume-below", &p.resume_below.to_string()])
            .args(["--duration", &format!("{}ms", p.duration.as_millis())])
            .args(["--warmup", &format!("{}ms", p.warmup.as_millis())])
            .args(["--work-rounds", &p.work_rounds.to_string()])
            .args(["--poll-max", &p.poll_max.to_string()])
            .args(["--fetch-max-wait-ms", &p.fetch_max_wait.as_millis().to_string()]);
        cmd
    }

    /// Produces `records` in order, each to its own partition (`PeerRecord::partition`; offsets and timestamps
    /// of the input are ignored), idempotent with acks=all, and returns `(partition, offset)` of each, in input
    /// order. Panics if the peer fails.
    pub fn produce_records(&self, brokers: &str, topic: &str, records: &[PeerRecord]) -> Vec<(i32, i64)> {
        self.produce_records_compressed(brokers, topic, records, "none")
    }

    /// [`FranzGo::produce_records`] with batches compressed by `codec` (`none`, `gzip`, `snappy`, `lz4` or
    /// `zstd`).
    pub fn produce_records_compressed(
        &self,
        brokers: &str,
        topic: &str,
        records: &[PeerRecord],
        codec: &str,
    ) -> Vec<(i32, i64)> {
        let mut input = String::new();
        for r in records {
            input.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                r.partition,
                b64_opt(r.key.as_deref()),
                b64_opt(r.value.as_deref()),
                headers_field(&r.headers)
            ));
        }
        let mut cmd = self.command();
        cmd.args([
            "produce-records",
            "--brokers",
            brokers,
            "--topic",
            topic,
            "--compression",
            codec,
        ]);
        let out = run_with_timeout(cmd, Some(input.as_bytes()), TOOL_TIMEOUT);
        check("produce-records", topic, &out.status, &out.stderr);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let (p, o) = l
                    .split_once('\t')
                    .unwrap_or_else(|| panic!("weir-testkit: franz-go produce-records printed {l:?}"));
                (p.parse().expect("partition"), o.parse().expect("offset"))
            })
            .collect()
    }

    /// Reads `count` records of `topic` from the start of every partition (direct assignment, no group), in the
    /// order franz-go delivered them. Panics if the peer fails or does not get `count` records within 60 s.
    pub fn consume_records(&self, brokers: &str, topic: &str, count: u64) -> Vec<PeerRecord> {
        let mut cmd = self.command();
        cmd.args(["consume", "--brokers", brokers, "--topic", topic])
            .args(["--count", &count.to_string(), "--out", "records"])
            .args(["--fetch-max-wait-ms", "100"]);
        let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
        check("consume", topic, &out.status, &out.stderr);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(PeerRecord::parse)
            .collect()
    }
}

fn check(what: &str, topic: &str, status: &ExitStatus, stderr: &[u8]) {
    if !status.success() {
        panic!(
            "weir-testkit: franz-go {what} on {topic} failed ({status}): {}",
            String::from_utf8_lossy(stderr)
        );
    }
}

/// Whether a source of the peer is newer than its binary.
fn stale(bin: &Path) -> bool {
    let Ok(built) = bin.metadata().and_then(|m| m.modified()) else {
        return true;
    };
    let dir = repo_root().join("crates/weir-testkit/peers/go");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        (name.ends_with(".go") || name == "go.mod" || name == "go.sum")
            && e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t > built)
    })
}

/// Settings of the pressure workload (the same for the weir, franz-go and librdkafka implementations).
#[derive(Debug, Clone)]
pub struct Pressure {
    /// Partitions of the topic (all consumed from offset 0).
    pub partitions: i32,
    /// Processing threads (goroutines).
    pub workers: usize,
    /// A partition whose application buffer holds this many records or more is paused.
    pub buffer: usize,
    /// A paused partition is resumed once its buffer drains below this.
    pub resume_below: usize,
    /// Run time, warm-up included.
    pub duration: Duration,
    /// Not measured.
    pub warmup: Duration,
    /// FNV-1a passes over each value (the per-record work).
    pub work_rounds: usize,
    /// Records per poll.
    pub poll_max: usize,
    /// Fetch max wait, ms.
    pub fetch_max_wait: Duration,
}

/// One record as the peer reads or writes it. `offset` and `timestamp` are -1 for records to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRecord {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl PeerRecord {
    /// A record to produce to `partition`, without headers.
    pub fn new(partition: i32, key: Option<&[u8]>, value: Option<&[u8]>) -> PeerRecord {
        PeerRecord {
            partition,
            offset: -1,
            timestamp: -1,
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, key: &str, value: Option<&[u8]>) -> PeerRecord {
        self.headers.push((key.to_owned(), value.map(<[u8]>::to_vec)));
        self
    }

    /// One line of the peer's record format: `PARTITION\tOFFSET\tTIMESTAMP\tKEY\tVALUE\tHEADERS`.
    fn parse(line: &str) -> PeerRecord {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 6, "weir-testkit: franz-go printed {line:?}");
        let headers = if f[5].is_empty() {
            Vec::new()
        } else {
            f[5].split(',')
                .map(|h| {
                    let (k, v) = h.split_once(':').expect("header KEY:VALUE");
                    let k = String::from_utf8(unb64(k).expect("header key is not null"))
                        .expect("utf-8 header key");
                    (k, unb64(v))
                })
                .collect()
        };
        PeerRecord {
            partition: f[0].parse().expect("partition"),
            offset: f[1].parse().expect("offset"),
            timestamp: f[2].parse().expect("timestamp"),
            key: unb64(f[3]),
            value: unb64(f[4]),
            headers,
        }
    }
}

fn headers_field(headers: &[(String, Option<Vec<u8>>)]) -> String {
    headers
        .iter()
        .map(|(k, v)| format!("{}:{}", b64(k.as_bytes()), b64_opt(v.as_deref())))
        .collect::<Vec<_>>()
        .join(",")
}

/// Standard base64 with padding.
fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// `~` for null, else base64.
fn b64_opt(data: Option<&[u8]>) -> String {
    data.map_or_else(|| "~".to_owned(), b64)
}

/// The inverse of [`b64_opt`]; panics on malformed input.
fn unb64(s: &str) -> Option<Vec<u8>> {
    (s != "~").then(|| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap_or_else(|e| panic!("weir-testkit: bad base64 {s:?}: {e}"))
    })
}

/// The number after `"key":` in a flat JSON object (the peers' summaries), if any.
pub fn json_number(text: &str, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\":");
    let at = text.rfind(&pat)? + pat.len();
    let rest = text[at..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// What a child is given on stdin in [`run_measured`].
#[derive(Debug)]
pub enum Input<'a> {
    /// `/dev/null`.
    Null,
    /// These bytes, written from a thread.
    Bytes(&'a [u8]),
    /// This file, read by the child directly.
    File(&'a Path),
}

/// A child's resource use, from `wait4(2)`.
#[derive(Debug, Clone)]
pub struct Measured {
    pub status: ExitStatus,
    /// From spawn to reaping, measured by the parent.
    pub wall: Duration,
    /// User CPU seconds of the child.
    pub user: f64,
    /// System CPU seconds of the child.
    pub sys: f64,
    /// Peak resident set size of the child, KiB (`ru_maxrss`).
    pub max_rss_kib: u64,
    /// The child's stdout (empty with `count_lines`).
    pub stdout: Vec<u8>,
    /// Newlines on stdout (counted with `count_lines`, else 0).
    pub lines: u64,
    pub stderr: Vec<u8>,
}

impl Measured {
    /// User + system CPU seconds.
    pub fn cpu(&self) -> f64 {
        self.user + self.sys
    }
}

#[repr(C)]
struct Timeval {
    sec: i64,
    usec: i64,
}

/// `struct rusage` on 64-bit Linux: two timevals, then 14 longs (`ru_maxrss` first).
#[repr(C)]
struct Rusage {
    utime: Timeval,
    stime: Timeval,
    longs: [i64; 14],
}

extern "C" {
    // From the C library std already links against.
    fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut Rusage) -> i32;
}
const WNOHANG: i32 = 1;

/// Runs `cmd` (stdin from `input`, stdout captured or only its newlines counted with `count_lines`, stderr
/// captured) and reaps it with `wait4`, which gives the child's own CPU time and peak RSS. Kills the child and
/// panics after `timeout`. The caller checks `status`.
pub fn run_measured(mut cmd: Command, input: Input<'_>, count_lines: bool, timeout: Duration) -> Measured {
    let mut bytes_in = None;
    cmd.stdin(match input {
        Input::Null => Stdio::null(),
        Input::Bytes(b) => {
            bytes_in = Some(b.to_vec());
            Stdio::piped()
        }
        Input::File(p) => Stdio::from(
            File::open(p).unwrap_or_else(|e| panic!("weir-testkit: cannot open {}: {e}", p.display())),
        ),
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let desc = format!("{cmd:?}");
    let started = Instant::now();
    // Reaped by the wait4 below (which std's `wait` would not let us read the rusage of).
    #[allow(clippy::zombie_processes)]
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("weir-testkit: cannot run {desc}: {e}"));
    let pid = child.id() as i32;
    let writer = bytes_in.map(|data| feed_stdin(&mut child, data));
    let mut out = child.stdout.take().expect("piped stdout");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let mut lines = 0u64;
        if count_lines {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            }
        } else {
            let _ = out.read_to_end(&mut v);
        }
        (v, lines)
    });
    let err_t = read_to_end(child.stderr.take().expect("piped stderr"));
    let deadline = started + timeout;
    let mut status = 0i32;
    let mut ru = Rusage {
        utime: Timeval { sec: 0, usec: 0 },
        stime: Timeval { sec: 0, usec: 0 },
        longs: [0; 14],
    };
    let mut killed = false;
    loop {
        // SAFETY: plain FFI with pointers to live locals; the child is ours and not reaped by anyone else
        // (std's `Child` is never waited on here).
        let r = unsafe { wait4(pid, &mut status, WNOHANG, &mut ru) };
        if r == pid {
            break;
        }
        if r < 0 {
            panic!(
                "weir-testkit: wait4 for {desc}: {}",
                std::io::Error::last_os_error()
            );
        }
        if !killed && Instant::now() >= deadline {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let wall = started.elapsed();
    if let Some(w) = writer {
        let _ = w.join();
    }
    let (stdout, lines) = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    if killed {
        panic!(
            "weir-testkit: {desc} did not finish within {timeout:?}; stderr: {}",
            String::from_utf8_lossy(&stderr)
        );
    }
    use std::os::unix::process::ExitStatusExt;
    Measured {
        status: ExitStatus::from_raw(status),
        wall,
        user: ru.utime.sec as f64 + ru.utime.usec as f64 / 1e6,
        sys: ru.stime.sec as f64 + ru.stime.usec as f64 / 1e6,
        max_rss_kib: ru.longs[0] as u64,
        stdout,
        lines,
        stderr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            &[0, 255, 128, 7],
        ] {
            assert_eq!(unb64(&b64(data)).unwrap(), data);
        }
        assert_eq!(b64(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64(b"fo"), "Zm8=");
        assert_eq!(unb64("~"), None);
    }

    #[test]
    fn json_numbers() {
        let s = r#"{"records":1000,"seconds":1.5e-3,"x":-2}"#;
        assert_eq!(json_number(s, "records"), Some(1000.0));
        assert_eq!(json_number(s, "seconds"), Some(0.0015));
        assert_eq!(json_number(s, "x"), Some(-2.0));
        assert_eq!(json_number(s, "y"), None);
    }

    #[test]
    fn measures_a_child() {
        let mut cmd = Command::new("/bin/sh");
        cmd.args([
            "-c",
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; printf 'a\\nb\\n'",
        ]);
        let m = run_measured(cmd, Input::Null, true, Duration::from_secs(30));
        assert!(m.status.success());
        assert_eq!(m.lines, 2);
        assert!(m.cpu() > 0.0, "{m:?}");
        assert!(m.max_rss_kib > 0, "{m:?}");
    }
}
