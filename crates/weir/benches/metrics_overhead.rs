//! What weir's metrics cost: the CPU of producing and of consuming 1,000,000 records x 100 B with a Prometheus
//! recorder installed, against no recorder at all.
//!
//! `cargo bench -p weir --bench metrics_overhead` (a few minutes on 2 cores). Starts its own single-node Kafka
//! (`weir_testkit::Kafka::start(Shape::Single)`), then runs the weir children of `vs_peers` (this binary
//! re-executed with `WEIR_METRICS_OVERHEAD_CHILD=produce|consume`: the weir `Producer` with pipelined sends, then
//! the weir `Consumer` reading every partition from the start; default settings) on a fresh 6-partition topic per
//! run, once with the recorder and once without, the order alternating from run to run:
//!
//! - **on**: `metrics-exporter-prometheus`'s `PrometheusBuilder::build_recorder`, installed as the global recorder
//!   before the client is created; a thread runs its upkeep every second and renders the exposition (what a
//!   scrape does) every 5 s. At the end the child checks that the exposition has weir's metrics.
//! - **off**: no recorder (every handle a no-op).
//!
//! CPU time (user + sys) and wall time of each child come from `wait4(2)`; the summary gives medians and
//! [min–max] over the runs, and the ratio of the median CPU with the recorder to the median without, for produce
//! and for consume. The broker's CPU is not counted.
//!
//! Env: `RUNS` (5), `N` (1000000).

// Only the weir children, the input and the statistics of the shared bench helpers are used here.
#[allow(dead_code)]
mod clients;

use std::process::Command;
use std::time::Duration;

use clients::{check, child_consume, child_produce, median, stats, write_input, VALUE};
use weir_testkit::bench_env::num as env_num;
use weir_testkit::peers::franz_go::{run_measured, Input, Measured};
use weir_testkit::{unique_name, Kafka, Shape};

const CHILD_ENV: &str = "WEIR_METRICS_OVERHEAD_CHILD";
const RECORDER_ENV: &str = "WEIR_METRICS_OVERHEAD_RECORDER";
const PARTITIONS: i32 = 6;
const MODES: [Mode; 2] = [Mode::On, Mode::Off];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    On,
    Off,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::On => "on",
            Mode::Off => "off",
        }
    }
}

fn main() {
    if let Ok(op) = std::env::var(CHILD_ENV) {
        let args: Vec<String> = std::env::args().skip(1).collect();
        child(&op, &args);
        return;
    }
    let runs = env_num("RUNS", 5) as usize;
    let n = env_num("N", 1_000_000);
    eprintln!("starting Apache Kafka (single node) ...");
    let kafka = Kafka::start(Shape::Single);
    println!(
        "metrics_overhead: Apache Kafka {} (single node); {n} records x {VALUE} B, {PARTITIONS} partitions; {} CPUs; \
         {runs} runs, recorder on and off alternating",
        kafka.version(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let dir = std::env::temp_dir().join(unique_name("weir-metrics-overhead"));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input");
    write_input(&input, n);
    let warmup = dir.join("warmup");
    write_input(&warmup, n.min(20_000));
    // One untimed pass of each mode first: the broker's first producer id, first topics and page cache.
    for mode in MODES {
        one(&kafka, mode, &warmup, n.min(20_000));
    }
    let mut produce: [Vec<f64>; 2] = Default::default();
    let mut consume: [Vec<f64>; 2] = Default::default();
    let mut produce_wall: [Vec<f64>; 2] = Default::default();
    let mut consume_wall: [Vec<f64>; 2] = Default::default();
    for run in 0..runs {
        for k in 0..2 {
            let m = (run + k) % 2;
            let (p, c) = one(&kafka, MODES[m], &input, n);
            println!(
                "  run {} recorder {:<3} produce {:.2} s wall {:.2} s CPU | consume {:.2} s wall {:.2} s CPU",
                run + 1,
                MODES[m].name(),
                p.wall.as_secs_f64(),
                p.cpu(),
                c.wall.as_secs_f64(),
                c.cpu()
            );
            produce[m].push(p.cpu());
            consume[m].push(c.cpu());
            produce_wall[m].push(p.wall.as_secs_f64());
            consume_wall[m].push(c.wall.as_secs_f64());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let fmt = |v: &[f64]| {
        let (m, lo, hi) = stats(v);
        format!("{m:.3} [{lo:.3}–{hi:.3}]")
    };
    println!("\nmedians [min–max] of {runs} runs; CPU = user + sys of the client process");
    println!("| op | recorder | CPU s | wall s |\n|---|---|---:|---:|");
    for (op, cpu, wall) in [
        ("produce", &produce, &produce_wall),
        ("consume", &consume, &consume_wall),
    ] {
        for (m, mode) in MODES.iter().enumerate() {
            println!(
                "| {op} | {} | {} | {} |",
                mode.name(),
                fmt(&cpu[m]),
                fmt(&wall[m])
            );
        }
    }
    println!("\n| op | CPU on/off (medians) | wall on/off (medians) |\n|---|---:|---:|");
    for (op, cpu, wall) in [
        ("produce", &produce, &produce_wall),
        ("consume", &consume, &consume_wall),
    ] {
        println!(
            "| {op} | {:.3}x | {:.3}x |",
            median(&cpu[0]) / median(&cpu[1]),
            median(&wall[0]) / median(&wall[1])
        );
    }
}

/// One produce of `input` (`n` lines) to a fresh topic and one consume of it, both with the recorder `mode`.
fn one(kafka: &Kafka, mode: Mode, input: &std::path::Path, n: u64) -> (Measured, Measured) {
    let b = kafka.bootstrap();
    let topic = unique_name(&format!("metrics-overhead-{}", mode.name()));
    kafka.create_topic(&topic, PARTITIONS);
    let timeout = Duration::from_secs(300);
    let p = run_measured(
        child_cmd("produce", mode, &[b.clone(), topic.clone()]),
        Input::File(input),
        false,
        timeout,
    );
    check(&format!("produce, recorder {}", mode.name()), &p);
    let c = run_measured(
        child_cmd(
            "consume",
            mode,
            &[b, topic.clone(), PARTITIONS.to_string(), n.to_string()],
        ),
        Input::Null,
        true,
        timeout,
    );
    check(&format!("consume, recorder {}", mode.name()), &c);
    assert_eq!(c.lines, n, "read back {} of {n} records of {topic}", c.lines);
    (p, c)
}

fn child_cmd(op: &str, mode: Mode, args: &[String]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.env(CHILD_ENV, op).env(RECORDER_ENV, mode.name()).args(args);
    cmd
}

/// A child: the weir client of `op`, with the Prometheus recorder if the environment says so.
fn child(op: &str, args: &[String]) {
    let scraper = (std::env::var(RECORDER_ENV).as_deref() == Ok("on")).then(install_prometheus);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match op {
        "produce" => rt.block_on(child_produce(&args[0], &args[1], &[])),
        "consume" => rt.block_on(child_consume(
            &args[0],
            &args[1],
            args[2].parse().unwrap(),
            args[3].parse().unwrap(),
            &[],
        )),
        _ => panic!("metrics_overhead: unknown child mode {op}"),
    }
    if let Some(handle) = scraper {
        // The recorder saw the client: its metrics are in the exposition.
        let text = handle.render();
        let wanted = match op {
            "produce" => "kafka_producer_record_send_total",
            _ => "kafka_client_request_total",
        };
        assert!(
            text.contains(wanted),
            "metrics_overhead: no {wanted} in the exposition:\n{text}"
        );
        let series = text.lines().filter(|l| l.starts_with("kafka_")).count();
        eprintln!("{{\"prometheus_series\":{series}}}");
    }
}

/// Installs a Prometheus recorder as the global recorder, with a thread doing what an exporter does: upkeep
/// every second, a render (a scrape) every 5 s.
fn install_prometheus() -> metrics_exporter_prometheus::PrometheusHandle {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("no recorder installed yet");
    let scraper = handle.clone();
    std::thread::spawn(move || {
        for tick in 1u64.. {
            std::thread::sleep(Duration::from_secs(1));
            scraper.run_upkeep();
            if tick % 5 == 0 {
                std::hint::black_box(scraper.render());
            }
        }
    });
    handle
}
