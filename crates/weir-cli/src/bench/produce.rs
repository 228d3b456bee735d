//! `weir bench produce`: records of a given size sent as fast as the producer takes them, each counted once
//! the broker acknowledged it.

use std::collections::VecDeque;
use std::time::Instant;

use clap::Args;
use weir::config::ProducerConfig;
use weir::producer::DeliveryFuture;
use weir::{Admin, Compression, Producer, ProducerRecord};

use super::interrupt::Interrupt;
use super::payload::Payloads;
use super::report::{Measured, Report};
use super::resource_usage::ResourceUsage;
use super::run_length::{parse_warmup, RunLength, Warmup};
use super::topic::{self, TopicArgs};
use crate::util::{apply_props, progress, CliError};
use crate::Global;

/// Largest `--record-size` accepted (the broker's limits are far lower; this only rejects absurd values).
pub const MAX_RECORD_SIZE: u64 = 1 << 30;
/// Largest `--key-size` accepted.
pub const MAX_KEY_SIZE: u64 = 1 << 20;
/// How often (in records) the progress bar is updated.
const PROGRESS_EVERY: u64 = 1024;

/// Arguments of `weir bench produce`.
#[derive(Args, Debug)]
pub struct ProduceBenchArgs {
    #[command(flatten)]
    pub topic: TopicArgs,

    #[command(flatten)]
    pub length: RunLength,

    /// Warm-up before measuring: N records, or a time with its unit (2s); sent and acknowledged (all of them,
    /// before the measured part starts) but not counted
    #[arg(long = "warmup", value_name = "N|TIME", default_value = "1000", value_parser = parse_warmup)]
    pub warmup: Warmup,

    /// Bytes of each value: letters and digits, the same on every run (compressible like text)
    #[arg(long = "record-size", value_name = "BYTES", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(0..=MAX_RECORD_SIZE))]
    pub record_size: u64,

    /// Bytes of each key, different per record (0: null keys, which the sticky partitioner batches per
    /// partition; keys spread records by murmur2)
    #[arg(long = "key-size", value_name = "BYTES", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=MAX_KEY_SIZE))]
    pub key_size: u64,

    /// Compression codec: none, gzip, snappy, lz4 or zstd (overrides -X compression.type)
    #[arg(short = 'z', long = "compression", value_name = "CODEC")]
    pub compression: Option<String>,

    /// linger.ms: how long a batch may wait for more records (weir's default: 5)
    #[arg(long = "linger-ms", value_name = "MS")]
    pub linger_ms: Option<u64>,

    /// batch.size: largest batch in bytes (weir's default: 1 MiB)
    #[arg(long = "batch-size", value_name = "BYTES")]
    pub batch_size: Option<u64>,

    /// acks: 0, 1 or all (default all). With 0 or 1, idempotence is turned off unless -X enable.idempotence
    /// says otherwise
    #[arg(long = "acks", value_name = "ACKS")]
    pub acks: Option<String>,

    /// Any other producer property (Java / librdkafka name), e.g. -X buffer.memory=134217728 (repeatable)
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub props: Vec<String>,

    /// Deliveries awaited at most at once; beyond this, sending waits for the oldest acknowledgement
    #[arg(long = "max-in-flight-records", value_name = "N", default_value_t = crate::produce::WINDOW as u64,
          value_parser = clap::value_parser!(u64).range(1..=(1 << 24)))]
    pub max_in_flight_records: u64,

    /// Print one JSON object instead of the table
    #[arg(long = "json")]
    pub json: bool,
}

/// The producer settings: -X, then the named options over them.
pub fn producer_config(g: &Global, a: &ProduceBenchArgs) -> Result<ProducerConfig, CliError> {
    let mut cfg = ProducerConfig::new(&g.brokers);
    apply_props(&a.props, |k, v| cfg.set(k, v))?;
    let usage =
        |flag: &str, v: &dyn std::fmt::Display, e: weir::Error| CliError::Usage(format!("{flag} {v}: {e}"));
    if let Some(z) = &a.compression {
        cfg.compression = z
            .parse::<Compression>()
            .map_err(|_| CliError::Usage(format!("-z {z:?}: expected none, gzip, snappy, lz4 or zstd")))?;
    }
    if let Some(ms) = a.linger_ms {
        cfg.set("linger.ms", &ms.to_string())
            .map_err(|e| usage("--linger-ms", &ms, e))?;
    }
    if let Some(b) = a.batch_size {
        cfg.set("batch.size", &b.to_string())
            .map_err(|e| usage("--batch-size", &b, e))?;
    }
    if let Some(acks) = &a.acks {
        cfg.set("acks", acks).map_err(|e| usage("--acks", acks, e))?;
        let idempotence_set = a
            .props
            .iter()
            .any(|p| p.trim_start().starts_with("enable.idempotence"));
        if acks != "all" && acks != "-1" && !idempotence_set {
            cfg.idempotence = false;
        }
    }
    let record = a.record_size + a.key_size;
    if record > cfg.max_record_size as u64 {
        return Err(CliError::Usage(format!(
            "--record-size {} with --key-size {} is over the producer's max.request.size ({} bytes): raise it \
             with -X max.request.size=BYTES (the topic's max.message.bytes must allow it too)",
            a.record_size, a.key_size, cfg.max_record_size
        )));
    }
    cfg.validate()?;
    Ok(cfg)
}

pub async fn run(g: &Global, a: ProduceBenchArgs) -> Result<(), CliError> {
    let cfg = producer_config(g, &a)?;
    let admin = Admin::new(cfg.client.clone())?;
    let partitions = topic::ensure(&admin, &a.topic).await;
    let _ = admin.close().await;
    let partitions = partitions?;
    let compression = cfg.compression.to_string();
    let acks = a.acks.clone().unwrap_or_else(|| "all".into());
    let payloads = Payloads::new(a.record_size as usize, a.key_size as usize);
    let interrupt = Interrupt::install()?;
    let producer = Producer::new(cfg)?;
    let pb = progress(g.quiet, "acknowledged");
    let mut d = Deliveries::new(a.max_in_flight_records as usize);
    let topic = a.topic.topic.as_str();
    let mut seq = 0u64;

    let outcome: Result<(), String> = async {
        let started = Instant::now();
        while !a.warmup.is_done(seq, started.elapsed()) && !interrupt.requested() {
            d.send(&producer, topic, &payloads, seq).await?;
            seq += 1;
        }
        // The measured part starts with nothing in flight.
        d.settle_all().await;
        Ok(())
    }
    .await;
    let warmup_records = d.acked;
    let warmup_failed = d.failed;
    let warmup = Instant::now() - d.started;
    let usage_start = ResourceUsage::now();
    let t0 = Instant::now();
    d.acked = 0;

    let outcome = match outcome {
        Err(e) => Err(e),
        Ok(()) => {
            async {
                let mut sent = 0u64;
                while !a.length.is_done(sent, t0.elapsed()) && !interrupt.requested() {
                    d.send(&producer, topic, &payloads, seq).await?;
                    seq += 1;
                    sent += 1;
                    if let (Some(pb), 0) = (&pb, sent % PROGRESS_EVERY) {
                        pb.set_position(warmup_records + d.acked);
                    }
                }
                Ok(())
            }
            .await
        }
    };
    let flushed = producer.flush().await;
    d.settle_all().await;
    let wall = t0.elapsed();
    let usage_end = ResourceUsage::now();
    let stats = producer.stats();
    let closed = producer.close().await;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }

    let measured = Measured {
        records: d.acked,
        payload_bytes: d.acked * (a.record_size + a.key_size),
        wall,
        usage_start,
        usage_end,
        warmup_records,
        warmup,
    };
    let mut report = Report::new("produce", &measured);
    report.flag("interrupted", "interrupted", interrupt.requested());
    report.count("failed", "failed records", d.failed);
    report.count("partitions", "partitions", partitions as u64);
    report.count("record_size", "record size (value bytes)", a.record_size);
    report.count("key_size", "key size (bytes)", a.key_size);
    report.text("compression", "compression", &compression);
    report.text("acks", "acks", &acks);
    report.count("batches", "batches sent", stats.batches_sent);
    report.count("produce_requests", "produce requests", stats.produce_requests);
    report.count("retries", "record retries", stats.record_retries);
    report.print(a.json)?;

    let total_acked = warmup_records + d.acked;
    if let Err(e) = outcome {
        return Err(CliError::Failed(format!(
            "{e} ({total_acked} records were acknowledged before)"
        )));
    }
    if d.failed > 0 {
        return Err(CliError::Failed(format!(
            "{} of {} records failed ({} in the warm-up): {}",
            d.failed,
            total_acked + d.failed,
            warmup_failed,
            d.first_error.unwrap_or_default()
        )));
    }
    flushed.map_err(|e| CliError::Failed(format!("flush failed: {e}")))?;
    closed.map_err(|e| CliError::Failed(format!("closing the producer failed: {e}")))?;
    Ok(())
}

/// Delivery futures in flight, oldest first, and what the settled ones said.
struct Deliveries {
    pending: VecDeque<DeliveryFuture>,
    window: usize,
    /// Records acknowledged (since the counter was last reset).
    acked: u64,
    /// Records that failed, over the whole run.
    failed: u64,
    first_error: Option<String>,
    started: Instant,
}

impl Deliveries {
    fn new(window: usize) -> Deliveries {
        Deliveries {
            pending: VecDeque::new(),
            window,
            acked: 0,
            failed: 0,
            first_error: None,
            started: Instant::now(),
        }
    }

    /// Sends record `seq`; waits for the oldest delivery when the window is full. `Err` for a failure that
    /// ends the run (unknown topic, closed producer); a record too large only counts as failed.
    async fn send(
        &mut self,
        producer: &Producer,
        topic: &str,
        payloads: &Payloads,
        seq: u64,
    ) -> Result<(), String> {
        let record = ProducerRecord {
            topic: topic.to_owned(),
            key: payloads.key(seq),
            value: Some(payloads.value(seq)),
            ..Default::default()
        };
        match producer.send(record).await {
            Ok(f) => self.pending.push_back(f),
            Err(e @ weir::Error::RecordTooLarge { .. }) => self.fail(e.to_string()),
            Err(e) => return Err(format!("cannot produce to {topic:?}: {e}")),
        }
        while self.pending.len() >= self.window {
            self.settle_oldest().await;
        }
        Ok(())
    }

    fn fail(&mut self, e: String) {
        self.failed += 1;
        self.first_error.get_or_insert(e);
    }

    async fn settle_oldest(&mut self) {
        if let Some(f) = self.pending.pop_front() {
            match f.await {
                Ok(_) => self.acked += 1,
                Err(e) => self.fail(e.to_string()),
            }
        }
    }

    async fn settle_all(&mut self) {
        while !self.pending.is_empty() {
            self.settle_oldest().await;
        }
    }
}
