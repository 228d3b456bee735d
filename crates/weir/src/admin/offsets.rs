//! A consumer group's committed offsets: list them with the log's end and the lag ([`GroupOffset`]), alter
//! them as an administrator (OffsetCommit from outside the group: no member, generation -1), delete them
//! (OffsetDelete), and reset them as `kafka-consumer-groups.sh --reset-offsets` does: a [`ResetPlan`] first
//! (old and new offset per partition, from a [`ResetSpec`]), applied only while the group has no active
//! members.
//!
//! ```no_run
//! use weir::admin::ResetSpec;
//! use weir::TopicPartition;
//! # async fn demo(admin: weir::Admin) -> weir::Result<()> {
//! for o in admin.list_group_offsets("billing", None).await? {
//!     println!("{} committed {:?} end {:?} lag {:?}", o.partition, o.committed, o.log_end, o.lag);
//! }
//! let partitions = [TopicPartition::new("orders", 0), TopicPartition::new("orders", 1)];
//! let plan = admin.reset_offsets("billing", &partitions, ResetSpec::ShiftBy(-100)).await?;
//! for p in &plan.offsets {
//!     println!("{}: {:?} -> {}", p.partition, p.current, p.new);
//! }
//! // Refused (NonEmptyGroup) while the group has active members.
//! for (tp, outcome) in admin.apply_reset(&plan).await? {
//!     outcome?;
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use weir_proto::group_admin::OffsetDeleteRequest;
use weir_proto::group_offsets::{CommitOffset, CommitTopic, OffsetCommitRequest, OffsetFetchRequest};

use super::count_mismatch;
use super::groups::{coordinator_unavailable, GroupState, Step};
use super::{Admin, OffsetSpec};
use crate::error::{check, Error, KafkaCode, Result};
use crate::net::Connection;
use crate::types::TopicPartition;

/// One partition's committed offset in a group, with the partition's log end and the group's lag on it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupOffset {
    /// The partition.
    pub partition: TopicPartition,
    /// The group's committed offset (the next record it will read), `None` if it has none.
    pub committed: Option<i64>,
    /// The partition's log end offset (high watermark), `None` if it could not be read (a topic deleted since
    /// the commit).
    pub log_end: Option<i64>,
    /// `log_end - committed` when both are known.
    pub lag: Option<i64>,
}

/// Where [`Admin::reset_offsets`] moves a group's offsets (`kafka-consumer-groups.sh --to-*`, `--shift-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetSpec {
    /// The log start offset (`--to-earliest`).
    Earliest,
    /// The log end offset (`--to-latest`).
    Latest,
    /// The first offset whose timestamp is at or after this many ms since the epoch, or the log end if there
    /// is none (`--to-datetime`, `--to-timestamp`).
    Timestamp(i64),
    /// The committed offset plus this many (negative: back), kept within the log's start and end
    /// (`--shift-by`); a partition without a committed offset is an error.
    ShiftBy(i64),
    /// This offset, kept within the log's start and end (`--to-offset`).
    Offset(i64),
}

/// One partition of a [`ResetPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PlannedOffset {
    /// The partition.
    pub partition: TopicPartition,
    /// The group's committed offset when the plan was made, `None` if it had none.
    pub current: Option<i64>,
    /// The offset the plan commits.
    pub new: i64,
}

/// The new offsets [`Admin::reset_offsets`] computed, for [`Admin::apply_reset`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResetPlan {
    /// The group.
    pub group: String,
    /// The group's state when the plan was made: [`Admin::apply_reset`] refuses unless it is `Empty` or
    /// `Dead` when applied.
    pub state: GroupState,
    /// Per partition, sorted.
    pub offsets: Vec<PlannedOffset>,
}

/// The offset `spec` gives a partition whose committed offset is `current` and whose log spans `start..=end`
/// (`at_time`: the offset a timestamp lookup found, -1 if none).
fn planned_offset(
    spec: ResetSpec,
    current: Option<i64>,
    start: i64,
    end: i64,
    at_time: i64,
) -> Result<i64, String> {
    let within = |o: i64| if o > end { end } else { o.max(start) };
    Ok(match spec {
        ResetSpec::Earliest => start,
        ResetSpec::Latest => end,
        ResetSpec::Timestamp(_) if at_time < 0 => end,
        ResetSpec::Timestamp(_) => at_time,
        ResetSpec::ShiftBy(n) => match current {
            Some(c) => within(c.saturating_add(n)),
            None => return Err("no committed offset to shift".into()),
        },
        ResetSpec::Offset(o) => within(o),
    })
}

/// `partitions` by topic, for the requests.
fn by_topic(partitions: &[TopicPartition]) -> Vec<(String, Vec<i32>)> {
    let mut m: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        m.entry(&tp.topic).or_default().push(tp.partition);
    }
    m.into_iter()
        .map(|(t, mut ps)| {
            ps.sort_unstable();
            ps.dedup();
            (t.to_owned(), ps)
        })
        .collect()
}

/// One outcome per partition of `asked` from per-partition results: a partition the broker did not answer
/// about is its [`Error::Protocol`]. The step is a retry if any partition says the coordinator cannot answer.
fn per_partition<C: weir_proto::Call>(
    conn: &Connection,
    group: &str,
    api: &str,
    asked: &[TopicPartition],
    topics: Vec<CommitTopic>,
) -> Step<Vec<(TopicPartition, Result<()>)>> {
    let mut codes: HashMap<(&str, i32), i16> = HashMap::new();
    for t in &topics {
        for &(p, code) in &t.partitions {
            codes.insert((t.name.as_str(), p), code);
        }
    }
    let mut out = Vec::with_capacity(asked.len());
    for tp in asked {
        let outcome = match codes.get(&(&*tp.topic, tp.partition)) {
            Some(&code) => check(code, || format!("{api} {group} {tp}")),
            None => Err(count_mismatch::<C>(conn, format!("no result for {tp}"))),
        };
        if let Err(e) = &outcome {
            if coordinator_unavailable(e) {
                return Step::Retry(e.clone());
            }
        }
        out.push((tp.clone(), outcome));
    }
    Step::Done(Ok(out))
}

impl Admin {
    /// The committed offsets of `group` (`None`: every partition it has an offset for; else these
    /// partitions, `committed: None` where it has none), with each partition's log end offset and the lag,
    /// sorted by partition. A group that does not exist has no offsets.
    ///
    /// ```no_run
    /// # async fn demo(admin: weir::Admin) -> weir::Result<()> {
    /// let total: i64 = admin.list_group_offsets("billing", None).await?.iter().filter_map(|o| o.lag).sum();
    /// println!("billing is {total} records behind");
    /// # Ok(()) }
    /// ```
    pub async fn list_group_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<GroupOffset>> {
        let committed = self.committed_offsets(group, partitions).await?;
        let all: Vec<TopicPartition> = committed.keys().cloned().collect();
        let ends = self.log_ends(&all).await?;
        Ok(committed
            .into_iter()
            .map(|(partition, committed)| {
                let log_end = ends.get(&partition).copied();
                let lag = match (committed, log_end) {
                    (Some(c), Some(e)) => Some((e - c).max(0)),
                    _ => None,
                };
                GroupOffset {
                    partition,
                    committed,
                    log_end,
                    lag,
                }
            })
            .collect())
    }

    /// Committed offsets of `group` from its coordinator (OffsetFetch), sorted.
    async fn committed_offsets(
        &self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
        let topics = partitions.map(by_topic);
        let topics = &topics;
        let mut outcome = self
            .per_group(&[group], |conn, _node, _asked| async move {
                let req = OffsetFetchRequest {
                    group_id: group.to_owned(),
                    topics: topics.clone(),
                    require_stable: false,
                };
                let resp = match conn.call(&req).await {
                    Ok(r) => r,
                    Err(e) => return vec![(group.to_owned(), Step::failed(e))],
                };
                let step = Step::of_code(
                    resp.error_code,
                    || format!("OffsetFetch {group}"),
                    || {
                        let mut out = BTreeMap::new();
                        for t in resp.topics {
                            let topic: Arc<str> = Arc::from(t.name.as_str());
                            for p in t.partitions {
                                let tp = TopicPartition::new(Arc::clone(&topic), p.partition);
                                check(p.error_code, || format!("OffsetFetch {group} {tp}"))?;
                                out.insert(tp, Some(p.committed_offset).filter(|&o| o >= 0));
                            }
                        }
                        Ok(out)
                    },
                );
                let step = match step {
                    Step::Done(Err(e)) if coordinator_unavailable(&e) => Step::Retry(e),
                    s => s,
                };
                vec![(group.to_owned(), step)]
            })
            .await?;
        let mut committed = outcome.pop().map_or(Ok(BTreeMap::new()), |(_, r)| r)?;
        if let Some(asked) = partitions {
            // Every partition asked for appears, with or without an offset.
            for tp in asked {
                committed.entry(tp.clone()).or_insert(None);
            }
        } else {
            committed.retain(|_, o| o.is_some());
        }
        Ok(committed)
    }

    /// Log end offsets of `partitions`, one ListOffsets round per topic: a topic the metadata does not know
    /// (deleted since the commit) or whose lookup fails has none.
    async fn log_ends(&self, partitions: &[TopicPartition]) -> Result<HashMap<TopicPartition, i64>> {
        self.log_offsets(partitions, OffsetSpec::Latest).await
    }

    /// Offsets `spec` of `partitions` that exist, per topic (see [`Admin::log_ends`]).
    async fn log_offsets(
        &self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<HashMap<TopicPartition, i64>> {
        if partitions.is_empty() {
            return Ok(HashMap::new());
        }
        let cluster = self.cluster()?;
        let meta = self.metadata().await?;
        let mut per_topic: BTreeMap<&str, Vec<TopicPartition>> = BTreeMap::new();
        for tp in partitions {
            let known = meta
                .topics
                .get(&*tp.topic)
                .is_some_and(|t| tp.partition >= 0 && tp.partition < t.partition_count());
            if known {
                per_topic.entry(&tp.topic).or_default().push(tp.clone());
            }
        }
        let asks = per_topic.into_iter().map(|(topic, tps)| async move {
            match cluster.list_offsets_of(&tps, spec, 0).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::debug!(topic, error = %e, "offsets of a group's topic: none");
                    HashMap::new()
                }
            }
        });
        Ok(futures::future::join_all(asks)
            .await
            .into_iter()
            .flatten()
            .collect())
    }

    /// Commits `offsets` for `group` as an administrator (OffsetCommit with no member and generation -1, as
    /// Kafka's admin client does): one outcome per partition, in the order given. Kafka accepts it only while
    /// the group has no active members (else the partitions fail with `UnknownMemberId` or similar); a group
    /// that does not exist is created (Empty). See [`Admin::reset_offsets`] for computed offsets.
    ///
    /// ```no_run
    /// use weir::TopicPartition;
    /// # async fn demo(admin: weir::Admin) -> weir::Result<()> {
    /// let offsets = [(TopicPartition::new("orders", 0), 42)];
    /// for (tp, outcome) in admin.alter_group_offsets("billing", &offsets).await? {
    ///     outcome?;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        if offsets.is_empty() {
            return Ok(Vec::new());
        }
        let mut topics: BTreeMap<&str, Vec<CommitOffset>> = BTreeMap::new();
        for (tp, o) in offsets {
            topics.entry(&tp.topic).or_default().push(CommitOffset {
                partition: tp.partition,
                offset: *o,
                leader_epoch: None,
            });
        }
        let req = OffsetCommitRequest {
            group_id: group.to_owned(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            topics: topics.into_iter().map(|(t, ps)| (t.to_owned(), ps)).collect(),
        };
        let asked: Vec<TopicPartition> = offsets.iter().map(|(tp, _)| tp.clone()).collect();
        let (req, asked) = (&req, &asked);
        let mut outcome = self
            .per_group(&[group], |conn, _node, _| async move {
                let step = match conn.call(req).await {
                    Ok(topics) => {
                        per_partition::<OffsetCommitRequest>(&conn, group, "OffsetCommit", asked, topics)
                    }
                    Err(e) => Step::failed(e),
                };
                vec![(group.to_owned(), step)]
            })
            .await?;
        outcome.pop().map_or(Ok(Vec::new()), |(_, r)| r)
    }

    /// Deletes `group`'s committed offsets of `partitions` (OffsetDelete): one outcome per partition, in the
    /// order given (`GroupSubscribedToTopic` while the group's members consume the topic). The outer error is
    /// the group's (`GroupIdNotFound`, ...).
    ///
    /// ```no_run
    /// use weir::TopicPartition;
    /// # async fn demo(admin: weir::Admin) -> weir::Result<()> {
    /// for (tp, outcome) in admin.delete_group_offsets("billing", &[TopicPartition::new("old", 0)]).await? {
    ///     println!("{tp}: {outcome:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let req = OffsetDeleteRequest {
            group_id: group.to_owned(),
            topics: by_topic(partitions),
        };
        let req = &req;
        let mut outcome = self
            .per_group(&[group], |conn, _node, _| async move {
                let step = match conn.call(req).await {
                    Ok(resp) => {
                        match Step::of_code(resp.error_code, || format!("OffsetDelete {group}"), || Ok(())) {
                            Step::Done(Ok(())) => per_partition::<OffsetDeleteRequest>(
                                &conn,
                                group,
                                "OffsetDelete",
                                partitions,
                                resp.topics,
                            ),
                            Step::Done(Err(e)) => Step::Done(Err(e)),
                            Step::Retry(e) => Step::Retry(e),
                        }
                    }
                    Err(e) => Step::failed(e),
                };
                vec![(group.to_owned(), step)]
            })
            .await?;
        outcome.pop().map_or(Ok(Vec::new()), |(_, r)| r)
    }

    /// The plan that moves `group`'s offsets of `partitions` to where `spec` says, as
    /// `kafka-consumer-groups.sh --reset-offsets` computes it (a dry run: nothing is committed; see
    /// [`Admin::apply_reset`]). A partition that does not exist is [`Error::UnknownTopic`]; shifting a
    /// partition without a committed offset is [`Error::InvalidArgument`]. Offsets asked for outside the log
    /// (`ShiftBy`, `Offset`) are moved to its start or end; a timestamp past the last record gives the end.
    ///
    /// ```no_run
    /// use weir::admin::ResetSpec;
    /// use weir::TopicPartition;
    /// # async fn demo(admin: weir::Admin) -> weir::Result<()> {
    /// let orders = [TopicPartition::new("orders", 0)];
    /// let plan = admin.reset_offsets("billing", &orders, ResetSpec::Timestamp(1_700_000_000_000)).await?;
    /// println!("{:?}", plan.offsets);
    /// # Ok(()) }
    /// ```
    pub async fn reset_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
        spec: ResetSpec,
    ) -> Result<ResetPlan> {
        let mut partitions = partitions.to_vec();
        partitions.sort();
        partitions.dedup();
        if partitions.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "reset offsets of group {group}: no partitions given"
            )));
        }
        let meta = self.metadata().await?;
        for tp in &partitions {
            let exists = meta
                .topics
                .get(&*tp.topic)
                .is_some_and(|t| tp.partition >= 0 && tp.partition < t.partition_count());
            if !exists {
                return Err(Error::UnknownTopic(tp.to_string()));
            }
        }
        let state = self.group_state(group).await?;
        let committed = self.committed_offsets(group, Some(&partitions)).await?;
        let cluster = self.cluster()?;
        let starts = cluster
            .list_offsets_of(&partitions, OffsetSpec::Earliest, 0)
            .await?;
        let ends = cluster
            .list_offsets_of(&partitions, OffsetSpec::Latest, 0)
            .await?;
        let at_time = match spec {
            ResetSpec::Timestamp(t) => {
                cluster
                    .list_offsets_of(&partitions, OffsetSpec::Timestamp(t), 0)
                    .await?
            }
            _ => HashMap::new(),
        };
        let mut offsets = Vec::with_capacity(partitions.len());
        for tp in partitions {
            let current = committed.get(&tp).copied().flatten();
            let (start, end) = match (starts.get(&tp), ends.get(&tp)) {
                (Some(&s), Some(&e)) => (s, e),
                _ => return Err(Error::UnknownTopic(tp.to_string())),
            };
            let at = at_time.get(&tp).copied().unwrap_or(-1);
            let new = planned_offset(spec, current, start, end, at).map_err(|why| {
                Error::InvalidArgument(format!("reset offsets of group {group}: {tp}: {why}"))
            })?;
            offsets.push(PlannedOffset {
                partition: tp,
                current,
                new,
            });
        }
        Ok(ResetPlan {
            group: group.to_owned(),
            state,
            offsets,
        })
    }

    /// Commits `plan`'s offsets (as [`Admin::alter_group_offsets`]) if the group has no active members now
    /// (state `Empty` or `Dead`), as `kafka-consumer-groups.sh --execute` does; otherwise nothing is
    /// committed and the error is [`Error::Kafka`] with `NonEmptyGroup`. One outcome per partition of the
    /// plan.
    pub async fn apply_reset(&self, plan: &ResetPlan) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let group = &plan.group;
        let state = self.group_state(group).await?;
        if !state.is_inactive() {
            return Err(Error::Kafka {
                code: KafkaCode::NonEmptyGroup,
                context: format!(
                    "reset offsets of group {group}: the group is {state}, with active members; offsets can \
                     only be reset while it is Empty (stop its consumers first)"
                ),
            });
        }
        let offsets: Vec<(TopicPartition, i64)> = plan
            .offsets
            .iter()
            .map(|p| (p.partition.clone(), p.new))
            .collect();
        self.alter_group_offsets(group, &offsets).await
    }

    /// The group's state as its coordinator describes it (`Dead` for a group that does not exist).
    async fn group_state(&self, group: &str) -> Result<GroupState> {
        let mut described = self.describe_groups(&[group]).await?;
        match described.pop().map(|(_, d)| d) {
            Some(Ok(d)) => Ok(d.state),
            Some(Err(e)) if e.kafka_code() == Some(KafkaCode::GroupIdNotFound) => Ok(GroupState::Dead),
            Some(Err(e)) => Err(e),
            None => Ok(GroupState::Dead),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_planned_as_kafkas_tool_plans_them() {
        // The log spans 10..=50; the group committed 30.
        let plan = |spec, current| planned_offset(spec, current, 10, 50, -1);
        assert_eq!(plan(ResetSpec::Earliest, Some(30)), Ok(10));
        assert_eq!(plan(ResetSpec::Latest, None), Ok(50));
        assert_eq!(plan(ResetSpec::ShiftBy(-5), Some(30)), Ok(25));
        assert_eq!(
            plan(ResetSpec::ShiftBy(-100), Some(30)),
            Ok(10),
            "clamped to the start"
        );
        assert_eq!(
            plan(ResetSpec::ShiftBy(100), Some(30)),
            Ok(50),
            "clamped to the end"
        );
        assert_eq!(plan(ResetSpec::ShiftBy(i64::MAX), Some(30)), Ok(50));
        assert!(plan(ResetSpec::ShiftBy(1), None).is_err());
        assert_eq!(plan(ResetSpec::Offset(3), None), Ok(10));
        assert_eq!(plan(ResetSpec::Offset(77), Some(30)), Ok(50));
        assert_eq!(plan(ResetSpec::Offset(20), Some(30)), Ok(20));
        // A timestamp lookup found offset 17, or nothing (past the last record: the end).
        assert_eq!(planned_offset(ResetSpec::Timestamp(5), None, 10, 50, 17), Ok(17));
        assert_eq!(planned_offset(ResetSpec::Timestamp(5), None, 10, 50, -1), Ok(50));
    }

    #[test]
    fn requests_group_partitions_by_topic() {
        let tps = [
            TopicPartition::new("b", 1),
            TopicPartition::new("a", 2),
            TopicPartition::new("b", 0),
            TopicPartition::new("b", 1),
        ];
        assert_eq!(
            by_topic(&tps),
            vec![("a".to_string(), vec![2]), ("b".to_string(), vec![0, 1])]
        );
    }
}
