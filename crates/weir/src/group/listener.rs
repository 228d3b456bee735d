//! Rebalance callbacks: [`RebalanceListener`], the [`RebalanceContext`] they get, and [`ChannelListener`].

use std::collections::HashMap;

use futures::future::BoxFuture;

use super::{coordinator, driver, Shared};
use crate::consumer::{StartOffset, TopicPartition};
use crate::error::{Error, Result};

/// Rebalance notifications. They run on the group's task, which awaits each one before going on: while
/// `on_revoked` runs, the revoked partitions are still this member's (a commit made there uses the current
/// generation), and while `on_assigned` runs, the new partitions are assigned but paused, so nothing of theirs
/// is fetched or delivered before it returns (a seek made there decides where consumption starts).
///
/// Each method returns a future, so a callback can await: commit offsets the application tracks itself, wait
/// for in-flight work to drain, read positions from an external store. Heartbeats go on while a callback runs
/// (except the revoke callback of `close`, when the member is leaving), but the group's round waits for it: a revoke callback longer than `max.poll.interval.ms` (the rebalance
/// timeout) gets the member removed from the group. `close` from inside a callback is refused (it would wait
/// for the callback); a callback started before `close` runs to its end.
///
/// ```no_run
/// use weir::consumer::TopicPartition;
/// use weir::group::{BoxFuture, RebalanceContext, RebalanceListener};
///
/// /// Commits what the application has *processed* (auto-commit off) before partitions move.
/// struct CommitProcessed(std::sync::Mutex<Vec<(TopicPartition, i64)>>);
///
/// impl RebalanceListener for CommitProcessed {
///     fn on_revoked<'a>(
///         &'a self,
///         group: &'a RebalanceContext<'a>,
///         partitions: &'a [TopicPartition],
///     ) -> BoxFuture<'a, ()> {
///         Box::pin(async move {
///             let done: Vec<_> = self.0.lock().unwrap().iter()
///                 .filter(|(tp, _)| partitions.contains(tp)).cloned().collect();
///             if let Err(e) = group.commit(&done).await {
///                 eprintln!("commit on revoke failed: {e}");
///             }
///         })
///     }
/// }
/// ```
pub trait RebalanceListener: Send + Sync {
    /// The member now owns `partitions`. Eager protocol: the whole new assignment. Cooperative protocol: only
    /// the partitions added in this rebalance (possibly none). Their records start arriving once this returns,
    /// from the committed offset (or `auto.offset.reset`) unless the callback seeks them.
    fn on_assigned<'a>(
        &'a self,
        group: &'a RebalanceContext<'a>,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        let _ = (group, partitions);
        Box::pin(async {})
    }

    /// The member gives `partitions` up in an orderly rebalance or on close. Called after their delivered
    /// positions were committed (with `enable.auto.commit`); from the moment it is called, no record of theirs
    /// is delivered. After it returns they are unassigned and their buffered records dropped.
    fn on_revoked<'a>(
        &'a self,
        group: &'a RebalanceContext<'a>,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        let _ = (group, partitions);
        Box::pin(async {})
    }

    /// The member lost `partitions` without a chance to commit (fenced: its session expired or the coordinator
    /// forgot it). Another member may already own them; a commit from here would be refused. No record of
    /// theirs is delivered from now on.
    fn on_lost<'a>(
        &'a self,
        group: &'a RebalanceContext<'a>,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        let _ = (group, partitions);
        Box::pin(async {})
    }
}

/// What a [`RebalanceListener`] can do with the group while a rebalance waits for it.
pub struct RebalanceContext<'a> {
    shared: &'a Shared,
}

impl<'a> RebalanceContext<'a> {
    pub(crate) fn new(shared: &'a Shared) -> Self {
        RebalanceContext { shared }
    }

    /// The group's id.
    pub fn group_id(&self) -> &str {
        &self.shared.cfg.group_id
    }

    /// The member id and the generation the member belongs to (-1 if none).
    pub fn member(&self) -> (String, i32) {
        let m = self.shared.member.lock().unwrap();
        (m.member_id().to_owned(), m.generation())
    }

    /// The offset of the next record `poll` would return for an assigned partition.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.shared.consumer.position(tp)
    }

    /// Commits `offsets` (each the offset of the next record to read) and waits for the coordinator.
    pub async fn commit(&self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        driver::commit(self.shared, offsets).await
    }

    /// The committed offsets of `partitions` (`None`: nothing committed).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<i64>>> {
        let got = coordinator::fetch_committed(self.shared, partitions).await?;
        Ok(partitions
            .iter()
            .map(|tp| (tp.clone(), got.get(tp).copied().filter(|o| *o >= 0)))
            .collect())
    }

    /// Moves the position of an assigned partition: `poll` continues from `to`. Buffered records of the
    /// partition are dropped. Fails with [`Error::InvalidArgument`] for a partition this member does not own.
    pub async fn seek(&self, tp: &TopicPartition, to: StartOffset) -> Result<()> {
        if !self.shared.member.lock().unwrap().owned().contains(tp) {
            return Err(Error::InvalidArgument(format!(
                "cannot seek {tp}: not assigned to this member of group {}",
                self.shared.cfg.group_id
            )));
        }
        self.shared.consumer.seek(tp, to).await
    }
}

/// A rebalance event as delivered by [`ChannelListener`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    /// See [`RebalanceListener::on_assigned`].
    Assigned(Vec<TopicPartition>),
    /// See [`RebalanceListener::on_revoked`].
    Revoked(Vec<TopicPartition>),
    /// See [`RebalanceListener::on_lost`].
    Lost(Vec<TopicPartition>),
}

/// A [`RebalanceListener`] that forwards events to an unbounded channel (and does not wait for the receiver).
pub struct ChannelListener(pub tokio::sync::mpsc::UnboundedSender<RebalanceEvent>);

impl ChannelListener {
    fn send(&self, ev: RebalanceEvent) -> BoxFuture<'static, ()> {
        let _ = self.0.send(ev);
        Box::pin(async {})
    }
}

impl RebalanceListener for ChannelListener {
    fn on_assigned<'a>(&'a self, _: &'a RebalanceContext<'a>, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        self.send(RebalanceEvent::Assigned(p.to_vec()))
    }
    fn on_revoked<'a>(&'a self, _: &'a RebalanceContext<'a>, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        self.send(RebalanceEvent::Revoked(p.to_vec()))
    }
    fn on_lost<'a>(&'a self, _: &'a RebalanceContext<'a>, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        self.send(RebalanceEvent::Lost(p.to_vec()))
    }
}
