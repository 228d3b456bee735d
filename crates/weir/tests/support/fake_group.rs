//! Helpers for group tests against the fake broker: a member with short timers, records with checkable
//! values, polling until records arrive, and rebalance events.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use weir::consumer::{ConsumerRecord, TopicPartition};
use weir::group::{ChannelListener, GroupConfig, GroupConsumer, RebalanceEvent};

use crate::fake_broker::{FakeBroker, Recorded};

/// The topic every member subscribes to.
pub const TOPIC: &str = "gf";

/// Settings of a member of group `g` bootstrapped from `fake`, with short timers, plus `extra`.
pub fn member_config(fake: &FakeBroker, extra: &[(&str, &str)]) -> GroupConfig {
    let mut cfg = GroupConfig::new(&fake.bootstrap(), "g");
    for (k, v) in [
        ("auto.offset.reset", "earliest"),
        ("heartbeat.interval.ms", "50"),
        ("session.timeout.ms", "10000"),
        ("auto.commit.interval.ms", "100"),
        ("fetch.wait.max.ms", "10"),
        ("reconnect.backoff.ms", "10"),
        ("retry.backoff.ms", "10"),
    ]
    .iter()
    .chain(extra)
    {
        cfg.set(k, v).unwrap();
    }
    cfg
}

/// A member (see [`member_config`]) subscribed to [`TOPIC`]; its rebalance events go to the receiver.
pub fn member(
    fake: &FakeBroker,
    extra: &[(&str, &str)],
) -> (GroupConsumer, UnboundedReceiver<RebalanceEvent>) {
    let group = GroupConsumer::new(member_config(fake, extra)).unwrap();
    let (tx, rx) = unbounded_channel();
    group.set_listener(Arc::new(ChannelListener(tx)));
    group.subscribe(&[TOPIC]);
    (group, rx)
}

pub fn tp(p: i32) -> TopicPartition {
    TopicPartition::new(TOPIC, p)
}

/// Appends `n` records to partition `p` (values `p{p}-r{offset}`).
pub fn fill(fake: &FakeBroker, p: i32, n: i64) {
    let end = fake.log_end(TOPIC, p);
    let values: Vec<String> = (end..end + n).map(|o| format!("p{p}-r{o}")).collect();
    fake.append(TOPIC, p, &values);
}

/// How many times each `(partition, offset)` was delivered.
pub type Seen = BTreeMap<(i32, i64), u32>;

/// Polls until every offset below `end` of each partition of `parts` was delivered; no error may reach poll.
pub async fn consume(group: &GroupConsumer, seen: &mut Seen, parts: &[i32], end: i64) {
    poll_until(group, seen, |seen| {
        parts
            .iter()
            .all(|&p| (0..end).all(|o| seen.contains_key(&(p, o))))
    })
    .await
}

/// Polls until `done`; no error may reach poll.
pub async fn poll_until(group: &GroupConsumer, seen: &mut Seen, mut done: impl FnMut(&Seen) -> bool) {
    while !done(seen) {
        let records = group
            .poll(100, Duration::from_millis(50))
            .await
            .unwrap_or_else(|e| panic!("an error reached poll: {e}"));
        for r in records {
            assert_eq!(&*r.topic, TOPIC);
            let value = format!("p{}-r{}", r.partition, r.offset);
            assert_eq!(r.value.as_deref(), Some(value.as_bytes()));
            *seen.entry((r.partition, r.offset)).or_default() += 1;
        }
    }
}

pub fn events(rx: &mut UnboundedReceiver<RebalanceEvent>) -> Vec<RebalanceEvent> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

/// Whether a commit of `offset` was received for every partition of `parts`.
pub fn committed_in(r: &Recorded, parts: &[i32], offset: i64) -> bool {
    let commits: Vec<(String, i32, i64)> = r
        .of(ApiKey::OffsetCommit)
        .flat_map(|q| q.commit_offsets())
        .collect();
    parts.iter().all(|&p| {
        commits
            .iter()
            .any(|(t, q, o)| t == TOPIC && *q == p && *o == offset)
    })
}

/// The coordinator's APIs a member uses while in the group (LeaveGroup aside).
pub fn is_group_api(k: ApiKey) -> bool {
    matches!(
        k,
        ApiKey::FindCoordinator
            | ApiKey::JoinGroup
            | ApiKey::SyncGroup
            | ApiKey::Heartbeat
            | ApiKey::OffsetCommit
            | ApiKey::OffsetFetch
    )
}

/// Polls (no error may reach poll) until a rebalance event arrives; returns it.
pub async fn next_event(group: &GroupConsumer, rx: &mut UnboundedReceiver<RebalanceEvent>) -> RebalanceEvent {
    loop {
        group.poll(10, Duration::from_millis(50)).await.unwrap();
        if let Ok(e) = rx.try_recv() {
            return e;
        }
    }
}

/// One poll (no error may reach it) whose records must all satisfy `ok`; `why` names what would be wrong.
pub async fn poll_only(group: &GroupConsumer, ok: impl Fn(&ConsumerRecord) -> bool, why: &str) {
    let records = group.poll(10, Duration::from_millis(20)).await.unwrap();
    assert!(records.iter().all(ok), "{why}");
}
