//! Follower fetching (KIP-392) on a three-node Apache Kafka cluster whose nodes sit in racks `rack-1` ..
//! `rack-3`, with the rack-aware replica selector: a consumer with `client.rack` set to a follower's rack reads
//! from that follower, and from the leader once that follower dies, losing nothing and surfacing no error.

use std::time::Duration;

use weir::config::{ClientConfig, ProducerConfig};
use weir::consumer::{Consumer, ConsumerConfig, ConsumerRecord, StartOffset, TopicPartition};
use weir::{Admin, Producer, ProducerRecord};
use weir_testkit::{unique_name, Kafka, Shape};

const WAIT: Duration = Duration::from_secs(60);

async fn produce(bootstrap: &str, topic: &str, range: std::ops::Range<u32>) {
    let mut cfg = ProducerConfig::new(bootstrap);
    cfg.set("acks", "all").unwrap();
    let producer = Producer::new(cfg).unwrap();
    let mut acks = Vec::new();
    for i in range {
        acks.push(
            producer
                .send(ProducerRecord::new(topic, format!("{i}")).partition(0))
                .await
                .unwrap(),
        );
    }
    for a in acks {
        a.await.unwrap();
    }
    producer.close().await.unwrap();
}

/// Polls until `n` records in all, or fails after [`WAIT`].
async fn read_until(consumer: &Consumer, got: &mut Vec<ConsumerRecord>, n: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} records after {WAIT:?}",
            got.len()
        );
        got.extend(consumer.poll(1000, Duration::from_millis(500)).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_reads_from_the_replica_in_its_rack_and_from_the_leader_when_it_dies() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("WEIR_LOG"))
        .with_test_writer()
        .try_init();
    let mut kafka = Kafka::start_with(
        Shape::Three,
        &[
            ("broker.rack", "rack-{node}"),
            (
                "replica.selector.class",
                "org.apache.kafka.common.replica.RackAwareReplicaSelector",
            ),
        ],
    );
    let topic = unique_name("rack");
    kafka.create_topic(&topic, 1);
    let bootstrap = kafka.bootstrap();
    let admin = Admin::new(ClientConfig::new(&bootstrap)).unwrap();
    let metadata = admin.metadata().await.unwrap();
    let leader = metadata
        .topic(&topic)
        .and_then(|t| t.leader(0))
        .expect("a leader");
    let follower = *kafka.node_ids().iter().find(|&&id| id != leader).unwrap();
    admin.close().await.unwrap();

    produce(&bootstrap, &topic, 0..500).await;
    let mut cfg = ConsumerConfig::new(&bootstrap);
    cfg.set("client.rack", &format!("rack-{follower}")).unwrap();
    let consumer = Consumer::new(cfg).unwrap();
    let tp = TopicPartition::new(topic.as_str(), 0);
    consumer
        .assign(&[(tp.clone(), StartOffset::Earliest)])
        .await
        .unwrap();
    let mut got = Vec::new();
    read_until(&consumer, &mut got, 500).await;
    assert_eq!(
        consumer.partition_view(&tp).unwrap().fetched_from,
        follower,
        "records of the first 500 fetched from the follower in rack-{follower} (leader {leader})"
    );

    // The follower dies: the partition goes back to its leader (the other replica is in another rack).
    kafka.kill(follower);
    produce(&bootstrap, &topic, 500..1000).await;
    read_until(&consumer, &mut got, 1000).await;
    assert_eq!(consumer.partition_view(&tp).unwrap().fetched_from, leader);
    let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
    assert_eq!(
        offsets,
        (0..1000).collect::<Vec<i64>>(),
        "every record once, in order"
    );
    assert!(consumer
        .poll(100, Duration::from_millis(300))
        .await
        .unwrap()
        .is_empty());
    consumer.close().await.unwrap();
}
