//! Reading a known number of records from a consumer on a real cluster, for tests that count what arrives.

use std::time::Duration;

use weir::consumer::{Consumer, ConsumerRecord};

/// Polls until `n` more records arrived, within a minute; no error may surface.
pub async fn read(c: &Consumer, n: usize) -> Vec<ConsumerRecord> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while got.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "read {} of {n} records: {:?}",
            got.len(),
            got.last().map(|r: &ConsumerRecord| r.offset)
        );
        got.extend(
            c.poll(1000, Duration::from_millis(200))
                .await
                .expect("no error surfaces"),
        );
    }
    got
}
