//! The consumer's metrics, through the `metrics` facade (the application installs the recorder: Prometheus,
//! OpenTelemetry; with none, every handle is a no-op).
//!
//! Consumer-wide handles are registered once per consumer and updated once per fetch response (the fetcher) or
//! once per `poll` call, never per record. Per-partition gauges are not touched on the fetch or poll paths at
//! all: a task ([`publish`]) copies them from the partitions' atomics every `weir.metrics.interval.ms`,
//! registering a partition's handles when it first sees it assigned and zeroing and dropping them once it is
//! unassigned.

use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, SharedString, Unit};

use super::partition::Partition;
use super::stats::PartitionStats;
use super::Inner;

/// Records returned by `poll` (counter).
pub(crate) const RECORDS_CONSUMED: &str = "kafka.consumer.records_consumed_total";
/// Bytes of keys, values and headers returned by `poll` (counter).
pub(crate) const BYTES_CONSUMED: &str = "kafka.consumer.bytes_consumed_total";
/// Fetch responses received (counter).
pub(crate) const FETCH_TOTAL: &str = "kafka.consumer.fetch_total";
/// Time from sending a fetch to its response, the broker's wait included (histogram, seconds).
pub(crate) const FETCH_LATENCY: &str = "kafka.consumer.fetch_latency_seconds";
/// A partition's buffered, undelivered bytes (gauge).
pub(crate) const PARTITION_BUFFERED: &str = "kafka.consumer.partition.buffered_bytes";
/// A partition's buffer limit: its fair share of the budget, at most the partition buffer; or rate-sized (gauge).
pub(crate) const PARTITION_LIMIT: &str = "kafka.consumer.partition.buffer_limit_bytes";
/// How fast the application drains a partition, bytes of memory per second (gauge; rate-sized buffers).
pub(crate) const PARTITION_DRAIN_RATE: &str = "kafka.consumer.partition.drain_rate_bytes_per_second";
/// 1 while a partition is paused, by reason (`application` or `backpressure`) (gauge).
pub(crate) const PARTITION_PAUSED: &str = "kafka.consumer.partition.paused";
/// Records between a partition's position and its end (gauge).
pub(crate) const PARTITION_LAG: &str = "kafka.consumer.partition.records_lag";
/// Fetch responses that answered for a partition (counter).
pub(crate) const PARTITION_FETCHES: &str = "kafka.consumer.partition.fetch_total";

/// Describes every consumer metric to the recorder in place (unit and meaning).
fn describe() {
    metrics::describe_counter!(
        RECORDS_CONSUMED,
        Unit::Count,
        "Records returned to the application by poll"
    );
    metrics::describe_counter!(
        BYTES_CONSUMED,
        Unit::Bytes,
        "Bytes of the keys, values and headers of the records returned by poll"
    );
    metrics::describe_counter!(FETCH_TOTAL, Unit::Count, "Fetch responses received");
    metrics::describe_histogram!(
        FETCH_LATENCY,
        Unit::Seconds,
        "Time from sending a fetch request to its response, the broker's wait for data included"
    );
    metrics::describe_gauge!(
        PARTITION_BUFFERED,
        Unit::Bytes,
        "Bytes of memory a partition holds fetched and undelivered"
    );
    metrics::describe_gauge!(
        PARTITION_LIMIT,
        Unit::Bytes,
        "A partition's buffer limit: the partition buffer, or its fair share of the memory budget when smaller; \
         with weir.buffer.target.ms, its drain rate times that window within the floor, ceiling and budget"
    );
    metrics::describe_gauge!(
        PARTITION_DRAIN_RATE,
        "How fast the application drains a partition, in bytes of memory per second (with weir.buffer.target.ms)"
    );
    metrics::describe_gauge!(
        PARTITION_PAUSED,
        Unit::Count,
        "1 while a partition is not fetched because the application paused it (reason=application) or its buffer is \
         full (reason=backpressure)"
    );
    metrics::describe_gauge!(
        PARTITION_LAG,
        Unit::Count,
        "Records between a partition's position and its high watermark (last stable offset under read_committed)"
    );
    metrics::describe_counter!(
        PARTITION_FETCHES,
        Unit::Count,
        "Fetch responses that answered for a partition"
    );
}

/// A consumer's own handles, registered once when it is created.
pub(crate) struct ConsumerMetrics {
    pub(crate) records_consumed: Counter,
    pub(crate) bytes_consumed: Counter,
    pub(crate) fetches: Counter,
    pub(crate) fetch_latency: Histogram,
    client_id: SharedString,
}

impl ConsumerMetrics {
    /// Registers the handles of a consumer with `client.id` `client_id`.
    pub(crate) fn new(client_id: &str) -> ConsumerMetrics {
        describe();
        let client_id = SharedString::from(client_id.to_owned());
        let labels = [("client_id", client_id.clone())];
        ConsumerMetrics {
            records_consumed: metrics::counter!(RECORDS_CONSUMED, &labels),
            bytes_consumed: metrics::counter!(BYTES_CONSUMED, &labels),
            fetches: metrics::counter!(FETCH_TOTAL, &labels),
            fetch_latency: metrics::histogram!(FETCH_LATENCY, &labels),
            client_id,
        }
    }

    /// Counts records delivered by one `poll` (or one batch of a partition stream).
    pub(crate) fn consumed(&self, records: usize, payload: u64) {
        if records > 0 {
            self.records_consumed.increment(records as u64);
            self.bytes_consumed.increment(payload);
        }
    }
}

/// One assigned partition's handles.
pub(crate) struct PartitionMetrics {
    buffered: Gauge,
    limit: Gauge,
    drain_rate: Gauge,
    paused_by_application: Gauge,
    paused_by_backpressure: Gauge,
    lag: Gauge,
    fetches: Counter,
    /// What `fetches` was given so far: each pass adds what the partition counted since (an increment, not an
    /// absolute value, which not every recorder keeps).
    fetches_published: u64,
}

impl PartitionMetrics {
    fn register(client_id: &SharedString, p: &Partition) -> PartitionMetrics {
        let tp = p.topic_partition();
        let labels = [
            ("client_id", client_id.clone()),
            ("topic", SharedString::from(tp.topic.to_string())),
            ("partition", SharedString::from(tp.partition.to_string())),
        ];
        let paused = |reason: &'static str| {
            let mut l = labels.to_vec();
            l.push(("reason", SharedString::const_str(reason)));
            metrics::gauge!(PARTITION_PAUSED, &l)
        };
        PartitionMetrics {
            buffered: metrics::gauge!(PARTITION_BUFFERED, &labels),
            limit: metrics::gauge!(PARTITION_LIMIT, &labels),
            drain_rate: metrics::gauge!(PARTITION_DRAIN_RATE, &labels),
            paused_by_application: paused("application"),
            paused_by_backpressure: paused("backpressure"),
            lag: metrics::gauge!(PARTITION_LAG, &labels),
            fetches: metrics::counter!(PARTITION_FETCHES, &labels),
            fetches_published: 0,
        }
    }

    fn set(&mut self, s: &PartitionStats) {
        self.buffered.set(s.buffered_bytes as f64);
        self.limit.set(s.buffer_limit as f64);
        self.drain_rate.set(s.drain_rate as f64);
        self.paused_by_application.set(u8::from(s.paused));
        self.paused_by_backpressure.set(u8::from(s.backpressured));
        if let Some(lag) = s.lag {
            self.lag.set(lag as f64);
        }
        self.publish_fetches(s.fetches);
    }

    fn publish_fetches(&mut self, total: u64) {
        let new = total.saturating_sub(self.fetches_published);
        if new > 0 {
            self.fetches.increment(new);
            self.fetches_published = total;
        }
    }
}

impl Drop for PartitionMetrics {
    /// The gauges of a partition no longer assigned (or of a consumer closed or dropped): nothing buffered,
    /// nothing paused, no lag.
    fn drop(&mut self) {
        for g in [
            &self.buffered,
            &self.limit,
            &self.drain_rate,
            &self.paused_by_application,
            &self.paused_by_backpressure,
            &self.lag,
        ] {
            g.set(0.0);
        }
    }
}

/// Copies every assigned partition's state into its gauges every `every`, until the consumer is closed or
/// dropped; then zeroes them (dropping the handles does). Holds the consumer weakly, so it never keeps one
/// alive.
pub(crate) async fn publish(inner: Weak<Inner>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.is_closed() {
            unpublish(&inner);
            return;
        }
        publish_once(&inner);
    }
}

/// One pass over the table: gauges of assigned partitions set (handles registered on first sight), those of
/// partitions unassigned since the last pass zeroed and dropped.
pub(crate) fn publish_once(inner: &Inner) {
    let client_id = &inner.metrics.client_id;
    inner.table.for_each_cell(|p| {
        let stats = PartitionStats::of(p);
        let mut handles = p.slot().metrics.lock().unwrap();
        match (stats, &mut *handles) {
            (Some(s), Some(h)) => h.set(&s),
            (Some(s), none) => none
                .insert(Box::new(PartitionMetrics::register(client_id, p)))
                .set(&s),
            (None, Some(_)) => retire(p, &mut handles),
            (None, None) => {}
        }
    });
}

/// Publishes the fetches of every partition with handles, then drops them (the consumer closed).
fn unpublish(inner: &Inner) {
    inner
        .table
        .for_each_cell(|p| retire(p, &mut p.slot().metrics.lock().unwrap()));
}

/// Publishes what `p` fetched since the last pass and drops its handles (zeroing its gauges).
fn retire(p: &Partition, handles: &mut Option<Box<PartitionMetrics>>) {
    if let Some(mut h) = handles.take() {
        h.publish_fetches(p.slot().fetches.load(Ordering::Relaxed));
    }
}
