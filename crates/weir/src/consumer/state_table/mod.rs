//! The consumer's partition state table: per-partition state in atomics, no client-wide lock.
//!
//! # Layout
//!
//! [`StateTable`] keeps its cells in a *directory* (`directory.rs`): a grow-only table from topic
//! name (hashed with an Fx hasher, not SipHash) to a flat array of cell pointers indexed by partition
//! number, `Arc<PartitionState<X>>` cells, read with plain acquire loads — no lock, no reference count,
//! no guard. A cell is the partition's one home: besides its state it holds `X`, what the table's owner
//! keeps per partition (the consumer: its buffer of fetched records), so a by-name call is one hash of
//! the topic, a probe and an index. Growing the table ([`StateTable::assign`] of new topics or
//! partitions) stores new cells in place (or copies a full array into one twice as long); existing cells
//! keep their identity, so [`PartitionHandle`]s stay valid forever (cells are never removed, only
//! unassigned). Writers (`assign`, fetch-group registration) serialise on mutexes among themselves;
//! pause/resume/lookup and the fetch planners never take them, nor any other lock.
//!
//! Each [`PartitionState`] cell packs the epoch and the small flags into one `AtomicU64` *word*:
//!
//! ```text
//!  bits 0..32  epoch          bumped by every seek, assign and unassign
//!  bit  32     ASSIGNED
//!  bit  33     PAUSED         set/cleared by the application
//!  bit  34     BACKPRESSURED  buffered bytes crossed the high watermark (hysteresis)
//!  bit  35     IN_FLIGHT      a fetch for this partition is outstanding
//!  bit  36     QUEUED         the cell sits in (or is being pushed to / handled from) a ready queue
//!  bit  37     SEEKING        a seek/assign is installing its target (not fetchable meanwhile)
//!  bit  38     HELD           set/cleared by the assignment's owner (a consumer group during a rebalance);
//!                             like PAUSED, but separate, so the application's pause state is untouched
//!  bit  39     HAS_RECORDS    the table's owner holds records of this partition to deliver (its buffer is
//!                             not empty); set and cleared by the owner, read by resume and release
//! ```
//!
//! so a state transition is a single CAS and `fetchable = ASSIGNED && !PAUSED && !HELD &&
//! !BACKPRESSURED && !IN_FLIGHT` is one load. Beside the word live the fetch position (`AtomicI64`), a pending
//! seek target (`AtomicI64`), the buffered (undelivered, in memory) byte count (`AtomicU64`), the cell's own high
//! and low watermarks (`AtomicU64`, packed; zero until set, meaning the table's) and the cell's fetch group
//! (`AtomicU32`).
//!
//! # Invariants
//!
//! 1. **One fetch at a time.** `IN_FLIGHT` is only set by a CAS from a fetchable word (which has
//!    it clear) and only cleared by [`PartitionState::finish_fetch`] of the ticket holder.
//! 2. **Pause is immediate.** Once [`PartitionHandle::pause`] (one `fetch_or`) has returned, no
//!    `try_begin_fetch*` CAS can succeed until a resume: both operate on the same word. A fetch
//!    already in flight is *not* cancelled; its data is kept (not delivering while paused is the
//!    consumer's concern).
//! 3. **Epochs drop stale results.** A [`FetchTicket`] captures the epoch; `finish_fetch` applies
//!    the result (position, buffered bytes) only if its final CAS — the one clearing `IN_FLIGHT`
//!    — still sees that epoch. Otherwise everything it tentatively applied is undone and it
//!    returns `false`.
//! 4. **Position ownership.** `position` is written only by the holder of `IN_FLIGHT` (and at
//!    cell creation). Seek and assign (1) bump the epoch and set `SEEKING` in one CAS (waiting
//!    for another seeker's `SEEKING` to clear first), (2) store the target into `pending_seek`,
//!    (3) clear `SEEKING`. `SEEKING` makes the cell unfetchable, so a fetch that begins at the
//!    new epoch begins after (2) and its ticket carries the target: the next `try_begin_fetch*`
//!    (which holds `IN_FLIGHT`) moves `pending_seek` into `position`. A fetch of the old epoch
//!    that picks the target up anyway is stale, and a stale finish restores the ticket's start
//!    position before it releases `IN_FLIGHT`, so the target is never skipped (loom-checked).
//! 5. **Backpressure hysteresis.** `BACKPRESSURED` is set when buffered >= high, or by a fetch
//!    that left a batch for lack of room while buffered > low (a partition one batch short of its high
//!    watermark is full too: fetching it again would only bring the same batch back), and cleared
//!    when buffered <= low (in between it keeps its value). Every change of the buffered count is
//!    followed, by the same thread, by a re-synchronisation loop (SeqCst on both the word and the
//!    count, re-checking after each successful CAS), so the flag can never stay set with the
//!    count at or below the low watermark once all threads are done — that would stall the
//!    partition forever. The watermarks are the cell's own once set, and a change of them (the table's, or the
//!    cell's by the consumer's sizing task) is such a change too: it is followed by the same loop.
//! 6. **Readiness.** `fetchable(word) ⇒ QUEUED(word)` whenever the cell has been routed. Every
//!    transition that makes a word fetchable sets `QUEUED` in the same CAS if it was clear, and
//!    the thread whose CAS set it pushes the cell onto its fetch group's ready queue, a lock-free
//!    intrusive list (two CASes, no allocation), and wakes the group's [`ReadyWaker`] only on an
//!    empty → non-empty push. Only a planner that popped the
//!    cell clears `QUEUED` ([`PartitionState::try_begin_queued`]), in the same CAS that begins
//!    the fetch. Hence a cell is in at most one queue, at most once, and planners never scan:
//!    they only visit cells that became fetchable. A cell whose group changed while queued is
//!    forwarded by the planner that pops it. Group `0` ([`FetchGroupId::UNROUTED`]) holds cells
//!    whose leader is unknown. Pause does not notify (it never makes a cell fetchable).
//! 7. **Deliverability without a wake-up for nothing.** The owner sets `HAS_RECORDS` when its buffer
//!    of the partition goes from empty to non-empty and clears it when it goes empty (under its own
//!    buffer lock, so the bit follows the buffer). Setting returns whether delivery is stopped (PAUSED
//!    or HELD); resume and release return whether `HAS_RECORDS` was set. All of these are
//!    read-modify-writes of the one word, so they are totally ordered: when records arrive while a
//!    resume happens, either the resume sees the bit or the setter sees the partition running, and
//!    that side queues it for delivery (loom-checked). A resume of a partition with nothing buffered
//!    sees the bit clear and touches nothing else.
//! 8. **Byte budget.** The consumer-wide budget (`max_buffered_bytes`) is enforced at fetch
//!    *planning*: a planner reserves with [`StateTable::reserve_budget`] and sizes the fetch
//!    request's `max_bytes` to the grant, then releases the grant once the response has been
//!    applied. `buffered_total + reserved <= max_buffered_bytes` holds for the reservations, so
//!    the sum of buffered bytes stays within the budget as long as each response fits its grant;
//!    the worst-case overshoot is one fetch response per outstanding request (a broker returns at
//!    least one record batch even if it exceeds `max_bytes`). A fetch whose response holds a batch
//!    its grant cannot take extends its reservation while applying it, all or nothing
//!    ([`StateTable::try_reserve_exact`]), and releases the extension with the grant.
//!
//! Seek and unassign drop the partition's buffered count (returned to the caller, who discards
//! the records it holds from older epochs and must not `consume` them). `consume` saturates at
//! zero so a racing consume of dropped records cannot make the count negative.
//!
//! # Orderings
//!
//! Each atomic operation uses the weakest ordering its invariant needs, with the reason beside it:
//! the word's read-modify-writes hand `position` and `pending_seek` over with Acquire/Release
//! (invariant 4; `position` itself is then Relaxed); `pause`, `resume`, `hold`, `release` and the
//! `HAS_RECORDS` updates touch only the word (AcqRel; invariants 2 and 7 need nothing more); where a
//! thread writes one location and then reads another while a second thread does the reverse — the
//! backpressure re-synchronisation (invariant 5, with a SeqCst fence), the budget wake-up
//! (invariant 8) — both sides are SeqCst. None of those is on the pause/resume path.
//!
//! The atomics come from `loom` under the `loom-model` feature so the word transitions and the ready
//! queues can be model-checked.

use std::fmt;
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;

use super::directory::{Directory, Topic};
use super::intrusive_list::{new_link, IntrusiveList, Link};
use super::sync::{
    self, lock, AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Mutex, Ordering,
};

const EPOCH_MASK: u64 = 0xFFFF_FFFF;
const ASSIGNED: u64 = 1 << 32;
const PAUSED: u64 = 1 << 33;
const BACKPRESSURED: u64 = 1 << 34;
const IN_FLIGHT: u64 = 1 << 35;
const QUEUED: u64 = 1 << 36;
const SEEKING: u64 = 1 << 37;
const HELD: u64 = 1 << 38;
const HAS_RECORDS: u64 = 1 << 39;
const FETCH_MASK: u64 = ASSIGNED | PAUSED | HELD | BACKPRESSURED | IN_FLIGHT | SEEKING;
const NO_SEEK: i64 = i64::MIN;

#[inline]
fn fetchable(w: u64) -> bool {
    w & FETCH_MASK == ASSIGNED
}

#[inline]
fn epoch_of(w: u64) -> u32 {
    (w & EPOCH_MASK) as u32
}

#[inline]
fn bump_epoch(w: u64) -> u64 {
    (w & !EPOCH_MASK) | u64::from(epoch_of(w).wrapping_add(1))
}

// ---------------------------------------------------------------------------------------------
// TopicPartition
// ---------------------------------------------------------------------------------------------

pub use crate::types::TopicPartition;

// ---------------------------------------------------------------------------------------------
// Fetch groups and readiness
// ---------------------------------------------------------------------------------------------

/// Wakes a fetch planner when its ready queue goes from empty to non-empty, or when budget is
/// freed while it waits for budget. Keeps the state table runtime-agnostic.
pub trait ReadyWaker: Send + Sync {
    /// Wake the planner (must not block; may be called from any thread).
    fn wake(&self);
}

impl ReadyWaker for tokio::sync::Notify {
    fn wake(&self) {
        self.notify_one();
    }
}

/// A waker that does nothing (for planners that poll, and for tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopWaker;

impl ReadyWaker for NoopWaker {
    fn wake(&self) {}
}

/// Identifies a fetch group: the set of partitions one planner fetches (typically those led by
/// one broker).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct FetchGroupId(pub u32);

impl FetchGroupId {
    /// The group of partitions whose leader is not known (yet): its ready queue is the set of
    /// fetchable partitions that need a leader before they can be fetched.
    pub const UNROUTED: FetchGroupId = FetchGroupId(0);
}

/// One planner's ready queue: cells that became fetchable (see the module docs, invariant 6), in a lock-free
/// intrusive list.
pub struct FetchGroup<X = ()> {
    id: FetchGroupId,
    ready: IntrusiveList<PartitionState<X>, ReadyLink>,
    waker: Arc<dyn ReadyWaker>,
}

/// The link of [`PartitionState::ready_next`]: the ready queues' list.
struct ReadyLink;

// SAFETY: always the `ready_next` field, which `PartitionState::new` makes unlinked and only ready queues write.
#[allow(unsafe_code)]
unsafe impl<X> Link<PartitionState<X>> for ReadyLink {
    fn next(item: &PartitionState<X>) -> &AtomicPtr<PartitionState<X>> {
        &item.ready_next
    }
}

impl<X> fmt::Debug for FetchGroup<X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchGroup").field("id", &self.id).finish()
    }
}

impl<X> FetchGroup<X> {
    fn new(id: FetchGroupId, waker: Arc<dyn ReadyWaker>) -> Self {
        Self {
            id,
            ready: IntrusiveList::default(),
            waker,
        }
    }

    /// This group's id.
    pub fn id(&self) -> FetchGroupId {
        self.id
    }

    /// Pushes a cell (one CAS on the cell's link, one on the list's head); wakes the planner when the queue was
    /// empty.
    fn push(&self, cell: Arc<PartitionState<X>>) {
        if self.ready.push(cell) {
            self.waker.wake();
        }
    }

    /// Whether no cell is queued (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    #[cfg(any(test, feature = "internals"))]
    /// Number of cells queued: takes them all and puts them back (in order, waking the planner as a push
    /// does, since it may have found the queue empty meanwhile), so it is for tests and diagnostics, not for a
    /// planner's loop.
    pub fn ready_len(&self) -> usize {
        let cells: Vec<_> = self.ready.take_all().collect();
        let n = cells.len();
        for c in cells {
            self.push(c);
        }
        n
    }

    /// Moves every queued cell into `out` (appending), oldest first. The cells keep their `QUEUED` bit: the
    /// caller owns them and must hand each to [`PartitionState::try_begin_queued`] (or
    /// [`FetchGroup::poll_ready`] does it for you), or push them back with [`FetchGroup::defer`].
    pub fn take_ready(&self, out: &mut Vec<Arc<PartitionState<X>>>) {
        out.extend(self.ready.take_all());
    }

    /// Puts a cell taken with [`FetchGroup::take_ready`] back without beginning a fetch.
    pub fn defer(&self, cell: Arc<PartitionState<X>>) {
        self.push(cell);
    }

    /// Takes the ready queue and begins a fetch for every cell that is still fetchable, calling
    /// `f(cell, ticket)` for each; cells that now belong to another group are forwarded there.
    /// `scratch` is reused between calls so the steady state does not allocate. Returns the
    /// number of fetches begun. Check [`StateTable::budget_available`] before calling.
    pub fn poll_ready(
        &self,
        scratch: &mut Vec<Arc<PartitionState<X>>>,
        mut f: impl FnMut(&Arc<PartitionState<X>>, FetchTicket),
    ) -> usize {
        scratch.clear();
        self.take_ready(scratch);
        let mut begun = 0;
        for cell in scratch.drain(..) {
            if cell.fetch_group() != self.id {
                cell.forward();
                continue;
            }
            if let Some(t) = cell.try_begin_queued() {
                begun += 1;
                f(&cell, t);
            }
        }
        begun
    }
}

// ---------------------------------------------------------------------------------------------
// Per-partition cell
// ---------------------------------------------------------------------------------------------

/// Configuration of a [`StateTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateTableConfig {
    /// A partition becomes backpressured when its buffered bytes reach this (default 1 MiB).
    pub high_watermark: u64,
    /// A backpressured partition becomes fetchable again when its buffered bytes drop to this
    /// (default `high_watermark / 2`).
    pub low_watermark: u64,
    /// Consumer-wide byte budget enforced at fetch planning (default 64 MiB).
    pub max_buffered_bytes: usize,
}

impl Default for StateTableConfig {
    fn default() -> Self {
        Self::with_high_watermark(1 << 20)
    }
}

impl StateTableConfig {
    /// Default configuration with the given high watermark and `low = high / 2`.
    pub fn with_high_watermark(high: u64) -> Self {
        Self {
            high_watermark: high,
            low_watermark: high / 2,
            max_buffered_bytes: 64 << 20,
        }
    }
}

struct Shared<X> {
    /// High (upper 32 bits) and low (lower 32 bits) watermark in one word, so a reader sees a consistent pair;
    /// changed by [`StateTable::set_watermarks`].
    watermarks: AtomicU64,
    limit: usize,
    buffered_total: AtomicUsize,
    reserved: AtomicUsize,
    budget_waiting: AtomicBool,
    groups: ArcSwap<Vec<Arc<FetchGroup<X>>>>,
}

fn pack_watermarks(high: u64, low: u64) -> u64 {
    let high = high.min(u64::from(u32::MAX));
    (high << 32) | low.min(high)
}

fn unpack_watermarks(w: u64) -> (u64, u64) {
    (w >> 32, w & 0xFFFF_FFFF)
}

impl<X> Shared<X> {
    fn watermarks(&self) -> (u64, u64) {
        unpack_watermarks(self.watermarks.load(Ordering::SeqCst))
    }

    fn add_buffered(&self, n: u64) {
        if n > 0 {
            self.buffered_total.fetch_add(n as usize, Ordering::SeqCst);
        }
    }

    fn sub_buffered(&self, n: u64) {
        if n > 0 {
            self.buffered_total.fetch_sub(n as usize, Ordering::SeqCst);
            self.budget_freed();
        }
    }

    // The budget counters and `budget_waiting` stay SeqCst: a planner sets `budget_waiting` then reads the
    // counters, while a consumer changes a counter then reads `budget_waiting`; neither may miss the other
    // (invariant 8's wake-up). None of this is on the pause/resume path.
    fn budget_freed(&self) {
        if self.budget_waiting.load(Ordering::SeqCst) && self.budget_waiting.swap(false, Ordering::SeqCst) {
            for g in self.groups.load().iter() {
                g.waker.wake();
            }
        }
    }

    fn available(&self) -> usize {
        let used = self.buffered_total.load(Ordering::SeqCst) + self.reserved.load(Ordering::SeqCst);
        self.limit.saturating_sub(used)
    }
}

/// A fetch permit returned by `try_begin_fetch*`: the epoch and position the fetch was planned
/// at. Hand it back to [`PartitionState::finish_fetch`] exactly once.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FetchTicket {
    /// The partition's epoch when the fetch was planned.
    pub epoch: u32,
    /// The offset to fetch from.
    pub position: i64,
}

/// What a fetch produced for one partition.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct FetchOutcome {
    /// The offset to fetch from next (last offset returned + 1, or the ticket's position if the
    /// response was empty).
    pub next_position: i64,
    /// Bytes of memory added to the partition's buffer.
    pub bytes: u64,
    /// The fetch left a batch for lack of room: the partition is as full as a fetch can make it, so above the
    /// low watermark it counts as backpressured (invariant 5) instead of being fetched again at once for the
    /// same batch.
    pub left_for_room: bool,
}

/// Result of a seek or an unassign on one partition.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EpochChange {
    /// The partition's new epoch: buffered records from older epochs must be discarded.
    pub epoch: u32,
    /// Buffered bytes that were dropped from the accounting (do not `consume` them).
    pub dropped_bytes: u64,
}

/// A copy of a cell's state, for diagnostics and tests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct StateSnapshot {
    /// Current epoch.
    pub epoch: u32,
    /// Partition is assigned.
    pub assigned: bool,
    /// Paused by the application.
    pub paused: bool,
    /// Held by the assignment's owner (a consumer group during a rebalance).
    pub held: bool,
    /// Buffer above the high watermark (hysteresis).
    pub backpressured: bool,
    /// A fetch is outstanding.
    pub in_flight: bool,
    /// The cell is in a ready queue.
    pub queued: bool,
    /// The position the next fetch will start at (a pending seek target if any).
    pub position: i64,
    /// Buffered, undelivered bytes.
    pub buffered: u64,
}

/// The state of one partition, all in atomics (see the module docs for layout and invariants), and `X`, what
/// the table's owner keeps per partition beside it (the consumer: the partition's buffer of fetched records), so
/// that one lookup finds both.
pub struct PartitionState<X = ()> {
    word: AtomicU64,
    position: AtomicI64,
    pending_seek: AtomicI64,
    buffered: AtomicU64,
    /// This partition's own high and low watermarks, packed as the table's; 0 until set: the table's apply
    /// (see [`PartitionState::set_watermarks`]).
    watermarks: AtomicU64,
    group: AtomicU32,
    /// This cell's link in its fetch group's ready queue (see [`FetchGroup`]).
    ready_next: AtomicPtr<PartitionState<X>>,
    /// The `Arc` this cell lives in, for [`PartitionState::arc`].
    me: Weak<PartitionState<X>>,
    tp: TopicPartition,
    shared: Arc<Shared<X>>,
    data: X,
}

impl<X> fmt::Debug for PartitionState<X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartitionState")
            .field("tp", &self.tp)
            .field("state", &self.snapshot())
            .finish()
    }
}

impl<X> PartitionState<X> {
    fn new(tp: TopicPartition, shared: Arc<Shared<X>>, data: X, me: Weak<Self>) -> Self {
        Self {
            word: AtomicU64::new(0),
            position: AtomicI64::new(0),
            pending_seek: AtomicI64::new(NO_SEEK),
            buffered: AtomicU64::new(0),
            watermarks: AtomicU64::new(0),
            group: AtomicU32::new(FetchGroupId::UNROUTED.0),
            ready_next: new_link(),
            me,
            tp,
            shared,
            data,
        }
    }

    /// What the table's owner keeps for this partition.
    #[inline]
    pub fn data(&self) -> &X {
        &self.data
    }

    /// The partition this cell describes.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.tp
    }

    /// `assigned && !paused && !held && !backpressured && !in_flight && !seeking`, in one load.
    #[inline]
    pub fn is_fetchable(&self) -> bool {
        fetchable(self.word.load(Ordering::Acquire))
    }

    /// Whether the application paused this partition.
    #[inline]
    pub fn is_paused(&self) -> bool {
        self.word.load(Ordering::Acquire) & PAUSED != 0
    }

    /// Whether records of this partition may not be delivered now: paused by the application, or held.
    #[inline]
    pub fn is_stopped(&self) -> bool {
        self.word.load(Ordering::Acquire) & (PAUSED | HELD) != 0
    }

    /// Whether the partition is assigned.
    pub fn is_assigned(&self) -> bool {
        self.word.load(Ordering::Acquire) & ASSIGNED != 0
    }

    /// Current epoch.
    pub fn epoch(&self) -> u32 {
        epoch_of(self.word.load(Ordering::Acquire))
    }

    /// The offset the next fetch starts at (a pending seek target if one is pending).
    pub fn position(&self) -> i64 {
        let p = self.pending_seek.load(Ordering::Acquire);
        if p != NO_SEEK {
            p
        } else {
            self.position.load(Ordering::Acquire)
        }
    }

    /// Buffered, undelivered bytes.
    pub fn buffered_bytes(&self) -> u64 {
        self.buffered.load(Ordering::Acquire)
    }

    /// The high and low watermarks in force for this partition: its own once set, else the table's.
    pub fn watermarks(&self) -> (u64, u64) {
        // SeqCst: read after a change of `buffered` by the backpressure re-synchronisation (invariant 5), while
        // `set_watermarks` stores this and then reads `buffered`.
        match self.watermarks.load(Ordering::SeqCst) {
            0 => self.shared.watermarks(),
            w => unpack_watermarks(w),
        }
    }

    /// Gives this partition watermarks of its own (values capped at 4 GiB, low at high; a high of 0 counts as
    /// 1), in place of the table's, then re-synchronises its backpressure flag: raised above what it holds, a
    /// backpressured partition becomes fetchable (and is queued); lowered under it, it stops being fetched.
    /// Off the pause/resume path: the consumer sizes buffers by drain rate with it, a few times a second.
    pub fn set_watermarks(&self, high: u64, low: u64) {
        let packed = pack_watermarks(high.max(1), low);
        if self.watermarks.swap(packed, Ordering::SeqCst) != packed {
            self.sync_backpressure();
        }
    }

    /// The fetch group whose planner fetches this partition.
    pub fn fetch_group(&self) -> FetchGroupId {
        // Acquire pairs with `set_fetch_group`'s Release (routing is a hint: a planner that pops a cell just
        // before it is re-routed fetches it once more from the old leader and gets it re-routed then).
        FetchGroupId(self.group.load(Ordering::Acquire))
    }

    /// A copy of the whole state (not atomic across fields).
    pub fn snapshot(&self) -> StateSnapshot {
        let w = self.word.load(Ordering::Acquire);
        StateSnapshot {
            epoch: epoch_of(w),
            assigned: w & ASSIGNED != 0,
            paused: w & PAUSED != 0,
            held: w & HELD != 0,
            backpressured: w & BACKPRESSURED != 0,
            in_flight: w & IN_FLIGHT != 0,
            queued: w & QUEUED != 0,
            position: self.position(),
            buffered: self.buffered_bytes(),
        }
    }

    /// Pauses: one `fetch_or` (also on an unassigned cell, where it is harmless: assigning clears it).
    #[inline]
    pub fn pause(&self) -> Toggled {
        // AcqRel: invariant 2 needs only the word itself (read-modify-writes of one location are totally
        // ordered, so any begin CAS after this one sees PAUSED); nothing else is published.
        Toggled::of(self.word.fetch_or(PAUSED, Ordering::AcqRel))
    }

    /// Resumes: one `fetch_and`, plus a CAS and a lock-free push onto the fetch group's ready queue
    /// when this makes the partition fetchable and it is not queued yet.
    #[inline]
    pub fn resume(&self) -> Toggled {
        // AcqRel: one location, like `pause`; whether records wait is in the same word (invariant 7).
        let prev = self.word.fetch_and(!PAUSED, Ordering::AcqRel);
        let now = prev & !PAUSED;
        if fetchable(now) && now & QUEUED == 0 {
            self.mark_ready();
        }
        Toggled::of(prev)
    }

    /// [`PartitionState::resume`], handing the partition to `resumed` if it was paused with records waiting
    /// for delivery (invariant 7). Returns whether it is assigned.
    #[inline]
    pub fn resume_then(&self, mut resumed: impl FnMut(&Self)) -> bool {
        let t = self.resume();
        if t.assigned && t.was_paused && t.has_records {
            resumed(self);
        }
        t.assigned
    }

    /// Holds (see `HELD`): one `fetch_or`; the application's pause state is untouched.
    pub fn hold(&self) {
        // AcqRel: as `pause`.
        self.word.fetch_or(HELD, Ordering::AcqRel);
    }

    /// Releases a hold, queueing the partition if that makes it fetchable.
    pub fn release(&self) -> Toggled {
        // AcqRel: as `resume`.
        let prev = self.word.fetch_and(!HELD, Ordering::AcqRel);
        let now = prev & !HELD;
        if fetchable(now) && now & QUEUED == 0 {
            self.mark_ready();
        }
        Toggled::of(prev)
    }

    /// For the table's owner: its buffer of this partition went from empty to holding records (invariant
    /// 7). Returns whether delivery is stopped (paused or held): if not, the caller queues the partition for
    /// delivery; if so, the resume or release that ends the stop reports `has_records` and its caller does.
    pub fn set_has_records(&self) -> bool {
        self.word.fetch_or(HAS_RECORDS, Ordering::AcqRel) & (PAUSED | HELD) != 0
    }

    /// For the table's owner: its buffer of this partition is empty again (invariant 7).
    pub fn clear_has_records(&self) {
        self.word.fetch_and(!HAS_RECORDS, Ordering::AcqRel);
    }

    /// CAS loop applying `f`; when the new word is fetchable and not queued, sets `QUEUED` in the
    /// same CAS and pushes the cell to its group's ready queue. Returns `(old, new)` or `None` if
    /// `f` declined.
    #[inline]
    fn transition(&self, mut f: impl FnMut(u64) -> Option<u64>) -> Option<(u64, u64)> {
        // SeqCst throughout: the backpressure re-synchronisation (invariant 5) reads `buffered` and CASes the
        // word while other threads change `buffered` and then CAS the word; only a single total order of those
        // operations keeps the flag from staying set at the low watermark (loom-checked).
        let mut cur = self.word.load(Ordering::SeqCst);
        loop {
            let mut new = f(cur)?;
            let enqueue = fetchable(new) && new & QUEUED == 0;
            if enqueue {
                new |= QUEUED;
            }
            match self
                .word
                .compare_exchange_weak(cur, new, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    if enqueue {
                        self.enqueue();
                    }
                    return Some((cur, new));
                }
                Err(actual) => cur = actual,
            }
        }
    }

    fn mark_ready(&self) {
        self.transition(|w| (fetchable(w) && w & QUEUED == 0).then_some(w));
    }

    fn enqueue(&self) {
        let gid = self.group.load(Ordering::Acquire) as usize;
        let groups = self.shared.groups.load();
        groups.get(gid).unwrap_or(&groups[0]).push(self.arc());
    }

    /// A new `Arc` of this cell (by-name calls borrow cells from the directory; queues own them).
    #[inline]
    pub fn arc(&self) -> Arc<Self> {
        // Cells are made by `StateTable::assign_with` inside an `Arc` that the table's directory keeps until the
        // table drops, so while `&self` lives, so does a strong count.
        self.me.upgrade().expect("a borrowed cell is alive")
    }

    /// Forwards a cell popped from a queue (QUEUED still set) to its current group.
    pub(crate) fn forward(&self) {
        self.enqueue();
    }

    /// Routes this partition to another planner. A cell already queued elsewhere is forwarded
    /// by the planner that pops it.
    pub fn set_fetch_group(&self, group: FetchGroupId) {
        self.group.store(group.0, Ordering::Release);
    }

    /// Applies a pending seek target; caller holds `IN_FLIGHT`.
    fn ticket(&self, epoch: u32) -> FetchTicket {
        // `position` is owned by the IN_FLIGHT holder (invariant 4), handed over by the word's Release when
        // IN_FLIGHT or SEEKING clears and the begin CAS's Acquire: Relaxed is enough for it. The pending seek is
        // swapped (AcqRel) because a stale fetch may race the seeker for it.
        let pending = self.pending_seek.swap(NO_SEEK, Ordering::AcqRel);
        if pending != NO_SEEK {
            self.position.store(pending, Ordering::Relaxed);
        }
        FetchTicket {
            epoch,
            position: self.position.load(Ordering::Relaxed),
        }
    }

    /// Begins a fetch if the partition is fetchable: one CAS fetchable → `IN_FLIGHT`, capturing
    /// epoch and position. For planners that scan; leaves `QUEUED` alone.
    #[inline]
    pub fn try_begin_fetch(&self) -> Option<FetchTicket> {
        // Acquire: take over `position` and `pending_seek` from the last release of IN_FLIGHT or SEEKING.
        let mut cur = self.word.load(Ordering::Acquire);
        loop {
            if !fetchable(cur) {
                return None;
            }
            match self
                .word
                .compare_exchange_weak(cur, cur | IN_FLIGHT, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(self.ticket(epoch_of(cur))),
                Err(actual) => cur = actual,
            }
        }
    }

    /// For a cell popped from a ready queue: clears `QUEUED` and, in the same CAS, begins a fetch
    /// if the partition is fetchable.
    pub fn try_begin_queued(&self) -> Option<FetchTicket> {
        // As `try_begin_fetch`.
        let mut cur = self.word.load(Ordering::Acquire);
        loop {
            let begin = fetchable(cur);
            let new = if begin {
                (cur & !QUEUED) | IN_FLIGHT
            } else {
                cur & !QUEUED
            };
            match self
                .word
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return begin.then(|| self.ticket(epoch_of(cur))),
                Err(actual) => cur = actual,
            }
        }
    }

    fn clear_in_flight(&self) {
        self.transition(|w| Some(w & !IN_FLIGHT));
    }

    /// Subtracts up to `n` buffered bytes (never below zero); returns how many were taken.
    fn take_buffered(&self, n: u64) -> u64 {
        // SeqCst on `buffered` everywhere it changes or is read to decide: invariant 5, and `is_stopped`.
        let mut cur = self.buffered.load(Ordering::SeqCst);
        loop {
            let take = cur.min(n);
            if take == 0 {
                return 0;
            }
            match self
                .buffered
                .compare_exchange_weak(cur, cur - take, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return take,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Brings `BACKPRESSURED` in line with the buffered count (invariant 5). Returns whether the
    /// partition became fetchable because of it.
    fn sync_backpressure(&self) -> bool {
        let mut became = false;
        loop {
            // This thread just changed `buffered` (or the word) and now reads the other; a thread doing the
            // reverse must not be missed by both. The SeqCst operations alone order that in the C++ model; the
            // fence makes it hold under weaker models too (loom treats SeqCst loads and stores as AcqRel, and
            // found the flag stuck without it). Off the pause/resume path: once per fetch or consume.
            sync::fence(Ordering::SeqCst);
            let (high, low) = self.watermarks();
            let b = self.buffered.load(Ordering::SeqCst);
            let r = self.transition(|w| {
                let bp = w & BACKPRESSURED != 0;
                let want = if b >= high {
                    true
                } else if b <= low {
                    false
                } else {
                    bp
                };
                (want != bp).then_some(if want {
                    w | BACKPRESSURED
                } else {
                    w & !BACKPRESSURED
                })
            });
            match r {
                None => return became,
                Some((old, new)) => became |= !fetchable(old) && fetchable(new),
            }
        }
    }

    /// Completes the fetch of `ticket`: clears `IN_FLIGHT`; if the epoch is unchanged, advances
    /// the position to `outcome.next_position`, adds `outcome.bytes` to the buffered count and
    /// sets `BACKPRESSURED` at the high watermark (above the low one if the fetch left a batch for lack
    /// of room, see [`FetchOutcome::left_for_room`]). Returns `false` if the result is stale (the
    /// partition was seeked, reassigned or unassigned since the fetch began): drop it.
    pub fn finish_fetch(&self, ticket: FetchTicket, outcome: FetchOutcome) -> bool {
        let cur = self.word.load(Ordering::Acquire);
        debug_assert!(cur & IN_FLIGHT != 0, "finish_fetch without a fetch in flight");
        if epoch_of(cur) != ticket.epoch {
            self.clear_in_flight();
            return false;
        }
        // Tentatively apply (we own `position` while IN_FLIGHT is set; the clearing CAS publishes it).
        self.position.store(outcome.next_position, Ordering::Relaxed);
        if outcome.bytes > 0 {
            // The consumer-wide total first: a concurrent `consume` takes from the cell and then subtracts
            // from the total, so adding in the other order could make the total dip below zero (wrap).
            self.shared.add_buffered(outcome.bytes);
            self.buffered.fetch_add(outcome.bytes, Ordering::SeqCst);
        }
        let (high, low) = self.watermarks();
        let committed = self.transition(|w| {
            if epoch_of(w) != ticket.epoch {
                return None;
            }
            let mut n = w & !IN_FLIGHT;
            let b = self.buffered.load(Ordering::SeqCst);
            if b >= high || (outcome.left_for_room && b > low) {
                n |= BACKPRESSURED;
            }
            Some(n)
        });
        if committed.is_none() {
            // Went stale while applying: undo, then release IN_FLIGHT.
            self.position.store(ticket.position, Ordering::Relaxed);
            let taken = self.take_buffered(outcome.bytes);
            self.shared.sub_buffered(taken);
            self.clear_in_flight();
            self.sync_backpressure();
            return false;
        }
        self.sync_backpressure();
        true
    }

    /// The application took `bytes` of records out of the buffer: decrements the buffered count
    /// (saturating at zero) and clears `BACKPRESSURED` at the low watermark. Returns whether the
    /// partition just became fetchable again (it has then been pushed to its ready queue).
    pub fn consume(&self, bytes: u64) -> bool {
        let taken = self.take_buffered(bytes);
        if taken == 0 {
            return false;
        }
        self.shared.sub_buffered(taken);
        self.sync_backpressure()
    }

    /// Sets the next fetch position and bumps the epoch (an in-flight result becomes stale);
    /// drops the buffered count. `None` if the partition is not assigned.
    pub fn seek(&self, offset: i64) -> Option<EpochChange> {
        self.reposition(Some(offset), |w| (w & ASSIGNED != 0).then_some(w))
    }

    /// Invariant 4: bump the epoch with `SEEKING` set (after `f`), install `target`, drop the
    /// buffered count (no fetch of the new epoch can have added to it yet), clear `SEEKING`.
    /// Returns the new epoch and the dropped bytes, or `None` if `f` declined.
    fn reposition(&self, target: Option<i64>, f: impl Fn(u64) -> Option<u64>) -> Option<EpochChange> {
        // Acquire/AcqRel: seekers hand `pending_seek` over to each other and to fetches through the word.
        let mut cur = self.word.load(Ordering::Acquire);
        let new = loop {
            if cur & SEEKING != 0 {
                // Another seek/assign of this partition is installing its target: a few
                // instructions, and seeks of one partition racing each other are rare.
                sync::spin();
                cur = self.word.load(Ordering::Acquire);
                continue;
            }
            let new = bump_epoch(f(cur)?) | SEEKING;
            match self
                .word
                .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break new,
                Err(actual) => cur = actual,
            }
        };
        // A swap, not a store: it races with the swap in `ticket` (RMWs on both sides are also
        // what loom models correctly, see tokio-rs/loom#254).
        if let Some(target) = target {
            self.pending_seek.swap(target, Ordering::AcqRel);
        }
        let dropped_bytes = self.take_buffered(u64::MAX);
        self.shared.sub_buffered(dropped_bytes);
        self.transition(|w| Some(w & !SEEKING));
        self.sync_backpressure();
        Some(EpochChange {
            epoch: epoch_of(new),
            dropped_bytes,
        })
    }

    /// Assigns at `start` with the `extra` flags (HELD or none) set; a newly assigned partition starts
    /// with no other pause or hold, an already assigned one keeps its own.
    fn assign(&self, start: i64, extra: u64) {
        self.reposition(Some(start), |w| {
            Some(if w & ASSIGNED == 0 {
                (w & !(PAUSED | HELD)) | ASSIGNED | extra
            } else {
                w | extra
            })
        });
    }

    /// Unassigns (clearing pause, hold and backpressure) unless `keep_paused` and the application paused it:
    /// decided in the CAS itself, so a pause racing the decision either lands first (kept) or finds the
    /// partition unassigned.
    fn unassign(&self, keep_paused: bool) -> Option<EpochChange> {
        self.reposition(None, |w| {
            (w & ASSIGNED != 0 && !(keep_paused && w & PAUSED != 0))
                .then_some(w & !(ASSIGNED | PAUSED | HELD | BACKPRESSURED))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Handle
// ---------------------------------------------------------------------------------------------

/// A cheap-to-clone handle on one partition's cell: pause/resume without any lookup.
pub struct PartitionHandle<X = ()> {
    cell: Arc<PartitionState<X>>,
}

impl<X> Clone for PartitionHandle<X> {
    fn clone(&self) -> Self {
        Self {
            cell: Arc::clone(&self.cell),
        }
    }
}

impl<X> fmt::Debug for PartitionHandle<X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cell.fmt(f)
    }
}

impl<X> PartitionHandle<X> {
    /// The partition.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.cell.tp
    }
    /// The underlying cell (for the fetch planner).
    pub fn state(&self) -> &Arc<PartitionState<X>> {
        &self.cell
    }
    /// Pauses (one atomic op). Returns whether it was already paused.
    #[inline]
    pub fn pause(&self) -> bool {
        self.cell.pause().was_paused
    }
    /// Resumes (one atomic op on the common path). Returns whether it was paused.
    #[inline]
    pub fn resume(&self) -> bool {
        self.cell.resume().was_paused
    }
    /// Whether paused (one load).
    #[inline]
    pub fn is_paused(&self) -> bool {
        self.cell.is_paused()
    }
    /// See [`PartitionState::seek`].
    pub fn seek(&self, offset: i64) -> Option<EpochChange> {
        self.cell.seek(offset)
    }
    /// See [`PartitionState::consume`].
    pub fn consume(&self, bytes: u64) -> bool {
        self.cell.consume(bytes)
    }
    /// See [`PartitionState::try_begin_fetch`].
    pub fn try_begin_fetch(&self) -> Option<FetchTicket> {
        self.cell.try_begin_fetch()
    }
    /// See [`PartitionState::finish_fetch`].
    pub fn finish_fetch(&self, ticket: FetchTicket, outcome: FetchOutcome) -> bool {
        self.cell.finish_fetch(ticket, outcome)
    }
    /// See [`PartitionState::set_fetch_group`].
    pub fn set_fetch_group(&self, group: FetchGroupId) {
        self.cell.set_fetch_group(group)
    }
    /// See [`PartitionState::snapshot`].
    pub fn snapshot(&self) -> StateSnapshot {
        self.cell.snapshot()
    }
}

// ---------------------------------------------------------------------------------------------
// Table
// ---------------------------------------------------------------------------------------------

/// Calls `f` with each of `tps` and its cell if the table has one: one directory load for the whole batch and
/// one hash per run of equal topics.
#[inline]
fn for_cells<'a, 'd, X>(
    dir: &'d Directory<PartitionState<X>>,
    tps: &'a [TopicPartition],
    mut f: impl FnMut(&'a TopicPartition, Option<&'d PartitionState<X>>),
) {
    // The topic of the previous partition, looked up once for a run of partitions of one topic.
    let mut last_name: Option<&Arc<str>> = None;
    let mut last_topic: Option<Topic<'d, PartitionState<X>>> = None;
    for tp in tps {
        if !last_name.is_some_and(|t| Arc::ptr_eq(t, &tp.topic) || t[..] == tp.topic[..]) {
            last_name = Some(&tp.topic);
            last_topic = dir.topic(&tp.topic);
        }
        f(tp, last_topic.as_ref().and_then(|t| t.get(tp.partition)));
    }
}

/// Partitions that a call named but that are not assigned: it did nothing to them (the Java client throws
/// `IllegalStateException` for these). The call still did its work on every assigned partition it named.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotAssigned {
    /// The partitions, in the order they were named.
    pub partitions: Vec<TopicPartition>,
}

impl NotAssigned {
    /// `Ok` if no partition was left out.
    pub fn into_result(self) -> Result<(), NotAssigned> {
        if self.partitions.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for NotAssigned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not assigned:")?;
        for (i, tp) in self.partitions.iter().enumerate().take(10) {
            write!(f, "{}{tp}", if i == 0 { " " } else { ", " })?;
        }
        if self.partitions.len() > 10 {
            write!(f, " and {} more", self.partitions.len() - 10)?;
        }
        Ok(())
    }
}

impl std::error::Error for NotAssigned {}

/// What a pause or resume of one cell found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Toggled {
    /// The partition was assigned.
    pub assigned: bool,
    /// The partition was paused before the call.
    pub was_paused: bool,
    /// The table's owner holds records of the partition to deliver (see
    /// [`PartitionState::set_has_records`]).
    pub has_records: bool,
}

impl Toggled {
    fn of(prev: u64) -> Self {
        Self {
            assigned: prev & ASSIGNED != 0,
            was_paused: prev & PAUSED != 0,
            has_records: prev & HAS_RECORDS != 0,
        }
    }
}

/// The consumer's partition state table (see the module docs). `Send + Sync`; share it by `Arc`.
pub struct StateTable<X = ()> {
    /// Topic and partition to cell; lock-free lookups.
    dir: Directory<PartitionState<X>>,
    /// Serialises fetch-group registration.
    writer: Mutex<()>,
    shared: Arc<Shared<X>>,
}

impl<X> fmt::Debug for StateTable<X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateTable")
            .field("topics", &self.dir.topic_count())
            .field(
                "buffered_total",
                &self.shared.buffered_total.load(Ordering::Relaxed),
            )
            .finish()
    }
}

impl Default for StateTable {
    fn default() -> Self {
        Self::new(StateTableConfig::default())
    }
}

impl<X> Drop for StateTable<X> {
    fn drop(&mut self) {
        // Queued cells point back to the shared state: break the cycle.
        for g in self.shared.groups.load().iter() {
            drop(g.ready.take_all());
        }
    }
}

impl StateTable {
    /// An empty table.
    pub fn new(config: StateTableConfig) -> Self {
        Self::with_unrouted_waker(config, Arc::new(NoopWaker))
    }
}

impl<X: Default> StateTable<X> {
    /// An empty table whose [`FetchGroupId::UNROUTED`] queue wakes `waker` (the task that looks
    /// up leaders); each cell's [`PartitionState::data`] starts as `X::default()`.
    pub fn with_unrouted_waker(config: StateTableConfig, waker: Arc<dyn ReadyWaker>) -> Self {
        let unrouted = Arc::new(FetchGroup::new(FetchGroupId::UNROUTED, waker));
        Self {
            dir: Directory::default(),
            writer: Mutex::new(()),
            shared: Arc::new(Shared {
                watermarks: AtomicU64::new(pack_watermarks(config.high_watermark, config.low_watermark)),
                limit: config.max_buffered_bytes,
                buffered_total: AtomicUsize::new(0),
                reserved: AtomicUsize::new(0),
                budget_waiting: AtomicBool::new(false),
                groups: ArcSwap::from_pointee(vec![unrouted]),
            }),
        }
    }

    /// Changes the table's watermarks, those of every partition without its own (values are capped at 4 GiB,
    /// and low at high), then
    /// re-synchronises each cell's backpressure flag: a partition now at or below the low watermark becomes
    /// fetchable again (and is queued); one at or above the new high stops being fetched at its next fetch.
    /// The consumer uses this to keep each partition's share of the budget fair as assignments change.
    pub fn set_watermarks(&self, high: u64, low: u64) {
        self.shared
            .watermarks
            .store(pack_watermarks(high, low), Ordering::SeqCst);
        self.for_each_cell(|c| {
            c.sync_backpressure();
        });
    }

    // --- fetch groups ---

    /// Registers a planner; its ready queue wakes `waker`.
    pub fn register_fetch_group(&self, waker: Arc<dyn ReadyWaker>) -> Arc<FetchGroup<X>> {
        let _w = lock(&self.writer);
        let cur = self.shared.groups.load_full();
        let id = FetchGroupId(u32::try_from(cur.len()).expect("too many fetch groups"));
        let g = Arc::new(FetchGroup::new(id, waker));
        let mut next = Vec::clone(&cur);
        next.push(Arc::clone(&g));
        self.shared.groups.store(Arc::new(next));
        g
    }

    /// A registered fetch group.
    pub fn fetch_group(&self, id: FetchGroupId) -> Option<Arc<FetchGroup<X>>> {
        self.shared.groups.load().get(id.0 as usize).cloned()
    }

    #[cfg(any(test, feature = "internals"))]
    /// Routes a partition to a fetch group. Returns `false` if the partition is unknown.
    pub fn set_fetch_group(&self, tp: &TopicPartition, group: FetchGroupId) -> bool {
        self.with_cell(tp, |c| c.set_fetch_group(group)).is_some()
    }

    /// Empties `from`'s ready queue into the queues of the cells' current groups (cells still
    /// routed to `from` go to [`FetchGroupId::UNROUTED`]). For a planner that is going away.
    pub fn reroute(&self, from: FetchGroupId) {
        let Some(g) = self.fetch_group(from) else {
            return;
        };
        let mut cells = Vec::new();
        g.take_ready(&mut cells);
        for c in cells {
            if c.fetch_group() == from {
                c.set_fetch_group(FetchGroupId::UNROUTED);
            }
            c.forward();
        }
    }

    // --- budget ---

    /// Bytes that may still be fetched: budget minus buffered bytes minus outstanding
    /// reservations. The bound is enforced at fetch planning (see the module docs, invariant 8).
    pub fn budget_available(&self) -> usize {
        self.shared.available()
    }

    /// The consumer-wide budget (`max_buffered_bytes`).
    pub fn budget_limit(&self) -> usize {
        self.shared.limit
    }

    /// Reserves up to `want` bytes of budget for one fetch request (size the request's
    /// `max_bytes` to the grant); 0 if the budget is exhausted. Release the grant with
    /// [`StateTable::release_budget`] after the response has been applied with `finish_fetch`.
    pub fn reserve_budget(&self, want: usize) -> usize {
        let mut cur = self.shared.reserved.load(Ordering::SeqCst);
        loop {
            let used = self.shared.buffered_total.load(Ordering::SeqCst) + cur;
            let grant = self.shared.limit.saturating_sub(used).min(want);
            if grant == 0 {
                return 0;
            }
            match self.shared.reserved.compare_exchange_weak(
                cur,
                cur + grant,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return grant,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Reserves exactly `want` bytes of the budget if it has them all, else nothing; returns whether it did.
    /// Return them with [`StateTable::release_budget`].
    pub fn try_reserve_exact(&self, want: usize) -> bool {
        let mut cur = self.shared.reserved.load(Ordering::SeqCst);
        loop {
            let used = self.shared.buffered_total.load(Ordering::SeqCst) + cur;
            if self.shared.limit.saturating_sub(used) < want {
                return false;
            }
            match self.shared.reserved.compare_exchange_weak(
                cur,
                cur + want,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Returns a grant from [`StateTable::reserve_budget`].
    pub fn release_budget(&self, granted: usize) {
        if granted > 0 {
            self.shared.reserved.fetch_sub(granted, Ordering::SeqCst);
            self.shared.budget_freed();
        }
    }

    /// For a planner about to wait because the budget is exhausted: arms a wake-up of every
    /// fetch group's waker on the next release of budget, then returns the budget available (if
    /// it is non-zero, do not wait).
    pub fn wait_for_budget(&self) -> usize {
        self.shared.budget_waiting.swap(true, Ordering::SeqCst);
        self.budget_available()
    }

    /// Sum of the buffered bytes of all partitions.
    pub fn buffered_total(&self) -> usize {
        self.shared.buffered_total.load(Ordering::SeqCst)
    }

    // --- lookup ---

    fn with_cell<R>(&self, tp: &TopicPartition, f: impl FnOnce(&PartitionState<X>) -> R) -> Option<R> {
        self.dir.get(&tp.topic, tp.partition).map(f)
    }

    /// The cell of a known partition (assigned now or before), borrowed: one lookup, no reference count.
    #[inline]
    pub fn cell_ref(&self, tp: &TopicPartition) -> Option<&PartitionState<X>> {
        self.dir.get(&tp.topic, tp.partition)
    }

    /// The cell of a known partition (assigned now or before).
    pub fn cell(&self, tp: &TopicPartition) -> Option<Arc<PartitionState<X>>> {
        self.with_cell(tp, PartitionState::arc)
    }

    #[cfg(any(test, feature = "internals"))]
    /// A handle on a known partition (assigned now or before).
    pub fn handle(&self, tp: &TopicPartition) -> Option<PartitionHandle<X>> {
        self.with_cell(tp, |c| PartitionHandle { cell: c.arc() })
    }

    /// Pauses the given partitions (one atomic op each). Partitions not assigned are reported (a
    /// known cell gets its PAUSED bit all the same, which is harmless: assigning clears it).
    pub fn pause(&self, tps: &[TopicPartition]) -> Result<(), NotAssigned> {
        let mut missing = NotAssigned::default();
        for_cells(&self.dir, tps, |tp, c| {
            if !c.is_some_and(|c| c.pause().assigned) {
                missing.partitions.push(tp.clone());
            }
        });
        missing.into_result()
    }

    #[cfg(any(test, feature = "internals"))]
    /// Resumes the given partitions. Partitions not assigned are reported, and left as they are.
    pub fn resume(&self, tps: &[TopicPartition]) -> Result<(), NotAssigned> {
        self.resume_with(tps, |_| {})
    }

    /// [`StateTable::resume`], calling `resumed` for each partition that was paused and has records to
    /// deliver (see [`PartitionState::set_has_records`]).
    pub fn resume_with(
        &self,
        tps: &[TopicPartition],
        mut resumed: impl FnMut(&PartitionState<X>),
    ) -> Result<(), NotAssigned> {
        let mut missing = NotAssigned::default();
        for_cells(&self.dir, tps, |tp, c| {
            if !c.is_some_and(|c| c.resume_then(&mut resumed)) {
                missing.partitions.push(tp.clone());
            }
        });
        missing.into_result()
    }

    /// Holds the given partitions (see `HELD`). Returns how many were found.
    pub fn hold(&self, tps: &[TopicPartition]) -> usize {
        let mut n = 0;
        for_cells(&self.dir, tps, |_, c| {
            if let Some(c) = c {
                c.hold();
                n += 1;
            }
        });
        n
    }

    /// Releases the given partitions' holds, calling `released` for each one that has records to
    /// deliver. Returns how many were found.
    pub fn release(&self, tps: &[TopicPartition], mut released: impl FnMut(&PartitionState<X>)) -> usize {
        let mut n = 0;
        for_cells(&self.dir, tps, |_, c| {
            if let Some(c) = c {
                if c.release().has_records {
                    released(c);
                }
                n += 1;
            }
        });
        n
    }

    /// Pauses every assigned partition of the given topics (one hash per topic). Returns how many
    /// partitions.
    pub fn pause_topics(&self, topics: &[&str]) -> usize {
        self.for_topics(topics, |c| c.pause().assigned)
    }

    /// Resumes every assigned partition of the given topics, calling `resumed` for each one that was
    /// paused and has records to deliver. Returns how many partitions.
    pub fn resume_topics(&self, topics: &[&str], mut resumed: impl FnMut(&PartitionState<X>)) -> usize {
        self.for_topics(topics, |c| c.resume_then(&mut resumed))
    }

    fn for_topics(&self, topics: &[&str], mut f: impl FnMut(&PartitionState<X>) -> bool) -> usize {
        let mut n = 0;
        for t in topics {
            if let Some(topic) = self.dir.topic(t) {
                for c in topic.iter() {
                    n += usize::from(f(c));
                }
            }
        }
        n
    }

    #[cfg(any(test, feature = "internals"))]
    /// Whether a partition is paused (`None` if unknown).
    pub fn is_paused(&self, tp: &TopicPartition) -> Option<bool> {
        self.with_cell(tp, |c| c.is_paused())
    }

    /// The assigned partitions that are paused, sorted.
    pub fn paused(&self) -> Vec<TopicPartition> {
        let mut out = Vec::new();
        self.for_each_cell(|c| {
            let w = c.word.load(Ordering::Acquire);
            if w & (ASSIGNED | PAUSED) == ASSIGNED | PAUSED {
                out.push(c.tp.clone());
            }
        });
        out.sort_unstable();
        out
    }

    /// The assigned partitions, sorted.
    pub fn assigned(&self) -> Vec<TopicPartition> {
        let mut out = Vec::new();
        self.for_each_cell(|c| {
            if c.is_assigned() {
                out.push(c.tp.clone());
            }
        });
        out.sort_unstable();
        out
    }

    /// Calls `f` for every known cell (assigned or not).
    pub fn for_each_cell(&self, f: impl FnMut(&PartitionState<X>)) {
        self.dir.for_each(f);
    }

    #[cfg(any(test, feature = "internals"))]
    /// Full scan: calls `f` for every partition that is fetchable right now (one load per
    /// cell). Prefer the ready queues ([`FetchGroup::poll_ready`]) in a planner.
    pub fn for_each_fetchable(&self, mut f: impl FnMut(&PartitionState<X>)) {
        self.for_each_cell(|c| {
            if c.is_fetchable() {
                f(c)
            }
        });
    }

    /// Seeks a partition (see [`PartitionState::seek`]). `None` if unknown or unassigned.
    pub fn seek(&self, tp: &TopicPartition, offset: i64) -> Option<EpochChange> {
        self.with_cell(tp, |c| c.seek(offset)).flatten()
    }

    // --- assignment (directory writers) ---

    /// Assigns partitions, each starting at the given position. Unknown partitions get new cells
    /// (the directory and the touched topics' slices are copied; existing cells keep their
    /// identity). Already assigned partitions are re-positioned like a seek (epoch bump, pause
    /// kept); previously unassigned ones start unpaused. Newly fetchable cells are queued on their
    /// fetch group (initially [`FetchGroupId::UNROUTED`]).
    pub fn assign(&self, parts: &[(TopicPartition, i64)]) {
        self.assign_with(parts, 0)
    }

    /// [`StateTable::assign`], with every given partition held (nothing is fetched or delivered until it is
    /// released; the application's pause state of an already assigned partition is kept).
    pub fn assign_held(&self, parts: &[(TopicPartition, i64)]) {
        self.assign_with(parts, HELD)
    }

    fn assign_with(&self, parts: &[(TopicPartition, i64)], extra: u64) {
        for (tp, start) in parts {
            let cell = self.dir.get_or_insert(&tp.topic, tp.partition, |topic| {
                Arc::new_cyclic(|me| {
                    PartitionState::new(
                        TopicPartition {
                            topic,
                            partition: tp.partition,
                        },
                        Arc::clone(&self.shared),
                        X::default(),
                        Weak::clone(me),
                    )
                })
            });
            if let Some(cell) = cell {
                cell.assign(*start, extra);
            }
        }
    }

    /// Unassigns partitions: bumps the epoch (in-flight results become stale), clears assigned,
    /// paused and backpressured, and drops the buffered count. Returns, for each partition that
    /// was assigned, its new epoch and the bytes dropped from the accounting (discard those
    /// records; do not `consume` them).
    pub fn unassign(&self, tps: &[TopicPartition]) -> Vec<(Arc<PartitionState<X>>, EpochChange)> {
        self.unassign_where(tps, false)
    }

    /// [`StateTable::unassign`], except partitions the application paused, which stay assigned (with their
    /// pause): a consumer group keeps them through a rebalance so that the pause survives it.
    pub fn unassign_unless_paused(
        &self,
        tps: &[TopicPartition],
    ) -> Vec<(Arc<PartitionState<X>>, EpochChange)> {
        self.unassign_where(tps, true)
    }

    fn unassign_where(
        &self,
        tps: &[TopicPartition],
        keep_paused: bool,
    ) -> Vec<(Arc<PartitionState<X>>, EpochChange)> {
        let mut out = Vec::new();
        for_cells(&self.dir, tps, |_, c| {
            if let Some(c) = c {
                if let Some(ch) = c.unassign(keep_paused) {
                    out.push((c.arc(), ch));
                }
            }
        });
        out
    }
}

#[cfg(all(test, feature = "loom-model"))]
mod loom_tests;
#[cfg(all(test, not(feature = "loom-model")))]
mod stress_tests;

#[cfg(all(test, not(feature = "loom-model")))]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    fn table(high: u64) -> StateTable {
        let mut cfg = StateTableConfig::with_high_watermark(high);
        cfg.max_buffered_bytes = 1 << 30;
        StateTable::new(cfg)
    }

    fn out(next: i64, bytes: u64) -> FetchOutcome {
        FetchOutcome {
            next_position: next,
            bytes,
            left_for_room: false,
        }
    }

    #[test]
    fn display_and_order() {
        assert_eq!(tp("orders", 3).to_string(), "orders-3");
        assert!(tp("a", 9) < tp("b", 0));
        assert!(tp("a", 1) < tp("a", 2));
    }

    #[test]
    fn assign_creates_fetchable_cells_and_queues_them() {
        let t = table(100);
        t.assign(&[(tp("a", 0), 5), (tp("a", 2), 7), (tp("b", 0), 0)]);
        let h = t.handle(&tp("a", 2)).unwrap();
        assert!(t.handle(&tp("a", 1)).is_none());
        assert!(t.handle(&tp("c", 0)).is_none());
        let s = h.snapshot();
        assert!(s.assigned && !s.paused && s.queued);
        assert_eq!(s.position, 7);
        assert!(h.state().is_fetchable());
        let g = t.fetch_group(FetchGroupId::UNROUTED).unwrap();
        assert_eq!(g.ready_len(), 3);
        assert_eq!(t.assigned(), vec![tp("a", 0), tp("a", 2), tp("b", 0)]);
    }

    #[test]
    fn assign_held_fetches_nothing_until_released() {
        let t = table(100);
        t.assign_held(&[(tp("a", 0), 3)]);
        let h = t.handle(&tp("a", 0)).unwrap();
        let s = h.snapshot();
        assert!(s.assigned && s.held && !s.paused);
        assert!(!h.state().is_fetchable());
        t.release(&[tp("a", 0)], |_| ());
        assert!(h.state().is_fetchable());
        assert_eq!(h.snapshot().position, 3);
        // Re-assigning an assigned, running partition held holds it.
        t.assign_held(&[(tp("a", 0), 9)]);
        assert!(h.snapshot().held && !h.state().is_fetchable());
        assert_eq!(h.snapshot().position, 9);
    }

    #[test]
    fn hold_is_apart_from_the_applications_pause() {
        let t = table(100);
        t.assign(&[(tp("a", 0), 0)]);
        let h = t.handle(&tp("a", 0)).unwrap();
        h.pause();
        t.hold(&[tp("a", 0)]);
        assert!(h.state().is_stopped() && !h.state().is_fetchable());
        // The application resumes while held: still nothing, but its pause is gone.
        h.resume();
        assert!(!h.is_paused() && h.state().is_stopped() && !h.state().is_fetchable());
        t.release(&[tp("a", 0)], |_| ());
        assert!(h.state().is_fetchable());
        // Held while paused, released: still paused.
        h.pause();
        t.hold(&[tp("a", 0)]);
        t.release(&[tp("a", 0)], |_| ());
        assert!(h.is_paused() && !h.state().is_fetchable());
        // Assigning held keeps an assigned partition's pause; unassigning clears both.
        t.assign_held(&[(tp("a", 0), 5)]);
        assert!(h.is_paused() && h.state().is_stopped());
        t.unassign(&[tp("a", 0)]);
        t.assign(&[(tp("a", 0), 0)]);
        assert!(!h.state().is_stopped() && h.state().is_fetchable());
    }

    #[test]
    fn growing_keeps_cell_identity() {
        let t = table(100);
        t.assign(&[(tp("a", 0), 0)]);
        let h = t.handle(&tp("a", 0)).unwrap();
        h.pause();
        t.assign(&[(tp("a", 5), 0), (tp("z", 1), 0)]);
        let h2 = t.handle(&tp("a", 0)).unwrap();
        assert!(Arc::ptr_eq(h.state(), h2.state()));
        assert!(h2.is_paused());
        // Handles share the interned topic name.
        let h5 = t.handle(&tp("a", 5)).unwrap();
        assert!(Arc::ptr_eq(
            &h.topic_partition().topic,
            &h5.topic_partition().topic
        ));
    }

    #[test]
    fn pause_resume_by_name_and_topic() {
        let t = table(100);
        t.assign(&[(tp("a", 0), 0), (tp("a", 1), 0), (tp("b", 0), 0)]);
        assert_eq!(
            t.pause(&[tp("a", 1), tp("b", 0), tp("x", 0), tp("a", 7)]),
            Err(NotAssigned {
                partitions: vec![tp("x", 0), tp("a", 7)]
            })
        );
        assert_eq!(t.paused(), vec![tp("a", 1), tp("b", 0)]);
        assert_eq!(t.is_paused(&tp("a", 1)), Some(true));
        assert_eq!(t.is_paused(&tp("a", 0)), Some(false));
        assert_eq!(t.is_paused(&tp("q", 0)), None);
        assert_eq!(t.resume(&[tp("b", 0)]), Ok(()));
        assert_eq!(t.paused(), vec![tp("a", 1)]);
        assert_eq!(t.pause_topics(&["a", "nope"]), 2);
        assert_eq!(t.paused(), vec![tp("a", 0), tp("a", 1)]);
        // Only partitions whose owner holds records are handed back for delivery.
        assert!(t.cell(&tp("a", 0)).unwrap().set_has_records(), "paused: stopped");
        let mut resumed = Vec::new();
        assert_eq!(
            t.resume_topics(&["a"], |c| resumed.push(c.topic_partition().clone())),
            2
        );
        assert_eq!(resumed, [tp("a", 0)]);
        assert!(!t.cell(&tp("a", 0)).unwrap().set_has_records(), "running");
        assert!(t.paused().is_empty());
    }

    #[test]
    fn paused_partition_does_not_begin() {
        let t = table(100);
        t.assign(&[(tp("a", 0), 10)]);
        let h = t.handle(&tp("a", 0)).unwrap();
        assert!(!h.pause());
        assert!(h.pause());
        assert!(h.try_begin_fetch().is_none());
        assert!(h.resume());
        assert!(!h.resume());
        let tk = h.try_begin_fetch().unwrap();
        assert_eq!(tk.position, 10);
        assert!(h.try_begin_fetch().is_none(), "never in flight twice");
    }

    #[test]
    fn pause_while_in_flight_keeps_result() {
        let t = table(1000);
        t.assign(&[(tp("a", 0), 10)]);
        let h = t.handle(&tp("a", 0)).unwrap();
        let tk = h.try_begin_fetch().unwrap();
        h.pause();
        assert!(h.finish_fetch(tk, out(20, 50)));
        let s = h.snapshot();
        assert_eq!(
            (s.position, s.buffered, s.in_flight, s.paused),
            (20, 50, false, true)
        );
        assert_eq!(t.buffered_total(), 50);
        assert!(h.try_begin_fetch().is_none());
        h.resume();
        assert_eq!(h.try_begin_fetch().unwrap().position, 20);
    }

    #[test]
    fn seek_while_in_flight_makes_result_stale() {
        let t = table(1000);
        t.assign(&[(tp("a", 0), 10)]);
        let h = t.handle(&tp("a", 0)).unwrap();
        let tk = h.try_begin_fetch().unwrap();
        let ch = h.seek(500).unwrap();
        assert_eq!(ch.epoch, tk.epoch + 1);
        assert!(!h.finish_fetch(tk, out(20, 50)), "stale");
        let s = h.snapshot();
        assert_eq!((s.position, s.buffered, s.in_flight), (500, 0, false));
        assert_eq!(t.buffered_total(), 0);
        let tk2 = h.try_begin_fetch().unwrap();
        assert_eq!(
            tk2,
            FetchTicket {
                epoch: ch.epoch,
                position: 500
            }
        );
        assert!(h.finish_fetch(tk2, out(510, 5)));
        assert_eq!(h.state().position(), 510);
    }

    #[test]
    fn seek_drops_buffered_and_backpressure() {
        let t = table(100);
        t.assign(&[(tp("a", 0), 0)]);
        let h = t.handle(&tp("a", 0)).unwrap();
        let tk = h.try_begin_fetch().unwrap();
        assert!(h.finish_fetch(tk, out(10, 150)));
        assert!(h.snapshot().backpressured);
        let ch = h.seek(3).unwrap();
        assert_eq!(ch.dropped_bytes, 150);
        let s = h.snapshot();
        assert!(!s.backpressured && s.buffered == 0);
        assert!(h.state().is_fetchable());
        assert_eq!(t.buffered_total(), 0);
        // Consuming dropped records saturates instead of going negative.
        assert!(!h.consume(40));
        assert_eq!(h.state().buffered_bytes(), 0);
        assert_eq!(t.buffered_total(), 0);
    }

    #[test]
    fn hysteresis() {
        let t = table(100); // low = 50
        t.assign(&[(tp("a", 0), 0)]);
        let h = t.handle(&tp("a", 0)).unwrap();
        let tk = h.try_begin_fetch().unwrap();
        assert!(h.finish_fetch(tk, out(1, 99)));
        assert!(!h.snapshot().backpressured, "below high");
        let tk = h.try_begin_fetch().unwrap();
        assert!(h.finish_fetch(tk, out(2, 1)));
        assert!(h.snapshot().backpressured, "reached high");
        assert!(h.try_begin_fetch().is_none());
        assert!(!h.consume(49)); // 51: just above low
        assert!(h.snapshot().backpressured);
        assert!(h.try_begin_fetch().is_none());
        assert!(h.consume(1), "at low: became fetchable");
        assert!(!h.snapshot().backpressured);
        assert!(!h.consume(10), "already fetchable");
        assert!(h.try_begin_fetch().is_some());
    }

    #[test]
    fn a_partition_with_watermarks_of_its_own() {
        let t = table(100); // low = 50
        t.assign(&[(tp("a", 0), 0), (tp("a", 1), 0)]);
        let (h, other) = (t.handle(&tp("a", 0)).unwrap(), t.handle(&tp("a", 1)).unwrap());
        let tk = h.try_begin_fetch().unwrap();
        assert!(h.finish_fetch(tk, out(1, 100)));
        assert!(h.snapshot().backpressured, "at the table's high");

        // Raised above what it holds: fetchable again at once, and queued for a planner.
        h.state().set_watermarks(400, 200);
        assert_eq!(h.state().watermarks(), (400, 200));
        assert!(!h.snapshot().backpressured && h.state().is_fetchable());
        assert!(h.snapshot().queued);
        assert_eq!(
            other.state().watermarks(),
            (100, 50),
            "the others keep the table's"
        );

        // The table's change leaves it alone.
        t.set_watermarks(50, 25);
        assert_eq!(h.state().watermarks(), (400, 200));
        assert_eq!(other.state().watermarks(), (50, 25));

        // Lowered under what it holds: no longer fetched, until it drains to its own low watermark.
        h.state().set_watermarks(80, 40);
        assert!(h.snapshot().backpressured && !h.state().is_fetchable());
        assert!(!h.consume(59), "at 41");
        assert!(h.consume(1), "at its low watermark, 40");

        // Low is capped at high, and a high of 0 counts as 1.
        h.state().set_watermarks(0, 9);
        assert_eq!(h.state().watermarks(), (1, 1));
    }

    #[test]
    fn a_batch_left_for_lack_of_room_backpressures_above_the_low_watermark_only() {
        let t = table(100); // low = 50
        t.assign(&[(tp("a", 0), 0)]);
        let h = t.handle(&tp("a", 0)).unwrap();
        let left = |next, bytes| FetchOutcome {
            left_for_room: true,
            ..out(next, bytes)
        };
        let tk = h.try_begin_fetch().unwrap();
        assert!(h.finish_fetch(tk, left(1, 40)));
        assert!(
            !h.snapshot().backpressured,
            "at 40, below low: fetched again (room for a batch)"
        );
        let tk = h.try_begin_fetch().unwrap();
        assert!(h.finish_fetch(tk, left(2, 30)));
        assert!(h.snapshot().backpressured, "at 70, one batch short of high: full");
        assert!(
            h.try_begin_fetch().is_none(),
            "not fetched again for the same batch"
        );
        assert!(!h.consume(19)); // 51
        assert!(h.consume(1), "drained to low: fetchable again");
        assert!(h.try_begin_fetch().is_some());
    }

    #[test]
    fn consume_while_paused_does_not_report_fetchable() {
        let t = table(100);
        t.assign(&[(tp("a", 0), 0)]);
        let h = t.handle(&tp("a", 0)).unwrap();
        let tk = h.try_begin_fetch().unwrap();
        assert!(h.finish_fetch(tk, out(1, 100)));
        h.pause();
        assert!(!h.consume(100));
        assert!(!h.snapshot().backpressured);
        assert!(h.resume());
        assert!(h.state().is_fetchable());
    }

    #[test]
    fn unassign_and_reassign() {
        let t = table(100);
        t.assign(&[(tp("a", 0), 0), (tp("a", 1), 0)]);
        let h = t.handle(&tp("a", 0)).unwrap();
        let tk = h.try_begin_fetch().unwrap();
        assert!(h.finish_fetch(tk, out(10, 30)));
        h.pause();
        let tk1 = t.handle(&tp("a", 1)).unwrap().try_begin_fetch().unwrap();
        let r = t.unassign(&[tp("a", 0), tp("a", 1), tp("nope", 0)]);
        assert_eq!(r.len(), 2);
        assert_eq!(*r[0].0.topic_partition(), tp("a", 0));
        assert_eq!(r[0].1.dropped_bytes, 30);
        assert_eq!(t.buffered_total(), 0);
        let s = h.snapshot();
        assert!(!s.assigned && !s.paused && !h.state().is_fetchable());
        assert!(t.paused().is_empty());
        assert!(t.unassign(&[tp("a", 0)]).is_empty(), "already unassigned");
        assert!(h.seek(4).is_none());
        // In-flight result of an unassigned partition is stale.
        let h1 = t.handle(&tp("a", 1)).unwrap();
        assert!(!h1.finish_fetch(tk1, out(9, 9)));
        assert_eq!(t.buffered_total(), 0);
        // Re-assign: same cell, new epoch, unpaused, fetchable at the new start.
        t.assign(&[(tp("a", 0), 77)]);
        let h2 = t.handle(&tp("a", 0)).unwrap();
        assert!(Arc::ptr_eq(h.state(), h2.state()));
        let tk = h2.try_begin_fetch().unwrap();
        assert_eq!(tk.position, 77);
        assert!(tk.epoch > r[0].1.epoch - 1);
    }

    #[test]
    fn reassign_assigned_is_a_seek_and_keeps_pause() {
        let t = table(100);
        t.assign(&[(tp("a", 0), 0)]);
        let h = t.handle(&tp("a", 0)).unwrap();
        let tk = h.try_begin_fetch().unwrap();
        h.pause();
        t.assign(&[(tp("a", 0), 40)]);
        assert!(!h.finish_fetch(tk, out(5, 5)));
        assert!(h.is_paused());
        assert_eq!(h.state().position(), 40);
    }

    #[test]
    fn ready_queue_flow() {
        use std::sync::atomic::AtomicUsize as StdUsize;
        struct Count(StdUsize);
        impl ReadyWaker for Count {
            fn wake(&self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let t = table(100);
        let w = Arc::new(Count(StdUsize::new(0)));
        let g = t.register_fetch_group(w.clone());
        assert_eq!(g.id(), FetchGroupId(1));
        t.assign(&[(tp("a", 0), 0), (tp("a", 1), 0)]);
        let unrouted = t.fetch_group(FetchGroupId::UNROUTED).unwrap();
        assert_eq!(unrouted.ready_len(), 2);
        for p in 0..2 {
            assert!(t.set_fetch_group(&tp("a", p), g.id()));
        }
        // The unrouted queue's owner forwards them.
        t.reroute(FetchGroupId::UNROUTED);
        assert_eq!(w.0.load(Ordering::SeqCst), 1, "woken once on empty -> non-empty");
        assert_eq!(unrouted.ready_len(), 0);
        assert_eq!(g.ready_len(), 2);
        assert_eq!(
            w.0.load(Ordering::SeqCst),
            2,
            "putting back after counting wakes like a push"
        );

        let mut scratch = Vec::new();
        let mut tickets = Vec::new();
        let h0 = t.handle(&tp("a", 0)).unwrap();
        h0.pause(); // paused while queued: popped, not begun, QUEUED cleared
        let n = g.poll_ready(&mut scratch, |c, tk| tickets.push((Arc::clone(c), tk)));
        assert_eq!(n, 1);
        assert!(!h0.snapshot().queued);
        assert_eq!(g.ready_len(), 0);
        // Resume makes it fetchable again: queued + wake.
        let woken = w.0.load(Ordering::SeqCst);
        h0.resume();
        assert!(h0.snapshot().queued);
        assert_eq!(w.0.load(Ordering::SeqCst), woken + 1);
        assert_eq!(g.ready_len(), 1);
        // Finishing the other fetch re-queues it.
        let (c1, tk1) = tickets.pop().unwrap();
        assert!(c1.finish_fetch(tk1, out(3, 10)));
        assert_eq!(g.ready_len(), 2);
        // Backpressure: finishing over high does not queue; consuming to low does.
        let n = g.poll_ready(&mut scratch, |c, tk| tickets.push((Arc::clone(c), tk)));
        assert_eq!(n, 2);
        let (c, tk) = tickets.pop().unwrap();
        assert!(c.finish_fetch(tk, out(9, 200)));
        assert_eq!(g.ready_len(), 0);
        assert!(c.consume(c.buffered_bytes() - 50));
        assert_eq!(g.ready_len(), 1);
        // Mid-queue re-routing: popped by the wrong group, forwarded.
        let g2 = t.register_fetch_group(Arc::new(NoopWaker));
        c.set_fetch_group(g2.id());
        assert_eq!(g.poll_ready(&mut scratch, |_, _| ()), 0);
        assert_eq!(g2.ready_len(), 1);
        assert_eq!(g2.poll_ready(&mut scratch, |_, _| ()), 1);
    }

    #[test]
    fn scan_mode_never_duplicates_queue_entries() {
        let t = table(100);
        t.assign(&[(tp("a", 0), 0)]);
        let h = t.handle(&tp("a", 0)).unwrap();
        let g = t.fetch_group(FetchGroupId::UNROUTED).unwrap();
        for i in 0..100 {
            let tk = h.try_begin_fetch().unwrap();
            assert!(h.finish_fetch(tk, out(i, 0)));
            h.pause();
            h.resume();
        }
        assert_eq!(g.ready_len(), 1);
    }

    #[test]
    fn budget_reservations() {
        use std::sync::atomic::AtomicUsize as StdUsize;
        struct Count(StdUsize);
        impl ReadyWaker for Count {
            fn wake(&self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let mut cfg = StateTableConfig::with_high_watermark(1 << 20);
        cfg.max_buffered_bytes = 1000;
        let w = Arc::new(Count(StdUsize::new(0)));
        let t: StateTable = StateTable::with_unrouted_waker(cfg, w.clone());
        t.assign(&[(tp("a", 0), 0)]);
        let base = w.0.load(Ordering::SeqCst);
        assert_eq!(t.budget_available(), 1000);
        let g1 = t.reserve_budget(600);
        assert_eq!(g1, 600);
        assert_eq!(t.reserve_budget(600), 400);
        assert_eq!(t.reserve_budget(1), 0);
        let h = t.handle(&tp("a", 0)).unwrap();
        let tk = h.try_begin_fetch().unwrap();
        assert!(h.finish_fetch(tk, out(1, 500)));
        t.release_budget(600);
        assert_eq!(t.buffered_total(), 500);
        assert_eq!(t.budget_available(), 100);
        t.release_budget(400);
        assert_eq!(t.budget_available(), 500);
        assert_eq!(t.reserve_budget(10_000), 500);
        assert_eq!(t.wait_for_budget(), 0);
        assert_eq!(w.0.load(Ordering::SeqCst), base);
        h.consume(100);
        assert_eq!(w.0.load(Ordering::SeqCst), base + 1, "budget waiter woken");
        h.consume(100);
        assert_eq!(w.0.load(Ordering::SeqCst), base + 1, "only once per arm");
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync>() {}
        check::<StateTable>();
        check::<PartitionHandle>();
        check::<PartitionState>();
        check::<FetchGroup>();
    }
}
