//! A group member's statistics: its consumer's ([`ConsumerStats`]) and its place in the group
//! ([`GroupStats`], from [`super::GroupConsumer::stats`]).

use std::time::Duration;

use super::member::{Left, Phase};
use crate::consumer::ConsumerStats;

/// A snapshot of a group member: its consumer's statistics (every field of [`ConsumerStats`] is reachable
/// through this one, which derefs to it) and the group's side: generation, member id, state, rebalances.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupStats {
    /// The inner consumer's statistics: counters, and the partitions it holds (those of the current
    /// assignment, and during a rebalance those being revoked or set up, `held`).
    pub consumer: ConsumerStats,
    /// The group (`group.id`).
    pub group_id: String,
    /// The member id the coordinator gave this member ("" before joining).
    pub member_id: String,
    /// The generation this member is in (-1 if none).
    pub generation: i32,
    /// Where the member stands.
    pub state: MemberState,
    /// Rebalances completed, joining the group the first time included.
    pub rebalances: u64,
    /// How long the last completed rebalance took: from setting out to join a generation (revocations, failed
    /// attempts and backoffs included) to being stable in it.
    pub last_rebalance: Option<Duration>,
    /// How long the rebalance in progress has been going on, if one is.
    pub rebalancing_for: Option<Duration>,
}

impl std::ops::Deref for GroupStats {
    type Target = ConsumerStats;

    fn deref(&self) -> &ConsumerStats {
        &self.consumer
    }
}

/// Where a group member stands (see [`GroupStats::state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemberState {
    /// Not in a generation, about to join (or waiting out a backoff after a failed attempt).
    Unjoined,
    /// Giving partitions up in order: commit, revoke callback.
    Revoking,
    /// Reporting partitions lost (the member was out of the group).
    Losing,
    /// JoinGroup in flight.
    Joining,
    /// SyncGroup in flight.
    Syncing,
    /// Setting the new assignment up: committed offsets, assign callback.
    Assigning,
    /// In a generation, consuming its assignment.
    Stable,
    /// Leaving the group.
    Leaving,
    /// Out of the group: unsubscribed, idle past `max.poll.interval.ms`, or closed.
    Left,
    /// Another instance took this member's `group.instance.id`: stopped for good.
    Fenced,
}

impl From<Phase> for MemberState {
    fn from(p: Phase) -> MemberState {
        match p {
            Phase::Unjoined => MemberState::Unjoined,
            Phase::Revoking(_) => MemberState::Revoking,
            Phase::Lost(_) => MemberState::Losing,
            Phase::Joining => MemberState::Joining,
            Phase::Syncing => MemberState::Syncing,
            Phase::Assigning => MemberState::Assigning,
            Phase::Stable => MemberState::Stable,
            Phase::Leaving(_) => MemberState::Leaving,
            Phase::Left(Left::Unsubscribed | Left::Idle | Left::Closed) => MemberState::Left,
            Phase::Fenced => MemberState::Fenced,
        }
    }
}

impl std::fmt::Display for MemberState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemberState::Unjoined => "unjoined",
            MemberState::Revoking => "revoking",
            MemberState::Losing => "losing",
            MemberState::Joining => "joining",
            MemberState::Syncing => "syncing",
            MemberState::Assigning => "assigning",
            MemberState::Stable => "stable",
            MemberState::Leaving => "leaving",
            MemberState::Left => "left",
            MemberState::Fenced => "fenced",
        })
    }
}
