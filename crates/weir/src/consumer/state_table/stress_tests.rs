//! Multi-thread stress test of the partition state table (std threads, ~1 s).
//!
//! 8 threads pause/resume random partitions (each partition is owned by one of them so "paused
//! since pause() returned" is well defined), one planner drives fetches from its ready queue
//! under the byte budget, one thread consumes buffered bytes and occasionally seeks.
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use super::{FetchOutcome, NoopWaker, PartitionHandle, StateTable, StateTableConfig, TopicPartition};

const TOPICS: usize = 4;
const PER_TOPIC: usize = 16;
const N: usize = TOPICS * PER_TOPIC;
const PAUSERS: usize = 8;
const BUDGET: usize = 256 * 1024;
const RUN: Duration = Duration::from_millis(1200);

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Probe {
    /// Set by the owning pauser after pause() returned, cleared before it calls resume().
    user_paused: AtomicBool,
    /// Incremented by the owning pauser before each resume().
    resumes: AtomicU64,
    /// Test-side in-flight flag.
    in_flight: AtomicBool,
}

fn index(tp: &TopicPartition) -> usize {
    let t: usize = tp.topic[1..].parse().unwrap();
    t * PER_TOPIC + tp.partition as usize
}

#[test]
fn stress_pause_resume_fetch_consume() {
    let cfg = StateTableConfig {
        high_watermark: 16 * 1024,
        low_watermark: 8 * 1024,
        max_buffered_bytes: BUDGET,
    };
    let table = Arc::new(StateTable::new(cfg));
    let tps: Vec<TopicPartition> = (0..TOPICS)
        .flat_map(|t| (0..PER_TOPIC).map(move |p| TopicPartition::new(format!("t{t}"), p as i32)))
        .collect();
    let group = table.register_fetch_group(Arc::new(NoopWaker));
    table.assign(&tps.iter().map(|tp| (tp.clone(), 0)).collect::<Vec<_>>());
    for tp in &tps {
        assert!(table.set_fetch_group(tp, group.id()));
    }
    table.reroute(super::FetchGroupId::UNROUTED);
    let handles: Arc<Vec<PartitionHandle>> =
        Arc::new(tps.iter().map(|tp| table.handle(tp).unwrap()).collect());
    let probes: Arc<Vec<Probe>> = Arc::new(
        (0..N)
            .map(|_| Probe {
                user_paused: AtomicBool::new(false),
                resumes: AtomicU64::new(0),
                in_flight: AtomicBool::new(false),
            })
            .collect(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(PAUSERS + 4));
    let pairs = Arc::new(AtomicU64::new(0));
    let mut threads = Vec::new();

    for w in 0..PAUSERS {
        let (table, handles, probes, stop, start, pairs) = (
            table.clone(),
            handles.clone(),
            probes.clone(),
            stop.clone(),
            start.clone(),
            pairs.clone(),
        );
        let tps = tps.clone();
        threads.push(thread::spawn(move || {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w as u64 + 1));
            start.wait();
            let mine: Vec<usize> = (0..N).filter(|i| i % PAUSERS == w).collect();
            while !stop.load(SeqCst) {
                let i = mine[rng.below(mine.len() as u64) as usize];
                let by_name = rng.below(2) == 0;
                if by_name {
                    table.pause(std::slice::from_ref(&tps[i])).unwrap();
                } else {
                    handles[i].pause();
                }
                probes[i].user_paused.store(true, SeqCst);
                assert!(handles[i].is_paused());
                for _ in 0..rng.below(50) {
                    std::hint::spin_loop();
                }
                probes[i].user_paused.store(false, SeqCst);
                probes[i].resumes.fetch_add(1, SeqCst);
                if by_name {
                    table.resume(std::slice::from_ref(&tps[i])).unwrap();
                } else {
                    handles[i].resume();
                }
                pairs.fetch_add(1, SeqCst);
            }
        }));
    }

    // Planner: ready-queue driven, budget reserved per round.
    let fetches = Arc::new(AtomicU64::new(0));
    let stale = Arc::new(AtomicU64::new(0));
    {
        let (table, probes, stop, start, fetches, stale) = (
            table.clone(),
            probes.clone(),
            stop.clone(),
            start.clone(),
            fetches.clone(),
            stale.clone(),
        );
        let group = group.clone();
        threads.push(thread::spawn(move || {
            let mut rng = Rng(42);
            let mut ready = Vec::new();
            let mut round = Vec::new();
            start.wait();
            while !stop.load(SeqCst) {
                let grant = table.reserve_budget(64 * 1024);
                if grant == 0 {
                    table.wait_for_budget();
                    thread::yield_now();
                    continue;
                }
                group.take_ready(&mut ready);
                for cell in ready.drain(..) {
                    let i = index(cell.topic_partition());
                    let p = &probes[i];
                    let r0 = p.resumes.load(SeqCst);
                    let was_paused = p.user_paused.load(SeqCst);
                    if let Some(tk) = cell.try_begin_queued() {
                        if was_paused {
                            assert_ne!(
                                p.resumes.load(SeqCst),
                                r0,
                                "fetch began on {} after pause() returned",
                                cell.topic_partition()
                            );
                        }
                        assert!(!p.in_flight.swap(true, SeqCst), "in flight twice");
                        round.push((cell, tk));
                    }
                }
                // "Send" the request; the response shares the grant.
                let mut left = grant as u64;
                for (cell, tk) in round.drain(..) {
                    let bytes = rng.below(left.min(12 * 1024) + 1);
                    left -= bytes;
                    let i = index(cell.topic_partition());
                    probes[i].in_flight.store(false, SeqCst);
                    let next = tk.position + bytes as i64 / 100 + 1;
                    let kept = cell.finish_fetch(
                        tk,
                        FetchOutcome {
                            next_position: next,
                            bytes,
                            left_for_room: false,
                        },
                    );
                    if kept {
                        fetches.fetch_add(1, SeqCst);
                    } else {
                        stale.fetch_add(1, SeqCst);
                    }
                    assert!(table.buffered_total() <= BUDGET, "budget exceeded");
                }
                table.release_budget(grant);
            }
        }));
    }

    // Consumer: takes bytes out, occasionally seeks.
    let consumed = Arc::new(AtomicUsize::new(0));
    {
        let (table, handles, stop, start, consumed) = (
            table.clone(),
            handles.clone(),
            stop.clone(),
            start.clone(),
            consumed.clone(),
        );
        threads.push(thread::spawn(move || {
            let mut rng = Rng(7);
            start.wait();
            while !stop.load(SeqCst) {
                let h = &handles[rng.below(N as u64) as usize];
                let total = table.buffered_total();
                assert!(total <= BUDGET, "budget exceeded: {total}");
                assert!(total < usize::MAX / 2, "buffered went negative");
                if rng.below(1000) == 0 {
                    let pos = h.state().position();
                    h.seek(pos.saturating_sub(5).max(0));
                } else {
                    let b = h.state().buffered_bytes();
                    if b > 0 {
                        h.consume(rng.below(b) + 1);
                        consumed.fetch_add(1, SeqCst);
                    }
                }
            }
        }));
    }

    // Sizer: moves partitions' own watermarks as the rate-sized mode's task does.
    {
        let (handles, stop, start) = (handles.clone(), stop.clone(), start.clone());
        threads.push(thread::spawn(move || {
            let mut rng = Rng(99);
            start.wait();
            while !stop.load(SeqCst) {
                let h = &handles[rng.below(N as u64) as usize];
                let high = 1024 + rng.below(31 * 1024);
                h.state().set_watermarks(high, high / 2);
            }
        }));
    }

    start.wait();
    let t0 = Instant::now();
    thread::sleep(RUN);
    stop.store(true, SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let elapsed = t0.elapsed();

    // Quiescent checks.
    let sum: u64 = handles.iter().map(|h| h.state().buffered_bytes()).sum();
    assert_eq!(sum as usize, table.buffered_total(), "accounting drift");
    assert!(table.buffered_total() <= BUDGET);
    assert!(table.paused().is_empty());
    for h in handles.iter() {
        let s = h.snapshot();
        assert!(!s.in_flight && !s.paused && s.assigned, "{s:?}");
        // Hysteresis against each partition's own watermarks: never backpressured at or below the low one,
        // never fetchable at or above the high one.
        let (high, low) = h.state().watermarks();
        match s.backpressured {
            true => assert!(s.buffered > low, "stuck at its low watermark {low}: {s:?}"),
            false => assert!(s.buffered < high, "fetchable at its high watermark {high}: {s:?}"),
        }
        if h.state().is_fetchable() {
            assert!(s.queued, "fetchable but not queued: {s:?}");
        }
    }
    // Drain everything: every partition must become fetchable and queued (no lost wake-up).
    for h in handles.iter() {
        h.consume(u64::MAX);
    }
    let queued = group.ready_len();
    for h in handles.iter() {
        let s = h.snapshot();
        assert!(h.state().is_fetchable() && s.queued, "{s:?}");
    }
    assert_eq!(queued, N, "each cell queued exactly once");
    assert_eq!(table.buffered_total(), 0);
    assert_eq!(table.budget_available(), BUDGET);
    let f = fetches.load(SeqCst);
    eprintln!(
        "{elapsed:?}: {} pause/resume pairs, {f} fetches kept, {} stale, {} consumes",
        pairs.load(SeqCst),
        stale.load(SeqCst),
        consumed.load(SeqCst)
    );
    assert!(f > 100, "planner made progress");
}
