//! What an operator does to a running cluster, for failover tests: a graceful stop (SIGTERM, as a service
//! manager sends), finding the active KRaft controller, moving partitions to other brokers, and waiting until
//! every replica is back in sync. Every wait is bounded and panics with what it last saw.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{Kafka, REQUEST_TIMEOUT};
use crate::wire;

/// How long a node may take to shut down after SIGTERM (a controlled shutdown moves its leaderships first).
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long replicas may take to be in sync again (after a restart, or a reassignment's catch-up).
const SYNC_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the quorum may take to elect a controller.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Where one partition of a topic lives, as a node's Metadata reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionPlacement {
    /// The partition.
    pub partition: i32,
    /// Its leader, -1 if it has none.
    pub leader: i32,
    /// The leader's epoch.
    pub leader_epoch: i32,
    /// Its replicas, the preferred leader first.
    pub replicas: Vec<i32>,
    /// Its in-sync replicas.
    pub isr: Vec<i32>,
}

impl PartitionPlacement {
    /// Whether the partition has a leader among its replicas and every replica is in sync.
    pub fn in_sync(&self) -> bool {
        let set = |v: &[i32]| v.iter().copied().collect::<BTreeSet<i32>>();
        self.leader >= 0 && self.replicas.contains(&self.leader) && set(&self.replicas) == set(&self.isr)
    }
}

impl Kafka {
    /// Stops node `id` the way an operator does: SIGTERM, so that it shuts down cleanly (hands its leaderships
    /// over, closes its logs), and waits until its process has exited. Panics, with its log tail, if it does
    /// not exit within a minute (it is then killed).
    pub fn stop(&mut self, id: i32) {
        let i = self.index(id);
        let Some(mut s) = self.nodes[i].server.take() else {
            return;
        };
        let result = s.terminate(STOP_TIMEOUT);
        // Like a killed node's, its watchdog is kept so that the storage stays for a restart.
        self.nodes[i].retired.push(s);
        if let Err(e) = result {
            panic!(
                "weir-testkit: node {id} {e}; read {}; its last lines:\n{}",
                self.log_path(id).display(),
                self.log_tail(id, 30)
            );
        }
    }

    fn live_ids(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|n| n.server.is_some())
            .map(|n| n.id)
            .collect()
    }

    /// Where each partition of `topic` lives, by partition, as the first live node that knows the topic
    /// reports it (`None` if none does).
    pub fn placement(&self, topic: &str) -> Option<Vec<PartitionPlacement>> {
        self.live_ports()
            .into_iter()
            .find_map(|port| placement_on(port, topic).ok().flatten())
    }

    /// Waits until every live node reports every partition of `topic` with a leader and all its replicas in
    /// sync ([`PartitionPlacement::in_sync`]): after a restart, the node has caught up and is back in the ISR
    /// of each partition it holds. Returns the placement. Panics after a bounded wait.
    pub fn wait_in_sync(&self, topic: &str) -> Vec<PartitionPlacement> {
        self.wait_placement(topic, "every replica in sync", |p| p.in_sync())
    }

    /// Waits until every live node reports partition `partition` of `topic` with exactly the in-sync replicas
    /// `isr` (in any order): after a replica died, the ISR has shrunk to the others. Returns the placement.
    /// Panics after a bounded wait.
    pub fn wait_isr(&self, topic: &str, partition: i32, isr: &[i32]) -> Vec<PartitionPlacement> {
        let want: BTreeSet<i32> = isr.iter().copied().collect();
        self.wait_placement(topic, &format!("partition {partition} in sync on {isr:?}"), |p| {
            p.partition != partition || p.isr.iter().copied().collect::<BTreeSet<i32>>() == want
        })
    }

    /// Moves partitions of `topic` to other brokers (AlterPartitionReassignments): each `(partition,
    /// replicas)`, the first replica the preferred leader. Returns once every live node reports each moved
    /// partition on exactly its new replicas, in that order, all in sync, with a leader among them (the
    /// reassignment has completed). Panics if the controller refuses or after a bounded wait.
    pub fn reassign(&self, topic: &str, moves: &[(i32, Vec<i32>)]) -> Vec<PartitionPlacement> {
        let port = *self.live_ports().first().expect("weir-testkit: no live node");
        wire::reassign::alter(port, topic, moves, REQUEST_TIMEOUT)
            .unwrap_or_else(|e| panic!("weir-testkit: reassigning {topic} {moves:?} failed: {e}"));
        self.wait_placement(topic, &format!("moved to {moves:?}"), |p| {
            p.in_sync()
                && moves
                    .iter()
                    .all(|(partition, replicas)| p.partition != *partition || p.replicas == *replicas)
        })
    }

    fn wait_placement(
        &self,
        topic: &str,
        what: &str,
        done: impl Fn(&PartitionPlacement) -> bool,
    ) -> Vec<PartitionPlacement> {
        let deadline = Instant::now() + SYNC_TIMEOUT;
        loop {
            let mut last = None;
            let mut all = true;
            for port in self.live_ports() {
                let seen = placement_on(port, topic);
                all &= matches!(&seen, Ok(Some(ps)) if ps.iter().all(&done));
                last = Some(seen);
            }
            if all {
                if let Some(Ok(Some(ps))) = last {
                    return ps;
                }
            }
            assert!(
                Instant::now() < deadline,
                "weir-testkit: {topic} not {what} on every live node after {SYNC_TIMEOUT:?}; last seen: {last:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The active controller: the leader of the KRaft metadata quorum (DescribeQuorum), once a live node
    /// reports being it. Bounded wait.
    pub fn active_controller(&self) -> i32 {
        self.active_controller_where(|_| true)
    }

    /// The active controller once it is a node other than `old` (after `old` was stopped or killed: the one
    /// the quorum elected). Bounded wait.
    pub fn active_controller_other_than(&self, old: i32) -> i32 {
        self.active_controller_where(|id| id != old)
    }

    fn active_controller_where(&self, accept: impl Fn(i32) -> bool) -> i32 {
        let deadline = Instant::now() + ELECTION_TIMEOUT;
        let mut last = Vec::new();
        loop {
            last.clear();
            for id in self.live_ids() {
                let port = self.nodes[self.index(id)].controller_port;
                let answer = wire::quorum::leader(port, REQUEST_TIMEOUT);
                // A node names itself the leader only while it is; trust that answer, not a follower's memory.
                if let Ok(Some((leader, _epoch))) = answer {
                    if leader == id && accept(id) {
                        return id;
                    }
                }
                last.push((id, answer));
            }
            assert!(
                Instant::now() < deadline,
                "weir-testkit: no active controller found after {ELECTION_TIMEOUT:?}; the nodes said {last:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `topic`'s placement as the node on `port` reports it: `Ok(None)` if it does not know the topic (yet).
fn placement_on(port: u16, topic: &str) -> Result<Option<Vec<PartitionPlacement>>, String> {
    let m = wire::metadata(port, Some(&[topic]), REQUEST_TIMEOUT)?;
    let Some(t) = m.topics.iter().find(|t| t.error_code == 0) else {
        return Ok(None);
    };
    let mut ps: Vec<PartitionPlacement> = t
        .partitions
        .iter()
        .map(|p| PartitionPlacement {
            partition: p.partition,
            leader: p.leader_id,
            leader_epoch: p.leader_epoch,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
        })
        .collect();
    ps.sort_by_key(|p| p.partition);
    Ok(Some(ps))
}
