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
    /// `cooperative-sticky` (KIP-429): balanced, keeps partitions with their owners where possible, and uses the
    /// incremental cooperative rebalance protocol (only partitions that move are revoked).
    CooperativeSticky,
}

impl AssignorKind {
    /// The protocol name in JoinGroup.
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Range => "range",
            AssignorKind::RoundRobin => "roundrobin",
            AssignorKind::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// Whether the assignor supports the cooperative rebalance protocol.
    pub fn is_cooperative(self) -> bool {
        self == AssignorKind::CooperativeSticky
    }

    /// Parses a librdkafka name or a Java class name.
    pub fn parse(s: &str) -> Option<AssignorKind> {
        match s.trim() {
            "range" | "org.apache.kafka.clients.consumer.RangeAssignor" => Some(AssignorKind::Range),
            "roundrobin" | "org.apache.kafka.clients.consumer.RoundRobinAssignor" => {
                Some(AssignorKind::RoundRobin)
            }
            "cooperative-sticky" | "org.apache.kafka.clients.consumer.CooperativeStickyAssignor" => {
                Some(AssignorKind::CooperativeSticky)
            }
            _ => None,
        }
    }

    /// Runs this assignor.
    pub fn assign(self, members: &[MemberSubscription], partitions: &BTreeMap<String, i32>) -> AssignmentMap {
        match self {
            AssignorKind::Range => range(members, partitions),
            AssignorKind::RoundRobin => round_robin(members, partitions),
            AssignorKind::CooperativeSticky => cooperative_sticky(members, partitions),
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
    /// Partitions the member says it owns (cooperative protocol; empty for eager members).
    pub owned: BTreeMap<String, Vec<i32>>,
    /// The generation its owned partitions belong to, if it said (`None`: unknown).
    pub generation: Option<i32>,
}

impl MemberSubscription {
    /// A member subscribed to `topics` that owns nothing.
    pub fn new(member_id: &str, topics: impl IntoIterator<Item = impl Into<String>>) -> Self {
        MemberSubscription {
            member_id: member_id.to_owned(),
            instance_id: None,
            topics: topics.into_iter().map(Into::into).collect(),
            owned: BTreeMap::new(),
            generation: None,
        }
    }
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

type Tp = (String, i32);

/// The cooperative sticky assignor (the semantics of Java's `CooperativeStickyAssignor`, not its code):
///
/// 1. Owned partitions count only from members of the highest generation announced (members without a
///    generation count only if nobody announced one); a partition claimed by two such members is nobody's;
///    claims of partitions that do not exist or that the member no longer subscribes to are dropped.
/// 2. Every member keeps its valid owned partitions; unowned partitions go one by one to the subscribed member
///    with the fewest partitions; then, while some member has two more partitions than another member that could
///    take one of them, its highest partition moves. With equal subscriptions the result is balanced (sizes
///    differ by at most one) and moves the fewest partitions.
/// 3. Cooperative adjustment: a partition that moves from one member to another is left out of the new owner's
///    assignment in this round. Its old owner sees it gone, revokes it and rejoins; the follow-up rebalance hands
///    it to the new owner (now unowned, it goes to the least loaded member, which is where balance wants it).
///
/// Given the same input the result is deterministic, but not always the one the Java client computes for
/// unequal subscriptions (both are valid; the leader's result is what counts).
pub fn cooperative_sticky(
    members: &[MemberSubscription],
    partitions: &BTreeMap<String, i32>,
) -> AssignmentMap {
    let order = sorted(members);
    let exists = |t: &str, p: i32| partitions.get(t).is_some_and(|&n| p >= 0 && p < n);

    // 1. Valid owned partitions.
    let generation = |m: &MemberSubscription| m.generation.unwrap_or(-1);
    let max_gen = members.iter().map(generation).max().unwrap_or(-1);
    let mut claims: BTreeMap<Tp, Vec<usize>> = BTreeMap::new();
    for (i, m) in order.iter().enumerate() {
        if generation(m) != max_gen {
            continue;
        }
        for (t, ps) in &m.owned {
            if !m.topics.contains(t) {
                continue;
            }
            for &p in ps {
                if exists(t, p) {
                    let owners = claims.entry((t.clone(), p)).or_default();
                    if !owners.contains(&i) {
                        owners.push(i);
                    }
                }
            }
        }
    }
    let mut current: Vec<BTreeSet<Tp>> = vec![BTreeSet::new(); order.len()];
    for (tp, owners) in &claims {
        if let [only] = owners[..] {
            current[only].insert(tp.clone());
        }
    }

    // 2. Unowned partitions to the least loaded subscriber, then balance.
    let topics: BTreeSet<&String> = members.iter().flat_map(|m| m.topics.iter()).collect();
    for topic in topics {
        let Some(&n) = partitions.get(topic) else { continue };
        for p in 0..n {
            let tp = (topic.clone(), p);
            if current.iter().any(|c| c.contains(&tp)) {
                continue;
            }
            let target = (0..order.len())
                .filter(|&i| order[i].topics.contains(topic))
                .min_by_key(|&i| (current[i].len(), i));
            if let Some(i) = target {
                current[i].insert(tp);
            }
        }
    }
    // Each move lowers the sum of squared sizes, so this ends.
    loop {
        let mut moved = false;
        let mut by_size: Vec<usize> = (0..order.len()).collect();
        by_size.sort_by_key(|&i| (std::cmp::Reverse(current[i].len()), i));
        'donors: for &from in &by_size {
            for tp in current[from].iter().rev() {
                let to = (0..order.len())
                    .filter(|&j| j != from && order[j].topics.contains(&tp.0))
                    .min_by_key(|&j| (current[j].len(), j));
                if let Some(to) = to {
                    if current[to].len() + 1 < current[from].len() {
                        let tp = tp.clone();
                        current[from].remove(&tp);
                        current[to].insert(tp);
                        moved = true;
                        break 'donors;
                    }
                }
            }
        }
        if !moved {
            break;
        }
    }

    // 3. Partitions changing hands wait for their owner to revoke them.
    let mut revoked: BTreeSet<Tp> = BTreeSet::new();
    for (i, m) in order.iter().enumerate() {
        for (t, ps) in &m.owned {
            for &p in ps {
                if !current[i].contains(&(t.clone(), p)) {
                    revoked.insert((t.clone(), p));
                }
            }
        }
    }
    let mut out = empty(members);
    for (i, m) in order.iter().enumerate() {
        let owns = |tp: &Tp| m.owned.get(&tp.0).is_some_and(|ps| ps.contains(&tp.1));
        let entry = out.get_mut(&m.member_id).expect("every member has an entry");
        for tp in &current[i] {
            if !owns(tp) && revoked.contains(tp) {
                continue;
            }
            entry.entry(tp.0.clone()).or_default().push(tp.1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: &str, topics: &[&str]) -> MemberSubscription {
        MemberSubscription::new(id, topics.iter().copied())
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
                for kind in [
                    AssignorKind::Range,
                    AssignorKind::RoundRobin,
                    AssignorKind::CooperativeSticky,
                ] {
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
                    if kind != AssignorKind::Range {
                        assert!(hi - lo <= 1, "{sizes:?}");
                    }
                }
            }
        }
    }

    fn owning(id: &str, topics: &[&str], generation: i32, owned: &[(&str, i32)]) -> MemberSubscription {
        let mut s = m(id, topics);
        s.generation = Some(generation);
        for (t, p) in owned {
            s.owned.entry(t.to_string()).or_default().push(*p);
        }
        s
    }

    /// Every partition of `parts` at most once over all members; returns the number assigned.
    fn at_most_once(a: &AssignmentMap, parts: &BTreeMap<String, i32>) -> usize {
        let mut seen = BTreeSet::new();
        for (member, topics) in a {
            for (t, ps) in topics {
                for p in ps {
                    assert!(*p >= 0 && *p < parts[t], "{member}: {t}-{p} does not exist");
                    assert!(seen.insert((t.clone(), *p)), "{t}-{p} assigned twice: {a:?}");
                }
            }
        }
        seen.len()
    }

    #[test]
    fn sticky_new_member_takes_half_and_only_moved_partitions_wait() {
        let parts = counts(&[("t", 4)]);
        // A owns everything (generation 5); B joins owning nothing.
        let a_all = owning("A", &["t"], 5, &[("t", 0), ("t", 1), ("t", 2), ("t", 3)]);
        let b_new = owning("B", &["t"], -1, &[]);
        let first = cooperative_sticky(&[a_all, b_new], &parts);
        // A keeps two (the lowest), the two that move are in nobody's assignment yet: A revokes them first.
        assert_eq!(of(&first, "A"), tps(&[("t", 0), ("t", 1)]));
        assert!(first["B"].is_empty(), "{first:?}");
        // Follow-up rebalance (generation 6): A owns its two, B nothing: B gets the released two.
        let a = owning("A", &["t"], 6, &[("t", 0), ("t", 1)]);
        let b = owning("B", &["t"], 6, &[]);
        let second = cooperative_sticky(&[a, b], &parts);
        assert_eq!(of(&second, "A"), tps(&[("t", 0), ("t", 1)]));
        assert_eq!(of(&second, "B"), tps(&[("t", 2), ("t", 3)]));
        // Stable: the same input again moves nothing.
        let a = owning("A", &["t"], 7, &[("t", 0), ("t", 1)]);
        let b = owning("B", &["t"], 7, &[("t", 2), ("t", 3)]);
        assert_eq!(cooperative_sticky(&[a, b], &parts), second);
    }

    #[test]
    fn sticky_member_leaving_hands_over_without_moving_others() {
        let parts = counts(&[("t", 6)]);
        let a = owning("A", &["t"], 3, &[("t", 0), ("t", 1)]);
        let c = owning("C", &["t"], 3, &[("t", 4), ("t", 5)]);
        // B (owning 2, 3) left: its partitions are unowned and go straight to A and C; nothing else moves.
        let got = cooperative_sticky(&[a, c], &parts);
        assert_eq!(of(&got, "A"), tps(&[("t", 0), ("t", 1), ("t", 2)]));
        assert_eq!(of(&got, "C"), tps(&[("t", 3), ("t", 4), ("t", 5)]));
    }

    #[test]
    fn sticky_ignores_stale_and_conflicting_claims() {
        let parts = counts(&[("t", 4)]);
        // A is of an older generation: its claim of 0..4 is not trusted. B and C both claim 2: nobody's.
        let a = owning("A", &["t"], 2, &[("t", 0), ("t", 1), ("t", 2), ("t", 3)]);
        let b = owning("B", &["t"], 3, &[("t", 0), ("t", 2)]);
        let c = owning("C", &["t"], 3, &[("t", 2), ("t", 9)]);
        let got = cooperative_sticky(&[a, b, c], &parts);
        assert!(of(&got, "B").contains(&("t".to_string(), 0)), "{got:?}");
        // A lists every partition as owned, so whatever it does not keep counts as revoked by it; partitions it
        // is newly given are not held back (they are in its own claimed list).
        assert!(at_most_once(&got, &parts) <= 4);
        // Unsubscribed topics' claims are dropped.
        let d = owning("D", &["u"], 1, &[("t", 0)]);
        let e = owning("E", &["t"], 1, &[("t", 1)]);
        let got = cooperative_sticky(&[d, e], &counts(&[("t", 2), ("u", 1)]));
        assert_eq!(
            of(&got, "E"),
            tps(&[("t", 1)]),
            "t-0 moves from D to E: held back this round"
        );
        assert_eq!(of(&got, "D"), tps(&[("u", 0)]));
    }

    #[test]
    fn sticky_is_balanced_sticky_and_complete_under_churn() {
        // Simulate rebalances: members come and go; after each two-phase rebalance every partition is assigned
        // once, sizes differ by at most one, and a partition only moved if balance needed it.
        let parts = counts(&[("a", 7), ("b", 5)]);
        let total = 12;
        let mut owned: BTreeMap<String, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        let mut generation = 1;
        let schedule: [&[&str]; 6] = [
            &["m1"],
            &["m1", "m2"],
            &["m1", "m2", "m3"],
            &["m2", "m3"],
            &["m2", "m3", "m4", "m5"],
            &["m5"],
        ];
        for present in schedule {
            // Phase 1 and the follow-up rebalance.
            for _phase in 0..2 {
                let members: Vec<MemberSubscription> = present
                    .iter()
                    .map(|id| {
                        let mut s = m(id, &["a", "b"]);
                        s.generation = Some(generation);
                        s.owned = owned.get(*id).cloned().unwrap_or_default();
                        s
                    })
                    .collect();
                let got = cooperative_sticky(&members, &parts);
                at_most_once(&got, &parts);
                // Nothing a member owned and kept was taken away from it by someone else.
                for mm in &members {
                    for (t, ps) in &got[&mm.member_id] {
                        for p in ps {
                            for other in &members {
                                if other.member_id != mm.member_id {
                                    assert!(
                                        !other.owned.get(t).is_some_and(|o| o.contains(p)),
                                        "{t}-{p} given to {} while {} still owns it",
                                        mm.member_id,
                                        other.member_id
                                    );
                                }
                            }
                        }
                    }
                }
                owned = got.clone();
                generation += 1;
            }
            let sizes: Vec<usize> = owned.values().map(|t| t.values().map(Vec::len).sum()).collect();
            assert_eq!(sizes.iter().sum::<usize>(), total, "{present:?}: {owned:?}");
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(hi - lo <= 1, "{present:?}: {sizes:?}");
            owned.retain(|id, _| present.contains(&id.as_str()));
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
        assert_eq!(
            AssignorKind::parse("cooperative-sticky"),
            Some(AssignorKind::CooperativeSticky)
        );
        assert!(AssignorKind::CooperativeSticky.is_cooperative());
        assert!(!AssignorKind::Range.is_cooperative());
        assert_eq!(AssignorKind::RoundRobin.name(), "roundrobin");
    }
}
