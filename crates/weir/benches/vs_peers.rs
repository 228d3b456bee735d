//! weir vs franz-go vs librdkafka on real Apache Kafka, side by side on one broker.
//!
//! `cargo bench -p weir --bench vs_peers` (about 10 minutes on 2 cores). Starts its own single-node Kafka
//! (`weir_testkit::Kafka::start(Shape::Single)`), then, on that broker:
//!
//! **a) produce, then consume, 1,000,000 records x 100 B** with weir, franz-go (the peer in
//! `crates/weir-testkit/peers/go`), librdkafka 2.16 (kcat) and the Java client (kafka-clients at the broker's
//! version, the peer in `crates/weir-testkit/peers/java`): a fresh 6-partition topic per client and run; every
//! client produces the same input file (one record per line, on its stdin) and then reads its topic back from
//! the start, writing each value and a newline to stdout, which this process counts. Settings aligned where the
//! defaults differ: idempotent producer, acks=all, linger 5 ms, no compression, for all four (the clients and
//! their commands: `benches/clients/lineup.rs`).
//!
//! - weir: this binary re-executed as a child (`WEIR_VS_PEERS_CHILD=produce|consume`), the weir `Producer`
//!   (pipelined sends, at most 256k unacknowledged, like `weir produce`) and the weir `Consumer` (all
//!   partitions assigned at the log start, `poll(16384, 1 s)` like `weir consume`), default settings;
//! - franz-go: `franz-go-peer produce --input -` and `consume --count N --out values` (direct partitions);
//! - librdkafka: `kcat -P -X linger.ms=5 -X enable.idempotence=true -X acks=all` and
//!   `kcat -C -o beginning -e -q`;
//! - java: the peer's `bench-produce` and `bench-consume` (`peers/java/src/main/java/weir/peer/Bench.java`;
//!   16 KiB batches, the Java default; `max.poll.records` 10000), the JVM with its default JIT and collector and
//!   at most 1 GiB of heap. Its wall time and CPU include the JVM's start-up and warm-up, as the others include
//!   their process start (which for them is milliseconds); the peer also reports its own time from the
//!   subcommand's start to its end (`in_jvm_s`) and the JVM's start-up before it (`jvm_start_s`). Left out, with
//!   a note, when the Java peer is not built (`scripts/setup-test-env java-peer`).
//!
//! **b) the bounded-buffer workload** (what weir exists for) on one 1,000-partition topic pre-filled with
//! `PRESSURE_PER_PARTITION` records of 100 B per partition, for weir, librdkafka and franz-go: every partition
//! from offset 0; the application keeps at most `buffer` records per partition, pausing a partition when its
//! buffer is full and resuming it when a worker drains it below `resume_below`; a poll loop distributes records
//! to 8 worker threads (partition % 8), each record costing `work_rounds` passes of FNV-1a over its value. The
//! franz-go side is `peers/go/pressure.go`; the librdkafka side is `peers/c/pressure.c` (librdkafka 2.16,
//! compiled here with `cc`, see `weir_testkit::peers::rdk_pressure`; its consumer queue holds at most 64 MiB of
//! pre-fetched records, librdkafka's default, as weir's default memory budget); the weir side is [`pressure`]
//! below; all three the same design line for line (weir's pause/resume through `ConsumerPartition` handles, or
//! by name in the `weir-by-name` row; `weir-fixed` is the first row with fixed fair shares of the budget
//! (`weir.buffer.target.ms=0`) instead of rate-sized buffers; `weir-1GiB` is the first row with a 1 GiB memory
//! budget instead of the default 64 MiB, which shows what the per-partition fetch size costs weir here: see
//! docs/benchmarks.md). Ratios are against franz-go, and weir's against librdkafka too.
//!
//! Every client runs as a child process of this one; wall time is measured here, CPU time (user + sys) and
//! peak RSS come from `wait4(2)` on the child (`weir_testkit::peers::franz_go::run_measured`). The broker's
//! CPU is not counted. Each measurement runs `RUNS` times (env, default 3), the clients alternated (their order
//! rotates every run); the summary gives medians and [min–max].
//!
//! Env: `RUNS` (3), `N` (1000000), `SECTIONS` (`ab`; `a` or `b` alone), `PRESSURE_SECS` (10),
//! `PRESSURE_PARTITIONS` (1000), `PRESSURE_PER_PARTITION` (20000), `WORK_ROUNDS` (2). With `WEIR_BENCH_OUT`
//! set, every run of every client is also appended there as a results line (`weir_testkit::bench_out`), for
//! `scripts/bench-report`.

// The shared bench helpers minus what only the matrix uses (its input records).
#[allow(dead_code)]
mod clients;

use clients::lineup::{Client, Lineup, Pass, Workload};
use clients::{check, median, run_child, stats, write_input, VALUE};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use weir::consumer::{
    Consumer, ConsumerConfig, ConsumerPartition, ConsumerRecord, StartOffset, TopicPartition,
};
use weir_testkit::bench_env::num as env_num;
use weir_testkit::bench_out;
use weir_testkit::peers::franz_go::{json_number, run_measured, Input, Measured, Pressure};
use weir_testkit::peers::rdk_pressure::RdkPressure;
use weir_testkit::{unique_name, Kafka, Shape};

/// The bench's name in its results lines.
const BENCH: &str = "vs_peers";
const CHILD_ENV: &str = "WEIR_VS_PEERS_CHILD";
const PARTITIONS_A: i32 = 6;
/// Partitions of the pressure topic unless `PRESSURE_PARTITIONS` says otherwise.
const PRESSURE_PARTITIONS: u64 = 1000;
/// The pre-fill writes this many records to one partition, then the next (batches of 100 KB).
const PREFILL_CHUNK: u64 = 1000;

/// `VS_PEERS_VERBOSE=1`: print the children's output (set `FRANZ_GO_PEER_LOG=info` too for franz-go's log).
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
    let sections = std::env::var("SECTIONS").unwrap_or_else(|_| "ab".into());
    let (lineup, java_missing) = Lineup::require(CHILD_ENV);
    let (fg, kcat) = (&lineup.franz_go, &lineup.kcat);

    eprintln!("starting Apache Kafka (single node) ...");
    let kafka = Kafka::start(Shape::Single);
    let b = kafka.bootstrap();
    println!(
        "vs_peers: Apache Kafka {} (single node, {b}); franz-go {}; kcat: {}; Java client: {}; {} CPUs; {runs} runs",
        kafka.version(),
        fg.version(),
        kcat.version(),
        lineup.java.as_ref().map_or("left out", |j| j.kafka_clients_version()),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if let Some(why) = &java_missing {
        println!("  (the Java client is left out: {why})");
    }
    let java_version = lineup
        .java
        .as_ref()
        .map(|j| format!("kafka-clients {}", j.kafka_clients_version()));
    let mut facts = vec![
        ("broker", format!("Apache Kafka {}", kafka.version())),
        ("franz-go", fg.version().to_owned()),
        ("librdkafka", kcat.short_version()),
    ];
    if let Some(v) = java_version {
        facts.push(("java", v));
    }
    bench_out::meta(
        BENCH,
        &facts.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>(),
    );
    if sections.contains('a') {
        section_a(&kafka, &lineup, n, runs);
    }
    if sections.contains('b') {
        section_b(&kafka, &lineup, runs);
    }
}

// ---------------------------------------------------------------------------------------------
// The parent: measurements and the summary
// ---------------------------------------------------------------------------------------------

fn fmt_stat(v: &[f64], unit: &str, digits: usize) -> String {
    let (m, lo, hi) = stats(v);
    format!("{m:.digits$}{unit} [{lo:.digits$}–{hi:.digits$}]")
}

#[derive(Default, Clone)]
struct Samples {
    wall: Vec<f64>,
    cpu: Vec<f64>,
    rss_mib: Vec<f64>,
}

impl Samples {
    fn add(&mut self, m: &Measured) {
        self.wall.push(m.wall.as_secs_f64());
        self.cpu.push(m.cpu());
        self.rss_mib.push(m.max_rss_kib as f64 / 1024.0);
    }
}

fn section_a(kafka: &Kafka, lineup: &Lineup, n: u64, runs: usize) {
    let clients = lineup.clients();
    let k = clients.len();
    let dir = std::env::temp_dir().join(unique_name("weir-vs-peers"));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input");
    write_input(&input, n);
    let small = dir.join("warmup");
    write_input(&small, n.min(10_000));
    println!(
        "\n== a) produce then consume {n} records x {VALUE} B, {PARTITIONS_A} partitions, fresh topic per client and run"
    );
    let timeout = Duration::from_secs(300);
    // One untimed pass of each client over a small topic first: the broker's first producer-id allocation,
    // first topic creations and page cache are not charged to whichever client happens to run first.
    for &c in &clients {
        one_a(kafka, lineup, c, &small, n.min(10_000), timeout, true);
    }
    let mut produce: Vec<Samples> = vec![Samples::default(); k];
    let mut consume: Vec<Samples> = vec![Samples::default(); k];
    // The Java peer's own figures: (produce, consume) seconds inside the JVM and the JVM's start-up before.
    let mut in_jvm: [Vec<f64>; 2] = Default::default();
    let mut jvm_start: [Vec<f64>; 2] = Default::default();
    for run in 0..runs {
        for i in 0..k {
            let ci = (run + i) % k;
            let c = clients[ci];
            let pass = one_a(kafka, lineup, c, &input, n, timeout, false);
            let (pm, cm) = (&pass.produce, &pass.consume);
            println!(
                "  run {} {:<10} produce {:.2} s wall {:.2} s CPU {:.0} MiB | consume {:.2} s wall {:.2} s CPU {:.0} MiB",
                run + 1,
                c.name(),
                pm.wall.as_secs_f64(),
                pm.cpu(),
                pm.max_rss_kib as f64 / 1024.0,
                cm.wall.as_secs_f64(),
                cm.cpu(),
                cm.max_rss_kib as f64 / 1024.0
            );
            produce[ci].add(pm);
            consume[ci].add(cm);
            for (o, (op, m)) in [("produce", pm), ("consume", cm)].into_iter().enumerate() {
                let mut metrics = vec![
                    ("wall_s", m.wall.as_secs_f64()),
                    ("cpu_s", m.cpu()),
                    ("peak_rss_mib", m.max_rss_kib as f64 / 1024.0),
                    ("records_per_s", n as f64 / m.wall.as_secs_f64()),
                ];
                if let Some(jvm) = pass.jvm {
                    let t = if o == 0 { jvm.0 } else { jvm.1 };
                    metrics.push(("in_jvm_s", t.seconds));
                    metrics.push(("jvm_start_s", t.jvm_uptime_s - t.seconds));
                    in_jvm[o].push(t.seconds);
                    jvm_start[o].push(t.jvm_uptime_s - t.seconds);
                }
                bench_out::record(
                    BENCH,
                    &format!("{op} {} x {VALUE} B, {PARTITIONS_A} partitions", count_label(n)),
                    c.name(),
                    run + 1,
                    &[
                        ("op", op.into()),
                        ("records", n.into()),
                        ("record_size", VALUE.into()),
                        ("partitions", PARTITIONS_A.into()),
                    ],
                    &metrics,
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "\nmedians [min–max] of {runs} runs; CPU = user + sys of the client process; counts checked ({n} each); \
         java: the JVM's start-up and warm-up included"
    );
    println!(
        "| op | client | wall s | CPU s | peak RSS MiB | rec/s (median wall) |\n|---|---|---:|---:|---:|---:|"
    );
    for (op, s) in [("produce", &produce), ("consume", &consume)] {
        for (ci, c) in clients.iter().enumerate() {
            println!(
                "| {op} | {} | {} | {} | {} | {:.2} M |",
                c.name(),
                fmt_stat(&s[ci].wall, "", 2),
                fmt_stat(&s[ci].cpu, "", 2),
                fmt_stat(&s[ci].rss_mib, "", 0),
                n as f64 / median(&s[ci].wall) / 1e6
            );
        }
    }
    if !in_jvm[0].is_empty() {
        println!(
            "java, measured inside its JVM: produce {} s (JVM start-up before it {} s), consume {} s (start-up {} s)",
            fmt_stat(&in_jvm[0], "", 2),
            fmt_stat(&jvm_start[0], "", 2),
            fmt_stat(&in_jvm[1], "", 2),
            fmt_stat(&jvm_start[1], "", 2)
        );
    }
    println!("\nratios of medians, weir / other client (< 1: weir faster / cheaper)");
    println!("| op | other client | wall | CPU | peak RSS |\n|---|---|---:|---:|---:|");
    for (op, s) in [("produce", &produce), ("consume", &consume)] {
        for (ci, c) in clients.iter().enumerate().skip(1) {
            let r = |f: fn(&Samples) -> &Vec<f64>| median(f(&s[0])) / median(f(&s[ci]));
            println!(
                "| {op} | {} | {:.2}x | {:.2}x | {:.2}x |",
                c.name(),
                r(|s| &s.wall),
                r(|s| &s.cpu),
                r(|s| &s.rss_mib)
            );
        }
    }
}

/// `1M`, `200k` or `1234`: a record count for a case label.
fn count_label(n: u64) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n % 1_000 == 0 {
        format!("{}k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// One client's produce of `input` (`n` lines) to a fresh topic, then its consume of that topic; checked.
fn one_a(
    kafka: &Kafka,
    lineup: &Lineup,
    c: Client,
    input: &Path,
    n: u64,
    timeout: Duration,
    warmup: bool,
) -> Pass {
    let b = kafka.bootstrap();
    let client = c.name();
    let topic = unique_name(&format!("vs-{}{client}", if warmup { "warmup-" } else { "" }));
    kafka.create_topic(&topic, PARTITIONS_A);
    let w = Workload {
        bootstrap: &b,
        topic: &topic,
        partitions: PARTITIONS_A,
        records: n,
        codec: "none",
    };
    let pass = lineup.produce_then_consume(c, &w, input, timeout);
    if verbose() {
        eprintln!(
            "{client} produce stderr: {}\n{client} consume stderr: {}",
            String::from_utf8_lossy(&pass.produce.stderr),
            String::from_utf8_lossy(&pass.consume.stderr)
        );
    }
    pass
}

fn pressure_settings() -> Pressure {
    Pressure {
        partitions: env_num("PRESSURE_PARTITIONS", PRESSURE_PARTITIONS).clamp(1, i32::MAX as u64) as i32,
        workers: 8,
        buffer: 500,
        resume_below: 250,
        duration: Duration::from_secs(env_num("PRESSURE_SECS", 10)),
        warmup: Duration::from_secs(2),
        work_rounds: env_num("WORK_ROUNDS", 2) as usize,
        poll_max: 1000,
        fetch_max_wait: Duration::from_millis(500),
    }
}

/// `target_ms`: `weir.buffer.target.ms` (`None`: the default, rate-sized).
fn pressure_args(
    b: &str,
    topic: &str,
    p: &Pressure,
    by_name: bool,
    budget: usize,
    target_ms: Option<u64>,
) -> Vec<String> {
    vec![
        b.to_owned(),
        topic.to_owned(),
        p.partitions.to_string(),
        p.workers.to_string(),
        p.buffer.to_string(),
        p.resume_below.to_string(),
        p.duration.as_millis().to_string(),
        p.warmup.as_millis().to_string(),
        p.work_rounds.to_string(),
        p.poll_max.to_string(),
        p.fetch_max_wait.as_millis().to_string(),
        if by_name { "name" } else { "handle" }.to_owned(),
        budget.to_string(),
        target_ms.map_or("default".to_owned(), |t| t.to_string()),
    ]
}

#[derive(Default)]
struct PressureSamples {
    rate: Vec<f64>,
    pauses: Vec<f64>,
    resumes: Vec<f64>,
    cpu: Vec<f64>,
    cpu_per_mrec: Vec<f64>,
    rss_mib: Vec<f64>,
    max_partition: u64,
    min_partition: u64,
}

fn section_b(kafka: &Kafka, lineup: &Lineup, runs: usize) {
    let fg = &lineup.franz_go;
    let rdk = RdkPressure::require();
    let b = kafka.bootstrap();
    let p = pressure_settings();
    let per = env_num("PRESSURE_PER_PARTITION", 20_000);
    let topic = unique_name("vs-pressure");
    kafka.create_topic(&topic, p.partitions);
    let total = per * p.partitions as u64;
    println!(
        "\n== b) bounded buffers: {} partitions x {per} records x {VALUE} B pre-filled; buffer {} records per partition, \
         resume below {}; {} workers, {} FNV-1a pass(es) per record; poll {} records; fetch max wait {} ms; \
         {} s per run ({} s warm-up not counted); librdkafka {} (peers/c/pressure.c)",
        p.partitions,
        p.buffer,
        p.resume_below,
        p.workers,
        p.work_rounds,
        p.poll_max,
        p.fetch_max_wait.as_millis(),
        p.duration.as_secs(),
        p.warmup.as_secs(),
        rdk.version()
    );
    let started = Instant::now();
    let fill = run_measured(
        fg.produce_chunked_cmd(&b, &topic, total, VALUE, PREFILL_CHUNK.min(per), p.partitions),
        Input::Null,
        false,
        Duration::from_secs(1200),
    );
    check("pre-fill", &fill);
    // The pre-fill's pages are written back before the first run: a run reading while gigabytes are written back
    // measures the disk (seen at 10,000 partitions: the first clients of the first run read next to nothing).
    let _ = std::process::Command::new("sync").status();
    println!(
        "  pre-filled {total} records in {:.1} s (franz-go, {} records per partition in turn)",
        started.elapsed().as_secs_f64(),
        PREFILL_CHUNK.min(per)
    );
    // franz-go last: the ratios are against it.
    let rows = [
        "weir",
        "weir-by-name",
        "weir-fixed",
        "weir-1GiB",
        "librdkafka",
        "franz-go",
    ];
    let mut samples: Vec<PressureSamples> = rows.iter().map(|_| PressureSamples::default()).collect();
    let timeout = p.duration + Duration::from_secs(120);
    for run in 0..runs {
        for k in 0..rows.len() {
            let r = (run + k) % rows.len();
            let cmd = match r {
                0 => lineup.weir_child("pressure", &pressure_args(&b, &topic, &p, false, 0, None)),
                1 => lineup.weir_child("pressure", &pressure_args(&b, &topic, &p, true, 0, None)),
                2 => lineup.weir_child("pressure", &pressure_args(&b, &topic, &p, false, 0, Some(0))),
                3 => lineup.weir_child("pressure", &pressure_args(&b, &topic, &p, false, 1 << 30, None)),
                4 => rdk.pressure_cmd(&b, &topic, &p),
                _ => fg.pressure_cmd(&b, &topic, &p),
            };
            let m = run_measured(cmd, Input::Null, false, timeout);
            check(&format!("{} pressure", rows[r]), &m);
            let out = String::from_utf8_lossy(&m.stdout).into_owned();
            let num =
                |k: &str| json_number(&out, k).unwrap_or_else(|| panic!("{} printed no {k}: {out}", rows[r]));
            assert_eq!(
                num("out_of_order"),
                0.0,
                "{}: records out of order: {out}",
                rows[r]
            );
            let max_partition = num("max_partition") as u64;
            let s = &mut samples[r];
            s.rate.push(num("records_per_s"));
            s.pauses.push(num("pauses_per_s"));
            s.resumes.push(num("resumes_per_s"));
            s.cpu.push(m.cpu());
            s.cpu_per_mrec.push(m.cpu() / (num("records_total") / 1e6));
            s.rss_mib.push(m.max_rss_kib as f64 / 1024.0);
            bench_out::record(
                BENCH,
                &format!("bounded buffers, {} x {} records", p.partitions, count_label(per)),
                rows[r],
                run + 1,
                &[
                    ("partitions", p.partitions.into()),
                    ("records_per_partition", per.into()),
                    ("record_size", VALUE.into()),
                    ("workers", p.workers.into()),
                    ("buffer", p.buffer.into()),
                    ("resume_below", p.resume_below.into()),
                    ("work_rounds", p.work_rounds.into()),
                    ("duration_s", p.duration.as_secs_f64().into()),
                ],
                &[
                    ("wall_s", m.wall.as_secs_f64()),
                    ("cpu_s", m.cpu()),
                    ("peak_rss_mib", m.max_rss_kib as f64 / 1024.0),
                    ("records_per_s", num("records_per_s")),
                    ("pauses_per_s", num("pauses_per_s")),
                    ("resumes_per_s", num("resumes_per_s")),
                    ("cpu_s_per_m_records", m.cpu() / (num("records_total") / 1e6)),
                ],
            );
            s.max_partition = s.max_partition.max(max_partition);
            s.min_partition = if s.rate.len() == 1 {
                num("min_partition") as u64
            } else {
                s.min_partition.min(num("min_partition") as u64)
            };
            println!(
                "  run {} {:<12} {:>9.0} rec/s, {:>7.0} pauses/s, {:>7.0} resumes/s, CPU {:.2} s, peak RSS {:.0} MiB, \
                 partitions read {}–{} records ({} none)",
                run + 1,
                rows[r],
                num("records_per_s"),
                num("pauses_per_s"),
                num("resumes_per_s"),
                m.cpu(),
                m.max_rss_kib as f64 / 1024.0,
                num("min_partition"),
                max_partition,
                num("zero_partitions")
            );
            if verbose() {
                eprintln!("{out}{}", String::from_utf8_lossy(&m.stderr));
            }
            if max_partition >= per {
                println!(
                    "    ^ {}: some partition was read to its end ({per} records) within the run: the rate is a lower \
                     bound for this run (records/s are counted over all partitions; raise PRESSURE_PER_PARTITION)",
                    rows[r]
                );
            }
        }
    }
    println!(
        "\nmedians [min–max] of {runs} runs; CPU = user + sys of the client process over the whole run ({} s, \
         start-up included); CPU per M records = CPU / all records processed",
        p.duration.as_secs()
    );
    println!("| client | records/s | pauses/s | resumes/s | CPU s | CPU s per M records | peak RSS MiB | records per partition, min–max over runs |\n|---|---:|---:|---:|---:|---:|---:|---:|");
    for (r, row) in rows.iter().enumerate() {
        let s = &samples[r];
        println!(
            "| {row} | {} | {} | {} | {} | {} | {} | {}–{} |",
            fmt_stat(&s.rate, "", 0),
            fmt_stat(&s.pauses, "", 0),
            fmt_stat(&s.resumes, "", 0),
            fmt_stat(&s.cpu, "", 2),
            fmt_stat(&s.cpu_per_mrec, "", 2),
            fmt_stat(&s.rss_mib, "", 0),
            s.min_partition,
            s.max_partition
        );
    }
    let fgi = rows.len() - 1;
    let rdki = rows
        .iter()
        .position(|r| *r == "librdkafka")
        .expect("a librdkafka row");
    for (r, row) in rows.iter().enumerate().take(fgi) {
        let mut against = vec![fgi];
        if *row == "weir" {
            against.push(rdki);
        }
        for o in against {
            let ratio =
                |f: fn(&PressureSamples) -> &Vec<f64>| median(f(&samples[r])) / median(f(&samples[o]));
            println!(
                "{row} / {}: records/s {:.2}x, pauses/s {:.2}x, CPU per M records {:.2}x, peak RSS {:.2}x",
                rows[o],
                ratio(|s| &s.rate),
                ratio(|s| &s.pauses),
                ratio(|s| &s.cpu_per_mrec),
                ratio(|s| &s.rss_mib)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The weir child
// ---------------------------------------------------------------------------------------------

fn child(mode: &str, args: &[String]) {
    if run_child(mode, args) {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match mode {
        "pressure" => pressure(&rt, args),
        _ => panic!("vs_peers: unknown child mode {mode}"),
    }
}

/// The per-record work, identical to `fnvWork` in peers/go/pressure.go: `rounds` passes of 64-bit FNV-1a.
fn fnv_work(v: &[u8], rounds: usize) -> u64 {
    let mut h: u64 = 14695981039346656037;
    for _ in 0..rounds {
        for &b in v {
            h ^= b as u64;
            h = h.wrapping_mul(1099511628211);
        }
    }
    h
}

/// One partition's application buffer: its record count and whether the application paused it; the lock is
/// held across the client's pause or resume call (as in pressure.go).
#[repr(align(64))]
#[derive(Default)]
struct PartState {
    m: Mutex<(usize, bool)>,
}

/// The pressure workload on weir, the same design as `peers/go/pressure.go` (see there).
fn pressure(rt: &tokio::runtime::Runtime, args: &[String]) {
    let b = args[0].clone();
    let topic = args[1].clone();
    let num = |i: usize| -> u64 { args[i].parse().unwrap() };
    let partitions = num(2) as i32;
    let workers = num(3) as usize;
    let buffer = num(4) as usize;
    let resume_below = num(5) as usize;
    let duration = Duration::from_millis(num(6));
    let warmup = Duration::from_millis(num(7));
    let rounds = num(8) as usize;
    let poll_max = num(9) as usize;
    let max_wait = num(10);
    let by_name = args[11] == "name";
    let budget = num(12) as usize;

    let mut cfg = ConsumerConfig::new(&b);
    cfg.set("fetch.max.wait.ms", &max_wait.to_string()).unwrap();
    if args[13] != "default" {
        cfg.set("weir.buffer.target.ms", &args[13]).unwrap();
    }
    if budget > 0 {
        cfg.memory_budget = budget;
    }
    let _guard = rt.enter();
    let consumer = Arc::new(Consumer::new(cfg).expect("consumer"));
    let tps: Vec<TopicPartition> = (0..partitions).map(|p| TopicPartition::new(&*topic, p)).collect();
    rt.block_on(
        consumer.assign(
            &tps.iter()
                .map(|tp| (tp.clone(), StartOffset::Earliest))
                .collect::<Vec<_>>(),
        ),
    )
    .expect("assign");
    let handles: Arc<Vec<ConsumerPartition>> = Arc::new(
        tps.iter()
            .map(|tp| consumer.partition(tp).expect("assigned"))
            .collect(),
    );
    let tps = Arc::new(tps);
    let pause = {
        let (c, h, t) = (consumer.clone(), handles.clone(), tps.clone());
        move |p: usize| {
            if by_name {
                c.pause(std::slice::from_ref(&t[p])).unwrap();
            } else {
                h[p].pause().unwrap();
            }
        }
    };
    let resume = {
        let (c, h, t) = (consumer.clone(), handles.clone(), tps.clone());
        move |p: usize| {
            if by_name {
                c.resume(std::slice::from_ref(&t[p])).unwrap();
            } else {
                h[p].resume().unwrap();
            }
        }
    };

    let parts: Arc<Vec<PartState>> = Arc::new((0..partitions).map(|_| PartState::default()).collect());
    let delivered = Arc::new(AtomicI64::new(0));
    let pauses = Arc::new(AtomicI64::new(0));
    let resumes = Arc::new(AtomicI64::new(0));
    let disorder = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sink = Arc::new(AtomicU64::new(0));
    // Records processed per partition and the next expected offset: each partition is owned by one worker.
    let per_part: Arc<Vec<AtomicI64>> = Arc::new((0..partitions).map(|_| AtomicI64::new(0)).collect());
    let mut senders = Vec::new();
    let mut threads = Vec::new();
    for _ in 0..workers {
        let (tx, rx) = mpsc::channel::<Vec<ConsumerRecord>>();
        senders.push(tx);
        let (parts, delivered, resumes, disorder, stop, sink, per_part, resume) = (
            parts.clone(),
            delivered.clone(),
            resumes.clone(),
            disorder.clone(),
            stop.clone(),
            sink.clone(),
            per_part.clone(),
            resume.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut next = vec![0i64; partitions as usize];
            let mut acc = 0u64;
            while let Ok(batch) = rx.recv() {
                // Records of one partition are contiguous in a poll: settle each run at once.
                let mut i = 0;
                while i < batch.len() {
                    let p = batch[i].partition as usize;
                    let mut j = i;
                    while j < batch.len() && batch[j].partition as usize == p {
                        let r = &batch[j];
                        acc = acc.wrapping_add(fnv_work(r.value.as_deref().unwrap_or_default(), rounds));
                        if r.offset != next[p] {
                            disorder.fetch_add(1, Ordering::Relaxed);
                        }
                        next[p] = r.offset + 1;
                        j += 1;
                    }
                    let n = j - i;
                    i = j;
                    if stop.load(Ordering::Relaxed) {
                        continue;
                    }
                    per_part[p].fetch_add(n as i64, Ordering::Relaxed);
                    delivered.fetch_add(n as i64, Ordering::Relaxed);
                    let mut s = parts[p].m.lock().unwrap();
                    s.0 -= n;
                    if s.1 && s.0 < resume_below {
                        s.1 = false;
                        resume(p);
                        resumes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            sink.fetch_add(acc, Ordering::Relaxed);
        }));
    }

    let start = Instant::now();
    let take = || {
        (
            delivered.load(Ordering::Relaxed),
            pauses.load(Ordering::Relaxed),
            resumes.load(Ordering::Relaxed),
        )
    };
    let mut at_warmup = None;
    let mut batches: Vec<Vec<ConsumerRecord>> = (0..workers).map(|_| Vec::new()).collect();
    rt.block_on(async {
        loop {
            let el = start.elapsed();
            if at_warmup.is_none() && el >= warmup {
                at_warmup = Some(take());
            }
            if el >= duration {
                break;
            }
            let recs = consumer
                .poll(poll_max, Duration::from_millis(100))
                .await
                .expect("poll");
            // Count each partition's run into its buffer, pausing partitions that became full.
            let mut it = recs.into_iter().peekable();
            while let Some(first) = it.next() {
                let p = first.partition as usize;
                let w = p % workers;
                let mut n = 1;
                batches[w].push(first);
                while let Some(r) = it.next_if(|r| r.partition as usize == p) {
                    batches[w].push(r);
                    n += 1;
                }
                let mut s = parts[p].m.lock().unwrap();
                s.0 += n;
                if !s.1 && s.0 >= buffer {
                    s.1 = true;
                    pause(p);
                    pauses.fetch_add(1, Ordering::Relaxed);
                }
            }
            for (w, batch) in batches.iter_mut().enumerate() {
                if !batch.is_empty() {
                    senders[w].send(std::mem::take(batch)).unwrap();
                }
            }
        }
    });
    let end = take();
    let w0 = at_warmup.unwrap_or((0, 0, 0));
    let window = (duration - warmup).as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    drop(senders);
    for t in threads {
        t.join().unwrap();
    }
    let counts: Vec<i64> = per_part.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let stats = consumer.stats();
    rt.block_on(consumer.close()).unwrap();
    println!(
        "{{\"client\":\"weir\",\"records\":{},\"seconds\":{window},\"records_per_s\":{},\"pauses_per_s\":{},\
         \"resumes_per_s\":{},\"records_total\":{},\"pauses_total\":{},\"resumes_total\":{},\"min_partition\":{},\
         \"max_partition\":{},\"zero_partitions\":{},\"out_of_order\":{},\"checksum\":{},\"fetches\":{},\"backpressure_pauses\":{}}}",
        end.0 - w0.0,
        (end.0 - w0.0) as f64 / window,
        (end.1 - w0.1) as f64 / window,
        (end.2 - w0.2) as f64 / window,
        end.0,
        end.1,
        end.2,
        counts.iter().min().unwrap(),
        counts.iter().max().unwrap(),
        counts.iter().filter(|&&c| c == 0).count(),
        disorder.load(Ordering::Relaxed),
        sink.load(Ordering::Relaxed),
        stats.fetches,
        stats.backpressure_pauses
    );
}
