//! Pause/resume throughput of partition state-table designs, with a planner scanning meanwhile.
//!
//! # Micro-benchmarks (criterion; the default)
//!
//! - `A_mutex`: a global `Mutex<HashMap<TopicPartition, State>>`;
//! - `B_cow`: franz-go's design, a copy-on-write set of paused partitions cloned in full under
//!   one writer mutex on every call and read through an atomic pointer (`ArcSwap`);
//! - `C_name`: weir's `StateTable` by name; `C_handle`: weir through `PartitionHandle`s.
//!
//! 10 topics, 10% of the partitions kept paused throughout; writers loop pause(1 random
//! partition) + resume(same). Throughput is aggregate pairs/s across writer threads
//! (`iter_custom`: one "iteration" = one pause+resume pair). Run with
//! `cargo bench -p weir --bench pause_resume` (about 2–3 minutes on 2 cores).
//!
//! # Live section (`-- live`)
//!
//! The micro-benchmarks have no poll loop and no fetchers, so they miss what pause/resume costs in
//! real use: a resume wakes the poller (the partition goes on the delivery queue), a resume that
//! makes a partition fetchable pushes it into its fetcher's ready queue behind a mutex, and a
//! by-name call looks the partition up in the consumer's SipHash `HashMap` of slots. The live
//! section measures `weir::consumer::Consumer` itself:
//!
//! - one Apache Kafka broker (weir-testkit), 10 topics x 1,000 partitions; a background weir `Producer`
//!   writes a trickle of 32 B records to random partitions during the whole run (20 every 10 ms,
//!   skipping a tick while more than 2,000 await acknowledgement, so the producer cannot outrun the
//!   broker on 2 busy cores), so fetches sometimes carry
//!   data and some resumed partitions have records buffered;
//! - one `Consumer` assigned all 10,000 partitions at offset 0, `fetch.wait.max.ms=20`, and a
//!   tokio task calling `poll(500, 100 ms)` in a loop all along (the application's poll loop):
//!   its fetchers are live for the whole section; 10% of the partitions are kept paused;
//! - writer threads (std threads) loop on random partitions: `name` = `consumer.pause(&[tp])` +
//!   `consumer.resume(&[tp])`; `handle` = pre-resolved `ConsumerPartition` handles, `h.pause();
//!   h.resume()`; `batch100` = `consumer.pause(&batch)` + `consumer.resume(&batch)` with batches
//!   of 100 random partitions built before the timed region;
//! - baselines A and B as above (their batch mode: A takes one lock per batch, B one copy per
//!   batch), each with its planner thread scanning while it is measured, in the same process
//!   while the live consumer, its poll loop and its fetchers keep running;
//! - 1, 4 and 8 writer threads; each cell runs 1 s of wall time, 5 alternated runs (run 1 of
//!   every cell, then run 2, ...). The summary gives medians of partitions paused+resumed per
//!   second (aggregate), the ratios weir/A and weir/B, single-thread ns per pair, the consumer's
//!   fetches and delivered records (to show it was live), and a final check that
//!   `consumer.paused()` is exactly the kept-paused partitions plus those the writers left paused.
//!
//! Run with `cargo bench -p weir --bench pause_resume -- live` (or `WEIR_BENCH_LIVE=1`; about
//! 2–3 minutes on 2 cores; the broker's jars come from scripts/setup-test-env). With `WEIR_BENCH_OUT` set,
//! every run of every cell is also appended there as a results line (`weir_testkit::bench_out`: bench
//! `pause_resume`, one case per writer-thread count, metric `calls_per_s` = partitions paused+resumed per
//! second; clients `weir` (by name), `weir-handle`, `weir-batch`, `A_mutex`, `B_cow`, `A_mutex-batch`,
//! `B_cow-batch`), for `scripts/bench-report`.

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use weir::consumer::state_table::{PartitionHandle, StateTable, StateTableConfig, TopicPartition};

/// The live section's trickle producer and poll loop (shared with `pause_resume_vs_franz.rs`).
mod live_load;

const TOPICS: usize = 10;
const SIZES: [usize; 3] = [100, 10_000, 100_000];
const THREADS: [usize; 4] = [1, 2, 4, 8];
const BATCH: usize = 100;

// ---------------------------------------------------------------------------------------------
// Designs
// ---------------------------------------------------------------------------------------------

/// A batch of partitions, as indices and as names (built before the measured region).
struct Batch {
    idx: Vec<usize>,
    tps: Vec<TopicPartition>,
}

#[derive(Clone, Copy, Default)]
struct State {
    paused: bool,
    in_flight: bool,
    backpressured: bool,
}

trait Design: Send + Sync + 'static {
    fn pause(&self, i: usize);
    fn resume(&self, i: usize);
    fn pause_batch(&self, b: &Batch);
    fn resume_batch(&self, b: &Batch);
    /// One planner pass over all partitions; returns how many are fetchable.
    fn scan(&self) -> usize;
    fn tps(&self) -> &[TopicPartition];
}

struct Mutexed {
    tps: Vec<TopicPartition>,
    map: Mutex<HashMap<TopicPartition, State>>,
}

impl Design for Mutexed {
    fn tps(&self) -> &[TopicPartition] {
        &self.tps
    }
    fn pause(&self, i: usize) {
        self.map.lock().unwrap().get_mut(&self.tps[i]).unwrap().paused = true;
    }
    fn resume(&self, i: usize) {
        self.map.lock().unwrap().get_mut(&self.tps[i]).unwrap().paused = false;
    }
    fn pause_batch(&self, b: &Batch) {
        let is = &b.idx;
        let mut m = self.map.lock().unwrap();
        for &i in is {
            m.get_mut(&self.tps[i]).unwrap().paused = true;
        }
    }
    fn resume_batch(&self, b: &Batch) {
        let is = &b.idx;
        let mut m = self.map.lock().unwrap();
        for &i in is {
            m.get_mut(&self.tps[i]).unwrap().paused = false;
        }
    }
    fn scan(&self) -> usize {
        let m = self.map.lock().unwrap();
        m.values()
            .filter(|s| !s.paused && !s.in_flight && !s.backpressured)
            .count()
    }
}

/// franz-go: `paused` is a copy-on-write map rebuilt on every call under one writer mutex.
struct Cow {
    tps: Vec<TopicPartition>,
    paused: ArcSwap<HashSet<TopicPartition>>,
    writer: Mutex<()>,
}

impl Cow {
    fn update(&self, is: &[usize], pause: bool) {
        let _w = self.writer.lock().unwrap();
        let mut next = HashSet::clone(&self.paused.load());
        for &i in is {
            if pause {
                next.insert(self.tps[i].clone());
            } else {
                next.remove(&self.tps[i]);
            }
        }
        self.paused.store(Arc::new(next));
    }
}

impl Design for Cow {
    fn tps(&self) -> &[TopicPartition] {
        &self.tps
    }
    fn pause(&self, i: usize) {
        self.update(&[i], true)
    }
    fn resume(&self, i: usize) {
        self.update(&[i], false)
    }
    fn pause_batch(&self, b: &Batch) {
        let is = &b.idx;
        self.update(is, true)
    }
    fn resume_batch(&self, b: &Batch) {
        let is = &b.idx;
        self.update(is, false)
    }
    fn scan(&self) -> usize {
        let p = self.paused.load();
        self.tps.iter().filter(|tp| !p.contains(*tp)).count()
    }
}

struct ByName {
    tps: Vec<TopicPartition>,
    table: StateTable,
}

impl Design for ByName {
    fn tps(&self) -> &[TopicPartition] {
        &self.tps
    }
    fn pause(&self, i: usize) {
        self.table.pause(std::slice::from_ref(&self.tps[i])).unwrap();
    }
    fn resume(&self, i: usize) {
        self.table.resume(std::slice::from_ref(&self.tps[i])).unwrap();
    }
    fn pause_batch(&self, b: &Batch) {
        self.table.pause(&b.tps).unwrap();
    }
    fn resume_batch(&self, b: &Batch) {
        self.table.resume(&b.tps).unwrap();
    }
    fn scan(&self) -> usize {
        let mut n = 0;
        self.table.for_each_fetchable(|_| n += 1);
        n
    }
}

struct Handles {
    tps: Vec<TopicPartition>,
    handles: Vec<PartitionHandle>,
    table: StateTable,
}

impl Design for Handles {
    fn tps(&self) -> &[TopicPartition] {
        &self.tps
    }
    fn pause(&self, i: usize) {
        self.handles[i].pause();
    }
    fn resume(&self, i: usize) {
        self.handles[i].resume();
    }
    fn pause_batch(&self, b: &Batch) {
        let is = &b.idx;
        for &i in is {
            self.handles[i].pause();
        }
    }
    fn resume_batch(&self, b: &Batch) {
        let is = &b.idx;
        for &i in is {
            self.handles[i].resume();
        }
    }
    fn scan(&self) -> usize {
        let mut n = 0;
        self.table.for_each_fetchable(|_| n += 1);
        n
    }
}

fn partitions(n: usize) -> Vec<TopicPartition> {
    let per = n.div_ceil(TOPICS);
    (0..n)
        .map(|i| TopicPartition::new(format!("topic-{:02}", i / per), (i % per) as i32))
        .collect()
}

fn kept_paused(i: usize) -> bool {
    i % 10 == 0
}

fn table_for(tps: &[TopicPartition]) -> StateTable {
    let t = StateTable::new(StateTableConfig::default());
    t.assign(&tps.iter().map(|tp| (tp.clone(), 0)).collect::<Vec<_>>());
    t
}

fn build(design: &str, n: usize) -> Arc<dyn Design> {
    let tps = partitions(n);
    let d: Arc<dyn Design> = match design {
        "A_mutex" => Arc::new(Mutexed {
            map: Mutex::new(tps.iter().map(|tp| (tp.clone(), State::default())).collect()),
            tps,
        }),
        "B_cow" => Arc::new(Cow {
            tps,
            paused: ArcSwap::from_pointee(HashSet::new()),
            writer: Mutex::new(()),
        }),
        "C_name" => Arc::new(ByName {
            table: table_for(&tps),
            tps,
        }),
        "C_handle" => {
            let table = table_for(&tps);
            let handles = tps.iter().map(|tp| table.handle(tp).unwrap()).collect();
            Arc::new(Handles { tps, handles, table })
        }
        _ => unreachable!(),
    };
    let idx: Vec<usize> = (0..n).filter(|&i| kept_paused(i)).collect();
    let tps = idx.iter().map(|&i| d.tps()[i].clone()).collect();
    d.pause_batch(&Batch { idx, tps });
    d
}

/// A planner thread scanning continuously until dropped.
struct Planner {
    stop: Arc<AtomicBool>,
    scans: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Planner {
    fn start(d: Arc<dyn Design>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let scans = Arc::new(AtomicU64::new(0));
        let (s, c) = (stop.clone(), scans.clone());
        let thread = Some(thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                black_box(d.scan());
                c.fetch_add(1, Ordering::Relaxed);
            }
        }));
        Self { stop, scans, thread }
    }
}

impl Drop for Planner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        black_box(self.scans.load(Ordering::Relaxed));
    }
}

struct Rng(u64);
impl Rng {
    #[inline]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A random partition that is not kept paused.
    #[inline]
    fn pick(&mut self, n: usize) -> usize {
        loop {
            let i = (self.next() % n as u64) as usize;
            if !kept_paused(i) {
                return i;
            }
        }
    }
}

/// One writer's operation: pauses and resumes something, returns how many partitions that was.
type Op = fn(&dyn Design, &mut Ctx) -> u64;

/// Writer `t`'s context: its random source and, if `batched`, 16 batches of (up to) `BATCH` random
/// partitions, built before the measured region.
fn writer_ctx(d: &dyn Design, n: usize, t: usize, batched: bool) -> Ctx {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ ((t as u64 + 1) * 0x9E37_79B9));
    let batches = if batched {
        (0..16)
            .map(|_| {
                let mut idx: Vec<usize> = (0..BATCH).map(|_| rng.pick(n)).collect();
                idx.sort_unstable();
                idx.dedup();
                let tps = idx.iter().map(|&i| d.tps()[i].clone()).collect();
                Batch { idx, tps }
            })
            .collect()
    } else {
        Vec::new()
    };
    Ctx {
        rng,
        n,
        batches,
        k: 0,
    }
}

/// Runs `iters` operations spread over `threads` writer threads; returns the wall time scaled to
/// exactly `iters` operations.
fn run_threads(d: &Arc<dyn Design>, n: usize, threads: usize, iters: u64, op: Op, batched: bool) -> Duration {
    let per = iters.div_ceil(threads as u64).max(1);
    let barrier = Arc::new(Barrier::new(threads + 1));
    let mut hs = Vec::with_capacity(threads);
    for t in 0..threads {
        let (d, barrier) = (d.clone(), barrier.clone());
        hs.push(thread::spawn(move || {
            let mut ctx = writer_ctx(&*d, n, t, batched);
            barrier.wait();
            for _ in 0..per {
                op(&*d, &mut ctx);
            }
        }));
    }
    barrier.wait();
    let t0 = Instant::now();
    for h in hs {
        h.join().unwrap();
    }
    let el = t0.elapsed();
    el.mul_f64(iters as f64 / (per * threads as u64) as f64)
}

struct Ctx {
    rng: Rng,
    n: usize,
    batches: Vec<Batch>,
    k: usize,
}

fn pair(d: &dyn Design, c: &mut Ctx) -> u64 {
    let i = c.rng.pick(c.n);
    d.pause(i);
    d.resume(i);
    1
}

/// Pauses then resumes a pre-built batch of (up to) 100 random partitions.
fn batch_pair(d: &dyn Design, c: &mut Ctx) -> u64 {
    c.k = (c.k + 1) % c.batches.len();
    let b = &c.batches[c.k];
    d.pause_batch(b);
    d.resume_batch(b);
    b.idx.len() as u64
}

const DESIGNS: [&str; 4] = ["A_mutex", "B_cow", "C_name", "C_handle"];

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(700))
        .sample_size(10)
        .without_plots()
        .configure_from_args()
}

fn pause_resume(c: &mut Criterion) {
    for &n in &SIZES {
        let mut g = c.benchmark_group(format!("pair/{n}"));
        g.throughput(Throughput::Elements(1));
        for design in DESIGNS {
            let d = build(design, n);
            let _planner = Planner::start(d.clone());
            for &t in &THREADS {
                g.bench_with_input(BenchmarkId::new(design, t), &t, |b, &t| {
                    b.iter_custom(|iters| run_threads(&d, n, t, iters, pair, false))
                });
            }
        }
        g.finish();
    }
}

fn batches(c: &mut Criterion) {
    for &n in &[10_000, 100_000] {
        let mut g = c.benchmark_group(format!("batch100/{n}"));
        // One element = one partition paused and resumed.
        g.throughput(Throughput::Elements(BATCH as u64));
        for design in DESIGNS {
            let d = build(design, n);
            let _planner = Planner::start(d.clone());
            for &t in &[1usize, 4] {
                g.bench_with_input(BenchmarkId::new(design, t), &t, |b, &t| {
                    b.iter_custom(|iters| run_threads(&d, n, t, iters, batch_pair, true))
                });
            }
        }
        g.finish();
    }
}

fn single(c: &mut Criterion) {
    let tps = partitions(10_000);
    let table = table_for(&tps);
    let h = table.handle(&tps[1]).unwrap();
    c.bench_function("single/handle_pause_resume", |b| {
        b.iter(|| {
            black_box(h.pause());
            black_box(h.resume());
        })
    });
    let tp = tps[1].clone();
    c.bench_function("single/by_name_pause_resume", |b| {
        b.iter(|| {
            table.pause(black_box(std::slice::from_ref(&tp))).unwrap();
            table.resume(black_box(std::slice::from_ref(&tp))).unwrap();
        })
    });
}

criterion_group! {
    name = benches;
    config = config();
    targets = single, pause_resume, batches
}

/// `-- live` (or `WEIR_BENCH_LIVE=1`) runs only the live section; anything else runs the criterion groups
/// above (what `criterion_main!` would do).
fn main() {
    let live = std::env::args().skip(1).any(|a| a == "live")
        || std::env::var_os("WEIR_BENCH_LIVE").is_some_and(|v| v == "1");
    if live {
        live::run();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

// =============================================================================================
// Live section: a real consumer, its poll loop and its fetchers, against the A and B baselines
// =============================================================================================

mod live {
    use super::*;

    use weir::consumer::{Consumer, ConsumerConfig, ConsumerPartition, StartOffset};

    use crate::live_load::{liveness, poll_loop, produce, Counters, FETCH_WAIT_MS};

    /// Partitions assigned to the live consumer: `TOPICS` topics of `N / TOPICS` partitions.
    const N: usize = 10_000;
    /// Wall time of one measured cell.
    const CELL: Duration = Duration::from_secs(1);
    /// Alternated runs of every cell; the summary reports medians.
    const RUNS: usize = 5;
    const LIVE_THREADS: [usize; 3] = [1, 4, 8];

    /// The live consumer by name: `Consumer::pause(&[tp])` / `Consumer::resume(&[tp])`, batches by name.
    struct LiveByName {
        tps: Vec<TopicPartition>,
        consumer: Arc<Consumer>,
    }

    impl Design for LiveByName {
        fn tps(&self) -> &[TopicPartition] {
            &self.tps
        }
        fn pause(&self, i: usize) {
            self.consumer.pause(std::slice::from_ref(&self.tps[i])).unwrap();
        }
        fn resume(&self, i: usize) {
            self.consumer.resume(std::slice::from_ref(&self.tps[i])).unwrap();
        }
        fn pause_batch(&self, b: &Batch) {
            self.consumer.pause(&b.tps).unwrap();
        }
        fn resume_batch(&self, b: &Batch) {
            self.consumer.resume(&b.tps).unwrap();
        }
        fn scan(&self) -> usize {
            unreachable!("the live consumer's planners are its fetchers; no Planner thread is started")
        }
    }

    /// The live consumer through pre-resolved `ConsumerPartition` handles.
    struct LiveHandles {
        tps: Vec<TopicPartition>,
        handles: Vec<ConsumerPartition>,
    }

    impl Design for LiveHandles {
        fn tps(&self) -> &[TopicPartition] {
            &self.tps
        }
        fn pause(&self, i: usize) {
            self.handles[i].pause().unwrap();
        }
        fn resume(&self, i: usize) {
            self.handles[i].resume().unwrap();
        }
        fn pause_batch(&self, b: &Batch) {
            for &i in &b.idx {
                self.handles[i].pause().unwrap();
            }
        }
        fn resume_batch(&self, b: &Batch) {
            for &i in &b.idx {
                self.handles[i].resume().unwrap();
            }
        }
        fn scan(&self) -> usize {
            unreachable!("the live consumer's planners are its fetchers; no Planner thread is started")
        }
    }

    /// One measured combination: a design, how its writers call it, whether it needs a `Planner`.
    struct Cell {
        mode: &'static str,
        design: &'static str,
        d: Arc<dyn Design>,
        op: Op,
        batched: bool,
        planner: bool,
    }

    /// Runs `op` on `threads` writer threads for `dur` of wall time; returns partitions paused and resumed
    /// per second (aggregate).
    fn run_for(d: &Arc<dyn Design>, threads: usize, dur: Duration, op: Op, batched: bool) -> f64 {
        let stop = Arc::new(AtomicBool::new(false));
        let barrier = Arc::new(Barrier::new(threads + 1));
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (d, barrier, stop) = (d.clone(), barrier.clone(), stop.clone());
                thread::spawn(move || {
                    let mut ctx = writer_ctx(&*d, d.tps().len(), t, batched);
                    barrier.wait();
                    let mut done = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        done += op(&*d, &mut ctx);
                    }
                    done
                })
            })
            .collect();
        barrier.wait();
        let t0 = Instant::now();
        thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
        let done: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        done as f64 / t0.elapsed().as_secs_f64()
    }

    /// One run of one cell as a results line (`weir_testkit::bench_out`).
    fn record(c: &Cell, threads: usize, run: usize, rate: f64) {
        let client = match (c.design, c.mode) {
            ("weir", "name") => "weir".to_owned(),
            ("weir", "handle") => "weir-handle".to_owned(),
            ("weir", _) => "weir-batch".to_owned(),
            (baseline, "batch100") => format!("{baseline}-batch"),
            (baseline, _) => baseline.to_owned(),
        };
        weir_testkit::bench_out::record(
            "pause_resume",
            &format!("live, {N} partitions, {threads} writer threads"),
            &client,
            run,
            &[
                ("threads", threads.into()),
                ("mode", c.mode.into()),
                ("partitions", N.into()),
            ],
            &[("calls_per_s", rate)],
        );
    }

    fn median(v: &[f64]) -> f64 {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    pub(super) fn run() {
        let t_all = Instant::now();
        let tps = partitions(N);
        let broker = weir_testkit::Kafka::start(weir_testkit::Shape::Single);
        let bootstrap = broker.bootstrap();
        weir_testkit::bench_out::meta(
            "pause_resume",
            &[("broker", format!("Apache Kafka {}", broker.version()).as_str())],
        );
        let t = Instant::now();
        let per = N / TOPICS;
        for k in 0..TOPICS {
            broker.create_topic(&tps[k * per].topic, per as i32);
        }
        eprintln!(
            "live: broker {bootstrap}, {TOPICS} topics x {per} partitions created in {:.1} s",
            t.elapsed().as_secs_f64()
        );

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let producer = rt.spawn(produce(
            bootstrap.clone(),
            Arc::new(tps.clone()),
            stop.clone(),
            counters.clone(),
        ));

        // `assign` at Latest: start offsets resolved with the broker (median of 3 fresh consumers, each connecting
        // and fetching metadata first).
        let mut latest: Vec<Duration> = (0..3)
            .map(|_| {
                rt.block_on(async {
                    let c = Consumer::new(ConsumerConfig::new(&bootstrap)).expect("consumer");
                    let at: Vec<_> = tps.iter().map(|tp| (tp.clone(), StartOffset::Latest)).collect();
                    let t = Instant::now();
                    c.assign(&at).await.expect("assign at Latest");
                    let took = t.elapsed();
                    c.close().await.unwrap();
                    took
                })
            })
            .collect();
        latest.sort();
        eprintln!(
            "live: assign of {N} partitions at StartOffset::Latest: {:.1} ms (median of 3 fresh consumers; all: {:?})",
            latest[1].as_secs_f64() * 1e3,
            latest
        );
        let consumer = rt.block_on(async {
            let mut cfg = ConsumerConfig::new(&bootstrap);
            cfg.set("fetch.wait.max.ms", FETCH_WAIT_MS).expect("config");
            Arc::new(Consumer::new(cfg).expect("consumer"))
        });
        let t = Instant::now();
        let assignment: Vec<_> = tps
            .iter()
            .map(|tp| (tp.clone(), StartOffset::Offset(0)))
            .collect();
        rt.block_on(consumer.assign(&assignment)).expect("assign");
        let assign_took = t.elapsed();
        let kept: Vec<TopicPartition> = (0..N)
            .filter(|&i| kept_paused(i))
            .map(|i| tps[i].clone())
            .collect();
        consumer.pause(&kept).unwrap();
        let poller = rt.spawn(poll_loop(consumer.clone(), stop.clone(), counters.clone()));
        eprintln!(
            "live: assigned {N} partitions (StartOffset::Offset(0)) in {:.2} s; {} kept paused",
            assign_took.as_secs_f64(),
            kept.len()
        );
        // Let the first fetches of every partition go out and the trickle reach the consumer.
        thread::sleep(Duration::from_secs(2));
        eprintln!(
            "live: after warm-up: {}",
            liveness(&consumer, &counters, &counters)
        );

        let handles = tps
            .iter()
            .map(|tp| consumer.partition(tp).expect("assigned"))
            .collect();
        let by_name: Arc<dyn Design> = Arc::new(LiveByName {
            tps: tps.clone(),
            consumer: consumer.clone(),
        });
        let by_handle: Arc<dyn Design> = Arc::new(LiveHandles {
            tps: tps.clone(),
            handles,
        });
        let (a, b) = (build("A_mutex", N), build("B_cow", N));
        let cell = |mode, design, d: &Arc<dyn Design>, batched, planner| Cell {
            mode,
            design,
            d: d.clone(),
            op: if batched { batch_pair } else { pair },
            batched,
            planner,
        };
        let cells = [
            cell("name", "weir", &by_name, false, false),
            cell("handle", "weir", &by_handle, false, false),
            cell("single", "A_mutex", &a, false, true),
            cell("single", "B_cow", &b, false, true),
            cell("batch100", "weir", &by_name, true, false),
            cell("batch100", "A_mutex", &a, true, true),
            cell("batch100", "B_cow", &b, true, true),
        ];

        // Warm-up (not recorded): every cell once, briefly.
        for c in &cells {
            let _planner = c.planner.then(|| Planner::start(c.d.clone()));
            run_for(&c.d, 1, Duration::from_millis(150), c.op, c.batched);
        }

        let before = (
            consumer.stats(),
            counters.polled_records.load(Ordering::Relaxed),
            Instant::now(),
        );
        let mut results: HashMap<(&str, &str, usize), Vec<f64>> = HashMap::new();
        for run in 1..=RUNS {
            for &threads in &LIVE_THREADS {
                for c in &cells {
                    let _planner = c.planner.then(|| Planner::start(c.d.clone()));
                    let rate = run_for(&c.d, threads, CELL, c.op, c.batched);
                    record(c, threads, run, rate);
                    results.entry((c.mode, c.design, threads)).or_default().push(rate);
                }
            }
            eprintln!(
                "live: run {run}/{RUNS} done; {}",
                liveness(&consumer, &counters, &counters)
            );
        }
        let (s0, p0, t0) = before;
        let s1 = consumer.stats();
        let secs = t0.elapsed().as_secs_f64();

        check(&consumer, &tps, &kept);

        let r = |mode: &str, design: &str, t: usize| median(&results[&(mode, design, t)]);
        println!(
            "\nlive pause/resume: {N} partitions assigned, 10% kept paused, {RUNS} alternated runs of {} s per cell",
            CELL.as_secs_f64()
        );
        println!(
            "median partitions paused+resumed per second (aggregate over writer threads); A and B have one \
             single-partition mode, compared with both weir's by-name and handle modes"
        );
        println!(
            "{:>9} {:>7} {:>13} {:>13} {:>13} {:>8} {:>8}",
            "mode", "threads", "weir", "A_mutex", "B_cow", "weir/A", "weir/B"
        );
        for mode in ["name", "handle", "batch100"] {
            let base = if mode == "batch100" { "batch100" } else { "single" };
            for &t in &LIVE_THREADS {
                let (w, ra, rb) = (r(mode, "weir", t), r(base, "A_mutex", t), r(base, "B_cow", t));
                println!(
                    "{mode:>9} {t:>7} {w:>13.0} {ra:>13.0} {rb:>13.0} {:>7.2}x {:>7.2}x",
                    w / ra,
                    w / rb
                );
            }
        }
        println!("single thread, ns per pause+resume pair (median):");
        for (label, mode, design) in [
            ("weir handle", "handle", "weir"),
            ("weir by name", "name", "weir"),
            ("A_mutex", "single", "A_mutex"),
            ("B_cow", "single", "B_cow"),
            ("weir batch100, per partition", "batch100", "weir"),
            ("A_mutex batch100, per partition", "batch100", "A_mutex"),
            ("B_cow batch100, per partition", "batch100", "B_cow"),
        ] {
            println!("  {label:<32} {:>9.1} ns", 1e9 / r(mode, design, 1));
        }
        println!("all runs (partitions/s), in run order:");
        for &t in &LIVE_THREADS {
            for c in &cells {
                let v = &results[&(c.mode, c.design, t)];
                let v: Vec<String> = v.iter().map(|x| format!("{x:.0}")).collect();
                println!("  {:>9} {:>8} t={t}: {}", c.mode, c.design, v.join(" "));
            }
        }
        println!(
            "consumer during the measured runs ({secs:.1} s): {} fetches ({:.0}/s), {} records delivered by \
             the poll loop ({} by poll count)",
            s1.fetches - s0.fetches,
            (s1.fetches - s0.fetches) as f64 / secs,
            s1.records_delivered - s0.records_delivered,
            counters.polled_records.load(Ordering::Relaxed) - p0,
        );
        println!("consumer in total: {}", liveness(&consumer, &counters, &counters));

        stop.store(true, Ordering::Relaxed);
        rt.block_on(async {
            let _ = poller.await;
            let _ = producer.await;
        });
        rt.block_on(consumer.close()).unwrap();
        drop(cells);
        drop((by_name, by_handle));
        drop(consumer);
        drop(rt);
        drop(broker);
        eprintln!("live: done in {:.0} s", t_all.elapsed().as_secs_f64());
    }

    /// Writers leave some partitions paused (handles, by name, batches by name; each thread owns the
    /// partitions `i % THREADS == t`, so the expected end state is not racy); then `consumer.paused()` must be
    /// exactly those plus the kept-paused ones.
    fn check(consumer: &Arc<Consumer>, tps: &[TopicPartition], kept: &[TopicPartition]) {
        const THREADS: usize = 4;
        let hs: Vec<_> = (0..THREADS)
            .map(|t| {
                let (consumer, tps) = (consumer.clone(), tps.to_vec());
                thread::spawn(move || {
                    let mut rng = Rng(0xC0FF_EE00_D15E_A5E5 ^ (t as u64 + 1));
                    let (mut left, mut batch, mut unbatch) = (Vec::new(), Vec::new(), Vec::new());
                    for i in (t..tps.len()).step_by(THREADS).filter(|&i| !kept_paused(i)) {
                        let tp = &tps[i];
                        let one = std::slice::from_ref(tp);
                        match rng.next() % 8 {
                            0 => consumer.partition(tp).unwrap().pause().unwrap(),
                            1 => consumer.pause(one).unwrap(),
                            2 => batch.push(tp.clone()),
                            3 => {
                                let h = consumer.partition(tp).unwrap();
                                h.pause().unwrap();
                                h.resume().unwrap();
                                continue;
                            }
                            4 => {
                                consumer.pause(one).unwrap();
                                consumer.resume(one).unwrap();
                                continue;
                            }
                            5 => {
                                unbatch.push(tp.clone());
                                continue;
                            }
                            _ => continue,
                        }
                        left.push(tp.clone());
                    }
                    consumer.pause(&batch).unwrap();
                    consumer.pause(&unbatch).unwrap();
                    consumer.resume(&unbatch).unwrap();
                    left
                })
            })
            .collect();
        let mut expected: Vec<TopicPartition> = kept.to_vec();
        for h in hs {
            expected.extend(h.join().unwrap());
        }
        expected.sort_unstable();
        let paused = consumer.paused();
        assert_eq!(paused.len(), expected.len(), "paused partitions: count");
        assert!(
            paused == expected,
            "paused partitions differ from what the writers left paused"
        );
        for tp in tps {
            let want = expected.binary_search(tp).is_ok();
            assert_eq!(consumer.partition(tp).unwrap().is_paused(), want, "{tp:?}");
        }
        println!(
            "\ncorrectness: OK, consumer.paused() = {} kept paused + {} left paused by the writers, \
             the other {} not paused",
            kept.len(),
            expected.len() - kept.len(),
            tps.len() - expected.len()
        );
    }
}
