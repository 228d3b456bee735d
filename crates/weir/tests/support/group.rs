//! Helpers for consumer-group tests against real Apache Kafka: member settings for fast rebalances, and
//! producing numbered records.

#![allow(dead_code)]

use weir::config::ProducerConfig;
use weir::group::GroupConfig;
use weir::{Producer, ProducerRecord};
use weir_testkit::Kafka;

/// Settings of a member of `group` on `broker`, then `extra`: earliest reset, and fast rebalances (a member
/// notices one at its next heartbeat, every 200 ms). `WEIR_LOG` turns logging on.
pub fn group_config(broker: &Kafka, group: &str, extra: &[(&str, &str)]) -> GroupConfig {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("WEIR_LOG"))
        .with_test_writer()
        .try_init();
    let mut cfg = GroupConfig::new(&broker.bootstrap(), group);
    for (k, v) in [
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

/// Produces `range` records (values `p{p}-r{offset}`) to each partition of an empty topic, all sent before any
/// delivery is awaited, so that batches hold many records and committed offsets fall inside batches.
pub async fn produce_numbered(broker: &Kafka, topic: &str, partitions: i32, range: std::ops::Range<i64>) {
    let producer = Producer::new(ProducerConfig::new(&broker.bootstrap())).unwrap();
    let mut sent = Vec::new();
    for i in range {
        for p in 0..partitions {
            let d = producer
                .send(ProducerRecord::new(topic, format!("p{p}-r{i}")).partition(p))
                .await
                .unwrap();
            sent.push((i, d));
        }
    }
    for (i, d) in sent {
        assert_eq!(
            d.await.unwrap().offset,
            i,
            "offsets dense from the start of the range"
        );
    }
    producer.close().await.unwrap();
}
