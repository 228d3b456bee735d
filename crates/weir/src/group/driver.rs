//! The group task: a thin driver of the member state machine (`member.rs`). It performs the member's actions
//! (group calls through `coordinator.rs`, rebalance callbacks, the consumer's hold, assign and unassign) and
//! feeds their outcomes and the time back. One exclusive piece of work runs at a time, with at most one
//! heartbeat and one auto-commit beside it; a JoinGroup or SyncGroup in flight is abandoned on close, callbacks
//! always run to their end.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use tracing::field::Empty;
use tracing::Instrument;

use super::member::{Action, Event};
use super::{coordinator, round, RebalanceContext, Shared};
use crate::consumer::{OffsetReset, StartOffset};
use crate::error::{Error, KafkaCode, Result};
use crate::types::TopicPartition;

/// Now, as the member counts time (tokio's clock, so that tests may pause it).
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Feeds `event` to the member, and wakes the task if there is something to do (an action, a new phase): a
/// `poll` call, say, does not wake it.
pub(crate) fn feed(shared: &Shared, event: Event) {
    let mut m = shared.member.lock().unwrap();
    let before = m.phase();
    m.handle(event, now());
    let wake = m.has_actions() || m.phase() != before;
    drop(m);
    if wake {
        shared.wake.notify_one();
    }
}

/// A piece of work in flight: its outcome, and for a revocation the outcome of its commit (what `close`
/// returns).
type Work = BoxFuture<'static, (Event, Result<()>)>;

enum Woke {
    Work((Event, Result<()>)),
    Heartbeat(Event),
    Commit(Event),
    Time,
}

async fn next<T>(f: &mut Option<BoxFuture<'static, T>>) -> T {
    f.as_mut().expect("guarded").as_mut().await
}

/// Runs the member until it has left for good (closed). Returns the outcome of the last revocation's commit.
pub(crate) async fn run(shared: Arc<Shared>) -> Result<()> {
    // Work in flight, and whether close abandons it (a network exchange) or waits for it (callbacks).
    let mut work: Option<Work> = None;
    let mut abandon = false;
    let mut beat: Option<BoxFuture<'static, Event>> = None;
    let mut commit: Option<BoxFuture<'static, Event>> = None;
    let mut closing = false;
    let mut last_revoke = Ok(());
    let mut rebalance = RebalanceWatch::default();
    loop {
        if shared.is_closed() && !closing {
            closing = true;
            if abandon {
                work = None;
            }
            shared.member.lock().unwrap().handle(Event::Close, now());
        }
        rebalance.observe(&shared);
        loop {
            let action = shared.member.lock().unwrap().poll_action();
            let Some(action) = action else { break };
            match action {
                Action::Heartbeat {
                    generation,
                    member_id,
                    within,
                } => {
                    // The leader watches the partition counts its assignment used (as the Java client).
                    if round::partitions_changed(&shared) {
                        *shared.leader_counts.lock().unwrap() = None;
                        shared
                            .member
                            .lock()
                            .unwrap()
                            .handle(Event::PartitionCountChanged, now());
                    }
                    let s = shared.clone();
                    beat = Some(Box::pin(async move {
                        Event::Heartbeat(coordinator::heartbeat(&s, generation, member_id, within).await)
                    }));
                }
                Action::Commit { generation } => {
                    let s = shared.clone();
                    commit = Some(Box::pin(async move {
                        let offsets = delivered_positions(&s, true);
                        let result = commit_as(&s, &offsets, false).await;
                        Event::Committed { generation, result }
                    }));
                }
                Action::Release(partitions) => shared.consumer.release(&partitions),
                Action::UnassignAll => shared.consumer.unassign(&shared.consumer.assignment()),
                Action::Report(e) => shared.report(e),
                other => {
                    abandon = matches!(other, Action::Join { .. } | Action::Sync { .. });
                    let span = rebalance.span();
                    work = Some(Box::pin(perform(shared.clone(), other).instrument(span)));
                }
            }
        }
        let (done, deadline) = {
            let m = shared.member.lock().unwrap();
            (m.is_done(), m.poll_timeout())
        };
        if done {
            return last_revoke;
        }
        let sleep = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        let woke = tokio::select! {
            out = next(&mut work), if work.is_some() => Woke::Work(out),
            e = next(&mut beat), if beat.is_some() => Woke::Heartbeat(e),
            e = next(&mut commit), if commit.is_some() => Woke::Commit(e),
            _ = sleep => Woke::Time,
            _ = shared.wake.notified() => Woke::Time,
        };
        let event = match woke {
            Woke::Work((event, revoke)) => {
                work = None;
                if matches!(event, Event::Revoked) {
                    last_revoke = revoke;
                }
                Some(event)
            }
            Woke::Heartbeat(e) => {
                beat = None;
                Some(e)
            }
            Woke::Commit(e) => {
                commit = None;
                Some(e)
            }
            Woke::Time => None,
        };
        let mut m = shared.member.lock().unwrap();
        let t = now();
        if let Some(e) = event {
            tracing::trace!(group = %shared.cfg.group_id, event = ?e, phase = ?m.phase(), "member event");
            m.handle(e, t);
        }
        m.handle_timeout(t);
    }
}

/// Follows the member's rebalances ([`super::member::Rebalances`]) for the group task: a span for each one in
/// progress (the work it takes runs inside it), and once it completes its fields, an info event (rebalances
/// are rare) and the group's metrics.
#[derive(Default)]
struct RebalanceWatch {
    span: Option<tracing::Span>,
    completed: u64,
}

impl RebalanceWatch {
    /// Looks at the member: records a rebalance completed since the last look, opens a span for one begun.
    fn observe(&mut self, shared: &Shared) {
        let (completed, last, in_progress) = {
            let m = shared.member.lock().unwrap();
            let r = m.rebalances();
            (r.completed, r.last, r.started.is_some())
        };
        if completed > self.completed {
            // One at a time in practice (each takes several pieces of work, and this looks after every one).
            shared.metrics.rebalances.increment(completed - self.completed);
            self.completed = completed;
            if let Some(last) = last {
                let span = self.span.take().unwrap_or_else(|| self.open(shared));
                let duration_ms = last.duration.as_millis() as u64;
                span.record("generation", last.generation);
                span.record("assigned", last.assigned);
                span.record("revoked", last.revoked);
                span.record("duration_ms", duration_ms);
                tracing::info!(parent: &span, group = %shared.cfg.group_id, generation = last.generation,
                    assigned = last.assigned, revoked = last.revoked, duration_ms, "rebalance completed");
                shared
                    .metrics
                    .rebalance_latency
                    .record(last.duration.as_secs_f64());
            }
        }
        match (in_progress, &self.span) {
            (true, None) => self.span = Some(self.open(shared)),
            // Abandoned (the member left, closed or was fenced).
            (false, Some(_)) => self.span = None,
            _ => {}
        }
    }

    fn open(&self, shared: &Shared) -> tracing::Span {
        tracing::debug_span!(parent: None, "rebalance", group = %shared.cfg.group_id, generation = Empty,
            assigned = Empty, revoked = Empty, duration_ms = Empty)
    }

    /// The span work of the rebalance in progress runs in (none outside rebalances).
    fn span(&self) -> tracing::Span {
        self.span.clone().unwrap_or_else(tracing::Span::none)
    }
}

/// Performs one exclusive piece of work.
async fn perform(shared: Arc<Shared>, action: Action) -> (Event, Result<()>) {
    match action {
        Action::Revoke {
            partitions,
            commit,
            partial,
        } => revoke(&shared, &partitions, commit, partial).await,
        Action::Lose { partitions } => {
            take(&shared, &partitions);
            tracing::info!(group = %shared.cfg.group_id, partitions = partitions.len(), "partitions lost");
            if let Some(l) = shared.listener() {
                l.on_lost(&RebalanceContext::new(&shared), &partitions).await;
            }
            drop_partitions(&shared, &partitions);
            (Event::Lost, Ok(()))
        }
        Action::Join {
            member_id,
            generation,
            owned,
        } => (round::join(&shared, member_id, generation, owned).await, Ok(())),
        Action::Sync {
            generation,
            member_id,
            leader,
        } => (
            Event::Synced(round::sync(&shared, generation, member_id, leader).await),
            Ok(()),
        ),
        Action::Assign { assignment, added } => (
            Event::Assigned(assign(&shared, &assignment, &added).await),
            Ok(()),
        ),
        Action::Leave { member_id } => {
            coordinator::leave(&shared, &member_id).await;
            (Event::LeftGroup, Ok(()))
        }
        Action::Heartbeat { .. }
        | Action::Commit { .. }
        | Action::Release(_)
        | Action::UnassignAll
        | Action::Report(_) => unreachable!("performed by the loop"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// offsets
// ---------------------------------------------------------------------------------------------------------

/// Delivered positions of the owned partitions; only those that differ from the last known commit when
/// `only_changed`.
pub(crate) fn delivered_positions(shared: &Shared, only_changed: bool) -> Vec<(TopicPartition, i64)> {
    let owned: Vec<TopicPartition> = shared.member.lock().unwrap().owned().iter().cloned().collect();
    positions(shared, &owned, only_changed)
}

fn positions(
    shared: &Shared,
    partitions: &[TopicPartition],
    only_changed: bool,
) -> Vec<(TopicPartition, i64)> {
    let committed = shared.committed.lock().unwrap();
    partitions
        .iter()
        .filter_map(|tp| Some((tp.clone(), shared.consumer.position(tp)?)))
        .filter(|(tp, p)| !only_changed || committed.get(tp) != Some(p))
        .collect()
}

/// Commits `offsets` for the generation this member is in now, retrying transient failures (see
/// [`commit_as`]).
pub(crate) async fn commit(shared: &Shared, offsets: &[(TopicPartition, i64)]) -> Result<()> {
    commit_as(shared, offsets, true).await
}

/// Commits `offsets` as this member in its current generation. Refused without sending anything
/// ([`Error::CommitFailed`]) for partitions this member does not own (or is not revoking); retries keep the
/// generation of the first attempt, so a commit that outlives its generation fails instead of overwriting what
/// the partitions' next owner commits. A commit refused because another instance took this member's id fences
/// the member.
async fn commit_as(shared: &Shared, offsets: &[(TopicPartition, i64)], retry: bool) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let (generation, member_id) = shared
        .member
        .lock()
        .unwrap()
        .commit_identity(&mut offsets.iter().map(|(tp, _)| tp), &shared.cfg.group_id)?;
    let result = coordinator::commit(shared, offsets, generation, &member_id, retry).await;
    match &result {
        Ok(()) => {
            let mut committed = shared.committed.lock().unwrap();
            for (tp, o) in offsets {
                committed.insert(tp.clone(), *o);
            }
        }
        Err(e) if e.kafka_code() == Some(KafkaCode::FencedInstanceId) => {
            feed(shared, Event::CommitFailed(e.clone()));
        }
        Err(_) => {}
    }
    result
}

// ---------------------------------------------------------------------------------------------------------
// giving partitions up
// ---------------------------------------------------------------------------------------------------------

/// Holds `partitions` at once (nothing more is fetched or delivered, whatever the application's pause or
/// resume calls do meanwhile), and waits for a delivery in progress so that their positions are final.
fn take(shared: &Shared, partitions: &[TopicPartition]) {
    shared.consumer.hold(partitions);
    shared.consumer.settle(partitions);
}

/// Unassigns partitions given up, except those the application paused (decided per partition at the moment it
/// is unassigned, so a pause made during the callbacks counts): they stay assigned, held and paused until the
/// next assignment is known, so their pause survives the rebalance.
fn drop_partitions(shared: &Shared, partitions: &[TopicPartition]) {
    shared.consumer.unassign_unless_paused(partitions);
}

/// An orderly revocation: take the partitions, commit their delivered positions if `commit_first`, call the
/// revoke callback, unassign them (all of them if `partial`, else keeping paused ones held).
async fn revoke(
    shared: &Shared,
    partitions: &[TopicPartition],
    commit_first: bool,
    partial: bool,
) -> (Event, Result<()>) {
    take(shared, partitions);
    let result = if commit_first {
        commit(shared, &positions(shared, partitions, true)).await
    } else {
        Ok(())
    };
    if let Err(e) = &result {
        tracing::warn!(group = %shared.cfg.group_id, error = %e, "commit on revoke failed");
    }
    tracing::debug!(group = %shared.cfg.group_id, ?partitions, "partitions revoked");
    if let Some(l) = shared.listener() {
        l.on_revoked(&RebalanceContext::new(shared), partitions).await;
    }
    if partial {
        let mut committed = shared.committed.lock().unwrap();
        for tp in partitions {
            committed.remove(tp);
        }
        drop(committed);
        shared.consumer.unassign(partitions);
    } else {
        drop_partitions(shared, partitions);
    }
    (Event::Revoked, result)
}

// ---------------------------------------------------------------------------------------------------------
// setting an assignment up
// ---------------------------------------------------------------------------------------------------------

/// Sets `added` up from the committed offsets (or `auto.offset.reset`), assigned held so that nothing is
/// fetched or delivered before the assign callback (which gets `added`) has run; anything assigned outside
/// `assignment` (kept through the rebalance because the application had paused it) goes.
async fn assign(shared: &Shared, assignment: &[TopicPartition], added: &[TopicPartition]) -> Result<()> {
    let new: BTreeSet<&TopicPartition> = assignment.iter().collect();
    let committed = coordinator::fetch_committed_with_epochs(shared, added).await?;
    let mut starts = Vec::with_capacity(added.len());
    let mut no_offset = Vec::new();
    for tp in added {
        match committed.get(tp) {
            Some(&(o, _)) if o >= 0 => starts.push((tp.clone(), StartOffset::Offset(o))),
            _ => match shared.cfg.consumer.auto_offset_reset {
                OffsetReset::Earliest => starts.push((tp.clone(), StartOffset::Earliest)),
                OffsetReset::Latest => starts.push((tp.clone(), StartOffset::Latest)),
                OffsetReset::None => no_offset.push(tp.clone()),
            },
        }
    }
    let leftover: Vec<TopicPartition> = shared
        .consumer
        .assignment()
        .into_iter()
        .filter(|tp| !new.contains(tp))
        .collect();
    shared.consumer.unassign(&leftover);
    let mut backoff = shared.cfg.consumer.client.retry_backoff;
    let mut attempts = 0;
    while let Err(e) = shared.consumer.assign_held(&starts).await {
        attempts += 1;
        if attempts >= 5 || shared.is_closed() {
            return Err(e);
        }
        tracing::debug!(error = %e, "assigning the group's partitions failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = shared.cfg.consumer.client.next_retry_backoff(backoff);
    }
    // Positions restored with the leader epoch their committer knew are validated against the leader's log
    // before the first fetch (KIP-320): the partitions are held until the assign callback returns.
    for (tp, &(offset, epoch)) in &committed {
        if let (true, Some(epoch)) = (offset >= 0, epoch) {
            shared.consumer.validate_position(tp, epoch);
        }
    }
    {
        let mut known = shared.committed.lock().unwrap();
        known.retain(|tp, _| new.contains(tp));
        known.extend(committed.into_iter().map(|(tp, (offset, _))| (tp, offset)));
    }
    feed(shared, Event::AssignedHeld);
    for tp in no_offset {
        shared.report(Error::Kafka {
            code: KafkaCode::OffsetOutOfRange,
            context: format!(
                "{tp} has no committed offset in group {} and auto.offset.reset=none",
                shared.cfg.group_id
            ),
        });
    }
    tracing::info!(group = %shared.cfg.group_id, partitions = ?added, "partitions assigned");
    if let Some(l) = shared.listener() {
        l.on_assigned(&RebalanceContext::new(shared), added).await;
    }
    Ok(())
}
