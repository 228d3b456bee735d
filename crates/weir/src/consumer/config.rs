//! Consumer settings.

use std::time::Duration;

use crate::config::properties::{resolve, Key, Scope};
use crate::config::{boolean, kib, ms, num, ClientConfig};
use crate::error::{Error, Result};

/// What to do when the fetch position is out of range or there is no starting offset (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// Jump to the log start.
    Earliest,
    /// Jump to the end.
    Latest,
    /// Report [`Error::Kafka`] with `OffsetOutOfRange` for that partition and stop fetching it.
    None,
}

/// Which records a consumer reads (`isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IsolationLevel {
    /// Every record, transactional or not, committed or not (the default, as in the Java client).
    #[default]
    ReadUncommitted,
    /// Records up to the last stable offset, without those of aborted transactions; the end of a partition
    /// (`Latest`, lag) is its last stable offset.
    ReadCommitted,
}

impl IsolationLevel {
    pub(crate) fn wire(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// Consumer settings.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Shared client settings.
    pub client: ClientConfig,
    /// Longest time the broker may hold a fetch waiting for data (`fetch.max.wait.ms` /
    /// `fetch.wait.max.ms`, default 500 ms as the Java client).
    pub fetch_max_wait: Duration,
    /// Minimum bytes the broker should gather before answering (`fetch.min.bytes`, default 1).
    pub fetch_min_bytes: i32,
    /// Upper bound on one fetch response (`fetch.max.bytes`, default 50 MiB); also capped by the memory budget.
    pub fetch_max_bytes: usize,
    /// Per-partition buffer high watermark in bytes of memory (`weir.partition.buffer.bytes`, default 8 MiB):
    /// a partition holding this much undelivered data is not fetched. Records count what they hold (values,
    /// keys, headers, and their own entries), so small records take several times their wire size. With
    /// rate-sized buffers (`buffer_target`, the default) this is the most a partition's limit grows to; with
    /// fixed watermarks, when the budget cannot give every assigned partition this much, each gets its fair
    /// share instead (`memory_budget / assigned`), so full or paused partitions never starve the others. The
    /// broker is asked for what a partition can still buffer, divided by the memory a wire byte has recently
    /// cost (`max.partition.fetch.bytes`).
    pub partition_buffer: usize,
    /// Per-partition low watermark (`weir.partition.buffer.low.bytes`, default half the high watermark, 4 MiB):
    /// fetching resumes once the buffer drains to this.
    pub partition_buffer_low: usize,
    /// Consumer-wide budget of buffered bytes of memory (`weir.memory.budget.bytes`, default 64 MiB).
    pub memory_budget: usize,
    /// Rate-sized buffers (`weir.buffer.target.ms`, default 1 s; zero: fixed watermarks, each partition's fair
    /// share of the budget): each partition's high watermark
    /// follows how fast the application drains it, times this window, between `partition_buffer_min` and
    /// `partition_buffer`, within the budget. A partition drained fast gets the budget that paused, idle or slow
    /// ones do not use; the low watermark keeps its ratio to the high one. At most an hour.
    pub buffer_target: Duration,
    /// The smallest rate-sized partition buffer (`weir.partition.buffer.min.bytes`, default 64 KiB), or half the
    /// fair share of the budget when that is smaller: what an idle or paused partition keeps as its high
    /// watermark. The floors never take more than half the budget.
    pub partition_buffer_min: usize,
    /// Reset policy (`auto.offset.reset`, default latest as the Java client).
    pub auto_offset_reset: OffsetReset,
    /// Verify CRC-32C of fetched batches (`check.crcs`, default true). A batch failing its check may have been
    /// damaged in transit: the records before it are delivered and it is fetched again, after `retry.backoff.ms`,
    /// up to three fetches in a row; only then is it reported from `poll` as [`crate::Error::CorruptRecords`]
    /// (topic, partition, offset), and its partition stops until a seek while the others go on. Other corrupt
    /// data is reported at once (its CRC holds, so the broker stores it so). With `false`, damage goes
    /// unnoticed unless it breaks the decoding.
    pub check_crcs: bool,
    /// Fetch requests in flight per broker (`weir.fetches.in.flight`, default 2): read-ahead while the first
    /// response is being decoded.
    pub fetches_in_flight: usize,
    /// Which records are read (`isolation.level`, default read_uncommitted).
    pub isolation_level: IsolationLevel,
    /// How often the per-partition metrics (buffered bytes, buffer limit, paused, lag, fetches) are copied
    /// from the partitions' state to the installed `metrics` recorder (`weir.metrics.interval.ms`, default 1 s;
    /// zero: never). One pass over the assigned partitions per interval, off the fetch and poll paths (about
    /// half a millisecond for 10,000 partitions); consumer-wide metrics do not depend on it.
    pub metrics_interval: Duration,
    /// The consumer's rack (`client.rack`, default none; KIP-392). Sent with every fetch and in the group
    /// subscription: brokers configured with a rack-aware `replica.selector.class` then name a replica in this
    /// rack, and the partition is fetched from it (a follower serves what the leader has made durable). A
    /// failure of that replica, or an offset it does not have yet, sends the partition back to its leader;
    /// after `metadata.max.age.ms` the leader is asked again.
    pub client_rack: Option<String>,
}

impl ConsumerConfig {
    /// Defaults with the given comma-separated bootstrap list.
    pub fn new(bootstrap: &str) -> Self {
        Self {
            client: ClientConfig::new(bootstrap),
            fetch_max_wait: Duration::from_millis(500),
            fetch_min_bytes: 1,
            fetch_max_bytes: 50 * 1024 * 1024,
            partition_buffer: 8 * 1024 * 1024,
            partition_buffer_low: 4 * 1024 * 1024,
            memory_budget: 64 * 1024 * 1024,
            buffer_target: Duration::from_secs(1),
            partition_buffer_min: 64 * 1024,
            auto_offset_reset: OffsetReset::Latest,
            check_crcs: true,
            fetches_in_flight: 2,
            isolation_level: IsolationLevel::ReadUncommitted,
            metrics_interval: Duration::from_secs(1),
            client_rack: None,
        }
    }

    /// Sets the per-partition high watermark, and the low watermark to half of it.
    pub fn with_partition_buffer(mut self, bytes: usize) -> Self {
        self.partition_buffer = bytes.max(1);
        self.partition_buffer_low = self.partition_buffer / 2;
        self
    }

    /// Sets one property by its Java / librdkafka name (or a `weir.*` name; client properties included); an
    /// unknown key, or one of another configuration, is an error.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        self.apply(resolve(name, Scope::Consumer)?, name, value)
    }

    /// Applies a client or consumer property.
    pub(crate) fn apply(&mut self, key: Key, name: &str, value: &str) -> Result<()> {
        if self.client.apply(key, name, value)? {
            return Ok(());
        }
        match key {
            Key::FetchMaxWait => self.fetch_max_wait = ms(name, value)?,
            Key::FetchMinBytes => self.fetch_min_bytes = num(name, value)?,
            Key::FetchMaxBytes => self.fetch_max_bytes = num(name, value)?,
            Key::PartitionBuffer => *self = self.clone().with_partition_buffer(num(name, value)?),
            Key::PartitionBufferLow => self.partition_buffer_low = num(name, value)?,
            Key::MemoryBudget => self.memory_budget = num(name, value)?,
            Key::BufferTarget => self.buffer_target = target_window(name, value)?,
            Key::PartitionBufferMin => self.partition_buffer_min = num(name, value)?,
            Key::MemoryBudgetKb => self.memory_budget = kib(name, value)?,
            Key::AutoOffsetReset => {
                self.auto_offset_reset = match value {
                    "earliest" | "smallest" | "beginning" => OffsetReset::Earliest,
                    "latest" | "largest" | "end" => OffsetReset::Latest,
                    "none" | "error" => OffsetReset::None,
                    _ => {
                        return Err(Error::Config(format!(
                            "auto.offset.reset: unknown policy {value:?}"
                        )))
                    }
                }
            }
            Key::CheckCrcs => self.check_crcs = boolean(name, value)?,
            Key::FetchesInFlight => self.fetches_in_flight = num::<usize>(name, value)?.max(1),
            Key::MetricsInterval => self.metrics_interval = ms(name, value)?,
            Key::ClientRack => self.client_rack = Some(value.to_owned()).filter(|r| !r.is_empty()),
            Key::IsolationLevel => {
                self.isolation_level = match value {
                    "read_uncommitted" => IsolationLevel::ReadUncommitted,
                    "read_committed" => IsolationLevel::ReadCommitted,
                    _ => {
                        return Err(Error::Config(format!(
                            "isolation.level: expected read_uncommitted or read_committed, got {value:?}"
                        )))
                    }
                }
            }
            _ => unreachable!("resolve checked the scope of {name}"),
        }
        Ok(())
    }

    /// Checks combinations that cannot work together.
    pub fn validate(&self) -> Result<()> {
        if self.partition_buffer_low > self.partition_buffer {
            return Err(Error::Config(
                "the partition buffer low watermark exceeds the high watermark".into(),
            ));
        }
        if self.buffer_target > MAX_BUFFER_TARGET {
            return Err(Error::Config(format!(
                "weir.buffer.target.ms: at most {} ms (an hour), got {} ms",
                MAX_BUFFER_TARGET.as_millis(),
                self.buffer_target.as_millis()
            )));
        }
        if self.memory_budget == 0 || self.partition_buffer == 0 {
            return Err(Error::Config(
                "the memory budget and the partition buffer must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// The longest target window of rate-sized buffers: an hour of a partition's drain rate.
const MAX_BUFFER_TARGET: Duration = Duration::from_secs(3600);

/// Parses `weir.buffer.target.ms`: 0 (fixed watermarks) to an hour, in milliseconds.
fn target_window(name: &str, value: &str) -> Result<Duration> {
    let refused = || {
        Error::Config(format!(
            "{name}: expected 0 (fixed watermarks) to {} ms, got {value:?}",
            MAX_BUFFER_TARGET.as_millis()
        ))
    };
    let ms: u64 = value.trim().parse().map_err(|_| refused())?;
    let window = Duration::from_millis(ms);
    if window > MAX_BUFFER_TARGET {
        return Err(refused());
    }
    Ok(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_window_is_zero_to_an_hour() {
        let mut cfg = ConsumerConfig::new("localhost:9092");
        assert_eq!(cfg.buffer_target, Duration::from_secs(1), "rate-sized, a second");
        cfg.set("weir.buffer.target.ms", "1500").unwrap();
        assert_eq!(cfg.buffer_target, Duration::from_millis(1500));
        cfg.set("weir.buffer.target.ms", "3600000").unwrap();
        cfg.validate().unwrap();
        for refused in ["-5", "3600001", "99999999999999999999", "1s", ""] {
            let e = cfg.set("weir.buffer.target.ms", refused).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("weir.buffer.target.ms") && msg.contains("0 (fixed watermarks) to 3600000 ms"),
                "{refused}: {msg}"
            );
        }
        assert_eq!(
            cfg.buffer_target,
            Duration::from_secs(3600),
            "a refused value changes nothing"
        );
        cfg.set("weir.buffer.target.ms", "0").unwrap();
        assert_eq!(cfg.buffer_target, Duration::ZERO);

        // Set directly, past the bound: refused when the consumer is made.
        cfg.buffer_target = Duration::from_secs(7200);
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("at most 3600000 ms"));
    }

    #[test]
    fn the_floor_of_rate_sized_buffers() {
        let mut cfg = ConsumerConfig::new("localhost:9092");
        assert_eq!(cfg.partition_buffer_min, 64 << 10);
        cfg.set("weir.partition.buffer.min.bytes", "4096").unwrap();
        assert_eq!(cfg.partition_buffer_min, 4096);
    }
}
