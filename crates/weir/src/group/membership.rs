//! What the group task drives: a membership protocol as a state machine with no I/O. The classic protocol's
//! member (`member.rs`, JoinGroup / SyncGroup / Heartbeat) is one implementation; KIP-848's consumer protocol
//! (ConsumerGroupHeartbeat) and share groups are meant to be others, driven by the same task (`driver.rs`):
//! they share its protocol-neutral work (revoke, lose, assign, release, commit, unassign, report) and add their
//! own calls as actions and their answers as events.

use std::collections::BTreeSet;
use std::time::Instant;

use super::member::{Action, Event, Phase, Rebalances};
use crate::error::Error;
use crate::types::TopicPartition;

/// A member of a group, as the group task and the application's handle see it.
pub(crate) trait Membership: Send {
    /// Where the member stands.
    fn phase(&self) -> Phase;

    /// The member id the coordinator gave this member ("" before joining).
    fn member_id(&self) -> &str;

    /// The generation (or member epoch) joined; -1 if none.
    fn generation(&self) -> i32;

    /// The topics subscribed to.
    fn subscription(&self) -> &[String];

    /// The partitions the group gave this member and that the consumer holds.
    fn owned(&self) -> &BTreeSet<TopicPartition>;

    /// The error every `poll` returns once the member is fenced for good.
    fn fatal(&self) -> Option<&Error>;

    /// Whether the member is done (closed and left): the task stops.
    fn is_done(&self) -> bool;

    /// The rebalances completed and the one in progress.
    fn rebalances(&self) -> &Rebalances;

    /// The generation and member id a commit of `partitions` is made with, or why it may not be made (this
    /// member does not own them, nor is revoking them).
    fn commit_identity(
        &self,
        partitions: &mut dyn Iterator<Item = &TopicPartition>,
        group: &str,
    ) -> Result<(i32, String), Error>;

    /// Whether actions wait for the task.
    fn has_actions(&self) -> bool;

    /// The next action for the task, if any.
    fn poll_action(&mut self) -> Option<Action>;

    /// When [`Membership::handle_timeout`] should be called next.
    fn poll_timeout(&self) -> Option<Instant>;

    /// Feeds one event that happened at `now`.
    fn handle(&mut self, event: Event, now: Instant);

    /// Time passed: heartbeats, commits, retries and `max.poll.interval.ms` fall due.
    fn handle_timeout(&mut self, now: Instant);
}
