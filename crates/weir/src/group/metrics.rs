//! A group member's metrics, through the `metrics` facade: rebalances completed and how long each took. The
//! consumer's own metrics (records, fetches, partitions) come from its inner [`crate::consumer::Consumer`].

use metrics::{Counter, Histogram, SharedString, Unit};

/// Rebalances completed (counter).
pub(crate) const REBALANCE_TOTAL: &str = "kafka.consumer.rebalance_total";
/// How long each rebalance took, from leaving the old generation to being stable in the new one (histogram,
/// seconds).
pub(crate) const REBALANCE_LATENCY: &str = "kafka.consumer.rebalance_latency_seconds";

/// A member's handles, registered once when it is created.
pub(crate) struct GroupMetrics {
    pub(crate) rebalances: Counter,
    pub(crate) rebalance_latency: Histogram,
}

impl GroupMetrics {
    /// Registers the handles of a member of `group` with `client.id` `client_id`.
    pub(crate) fn new(client_id: &str, group: &str) -> GroupMetrics {
        metrics::describe_counter!(
            REBALANCE_TOTAL,
            Unit::Count,
            "Rebalances this member completed (joining the group the first time included)"
        );
        metrics::describe_histogram!(
            REBALANCE_LATENCY,
            Unit::Seconds,
            "Time from setting out to join a generation (revocations, failed attempts and backoffs included) to \
             being stable in it"
        );
        let labels = [
            ("client_id", SharedString::from(client_id.to_owned())),
            ("group", SharedString::from(group.to_owned())),
        ];
        GroupMetrics {
            rebalances: metrics::counter!(REBALANCE_TOTAL, &labels),
            rebalance_latency: metrics::histogram!(REBALANCE_LATENCY, &labels),
        }
    }
}
