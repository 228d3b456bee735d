//! weir, librdkafka, franz-go and the Java client over partitions, record sizes and codecs, on one Apache Kafka.
//!
//! `cargo bench -p weir --bench matrix_vs_peers` (about 6 minutes per run on 2 cores with the defaults). Starts
//! its own single-node Kafka, then runs three one-dimension sweeps around a base case, so that the run stays
//! bounded:
//!
//! - **partitions** 1, 10, 100, 1,000 (records of 100 B, no codec; the size sweep's 100 B case is the same
//!   workload at 6 partitions);
//! - **record sizes** 10 B, 100 B, 1 KiB, 10 KiB, 100 KiB (6 partitions, no codec);
//! - **codecs** none, gzip, snappy, lz4, zstd (6 partitions, records of 1 KiB; `none` is the size sweep's 1 KiB
//!   case, run once).
//!
//! Every case is one pass per client and run: the client produces an input file (one record per line on its
//! stdin) to a fresh topic, then reads the topic back from the start (each value and a newline on its stdout,
//! counted here: every client's count is asserted), and the topic is deleted. The records are JSON-like log lines
//! whose numbers vary from record to record (`benches/clients/records.rs`), cut to the case's size, so the codecs
//! compress them as they would real data. A case has `min(MAX_RECORDS, MAX_MB / size)` records (1M of 10 B and
//! 100 B; about 200 MB of larger ones), times `SCALE`, rounded down to two significant digits.
//!
//! The clients and their settings (`benches/clients/lineup.rs`), aligned where the defaults differ: idempotent
//! producer, acks=all, linger 5 ms, the case's codec set on every client; each client's defaults otherwise
//! (batches of 1 MiB for weir, franz-go and librdkafka, 16 KiB for Java).
//! - weir: this binary re-executed as a child (`WEIR_MATRIX_CHILD=produce|consume`): the weir `Producer` with
//!   `compression.type` set, pipelined sends (at most 256k unacknowledged), and the weir `Consumer` (every
//!   partition assigned at the log start, `poll(16384, 1 s)`);
//! - franz-go: `franz-go-peer produce --input - --compression C` and `consume --count N --out values`;
//! - librdkafka (kcat): `kcat -P -X linger.ms=5 -X enable.idempotence=true -X acks=all -X compression.codec=C`
//!   and `kcat -C -o beginning -e -q`;
//! - java (kafka-clients at the broker's version): the Java peer's `bench-produce --compression C` and
//!   `bench-consume` (`max.poll.records` 10000), in a JVM with its default JIT and collector and at most 1 GiB of
//!   heap. Its wall time and CPU include the JVM's start-up and warm-up (about a second of wall and more of CPU
//!   on this machine), which weighs most on the short cases; the results lines also carry the peer's own time
//!   from the subcommand's start to its end (`in_jvm_s`) and the JVM's start-up before it (`jvm_start_s`).
//!
//! Wall time is measured here, CPU time (user + sys) and peak RSS come from `wait4(2)` on the child; the broker's
//! CPU is not counted. The clients' order rotates from case to case and run to run.
//!
//! Env: `RUNS` (1), `SWEEPS` (`partitions,sizes,codecs`), `PARTITIONS` (`1,10,100,1000`), `SIZES`
//! (`10,100,1024,10240,102400`), `CODECS` (`none,gzip,snappy,lz4,zstd`), `CLIENTS` (`weir,franz-go,librdkafka,
//! java`), `MAX_RECORDS` (1000000), `MAX_MB` (200), `SCALE` (1.0), `JAVA_PRODUCER_SETTINGS` (extra Java producer
//! properties, `key=value,...`; none). With `WEIR_BENCH_OUT` set, every pass of every client is appended there
//! as two results lines (`op` produce and consume; params `partitions`, `record_size`,
//! `codec`), for `scripts/bench-report`, which plots each metric against each swept parameter.

// The shared bench helpers minus vs_peers' fixed 100 B input.
#[allow(dead_code)]
mod clients;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clients::lineup::{Client, Lineup, Pass, Workload};
use clients::records::write_json_lines;
use clients::{median, run_child};
use weir::admin::{Admin, OffsetSpec};
use weir::config::ClientConfig;
use weir_testkit::bench_env::{list as env_list, num as env_num};
use weir_testkit::bench_out;
use weir_testkit::{unique_name, Kafka, Shape};

/// The bench's name in its results lines.
const BENCH: &str = "matrix_vs_peers";
const CHILD_ENV: &str = "WEIR_MATRIX_CHILD";
/// The base case every sweep varies one dimension of.
const BASE_PARTITIONS: i32 = 6;
const BASE_SIZE: usize = 100;
const BASE_CODEC: &str = "none";
/// Record size of the codec sweep.
const CODEC_SIZE: usize = 1024;
/// One client's produce or consume is killed (and the bench fails) after this.
const PASS_TIMEOUT: Duration = Duration::from_secs(600);
/// A client whose median records/s is below this fraction of the best client's is flagged in the summary.
const FLAG_BELOW: f64 = 0.67;

/// One workload of the matrix.
#[derive(Debug, Clone, PartialEq)]
struct Case {
    partitions: i32,
    size: usize,
    codec: String,
    records: u64,
}

impl Case {
    /// The comparison's label for `op`, e.g. `produce 1M x 100 B, 6 partitions, none`.
    fn label(&self, op: &str) -> String {
        format!(
            "{op} {} x {}, {} partition{}, {}",
            count_label(self.records),
            size_label(self.size),
            self.partitions,
            if self.partitions == 1 { "" } else { "s" },
            self.codec
        )
    }
}

/// `n` rounded down to two significant digits (`195312` → `190000`).
fn two_digits(n: u64) -> u64 {
    let mut unit = 1;
    while n / unit >= 100 {
        unit *= 10;
    }
    n / unit * unit
}

/// `1M`, `190k`, `1900`.
fn count_label(n: u64) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 10_000 && n % 1_000 == 0 {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// `100 B`, `1 KiB`, `100 KiB`.
fn size_label(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// The cases of the chosen sweeps, each workload once, in sweep order.
fn plan() -> Vec<Case> {
    let sweeps = env_list("SWEEPS", "partitions,sizes,codecs");
    let max_records: u64 = env_num("MAX_RECORDS", 1_000_000);
    let max_bytes = env_num::<u64>("MAX_MB", 200) * 1_000_000;
    let scale: f64 = env_num("SCALE", 1.0);
    let records = |size: usize| {
        let n = max_records.min(max_bytes / size as u64) as f64 * scale;
        two_digits((n as u64).max(1))
    };
    let case = |partitions: i32, size: usize, codec: &str| Case {
        partitions,
        size,
        codec: codec.to_owned(),
        records: records(size),
    };
    let num = |s: &String, what: &str| -> u64 {
        s.parse()
            .unwrap_or_else(|_| panic!("{BENCH}: {what} {s:?} is not a number"))
    };
    let mut cases: Vec<Case> = Vec::new();
    for sweep in &sweeps {
        let more: Vec<Case> = match sweep.as_str() {
            "partitions" => env_list("PARTITIONS", "1,10,100,1000")
                .iter()
                .map(|p| case(num(p, "partitions") as i32, BASE_SIZE, BASE_CODEC))
                .collect(),
            "sizes" => env_list("SIZES", "10,100,1024,10240,102400")
                .iter()
                .map(|s| case(BASE_PARTITIONS, num(s, "size") as usize, BASE_CODEC))
                .collect(),
            "codecs" => env_list("CODECS", "none,gzip,snappy,lz4,zstd")
                .iter()
                .map(|c| case(BASE_PARTITIONS, CODEC_SIZE, c))
                .collect(),
            other => panic!("{BENCH}: unknown sweep {other:?} (partitions, sizes, codecs)"),
        };
        for c in more {
            if !cases.contains(&c) {
                cases.push(c);
            }
        }
    }
    cases
}

/// One client's figures in one case and op over runs.
#[derive(Default)]
struct Samples {
    records_per_s: Vec<f64>,
    cpu_s: Vec<f64>,
    rss_mib: Vec<f64>,
}

fn main() {
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        let args: Vec<String> = std::env::args().skip(1).collect();
        assert!(run_child(&mode, &args), "{BENCH}: unknown child mode {mode}");
        return;
    }
    let runs: usize = env_num("RUNS", 1);
    let cases = plan();
    let (lineup, java_missing) = Lineup::require(CHILD_ENV);
    let wanted = env_list("CLIENTS", "weir,franz-go,librdkafka,java");
    for w in &wanted {
        assert!(
            Client::from_name(w).is_some(),
            "{BENCH}: unknown client {w:?} in CLIENTS"
        );
    }
    let clients: Vec<Client> = lineup
        .clients()
        .into_iter()
        .filter(|c| wanted.iter().any(|w| w == c.name()))
        .collect();
    assert!(!clients.is_empty(), "{BENCH}: no client to run");

    eprintln!("starting Apache Kafka (single node) ...");
    let kafka = Kafka::start(Shape::Single);
    let b = kafka.bootstrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let admin = {
        let _in_rt = rt.enter();
        Admin::new(ClientConfig::new(&b)).expect("admin")
    };
    println!(
        "{BENCH}: Apache Kafka {} (single node, {b}); franz-go {}; kcat: {}; Java client: {}; {} CPUs; {runs} run(s); \
         clients {}",
        kafka.version(),
        lineup.franz_go.version(),
        lineup.kcat.version(),
        lineup.java.as_ref().map_or("left out", |j| j.kafka_clients_version()),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        clients.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
    );
    if let Some(why) = &java_missing {
        println!("  (the Java client is left out: {why})");
    }
    let mut facts = vec![
        ("broker", format!("Apache Kafka {}", kafka.version())),
        ("franz-go", lineup.franz_go.version().to_owned()),
        ("librdkafka", lineup.kcat.short_version()),
    ];
    if let Some(j) = &lineup.java {
        facts.push(("java", format!("kafka-clients {}", j.kafka_clients_version())));
    }
    bench_out::meta(
        BENCH,
        &facts.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>(),
    );
    println!("cases (each: produce, then consume, per client and run):");
    for c in &cases {
        println!(
            "  {} records x {}, {} partitions, {} ({:.0} MB)",
            c.records,
            size_label(c.size),
            c.partitions,
            c.codec,
            (c.records * c.size as u64) as f64 / 1e6
        );
    }

    let dir = std::env::temp_dir().join(unique_name("weir-matrix"));
    std::fs::create_dir_all(&dir).unwrap();
    // Input files by (size, records), written when first needed.
    let mut inputs: BTreeMap<(usize, u64), PathBuf> = BTreeMap::new();
    let mut input = |size: usize, records: u64| -> PathBuf {
        inputs
            .entry((size, records))
            .or_insert_with(|| {
                let p = dir.join(format!("input-{size}x{records}"));
                write_json_lines(&p, records, size);
                p
            })
            .clone()
    };
    let pass = |c: Client, case: &Case, input: &PathBuf, warmup: bool| -> Pass {
        let topic = unique_name(&format!(
            "matrix-{}{}",
            if warmup { "warmup-" } else { "" },
            c.name()
        ));
        kafka.create_topic(&topic, case.partitions);
        wait_until_led(&rt, &admin, &topic, case.partitions);
        let w = Workload {
            bootstrap: &b,
            topic: &topic,
            partitions: case.partitions,
            records: case.records,
            codec: &case.codec,
        };
        let pass = lineup.produce_then_consume(c, &w, input, PASS_TIMEOUT);
        // The broker keeps neither the data nor the partitions of finished passes.
        if let Err(e) = rt.block_on(admin.delete_topic(&topic)) {
            eprintln!("{BENCH}: deleting {topic}: {e}");
        }
        pass
    };

    // One untimed pass of each client first: the broker's first producer-id allocation, topic creations and the
    // page cache are not charged to whichever client happens to run first.
    let warm = Case {
        partitions: BASE_PARTITIONS,
        size: BASE_SIZE,
        codec: BASE_CODEC.to_owned(),
        records: 10_000,
    };
    let warm_input = input(warm.size, warm.records);
    for &c in &clients {
        pass(c, &warm, &warm_input, true);
    }

    // Per case, op (0 produce, 1 consume) and client.
    let mut samples: Vec<[Vec<Samples>; 2]> = cases
        .iter()
        .map(|_| {
            [
                clients.iter().map(|_| Samples::default()).collect(),
                clients.iter().map(|_| Samples::default()).collect(),
            ]
        })
        .collect();
    let k = clients.len();
    let mut failures: Vec<String> = Vec::new();
    for run in 0..runs {
        for (ci, case) in cases.iter().enumerate() {
            let file = input(case.size, case.records);
            for i in 0..k {
                let kc = (run + ci + i) % k;
                let c = clients[kc];
                // A client failing a case is reported at the end, after the other measurements.
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| pass(c, case, &file, false)));
                let p = match outcome {
                    Ok(p) => p,
                    Err(e) => {
                        let why = e
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        let why: String = why.chars().take(600).collect();
                        println!("  run {} {:<42} {:<10} FAILED", run + 1, case.label(""), c.name());
                        failures.push(format!("{} in {}: {why}", c.name(), case.label("").trim()));
                        continue;
                    }
                };
                let mut line = format!("  run {} {:<42} {:<10}", run + 1, case.label(""), c.name());
                for (o, (op, m)) in [("produce", &p.produce), ("consume", &p.consume)]
                    .into_iter()
                    .enumerate()
                {
                    let wall = m.wall.as_secs_f64();
                    let rate = case.records as f64 / wall;
                    let s = &mut samples[ci][o][kc];
                    s.records_per_s.push(rate);
                    s.cpu_s.push(m.cpu());
                    s.rss_mib.push(m.max_rss_kib as f64 / 1024.0);
                    line += &format!(
                        " | {op} {wall:6.2} s {:>7.0}k rec/s {:6.2} s CPU {:4.0} MiB",
                        rate / 1e3,
                        m.cpu(),
                        m.max_rss_kib as f64 / 1024.0
                    );
                    let mut metrics = vec![
                        ("wall_s", wall),
                        ("cpu_s", m.cpu()),
                        ("peak_rss_mib", m.max_rss_kib as f64 / 1024.0),
                        ("records_per_s", rate),
                        ("mb_per_s", (case.records * case.size as u64) as f64 / 1e6 / wall),
                    ];
                    if let Some(jvm) = p.jvm {
                        let t = if o == 0 { jvm.0 } else { jvm.1 };
                        metrics.push(("in_jvm_s", t.seconds));
                        metrics.push(("jvm_start_s", t.jvm_uptime_s - t.seconds));
                    }
                    bench_out::record(
                        BENCH,
                        &case.label(op),
                        c.name(),
                        run + 1,
                        &[
                            ("op", op.into()),
                            ("partitions", case.partitions.into()),
                            ("record_size", case.size.into()),
                            ("codec", case.codec.as_str().into()),
                        ],
                        &metrics,
                    );
                }
                println!("{line}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    summary(&cases, &clients, &samples, runs);
    if !failures.is_empty() {
        println!("\nfailed passes (left out of the tables above):");
        for f in &failures {
            println!("  {f}");
        }
        std::process::exit(1);
    }
}

/// The median, NaN when a client has no sample (it failed the case).
fn med(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        median(v)
    }
}

/// Waits (at most a minute) until the leader of every partition of the new `topic` answers ListOffsets. The
/// broker's metadata names a partition's leader before that leader takes requests; a client producing in between
/// is answered NOT_LEADER_OR_FOLLOWER, which costs it a metadata refresh and a retry, and in a trial run left the
/// Java client's idempotent producer failing with OUT_OF_ORDER_SEQUENCE_NUMBER on a fresh 100-partition topic
/// until its delivery timeout. Every client starts on a topic that is ready.
fn wait_until_led(rt: &tokio::runtime::Runtime, admin: &Admin, topic: &str, partitions: i32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let outcome = rt.block_on(admin.list_offsets(topic, OffsetSpec::Latest));
        match outcome {
            Ok(ends) if ends.len() == partitions as usize && ends.values().all(|&o| o == 0) => return,
            other => assert!(
                Instant::now() < deadline,
                "{BENCH}: the partitions of {topic} have no leader answering ListOffsets after a minute: {other:?}"
            ),
        }
        // Polled: the broker announces no event for this.
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The tables: per case and op, each client's median records/s, CPU and peak RSS, and its records/s relative to
/// weir's; then the cases where weir is well behind the best client.
fn summary(cases: &[Case], clients: &[Client], samples: &[[Vec<Samples>; 2]], runs: usize) {
    let weir = clients.iter().position(|c| *c == Client::Weir);
    println!(
        "\nmedians of {runs} run(s); rec/s over the client process's wall time (java: JVM start-up included); \
         CPU = user + sys of the client process; (x) = records/s relative to weir's (> 1: faster than weir)"
    );
    for (o, op) in ["produce", "consume"].into_iter().enumerate() {
        print!("\n| {op} |");
        for c in clients {
            print!(" {} rec/s | CPU s | RSS MiB |", c.name());
        }
        print!("\n|---|");
        for _ in clients {
            print!("---:|---:|---:|");
        }
        println!();
        for (ci, case) in cases.iter().enumerate() {
            print!("| {} |", case.label("").trim());
            let s = &samples[ci][o];
            for (kc, _) in clients.iter().enumerate() {
                let rate = med(&s[kc].records_per_s);
                let rel = match weir {
                    Some(w) if w != kc => format!(" ({:.2}x)", rate / med(&s[w].records_per_s)),
                    _ => String::new(),
                };
                print!(
                    " {:.0}k{rel} | {:.2} | {:.0} |",
                    rate / 1e3,
                    med(&s[kc].cpu_s),
                    med(&s[kc].rss_mib)
                );
            }
            println!();
        }
    }
    let Some(w) = weir else { return };
    println!(
        "\nwhere weir's records/s are below {FLAG_BELOW} of the best client's (or its CPU above 1/{FLAG_BELOW} of the \
         least CPU):"
    );
    let mut any = false;
    for (ci, case) in cases.iter().enumerate() {
        for (o, op) in ["produce", "consume"].into_iter().enumerate() {
            let s = &samples[ci][o];
            let measured: Vec<usize> = (0..clients.len())
                .filter(|&c| !s[c].records_per_s.is_empty())
                .collect();
            if s[w].records_per_s.is_empty() || measured.is_empty() {
                continue;
            }
            let best = measured
                .iter()
                .copied()
                .max_by(|&a, &b| med(&s[a].records_per_s).total_cmp(&med(&s[b].records_per_s)))
                .expect("clients");
            let frugal = measured
                .iter()
                .copied()
                .min_by(|&a, &b| med(&s[a].cpu_s).total_cmp(&med(&s[b].cpu_s)))
                .expect("clients");
            let rate = med(&s[w].records_per_s) / med(&s[best].records_per_s);
            let cpu = med(&s[w].cpu_s) / med(&s[frugal].cpu_s);
            // CPU differences below a tenth of a second are noise, not findings.
            let cpu_flag = cpu > 1.0 / FLAG_BELOW && med(&s[w].cpu_s) - med(&s[frugal].cpu_s) > 0.1;
            if rate < FLAG_BELOW || cpu_flag {
                any = true;
                println!(
                    "  {}: weir {:.0}k rec/s = {rate:.2}x of {} ({:.0}k); weir CPU {:.2} s = {cpu:.2}x of {} ({:.2} s)",
                    case.label(op),
                    med(&s[w].records_per_s) / 1e3,
                    clients[best].name(),
                    med(&s[best].records_per_s) / 1e3,
                    med(&s[w].cpu_s),
                    clients[frugal].name(),
                    med(&s[frugal].cpu_s)
                );
            }
        }
    }
    if !any {
        println!("  none");
    }
}
