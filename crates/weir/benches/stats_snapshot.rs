//! What `Consumer::stats()` and one pass of the per-partition metrics task cost with 10,000 assigned
//! partitions: both walk the state table once (no lock), so they must stay cheap enough to run every second.
//!
//! No broker is needed: the consumer points at a closed port and its partitions are assigned at explicit
//! offsets (no ListOffsets); nothing is fetched, so the cells hold what an assignment leaves (a tenth of them
//! paused), which is what the walk reads whatever the values. The cases:
//!
//! - `stats`: `Consumer::stats()`, the whole snapshot (counters and a sorted `Vec` of 10,000 partitions);
//! - `metrics_pass/no_recorder`: one pass of the metrics task with no recorder installed (no-op handles);
//! - `metrics_pass/prometheus`: the same with a Prometheus recorder (`metrics-exporter-prometheus`), its
//!   handles registered by a first pass outside the measurement.
//!
//! Run with `cargo bench -p weir --bench stats_snapshot` (under a minute).

use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};

/// Assigned partitions: `TOPICS` topics of `PARTITIONS / TOPICS` partitions.
const PARTITIONS: usize = 10_000;
const TOPICS: usize = 10;

fn partitions() -> Vec<TopicPartition> {
    let per = PARTITIONS / TOPICS;
    (0..PARTITIONS)
        .map(|i| TopicPartition::new(format!("topic-{:02}", i / per), (i % per) as i32))
        .collect()
}

/// A consumer with every partition assigned and one in ten paused; no metrics task (the bench runs its passes
/// itself, so that handles are registered with the recorder it chooses).
fn consumer(rt: &tokio::runtime::Runtime) -> Consumer {
    rt.block_on(async {
        // A closed port: the metadata lookups fail at once and the partitions stay unrouted.
        let mut cfg = ConsumerConfig::new("127.0.0.1:1");
        cfg.set("weir.metrics.interval.ms", "0").unwrap();
        cfg.set("reconnect.backoff.ms", "1000").unwrap();
        let consumer = Consumer::new(cfg).expect("consumer");
        let tps = partitions();
        let assignment: Vec<_> = tps
            .iter()
            .map(|tp| (tp.clone(), StartOffset::Offset(0)))
            .collect();
        consumer.assign(&assignment).await.expect("assign");
        let paused: Vec<TopicPartition> = tps.iter().step_by(10).cloned().collect();
        consumer.pause(&paused).unwrap();
        let s = consumer.stats();
        assert_eq!(s.partitions.len(), PARTITIONS);
        assert_eq!(s.partitions.iter().filter(|p| p.paused).count(), PARTITIONS / 10);
        consumer
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
        .configure_from_args();

    let plain = consumer(&rt);
    c.bench_function(&format!("stats/{PARTITIONS}"), |b| b.iter(|| plain.stats()));

    let mut g = c.benchmark_group(format!("metrics_pass/{PARTITIONS}"));
    // The first pass registers the handles (no-op ones: no recorder is installed anywhere in this process).
    plain.publish_partition_metrics();
    g.bench_function(BenchmarkId::from_parameter("no_recorder"), |b| {
        b.iter(|| plain.publish_partition_metrics())
    });
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let exported = consumer(&rt);
    metrics::with_local_recorder(&recorder, || exported.publish_partition_metrics());
    g.bench_function(BenchmarkId::from_parameter("prometheus"), |b| {
        b.iter(|| exported.publish_partition_metrics())
    });
    g.finish();
    // The handles did reach the recorder: one series per partition.
    let text = recorder.handle().render();
    let series = text
        .lines()
        .filter(|l| l.starts_with("kafka_consumer_partition_buffered_bytes{"))
        .count();
    assert_eq!(series, PARTITIONS, "per-partition series exported");

    rt.block_on(async {
        plain.close().await.unwrap();
        exported.close().await.unwrap();
    });
    c.final_summary();
}
