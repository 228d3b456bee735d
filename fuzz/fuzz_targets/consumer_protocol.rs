//! The consumer protocol's payloads that group members exchange through JoinGroup and SyncGroup: the
//! subscription (`ConsumerProtocolSubscription`) and the assignment (`ConsumerProtocolAssignment`), written by
//! any other member of the group, decoded by weir-proto and by the group member's `Subscription` and
//! `Assignment` (weir's view of them).
//!
//! Input: `[mode]` then the payload. Mode 0: one subscription; 1: one assignment; beyond "no panic", whatever
//! decodes is encoded again (at the latest version, as weir writes it) and decodes to the same value. Mode 2:
//! the leader's side of a rebalance: up to four members' subscriptions (each `u16` length-prefixed), after
//! `[partitions per topic]`, decoded as the leader decodes them and handed to every assignor, whose plans must
//! give each existing partition of a subscribed topic to at most one member subscribed to it, and to exactly one
//! unless it changes owner under the cooperative protocol (held back for a round while its owner revokes it).
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir::group::{Assignment, AssignorKind, MemberSubscription, Subscription};
use weir_proto::consumer_protocol::{
    decode_consumer_assignment, decode_consumer_subscription, CONSUMER_PROTOCOL_MAX_VERSION,
};

fuzz_target!(|data: &[u8]| {
    let [mode, payload @ ..] = data else { return };
    match mode % 3 {
        0 => subscription(Bytes::copy_from_slice(payload)),
        1 => assignment(Bytes::copy_from_slice(payload)),
        _ => leader(payload),
    }
});

fn subscription(payload: Bytes) {
    let len = payload.len();
    let weirs = Subscription::decode(payload.clone());
    let Ok(mut sub) = decode_consumer_subscription(payload) else {
        assert!(weirs.is_err(), "weir's subscription decodes where weir-proto's does not");
        return;
    };
    assert!(sub.version >= 0);
    assert!(sub.topics.len() <= len / 2, "{} topics from {len} bytes", sub.topics.len());
    let owned: usize = sub.owned.iter().map(|(_, ps)| ps.len()).sum();
    assert!(owned <= len / 4);
    let again = decode_consumer_subscription(sub.encode()).expect("an encoded subscription decodes");
    assert_eq!(again.version, CONSUMER_PROTOCOL_MAX_VERSION);
    sub.version = CONSUMER_PROTOCOL_MAX_VERSION;
    assert_eq!(sub, again);

    let weirs = weirs.expect("weir's subscription decodes where weir-proto's does");
    assert_eq!(weirs.topics, sub.topics);
    assert_eq!(weirs.owned.values().map(Vec::len).sum::<usize>(), owned);
    assert_eq!(Subscription::decode(weirs.encode()).unwrap(), weirs);
}

fn assignment(payload: Bytes) {
    let len = payload.len();
    let weirs = Assignment::decode(payload.clone());
    let Ok(mut assignment) = decode_consumer_assignment(payload) else {
        assert!(weirs.is_err(), "weir's assignment decodes where weir-proto's does not");
        return;
    };
    let assigned: usize = assignment.partitions.iter().map(|(_, ps)| ps.len()).sum();
    assert!(assigned <= len / 4);
    let weirs = weirs.expect("weir's assignment decodes where weir-proto's does");
    assert_eq!(weirs.partitions.values().map(Vec::len).sum::<usize>(), assigned);
    assert_eq!(Assignment::decode(weirs.encode()).unwrap(), weirs);
    if len == 0 {
        // An empty payload is an empty assignment; weir would not write one back the same way.
        assert_eq!(assignment, Default::default());
        return;
    }
    let again = decode_consumer_assignment(assignment.encode()).expect("an encoded assignment decodes");
    assert_eq!(again.version, CONSUMER_PROTOCOL_MAX_VERSION);
    assignment.version = CONSUMER_PROTOCOL_MAX_VERSION;
    assert_eq!(assignment, again);
}

fn leader(input: &[u8]) {
    let [per_topic, rest @ ..] = input else { return };
    let mut rest: &[u8] = rest;
    let mut members = Vec::new();
    while members.len() < 4 && rest.len() >= 2 {
        let n = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let metadata = Bytes::copy_from_slice(&rest[2..2 + n]);
        rest = &rest[2 + n..];
        // As the leader does: a member whose metadata is unreadable is assigned nothing.
        let id = format!("member-{}", members.len());
        let mut m = MemberSubscription::new(&id, Vec::<String>::new());
        if let Ok(sub) = Subscription::decode(metadata) {
            m.generation = Some(sub.generation).filter(|&g| g >= 0);
            m.topics = sub.topics.into_iter().collect();
            m.owned = sub.owned;
        }
        members.push(m);
    }
    // Partition counts as metadata gives them: every subscribed topic exists with 1..=16 partitions, except
    // those whose name starts with "gone", which the cluster does not know.
    let counts: BTreeMap<String, i32> = members
        .iter()
        .flat_map(|m| m.topics.iter())
        .filter(|t| !t.starts_with("gone"))
        .map(|t| (t.clone(), i32::from(per_topic % 16) + 1))
        .collect();
    for kind in [AssignorKind::Range, AssignorKind::RoundRobin, AssignorKind::CooperativeSticky] {
        let plan = kind.assign(&members, &counts);
        let mut given: BTreeSet<(&str, i32)> = BTreeSet::new();
        for m in &members {
            let Some(mine) = plan.get(&m.member_id) else {
                panic!("{kind:?}: {} missing from the plan", m.member_id)
            };
            for (topic, ps) in mine {
                assert!(m.topics.contains(topic), "{kind:?}: {topic} given to a member not subscribed to it");
                for &p in ps {
                    assert!(
                        counts.get(topic).is_some_and(|&n| (0..n).contains(&p)),
                        "{kind:?}: {topic}-{p} does not exist"
                    );
                    assert!(given.insert((topic, p)), "{kind:?}: {topic}-{p} given twice");
                }
            }
        }
        assert_eq!(plan.len(), members.len(), "{kind:?}: the plan names only members");
        let subscribed: BTreeSet<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
        for topic in subscribed {
            let Some(&n) = counts.get(topic) else { continue };
            for p in 0..n {
                if given.contains(&(topic.as_str(), p)) {
                    continue;
                }
                // The cooperative protocol holds back a partition that changes owner for one round (its owner
                // revokes it first); the eager assignors give every partition.
                let claimed = members.iter().any(|m| m.owned.get(topic).is_some_and(|ps| ps.contains(&p)));
                assert!(
                    kind == AssignorKind::CooperativeSticky && claimed,
                    "{kind:?}: {topic}-{p} given to nobody"
                );
            }
        }
    }
}
