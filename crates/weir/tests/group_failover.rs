//! Group coordinator failover, partition growth and bad group input against in-process fake brokers: a
//! coordinator that moves, drops its connection or is unavailable for a while never wedges the group nor loses
//! records; the leader rejoins when a subscribed topic gains partitions; a member with unreadable metadata gets
//! nothing while the rest of the group goes on; an unreadable assignment is a typed error and a rejoin.
//!
//! Every test is bounded by a timeout and synchronises on events (records polled, requests and group state the
//! fake brokers recorded), never on sleeps.

#[path = "support/fake_broker.rs"]
mod fake_broker;
#[path = "support/fake_group.rs"]
mod fake_group;

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fake_broker::{batch_at_epoch, bounded, encode, metadata_answer, Action, FakeBroker, FakeConfig};
use fake_group::{committed_in, consume, events, fill, is_group_api, member, poll_until, tp, Seen, TOPIC};
use kafka_protocol::messages::{ApiKey, SyncGroupResponse};
use weir::group::Assignment;
use weir::group::RebalanceEvent;

/// The coordinator moves from A to B (A answers NOT_COORDINATOR, FindCoordinator points to B; A keeps serving
/// metadata and fetches). With `shared`, B takes the group's state over (as a Kafka coordinator loading it from
/// `__consumer_offsets`); without, B knows nothing of the group and the member must join it afresh.
async fn coordinator_moves(shared: bool) {
    let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 2)])).await;
    let b_cfg = FakeConfig::new(&[]);
    let b = FakeBroker::start(if shared { b_cfg.share_group(&a) } else { b_cfg }).await;
    for p in 0..2 {
        fill(&a, p, 10);
    }
    let (group, mut rx) = member(&a, &[]);
    let mut seen = Seen::new();
    consume(&group, &mut seen, &[0, 1], 10).await;
    a.wait_until("commits of everything delivered on A", |r| {
        committed_in(r, &[0, 1], 10)
    })
    .await;
    assert_eq!(
        events(&mut rx),
        vec![RebalanceEvent::Assigned(vec![tp(0), tp(1)])]
    );
    let (member_id, generation) = group.member();

    a.set_coordinator(Some((2, b.addr.port())));
    for p in 0..2 {
        fill(&a, p, 10);
    }
    b.wait_until("a heartbeat on B", |r| r.of(ApiKey::Heartbeat).count() > 0)
        .await;
    consume(&group, &mut seen, &[0, 1], 20).await;
    // A member that rejoined B afresh gets the records again (B has no commits): poll until B has the commits.
    poll_until(&group, &mut seen, |_| {
        b.recorded(|r| committed_in(r, &[0, 1], 20))
    })
    .await;
    b.wait_group("offsets stored on B", |g| {
        (0..2).all(|p| g.offsets.get(&(TOPIC.to_owned(), p)) == Some(&20))
    })
    .await;
    if shared {
        // B took the group over: same member, same generation, no rebalance, no duplicate.
        assert_eq!(group.member(), (member_id, generation));
        assert!(events(&mut rx).is_empty());
        assert!(seen.values().all(|&n| n == 1), "duplicates: {seen:?}");
        assert_eq!(b.recorded(|r| r.of(ApiKey::JoinGroup).count()), 0);
    } else {
        // B did not know the member: it joined B afresh and got its partitions back.
        assert!(b.recorded(|r| r.of(ApiKey::SyncGroup).count()) > 0);
        b.wait_group("the member in B's group", |g| g.members.len() == 1)
            .await;
        assert_eq!(group.assignment(), vec![tp(0), tp(1)]);
    }
    assert_eq!(seen.len(), 40, "every record delivered");
    group.close().await.unwrap();
}

#[tokio::test]
async fn coordinator_moves_to_a_broker_that_took_the_group_over() {
    bounded(40, coordinator_moves(true)).await;
}

#[tokio::test]
async fn coordinator_moves_to_a_broker_that_lost_the_group() {
    bounded(40, coordinator_moves(false)).await;
}

/// The coordinator connection drops under a heartbeat: the member reconnects quietly and keeps its partitions.
#[tokio::test]
async fn coordinator_connection_drop_is_quiet() {
    bounded(40, async {
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 2)]).script(|r| {
            if r.api_key == ApiKey::Heartbeat && r.api_seq == 3 {
                Action::Close
            } else {
                Action::Answer
            }
        }))
        .await;
        for p in 0..2 {
            fill(&a, p, 10);
        }
        let (group, mut rx) = member(&a, &[]);
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0, 1], 10).await;
        let (member_id, generation) = group.member();
        a.wait_until("heartbeats after the dropped one", |r| {
            r.of(ApiKey::Heartbeat).count() >= 6 && r.disconnections >= 1
        })
        .await;
        for p in 0..2 {
            fill(&a, p, 10);
        }
        consume(&group, &mut seen, &[0, 1], 20).await;
        a.wait_until("commits of everything delivered", |r| {
            committed_in(r, &[0, 1], 20)
        })
        .await;
        assert_eq!(group.member(), (member_id, generation));
        assert_eq!(group.assignment(), vec![tp(0), tp(1)]);
        assert_eq!(
            events(&mut rx),
            vec![RebalanceEvent::Assigned(vec![tp(0), tp(1)])]
        );
        assert!(seen.values().all(|&n| n == 1), "duplicates: {seen:?}");
        assert_eq!(a.recorded(|r| r.of(ApiKey::SyncGroup).count()), 1);
        group.close().await.unwrap();
    })
    .await;
}

/// A member dropped without `close` still exits in order, from a background task: it commits what it delivered
/// (auto-commit, whose interval is far away here), calls the revoke callback and leaves the group, so the
/// coordinator need not wait for its session to expire.
#[tokio::test]
async fn dropped_member_commits_and_leaves() {
    bounded(40, async {
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 2)])).await;
        for p in 0..2 {
            fill(&a, p, 10);
        }
        let (group, mut rx) = member(&a, &[("auto.commit.interval.ms", "600000")]);
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0, 1], 10).await;
        let (member_id, _) = group.member();
        assert!(a.recorded(|r| r.of(ApiKey::OffsetCommit).count()) == 0);
        drop(group);
        a.wait_until("LeaveGroup", |r| r.of(ApiKey::LeaveGroup).count() == 1)
            .await;
        assert!(a.recorded(|r| committed_in(r, &[0, 1], 10)));
        assert_eq!(a.committed(TOPIC, 0), Some(10));
        assert_eq!(a.committed(TOPIC, 1), Some(10));
        assert!(a.group(|g| !g.members.contains_key(&member_id)));
        assert_eq!(
            events(&mut rx),
            vec![
                RebalanceEvent::Assigned(vec![tp(0), tp(1)]),
                RebalanceEvent::Revoked(vec![tp(0), tp(1)]),
            ]
        );
    })
    .await;
}

/// A commit of delivered positions carries the leader epoch of the batch of the last record delivered, so that
/// whoever starts from it can validate its position (KIP-320); a position this member did not deliver to (a
/// commit of an offset given by the application) carries none.
#[tokio::test]
async fn commits_carry_the_leader_epoch_of_the_last_record_delivered() {
    bounded(40, async {
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 2)])).await;
        let values = |r: std::ops::Range<i64>| r.map(|o| format!("p0-r{o}")).collect::<Vec<_>>();
        // Batches as a leader at epoch 6 and then its successor at 7 wrote them.
        a.append_raw(TOPIC, 0, batch_at_epoch(0, &values(0..6), 6));
        a.append_raw(TOPIC, 0, batch_at_epoch(6, &values(6..10), 7));
        fill(&a, 1, 10);
        let (group, _rx) = member(&a, &[("auto.commit.interval.ms", "600000")]);
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0, 1], 10).await;
        group.commit_delivered().await.unwrap();
        group.commit_sync(&[(tp(0), 3)]).await.unwrap();
        let commits: Vec<(String, i32, i64, i32)> = a.recorded(|r| {
            r.of(ApiKey::OffsetCommit)
                .flat_map(|q| q.commit_epochs())
                .filter(|c| c.1 == 0)
                .collect()
        });
        assert_eq!(
            commits,
            [(TOPIC.to_string(), 0, 10, 7), (TOPIC.to_string(), 0, 3, -1)]
        );
        group.close().await.unwrap();
    })
    .await;
}

/// A position restored from a commit that carries a leader epoch is validated against the leader's log before
/// it is fetched (KIP-320). Here the offset committed, 10 at epoch 1, is past where epoch 1 ends on the
/// current leader (7: an unclean election at epoch 2 cut the log back and wrote 7..12 anew): the member starts
/// reading at 7, where the logs part (`auto.offset.reset=earliest`), not at 10.
#[tokio::test]
async fn a_restored_position_past_a_truncation_is_read_from_where_the_logs_part() {
    bounded(40, async {
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).metadata(|_, port| {
            let mut m = metadata_answer(port, &[(TOPIC, 1)]);
            m.topics[0].partitions[0].leader_epoch = 2;
            m
        }))
        .await;
        let values = |r: std::ops::Range<i64>| r.map(|o| format!("p0-r{o}")).collect::<Vec<_>>();
        let log = vec![
            batch_at_epoch(0, &values(0..7), 1),
            batch_at_epoch(7, &values(7..12), 2),
        ];
        a.elect(TOPIC, 0, 2, 0, log);
        a.group(|g| {
            g.offsets.insert((TOPIC.to_string(), 0), 10);
            g.offset_epochs.insert((TOPIC.to_string(), 0), 1);
        });
        let (group, _rx) = member(&a, &[]);
        let mut seen = Seen::new();
        poll_until(&group, &mut seen, |s| s.contains_key(&(0, 11))).await;
        let offsets: Vec<i64> = seen.keys().map(|&(_, o)| o).collect();
        assert_eq!(
            offsets,
            (7..12).collect::<Vec<_>>(),
            "read from where the logs part"
        );
        group.close().await.unwrap();
    })
    .await;
}

/// The commit of a closing member meets a dead connection (cut first, then a connection that never answers, so
/// the attempt times out): close retries it on a fresh connection, commits what was delivered and reports no
/// error. (Closing used to give the commit a single attempt: the positions were not saved and close failed.)
#[tokio::test]
async fn closing_member_retries_its_commit_on_a_dead_connection() {
    bounded(40, async {
        for dead in [Action::Close, Action::Stall] {
            let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 2)]).script(move |r| {
                if r.api_key == ApiKey::OffsetCommit && r.api_seq == 0 {
                    dead.clone()
                } else {
                    Action::Answer
                }
            }))
            .await;
            for p in 0..2 {
                fill(&a, p, 10);
            }
            let (group, _rx) = member(
                &a,
                &[
                    ("auto.commit.interval.ms", "600000"),
                    ("request.timeout.ms", "1000"),
                ],
            );
            let mut seen = Seen::new();
            consume(&group, &mut seen, &[0, 1], 10).await;
            group.close().await.unwrap();
            assert_eq!(a.recorded(|r| r.of(ApiKey::OffsetCommit).count()), 2);
            assert_eq!(a.committed(TOPIC, 0), Some(10));
            assert_eq!(a.committed(TOPIC, 1), Some(10));
        }
    })
    .await;
}

/// Another member (say a foreign client with a bug) announced metadata that does not decode as a consumer
/// subscription. weir, leading, assigns it nothing and everything to the members it can read; no error reaches
/// the application and nothing is lost.
#[tokio::test]
async fn leader_assigns_nothing_to_a_member_with_unreadable_metadata() {
    bounded(40, async {
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 2)])).await;
        for p in 0..2 {
            fill(&a, p, 10);
        }
        // Version 3 claiming 2^31-1 topics: kafka-protocol's decoder aborted the process on this.
        let garbage = Bytes::from_static(&[0, 3, 0x7f, 0xff, 0xff, 0xff, b'x']);
        a.group(|g| {
            g.members
                .insert("corrupt".into(), vec![("range".into(), garbage.clone())])
        });
        let (group, mut rx) = member(&a, &[]);
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0, 1], 10).await;
        let (me, _) = group.member();
        assert_eq!(a.group(|g| g.leader.clone()), Some(me));
        let theirs = a.group(|g| g.assignments.get("corrupt").cloned());
        let theirs = Assignment::decode(theirs.expect("the corrupt member got an assignment")).unwrap();
        assert!(theirs.partitions.is_empty(), "{theirs:?}");
        assert_eq!(group.assignment(), vec![tp(0), tp(1)]);
        assert_eq!(
            events(&mut rx),
            vec![RebalanceEvent::Assigned(vec![tp(0), tp(1)])]
        );
        group.close().await.unwrap();
    })
    .await;
}

/// The first SyncGroup answer carries an assignment that does not decode. The member reports a protocol error
/// (once, through poll), rejoins, and consumes everything once the next generation's assignment is sound.
#[tokio::test]
async fn unreadable_assignment_is_reported_and_the_member_rejoins() {
    bounded(40, async {
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 2)]).script(|r| {
            if r.api_key == ApiKey::SyncGroup && r.api_seq == 0 {
                let bad = SyncGroupResponse::default()
                    .with_assignment(Bytes::from_static(&[0, 0, 0, 0, 0, 9, 0xff]));
                Action::RawBody(encode(&bad, r.version))
            } else {
                Action::Answer
            }
        }))
        .await;
        for p in 0..2 {
            fill(&a, p, 10);
        }
        let (group, mut rx) = member(&a, &[]);
        // A poll waiting when the error is queued may already return the next generation's records.
        let mut seen = Seen::new();
        let err = loop {
            match group.poll(100, Duration::from_millis(50)).await {
                Err(e) => break e,
                Ok(records) => {
                    for r in records {
                        *seen.entry((r.partition, r.offset)).or_default() += 1;
                    }
                }
            }
        };
        assert!(
            matches!(err, weir::Error::Protocol { .. }) && err.to_string().contains("SyncGroup assignment"),
            "{err}"
        );
        consume(&group, &mut seen, &[0, 1], 10).await;
        assert!(seen.values().all(|&n| n == 1), "duplicates: {seen:?}");
        assert_eq!(a.recorded(|r| r.of(ApiKey::SyncGroup).count()), 2);
        assert_eq!(
            events(&mut rx),
            vec![RebalanceEvent::Assigned(vec![tp(0), tp(1)])]
        );
        group.close().await.unwrap();
    })
    .await;
}

/// COORDINATOR_NOT_AVAILABLE for a while (first while joining, later while consuming), then available: the
/// group does not wedge, nothing is lost and no error reaches poll.
#[tokio::test]
async fn coordinator_not_available_for_a_while() {
    bounded(40, async {
        let unavailable = Arc::new(AtomicBool::new(true));
        let flag = unavailable.clone();
        let a = FakeBroker::start(FakeConfig::new(&[(TOPIC, 2)]).script(move |r| {
            if is_group_api(r.api_key) && flag.load(Ordering::SeqCst) {
                Action::GroupError(15)
            } else {
                Action::Answer
            }
        }))
        .await;
        for p in 0..2 {
            fill(&a, p, 10);
        }
        let (group, mut rx) = member(&a, &[]);
        a.wait_until("FindCoordinator refused 3 times", |r| {
            r.of(ApiKey::FindCoordinator).count() >= 3
        })
        .await;
        unavailable.store(false, Ordering::SeqCst);
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0, 1], 10).await;
        a.wait_until("commits of everything delivered", |r| {
            committed_in(r, &[0, 1], 10)
        })
        .await;

        let before = a.recorded(|r| r.requests.iter().filter(|q| is_group_api(q.api_key)).count());
        unavailable.store(true, Ordering::SeqCst);
        for p in 0..2 {
            fill(&a, p, 10);
        }
        a.wait_until("6 group requests refused", |r| {
            r.requests.iter().filter(|q| is_group_api(q.api_key)).count() >= before + 6
        })
        .await;
        // Records keep flowing while the coordinator is away.
        consume(&group, &mut seen, &[0, 1], 20).await;
        unavailable.store(false, Ordering::SeqCst);
        a.wait_until("commits of everything delivered", |r| {
            committed_in(r, &[0, 1], 20)
        })
        .await;
        for p in 0..2 {
            fill(&a, p, 10);
        }
        consume(&group, &mut seen, &[0, 1], 30).await;
        a.wait_until("commits of everything delivered", |r| {
            committed_in(r, &[0, 1], 30)
        })
        .await;
        let evs = events(&mut rx);
        assert_eq!(evs.first(), Some(&RebalanceEvent::Assigned(vec![tp(0), tp(1)])));
        assert_eq!(group.assignment(), vec![tp(0), tp(1)]);
        assert_eq!(seen.len(), 60, "every record delivered");
        group.close().await.unwrap();
    })
    .await;
}

/// A subscribed topic gains partitions: the leader notices it in the metadata and rejoins, and the new
/// partitions are assigned and consumed.
#[tokio::test]
async fn leader_rejoins_when_partitions_grow() {
    bounded(40, async {
        let count = Arc::new(AtomicI32::new(2));
        let c = count.clone();
        let a = FakeBroker::start(
            FakeConfig::new(&[(TOPIC, 2)])
                .metadata(move |_, port| metadata_answer(port, &[(TOPIC, c.load(Ordering::SeqCst))])),
        )
        .await;
        for p in 0..2 {
            fill(&a, p, 10);
        }
        let (group, mut rx) = member(&a, &[("metadata.max.age.ms", "100")]);
        let mut seen = Seen::new();
        consume(&group, &mut seen, &[0, 1], 10).await;
        assert_eq!(
            events(&mut rx),
            vec![RebalanceEvent::Assigned(vec![tp(0), tp(1)])]
        );
        let joins = a.recorded(|r| r.of(ApiKey::SyncGroup).count());

        fill(&a, 2, 10);
        count.store(3, Ordering::SeqCst);
        consume(&group, &mut seen, &[0, 1, 2], 10).await;
        assert!(a.recorded(|r| r.of(ApiKey::SyncGroup).count()) > joins);
        assert_eq!(group.assignment(), vec![tp(0), tp(1), tp(2)]);
        let evs = events(&mut rx);
        assert_eq!(
            evs.last(),
            Some(&RebalanceEvent::Assigned(vec![tp(0), tp(1), tp(2)]))
        );
        assert_eq!(seen.len(), 30, "every record delivered");
        group.close().await.unwrap();
    })
    .await;
}
