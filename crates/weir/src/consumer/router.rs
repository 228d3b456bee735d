//! The router: partitions without a (valid) leader wait in the state table's unrouted queue; this task looks
//! their leaders up (refreshing metadata when needed) and hands each to its leader's fetcher.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::partition::Partition;
use super::state_table::FetchGroupId;
use super::Inner;

/// Routes partitions without a (valid) leader to their leader's fetcher, refreshing metadata as needed.
pub(crate) async fn route(inner: Arc<Inner>) {
    let unrouted = inner
        .table
        .fetch_group(FetchGroupId::UNROUTED)
        .expect("the unrouted group always exists");
    let mut waiting: Vec<Arc<Partition>> = Vec::new();
    let mut backoff = inner.cfg.client.retry_backoff;
    loop {
        if inner.is_closed() {
            return;
        }
        unrouted.take_ready(&mut waiting);
        if waiting.is_empty() {
            inner.router_wake.wait().await;
            continue;
        }
        // Every cell is visited (no short cut): each flag is cleared once it has been acted on.
        let stale = waiting.iter().fold(false, |any, p| {
            p.slot().stale_leader.swap(false, Ordering::Relaxed) | any
        });
        let mut snap = inner.cluster.snapshot();
        let unknown = waiting.iter().any(|c| {
            let tp = c.topic_partition();
            snap.topic(&tp.topic)
                .and_then(|t| t.leader(tp.partition))
                .is_none()
        });
        if stale || unknown {
            match inner.cluster.refresh(false).await {
                Ok(s) => snap = s,
                Err(e) => tracing::debug!(error = %e, "metadata refresh failed"),
            }
        }
        let mut still: Vec<Arc<Partition>> = Vec::new();
        let mut by_broker: BTreeMap<i32, Vec<Arc<Partition>>> = BTreeMap::new();
        for cell in waiting.drain(..) {
            let tp = cell.topic_partition();
            let topic = snap.topic(&tp.topic);
            match topic
                .as_ref()
                .and_then(|t| t.partition(tp.partition))
                .filter(|p| p.leader >= 0)
            {
                Some(p) => {
                    let was = cell.slot().leader_epoch.swap(p.leader_epoch, Ordering::Relaxed);
                    if was >= 0 && p.leader_epoch >= 0 && was != p.leader_epoch {
                        // A new leader: its log may have diverged from the one fetched (KIP-320).
                        cell.slot().validate.store(true, Ordering::Relaxed);
                    }
                    by_broker.entry(p.leader).or_default().push(cell)
                }
                None => still.push(cell),
            }
        }
        for (broker, cells) in by_broker {
            let f = inner.fetcher(broker);
            for cell in cells {
                // To its leader: a replica it was fetched from before is forgotten.
                cell.slot().replica_until_ms.store(0, Ordering::Relaxed);
                cell.set_fetch_group(f.group.id());
                cell.forward();
            }
        }
        if still.is_empty() {
            backoff = inner.cfg.client.retry_backoff;
        } else {
            // Keep them (still QUEUED, owned here) and try again after a backoff.
            waiting = still;
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = inner.router_wake.wait() => {}
            }
            backoff = inner.cfg.client.next_retry_backoff(backoff);
            for cell in waiting.drain(..) {
                unrouted.defer(cell);
            }
        }
    }
}
