//! Broker failures on a three-node Apache Kafka cluster (every node broker and KRaft voter; `min.insync.replicas=2`)
//! while an idempotent `acks=all` producer writes keyed records to every partition and a consumer reads them:
//!
//! - the leader of a partition killed with SIGKILL, then restarted;
//! - a rolling restart of all three nodes (SIGTERM and a controlled shutdown, rejoin, full ISR, next);
//! - the active KRaft controller killed with SIGKILL, then restarted;
//! - partitions reassigned to other brokers (replication factor 2, so that there is somewhere to go), their
//!   leaders moving.
//!
//! In each, nothing acknowledged is lost, nothing is duplicated or reordered, and neither the producer nor the
//! consumer surfaces an error to the application: only latency ([`keyed_traffic`] runs and checks
//! the traffic). The stream keeps flowing before, during and after each failure, and the tests wait for
//! records acknowledged and consumed after each step.
//!
//! The tests take turns on one cluster ([`take_cluster`]): two clusters of three JVMs at once would starve
//! each other on a small machine and turn latency into timeouts, and a cluster per test would add its start
//! (tens of seconds here) to each. Each test has its own topic and gives the cluster back only if it passed, with every node
//! up and in sync; after a failure the next test starts a fresh cluster.

#[path = "support/keyed_traffic.rs"]
mod keyed_traffic;

use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};

use keyed_traffic::Traffic;
use weir::admin::ConfigResource;
use weir::config::ClientConfig;
use weir::Admin;
use weir_testkit::{unique_name, Kafka, Shape};

const PARTITIONS: i32 = 3;
/// Records (over all partitions) acknowledged and consumed to call the stream flowing after a step: about
/// two seconds of it.
const STRETCH: u64 = 1200;
/// Records per partition produced after the last step, before the checks.
const LAST_ROUNDS: i64 = 1000;

/// The cluster between two tests (see the module's documentation).
static CLUSTER: Mutex<Option<Kafka>> = Mutex::const_new(None);

/// Waits for this test's turn and takes the cluster the last test left, or starts one. Put it back in the
/// guard at the end of a test that passed; a test that panics drops it (killing its nodes).
async fn take_cluster() -> (MutexGuard<'static, Option<Kafka>>, Kafka) {
    let mut turn = CLUSTER.lock().await;
    // Brokers hand their leaderships over before a graceful stop (Kafka's default, which the testkit turns off
    // since it otherwise only ever kills nodes): the rolling restart is the one operators do.
    let kafka = turn
        .take()
        .unwrap_or_else(|| Kafka::start_with(Shape::Three, &[("controlled.shutdown.enable", "true")]));
    (turn, kafka)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_then_restarted_loses_nothing() {
    let (mut turn, mut kafka) = take_cluster().await;
    let topic = unique_name("failover-kill");
    kafka.create_topic(&topic, PARTITIONS);
    let bootstrap = kafka.bootstrap();
    let traffic = Traffic::start(&bootstrap, &topic, PARTITIONS).await;
    traffic.wait_progress(STRETCH, "before the kill").await;

    // A client whose reconnect backoff outlasts the test: once its link to the killed node has failed, a
    // metadata refresh that waited for that link would never finish.
    let mut wcfg = ClientConfig::new(&bootstrap);
    wcfg.set("reconnect.backoff.ms", "600000").unwrap();
    wcfg.set("reconnect.backoff.max.ms", "600000").unwrap();
    let watcher = Admin::new(wcfg).unwrap();
    assert_eq!(watcher.metadata().await.unwrap().brokers.len(), 3);

    let victim = kafka.leader(&topic, 0);
    kafka.kill(victim);
    let new_leader = kafka.leader_other_than(&topic, 0, victim);
    eprintln!(
        "killed node {victim} (leader of {topic}-0) at {} acknowledged / {} consumed; new leader {new_leader}",
        traffic.acknowledged(),
        traffic.consumed()
    );
    // Only the killed node answers for its own configuration: the watcher's link to it fails and enters its
    // backoff; before the fix, that link was the first asked by every refresh.
    let described = watcher
        .describe_configs(&[ConfigResource::broker(victim)])
        .await
        .unwrap();
    assert!(described[0].1.is_err(), "node {victim} answered after SIGKILL");
    // Refreshes are answered by the live nodes until one reports the new leader (a live node may learn of it
    // a little after the one the testkit asked); the bound only catches a refresh stuck on the backoff.
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let m = watcher.metadata().await.expect("refresh answered by a live node");
            if m.topics.get(&topic).and_then(|t| t.leader(0)) == Some(new_leader) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await; // broker-side propagation
        }
    })
    .await
    .expect("a refresh waited for the killed node's link in its backoff");
    watcher.close().await.unwrap();
    traffic.wait_progress(STRETCH, "node down").await;

    kafka.restart(victim);
    // The restarted node caught up: back in the ISR of every partition (all three hold a replica).
    let placement = kafka.wait_in_sync(&topic);
    assert!(placement.iter().all(|p| p.isr.contains(&victim)), "{placement:?}");
    traffic.wait_progress(STRETCH, "node restarted").await;
    traffic.finish(LAST_ROUNDS).await;
    *turn = Some(kafka);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_loses_nothing() {
    let (mut turn, mut kafka) = take_cluster().await;
    let topic = unique_name("failover-rolling");
    kafka.create_topic(&topic, PARTITIONS);
    let traffic = Traffic::start(&kafka.bootstrap(), &topic, PARTITIONS).await;
    traffic.wait_progress(STRETCH, "before the restarts").await;
    for id in kafka.node_ids() {
        kafka.stop(id);
        eprintln!("stopped node {id}: {:?}", kafka.placement(&topic));
        traffic
            .wait_progress(STRETCH, &format!("node {id} stopped"))
            .await;
        kafka.restart(id);
        // Before the next node goes, this one is back in every partition's ISR.
        let placement = kafka.wait_in_sync(&topic);
        assert!(placement.iter().all(|p| p.isr.contains(&id)), "{placement:?}");
        traffic
            .wait_progress(STRETCH, &format!("node {id} restarted"))
            .await;
    }
    traffic.finish(LAST_ROUNDS).await;
    *turn = Some(kafka);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_controller_killed_loses_nothing() {
    let (mut turn, mut kafka) = take_cluster().await;
    let topic = unique_name("failover-controller");
    kafka.create_topic(&topic, PARTITIONS);
    let traffic = Traffic::start(&kafka.bootstrap(), &topic, PARTITIONS).await;
    traffic.wait_progress(STRETCH, "before the kill").await;

    let controller = kafka.active_controller();
    kafka.kill(controller);
    let elected = kafka.active_controller_other_than(controller);
    eprintln!("killed the active controller, node {controller}; node {elected} elected");
    traffic.wait_progress(STRETCH, "controller down").await;

    kafka.restart(controller);
    let placement = kafka.wait_in_sync(&topic);
    assert!(
        placement.iter().all(|p| p.isr.contains(&controller)),
        "{placement:?}"
    );
    traffic.wait_progress(STRETCH, "old controller restarted").await;
    traffic.finish(LAST_ROUNDS).await;
    *turn = Some(kafka);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_reassigned_while_producing_lose_nothing() {
    let (mut turn, kafka) = take_cluster().await;
    let topic = unique_name("failover-reassign");
    // Two replicas of three nodes, both required in sync: each partition can move to the node it lacks.
    kafka.create_topic_replicated(&topic, PARTITIONS, 2, &[("min.insync.replicas", "2")]);
    let before = kafka.wait_in_sync(&topic);
    // Each partition leaves its leader: from {leader, follower} to [the third node, follower], so that the
    // leadership has to move (to the third node, the preferred leader, once it has caught up).
    let moves: Vec<(i32, Vec<i32>)> = before
        .iter()
        .map(|p| {
            let follower = *p.replicas.iter().find(|&&r| r != p.leader).unwrap();
            let third = kafka
                .node_ids()
                .into_iter()
                .find(|n| !p.replicas.contains(n))
                .unwrap();
            (p.partition, vec![third, follower])
        })
        .collect();

    let traffic = Traffic::start(&kafka.bootstrap(), &topic, PARTITIONS).await;
    traffic.wait_progress(STRETCH, "before the reassignment").await;
    let (acked, consumed) = (traffic.acknowledged(), traffic.consumed());
    let after = kafka.reassign(&topic, &moves);
    eprintln!(
        "{topic}: moved from {before:?} to {after:?}, while {} records were acknowledged and {} consumed",
        traffic.acknowledged() - acked,
        traffic.consumed() - consumed
    );
    for (b, a) in before.iter().zip(&after) {
        assert_ne!(
            a.leader, b.leader,
            "{topic}/{}: the leader did not move",
            a.partition
        );
        assert!(!a.replicas.contains(&b.leader), "{topic}/{}: {a:?}", a.partition);
    }
    traffic.wait_progress(STRETCH, "partitions moved").await;
    traffic.finish(LAST_ROUNDS).await;
    *turn = Some(kafka);
}
