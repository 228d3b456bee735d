//! New-leader hints (KIP-951) applied to the metadata snapshot: a broker that answers NOT_LEADER_OR_FOLLOWER
//! names the leader it knows of (Produce v10+, Fetch v16+) with that broker's endpoint, and the partition moves
//! there without a metadata round trip.

use std::sync::Arc;

use weir_proto::leader_hint::{CurrentLeader, NodeEndpoint};

use super::{Cluster, MetadataSnapshot};

/// A partition's leader as a broker named it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeaderHint<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) leader: CurrentLeader,
}

impl Cluster {
    /// Moves each hinted partition to the leader its hint names, if the hint's leader epoch is newer than the
    /// snapshot's and the leader's address is known (from `endpoints`, which are learnt, or from the snapshot).
    /// Returns how many of `hints` moved their partition (or found it there already, at that epoch or newer).
    pub(crate) fn apply_leader_hints(&self, hints: &[LeaderHint], endpoints: &[NodeEndpoint]) -> usize {
        if hints.is_empty() {
            return 0;
        }
        let mut applied = 0;
        self.snapshot.rcu(|snap| {
            let (next, n) = with_hints(snap, hints, endpoints);
            applied = n;
            next
        });
        applied
    }
}

/// `snap` with `hints` and `endpoints` applied (see [`Cluster::apply_leader_hints`]), and how many hints hold.
fn with_hints(
    snap: &MetadataSnapshot,
    hints: &[LeaderHint],
    endpoints: &[NodeEndpoint],
) -> (MetadataSnapshot, usize) {
    let mut next = snap.clone();
    for e in endpoints {
        next.brokers.insert(e.node_id, format!("{}:{}", e.host, e.port));
    }
    let mut applied = 0;
    for h in hints {
        let Some(topic) = next.topics.get_mut(h.topic) else {
            continue;
        };
        let Some(known) = topic.partition(h.partition) else {
            continue;
        };
        if known.leader_epoch >= h.leader.leader_epoch {
            // The snapshot is as new (a hint applied already) or newer: it holds if it names a leader.
            let holds = known.leader >= 0
                && (known.leader_epoch > h.leader.leader_epoch || known.leader == h.leader.leader_id);
            applied += usize::from(holds);
            continue;
        }
        if !next.brokers.contains_key(&h.leader.leader_id) {
            continue;
        }
        let p = &mut Arc::make_mut(topic).partitions[h.partition as usize];
        p.leader = h.leader.leader_id;
        p.leader_epoch = h.leader.leader_epoch;
        p.error = None;
        applied += 1;
    }
    (next, applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{PartitionMetadata, TopicMetadata};

    fn snapshot() -> MetadataSnapshot {
        let mut s = MetadataSnapshot::default();
        s.brokers.insert(1, "a:1".into());
        s.brokers.insert(2, "b:2".into());
        let partitions = (0..2)
            .map(|id| PartitionMetadata {
                id,
                leader: 1,
                leader_epoch: 5,
                error: None,
            })
            .collect();
        s.topics.insert(
            "t".into(),
            Arc::new(TopicMetadata {
                name: "t".into(),
                topic_id: [0; 16],
                partitions,
                internal: false,
            }),
        );
        s
    }

    fn hint(partition: i32, leader_id: i32, leader_epoch: i32) -> LeaderHint<'static> {
        LeaderHint {
            topic: "t",
            partition,
            leader: CurrentLeader {
                leader_id,
                leader_epoch,
            },
        }
    }

    #[test]
    fn a_newer_epoch_moves_the_partition() {
        let (next, n) = with_hints(&snapshot(), &[hint(1, 2, 6)], &[]);
        assert_eq!(n, 1);
        let p = next.topic("t").unwrap().partition(1).cloned().unwrap();
        assert_eq!((p.leader, p.leader_epoch), (2, 6));
        assert_eq!(next.topic("t").unwrap().leader(0), Some(1), "the others stay");
    }

    #[test]
    fn an_older_or_equal_epoch_changes_nothing() {
        let before = snapshot();
        let (next, n) = with_hints(&before, &[hint(0, 2, 4), hint(1, 2, 5)], &[]);
        assert_eq!(
            n, 1,
            "an older hint holds (the snapshot is newer); an equal one for another broker does not"
        );
        assert_eq!(next.topic("t").unwrap().leader(0), Some(1));
        assert_eq!(next.topic("t").unwrap().leader(1), Some(1));
    }

    #[test]
    fn an_unknown_broker_needs_its_endpoint() {
        let (next, n) = with_hints(&snapshot(), &[hint(0, 3, 6)], &[]);
        assert_eq!(n, 0);
        assert_eq!(next.topic("t").unwrap().leader(0), Some(1));
        let endpoint = NodeEndpoint {
            node_id: 3,
            host: "c".into(),
            port: 3,
        };
        let (next, n) = with_hints(&snapshot(), &[hint(0, 3, 6)], &[endpoint]);
        assert_eq!(n, 1);
        assert_eq!(next.topic("t").unwrap().leader(0), Some(3));
        assert_eq!(next.brokers.get(&3).map(String::as_str), Some("c:3"));
    }

    #[test]
    fn unknown_topics_and_partitions_are_ignored() {
        let mut h = hint(0, 2, 6);
        h.topic = "other";
        let (_, n) = with_hints(&snapshot(), &[h, hint(7, 2, 6)], &[]);
        assert_eq!(n, 0);
    }
}
