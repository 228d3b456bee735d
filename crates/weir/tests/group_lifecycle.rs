//! A member's life in the group, against in-process fake brokers: what it may commit, when it counts itself out
//! (fenced instance, lost session), that a blocked `poll` is not idleness, that heartbeats go on while a slow
//! callback runs, and that pause state survives a failed rejoin.
//!
//! Every test is bounded by a timeout and synchronises on events (records polled, requests the fake brokers
//! recorded, rebalance events), never on sleeps; a sleep inside a callback stands for slow application work.

#[path = "support/fake_broker.rs"]
mod fake_broker;
#[path = "support/fake_group.rs"]
mod fake_group;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use fake_broker::{bounded, Action, FakeBroker, FakeConfig};
use fake_group::{
    consume, events, fill, is_group_api, member, member_config, next_event, poll_only, tp, Seen, TOPIC,
};
use kafka_protocol::messages::ApiKey;
use weir::consumer::TopicPartition;
use weir::group::{BoxFuture, GroupConsumer, RebalanceContext, RebalanceEvent, RebalanceListener};
use weir::{Error, ErrorKind};

const FENCED_INSTANCE_ID: i16 = 82;
const REBALANCE_IN_PROGRESS: i16 = 27;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;

/// Every API a member sends its coordinator, LeaveGroup included.
fn is_coordinator_api(k: ApiKey) -> bool {
    is_group_api(k) || k == ApiKey::LeaveGroup
}

/// Where a listener finds the member it listens to (set before the member subscribes).
#[derive(Default)]
struct GroupSlot(OnceLock<Weak<GroupConsumer>>);

impl GroupSlot {
    fn get(&self) -> Option<Arc<GroupConsumer>> {
        self.0.get().and_then(Weak::upgrade)
    }
}

/// A member subscribed to [`TOPIC`] whose `listener` reaches it through `slot(&listener)`.
fn wired_member<L: RebalanceListener + 'static>(
    fake: &FakeBroker,
    listener: &Arc<L>,
    slot: impl Fn(&L) -> &GroupSlot,
) -> Arc<GroupConsumer> {
    let group = Arc::new(GroupConsumer::new(member_config(fake, &[])).unwrap());
    let _ = slot(listener).0.set(Arc::downgrade(&group));
    group.set_listener(listener.clone());
    group.subscribe(&[TOPIC]);
    group
}

/// Another instance took this static member's `group.instance.id` (FENCED_INSTANCE_ID): fatal, as in the Java
/// client. Its partitions are reported lost, nothing more is delivered, every poll returns the error, and it
/// does not keep rejoining.
#[tokio::test]
async fn fenced_static_member_stops_for_good() {
    bounded(40, async {
        let fenced = Arc::new(AtomicBool::new(false));
        let f = fenced.clone();
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).script(move |r| {
            if f.load(Ordering::SeqCst) && is_coordinator_api(r.api_key) {
                Action::GroupError(FENCED_INSTANCE_ID)
            } else {
                Action::Answer
            }
        }))
        .await;
        fill(&a, 0, 5);
        let (group, mut rx) = member(
            &a,
            &[
                ("group.instance.id", "inst-1"),
                ("partition.assignment.strategy", "cooperative-sticky"),
            ],
        );
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0], 5).await;
        fenced.store(true, Ordering::SeqCst);
        let err = loop {
            match group.poll(100, Duration::from_millis(50)).await {
                Err(e) => break e,
                Ok(records) => assert!(records.is_empty(), "records after fencing"),
            }
        };
        assert_eq!(
            err.kafka_code(),
            Some(weir::error::KafkaCode::FencedInstanceId),
            "{err}"
        );
        fill(&a, 0, 5);
        let joins = a.recorded(|r| r.of(ApiKey::JoinGroup).count());
        for _ in 0..10 {
            let again = group.poll(100, Duration::from_millis(50)).await;
            assert!(again.is_err(), "every poll reports the fencing: {again:?}");
        }
        assert_eq!(
            a.recorded(|r| r.of(ApiKey::JoinGroup).count()),
            joins,
            "no rejoin"
        );
        assert!(group.assignment().is_empty());
        assert_eq!(
            events(&mut rx),
            vec![
                RebalanceEvent::Assigned(vec![tp(0)]),
                RebalanceEvent::Lost(vec![tp(0)])
            ]
        );
        group.close().await.unwrap();
    })
    .await;
}

/// After the group moved a partition away, committing it is refused before anything is sent (it would
/// overwrite the new owner's commit), with an error that says so.
#[tokio::test]
async fn commit_of_a_partition_moved_away_is_refused() {
    bounded(40, async {
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1), ("other", 1)])).await;
        fill(&a, 0, 2);
        let (group, _rx) = member(&a, &[("enable.auto.commit", "false")]);
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0], 2).await;
        group.commit_sync(&[(tp(0), 2)]).await.unwrap();
        let (_, generation) = group.member();
        group.subscribe(&["other"]);
        while group.member().1 == generation || group.assignment().is_empty() {
            group.poll(10, Duration::from_millis(20)).await.unwrap();
        }
        let commits = a.recorded(|r| r.of(ApiKey::OffsetCommit).count());
        let err = group.commit_sync(&[(tp(0), 1)]).await.unwrap_err();
        assert!(matches!(err, Error::CommitFailed(_)), "{err}");
        assert_eq!(err.kind(), ErrorKind::Fatal);
        assert_eq!(a.recorded(|r| r.of(ApiKey::OffsetCommit).count()), commits);
        assert_eq!(a.committed(TOPIC, 0), Some(2));
        group.close().await.unwrap();
    })
    .await;
}

/// Commits are applied in call order even when an earlier one must be retried: the first attempt of the first
/// commit gets COORDINATOR_LOAD_IN_PROGRESS (retriable); the later commit must not land before it, or the
/// retried first one would overwrite it.
#[tokio::test]
async fn an_earlier_commit_retried_late_never_overwrites_a_later_one() {
    bounded(40, async {
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).script(|r| {
            if r.api_key == ApiKey::OffsetCommit && r.api_seq == 0 {
                Action::GroupError(COORDINATOR_LOAD_IN_PROGRESS)
            } else {
                Action::Answer
            }
        }))
        .await;
        fill(&a, 0, 20);
        let (group, _rx) = member(&a, &[("enable.auto.commit", "false")]);
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0], 20).await;
        let first = group.commit_async(vec![(tp(0), 10)]);
        let second = group.commit_async(vec![(tp(0), 20)]);
        second.await.unwrap();
        first.await.unwrap();
        let sent: Vec<i64> = a.recorded(|r| {
            r.of(ApiKey::OffsetCommit)
                .flat_map(|q| q.commit_offsets())
                .map(|(_, _, o)| o)
                .collect()
        });
        assert_eq!(sent, vec![10, 10, 20], "attempt, retry, then the later commit");
        assert_eq!(a.committed(TOPIC, 0), Some(20));
        group.close().await.unwrap();
    })
    .await;
}

/// A `poll` that waits longer than `max.poll.interval.ms` on a quiet topic is the application polling, not
/// idling: the member stays in the group.
#[tokio::test]
async fn a_long_poll_is_not_idleness() {
    bounded(40, async {
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)])).await;
        fill(&a, 0, 1);
        let (group, mut rx) = member(&a, &[("max.poll.interval.ms", "500")]);
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0], 1).await;
        let beats = a.recorded(|r| r.of(ApiKey::Heartbeat).count());
        let records = group.poll(10, Duration::from_millis(1500)).await.unwrap();
        assert!(records.is_empty());
        // The member heartbeated through the poll and never left.
        assert!(a.recorded(|r| r.of(ApiKey::Heartbeat).count()) > beats + 5);
        assert_eq!(a.recorded(|r| r.of(ApiKey::LeaveGroup).count()), 0);
        assert_eq!(events(&mut rx), vec![RebalanceEvent::Assigned(vec![tp(0)])]);
        group.close().await.unwrap();
    })
    .await;
}

/// The coordinator stops answering group requests (fetches still work). After `session.timeout.ms` without a
/// successful heartbeat the member counts itself out: its partitions are reported lost and stop delivering,
/// so it never consumes next to the member the coordinator gave them to. When the coordinator is back it
/// joins again and consumes the rest.
#[tokio::test]
async fn member_counts_itself_out_after_its_session_timeout() {
    bounded(40, async {
        let down = Arc::new(AtomicBool::new(false));
        let d = down.clone();
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).script(move |r| {
            if d.load(Ordering::SeqCst) && is_coordinator_api(r.api_key) {
                Action::Close
            } else {
                Action::Answer
            }
        }))
        .await;
        fill(&a, 0, 5);
        let (group, mut rx) = member(&a, &[("session.timeout.ms", "1000")]);
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0], 5).await;
        assert_eq!(events(&mut rx), vec![RebalanceEvent::Assigned(vec![tp(0)])]);
        down.store(true, Ordering::SeqCst);
        assert_eq!(
            next_event(&group, &mut rx).await,
            RebalanceEvent::Lost(vec![tp(0)])
        );
        fill(&a, 0, 5);
        for _ in 0..5 {
            poll_only(&group, |_| false, "records of a lost partition").await;
        }
        // The coordinator evicted the silent member meanwhile (the fake does not time sessions out itself).
        a.group(|g| {
            g.members.clear();
            g.leader = None;
        });
        down.store(false, Ordering::SeqCst);
        consume(&group, &mut seen, &[0], 10).await;
        assert_eq!(events(&mut rx), vec![RebalanceEvent::Assigned(vec![tp(0)])]);
        group.close().await.unwrap();
    })
    .await;
}

/// A cooperative member keeps its partitions through a rebalance; if it then cannot reach the coordinator to
/// rejoin for a whole session, the coordinator has evicted it: it reports them lost and stops delivering.
#[tokio::test]
async fn cooperative_member_cut_off_while_rejoining_counts_itself_out() {
    bounded(40, async {
        let cut_off = Arc::new(AtomicBool::new(false));
        let c = cut_off.clone();
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).script(move |r| {
            match (c.load(Ordering::SeqCst), r.api_key) {
                (true, ApiKey::Heartbeat) => Action::GroupError(REBALANCE_IN_PROGRESS),
                (true, ApiKey::JoinGroup | ApiKey::SyncGroup) => Action::Close,
                _ => Action::Answer,
            }
        }))
        .await;
        fill(&a, 0, 5);
        let (group, mut rx) = member(
            &a,
            &[
                ("partition.assignment.strategy", "cooperative-sticky"),
                ("session.timeout.ms", "1000"),
            ],
        );
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0], 5).await;
        assert_eq!(events(&mut rx), vec![RebalanceEvent::Assigned(vec![tp(0)])]);
        cut_off.store(true, Ordering::SeqCst);
        assert_eq!(
            next_event(&group, &mut rx).await,
            RebalanceEvent::Lost(vec![tp(0)])
        );
        fill(&a, 0, 5);
        for _ in 0..5 {
            poll_only(&group, |_| false, "records of a lost partition").await;
        }
        group.close().await.unwrap();
    })
    .await;
}

/// A partition the application paused stays paused through a rebalance whose first SyncGroup fails (the
/// member rejoins twice before it gets the partition back).
#[tokio::test]
async fn pause_survives_a_failed_rejoin() {
    bounded(40, async {
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 2), ("other", 1)]).script(|r| {
            if r.api_key == ApiKey::SyncGroup && r.api_seq == 1 {
                Action::GroupError(REBALANCE_IN_PROGRESS)
            } else {
                Action::Answer
            }
        }))
        .await;
        fill(&a, 1, 1);
        let (group, _rx) = member(&a, &[]);
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[1], 1).await;
        group.pause(&[tp(0)]).unwrap();
        group.subscribe(&[TOPIC, "other"]);
        a.wait_until("three SyncGroups", |r| r.of(ApiKey::SyncGroup).count() >= 3)
            .await;
        while group.assignment().len() < 3 {
            group.poll(10, Duration::from_millis(20)).await.unwrap();
        }
        assert_eq!(group.paused(), vec![tp(0)]);
        fill(&a, 0, 3);
        fill(&a, 1, 1);
        consume(&group, &mut seen, &[1], 2).await;
        assert!(
            seen.keys().all(|(p, _)| *p != 0),
            "paused partition delivered: {seen:?}"
        );
        group.resume(&[tp(0)]).unwrap();
        consume(&group, &mut seen, &[0], 3).await;
        group.close().await.unwrap();
    })
    .await;
}

/// An application that resumes a partition from inside its revoke callback (say, its buffer drained just then).
#[derive(Default)]
struct ResumeOnRevoke {
    group: GroupSlot,
    revoked: Mutex<Vec<Vec<TopicPartition>>>,
}

impl RebalanceListener for ResumeOnRevoke {
    fn on_revoked<'a>(&'a self, _: &'a RebalanceContext<'a>, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(group) = self.group.get() {
                group.resume(p).unwrap();
            }
            self.revoked.lock().unwrap().push(p.to_vec());
        })
    }
}

/// A partition the application paused, being revoked: resuming it from the revoke callback (lock-free, no
/// group state involved) must not let its records out, since the group holds it; it is not this member's
/// any more afterwards and is unassigned.
#[tokio::test]
async fn resuming_a_partition_being_revoked_delivers_nothing() {
    bounded(40, async {
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1), ("other", 1)])).await;
        fill(&a, 0, 3);
        let listener = Arc::new(ResumeOnRevoke::default());
        let group = wired_member(&a, &listener, |l| &l.group);
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0], 3).await;
        group.pause(&[tp(0)]).unwrap();
        assert_eq!(group.paused(), vec![tp(0)]);
        fill(&a, 0, 5); // fetched? not while paused; either way never delivered below
        group.subscribe(&["other"]);
        let other = TopicPartition::new("other", 0);
        while group.assignment() != vec![other.clone()] {
            poll_only(&group, |r| &*r.topic == "other", "records of a revoked partition").await;
        }
        assert_eq!(*listener.revoked.lock().unwrap(), vec![vec![tp(0)]]);
        for _ in 0..5 {
            poll_only(&group, |r| &*r.topic == "other", "records of a revoked partition").await;
        }
        assert!(
            group.partition_view(&tp(0)).is_none(),
            "the revoked partition is unassigned"
        );
        assert!(group.paused().is_empty());
        group.close().await.unwrap();
    })
    .await;
}

/// An application that pauses a partition from inside its revoke callback (its buffer filled just then).
#[derive(Default)]
struct PauseOnRevoke {
    group: GroupSlot,
}

impl RebalanceListener for PauseOnRevoke {
    fn on_revoked<'a>(&'a self, _: &'a RebalanceContext<'a>, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(group) = self.group.get() {
                group.pause(p).unwrap();
            }
        })
    }
}

/// A pause made while an eager rebalance revokes the partition (here from the revoke callback) survives the
/// rebalance when the partition comes back: nothing of it is delivered until the application resumes it.
#[tokio::test]
async fn a_pause_made_during_the_revoke_survives_the_rebalance() {
    bounded(40, async {
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1), ("other", 1)])).await;
        fill(&a, 0, 3);
        let listener = Arc::new(PauseOnRevoke::default());
        let group = wired_member(&a, &listener, |l| &l.group);
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0], 3).await;
        fill(&a, 0, 3);
        group.subscribe(&[TOPIC, "other"]);
        let other = TopicPartition::new("other", 0);
        while group.assignment() != vec![tp(0), other.clone()] {
            poll_only(&group, |r| &*r.topic == "other", "records of a paused partition").await;
        }
        assert_eq!(group.paused(), vec![tp(0)]);
        for _ in 0..5 {
            poll_only(&group, |r| &*r.topic == "other", "records of a paused partition").await;
        }
        group.resume(&[tp(0)]).unwrap();
        consume(&group, &mut seen, &[0], 6).await;
        group.close().await.unwrap();
    })
    .await;
}

/// Unsubscribing from everything revokes and leaves; a partition the application had paused is not kept for a
/// next assignment that will not come (it would hold its buffered records and a share of the budget).
#[tokio::test]
async fn unsubscribing_releases_paused_partitions_too() {
    bounded(40, async {
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 2)])).await;
        fill(&a, 0, 3);
        fill(&a, 1, 3);
        let (group, mut rx) = member(&a, &[]);
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0, 1], 3).await;
        group.pause(&[tp(0)]).unwrap();
        group.subscribe(&[]);
        a.wait_until("LeaveGroup", |r| r.of(ApiKey::LeaveGroup).count() == 1)
            .await;
        while group.partition_view(&tp(0)).is_some() {
            group.poll(10, Duration::from_millis(20)).await.unwrap();
        }
        assert!(group.paused().is_empty());
        assert!(group.assignment().is_empty());
        assert_eq!(
            events(&mut rx),
            vec![
                RebalanceEvent::Assigned(vec![tp(0), tp(1)]),
                RebalanceEvent::Revoked(vec![tp(0), tp(1)]),
            ]
        );
        group.close().await.unwrap();
    })
    .await;
}

/// An assign callback doing slow work (here: 600 ms, twelve heartbeat intervals). Heartbeats go on
/// meanwhile, so a callback slower than `session.timeout.ms` does not cost the member its place; and calling
/// `close` from inside a callback is refused instead of waiting for itself.
#[derive(Default)]
struct SlowAssign {
    fake: OnceLock<Arc<FakeBroker>>,
    group: GroupSlot,
    beats_during: Mutex<Option<usize>>,
    close_from_callback: Mutex<Option<Result<(), String>>>,
}

impl RebalanceListener for SlowAssign {
    fn on_assigned<'a>(&'a self, _: &'a RebalanceContext<'a>, _: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.beats_during.lock().unwrap().is_some() {
                return;
            }
            let fake = self.fake.get().unwrap();
            let before = fake.recorded(|r| r.of(ApiKey::Heartbeat).count());
            tokio::time::sleep(Duration::from_millis(600)).await;
            let after = fake.recorded(|r| r.of(ApiKey::Heartbeat).count());
            *self.beats_during.lock().unwrap() = Some(after - before);
            if let Some(group) = self.group.get() {
                let closed = group.close().await.map_err(|e| e.to_string());
                *self.close_from_callback.lock().unwrap() = Some(closed);
            }
        })
    }
}

#[tokio::test]
async fn heartbeats_go_on_during_a_slow_callback() {
    bounded(40, async {
        let a = Arc::new(FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)])).await);
        fill(&a, 0, 3);
        let listener = Arc::new(SlowAssign::default());
        let _ = listener.fake.set(a.clone());
        let group = wired_member(&a, &listener, |l| &l.group);
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0], 3).await;
        let beats = listener.beats_during.lock().unwrap().expect("callback ran");
        assert!(beats >= 4, "{beats} heartbeats during a 600 ms callback");
        let closed = listener.close_from_callback.lock().unwrap().clone();
        assert!(
            matches!(&closed, Some(Err(m)) if m.contains("rebalance callback")),
            "{closed:?}"
        );
        group.close().await.unwrap();
    })
    .await;
}
