//! Consumer groups on Kafka's classic group protocol: [`GroupConsumer`] joins a group, gets partitions from the
//! group's leader (weir, librdkafka or Java: metadata is encoded as the Java client does) and consumes them with
//! a [`Consumer`].
//!
//! ```no_run
//! # async fn demo() -> weir::Result<()> {
//! use std::time::Duration;
//! use weir::group::{GroupConfig, GroupConsumer};
//! let mut cfg = GroupConfig::new("127.0.0.1:9092", "my-group");
//! cfg.set("auto.offset.reset", "earliest")?;
//! let group = GroupConsumer::new(cfg)?;
//! group.subscribe(&["events"]);
//! let records = group.poll(500, Duration::from_secs(1)).await?;
//! // ... process; delivered positions are committed every auto.commit.interval.ms, on revoke and on close.
//! group.close().await?;
//! # Ok(()) }
//! ```
//!
//! How it works: a background task finds the coordinator, joins (JoinGroup, SyncGroup; the leader runs the
//! assignor), fetches the committed offsets of its assignment and assigns them to the inner consumer, then
//! heartbeats. Every decision of membership is made by a state machine with no I/O (`member.rs`: events and the
//! time in, actions out), which the task drives; its edge cases are table tests on virtual time. With range and roundrobin, rebalances are *eager*: before rejoining, every owned partition is
//! held at once (so no record of it is delivered from that moment on), its delivered position committed
//! (auto-commit), the revoke callback called, and the partition unassigned, which drops its buffered records.
//!
//! With `partition.assignment.strategy=cooperative-sticky` alone, rebalances are *incremental cooperative*
//! (KIP-429): a member rejoins announcing the partitions it owns (and their generation) and keeps fetching and
//! delivering them meanwhile. The leader keeps partitions with their owners where balance allows and leaves a
//! partition that must move out of everyone's assignment for one round; its owner then revokes only that
//! partition (commit, revoke callback, unassign, as above) and rejoins at once, and the follow-up rebalance
//! hands it to its new owner. The assign callback gets only the added partitions (possibly none), as in the
//! Java client. Configuring cooperative-sticky together with an eager assignor uses the eager protocol.
//!
//! The coordinator connection dropping or moving (I/O errors, timeouts, NOT_COORDINATOR,
//! COORDINATOR_NOT_AVAILABLE) makes the member rediscover the coordinator and retry; its partitions keep
//! delivering meanwhile unless `session.timeout.ms` passes without a successful heartbeat: then the member
//! counts itself out of the group (the coordinator has evicted it), reports its partitions lost and rejoins.
//! A new coordinator that does not know the member (UNKNOWN_MEMBER_ID) makes it rejoin. The session also ends
//! while a callback runs if no heartbeat gets through for `session.timeout.ms`: the partitions are then lost once
//! it returns. (Tested against in-process fake brokers in `tests/group_failover.rs` and
//! `tests/group_lifecycle.rs`, and as table tests in `member.rs`.)
//!
//! Partition growth: as the Java client, the leader of a generation remembers the partition counts its
//! assignment used; when the metadata (refreshed every `metadata.max.age.ms`) shows another count for a
//! subscribed topic, or a subscribed topic that was missing, it rejoins so the new partitions get assigned.
//!
//! Callbacks ([`RebalanceListener`]) run on the group's task, which awaits them: a revoke callback can commit
//! offsets the application tracks itself before the partitions move, and partitions are assigned held until
//! the assign callback has returned, so a seek made there (offsets kept outside Kafka) decides the first record
//! delivered. Dropping a [`GroupConsumer`] without [`GroupConsumer::close`] still commits (auto-commit), revokes
//! and leaves, from a background task.
//!
//! Fencing: a static member whose `group.instance.id` another instance took (FENCED_INSTANCE_ID) stops for
//! good, as in the Java client: its partitions are reported lost and every `poll` returns the error.
//!
//! Pause state: pause and resume are one atomic operation per partition, as on the plain consumer; a rebalance
//! *holds* partitions with a flag of its own, so it never changes the application's pause state. A partition
//! the application paused (before or during the rebalance) and that the member gets back in the next
//! generation stays paused: it is kept assigned, held and paused through the rebalance, then re-positioned to
//! the committed offset. Partitions the member does not get back forget their pause state.

mod assignor;
mod coordinator;
mod driver;
mod listener;
mod member;
mod membership;
mod metrics;
mod protocol;
mod round;
mod stats;

pub use assignor::{cooperative_sticky, range, round_robin, AssignmentMap, AssignorKind, MemberSubscription};
/// The future a [`RebalanceListener`] callback returns (re-exported from `futures`).
pub use futures::future::BoxFuture;
pub use listener::{ChannelListener, RebalanceContext, RebalanceEvent, RebalanceListener};
pub use protocol::{Assignment, MetadataError, Subscription};
pub use stats::{GroupStats, MemberState};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::cluster::Cluster;
use crate::config::properties::{resolve, Key, Scope};
use crate::config::{boolean, ms};
use crate::consumer::{
    Consumer, ConsumerConfig, ConsumerRecord, NotAssigned, PartitionView, StartOffset, TopicPartition,
};
use crate::error::{Error, Result};
use coordinator::Coordinator;
use driver::feed;
use member::{Event, Member, MemberConfig};
use membership::Membership;
use metrics::GroupMetrics;
use round::Round;

/// Settings of a group member: the consumer's settings plus the group's.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// The inner consumer's settings (`auto.offset.reset` also decides where a partition without a committed
    /// offset starts).
    pub consumer: ConsumerConfig,
    /// The group (`group.id`).
    pub group_id: String,
    /// Static membership (`group.instance.id`, KIP-345): a restarted member with the same id gets its
    /// partitions back without a rebalance, as long as it returns within the session timeout. Static members do
    /// not send LeaveGroup on close (as the Java client).
    pub group_instance_id: Option<String>,
    /// The coordinator evicts a member it has not heard from for this long (`session.timeout.ms`, 45 s).
    pub session_timeout: Duration,
    /// Heartbeat period (`heartbeat.interval.ms`, 3 s); also how fast a member notices a rebalance.
    pub heartbeat_interval: Duration,
    /// Longest time between two polls before the member leaves the group (`max.poll.interval.ms`, 300 s);
    /// also the rebalance timeout sent in JoinGroup.
    pub max_poll_interval: Duration,
    /// Assignors offered, in order of preference (`partition.assignment.strategy`, default `range,roundrobin`
    /// as librdkafka).
    pub assignors: Vec<AssignorKind>,
    /// Commit delivered positions periodically, on revoke and on close (`enable.auto.commit`, true).
    pub enable_auto_commit: bool,
    /// Period of auto-commit (`auto.commit.interval.ms`, 5 s).
    pub auto_commit_interval: Duration,
}

impl GroupConfig {
    /// Java defaults for `group_id` on the cluster at `bootstrap`.
    pub fn new(bootstrap: &str, group_id: &str) -> Self {
        Self {
            consumer: ConsumerConfig::new(bootstrap),
            group_id: group_id.to_owned(),
            group_instance_id: None,
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            assignors: vec![AssignorKind::Range, AssignorKind::RoundRobin],
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
        }
    }

    /// Sets a group property, or a consumer / client property; an unknown key, or a producer's, is an error.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let key = resolve(name, Scope::Group)?;
        match key {
            Key::GroupId => self.group_id = value.to_owned(),
            Key::GroupInstanceId => {
                self.group_instance_id = (!value.is_empty()).then(|| value.to_owned());
            }
            Key::SessionTimeout => self.session_timeout = ms(name, value)?,
            Key::HeartbeatInterval => self.heartbeat_interval = ms(name, value)?,
            Key::MaxPollInterval => self.max_poll_interval = ms(name, value)?,
            Key::AssignmentStrategy => {
                let mut list = Vec::new();
                for assignor in value.split(',').filter(|s| !s.trim().is_empty()) {
                    list.push(AssignorKind::parse(assignor).ok_or_else(|| {
                        Error::Config(format!(
                            "partition.assignment.strategy: unsupported assignor {assignor:?}"
                        ))
                    })?);
                }
                if list.is_empty() {
                    return Err(Error::Config("partition.assignment.strategy is empty".into()));
                }
                self.assignors = list;
            }
            Key::AutoCommit => self.enable_auto_commit = boolean(name, value)?,
            Key::AutoCommitInterval => self.auto_commit_interval = ms(name, value)?,
            _ => self.consumer.apply(key, name, value)?,
        }
        Ok(())
    }

    /// Whether the member uses the incremental cooperative rebalance protocol (KIP-429): as the Java client,
    /// only when every configured assignor supports it (`cooperative-sticky` alone).
    pub fn cooperative(&self) -> bool {
        !self.assignors.is_empty() && self.assignors.iter().all(|a| a.is_cooperative())
    }

    fn validate(&self) -> Result<()> {
        self.consumer.validate()?;
        if self.group_id.is_empty() {
            return Err(Error::Config("group.id is empty".into()));
        }
        if self.heartbeat_interval >= self.session_timeout {
            return Err(Error::Config(
                "heartbeat.interval.ms must be lower than session.timeout.ms".into(),
            ));
        }
        if self.assignors.is_empty() {
            return Err(Error::Config("no partition.assignment.strategy".into()));
        }
        Ok(())
    }
}

/// A member of a consumer group. `Send + Sync`; share it with an `Arc`. Must be created inside a tokio
/// runtime.
pub struct GroupConsumer {
    shared: Arc<Shared>,
    /// Commits for the committer task, which sends them one at a time in order.
    commits: tokio::sync::mpsc::UnboundedSender<CommitJob>,
    task: Mutex<Option<tokio::task::JoinHandle<Result<()>>>>,
    /// Keeps a pattern subscription up to date with the cluster's topics.
    pattern_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A commit queued by the handle, and where its outcome goes.
type CommitJob = (
    Vec<(TopicPartition, i64)>,
    tokio::sync::oneshot::Sender<Result<()>>,
);

/// Sends queued commits one at a time, in order; ends when the handle (the sender) is gone.
fn spawn_committer(shared: Arc<Shared>) -> tokio::sync::mpsc::UnboundedSender<CommitJob> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<CommitJob>();
    tokio::spawn(async move {
        while let Some((offsets, reply)) = rx.recv().await {
            let _ = reply.send(driver::commit(&shared, &offsets).await);
        }
    });
    tx
}

/// Replaces the subscription with the sorted, deduplicated `list`; a change triggers a rebalance.
fn set_subscription(shared: &Shared, list: Vec<String>) {
    feed(shared, Event::Subscribed(list));
}

pub(crate) struct Shared {
    pub(crate) cfg: GroupConfig,
    pub(crate) consumer: Consumer,
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) coordinator: Coordinator,
    /// The membership: every decision is the member's; the group task performs them.
    pub(crate) member: Mutex<Box<dyn Membership>>,
    /// Last offset known committed per owned partition (-1: none).
    pub(crate) committed: Mutex<HashMap<TopicPartition, i64>>,
    /// Between JoinGroup and SyncGroup: the protocol chosen and, for the leader, the members.
    pub(crate) round: Mutex<Option<Round>>,
    /// When this member led the current generation: the partition count of every topic the group subscribed
    /// to, as the assignment saw it (0: unknown topic). The metadata showing other counts triggers a rejoin.
    pub(crate) leader_counts: Mutex<Option<BTreeMap<String, i32>>>,
    pub(crate) wake: Notify,
    pub(crate) errors: Mutex<VecDeque<Error>>,
    pub(crate) listener: Mutex<Option<Arc<dyn RebalanceListener>>>,
    pub(crate) closed: AtomicBool,
    pub(crate) metrics: GroupMetrics,
}

impl Shared {
    pub(crate) fn report(&self, e: Error) {
        tracing::warn!(group = %self.cfg.group_id, error = %e, "group error");
        let mut q = self.errors.lock().unwrap();
        if q.len() < 64 {
            q.push_back(e);
        }
    }

    pub(crate) fn listener(&self) -> Option<Arc<dyn RebalanceListener>> {
        self.listener.lock().unwrap().clone()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

impl GroupConsumer {
    /// A member of `cfg.group_id`; it joins once [`GroupConsumer::subscribe`] gives it topics.
    pub fn new(cfg: GroupConfig) -> Result<GroupConsumer> {
        cfg.validate()?;
        let consumer = Consumer::new(cfg.consumer.clone())?;
        let cluster = Cluster::new(cfg.consumer.client.clone())?;
        let coordinator = Coordinator::new(&cfg);
        let shared = Arc::new(Shared {
            consumer,
            cluster,
            coordinator,
            member: Mutex::new(Box::new(Member::new(
                MemberConfig {
                    session_timeout: cfg.session_timeout,
                    heartbeat_interval: cfg.heartbeat_interval,
                    max_poll_interval: cfg.max_poll_interval,
                    retry_backoff: cfg.consumer.client.retry_backoff,
                    retry_backoff_max: cfg.consumer.client.retry_backoff_cap(),
                    cooperative: cfg.cooperative(),
                    auto_commit: cfg.enable_auto_commit,
                    auto_commit_interval: cfg.auto_commit_interval,
                    static_member: cfg.group_instance_id.is_some(),
                },
                driver::now(),
                rand::random(),
            ))),
            committed: Mutex::new(HashMap::new()),
            round: Mutex::new(None),
            leader_counts: Mutex::new(None),
            wake: Notify::new(),
            errors: Mutex::new(VecDeque::new()),
            listener: Mutex::new(None),
            closed: AtomicBool::new(false),
            metrics: GroupMetrics::new(&cfg.consumer.client.client_id, &cfg.group_id),
            cfg,
        });
        let task = tokio::spawn(IN_GROUP_TASK.scope((), driver::run(shared.clone())));
        Ok(GroupConsumer {
            commits: spawn_committer(shared.clone()),
            shared,
            task: Mutex::new(Some(task)),
            pattern_task: Mutex::new(None),
        })
    }

    /// Sets the rebalance listener (replacing any previous one).
    pub fn set_listener(&self, listener: Arc<dyn RebalanceListener>) {
        *self.shared.listener.lock().unwrap() = Some(listener);
    }

    /// Subscribes to exactly `topics` (replacing the previous subscription); a change triggers a rebalance.
    pub fn subscribe(&self, topics: &[&str]) {
        if let Some(old) = self.pattern_task.lock().unwrap().take() {
            old.abort();
        }
        let mut list: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
        list.sort();
        list.dedup();
        set_subscription(&self.shared, list);
    }

    /// Subscribes to every topic whose name matches `pattern` (a `regex` crate expression; anchor it with
    /// `^...$` to match whole names, as the Java client's `Pattern` subscription does), replacing the current
    /// subscription. Topics created or deleted later are picked up when metadata is refreshed
    /// (`metadata.max.age.ms`), and a change of the matching set triggers a rebalance.
    pub fn subscribe_pattern(&self, pattern: &str) -> Result<()> {
        let re = regex::Regex::new(pattern)
            .map_err(|e| Error::Config(format!("invalid topic pattern {pattern:?}: {e}")))?;
        let weak = Arc::downgrade(&self.shared);
        let every = self.shared.cfg.consumer.client.metadata_max_age;
        let task = tokio::spawn(async move {
            loop {
                let Some(shared) = weak.upgrade() else { return };
                if shared.closed.load(Ordering::SeqCst) {
                    return;
                }
                match shared.cluster.refresh(true).await {
                    Ok(snap) => {
                        let mut topics: Vec<String> = snap
                            .topics
                            .values()
                            .filter(|t| !t.internal && re.is_match(&t.name))
                            .map(|t| t.name.clone())
                            .collect();
                        topics.sort();
                        set_subscription(&shared, topics);
                    }
                    Err(e) => tracing::debug!(error = %e, "metadata refresh for the topic pattern failed"),
                }
                drop(shared);
                tokio::time::sleep(every).await;
            }
        });
        if let Some(old) = self.pattern_task.lock().unwrap().replace(task) {
            old.abort();
        }
        Ok(())
    }

    /// The current subscription.
    pub fn subscription(&self) -> Vec<String> {
        self.shared.member.lock().unwrap().subscription().to_vec()
    }

    /// Waits up to `timeout` for records of the owned partitions (see [`Consumer::poll`]). Group errors
    /// (e.g. a partition without committed offset under `auto.offset.reset=none`, an authorization failure) are
    /// returned once each.
    pub async fn poll(&self, max_records: usize, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        if let Some(e) = self.shared.member.lock().unwrap().fatal() {
            return Err(e.clone());
        }
        if let Some(e) = self.shared.errors.lock().unwrap().pop_front() {
            return Err(e);
        }
        if self.shared.is_closed() {
            return Ok(Vec::new());
        }
        let _polling = Polling::enter(&self.shared);
        self.shared.consumer.poll(max_records, timeout).await
    }

    /// All records of the owned partitions as an async stream: each item is a record, or an error `poll` would
    /// have returned (the stream goes on after it). Ends when the member is closed. Records are taken from
    /// [`GroupConsumer::poll`] in batches of up to `batch` (so the stream counts as polling for
    /// `max.poll.interval.ms`); records the stream holds but has not yielded when it is dropped count as
    /// delivered, and auto-commit may commit past them. Like a batch `poll` returned, records the stream took
    /// before a partition was revoked are still yielded after the revoke callback (their offsets count as
    /// delivered); use `batch` 1 where that matters.
    ///
    /// ```no_run
    /// # async fn f(group: &weir::group::GroupConsumer) {
    /// use futures::StreamExt;
    /// let mut records = std::pin::pin!(group.stream(500));
    /// while let Some(r) = records.next().await {
    ///     match r {
    ///         Ok(record) => println!("{}-{}@{}", record.topic, record.partition, record.offset),
    ///         Err(e) => eprintln!("{e}"),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn stream(&self, batch: usize) -> impl futures::Stream<Item = Result<ConsumerRecord>> + '_ {
        let state: (VecDeque<ConsumerRecord>, &GroupConsumer) = (VecDeque::new(), self);
        futures::stream::unfold(state, move |(mut buf, g)| async move {
            loop {
                if let Some(r) = buf.pop_front() {
                    return Some((Ok(r), (buf, g)));
                }
                if g.shared.is_closed() {
                    return None;
                }
                // Short waits: `poll` must be called again soon for `max.poll.interval.ms` and group errors.
                match g.poll(batch, Duration::from_secs(1)).await {
                    Ok(v) => buf.extend(v),
                    Err(e) => return Some((Err(e), (buf, g))),
                }
            }
        })
    }

    /// The partitions the group gave this member (empty during a rebalance).
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.shared
            .member
            .lock()
            .unwrap()
            .owned()
            .iter()
            .cloned()
            .collect()
    }

    /// The member id the coordinator gave this member ("" before joining), and the generation (-1 if none).
    pub fn member(&self) -> (String, i32) {
        let m = self.shared.member.lock().unwrap();
        (m.member_id().to_owned(), m.generation())
    }

    /// This member's group metadata, for offsets committed in a transaction
    /// ([`crate::Producer::send_offsets_to_transaction`]): the coordinator refuses them once the member lost
    /// its generation (KIP-447).
    pub fn group_metadata(&self) -> crate::producer::ConsumerGroupMetadata {
        let (member_id, generation_id) = self.member();
        crate::producer::ConsumerGroupMetadata {
            group_id: self.shared.cfg.group_id.clone(),
            generation_id,
            member_id,
            group_instance_id: self.shared.cfg.group_instance_id.clone(),
        }
    }

    /// The offset of the next record `poll` returns for an owned partition: what to commit.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.shared.consumer.position(tp)
    }

    /// The high watermark of an owned partition as of the latest fetch response (-1 before the first fetch
    /// since it was assigned).
    pub fn high_watermark(&self, tp: &TopicPartition) -> Option<i64> {
        self.shared.consumer.high_watermark(tp)
    }

    /// A snapshot of the member: its consumer's statistics (counters and every partition it holds, see
    /// [`Consumer::stats`]) and its place in the group: generation, member id, state, rebalances completed and
    /// how long the last one took. As cheap as [`Consumer::stats`], plus a moment of the member's lock.
    pub fn stats(&self) -> GroupStats {
        let consumer = self.shared.consumer.stats();
        let m = self.shared.member.lock().unwrap();
        let r = m.rebalances();
        GroupStats {
            consumer,
            group_id: self.shared.cfg.group_id.clone(),
            member_id: m.member_id().to_owned(),
            generation: m.generation(),
            state: m.phase().into(),
            rebalances: r.completed,
            last_rebalance: r.last.map(|l| l.duration),
            rebalancing_for: r.started.map(|t| driver::now().saturating_duration_since(t)),
        }
    }

    /// One owned partition's state for monitoring: pause, backpressure, buffered bytes, position and high
    /// watermark, hence its lag (see [`Consumer::partition_view`]).
    pub fn partition_view(&self, tp: &TopicPartition) -> Option<PartitionView> {
        self.shared.consumer.partition_view(tp)
    }

    /// Pauses partitions (see [`Consumer::pause`]): one atomic operation per partition, no lock, from any
    /// thread. Partitions that stay with this member through a rebalance stay paused. Partitions not assigned
    /// to this member are left alone and named in the `Err` (the others are paused all the same).
    ///
    /// During a rebalance the group *holds* partitions it is revoking or setting up, with a flag apart from the
    /// pause: pausing or resuming then changes only the application's pause state, which applies once the
    /// group lets go.
    pub fn pause(&self, partitions: &[TopicPartition]) -> std::result::Result<(), NotAssigned> {
        self.shared.consumer.pause(partitions)
    }

    /// Resumes paused partitions (one atomic operation each). A partition the group holds during a rebalance
    /// is delivered again only once the group lets go of it (and only if it stays with this member).
    /// Partitions not assigned to this member are left alone and named in the `Err`.
    pub fn resume(&self, partitions: &[TopicPartition]) -> std::result::Result<(), NotAssigned> {
        self.shared.consumer.resume(partitions)
    }

    /// The partitions the application paused (among those assigned to this member, including any kept through
    /// a rebalance in progress).
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.shared.consumer.paused()
    }

    /// Commits `offsets` (each the offset of the next record to read) and waits for the coordinator, retrying
    /// transient failures. Refused without sending anything ([`Error::CommitFailed`]) for a partition this
    /// member does not own: the group rebalances in the background, so offsets of records polled before a
    /// rebalance may belong to another member by now, and committing them would overwrite its commits. A commit
    /// that outlives its generation fails (`IllegalGeneration`, `RebalanceInProgress`) rather than land late.
    ///
    /// Commits made through this handle (`commit_sync`, `commit_async`, `commit_delivered`) are sent one after
    /// the other in call order, each after the previous one's outcome: an earlier commit retried late can never
    /// overwrite a later one. Auto-commit and the commit before a revoke are made by the group's task in their
    /// own order; mixing them with commits of smaller (processed) offsets can move the committed offset back,
    /// which means redelivery, never loss.
    pub async fn commit_sync(&self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        self.enqueue_commit(offsets.to_vec()).await
    }

    /// Queues a commit for the committer task (see [`GroupConsumer::commit_sync`] on ordering).
    fn enqueue_commit(
        &self,
        offsets: Vec<(TopicPartition, i64)>,
    ) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let queued = self.commits.send((offsets, tx)).is_ok();
        async move {
            if !queued {
                return Err(Error::Closed);
            }
            rx.await.unwrap_or(Err(Error::Closed))
        }
    }

    /// Moves the position of an owned partition: `poll` continues from `to` (buffered records of the partition
    /// are dropped). The move lasts until the partition is revoked; the group's committed offset only changes
    /// with a commit. Fails with [`Error::InvalidArgument`] for a partition this member does not own.
    pub async fn seek(&self, tp: &TopicPartition, to: StartOffset) -> Result<()> {
        self.context().seek(tp, to).await
    }

    fn context(&self) -> RebalanceContext<'_> {
        RebalanceContext::new(&self.shared)
    }

    /// Queues a commit of `offsets`, sent in order after earlier commits; the returned future (which may be
    /// dropped: the commit happens anyway) reports the outcome.
    pub fn commit_async(
        &self,
        offsets: Vec<(TopicPartition, i64)>,
    ) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
        self.enqueue_commit(offsets)
    }

    /// Commits the positions of all owned partitions (everything `poll` has returned so far).
    pub async fn commit_delivered(&self) -> Result<()> {
        let offsets = driver::delivered_positions(&self.shared, false);
        self.enqueue_commit(offsets).await
    }

    /// The committed offsets of `partitions` (`None`: nothing committed).
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<i64>>> {
        self.context().committed(partitions).await
    }

    /// Leaves the group in order: commits delivered positions (auto-commit), calls the revoke callback, sends
    /// LeaveGroup (dynamic members) and closes the consumer. Returns the commit's error, if any, after leaving.
    /// Dropping the handle without `close` does the same in a background task (if a tokio runtime is
    /// running), without waiting for it.
    pub async fn close(&self) -> Result<()> {
        if IN_GROUP_TASK.try_with(|_| ()).is_ok() {
            // The group task awaits the callback, which would await the group task.
            return Err(Error::InvalidArgument(
                "close() called from a rebalance callback; close after the callback returned".into(),
            ));
        }
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let task = self.task.lock().unwrap().take();
        shut_down(self.shared.clone(), task).await
    }

    /// The configuration.
    pub fn config(&self) -> &GroupConfig {
        &self.shared.cfg
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        if let Some(t) = self.pattern_task.get_mut().unwrap().take() {
            t.abort();
        }
        if self.shared.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let task = self.task.get_mut().unwrap().take();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(shut_down(self.shared.clone(), task));
            }
            // No runtime to leave from: the coordinator evicts the member after `session.timeout.ms`.
            Err(_) => {
                self.shared.wake.notify_one();
                self.shared.consumer.shut_down();
            }
        }
    }
}

tokio::task_local! {
    /// Set inside the group's task (where rebalance callbacks run).
    static IN_GROUP_TASK: ();
}

/// Marks a `poll` in progress (also when its future is dropped mid-way): the member is not idle meanwhile, and
/// its last poll is when the call ended.
struct Polling<'a>(&'a Shared);

impl<'a> Polling<'a> {
    fn enter(shared: &'a Shared) -> Self {
        feed(shared, Event::PollStarted);
        Polling(shared)
    }
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        feed(self.0, Event::PollEnded);
    }
}

/// The orderly exit of [`GroupConsumer::close`], once `closed` is set: the group task revokes the owned
/// partitions (committed first with auto-commit) and leaves, then the consumer closes. Returns the outcome of
/// that commit.
async fn shut_down(shared: Arc<Shared>, task: Option<tokio::task::JoinHandle<Result<()>>>) -> Result<()> {
    shared.wake.notify_one();
    let result = match task {
        Some(t) => t.await.unwrap_or(Ok(())),
        None => Ok(()),
    };
    shared.consumer.shut_down();
    result
}
