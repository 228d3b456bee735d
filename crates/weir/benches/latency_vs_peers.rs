//! End-to-end latency at a fixed rate: weir vs librdkafka vs franz-go vs the Java client, on one real broker.
//!
//! `cargo bench -p weir --bench latency_vs_peers` (about 4 clients x 2 cases x RUNS x (DURATION_S + WARMUP_S +
//! start-up): about 15 minutes with RUNS=3 on 2 cores). Starts its own single-node Apache Kafka
//! (`weir_testkit::Kafka::start(Shape::Single)`); then, for each case and run, every client (in an order that
//! rotates every run) runs its latency driver on a fresh topic of `PARTITIONS` partitions:
//!
//! - one process produces records at a fixed schedule, record `i` due at `origin + i / RATE`, for `WARMUP_S +
//!   DURATION_S` seconds, sleeping until each record is due (the OS's precise sleep: a plain thread, not an async
//!   timer) or not at all when behind; each value (`RECORD_SIZE` bytes) starts with the run's id, the record's
//!   number and its intended send time;
//! - the same process reads the topic back (every partition assigned, from the start of the fresh topic, no group)
//!   and records receive time − intended send time for every record after the warm-up: no coordinated omission,
//!   a stall delays the records behind it in the figures too;
//! - it prints one JSON line: the count, p50/p90/p99/p99.9/max end to end (ms), the same from the intended send
//!   time to the acknowledgement, and how many scheduled records were never read, which must be 0 (asserted
//!   here, with the count of measured records).
//!
//! The drivers: weir (this binary re-executed as a child, `WEIR_LATENCY_CHILD=1`: weir's `Producer` and
//! `Consumer` in one tokio runtime, the schedule on its own thread, which also polls the delivery futures between
//! two records, as the C driver serves librdkafka's delivery reports in its loop); franz-go
//! (`franz-go-peer latency`, `peers/go/latency.go`); the Java client (`weir.peer.Main latency`,
//! `peers/java/.../Latency.java`, with the JVM options of `weir_testkit::peers::java`: C1 only, serial GC);
//! librdkafka 2.16 (`peers/c/latency.c`, compiled here with `cc`, see `weir_testkit::peers::rdk_latency`).
//! Histograms: HDR (3 significant digits) in Rust, Go and Java; exact sorted samples in C.
//!
//! Two cases:
//! - **aligned**: acks=all, idempotent, linger 0 ms, fetch max wait 500 ms, fetch min bytes 1, no compression;
//! - **defaults**: each client as it comes (no compression everywhere): weir linger 5 ms / fetch max wait 500 ms;
//!   librdkafka linger.ms 5 / fetch.wait.max.ms 500 and *not* idempotent (its default); franz-go linger 10 ms /
//!   FetchMaxWait 5 s; Java linger.ms 5 / fetch.max.wait.ms 500. All acks=all.
//!
//! Env: `RUNS` (3), `RATE` (10000), `DURATION_S` (20), `WARMUP_S` (5), `RECORD_SIZE` (100), `PARTITIONS` (6),
//! `CLIENTS` (`weir,librdkafka,franz-go,java`), `CASES` (`aligned,defaults`). Peers: `WEIR_FRANZ_GO`,
//! `WEIR_JAVA_PEER_DIR`, `WEIR_RDK_LIB` as for the other benches. With `WEIR_BENCH_OUT` set, every run of every
//! client is appended there as a results line (`weir_testkit::bench_out`).
//!
//! Diagnosis (run a driver by hand): `LATENCY_DIAG=1` makes the weir child print weir's own metrics of the
//! measured part (Produce and Fetch round trips, batch sizes) and the Java driver its producer metrics;
//! `RDK_LATENCY_STATS=FILE` with `producer.statistics.interval.ms=N` keeps librdkafka's statistics (rtt,
//! int_latency); `LATENCY_ROUND_ROBIN=1` sends weir's record `i` to partition `i % PARTITIONS`.

// Only the check, the settings parser and the statistics of the shared bench helpers are used here.
#[allow(dead_code)]
mod clients;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use clients::{check, split_setting, stats};
use futures::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::Value;
use std::task::Poll;
use tokio::sync::watch;
use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::producer::RecordMetadata;
use weir::{Producer, ProducerRecord};
use weir_testkit::bench_env::{list as env_list, num as env_num};
use weir_testkit::bench_out;
use weir_testkit::peers::franz_go::{run_measured, FranzGo, Input, Measured};
use weir_testkit::peers::java::JavaPeer;
use weir_testkit::peers::rdk_latency::RdkLatency;
use weir_testkit::{unique_name, Kafka, Shape};

/// The bench's name in its results lines.
const BENCH: &str = "latency_vs_peers";
const CHILD_ENV: &str = "WEIR_LATENCY_CHILD";
/// Bytes of the header at the start of every value: run id, record number, intended send time (ns).
const HEADER_LEN: usize = 24;
/// Every client, in the order of the tables.
const ALL_CLIENTS: [&str; 4] = ["weir", "librdkafka", "franz-go", "java"];

/// What every driver is told.
#[derive(Debug, Clone, Copy)]
struct Load {
    rate: u64,
    duration: Duration,
    warmup: Duration,
    record_size: usize,
    partitions: i32,
}

impl Load {
    fn measured_records(&self) -> u64 {
        (self.duration.as_millis() as u64) * self.rate / 1000
    }
}

/// A case: its label and whether the settings are aligned (else each client's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Aligned,
    Defaults,
}

impl Case {
    fn parse(s: &str) -> Case {
        match s {
            "aligned" => Case::Aligned,
            "defaults" => Case::Defaults,
            _ => panic!("{BENCH}: unknown case {s:?} (aligned, defaults)"),
        }
    }

    fn label(self, load: &Load) -> String {
        let settings = match self {
            Case::Aligned => "aligned: acks=all, idempotent, linger 0 ms, fetch wait 500 ms",
            Case::Defaults => "client defaults",
        };
        format!(
            "{} msg/s x {} B, {} partitions, {settings}",
            load.rate, load.record_size, load.partitions
        )
    }

    fn name(self) -> &'static str {
        match self {
            Case::Aligned => "aligned",
            Case::Defaults => "defaults",
        }
    }
}

/// The peers found.
struct Peers {
    franz_go: Option<FranzGo>,
    java: Option<JavaPeer>,
    rdk: Option<RdkLatency>,
}

fn main() {
    if std::env::var_os(CHILD_ENV).is_some() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        weir_child(&args);
        return;
    }
    let runs = env_num("RUNS", 3) as usize;
    let load = Load {
        rate: env_num("RATE", 10_000),
        duration: Duration::from_secs(env_num("DURATION_S", 20)),
        warmup: Duration::from_secs(env_num("WARMUP_S", 5)),
        record_size: env_num("RECORD_SIZE", 100) as usize,
        partitions: env_num("PARTITIONS", 6) as i32,
    };
    assert!(
        load.record_size >= HEADER_LEN,
        "{BENCH}: RECORD_SIZE must be at least {HEADER_LEN}"
    );
    let clients: Vec<String> = env_list("CLIENTS", &ALL_CLIENTS.join(","));
    for c in &clients {
        assert!(
            ALL_CLIENTS.contains(&c.as_str()),
            "{BENCH}: unknown client {c:?} ({ALL_CLIENTS:?})"
        );
    }
    let cases: Vec<Case> = env_list("CASES", "aligned,defaults")
        .iter()
        .map(|s| Case::parse(s))
        .collect();
    let wanted = |c: &str| clients.iter().any(|x| x == c);
    let peers = Peers {
        franz_go: wanted("franz-go").then(FranzGo::require),
        java: wanted("java").then(JavaPeer::require),
        rdk: wanted("librdkafka").then(RdkLatency::require),
    };

    eprintln!("starting Apache Kafka (single node) ...");
    let kafka = Kafka::start(Shape::Single);
    let mut facts = vec![("broker".to_owned(), format!("Apache Kafka {}", kafka.version()))];
    if let Some(fg) = &peers.franz_go {
        facts.push(("franz-go".into(), fg.version().into()));
    }
    if let Some(j) = &peers.java {
        facts.push((
            "java".into(),
            format!("kafka-clients {}", j.kafka_clients_version()),
        ));
    }
    if let Some(r) = &peers.rdk {
        facts.push(("librdkafka".into(), r.version().into()));
    }
    println!(
        "{BENCH}: {}; {} CPUs; {} msg/s x {} B for {} s after a {} s warm-up, {} partitions; {runs} runs",
        facts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.rate,
        load.record_size,
        load.duration.as_secs(),
        load.warmup.as_secs(),
        load.partitions
    );
    bench_out::meta(
        BENCH,
        &facts
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
    );

    // One short untimed pass of each client: the broker's JIT, its first producer-id allocations and topic
    // creations are not charged to whichever client happens to run first.
    let short = Load {
        duration: Duration::from_secs(2),
        warmup: Duration::from_secs(1),
        ..load
    };
    for c in &clients {
        one(&kafka, &peers, c, Case::Aligned, &short);
    }
    for case in cases {
        run_case(&kafka, &peers, &clients, case, &load, runs);
    }
}

/// One run's figures of one client.
#[derive(Debug, Clone, Default)]
struct Figures {
    p50: Vec<f64>,
    p99: Vec<f64>,
    p999: Vec<f64>,
    max: Vec<f64>,
    ack_p99: Vec<f64>,
    cpu: Vec<f64>,
}

fn run_case(kafka: &Kafka, peers: &Peers, clients: &[String], case: Case, load: &Load, runs: usize) {
    let label = case.label(load);
    println!("\n== {label}");
    let mut figures = vec![Figures::default(); clients.len()];
    for run in 0..runs {
        for k in 0..clients.len() {
            let c = (run + k) % clients.len();
            let client = clients[c].as_str();
            let (out, m) = one(kafka, peers, client, case, load);
            // What else ran on the machine meanwhile: the tails follow it (see docs/benchmarks.md).
            let host_load = host_load_1m();
            let num = |key: &str| out.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN);
            let f = &mut figures[c];
            f.p50.push(num("p50_ms"));
            f.p99.push(num("p99_ms"));
            f.p999.push(num("p999_ms"));
            f.max.push(num("max_ms"));
            f.ack_p99.push(num("ack_p99_ms"));
            f.cpu.push(m.cpu());
            println!(
                "  run {} {client:<10} p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms | send→ack p50 {:.2} p99 {:.2} ms | CPU {:.2} s | load {:.1}",
                run + 1,
                num("p50_ms"),
                num("p99_ms"),
                num("p999_ms"),
                num("max_ms"),
                num("ack_p50_ms"),
                num("ack_p99_ms"),
                m.cpu(),
                host_load
            );
            bench_out::record(
                BENCH,
                &label,
                client,
                run + 1,
                &[
                    ("settings", case.name().into()),
                    ("rate", load.rate.into()),
                    ("record_size", load.record_size.into()),
                    ("partitions", load.partitions.into()),
                    ("duration_s", load.duration.as_secs().into()),
                ],
                &[
                    ("p50_ms", num("p50_ms")),
                    ("p90_ms", num("p90_ms")),
                    ("p99_ms", num("p99_ms")),
                    ("p999_ms", num("p999_ms")),
                    ("max_ms", num("max_ms")),
                    ("ack_p50_ms", num("ack_p50_ms")),
                    ("ack_p99_ms", num("ack_p99_ms")),
                    ("cpu_s", m.cpu()),
                    ("host_load_1m", host_load),
                    ("peak_rss_mib", m.max_rss_kib as f64 / 1024.0),
                ],
            );
        }
    }
    println!("\nmedians [min–max] of {runs} runs, end-to-end latency in ms (intended send → received); CPU = user + sys of the client process");
    println!(
        "| client | p50 | p99 | p99.9 | max | send→ack p99 | CPU s | p99 / weir's | runs with p99 ≤ weir's |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let weir = clients.iter().position(|c| c == "weir");
    let fmt = |v: &[f64]| {
        let (m, lo, hi) = stats(v);
        format!("{m:.2} [{lo:.2}–{hi:.2}]")
    };
    for (c, client) in clients.iter().enumerate() {
        let f = &figures[c];
        let (ratio, paired) = match weir {
            Some(w) if w == c => ("1.00x".to_owned(), "–".to_owned()),
            Some(w) => {
                let w = &figures[w].p99;
                // Run k of every client ran back to back, under about the same load from the rest of the machine.
                let at_most = f.p99.iter().zip(w).filter(|(x, y)| x <= y).count();
                (
                    format!("{:.2}x", stats(&f.p99).0 / stats(w).0),
                    format!("{at_most} of {}", w.len()),
                )
            }
            None => ("–".to_owned(), "–".to_owned()),
        };
        println!(
            "| {client} | {} | {} | {} | {} | {} | {} | {ratio} | {paired} |",
            fmt(&f.p50),
            fmt(&f.p99),
            fmt(&f.p999),
            fmt(&f.max),
            fmt(&f.ack_p99),
            fmt(&f.cpu)
        );
    }
}

/// One run of one client's driver on a fresh topic; its JSON line, checked, and its resource use.
fn one(kafka: &Kafka, peers: &Peers, client: &str, case: Case, load: &Load) -> (Value, Measured) {
    let b = kafka.bootstrap();
    let topic = unique_name(&format!("lat-{client}"));
    kafka.create_topic(&topic, load.partitions);
    let aligned = case == Case::Aligned;
    let cmd = match client {
        "weir" => {
            let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
            cmd.env(CHILD_ENV, "1").args(load_args(&b, &topic, load));
            if aligned {
                cmd.args(["producer.linger.ms=0", "consumer.fetch.max.wait.ms=500"]);
            }
            cmd
        }
        "librdkafka" => {
            let settings: &[&str] = if aligned {
                &["producer.linger.ms=0", "consumer.fetch.wait.max.ms=500"]
            } else {
                // The driver turns idempotence on; librdkafka's own default is off.
                &["producer.enable.idempotence=false"]
            };
            peers.rdk.as_ref().expect("librdkafka driver").command(
                &b,
                &topic,
                load.partitions,
                load.rate,
                load.duration,
                load.warmup,
                load.record_size,
                settings,
            )
        }
        "franz-go" => {
            let mut cmd = peers.franz_go.as_ref().expect("franz-go peer").command();
            cmd.args(["latency", "--brokers", &b, "--topic", &topic])
                .args(["--partitions", &load.partitions.to_string()])
                .args(["--rate", &load.rate.to_string()])
                .args(["--duration", &format!("{}ms", load.duration.as_millis())])
                .args(["--warmup", &format!("{}ms", load.warmup.as_millis())])
                .args(["--record-size", &load.record_size.to_string()]);
            if aligned {
                cmd.args(["--linger-ms", "0", "--fetch-max-wait-ms", "500"]);
            }
            cmd
        }
        "java" => {
            let mut cmd = peers.java.as_ref().expect("Java peer").command("latency");
            cmd.args(["--bootstrap", &b, "--topic", &topic])
                .args(["--partitions", &load.partitions.to_string()])
                .args(["--rate", &load.rate.to_string()])
                .args(["--duration-ms", &load.duration.as_millis().to_string()])
                .args(["--warmup-ms", &load.warmup.as_millis().to_string()])
                .args(["--record-size", &load.record_size.to_string()]);
            if aligned {
                cmd.args(["--linger-ms", "0", "--fetch-max-wait-ms", "500"]);
            }
            cmd
        }
        other => panic!("{BENCH}: unknown client {other}"),
    };
    let timeout = load.duration + load.warmup + Duration::from_secs(90);
    let m = run_measured(cmd, Input::Null, false, timeout);
    check(&format!("{client} latency on {topic}"), &m);
    let text = String::from_utf8_lossy(&m.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "{BENCH}: {client} printed no JSON line; stdout:\n{text}\nstderr:\n{}",
                String::from_utf8_lossy(&m.stderr)
            )
        });
    let out: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{BENCH}: {client} printed {line:?}: {e}"));
    let int = |key: &str| {
        out.get(key)
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{BENCH}: {client}'s line has no {key}: {line}"))
    };
    assert_eq!(
        int("missing"),
        0,
        "{BENCH}: {client} did not read every record: {line}"
    );
    assert_eq!(int("failed"), 0, "{BENCH}: {client}: records failed: {line}");
    assert_eq!(
        int("count"),
        load.measured_records(),
        "{BENCH}: {client} measured another number of records than scheduled: {line}"
    );
    (out, m)
}

/// The host's 1-minute load average (`/proc/loadavg`), NaN where there is none.
fn host_load_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn load_args(b: &str, topic: &str, load: &Load) -> Vec<String> {
    vec![
        b.to_owned(),
        topic.to_owned(),
        load.partitions.to_string(),
        load.rate.to_string(),
        load.duration.as_millis().to_string(),
        load.warmup.as_millis().to_string(),
        load.record_size.to_string(),
    ]
}

// ---------------------------------------------------------------------------------------------
// The weir driver (the child)
// ---------------------------------------------------------------------------------------------

/// Latencies in nanoseconds, 1 ns to an hour, 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1e6
}

/// What the reading task saw.
struct Receipts {
    latency: Histogram<u64>,
    received: u64,
    count: u64,
    duplicates: u64,
    foreign: u64,
}

/// `BROKERS TOPIC PARTITIONS RATE DURATION_MS WARMUP_MS RECORD_SIZE [producer.K=V|consumer.K=V|K=V...]`: the
/// same method as the peers' drivers (see the file's header); prints one JSON line.
fn weir_child(args: &[String]) {
    let (b, topic) = (args[0].clone(), args[1].clone());
    let num = |i: usize| -> u64 { args[i].parse().expect("a number") };
    let partitions = num(2) as i32;
    let rate = num(3);
    let warmup = num(5) * rate / 1000;
    let total = warmup + num(4) * rate / 1000;
    let size = num(6) as usize;
    let mut pcfg = ProducerConfig::new(&b);
    let mut ccfg = ConsumerConfig::new(&b);
    for s in &args[7..] {
        let (k, v) = split_setting(s);
        if let Some(k) = k.strip_prefix("producer.") {
            pcfg.set(k, v).unwrap_or_else(|e| panic!("{k}: {e}"));
        } else if let Some(k) = k.strip_prefix("consumer.") {
            ccfg.set(k, v).unwrap_or_else(|e| panic!("{k}: {e}"));
        } else {
            pcfg.set(k, v).unwrap_or_else(|e| panic!("{k}: {e}"));
            ccfg.set(k, v).unwrap_or_else(|e| panic!("{k}: {e}"));
        }
    }
    // `LATENCY_DIAG=1`: weir's own metrics of the measured part (request round trips, batch sizes, fetches) on
    // stderr after the run, to tell where the time goes.
    let diag = std::env::var("LATENCY_DIAG").is_ok_and(|v| v == "1").then(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::set_global_recorder(recorder).expect("the only recorder");
        snapshotter
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let consumer = Arc::new(rt.block_on(async { Consumer::new(ccfg) }).expect("consumer"));
    let assignment: Vec<_> = (0..partitions)
        .map(|p| (TopicPartition::new(&*topic, p), StartOffset::Earliest))
        .collect();
    rt.block_on(consumer.assign(&assignment)).expect("assign");
    let producer = rt.block_on(async { Producer::new(pcfg) }).expect("producer");
    let run: u64 = rand::random();
    // `LATENCY_ROUND_ROBIN=1` (diagnosis): record i to partition i % PARTITIONS instead of the default partitioner.
    let round_robin = std::env::var("LATENCY_ROUND_ROBIN").is_ok_and(|v| v == "1");

    let origin = Instant::now();
    let mut acks = Acks {
        latency: histogram(),
        acked: 0,
        failed: 0,
    };
    // The delivery futures are polled by the schedule's thread between two records, with a waker that does
    // nothing (as the C driver serves librdkafka's delivery reports with rd_kafka_poll(0) in its loop): a batch's
    // acknowledgement wakes no thread, and is timed at most one interval (1 / RATE) late.
    let mut pending = FuturesUnordered::new();
    let noop = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&noop);
    let (done_tx, done_rx) = watch::channel::<Option<(u64, Instant)>>(None);
    let reader = {
        let consumer = consumer.clone();
        rt.spawn(async move { receive(&consumer, run, origin, warmup, total, done_rx).await })
    };

    // The schedule, on this (non-runtime) thread: std's sleep is precise to tens of microseconds, tokio's timer
    // to a millisecond, which would send records in bursts of RATE/1000 and add up to 1 ms to their latency.
    let filler = vec![b'x'; size - HEADER_LEN];
    let handle = rt.handle().clone();
    for seq in 0..total {
        let due = Duration::from_nanos((seq as u128 * 1_000_000_000 / rate as u128) as u64);
        if let (Some(snapshotter), true) = (&diag, seq == warmup) {
            snapshotter.snapshot(); // the warm-up's figures are dropped
        }
        let elapsed = origin.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
        let mut value = BytesMut::with_capacity(size);
        value.put_u64(run);
        value.put_u64(seq);
        value.put_u64(nanos(due));
        value.put_slice(&filler);
        let mut record = ProducerRecord::new(&*topic, Bytes::from(value));
        if round_robin {
            record = record.partition((seq % partitions as u64) as i32);
        }
        let delivery = handle.block_on(producer.send(record)).expect("send");
        pending.push(async move { (seq, due, delivery.await) });
        while let Poll::Ready(Some((seq, due, result))) = pending.poll_next_unpin(&mut cx) {
            acks.tally(seq, due, result, origin, warmup);
        }
    }
    rt.block_on(producer.flush()).expect("flush");
    rt.block_on(async {
        while let Some((seq, due, result)) = pending.next().await {
            acks.tally(seq, due, result, origin, warmup);
        }
    });
    let Acks {
        latency: ack_latency,
        acked,
        failed,
    } = acks;
    let _ = done_tx.send(Some((acked, Instant::now() + Duration::from_secs(10))));
    let r = rt.block_on(reader).expect("reader task");
    if let Some(snapshotter) = &diag {
        print_diag(snapshotter);
    }
    rt.block_on(producer.close()).expect("close the producer");
    let _ = rt.block_on(consumer.close());
    let line = serde_json::json!({
        "client": "weir",
        "count": r.count,
        "p50_ms": ms(&r.latency, 0.5),
        "p90_ms": ms(&r.latency, 0.9),
        "p99_ms": ms(&r.latency, 0.99),
        "p999_ms": ms(&r.latency, 0.999),
        "max_ms": r.latency.max() as f64 / 1e6,
        "ack_p50_ms": ms(&ack_latency, 0.5),
        "ack_p99_ms": ms(&ack_latency, 0.99),
        "ack_max_ms": ack_latency.max() as f64 / 1e6,
        "scheduled": total,
        "acked": acked,
        "failed": failed,
        "missing": total - r.received,
        "duplicates": r.duplicates,
        "foreign": r.foreign,
    });
    println!("{line}");
}

/// What the acknowledgements said: the send → acknowledgement latencies of the measured records, how many
/// were acknowledged, how many failed.
struct Acks {
    latency: Histogram<u64>,
    acked: u64,
    failed: u64,
}

impl Acks {
    fn tally(
        &mut self,
        seq: u64,
        due: Duration,
        result: weir::Result<RecordMetadata>,
        origin: Instant,
        warmup: u64,
    ) {
        match result {
            Ok(_) => {
                self.acked += 1;
                if seq >= warmup {
                    self.latency
                        .saturating_record(nanos(origin.elapsed().saturating_sub(due)).max(1));
                }
            }
            Err(e) => {
                if self.failed == 0 {
                    eprintln!("{BENCH}: weir: a record failed: {e}");
                }
                self.failed += 1;
            }
        }
    }
}

/// Reads until `done` names how many records to expect and that many arrived, or its deadline passed.
async fn receive(
    consumer: &Consumer,
    run: u64,
    origin: Instant,
    warmup: u64,
    total: u64,
    mut done: watch::Receiver<Option<(u64, Instant)>>,
) -> Receipts {
    let mut r = Receipts {
        latency: histogram(),
        received: 0,
        count: 0,
        duplicates: 0,
        foreign: 0,
    };
    let mut seen = vec![false; total as usize];
    loop {
        if let Some((expected, deadline)) = *done.borrow_and_update() {
            if r.received >= expected || Instant::now() >= deadline {
                return r;
            }
        }
        let batch = consumer
            .poll(16 * 1024, Duration::from_millis(100))
            .await
            .expect("poll");
        let now = origin.elapsed();
        for rec in &batch {
            let header = rec.value.as_deref().and_then(|v| v.get(..HEADER_LEN));
            let word = |h: &[u8], i: usize| u64::from_be_bytes(h[i..i + 8].try_into().expect("8 bytes"));
            let Some(h) = header.filter(|h| word(h, 0) == run && word(h, 8) < total) else {
                r.foreign += 1;
                continue;
            };
            let seq = word(h, 8);
            if std::mem::replace(&mut seen[seq as usize], true) {
                r.duplicates += 1;
                continue;
            }
            r.received += 1;
            if seq >= warmup {
                r.count += 1;
                let due = Duration::from_nanos(word(h, 16));
                r.latency.saturating_record(nanos(now.saturating_sub(due)).max(1));
            }
        }
    }
}

/// Prints weir's histograms and counters recorded since the warm-up ended, as percentiles, on stderr.
fn print_diag(snapshotter: &Snapshotter) {
    let mut histograms: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut counters: std::collections::BTreeMap<String, u64> = Default::default();
    for (ck, _, _, value) in snapshotter.snapshot().into_vec() {
        let (_, key) = ck.into_parts();
        let labels: Vec<String> = key
            .labels()
            .filter(|l| l.key() != "client_id")
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        match value {
            DebugValue::Histogram(v) => histograms
                .entry(name)
                .or_default()
                .extend(v.into_iter().map(|x| x.into_inner())),
            DebugValue::Counter(n) => *counters.entry(name).or_default() += n,
            DebugValue::Gauge(_) => {}
        }
    }
    for (name, mut v) in histograms.into_iter().filter(|(_, v)| !v.is_empty()) {
        v.sort_by(f64::total_cmp);
        let q = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        eprintln!(
            "diag {name}: n {} mean {:.6} p50 {:.6} p90 {:.6} p99 {:.6} max {:.6}",
            v.len(),
            v.iter().sum::<f64>() / v.len() as f64,
            q(0.5),
            q(0.9),
            q(0.99),
            q(1.0)
        );
    }
    for (name, n) in counters {
        eprintln!("diag {name}: {n}");
    }
}
