//! Loom model of the partition cell's packed-word transitions and of the lock-free ready queues.
//!
//! Run with (as `scripts/test` does):
//! `cargo test -p weir --lib --features loom-model loom_tests`

use std::sync::Arc;

use super::{FetchGroupId, FetchOutcome, PartitionHandle, StateTable, StateTableConfig, TopicPartition};
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

fn setup(high: u64, start: i64) -> (Arc<StateTable>, PartitionHandle) {
    let mut cfg = StateTableConfig::with_high_watermark(high);
    cfg.max_buffered_bytes = 1 << 30;
    let t = Arc::new(StateTable::new(cfg));
    let tp = TopicPartition::new("t", 0);
    t.assign(&[(tp.clone(), start)]);
    let h = t.handle(&tp).unwrap();
    (t, h)
}

/// A fetch outcome: the next position and the bytes it buffered.
fn out(next_position: i64, bytes: u64) -> FetchOutcome {
    FetchOutcome {
        next_position,
        bytes,
        left_for_room: false,
    }
}

/// Checks invariant 6 at quiescence: fetchable => queued, and the cell is queued at most once.
fn check_ready_invariant(t: &StateTable, h: &PartitionHandle) {
    let s = h.snapshot();
    let fetchable = s.assigned && !s.paused && !s.held && !s.backpressured && !s.in_flight;
    if fetchable {
        assert!(s.queued, "fetchable but not queued: {s:?}");
    }
    let q = t.fetch_group(FetchGroupId::UNROUTED).unwrap().ready_len();
    assert!(q <= 1, "queued {q} times");
    assert_eq!(q == 1, s.queued, "{s:?} queue len {q}");
}

/// A group's release and the application's resume of a held, paused, queued-out partition, concurrently:
/// whichever comes second makes it fetchable, and it ends up queued exactly once.
#[test]
fn release_vs_resume() {
    loom::model(|| {
        let (t, h) = setup(100, 0);
        let tp = TopicPartition::new("t", 0);
        // Paused and held, then taken out of the ready queue by a planner that finds it stopped.
        h.pause();
        t.hold(std::slice::from_ref(&tp));
        let g = t.fetch_group(FetchGroupId::UNROUTED).unwrap();
        let begun = g.poll_ready(&mut Vec::new(), |_, _| {
            panic!("a stopped partition began a fetch")
        });
        assert_eq!(begun, 0);
        assert!(!h.snapshot().queued);
        let (t1, tp1) = (t.clone(), tp.clone());
        let a = thread::spawn(move || {
            t1.release(std::slice::from_ref(&tp1), |_| ());
        });
        let h2 = h.clone();
        let b = thread::spawn(move || {
            h2.resume();
        });
        a.join().unwrap();
        b.join().unwrap();
        assert!(h.state().is_fetchable());
        check_ready_invariant(&t, &h);
    });
}

/// Once pause() has returned, no fetch can begin.
#[test]
fn pause_vs_begin() {
    loom::model(|| {
        let (t, h) = setup(100, 0);
        let paused = Arc::new(AtomicBool::new(false));
        let (h1, p1) = (h.clone(), paused.clone());
        let a = thread::spawn(move || {
            h1.pause();
            p1.store(true, Ordering::SeqCst);
        });
        let seen = paused.load(Ordering::SeqCst);
        let tk = h.try_begin_fetch();
        if seen {
            assert!(tk.is_none(), "fetch began after pause() returned");
        }
        a.join().unwrap();
        if let Some(tk) = tk {
            assert!(h.finish_fetch(tk, out(1, 0)));
        }
        let s = h.snapshot();
        assert!(s.paused && !s.in_flight);
        check_ready_invariant(&t, &h);
    });
}

/// Seek races a whole fetch (begin + finish): the final position reflects the seek, a result
/// planned before the seek is reported stale, and the byte accounting stays exact.
#[test]
fn seek_vs_fetch() {
    loom::model(|| {
        let (t, h) = setup(1000, 0);
        let h1 = h.clone();
        let a = thread::spawn(move || h1.seek(100).unwrap());
        let mut kept = None;
        if let Some(tk) = h.try_begin_fetch() {
            let ok = h.finish_fetch(tk, out(tk.position + 10, 7));
            kept = Some((tk, ok));
        }
        let ch = a.join().unwrap();
        let s = h.snapshot();
        assert!(!s.in_flight);
        assert!(s.position == 100 || s.position == 110, "{s:?} {kept:?}");
        assert_eq!(t.buffered_total() as u64, s.buffered);
        match kept {
            Some((tk, true)) if tk.epoch == ch.epoch => {
                assert_eq!(tk.position, 100);
                assert_eq!(s.position, 110);
                assert_eq!(s.buffered, 7);
            }
            Some((tk, true)) => {
                // Finished before the seek: the seek dropped its bytes.
                assert_ne!(tk.epoch, ch.epoch);
                assert_eq!(s.position, 100);
                assert_eq!(s.buffered, 0);
            }
            Some((tk, false)) => {
                assert_ne!(tk.epoch, ch.epoch);
                assert_eq!(s.position, 100);
                assert_eq!(s.buffered, 0);
            }
            // The seek was installing its target (SEEKING): nothing fetched.
            None => {
                assert_eq!(s.position, 100);
                assert_eq!(s.buffered, 0);
            }
        }
        check_ready_invariant(&t, &h);
    });
}

/// finish_fetch crossing the high watermark races consume draining to the low watermark: the
/// backpressure flag must not be left set at or below low (the partition would stall).
#[test]
fn finish_vs_consume_hysteresis() {
    loom::model(|| {
        let (t, h) = setup(100, 0); // low = 50
        let tk = h.try_begin_fetch().unwrap();
        assert!(h.finish_fetch(tk, out(1, 60)));
        let tk = h.try_begin_fetch().unwrap();
        let h1 = h.clone();
        let a = thread::spawn(move || h1.consume(60));
        assert!(h.finish_fetch(tk, out(2, 50)));
        a.join().unwrap();
        let s = h.snapshot();
        assert_eq!(s.buffered, 50);
        assert!(!s.backpressured, "stuck backpressured at low watermark: {s:?}");
        assert!(!s.in_flight);
        check_ready_invariant(&t, &h);
    });
}

/// The sizing task raises a backpressured partition's own watermarks (rate-sized buffers) while the application
/// drains it to above the old low watermark but below the new one: the flag must not stay set (the partition
/// would stall), whichever comes first; and readiness must hold.
#[test]
fn watermarks_raised_vs_consume() {
    loom::model(|| {
        let (t, h) = setup(100, 0); // low = 50
        let tk = h.try_begin_fetch().unwrap();
        assert!(h.finish_fetch(tk, out(1, 100)));
        assert!(h.snapshot().backpressured);
        let h1 = h.clone();
        let a = thread::spawn(move || h1.consume(40));
        h.state().set_watermarks(400, 200);
        a.join().unwrap();
        let s = h.snapshot();
        assert_eq!(s.buffered, 60);
        assert!(
            !s.backpressured,
            "stuck backpressured below the low watermark: {s:?}"
        );
        check_ready_invariant(&t, &h);
    });
}

/// The sizing task lowers a partition's own watermarks under what it holds while the application drains a
/// little: it must end backpressured (not fetched past its new high watermark).
#[test]
fn watermarks_lowered_vs_consume() {
    loom::model(|| {
        let (t, h) = setup(100, 0); // low = 50
        let tk = h.try_begin_fetch().unwrap();
        assert!(h.finish_fetch(tk, out(1, 70)));
        assert!(!h.snapshot().backpressured);
        let h1 = h.clone();
        let a = thread::spawn(move || h1.consume(5));
        h.state().set_watermarks(60, 30);
        a.join().unwrap();
        let s = h.snapshot();
        assert_eq!(s.buffered, 65);
        assert!(s.backpressured, "fetchable above its high watermark: {s:?}");
        check_ready_invariant(&t, &h);
    });
}

/// A fetch that left a batch for lack of room (backpressured above the low watermark) races consume
/// draining to the low watermark: the flag must not be left set at low (the partition would stall).
#[test]
fn left_for_room_vs_consume() {
    loom::model(|| {
        let (t, h) = setup(100, 0); // low = 50
        let tk = h.try_begin_fetch().unwrap();
        assert!(h.finish_fetch(tk, out(1, 60)));
        let tk = h.try_begin_fetch().unwrap();
        let h1 = h.clone();
        let a = thread::spawn(move || h1.consume(10));
        let left = FetchOutcome {
            left_for_room: true,
            ..out(2, 0)
        };
        assert!(h.finish_fetch(tk, left));
        a.join().unwrap();
        let s = h.snapshot();
        assert_eq!(s.buffered, 50);
        assert!(!s.backpressured, "stuck backpressured at low watermark: {s:?}");
        check_ready_invariant(&t, &h);
    });
}

/// Resume races a planner popping the ready queue and finishing: readiness is never lost and
/// the cell is never queued twice.
#[test]
fn resume_vs_queue_planner() {
    loom::model(|| {
        let (t, h) = setup(100, 0);
        let g = t.fetch_group(FetchGroupId::UNROUTED).unwrap();
        h.pause();
        let h1 = h.clone();
        let a = thread::spawn(move || {
            h1.resume();
        });
        let mut scratch = Vec::new();
        let mut tickets = Vec::new();
        g.poll_ready(&mut scratch, |c, tk| tickets.push((c.clone(), tk)));
        for (c, tk) in tickets {
            assert!(c.finish_fetch(tk, out(1, 0)));
        }
        a.join().unwrap();
        check_ready_invariant(&t, &h);
        assert!(h.state().is_fetchable());
    });
}

/// Pause, seek and a fetch all at once (three threads).
#[test]
fn pause_seek_fetch() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let (t, h) = setup(100, 0);
        let h1 = h.clone();
        let a = thread::spawn(move || {
            h1.pause();
        });
        let h2 = h.clone();
        let c = thread::spawn(move || h2.seek(100).unwrap());
        let r = h
            .try_begin_fetch()
            .map(|tk| (tk, h.finish_fetch(tk, out(tk.position + 1, 5))));
        a.join().unwrap();
        let ch = c.join().unwrap();
        let s = h.snapshot();
        assert!(s.paused && !s.in_flight);
        assert!(s.position == 100 || s.position == 101, "{s:?}");
        if let Some((tk, ok)) = r {
            assert_eq!(ok && tk.epoch == ch.epoch, s.position == 101, "{s:?} {tk:?} {ok}");
        }
        assert_eq!(t.buffered_total() as u64, s.buffered);
        check_ready_invariant(&t, &h);
    });
}

/// Two partitions made fetchable by two threads at once (each resume pushes onto the same lock-free ready
/// queue) while a planner takes the queue and begins fetches: every fetchable partition ends up queued exactly
/// once or fetched, none is lost or queued twice.
#[test]
fn concurrent_pushes_and_take() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let mut cfg = StateTableConfig::with_high_watermark(100);
        cfg.max_buffered_bytes = 1 << 30;
        let t = Arc::new(StateTable::new(cfg));
        let (a, b) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
        t.assign(&[(a.clone(), 0), (b.clone(), 0)]);
        let g = t.fetch_group(FetchGroupId::UNROUTED).unwrap();
        let (ha, hb) = (t.handle(&a).unwrap(), t.handle(&b).unwrap());
        // Both paused and taken out of the queue by a planner that found them paused.
        ha.pause();
        hb.pause();
        assert_eq!(g.poll_ready(&mut Vec::new(), |_, _| panic!("paused")), 0);
        let ha1 = ha.clone();
        let ta = thread::spawn(move || {
            ha1.resume();
        });
        let hb1 = hb.clone();
        let tb = thread::spawn(move || {
            hb1.resume();
        });
        let mut fetched = Vec::new();
        g.poll_ready(&mut Vec::new(), |c, tk| fetched.push((c.clone(), tk)));
        ta.join().unwrap();
        tb.join().unwrap();
        for h in [&ha, &hb] {
            let in_flight = fetched.iter().any(|(c, _)| Arc::ptr_eq(c, h.state()));
            let s = h.snapshot();
            assert_eq!(s.in_flight, in_flight, "{s:?}");
            assert!(
                in_flight || s.queued,
                "resumed partition neither fetched nor queued: {s:?}"
            );
        }
        let queued = [&ha, &hb].iter().filter(|h| h.snapshot().queued).count();
        assert_eq!(
            g.ready_len(),
            queued,
            "each queued partition is in the queue exactly once"
        );
        for (c, tk) in fetched {
            assert!(c.finish_fetch(tk, out(1, 0)));
        }
        check_ready_invariant_queue(&g, &[&ha, &hb]);
    });
}

/// At quiescence every fetchable partition is in the queue exactly once, and nothing else is.
fn check_ready_invariant_queue(g: &super::FetchGroup, hs: &[&PartitionHandle]) {
    let mut cells = Vec::new();
    g.take_ready(&mut cells);
    for h in hs {
        let n = cells.iter().filter(|c| Arc::ptr_eq(c, h.state())).count();
        let s = h.snapshot();
        assert_eq!(n, usize::from(s.queued), "{s:?} in the queue {n} times");
        if h.state().is_fetchable() {
            assert_eq!(n, 1, "fetchable but not queued: {s:?}");
        }
    }
    assert!(cells.len() <= hs.len());
    for c in cells {
        g.defer(c);
    }
}

/// Records arrive (the owner sets HAS_RECORDS) while the application resumes: the resume sees the records, or
/// the owner sees the partition running; either way one of them queues it for delivery (invariant 7).
#[test]
fn resume_vs_records_arriving() {
    loom::model(|| {
        let (_t, h) = setup(100, 0);
        h.pause();
        let c = h.state().clone();
        let owner = thread::spawn(move || !c.set_has_records());
        let t = h.state().resume();
        let owner_queues = owner.join().unwrap();
        let resume_queues = t.was_paused && t.has_records;
        assert!(
            owner_queues || resume_queues,
            "records arrived during a resume and no one queued them"
        );
    });
}

/// `poll` takes a partition from its queue (clearing the consumer's `queued` flag, then reading the pause state
/// under the buffer lock) while the application resumes it (clearing PAUSED, then setting `queued` to hand it to
/// delivery if it has records). The consumer's protocol, with a loom flag standing in for its `queued`: poll
/// delivers the records, or the resume queues the partition again. With a plain store where poll swaps, loom
/// finds the partition left in no queue.
#[test]
fn poll_take_vs_resume() {
    loom::model(|| {
        let (_t, h) = setup(100, 0);
        h.pause();
        assert!(h.state().set_has_records(), "paused: stopped");
        let queued = Arc::new(AtomicBool::new(true)); // in poll's hands
        let (c, q) = (h.state().clone(), queued.clone());
        let resumer = thread::spawn(move || {
            let t = c.resume();
            t.was_paused && t.has_records && !q.swap(true, Ordering::AcqRel)
        });
        queued.swap(false, Ordering::AcqRel);
        let delivered = !h.state().is_stopped();
        let requeued = resumer.join().unwrap();
        assert!(
            delivered || requeued,
            "a resumed partition with records was left in no queue"
        );
    });
}
