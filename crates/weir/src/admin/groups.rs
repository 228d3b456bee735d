//! Consumer groups: list them ([`GroupFilter`], [`ListedGroup`]), describe them ([`GroupDescription`],
//! [`GroupMember`]) and delete them, as `kafka-consumer-groups.sh` does with Kafka's Java admin client.
//!
//! Groups live on their coordinators: every broker lists the groups it coordinates (ListGroups goes to each
//! broker), and a group is described or deleted by its coordinator (found with FindCoordinator; groups that
//! share a coordinator share a request). A group is described with the API of its type, as the Java admin
//! client picks it: ConsumerGroupDescribe first (a group of KIP-848's consumer protocol), then, for a group
//! that is not one (GROUP_ID_NOT_FOUND), DescribeGroups (a classic group). A coordinator that moved or is
//! still loading is asked again, with backoff, for at most `max.block.ms`.
//!
//! ```no_run
//! use weir::admin::{GroupFilter, GroupState};
//! # async fn demo(admin: weir::Admin) -> weir::Result<()> {
//! for g in admin.list_groups(&GroupFilter::consumer_groups()).await? {
//!     println!("{} {} {:?}", g.group_id, g.group_type, g.state);
//! }
//! for (id, described) in admin.describe_groups(&["billing"]).await? {
//!     let group = described?;
//!     for m in &group.members {
//!         println!("{id}: {} on {} owns {:?}", m.client_id, m.host, m.assignment);
//!     }
//! }
//! for (id, outcome) in admin.delete_groups(&["old-billing"]).await? {
//!     // NonEmptyGroup while it has members.
//!     println!("{id}: {outcome:?}");
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use weir_proto::consumer_protocol::decode_consumer_assignment;
use weir_proto::group_admin::{
    AssignedTopic, ConsumerGroupDescribeRequest, DeleteGroupsRequest, DescribeGroupsRequest,
    DescribedConsumerGroup, DescribedGroup, ListGroupsRequest, LIST_GROUPS_STATES_FILTER_VERSION,
    LIST_GROUPS_TYPES_FILTER_VERSION,
};
use weir_proto::Call;

use super::{count_mismatch, Admin};
use crate::cluster::coordinators::{coordinator_moved, GROUP};
use crate::cluster::RetryWindow;
use crate::error::{Error, KafkaCode, Result};
use crate::net::Connection;
use crate::types::TopicPartition;

/// The kind of a group (Kafka's `GroupType`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum GroupType {
    /// A group of the classic protocol (JoinGroup / SyncGroup): weir's [`crate::group::GroupConsumer`], Java
    /// consumers with `group.protocol=classic`, librdkafka, Kafka Connect.
    Classic,
    /// A group of the consumer protocol of KIP-848 (Java consumers with `group.protocol=consumer`): the
    /// coordinator assigns partitions.
    Consumer,
    /// A share group (KIP-932).
    Share,
    /// A Kafka Streams group (KIP-1071).
    Streams,
    /// A type weir does not know, as the broker named it ("" when the broker does not say: ListGroups before
    /// v5).
    Unknown(String),
}

impl GroupType {
    /// Kafka's name: `classic`, `consumer`, `share`, `streams`, or the unknown name as received.
    pub fn name(&self) -> &str {
        match self {
            GroupType::Classic => "classic",
            GroupType::Consumer => "consumer",
            GroupType::Share => "share",
            GroupType::Streams => "streams",
            GroupType::Unknown(s) => s,
        }
    }

    /// The type a broker names (case ignored); never fails.
    pub fn from_name(name: &str) -> GroupType {
        match name.to_ascii_lowercase().as_str() {
            "classic" => GroupType::Classic,
            "consumer" => GroupType::Consumer,
            "share" => GroupType::Share,
            "streams" => GroupType::Streams,
            _ => GroupType::Unknown(name.to_owned()),
        }
    }
}

impl fmt::Display for GroupType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupType::Unknown(s) if s.is_empty() => f.write_str("unknown"),
            t => f.write_str(t.name()),
        }
    }
}

impl std::str::FromStr for GroupType {
    type Err = Error;

    /// `classic`, `consumer`, `share` or `streams`, any case; anything else is [`Error::InvalidArgument`].
    fn from_str(s: &str) -> Result<GroupType> {
        match GroupType::from_name(s.trim()) {
            GroupType::Unknown(_) => Err(Error::InvalidArgument(format!(
                "unknown group type {s:?} (expected classic, consumer, share or streams)"
            ))),
            t => Ok(t),
        }
    }
}

/// The state of a group (Kafka's `GroupState`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum GroupState {
    /// Classic: members are (re)joining.
    PreparingRebalance,
    /// Classic: waiting for the leader's assignment.
    CompletingRebalance,
    /// Members own their partitions.
    Stable,
    /// No members and no committed offsets (or just deleted): the group does not exist.
    Dead,
    /// No members; committed offsets may remain.
    Empty,
    /// Consumer protocol: the coordinator is computing a new target assignment.
    Assigning,
    /// Consumer protocol: members are moving to the target assignment.
    Reconciling,
    /// Streams: the group's topology is not ready.
    NotReady,
    /// A state weir does not know, as the broker named it.
    Unknown(String),
}

impl GroupState {
    /// Every named state.
    pub const ALL: &'static [GroupState] = &[
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
        GroupState::Empty,
        GroupState::Assigning,
        GroupState::Reconciling,
        GroupState::NotReady,
    ];

    /// Kafka's name (`Stable`, `PreparingRebalance`, ...), or the unknown name as received.
    pub fn name(&self) -> &str {
        match self {
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
            GroupState::Empty => "Empty",
            GroupState::Assigning => "Assigning",
            GroupState::Reconciling => "Reconciling",
            GroupState::NotReady => "NotReady",
            GroupState::Unknown(s) => s,
        }
    }

    /// The state a broker names (case, `_`, `-` and spaces ignored); never fails.
    pub fn from_name(name: &str) -> GroupState {
        let n = normalize(name);
        GroupState::ALL
            .iter()
            .find(|s| normalize(s.name()) == n)
            .cloned()
            .unwrap_or_else(|| GroupState::Unknown(name.to_owned()))
    }

    /// Whether the group has no active members (`Empty` or `Dead`): only then may its offsets be reset.
    pub fn is_inactive(&self) -> bool {
        matches!(self, GroupState::Empty | GroupState::Dead)
    }
}

/// `Stable`, `STABLE`, `preparing_rebalance`, `Preparing-Rebalance` all become `stable` /
/// `preparingrebalance`.
fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupState::Unknown(s) if s.is_empty() => f.write_str("Unknown"),
            s => f.write_str(s.name()),
        }
    }
}

impl std::str::FromStr for GroupState {
    type Err = Error;

    /// Kafka's name of a state, any case, `_` and `-` ignored (`stable`, `PREPARING_REBALANCE`); anything
    /// else is [`Error::InvalidArgument`].
    fn from_str(s: &str) -> Result<GroupState> {
        match GroupState::from_name(s.trim()) {
            GroupState::Unknown(_) => Err(Error::InvalidArgument(format!(
                "unknown group state {s:?} (expected one of {})",
                GroupState::ALL
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            st => Ok(st),
        }
    }
}

/// Which groups [`Admin::list_groups`] lists: each non-empty field narrows the list.
/// [`GroupFilter::default`] lists every group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFilter {
    /// Only groups in one of these states.
    pub states: Vec<GroupState>,
    /// Only groups of one of these types.
    pub types: Vec<GroupType>,
    /// Only groups of one of these protocol types (`consumer`; `""` for a group that only ever committed
    /// offsets). Filtered here, not by the broker.
    pub protocol_types: Vec<String>,
}

impl GroupFilter {
    /// Every group.
    pub fn all() -> GroupFilter {
        GroupFilter::default()
    }

    /// Consumer groups, as `kafka-consumer-groups.sh --list` shows them: classic and consumer-protocol groups
    /// whose protocol type is `consumer` or empty (not Kafka Connect's, not share or streams groups).
    pub fn consumer_groups() -> GroupFilter {
        GroupFilter {
            states: Vec::new(),
            types: vec![GroupType::Classic, GroupType::Consumer],
            protocol_types: vec!["consumer".into(), String::new()],
        }
    }

    /// Only groups in `state` (added to those already named).
    pub fn with_state(mut self, state: GroupState) -> GroupFilter {
        self.states.push(state);
        self
    }

    /// Only groups of `group_type` (added to those already named).
    pub fn with_type(mut self, group_type: GroupType) -> GroupFilter {
        self.types.push(group_type);
        self
    }

    fn matches(&self, g: &ListedGroup) -> bool {
        (self.states.is_empty() || g.state.as_ref().is_some_and(|s| self.states.contains(s)))
            && (self.types.is_empty() || self.types.contains(&g.group_type))
            && (self.protocol_types.is_empty() || self.protocol_types.contains(&g.protocol_type))
    }
}

/// One group, as [`Admin::list_groups`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListedGroup {
    /// The group id.
    pub group_id: String,
    /// Its type.
    pub group_type: GroupType,
    /// Its state (`None` from a broker that does not say: ListGroups before v4).
    pub state: Option<GroupState>,
    /// Its protocol type (`consumer`, `connect`, or `""` for a group that only ever committed offsets).
    pub protocol_type: String,
    /// The node id of its coordinator (the broker that listed it).
    pub coordinator: i32,
}

/// A consumer group, as [`Admin::describe_groups`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupDescription {
    /// The group id.
    pub group_id: String,
    /// `Classic` (described with DescribeGroups) or `Consumer` (described with ConsumerGroupDescribe).
    pub group_type: GroupType,
    /// The group's state.
    pub state: GroupState,
    /// The protocol type (`consumer` for consumers; `""` for an empty classic group; always `consumer` for a
    /// consumer-protocol group).
    pub protocol_type: String,
    /// Classic: the protocol the group chose (for consumers, the assignor: `range`, `cooperative-sticky`);
    /// consumer protocol: the coordinator's assignor (`uniform`, `range`). Empty when there is none.
    pub protocol: String,
    /// Consumer protocol: the group's epoch (bumped on every change of membership or subscriptions).
    pub group_epoch: Option<i32>,
    /// Consumer protocol: the epoch of the group's target assignment.
    pub assignment_epoch: Option<i32>,
    /// The node id of the group's coordinator.
    pub coordinator: i32,
    /// The members, sorted by member id.
    pub members: Vec<GroupMember>,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupMember {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its static instance id (`group.instance.id`), if any.
    pub instance_id: Option<String>,
    /// Its client id.
    pub client_id: String,
    /// The host it connects from, as the broker sees it (`/127.0.0.1`).
    pub host: String,
    /// Consumer protocol: its rack (`client.rack`), if any.
    pub rack: Option<String>,
    /// Consumer protocol: its member epoch.
    pub member_epoch: Option<i32>,
    /// Consumer protocol: the topics it subscribes to by name (classic groups: empty).
    pub subscribed_topics: Vec<String>,
    /// Consumer protocol: the regular expression it subscribes with, if any.
    pub subscribed_regex: Option<String>,
    /// The partitions it owns, sorted: for a classic group whose protocol type is `consumer`, decoded from
    /// the assignment its leader gave it (empty for other protocol types, whose assignments are opaque).
    pub assignment: Vec<TopicPartition>,
    /// Consumer protocol: the partitions the coordinator wants it to own once it has reconciled, sorted.
    pub target_assignment: Option<Vec<TopicPartition>>,
}

/// What one round made of one group: an outcome, or a reason to ask again.
pub(super) enum Step<T> {
    /// The group's outcome.
    Done(Result<T>),
    /// The coordinator moved, is unreachable or is loading: find it and ask again.
    Retry(Error),
}

impl<T> Step<T> {
    /// An error's step: retried if it says the coordinator cannot answer now.
    pub(super) fn failed(e: Error) -> Step<T> {
        if coordinator_unavailable(&e) {
            Step::Retry(e)
        } else {
            Step::Done(Err(e))
        }
    }

    /// The step of a group's error code (0: `ok()`).
    pub(super) fn of_code(
        code: i16,
        context: impl FnOnce() -> String,
        ok: impl FnOnce() -> Result<T>,
    ) -> Step<T> {
        match KafkaCode::from_code(code) {
            None => Step::Done(ok()),
            Some(code) => Step::failed(Error::Kafka {
                code,
                context: context(),
            }),
        }
    }
}

/// Whether `e` says only that a group's coordinator cannot answer now (moved, unreachable, loading the
/// group).
pub(super) fn coordinator_unavailable(e: &Error) -> bool {
    coordinator_moved(e) || e.kafka_code() == Some(KafkaCode::CoordinatorLoadInProgress)
}

/// Sorted `TopicPartition`s of `(topic, partitions)` pairs.
fn partitions_of<'a>(topics: impl IntoIterator<Item = (&'a str, &'a [i32])>) -> Vec<TopicPartition> {
    let mut out: Vec<TopicPartition> = Vec::new();
    for (topic, parts) in topics {
        let topic: Arc<str> = Arc::from(topic);
        out.extend(parts.iter().map(|&p| TopicPartition::new(Arc::clone(&topic), p)));
    }
    out.sort();
    out.dedup();
    out
}

fn assigned(topics: &[AssignedTopic]) -> Vec<TopicPartition> {
    partitions_of(
        topics
            .iter()
            .map(|t| (t.topic_name.as_str(), t.partitions.as_slice())),
    )
}

/// A consumer-protocol group's description.
fn from_consumer_group(d: DescribedConsumerGroup, coordinator: i32) -> GroupDescription {
    let mut members: Vec<GroupMember> = d
        .members
        .into_iter()
        .map(|m| GroupMember {
            assignment: assigned(&m.assignment),
            target_assignment: Some(assigned(&m.target_assignment)),
            member_id: m.member_id,
            instance_id: m.instance_id,
            client_id: m.client_id,
            host: m.client_host,
            rack: m.rack_id,
            member_epoch: Some(m.member_epoch),
            subscribed_topics: m.subscribed_topic_names,
            subscribed_regex: m.subscribed_topic_regex,
        })
        .collect();
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    GroupDescription {
        group_id: d.group_id,
        group_type: GroupType::Consumer,
        state: GroupState::from_name(&d.group_state),
        protocol_type: "consumer".into(),
        protocol: d.assignor_name,
        group_epoch: Some(d.group_epoch),
        assignment_epoch: Some(d.assignment_epoch),
        coordinator,
        members,
    }
}

/// A classic group's description; members' assignments are decoded (bounded) when the protocol type is
/// `consumer`. An assignment that does not decode is the group's [`Error::Protocol`].
fn from_classic_group(d: DescribedGroup, coordinator: i32, broker: &str) -> Result<GroupDescription> {
    let consumer = d.protocol_type == "consumer";
    let mut members = Vec::with_capacity(d.members.len());
    for m in d.members {
        let assignment = if consumer {
            let a = decode_consumer_assignment(m.member_assignment).map_err(|source| Error::Protocol {
                broker: broker.to_owned(),
                source,
            })?;
            partitions_of(a.partitions.iter().map(|(t, ps)| (t.as_str(), ps.as_slice())))
        } else {
            Vec::new()
        };
        members.push(GroupMember {
            member_id: m.member_id,
            instance_id: m.group_instance_id,
            client_id: m.client_id,
            host: m.client_host,
            rack: None,
            member_epoch: None,
            subscribed_topics: Vec::new(),
            subscribed_regex: None,
            assignment,
            target_assignment: None,
        });
    }
    members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
    Ok(GroupDescription {
        group_id: d.group_id,
        group_type: GroupType::Classic,
        state: GroupState::from_name(&d.group_state),
        protocol_type: d.protocol_type,
        protocol: d.protocol_data,
        group_epoch: None,
        assignment_epoch: None,
        coordinator,
        members,
    })
}

/// `groups` without repeats, in order.
fn distinct(groups: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(groups.len());
    for g in groups {
        if !out.iter().any(|o| o == g) {
            out.push((*g).to_owned());
        }
    }
    out
}

/// The answer of `C` for each group of `asked`, found by id in `answers`: a group the broker did not answer
/// about is its [`Error::Protocol`].
fn by_group<C: Call, R, T>(
    conn: &Connection,
    asked: Vec<String>,
    answers: Vec<R>,
    id: impl Fn(&R) -> &str,
    mut step: impl FnMut(R) -> Step<T>,
) -> Vec<(String, Step<T>)> {
    let mut answers: HashMap<String, R> = answers.into_iter().map(|r| (id(&r).to_owned(), r)).collect();
    asked
        .into_iter()
        .map(|g| {
            let s = match answers.remove(&g) {
                Some(r) => step(r),
                None => Step::Done(Err(count_mismatch::<C>(conn, format!("no result for group {g}")))),
            };
            (g, s)
        })
        .collect()
}

impl Admin {
    /// The groups every broker coordinates that `filter` matches, sorted by id. States and types are filtered
    /// by the brokers (ListGroups v4 and v5) and again here; a broker too old to report a state or type that
    /// the filter names fails the call with [`Error::UnsupportedApi`]. One broker's error fails the call.
    ///
    /// ```no_run
    /// use weir::admin::{GroupFilter, GroupState};
    /// # async fn demo(admin: weir::Admin) -> weir::Result<()> {
    /// let idle = GroupFilter::consumer_groups().with_state(GroupState::Empty);
    /// for g in admin.list_groups(&idle).await? {
    ///     println!("{}", g.group_id);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_groups(&self, filter: &GroupFilter) -> Result<Vec<ListedGroup>> {
        let cluster = self.cluster()?;
        let snapshot = cluster.refresh(false).await?;
        let mut brokers: Vec<i32> = snapshot.brokers.keys().copied().collect();
        brokers.sort_unstable();
        let req = ListGroupsRequest {
            states_filter: filter.states.iter().map(|s| s.name().to_owned()).collect(),
            types_filter: filter.types.iter().map(|t| t.name().to_owned()).collect(),
        };
        let asks = brokers.iter().map(|&id| self.list_groups_of(id, &req, filter));
        let mut groups = Vec::new();
        for listed in futures::future::join_all(asks).await {
            groups.extend(listed?);
        }
        groups.retain(|g| filter.matches(g));
        groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        groups.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(groups)
    }

    /// ListGroups of one broker, asked again while it is loading its groups.
    async fn list_groups_of(
        &self,
        id: i32,
        req: &ListGroupsRequest,
        filter: &GroupFilter,
    ) -> Result<Vec<ListedGroup>> {
        let cluster = self.cluster()?;
        let mut retry = RetryWindow::new(cluster.config());
        loop {
            let attempt = async {
                let conn = cluster.link(id)?.get().await?;
                let version = conn.version::<ListGroupsRequest>()?;
                let unfiltered = |what: &'static str| Error::UnsupportedApi {
                    broker: conn.addr().to_owned(),
                    api: what,
                };
                if !filter.states.is_empty() && version < LIST_GROUPS_STATES_FILTER_VERSION {
                    return Err(unfiltered("ListGroups with group states (v4)"));
                }
                if !filter.types.is_empty() && version < LIST_GROUPS_TYPES_FILTER_VERSION {
                    return Err(unfiltered("ListGroups with group types (v5)"));
                }
                let resp = conn.call(req).await?;
                crate::error::check(resp.error_code, || format!("ListGroups of broker {id}"))?;
                Ok(resp
                    .groups
                    .into_iter()
                    .map(|g| ListedGroup {
                        group_type: GroupType::from_name(g.group_type.as_deref().unwrap_or_default()),
                        state: g.group_state.as_deref().map(GroupState::from_name),
                        group_id: g.group_id,
                        protocol_type: g.protocol_type,
                        coordinator: id,
                    })
                    .collect())
            }
            .await;
            match attempt {
                Err(e) if e.is_retriable() && retry.wait().await => {
                    tracing::debug!(broker = id, error = %e, "ListGroups: retrying");
                }
                other => return other,
            }
        }
    }

    /// Describes each of `groups` (repeats asked once): one entry per group, in the order given, with its own
    /// outcome: the description, or [`Error::Kafka`] with `GroupIdNotFound` (no such group),
    /// `GroupAuthorizationFailed`, ..., or [`Error::Protocol`] for a member's assignment that does not
    /// decode. A consumer-protocol group is described with ConsumerGroupDescribe (epochs, target assignments),
    /// any other with DescribeGroups. The outer error is the call's (the client closed).
    ///
    /// ```no_run
    /// # async fn demo(admin: weir::Admin) -> weir::Result<()> {
    /// for (id, described) in admin.describe_groups(&["billing", "audit"]).await? {
    ///     match described {
    ///         Ok(g) => println!("{id}: {} {} with {} members", g.group_type, g.state, g.members.len()),
    ///         Err(e) => println!("{id}: {e}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn describe_groups(&self, groups: &[&str]) -> Result<Vec<(String, Result<GroupDescription>)>> {
        self.per_group(groups, |conn, node, asked| self.describe_round(conn, node, asked))
            .await
    }

    /// One round of [`Admin::describe_groups`] on one coordinator: ConsumerGroupDescribe, then DescribeGroups
    /// for the groups that are not consumer-protocol groups.
    async fn describe_round(
        &self,
        conn: Arc<Connection>,
        node: i32,
        asked: Vec<String>,
    ) -> Vec<(String, Step<GroupDescription>)> {
        let mut out = Vec::with_capacity(asked.len());
        let classic = if conn.version::<ConsumerGroupDescribeRequest>().is_ok() {
            let req = ConsumerGroupDescribeRequest {
                groups: asked.clone(),
            };
            let described = match conn.call(&req).await {
                Ok(d) => d,
                Err(e) => return asked.into_iter().map(|g| (g, Step::failed(e.clone()))).collect(),
            };
            // GROUP_ID_NOT_FOUND: not a consumer-protocol group, perhaps a classic one.
            let not_found = KafkaCode::GroupIdNotFound.code();
            let (others, described): (Vec<_>, Vec<_>) =
                described.into_iter().partition(|d| d.error_code == not_found);
            let (not_consumer, consumer): (Vec<String>, Vec<String>) = asked
                .into_iter()
                .partition(|g| others.iter().any(|d| d.group_id == *g));
            out.extend(by_group::<ConsumerGroupDescribeRequest, _, _>(
                &conn,
                consumer,
                described,
                |d| &d.group_id,
                |d| {
                    let msg = message(&d.error_message);
                    let id = d.group_id.clone();
                    Step::of_code(
                        d.error_code,
                        || format!("ConsumerGroupDescribe {id}{msg}"),
                        || Ok(from_consumer_group(d, node)),
                    )
                },
            ));
            not_consumer
        } else {
            asked
        };
        if classic.is_empty() {
            return out;
        }
        let req = DescribeGroupsRequest {
            groups: classic.clone(),
        };
        match conn.call(&req).await {
            Ok(described) => out.extend(by_group::<DescribeGroupsRequest, _, _>(
                &conn,
                classic,
                described,
                |d| &d.group_id,
                |d| {
                    let msg = message(&d.error_message);
                    let id = d.group_id.clone();
                    Step::of_code(
                        d.error_code,
                        || format!("DescribeGroups {id}{msg}"),
                        || from_classic_group(d, node, conn.addr()),
                    )
                },
            )),
            Err(e) => out.extend(classic.into_iter().map(|g| (g, Step::failed(e.clone())))),
        }
        out
    }

    /// Deletes each of `groups` (repeats asked once) with its committed offsets: one entry per group, in the
    /// order given, with its own outcome: `Ok(())`, or [`Error::Kafka`] with `NonEmptyGroup` (it has active
    /// members), `GroupIdNotFound`, `GroupAuthorizationFailed`, ...
    ///
    /// ```no_run
    /// # async fn demo(admin: weir::Admin) -> weir::Result<()> {
    /// for (id, outcome) in admin.delete_groups(&["old-billing", "old-audit"]).await? {
    ///     if let Err(e) = outcome {
    ///         eprintln!("{id}: {e}");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn delete_groups(&self, groups: &[&str]) -> Result<Vec<(String, Result<()>)>> {
        self.per_group(groups, |conn, _node, asked| async move {
            let req = DeleteGroupsRequest {
                groups: asked.clone(),
            };
            match conn.call(&req).await {
                Ok(results) => by_group::<DeleteGroupsRequest, _, _>(
                    &conn,
                    asked,
                    results,
                    |r| &r.group_id,
                    |r| Step::of_code(r.error_code, || format!("DeleteGroups {}", r.group_id), || Ok(())),
                ),
                Err(e) => asked.into_iter().map(|g| (g, Step::failed(e.clone()))).collect(),
            }
        })
        .await
    }

    /// Runs `round` on each coordinator with its share of `groups` (repeats asked once), finding coordinators
    /// again and asking again for the groups a round says to retry, with backoff, for at most `max.block.ms`.
    /// Returns one outcome per distinct group, in the order given.
    pub(super) async fn per_group<T, F, Fut>(
        &self,
        groups: &[&str],
        round: F,
    ) -> Result<Vec<(String, Result<T>)>>
    where
        F: Fn(Arc<Connection>, i32, Vec<String>) -> Fut,
        Fut: Future<Output = Vec<(String, Step<T>)>>,
    {
        let cluster = self.cluster()?;
        let order = distinct(groups);
        let mut done: HashMap<String, Result<T>> = HashMap::with_capacity(order.len());
        let mut pending = order.clone();
        let mut retry = RetryWindow::new(cluster.config());
        while !pending.is_empty() {
            let mut again: Vec<(String, Error)> = Vec::new();
            let found =
                futures::future::join_all(pending.iter().map(|g| cluster.find_coordinator(g, GROUP))).await;
            let mut by_coordinator: BTreeMap<(i32, String), Vec<String>> = BTreeMap::new();
            for (g, f) in pending.drain(..).zip(found) {
                match f {
                    Ok((addr, node)) => by_coordinator.entry((node, addr)).or_default().push(g),
                    Err(e) if e.is_retriable() => again.push((g, e)),
                    Err(e) => {
                        done.insert(g, Err(e));
                    }
                }
            }
            let rounds = by_coordinator.into_iter().map(|((node, addr), asked)| {
                let round = &round;
                async move {
                    match self.coordinator_connection(node, addr).await {
                        Ok(conn) => round(conn, node, asked).await,
                        Err(e) => asked.into_iter().map(|g| (g, Step::failed(e.clone()))).collect(),
                    }
                }
            });
            for (g, step) in futures::future::join_all(rounds).await.into_iter().flatten() {
                match step {
                    Step::Done(r) => {
                        done.insert(g, r);
                    }
                    Step::Retry(e) => again.push((g, e)),
                }
            }
            if again.is_empty() {
                break;
            }
            if !retry.wait().await {
                for (g, e) in again {
                    done.insert(g, Err(e));
                }
                break;
            }
            tracing::debug!(groups = again.len(), error = %again[0].1, "group coordinators: asking again");
            pending = again.into_iter().map(|(g, _)| g).collect();
        }
        Ok(order
            .into_iter()
            .map(|g| {
                let r = done.remove(&g).expect("every group ends done or failed");
                (g, r)
            })
            .collect())
    }

    /// A connection to the coordinator `node` at `addr` (the link of the broker's id when the metadata knows
    /// it at that address, so connections are shared).
    pub(super) async fn coordinator_connection(&self, node: i32, addr: String) -> Result<Arc<Connection>> {
        let cluster = self.cluster()?;
        if !cluster.snapshot().brokers.contains_key(&node) {
            cluster.refresh(false).await?;
        }
        let link = match cluster.link(node) {
            Ok(l) if l.addr() == addr => l,
            _ => cluster.link_to(addr),
        };
        link.get().await
    }
}

/// `: message` when the broker sent one.
fn message(msg: &Option<String>) -> String {
    match msg {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use weir_proto::consumer_protocol::ConsumerAssignment;
    use weir_proto::group_admin::{ConsumerGroupMember, DescribedGroupMember};

    use super::*;

    #[test]
    fn states_and_types_parse_as_kafka_names_them() {
        assert_eq!(GroupState::from_name("Stable"), GroupState::Stable);
        assert_eq!(
            GroupState::from_name("PREPARING_REBALANCE"),
            GroupState::PreparingRebalance
        );
        assert_eq!(
            "completing-rebalance".parse::<GroupState>().unwrap(),
            GroupState::CompletingRebalance
        );
        assert_eq!(
            GroupState::from_name("Sleepy"),
            GroupState::Unknown("Sleepy".into())
        );
        assert!("Sleepy".parse::<GroupState>().is_err());
        for s in GroupState::ALL {
            assert_eq!(GroupState::from_name(s.name()), *s);
            assert_eq!(s.to_string().parse::<GroupState>().unwrap(), *s);
        }
        assert!(GroupState::Empty.is_inactive() && GroupState::Dead.is_inactive());
        assert!(!GroupState::Stable.is_inactive() && !GroupState::Reconciling.is_inactive());
        assert!(!GroupState::Unknown(String::new()).is_inactive());
        assert_eq!(GroupType::from_name("Consumer"), GroupType::Consumer);
        assert_eq!(GroupType::from_name(""), GroupType::Unknown(String::new()));
        assert_eq!(GroupType::Unknown(String::new()).to_string(), "unknown");
        assert_eq!("CLASSIC".parse::<GroupType>().unwrap(), GroupType::Classic);
        assert!("connect".parse::<GroupType>().is_err());
    }

    fn listed(id: &str, t: GroupType, state: GroupState, protocol: &str) -> ListedGroup {
        ListedGroup {
            group_id: id.into(),
            group_type: t,
            state: Some(state),
            protocol_type: protocol.into(),
            coordinator: 1,
        }
    }

    #[test]
    fn filters_match_state_type_and_protocol_type() {
        let f = GroupFilter::consumer_groups();
        assert!(f.matches(&listed("a", GroupType::Classic, GroupState::Stable, "consumer")));
        assert!(f.matches(&listed("b", GroupType::Consumer, GroupState::Empty, "")));
        assert!(!f.matches(&listed("c", GroupType::Classic, GroupState::Stable, "connect")));
        assert!(!f.matches(&listed("d", GroupType::Share, GroupState::Stable, "")));
        let empty = GroupFilter::all().with_state(GroupState::Empty);
        assert!(empty.matches(&listed("e", GroupType::Share, GroupState::Empty, "share")));
        assert!(!empty.matches(&listed("f", GroupType::Classic, GroupState::Stable, "consumer")));
        let mut no_state = listed("g", GroupType::Classic, GroupState::Empty, "consumer");
        no_state.state = None;
        assert!(!empty.matches(&no_state));
        assert!(GroupFilter::all().matches(&no_state));
    }

    fn member(id: &str, assignment: Bytes) -> DescribedGroupMember {
        DescribedGroupMember {
            member_id: id.into(),
            group_instance_id: None,
            client_id: format!("client-{id}"),
            client_host: "/127.0.0.1".into(),
            member_metadata: Bytes::new(),
            member_assignment: assignment,
        }
    }

    #[test]
    fn classic_consumer_assignments_are_decoded_and_sorted() {
        let a = ConsumerAssignment {
            version: 0,
            partitions: vec![("t".into(), vec![2, 0]), ("s".into(), vec![1])],
            user_data: None,
        }
        .encode();
        let d = DescribedGroup {
            group_id: "g".into(),
            group_state: "Stable".into(),
            protocol_type: "consumer".into(),
            protocol_data: "range".into(),
            members: vec![member("m2", a), member("m1", Bytes::new())],
            ..Default::default()
        };
        let g = from_classic_group(d, 3, "b:9092").unwrap();
        assert_eq!(
            (g.group_type.clone(), g.state.clone(), g.coordinator),
            (GroupType::Classic, GroupState::Stable, 3)
        );
        assert_eq!(g.protocol, "range");
        assert_eq!(g.members[0].member_id, "m1");
        assert!(g.members[0].assignment.is_empty());
        let want = vec![
            TopicPartition::new("s", 1),
            TopicPartition::new("t", 0),
            TopicPartition::new("t", 2),
        ];
        assert_eq!(g.members[1].assignment, want);
        assert_eq!(g.members[1].target_assignment, None);

        // Another protocol's assignments are opaque; a consumer assignment that does not decode is an error.
        let other = DescribedGroup {
            protocol_type: "connect".into(),
            members: vec![member("m", Bytes::from_static(b"\xff\xff\xff"))],
            ..Default::default()
        };
        assert!(from_classic_group(other, 1, "b").unwrap().members[0]
            .assignment
            .is_empty());
        let mut huge = vec![0u8, 0];
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        let bad = DescribedGroup {
            protocol_type: "consumer".into(),
            members: vec![member("m", Bytes::from(huge))],
            ..Default::default()
        };
        let e = from_classic_group(bad, 1, "b:1").unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{e}");
    }

    #[test]
    fn consumer_groups_keep_epochs_and_both_assignments() {
        let topic = |name: &str, ps: &[i32]| AssignedTopic {
            topic_id: [7; 16],
            topic_name: name.into(),
            partitions: ps.to_vec(),
        };
        let d = DescribedConsumerGroup {
            group_id: "g".into(),
            group_state: "Reconciling".into(),
            group_epoch: 5,
            assignment_epoch: 4,
            assignor_name: "uniform".into(),
            members: vec![ConsumerGroupMember {
                member_id: "m".into(),
                member_epoch: 4,
                client_id: "c".into(),
                client_host: "/h".into(),
                subscribed_topic_names: vec!["t".into()],
                assignment: vec![topic("t", &[1])],
                target_assignment: vec![topic("t", &[1, 0])],
                ..Default::default()
            }],
            ..Default::default()
        };
        let g = from_consumer_group(d, 2);
        assert_eq!((g.group_epoch, g.assignment_epoch), (Some(5), Some(4)));
        assert_eq!(
            (g.state.clone(), g.protocol.as_str()),
            (GroupState::Reconciling, "uniform")
        );
        let m = &g.members[0];
        assert_eq!(m.assignment, vec![TopicPartition::new("t", 1)]);
        assert_eq!(
            m.target_assignment,
            Some(vec![TopicPartition::new("t", 0), TopicPartition::new("t", 1)])
        );
        assert_eq!(
            (m.member_epoch, m.subscribed_topics.clone()),
            (Some(4), vec!["t".to_string()])
        );
    }

    #[test]
    fn coordinator_errors_are_retried_others_are_outcomes() {
        let s: Step<()> = Step::of_code(16, || "x".into(), || Ok(()));
        assert!(matches!(s, Step::Retry(_)));
        let s: Step<()> = Step::of_code(14, || "x".into(), || Ok(()));
        assert!(matches!(s, Step::Retry(_)));
        let s: Step<()> = Step::of_code(68, || "x".into(), || Ok(()));
        assert!(matches!(
            s,
            Step::Done(Err(Error::Kafka {
                code: KafkaCode::NonEmptyGroup,
                ..
            }))
        ));
        let s: Step<()> = Step::of_code(0, || "x".into(), || Ok(()));
        assert!(matches!(s, Step::Done(Ok(()))));
        assert_eq!(distinct(&["a", "b", "a"]), ["a", "b"]);
    }
}
