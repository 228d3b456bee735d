//! Log truncation after an unclean leader election, on a three-node Apache Kafka cluster (KIP-320).
//!
//! The topic has two replicas, allows unclean elections and needs one in-sync replica. The follower is killed;
//! the leader, alone in the ISR, takes records the follower never gets, and the consumer reads them. Then the
//! leader is killed and the follower restarted: it becomes leader by an unclean election, with a log that ends
//! where it stopped, and takes records of its own at the same offsets. (Each node is also a controller: the
//! third node keeps the quorum, which two dead nodes out of three would lose, and it is lost only while the
//! leader is down and the follower not yet back.) The consumer, whose position lies past the end of
//! that log, must find the truncation by validating its position against the new leader (OffsetForLeaderEpoch)
//! and read the new leader's records from where the logs part: not from the log start again
//! (`auto.offset.reset=earliest` applied to an out-of-range position), and not from a position the new log
//! reaches only later (skipping its records silently).

use weir::admin::{AlterConfigOp, ConfigResource};
use weir::config::{ClientConfig, ProducerConfig};
use weir::consumer::{Consumer, ConsumerConfig, ConsumerRecord, StartOffset, TopicPartition};
use weir::{Admin, Producer, ProducerRecord};
use weir_testkit::{unique_name, Kafka, Shape};

#[path = "support/read_records.rs"]
mod read_records;
use read_records::read;

/// Records every replica has.
const SHARED: i64 = 100;
/// Records only the old leader had (lost in the unclean election).
const LOST: i64 = 50;
/// Records the new leader takes after its election, at the offsets the lost ones had.
const AFTER: i64 = 20;

async fn produce(bootstrap: &str, topic: &str, acks: &str, prefix: &str, n: i64) -> Vec<i64> {
    let mut cfg = ProducerConfig::new(bootstrap);
    cfg.set("acks", acks).unwrap();
    // Idempotence needs acks=all; these writes must go to whichever node leads now, and no further.
    cfg.set("enable.idempotence", "false").unwrap();
    let producer = Producer::new(cfg).unwrap();
    let mut pending = Vec::new();
    for i in 0..n {
        let record = ProducerRecord::new(topic, format!("{prefix}-{i}")).partition(0);
        pending.push(producer.send(record).await.unwrap());
    }
    let mut offsets = Vec::new();
    for d in pending {
        offsets.push(d.await.expect("acknowledged").offset);
    }
    producer.close().await.unwrap();
    offsets
}

fn value(r: &ConsumerRecord) -> String {
    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unclean_election_truncating_the_log_is_found_and_read_from_where_it_parts() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("WEIR_LOG"))
        .with_test_writer()
        .try_init();
    // Followers that stop fetching leave the ISR after 2 s instead of 30.
    let mut kafka = Kafka::start_with(Shape::Three, &[("replica.lag.time.max.ms", "2000")]);
    let topic = unique_name("truncated");
    let bootstrap = kafka.bootstrap();
    let admin = Admin::new(ClientConfig::new(&bootstrap)).unwrap();
    admin.create_topic(&topic, 1, 2).await.unwrap();
    let altered = admin
        .incremental_alter_configs(
            &[(
                ConfigResource::topic(topic.as_str()),
                vec![
                    AlterConfigOp::set("unclean.leader.election.enable", "true"),
                    AlterConfigOp::set("min.insync.replicas", "1"),
                ],
            )],
            false,
        )
        .await
        .unwrap();
    altered[0].1.as_ref().expect("topic configs set");
    let leader = kafka.leader(&topic, 0);
    let described = admin.describe_topics(Some(&[topic.as_str()])).await.unwrap();
    let replicas = described[0].1.as_ref().unwrap().partitions[0].replicas.clone();
    let follower = *replicas.iter().find(|&&r| r != leader).expect("two replicas");
    kafka.wait_in_sync(&topic);

    assert_eq!(
        produce(&bootstrap, &topic, "all", "shared", SHARED).await,
        (0..SHARED).collect::<Vec<_>>()
    );
    let mut cfg = ConsumerConfig::new(&bootstrap);
    cfg.set("auto.offset.reset", "earliest").unwrap();
    let consumer = Consumer::new(cfg).unwrap();
    consumer
        .assign(&[(TopicPartition::new(topic.as_str(), 0), StartOffset::Earliest)])
        .await
        .unwrap();
    let first = read(&consumer, SHARED as usize).await;
    assert_eq!(first.last().map(|r| r.offset), Some(SHARED - 1));

    // The follower dies; the leader, alone in the ISR, takes records it never sees. The consumer reads them.
    kafka.kill(follower);
    kafka.wait_isr(&topic, 0, &[leader]);
    assert_eq!(
        produce(&bootstrap, &topic, "1", "lost", LOST).await,
        (SHARED..SHARED + LOST).collect::<Vec<_>>()
    );
    let lost = read(&consumer, LOST as usize).await;
    assert_eq!(lost.last().map(|r| r.offset), Some(SHARED + LOST - 1));

    // The leader dies and a follower comes back: leader by an unclean election, its log ending at SHARED.
    kafka.kill(leader);
    kafka.restart(follower);
    let new_leader = kafka.leader_other_than(&topic, 0, leader);
    eprintln!("unclean election: {leader} -> {new_leader}");
    let after = produce(&bootstrap, &topic, "1", "after", AFTER).await;
    assert_eq!(
        after,
        (SHARED..SHARED + AFTER).collect::<Vec<_>>(),
        "the new leader's log ended where the followers stopped"
    );

    let got = read(&consumer, AFTER as usize).await;
    let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
    assert_eq!(
        offsets,
        (SHARED..SHARED + AFTER).collect::<Vec<_>>(),
        "read from where the logs part (not from the start, not skipping)"
    );
    for (r, i) in got.iter().zip(0..) {
        assert_eq!(value(r), format!("after-{i}"), "offset {}", r.offset);
    }
    assert_eq!(consumer.stats().log_truncations, 1, "the truncation is reported");
    consumer.close().await.unwrap();
    admin.close().await.unwrap();
}
