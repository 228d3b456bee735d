//! What TLS and SASL_SSL cost weir and librdkafka, side by side on one broker.
//!
//! `cargo bench -p weir --bench vs_peers_tls` (about 1 minute on 2 cores with `RUNS=3`, 2.5 minutes with
//! `RUNS=9`). Starts its own single-node Kafka with TLS and SASL listeners
//! (`weir_testkit::Kafka::start_secure`: no client certificate asked for on `SSL`, a SCRAM user for
//! `SASL_SSL`), then, for each listener in [`PLAINTEXT`, `SSL`, `SASL_SSL` with SCRAM-SHA-512], the workload
//! of `vs_peers` section a: **produce, then consume, `N` records x 100 B** on a fresh 6-partition topic per
//! client, listener and run, with
//!
//! - weir: this binary re-executed as a child (`WEIR_VS_PEERS_TLS_CHILD=produce|consume`), the weir
//!   `Producer` (pipelined sends, at most 256k unacknowledged) and the weir `Consumer` (all partitions
//!   assigned at the log start, `poll(16384, 1 s)`), default settings plus the security settings through
//!   `set` (`security.protocol`, `ssl.ca.location`, `sasl.mechanism`, `sasl.username`, `sasl.password`);
//! - librdkafka 2.16 (kcat): `kcat -P -X linger.ms=5 -X enable.idempotence=true -X acks=all` and
//!   `kcat -C -o beginning -e -q`, with the same settings as `-X` (`sasl.mechanisms` for the mechanism).
//!
//! Idempotent, acks=all, linger 5 ms, no compression for both. Every client runs as a child process of this
//! one; wall time is measured here, CPU time (user + sys) and peak RSS come from `wait4(2)` on the child
//! (`weir_testkit::peers::franz_go::run_measured`). The broker's CPU (its side of TLS included) is not part
//! of the client's figures; it is shown beside them (the broker JVM's user + sys from `/proc/PID/stat`
//! between the child's spawn and its reaping). Each of the 6 (client, listener) pairs runs `RUNS` times,
//! their order rotated every run; the summary gives medians and [min–max], then each client's TLS / plaintext
//! ratios and CPU deltas, weir / librdkafka per listener, and whether TLS costs weir no more CPU than it
//! costs librdkafka.
//!
//! This file copies the measuring helpers and the weir children of `vs_peers.rs` (section a): the two benches
//! are separate binaries.
//!
//! Env: `RUNS` (3), `N` (1000000), `VS_PEERS_VERBOSE=1` (print the children's stderr), `HOLD=FILE` (after the
//! measurements, if any: `RUNS=0` skips them, keep the broker up until `FILE` is deleted, with 8 empty topics
//! and, in `FILE`, the listeners, the settings and how to start a weir child: for profiling by hand, see
//! [`hold`]).

// Only the weir children, the input and the statistics of the shared bench helpers are used here.
#[allow(dead_code)]
mod clients;

use clients::{check, child_consume, child_produce, median, stats, write_input, VALUE};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use weir_testkit::bench_env::num as env_num;
use weir_testkit::peers::franz_go::{run_measured, Input, Measured};
use weir_testkit::{unique_name, Kafka, Kcat, SecureOptions, SecurityProtocol, Shape};

const CHILD_ENV: &str = "WEIR_VS_PEERS_TLS_CHILD";
const PARTITIONS: i32 = 6;
/// The SCRAM user of the `SASL_SSL` runs.
const USER: (&str, &str) = ("bench", "bench-secret");
const MECHANISM: &str = "SCRAM-SHA-512";

const LISTENERS: [SecurityProtocol; 3] = [
    SecurityProtocol::Plaintext,
    SecurityProtocol::Ssl,
    SecurityProtocol::SaslSsl,
];
const CLIENTS: [&str; 2] = ["weir", "librdkafka"];
const JOBS: [&str; 2] = ["produce", "consume"];

fn verbose() -> bool {
    std::env::var("VS_PEERS_VERBOSE").is_ok_and(|v| v == "1")
}

fn main() {
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        let args: Vec<String> = std::env::args().skip(1).collect();
        child(&mode, &args);
        return;
    }
    let runs = env_num("RUNS", 3) as usize;
    let n = env_num("N", 1_000_000);
    let kcat = Kcat::require();
    for feature in ["ssl", "sasl_scram"] {
        assert!(
            kcat.version().contains(feature),
            "vs_peers_tls: kcat's librdkafka lacks {feature}: {}",
            kcat.version()
        );
    }

    eprintln!("starting Apache Kafka (single node, TLS and SASL listeners) ...");
    let kafka = Kafka::start_secure(
        Shape::Single,
        &SecureOptions {
            client_auth_required: false,
            scram_users: vec![(USER.0.into(), USER.1.into())],
            ..Default::default()
        },
    );
    println!(
        "vs_peers_tls: Apache Kafka {} (single node; PLAINTEXT {}, SSL {}, SASL_SSL {}); kcat: {}; {} CPUs; \
         {runs} runs",
        kafka.version(),
        kafka.listener(SecurityProtocol::Plaintext),
        kafka.listener(SecurityProtocol::Ssl),
        kafka.listener(SecurityProtocol::SaslSsl),
        kcat.version(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if runs > 0 {
        measure(&kafka, &kcat, n, runs);
    }
    if let Ok(file) = std::env::var("HOLD") {
        hold(&kafka, Path::new(&file));
    }
}

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

/// The security settings of `protocol` on `kafka`, librdkafka's names (weir takes them too), except the
/// mechanism: `sasl.mechanism` for weir, `sasl.mechanisms` for librdkafka.
fn settings(kafka: &Kafka, protocol: SecurityProtocol, client: usize) -> Vec<String> {
    let mut s = vec![format!("security.protocol={}", protocol.name())];
    if protocol.tls() {
        let ca = &kafka.pki().expect("a secure cluster").ca_cert_path;
        s.push(format!("ssl.ca.location={}", ca.display()));
    }
    if protocol.sasl() {
        let key = if client == 0 {
            "sasl.mechanism"
        } else {
            "sasl.mechanisms"
        };
        s.push(format!("{key}={MECHANISM}"));
        s.push(format!("sasl.username={}", USER.0));
        s.push(format!("sasl.password={}", USER.1));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// The parent: measurements and the summary
// ---------------------------------------------------------------------------------------------

fn weir_child(mode: &str, args: &[String]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.env(CHILD_ENV, mode).args(args);
    cmd
}

fn fmt_stat(v: &[f64], digits: usize) -> String {
    let (m, lo, hi) = stats(v);
    format!("{m:.digits$} [{lo:.digits$}–{hi:.digits$}]")
}

#[derive(Default, Clone)]
struct Samples {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    user: Vec<f64>,
    sys: Vec<f64>,
    rss_mib: Vec<f64>,
    broker_cpu: Vec<f64>,
}

impl Samples {
    fn add(&mut self, m: &Job) {
        self.wall.push(m.m.wall.as_secs_f64());
        self.cpu.push(m.m.cpu());
        self.user.push(m.m.user);
        self.sys.push(m.m.sys);
        self.rss_mib.push(m.m.max_rss_kib as f64 / 1024.0);
        self.broker_cpu.push(m.broker_cpu);
    }
}

/// One child's measurement, and the broker's CPU time meanwhile.
struct Job {
    m: Measured,
    broker_cpu: f64,
}

/// The broker JVM's CPU seconds so far: user + sys from `/proc/PID/stat`, in ticks of `getconf CLK_TCK`.
struct BrokerCpu {
    stat: std::path::PathBuf,
    tick: f64,
}

impl BrokerCpu {
    fn new(kafka: &Kafka) -> BrokerCpu {
        let id = kafka.node_ids()[0];
        let pid = kafka.pid(id).expect("the broker is running");
        let tick = Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
            .unwrap_or(100.0);
        BrokerCpu {
            stat: format!("/proc/{pid}/stat").into(),
            tick,
        }
    }

    fn now(&self) -> f64 {
        let stat = std::fs::read_to_string(&self.stat).expect("the broker's /proc/PID/stat");
        // Fields after the command name (which may hold spaces): state is the 3rd field, utime the 14th.
        let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        ticks / self.tick
    }

    /// `run_measured`, and the broker's CPU time from the spawn to the reaping.
    fn run(&self, cmd: Command, input: Input<'_>, count_lines: bool, timeout: Duration) -> Job {
        let before = self.now();
        let m = run_measured(cmd, input, count_lines, timeout);
        Job {
            m,
            broker_cpu: self.now() - before,
        }
    }
}

/// Samples of (job, client, listener).
struct Table(Vec<Samples>);

impl Table {
    fn new() -> Table {
        Table(vec![
            Samples::default();
            JOBS.len() * CLIENTS.len() * LISTENERS.len()
        ])
    }

    fn at(&mut self, job: usize, client: usize, listener: usize) -> &mut Samples {
        &mut self.0[(job * CLIENTS.len() + client) * LISTENERS.len() + listener]
    }

    fn get(&self, job: usize, client: usize, listener: usize) -> &Samples {
        &self.0[(job * CLIENTS.len() + client) * LISTENERS.len() + listener]
    }
}

fn measure(kafka: &Kafka, kcat: &Kcat, n: u64, runs: usize) {
    let dir = std::env::temp_dir().join(unique_name("weir-vs-peers-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input");
    write_input(&input, n);
    let small = dir.join("warmup");
    let n_small = n.min(10_000);
    write_input(&small, n_small);
    println!(
        "\n== produce then consume {n} records x {VALUE} B, {PARTITIONS} partitions, fresh topic per client, \
         listener and run; SASL_SSL with {MECHANISM}"
    );
    let timeout = Duration::from_secs(300);
    let broker = BrokerCpu::new(kafka);
    let pairs = CLIENTS.len() * LISTENERS.len();
    // One untimed pass of each pair over a small topic first (first producer ids, topic creations, page
    // cache, the broker's JIT on its TLS and SCRAM paths).
    for p in 0..pairs {
        one(
            kafka,
            &broker,
            kcat,
            p / LISTENERS.len(),
            p % LISTENERS.len(),
            &small,
            n_small,
            timeout,
            true,
        );
    }
    let mut t = Table::new();
    for run in 0..runs {
        for k in 0..pairs {
            let p = (run + k) % pairs;
            let (c, l) = (p / LISTENERS.len(), p % LISTENERS.len());
            let (pm, cm) = one(kafka, &broker, kcat, c, l, &input, n, timeout, false);
            println!(
                "  run {} {:<10} {:<9} produce {:.2} s wall {:.2} s CPU ({:.2} sys) {:.0} MiB, broker {:.2} s CPU | \
                 consume {:.2} s wall {:.2} s CPU ({:.2} sys) {:.0} MiB, broker {:.2} s CPU",
                run + 1,
                CLIENTS[c],
                LISTENERS[l].name(),
                pm.m.wall.as_secs_f64(),
                pm.m.cpu(),
                pm.m.sys,
                pm.m.max_rss_kib as f64 / 1024.0,
                pm.broker_cpu,
                cm.m.wall.as_secs_f64(),
                cm.m.cpu(),
                cm.m.sys,
                cm.m.max_rss_kib as f64 / 1024.0,
                cm.broker_cpu
            );
            t.at(0, c, l).add(&pm);
            t.at(1, c, l).add(&cm);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    summary(&t, n, runs);
}

fn summary(t: &Table, n: u64, runs: usize) {
    println!(
        "\nmedians [min–max] of {runs} runs; CPU = user + sys of the client process; counts checked ({n} each)"
    );
    println!(
        "| job | client | listener | wall s | CPU s | user s | sys s | peak RSS MiB | rec/s (median wall) | broker CPU s |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (j, job) in JOBS.iter().enumerate() {
        for (c, client) in CLIENTS.iter().enumerate() {
            for (l, listener) in LISTENERS.iter().enumerate() {
                let s = t.get(j, c, l);
                println!(
                    "| {job} | {client} | {} | {} | {} | {:.2} | {:.2} | {} | {:.2} M | {} |",
                    listener.name(),
                    fmt_stat(&s.wall, 2),
                    fmt_stat(&s.cpu, 2),
                    median(&s.user),
                    median(&s.sys),
                    fmt_stat(&s.rss_mib, 0),
                    n as f64 / median(&s.wall) / 1e6,
                    fmt_stat(&s.broker_cpu, 2)
                );
            }
        }
    }

    println!(
        "\nwhat TLS costs each client: ratios of medians to the same client on PLAINTEXT; CPU delta = median CPU \
         - median plaintext CPU; paired = [min–max] over runs of run i's TLS CPU - run i's plaintext CPU; broker \
         delta = the same for the broker's CPU during the job"
    );
    println!(
        "| job | client | listener | wall / plaintext | CPU / plaintext | CPU delta s | paired delta s | broker CPU delta s |\n\
         |---|---|---|---:|---:|---:|---:|---:|"
    );
    let delta = |j: usize, c: usize, l: usize| median(&t.get(j, c, l).cpu) - median(&t.get(j, c, 0).cpu);
    let paired = |j: usize, c: usize, l: usize| {
        let (s, pt) = (t.get(j, c, l), t.get(j, c, 0));
        let d: Vec<f64> = s.cpu.iter().zip(&pt.cpu).map(|(a, b)| a - b).collect();
        let (_, lo, hi) = stats(&d);
        (lo, hi)
    };
    for (j, job) in JOBS.iter().enumerate() {
        for (c, client) in CLIENTS.iter().enumerate() {
            let pt = t.get(j, c, 0);
            for (l, listener) in LISTENERS.iter().enumerate().skip(1) {
                let s = t.get(j, c, l);
                let (lo, hi) = paired(j, c, l);
                println!(
                    "| {job} | {client} | {} | {:.2}x | {:.2}x | {:+.3} | [{lo:+.3} – {hi:+.3}] | {:+.2} |",
                    listener.name(),
                    median(&s.wall) / median(&pt.wall),
                    median(&s.cpu) / median(&pt.cpu),
                    delta(j, c, l),
                    median(&s.broker_cpu) - median(&pt.broker_cpu)
                );
            }
        }
    }

    println!("\nweir / librdkafka per listener, ratios of medians (< 1: weir faster / cheaper / smaller)");
    println!("| job | listener | wall | CPU | peak RSS |\n|---|---|---:|---:|---:|");
    for (j, job) in JOBS.iter().enumerate() {
        for (l, listener) in LISTENERS.iter().enumerate() {
            let (w, k) = (t.get(j, 0, l), t.get(j, 1, l));
            println!(
                "| {job} | {} | {:.2}x | {:.2}x | {:.2}x |",
                listener.name(),
                median(&w.wall) / median(&k.wall),
                median(&w.cpu) / median(&k.cpu),
                median(&w.rss_mib) / median(&k.rss_mib)
            );
        }
    }

    println!(
        "\nthe bar \"TLS should cost weir no more than it costs librdkafka\" (client CPU delta over plaintext, \
         medians; \"within noise\" when the two clients' paired deltas overlap):"
    );
    for (j, job) in JOBS.iter().enumerate() {
        for (l, listener) in LISTENERS.iter().enumerate().skip(1) {
            let (dw, dk) = (delta(j, 0, l), delta(j, 1, l));
            let ((wlo, whi), (klo, khi)) = (paired(j, 0, l), paired(j, 1, l));
            let verdict = if dw <= dk {
                "holds"
            } else if wlo <= khi && klo <= whi {
                "does not hold on the medians, within noise"
            } else {
                "does not hold"
            };
            println!(
                "  {job} {:<9} weir {dw:+.3} s CPU [{wlo:+.3} – {whi:+.3}], librdkafka {dk:+.3} s CPU \
                 [{klo:+.3} – {khi:+.3}]: {verdict}",
                listener.name()
            );
        }
    }
}

/// One client's produce of `input` (`n` lines) to a fresh topic over `LISTENERS[l]`, then its consume of that
/// topic over the same listener; checked.
#[allow(clippy::too_many_arguments)]
fn one(
    kafka: &Kafka,
    broker: &BrokerCpu,
    kcat: &Kcat,
    c: usize,
    l: usize,
    input: &Path,
    n: u64,
    timeout: Duration,
    warmup: bool,
) -> (Job, Job) {
    let listener = LISTENERS[l];
    let b = kafka.listener(listener);
    let client = CLIENTS[c];
    let what = format!("{client} {}", listener.name());
    let topic = unique_name(&format!(
        "vs-tls-{}{client}-{}",
        if warmup { "warmup-" } else { "" },
        listener.name().to_ascii_lowercase().replace('_', "-")
    ));
    kafka.create_topic(&topic, PARTITIONS);
    let sec = settings(kafka, listener, c);
    let kcat_x = |cmd: &mut Command| {
        for s in &sec {
            cmd.args(["-X", s]);
        }
    };
    let p = match c {
        0 => weir_child("produce", &[&[b.clone(), topic.clone()], &sec[..]].concat()),
        _ => {
            let mut cmd = kcat.command();
            cmd.args(["-P", "-b", &b, "-t", &topic]).args([
                "-X",
                "linger.ms=5",
                "-X",
                "enable.idempotence=true",
                "-X",
                "acks=all",
            ]);
            kcat_x(&mut cmd);
            cmd
        }
    };
    let pm = broker.run(p, Input::File(input), false, timeout);
    check(&format!("{what} produce"), &pm.m);
    let cm = match c {
        0 => weir_child(
            "consume",
            &[
                &[b.clone(), topic.clone(), PARTITIONS.to_string(), n.to_string()],
                &sec[..],
            ]
            .concat(),
        ),
        _ => {
            let mut cmd = kcat.command();
            cmd.args(["-C", "-b", &b, "-t", &topic, "-o", "beginning", "-e", "-q"]);
            kcat_x(&mut cmd);
            cmd
        }
    };
    let cm = broker.run(cm, Input::Null, true, timeout);
    check(&format!("{what} consume"), &cm.m);
    assert_eq!(
        cm.m.lines, n,
        "{what} read back {} of {n} records of {topic}",
        cm.m.lines
    );
    if verbose() {
        eprintln!(
            "{what} produce stderr: {}\n{what} consume stderr: {}",
            String::from_utf8_lossy(&pm.m.stderr),
            String::from_utf8_lossy(&cm.m.stderr)
        );
    }
    (pm, cm)
}

/// Keeps the broker up for profiling by hand until `file` is deleted: creates 8 empty topics of
/// [`PARTITIONS`] partitions (`hold-1` to `hold-8`) and writes to `file` (shell syntax) each listener, its
/// weir settings and its kcat `-X` options, and how to start a weir child. E.g., after `sed 1d FILE > env.sh;
/// . ./env.sh`:
///
/// ```text
/// env $CHILD_ENV=produce $EXE $SSL hold-1 $SSL_WEIR < input
/// perf record -g env $CHILD_ENV=consume $EXE $SSL hold-1 6 1000000 $SSL_WEIR > /dev/null
/// strace -c -f kcat -C -b $SSL -t hold-1 -o beginning -e -q $SSL_KCAT > /dev/null
/// ```
fn hold(kafka: &Kafka, file: &Path) {
    let topics: Vec<String> = (1..=8).map(|i| format!("hold-{i}")).collect();
    for t in &topics {
        kafka.create_topic(t, PARTITIONS);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut text = format!(
        "# the broker stays up until this file is deleted\nEXE={}\nCHILD_ENV={CHILD_ENV}\nTOPICS=\"{}\"\n",
        exe.display(),
        topics.join(" ")
    );
    for listener in LISTENERS {
        let name = listener.name();
        let kcat_x: Vec<String> = settings(kafka, listener, 1)
            .iter()
            .map(|s| format!("-X {s}"))
            .collect();
        text += &format!(
            "{name}={}\n{name}_WEIR=\"{}\"\n{name}_KCAT=\"{}\"\n",
            kafka.listener(listener),
            settings(kafka, listener, 0).join(" "),
            kcat_x.join(" ")
        );
    }
    std::fs::write(file, text).expect("HOLD file");
    eprintln!(
        "vs_peers_tls: holding the broker until {} is deleted",
        file.display()
    );
    while file.exists() {
        std::thread::sleep(Duration::from_millis(500));
    }
}

// ---------------------------------------------------------------------------------------------
// The weir child (benches/clients: `key=value` settings after the positional arguments)
// ---------------------------------------------------------------------------------------------

fn child(mode: &str, args: &[String]) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match mode {
        "produce" => rt.block_on(child_produce(&args[0], &args[1], &args[2..])),
        "consume" => rt.block_on(child_consume(
            &args[0],
            &args[1],
            args[2].parse().unwrap(),
            args[3].parse().unwrap(),
            &args[4..],
        )),
        _ => panic!("vs_peers_tls: unknown child mode {mode}"),
    }
}
