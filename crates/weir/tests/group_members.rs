//! Consumer groups of weir members against real Apache Kafka: partitions split and taken over, commits
//! survive a restart. Records are produced in batches of many records, so members resume from committed offsets
//! inside batches.

#[path = "support/group.rs"]
mod group;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use group::{group_config, produce_numbered};
use weir::consumer::{ConsumerRecord, StartOffset, TopicPartition};
use weir::group::{
    BoxFuture, ChannelListener, GroupConsumer, RebalanceContext, RebalanceEvent, RebalanceListener,
};
use weir_testkit::{unique_topic, Kafka};

fn key(r: &ConsumerRecord) -> (i32, i64) {
    assert_eq!(
        r.value.as_deref().unwrap(),
        format!("p{}-r{}", r.partition, r.offset).as_bytes()
    );
    (r.partition, r.offset)
}

async fn poll_into(c: &GroupConsumer, seen: &mut Vec<(i32, i64)>) {
    poll_max(c, seen, 100).await
}

async fn poll_max(c: &GroupConsumer, seen: &mut Vec<(i32, i64)>, max: usize) {
    for r in c.poll(max, Duration::from_millis(50)).await.unwrap() {
        seen.push(key(&r));
    }
}

fn deadline(secs: u64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_split_then_survivor_takes_over() {
    let broker = Kafka::shared();
    let topic = unique_topic("grp-split");
    broker.create_topic(&topic, 4);
    let group = unique_topic("g-split");
    // Some records before the members join (consumed across the first handover), the rest once split.
    produce_numbered(broker, &topic, 4, 0..10).await;

    let a = GroupConsumer::new(group_config(broker, &group, &[])).unwrap();
    let (tx, mut events_b) = tokio::sync::mpsc::unbounded_channel();
    let b = GroupConsumer::new(group_config(broker, &group, &[])).unwrap();
    b.set_listener(std::sync::Arc::new(ChannelListener(tx)));
    a.subscribe(&[&topic]);
    b.subscribe(&[&topic]);

    // Both members poll until the group is split 2 / 2.
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    let until = deadline(60);
    loop {
        poll_into(&a, &mut seen_a).await;
        poll_into(&b, &mut seen_b).await;
        let (aa, ab) = (a.assignment(), b.assignment());
        if aa.len() == 2 && ab.len() == 2 {
            let all: BTreeSet<TopicPartition> = aa.iter().chain(ab.iter()).cloned().collect();
            assert_eq!(all.len(), 4, "assignments overlap: {aa:?} {ab:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "no split: a {aa:?} b {ab:?}, {} + {} records",
            seen_a.len(),
            seen_b.len()
        );
    }
    let (a_parts, b_parts) = (a.assignment(), b.assignment());
    produce_numbered(broker, &topic, 4, 10..25).await;
    let until = deadline(60);
    while seen_a.len() + seen_b.len() < 100 {
        poll_into(&a, &mut seen_a).await;
        poll_into(&b, &mut seen_b).await;
        assert!(
            tokio::time::Instant::now() < until,
            "{} + {} records",
            seen_a.len(),
            seen_b.len()
        );
    }
    // Each member got the later records of exactly its own partitions.
    let owns = |parts: &[TopicPartition], p: i32| parts.iter().any(|tp| tp.partition == p);
    assert!(seen_a
        .iter()
        .filter(|(_, o)| *o >= 10)
        .all(|(p, _)| owns(&a_parts, *p)));
    assert!(seen_b
        .iter()
        .filter(|(_, o)| *o >= 10)
        .all(|(p, _)| owns(&b_parts, *p)));
    assert_eq!(seen_a.iter().filter(|(_, o)| *o >= 10).count(), 30);

    // A leaves in order (commits what it delivered); B gets everything.
    a.close().await.unwrap();
    produce_numbered(broker, &topic, 4, 25..50).await;
    let until = deadline(60);
    while b.assignment().len() < 4 || seen_a.len() + seen_b.len() < 200 {
        poll_into(&b, &mut seen_b).await;
        assert!(
            tokio::time::Instant::now() < until,
            "no takeover: b {:?}, {} + {} records",
            b.assignment(),
            seen_a.len(),
            seen_b.len()
        );
    }
    // A little longer: nothing more (no duplicates arriving late).
    for _ in 0..5 {
        poll_into(&b, &mut seen_b).await;
    }

    // Every record exactly once: A committed what it delivered when revoked and when closing, so the window
    // of uncommitted deliveries is empty at every handover.
    let mut count: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for k in seen_a.iter().chain(seen_b.iter()) {
        *count.entry(*k).or_default() += 1;
    }
    let dups: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    assert_eq!(count.len(), 200, "lost records");
    // B saw a revoke (the rebalance when A joined or left) and finally all four partitions.
    let mut last_assigned = Vec::new();
    while let Ok(ev) = events_b.try_recv() {
        if let RebalanceEvent::Assigned(p) = ev {
            last_assigned = p;
        }
    }
    assert_eq!(last_assigned.len(), 4);
    let committed = b.committed(&b.assignment()).await.unwrap();
    assert_eq!(committed.len(), 4);
    b.close().await.unwrap();
    let check = GroupConsumer::new(group_config(broker, &group, &[])).unwrap();
    let tps: Vec<TopicPartition> = (0..4).map(|p| TopicPartition::new(topic.as_str(), p)).collect();
    let committed = check.committed(&tps).await.unwrap();
    assert!(committed.values().all(|o| *o == Some(50)), "{committed:?}");
    check.close().await.unwrap();
}

/// Commits at positions inside batches (records are produced 20 to a partition in one go, and polled five at a
/// time): the restarted member starts exactly there, skipping the batch's earlier records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_restart() {
    let broker = Kafka::shared();
    let topic = unique_topic("grp-restart");
    broker.create_topic(&topic, 2);
    let group = unique_topic("g-restart");
    produce_numbered(broker, &topic, 2, 0..20).await;

    let mut cfg = group_config(broker, &group, &[]);
    cfg.set("enable.auto.commit", "false").unwrap();
    let m = GroupConsumer::new(cfg.clone()).unwrap();
    m.subscribe(&[&topic]);
    let mut seen = Vec::new();
    let until = deadline(60);
    while seen.len() < 15 {
        poll_max(&m, &mut seen, 5).await;
        assert!(tokio::time::Instant::now() < until, "only {} records", seen.len());
    }
    m.commit_delivered().await.unwrap();
    let tps: Vec<TopicPartition> = (0..2).map(|p| TopicPartition::new(topic.as_str(), p)).collect();
    let positions: BTreeMap<i32, i64> = tps
        .iter()
        .map(|tp| (tp.partition, m.position(tp).unwrap()))
        .collect();
    let committed = m.committed(&tps).await.unwrap();
    for tp in &tps {
        assert_eq!(committed[tp], Some(positions[&tp.partition]));
    }
    // Deliver more without committing: these are the uncommitted window, redelivered after the restart.
    let mut window = Vec::new();
    let until = deadline(30);
    while window.is_empty() {
        poll_max(&m, &mut window, 5).await;
        assert!(tokio::time::Instant::now() < until);
    }
    m.close().await.unwrap(); // auto-commit is off: close commits nothing

    let m2 = GroupConsumer::new(cfg).unwrap();
    m2.subscribe(&[&topic]);
    let mut again = Vec::new();
    let want = 40 - seen.len();
    let until = deadline(60);
    while again.len() < want {
        poll_into(&m2, &mut again).await;
        assert!(
            tokio::time::Instant::now() < until,
            "only {} of {want}",
            again.len()
        );
    }
    for _ in 0..5 {
        poll_into(&m2, &mut again).await;
    }
    for p in 0..2 {
        let offsets: Vec<i64> = again.iter().filter(|(q, _)| *q == p).map(|(_, o)| *o).collect();
        let from = positions[&p];
        assert_eq!(
            offsets,
            (from..20).collect::<Vec<_>>(),
            "partition {p} resumed at its commit"
        );
    }
    // Everything before the commit came once; only the uncommitted window came twice.
    let first: BTreeSet<(i32, i64)> = seen.iter().copied().collect();
    let second: BTreeSet<(i32, i64)> = again.iter().copied().collect();
    assert!(first.is_disjoint(&second));
    assert!(window.iter().all(|k| second.contains(k)));
    assert_eq!(first.len() + second.len(), 40);
    assert_eq!(again.len(), second.len(), "no duplicates after the restart");
    m2.close().await.unwrap();
}

/// The group's record stream yields every record once, in offset order per partition, and ends after close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_yields_everything_and_ends_on_close() {
    use futures::StreamExt;
    let broker = Kafka::shared();
    let topic = unique_topic("grp-stream");
    broker.create_topic(&topic, 2);
    produce_numbered(broker, &topic, 2, 0..5).await;
    let m = GroupConsumer::new(group_config(broker, &unique_topic("g-stream"), &[])).unwrap();
    m.subscribe(&[&topic]);
    let got: Vec<(i32, i64)> = tokio::time::timeout(
        Duration::from_secs(60),
        m.stream(3).map(|r| key(&r.unwrap())).take(10).collect(),
    )
    .await
    .expect("10 records within 60 s");
    for p in 0..2 {
        let offsets: Vec<i64> = got.iter().filter(|(q, _)| *q == p).map(|(_, o)| *o).collect();
        assert_eq!(offsets, (0..5).collect::<Vec<_>>(), "partition {p}");
    }
    assert_eq!(m.stats().records_delivered, 10);
    for p in 0..2 {
        let view = m.partition_view(&TopicPartition::new(topic.as_str(), p)).unwrap();
        assert_eq!(view.position, 5);
        assert!(!view.paused);
    }
    let mut rest = std::pin::pin!(m.stream(3));
    m.close().await.unwrap();
    assert!(rest.next().await.is_none());
}

/// Offsets to commit, or why committing them failed.
type CommitOutcome = Result<Vec<(TopicPartition, i64)>, String>;

/// An application that keeps its offsets itself: the assign callback seeks to where its store says, the revoke
/// callback commits what it processed. Both await inside the callback while the group waits for them.
#[derive(Default)]
struct OwnOffsets {
    /// Where the "external store" says each partition continues.
    start: i64,
    /// Next offset to process per partition, as the application tracks it.
    processed: std::sync::Mutex<BTreeMap<TopicPartition, i64>>,
    /// Outcome of every commit made from `on_revoked`.
    commits: std::sync::Mutex<Vec<CommitOutcome>>,
}

impl RebalanceListener for OwnOffsets {
    fn on_assigned<'a>(
        &'a self,
        group: &'a RebalanceContext<'a>,
        p: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // A slow external store: polls running meanwhile must not get records of these partitions.
            tokio::time::sleep(Duration::from_millis(300)).await;
            for tp in p {
                group.seek(tp, StartOffset::Offset(self.start)).await.unwrap();
                assert_eq!(group.position(tp), Some(self.start));
            }
        })
    }
    fn on_revoked<'a>(
        &'a self,
        group: &'a RebalanceContext<'a>,
        p: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let done: Vec<(TopicPartition, i64)> = {
                let processed = self.processed.lock().unwrap();
                p.iter()
                    .filter_map(|tp| Some((tp.clone(), *processed.get(tp)?)))
                    .collect()
            };
            let outcome = group
                .commit(&done)
                .await
                .map(|()| done)
                .map_err(|e| e.to_string());
            self.commits.lock().unwrap().push(outcome);
        })
    }
}

/// Rebalance callbacks can await the group: a seek in `on_assigned` decides where consumption starts (no record
/// before it is delivered), a commit in `on_revoked` (auto-commit off) is where the next member resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_seek_on_assign_and_commit_on_revoke() {
    let broker = Kafka::shared();
    let topic = unique_topic("grp-callbacks");
    broker.create_topic(&topic, 2);
    let group = unique_topic("g-callbacks");
    produce_numbered(broker, &topic, 2, 0..20).await;

    let mut cfg = group_config(broker, &group, &[]);
    cfg.set("enable.auto.commit", "false").unwrap();
    let m = GroupConsumer::new(cfg.clone()).unwrap();
    let listener = std::sync::Arc::new(OwnOffsets {
        start: 7,
        ..OwnOffsets::default()
    });
    m.set_listener(listener.clone());
    m.subscribe(&[&topic]);
    let mut seen = Vec::new();
    let until = deadline(60);
    // Process until each partition is past offset 12.
    while (0..2).any(|p| !seen.contains(&(p, 12))) {
        poll_max(&m, &mut seen, 3).await;
        let mut processed = listener.processed.lock().unwrap();
        for &(p, o) in &seen {
            processed.insert(TopicPartition::new(topic.as_str(), p), o + 1);
        }
        assert!(tokio::time::Instant::now() < until, "only {seen:?}");
    }
    for p in 0..2 {
        let offsets: Vec<i64> = seen.iter().filter(|(q, _)| *q == p).map(|(_, o)| *o).collect();
        assert_eq!(
            offsets,
            (7..7 + offsets.len() as i64).collect::<Vec<_>>(),
            "partition {p}"
        );
    }
    let processed = listener.processed.lock().unwrap().clone();
    m.close().await.unwrap(); // auto-commit is off: only the callback commits
    let commits = listener.commits.lock().unwrap().clone();
    assert_eq!(commits.len(), 1, "{commits:?}");
    let committed: BTreeMap<TopicPartition, i64> = commits[0].clone().unwrap().into_iter().collect();
    assert_eq!(committed, processed);

    // The next member starts where the callback committed.
    let m2 = GroupConsumer::new(cfg).unwrap();
    m2.subscribe(&[&topic]);
    let mut again = Vec::new();
    let want: i64 = processed.values().map(|o| 20 - o).sum();
    let until = deadline(60);
    while (again.len() as i64) < want {
        poll_into(&m2, &mut again).await;
        assert!(
            tokio::time::Instant::now() < until,
            "only {} of {want}",
            again.len()
        );
    }
    for (tp, from) in &processed {
        let offsets: Vec<i64> = again
            .iter()
            .filter(|(q, _)| *q == tp.partition)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(
            offsets,
            (*from..20).collect::<Vec<_>>(),
            "{tp} resumed at the callback's commit"
        );
    }
    m2.close().await.unwrap();
}

/// Partitions the application paused stay paused if the member keeps them through a rebalance; the listener
/// sees assigned / revoked / assigned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_survives_a_rebalance_for_kept_partitions() {
    let broker = Kafka::shared();
    let topic = unique_topic("grp-pause");
    broker.create_topic(&topic, 4);
    let group = unique_topic("g-pause");

    let a = GroupConsumer::new(group_config(broker, &group, &[])).unwrap();
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    a.set_listener(std::sync::Arc::new(ChannelListener(tx)));
    a.subscribe(&[&topic]);
    let mut seen_a = Vec::new();
    let until = deadline(60);
    while a.assignment().len() < 4 {
        poll_into(&a, &mut seen_a).await;
        assert!(tokio::time::Instant::now() < until, "no assignment");
    }
    let all = a.assignment();
    a.pause(&all).unwrap();
    assert_eq!(a.paused(), all);

    let b = GroupConsumer::new(group_config(broker, &group, &[])).unwrap();
    b.subscribe(&[&topic]);
    let mut seen_b = Vec::new();
    let until = deadline(60);
    while a.assignment().len() != 2 || b.assignment().len() != 2 {
        poll_into(&a, &mut seen_a).await;
        poll_into(&b, &mut seen_b).await;
        assert!(tokio::time::Instant::now() < until, "no split");
    }
    let kept = a.assignment();
    assert_eq!(
        a.paused(),
        kept,
        "pause state of kept partitions survives; moved ones forget it"
    );

    produce_numbered(broker, &topic, 4, 0..10).await;
    let until = deadline(60);
    while seen_b.len() < 20 {
        poll_into(&a, &mut seen_a).await;
        poll_into(&b, &mut seen_b).await;
        assert!(
            tokio::time::Instant::now() < until,
            "b got {} of 20",
            seen_b.len()
        );
    }
    for _ in 0..5 {
        poll_into(&a, &mut seen_a).await;
    }
    assert!(seen_a.is_empty(), "a paused member delivered {seen_a:?}");
    a.resume(&kept).unwrap();
    let until = deadline(60);
    while seen_a.len() < 20 {
        poll_into(&a, &mut seen_a).await;
        assert!(
            tokio::time::Instant::now() < until,
            "a got {} of 20 after resume",
            seen_a.len()
        );
    }
    assert!(seen_a
        .iter()
        .all(|(p, _)| kept.iter().any(|tp| tp.partition == *p)));

    let mut got = Vec::new();
    while let Ok(ev) = events.try_recv() {
        got.push(ev);
    }
    assert!(
        matches!(&got[..], [RebalanceEvent::Assigned(x), RebalanceEvent::Revoked(y), RebalanceEvent::Assigned(z)]
            if x.len() == 4 && y.len() == 4 && *z == kept),
        "{got:?}"
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// A member offering no assignor in common with the group gets a typed error from `poll`; the group goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_without_a_common_assignor_gets_a_typed_error() {
    let broker = Kafka::shared();
    let topic = unique_topic("grp-proto");
    broker.create_topic(&topic, 2);
    let group = unique_topic("g-proto");
    let mut cfg = group_config(broker, &group, &[]);
    cfg.set("partition.assignment.strategy", "range").unwrap();
    let a = GroupConsumer::new(cfg).unwrap();
    a.subscribe(&[&topic]);
    let mut seen = Vec::new();
    let until = deadline(60);
    while a.assignment().len() < 2 {
        poll_into(&a, &mut seen).await;
        assert!(tokio::time::Instant::now() < until, "no assignment");
    }
    let mut cfg = group_config(broker, &group, &[]);
    cfg.set("partition.assignment.strategy", "roundrobin").unwrap();
    let b = GroupConsumer::new(cfg).unwrap();
    b.subscribe(&[&topic]);
    let until = deadline(60);
    let err = loop {
        match b.poll(10, Duration::from_millis(100)).await {
            Err(e) => break e,
            Ok(r) => assert!(r.is_empty()),
        }
        poll_into(&a, &mut seen).await;
        assert!(tokio::time::Instant::now() < until, "no error for the odd member");
    };
    assert_eq!(
        err.kafka_code(),
        Some(weir::error::KafkaCode::InconsistentGroupProtocol),
        "{err}"
    );
    assert!(b.assignment().is_empty());
    // The first member still owns and consumes everything.
    produce_numbered(broker, &topic, 2, 0..5).await;
    let until = deadline(60);
    while seen.len() < 10 {
        poll_into(&a, &mut seen).await;
        assert!(tokio::time::Instant::now() < until, "{} of 10", seen.len());
    }
    assert_eq!(a.assignment().len(), 2);
    b.close().await.unwrap();
    a.close().await.unwrap();
}

/// A static member (`group.instance.id`) does not leave on close; restarted with the same instance id it gets
/// its partitions back and resumes from its commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_member_restarts_into_its_partitions() {
    let broker = Kafka::shared();
    let topic = unique_topic("grp-static");
    broker.create_topic(&topic, 2);
    let group = unique_topic("g-static");
    produce_numbered(broker, &topic, 2, 0..10).await;
    let mut cfg = group_config(broker, &group, &[]);
    cfg.set("group.instance.id", "instance-1").unwrap();
    let m = GroupConsumer::new(cfg.clone()).unwrap();
    m.subscribe(&[&topic]);
    let mut seen = Vec::new();
    let until = deadline(60);
    while seen.len() < 20 {
        poll_into(&m, &mut seen).await;
        assert!(tokio::time::Instant::now() < until, "{} of 20", seen.len());
    }
    let (first_id, _) = m.member();
    m.close().await.unwrap();
    produce_numbered(broker, &topic, 2, 10..15).await;
    let m2 = GroupConsumer::new(cfg).unwrap();
    m2.subscribe(&[&topic]);
    let mut again = Vec::new();
    // Well within the 10 s session timeout: the coordinator hands the instance its partitions back at once.
    let until = deadline(8);
    while again.len() < 10 {
        poll_into(&m2, &mut again).await;
        assert!(tokio::time::Instant::now() < until, "{} of 10", again.len());
    }
    assert!(
        again.iter().all(|(_, o)| *o >= 10),
        "resumed from the commits: {again:?}"
    );
    let (second_id, _) = m2.member();
    tracing::info!(first_id, second_id, "static member ids");
    m2.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_subscription_follows_matching_topics() {
    let broker = Kafka::shared();
    let base = unique_topic("re");
    let (a1, a2, other) = (format!("{base}-a-1"), format!("{base}-a-2"), format!("{base}-b"));
    for t in [&a1, &a2, &other] {
        broker.create_topic(t, 1);
    }
    let mut cfg = group_config(broker, &unique_topic("re-group"), &[]);
    cfg.set("metadata.max.age.ms", "200").unwrap(); // notice new topics quickly
    let c = GroupConsumer::new(cfg).unwrap();
    c.subscribe_pattern(&format!("^{base}-a-.*$")).unwrap();
    let until = deadline(30);
    while c.assignment().len() < 2 {
        assert!(
            tokio::time::Instant::now() < until,
            "pattern never matched: {:?}",
            c.subscription()
        );
        c.poll(10, Duration::from_millis(50)).await.unwrap();
    }
    assert_eq!(c.subscription(), vec![a1.clone(), a2.clone()]);
    // A topic created later that matches joins the subscription; the non-matching one never does.
    let a3 = format!("{base}-a-3");
    broker.create_topic(&a3, 1);
    let until = deadline(30);
    while c.assignment().len() < 3 {
        assert!(
            tokio::time::Instant::now() < until,
            "new topic not picked up: {:?}",
            c.subscription()
        );
        c.poll(10, Duration::from_millis(50)).await.unwrap();
    }
    let topics: BTreeSet<String> = c.assignment().iter().map(|tp| tp.topic.to_string()).collect();
    assert_eq!(topics, BTreeSet::from([a1, a2, a3]));
    assert!(c.subscribe_pattern("(unclosed").is_err());
    c.close().await.unwrap();
}
