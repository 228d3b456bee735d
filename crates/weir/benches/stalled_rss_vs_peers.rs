//! RSS over time of a stalled application: weir vs franz-go vs librdkafka, each as a consumer CLI.
//!
//! `cargo bench -p weir --bench stalled_rss_vs_peers` (about 8 minutes with the defaults; needs
//! `cargo build --release -p weir-cli` first, the franz-go peer and kcat, see scripts/setup-test-env). Starts its
//! own single-node Kafka (`weir_testkit::Kafka::start(Shape::Single)`), pre-fills a 32-partition topic with
//! `MIB_PER_PARTITION` MiB of 300-byte records per partition (franz-go, uncompressed), then, for each client,
//! `RUNS` times with the clients' order rotating every run:
//!
//! 1. spawns the client reading every partition from the start to the end of the topic, one value and a newline
//!    per record on its stdout, a pipe this process does not read for `STALL_SECS`: once the pipe (64 KiB) is
//!    full the client's writes block, which is exactly an application that stopped taking records, while its
//!    Kafka client goes on prefetching up to its limits;
//! 2. samples `VmRSS` from `/proc/PID/status` every 100 ms meanwhile; `VmHWM` at the stall's end is the exact
//!    peak of the stalled phase;
//! 3. then reads the pipe to its end, counting lines (asserted equal to the records in the topic), still
//!    sampling, until the client exits.
//!
//! The clients, the same command line for every run:
//! - weir: `weir -q consume -t T -o beginning -e -f '%s\n'` (the binary of `cargo build --release -p weir-cli`,
//!   or `$WEIR_CLI`);
//! - franz-go: the peer's `consume --count N --out values` (`$WEIR_FRANZ_GO` or `.peers/go/franz-go-peer`);
//! - librdkafka 2.16: `kcat -C -o beginning -e -q -f '%s\n'`, kcat's legacy (simple) consumer, every partition
//!   started into one shared queue.
//!
//! Two cases. **limited**: each client told to hold about 1 MiB per partition:
//! - weir `--partition-buffer 1048576` (high watermark of 1 MiB of memory per partition, records counted with
//!   their overhead; the default 64 MiB budget is above 32 × 1 MiB so it does not bind): 32 MiB buffered at most,
//!   plus at most one fetch response in decoding;
//! - franz-go `FetchMaxPartitionBytes` 1 MiB (its default) and `FetchMaxBytes` 32 MiB (default 50 MiB): franz-go
//!   buffers at most one fetch response per broker, here one broker, so 32 MiB of wire bytes at most;
//! - librdkafka `queued.max.messages.kbytes=32768` and `fetch.message.max.bytes=1048576` (its default, per
//!   partition and fetch). librdkafka 2.16's CONFIGURATION says the queue limit applies per partition for the
//!   legacy consumer ("may be overshot by fetch.message.max.bytes"), but kcat starts every partition into one
//!   shared queue, and the fetch decision reads the size of the queue a partition's queue forwards to: the limit
//!   binds the shared queue, i.e. the total (with 1024, in a trial at 4 MiB per partition, kcat held 6 MiB over
//!   its baseline in all, and drained 20 times slower than the others). So the total is set to 32 × 1 MiB. The
//!   same holds for `queued.min.messages` (default 100000), which binds first here: 100000 records of 300 B are
//!   29 MiB of values, so kcat's limited and default cases hold the same.
//!
//! **defaults**: no setting given (weir: 8 MiB per partition capped to the fair share of its 64 MiB budget, so
//! 2 MiB here and 64 MiB in all; franz-go: 1 MiB per partition, 50 MiB per fetch; librdkafka:
//! `queued.max.messages.kbytes` 65536 and `queued.min.messages` 100000, both binding kcat's shared queue).
//!
//! Every client also runs once per run over a 32-partition topic of one record per partition (not stalled), whose
//! peak RSS (`wait4`'s `ru_maxrss`) is its **baseline**: runtime, connections, metadata, code; "− baseline" below
//! is what the stall's buffering added on top.
//!
//! Printed: per run, and per case a table of medians [min–max]: peak RSS while stalled, baseline, stalled −
//! baseline, peak RSS while draining (sampled), drain time, and the ratio of each client's stalled peak to weir's;
//! for weir, the target "peak RSS of a stalled application ≤ its buffered bytes + 16 MiB", with the
//! configured bound as its buffered bytes (`weir consume` prints its buffers only when it ends, not while stalled).
//!
//! With `WEIR_BENCH_OUT=FILE`, appends per run one `series` line (`t_s`, `rss_mib`) and one `metrics` line
//! (`peak_rss_mib`: the run's whole peak, `stalled_peak_rss_mib`, `drain_peak_rss_mib`, `baseline_rss_mib`,
//! `drain_s`) in the shared benchmark results format.
//!
//! Env: `RUNS` (3), `STALL_SECS` (10), `MIB_PER_PARTITION` (8), `CASES` (`limited,defaults`), `CLIENTS`
//! (`weir,franz-go,librdkafka`), `WEIR_CLI`, `WEIR_FRANZ_GO`.

// Only the statistics of the shared bench helpers are used here (their weir children are not).
#[allow(dead_code)]
mod clients;

use clients::stats;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_testkit::bench_env::{list as env_list, num as env_num};
use weir_testkit::peers::franz_go::{run_measured, FranzGo, Input};
use weir_testkit::{bench_out, repo_root, unique_name, Kafka, Kcat, Shape};

const BENCH: &str = "stalled_rss_vs_peers";
const PARTITIONS: i32 = 32;
/// Bytes of every record value.
const VALUE: usize = 300;
/// The pre-fill writes this many records to one partition, then the next.
const PREFILL_CHUNK: u64 = 1000;
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How long one client may take to drain the topic once read.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);
const MIB: f64 = (1 << 20) as f64;
/// The allowance over the buffered bytes for a stalled application's peak RSS.
const TARGET_SLACK_MIB: f64 = 16.0;

/// The weir CLI: `$WEIR_CLI`, else `release/weir` under `$CARGO_TARGET_DIR` or the repository's `target/`.
fn weir_cli() -> PathBuf {
    let bin = std::env::var_os("WEIR_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo_root().join("target"))
                .join("release/weir")
        });
    assert!(
        bin.is_file(),
        "{BENCH}: {} not found: run `cargo build --release -p weir-cli` (same CARGO_TARGET_DIR) or set WEIR_CLI",
        bin.display()
    );
    bin
}

/// One comparison: how every client is configured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    /// About 1 MiB per partition for every client.
    Limited,
    /// Every client at its defaults.
    Defaults,
}

impl Case {
    fn parse(s: &str) -> Case {
        match s {
            "limited" => Case::Limited,
            "defaults" => Case::Defaults,
            _ => panic!("{BENCH}: CASES: unknown case {s:?} (limited, defaults)"),
        }
    }

    fn label(self, stall: u64) -> String {
        match self {
            Case::Limited => {
                format!("{PARTITIONS} partitions x ~1 MiB per-partition limit, stalled {stall} s")
            }
            Case::Defaults => format!("{PARTITIONS} partitions, client defaults, stalled {stall} s"),
        }
    }

    /// What weir may buffer in this case (its configured bound, bytes of memory).
    fn weir_buffered_bound(self) -> u64 {
        match self {
            Case::Limited => PARTITIONS as u64 * (1 << 20),
            // 8 MiB per partition, capped to the fair share of the 64 MiB budget.
            Case::Defaults => 64 << 20,
        }
    }
}

/// The clients compared, and how each is started.
struct Clients {
    weir: PathBuf,
    franz_go: FranzGo,
    kcat: Kcat,
}

impl Clients {
    /// The consumer command of `client` reading `topic` (holding `count` records) to its end.
    fn command(&self, client: &str, case: Case, bootstrap: &str, topic: &str, count: u64) -> Command {
        match client {
            "weir" => {
                let mut cmd = Command::new(&self.weir);
                let args = [
                    "-q",
                    "-b",
                    bootstrap,
                    "consume",
                    "-t",
                    topic,
                    "-o",
                    "beginning",
                    "-e",
                ];
                cmd.args(args).args(["-f", "%s\\n"]);
                if case == Case::Limited {
                    cmd.args(["--partition-buffer", "1048576"]);
                }
                cmd
            }
            "franz-go" => {
                let mut cmd = self.franz_go.consume_cmd(bootstrap, topic, count);
                if case == Case::Limited {
                    cmd.args(["--fetch-max-partition-bytes", "1048576"])
                        .args(["--fetch-max-bytes", "33554432"]);
                }
                cmd
            }
            "librdkafka" => {
                let mut cmd = self.kcat.command();
                let args = ["-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q"];
                cmd.args(args).args(["-f", "%s\\n"]);
                if case == Case::Limited {
                    // kcat's shared queue makes this limit the total (module documentation): 32 x 1 MiB.
                    cmd.args(["-X", "queued.max.messages.kbytes=32768"])
                        .args(["-X", "fetch.message.max.bytes=1048576"]);
                }
                cmd
            }
            _ => panic!("{BENCH}: CLIENTS: unknown client {client:?} (weir, franz-go, librdkafka)"),
        }
    }
}

/// `/proc/PID/status` fields `VmRSS` and `VmHWM`, bytes; `None` once the process is gone (or a zombie).
fn rss_and_hwm(pid: u32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// One stalled run of one client.
struct Run {
    /// Seconds since spawn, and RSS (MiB) then.
    t_s: Vec<f64>,
    rss_mib: Vec<f64>,
    /// `VmHWM` at the stall's end: the exact peak of the stalled phase.
    stalled_peak_mib: f64,
    /// The largest `VmRSS` sampled while draining.
    drain_peak_mib: f64,
    /// The last `VmHWM` read: the run's peak (up to the last 100 ms before the exit).
    peak_mib: f64,
    drain_s: f64,
    lines: u64,
}

/// The RSS series of one child, and the highest `VmHWM` read.
struct Sampler {
    pid: u32,
    started: Instant,
    t_s: Vec<f64>,
    rss_mib: Vec<f64>,
    hwm: u64,
}

impl Sampler {
    /// Takes one sample; returns `VmRSS` (bytes), or `None` once the child is gone.
    fn sample(&mut self) -> Option<u64> {
        let (rss, hwm) = rss_and_hwm(self.pid)?;
        self.hwm = self.hwm.max(hwm);
        self.t_s.push(self.started.elapsed().as_secs_f64());
        self.rss_mib.push(rss as f64 / MIB);
        Some(rss)
    }
}

/// Reads `child`'s stderr to its end on a thread (a full stderr pipe must not block it).
fn drain_stderr(child: &mut Child) -> std::thread::JoinHandle<Vec<u8>> {
    let mut err = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    })
}

/// Runs `cmd` stalled for `stall`, then drained; see the module documentation.
fn stalled_run(mut cmd: Command, stall: Duration) -> Run {
    let desc = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{BENCH}: cannot run {desc}: {e}"));
    let pid = child.id();
    let err_t = drain_stderr(&mut child);
    let mut out = child.stdout.take().expect("piped stdout");
    let mut samples = Sampler {
        pid,
        started,
        t_s: Vec::new(),
        rss_mib: Vec::new(),
        hwm: 0,
    };

    // Stalled: nobody reads stdout.
    let mut tick = started;
    while started.elapsed() < stall {
        if samples.sample().is_none() {
            let status = child.wait().expect("wait");
            panic!(
                "{BENCH}: {desc} exited while stalled ({status}): {}",
                String::from_utf8_lossy(&err_t.join().unwrap_or_default())
            );
        }
        tick += SAMPLE_EVERY;
        std::thread::sleep(tick.saturating_duration_since(Instant::now()));
    }
    let (_, stalled_hwm) = rss_and_hwm(pid).expect("the client is running");
    let stalled_peak_mib = stalled_hwm.max(samples.hwm) as f64 / MIB;

    // Draining: read stdout to its end on a thread, sampling here until the client exits.
    let drain_started = Instant::now();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut lines = 0u64;
        loop {
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
            }
        }
        lines
    });
    let mut drain_peak = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if drain_started.elapsed() > DRAIN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{BENCH}: {desc} did not finish draining within {DRAIN_TIMEOUT:?}");
        }
        if let Some(rss) = samples.sample() {
            drain_peak = drain_peak.max(rss);
        }
        tick += SAMPLE_EVERY;
        std::thread::sleep(tick.saturating_duration_since(Instant::now()));
    };
    let drain_s = drain_started.elapsed().as_secs_f64();
    let lines = reader.join().expect("stdout reader");
    let stderr = err_t.join().unwrap_or_default();
    assert!(
        status.success(),
        "{BENCH}: {desc} failed ({status}): {}",
        String::from_utf8_lossy(&stderr)
    );
    Run {
        peak_mib: samples.hwm as f64 / MIB,
        t_s: samples.t_s,
        rss_mib: samples.rss_mib,
        stalled_peak_mib,
        drain_peak_mib: drain_peak as f64 / MIB,
        drain_s,
        lines,
    }
}

/// The client's peak RSS reading a 32-partition topic of one record per partition, not stalled (MiB).
fn baseline(clients: &Clients, client: &str, case: Case, bootstrap: &str, topic: &str) -> f64 {
    let cmd = clients.command(client, case, bootstrap, topic, PARTITIONS as u64);
    let m = run_measured(cmd, Input::Null, true, Duration::from_secs(120));
    assert!(
        m.status.success(),
        "{BENCH}: {client} baseline failed ({}): {}",
        m.status,
        String::from_utf8_lossy(&m.stderr)
    );
    assert_eq!(
        m.lines, PARTITIONS as u64,
        "{BENCH}: {client} baseline: records read"
    );
    m.max_rss_kib as f64 / 1024.0
}

/// What one case gathered for one client over the runs.
#[derive(Default)]
struct Samples {
    stalled_peak: Vec<f64>,
    baseline: Vec<f64>,
    over_baseline: Vec<f64>,
    drain_peak: Vec<f64>,
    drain_s: Vec<f64>,
}

fn fmt_stat(v: &[f64], digits: usize) -> String {
    let (m, lo, hi) = stats(v);
    format!("{m:.digits$} [{lo:.digits$}–{hi:.digits$}]")
}

fn main() {
    let runs = env_num("RUNS", 3) as usize;
    let stall_secs = env_num("STALL_SECS", 10);
    let stall = Duration::from_secs(stall_secs);
    let mib_per_partition = env_num("MIB_PER_PARTITION", 8);
    let cases: Vec<Case> = env_list("CASES", "limited,defaults")
        .iter()
        .map(|s| Case::parse(s))
        .collect();
    let names = env_list("CLIENTS", "weir,franz-go,librdkafka");
    let clients = Clients {
        weir: weir_cli(),
        franz_go: FranzGo::require(),
        kcat: Kcat::require(),
    };
    for n in &names {
        // Unknown names fail here, before the broker starts.
        let _ = clients.command(n, Case::Defaults, "x", "x", 1);
    }
    // Records per partition: MIB_PER_PARTITION MiB of values, in whole pre-fill chunks.
    let per_partition = ((mib_per_partition << 20) / VALUE as u64).div_ceil(PREFILL_CHUNK) * PREFILL_CHUNK;
    let total = per_partition * PARTITIONS as u64;

    eprintln!("starting Apache Kafka (single node) ...");
    let kafka = Kafka::start(Shape::Single);
    let b = kafka.bootstrap();
    println!(
        "{BENCH}: Apache Kafka {} (single node, {b}); weir CLI {}; franz-go {}; kcat: {}; {} CPUs; {runs} runs",
        kafka.version(),
        clients.weir.display(),
        clients.franz_go.version(),
        clients.kcat.version(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let topic = unique_name("stalled");
    kafka.create_topic(&topic, PARTITIONS);
    let started = Instant::now();
    let fill = run_measured(
        clients
            .franz_go
            .produce_chunked_cmd(&b, &topic, total, VALUE, PREFILL_CHUNK, PARTITIONS),
        Input::Null,
        false,
        Duration::from_secs(1200),
    );
    assert!(
        fill.status.success(),
        "{BENCH}: pre-fill failed: {}",
        String::from_utf8_lossy(&fill.stderr)
    );
    let tiny = unique_name("stalled-baseline");
    kafka.create_topic(&tiny, PARTITIONS);
    let fill = run_measured(
        clients
            .franz_go
            .produce_chunked_cmd(&b, &tiny, PARTITIONS as u64, VALUE, 1, PARTITIONS),
        Input::Null,
        false,
        Duration::from_secs(120),
    );
    assert!(fill.status.success(), "{BENCH}: baseline pre-fill failed");
    println!(
        "pre-filled {PARTITIONS} partitions x {per_partition} records x {VALUE} B = {:.0} MiB of values in {:.1} s \
         (franz-go, uncompressed); stalled {stall_secs} s, RSS sampled every {} ms",
        total as f64 * VALUE as f64 / MIB,
        started.elapsed().as_secs_f64(),
        SAMPLE_EVERY.as_millis()
    );

    for &case in &cases {
        let label = case.label(stall_secs);
        println!("\n== {label}");
        let mut samples: Vec<Samples> = names.iter().map(|_| Samples::default()).collect();
        for run in 0..runs {
            for k in 0..names.len() {
                let c = (run + k) % names.len();
                let client = names[c].as_str();
                let base = baseline(&clients, client, case, &b, &tiny);
                let r = stalled_run(clients.command(client, case, &b, &topic, total), stall);
                assert_eq!(
                    r.lines, total,
                    "{BENCH}: {client} printed {} lines, the topic holds {total} records",
                    r.lines
                );
                println!(
                    "  run {} {:<10} stalled peak {:>6.1} MiB (baseline {:>5.1}, +{:>5.1}) | draining peak {:>6.1} MiB, \
                     {:.1} s | run peak {:>6.1} MiB",
                    run + 1,
                    client,
                    r.stalled_peak_mib,
                    base,
                    r.stalled_peak_mib - base,
                    r.drain_peak_mib,
                    r.drain_s,
                    r.peak_mib
                );
                let s = &mut samples[c];
                s.stalled_peak.push(r.stalled_peak_mib);
                s.baseline.push(base);
                s.over_baseline.push(r.stalled_peak_mib - base);
                s.drain_peak.push(r.drain_peak_mib);
                s.drain_s.push(r.drain_s);
                let params = [
                    ("partitions", PARTITIONS.into()),
                    ("record_size", VALUE.into()),
                    ("mib_per_partition", mib_per_partition.into()),
                    ("stall_s", stall_secs.into()),
                ];
                bench_out::series(
                    BENCH,
                    &label,
                    client,
                    run + 1,
                    &params,
                    &[("t_s", &r.t_s), ("rss_mib", &r.rss_mib)],
                );
                bench_out::record(
                    BENCH,
                    &label,
                    client,
                    run + 1,
                    &params,
                    &[
                        ("peak_rss_mib", r.peak_mib),
                        ("stalled_peak_rss_mib", r.stalled_peak_mib),
                        ("drain_peak_rss_mib", r.drain_peak_mib),
                        ("baseline_rss_mib", base),
                        ("drain_s", r.drain_s),
                    ],
                );
            }
        }
        summary(&label, case, &names, &samples, runs);
    }
}

fn summary(label: &str, case: Case, names: &[String], samples: &[Samples], runs: usize) {
    println!("\n{label}: medians [min–max] of {runs} runs, MiB (drain: seconds)");
    println!(
        "| client | peak RSS stalled | baseline | stalled − baseline | peak RSS draining | drain s | stalled peak / weir's |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let weir = names
        .iter()
        .position(|n| n == "weir")
        .map(|i| stats(&samples[i].stalled_peak).0);
    for (n, s) in names.iter().zip(samples) {
        let ratio = weir.map_or("-".into(), |w| format!("{:.2}x", stats(&s.stalled_peak).0 / w));
        println!(
            "| {n} | {} | {} | {} | {} | {} | {ratio} |",
            fmt_stat(&s.stalled_peak, 1),
            fmt_stat(&s.baseline, 1),
            fmt_stat(&s.over_baseline, 1),
            fmt_stat(&s.drain_peak, 1),
            fmt_stat(&s.drain_s, 1)
        );
    }
    if let Some(peak) = weir {
        let bound = case.weir_buffered_bound() as f64 / MIB;
        let target = bound + TARGET_SLACK_MIB;
        println!(
            "weir: target peak RSS stalled ≤ buffered + {TARGET_SLACK_MIB:.0} MiB = {bound:.0} (configured bound) + \
             {TARGET_SLACK_MIB:.0} = {target:.0} MiB; median {peak:.1} MiB: {}",
            if peak <= target { "met" } else { "MISSED" }
        );
    }
}
