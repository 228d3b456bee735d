//! What a fetch response means for each partition it was asked for: a function from the response, the
//! partitions' positions and room, and the fetch's memory grant to one [`Outcome`] per partition. The fetcher
//! carries the outcomes out (buffers, parks, reroutes, reports, wakes); nothing here touches shared state but
//! through the grant's `borrow`, which may lend budget beyond the grant for a drained partition's first batch.

use std::collections::BTreeMap;

use weir_proto::fetch::FetchResponse;
use weir_proto::record::RecordError;

use super::aborted::AbortedTransactions;
use super::crc_retry::{CrcStreak, CrcVerdict};
use super::decode::{decode_partition, DecodeLimits, Decoded};
use super::TopicPartition;
use crate::error::{Error, KafkaCode};

/// One partition a fetch asked for, as it stood when the response came.
pub(crate) struct Asked<'a> {
    pub(crate) tp: &'a TopicPartition,
    /// The offset the fetch asked from.
    pub(crate) position: i64,
    /// Bytes the partition can still buffer under its high watermark.
    pub(crate) room: usize,
    /// The partition holds no more than its low watermark: were its next batch left for lack of budget, it
    /// would not count as full (backpressured) and would be fetched again and again for that same batch.
    pub(crate) drained: bool,
    /// The partition's epoch when the fetch began.
    pub(crate) epoch: u32,
    /// Fetches before this one that found a batch of the partition failing its CRC (see `crc_retry`).
    pub(crate) crc_streak: CrcStreak,
    /// Fetched from a replica the leader named (KIP-392), not from the leader.
    pub(crate) on_replica: bool,
    /// The leader epoch the partition is fetched at (-1: unknown).
    pub(crate) leader_epoch: i32,
}

/// The memory limits of one response, and who answered it.
pub(crate) struct Grant<'a> {
    /// The broker that answered.
    pub(crate) broker: i32,
    /// Budget reserved for this fetch: what its records may add, whatever the broker sent.
    pub(crate) bytes: usize,
    /// Nothing is buffered anywhere: the first batch may exceed the grant (progress for a batch larger than any
    /// reservation).
    pub(crate) nothing_buffered: bool,
    /// Largest decompressed size of one batch.
    pub(crate) max_decompressed: usize,
    /// A batch taken over the grant is cut once its records cost this much.
    pub(crate) oversize_cut: usize,
    pub(crate) check_crcs: bool,
    /// read_committed: records of aborted transactions are dropped, the end of a partition is its last stable
    /// offset.
    pub(crate) read_committed: bool,
    /// Reserves this many more bytes of the budget for this fetch if the budget has them all (else nothing);
    /// returns whether it did. For a drained partition (see [`Asked::drained`]) whose first batch does not fit
    /// what is left of the grant: without it, such a partition would make progress only once nothing at all is
    /// buffered, and be fetched again and again meanwhile.
    pub(crate) borrow: &'a dyn Fn(usize) -> bool,
}

/// What to do with one partition.
pub(crate) enum Outcome {
    /// The response does not mention it: the fetch ends; it is fetched again.
    Missing,
    /// Its position is out of range: park it and reset it by `auto.offset.reset`.
    Reset,
    /// Its leader moved or the broker asks to retry: look the leader up again. Also a replica that does not have
    /// the position yet (KIP-392): back to the leader.
    Reroute(KafkaCode),
    /// The leader names another replica to fetch it from (KIP-392: the consumer's rack has one): fetch it there.
    Redirect(i32),
    /// The broker no longer leads it and names the leader it knows of, at a leader epoch newer than the one
    /// fetched at (KIP-951): move it there without asking for metadata (or, if that leader cannot be reached
    /// from what is known of it, as [`Outcome::Reroute`]).
    MoveTo { leader: i32, epoch: i32 },
    /// An error retrying will not fix: report it and park the partition until a seek.
    Fail(Error),
    /// Records to buffer (maybe none), and corrupt data after them if `decoded.error` is set: report it and park
    /// the partition until a seek.
    Records(Decoded),
    /// Records to buffer (maybe none), then a batch that failed its CRC and has fetches left (see `crc_retry`):
    /// keep `streak` (which counts this fetch) and fetch the partition again from `decoded.next_offset` after the
    /// retry backoff. `decoded.error` says what failed, for the log.
    Refetch { decoded: Decoded, streak: CrcStreak },
}

/// Where a partition's log stands, as a response reported it (`None`: not reported, or unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Marks {
    pub(crate) high_watermark: Option<i64>,
    /// The last stable offset (Fetch v4 and later).
    pub(crate) last_stable_offset: Option<i64>,
    /// Where the partition ends for this consumer: the last stable offset under read_committed, else the
    /// high watermark.
    pub(crate) end: Option<i64>,
}

/// The outcomes of one response, and what it says about sizes.
pub(crate) struct Applied {
    /// Per partition asked, in the order asked: its outcome and where its log stands (`Marks::default()` for a
    /// partition the response does not mention).
    pub(crate) partitions: Vec<(Outcome, Marks)>,
    /// Bytes of record data in the response.
    pub(crate) total: usize,
    /// Bytes the records taken cost in memory.
    pub(crate) kept: usize,
    /// Wire bytes of the batches taken.
    pub(crate) wire_used: usize,
    /// Wire size of the largest batch seen, taken or not.
    pub(crate) largest_batch: usize,
    /// Budget borrowed beyond the grant (see [`Grant::borrow`]): the fetcher returns it with the grant.
    pub(crate) borrowed: usize,
}

/// A response of at least this many bytes whose records use less than half of it is not kept alive by them:
/// they are copied into buffers of their own (one per partition), so that the response can be freed. A lower
/// bar would copy in ordinary draining too (a response's last partition is often cut short; measured: 7% of the
/// CPU of `weir consume` at 1/8 and 64 KiB), for memory that a draining application frees soon anyway.
const COMPACT_RESPONSE_BYTES: usize = 1 << 20;

impl Applied {
    /// Whether the records should be copied out of the response (see [`COMPACT_RESPONSE_BYTES`]).
    pub(crate) fn compact(&self) -> bool {
        self.total >= COMPACT_RESPONSE_BYTES && self.wire_used * 2 < self.total
    }
}

/// Applies `resp` to the partitions `asked` within `grant`.
pub(crate) fn apply(mut resp: FetchResponse, asked: &[Asked], grant: &Grant<'_>) -> Applied {
    let total: usize = resp
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    // Keyed by the names in the response, borrowed: one allocation per partition would let a response of many
    // partitions with a long topic name multiply its own size in memory.
    let mut by_tp: BTreeMap<&str, BTreeMap<i32, _>> = BTreeMap::new();
    for t in &mut resp.topics {
        let parts = by_tp.entry(t.name.as_str()).or_default();
        for p in t.partitions.drain(..) {
            parts.insert(p.partition, p);
        }
    }
    let mut out = Applied {
        partitions: Vec::with_capacity(asked.len()),
        total,
        kept: 0,
        wire_used: 0,
        largest_batch: 0,
        borrowed: 0,
    };
    let mut grant_left = grant.bytes;
    for a in asked {
        let found = by_tp
            .get_mut(&*a.tp.topic)
            .and_then(|parts| parts.remove(&a.tp.partition));
        let Some(p) = found else {
            out.partitions.push((Outcome::Missing, Marks::default()));
            continue;
        };
        let known = |o: i64| (o >= 0).then_some(o);
        let marks = Marks {
            high_watermark: known(p.high_watermark),
            last_stable_offset: known(p.last_stable_offset),
            end: known(match grant.read_committed {
                true => p.last_stable_offset,
                false => p.high_watermark,
            }),
        };
        let outcome = match KafkaCode::from_code(p.error_code) {
            // A follower may not have the offset yet (its high watermark lags the leader's): the leader decides.
            Some(KafkaCode::OffsetOutOfRange) if a.on_replica => {
                Outcome::Reroute(KafkaCode::OffsetOutOfRange)
            }
            Some(KafkaCode::OffsetOutOfRange) => Outcome::Reset,
            Some(KafkaCode::NotLeaderOrFollower | KafkaCode::FencedLeaderEpoch)
                if p.current_leader.is_some_and(|l| l.leader_epoch > a.leader_epoch) =>
            {
                let l = p.current_leader.expect("checked");
                Outcome::MoveTo {
                    leader: l.leader_id,
                    epoch: l.leader_epoch,
                }
            }
            // Among them UNKNOWN_TOPIC_ID and INCONSISTENT_TOPIC_ID (Fetch v13+): the topic was recreated, or the
            // metadata is older than the broker's.
            Some(code) if code.is_retriable() || code == KafkaCode::NotLeaderOrFollower => {
                Outcome::Reroute(code)
            }
            Some(code) => Outcome::Fail(Error::Kafka {
                code,
                context: format!("fetch {}", a.tp),
            }),
            // A leader naming a replica answers without records for the partition.
            None if p.preferred_read_replica >= 0
                && p.preferred_read_replica != grant.broker
                && p.records.as_ref().is_none_or(|r| r.is_empty()) =>
            {
                Outcome::Redirect(p.preferred_read_replica)
            }
            None => {
                let limits = DecodeLimits {
                    partition_room: a.room,
                    budget_room: grant_left,
                    allow_oversize: grant.nothing_buffered && grant_left == grant.bytes,
                    max_decompressed: grant.max_decompressed,
                    oversize_cut: grant.oversize_cut,
                    check_crcs: grant.check_crcs,
                };
                let data = p.records.unwrap_or_default();
                let aborted = |list: &Vec<(i64, i64)>| {
                    grant
                        .read_committed
                        .then(|| AbortedTransactions::new(list.clone()))
                };
                let decode = |limits: &DecodeLimits| {
                    let aborted = aborted(&p.aborted_transactions);
                    decode_partition(
                        &a.tp.topic,
                        a.tp.partition,
                        data.clone(),
                        a.position,
                        limits,
                        aborted,
                    )
                };
                let mut decoded = decode(&limits);
                if decoded.left && decoded.records.is_empty() && a.drained && !limits.allow_oversize {
                    // Its first batch does not fit what is left of the grant, and it is drained: take that batch
                    // whole if the budget can lend what it costs beyond the grant (the partition then passes its
                    // high watermark by at most that one batch, as any partition may).
                    let whole = decode(&DecodeLimits {
                        allow_oversize: true,
                        ..limits
                    });
                    let beyond = whole.bytes.saturating_sub(grant_left);
                    if beyond == 0 || (grant.borrow)(beyond) {
                        out.borrowed += beyond;
                        grant_left += beyond;
                        decoded = whole;
                    }
                }
                grant_left = grant_left.saturating_sub(decoded.bytes);
                out.kept += decoded.bytes;
                out.wire_used += decoded.wire_bytes;
                out.largest_batch = out.largest_batch.max(decoded.largest_batch);
                match &decoded.error {
                    Some(Error::CorruptRecords {
                        offset,
                        source: RecordError::CrcMismatch { .. },
                        ..
                    }) => match a.crc_streak.failed(a.epoch, *offset) {
                        CrcVerdict::Refetch(streak) => Outcome::Refetch { decoded, streak },
                        CrcVerdict::Report => Outcome::Records(decoded),
                    },
                    _ => Outcome::Records(decoded),
                }
            }
        };
        out.partitions.push((outcome, marks));
    }
    out
}

/// The next floor of per-partition asks: the largest batch of this response, or the old floor decaying by
/// 1/256 per response once batches get smaller.
pub(crate) fn next_batch_floor(old: u64, largest_batch: usize) -> Option<u64> {
    (largest_batch > 0).then(|| (largest_batch as u64).max(old - old / 256))
}

/// The next average memory cost per wire byte, in thousandths: the first response's cost (`old` is 0 until one
/// is measured), then each response weighs 1/8. At least 1.0 (a fetch never asks for more wire bytes than its
/// memory grant), at most 100.
pub(crate) fn next_memory_per_wire_milli(old: u64, kept: usize, wire_used: usize) -> Option<u64> {
    if wire_used == 0 {
        return None;
    }
    let sample = (kept as u128 * 1000 / wire_used as u128).clamp(1000, 100_000) as u64;
    Some(match old {
        0 => sample,
        _ => (old * 7 + sample) / 8,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::crc_retry::CRC_FETCH_ATTEMPTS;
    use bytes::Bytes;
    use weir_proto::fetch::{FetchPartition, FetchTopic};
    use weir_proto::record::{BatchBuilder, BatchOptions, ProducerIds};

    fn batch(base: i64, n: usize, value: usize) -> Bytes {
        let mut b = BatchBuilder::new(BatchOptions {
            base_offset: base,
            ..Default::default()
        });
        for _ in 0..n {
            b.push(0, None, Some(&vec![7u8; value]), &[]);
        }
        b.seal(ProducerIds::NONE).unwrap()
    }

    fn partition(partition: i32, error_code: i16, records: Option<Bytes>) -> FetchPartition {
        FetchPartition {
            partition,
            error_code,
            high_watermark: 100,
            last_stable_offset: 90,
            log_start_offset: 0,
            aborted_transactions: Vec::new(),
            preferred_read_replica: -1,
            records,
            current_leader: None,
        }
    }

    fn response(parts: Vec<FetchPartition>) -> FetchResponse {
        FetchResponse {
            topics: vec![FetchTopic {
                name: "t".into(),
                topic_id: [0; 16],
                partitions: parts,
            }],
            ..Default::default()
        }
    }

    fn asked_from_zero(tps: &[TopicPartition]) -> Vec<Asked<'_>> {
        tps.iter()
            .map(|tp| Asked {
                tp,
                position: 0,
                room: 1 << 20,
                drained: false,
                epoch: 1,
                crc_streak: CrcStreak::default(),
                on_replica: false,
                leader_epoch: 3,
            })
            .collect()
    }

    fn grant(bytes: usize) -> Grant<'static> {
        Grant {
            broker: 1,
            bytes,
            nothing_buffered: false,
            max_decompressed: 1 << 20,
            oversize_cut: 1 << 20,
            check_crcs: true,
            read_committed: false,
            borrow: &|_| false,
        }
    }

    #[test]
    fn each_partition_gets_the_outcome_its_answer_calls_for() {
        let tps: Vec<TopicPartition> = (0..5).map(|p| TopicPartition::new("t", p)).collect();
        let asked = asked_from_zero(&tps);
        let resp = response(vec![
            partition(0, 0, Some(batch(0, 3, 10))),
            partition(1, KafkaCode::OffsetOutOfRange.code(), None),
            partition(2, KafkaCode::NotLeaderOrFollower.code(), None),
            partition(3, KafkaCode::TopicAuthorizationFailed.code(), None),
            // partition 4 missing
        ]);
        let applied = apply(resp, &asked, &grant(1 << 20));
        let kinds: Vec<&str> = applied
            .partitions
            .iter()
            .map(|(o, _)| match o {
                Outcome::Missing => "missing",
                Outcome::Reset => "reset",
                Outcome::Reroute(_) => "reroute",
                Outcome::Redirect(_) => "redirect",
                Outcome::MoveTo { .. } => "move",
                Outcome::Fail(_) => "fail",
                Outcome::Records(_) => "records",
                Outcome::Refetch { .. } => "refetch",
            })
            .collect();
        assert_eq!(kinds, ["records", "reset", "reroute", "fail", "missing"]);
        let Outcome::Records(d) = &applied.partitions[0].0 else {
            unreachable!()
        };
        assert_eq!((d.records.len(), d.next_offset), (3, 3));
        assert_eq!(
            applied.partitions[0].1,
            Marks {
                high_watermark: Some(100),
                last_stable_offset: Some(90),
                end: Some(100),
            }
        );
        assert_eq!(applied.partitions[4].1, Marks::default());
        let Outcome::Fail(e) = &applied.partitions[3].0 else {
            unreachable!()
        };
        assert_eq!(e.kafka_code(), Some(KafkaCode::TopicAuthorizationFailed));
        assert!(e.to_string().contains("t-3"), "{e}");
        assert!(applied.kept > 0 && applied.wire_used > 0 && applied.largest_batch > 0);
        assert!(!applied.compact());
    }

    #[test]
    fn the_end_of_a_partition_is_its_last_stable_offset_under_read_committed() {
        let tps = [TopicPartition::new("t", 0)];
        let asked = asked_from_zero(&tps);
        let resp = || response(vec![partition(0, 0, Some(batch(0, 3, 10)))]);
        let mut committed = grant(1 << 20);
        committed.read_committed = true;
        let marks = |g: &Grant| apply(resp(), &asked, g).partitions[0].1;
        assert_eq!(marks(&committed).end, Some(90));
        assert_eq!(marks(&grant(1 << 20)).end, Some(100));
        assert_eq!(marks(&committed).high_watermark, Some(100));
    }

    /// `batch(base, 3, 10)` with its last byte flipped: the CRC no longer matches.
    fn damaged(base: i64) -> Bytes {
        let mut bad = batch(base, 3, 10).to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        Bytes::from(bad)
    }

    /// Partition 1 holds a good batch at 0..3 and one failing its CRC at 3..6.
    fn good_then_damaged() -> Bytes {
        let mut two = batch(0, 3, 10).to_vec();
        two.extend_from_slice(&damaged(3));
        Bytes::from(two)
    }

    #[test]
    fn corrupt_data_in_one_partition_spares_the_others_of_the_same_response() {
        let tps = [TopicPartition::new("t", 0), TopicPartition::new("t", 1)];
        let asked = asked_from_zero(&tps);
        let resp = response(vec![
            partition(0, 0, Some(batch(0, 3, 10))),
            partition(1, 0, Some(good_then_damaged())),
        ]);
        let applied = apply(resp, &asked, &grant(1 << 20));
        let Outcome::Records(p0) = &applied.partitions[0].0 else {
            unreachable!()
        };
        assert_eq!((p0.records.len(), p0.error.is_none()), (3, true));
        let Outcome::Refetch { decoded: p1, .. } = &applied.partitions[1].0 else {
            unreachable!()
        };
        assert_eq!(p1.records.len(), 3, "records before the bad batch are kept");
        assert!(
            matches!(&p1.error, Some(Error::CorruptRecords { partition: 1, .. })),
            "{:?}",
            p1.error
        );
    }

    /// A batch failing its CRC is fetched again from where the records before it end, keeping count of the
    /// fetches that found it damaged; the last attempt reports it.
    #[test]
    fn a_batch_failing_its_crc_is_fetched_again_until_the_last_attempt() {
        let tps = [TopicPartition::new("t", 1)];
        let mut asked = asked_from_zero(&tps);
        let mut data = good_then_damaged();
        let mut verdicts = Vec::new();
        let reported = loop {
            let resp = response(vec![partition(1, 0, Some(data.clone()))]);
            match apply(resp, &asked, &grant(1 << 20)).partitions.remove(0).0 {
                Outcome::Refetch { decoded, streak } => {
                    assert!(matches!(
                        &decoded.error,
                        Some(Error::CorruptRecords { offset: 3, .. })
                    ));
                    assert_eq!(decoded.next_offset, 3, "fetched again from the damaged batch");
                    verdicts.push((decoded.records.len(), streak));
                    asked[0].position = decoded.next_offset;
                    asked[0].crc_streak = streak;
                    data = damaged(3); // Kafka returns the batch the position is in, and what follows.
                }
                Outcome::Records(decoded) => break decoded,
                _ => unreachable!(),
            }
        };
        let streak = |fetches| CrcStreak {
            epoch: 1,
            offset: 3,
            fetches,
        };
        assert_eq!(verdicts, [(3, streak(1)), (0, streak(2))]);
        assert_eq!(verdicts.len() + 1, CRC_FETCH_ATTEMPTS as usize);
        assert!(reported.records.is_empty());
        assert_eq!(reported.next_offset, 3);
        assert!(
            matches!(
                &reported.error,
                Some(Error::CorruptRecords {
                    partition: 1,
                    offset: 3,
                    source: RecordError::CrcMismatch { base_offset: 3, .. },
                    ..
                })
            ),
            "{:?}",
            reported.error
        );
        // The same streak in another epoch (the partition was seeked back): a new count.
        asked[0].epoch = 2;
        let resp = response(vec![partition(1, 0, Some(damaged(3)))]);
        let Outcome::Refetch { streak, .. } = apply(resp, &asked, &grant(1 << 20)).partitions.remove(0).0
        else {
            panic!("not fetched again")
        };
        assert_eq!((streak.epoch, streak.fetches), (2, 1));
    }

    /// Corrupt data in a batch whose CRC is not in question (here not checked) is what the broker stores: it is
    /// reported at once.
    #[test]
    fn other_corrupt_data_is_reported_without_fetching_it_again() {
        let mut bad = batch(0, 3, 10).to_vec();
        bad[22] = (bad[22] & !7) | 5; // codec 5 does not exist
        let tps = [TopicPartition::new("t", 0)];
        let asked = asked_from_zero(&tps);
        let mut g = grant(1 << 20);
        g.check_crcs = false;
        let resp = response(vec![partition(0, 0, Some(Bytes::from(bad)))]);
        let Outcome::Records(d) = apply(resp, &asked, &g).partitions.remove(0).0 else {
            panic!("not reported at once")
        };
        assert!(
            matches!(
                &d.error,
                Some(Error::CorruptRecords {
                    source: RecordError::UnknownCompression { codec: 5, .. },
                    ..
                })
            ),
            "{:?}",
            d.error
        );
    }

    #[test]
    fn the_grant_bounds_what_all_partitions_take_together() {
        let one = batch(0, 10, 100);
        let tps: Vec<TopicPartition> = (0..3).map(|p| TopicPartition::new("t", p)).collect();
        let asked = asked_from_zero(&tps);
        let resp = || response((0..3).map(|p| partition(p, 0, Some(one.clone()))).collect());
        // Room for about one and a half batches: the first partition takes its batch, the others nothing.
        let first = apply(resp(), &asked, &grant(usize::MAX)).partitions;
        let Outcome::Records(d) = &first[0].0 else {
            unreachable!()
        };
        let cost = d.bytes;
        let applied = apply(resp(), &asked, &grant(cost * 3 / 2));
        let taken: Vec<usize> = applied
            .partitions
            .iter()
            .map(|(o, _)| match o {
                Outcome::Records(d) => d.records.len(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(taken, [10, 0, 0]);
        assert!(applied.kept <= cost * 3 / 2);
        // Nothing buffered and a grant smaller than one batch: the first batch is taken anyway (progress).
        let mut small = grant(cost / 2);
        let none = apply(resp(), &asked, &small);
        assert!(matches!(&none.partitions[0].0, Outcome::Records(d) if d.records.is_empty()));
        small.nothing_buffered = true;
        let some = apply(resp(), &asked, &small);
        assert!(matches!(&some.partitions[0].0, Outcome::Records(d) if d.records.len() == 10));
        assert!(matches!(&some.partitions[1].0, Outcome::Records(d) if d.records.is_empty()));
    }

    #[test]
    fn a_drained_partition_borrows_budget_for_a_first_batch_larger_than_the_grant() {
        let one = batch(0, 10, 100);
        let tps: Vec<TopicPartition> = (0..2).map(|p| TopicPartition::new("t", p)).collect();
        let mut asked = asked_from_zero(&tps);
        asked[0].drained = true;
        let resp = || response((0..2).map(|p| partition(p, 0, Some(one.clone()))).collect());
        let cost = match &apply(resp(), &asked, &grant(usize::MAX)).partitions[0].0 {
            Outcome::Records(d) => d.bytes,
            _ => unreachable!(),
        };
        let taken = |a: &Applied| -> Vec<usize> {
            a.partitions
                .iter()
                .map(|(o, _)| match o {
                    Outcome::Records(d) => d.records.len(),
                    _ => unreachable!(),
                })
                .collect()
        };
        // The budget can lend the difference: partition 0 (drained) takes its batch whole; partition 1 (above its
        // low watermark: it counts as full instead) does not borrow.
        let lent = std::sync::Mutex::new(Vec::new());
        let lend = |n| {
            lent.lock().unwrap().push(n);
            true
        };
        let applied = apply(
            resp(),
            &asked,
            &Grant {
                borrow: &lend,
                ..grant(cost / 3)
            },
        );
        assert_eq!(taken(&applied), [10, 0]);
        assert_eq!(*lent.lock().unwrap(), [cost - cost / 3]);
        assert_eq!(applied.borrowed, cost - cost / 3);
        assert_eq!(applied.kept, cost);
        // It cannot: the batch is left, nothing borrowed.
        let applied = apply(resp(), &asked, &grant(cost / 3));
        assert_eq!(taken(&applied), [0, 0]);
        assert_eq!(applied.borrowed, 0);
    }

    #[test]
    fn a_response_partly_left_behind_is_compacted() {
        let big = batch(0, 300, 4096);
        let tps = [TopicPartition::new("t", 0)];
        let asked = [Asked {
            tp: &tps[0],
            position: 0,
            room: 1 << 20,
            drained: false,
            epoch: 1,
            crc_streak: CrcStreak::default(),
            on_replica: false,
            leader_epoch: 3,
        }];
        let resp = || response(vec![partition(0, 0, Some(big.clone()))]);
        let all = apply(resp(), &asked, &grant(usize::MAX));
        assert_eq!(all.wire_used, all.total);
        assert!(!all.compact());
        // Less than half of a response above the threshold taken (here nothing): compact.
        let small_take = apply(resp(), &asked, &grant(0));
        assert_eq!(small_take.wire_used, 0);
        assert!(small_take.compact());
    }

    /// KIP-392: a leader naming another replica (and sending no records) sends the partition there; a replica
    /// without the position sends it back to the leader instead of resetting it.
    #[test]
    fn a_named_replica_is_followed_and_an_offset_it_lacks_goes_back_to_the_leader() {
        let tps: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new("t", p)).collect();
        let mut asked = asked_from_zero(&tps);
        asked[3].on_replica = true;
        let named = |p: i32, replica: i32, records: Option<Bytes>| FetchPartition {
            preferred_read_replica: replica,
            ..partition(p, 0, records)
        };
        let resp = response(vec![
            named(0, 2, None),
            // Naming the broker that answered, or sending records: nothing to follow.
            named(1, 1, Some(batch(0, 3, 10))),
            named(2, -1, Some(batch(0, 3, 10))),
            partition(3, KafkaCode::OffsetOutOfRange.code(), None),
        ]);
        let applied = apply(resp, &asked, &grant(1 << 20));
        assert!(matches!(applied.partitions[0].0, Outcome::Redirect(2)));
        assert!(matches!(&applied.partitions[1].0, Outcome::Records(d) if d.records.len() == 3));
        assert!(matches!(&applied.partitions[2].0, Outcome::Records(d) if d.records.len() == 3));
        assert!(matches!(
            applied.partitions[3].0,
            Outcome::Reroute(KafkaCode::OffsetOutOfRange)
        ));
        // From the leader, out of range is a reset.
        asked[3].on_replica = false;
        let resp = response(vec![partition(3, KafkaCode::OffsetOutOfRange.code(), None)]);
        let applied = apply(resp, &asked[3..], &grant(1 << 20));
        assert!(matches!(applied.partitions[0].0, Outcome::Reset));
    }

    #[test]
    fn sizes_move_as_documented() {
        assert_eq!(next_batch_floor(1024, 0), None);
        assert_eq!(next_batch_floor(1024, 4096), Some(4096));
        assert_eq!(next_batch_floor(25_600, 100), Some(25_500));
        assert_eq!(next_memory_per_wire_milli(1000, 10, 0), None);
        // 3x the wire size in memory, weighed 1/8 against 1.0.
        assert_eq!(next_memory_per_wire_milli(1000, 300, 100), Some(1250));
        // Below 1.0 counts as 1.0; above 100 as 100.
        assert_eq!(next_memory_per_wire_milli(1000, 1, 100), Some(1000));
        assert_eq!(next_memory_per_wire_milli(1000, 1_000_000, 1), Some(13_375));
        // The first measure is taken whole.
        assert_eq!(next_memory_per_wire_milli(0, 300, 100), Some(3000));
        assert_eq!(next_memory_per_wire_milli(0, 10, 0), None);
    }

    /// KIP-951: NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH with a leader named at a newer epoch than the one
    /// fetched at moves the partition there; without a hint, or with one no newer, it is rerouted through
    /// metadata. Topic ids unknown to the broker or inconsistent with its own are rerouted too.
    #[test]
    fn a_newer_leader_hint_moves_the_partition_and_anything_else_reroutes() {
        use weir_proto::leader_hint::CurrentLeader;
        let tps: Vec<TopicPartition> = (0..7).map(|p| TopicPartition::new("t", p)).collect();
        let asked = asked_from_zero(&tps); // at leader epoch 3
        let hinted = |p: i32, code: KafkaCode, leader_id: i32, leader_epoch: i32| FetchPartition {
            current_leader: Some(CurrentLeader {
                leader_id,
                leader_epoch,
            }),
            ..partition(p, code.code(), None)
        };
        let resp = response(vec![
            hinted(0, KafkaCode::NotLeaderOrFollower, 2, 4),
            hinted(1, KafkaCode::FencedLeaderEpoch, 3, 7),
            hinted(2, KafkaCode::NotLeaderOrFollower, 2, 3),
            partition(3, KafkaCode::NotLeaderOrFollower.code(), None),
            // A hint with an error that is not about leadership is not followed.
            hinted(4, KafkaCode::UnknownTopicOrPartition, 2, 9),
            partition(5, KafkaCode::UnknownTopicId.code(), None),
            partition(6, KafkaCode::InconsistentTopicId.code(), None),
        ]);
        let applied = apply(resp, &asked, &grant(1 << 20));
        let outcomes: Vec<String> = applied
            .partitions
            .iter()
            .map(|(o, _)| match o {
                Outcome::MoveTo { leader, epoch } => format!("move {leader}@{epoch}"),
                Outcome::Reroute(code) => format!("reroute {code}"),
                _ => "other".into(),
            })
            .collect();
        let want = [
            "move 2@4".to_string(),
            "move 3@7".into(),
            format!("reroute {}", KafkaCode::NotLeaderOrFollower),
            format!("reroute {}", KafkaCode::NotLeaderOrFollower),
            format!("reroute {}", KafkaCode::UnknownTopicOrPartition),
            format!("reroute {}", KafkaCode::UnknownTopicId),
            format!("reroute {}", KafkaCode::InconsistentTopicId),
        ];
        assert_eq!(outcomes, want);
    }
}
