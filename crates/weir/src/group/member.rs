//! The group member of the classic protocol as a state machine with no I/O, one implementation of
//! [`Membership`]: events and the current time go in (`handle`, `handle_timeout`), actions come out
//! (`poll_action`); the driver
//! (`driver.rs`) performs them (group calls, rebalance callbacks, the consumer's assign and unassign) and feeds
//! their outcomes back as events. Every decision of membership is made here: when to join, what a response
//! error means, when partitions are revoked or lost, when the session is over; so each can be tested on virtual
//! time, a few lines per case.
//!
//! One piece of *exclusive* work runs at a time (its phase says which: revoking, lost, joining, syncing,
//! assigning, leaving); heartbeats and auto-commits are side calls, at most one of each in flight, allowed in
//! the phases where the member is in a generation.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::coordinator::unavailable;
use super::membership::Membership;
use crate::error::{Error, KafkaCode};
use crate::types::TopicPartition;

/// The settings the member's decisions depend on.
#[derive(Debug, Clone)]
pub(crate) struct MemberConfig {
    pub(crate) session_timeout: Duration,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) max_poll_interval: Duration,
    pub(crate) retry_backoff: Duration,
    /// Longest backoff between failed rounds (`retry.backoff.max.ms`, or `retry.backoff.ms` if longer).
    pub(crate) retry_backoff_max: Duration,
    /// Incremental cooperative rebalancing (KIP-429): owned partitions are kept through a rebalance.
    pub(crate) cooperative: bool,
    /// Commit delivered positions before a revocation and every `auto_commit_interval` while stable.
    pub(crate) auto_commit: bool,
    pub(crate) auto_commit_interval: Duration,
    /// A static member (`group.instance.id`): keeps its member id and does not send LeaveGroup.
    pub(crate) static_member: bool,
}

/// Where the member stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not in a generation, and joining as soon as it may (now, or after a backoff).
    Unjoined,
    /// Giving partitions up in order (commit, revoke callback); `then` says what follows.
    Revoking(Then),
    /// Reporting partitions lost (no commit: another member may own them already); `then` follows.
    Lost(Then),
    /// JoinGroup in flight.
    Joining,
    /// SyncGroup in flight (the leader computed the assignment in between).
    Syncing,
    /// The assignment is being set up: committed offsets, the consumer's assign, the assign callback.
    Assigning,
    /// In a generation, heartbeating.
    Stable,
    /// LeaveGroup in flight (or skipped, for a static member); `why` says what comes after.
    Leaving(Left),
    /// Out of the group; see [`Left`].
    Left(Left),
    /// Another instance took this member's `group.instance.id`: stopped for good.
    Fenced,
}

/// What follows a revocation or a loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    /// Join (again).
    Join,
    /// Set up the rest of the new assignment (cooperative: partitions moved away were revoked first).
    Assign,
    /// Leave the group.
    Leave(Left),
    /// Stop: the member was fenced for good.
    Fence,
}

/// Why the member is out of the group, and what brings it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Left {
    /// The subscription is empty: a new subscription brings it back.
    Unsubscribed,
    /// `poll` was not called within `max.poll.interval.ms`: the next `poll` brings it back.
    Idle,
    /// Closed, for good.
    Closed,
}

/// What the driver must do.
#[derive(Debug, Clone)]
pub(crate) enum Action {
    /// Take `partitions` (hold them, wait for a delivery in progress), commit their delivered positions if
    /// `commit`, call the revoke callback, unassign them (all of them if `partial`, else except those the
    /// application paused, which stay held for the next assignment). Answer: [`Event::Revoked`].
    Revoke {
        partitions: Vec<TopicPartition>,
        commit: bool,
        partial: bool,
    },
    /// Take `partitions`, call the lost callback, unassign them except paused ones. Answer: [`Event::Lost`].
    Lose { partitions: Vec<TopicPartition> },
    /// Send JoinGroup announcing the subscription (cooperative: with `owned` and `generation`). Answer:
    /// [`Event::Joined`] or [`Event::MemberIdRequired`].
    Join {
        member_id: String,
        generation: i32,
        owned: Vec<TopicPartition>,
    },
    /// Send SyncGroup for `generation`; as `leader`, compute the assignment of `members` first. Answer:
    /// [`Event::Synced`].
    Sync {
        generation: i32,
        member_id: String,
        leader: bool,
    },
    /// Set up `added` (committed offsets, assign held, the assign callback with `added`); `assignment` is the
    /// whole new assignment (anything else still assigned goes). Answer: [`Event::Assigned`].
    Assign {
        assignment: Vec<TopicPartition>,
        added: Vec<TopicPartition>,
    },
    /// Let go of partitions set up held: they fetch and deliver (unless paused by the application).
    Release(Vec<TopicPartition>),
    /// Send a heartbeat, giving up after `within`. Answer: [`Event::Heartbeat`].
    Heartbeat {
        generation: i32,
        member_id: String,
        within: Duration,
    },
    /// Commit the delivered positions of owned partitions (no retries). Answer: [`Event::Committed`].
    Commit { generation: i32 },
    /// Send LeaveGroup for `member_id`. Answer: [`Event::LeftGroup`].
    Leave { member_id: String },
    /// Unassign everything still assigned (paused partitions kept through a rebalance that will not come).
    UnassignAll,
    /// Hand `error` to the application (the next `poll` returns it).
    Report(Error),
}

/// What happened.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    /// The application subscribed to these topics (sorted, deduplicated; empty: unsubscribed).
    Subscribed(Vec<String>),
    /// A `poll` call started.
    PollStarted,
    /// A `poll` call ended.
    PollEnded,
    /// The member's leader saw another partition count for a subscribed topic.
    PartitionCountChanged,
    /// The revocation asked for is done.
    Revoked,
    /// The loss asked for is reported.
    Lost,
    /// JoinGroup answered with a new generation.
    Joined(Result<Joined, Error>),
    /// JoinGroup answered MEMBER_ID_REQUIRED with the id to join with.
    MemberIdRequired(String),
    /// SyncGroup answered with this member's assignment (or the leader's part or the call failed).
    Synced(Result<Vec<TopicPartition>, Error>),
    /// The new partitions are assigned (held) to the consumer; the assign callback is about to run.
    AssignedHeld,
    /// The assignment is set up (the assign callback returned).
    Assigned(Result<(), Error>),
    /// A heartbeat's outcome (`Err` of a timeout when it got no answer `within`).
    Heartbeat(Result<(), Error>),
    /// An auto-commit's outcome, for the generation it was made in.
    Committed {
        generation: i32,
        result: Result<(), Error>,
    },
    /// A commit made by the application failed with this error (only fencing matters to the member).
    CommitFailed(Error),
    /// LeaveGroup was sent (whatever the answer).
    LeftGroup,
    /// The application closes the member.
    Close,
}

/// A successful JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Joined {
    pub(crate) member_id: String,
    pub(crate) generation: i32,
    /// Whether this member leads the generation (and the broker did not skip the assignment).
    pub(crate) leader: bool,
}

/// The member's rebalances: those completed, the last one, the one in progress. A rebalance runs from the moment
/// the member sets out to join a generation (leaving a stable one, or joining from outside the group) to the
/// moment it is stable in the new one, failed attempts and backoffs in between included; one abandoned (the
/// member leaves, closes or is fenced) is not counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Rebalances {
    /// Rebalances completed.
    pub(crate) completed: u64,
    /// The last one completed.
    pub(crate) last: Option<Rebalance>,
    /// When the one in progress started.
    pub(crate) started: Option<Instant>,
    /// Partitions revoked or lost during the one in progress.
    revoked: usize,
    /// Partitions added by the assignment of the one in progress.
    assigned: usize,
}

/// One completed rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rebalance {
    /// The generation it ended in.
    pub(crate) generation: i32,
    /// From its start to the member being stable.
    pub(crate) duration: Duration,
    /// Partitions the new assignment added.
    pub(crate) assigned: usize,
    /// Partitions revoked or lost on the way.
    pub(crate) revoked: usize,
}

/// The member.
#[derive(Debug)]
pub(crate) struct Member {
    cfg: MemberConfig,
    phase: Phase,
    member_id: String,
    /// The generation joined; -1 if none (never joined, or fenced: lost, not yet rejoined).
    generation: i32,
    subscription: Vec<String>,
    /// Partitions the group gave this member in its generation.
    owned: BTreeSet<TopicPartition>,
    /// Partitions being revoked while their revoke callback runs: still this member's to commit.
    revoking: BTreeSet<TopicPartition>,
    /// A new assignment to set up once partitions moved away are revoked (cooperative).
    pending_assign: Option<(Vec<TopicPartition>, Vec<TopicPartition>)>,
    /// Another round was asked for during exclusive work: join again once it is done.
    rejoin_after: bool,
    /// Closing: once the work in flight is done, the member gives its partitions up and leaves.
    closing: bool,
    /// The fatal error of [`Phase::Fenced`].
    fatal: Option<Error>,
    actions: VecDeque<Action>,
    // Time.
    last_contact: Instant,
    last_poll: Instant,
    polling: usize,
    next_heartbeat: Option<Instant>,
    /// The generation of the heartbeat in flight, if one is.
    heartbeat_in_flight: Option<i32>,
    next_commit: Option<Instant>,
    commit_in_flight: bool,
    /// Joining waits until then (a backoff after a failed round).
    retry_at: Option<Instant>,
    backoff: Duration,
    rng: u64,
    rebalances: Rebalances,
}

impl Member {
    /// A member that has not joined; it joins once subscribed. `seed` drives the jitter of retries.
    pub(crate) fn new(cfg: MemberConfig, now: Instant, seed: u64) -> Member {
        Member {
            backoff: cfg.retry_backoff,
            cfg,
            phase: Phase::Left(Left::Unsubscribed),
            member_id: String::new(),
            generation: -1,
            subscription: Vec::new(),
            owned: BTreeSet::new(),
            revoking: BTreeSet::new(),
            pending_assign: None,
            rejoin_after: false,
            closing: false,
            fatal: None,
            actions: VecDeque::new(),
            last_contact: now,
            last_poll: now,
            polling: 0,
            next_heartbeat: None,
            heartbeat_in_flight: None,
            next_commit: None,
            commit_in_flight: false,
            retry_at: None,
            rng: seed | 1,
            rebalances: Rebalances::default(),
        }
    }
}

impl Membership for Member {
    // ---- reading ----------------------------------------------------------------------------------------

    fn phase(&self) -> Phase {
        self.phase
    }

    fn member_id(&self) -> &str {
        &self.member_id
    }

    fn generation(&self) -> i32 {
        self.generation
    }

    fn subscription(&self) -> &[String] {
        &self.subscription
    }

    fn owned(&self) -> &BTreeSet<TopicPartition> {
        &self.owned
    }

    fn fatal(&self) -> Option<&Error> {
        self.fatal.as_ref()
    }

    fn is_done(&self) -> bool {
        self.phase == Phase::Left(Left::Closed)
    }

    fn rebalances(&self) -> &Rebalances {
        &self.rebalances
    }

    fn commit_identity(
        &self,
        partitions: &mut dyn Iterator<Item = &TopicPartition>,
        group: &str,
    ) -> Result<(i32, String), Error> {
        let not_owned: Vec<String> = partitions
            .filter(|tp| !self.owned.contains(*tp) && !self.revoking.contains(*tp))
            .map(|tp| tp.to_string())
            .collect();
        if !not_owned.is_empty() {
            return Err(Error::CommitFailed(format!(
                "{} not owned by this member of group {group} (generation {}); the group rebalanced them away or \
                 is rebalancing",
                not_owned.join(", "),
                self.generation
            )));
        }
        Ok((self.generation, self.member_id.clone()))
    }

    fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let mut at: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        };
        if self.heartbeating() && self.heartbeat_in_flight.is_none() {
            consider(self.next_heartbeat);
        }
        if self.phase == Phase::Stable && self.cfg.auto_commit && !self.commit_in_flight {
            consider(self.next_commit);
        }
        if self.phase == Phase::Unjoined {
            consider(self.retry_at);
        }
        at
    }

    // ---- inputs -----------------------------------------------------------------------------------------

    fn handle(&mut self, event: Event, now: Instant) {
        self.on_event(event, now);
        self.track_rebalance(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.on_timeout(now);
        self.track_rebalance(now);
    }
}

impl Member {
    // ---- inputs -----------------------------------------------------------------------------------------

    fn on_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::Subscribed(topics) => self.on_subscribed(topics, now),
            Event::PollStarted => {
                self.polling += 1;
                self.last_poll = now;
                match self.phase {
                    Phase::Left(Left::Idle) => self.join_now(now),
                    // Back once the LeaveGroup is done.
                    Phase::Leaving(Left::Idle) => self.phase = Phase::Leaving(Left::Unsubscribed),
                    _ => {}
                }
            }
            Event::PollEnded => {
                self.polling = self.polling.saturating_sub(1);
                self.last_poll = now;
            }
            Event::PartitionCountChanged => self.want_rejoin(now),
            Event::Revoked => {
                self.revoking.clear();
                let Phase::Revoking(then) = self.phase else {
                    return;
                };
                self.after(then, now);
            }
            Event::Lost => {
                let Phase::Lost(then) = self.phase else {
                    return;
                };
                self.after(then, now);
            }
            Event::MemberIdRequired(id) => {
                if self.phase == Phase::Joining {
                    self.last_contact = now;
                    self.member_id = id;
                    self.join_now(now);
                }
            }
            Event::Joined(result) => {
                if self.phase != Phase::Joining {
                    return;
                }
                match result {
                    Ok(j) => {
                        self.last_contact = now;
                        self.next_heartbeat = Some(now + self.cfg.heartbeat_interval);
                        self.member_id = j.member_id;
                        self.generation = j.generation;
                        self.phase = Phase::Syncing;
                        self.actions.push_back(Action::Sync {
                            generation: j.generation,
                            member_id: self.member_id.clone(),
                            leader: j.leader,
                        });
                    }
                    Err(e) => self.round_failed(e, now),
                }
            }
            Event::Synced(result) => {
                if self.phase != Phase::Syncing {
                    return;
                }
                match result {
                    Ok(assignment) => {
                        self.last_contact = now;
                        self.on_assignment(assignment);
                    }
                    Err(e) => self.round_failed(e, now),
                }
            }
            Event::AssignedHeld => {
                // From now on the new partitions are this member's (to commit, to seek, to report).
                if let (Phase::Assigning, Some((assignment, _))) = (self.phase, &self.pending_assign) {
                    self.owned = assignment.iter().cloned().collect();
                }
            }
            Event::Assigned(result) => {
                if self.phase != Phase::Assigning {
                    return;
                }
                match result {
                    Ok(()) if self.generation >= 0 && !self.closing && self.fatal.is_none() => {
                        let added = self
                            .pending_assign
                            .take()
                            .map(|(_, added)| added)
                            .unwrap_or_default();
                        self.actions.push_back(Action::Release(added));
                        self.backoff = self.cfg.retry_backoff;
                        self.phase = Phase::Stable;
                        self.next_heartbeat = Some(now + self.cfg.heartbeat_interval);
                        self.next_commit = Some(now + self.cfg.auto_commit_interval);
                        if std::mem::take(&mut self.rejoin_after) || self.subscription.is_empty() {
                            self.want_rejoin(now);
                        }
                    }
                    // Closing, or fenced by a heartbeat while the callback ran (then the partitions stay held and
                    // are lost).
                    Ok(()) => {
                        self.pending_assign = None;
                        self.phase = Phase::Unjoined;
                        self.step(now);
                    }
                    Err(e) => {
                        self.pending_assign = None;
                        self.round_failed(e, now);
                    }
                }
            }
            Event::Heartbeat(result) => {
                let sent = self.heartbeat_in_flight.take();
                self.on_heartbeat(result, sent, now);
            }
            Event::Committed { generation, result } => {
                self.commit_in_flight = false;
                if let Err(e) = result {
                    // An answer about an older generation says nothing about this one, and a commit refused
                    // before it was sent (its partitions were being revoked meanwhile) nothing about the group.
                    if generation == self.generation && !matches!(e, Error::CommitFailed(_)) {
                        self.react(e, now);
                    }
                }
            }
            Event::CommitFailed(e) => {
                if e.kafka_code() == Some(KafkaCode::FencedInstanceId) {
                    self.react(e, now);
                }
            }
            Event::LeftGroup => {
                if let Phase::Leaving(why) = self.phase {
                    self.phase = Phase::Left(why);
                    if why == Left::Unsubscribed {
                        if self.subscription.is_empty() {
                            // No next assignment to keep paused partitions for.
                            self.actions.push_back(Action::UnassignAll);
                        } else {
                            self.join_now(now);
                        }
                    }
                }
            }
            Event::Close => self.on_close(now),
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Unjoined && self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            self.step(now);
        }
        if self.heartbeating()
            && self.heartbeat_in_flight.is_none()
            && self.next_heartbeat.is_some_and(|t| t <= now)
        {
            self.next_heartbeat = Some(now + self.cfg.heartbeat_interval);
            if self.phase == Phase::Stable
                && self.polling == 0
                && now.saturating_duration_since(self.last_poll) > self.cfg.max_poll_interval
            {
                // As the Java client: a member that stopped polling leaves, so its partitions move on.
                self.give_up(Then::Leave(Left::Idle), now);
                return;
            }
            self.heartbeat_in_flight = Some(self.generation);
            let within = self
                .cfg
                .session_timeout
                .saturating_sub(now.saturating_duration_since(self.last_contact));
            self.actions.push_back(Action::Heartbeat {
                generation: self.generation,
                member_id: self.member_id.clone(),
                within: within.max(Duration::from_millis(1)),
            });
        }
        if self.phase == Phase::Stable
            && self.cfg.auto_commit
            && !self.commit_in_flight
            && self.next_commit.is_some_and(|t| t <= now)
        {
            self.next_commit = Some(now + self.cfg.auto_commit_interval);
            self.commit_in_flight = true;
            self.actions.push_back(Action::Commit {
                generation: self.generation,
            });
        }
    }

    // ---- transitions ------------------------------------------------------------------------------------

    /// Starts, completes or abandons the rebalance in progress by the phase the member is in now (see
    /// [`Rebalances`]).
    fn track_rebalance(&mut self, now: Instant) {
        let r = &mut self.rebalances;
        match self.phase {
            Phase::Stable => {
                if let Some(started) = r.started.take() {
                    r.completed += 1;
                    r.last = Some(Rebalance {
                        generation: self.generation,
                        duration: now.saturating_duration_since(started),
                        assigned: std::mem::take(&mut r.assigned),
                        revoked: std::mem::take(&mut r.revoked),
                    });
                }
            }
            Phase::Unjoined
            | Phase::Joining
            | Phase::Syncing
            | Phase::Assigning
            | Phase::Revoking(Then::Join | Then::Assign)
            | Phase::Lost(Then::Join | Then::Assign) => {
                r.started.get_or_insert(now);
            }
            Phase::Revoking(Then::Leave(_) | Then::Fence)
            | Phase::Lost(Then::Leave(_) | Then::Fence)
            | Phase::Leaving(_)
            | Phase::Left(_)
            | Phase::Fenced => {
                r.started = None;
                r.assigned = 0;
                r.revoked = 0;
            }
        }
    }

    /// Heartbeats go on in a generation, also while callbacks run before a join and during the assignment
    /// (not while the member is leaving, nor while a join or sync is in flight).
    fn heartbeating(&self) -> bool {
        self.generation >= 0
            && matches!(
                self.phase,
                Phase::Stable | Phase::Assigning | Phase::Revoking(Then::Join | Then::Assign)
            )
    }

    fn on_subscribed(&mut self, topics: Vec<String>, now: Instant) {
        if topics == self.subscription || matches!(self.phase, Phase::Fenced | Phase::Left(Left::Closed)) {
            return;
        }
        self.subscription = topics;
        if self.subscription.is_empty() {
            match self.phase {
                Phase::Stable | Phase::Unjoined => self.join_now(now),
                Phase::Left(_) | Phase::Leaving(_) => {}
                // Exclusive work in flight: decided once it is done (see `step`).
                _ => self.rejoin_after = true,
            }
            return;
        }
        if self.phase == Phase::Left(Left::Unsubscribed) {
            self.join_now(now);
        } else {
            self.want_rejoin(now);
        }
    }

    /// Back to unjoined with no backoff pending: the next step decides what to do (join, give up, leave).
    fn join_now(&mut self, now: Instant) {
        self.phase = Phase::Unjoined;
        self.retry_at = None;
        self.step(now);
    }

    /// Another round is needed: now if stable, else once the work in flight is done.
    fn want_rejoin(&mut self, now: Instant) {
        match self.phase {
            Phase::Stable => {
                self.phase = Phase::Unjoined;
                self.step(now);
            }
            Phase::Unjoined | Phase::Left(_) | Phase::Leaving(_) | Phase::Fenced => {}
            _ => self.rejoin_after = true,
        }
    }

    /// Decides the next exclusive work in phase [`Phase::Unjoined`].
    fn step(&mut self, now: Instant) {
        if self.phase != Phase::Unjoined {
            return;
        }
        if self.fatal.is_some() {
            self.give_up(Then::Fence, now);
            return;
        }
        if self.closing {
            self.give_up_in_order(Then::Leave(Left::Closed), now);
            return;
        }
        if self.subscription.is_empty() {
            self.give_up_in_order(Then::Leave(Left::Unsubscribed), now);
            return;
        }
        if self.retry_at.is_some_and(|t| t > now) {
            return;
        }
        self.rejoin_after = false;
        if self.generation < 0 && !self.owned.is_empty() {
            // The generation was lost (fenced, session expired): another member may own the partitions already.
            self.lose(Then::Join);
            return;
        }
        if self.cfg.cooperative {
            let unsubscribed: Vec<TopicPartition> = self
                .owned
                .iter()
                .filter(|tp| !self.subscription.iter().any(|t| **t == *tp.topic))
                .cloned()
                .collect();
            if !unsubscribed.is_empty() {
                self.revoke(unsubscribed, true, Then::Join);
                return;
            }
        } else if !self.owned.is_empty() {
            let all: Vec<TopicPartition> = self.owned.iter().cloned().collect();
            self.revoke(all, false, Then::Join);
            return;
        }
        self.phase = Phase::Joining;
        self.actions.push_back(Action::Join {
            member_id: self.member_id.clone(),
            generation: self.generation,
            owned: self.owned.iter().cloned().collect(),
        });
    }

    fn after(&mut self, then: Then, now: Instant) {
        match then {
            Then::Join => {
                self.phase = Phase::Unjoined;
                self.step(now);
            }
            Then::Assign => self.start_assign(),
            Then::Leave(why) => self.leave(why, now),
            Then::Fence if self.closing => self.phase = Phase::Left(Left::Closed),
            Then::Fence => {
                self.phase = Phase::Fenced;
                // Partitions kept paused are not kept for a next assignment that will not come.
                self.actions.push_back(Action::UnassignAll);
            }
        }
    }

    fn revoke(&mut self, partitions: Vec<TopicPartition>, partial: bool, then: Then) {
        self.rebalances.revoked += partitions.len();
        for tp in &partitions {
            self.owned.remove(tp);
        }
        self.revoking = partitions.iter().cloned().collect();
        self.phase = Phase::Revoking(then);
        self.actions.push_back(Action::Revoke {
            partitions,
            commit: self.cfg.auto_commit,
            partial,
        });
    }

    fn lose(&mut self, then: Then) {
        let partitions: Vec<TopicPartition> = std::mem::take(&mut self.owned).into_iter().collect();
        self.rebalances.revoked += partitions.len();
        self.phase = Phase::Lost(then);
        self.actions.push_back(Action::Lose { partitions });
    }

    /// Gives everything up and then `then`: revoked in order if still in the generation, else lost.
    fn give_up_in_order(&mut self, then: Then, now: Instant) {
        if self.owned.is_empty() {
            self.after(then, now);
        } else if self.generation < 0 {
            self.lose(then);
        } else {
            let all = self.owned.iter().cloned().collect();
            self.revoke(all, false, then);
        }
    }

    /// Gives everything up without a commit (the member is out: idle or fenced), then `then`.
    fn give_up(&mut self, then: Then, now: Instant) {
        if self.owned.is_empty() {
            self.after(then, now);
        } else {
            self.lose(then);
        }
    }

    fn leave(&mut self, why: Left, now: Instant) {
        self.generation = -1;
        self.next_heartbeat = None;
        self.phase = Phase::Leaving(why);
        if self.cfg.static_member || self.member_id.is_empty() {
            // Static members keep their id and do not leave (the Java client's behaviour on close).
            self.handle(Event::LeftGroup, now);
            return;
        }
        self.actions.push_back(Action::Leave {
            member_id: std::mem::take(&mut self.member_id),
        });
    }

    fn on_assignment(&mut self, assignment: Vec<TopicPartition>) {
        let new: BTreeSet<TopicPartition> = assignment.iter().cloned().collect();
        if self.cfg.cooperative {
            let revoked: Vec<TopicPartition> = self.owned.difference(&new).cloned().collect();
            let added: Vec<TopicPartition> = new.difference(&self.owned).cloned().collect();
            self.pending_assign = Some((assignment, added));
            if !revoked.is_empty() {
                // KIP-429: partitions moving away are revoked first, and a follow-up round hands them on.
                self.rejoin_after = true;
                self.revoke(revoked, true, Then::Assign);
                return;
            }
        } else {
            self.pending_assign = Some((assignment.clone(), assignment));
        }
        self.start_assign();
    }

    fn start_assign(&mut self) {
        let (assignment, added) = self.pending_assign.clone().unwrap_or_default();
        // The round's last assignment counts (a failed attempt's does not add to it).
        self.rebalances.assigned = added.len();
        self.phase = Phase::Assigning;
        self.actions.push_back(Action::Assign { assignment, added });
    }

    fn on_heartbeat(&mut self, result: Result<(), Error>, sent: Option<i32>, now: Instant) {
        let e = match result {
            Ok(()) => {
                self.last_contact = now;
                return;
            }
            Err(e) => e,
        };
        // An answer about a generation this member has left (a round began while it was in flight) says
        // nothing about the current one; only fencing of the instance id always counts.
        let stale = sent != Some(self.generation)
            || matches!(self.phase, Phase::Unjoined | Phase::Joining | Phase::Syncing);
        if stale && e.kafka_code() != Some(KafkaCode::FencedInstanceId) {
            tracing::debug!(error = %e, "heartbeat answer of an earlier generation ignored");
            return;
        }
        match e.kafka_code() {
            Some(KafkaCode::RebalanceInProgress) => {
                self.last_contact = now;
                if self.phase != Phase::Revoking(Then::Join) {
                    tracing::debug!(member = %self.member_id, "rebalance in progress; rejoining");
                    self.want_rejoin(now);
                }
            }
            Some(KafkaCode::CoordinatorLoadInProgress) => {
                self.next_heartbeat = Some(now + self.cfg.retry_backoff);
            }
            Some(KafkaCode::IllegalGeneration | KafkaCode::UnknownMemberId | KafkaCode::FencedInstanceId) => {
                self.react(e, now)
            }
            _ if unavailable(&e) => {
                // The coordinator moved or is unreachable: found again by the next heartbeat, after a pause.
                self.next_heartbeat = Some(now + self.cfg.retry_backoff);
                self.expire_if_silent(now);
            }
            _ => {
                self.actions.push_back(Action::Report(e));
                if self.phase == Phase::Stable {
                    self.want_rejoin(now);
                }
                self.expire_if_silent(now);
            }
        }
    }

    /// No answer from the coordinator for `session.timeout.ms`: it has evicted this member, which counts itself
    /// out (its partitions are lost once the work in flight is done) and rejoins.
    fn expire_if_silent(&mut self, now: Instant) {
        if self.generation < 0 || now.saturating_duration_since(self.last_contact) <= self.cfg.session_timeout
        {
            return;
        }
        tracing::warn!(
            generation = self.generation,
            "no successful heartbeat within session.timeout.ms; the member counts itself out of the group"
        );
        self.fence_generation(!self.cfg.static_member);
        self.want_rejoin(now);
    }

    /// Forgets the generation (and the member id if `forget_id`).
    fn fence_generation(&mut self, forget_id: bool) {
        self.generation = -1;
        if forget_id {
            self.member_id.clear();
        }
    }

    /// What a group call's error `e` means for this member's identity: fenced for good, a generation (and member
    /// id) forgotten, or an error the application must see. Returns whether another round is called for (not for
    /// an unavailable coordinator, nor once fenced for good).
    fn absorb(&mut self, e: Error) -> bool {
        match e.kafka_code() {
            Some(KafkaCode::FencedInstanceId) => {
                // Another instance took this member's group.instance.id: fatal, as in the Java client.
                if self.fatal.is_none() {
                    tracing::error!(error = %e, "fenced by another instance; giving up");
                    self.fatal = Some(e);
                }
                false
            }
            Some(KafkaCode::IllegalGeneration) => {
                self.fence_generation(false);
                true
            }
            Some(KafkaCode::UnknownMemberId) => {
                self.fence_generation(true);
                true
            }
            Some(KafkaCode::RebalanceInProgress | KafkaCode::MemberIdRequired) => true,
            _ if unavailable(&e) => false,
            _ => {
                self.actions.push_back(Action::Report(e));
                true
            }
        }
    }

    /// A group call failed with `e` outside a round: what it means for the membership.
    fn react(&mut self, e: Error, now: Instant) {
        let fenced = e.kafka_code() == Some(KafkaCode::FencedInstanceId);
        if self.absorb(e) {
            self.want_rejoin(now);
        } else if fenced {
            self.rejoin_after = false;
            match self.phase {
                Phase::Stable | Phase::Unjoined => self.give_up(Then::Fence, now),
                // Exclusive work in flight: ended by `round_failed` or the next step.
                _ => {}
            }
        }
    }

    /// A round (join, sync, assignment) failed with `e`: back to unjoined, to retry after a pause.
    fn round_failed(&mut self, e: Error, now: Instant) {
        tracing::debug!(error = %e, "join failed");
        self.phase = Phase::Unjoined;
        let code = e.kafka_code();
        if code.is_some() {
            self.last_contact = now; // The coordinator answered, if with an error.
        } else if self.generation >= 0
            && now.saturating_duration_since(self.last_contact) > self.cfg.session_timeout
        {
            // Cut off for a whole session while still owning partitions (cooperative members keep them through
            // a rebalance): they are someone else's now; rejoin at once.
            self.fence_generation(!self.cfg.static_member);
            self.step(now);
            return;
        }
        self.absorb(e);
        if self.fatal.is_some() {
            self.give_up(Then::Fence, now);
            return;
        }
        match code {
            // A round began before our SyncGroup: rejoin soon, after a random pause of up to one heartbeat that
            // lets the other members rejoin first, so the next round includes everyone.
            Some(KafkaCode::RebalanceInProgress) => {
                let pause = self.cfg.heartbeat_interval.mul_f64(self.jitter());
                self.retry_at = Some(now + pause);
            }
            Some(KafkaCode::MemberIdRequired) => self.retry_at = None,
            _ => {
                self.retry_at = Some(now + self.backoff);
                self.backoff = (self.backoff * 2).min(self.cfg.retry_backoff_max);
            }
        }
        self.step(now);
    }

    fn on_close(&mut self, now: Instant) {
        self.rejoin_after = false;
        self.closing = true;
        match self.phase {
            Phase::Left(Left::Closed) | Phase::Leaving(Left::Closed) => {}
            Phase::Fenced | Phase::Left(_) => self.phase = Phase::Left(Left::Closed),
            Phase::Leaving(_) => self.phase = Phase::Leaving(Left::Closed),
            // Network exchanges are abandoned (the driver drops them); the member leaves from where it is.
            Phase::Unjoined | Phase::Joining | Phase::Syncing | Phase::Stable => {
                self.pending_assign = None;
                self.phase = Phase::Unjoined;
                self.step(now);
            }
            // Callbacks run to their end; then the member gives up what it owns and leaves.
            Phase::Revoking(_) | Phase::Lost(_) => {
                if let Phase::Revoking(then) | Phase::Lost(then) = &mut self.phase {
                    *then = Then::Join;
                }
            }
            Phase::Assigning => {}
        }
    }

    /// A number in [0, 1) (xorshift64).
    fn jitter(&mut self) -> f64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    //! Table tests on virtual time: each case feeds events and times and reads the actions, written as short
    //! strings (`join m1 g1`, `revoke t-0 commit`, ...).

    use super::*;

    struct Case {
        m: Member,
        t0: Instant,
        now: Instant,
    }

    fn cfg(cooperative: bool) -> MemberConfig {
        MemberConfig {
            session_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(1),
            max_poll_interval: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            cooperative,
            auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            static_member: false,
        }
    }

    fn tp(s: &str) -> TopicPartition {
        let (t, p) = s.rsplit_once('-').unwrap();
        TopicPartition::new(t, p.parse().unwrap())
    }

    fn tps(list: &str) -> Vec<TopicPartition> {
        list.split_whitespace().map(tp).collect()
    }

    fn kafka(code: KafkaCode) -> Error {
        Error::Kafka {
            code,
            context: "test".into(),
        }
    }

    fn io() -> Error {
        Error::io("coordinator:9092", std::io::ErrorKind::ConnectionReset.into())
    }

    fn joined(member_id: &str, generation: i32, leader: bool) -> Event {
        Event::Joined(Ok(Joined {
            member_id: member_id.into(),
            generation,
            leader,
        }))
    }

    fn list(v: &[TopicPartition]) -> String {
        v.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",")
    }

    fn show(a: &Action) -> String {
        match a {
            Action::Revoke {
                partitions,
                commit,
                partial,
            } => format!(
                "revoke {}{}{}",
                list(partitions),
                if *commit { " commit" } else { "" },
                if *partial { " partial" } else { "" }
            ),
            Action::Lose { partitions } => format!("lose {}", list(partitions)),
            Action::Join {
                member_id,
                generation,
                owned,
            } => {
                let owned = if owned.is_empty() {
                    String::new()
                } else {
                    format!(" owns {}", list(owned))
                };
                format!("join {member_id:?} g{generation}{owned}")
            }
            Action::Sync {
                generation, leader, ..
            } => format!("sync g{generation}{}", if *leader { " leader" } else { "" }),
            Action::Assign { assignment, added } => {
                format!("assign {} add {}", list(assignment), list(added))
            }
            Action::Release(p) => format!("release {}", list(p)),
            Action::Heartbeat { generation, .. } => format!("heartbeat g{generation}"),
            Action::Commit { generation } => format!("commit g{generation}"),
            Action::Leave { member_id } => format!("leave {member_id}"),
            Action::UnassignAll => "unassign all".into(),
            Action::Report(e) => match e.kafka_code() {
                Some(c) => format!("report {c}"),
                None => format!("report {e}"),
            },
        }
    }

    impl Case {
        fn new(cfg: MemberConfig) -> Case {
            let t0 = Instant::now();
            Case {
                m: Member::new(cfg, t0, 42),
                t0,
                now: t0,
            }
        }

        /// Moves the clock to `ms` after the start and lets due timers fire.
        fn at(&mut self, ms: u64) -> &mut Self {
            self.now = self.t0 + Duration::from_millis(ms);
            self.m.handle_timeout(self.now);
            self
        }

        fn on(&mut self, e: Event) -> &mut Self {
            self.m.handle(e, self.now);
            self
        }

        fn actions(&mut self) -> Vec<String> {
            std::iter::from_fn(|| self.m.poll_action())
                .map(|a| show(&a))
                .collect()
        }

        fn expect(&mut self, want: &[&str]) -> &mut Self {
            assert_eq!(self.actions(), want, "phase {:?}", self.m.phase());
            self
        }

        /// Subscribes to `topics` and goes through one round to own `owned` in generation `g` as `id`.
        fn stable(cfg: MemberConfig, topics: &[&str], id: &str, g: i32, owned: &str) -> Case {
            let mut c = Case::new(cfg);
            c.on(Event::Subscribed(topics.iter().map(|t| t.to_string()).collect()))
                .expect(&["join \"\" g-1"])
                .on(joined(id, g, false))
                .expect(&[&format!("sync g{g}")])
                .on(Event::Synced(Ok(tps(owned))));
            let assign = format!("assign {} add {}", list(&tps(owned)), list(&tps(owned)));
            c.expect(&[&assign])
                .on(Event::AssignedHeld)
                .on(Event::Assigned(Ok(())));
            c.expect(&[&format!("release {}", list(&tps(owned)))]);
            assert_eq!(c.m.phase(), Phase::Stable);
            c
        }
    }

    #[test]
    fn a_round_ends_stable_and_heartbeats_every_interval() {
        let mut c = Case::stable(cfg(false), &["t"], "m1", 1, "t-0 t-1");
        c.at(999).expect(&[]).at(1000).expect(&["heartbeat g1"]);
        // No second heartbeat while one is in flight.
        c.at(2500)
            .expect(&[])
            .on(Event::Heartbeat(Ok(())))
            .at(3500)
            .expect(&["heartbeat g1"]);
        c.on(Event::Heartbeat(Ok(())))
            .at(5000)
            .expect(&["heartbeat g1", "commit g1"]);
    }

    #[test]
    fn member_id_required_rejoins_at_once_with_the_id() {
        let mut c = Case::new(cfg(false));
        c.on(Event::Subscribed(vec!["t".into()]))
            .expect(&["join \"\" g-1"]);
        c.on(Event::MemberIdRequired("m7".into()))
            .expect(&["join \"m7\" g-1"]);
    }

    #[test]
    fn the_coordinator_moving_mid_join_retries_after_a_backoff_without_a_report() {
        let mut c = Case::new(cfg(false));
        c.on(Event::Subscribed(vec!["t".into()]))
            .expect(&["join \"\" g-1"]);
        c.on(Event::Joined(Err(kafka(KafkaCode::NotCoordinator))))
            .expect(&[]);
        c.at(99).expect(&[]).at(100).expect(&["join \"\" g-1"]);
        // The backoff doubles, up to retry.backoff.max.ms (1 s here, the default).
        c.on(Event::Joined(Err(io())))
            .at(299)
            .expect(&[])
            .at(300)
            .expect(&["join \"\" g-1"]);
        let mut waits = Vec::new();
        for _ in 0..8 {
            c.on(Event::Joined(Err(io())));
            let due = c.m.poll_timeout().unwrap();
            waits.push((due - c.now).as_millis());
            c.now = due;
            c.m.handle_timeout(due);
            c.expect(&["join \"\" g-1"]);
        }
        assert_eq!(waits, [400, 800, 1000, 1000, 1000, 1000, 1000, 1000]);
    }

    #[test]
    fn an_unexpected_join_error_is_reported_and_retried() {
        let mut c = Case::new(cfg(false));
        c.on(Event::Subscribed(vec!["t".into()]))
            .expect(&["join \"\" g-1"]);
        c.on(Event::Joined(Err(kafka(KafkaCode::GroupAuthorizationFailed))))
            .expect(&["report GroupAuthorizationFailed"])
            .at(100)
            .expect(&["join \"\" g-1"]);
    }

    #[test]
    fn eager_rebalance_revokes_everything_with_a_commit_before_joining() {
        let mut c = Case::stable(cfg(false), &["t"], "m1", 1, "t-0 t-1");
        c.at(1000).expect(&["heartbeat g1"]);
        c.on(Event::Heartbeat(Err(kafka(KafkaCode::RebalanceInProgress))))
            .expect(&["revoke t-0,t-1 commit"]);
        // Heartbeats go on while the revoke callback runs.
        c.at(2000).expect(&["heartbeat g1"]).on(Event::Heartbeat(Ok(())));
        c.on(Event::Revoked).expect(&["join \"m1\" g1"]);
        assert!(c.m.owned().is_empty());
    }

    #[test]
    fn cooperative_rebalance_keeps_partitions_and_revokes_only_those_moving_away() {
        let mut c = Case::stable(cfg(true), &["t"], "m1", 1, "t-0 t-1");
        c.at(1000).expect(&["heartbeat g1"]);
        c.on(Event::Heartbeat(Err(kafka(KafkaCode::RebalanceInProgress))))
            .expect(&["join \"m1\" g1 owns t-0,t-1"]);
        c.on(joined("m1", 2, true)).expect(&["sync g2 leader"]);
        c.on(Event::Synced(Ok(tps("t-0"))))
            .expect(&["revoke t-1 commit partial"]);
        assert_eq!(
            c.m.commit_identity(&mut tps("t-1").iter(), "g").unwrap().0,
            2,
            "revoking: still ours to commit"
        );
        c.on(Event::Revoked).expect(&["assign t-0 add "]);
        assert!(c.m.commit_identity(&mut tps("t-1").iter(), "g").is_err());
        // The follow-up round hands t-1 on.
        c.on(Event::AssignedHeld)
            .on(Event::Assigned(Ok(())))
            .expect(&["release ", "join \"m1\" g2 owns t-0"]);
    }

    #[test]
    fn a_heartbeat_fencing_the_member_during_the_revoke_callback_makes_the_rest_lost() {
        let mut c = Case::stable(cfg(true), &["t", "u"], "m1", 1, "t-0 u-0");
        c.on(Event::Subscribed(vec!["t".into()]))
            .expect(&["revoke u-0 commit partial"]);
        c.at(1000).expect(&["heartbeat g1"]);
        c.on(Event::Heartbeat(Err(kafka(KafkaCode::UnknownMemberId))))
            .expect(&[]);
        c.on(Event::Revoked).expect(&["lose t-0"]);
        c.on(Event::Lost).expect(&["join \"\" g-1"]);
    }

    #[test]
    fn the_session_timing_out_while_the_assign_callback_runs_loses_the_partitions() {
        let mut c = Case::new(cfg(false));
        c.on(Event::Subscribed(vec!["t".into()]));
        c.on(joined("m1", 1, false));
        c.on(Event::Synced(Ok(tps("t-0"))));
        c.expect(&["join \"\" g-1", "sync g1", "assign t-0 add t-0"]);
        // The coordinator is unreachable while the callback runs: heartbeats fail for a whole session.
        let mut ms = 0;
        while ms < 10_000 {
            ms += 1_100;
            c.at(ms).expect(&["heartbeat g1"]).on(Event::Heartbeat(Err(io())));
        }
        assert_eq!(c.m.generation(), -1);
        c.on(Event::AssignedHeld)
            .on(Event::Assigned(Ok(())))
            .expect(&["lose t-0"]);
        c.on(Event::Lost).expect(&["join \"\" g-1"]);
    }

    #[test]
    fn a_rejoin_during_a_commit_ignores_the_old_generations_answer() {
        let mut c = Case::stable(cfg(false), &["t"], "m1", 1, "t-0");
        c.at(5000)
            .expect(&["heartbeat g1", "commit g1"])
            .on(Event::Heartbeat(Ok(())));
        c.on(Event::Subscribed(vec!["t".into(), "u".into()]))
            .expect(&["revoke t-0 commit"]);
        c.on(Event::Revoked).expect(&["join \"m1\" g1"]);
        c.on(joined("m1", 2, false)).expect(&["sync g2"]);
        // The auto-commit of generation 1 fails late: it says nothing about generation 2.
        c.on(Event::Committed {
            generation: 1,
            result: Err(kafka(KafkaCode::IllegalGeneration)),
        })
        .expect(&[]);
        assert_eq!(c.m.generation(), 2);
        c.on(Event::Synced(Ok(tps("t-0 u-0"))))
            .expect(&["assign t-0,u-0 add t-0,u-0"]);
        assert!(
            c.m.owned().is_empty(),
            "not this member's before they are assigned"
        );
        c.on(Event::AssignedHeld);
        assert_eq!(c.m.owned().len(), 2);
    }

    #[test]
    fn a_heartbeat_answered_after_the_member_rejoined_is_ignored() {
        let mut c = Case::stable(cfg(true), &["t"], "m1", 1, "t-0");
        c.at(1000).expect(&["heartbeat g1"]);
        // A new round starts while that heartbeat is in flight.
        c.on(Event::PartitionCountChanged)
            .expect(&["join \"m1\" g1 owns t-0"]);
        c.on(Event::Heartbeat(Err(kafka(KafkaCode::RebalanceInProgress))))
            .expect(&[]);
        c.on(joined("m1", 2, false)).expect(&["sync g2"]);
        c.on(Event::Heartbeat(Err(kafka(KafkaCode::IllegalGeneration))))
            .expect(&[]);
        assert_eq!(c.m.generation(), 2);
        c.on(Event::Synced(Ok(tps("t-0")))).expect(&["assign t-0 add "]);
        c.on(Event::AssignedHeld)
            .on(Event::Assigned(Ok(())))
            .expect(&["release "]);
        assert_eq!(c.m.phase(), Phase::Stable, "no second round");
    }

    #[test]
    fn an_auto_commit_refused_before_it_was_sent_changes_nothing() {
        let mut c = Case::stable(cfg(false), &["t"], "m1", 1, "t-0");
        c.at(5000).expect(&["heartbeat g1", "commit g1"]);
        c.on(Event::Committed {
            generation: 1,
            result: Err(Error::CommitFailed("t-0 not owned".into())),
        })
        .expect(&[]);
        assert_eq!(c.m.phase(), Phase::Stable);
    }

    #[test]
    fn a_failed_commit_of_this_generation_fences_it() {
        let mut c = Case::stable(cfg(false), &["t"], "m1", 1, "t-0");
        c.at(5000)
            .expect(&["heartbeat g1", "commit g1"])
            .on(Event::Heartbeat(Ok(())));
        c.on(Event::Committed {
            generation: 1,
            result: Err(kafka(KafkaCode::IllegalGeneration)),
        })
        .expect(&["lose t-0"]);
        c.on(Event::Lost).expect(&["join \"m1\" g-1"]);
    }

    #[test]
    fn rebalance_in_progress_on_sync_rejoins_within_one_heartbeat() {
        let mut c = Case::new(cfg(false));
        c.on(Event::Subscribed(vec!["t".into()]));
        c.on(joined("m1", 1, false));
        c.expect(&["join \"\" g-1", "sync g1"]);
        c.on(Event::Synced(Err(kafka(KafkaCode::RebalanceInProgress))))
            .expect(&[]);
        let due = c.m.poll_timeout().unwrap() - c.t0;
        assert!(due <= Duration::from_secs(1), "{due:?}");
        c.at(1000).expect(&["join \"m1\" g1"]);
    }

    #[test]
    fn an_idle_member_leaves_and_comes_back_on_the_next_poll() {
        let mut c = Case::stable(cfg(false), &["t"], "m1", 1, "t-0");
        let mut ms = 0;
        while ms < 30_000 {
            ms += 1_000;
            let due = c.at(ms).actions();
            assert!(due
                .iter()
                .all(|a| a.starts_with("heartbeat") || a.starts_with("commit")));
            c.on(Event::Heartbeat(Ok(())));
            c.on(Event::Committed {
                generation: 1,
                result: Ok(()),
            });
        }
        // A poll in progress counts as polling.
        c.on(Event::PollStarted)
            .at(31_000)
            .expect(&["heartbeat g1"])
            .on(Event::Heartbeat(Ok(())));
        c.on(Event::PollEnded).at(61_001).expect(&["lose t-0"]);
        c.on(Event::Lost)
            .expect(&["leave m1"])
            .on(Event::LeftGroup)
            .expect(&[]);
        assert_eq!(c.m.phase(), Phase::Left(Left::Idle));
        c.on(Event::PollStarted).expect(&["join \"\" g-1"]);
    }

    #[test]
    fn fenced_instance_id_stops_the_member_for_good() {
        let mut static_cfg = cfg(false);
        static_cfg.static_member = true;
        let mut c = Case::stable(static_cfg, &["t"], "m1", 1, "t-0");
        c.at(1000).expect(&["heartbeat g1"]);
        c.on(Event::Heartbeat(Err(kafka(KafkaCode::FencedInstanceId))))
            .expect(&["lose t-0"]);
        c.on(Event::Lost).expect(&["unassign all"]);
        assert_eq!(c.m.phase(), Phase::Fenced);
        assert_eq!(
            c.m.fatal().and_then(Error::kafka_code),
            Some(KafkaCode::FencedInstanceId)
        );
        c.on(Event::Subscribed(vec!["u".into()])).at(60_000).expect(&[]);
        c.on(Event::Close).expect(&[]);
        assert!(c.m.is_done());
    }

    #[test]
    fn unsubscribing_revokes_leaves_and_unassigns() {
        let mut c = Case::stable(cfg(false), &["t"], "m1", 1, "t-0");
        c.on(Event::Subscribed(vec![])).expect(&["revoke t-0 commit"]);
        c.on(Event::Revoked)
            .expect(&["leave m1"])
            .on(Event::LeftGroup)
            .expect(&["unassign all"]);
        assert_eq!(c.m.phase(), Phase::Left(Left::Unsubscribed));
        c.on(Event::Subscribed(vec!["t".into()]))
            .expect(&["join \"\" g-1"]);
    }

    #[test]
    fn closing_mid_join_abandons_it_and_leaves() {
        let mut c = Case::stable(cfg(true), &["t"], "m1", 1, "t-0");
        c.on(Event::PartitionCountChanged)
            .expect(&["join \"m1\" g1 owns t-0"]);
        c.on(Event::Close).expect(&["revoke t-0 commit"]);
        // A late answer to the abandoned join changes nothing.
        c.on(Event::Joined(Err(io()))).expect(&[]);
        c.on(Event::Revoked).expect(&["leave m1"]).on(Event::LeftGroup);
        assert!(c.m.is_done());
    }

    #[test]
    fn closing_during_the_assign_callback_waits_for_it_then_revokes_and_leaves() {
        let mut c = Case::new(cfg(false));
        c.on(Event::Subscribed(vec!["t".into()]));
        c.on(joined("m1", 1, false));
        c.on(Event::Synced(Ok(tps("t-0"))));
        c.expect(&["join \"\" g-1", "sync g1", "assign t-0 add t-0"]);
        c.on(Event::AssignedHeld).on(Event::Close).expect(&[]);
        c.on(Event::Assigned(Ok(()))).expect(&["revoke t-0 commit"]);
        c.on(Event::Revoked).expect(&["leave m1"]).on(Event::LeftGroup);
        assert!(c.m.is_done());
    }

    #[test]
    fn a_static_member_keeps_its_id_and_does_not_send_leave_group() {
        let mut static_cfg = cfg(false);
        static_cfg.static_member = true;
        let mut c = Case::stable(static_cfg, &["t"], "m1", 1, "t-0");
        c.on(Event::Close)
            .expect(&["revoke t-0 commit"])
            .on(Event::Revoked)
            .expect(&[]);
        assert!(c.m.is_done());
        assert_eq!(c.m.member_id(), "m1");
    }

    #[test]
    fn commits_are_refused_for_partitions_not_owned() {
        let c = Case::stable(cfg(false), &["t"], "m1", 3, "t-0");
        assert_eq!(
            c.m.commit_identity(&mut tps("t-0").iter(), "g").unwrap(),
            (3, "m1".to_string())
        );
        let e = c.m.commit_identity(&mut tps("t-0 t-1").iter(), "g").unwrap_err();
        assert!(
            matches!(&e, Error::CommitFailed(m) if m.contains("t-1") && !m.contains("t-0")),
            "{e}"
        );
    }

    #[test]
    fn a_leader_seeing_new_partitions_rejoins() {
        let mut c = Case::stable(cfg(false), &["t"], "m1", 1, "t-0");
        c.on(Event::PartitionCountChanged).expect(&["revoke t-0 commit"]);
    }

    #[test]
    fn a_heartbeat_that_fails_for_a_session_counts_the_member_out() {
        let mut c = Case::stable(cfg(false), &["t"], "m1", 1, "t-0");
        let mut ms = 0;
        loop {
            ms += 1_000;
            let due = c.at(ms).actions();
            if due.iter().any(|a| a.starts_with("lose")) {
                assert!(ms > 10_000, "{ms}");
                break;
            }
            assert!(due.contains(&"heartbeat g1".to_string()), "{ms}: {due:?}");
            c.on(Event::Heartbeat(Err(kafka(KafkaCode::CoordinatorNotAvailable))));
            if c.m.generation() < 0 {
                assert_eq!(c.actions(), ["lose t-0"]);
                break;
            }
        }
        c.on(Event::Lost).expect(&["join \"\" g-1"]);
    }

    #[test]
    fn a_rebalance_counts_from_leaving_stable_to_stable_again_retries_included() {
        let mut c = Case::stable(cfg(false), &["t"], "m1", 1, "t-0 t-1");
        // The first join is a rebalance too (from outside the group), here at no cost in virtual time.
        let first = c.m.rebalances().last.expect("the first join counted");
        assert_eq!(c.m.rebalances().completed, 1);
        assert_eq!((first.generation, first.assigned, first.revoked), (1, 2, 0));
        assert!(c.m.rebalances().started.is_none());
        c.at(1000).expect(&["heartbeat g1"]);
        c.on(Event::Heartbeat(Err(kafka(KafkaCode::RebalanceInProgress))))
            .expect(&["revoke t-0,t-1 commit"]);
        assert_eq!(c.m.rebalances().started, Some(c.t0 + Duration::from_millis(1000)));
        c.at(1200).on(Event::Revoked).expect(&["join \"m1\" g1"]);
        // A failed attempt and its backoff belong to the same rebalance.
        c.at(1300).on(Event::Joined(Err(io()))).expect(&[]);
        c.at(2000).expect(&["join \"m1\" g1"]);
        c.at(2100).on(joined("m1", 2, false)).expect(&["sync g2"]);
        c.on(Event::Synced(Ok(tps("t-1"))))
            .expect(&["assign t-1 add t-1"]);
        c.at(2500).on(Event::AssignedHeld).on(Event::Assigned(Ok(())));
        assert_eq!(c.m.phase(), Phase::Stable);
        let r = c.m.rebalances();
        assert_eq!(r.completed, 2);
        assert_eq!(
            r.last,
            Some(Rebalance {
                generation: 2,
                duration: Duration::from_millis(1500),
                assigned: 1,
                revoked: 2,
            })
        );
        assert!(r.started.is_none());
    }

    #[test]
    fn a_rebalance_abandoned_by_closing_is_not_counted() {
        let mut c = Case::stable(cfg(true), &["t"], "m1", 1, "t-0");
        c.on(Event::PartitionCountChanged)
            .expect(&["join \"m1\" g1 owns t-0"]);
        assert!(c.m.rebalances().started.is_some());
        c.on(Event::Close).expect(&["revoke t-0 commit"]);
        assert!(c.m.rebalances().started.is_none());
        c.on(Event::Revoked).expect(&["leave m1"]).on(Event::LeftGroup);
        assert_eq!(c.m.rebalances().completed, 1, "only the first join");
    }
}
