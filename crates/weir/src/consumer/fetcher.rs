//! One fetch planner per leader broker: begins fetches for partitions that became fetchable (its ready queue,
//! no scan), keeps up to `fetches_in_flight` requests outstanding (read-ahead), applies responses.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tracing::field::Empty;
use tracing::Instrument;
use weir_proto::fetch::{
    FetchPartitionRequest, FetchRequest, FetchResponse, FetchTopicRequest, ForgottenTopicRequest,
    FETCH_TOPIC_ID_VERSION,
};
use weir_proto::leader_hint::{CurrentLeader, NodeEndpoint};

use super::fetch_apply::{self, next_batch_floor, next_memory_per_wire_milli, Asked, Grant, Outcome};
use super::partition::{Partition, PartitionSlot};
use super::session::{FetchAt, FetchSession};
use super::signal::Signal;
use super::state_table::{FetchGroup, FetchGroupId, FetchOutcome, FetchTicket};
use super::validation::Due;
use super::IsolationLevel;
use super::{record, Inner};
use crate::cluster::LeaderHint;
use crate::error::{KafkaCode, Result};
use crate::net::metrics::ConnectionMetrics;

pub(crate) struct Fetcher {
    pub(crate) broker: i32,
    pub(crate) group: Arc<FetchGroup<PartitionSlot>>,
    /// Woken when the ready queue goes from empty to non-empty, when budget is freed, and on close.
    pub(crate) wake: Arc<Signal>,
}

type Planned = Vec<(Arc<Partition>, FetchTicket)>;
/// Requests to send on the free regular lanes, and one on the express lane: partitions and budget reserved.
type Plans = (Vec<(Planned, usize)>, Option<(Planned, usize)>);

impl Fetcher {
    pub(crate) async fn run(self: Arc<Self>, inner: Arc<Inner>) {
        let mut in_flight = FuturesUnordered::new();
        let mut scratch = Vec::new();
        // One fetch session per request that may be in flight: a session's requests go one at a time.
        // Each lane has its own connection too, so the broker serves the lanes' fetches in parallel.
        let lanes = inner.cfg.fetches_in_flight.min(254);
        let mut sessions: Vec<(u8, FetchSession)> = (1..=lanes)
            .map(|lane| (lane as u8, FetchSession::default()))
            .collect();
        // The express lane, for partitions with records waiting at the broker when every lane is in flight:
        // the lanes may all be long-polling caught-up partitions, which the broker holds for up to the max
        // wait, and a partition that resumes (drained below its low watermark, or resumed by the
        // application) must not wait for them.
        let express_lane = (lanes + 1) as u8;
        let mut express = Some((express_lane, FetchSession::default()));
        // Partitions taken from the ready queue while only the express lane was free, and caught up: they
        // wait here, tickets held, for the next regular lane.
        let mut waiting: Planned = Vec::new();
        loop {
            if inner.is_closed() {
                break;
            }
            let (plans, express_plan) =
                tracing::trace_span!("fetch_plan", broker = self.broker).in_scope(|| {
                    self.plan(
                        &inner,
                        &mut scratch,
                        sessions.len(),
                        express.is_some(),
                        &mut waiting,
                    )
                });
            let sends = plans
                .into_iter()
                .map(|plan| (plan, sessions.pop().expect("one plan per free session")))
                .chain(express_plan.map(|plan| (plan, express.take().expect("express lane free"))));
            for ((planned, grant), (lane, mut session)) in sends {
                let inner2 = inner.clone();
                let broker = self.broker;
                // One span per request, from planning to applying its response: its records can be followed
                // from here to `poll` by the trace events inside ("buffered", then "delivered").
                let span = tracing::debug_span!(
                    "fetch",
                    broker,
                    lane,
                    partitions = planned.len(),
                    grant,
                    bytes = Empty,
                    records = Empty,
                    kept = Empty
                );
                in_flight.push(
                    async move {
                        let result = send_fetch(&inner2, broker, lane, &planned, grant, &mut session).await;
                        (planned, grant, result, (lane, session), tracing::Span::current())
                    }
                    .instrument(span),
                );
            }
            tokio::select! {
                _ = self.wake.wait() => {}
                Some((planned, grant, result, session, span)) = in_flight.next(), if !in_flight.is_empty() => {
                    if session.0 == express_lane {
                        express = Some(session);
                    } else {
                        sessions.push(session);
                    }
                    self.apply(&inner, planned, grant, result).instrument(span).await;
                    inner.table.release_budget(grant);
                }
            }
        }
        // Closing: in-flight requests are dropped with the stream; their responses are discarded by the
        // connection. Nothing surfaces to the application.
        inner.table.reroute(self.group.id());
    }

    /// Begins fetches for every ready partition, within the byte budget, spread over up to `lanes` requests
    /// (read-ahead keeps several in flight; splitting also bounds what a broker that ignores per-partition
    /// limits can send for one partition). Each request's reservation, and so its `max_bytes`, is what its
    /// partitions can still buffer, so one fetch never takes the whole budget.
    ///
    /// With no regular lane free but the express lane, only partitions behind their high watermark (records
    /// waiting at the broker) are fetched, on the express lane; caught-up ones go to `waiting` for the next
    /// regular lane.
    fn plan(
        &self,
        inner: &Arc<Inner>,
        scratch: &mut Vec<Arc<Partition>>,
        lanes: usize,
        express_free: bool,
        waiting: &mut Planned,
    ) -> Plans {
        if (lanes == 0 && !express_free) || (self.group.is_empty() && waiting.is_empty()) {
            return (Vec::new(), None);
        }
        // Less budget than one batch costs brings nothing back: the partitions would be fetched again and again
        // for a batch none of them can take. Wait until the application frees some.
        let least = least_grant(inner);
        if inner.table.budget_available() < least && inner.table.wait_for_budget() < least {
            return (Vec::new(), None); // Woken when budget is released.
        }
        // Waiting partitions paused (or held) since they were taken leave the plan: they must not join a session
        // while stopped; resuming makes them ready again.
        let mut ready: Planned = Vec::with_capacity(waiting.len());
        for (p, ticket) in waiting.drain(..) {
            match p.is_stopped() {
                true => p.end_fetch(ticket),
                false => ready.push((p, ticket)),
            }
        }
        let mut validate: Vec<Due> = Vec::new();
        self.group.poll_ready(scratch, |p, ticket| {
            // After a leader change, a position with a known epoch is validated before it is fetched again.
            let s = p.slot();
            let due = s.validate.load(Ordering::Relaxed) && s.validate.swap(false, Ordering::Relaxed);
            match s.fetched_epoch(ticket.epoch).filter(|_| due) {
                Some(fetched_epoch) => {
                    p.park(ticket);
                    validate.push(Due {
                        partition: Arc::clone(p),
                        ticket,
                        fetched_epoch,
                    });
                }
                None => ready.push((Arc::clone(p), ticket)),
            }
        });
        if !validate.is_empty() {
            inner.spawn_validation(validate);
        }
        if lanes == 0 {
            let (behind, caught_up): (Planned, Planned) = ready.into_iter().partition(|(p, ticket)| {
                let hw = p.slot().log_end.load(Ordering::Relaxed);
                hw < 0 || ticket.position < hw
            });
            *waiting = caught_up;
            if behind.is_empty() {
                return (Vec::new(), None);
            }
            return match self.reserve(inner, &behind) {
                0 => {
                    waiting.extend(behind);
                    (Vec::new(), None)
                }
                grant => (Vec::new(), Some((behind, grant))),
            };
        }
        let n = lanes.min(ready.len());
        let mut chunks: Vec<Planned> = (0..n).map(|_| Vec::new()).collect();
        for (i, p) in ready.into_iter().enumerate() {
            chunks[i % n].push(p);
        }
        let mut out = Vec::with_capacity(n);
        for planned in chunks {
            let grant = self.reserve(inner, &planned);
            if grant == 0 {
                // The budget ran out meanwhile: put these partitions back.
                for (p, ticket) in planned {
                    p.end_fetch(ticket);
                }
                continue;
            }
            out.push((planned, grant));
        }
        (out, None)
    }

    /// Reserves budget for a fetch of `planned`: what its partitions can still buffer (0 if none is left, or
    /// less than what they can take, up to one batch: see [`least_grant`]).
    fn reserve(&self, inner: &Inner, planned: &Planned) -> usize {
        let rooms: usize = planned.iter().map(|(slot, _)| room(slot)).sum();
        let want = rooms.clamp(1, inner.cfg.fetch_max_bytes.min(i32::MAX as usize));
        let grant = inner.table.reserve_budget(want);
        if grant < least_grant(inner).min(want) {
            inner.table.release_budget(grant);
            return 0;
        }
        grant
    }

    async fn apply(&self, inner: &Arc<Inner>, planned: Planned, grant: usize, result: Result<FetchResponse>) {
        let mut resp = match result {
            Ok(r) if r.error_code == 0 => r,
            other => {
                // Connection lost, timeout, or a whole-request error: quiet, and retried after a backoff.
                match &other {
                    Err(e) => tracing::debug!(broker = self.broker, error = %e, "fetch failed; retrying"),
                    Ok(r) => {
                        tracing::debug!(broker = self.broker, code = r.error_code, "fetch error; retrying")
                    }
                }
                tokio::time::sleep(inner.cfg.client.retry_backoff).await;
                for (p, ticket) in planned {
                    p.slot().stale_leader.store(true, Ordering::Relaxed);
                    p.set_fetch_group(FetchGroupId::UNROUTED);
                    p.end_fetch(ticket);
                }
                return;
            }
        };
        inner.stats.fetches.fetch_add(1, Ordering::Relaxed);
        inner.metrics.fetches.increment(1);
        let asked: Vec<Asked> = planned
            .iter()
            .map(|(slot, ticket)| Asked {
                tp: slot.topic_partition(),
                position: ticket.position,
                room: room(slot),
                drained: slot.buffered_bytes() <= slot.watermarks().1,
                epoch: ticket.epoch,
                crc_streak: slot.slot().crc_streak.load(),
                on_replica: slot.slot().replica_until_ms.load(Ordering::Relaxed) != 0,
                leader_epoch: slot.slot().leader_epoch.load(Ordering::Relaxed),
            })
            .collect();
        let endpoints = std::mem::take(&mut resp.node_endpoints);
        let limit = inner.cfg.partition_buffer.max(inner.cfg.fetch_max_bytes);
        let applied = fetch_apply::apply(
            resp,
            &asked,
            &Grant {
                broker: self.broker,
                bytes: grant,
                nothing_buffered: inner.table.buffered_total() == 0,
                max_decompressed: limit,
                oversize_cut: OVERSIZE_CUT.max(limit),
                check_crcs: inner.cfg.check_crcs,
                read_committed: inner.cfg.isolation_level == IsolationLevel::ReadCommitted,
                borrow: &|n| inner.table.try_reserve_exact(n),
            },
        );
        drop(asked);
        let borrowed = applied.borrowed;
        let span = tracing::Span::current();
        span.record("bytes", applied.total);
        span.record("kept", applied.kept);
        inner
            .stats
            .bytes_fetched
            .fetch_add(applied.wire_used as u64, Ordering::Relaxed);
        if let Some(floor) =
            next_batch_floor(inner.batch_floor.load(Ordering::Relaxed), applied.largest_batch)
        {
            inner.batch_floor.store(floor, Ordering::Relaxed);
        }
        let old = inner.memory_per_wire_milli.load(Ordering::Relaxed);
        if let Some(cost) = next_memory_per_wire_milli(old, applied.kept, applied.wire_used) {
            inner.memory_per_wire_milli.store(cost, Ordering::Relaxed);
        }
        let compact = applied.compact();
        let moved = self.follow_hints(inner, &planned, &applied.partitions, &endpoints);
        // Partitions queued for delivery by this response wake a waiting `poll` once, at the end.
        let mut wake = false;
        let mut records = 0;
        for (((slot, ticket), (outcome, marks)), moved) in
            planned.into_iter().zip(applied.partitions).zip(moved)
        {
            let s = slot.slot();
            if let Some(end) = marks.end {
                s.log_end.store(end, Ordering::SeqCst);
            }
            if let Some(hw) = marks.high_watermark {
                s.high_watermark.store(hw, Ordering::Relaxed);
            }
            if let Some(lso) = marks.last_stable_offset {
                s.last_stable_offset.store(lso, Ordering::Relaxed);
            }
            let (mut decoded, refetch) = match outcome {
                Outcome::Missing => {
                    slot.end_fetch(ticket);
                    continue;
                }
                Outcome::Reset => {
                    slot.park(ticket);
                    inner.spawn_offset_reset(slot.clone(), ticket.position);
                    continue;
                }
                Outcome::MoveTo { leader, epoch } if moved => {
                    tracing::debug!(tp = %slot.topic_partition(), from = self.broker, leader, epoch,
                        "moved to the leader the broker named");
                    inner.stats.leader_hint_moves.fetch_add(1, Ordering::Relaxed);
                    let was = s.leader_epoch.swap(epoch, Ordering::Relaxed);
                    if was >= 0 && was != epoch {
                        // A new leader: its log may have diverged from the one fetched (KIP-320), as when the
                        // router moves it.
                        s.validate.store(true, Ordering::Relaxed);
                    }
                    s.replica_until_ms.store(0, Ordering::Relaxed);
                    slot.set_fetch_group(inner.fetcher(leader).group.id());
                    slot.end_fetch(ticket);
                    continue;
                }
                Outcome::MoveTo { leader, epoch } => {
                    tracing::debug!(tp = %slot.topic_partition(), leader, epoch,
                        "the leader the broker named is not reachable from what is known; partition needs new metadata");
                    slot.slot().stale_leader.store(true, Ordering::Relaxed);
                    slot.set_fetch_group(FetchGroupId::UNROUTED);
                    slot.end_fetch(ticket);
                    continue;
                }
                Outcome::Reroute(code) => {
                    tracing::debug!(tp = %slot.topic_partition(), %code, "partition needs new metadata");
                    slot.slot().stale_leader.store(true, Ordering::Relaxed);
                    slot.set_fetch_group(FetchGroupId::UNROUTED);
                    slot.end_fetch(ticket);
                    continue;
                }
                Outcome::Redirect(replica) => {
                    // Until the metadata's age limit: then its leader is asked again (as the Java client).
                    let until =
                        unix_ms().saturating_add(inner.cfg.client.metadata_max_age.as_millis() as u64);
                    tracing::debug!(tp = %slot.topic_partition(), replica, "fetching from the replica the leader named");
                    s.replica_until_ms.store(until.max(1), Ordering::Relaxed);
                    slot.set_fetch_group(inner.fetcher(replica).group.id());
                    slot.end_fetch(ticket);
                    continue;
                }
                Outcome::Fail(e) => {
                    inner.report(e);
                    slot.park(ticket);
                    continue;
                }
                Outcome::Records(decoded) => (decoded, None),
                Outcome::Refetch { decoded, streak } => (decoded, Some(streak)),
            };
            let n = decoded.records.len();
            records += n;
            s.fetches.fetch_add(1, Ordering::Relaxed);
            s.fetched_from.store(self.broker, Ordering::Relaxed);
            let on_replica_until = s.replica_until_ms.load(Ordering::Relaxed);
            if on_replica_until != 0 && unix_ms() >= on_replica_until {
                // Back to the leader, which names a replica again (or not).
                s.replica_until_ms.store(0, Ordering::Relaxed);
                slot.set_fetch_group(FetchGroupId::UNROUTED);
            }
            if n > 0 {
                s.records_fetched.fetch_add(n as u64, Ordering::Relaxed);
                let tp = slot.topic_partition();
                tracing::trace!(topic = %tp.topic, partition = tp.partition, epoch = ticket.epoch,
                    first = decoded.records[0].offset, last = decoded.records[n - 1].offset, records = n,
                    bytes = decoded.bytes, "buffered");
            }
            if compact {
                record::compact(&mut decoded.records);
            }
            let outcome = FetchOutcome {
                next_position: decoded.next_offset,
                bytes: decoded.bytes as u64,
                left_for_room: decoded.left_for_room,
            };
            let has_records = !decoded.records.is_empty();
            let end = decoded.next_offset;
            if decoded.last_epoch >= 0 {
                s.set_fetched_epoch(ticket.epoch, decoded.last_epoch);
            }
            if let Some(streak) = refetch {
                // A batch failed its CRC, with fetches left: what came before it is taken as from any fetch,
                // then the batch is fetched again after the backoff. The streak is stored before the ticket
                // goes back, for whoever holds the next one.
                s.crc_streak.store(streak);
                if let Some(err) = decoded.error.take() {
                    tracing::warn!(error = %err, fetches = streak.fetches, "damaged batch; fetching it again");
                }
            }
            if let Some(err) = decoded.error {
                // Deliver what came before the bad batch, then stop this partition until a seek.
                if slot.finish_fetch(ticket, outcome) && has_records {
                    slot.append(ticket.epoch, decoded.records, end);
                    wake |= inner.ready(&slot);
                }
                inner.report(err);
                if let Some(t) = slot.try_begin_fetch() {
                    slot.park(t);
                }
                continue;
            }
            if slot.finish_fetch(ticket, outcome) {
                if slot.snapshot().backpressured && !slot.slot().backpressured.swap(true, Ordering::Relaxed) {
                    inner.stats.backpressure_pauses.fetch_add(1, Ordering::Relaxed);
                }
                if !has_records {
                    slot.pass_over(ticket.epoch, end);
                } else if slot.append(ticket.epoch, decoded.records, end) {
                    wake |= inner.ready(&slot);
                }
            }
            if refetch.is_some() {
                refetch_after(slot, inner.cfg.client.retry_backoff);
            }
        }
        inner
            .stats
            .records_fetched
            .fetch_add(records as u64, Ordering::Relaxed);
        span.record("records", records);
        // What was borrowed is buffered now (or was dropped): back to the budget, as the grant is after this.
        inner.table.release_budget(borrowed);
        inner.wake_delivery(wake);
    }
}

impl Fetcher {
    /// Applies the new-leader hints among `outcomes` (KIP-951) to the metadata snapshot, with the endpoints the
    /// response named; returns, per partition, whether it now moves to the leader its hint names: the snapshot
    /// has that leader at that epoch, and its address.
    fn follow_hints(
        &self,
        inner: &Inner,
        planned: &Planned,
        outcomes: &[(Outcome, fetch_apply::Marks)],
        endpoints: &[NodeEndpoint],
    ) -> Vec<bool> {
        let hints: Vec<LeaderHint> = planned
            .iter()
            .zip(outcomes)
            .filter_map(|((p, _), (o, _))| match *o {
                Outcome::MoveTo { leader, epoch } => Some(LeaderHint {
                    topic: &p.topic_partition().topic,
                    partition: p.topic_partition().partition,
                    leader: CurrentLeader {
                        leader_id: leader,
                        leader_epoch: epoch,
                    },
                }),
                _ => None,
            })
            .collect();
        if hints.is_empty() {
            return vec![false; outcomes.len()];
        }
        inner.cluster.apply_leader_hints(&hints, endpoints);
        let snap = inner.cluster.snapshot();
        planned
            .iter()
            .zip(outcomes)
            .map(|((p, _), (o, _))| match *o {
                Outcome::MoveTo { leader, epoch } => {
                    let tp = p.topic_partition();
                    snap.brokers.contains_key(&leader)
                        && snap.topic(&tp.topic).is_some_and(|t| {
                            t.partition(tp.partition)
                                .is_some_and(|m| m.leader == leader && m.leader_epoch == epoch)
                        })
                }
                _ => false,
            })
            .collect()
    }
}

/// Holds `p` back from fetching for `backoff`, then lets it be fetched again from its position. Its ticket is
/// parked meanwhile, so a seek or unassign still takes effect at once. A partition that cannot be held (paused,
/// or its fetch begun elsewhere) is fetched again whenever it can be: the attempts stay bounded, each fetch
/// counting one.
fn refetch_after(p: Arc<Partition>, backoff: Duration) {
    let Some(ticket) = p.try_begin_fetch() else {
        return;
    };
    p.park(ticket);
    tokio::spawn(async move {
        tokio::time::sleep(backoff).await;
        p.unpark(ticket);
    });
}

/// Now, in ms since the Unix epoch (the clock of a replica choice's expiry; coarse is enough).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Bytes `p` can still buffer before its high watermark (its own, rate-sized, or the fair share in force now):
/// its credit.
fn room(p: &Partition) -> usize {
    p.watermarks().0.saturating_sub(p.buffered_bytes()) as usize
}

/// The least grant worth a fetch: what the largest batch seen lately costs in memory (at least 1 byte).
fn least_grant(inner: &Inner) -> usize {
    let batch = inner.batch_floor.load(Ordering::Relaxed) as u128;
    let per_wire = memory_per_wire_milli(inner) as u128;
    (batch * per_wire / 1000).clamp(1, inner.table.budget_limit() as u128) as usize
}

/// What a wire byte costs in memory, in thousandths: the measured average, 1.0 until one is measured.
fn memory_per_wire_milli(inner: &Inner) -> u64 {
    match inner.memory_per_wire_milli.load(Ordering::Relaxed) {
        0 => 1000,
        measured => measured,
    }
}

/// Memory one batch may take beyond the budget when nothing else is buffered (see `DecodeLimits::oversize_cut`).
const OVERSIZE_CUT: usize = 64 << 20;

/// The response size to ask for so that its records fit a memory `grant`: the grant divided by what a wire
/// byte has recently cost in memory (records of small values cost several times their wire size).
fn wire_budget(inner: &Inner, grant: usize) -> i32 {
    let per_wire = memory_per_wire_milli(inner);
    let cap = inner.cfg.fetch_max_bytes.min(i32::MAX as usize) as u128;
    (grant as u128 * 1000 / per_wire as u128).clamp(1, cap.max(1)) as i32
}

/// The most bytes a fetch asks of one partition (`partition_max_bytes`): its credit, what it can still buffer,
/// in wire bytes, but at least the largest batch seen lately. A broker returns a batch larger than a partition's
/// ask whole only for the first partition of a response and nothing for the others, so asking less than a
/// batch would move one partition per fetch. The request's total `max_bytes` still bounds the response, so the
/// budget holds; a partition's buffer passes its high watermark by at most one batch, as always. The credit is
/// rounded down to its three highest bits (1, 1.25, 1.5 or 1.75 times a power of two, at most a quarter less):
/// what the broker sends fits (batches sent and then left for lack of room are sent again), and the ask changes
/// rarely (a change lists the partition in the fetch session again).
fn partition_ask(inner: &Inner, credit: usize) -> i32 {
    let credit = wire_budget(inner, credit.min(i32::MAX as usize)) as u64;
    let floor = inner.batch_floor.load(Ordering::Relaxed);
    let cap = inner.cfg.fetch_max_bytes.clamp(1, i32::MAX as usize) as u64;
    let rounded = credit & !((1u64 << (63 - credit.max(1).leading_zeros())) / 4).saturating_sub(1);
    rounded.max(floor).max(1).min(cap) as i32
}

async fn send_fetch(
    inner: &Inner,
    broker: i32,
    lane: u8,
    planned: &Planned,
    grant: usize,
    session: &mut FetchSession,
) -> Result<FetchResponse> {
    let conn = match inner.cluster.lane_link(broker, lane)?.get().await {
        Ok(c) => c,
        Err(e) => {
            session.reset();
            return Err(e);
        }
    };
    let version = conn.version::<FetchRequest>()?;
    if version < 7 {
        *session = FetchSession::disabled();
    }
    // Topic ids from the metadata the partitions were routed by. Fetch v13+ names topics by id; a request with
    // a topic whose id is not known (a broker without Metadata v10, or a topic gone from the metadata) names
    // them all by name, at v12 at most: nothing waits for a refresh, and the broker answers as before.
    let snap = inner.cluster.snapshot();
    let mut ids: HashMap<&str, [u8; 16]> = HashMap::new();
    for (p, _) in planned {
        let topic = &*p.topic_partition().topic;
        ids.entry(topic)
            .or_insert_with(|| snap.topic(topic).map_or(NO_TOPIC_ID, |t| t.topic_id));
    }
    let by_id = version >= FETCH_TOPIC_ID_VERSION && ids.values().all(|id| *id != NO_TOPIC_ID);
    let wanted: Vec<_> = planned
        .iter()
        .map(|(p, t)| {
            let tp = p.topic_partition();
            let at = FetchAt {
                topic_id: if by_id { ids[&*tp.topic] } else { NO_TOPIC_ID },
                offset: t.position,
                max_bytes: partition_ask(inner, room(p)),
                leader_epoch: p.slot().leader_epoch.load(Ordering::Relaxed),
            };
            (tp.clone(), at)
        })
        .collect();
    let plan = session.prepare(&wanted, by_id);
    let mut topics: BTreeMap<&str, FetchTopicRequest> = BTreeMap::new();
    for (tp, at) in &plan.send {
        let topic = topics.entry(&tp.topic).or_insert_with(|| FetchTopicRequest {
            name: tp.topic.to_string(),
            topic_id: at.topic_id,
            partitions: Vec::new(),
        });
        topic.partitions.push(FetchPartitionRequest {
            partition: tp.partition,
            fetch_offset: at.offset,
            max_bytes: at.max_bytes,
            current_leader_epoch: at.leader_epoch,
        });
    }
    // Keyed by id too: a topic recreated under its name is forgotten under the id the session holds.
    let mut forgotten: BTreeMap<(&str, [u8; 16]), Vec<i32>> = BTreeMap::new();
    for (tp, id) in &plan.forgotten {
        forgotten.entry((&tp.topic, *id)).or_default().push(tp.partition);
    }
    let req = FetchRequest {
        max_wait_ms: inner.cfg.fetch_max_wait.as_millis().min(i32::MAX as u128) as i32,
        min_bytes: inner.cfg.fetch_min_bytes,
        max_bytes: wire_budget(inner, grant),
        isolation_level: inner.cfg.isolation_level.wire(),
        session_id: plan.session_id,
        session_epoch: plan.epoch,
        topics: topics.into_values().collect(),
        forgotten: forgotten
            .into_iter()
            .map(|((name, topic_id), partitions)| ForgottenTopicRequest {
                name: name.to_owned(),
                topic_id,
                partitions,
            })
            .collect(),
        rack_id: inner.cfg.client_rack.clone().unwrap_or_default(),
    };
    let sent = std::time::Instant::now();
    let response = match by_id {
        true => conn.call(&req).await,
        false => conn.call_capped(&req, FETCH_TOPIC_ID_VERSION - 1).await,
    };
    match response {
        Ok(mut resp) => {
            if by_id {
                name_topics(&mut resp, &ids);
            }
            count_errors(conn.metrics(), &resp);
            if resp.error_code == 0 {
                // Counted with the fetch (`fetch_total`, `ConsumerStats::fetches`) when it is applied.
                inner.metrics.fetch_latency.record(sent.elapsed().as_secs_f64());
            }
            let stats = &inner.stats;
            match KafkaCode::from_code(resp.error_code) {
                None if plan.epoch > 0 => {
                    stats.incremental_fetches.fetch_add(1, Ordering::Relaxed);
                    stats
                        .forgotten_partitions
                        .fetch_add(plan.forgotten.len() as u64, Ordering::Relaxed);
                }
                Some(KafkaCode::FetchSessionIdNotFound | KafkaCode::InvalidFetchSessionEpoch) => {
                    stats.fetch_session_errors.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
            session.on_response(resp.error_code, resp.session_id);
            if resp.session_id != 0 {
                tracing::trace!(
                    broker,
                    session = resp.session_id,
                    listed = plan.send.len(),
                    "fetch session"
                );
            }
            Ok(resp)
        }
        Err(e) => {
            session.reset();
            Err(e)
        }
    }
}

/// Names the topics of a response that named them by id, from the ids the request used. A topic whose id the
/// request did not name keeps an empty name: none of the partitions asked for matches it, and they are fetched
/// again (see `fetch_apply::Outcome::Missing`).
fn name_topics(resp: &mut FetchResponse, ids: &HashMap<&str, [u8; 16]>) {
    let by_id: HashMap<[u8; 16], &str> = ids.iter().map(|(name, id)| (*id, *name)).collect();
    for t in &mut resp.topics {
        if let Some(name) = by_id.get(&t.topic_id) {
            t.name = (*name).to_owned();
        }
    }
}

/// The topic id of a topic whose id is not known.
const NO_TOPIC_ID: [u8; 16] = [0; 16];

/// Counts the error codes of a Fetch response in the request error metric
/// (`kafka.client.request_error_total`): its top-level code and each partition's, once per response as it
/// arrives, whatever becomes of it. One pass over the partitions and none over the records; the response type
/// reports none itself (see [`weir_proto::call::ErrorCodes`]).
fn count_errors(metrics: &ConnectionMetrics, resp: &FetchResponse) {
    let count = |code: i16| {
        if code != 0 {
            metrics.count_error::<FetchRequest>(code);
        }
    };
    count(resp.error_code);
    resp.topics
        .iter()
        .flat_map(|t| &t.partitions)
        .for_each(|p| count(p.error_code));
}
