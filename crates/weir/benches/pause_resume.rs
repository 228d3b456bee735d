//! Pause/resume throughput of partition state-table designs, with a planner scanning meanwhile.
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

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use weir::consumer::state_table::{PartitionHandle, StateTable, StateTableConfig, TopicPartition};

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

/// Runs `iters` operations spread over `threads` writer threads; returns the wall time scaled to
/// exactly `iters` operations.
fn run_threads(
    d: &Arc<dyn Design>,
    n: usize,
    threads: usize,
    iters: u64,
    op: fn(&dyn Design, &mut Ctx),
    batched: bool,
) -> Duration {
    let per = iters.div_ceil(threads as u64).max(1);
    let barrier = Arc::new(Barrier::new(threads + 1));
    let mut hs = Vec::with_capacity(threads);
    for t in 0..threads {
        let (d, barrier) = (d.clone(), barrier.clone());
        hs.push(thread::spawn(move || {
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
            let mut ctx = Ctx {
                rng,
                n,
                batches,
                k: 0,
            };
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

fn pair(d: &dyn Design, c: &mut Ctx) {
    let i = c.rng.pick(c.n);
    d.pause(i);
    d.resume(i);
}

/// Pauses then resumes a pre-built batch of (up to) 100 random partitions.
fn batch_pair(d: &dyn Design, c: &mut Ctx) {
    c.k = (c.k + 1) % c.batches.len();
    let b = &c.batches[c.k];
    d.pause_batch(b);
    d.resume_batch(b);
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
criterion_main!(benches);
