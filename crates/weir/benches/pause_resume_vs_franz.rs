//! Pause+resume calls per second against writer threads: weir's `Consumer` against franz-go's real
//! `kgo.Client`, both consuming with a poll loop running and their fetchers live.
//!
//! The same workload on both sides (`crates/weir-testkit/peers/go/pauseresume.go` is franz-go's; keep the two
//! in step):
//!
//! - one Apache Kafka broker (weir-testkit); one topic of P partitions for each P in `PARTITIONS` (default 1,000
//!   and 10,000; created 1,000 partitions at a time, as KRaft refuses one operation of more than 10,000
//!   records; if creating a topic fails, 4,000 partitions instead, said on stderr);
//! - while a P is measured, a weir `Producer` in this process trickles 32 B records to random partitions of
//!   its topic (2,000 records/s, `live_load::produce`), for both clients alike, so fetches carry data;
//! - the client consumes all P partitions by direct assignment from the end (weir: `assign` at
//!   `StartOffset::Latest`; franz-go: `ConsumePartitions` at `AtEnd`), fetch max wait 20 ms, a poll loop of
//!   `poll(500, 100 ms)` (franz-go: `PollRecords(500)` with a 100 ms deadline) running all along, records
//!   discarded; every `KEPT_EVERY`-th partition (default 10: 10%) is paused first and stays paused;
//! - after `WARMUP_MS` (default 2,000) and 150 ms unrecorded per mode, for T in `THREADS` (default 1, 2, 4, 8)
//!   and each mode, T writer threads (franz-go: goroutines) loop for `CELL_MS` (default 1,000) on random
//!   partitions that are not kept paused:
//!   - `single by handle`: weir `ConsumerPartition::pause()` + `resume()` (handles resolved beforehand);
//!   - `single by name`: weir `consumer.pause(&[tp])` + `consumer.resume(&[tp])`; franz-go's one single mode,
//!     `PauseFetchPartitions({topic: [p]})` + `ResumeFetchPartitions` (argument maps built beforehand; franz-go
//!     has no handles, so both weir single modes are compared with it);
//!   - `batch of 100`: 100 random partitions (deduplicated) per call, 16 batches per writer built beforehand;
//! - at the end of each block both check that exactly the kept partitions are paused.
//!
//! A block is one client measuring every (T, mode) for one P, with a fresh consumer (weir in this process,
//! franz-go as a child process; weir's consumer is closed before franz-go starts, so they never run at once).
//! `RUNS` (default 3) alternated runs: in odd runs weir goes first, in even runs franz-go. The table gives
//! medians of pause+resume pairs per second (aggregate over writers; one pair = one pause call and one resume
//! call, of one partition or of a batch) and the ratio weir / franz-go.
//!
//! With `WEIR_BENCH_OUT` set, each run of each client and cell is appended there as one JSON line
//! (metrics `pairs_per_s`, `calls_per_s` = 2 x pairs, `partitions_per_s`; params `partitions`, `threads`,
//! `mode`).
//!
//! Run with `cargo bench -p weir --bench pause_resume_vs_franz` (about 5 minutes on 2 cores with the defaults;
//! needs the franz-go peer: `$WEIR_FRANZ_GO` or `.peers/go/franz-go-peer`, see scripts/setup-test-env).

/// The trickle producer and the poll loop (shared with `pause_resume.rs`).
mod live_load;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::runtime::Runtime;
use weir::admin::NewPartitions;
use weir::config::ClientConfig;
use weir::consumer::{Consumer, ConsumerConfig, ConsumerPartition, StartOffset, TopicPartition};
use weir::Admin;
use weir_testkit::bench_out;
use weir_testkit::peers::franz_go::FranzGo;

use live_load::{liveness, poll_loop, produce, Counters, Xorshift, FETCH_WAIT_MS};

const BENCH: &str = "pause_resume_vs_franz";
/// Partitions per call in batch mode (before deduplication).
const BATCH: usize = 100;
/// Batches each writer cycles through.
const BATCHES_PER_WRITER: usize = 16;
/// Unrecorded warm-up of each mode, one writer.
const MODE_WARMUP: Duration = Duration::from_millis(150);

/// How the writers call pause and resume.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Mode {
    Handle,
    Name,
    Batch,
}

impl Mode {
    const WEIR: [Mode; 3] = [Mode::Handle, Mode::Name, Mode::Batch];

    fn label(self) -> &'static str {
        match self {
            Mode::Handle => "single by handle",
            Mode::Name => "single by name",
            Mode::Batch => "batch of 100",
        }
    }

    /// The `mode` param of the results file (franz-go's single mode is `single`).
    fn param(self) -> &'static str {
        match self {
            Mode::Handle | Mode::Name => "single",
            Mode::Batch => "batch100",
        }
    }

    /// The weir client name in the results file.
    fn weir_client(self) -> &'static str {
        match self {
            Mode::Name => "weir-by-name",
            Mode::Handle | Mode::Batch => "weir",
        }
    }
}

/// One measured cell.
#[derive(Clone, Copy, Debug)]
struct Rate {
    pairs_per_s: f64,
    partitions_per_s: f64,
}

/// The settings, from the environment.
struct Settings {
    runs: usize,
    cell: Duration,
    warmup: Duration,
    kept_every: usize,
    partitions: Vec<usize>,
    threads: Vec<usize>,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{BENCH}: ${name}={v:?} is not a valid value")),
        Err(_) => default,
    }
}

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .ok()
                    .filter(|&n: &usize| n > 0)
                    .unwrap_or_else(|| {
                        panic!("{BENCH}: ${name}={v:?}: want positive numbers, comma-separated")
                    })
            })
            .collect(),
        Err(_) => default.to_vec(),
    }
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            runs: env_or("RUNS", 3usize).max(1),
            cell: Duration::from_millis(env_or("CELL_MS", 1_000u64)),
            warmup: Duration::from_millis(env_or("WARMUP_MS", 2_000u64)),
            kept_every: env_or("KEPT_EVERY", 10usize),
            partitions: env_list("PARTITIONS", &[1_000, 10_000]),
            threads: env_list("THREADS", &[1, 2, 4, 8]),
        }
    }

    fn kept(&self, i: usize) -> bool {
        self.kept_every > 0 && i % self.kept_every == 0
    }
}

/// The case label shared by every client of one comparison.
fn case(partitions: usize, threads: usize, batch: bool) -> String {
    let what = if batch {
        "100 partitions per call"
    } else {
        "1 partition per call"
    };
    let writers = if threads == 1 { "thread" } else { "threads" };
    format!("pause+resume, {what}, {partitions} partitions, {threads} {writers}, poll loop live")
}

/// What weir's writer threads share.
struct WeirTarget {
    consumer: Arc<Consumer>,
    tps: Vec<TopicPartition>,
    handles: Vec<ConsumerPartition>,
    kept_every: usize,
}

impl WeirTarget {
    /// A random partition that is not kept paused.
    fn pick(&self, rng: &mut Xorshift) -> usize {
        loop {
            let i = (rng.next() % self.tps.len() as u64) as usize;
            if self.kept_every == 0 || i % self.kept_every != 0 {
                return i;
            }
        }
    }

    /// Runs `threads` writers in `mode` for `dur`.
    fn measure(self: &Arc<Self>, mode: Mode, threads: usize, dur: Duration) -> Rate {
        let stop = Arc::new(AtomicBool::new(false));
        let barrier = Arc::new(Barrier::new(threads + 1));
        let writers: Vec<_> = (0..threads)
            .map(|t| {
                let (w, barrier, stop) = (self.clone(), barrier.clone(), stop.clone());
                thread::spawn(move || {
                    let mut rng = Xorshift(0x2545_F491_4F6C_DD1D ^ ((t as u64 + 1) * 0x9E37_79B9));
                    let batches: Vec<Vec<TopicPartition>> = if mode == Mode::Batch {
                        (0..BATCHES_PER_WRITER)
                            .map(|_| {
                                let mut idx: Vec<usize> = (0..BATCH).map(|_| w.pick(&mut rng)).collect();
                                idx.sort_unstable();
                                idx.dedup();
                                idx.iter().map(|&i| w.tps[i].clone()).collect()
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    barrier.wait();
                    let (mut pairs, mut parts, mut k) = (0u64, 0u64, 0usize);
                    while !stop.load(Ordering::Relaxed) {
                        match mode {
                            Mode::Handle => {
                                let h = &w.handles[w.pick(&mut rng)];
                                h.pause().unwrap();
                                h.resume().unwrap();
                                parts += 1;
                            }
                            Mode::Name => {
                                let tp = std::slice::from_ref(&w.tps[w.pick(&mut rng)]);
                                w.consumer.pause(tp).unwrap();
                                w.consumer.resume(tp).unwrap();
                                parts += 1;
                            }
                            Mode::Batch => {
                                k = (k + 1) % batches.len();
                                w.consumer.pause(&batches[k]).unwrap();
                                w.consumer.resume(&batches[k]).unwrap();
                                parts += batches[k].len() as u64;
                            }
                        }
                        pairs += 1;
                    }
                    (pairs, parts)
                })
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
        let (pairs, parts) = writers
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold((0, 0), |(a, b), (p, q)| (a + p, b + q));
        let secs = t0.elapsed().as_secs_f64();
        Rate {
            pairs_per_s: pairs as f64 / secs,
            partitions_per_s: parts as f64 / secs,
        }
    }
}

/// Measurements of one block: `(mode, threads) -> rate`.
type Block = HashMap<(Mode, usize), Rate>;

/// One weir block: a fresh consumer assigned all of `tps` at Latest, its poll loop running, every cell
/// measured, the paused set checked, the consumer closed.
fn weir_block(
    rt: &Runtime,
    bootstrap: &str,
    tps: &[TopicPartition],
    s: &Settings,
    producer: &Counters,
) -> Block {
    let consumer = rt.block_on(async {
        let mut cfg = ConsumerConfig::new(bootstrap);
        cfg.set("fetch.wait.max.ms", FETCH_WAIT_MS).expect("config");
        Arc::new(Consumer::new(cfg).expect("consumer"))
    });
    let at: Vec<_> = tps.iter().map(|tp| (tp.clone(), StartOffset::Latest)).collect();
    rt.block_on(consumer.assign(&at)).expect("assign");
    let kept: Vec<TopicPartition> = (0..tps.len())
        .filter(|&i| s.kept(i))
        .map(|i| tps[i].clone())
        .collect();
    consumer.pause(&kept).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let poller = rt.spawn(poll_loop(consumer.clone(), stop.clone(), counters.clone()));
    thread::sleep(s.warmup);
    eprintln!(
        "{BENCH}: weir, {} partitions, {} kept paused; after warm-up: {}",
        tps.len(),
        kept.len(),
        liveness(&consumer, &counters, producer)
    );
    let target = Arc::new(WeirTarget {
        consumer: consumer.clone(),
        tps: tps.to_vec(),
        handles: tps
            .iter()
            .map(|tp| consumer.partition(tp).expect("assigned"))
            .collect(),
        kept_every: s.kept_every,
    });
    for mode in Mode::WEIR {
        target.measure(mode, 1, MODE_WARMUP);
    }
    let mut block = Block::new();
    for &t in &s.threads {
        for mode in Mode::WEIR {
            block.insert((mode, t), target.measure(mode, t, s.cell));
        }
    }
    eprintln!(
        "{BENCH}: weir, {} partitions, block done: {}",
        tps.len(),
        liveness(&consumer, &counters, producer)
    );
    stop.store(true, Ordering::Relaxed);
    rt.block_on(poller).expect("poll loop");
    // Every pause was followed by a resume of the same partitions: only the kept ones are paused.
    let mut paused = consumer.paused();
    paused.sort_unstable();
    assert!(
        paused == kept,
        "weir: paused partitions at the end are not exactly the kept ones"
    );
    drop(target);
    rt.block_on(consumer.close()).expect("close");
    block
}

/// One franz-go block: the peer's `pause-resume` subcommand as a child process.
fn franz_block(fg: &FranzGo, bootstrap: &str, topic: &str, partitions: usize, s: &Settings) -> Block {
    let threads: Vec<String> = s.threads.iter().map(|t| t.to_string()).collect();
    let mut cmd: Command = fg.command();
    cmd.args(["pause-resume", "--brokers", bootstrap, "--topic", topic])
        .args(["--partitions", &partitions.to_string()])
        .args(["--threads", &threads.join(",")])
        .args(["--modes", "single,batch100"])
        .args(["--duration", &format!("{}ms", s.cell.as_millis())])
        .args(["--warmup", &format!("{}ms", s.warmup.as_millis())])
        .args(["--kept-every", &s.kept_every.to_string()])
        .args(["--batch", &BATCH.to_string()])
        .args([
            "--from",
            "end",
            "--fetch-max-wait-ms",
            FETCH_WAIT_MS,
            "--poll-max",
            "500",
        ]);
    let cells = (s.threads.len() * 2) as u32;
    let timeout = s.warmup + s.cell * cells + Duration::from_secs(120);
    let out = weir_testkit::run_with_timeout(cmd, None, timeout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in stderr.lines() {
        eprintln!("{BENCH}: franz-go peer: {line}");
    }
    assert!(out.status.success(), "franz-go peer failed ({})", out.status);
    let mut block = Block::new();
    let mut checked = false;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("franz-go peer printed {line:?}: {e}"));
        if v["check"] == "ok" {
            eprintln!("{BENCH}: franz-go, {partitions} partitions, block done: {line}");
            checked = true;
            continue;
        }
        let num = |k: &str| {
            v[k].as_f64()
                .unwrap_or_else(|| panic!("franz-go peer: no {k} in {line}"))
        };
        let mode = match v["mode"].as_str() {
            Some("single") => Mode::Name,
            Some("batch100") => Mode::Batch,
            other => panic!("franz-go peer: mode {other:?}"),
        };
        assert_eq!(
            num("partitions") as usize,
            partitions,
            "franz-go peer: partitions"
        );
        let rate = Rate {
            pairs_per_s: num("pairs_per_s"),
            partitions_per_s: num("partitions_per_s"),
        };
        block.insert((mode, num("threads") as usize), rate);
    }
    assert!(checked, "franz-go peer: no final check line");
    assert_eq!(block.len(), s.threads.len() * 2, "franz-go peer: cells");
    block
}

/// Partitions created per CreateTopics or CreatePartitions request. A KRaft controller refuses one operation of
/// more than 10,000 metadata records ("excessively large batch operation"), one per partition, and a loaded
/// single broker took more than the testkit's 30 s to give 5,000 new partitions leaders; steps of 1,000 get
/// theirs in a few seconds each.
const CREATE_STEP: usize = 1_000;

/// How long a topic may take to be created and get leaders for all its partitions (a loaded single broker
/// can take minutes for thousands).
const TOPIC_DEADLINE: Duration = Duration::from_secs(300);

/// Waits until `topic`/`partition` has a leader, in the testkit's bounded waits, until `deadline`.
fn wait_for_leader(broker: &weir_testkit::Kafka, topic: &str, partition: i32, deadline: Instant) {
    loop {
        let led = std::panic::catch_unwind(AssertUnwindSafe(|| broker.leader(topic, partition)));
        if led.is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}/{partition} has no leader after {TOPIC_DEADLINE:?}"
        );
    }
}

/// Creates `name` with `partitions` partitions (in steps of `CREATE_STEP`), each step waited for until its
/// last partition has a leader; `None` (and the broker's complaint on stderr) if that fails.
fn try_create(rt: &Runtime, broker: &weir_testkit::Kafka, name: &str, partitions: usize) -> Option<Duration> {
    let t = Instant::now();
    let deadline = t + TOPIC_DEADLINE;
    let created = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let mut have = partitions.min(CREATE_STEP);
        // The testkit waits 30 s for the leaders; a slow broker gets the rest of the deadline.
        if std::panic::catch_unwind(AssertUnwindSafe(|| broker.create_topic(name, have as i32))).is_err() {
            wait_for_leader(broker, name, have as i32 - 1, deadline);
        }
        if have < partitions {
            let _in_runtime = rt.enter();
            let admin = Admin::new(ClientConfig::new(&broker.bootstrap())).expect("admin");
            while have < partitions {
                have = (have + CREATE_STEP).min(partitions);
                let grow = [NewPartitions::increase_to(name, have as i32)];
                let outcome = rt
                    .block_on(admin.create_partitions(&grow, false))
                    .expect("create partitions");
                if let Some((_, Err(e))) = outcome.first() {
                    panic!("growing {name} to {have} partitions: {e}");
                }
                wait_for_leader(broker, name, have as i32 - 1, deadline);
            }
            rt.block_on(admin.close()).expect("admin close");
        }
    }));
    let took = t.elapsed();
    match created {
        Ok(()) => {
            eprintln!(
                "{BENCH}: topic {name} of {partitions} partitions created in {:.1} s",
                took.as_secs_f64()
            );
            Some(took)
        }
        Err(_) => {
            eprintln!(
                "{BENCH}: creating {name} of {partitions} partitions failed after {:.1} s",
                took.as_secs_f64()
            );
            None
        }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from the arguments.
    let t_all = Instant::now();
    let s = Settings::from_env();
    let fg = FranzGo::require();
    let broker = weir_testkit::Kafka::start(weir_testkit::Shape::Single);
    let bootstrap = broker.bootstrap();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // The topics; a P that cannot be created falls back to 4,000 (once).
    let mut sizes = Vec::new();
    for &p in &s.partitions {
        let name = format!("pause-resume-{p}");
        if try_create(&rt, &broker, &name, p).is_some() {
            sizes.push((p, name));
        } else if p > 4_000 && !s.partitions.contains(&4_000) {
            let name = "pause-resume-4000".to_string();
            if try_create(&rt, &broker, &name, 4_000).is_some() {
                eprintln!("{BENCH}: FALLBACK: {p} partitions could not be created; measuring 4,000 instead");
                sizes.push((4_000, name));
            }
        }
    }
    assert!(!sizes.is_empty(), "no topic could be created");

    // results[(partitions, client, mode, threads)] = one rate per run.
    let mut results: HashMap<(usize, &str, Mode, usize), Vec<Rate>> = HashMap::new();
    for run in 1..=s.runs {
        for (p, topic) in &sizes {
            let p = *p;
            let tps: Vec<TopicPartition> = (0..p as i32)
                .map(|i| TopicPartition::new(topic.as_str(), i))
                .collect();
            let stop = Arc::new(AtomicBool::new(false));
            let producer_counters = Arc::new(Counters::default());
            let producer = rt.spawn(produce(
                bootstrap.clone(),
                Arc::new(tps.clone()),
                stop.clone(),
                producer_counters.clone(),
            ));
            let weir_first = run % 2 == 1;
            for side in [weir_first, !weir_first] {
                let (client, block) = if side {
                    ("weir", weir_block(&rt, &bootstrap, &tps, &s, &producer_counters))
                } else {
                    ("franz-go", franz_block(&fg, &bootstrap, topic, p, &s))
                };
                for ((mode, t), rate) in block {
                    let name = if client == "weir" {
                        mode.weir_client()
                    } else {
                        client
                    };
                    bench_out::record(
                        BENCH,
                        &case(p, t, mode == Mode::Batch),
                        name,
                        run,
                        &[
                            ("partitions", p.into()),
                            ("threads", t.into()),
                            ("mode", mode.param().into()),
                        ],
                        &[
                            ("pairs_per_s", rate.pairs_per_s),
                            ("calls_per_s", 2.0 * rate.pairs_per_s),
                            ("partitions_per_s", rate.partitions_per_s),
                        ],
                    );
                    results.entry((p, client, mode, t)).or_default().push(rate);
                }
            }
            stop.store(true, Ordering::Relaxed);
            rt.block_on(producer).expect("producer");
            eprintln!("{BENCH}: run {run}/{} of {p} partitions done", s.runs);
        }
    }

    let med = |p: usize, client: &'static str, mode: Mode, t: usize| {
        let v: Vec<f64> = results[&(p, client, mode, t)]
            .iter()
            .map(|r| r.pairs_per_s)
            .collect();
        median(&v)
    };
    println!(
        "\npause+resume pairs per second (aggregate over writer threads; one pair = one pause call + one resume \
         call), median of {} alternated runs of {} ms per cell; poll loop and fetchers live, 1 in {} partitions \
         kept paused; franz-go {}",
        s.runs,
        s.cell.as_millis(),
        s.kept_every,
        fg.version()
    );
    println!(
        "{:>10} {:>17} {:>7} {:>14} {:>14} {:>13} {:>18}",
        "partitions", "mode", "threads", "weir", "franz-go", "weir/franz-go", "weir partitions/s"
    );
    for (p, _) in &sizes {
        for mode in Mode::WEIR {
            let fg_mode = if mode == Mode::Batch {
                Mode::Batch
            } else {
                Mode::Name
            };
            for &t in &s.threads {
                let (w, f) = (med(*p, "weir", mode, t), med(*p, "franz-go", fg_mode, t));
                let wp = median(
                    &results[&(*p, "weir", mode, t)]
                        .iter()
                        .map(|r| r.partitions_per_s)
                        .collect::<Vec<_>>(),
                );
                println!(
                    "{p:>10} {:>17} {t:>7} {w:>14.0} {f:>14.0} {:>12.1}x {wp:>18.0}",
                    mode.label(),
                    w / f
                );
            }
        }
    }
    println!("all runs (pairs/s), in run order:");
    for (p, _) in &sizes {
        for (client, mode) in [
            ("weir", Mode::Handle),
            ("weir", Mode::Name),
            ("franz-go", Mode::Name),
            ("weir", Mode::Batch),
            ("franz-go", Mode::Batch),
        ] {
            for &t in &s.threads {
                let v: Vec<String> = results[&(*p, client, mode, t)]
                    .iter()
                    .map(|r| format!("{:.0}", r.pairs_per_s))
                    .collect();
                let label = if client == "franz-go" && mode == Mode::Name {
                    "single"
                } else {
                    mode.label()
                };
                println!("  {p:>6} {client:>8} {label:>17} t={t}: {}", v.join(" "));
            }
        }
    }
    drop(rt);
    drop(broker);
    eprintln!("{BENCH}: done in {:.0} s", t_all.elapsed().as_secs_f64());
}
