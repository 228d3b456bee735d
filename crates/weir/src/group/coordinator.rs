//! The group task: coordinator discovery, JoinGroup / SyncGroup / Heartbeat / LeaveGroup, offsets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use weir_proto::group::{
    FindCoordinatorRequest, HeartbeatRequest, JoinGroupMember, JoinGroupRequest, LeaveGroupRequest,
    SyncGroupRequest,
};
use weir_proto::group_offsets::{OffsetCommitRequest, OffsetFetchRequest};
use weir_proto::ProtoError;

use super::assignor::{AssignorKind, MemberSubscription};
use super::protocol::{Assignment, Subscription};
use super::{GroupConfig, Membership, RebalanceContext, Shared};
use crate::config::ClientConfig;
use crate::consumer::{OffsetReset, StartOffset, TopicPartition};
use crate::error::{check, Error, KafkaCode, Result};
use crate::net::BrokerLink;

/// The coordinator's links: one with the normal request timeout (heartbeats, commits), one whose timeout
/// covers a JoinGroup / SyncGroup that the coordinator holds for up to the rebalance timeout.
#[derive(Clone)]
pub(crate) struct CoordLinks {
    pub(crate) addr: String,
    pub(crate) link: Arc<BrokerLink>,
    pub(crate) join: Arc<BrokerLink>,
}

pub(crate) struct Coordinator {
    cfg: Arc<ClientConfig>,
    join_cfg: Arc<ClientConfig>,
    current: Mutex<Option<CoordLinks>>,
    finding: tokio::sync::Mutex<()>,
}

impl Coordinator {
    pub(crate) fn new(cfg: &GroupConfig) -> Coordinator {
        let client = cfg.consumer.client.clone();
        let mut join = client.clone();
        // As the Java client: JoinGroup may be held for the whole rebalance timeout.
        join.request_timeout = join
            .request_timeout
            .max(cfg.max_poll_interval + Duration::from_secs(5));
        Coordinator {
            cfg: Arc::new(client),
            join_cfg: Arc::new(join),
            current: Mutex::new(None),
            finding: tokio::sync::Mutex::new(()),
        }
    }

    /// Forgets the coordinator: the next use rediscovers it.
    pub(crate) fn invalidate(&self) {
        if self.current.lock().unwrap().take().is_some() {
            tracing::debug!("group coordinator invalidated");
        }
    }

    /// The coordinator of the group, discovered with FindCoordinator if unknown.
    pub(crate) async fn get(&self, shared: &Shared) -> Result<CoordLinks> {
        if let Some(c) = self.current.lock().unwrap().clone() {
            return Ok(c);
        }
        let _g = self.finding.lock().await;
        if let Some(c) = self.current.lock().unwrap().clone() {
            return Ok(c);
        }
        let group = &shared.cfg.group_id;
        let req = FindCoordinatorRequest {
            key: group.clone(),
            key_type: 0,
        };
        let found = shared.cluster.any_connection().await?.call(&req).await?;
        // Versions 0-3 always decode to exactly one coordinator; v4 lists one per key asked.
        let c = found.into_iter().next().ok_or_else(|| Error::Kafka {
            code: KafkaCode::CoordinatorNotAvailable,
            context: format!("FindCoordinator {group}: empty answer"),
        })?;
        check(c.error_code, || format!("FindCoordinator {group}"))?;
        let (host, port, node) = (c.host, c.port, c.node_id);
        let addr = format!("{host}:{port}");
        tracing::debug!(group = %group, node, addr = %addr, "group coordinator found");
        let links = CoordLinks {
            link: Arc::new(BrokerLink::new(addr.clone(), self.cfg.clone())),
            join: Arc::new(BrokerLink::new(addr.clone(), self.join_cfg.clone())),
            addr,
        };
        *self.current.lock().unwrap() = Some(links.clone());
        Ok(links)
    }
}

/// Whether `e` means the coordinator is gone or moved (and forgets it if so).
fn coordinator_failed(shared: &Shared, e: &Error) -> bool {
    let moved = match e {
        Error::Io { .. } | Error::Timeout { .. } => true,
        Error::Kafka { code, .. } => {
            matches!(
                code,
                KafkaCode::NotCoordinator | KafkaCode::CoordinatorNotAvailable
            )
        }
        _ => false,
    };
    if moved {
        shared.coordinator.invalidate();
    }
    moved
}

fn code_of(e: &Error) -> Option<KafkaCode> {
    e.kafka_code()
}

/// Retries `op` on coordinator movement and transient errors for up to the request timeout.
async fn with_retries<T, F, Fut>(shared: &Shared, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let client = &shared.cfg.consumer.client;
    let deadline = Instant::now() + client.request_timeout;
    let mut backoff = client.retry_backoff;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let transient = coordinator_failed(shared, &e)
                    || matches!(
                        code_of(&e),
                        Some(KafkaCode::CoordinatorLoadInProgress | KafkaCode::UnstableOffsetCommit)
                    );
                if !transient || Instant::now() + backoff > deadline || shared.is_closed() {
                    return Err(e);
                }
                tracing::debug!(error = %e, "group request failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// offsets
// ---------------------------------------------------------------------------------------------------------

/// Positions of owned partitions; only those that differ from the last known commit when `only_changed`.
pub(crate) fn delivered_positions(shared: &Shared, only_changed: bool) -> Vec<(TopicPartition, i64)> {
    let st = shared.state.lock().unwrap();
    positions(shared, &st, st.owned.iter(), only_changed)
}

/// The delivered positions of `partitions` (those assigned), only those not committed yet if `only_changed`.
fn positions<'a>(
    shared: &Shared,
    st: &Membership,
    partitions: impl IntoIterator<Item = &'a TopicPartition>,
    only_changed: bool,
) -> Vec<(TopicPartition, i64)> {
    partitions
        .into_iter()
        .filter_map(|tp| Some((tp.clone(), shared.consumer.position(tp)?)))
        .filter(|(tp, p)| !only_changed || st.committed.get(tp) != Some(p))
        .collect()
}

/// Commits `offsets` for the generation this member is in now. Refused without sending anything
/// ([`Error::CommitFailed`]) for partitions this member does not own (or is not revoking); retries keep the
/// generation of the first attempt, so a commit that outlives its generation fails instead of overwriting what
/// the partitions' next owner commits.
pub(crate) async fn commit(shared: &Shared, offsets: &[(TopicPartition, i64)]) -> Result<()> {
    commit_with(shared, offsets, true).await
}

/// [`commit`], retrying transient failures until `request.timeout.ms` if `retry` (auto-commit does not: it
/// must not hold the group task up, and the next interval commits anyway).
async fn commit_with(shared: &Shared, offsets: &[(TopicPartition, i64)], retry: bool) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let (generation, member_id) = {
        let st = shared.state.lock().unwrap();
        let not_owned: Vec<String> = offsets
            .iter()
            .filter(|(tp, _)| !st.owned.contains(tp) && !st.revoking.contains(tp))
            .map(|(tp, _)| tp.to_string())
            .collect();
        if !not_owned.is_empty() {
            return Err(Error::CommitFailed(format!(
                "{} not owned by this member of group {} (generation {}); the group rebalanced them away or is \
                 rebalancing",
                not_owned.join(", "),
                shared.cfg.group_id,
                st.generation
            )));
        }
        (st.generation, st.member_id.clone())
    };
    let result = if retry {
        with_retries(shared, || commit_once(shared, offsets, generation, &member_id)).await
    } else {
        commit_once(shared, offsets, generation, &member_id).await
    };
    if let Err(e) = &result {
        if code_of(e) == Some(KafkaCode::FencedInstanceId) {
            react(shared, e);
        }
    }
    result?;
    let mut st = shared.state.lock().unwrap();
    for (tp, o) in offsets {
        st.committed.insert(tp.clone(), *o);
    }
    Ok(())
}

async fn commit_once(
    shared: &Shared,
    offsets: &[(TopicPartition, i64)],
    generation: i32,
    member_id: &str,
) -> Result<()> {
    let coord = shared.coordinator.get(shared).await?;
    let conn = coord.link.get().await?;
    let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for (tp, o) in offsets {
        by_topic.entry(&tp.topic).or_default().push((tp.partition, *o));
    }
    let cfg = &shared.cfg;
    let req = OffsetCommitRequest {
        group_id: cfg.group_id.clone(),
        generation_id: generation,
        member_id: member_id.to_owned(),
        group_instance_id: cfg.group_instance_id.clone(),
        topics: by_topic.into_iter().map(|(t, ps)| (t.to_owned(), ps)).collect(),
    };
    let topics = conn.call(&req).await?;
    for t in &topics {
        for &(partition, error_code) in &t.partitions {
            check(error_code, || {
                format!("OffsetCommit {} {}-{}", cfg.group_id, t.name, partition)
            })?;
        }
    }
    Ok(())
}

/// Committed offsets (-1 where none) of `partitions`.
pub(crate) async fn fetch_committed(
    shared: &Shared,
    partitions: &[TopicPartition],
) -> Result<HashMap<TopicPartition, i64>> {
    if partitions.is_empty() {
        return Ok(HashMap::new());
    }
    with_retries(shared, || fetch_committed_once(shared, partitions)).await
}

async fn fetch_committed_once(
    shared: &Shared,
    partitions: &[TopicPartition],
) -> Result<HashMap<TopicPartition, i64>> {
    let coord = shared.coordinator.get(shared).await?;
    let conn = coord.link.get().await?;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    let group = &shared.cfg.group_id;
    let req = OffsetFetchRequest {
        group_id: group.clone(),
        topics: Some(by_topic.into_iter().map(|(t, ps)| (t.to_owned(), ps)).collect()),
    };
    let resp = conn.call(&req).await?;
    check(resp.error_code, || format!("OffsetFetch {group}"))?;
    let mut out = HashMap::new();
    for t in &resp.topics {
        let topic: Arc<str> = Arc::from(t.name.as_str());
        for p in &t.partitions {
            check(p.error_code, || {
                format!("OffsetFetch {group} {}-{}", topic, p.partition)
            })?;
            out.insert(
                TopicPartition::new(topic.clone(), p.partition),
                p.committed_offset,
            );
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------
// giving partitions up
// ---------------------------------------------------------------------------------------------------------

/// Takes `which` owned partitions (all of them if `None`) away: holds them at once (nothing more is fetched or
/// delivered, whatever the application's pause or resume calls do meanwhile), and waits for a delivery in
/// progress so that their positions are final. With `revoking`, they can still be committed until
/// [`end_revoke`]. Returns them, with their uncommitted delivered positions.
fn take(
    shared: &Shared,
    which: Option<&[TopicPartition]>,
    revoking: bool,
) -> (Vec<TopicPartition>, Vec<(TopicPartition, i64)>) {
    let mut st = shared.state.lock().unwrap();
    let taken: Vec<TopicPartition> = match which {
        None => std::mem::take(&mut st.owned).into_iter().collect(),
        Some(partitions) => {
            for tp in partitions {
                st.owned.remove(tp);
            }
            partitions.to_vec()
        }
    };
    if revoking {
        st.revoking.extend(taken.iter().cloned());
    }
    shared.consumer.hold(&taken);
    shared.consumer.settle(&taken);
    let offsets = positions(shared, &st, &taken, true);
    (taken, offsets)
}

/// The revoke callback returned: the revoked partitions cannot be committed any more.
fn end_revoke(shared: &Shared) {
    shared.state.lock().unwrap().revoking.clear();
}

/// Unassigns partitions taken away, except those the application paused (decided per partition at the
/// moment it is unassigned, so a pause made during the callbacks counts): they stay assigned, held and paused
/// until the next assignment is known, so their pause survives the rebalance.
fn drop_partitions(shared: &Shared, taken: &[TopicPartition]) {
    shared.consumer.unassign_unless_paused(taken);
}

/// Orderly revocation of everything owned (eager protocol, close): delivered positions committed if
/// `commit_first`, the revoke callback, then unassigned, except partitions the application paused, which stay
/// assigned (held) so that their pause survives the rebalance. Returns the commit's outcome.
pub(crate) async fn revoke_all(shared: &Shared, commit_first: bool) -> Result<()> {
    let (owned, offsets) = take(shared, None, true);
    if owned.is_empty() {
        return Ok(());
    }
    let result = revoke(shared, &owned, &offsets, commit_first).await;
    drop_partitions(shared, &owned);
    result
}

/// Orderly revocation of some owned partitions (cooperative protocol): they stop delivering at once, their
/// delivered positions are committed if `commit_first`, the revoke callback is called, they are unassigned.
/// The other owned partitions are not touched.
pub(crate) async fn revoke_some(
    shared: &Shared,
    partitions: &[TopicPartition],
    commit_first: bool,
) -> Result<()> {
    if partitions.is_empty() {
        return Ok(());
    }
    let (_, offsets) = take(shared, Some(partitions), true);
    let result = revoke(shared, partitions, &offsets, commit_first).await;
    {
        let mut st = shared.state.lock().unwrap();
        for tp in partitions {
            st.committed.remove(tp);
        }
    }
    shared.consumer.unassign(partitions);
    result
}

/// The middle of a revocation, once the partitions are taken: commit `offsets` if `commit_first`, call the
/// revoke callback, end the revocation. Returns the commit's outcome.
async fn revoke(
    shared: &Shared,
    partitions: &[TopicPartition],
    offsets: &[(TopicPartition, i64)],
    commit_first: bool,
) -> Result<()> {
    let result = if commit_first {
        commit(shared, offsets).await
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
    end_revoke(shared);
    result
}

/// Before a cooperative member rejoins: partitions of topics it no longer subscribes to are revoked, and if it
/// lost its generation (fenced) while owning partitions, they are lost. The rest keep delivering.
async fn prepare_cooperative_join(shared: &Shared) {
    let (fenced, unsubscribed) = {
        let st = shared.state.lock().unwrap();
        let unsubscribed: Vec<TopicPartition> = st
            .owned
            .iter()
            .filter(|tp| !st.subscription.iter().any(|t| *t == *tp.topic))
            .cloned()
            .collect();
        (st.generation < 0 && !st.owned.is_empty(), unsubscribed)
    };
    if fenced {
        lose_all(shared).await;
        return;
    }
    if let Err(e) = revoke_some(shared, &unsubscribed, shared.cfg.enable_auto_commit).await {
        tracing::debug!(error = %e, "commit before rejoining failed");
    }
}

/// The member was fenced: partitions are lost (no commit).
async fn lose_all(shared: &Shared) {
    let (owned, _) = take(shared, None, false);
    if owned.is_empty() {
        return;
    }
    tracing::info!(group = %shared.cfg.group_id, partitions = owned.len(), "partitions lost");
    if let Some(l) = shared.listener() {
        l.on_lost(&RebalanceContext::new(shared), &owned).await;
    }
    drop_partitions(shared, &owned);
}

/// Sends LeaveGroup (dynamic members only) and forgets the member id.
pub(crate) async fn leave(shared: &Shared) {
    let cfg = &shared.cfg;
    let member_id = {
        let mut st = shared.state.lock().unwrap();
        st.generation = -1;
        if cfg.group_instance_id.is_some() {
            // Static members keep their id and do not leave (the Java client's behaviour on close).
            return;
        }
        std::mem::take(&mut st.member_id)
    };
    if member_id.is_empty() {
        return;
    }
    let attempt = async {
        let coord = shared.coordinator.get(shared).await?;
        let req = LeaveGroupRequest {
            group_id: cfg.group_id.clone(),
            member_id: member_id.clone(),
            group_instance_id: None,
            reason: Some("the consumer is being closed".into()),
        };
        let resp = coord.link.get().await?.call(&req).await?;
        check(resp.error_code, || format!("LeaveGroup {}", cfg.group_id))?;
        for m in &resp.members {
            check(m.error_code, || {
                format!("LeaveGroup {} member {}", cfg.group_id, m.member_id)
            })?;
        }
        Ok::<(), Error>(())
    };
    match tokio::time::timeout(cfg.consumer.client.request_timeout, attempt).await {
        Ok(Ok(())) => tracing::debug!(group = %cfg.group_id, member = %member_id, "left the group"),
        Ok(Err(e)) => tracing::debug!(group = %cfg.group_id, error = %e, "LeaveGroup failed"),
        Err(_) => tracing::debug!(group = %cfg.group_id, "LeaveGroup timed out"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// joining
// ---------------------------------------------------------------------------------------------------------

/// Reacts to a failed group request: forget the coordinator, reset the membership, or report.
fn react(shared: &Shared, e: &Error) {
    if coordinator_failed(shared, e) {
        return;
    }
    if code_of(e) == Some(KafkaCode::FencedInstanceId) {
        // Another instance took this member's group.instance.id: fatal, as in the Java client. The group task
        // reports the partitions lost and stops.
        let mut fatal = shared.fatal.lock().unwrap();
        if fatal.is_none() {
            tracing::error!(group = %shared.cfg.group_id, error = %e, "fenced by another instance; giving up");
            *fatal = Some(e.clone());
        }
        drop(fatal);
        shared.wake.notify_one();
        return;
    }
    let mut st = shared.state.lock().unwrap();
    match code_of(e) {
        Some(KafkaCode::RebalanceInProgress)
        | Some(KafkaCode::MemberIdRequired)
        | Some(KafkaCode::CoordinatorLoadInProgress) => st.rejoin = true,
        Some(KafkaCode::IllegalGeneration) => {
            st.generation = -1;
            st.rejoin = true;
        }
        Some(KafkaCode::UnknownMemberId) => {
            st.generation = -1;
            st.member_id.clear();
            st.rejoin = true;
        }
        _ => {
            st.rejoin = true;
            drop(st);
            shared.report(e.clone());
        }
    }
}

/// JoinGroup and SyncGroup (the leader computing the assignment in between); returns this member's assignment.
async fn join_and_sync(shared: &Shared) -> Result<Assignment> {
    let cfg = &shared.cfg;
    let coord = shared.coordinator.get(shared).await?;
    let conn = coord.join.get().await?;
    let (member_id, generation, topics, owned) = {
        let st = shared.state.lock().unwrap();
        let mut owned: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for tp in &st.owned {
            owned.entry(tp.topic.to_string()).or_default().push(tp.partition);
        }
        (
            st.member_id.clone(),
            st.generation,
            st.subscription.clone(),
            owned,
        )
    };
    // Cooperative protocol, as the Java client: owned partitions and their generation in the subscription (v2+
    // field), and the generation again as the cooperative-sticky user data (for v0/v1 readers). Eager protocol:
    // nothing is owned when rejoining and range / roundrobin ignore the generation, so it is left unknown (-1):
    // the metadata then stays the same from one rejoin to the next, and a coordinator that starts a new round
    // whenever a member's metadata changes (tansu does) is not sent into one round per rejoin.
    let cooperative = cfg.cooperative();
    let metadata = Subscription {
        topics,
        generation: if cooperative { generation } else { -1 },
        owned: if cooperative { owned } else { BTreeMap::new() },
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
    let resp = conn.call(&req).await?;
    if resp.error_code == KafkaCode::MemberIdRequired.code() {
        shared.state.lock().unwrap().member_id = resp.member_id.clone();
    }
    check(resp.error_code, || format!("JoinGroup {}", cfg.group_id))?;
    let my_id = resp.member_id.clone();
    {
        let mut st = shared.state.lock().unwrap();
        st.member_id = my_id.clone();
        st.generation = resp.generation_id;
    }
    let protocol = resp.protocol_name.clone().unwrap_or_default();
    let kind = AssignorKind::parse(&protocol)
        .filter(|k| cfg.assignors.contains(k))
        .ok_or_else(|| Error::Kafka {
            code: KafkaCode::InconsistentGroupProtocol,
            context: format!(
                "JoinGroup {}: the group chose assignor {protocol:?}, which weir did not offer",
                cfg.group_id
            ),
        })?;
    let leader = resp.leader == my_id;
    tracing::debug!(group = %cfg.group_id, member = %my_id, generation = resp.generation_id, leader,
        protocol = %protocol, members = resp.members.len(), "joined");
    let (assignments, counts) = if leader && !resp.skip_assignment {
        let (a, c) = leader_assign(shared, &resp.members, kind).await?;
        (a, Some(c))
    } else {
        (Vec::new(), None)
    };
    let sync = SyncGroupRequest {
        group_id: cfg.group_id.clone(),
        generation_id: resp.generation_id,
        member_id: my_id.clone(),
        group_instance_id: cfg.group_instance_id.clone(),
        protocol_type: Some("consumer".into()),
        protocol_name: Some(kind.name().to_owned()),
        assignments,
    };
    let sresp = conn.call(&sync).await?;
    check(sresp.error_code, || format!("SyncGroup {}", cfg.group_id))?;
    shared.state.lock().unwrap().leader_counts = counts;
    let assignment = Assignment::decode(sresp.assignment).map_err(|e| Error::Protocol {
        broker: coord.addr.clone(),
        source: ProtoError::Decode {
            api: "SyncGroup assignment",
            version: -1,
            reason: e.0,
        },
    })?;
    Ok(assignment)
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
    let st = shared.state.lock().unwrap();
    let Some(counts) = &st.leader_counts else {
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

/// Starts consuming a new assignment from the committed offsets (or `auto.offset.reset`).
///
/// Cooperative protocol: partitions owned but not in the assignment are revoked (and the member rejoins, so
/// the follow-up rebalance can hand them on); partitions kept are not touched; only added partitions start,
/// and the assign callback gets only them (as the Java client, it is called even when none were added).
async fn apply(shared: &Shared, assignment: Assignment) -> Result<()> {
    let new: BTreeSet<TopicPartition> = assignment
        .partitions
        .iter()
        .flat_map(|(t, ps)| {
            let topic: Arc<str> = Arc::from(t.as_str());
            ps.iter().map(move |p| TopicPartition::new(topic.clone(), *p))
        })
        .collect();
    let list: Vec<TopicPartition> = if shared.cfg.cooperative() {
        let (added, revoked): (Vec<TopicPartition>, Vec<TopicPartition>) = {
            let st = shared.state.lock().unwrap();
            (
                new.difference(&st.owned).cloned().collect(),
                st.owned.difference(&new).cloned().collect(),
            )
        };
        if !revoked.is_empty() {
            if let Err(e) = revoke_some(shared, &revoked, shared.cfg.enable_auto_commit).await {
                tracing::debug!(error = %e, "commit of revoked partitions failed");
            }
            tracing::debug!(group = %shared.cfg.group_id, "revoked partitions; rejoining");
            shared.state.lock().unwrap().rejoin = true;
        }
        added
    } else {
        new.iter().cloned().collect()
    };
    let committed = fetch_committed(shared, &list).await?;
    let mut starts = Vec::with_capacity(list.len());
    let mut no_offset = Vec::new();
    for tp in &list {
        match committed.get(tp) {
            Some(&o) if o >= 0 => starts.push((tp.clone(), StartOffset::Offset(o))),
            _ => match shared.cfg.consumer.auto_offset_reset {
                OffsetReset::Earliest => starts.push((tp.clone(), StartOffset::Earliest)),
                OffsetReset::Latest => starts.push((tp.clone(), StartOffset::Latest)),
                OffsetReset::None => no_offset.push(tp.clone()),
            },
        }
    }
    {
        // Partitions still assigned and not ours any more (kept through the rebalance because the application
        // had paused them).
        let leftover: Vec<TopicPartition> = shared
            .consumer
            .assignment()
            .into_iter()
            .filter(|tp| !new.contains(tp))
            .collect();
        shared.consumer.unassign(&leftover);
    }
    let mut backoff = shared.cfg.consumer.client.retry_backoff;
    let mut attempts = 0;
    // Assigned held: nothing is fetched or delivered before the assign callback has run (it may seek).
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
        let mut st = shared.state.lock().unwrap();
        st.committed.retain(|tp, _| new.contains(tp));
        st.committed.extend(committed);
        st.owned = new;
    }
    for tp in no_offset {
        shared.report(Error::Kafka {
            code: KafkaCode::OffsetOutOfRange,
            context: format!(
                "{tp} has no committed offset in group {} and auto.offset.reset=none",
                shared.cfg.group_id
            ),
        });
    }
    tracing::info!(group = %shared.cfg.group_id, partitions = ?list, "partitions assigned");
    if let Some(l) = shared.listener() {
        l.on_assigned(&RebalanceContext::new(shared), &list).await;
    }
    if shared.state.lock().unwrap().generation < 0 {
        // Fenced by a heartbeat meanwhile: the next turn of the group task reports these lost; until then they
        // stay held.
        return Ok(());
    }
    // Partitions the application paused (kept through the rebalance) stay paused.
    shared.consumer.release(&list);
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// the task
// ---------------------------------------------------------------------------------------------------------

enum Beat {
    Ok,
    Rejoin,
    Fenced,
    CoordinatorLost,
    /// Fenced for good (see [`Shared::fatal`]).
    Fatal,
    Failed(Error),
}

async fn heartbeat(shared: &Shared) -> Beat {
    let cfg = &shared.cfg;
    let attempt = async {
        let coord = shared.coordinator.get(shared).await?;
        let conn = coord.link.get().await?;
        let (generation, member_id) = {
            let st = shared.state.lock().unwrap();
            (st.generation, st.member_id.clone())
        };
        let req = HeartbeatRequest {
            group_id: cfg.group_id.clone(),
            generation_id: generation,
            member_id,
            group_instance_id: cfg.group_instance_id.clone(),
        };
        let error_code = conn.call(&req).await?;
        check(error_code, || format!("Heartbeat {}", cfg.group_id))
    };
    match attempt.await {
        Ok(()) => {
            shared.touch();
            Beat::Ok
        }
        Err(e) if coordinator_failed(shared, &e) => Beat::CoordinatorLost,
        Err(e) => match code_of(&e) {
            Some(KafkaCode::RebalanceInProgress) => {
                shared.touch();
                Beat::Rejoin
            }
            Some(KafkaCode::IllegalGeneration | KafkaCode::UnknownMemberId) => {
                react(shared, &e);
                Beat::Fenced
            }
            Some(KafkaCode::FencedInstanceId) => {
                react(shared, &e);
                Beat::Fatal
            }
            Some(KafkaCode::CoordinatorLoadInProgress) => Beat::CoordinatorLost,
            _ => Beat::Failed(e),
        },
    }
}

pub(crate) async fn run(shared: Arc<Shared>) {
    let cfg = &shared.cfg;
    let base_backoff = cfg.consumer.client.retry_backoff;
    let mut backoff = base_backoff;
    let mut next_beat = Instant::now() + cfg.heartbeat_interval;
    let mut next_commit = Instant::now() + cfg.auto_commit_interval;
    loop {
        if shared.is_closed() {
            return;
        }
        if shared.fatal.lock().unwrap().is_some() {
            lose_all(&shared).await;
            // Partitions kept paused are not kept for a next assignment that will not come.
            shared.consumer.unassign(&shared.consumer.assignment());
            wait_closed(&shared).await;
            return;
        }
        let (rejoin, subscribed, idle) = {
            let st = shared.state.lock().unwrap();
            (st.rejoin, !st.subscription.is_empty(), st.left_idle)
        };
        if !subscribed || idle {
            if !subscribed && !shared.state.lock().unwrap().member_id.is_empty() {
                let _ = revoke_all(&shared, cfg.enable_auto_commit).await;
                leave(&shared).await;
                // No next assignment to keep paused partitions for.
                shared.consumer.unassign(&shared.consumer.assignment());
            }
            shared.wake.notified().await;
            continue;
        }
        if rejoin {
            let fenced = {
                let st = shared.state.lock().unwrap();
                st.generation < 0 && !st.owned.is_empty()
            };
            if fenced {
                // The generation was lost (KafkaCode::IllegalGeneration, KafkaCode::UnknownMemberId, session timeout): another
                // member may own the partitions already, so they are lost, not revoked (no commit).
                lose_all(&shared).await;
            } else if cfg.cooperative() {
                // KIP-429: owned partitions keep delivering through the rebalance.
                with_heartbeats(&shared, false, prepare_cooperative_join(&shared)).await;
                // A heartbeat during the commit or the revoke callback may have found the member fenced: then
                // what it still owns is lost, not kept into the next round.
                if shared.state.lock().unwrap().generation < 0 {
                    lose_all(&shared).await;
                }
            } else if let Err(e) =
                with_heartbeats(&shared, false, revoke_all(&shared, cfg.enable_auto_commit)).await
            {
                tracing::debug!(error = %e, "commit before rejoining failed");
            }
            // Cleared right before joining: a subscription change from now on flags it again.
            shared.state.lock().unwrap().rejoin = false;
            // Only the network exchange races `close`: callbacks (in `apply`) always run to their end.
            let joined = tokio::select! {
                r = join_and_sync(&shared) => r,
                _ = wait_closed(&shared) => return,
            };
            let joined = match joined {
                Ok(assignment) => with_heartbeats(&shared, true, apply(&shared, assignment)).await,
                Err(e) => Err(e),
            };
            match joined {
                Ok(()) => {
                    backoff = base_backoff;
                    next_beat = Instant::now() + cfg.heartbeat_interval;
                    shared.touch();
                }
                Err(e) => {
                    tracing::debug!(group = %cfg.group_id, error = %e, "join failed");
                    if code_of(&e).is_some() {
                        shared.touch(); // The coordinator answered, if with an error.
                    } else if shared.since_contact() > cfg.session_timeout && expire_session(&shared) {
                        // Cut off from the coordinator for a whole session while still owning partitions
                        // (cooperative members keep them through a rebalance): they are someone else's now.
                        continue;
                    }
                    let immediate = code_of(&e) == Some(KafkaCode::MemberIdRequired)
                        || code_of(&e) == Some(KafkaCode::RebalanceInProgress);
                    react(&shared, &e);
                    shared.state.lock().unwrap().rejoin = true;
                    if code_of(&e) == Some(KafkaCode::RebalanceInProgress) {
                        // Another round began before our SyncGroup. Rejoining at once can chase a coordinator
                        // that completes joins early (tansu does) round after round; a random pause of up to one
                        // heartbeat lets the other members rejoin first, so the next round includes everyone.
                        let pause = cfg.heartbeat_interval.mul_f64(rand::random::<f64>());
                        tokio::select! {
                            _ = tokio::time::sleep(pause) => {}
                            _ = wait_closed(&shared) => return,
                        }
                    }
                    if !immediate {
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = wait_closed(&shared) => return,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next_beat) => {
                next_beat = Instant::now() + cfg.heartbeat_interval;
                let idle_for = shared.state.lock().unwrap().last_poll.elapsed();
                if idle_for > cfg.max_poll_interval && shared.polling.load(Ordering::SeqCst) == 0 {
                    tracing::warn!(group = %cfg.group_id, ?idle_for,
                        "poll not called within max.poll.interval.ms; leaving the group until the next poll");
                    lose_all(&shared).await;
                    leave(&shared).await;
                    shared.state.lock().unwrap().left_idle = true;
                    continue;
                }
                if partitions_changed(&shared) {
                    let mut st = shared.state.lock().unwrap();
                    st.leader_counts = None;
                    st.rejoin = true;
                    continue;
                }
                // A heartbeat stuck on an unreachable coordinator does not outlast the session.
                let left = cfg.session_timeout.saturating_sub(shared.since_contact());
                let beat = match tokio::time::timeout(left, heartbeat(&shared)).await {
                    Ok(beat) => beat,
                    Err(_) => {
                        // The link is stuck: find the coordinator afresh next time.
                        shared.coordinator.invalidate();
                        Beat::CoordinatorLost
                    }
                };
                if !matches!(beat, Beat::Ok) && shared.since_contact() > cfg.session_timeout && expire_session(&shared) {
                    continue;
                }
                match beat {
                    Beat::Ok => {}
                    Beat::Fatal => {}
                    Beat::Rejoin => {
                        tracing::debug!(group = %cfg.group_id, "rebalance in progress; rejoining");
                        shared.state.lock().unwrap().rejoin = true;
                    }
                    Beat::Fenced => {
                        lose_all(&shared).await;
                        shared.state.lock().unwrap().rejoin = true;
                    }
                    Beat::CoordinatorLost => {
                        // Rediscovered by the next heartbeat, after a short pause.
                        next_beat = Instant::now() + base_backoff;
                    }
                    Beat::Failed(e) => {
                        shared.report(e);
                        shared.state.lock().unwrap().rejoin = true;
                    }
                }
            }
            _ = tokio::time::sleep_until(next_commit), if cfg.enable_auto_commit => {
                next_commit = Instant::now() + cfg.auto_commit_interval;
                let offsets = delivered_positions(&shared, true);
                if let Err(e) = commit_with(&shared, &offsets, false).await {
                    tracing::debug!(group = %cfg.group_id, error = %e, "auto-commit failed");
                    react(&shared, &e);
                }
            }
            _ = shared.wake.notified() => {}
        }
    }
}

/// Runs `work` (commits, rebalance callbacks, fetching committed offsets) while heartbeating every
/// `heartbeat.interval.ms`, so that slow work does not cost the member its session (as the Java client's
/// heartbeat thread goes on during callbacks). A heartbeat announcing a new round flags a rejoin if
/// `rejoin_on_rebalance` (not while preparing to join anyway).
async fn with_heartbeats<T>(shared: &Shared, rejoin_on_rebalance: bool, work: impl Future<Output = T>) -> T {
    let beats = async {
        loop {
            tokio::time::sleep(shared.cfg.heartbeat_interval).await;
            match heartbeat(shared).await {
                Beat::Rejoin if rejoin_on_rebalance => shared.state.lock().unwrap().rejoin = true,
                Beat::Failed(e) => shared.report(e),
                // Fenced and Fatal were recorded by `react`; the others need nothing here.
                _ => {}
            }
        }
    };
    tokio::select! {
        out = work => out,
        never = beats => never,
    }
}

/// No heartbeat succeeded for `session.timeout.ms`: the coordinator has evicted this member, so it forgets its
/// generation (and, if dynamic, its member id) and rejoins; the next round reports its partitions lost. Returns
/// whether it was in a generation.
fn expire_session(shared: &Shared) -> bool {
    let mut st = shared.state.lock().unwrap();
    if st.generation < 0 {
        return false;
    }
    tracing::warn!(group = %shared.cfg.group_id, generation = st.generation,
        "no successful heartbeat within session.timeout.ms; the member counts itself out of the group");
    st.generation = -1;
    if shared.cfg.group_instance_id.is_none() {
        st.member_id.clear();
    }
    st.rejoin = true;
    true
}

async fn wait_closed(shared: &Shared) {
    loop {
        if shared.is_closed() {
            return;
        }
        shared.wake.notified().await;
        if shared.is_closed() {
            return;
        }
        // Not a close: a subscription change (it flagged a rejoin, done after this join).
    }
}
