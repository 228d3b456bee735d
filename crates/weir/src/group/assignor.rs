//! Client-side partition assignors of the classic "consumer" protocol, with the Java client's results.
//!
//! Members are ordered as the Java client's `MemberInfo` orders them: static members (with a
//! `group.instance.id`) first, by instance id; then dynamic members by member id. Given the same members and
//! partition counts, weir, the Java client and librdkafka compute the same assignment, so any of them can lead.

use std::collections::{BTreeMap, BTreeSet};

/// The name of an assignor on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignorKind {
    /// `range`: per topic, contiguous ranges of partitions to the members subscribed to it.
    Range,
    /// `roundrobin`: all partitions of all topics dealt one by one to the members subscribed.
    RoundRobin,
}

impl AssignorKind {
    /// The protocol name in JoinGroup.
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Range => "range",
            AssignorKind::RoundRobin => "roundrobin",
        }
    }

    /// Parses a librdkafka name or a Java class name.
    pub fn parse(s: &str) -> Option<AssignorKind> {
        match s.trim() {
            "range" | "org.apache.kafka.clients.consumer.RangeAssignor" => Some(AssignorKind::Range),
            "roundrobin" | "org.apache.kafka.clients.consumer.RoundRobinAssignor" => {
                Some(AssignorKind::RoundRobin)
            }
            _ => None,
        }
    }

    /// Runs this assignor.
    pub fn assign(self, members: &[MemberSubscription], partitions: &BTreeMap<String, i32>) -> AssignmentMap {
        match self {
            AssignorKind::Range => range(members, partitions),
            AssignorKind::RoundRobin => round_robin(members, partitions),
        }
    }
}

/// What the leader knows of a member when assigning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its `group.instance.id`, for static members.
    pub instance_id: Option<String>,
    /// Subscribed topics.
    pub topics: BTreeSet<String>,
}

/// Member id → topic → partitions (ascending). Every member appears, possibly with nothing.
pub type AssignmentMap = BTreeMap<String, BTreeMap<String, Vec<i32>>>;

/// The Java `MemberInfo` order.
fn sorted(members: &[MemberSubscription]) -> Vec<&MemberSubscription> {
    let mut v: Vec<&MemberSubscription> = members.iter().collect();
    v.sort_by(|a, b| match (&a.instance_id, &b.instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.member_id.cmp(&b.member_id),
    });
    v
}

fn empty(members: &[MemberSubscription]) -> AssignmentMap {
    members
        .iter()
        .map(|m| (m.member_id.clone(), BTreeMap::new()))
        .collect()
}

/// Java's `RangeAssignor` (without rack awareness): for each topic, its `n` partitions split among the `c`
/// members subscribed to it in order; the first `n % c` members get one extra.
pub fn range(members: &[MemberSubscription], partitions: &BTreeMap<String, i32>) -> AssignmentMap {
    let mut out = empty(members);
    let order = sorted(members);
    let topics: BTreeSet<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
    for topic in topics {
        let Some(&n) = partitions.get(topic) else { continue };
        let consumers: Vec<&&MemberSubscription> =
            order.iter().filter(|m| m.topics.contains(topic)).collect();
        let c = consumers.len() as i32;
        let (per, extra) = (n / c, n % c);
        for (i, m) in consumers.iter().enumerate() {
            let i = i as i32;
            let start = per * i + i.min(extra);
            let len = per + i32::from(i < extra);
            if len > 0 {
                out.get_mut(&m.member_id)
                    .expect("every member has an entry")
                    .insert(topic.clone(), (start..start + len).collect());
            }
        }
    }
    out
}

/// Java's `RoundRobinAssignor`: all partitions (topics by name, partitions ascending) dealt in turn to the
/// members in order, skipping members not subscribed to the partition's topic.
pub fn round_robin(members: &[MemberSubscription], partitions: &BTreeMap<String, i32>) -> AssignmentMap {
    let mut out = empty(members);
    let order = sorted(members);
    if order.is_empty() {
        return out;
    }
    let topics: BTreeSet<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
    let mut next = 0usize;
    for topic in topics {
        let Some(&n) = partitions.get(topic) else { continue };
        for p in 0..n {
            // Some member is subscribed to every topic in `topics`, so this ends.
            while !order[next % order.len()].topics.contains(topic) {
                next += 1;
            }
            let m = order[next % order.len()];
            next += 1;
            out.get_mut(&m.member_id)
                .expect("every member has an entry")
                .entry(topic.clone())
                .or_default()
                .push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, topics: &[&str]) -> MemberSubscription {
        MemberSubscription {
            member_id: id.into(),
            instance_id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn counts(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    fn of(a: &AssignmentMap, member: &str) -> Vec<(String, i32)> {
        a[member]
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
            .collect()
    }

    fn tps(list: &[(&str, i32)]) -> Vec<(String, i32)> {
        list.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn range_matches_java_examples() {
        // The RangeAssignor javadoc: two consumers, two topics of three partitions.
        let members = [m("C0", &["t0", "t1"]), m("C1", &["t0", "t1"])];
        let a = range(&members, &counts(&[("t0", 3), ("t1", 3)]));
        assert_eq!(of(&a, "C0"), tps(&[("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)]));
        assert_eq!(of(&a, "C1"), tps(&[("t0", 2), ("t1", 2)]));
        // More members than partitions: the last get nothing.
        let members = [m("a", &["t"]), m("b", &["t"]), m("c", &["t"])];
        let a = range(&members, &counts(&[("t", 2)]));
        assert_eq!(of(&a, "a"), tps(&[("t", 0)]));
        assert_eq!(of(&a, "b"), tps(&[("t", 1)]));
        assert!(a["c"].is_empty());
        // 4 partitions, 2 members (the integration tests' layout).
        let a = range(&[m("y", &["t"]), m("x", &["t"])], &counts(&[("t", 4)]));
        assert_eq!(of(&a, "x"), tps(&[("t", 0), ("t", 1)]));
        assert_eq!(of(&a, "y"), tps(&[("t", 2), ("t", 3)]));
    }

    #[test]
    fn range_per_topic_subscribers_and_unknown_topics() {
        let members = [m("a", &["t1", "t2"]), m("b", &["t2"]), m("c", &["gone"])];
        let a = range(&members, &counts(&[("t1", 2), ("t2", 3)]));
        assert_eq!(of(&a, "a"), tps(&[("t1", 0), ("t1", 1), ("t2", 0), ("t2", 1)]));
        assert_eq!(of(&a, "b"), tps(&[("t2", 2)]));
        assert!(a["c"].is_empty());
    }

    #[test]
    fn static_members_sort_first_by_instance_id() {
        let mut s1 = m("zzz", &["t"]);
        s1.instance_id = Some("b".into());
        let mut s2 = m("yyy", &["t"]);
        s2.instance_id = Some("a".into());
        let members = [m("aaa", &["t"]), s1, s2];
        let a = range(&members, &counts(&[("t", 3)]));
        assert_eq!(of(&a, "yyy"), tps(&[("t", 0)]));
        assert_eq!(of(&a, "zzz"), tps(&[("t", 1)]));
        assert_eq!(of(&a, "aaa"), tps(&[("t", 2)]));
    }

    #[test]
    fn round_robin_matches_java_examples() {
        // The RoundRobinAssignor javadoc, example 1: C0 [t0p0, t0p2, t1p1], C1 [t0p1, t1p0, t1p2].
        let members = [m("C0", &["t0", "t1"]), m("C1", &["t0", "t1"])];
        let a = round_robin(&members, &counts(&[("t0", 3), ("t1", 3)]));
        assert_eq!(of(&a, "C0"), tps(&[("t0", 0), ("t0", 2), ("t1", 1)]));
        assert_eq!(of(&a, "C1"), tps(&[("t0", 1), ("t1", 0), ("t1", 2)]));
        // Example 2: C0 [t0], C1 [t0, t1], C2 [t0, t1, t2]; t0 1 partition, t1 2, t2 3.
        // Result: C0 [t0p0], C1 [t1p0], C2 [t1p1, t2p0, t2p1, t2p2].
        let members = [
            m("C0", &["t0"]),
            m("C1", &["t0", "t1"]),
            m("C2", &["t0", "t1", "t2"]),
        ];
        let a = round_robin(&members, &counts(&[("t0", 1), ("t1", 2), ("t2", 3)]));
        assert_eq!(of(&a, "C0"), tps(&[("t0", 0)]));
        assert_eq!(of(&a, "C1"), tps(&[("t1", 0)]));
        assert_eq!(of(&a, "C2"), tps(&[("t1", 1), ("t2", 0), ("t2", 1), ("t2", 2)]));
    }

    #[test]
    fn every_partition_exactly_once() {
        for n_members in 1..6 {
            for n_parts in 0..13 {
                let members: Vec<_> = (0..n_members).map(|i| m(&format!("m{i}"), &["t", "u"])).collect();
                let parts = counts(&[("t", n_parts), ("u", n_parts / 2 + 1)]);
                for kind in [AssignorKind::Range, AssignorKind::RoundRobin] {
                    let a = kind.assign(&members, &parts);
                    let mut all: Vec<(String, i32)> =
                        members.iter().flat_map(|mm| of(&a, &mm.member_id)).collect();
                    all.sort();
                    let mut want: Vec<(String, i32)> = parts
                        .iter()
                        .flat_map(|(t, n)| (0..*n).map(move |p| (t.clone(), p)))
                        .collect();
                    want.sort();
                    assert_eq!(all, want, "{kind:?} {n_members} members {n_parts} partitions");
                    let sizes: Vec<usize> = members.iter().map(|mm| of(&a, &mm.member_id).len()).collect();
                    let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                    if kind == AssignorKind::RoundRobin {
                        assert!(hi - lo <= 1, "{sizes:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn names() {
        assert_eq!(AssignorKind::parse("range"), Some(AssignorKind::Range));
        assert_eq!(
            AssignorKind::parse("org.apache.kafka.clients.consumer.RoundRobinAssignor"),
            Some(AssignorKind::RoundRobin)
        );
        assert_eq!(AssignorKind::parse("sticky"), None);
        assert_eq!(AssignorKind::RoundRobin.name(), "roundrobin");
    }
}
