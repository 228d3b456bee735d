//! Metrics of metadata refreshes, per client (`client_id`).
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `kafka.client.metadata_refresh_total` | counter | `client_id` | metadata refreshes begun (one Metadata request each) |
//! | `kafka.client.metadata_refresh_error_total` | counter | `client_id` | refreshes that failed (no connection, no answer) |
//! | `kafka.client.metadata_refresh_latency_seconds` | histogram | `client_id` | time a successful refresh took, connecting included |

use std::time::Duration;

use metrics::{counter, describe_counter, describe_histogram, histogram, Counter, Histogram, Unit};

/// Metadata refreshes begun.
pub(crate) const METADATA_REFRESH_TOTAL: &str = "kafka.client.metadata_refresh_total";
/// Metadata refreshes that failed.
pub(crate) const METADATA_REFRESH_ERROR_TOTAL: &str = "kafka.client.metadata_refresh_error_total";
/// Time a successful metadata refresh took.
pub(crate) const METADATA_REFRESH_LATENCY_SECONDS: &str = "kafka.client.metadata_refresh_latency_seconds";

/// Describes this module's metrics (unit and meaning) to the installed recorder; called when a client is
/// created.
pub(crate) fn describe() {
    describe_counter!(METADATA_REFRESH_TOTAL, Unit::Count, "Metadata refreshes begun");
    describe_counter!(
        METADATA_REFRESH_ERROR_TOTAL,
        Unit::Count,
        "Metadata refreshes that failed"
    );
    describe_histogram!(
        METADATA_REFRESH_LATENCY_SECONDS,
        Unit::Seconds,
        "Time a successful metadata refresh took, connecting included"
    );
}

/// The metric handles of one client's metadata refreshes.
pub(crate) struct RefreshMetrics {
    refreshes: Counter,
    errors: Counter,
    latency: Histogram,
}

impl RefreshMetrics {
    pub(crate) fn new(client_id: &str) -> RefreshMetrics {
        let labels = [("client_id", client_id.to_owned())];
        RefreshMetrics {
            refreshes: counter!(METADATA_REFRESH_TOTAL, &labels),
            errors: counter!(METADATA_REFRESH_ERROR_TOTAL, &labels),
            latency: histogram!(METADATA_REFRESH_LATENCY_SECONDS, &labels),
        }
    }

    /// A refresh ended after `took`: `ok` or not.
    pub(crate) fn refreshed(&self, ok: bool, took: Duration) {
        self.refreshes.increment(1);
        match ok {
            true => self.latency.record(took),
            false => self.errors.increment(1),
        }
    }
}
