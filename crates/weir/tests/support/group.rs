//! Helpers for consumer-group tests against the real tansu broker: member settings for fast rebalances, and
//! producing one record per batch.

#![allow(dead_code)]

use weir::config::ProducerConfig;
use weir::group::GroupConfig;
use weir::{Producer, ProducerRecord};
use weir_testkit::Broker;

/// Settings of a member of `group` on `broker`, then `extra`: fetches that do not wait long (tansu sleeps about
/// half the max wait on every fetch, ../shared/notes/broker.md), earliest reset, and fast rebalances (a member
/// notices one at its next heartbeat, every 200 ms). `WEIR_LOG` turns logging on.
pub fn group_config(broker: &Broker, group: &str, extra: &[(&str, &str)]) -> GroupConfig {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("WEIR_LOG"))
        .with_test_writer()
        .try_init();
    let mut cfg = GroupConfig::new(&broker.bootstrap(), group);
    for (k, v) in [
        ("fetch.wait.max.ms", "10"),
        ("auto.offset.reset", "earliest"),
        ("heartbeat.interval.ms", "200"),
        ("session.timeout.ms", "10000"),
        ("auto.commit.interval.ms", "200"),
    ]
    .iter()
    .chain(extra)
    {
        cfg.set(k, v).unwrap();
    }
    cfg
}

/// Produces `range` records (values `p{p}-r{offset}`) to each partition, one record per batch (each delivery
/// awaited before the next send): members resume from committed offsets, and tansu 0.6.0 drops the rest of a
/// batch fetched from an offset inside it, so every offset must be a batch boundary for a resume to be exact.
pub async fn produce_one_per_batch(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    range: std::ops::Range<i64>,
) {
    let producer = Producer::connect(ProducerConfig::new(&broker.bootstrap())).unwrap();
    for i in range {
        for p in 0..partitions {
            let d = producer
                .send(ProducerRecord::new(topic, format!("p{p}-r{i}")).partition(p))
                .await
                .unwrap();
            assert_eq!(d.await.unwrap().offset, i, "one record per batch, offsets dense");
        }
    }
    producer.close().await.unwrap();
}
