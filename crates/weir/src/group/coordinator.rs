//! The group coordinator: finding it (FindCoordinator), forgetting it when it moves, and the typed group calls
//! made to it (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch). Each call returns the
//! response with its error codes checked; what an error means for the membership is decided by the member
//! (`member.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use weir_proto::group::{
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, SyncGroupRequest,
};
use weir_proto::group_offsets::{CommitOffset, OffsetCommitRequest, OffsetFetchRequest};
use weir_proto::Call;

use super::{GroupConfig, Shared};
use crate::cluster::coordinators::{self, coordinator_moved};
use crate::config::ClientConfig;
use crate::error::{check, Error, KafkaCode, Result};
use crate::net::BrokerLink;
use crate::types::TopicPartition;

/// The coordinator's links: one with the normal request timeout (heartbeats, commits), one whose timeout
/// covers a JoinGroup / SyncGroup that the coordinator holds for up to the rebalance timeout.
#[derive(Clone)]
pub(crate) struct CoordLinks {
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
        let (addr, node) = shared
            .cluster
            .find_coordinator(group, coordinators::GROUP)
            .await?;
        tracing::debug!(group = %group, node, addr = %addr, "group coordinator found");
        let transport = shared.cluster.transport();
        let links = CoordLinks {
            link: Arc::new(BrokerLink::new(addr.clone(), self.cfg.clone(), transport.clone())),
            join: Arc::new(BrokerLink::new(addr, self.join_cfg.clone(), transport.clone())),
        };
        *self.current.lock().unwrap() = Some(links.clone());
        Ok(links)
    }
}

/// Whether `e` says only that the coordinator cannot answer now (moved, unreachable, or still loading the
/// group): worth retrying, never worth reporting.
pub(crate) fn unavailable(e: &Error) -> bool {
    coordinator_moved(e) || e.kafka_code() == Some(KafkaCode::CoordinatorLoadInProgress)
}

/// Sends `req` to the coordinator (on its join link, whose timeout covers a JoinGroup or SyncGroup held for the
/// rebalance timeout, if `join`) and reads the response with `answer`, which checks its error codes. Any error,
/// the response's own included, that says the coordinator moved makes the next call find it again.
async fn call<C: Call, T>(
    shared: &Shared,
    req: &C,
    join: bool,
    answer: impl FnOnce(C::Response) -> Result<T>,
) -> Result<T> {
    let result = async {
        let coord = shared.coordinator.get(shared).await?;
        let link = if join { &coord.join } else { &coord.link };
        answer(link.get().await?.call(req).await?)
    }
    .await;
    if result.as_ref().is_err_and(coordinator_moved) {
        shared.coordinator.invalidate();
    }
    result
}

/// Checks a response's error code for `api` of this group.
fn checked(shared: &Shared, api: &str, code: i16) -> Result<()> {
    check(code, || format!("{api} {}", shared.cfg.group_id))
}

/// Retries `op` on coordinator movement and transient errors: new attempts start until the request timeout has
/// passed since the first one began, and a first attempt that failed late (it timed out: a connection that died
/// silently) is tried once more all the same, on a fresh connection. Closing does not cut the retries short: a
/// closing member's commit is its last chance to save its positions (as the Java client retries it within the
/// close timeout).
async fn with_retries<T, F, Fut>(shared: &Shared, mut op: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let client = &shared.cfg.consumer.client;
    let deadline = Instant::now() + client.request_timeout;
    let mut backoff = client.retry_backoff;
    let mut first = true;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let transient = unavailable(&e) || e.kafka_code() == Some(KafkaCode::UnstableOffsetCommit);
                let in_time = std::mem::take(&mut first) || Instant::now() + backoff <= deadline;
                if !transient || !in_time {
                    return Err(e);
                }
                tracing::debug!(error = %e, "group request failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = client.next_retry_backoff(backoff);
            }
        }
    }
}

/// JoinGroup. MEMBER_ID_REQUIRED comes back as the response (its member id is the one to join with).
pub(crate) async fn join(shared: &Shared, req: &JoinGroupRequest) -> Result<JoinGroupResponse> {
    call(shared, req, true, |r| {
        if r.error_code != KafkaCode::MemberIdRequired.code() {
            checked(shared, "JoinGroup", r.error_code)?;
        }
        Ok(r)
    })
    .await
}

/// SyncGroup; returns this member's assignment, encoded.
pub(crate) async fn sync(shared: &Shared, req: &SyncGroupRequest) -> Result<bytes::Bytes> {
    call(shared, req, true, |r| {
        checked(shared, "SyncGroup", r.error_code)?;
        Ok(r.assignment)
    })
    .await
}

/// Heartbeat, given up after `within` (the coordinator is then found again).
pub(crate) async fn heartbeat(
    shared: &Shared,
    generation: i32,
    member_id: String,
    within: Duration,
) -> Result<()> {
    let cfg = &shared.cfg;
    let req = HeartbeatRequest {
        group_id: cfg.group_id.clone(),
        generation_id: generation,
        member_id,
        group_instance_id: cfg.group_instance_id.clone(),
    };
    let beat = call(shared, &req, false, |code| checked(shared, "Heartbeat", code));
    match tokio::time::timeout(within, beat).await {
        Ok(r) => r,
        Err(_) => {
            // The link is stuck: find the coordinator afresh next time.
            shared.coordinator.invalidate();
            Err(Error::Timeout {
                what: format!("Heartbeat {}", cfg.group_id),
                after: within,
            })
        }
    }
}

/// LeaveGroup for `member_id`, bounded by the request timeout; the outcome is only logged.
pub(crate) async fn leave(shared: &Shared, member_id: &str) {
    let cfg = &shared.cfg;
    let req = LeaveGroupRequest {
        group_id: cfg.group_id.clone(),
        member_id: member_id.to_owned(),
        group_instance_id: None,
        reason: Some("the consumer is being closed".into()),
    };
    let attempt = call(shared, &req, false, |r| {
        checked(shared, "LeaveGroup", r.error_code)?;
        for m in &r.members {
            check(m.error_code, || {
                format!("LeaveGroup {} member {}", cfg.group_id, m.member_id)
            })?;
        }
        Ok(())
    });
    match tokio::time::timeout(cfg.consumer.client.request_timeout, attempt).await {
        Ok(Ok(())) => tracing::debug!(group = %cfg.group_id, member = %member_id, "left the group"),
        Ok(Err(e)) => tracing::debug!(group = %cfg.group_id, error = %e, "LeaveGroup failed"),
        Err(_) => tracing::debug!(group = %cfg.group_id, "LeaveGroup timed out"),
    }
}

/// OffsetCommit of `offsets` as `member_id` in `generation`; retried on transient failures if `retry`.
pub(crate) async fn commit(
    shared: &Shared,
    offsets: &[(TopicPartition, i64)],
    generation: i32,
    member_id: &str,
    retry: bool,
) -> Result<()> {
    let mut by_topic: BTreeMap<&str, Vec<CommitOffset>> = BTreeMap::new();
    for (tp, o) in offsets {
        // The epoch of the record before the offset, when the offset is where this member delivered to.
        by_topic.entry(&tp.topic).or_default().push(CommitOffset {
            partition: tp.partition,
            offset: *o,
            leader_epoch: shared.consumer.delivered_epoch_at(tp, *o),
        });
    }
    let cfg = &shared.cfg;
    let req = OffsetCommitRequest {
        group_id: cfg.group_id.clone(),
        generation_id: generation,
        member_id: member_id.to_owned(),
        group_instance_id: cfg.group_instance_id.clone(),
        topics: by_topic.into_iter().map(|(t, ps)| (t.to_owned(), ps)).collect(),
    };
    let once = || {
        call(shared, &req, false, |topics| {
            for t in &topics {
                for &(partition, error_code) in &t.partitions {
                    check(error_code, || {
                        format!("OffsetCommit {} {}-{}", cfg.group_id, t.name, partition)
                    })?;
                }
            }
            Ok(())
        })
    };
    if retry {
        with_retries(shared, once).await
    } else {
        once().await
    }
}

/// Committed offsets (-1 where none) of `partitions`, retried on transient failures.
pub(crate) async fn fetch_committed(
    shared: &Shared,
    partitions: &[TopicPartition],
) -> Result<HashMap<TopicPartition, i64>> {
    let committed = fetch_committed_with_epochs(shared, partitions).await?;
    Ok(committed
        .into_iter()
        .map(|(tp, (offset, _))| (tp, offset))
        .collect())
}

/// Committed offsets (-1 where none) of `partitions`, each with the leader epoch its committer gave (KIP-320),
/// retried on transient failures.
pub(crate) async fn fetch_committed_with_epochs(
    shared: &Shared,
    partitions: &[TopicPartition],
) -> Result<HashMap<TopicPartition, (i64, Option<i32>)>> {
    if partitions.is_empty() {
        return Ok(HashMap::new());
    }
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    let group = &shared.cfg.group_id;
    // Stable offsets only, as the Java consumer asks: an offset a transaction is still committing is waited for
    // (UNSTABLE_OFFSET_COMMIT, retried), never answered with the one before it, which a new owner of the
    // partition would process again (exactly-once across rebalances, KIP-447).
    let req = OffsetFetchRequest {
        group_id: group.clone(),
        topics: Some(by_topic.into_iter().map(|(t, ps)| (t.to_owned(), ps)).collect()),
        require_stable: true,
    };
    let once = || {
        call(shared, &req, false, |resp| {
            checked(shared, "OffsetFetch", resp.error_code)?;
            let mut out = HashMap::new();
            for t in &resp.topics {
                let topic: Arc<str> = Arc::from(t.name.as_str());
                for p in &t.partitions {
                    check(p.error_code, || {
                        format!("OffsetFetch {group} {}-{}", topic, p.partition)
                    })?;
                    out.insert(
                        TopicPartition::new(topic.clone(), p.partition),
                        (p.committed_offset, p.committed_leader_epoch),
                    );
                }
            }
            Ok(out)
        })
    };
    with_retries(shared, once).await
}
