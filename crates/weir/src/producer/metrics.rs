//! The producer's counters: kept in atomics for [`Producer::stats`](super::Producer::stats), and reported through
//! the `metrics` facade with the label `client_id`. Everything is updated once per batch or per request, never
//! per record.
//!
//! | metric | type | what | updated |
//! |---|---|---|---|
//! | `kafka.producer.record_send_total` | counter | records acknowledged (with `acks=0`: written to the socket) | a batch's deliveries resolve |
//! | `kafka.producer.byte_total` | counter | bytes of those records' batches, as sent (compressed, if so) | same |
//! | `kafka.producer.record_error_total` | counter | records whose delivery failed | same |
//! | `kafka.producer.record_retry_total` | counter | records of batches sent again after a retriable error | a batch is put back |
//! | `kafka.producer.batch_size_bytes` | histogram | size of a record batch, as sent | a batch is sent the first time |
//! | `kafka.producer.batch_size_records` | histogram | records in a batch | same |
//! | `kafka.producer.produce_latency_seconds` | histogram | from sending a Produce request to its response | a response arrives |
//! | `kafka.producer.records_queued` | gauge | records `send` accepted whose delivery is not resolved yet | the sender wakes, a batch resolves |
//! | `kafka.producer.batches_in_flight` | gauge | batches in Produce requests not finished (connecting, or waiting for the response) | a request starts, it ends |

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter, Gauge,
    Histogram, Unit,
};

/// Records acknowledged.
pub(crate) const RECORD_SEND_TOTAL: &str = "kafka.producer.record_send_total";
/// Bytes of acknowledged batches.
pub(crate) const BYTE_TOTAL: &str = "kafka.producer.byte_total";
/// Records whose delivery failed.
pub(crate) const RECORD_ERROR_TOTAL: &str = "kafka.producer.record_error_total";
/// Records sent again.
pub(crate) const RECORD_RETRY_TOTAL: &str = "kafka.producer.record_retry_total";
/// Size of each batch sent.
pub(crate) const BATCH_SIZE_BYTES: &str = "kafka.producer.batch_size_bytes";
/// Records in each batch sent.
pub(crate) const BATCH_SIZE_RECORDS: &str = "kafka.producer.batch_size_records";
/// Produce request to response.
pub(crate) const PRODUCE_LATENCY_SECONDS: &str = "kafka.producer.produce_latency_seconds";
/// Records not resolved yet.
pub(crate) const RECORDS_QUEUED: &str = "kafka.producer.records_queued";
/// Batches waiting for their response.
pub(crate) const BATCHES_IN_FLIGHT: &str = "kafka.producer.batches_in_flight";

/// Describes this module's metrics (unit and meaning) to the installed recorder; called when a producer is
/// created.
pub(crate) fn describe() {
    describe_counter!(
        RECORD_SEND_TOTAL,
        Unit::Count,
        "Records acknowledged by the broker"
    );
    describe_counter!(
        BYTE_TOTAL,
        Unit::Bytes,
        "Bytes of the record batches acknowledged, as sent"
    );
    describe_counter!(RECORD_ERROR_TOTAL, Unit::Count, "Records whose delivery failed");
    describe_counter!(
        RECORD_RETRY_TOTAL,
        Unit::Count,
        "Records of batches sent again after a retriable error"
    );
    describe_histogram!(
        BATCH_SIZE_BYTES,
        Unit::Bytes,
        "Size of each record batch, as first sent"
    );
    describe_histogram!(
        BATCH_SIZE_RECORDS,
        Unit::Count,
        "Records in each record batch, as first sent"
    );
    describe_histogram!(
        PRODUCE_LATENCY_SECONDS,
        Unit::Seconds,
        "Time from sending a Produce request to its response"
    );
    describe_gauge!(
        RECORDS_QUEUED,
        Unit::Count,
        "Records accepted by send whose delivery is not resolved"
    );
    describe_gauge!(
        BATCHES_IN_FLIGHT,
        Unit::Count,
        "Batches in Produce requests waiting for their response"
    );
}

/// A snapshot of a producer's counters ([`Producer::stats`](super::Producer::stats)): totals since it was
/// created, and what is pending now. Reading it costs a few atomic loads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerStats {
    /// Records acknowledged by the broker (with `acks=0`, written to the socket).
    pub records_sent: u64,
    /// Bytes of the batches those records were sent in, as sent: record batch headers included, compressed if
    /// the producer compresses.
    pub bytes_sent: u64,
    /// Record batches acknowledged.
    pub batches_sent: u64,
    /// Records whose delivery failed (their delivery future resolved to an error).
    pub record_errors: u64,
    /// Records of batches sent again after a retriable error, counted at each retry.
    pub record_retries: u64,
    /// Produce requests made (each attempt of a batch counts; one that could not reach its broker too).
    pub produce_requests: u64,
    /// Records accepted by `send` whose delivery has not resolved yet: waiting in a batch or in flight.
    pub records_queued: u64,
    /// Batches in Produce requests not finished yet (connecting, or waiting for their response).
    pub batches_in_flight: u64,
}

/// A producer's counters and metric handles.
pub(crate) struct ProducerMetrics {
    records_sent: AtomicU64,
    bytes_sent: AtomicU64,
    batches_sent: AtomicU64,
    record_errors: AtomicU64,
    record_retries: AtomicU64,
    produce_requests: AtomicU64,
    batches_in_flight: AtomicU64,
    handles: Handles,
}

struct Handles {
    records_sent: Counter,
    bytes_sent: Counter,
    record_errors: Counter,
    record_retries: Counter,
    batch_bytes: Histogram,
    batch_records: Histogram,
    latency: Histogram,
    queued: Gauge,
    in_flight: Gauge,
}

/// Batches of one Produce request, counted in flight until dropped.
pub(crate) struct BatchesInFlight<'a> {
    metrics: &'a ProducerMetrics,
    batches: u64,
}

impl Drop for BatchesInFlight<'_> {
    fn drop(&mut self) {
        self.metrics
            .batches_in_flight
            .fetch_sub(self.batches, Ordering::Relaxed);
        self.metrics.handles.in_flight.decrement(self.batches as f64);
    }
}

impl ProducerMetrics {
    pub(crate) fn new(client_id: &str) -> ProducerMetrics {
        let labels = [("client_id", client_id.to_owned())];
        ProducerMetrics {
            records_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            batches_sent: AtomicU64::new(0),
            record_errors: AtomicU64::new(0),
            record_retries: AtomicU64::new(0),
            produce_requests: AtomicU64::new(0),
            batches_in_flight: AtomicU64::new(0),
            handles: Handles {
                records_sent: counter!(RECORD_SEND_TOTAL, &labels),
                bytes_sent: counter!(BYTE_TOTAL, &labels),
                record_errors: counter!(RECORD_ERROR_TOTAL, &labels),
                record_retries: counter!(RECORD_RETRY_TOTAL, &labels),
                batch_bytes: histogram!(BATCH_SIZE_BYTES, &labels),
                batch_records: histogram!(BATCH_SIZE_RECORDS, &labels),
                latency: histogram!(PRODUCE_LATENCY_SECONDS, &labels),
                queued: gauge!(RECORDS_QUEUED, &labels),
                in_flight: gauge!(BATCHES_IN_FLIGHT, &labels),
            },
        }
    }

    /// A Produce request carrying `batches` goes out; `first` are the (bytes, records) of the batches sent
    /// for the first time. In flight until the guard is dropped.
    pub(crate) fn request(
        &self,
        batches: usize,
        first: impl Iterator<Item = (usize, usize)>,
    ) -> BatchesInFlight<'_> {
        for (bytes, records) in first {
            self.handles.batch_bytes.record(bytes as f64);
            self.handles.batch_records.record(records as f64);
        }
        self.produce_requests.fetch_add(1, Ordering::Relaxed);
        let batches = batches as u64;
        self.batches_in_flight.fetch_add(batches, Ordering::Relaxed);
        self.handles.in_flight.increment(batches as f64);
        BatchesInFlight {
            metrics: self,
            batches,
        }
    }

    /// A Produce request was answered `after` it was sent.
    pub(crate) fn answered(&self, after: Duration) {
        self.handles.latency.record(after);
    }

    /// A batch resolved: `delivered` records acknowledged in `bytes`, `failed` records failed.
    pub(crate) fn resolved(&self, delivered: usize, bytes: usize, failed: usize) {
        if delivered > 0 {
            self.records_sent.fetch_add(delivered as u64, Ordering::Relaxed);
            self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
            self.batches_sent.fetch_add(1, Ordering::Relaxed);
            self.handles.records_sent.increment(delivered as u64);
            self.handles.bytes_sent.increment(bytes as u64);
        }
        if failed > 0 {
            self.record_errors.fetch_add(failed as u64, Ordering::Relaxed);
            self.handles.record_errors.increment(failed as u64);
        }
    }

    /// A batch of `records` is put back to be sent again.
    pub(crate) fn retried(&self, records: usize) {
        self.record_retries.fetch_add(records as u64, Ordering::Relaxed);
        self.handles.record_retries.increment(records as u64);
    }

    /// `records` are accepted and not resolved yet.
    pub(crate) fn queued(&self, records: usize) {
        self.handles.queued.set(records as f64);
    }

    /// The counters now, with `records_queued` (kept by the accumulator).
    pub(crate) fn stats(&self, records_queued: usize) -> ProducerStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProducerStats {
            records_sent: load(&self.records_sent),
            bytes_sent: load(&self.bytes_sent),
            batches_sent: load(&self.batches_sent),
            record_errors: load(&self.record_errors),
            record_retries: load(&self.record_retries),
            produce_requests: load(&self.produce_requests),
            records_queued: records_queued as u64,
            batches_in_flight: load(&self.batches_in_flight),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_follow_batches_and_requests() {
        let m = ProducerMetrics::new("stats-test");
        let guard = m.request(2, [(170, 1), (300, 2)].into_iter());
        assert_eq!(m.stats(3).batches_in_flight, 2);
        m.resolved(1, 170, 0);
        m.resolved(0, 0, 2);
        m.retried(2);
        drop(guard);
        let s = m.stats(0);
        assert_eq!(
            s,
            ProducerStats {
                records_sent: 1,
                bytes_sent: 170,
                batches_sent: 1,
                record_errors: 2,
                record_retries: 2,
                produce_requests: 1,
                records_queued: 0,
                batches_in_flight: 0,
            }
        );
    }
}
