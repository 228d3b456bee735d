//! What the consumer keeps per assigned partition beside its state: the buffer of fetched, undelivered records.
//! It lives in the partition's state-table cell ([`Partition`]), so one lookup by name finds both.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use super::crc_retry::CrcStreakCell;
use super::intrusive_list::{new_link, Link};
use super::metrics::PartitionMetrics;
use super::rate_sizing::DrainMeter;
use super::record_queue::RecordQueue;
use super::state_table::{FetchOutcome, FetchTicket, PartitionState};
use super::sync::AtomicPtr;
use super::ConsumerRecord;

/// One assigned (or once assigned) partition of a consumer: its state cell with its [`PartitionSlot`].
pub(crate) type Partition = PartitionState<PartitionSlot>;

/// Records fetched for one partition and not yet delivered, tagged with the epoch they belong to.
pub(crate) struct PartitionBuffer {
    pub(crate) records: RecordQueue,
    pub(crate) epoch: u32,
    /// A fetch ticket held back because the partition cannot progress (corrupt data, offset out of range
    /// without a reset policy, authorization): the partition is not fetched again until a seek or unassign
    /// releases it. Also held for the retry backoff before a batch that failed its CRC is fetched again
    /// ([`PartitionState::unpark`]).
    pub(crate) parked: Option<FetchTicket>,
    /// Where the fetch that brought the last buffered records ended: the position once they are all delivered.
    /// Past the last record when that fetch passed over offsets without records to deliver (transaction
    /// markers, aborted transactions, compacted gaps), so that the position, commits and lag reach the end.
    pub(crate) end: i64,
    /// The leader epoch of the record before the delivered position (the last delivered), -1 if unknown (a
    /// seek, or a broker that does not stamp batches): what a commit of that position carries.
    pub(crate) delivered_epoch: i32,
}

impl Default for PartitionBuffer {
    fn default() -> Self {
        PartitionBuffer {
            records: RecordQueue::default(),
            epoch: 0,
            parked: None,
            end: 0,
            delivered_epoch: -1,
        }
    }
}

pub(crate) struct PartitionSlot {
    pub(crate) buffer: Mutex<PartitionBuffer>,
    /// In the delivery queue or in the hands of `poll` (or about to be).
    pub(crate) queued: AtomicBool,
    /// This partition's link in the delivery queue.
    deliver_next: AtomicPtr<Partition>,
    /// Next offset `poll` returns for this partition (Java's `position`).
    pub(crate) delivered: AtomicI64,
    /// Where the partition ends for this consumer, from the latest fetch response: the high watermark, or
    /// under read_committed the last stable offset; -1 before the first.
    pub(crate) log_end: AtomicI64,
    /// The broker's high watermark from the latest fetch response, -1 before the first.
    pub(crate) high_watermark: AtomicI64,
    /// The last stable offset from the latest fetch response, -1 before the first or when the broker did not
    /// say (Fetch v3 and older).
    pub(crate) last_stable_offset: AtomicI64,
    /// Records in `buffer` (a copy kept under the buffer lock, so that the statistics read it without it).
    pub(crate) buffered_records: AtomicU64,
    /// Fetch responses that answered for this partition (records or not), since it was first assigned.
    pub(crate) fetches: AtomicU64,
    /// Records fetched and buffered for this partition, since it was first assigned.
    pub(crate) records_fetched: AtomicU64,
    /// The leader reported an error that means our metadata is stale.
    pub(crate) stale_leader: AtomicBool,
    /// Last seen backpressure state, to count transitions for [`super::ConsumerStats`].
    pub(crate) backpressured: AtomicBool,
    /// Fetches in a row that found a batch of this partition failing its CRC (see `crc_retry`).
    pub(crate) crc_streak: CrcStreakCell,
    /// Delivered through its own stream ([`super::Consumer::partition_stream`]) instead of `poll`.
    pub(crate) detached: AtomicBool,
    /// Wakes the partition's own stream when records arrive or the partition resumes.
    pub(crate) data_ready: tokio::sync::Notify,
    /// The partition's metric handles while it is assigned; only the metrics task touches them.
    pub(crate) metrics: Mutex<Option<Box<PartitionMetrics>>>,
    /// Fetched from a replica its leader named (KIP-392) until this time (ms since the Unix epoch); 0 when
    /// fetched from the leader.
    pub(crate) replica_until_ms: AtomicU64,
    /// The broker that answered the partition's latest fetch with its records (or none), -1 before the first.
    pub(crate) fetched_from: AtomicI32,
    /// The leader epoch of the metadata the partition was last routed by (-1: unknown), sent with its fetches
    /// (KIP-320): a broker on another epoch answers FENCED_LEADER_EPOCH or UNKNOWN_LEADER_EPOCH, and the
    /// partition is routed again from fresh metadata.
    pub(crate) leader_epoch: AtomicI32,
    /// The partition leader epoch of the last batch fetched up to the fetch position, with the partition's
    /// epoch it was fetched in (see [`PartitionSlot::fetched_epoch`]): what a position is validated with after
    /// a leader change (KIP-320).
    fetched_epoch: AtomicU64,
    /// The leader epoch changed since the partition was last routed: its position is validated against the new
    /// leader's log (OffsetForLeaderEpoch) before it is fetched again.
    pub(crate) validate: AtomicBool,
    /// What the application drained from the partition, and the drain rate made of it (rate-sized buffers).
    pub(crate) drain: DrainMeter,
}

impl Default for PartitionSlot {
    fn default() -> Self {
        Self {
            buffer: Mutex::new(PartitionBuffer::default()),
            queued: AtomicBool::new(false),
            deliver_next: new_link(),
            delivered: AtomicI64::new(0),
            log_end: AtomicI64::new(-1),
            high_watermark: AtomicI64::new(-1),
            last_stable_offset: AtomicI64::new(-1),
            buffered_records: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            records_fetched: AtomicU64::new(0),
            stale_leader: AtomicBool::new(false),
            backpressured: AtomicBool::new(false),
            crc_streak: CrcStreakCell::default(),
            detached: AtomicBool::new(false),
            data_ready: tokio::sync::Notify::new(),
            metrics: Mutex::new(None),
            replica_until_ms: AtomicU64::new(0),
            fetched_from: AtomicI32::new(-1),
            leader_epoch: AtomicI32::new(-1),
            fetched_epoch: AtomicU64::new(u64::MAX),
            validate: AtomicBool::new(false),
            drain: DrainMeter::default(),
        }
    }
}

impl PartitionSlot {
    /// Records that a fetch in the partition's epoch `epoch` moved its position into or past a batch of leader
    /// epoch `leader_epoch`. Called by the holder of the fetch ticket, before it finishes the fetch.
    pub(crate) fn set_fetched_epoch(&self, epoch: u32, leader_epoch: i32) {
        let packed = (u64::from(epoch) << 32) | u64::from(leader_epoch as u32);
        self.fetched_epoch.store(packed, Ordering::Relaxed);
    }

    /// The leader epoch of the last batch fetched up to the position, if it was fetched in the partition's epoch
    /// `epoch` (a seek or assign since makes it unknown) and the broker stamped one.
    pub(crate) fn fetched_epoch(&self, epoch: u32) -> Option<i32> {
        let packed = self.fetched_epoch.load(Ordering::Relaxed);
        let leader_epoch = packed as u32 as i32;
        ((packed >> 32) as u32 == epoch && leader_epoch >= 0).then_some(leader_epoch)
    }
}

/// The link of the consumer's delivery queue (partitions with records for `poll`).
pub(crate) struct DeliverLink;

// SAFETY: always the `deliver_next` field, which `PartitionSlot::default` makes unlinked and only the delivery
// queue writes.
#[allow(unsafe_code)]
unsafe impl Link<Partition> for DeliverLink {
    fn next(item: &Partition) -> &AtomicPtr<Partition> {
        &item.data().deliver_next
    }
}

impl PartitionState<PartitionSlot> {
    /// The consumer's side of this partition.
    #[inline]
    pub(crate) fn slot(&self) -> &PartitionSlot {
        self.data()
    }

    /// After a seek, assign or unassign moved the partition to `epoch`: drop buffered records of older
    /// epochs, release a parked ticket of an older epoch, and set the delivered position.
    ///
    /// The move made the partition fetchable before this runs, so a fetch of `epoch` may already have
    /// appended records or parked its ticket (offset out of range, say): those belong to the new position and
    /// stay (clearing them would lose records whose offsets the fetch already consumed; releasing the ticket
    /// would fetch again what could not be fetched). Whoever first touches the buffer in a new epoch, this or
    /// [`PartitionState::append`], drops the old records.
    pub(crate) fn reset(&self, epoch: u32, position: i64) {
        let slot = self.slot();
        let stale = {
            let mut b = slot.buffer.lock().unwrap();
            if b.epoch == epoch {
                return;
            }
            self.enter_epoch(&mut b, epoch, position);
            b.parked.take_if(|t| t.epoch != epoch)
        };
        if let Some(t) = stale {
            // Stale (an older epoch), so this only clears IN_FLIGHT.
            self.end_fetch(t);
        }
    }

    /// The buffer (`b`, locked) moves to `epoch`: records of the old one go, and `poll` delivers from
    /// `position` on.
    fn enter_epoch(&self, b: &mut PartitionBuffer, epoch: u32, position: i64) {
        b.records.clear();
        self.slot().buffered_records.store(0, Ordering::Relaxed);
        self.clear_has_records();
        b.epoch = epoch;
        b.end = position;
        b.delivered_epoch = -1;
        self.slot().delivered.store(position, Ordering::Release);
    }

    /// Ends a fetch that brought nothing (or whose result is dropped): the partition is fetched again from the
    /// ticket's position.
    pub(crate) fn end_fetch(&self, ticket: FetchTicket) {
        self.finish_fetch(
            ticket,
            FetchOutcome {
                next_position: ticket.position,
                bytes: 0,
                left_for_room: false,
            },
        );
    }

    /// Adds fetched records if the partition is still at `epoch`; returns whether they were added (the
    /// caller then queues the partition for delivery: [`super::Inner::ready`]).
    /// `end` is where the fetch ended (see [`PartitionBuffer::end`]).
    pub(crate) fn append(&self, epoch: u32, records: Vec<ConsumerRecord>, end: i64) -> bool {
        let mut b = self.slot().buffer.lock().unwrap();
        if self.epoch() != epoch || records.is_empty() {
            return false;
        }
        if b.epoch != epoch {
            // First in this epoch, before `reset`: the delivered position is where this epoch's records start.
            self.enter_epoch(&mut b, epoch, records[0].offset);
        }
        if b.records.is_empty() {
            // Under the buffer lock, so the bit follows the buffer (state table invariant 7).
            self.set_has_records();
        }
        b.records.push_back(records);
        self.slot()
            .buffered_records
            .store(b.records.len() as u64, Ordering::Relaxed);
        b.end = end;
        true
    }

    /// A fetch of `epoch` brought no records to deliver but passed over offsets up to `end` (transaction
    /// markers, aborted transactions): the position moves there once what is buffered is delivered.
    pub(crate) fn pass_over(&self, epoch: u32, end: i64) {
        let mut b = self.slot().buffer.lock().unwrap();
        if self.epoch() != epoch {
            return;
        }
        if b.epoch != epoch {
            // First in this epoch, before `reset`: this fetch started where the epoch's position is.
            self.enter_epoch(&mut b, epoch, end);
        } else if b.records.is_empty() {
            self.slot().delivered.fetch_max(end, Ordering::AcqRel);
        }
        b.end = b.end.max(end);
    }

    /// Parks `ticket` (see [`PartitionBuffer::parked`]) unless the partition moved on meanwhile.
    pub(crate) fn park(&self, ticket: FetchTicket) {
        let mut b = self.slot().buffer.lock().unwrap();
        if self.epoch() == ticket.epoch && b.parked.is_none() {
            b.parked = Some(ticket);
        } else {
            drop(b);
            self.end_fetch(ticket);
        }
    }

    /// Releases `ticket` if it is still the parked one: the partition is fetched again from its position. A
    /// ticket already released (by a seek or unassign) is left alone, and so is any other ticket parked since.
    pub(crate) fn unpark(&self, ticket: FetchTicket) {
        let released = {
            let mut b = self.slot().buffer.lock().unwrap();
            b.parked.take_if(|t| *t == ticket)
        };
        if let Some(t) = released {
            self.end_fetch(t);
        }
    }

    /// Returns once no `take` is in progress (it holds the buffer lock throughout).
    pub(crate) fn settle(&self) {
        drop(self.slot().buffer.lock().unwrap());
    }

    /// Takes up to `max` deliverable records into `out` (see [`Taken`]).
    /// Nothing is taken from a paused partition, and a pause that lands while taking puts them back.
    pub(crate) fn take(&self, max: usize, out: &mut Vec<ConsumerRecord>) -> Taken {
        let mut b = self.slot().buffer.lock().unwrap();
        if self.is_stopped() || b.epoch != self.epoch() {
            return Taken::default();
        }
        let start = out.len();
        let n = b.records.take_into(max, out);
        if self.is_stopped() {
            // pause() returned before we finished: these records are not delivered.
            b.records.push_front(out.drain(start..).collect());
            return Taken::default();
        }
        if b.records.is_empty() {
            self.clear_has_records();
        }
        self.slot()
            .buffered_records
            .store(b.records.len() as u64, Ordering::Relaxed);
        let mut taken = Taken {
            records: n,
            more: !b.records.is_empty(),
            ..Taken::default()
        };
        for r in &out[start..] {
            taken.bytes += r.size() as u64;
            taken.payload += r.payload_size() as u64;
        }
        if let Some(last) = out.last() {
            let mut position = last.offset + 1;
            if b.records.is_empty() {
                position = position.max(b.end);
            }
            self.slot().delivered.store(position, Ordering::Release);
            b.delivered_epoch = last.leader_epoch;
        }
        taken
    }

    /// The delivered position and the leader epoch of the record before it (`None` if unknown), read together
    /// under the buffer lock.
    pub(crate) fn delivered_with_epoch(&self) -> (i64, Option<i32>) {
        let b = self.slot().buffer.lock().unwrap();
        let epoch = Some(b.delivered_epoch).filter(|&e| e >= 0);
        (self.slot().delivered.load(Ordering::Acquire), epoch)
    }
}

/// What one [`PartitionState::take`] delivered.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taken {
    /// Records taken.
    pub(crate) records: usize,
    /// The memory they accounted for in the buffer ([`ConsumerRecord::size`]).
    pub(crate) bytes: u64,
    /// Bytes of their keys, values and headers ([`ConsumerRecord::payload_size`]).
    pub(crate) payload: u64,
    /// Records remain buffered.
    pub(crate) more: bool,
}

#[cfg(all(test, not(feature = "loom-model")))]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::consumer::state_table::{NoopWaker, StateTable, StateTableConfig, TopicPartition};

    fn record(offset: i64) -> ConsumerRecord {
        ConsumerRecord {
            topic: Arc::from("t"),
            partition: 0,
            offset,
            timestamp: 0,
            key: None,
            value: Some(bytes::Bytes::from_static(b"v")),
            headers: Vec::new(),
            leader_epoch: 0,
        }
    }

    fn table() -> (StateTable<PartitionSlot>, TopicPartition) {
        let t = StateTable::<PartitionSlot>::with_unrouted_waker(
            StateTableConfig::with_high_watermark(1 << 20),
            Arc::new(NoopWaker),
        );
        (t, TopicPartition::new("t", 0))
    }

    /// An assign makes the partition fetchable before the consumer resets its buffer: a fetch of the new
    /// epoch that lands in between keeps its records and its delivered position.
    #[test]
    fn records_fetched_before_the_reset_of_their_epoch_stay() {
        let (t, tp) = table();
        t.assign(&[(tp.clone(), 5)]);
        let p = t.cell_ref(&tp).unwrap();
        let ticket = p.try_begin_fetch().expect("fetchable");
        assert!(p.append(ticket.epoch, vec![record(5), record(6)], 7));
        p.reset(p.epoch(), 5);
        let mut out = Vec::new();
        p.take(10, &mut out);
        assert_eq!(out.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![5, 6]);
    }

    /// A ticket parked by a fetch of the new epoch (offset out of range without a reset policy) stays parked
    /// through the reset of that epoch: the partition is not fetched again until a seek.
    #[test]
    fn a_ticket_parked_in_the_new_epoch_stays_parked_through_its_reset() {
        let (t, tp) = table();
        t.assign(&[(tp.clone(), 1000)]);
        let p = t.cell_ref(&tp).unwrap();
        let ticket = p.try_begin_fetch().expect("fetchable");
        p.park(ticket);
        p.reset(p.epoch(), 1000);
        assert!(p.try_begin_fetch().is_none(), "fetched again after the reset");
        // A seek moves on: the parked ticket is stale and released.
        let change = p.seek(0).expect("assigned");
        p.reset(change.epoch, 0);
        assert!(p.try_begin_fetch().is_some(), "not fetchable after the seek");
    }

    /// A ticket parked for a backoff is released by `unpark`, unless a seek released it first: then `unpark`
    /// leaves the new epoch's parked ticket alone.
    #[test]
    fn unpark_releases_only_the_ticket_it_names() {
        let (t, tp) = table();
        t.assign(&[(tp.clone(), 3)]);
        let p = t.cell_ref(&tp).unwrap();
        let ticket = p.try_begin_fetch().expect("fetchable");
        p.park(ticket);
        assert!(p.try_begin_fetch().is_none(), "fetched while parked");
        p.unpark(ticket);
        let again = p.try_begin_fetch().expect("fetchable after unpark");
        assert_eq!(again.position, 3);
        // Parked again; a seek releases it, and the new epoch parks its own ticket.
        p.park(again);
        let change = p.seek(3).expect("assigned");
        p.reset(change.epoch, 3);
        let new = p.try_begin_fetch().expect("fetchable after the seek");
        assert_eq!((new.epoch, new.position), (change.epoch, 3));
        p.park(new);
        p.unpark(again); // the backoff of the old ticket ends
        assert!(
            p.try_begin_fetch().is_none(),
            "the new epoch's ticket was released"
        );
        p.unpark(new);
        assert!(p.try_begin_fetch().is_some());
    }

    /// The delivered position carries the leader epoch of the last record delivered; a seek forgets it.
    #[test]
    fn the_delivered_position_carries_the_last_records_leader_epoch() {
        let (t, tp) = table();
        t.assign(&[(tp.clone(), 0)]);
        let p = t.cell_ref(&tp).unwrap();
        p.reset(p.epoch(), 0);
        assert_eq!(p.delivered_with_epoch(), (0, None));
        let ticket = p.try_begin_fetch().unwrap();
        let at = |offset, leader_epoch| ConsumerRecord {
            leader_epoch,
            ..record(offset)
        };
        assert!(p.append(ticket.epoch, vec![at(0, 4), at(1, 4), at(2, 5)], 3));
        let mut out = Vec::new();
        p.take(2, &mut out);
        assert_eq!(p.delivered_with_epoch(), (2, Some(4)));
        p.take(1, &mut out);
        assert_eq!(p.delivered_with_epoch(), (3, Some(5)));
        let change = p.seek(1).expect("assigned");
        p.reset(change.epoch, 1);
        assert_eq!(p.delivered_with_epoch(), (1, None));
    }

    /// Records of an older epoch never mix with the new one, whichever of reset and append comes first.
    #[test]
    fn old_records_go_whoever_comes_first() {
        let (t, tp) = table();
        t.assign(&[(tp.clone(), 0)]);
        let p = t.cell_ref(&tp).unwrap();
        p.reset(p.epoch(), 0);
        let ticket = p.try_begin_fetch().unwrap();
        assert!(p.append(ticket.epoch, vec![record(0), record(1)], 2));
        p.end_fetch(ticket);
        let change = p.seek(100).expect("assigned");
        let ticket = p.try_begin_fetch().unwrap();
        assert_eq!(ticket.epoch, change.epoch);
        assert!(p.append(ticket.epoch, vec![record(100)], 101));
        p.reset(change.epoch, 100);
        let mut out = Vec::new();
        p.take(10, &mut out);
        assert_eq!(out.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![100]);
        assert_eq!(p.slot().delivered.load(Ordering::Acquire), 101);
    }
}
