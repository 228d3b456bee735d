//! Rate-sized watermarks: each partition buffers what the application drains from it in a target window
//! (`weir.buffer.target.ms`), instead of an equal share of the budget.
//!
//! - **On the poll path**, a delivery adds its bytes to the partition's [`DrainMeter`]: one relaxed atomic add,
//!   no lock, no wake-up.
//! - **A sizing task** wakes every [`TICK`]. For each assigned partition it folds the bytes drained since the
//!   last tick into a drain rate, an exponential moving average with time constant [`SMOOTHING`]. The partition
//!   then wants rate × target, between the floor and the ceiling (`weir.partition.buffer.min.bytes` and
//!   `weir.partition.buffer.bytes`).
//! - **Within the budget** ([`Sizing::fit`]): every partition is sure of what it wants up to its fair share of
//!   the budget; what partitions want beyond it comes from what the others leave, scaled down alike when it
//!   does not all fit. Partitions drained alike thus get the fair shares, as with fixed watermarks.
//! - **Where the budget goes:** a partition that is paused, idle or slow drains little, so its rate decays and
//!   its watermark falls toward the floor, and the budget moves to partitions drained fast.
//! - **Growth:** a partition starved by a small watermark still drains a watermark's worth per fetch round
//!   trip. Its rate × target passes its watermark as long as the target is longer than a round trip, so it
//!   grows until the application, not the buffer, limits it.
//! - **Hysteresis** stays: the low watermark keeps its configured ratio to the high one. A watermark changes
//!   only when the new value differs from the old by more than [`STEP`], so that buffers do not flap with the
//!   rate's noise.
//!
//! Why a task and not only the deliveries: a paused or idle partition delivers nothing, yet its rate must decay
//! and its share must move to the others. The pass walks the assigned partitions (about 20 ns each) off the poll
//! and pause/resume paths, ten times a second (a few milliseconds a second for 10,000 partitions).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::{ConsumerConfig, Inner, Partition};

/// How often the sizing task turns drained bytes into rates and watermarks.
pub(crate) const TICK: Duration = Duration::from_millis(100);
/// Time constant of the drain rate's moving average: after a change of rate, the estimate has covered 63% of
/// it within this long, 95% within three times it.
pub(crate) const SMOOTHING: Duration = Duration::from_secs(1);
/// A watermark moves only when its new value differs from the old by more than this fraction (1/8).
const STEP: u64 = 8;

/// What the application drained from one partition, and the rate made of it (lives in the partition's slot).
#[derive(Debug, Default)]
pub(crate) struct DrainMeter {
    /// Bytes of memory delivered from the partition, ever (added on the poll path).
    drained: AtomicU64,
    /// `drained` at the sizing task's last tick (the task's own).
    seen: AtomicU64,
    /// The drain rate in bytes of memory per second (written by the sizing task).
    rate: AtomicU64,
}

impl DrainMeter {
    /// Counts `bytes` delivered.
    #[inline]
    pub(crate) fn record(&self, bytes: u64) {
        // Relaxed: a counter, read by the sizing task a tick later; nothing is published through it.
        self.drained.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The drain rate at the last tick, in bytes of memory per second (0 in the fixed mode).
    pub(crate) fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    /// For the sizing task: folds what was drained since its last tick, `elapsed` ago, into the rate.
    fn tick(&self, elapsed: Duration) -> u64 {
        let now = self.drained.load(Ordering::Relaxed);
        let bytes = now.wrapping_sub(self.seen.swap(now, Ordering::Relaxed));
        let rate = next_rate(self.rate(), bytes, elapsed);
        self.rate.store(rate, Ordering::Relaxed);
        rate
    }
}

/// The moving average after `bytes` drained in `elapsed`: the old rate moves toward this interval's by the
/// share of [`SMOOTHING`] that passed (so ticks that come late weigh more).
pub(crate) fn next_rate(old: u64, bytes: u64, elapsed: Duration) -> u64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return old;
    }
    let sample = bytes as f64 / secs;
    let weight = 1.0 - (-secs / SMOOTHING.as_secs_f64()).exp();
    let next = old as f64 + weight * (sample - old as f64);
    // Floored, so that a partition drained of nothing reaches 0 instead of lingering at a byte per second.
    next.max(0.0).floor() as u64
}

/// The sizing rules of one consumer (from its configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sizing {
    /// The target window, in ms (never 0: zero selects the fixed mode, which has no `Sizing`).
    target_ms: u64,
    /// The configured smallest buffer.
    floor: u64,
    /// The largest buffer (`weir.partition.buffer.bytes`).
    ceiling: u64,
    budget: u64,
    /// The configured low watermark over the high one, in thousandths.
    low_per_high_milli: u64,
}

impl Sizing {
    /// The rules of `cfg`, or `None` in the fixed mode (a target window of 0).
    pub(crate) fn of(cfg: &ConsumerConfig) -> Option<Sizing> {
        let target_ms = cfg.buffer_target.as_millis() as u64;
        (target_ms > 0).then(|| Sizing {
            target_ms,
            floor: cfg.partition_buffer_min as u64,
            ceiling: cfg.partition_buffer.max(1) as u64,
            budget: cfg.memory_budget as u64,
            low_per_high_milli: (cfg.partition_buffer_low as u128 * 1000
                / cfg.partition_buffer.max(1) as u128) as u64,
        })
    }

    /// The floor with `assigned` partitions: the configured one, or half the fair share of the budget when that
    /// is smaller, at least 1 byte. Every partition can always buffer this much, and the floors never take more
    /// than half the budget: with many partitions, the other half still goes where the drain is.
    pub(crate) fn floor(&self, assigned: usize) -> u64 {
        let half_share = self.budget / 2 / assigned.max(1) as u64;
        self.floor.min(half_share).min(self.ceiling).max(1)
    }

    /// What a partition drained at `rate` bytes per second wants: `rate` × the target, within `floor` and the
    /// ceiling.
    pub(crate) fn wanted(&self, rate: u64, floor: u64) -> u64 {
        let window = (rate as u128 * self.target_ms as u128 / 1000).min(u64::MAX as u128) as u64;
        window.clamp(floor, self.ceiling.max(floor))
    }

    /// Fits the partitions' `wanted` watermarks into the budget. Each is sure of what it wants up to its fair
    /// share of the budget (`budget / partitions`); what partitions want beyond their fair share is granted from
    /// what the others leave, each such excess scaled by the same factor when they do not all fit. So partitions
    /// drained alike get exactly the fair shares (as with fixed watermarks), and the budget of partitions that
    /// want less (paused, idle, slow: down to the floor) goes to those that want more.
    pub(crate) fn fit(&self, wanted: &mut [u64]) {
        let fair = self.budget / wanted.len().max(1) as u64;
        let sure: u128 = wanted.iter().map(|&w| w.min(fair) as u128).sum();
        let spare = (self.budget as u128).saturating_sub(sure);
        let excess: u128 = wanted.iter().map(|&w| (w - w.min(fair)) as u128).sum();
        if excess <= spare {
            return;
        }
        for w in wanted.iter_mut() {
            let above = (*w - (*w).min(fair)) as u128;
            *w = (*w).min(fair) + (above * spare / excess) as u64;
        }
    }

    /// The low watermark that goes with `high` (the configured ratio).
    pub(crate) fn low(&self, high: u64) -> u64 {
        (high as u128 * self.low_per_high_milli as u128 / 1000) as u64
    }
}

/// Whether a watermark at `old` should move to `new` (see [`STEP`]): by more than an eighth, or to the floor or
/// ceiling it is not at.
fn moves(old: u64, new: u64, floor: u64, ceiling: u64) -> bool {
    old.abs_diff(new) > old / STEP || (new != old && (new == floor || new == ceiling))
}

/// The sizing task of a consumer in the rate-sized mode: every [`TICK`], rates from what was drained, then
/// watermarks from the rates. Ends when the consumer is dropped or closed.
pub(crate) async fn run(inner: Weak<Inner>, sizing: Sizing) {
    let mut last = Instant::now();
    let mut cells: Vec<Arc<Partition>> = Vec::new();
    let mut wanted: Vec<u64> = Vec::new();
    loop {
        tokio::time::sleep(TICK).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if inner.is_closed() {
            return;
        }
        let elapsed = last.elapsed();
        last = Instant::now();
        cells.clear();
        inner.table.for_each_cell(|c| {
            if c.is_assigned() {
                cells.push(c.arc());
            }
        });
        let floor = sizing.floor(cells.len());
        wanted.clear();
        wanted.extend(
            cells
                .iter()
                .map(|c| sizing.wanted(c.data().drain.tick(elapsed), floor)),
        );
        sizing.fit(&mut wanted);
        for (c, &high) in cells.iter().zip(&wanted) {
            if moves(c.watermarks().0, high, floor, sizing.ceiling) {
                c.set_watermarks(high, sizing.low(high));
            }
        }
        cells.clear();
    }
}

#[cfg(all(test, not(feature = "loom-model")))]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn sizing(target_ms: u64, budget: u64) -> Sizing {
        let mut cfg = ConsumerConfig::new("localhost:9092");
        cfg.buffer_target = Duration::from_millis(target_ms);
        cfg.memory_budget = budget as usize;
        Sizing::of(&cfg).expect("rate-sized")
    }

    #[test]
    fn a_target_of_zero_is_the_fixed_mode() {
        let mut cfg = ConsumerConfig::new("localhost:9092");
        assert!(Sizing::of(&cfg).is_some(), "rate-sized by default");
        cfg.buffer_target = Duration::ZERO;
        assert_eq!(Sizing::of(&cfg), None);
    }

    #[test]
    fn the_rate_follows_what_is_drained() {
        // 1 MB/s for 3 s of ticks: within 5% of it (three time constants).
        let per_tick = (1_000_000.0 * TICK.as_secs_f64()) as u64;
        let mut rate = 0;
        for _ in 0..(3000 / TICK.as_millis()) {
            rate = next_rate(rate, per_tick, TICK);
        }
        assert!((950_000..=1_000_000).contains(&rate), "{rate}");
        // Nothing drained (paused, idle): decays to zero (within 30 s).
        for _ in 0..(30_000 / TICK.as_millis()) {
            rate = next_rate(rate, 0, TICK);
        }
        assert_eq!(rate, 0);
        // At the same rate, a late tick weighs more than a prompt one; no time passed changes nothing.
        assert!(next_rate(0, per_tick * 5, TICK * 5) > next_rate(0, per_tick, TICK));
        assert_eq!(next_rate(7, 1 << 30, Duration::ZERO), 7);
    }

    #[test]
    fn a_partition_wants_its_rate_times_the_target_within_floor_and_ceiling() {
        let s = sizing(1000, 64 * MIB);
        let floor = s.floor(10);
        assert_eq!(floor, 64 << 10);
        assert_eq!(s.wanted(0, floor), floor, "idle: the floor");
        assert_eq!(s.wanted(MIB, floor), MIB, "1 MiB/s for 1 s");
        assert_eq!(s.wanted(100 * MIB, floor), 8 * MIB, "the ceiling");
        assert_eq!(s.low(MIB), MIB / 2, "the configured ratio");
    }

    #[test]
    fn the_floors_take_at_most_half_the_budget() {
        let s = sizing(1000, 64 * MIB);
        assert_eq!(s.floor(10_000), 64 * MIB / 2 / 10_000);
        assert_eq!(s.floor(0), 64 << 10);
    }

    #[test]
    fn what_is_wanted_beyond_the_fair_share_is_scaled_into_the_budget() {
        // 16 MiB for 64 partitions: one hot partition wants the ceiling, 63 cold ones 100 KB.
        let s = sizing(1000, 16 * MIB);
        let floor = s.floor(64);
        let mut wanted = vec![s.wanted(100_000, floor); 64];
        wanted[0] = s.wanted(u64::MAX / 1000, floor);
        let before = wanted.clone();
        s.fit(&mut wanted);
        assert_eq!(wanted, before, "it fits: unchanged");

        // Everyone hot: exactly the fair shares, as with fixed watermarks.
        let fair = 16 * MIB / 64;
        let mut wanted = vec![s.wanted(u64::MAX / 1000, floor); 64];
        s.fit(&mut wanted);
        assert_eq!(wanted, vec![fair; 64]);
        // Hot ones that want different amounts beyond their share still get the fair shares: none is left over.
        let mut wanted: Vec<u64> = (0..64).map(|i| fair + i * 1000).collect();
        s.fit(&mut wanted);
        assert_eq!(wanted, vec![fair; 64]);

        // Two hot partitions and 62 idle ones: the idle ones keep the floor, the hot ones share the rest.
        let mut wanted = vec![floor; 64];
        wanted[0] = 8 * MIB;
        wanted[1] = 8 * MIB;
        s.fit(&mut wanted);
        assert!(wanted.iter().sum::<u64>() <= 16 * MIB);
        assert_eq!(wanted[2..], vec![floor; 62][..]);
        assert_eq!(wanted[0], wanted[1]);
        assert_eq!(wanted[0], fair + (16 * MIB - 62 * floor - 2 * fair) / 2);

        // Slow partitions keep what they want below their share; the rest goes to the one that wants more.
        let mut wanted = vec![100_000; 64];
        wanted[0] = 16 * MIB;
        s.fit(&mut wanted);
        assert_eq!(wanted[1..], vec![100_000; 63][..]);
        assert_eq!(wanted[0], 16 * MIB - 63 * 100_000);
    }

    #[test]
    fn a_watermark_moves_by_more_than_an_eighth_or_to_its_bounds() {
        assert!(!moves(MIB, MIB + MIB / 16, 1, 8 * MIB));
        assert!(moves(MIB, MIB + MIB / 4, 1, 8 * MIB));
        assert!(moves(MIB, MIB / 2, 1, 8 * MIB));
        assert!(moves(2, 1, 1, 8 * MIB), "down to the floor");
        assert!(moves(8 * MIB - 1, 8 * MIB, 1, 8 * MIB), "up to the ceiling");
        assert!(!moves(MIB, MIB, MIB, MIB));
    }
}
