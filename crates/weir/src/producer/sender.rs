//! The sender task: drains ready batches, groups them by leader, sends produce requests, handles responses.
//!
//! A batch whose leader's link waits out a reconnect backoff stays queued (as the Java client's sender leaves
//! batches of a leader that is not ready in its accumulator) while metadata is refreshed: it goes once the
//! backoff is over or the metadata names another leader, and neither the sender nor a send task ever waits
//! out a backoff with batches in flight.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use weir_proto::produce::{ProduceRequest, ProduceResponse};
use weir_proto::producer_id::InitProducerIdRequest;
use weir_proto::record::{batches, restamp, ProducerIds};
use weir_proto::txn::PRODUCE_MAX_VERSION_BEFORE_TV2;

use super::accumulator::{Accumulator, PendingBatch};
use super::delivery::BatchOutcome;
use crate::cluster::LeaderHint;
use crate::config::Acks;
use crate::error::{Error, KafkaCode, Result};
use crate::net::{Connection, LinkState};

/// A drained batch with where it goes.
struct Outbound {
    topic: Arc<str>,
    partition: i32,
    batch: PendingBatch,
}

pub(super) async fn run(acc: Arc<Accumulator>) {
    // A transactional producer gets its id from init_transactions.
    if acc.cfg.idempotence && acc.txn.is_none() {
        init_producer_id(&acc).await;
    }
    let refreshing = Arc::new(AtomicBool::new(false));
    let mut last_refresh: Option<Instant> = None;
    loop {
        let notified = acc.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if acc.reinit.load(Ordering::Acquire) && nothing_in_flight(&acc) && acc.txn.is_none() {
            new_epoch(&acc).await;
        }
        let (groups, mut next, refresh, to_add) = drain(&acc);
        acc.metrics.queued(acc.outstanding());
        if refresh {
            let now = Instant::now();
            let pending = refreshing.load(Ordering::Acquire);
            match refresh_wait(pending, last_refresh, acc.cfg.client.retry_backoff, now) {
                RefreshWait::Now => {
                    last_refresh = Some(now);
                    refreshing.store(true, Ordering::Release);
                    refresh_metadata_then(&acc, Some(refreshing.clone()));
                }
                // Its end wakes the sender.
                RefreshWait::Pending => {}
                RefreshWait::Until(at) => next = Some(next.map_or(at, |n| n.min(at))),
            }
        }
        if acc
            .txn
            .as_ref()
            .is_some_and(|t| !to_add.is_empty() && t.start_adding())
        {
            tokio::spawn(add_partitions(acc.clone(), to_add));
        }
        for (leader, batches) in groups {
            tokio::spawn(send_to(acc.clone(), leader, batches));
        }
        if acc.closed.load(Ordering::Acquire) && acc.outstanding() == 0 {
            return;
        }
        let deadline = next.unwrap_or_else(|| Instant::now() + Duration::from_millis(250));
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Refreshes metadata in the background, then wakes the sender (batches waiting for a leader may go).
fn refresh_metadata(acc: &Arc<Accumulator>) {
    refresh_metadata_then(acc, None);
}

/// [`refresh_metadata`], clearing `done` (if any) once the refresh is over, before the sender is woken.
fn refresh_metadata_then(acc: &Arc<Accumulator>, done: Option<Arc<AtomicBool>>) {
    let acc = acc.clone();
    tokio::spawn(async move {
        let _ = acc.cluster.refresh(false).await;
        if let Some(done) = done {
            done.store(false, Ordering::Release);
        }
        acc.wake.notify_one();
    });
}

/// When the sender's loop may start the metadata refresh its queued batches ask for (a leader unknown, or in
/// a reconnect backoff).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefreshWait {
    /// At once.
    Now,
    /// Not while the refresh it started last is under way: the end of that one wakes the sender.
    Pending,
    /// Not before this instant: at most one refresh per `retry.backoff.ms`, as the Java client's metadata
    /// refresh backoff, so that a leader that stays unknown or unreachable does not make the sender ask in a
    /// loop.
    Until(Instant),
}

/// When the sender may start a refresh, given whether its last one is `pending`, when it started (`last`),
/// and the minimum time between two (`backoff`).
fn refresh_wait(pending: bool, last: Option<Instant>, backoff: Duration, now: Instant) -> RefreshWait {
    if pending {
        return RefreshWait::Pending;
    }
    match last.map(|at| at + backoff) {
        Some(at) if at > now => RefreshWait::Until(at),
        _ => RefreshWait::Now,
    }
}

/// Whether a partition's ready batch may go to its leader, whose link is in `state` at `now`: `Err(at)` while
/// that link waits out a reconnect backoff. The batch then stays queued and the sender looks again at `at`:
/// when the backoff ends, or when the batch's delivery timeout does (`expires`), whichever is sooner; a
/// metadata refresh naming another leader wakes it before. Any other state lets the batch go (a connection
/// attempt under way is waited for by its send task, not by the sender).
fn leader_ready(state: LinkState, now: Instant, expires: Instant) -> std::result::Result<(), Instant> {
    match state {
        LinkState::Backoff { until } if until > now => Err(until.min(expires)),
        _ => Ok(()),
    }
}

fn nothing_in_flight(acc: &Accumulator) -> bool {
    acc.state
        .lock()
        .unwrap()
        .partitions
        .values()
        .all(|q| !q.in_flight)
}

/// Starts a new producer epoch after a batch with sequence numbers failed for good (the broker would refuse
/// every later sequence of that partition): a fresh InitProducerId, then every queued batch renumbered from 0
/// per partition, already-sealed retries restamped in place.
async fn new_epoch(acc: &Accumulator) {
    *acc.ids.lock().unwrap() = ProducerIds::NONE;
    init_producer_id(acc).await;
    let ids = *acc.ids.lock().unwrap();
    let mut st = acc.state.lock().unwrap();
    for q in st.partitions.values_mut() {
        let mut seq = 0i32;
        for b in q.batches.iter_mut() {
            let Some(bytes) = &b.sealed else { continue };
            let count = batches(bytes.clone())
                .next()
                .and_then(|r| r.ok())
                .map_or(0, |b| b.record_count());
            match restamp(
                bytes,
                ProducerIds {
                    base_sequence: seq,
                    ..ids
                },
            ) {
                Ok(fresh) => b.sealed = Some(fresh),
                Err(e) => tracing::warn!(error = %e, "cannot restamp a queued batch"),
            }
            seq = seq.wrapping_add(count) & i32::MAX;
        }
        q.next_sequence = seq;
    }
    drop(st);
    acc.reinit.store(false, Ordering::Release);
    tracing::debug!(
        producer_id = ids.producer_id,
        epoch = ids.producer_epoch,
        "new producer epoch"
    );
}

async fn init_producer_id(acc: &Accumulator) {
    let req = InitProducerIdRequest::default();
    let mut backoff = acc.cfg.client.retry_backoff;
    loop {
        let result = async {
            let conn = acc.cluster.any_connection().await?;
            let resp = conn.call(&req).await?;
            crate::error::check(resp.error_code, || "InitProducerId".into())?;
            Ok::<_, Error>(ProducerIds {
                producer_id: resp.producer_id,
                producer_epoch: resp.producer_epoch,
                base_sequence: 0,
            })
        }
        .await;
        match result {
            Ok(ids) => {
                tracing::debug!(
                    producer_id = ids.producer_id,
                    epoch = ids.producer_epoch,
                    "idempotent producer ready"
                );
                *acc.ids.lock().unwrap() = ids;
                return;
            }
            Err(e) => {
                tracing::debug!(error = %e, "InitProducerId failed; retrying");
                let closed = acc.closed.load(Ordering::Acquire);
                if closed || !e.is_retriable() {
                    // Nothing can be sent without an id. A refusal (not allowed to write anywhere, credentials
                    // refused) fails what is queued at once, as the Java producer does, and what is queued later
                    // at the next attempt; on close, so that close() returns.
                    fail_all(acc, &e);
                    if closed && acc.outstanding() == 0 {
                        return;
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = acc.cfg.client.next_retry_backoff(backoff);
            }
        }
    }
}

/// Adds partitions to the open transaction, then wakes the sender (their batches may go) or, if that failed,
/// whoever waits for the transaction's records.
async fn add_partitions(acc: Arc<Accumulator>, partitions: Vec<(Arc<str>, i32)>) {
    let txn = acc.txn.as_ref().expect("a transactional producer");
    let ids = *acc.ids.lock().unwrap();
    if let Err(e) = txn.add_partitions(&acc.cluster, ids, partitions).await {
        tracing::debug!(error = %e, "AddPartitionsToTxn failed; the transaction must be aborted");
        acc.txn_failed(&e);
    }
    acc.wake.notify_one();
}

/// Fails every queued batch with `e` (nothing of them was sent).
pub(super) fn fail_all(acc: &Accumulator, e: &Error) {
    let batches: Vec<PendingBatch> = {
        let mut st = acc.state.lock().unwrap();
        st.partitions
            .values_mut()
            .flat_map(|q| q.batches.drain(..))
            .collect()
    };
    for b in batches {
        acc.complete(b, BatchOutcome::Failed(e.clone()));
    }
}

/// The resolution of tokio's timer.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// Takes every batch that is ready to go, grouped by leader; returns the next linger deadline and whether
/// metadata should be refreshed (a partition's leader is unknown, or its link in a reconnect backoff: such a
/// partition's batches stay queued, see [`leader_ready`]).
/// A transactional producer's batches go only to partitions added to the transaction: the others are returned
/// to be added.
#[allow(clippy::type_complexity)]
fn drain(
    acc: &Accumulator,
) -> (
    BTreeMap<i32, Vec<Outbound>>,
    Option<Instant>,
    bool,
    Vec<(Arc<str>, i32)>,
) {
    let now = Instant::now();
    let snap = acc.cluster.snapshot();
    let ids = *acc.ids.lock().unwrap();
    let mut groups: BTreeMap<i32, Vec<Outbound>> = BTreeMap::new();
    let mut next: Option<Instant> = None;
    let mut refresh = false;
    let mut expired = Vec::new();
    let mut closed = Vec::new();
    let mut to_add = Vec::new();
    let mut leader_states: BTreeMap<i32, LinkState> = BTreeMap::new();
    // Batches taken unsealed: (leader, index in its group, sequence numbers).
    let mut to_seal: Vec<(i32, usize, ProducerIds)> = Vec::new();
    let mut st = acc.state.lock().unwrap();
    let force = st.flushing > 0 || acc.closed.load(Ordering::Acquire);
    for ((topic, partition), q) in st.partitions.iter_mut() {
        if q.in_flight {
            continue;
        }
        let Some(head) = q.batches.front() else { continue };
        if head.created + acc.cfg.delivery_timeout <= now {
            let b = q.batches.pop_front().unwrap();
            if acc.cfg.idempotence && b.sealed.is_some() {
                acc.reinit.store(true, Ordering::Release); // its sequence numbers leave a gap
            }
            expired.push(b);
            continue;
        }
        if let Some(at) = head.retry_at.filter(|&at| at > now) {
            next = Some(next.map_or(at, |n| n.min(at)));
            continue;
        }
        // The timer fires on the first millisecond tick at or after its deadline: woken a tick early and taking
        // batches due within it, linger lasts at most `linger.ms` (an upper bound, as in the Java client), not up
        // to a millisecond more.
        let linger_end = head.created + acc.cfg.linger;
        let due = linger_end.checked_sub(TIMER_TICK).unwrap_or(linger_end);
        let ready = head.sealed.is_some() || head.full || force || q.batches.len() > 1 || due <= now;
        if !ready {
            next = Some(next.map_or(due, |n| n.min(due)));
            continue;
        }
        let Some(leader) = snap.topic(topic).and_then(|t| t.leader(*partition)) else {
            refresh = true;
            continue;
        };
        if acc.cfg.idempotence && (ids.producer_id < 0 || acc.reinit.load(Ordering::Acquire)) {
            continue; // InitProducerId has not completed yet, or a new epoch is about to start.
        }
        if let Some(txn) = &acc.txn {
            if !txn.may_write(topic, *partition, &mut to_add) {
                continue;
            }
        }
        let state = *leader_states.entry(leader).or_insert_with(|| {
            // A leader missing from the brokers of the metadata: its send fails and is retried as before.
            acc.cluster.link(leader).map_or(LinkState::Idle, |l| l.state(now))
        });
        if let Err(at) = leader_ready(state, now, head.created + acc.cfg.delivery_timeout) {
            refresh = true;
            next = Some(next.map_or(at, |n| n.min(at)));
            continue;
        }
        let batch = q.batches.pop_front().unwrap();
        if batch.sealed.is_none() {
            // Its sequence numbers are taken now, in partition order; it is sealed (compressed) after the lock
            // is released, so that appends are not held up by compression.
            let count = batch
                .builder
                .as_ref()
                .expect("unsealed batch has a builder")
                .len() as i32;
            let seq_ids = if acc.cfg.idempotence {
                ProducerIds {
                    base_sequence: q.next_sequence,
                    ..ids
                }
            } else {
                ProducerIds::NONE
            };
            q.next_sequence = q.next_sequence.wrapping_add(count) & i32::MAX;
            let at = groups.get(&leader).map_or(0, Vec::len);
            to_seal.push((leader, at, seq_ids));
        }
        q.in_flight = true;
        closed.push((topic.clone(), *partition));
        groups.entry(leader).or_default().push(Outbound {
            topic: topic.clone(),
            partition: *partition,
            batch,
        });
    }
    for (topic, partition) in closed {
        st.batch_closed(&topic, partition);
    }
    drop(st);
    let mut unsealable = Vec::new();
    for (leader, at, seq_ids) in to_seal {
        let o = &mut groups.get_mut(&leader).expect("grouped above")[at];
        let builder = o.batch.builder.take().expect("unsealed batch has a builder");
        match builder.seal(seq_ids) {
            Ok(bytes) => o.batch.sealed = Some(bytes),
            Err(e) => unsealable.push((leader, at, e)),
        }
    }
    // Never in practice (encoding into memory does not fail): the batch fails, its partition is free again,
    // and its sequence numbers leave a gap that a new epoch closes.
    for (leader, at, e) in unsealable.into_iter().rev() {
        let o = groups.get_mut(&leader).expect("grouped above").remove(at);
        {
            let mut st = acc.state.lock().unwrap();
            if let Some(q) = st.partitions.get_mut(&(o.topic.clone(), o.partition)) {
                q.in_flight = false;
            }
        }
        if acc.cfg.idempotence {
            acc.reinit.store(true, Ordering::Release);
        }
        let what = format!("record batch for {}-{}", o.topic, o.partition);
        acc.complete(
            o.batch,
            BatchOutcome::Failed(Error::Encode {
                what,
                source: e.into(),
            }),
        );
    }
    groups.retain(|_, v| !v.is_empty());
    for b in expired {
        let e = Error::Timeout {
            what: "record delivery".into(),
            after: acc.cfg.delivery_timeout,
        };
        acc.txn_failed(&e);
        acc.complete(b, BatchOutcome::Failed(e.clone()));
    }
    (groups, next, refresh, to_add)
}

async fn send_to(acc: Arc<Accumulator>, leader: i32, batches: Vec<Outbound>) {
    // The leader's link may have entered a backoff since the drain (an attempt to connect failed): the
    // batches go back to their queues unsent rather than wait for it.
    let conn = match acc.cluster.link(leader) {
        Ok(link) => link.get_unless_backoff().await,
        Err(e) => Some(Err(e)),
    };
    let conn = match conn {
        Some(Ok(conn)) => conn,
        Some(Err(e)) => return failed(&acc, leader, batches, e),
        None => {
            // The drain that follows keeps them queued and asks for a metadata refresh.
            tracing::debug!(
                leader,
                "leader in reconnect backoff; batches wait for it or a new leader"
            );
            return unsend(&acc, batches);
        }
    };
    let mut by_topic: BTreeMap<Arc<str>, Vec<(i32, Bytes)>> = BTreeMap::new();
    for o in &batches {
        let sealed = o
            .batch
            .sealed
            .clone()
            .expect("batches are sealed before they are sent");
        by_topic
            .entry(o.topic.clone())
            .or_default()
            .push((o.partition, sealed));
    }
    let first_sends = batches.iter().filter(|o| o.batch.attempts == 0).map(|o| {
        let bytes = o.batch.sealed.as_ref().map_or(0, Bytes::len);
        (bytes, o.batch.records)
    });
    let _in_flight = acc.metrics.request(batches.len(), first_sends);
    let req = ProduceRequest {
        transactional_id: acc.txn.as_ref().map(|t| t.id.clone()),
        acks: acc.cfg.acks.as_i16(),
        timeout_ms: acc.cfg.client.request_timeout.as_millis().min(i32::MAX as u128) as i32,
        topics: by_topic.into_iter().collect(),
    };
    let result: Result<Option<(ProduceResponse, Arc<Connection>)>> = async {
        if acc.cfg.acks == Acks::None {
            conn.send_unanswered(&req).await?;
            return Ok(None);
        }
        let sent = Instant::now();
        let resp = match acc.txn {
            // Transactions as every Kafka since 2.5 knows them (Produce v12 means KIP-890's version 2).
            Some(_) => conn.call_capped(&req, PRODUCE_MAX_VERSION_BEFORE_TV2).await?,
            None => conn.call(&req).await?,
        };
        acc.metrics.answered(sent.elapsed());
        Ok(Some((resp, conn)))
    }
    .await;
    let resp = match result {
        Ok(r) => r,
        Err(e) => return failed(&acc, leader, batches, e),
    };
    let Some((resp, conn)) = resp else {
        for o in batches {
            finish(&acc, o, -1);
        }
        return;
    };
    // New leaders the broker named for partitions it no longer leads (KIP-951): they move there at once, and
    // their batches go again without a backoff or a metadata round trip.
    let hints: Vec<LeaderHint> = resp
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
        .filter(|(_, p)| p.error_code == KafkaCode::NotLeaderOrFollower.code())
        .filter_map(|(t, p)| {
            Some(LeaderHint {
                topic: &t.name,
                partition: p.partition,
                leader: p.current_leader?,
            })
        })
        .collect();
    // Partitions whose hint holds; if one does not (a leader whose address is unknown), metadata is refreshed.
    let hinted: Vec<(&str, i32)> = match acc.cluster.apply_leader_hints(&hints, &resp.node_endpoints) {
        n if n == hints.len() => hints.iter().map(|h| (h.topic, h.partition)).collect(),
        _ => Vec::new(),
    };
    if !hints.is_empty() {
        tracing::debug!(
            leader,
            partitions = hints.len(),
            moved = hinted.len(),
            "partitions moved to the leaders the broker named"
        );
    }
    // Keyed by the names in the response, borrowed (see the fetcher: no allocation per partition).
    let mut outcome: BTreeMap<&str, BTreeMap<i32, _>> = BTreeMap::new();
    for t in &resp.topics {
        let parts = outcome.entry(t.name.as_str()).or_default();
        for p in &t.partitions {
            // The connection does not decode Produce responses twice: their errors are counted here.
            conn.metrics().count_error::<ProduceRequest>(p.error_code);
            parts.insert(
                p.partition,
                (p.error_code, p.base_offset, p.error_message.as_deref()),
            );
        }
    }
    for o in batches {
        match outcome.get(&*o.topic).and_then(|parts| parts.get(&o.partition)) {
            Some(&(0, base, _)) => finish(&acc, o, base),
            // Already written by an earlier attempt whose response was lost: delivered.
            Some(&(46, base, _)) => finish(&acc, o, base),
            Some((code, _, msg)) => {
                let err = Error::kafka(
                    *code,
                    format!(
                        "produce to {}-{}{}",
                        o.topic,
                        o.partition,
                        msg.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
                    ),
                );
                let code = KafkaCode::from_code(*code);
                let moved = hinted.contains(&(&*o.topic, o.partition));
                if !moved
                    && matches!(
                        code,
                        Some(
                            KafkaCode::NotLeaderOrFollower
                                | KafkaCode::UnknownTopicOrPartition
                                | KafkaCode::LeaderNotAvailable
                        )
                    )
                {
                    refresh_metadata(&acc);
                }
                retry_or_fail_after(&acc, o, err.is_retriable(), &err, !moved);
            }
            None => {
                let err = Error::Kafka {
                    code: KafkaCode::UnknownServerError,
                    context: format!("produce response lacks {}-{}", o.topic, o.partition),
                };
                retry_or_fail(&acc, o, true, &err);
            }
        }
    }
}

/// The produce request to `leader` failed as a whole (or its connection could not be made).
fn failed(acc: &Arc<Accumulator>, leader: i32, batches: Vec<Outbound>, e: Error) {
    tracing::debug!(leader, error = %e, "produce request failed; will retry");
    // The leader may have moved or gone: look again before the retry.
    refresh_metadata(acc);
    for o in batches {
        retry_or_fail(acc, o, e.is_retriable(), &e);
    }
}

/// Puts drained batches that were not sent back at the head of their partitions' queues, as they were (same
/// bytes and sequence numbers, attempts not counted): a partition has one batch out of its queue at a time,
/// so the order of its records is kept.
fn unsend(acc: &Accumulator, batches: Vec<Outbound>) {
    let mut st = acc.state.lock().unwrap();
    for o in batches {
        let q = st.partitions.entry((o.topic, o.partition)).or_default();
        q.in_flight = false;
        q.batches.push_front(o.batch);
    }
    drop(st);
    acc.wake.notify_one();
}

/// A batch was written: `base_offset` is where its first record landed (-1: the broker did not say).
fn finish(acc: &Accumulator, o: Outbound, base_offset: i64) {
    if let Some(q) = acc
        .state
        .lock()
        .unwrap()
        .partitions
        .get_mut(&(o.topic.clone(), o.partition))
    {
        q.in_flight = false;
    }
    let outcome = BatchOutcome::Written {
        topic: o.topic,
        partition: o.partition,
        base_offset,
    };
    acc.complete(o.batch, outcome);
    acc.wake.notify_one();
}

fn retry_or_fail(acc: &Accumulator, o: Outbound, retriable: bool, err: &Error) {
    retry_or_fail_after(acc, o, retriable, err, true)
}

/// [`retry_or_fail`], the retry after the backoff or (`backoff` false: the partition moved to a leader a broker
/// named) at once, as the Java client does.
fn retry_or_fail_after(acc: &Accumulator, mut o: Outbound, retriable: bool, err: &Error, backoff: bool) {
    // A transaction that must be aborted sends nothing more: its abort waits for this batch.
    let retriable = retriable && !acc.txn.as_ref().is_some_and(|t| t.stuck());
    let now = Instant::now();
    let in_time = o.batch.created + acc.cfg.delivery_timeout > now;
    if retriable && in_time {
        acc.metrics.retried(o.batch.records);
        o.batch.attempts += 1;
        o.batch.retry_at = backoff.then(|| now + acc.cfg.client.retry_backoff * o.batch.attempts.min(10));
        let mut st = acc.state.lock().unwrap();
        let q = st.partitions.entry((o.topic.clone(), o.partition)).or_default();
        q.in_flight = false;
        q.batches.push_front(o.batch);
        drop(st);
        acc.wake.notify_one();
        return;
    }
    acc.txn_failed(err);
    let msg = err.to_string();
    let kind_retriable = err.is_retriable();
    if acc.cfg.idempotence {
        acc.reinit.store(true, Ordering::Release); // this batch's sequence numbers leave a gap
    }
    {
        let mut st = acc.state.lock().unwrap();
        if let Some(q) = st.partitions.get_mut(&(o.topic.clone(), o.partition)) {
            q.in_flight = false;
        }
    }
    let failure = if kind_retriable {
        Error::Timeout {
            what: format!("record delivery (last error: {msg})"),
            after: acc.cfg.delivery_timeout,
        }
    } else {
        err.clone()
    };
    acc.complete(o.batch, BatchOutcome::Failed(failure));
    acc.wake.notify_one();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_in_backoff_holds_its_batches_until_the_backoff_or_the_delivery_timeout_ends() {
        let now = Instant::now();
        let soon = now + Duration::from_secs(1);
        let later = now + Duration::from_secs(600);
        assert_eq!(
            leader_ready(LinkState::Backoff { until: later }, now, soon),
            Err(soon),
            "woken for the delivery timeout first"
        );
        assert_eq!(
            leader_ready(LinkState::Backoff { until: soon }, now, later),
            Err(soon),
            "woken when the backoff ends"
        );
        // A backoff already over at `now` holds nothing.
        assert_eq!(
            leader_ready(LinkState::Backoff { until: now }, now, later),
            Ok(())
        );
    }

    #[test]
    fn a_leader_not_in_backoff_gets_its_batches() {
        let now = Instant::now();
        let expires = now + Duration::from_secs(120);
        for state in [
            LinkState::Ready { in_flight: 3 },
            LinkState::Idle,
            LinkState::Lost,
            LinkState::Connecting,
        ] {
            assert_eq!(leader_ready(state, now, expires), Ok(()), "{state:?}");
        }
    }

    #[test]
    fn the_sender_refreshes_once_per_backoff_and_never_twice_at_once() {
        let now = Instant::now();
        let backoff = Duration::from_millis(100);
        assert_eq!(refresh_wait(false, None, backoff, now), RefreshWait::Now);
        assert_eq!(refresh_wait(true, None, backoff, now), RefreshWait::Pending);
        assert_eq!(
            refresh_wait(true, Some(now - backoff * 5), backoff, now),
            RefreshWait::Pending,
            "a slow refresh is not joined by another"
        );
        let last = now - Duration::from_millis(30);
        assert_eq!(
            refresh_wait(false, Some(last), backoff, now),
            RefreshWait::Until(last + backoff)
        );
        assert_eq!(
            refresh_wait(false, Some(now - backoff), backoff, now),
            RefreshWait::Now
        );
    }
}
