//! The cooperative-sticky assignor on real Apache Kafka (KIP-429): when a second member joins, the first
//! revokes only the partitions that move and keeps delivering the others *during* the rebalance. Moved
//! partitions resume at the offsets their old owner committed, inside batches of many records.

#[path = "support/group.rs"]
mod group;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use group::group_config;
use weir::config::ProducerConfig;
use weir::consumer::TopicPartition;
use weir::group::{
    BoxFuture, GroupConfig, GroupConsumer, RebalanceContext, RebalanceEvent, RebalanceListener,
};
use weir::{Producer, ProducerRecord};
use weir_testkit::{unique_topic, Kafka};

/// A cooperative-sticky member heartbeating every `heartbeat_ms`.
fn cooperative(broker: &Kafka, group: &str, heartbeat_ms: &str) -> GroupConfig {
    group_config(
        broker,
        group,
        &[
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("heartbeat.interval.ms", heartbeat_ms),
        ],
    )
}

/// Rebalance events with the time they happened.
#[derive(Default)]
struct Timeline(Mutex<Vec<(Instant, RebalanceEvent)>>);

impl Timeline {
    fn events(&self) -> Vec<(Instant, RebalanceEvent)> {
        self.0.lock().unwrap().clone()
    }
}

impl RebalanceListener for Timeline {
    fn on_assigned<'a>(&'a self, _: &'a RebalanceContext<'a>, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        let ev = RebalanceEvent::Assigned(p.to_vec());
        self.0.lock().unwrap().push((Instant::now(), ev));
        Box::pin(async {})
    }
    fn on_revoked<'a>(&'a self, _: &'a RebalanceContext<'a>, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        let ev = RebalanceEvent::Revoked(p.to_vec());
        self.0.lock().unwrap().push((Instant::now(), ev));
        Box::pin(async {})
    }
    fn on_lost<'a>(&'a self, _: &'a RebalanceContext<'a>, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        let ev = RebalanceEvent::Lost(p.to_vec());
        self.0.lock().unwrap().push((Instant::now(), ev));
        Box::pin(async {})
    }
}

/// A record as delivered: partition, offset, and the start and end of the poll that returned it.
#[derive(Debug, Clone, Copy)]
struct Delivery {
    partition: i32,
    offset: i64,
    poll_start: Instant,
    poll_end: Instant,
}

/// Polls `c` until `stop`, recording every delivery.
async fn poll_loop(c: Arc<GroupConsumer>, stop: Arc<AtomicBool>) -> Vec<Delivery> {
    let mut out = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let poll_start = Instant::now();
        let records = c.poll(100, Duration::from_millis(20)).await.unwrap();
        let poll_end = Instant::now();
        for r in records {
            assert_eq!(
                r.value.as_deref().unwrap(),
                format!("p{}-r{}", r.partition, r.offset).as_bytes()
            );
            out.push(Delivery {
                partition: r.partition,
                offset: r.offset,
                poll_start,
                poll_end,
            });
        }
    }
    out
}

/// Writes one record per batch to each partition in turn until `stop`; returns how many per partition.
async fn produce_until(broker: String, topic: String, stop: Arc<AtomicBool>) -> Vec<i64> {
    let producer = Producer::new(ProducerConfig::new(&broker)).unwrap();
    let mut next = vec![0i64; 4];
    while !stop.load(Ordering::SeqCst) {
        for (p, n) in next.iter_mut().enumerate() {
            let d = producer
                .send(ProducerRecord::new(topic.as_str(), format!("p{p}-r{n}")).partition(p as i32))
                .await
                .unwrap();
            assert_eq!(d.await.unwrap().offset, *n, "one record per batch, offsets dense");
            *n += 1;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    producer.close().await.unwrap();
    next
}

fn parts(list: &[TopicPartition]) -> BTreeSet<i32> {
    list.iter().map(|tp| tp.partition).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kept_partitions_keep_delivering_while_a_member_joins() {
    let broker = Kafka::shared();
    let topic = unique_topic("grp-coop");
    broker.create_topic(&topic, 4);
    let group = unique_topic("g-coop");

    let stop_producing = Arc::new(AtomicBool::new(false));
    let producer = tokio::spawn(produce_until(
        broker.bootstrap(),
        topic.clone(),
        stop_producing.clone(),
    ));

    // A owns all four partitions and consumes them.
    let a = Arc::new(GroupConsumer::new(cooperative(broker, &group, "200")).unwrap());
    let a_events = Arc::new(Timeline::default());
    a.set_listener(a_events.clone());
    a.subscribe(&[&topic]);
    let stop_a = Arc::new(AtomicBool::new(false));
    let a_loop = tokio::spawn(poll_loop(a.clone(), stop_a.clone()));
    let until = Instant::now() + Duration::from_secs(60);
    while a.assignment().len() < 4 {
        assert!(Instant::now() < until, "A got no assignment");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // B joins. Its heartbeats are slow (1.5 s): after the first rebalance it notices the follow-up one only at
    // its next heartbeat, so the follow-up rebalance lasts long enough to see A deliver during it.
    let b = Arc::new(GroupConsumer::new(cooperative(broker, &group, "1500")).unwrap());
    let b_events = Arc::new(Timeline::default());
    b.set_listener(b_events.clone());
    let joined_at = Instant::now();
    b.subscribe(&[&topic]);
    let stop_b = Arc::new(AtomicBool::new(false));
    let b_loop = tokio::spawn(poll_loop(b.clone(), stop_b.clone()));
    while !(a.assignment().len() == 2 && b.assignment().len() == 2) {
        assert!(
            Instant::now() < until,
            "no 2/2 split: A {:?} B {:?}",
            a.assignment(),
            b.assignment()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (a_final, b_final) = (parts(&a.assignment()), parts(&b.assignment()));
    assert!(a_final.is_disjoint(&b_final));
    // Keep going a little with both members, then stop producing and let them catch up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_producing.store(true, Ordering::SeqCst);
    let produced = producer.await.unwrap();
    let total: i64 = produced.iter().sum();
    let count_seen = |a: &[Delivery], b: &[Delivery]| {
        a.iter()
            .chain(b.iter())
            .map(|d| (d.partition, d.offset))
            .collect::<BTreeSet<_>>()
            .len() as i64
    };
    // Give the poll loops time to deliver everything (they run until told to stop).
    let catch_up = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let committed_a = a.committed(&a.assignment()).await.unwrap();
        let committed_b = b.committed(&b.assignment()).await.unwrap();
        let done = committed_a
            .iter()
            .chain(committed_b.iter())
            .all(|(tp, o)| *o == Some(produced[tp.partition as usize]));
        if done || Instant::now() > catch_up {
            break;
        }
    }
    stop_a.store(true, Ordering::SeqCst);
    stop_b.store(true, Ordering::SeqCst);
    let seen_a = a_loop.await.unwrap();
    let seen_b = b_loop.await.unwrap();
    a.close().await.unwrap();
    b.close().await.unwrap();

    // Events: A was assigned all four, then revoked exactly the two that moved to B, then (follow-up
    // rebalance) assigned nothing new. B never revoked anything; its first partitions are the two A released.
    // (B may also be told of the first round, with nothing assigned: the moved partitions were still A's.)
    let ae = a_events.events();
    let be = b_events.events();
    let revokes_a: Vec<(Instant, BTreeSet<i32>)> = ae
        .iter()
        .filter_map(|(t, e)| match e {
            RebalanceEvent::Revoked(p) => Some((*t, parts(p))),
            _ => None,
        })
        .collect();
    assert!(
        !ae.iter().any(|(_, e)| matches!(e, RebalanceEvent::Lost(_))),
        "{ae:?}"
    );
    // The last revoke is A's close (its remaining two); before it, exactly one revoke during the rebalance.
    assert_eq!(revokes_a.len(), 2, "A's events: {ae:?}");
    let (t_revoked, moved) = revokes_a[0].clone();
    assert_eq!(moved, b_final, "A revoked exactly what B got: {ae:?} / {be:?}");
    assert_eq!(revokes_a[1].1, a_final, "close revokes the rest");
    let assigned_a: Vec<BTreeSet<i32>> = ae
        .iter()
        .filter_map(|(_, e)| match e {
            RebalanceEvent::Assigned(p) => Some(parts(p)),
            _ => None,
        })
        .collect();
    assert_eq!(assigned_a[0], BTreeSet::from([0, 1, 2, 3]), "{ae:?}");
    assert!(
        assigned_a[1..].iter().all(|s| s.is_empty()),
        "A gets nothing new: {ae:?}"
    );
    let b_revokes: Vec<_> = be
        .iter()
        .filter(|(_, e)| matches!(e, RebalanceEvent::Revoked(_)))
        .collect();
    assert_eq!(b_revokes.len(), 1, "B revokes only on close: {be:?}");
    let t_b_got = be
        .iter()
        .find_map(|(t, e)| match e {
            RebalanceEvent::Assigned(p) if !p.is_empty() => Some(*t),
            _ => None,
        })
        .expect("B was assigned partitions");
    assert!(t_revoked > joined_at && t_b_got > t_revoked);

    // The proof: between A's revocation (mid-rebalance) and B receiving the moved partitions (the end of
    // the follow-up rebalance), A delivered records of the partitions it kept, from polls that began after the
    // revocation and ended before B's assignment. And nothing of the moved partitions after revoking them.
    let during: Vec<&Delivery> = seen_a
        .iter()
        .filter(|d| d.poll_start > t_revoked && d.poll_end < t_b_got)
        .collect();
    assert!(
        during.iter().all(|d| a_final.contains(&d.partition)),
        "moved partition delivered after its revocation"
    );
    let polls_during: BTreeSet<Instant> = during.iter().map(|d| d.poll_start).collect();
    assert!(
        during.len() >= 4 && polls_during.len() >= 2,
        "A delivered {} records in {} polls during the rebalance ({:?} long)",
        during.len(),
        polls_during.len(),
        t_b_got - t_revoked
    );
    assert!(seen_a
        .iter()
        .filter(|d| d.poll_start > t_revoked)
        .all(|d| a_final.contains(&d.partition)));

    // Every record exactly once: A committed the moved partitions' delivered positions when revoking them.
    let mut count: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for d in seen_a.iter().chain(seen_b.iter()) {
        *count.entry((d.partition, d.offset)).or_default() += 1;
    }
    let dups: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    assert_eq!(
        count_seen(&seen_a, &seen_b),
        total,
        "lost records; produced {produced:?}"
    );
}
