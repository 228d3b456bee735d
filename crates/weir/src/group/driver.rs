//! The group task: a thin driver of the member state machine (`member.rs`). It performs the member's actions
//! (group calls through `coordinator.rs`, rebalance callbacks, the consumer's hold, assign and unassign) and
//! feeds their outcomes and the time back. One exclusive piece of work runs at a time, with at most one
//! heartbeat and one auto-commit beside it; a JoinGroup or SyncGroup in flight is abandoned on close, callbacks
//! always run to their end.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use weir_proto::group::{JoinGroupMember, JoinGroupRequest, SyncGroupRequest};
use weir_proto::ProtoError;

use super::assignor::{AssignorKind, MemberSubscription};
use super::member::{Action, Event, Joined};
use super::protocol::{Assignment, Subscription};
use super::{coordinator, RebalanceContext, Shared};
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

/// The JoinGroup and SyncGroup of one round: what the leader needs between the two.
pub(crate) struct Round {
    kind: AssignorKind,
    members: Vec<JoinGroupMember>,
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

async fn next(f: &mut Option<BoxFuture<'static, Event>>) -> Event {
    f.as_mut().expect("guarded").as_mut().await
}

async fn next_work(f: &mut Option<(Work, bool)>) -> (Event, Result<()>) {
    f.as_mut().expect("guarded").0.as_mut().await
}

/// Runs the member until it has left for good (closed). Returns the outcome of the last revocation's commit.
pub(crate) async fn run(shared: Arc<Shared>) -> Result<()> {
    // Work in flight, and whether close abandons it (a network exchange) or waits for it (callbacks).
    let mut work: Option<(Work, bool)> = None;
    let mut beat: Option<BoxFuture<'static, Event>> = None;
    let mut commit: Option<BoxFuture<'static, Event>> = None;
    let mut closing = false;
    let mut last_revoke = Ok(());
    loop {
        if shared.is_closed() && !closing {
            closing = true;
            if work.as_ref().is_some_and(|(_, abandon)| *abandon) {
                work = None;
            }
            shared.member.lock().unwrap().handle(Event::Close, now());
        }
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
                    if partitions_changed(&shared) {
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
                    let abandon = matches!(other, Action::Join { .. } | Action::Sync { .. });
                    work = Some((Box::pin(perform(shared.clone(), other)), abandon));
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
            out = next_work(&mut work), if work.is_some() => Woke::Work(out),
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
        } => (join(&shared, member_id, generation, owned).await, Ok(())),
        Action::Sync {
            generation,
            member_id,
            leader,
        } => (
            Event::Synced(sync(&shared, generation, member_id, leader).await),
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
        .commit_identity(offsets.iter().map(|(tp, _)| tp), &shared.cfg.group_id)?;
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
// a round: JoinGroup, the leader's assignment, SyncGroup, setting the assignment up
// ---------------------------------------------------------------------------------------------------------

async fn join(shared: &Shared, member_id: String, generation: i32, owned: Vec<TopicPartition>) -> Event {
    let cfg = &shared.cfg;
    let topics = shared.member.lock().unwrap().subscription().to_vec();
    // Cooperative protocol, as the Java client: owned partitions and their generation in the subscription (v2+
    // field), and the generation again as the cooperative-sticky user data (for v0/v1 readers). Eager protocol:
    // nothing is owned when rejoining and range / roundrobin ignore the generation, so it is left unknown (-1):
    // the metadata then stays the same from one rejoin to the next, so a coordinator that starts a new round
    // whenever a member's metadata changes is not sent into one round per rejoin.
    let cooperative = cfg.cooperative();
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    if cooperative {
        for tp in &owned {
            by_topic
                .entry(tp.topic.to_string())
                .or_default()
                .push(tp.partition);
        }
    }
    let metadata = Subscription {
        topics,
        generation: if cooperative { generation } else { -1 },
        owned: by_topic,
        user_data: cooperative.then(|| bytes::Bytes::copy_from_slice(&generation.to_be_bytes())),
        ..Default::default()
    }
    .encode();
    let req = JoinGroupRequest {
        group_id: cfg.group_id.clone(),
        session_timeout_ms: cfg.session_timeout.as_millis() as i32,
        rebalance_timeout_ms: cfg.max_poll_interval.as_millis() as i32,
        member_id,
        group_instance_id: cfg.group_instance_id.clone(),
        protocol_type: "consumer".into(),
        protocols: cfg
            .assignors
            .iter()
            .map(|a| (a.name().to_owned(), metadata.clone()))
            .collect(),
        reason: None,
    };
    let resp = match coordinator::join(shared, &req).await {
        Ok(r) => r,
        Err(e) => return Event::Joined(Err(e)),
    };
    if resp.error_code == KafkaCode::MemberIdRequired.code() {
        return Event::MemberIdRequired(resp.member_id);
    }
    let protocol = resp.protocol_name.clone().unwrap_or_default();
    let Some(kind) = AssignorKind::parse(&protocol).filter(|k| cfg.assignors.contains(k)) else {
        return Event::Joined(Err(Error::Kafka {
            code: KafkaCode::InconsistentGroupProtocol,
            context: format!(
                "JoinGroup {}: the group chose assignor {protocol:?}, which weir did not offer",
                cfg.group_id
            ),
        }));
    };
    let leader = resp.leader == resp.member_id && !resp.skip_assignment;
    tracing::debug!(group = %cfg.group_id, member = %resp.member_id, generation = resp.generation_id, leader,
        protocol = %protocol, members = resp.members.len(), "joined");
    *shared.round.lock().unwrap() = Some(Round {
        kind,
        members: resp.members,
    });
    Event::Joined(Ok(Joined {
        member_id: resp.member_id,
        generation: resp.generation_id,
        leader,
    }))
}

async fn sync(
    shared: &Shared,
    generation: i32,
    member_id: String,
    leader: bool,
) -> Result<Vec<TopicPartition>> {
    let cfg = &shared.cfg;
    let round = shared.round.lock().unwrap().take().ok_or_else(|| Error::Kafka {
        code: KafkaCode::RebalanceInProgress,
        context: format!("SyncGroup {}: no JoinGroup answer to sync", cfg.group_id),
    })?;
    let (assignments, counts) = if leader {
        let (a, c) = leader_assign(shared, &round.members, round.kind).await?;
        (a, Some(c))
    } else {
        (Vec::new(), None)
    };
    let req = SyncGroupRequest {
        group_id: cfg.group_id.clone(),
        generation_id: generation,
        member_id,
        group_instance_id: cfg.group_instance_id.clone(),
        protocol_type: Some("consumer".into()),
        protocol_name: Some(round.kind.name().to_owned()),
        assignments,
    };
    let bytes = coordinator::sync(shared, &req).await?;
    *shared.leader_counts.lock().unwrap() = counts;
    let assignment = Assignment::decode(bytes).map_err(|e| Error::Protocol {
        broker: "group coordinator".into(),
        source: ProtoError::Decode {
            api: "SyncGroup assignment",
            version: -1,
            reason: e.0,
        },
    })?;
    Ok(assignment
        .partitions
        .iter()
        .flat_map(|(t, ps)| {
            let topic: Arc<str> = Arc::from(t.as_str());
            ps.iter().map(move |p| TopicPartition::new(topic.clone(), *p))
        })
        .collect())
}

/// The generation a member's owned partitions belong to: the subscription's field (v2+), else the cooperative
/// sticky user data (a big-endian `i32`, as the Java client writes it), else unknown.
fn member_generation(sub: &Subscription) -> Option<i32> {
    if sub.generation >= 0 {
        return Some(sub.generation);
    }
    let data = sub.user_data.as_ref()?;
    Some(match data.get(..4) {
        Some(b) => i32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        None => -1,
    })
}

/// The leader's part: decode every member's subscription, run the assignor, encode the assignments. Also
/// returns the partition count of every subscribed topic (0: not in the metadata) the assignment used.
async fn leader_assign(
    shared: &Shared,
    members: &[JoinGroupMember],
    kind: AssignorKind,
) -> Result<(Vec<(String, bytes::Bytes)>, BTreeMap<String, i32>)> {
    let mut subs = Vec::with_capacity(members.len());
    for m in members {
        let mut sub = MemberSubscription::new(&m.member_id, Vec::<String>::new());
        sub.instance_id = m.group_instance_id.clone();
        match Subscription::decode(m.metadata.clone()) {
            Ok(decoded) => {
                sub.generation = member_generation(&decoded);
                sub.topics = decoded.topics.into_iter().collect();
                sub.owned = decoded.owned;
            }
            Err(e) => {
                // Assign nothing to a member whose metadata is unreadable; the rest of the group goes on.
                tracing::warn!(group = %shared.cfg.group_id, member = %m.member_id, error = %e,
                    "unreadable member subscription; assigning it nothing");
            }
        }
        subs.push(sub);
    }
    let topics: BTreeSet<&str> = subs
        .iter()
        .flat_map(|m| m.topics.iter().map(|t| t.as_str()))
        .collect();
    shared.cluster.add_interest(topics.iter().copied());
    let snap = shared.cluster.refresh(false).await?;
    let seen: BTreeMap<String, i32> = topics
        .iter()
        .map(|t| {
            (
                t.to_string(),
                snap.topic(t).map_or(0, |m| m.partition_count().max(0)),
            )
        })
        .collect();
    let counts: BTreeMap<String, i32> = seen
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(t, n)| (t.clone(), *n))
        .collect();
    let plan = kind.assign(&subs, &counts);
    tracing::debug!(group = %shared.cfg.group_id, ?plan, "assignment computed");
    let assignments = plan
        .into_iter()
        .map(|(member, partitions)| {
            let assignment = Assignment {
                partitions,
                user_data: None,
            };
            (member, assignment.encode())
        })
        .collect();
    Ok((assignments, seen))
}

/// Whether this member led the current generation and the latest metadata shows a partition count other than
/// the one its assignment used, for a topic of the group's subscription (as the Java client's leader checks).
fn partitions_changed(shared: &Shared) -> bool {
    let counts = shared.leader_counts.lock().unwrap();
    let Some(counts) = &*counts else {
        return false;
    };
    let snap = shared.cluster.snapshot();
    counts.iter().any(|(topic, &used)| {
        snap.topic(topic).is_some_and(|m| {
            let now = m.partition_count();
            if now > 0 && now != used {
                tracing::info!(group = %shared.cfg.group_id, topic = %topic, used, now,
                    "partition count changed; the leader rejoins");
                true
            } else {
                false
            }
        })
    })
}

/// Sets `added` up from the committed offsets (or `auto.offset.reset`), assigned held so that nothing is
/// fetched or delivered before the assign callback (which gets `added`) has run; anything assigned outside
/// `assignment` (kept through the rebalance because the application had paused it) goes.
async fn assign(shared: &Shared, assignment: &[TopicPartition], added: &[TopicPartition]) -> Result<()> {
    let new: BTreeSet<&TopicPartition> = assignment.iter().collect();
    let committed = coordinator::fetch_committed(shared, added).await?;
    let mut starts = Vec::with_capacity(added.len());
    let mut no_offset = Vec::new();
    for tp in added {
        match committed.get(tp) {
            Some(&o) if o >= 0 => starts.push((tp.clone(), StartOffset::Offset(o))),
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
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
    {
        let mut known: HashMap<TopicPartition, i64> = std::mem::take(&mut *shared.committed.lock().unwrap());
        known.retain(|tp, _| new.contains(tp));
        known.extend(committed);
        *shared.committed.lock().unwrap() = known;
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
