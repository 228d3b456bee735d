//! Rate-sized buffers (`weir.buffer.target.ms`) on a real broker: the budget goes to the partition the
//! application drains, paused ones fall to the floor, nothing is lost or reordered, and the budget holds.

use std::sync::Arc;
use std::time::Duration;

use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::{Producer, ProducerRecord};
use weir_testkit::{unique_topic, Kafka};

#[path = "support/buffered_peak.rs"]
mod buffered_peak;
use buffered_peak::BufferedPeak;

const PARTITIONS: i32 = 8;
const HOT_RECORDS: usize = 200_000;
const BUDGET: usize = 4 << 20;
const CEILING: usize = 2 << 20;
const FLOOR: u64 = 32 << 10;
/// The largest record batch the producer builds here (its default `batch.size`).
const MAX_BATCH: usize = 16 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_goes_to_the_partition_drained_and_paused_ones_keep_the_floor() {
    let broker = Kafka::shared();
    let topic = unique_topic("rate-sized");
    broker.create_topic(&topic, PARTITIONS);
    let producer = Producer::new(ProducerConfig::new(&broker.bootstrap())).unwrap();
    let mut ds = Vec::with_capacity(HOT_RECORDS + 100);
    for i in 0..HOT_RECORDS {
        let v = format!("0:{i}:{}", "h".repeat(80));
        ds.push(
            producer
                .send(ProducerRecord::new(&topic, v).partition(0))
                .await
                .unwrap(),
        );
    }
    for p in 1..PARTITIONS {
        for i in 0..10 {
            let v = format!("{p}:{i}");
            ds.push(
                producer
                    .send(ProducerRecord::new(&topic, v).partition(p))
                    .await
                    .unwrap(),
            );
        }
    }
    for d in ds {
        d.await.unwrap();
    }
    producer.close().await.unwrap();

    let mut cfg = ConsumerConfig::new(&broker.bootstrap()).with_partition_buffer(CEILING);
    cfg.memory_budget = BUDGET;
    cfg.set("weir.buffer.target.ms", "1000").unwrap();
    cfg.set("weir.partition.buffer.min.bytes", &FLOOR.to_string())
        .unwrap();
    let consumer = Arc::new(Consumer::new(cfg).unwrap());
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    // Partitions 1.. are paused before anything is fetched: they drain nothing.
    consumer
        .assign(
            &tps.iter()
                .map(|tp| (tp.clone(), StartOffset::Earliest))
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    consumer.pause(&tps[1..]).unwrap();
    let fair_share = (BUDGET / PARTITIONS as usize) as u64;
    assert_eq!(
        consumer.partition_view(&tps[0]).unwrap().buffer_limit,
        FLOOR,
        "before the first rates: the floor"
    );

    let monitor = BufferedPeak::start(consumer.clone());

    let mut next = 0i64;
    let mut hot_limit = 0u64;
    let mut hot_rate = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while next < HOT_RECORDS as i64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "stalled at {next} records"
        );
        for r in consumer.poll(1000, Duration::from_millis(200)).await.unwrap() {
            assert_eq!(r.partition, 0, "a paused partition delivered a record");
            assert_eq!(r.offset, next, "lost, duplicated or out of order");
            assert!(r
                .value
                .as_ref()
                .unwrap()
                .starts_with(format!("0:{next}:").as_bytes()));
            next += 1;
        }
        let view = consumer.partition_view(&tps[0]).unwrap();
        hot_limit = hot_limit.max(view.buffer_limit);
        hot_rate = hot_rate.max(view.drain_rate);
    }
    let peak = monitor.stop();

    assert!(hot_rate > 0, "the drained partition's rate was measured");
    assert!(
        hot_limit > fair_share,
        "the drained partition's buffer grew past the fair share {fair_share}: {hot_limit}"
    );
    assert!(hot_limit <= CEILING as u64, "{hot_limit} over the ceiling");
    for tp in &tps[1..] {
        let view = consumer.partition_view(tp).unwrap();
        assert_eq!(
            view.buffer_limit, FLOOR,
            "{tp}: a paused partition keeps the floor"
        );
        assert_eq!(view.drain_rate, 0, "{tp}");
    }
    let stats = consumer.stats();
    let hot = stats
        .partitions
        .iter()
        .find(|p| p.topic_partition == tps[0])
        .unwrap();
    assert_eq!(
        hot.buffer_limit,
        consumer.partition_view(&tps[0]).unwrap().buffer_limit
    );
    // The budget holds to within one batch (a first batch is taken whole; see consumer_stress).
    assert!(
        peak <= BUDGET + MAX_BATCH,
        "buffered {peak} bytes, budget {BUDGET}"
    );

    // Resumed, the paused partitions deliver what they hold and what follows, in order.
    consumer.resume(&tps[1..]).unwrap();
    let mut seen = vec![0i64; PARTITIONS as usize];
    while seen[1..].iter().any(|&n| n < 10) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "resumed partitions stalled: {seen:?}"
        );
        for r in consumer.poll(1000, Duration::from_millis(200)).await.unwrap() {
            let n = &mut seen[r.partition as usize];
            assert_eq!(r.offset, *n, "partition {}", r.partition);
            *n += 1;
        }
    }
    consumer.close().await.unwrap();
}
