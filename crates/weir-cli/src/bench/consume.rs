//! `weir bench consume`: records read as fast as the consumer delivers them, from assigned partitions or as a
//! member of a group.

use std::time::{Duration, Instant};

use clap::Args;
use weir::consumer::{Consumer, ConsumerConfig, ConsumerRecord, ConsumerStats, TopicPartition};
use weir::group::{GroupConfig, GroupConsumer};
use weir::Admin;

use super::consumer_settings::{ConsumerSettings, StartAt};
use super::interrupt::Interrupt;
use super::report::{Measured, Report};
use super::resource_usage::ResourceUsage;
use super::run_length::{parse_duration, parse_warmup, RunLength, Warmup};
use super::topic;
use crate::util::{progress, CliError};
use crate::Global;

/// How long one poll waits at most: bounds how late a `--duration` run notices its end.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Arguments of `weir bench consume`.
#[derive(Args, Debug)]
pub struct ConsumeBenchArgs {
    /// Topic to read; it must exist
    #[arg(short = 't', long = "topic")]
    pub topic: String,

    #[command(flatten)]
    pub length: RunLength,

    /// Warm-up before measuring: N records, or a time with its unit (2s); read but not counted
    #[arg(long = "warmup", value_name = "N|TIME", default_value = "1000", value_parser = parse_warmup)]
    pub warmup: Warmup,

    /// Where to start: each partition's first record, or its end (with --group: for partitions without a
    /// committed offset)
    #[arg(long = "start", value_enum, default_value_t = StartAt::Earliest)]
    pub start: StartAt,

    /// Partitions to assign, comma-separated (default: all of the topic's)
    #[arg(
        short = 'p',
        long = "partition",
        value_name = "P,...",
        value_delimiter = ',',
        conflicts_with = "group"
    )]
    pub partitions: Vec<i32>,

    /// Consume as a member of this consumer group (partitions assigned by the group, offsets committed)
    #[arg(long = "group", value_name = "GROUP")]
    pub group: Option<String>,

    #[command(flatten)]
    pub settings: ConsumerSettings,

    /// Records taken from the consumer per poll at most
    #[arg(long = "poll-records", value_name = "N", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u64).range(1..=(1 << 20)))]
    pub poll_records: u64,

    /// With --records: fail if no record arrives for this long (the topic may hold fewer records)
    #[arg(long = "idle-timeout", value_name = "TIME", default_value = "10s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Print one JSON object instead of the table
    #[arg(long = "json")]
    pub json: bool,
}

/// The settings of a [`Source`].
enum SourceConfig {
    Assigned(ConsumerConfig),
    Group(GroupConfig),
}

/// A consumer of assigned partitions, or a group member.
enum Source {
    Assigned(Consumer),
    Group(GroupConsumer),
}

impl Source {
    async fn poll(&self, max: usize) -> weir::Result<Vec<ConsumerRecord>> {
        match self {
            Source::Assigned(c) => c.poll(max, POLL_TIMEOUT).await,
            Source::Group(g) => g.poll(max, POLL_TIMEOUT).await,
        }
    }

    fn stats(&self) -> ConsumerStats {
        match self {
            Source::Assigned(c) => c.stats(),
            Source::Group(g) => g.stats().consumer,
        }
    }

    async fn close(&self) -> weir::Result<()> {
        match self {
            Source::Assigned(c) => c.close().await,
            Source::Group(g) => g.close().await,
        }
    }
}

/// Key and value bytes of a record.
pub fn payload_len(r: &ConsumerRecord) -> u64 {
    (r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len())) as u64
}

pub async fn run(g: &Global, a: ConsumeBenchArgs) -> Result<(), CliError> {
    if let Some(p) = a.partitions.iter().find(|&&p| p < 0) {
        return Err(CliError::Usage(format!("-p {p}: partitions are 0 or more")));
    }
    let cfg = match &a.group {
        Some(group) => {
            let mut cfg = GroupConfig::new(&g.brokers, group);
            cfg.set("auto.offset.reset", a.start.reset())?;
            a.settings.apply(|k, v| cfg.set(k, v))?;
            SourceConfig::Group(cfg)
        }
        None => {
            let mut cfg = ConsumerConfig::new(&g.brokers);
            a.settings.apply(|k, v| cfg.set(k, v))?;
            cfg.validate()?;
            SourceConfig::Assigned(cfg)
        }
    };
    let client = match &cfg {
        SourceConfig::Assigned(c) => c.client.clone(),
        SourceConfig::Group(c) => c.consumer.client.clone(),
    };
    let admin = Admin::new(client)?;
    let count = topic::existing_partitions(&admin, &a.topic).await;
    let _ = admin.close().await;
    let count = count?;
    let source = match cfg {
        SourceConfig::Assigned(cfg) => {
            let partitions: Vec<i32> = if a.partitions.is_empty() {
                (0..count).collect()
            } else {
                a.partitions.clone()
            };
            if let Some(p) = partitions.iter().find(|&&p| p >= count) {
                return Err(CliError::Failed(format!(
                    "topic {:?} has {count} partition(s), there is no partition {p}",
                    a.topic
                )));
            }
            let consumer = Consumer::new(cfg)?;
            let assignment: Vec<_> = partitions
                .iter()
                .map(|&p| (TopicPartition::new(a.topic.as_str(), p), a.start.offset()))
                .collect();
            consumer.assign(&assignment).await?;
            Source::Assigned(consumer)
        }
        SourceConfig::Group(cfg) => {
            let group = GroupConsumer::new(cfg)?;
            group.subscribe(&[a.topic.as_str()]);
            Source::Group(group)
        }
    };

    let interrupt = Interrupt::install()?;
    let pb = progress(g.quiet, "consumed");
    let started = Instant::now();
    let mut warm = Counted::default();
    let mut measured = Counted::default();
    // Set when the warm-up ends: the measured part's start.
    let mut t0: Option<(Instant, ResourceUsage, ConsumerStats)> = None;
    let mut last_record = Instant::now();
    let outcome: Result<(), CliError> = async {
        loop {
            if interrupt.requested() {
                return Ok(());
            }
            if t0.is_none() && a.warmup.is_done(warm.records, started.elapsed()) {
                t0 = Some((Instant::now(), ResourceUsage::now(), source.stats()));
            }
            if let Some((t, ..)) = &t0 {
                if a.length.is_done(measured.records, t.elapsed()) {
                    return Ok(());
                }
            }
            let max = if t0.is_some() {
                a.length.remaining(measured.records).min(a.poll_records)
            } else {
                a.poll_records
            };
            let batch = source.poll(max as usize).await?;
            if batch.is_empty() {
                if a.length.records.is_some() && last_record.elapsed() >= a.idle_timeout {
                    return Err(CliError::Failed(format!(
                        "only {} of {} records arrived after the warm-up: none for {:?}",
                        measured.records,
                        a.length.records.unwrap_or_default(),
                        a.idle_timeout
                    )));
                }
                continue;
            }
            last_record = Instant::now();
            for r in &batch {
                if t0.is_none() {
                    if a.warmup.is_done(warm.records, started.elapsed()) {
                        t0 = Some((Instant::now(), ResourceUsage::now(), source.stats()));
                    } else {
                        warm.add(r);
                        continue;
                    }
                }
                if a.length.remaining(measured.records) > 0 {
                    measured.add(r);
                }
            }
            if let Some(pb) = &pb {
                pb.set_position(warm.records + measured.records);
            }
        }
    }
    .await;
    let (t0, usage_start, stats_start) =
        t0.unwrap_or_else(|| (Instant::now(), ResourceUsage::now(), source.stats()));
    let wall = t0.elapsed();
    let usage_end = ResourceUsage::now();
    let stats = source.stats();
    let closed = source.close().await;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }

    let m = Measured {
        records: measured.records,
        payload_bytes: measured.bytes,
        wall,
        usage_start,
        usage_end,
        warmup_records: warm.records,
        warmup: t0.saturating_duration_since(started),
    };
    let mut report = Report::new("consume", &m);
    report.flag("interrupted", "interrupted", interrupt.requested());
    report.count("partitions", "partitions", stats.partitions.len() as u64);
    report.optional_text("group", "group", a.group.as_deref());
    report.count("fetches", "fetches", stats.fetches - stats_start.fetches);
    report.count(
        "bytes_fetched",
        "bytes fetched",
        stats.bytes_fetched - stats_start.bytes_fetched,
    );
    report.count(
        "backpressure_pauses",
        "backpressure pauses",
        stats.backpressure_pauses - stats_start.backpressure_pauses,
    );
    report.print(a.json)?;
    outcome?;
    closed.map_err(|e| CliError::Failed(format!("closing the consumer failed: {e}")))
}

/// Records and their payload bytes.
#[derive(Default, Debug, Clone, Copy)]
pub struct Counted {
    /// Records.
    pub records: u64,
    /// Their key and value bytes.
    pub bytes: u64,
}

impl Counted {
    /// Counts `r`.
    pub fn add(&mut self, r: &ConsumerRecord) {
        self.records += 1;
        self.bytes += payload_len(r);
    }
}
