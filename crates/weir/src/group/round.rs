//! One round of the classic group protocol as the driver performs it: JoinGroup announcing the subscription,
//! the leader's assignment, SyncGroup; and the leader's watch over the partition counts its assignment used.
//! The rest of the driver (revoking, losing, setting an assignment up, committing) does not depend on the
//! protocol; a second membership protocol (KIP-848's ConsumerGroupHeartbeat) brings its own member state machine
//! and its own calls next to these.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use weir_proto::group::{JoinGroupMember, JoinGroupRequest, SyncGroupRequest};
use weir_proto::ProtoError;

use super::assignor::{AssignorKind, MemberSubscription};
use super::member::{Event, Joined};
use super::protocol::{Assignment, Subscription};
use super::{coordinator, Shared};
use crate::error::{Error, KafkaCode, Result};
use crate::types::TopicPartition;

/// The JoinGroup and SyncGroup of one round: what the leader needs between the two.
pub(crate) struct Round {
    kind: AssignorKind,
    members: Vec<JoinGroupMember>,
}

pub(crate) async fn join(
    shared: &Shared,
    member_id: String,
    generation: i32,
    owned: Vec<TopicPartition>,
) -> Event {
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
        rack: cfg.consumer.client_rack.clone(),
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

pub(crate) async fn sync(
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
pub(crate) fn partitions_changed(shared: &Shared) -> bool {
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
