//! `weir bench latency`: records produced at a fixed rate while a consumer in the same process reads them;
//! end-to-end (send → receive) and produce (send → acknowledgement) latency percentiles.
//!
//! Coordinated omission: record `i` is due at `origin + i / rate` (the schedule), and both latencies are
//! measured from that intended time, not from when `send` was actually called. A producer that stalls (a full
//! buffer, a slow broker) thus delays the records behind it in the figures too, as it would delay an
//! application's, instead of silently sending fewer of them.
//!
//! Each value starts with a 24-byte header: the run's id, the record's number in the schedule and its intended
//! send time (nanoseconds since the schedule's origin, on this process's monotonic clock), all big-endian;
//! letters and digits fill the rest. Records of other runs (other ids) are counted and ignored.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use clap::Args;
use futures::stream::{FuturesUnordered, StreamExt};
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use tokio::sync::watch;
use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, TopicPartition};
use weir::producer::RecordMetadata;
use weir::{Admin, Compression, Producer, ProducerRecord};

use super::interrupt::Interrupt;
use super::payload::{Payloads, SplitMix64};
use super::produce::MAX_RECORD_SIZE;
use super::report::{Measured, Report};
use super::resource_usage::ResourceUsage;
use super::run_length::{parse_duration, parse_warmup, Warmup};
use super::topic::{self, TopicArgs};
use crate::util::{parse_prop, progress, CliError};
use crate::Global;

/// Bytes of the header at the start of every value.
pub const HEADER_LEN: u64 = 24;
/// Highest `--rate` accepted.
const MAX_RATE: u64 = 10_000_000;
/// Records taken per poll by the reading side.
const POLL_RECORDS: usize = 16 * 1024;
/// How long one poll of the reading side waits at most (bounds how late it sees that it is done).
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Arguments of `weir bench latency`.
#[derive(Args, Debug)]
pub struct LatencyArgs {
    #[command(flatten)]
    pub topic: TopicArgs,

    /// Records per second, evenly spaced (each sent when due, by a thread sleeping until then)
    #[arg(long = "rate", value_name = "MSG_PER_S",
          value_parser = clap::value_parser!(u64).range(1..=MAX_RATE))]
    pub rate: u64,

    /// How long to produce after the warm-up: 30s, 500ms, 2m, or plain seconds
    #[arg(long = "duration", value_name = "D", value_parser = parse_duration)]
    pub duration: Duration,

    /// Warm-up before measuring: a time with its unit (1s), or the first N records of the schedule; produced
    /// and read but not counted
    #[arg(long = "warmup", value_name = "N|TIME", default_value = "1s", value_parser = parse_warmup)]
    pub warmup: Warmup,

    /// Bytes of each value, the 24-byte header included
    #[arg(long = "record-size", value_name = "BYTES", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(HEADER_LEN..=MAX_RECORD_SIZE))]
    pub record_size: u64,

    /// Compression codec: none, gzip, snappy, lz4 or zstd
    #[arg(short = 'z', long = "compression", value_name = "CODEC")]
    pub compression: Option<String>,

    /// linger.ms of the producer (weir's default: 5)
    #[arg(long = "linger-ms", value_name = "MS")]
    pub linger_ms: Option<u64>,

    /// acks: 0, 1 or all (default all); with 0 or 1 idempotence is turned off
    #[arg(long = "acks", value_name = "ACKS")]
    pub acks: Option<String>,

    /// fetch.max.wait.ms of the consumer (default 500; the broker answers as soon as fetch.min.bytes arrived)
    #[arg(long = "fetch-max-wait-ms", value_name = "MS")]
    pub fetch_max_wait_ms: Option<u64>,

    /// A producer or consumer property (Java / librdkafka name); it goes to every side that knows it, so client
    /// settings (security) reach both (repeatable)
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub props: Vec<String>,

    /// After the last send: how long to wait for every acknowledged record to be read
    #[arg(long = "drain-timeout", value_name = "TIME", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,

    /// Print one JSON object instead of the table
    #[arg(long = "json")]
    pub json: bool,
}

/// The schedule: record `i` is due `i / rate` seconds after the origin.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    rate: u64,
    /// Records of the warm-up (the first ones).
    pub warmup: u64,
    /// Records measured, after the warm-up.
    pub measured: u64,
}

impl Schedule {
    /// The schedule of `rate` records per second, a warm-up and `duration` measured.
    pub fn new(rate: u64, warmup: Warmup, duration: Duration) -> Schedule {
        let records_in = |d: Duration| (d.as_nanos() * rate as u128 / 1_000_000_000) as u64;
        let warmup = match warmup {
            Warmup::Records(n) => n,
            Warmup::Time(d) => records_in(d),
        };
        Schedule {
            rate,
            warmup,
            measured: records_in(duration),
        }
    }

    /// All records of the run.
    pub fn total(&self) -> u64 {
        self.warmup.saturating_add(self.measured)
    }

    /// When record `i` is due, after the origin.
    pub fn due(&self, i: u64) -> Duration {
        let ns = i as u128 * 1_000_000_000 / self.rate as u128;
        Duration::from_nanos(ns.min(u64::MAX as u128) as u64)
    }
}

/// The header of a value: run id, record number, intended send time.
fn header(run: u64, seq: u64, due: Duration) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(&run.to_be_bytes());
    h[8..16].copy_from_slice(&seq.to_be_bytes());
    h[16..].copy_from_slice(&(due.as_nanos().min(u64::MAX as u128) as u64).to_be_bytes());
    h
}

/// Reads a header written by run `run`: the record number and its intended send time.
fn parse_header(run: u64, value: &[u8]) -> Option<(u64, Duration)> {
    let h = value.get(..HEADER_LEN as usize)?;
    let word = |i: usize| u64::from_be_bytes(h[i..i + 8].try_into().unwrap_or_default());
    (word(0) == run).then(|| (word(8), Duration::from_nanos(word(16))))
}

/// Highest latency tracked; longer ones are recorded as this (a record an hour late is lost anyway).
const MAX_TRACKED: Duration = Duration::from_secs(3600);

/// Latencies in nanoseconds, 1 ns to [`MAX_TRACKED`], to 3 significant digits (about 0.5 MB).
fn histogram() -> Histogram<u64> {
    // Valid bounds (1 <= low, high >= 2 * low) and precision (3 <= 5): this cannot fail.
    Histogram::new_with_bounds(1, nanos(MAX_TRACKED), 3)
        .unwrap_or_else(|_| unreachable!("valid histogram bounds and precision"))
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// Producer and consumer settings from the options; `-X` goes to each side that knows the key.
fn configs(g: &Global, a: &LatencyArgs) -> Result<(ProducerConfig, ConsumerConfig), CliError> {
    let mut p = ProducerConfig::new(&g.brokers);
    let mut c = ConsumerConfig::new(&g.brokers);
    for prop in &a.props {
        let (k, v) = parse_prop(prop)?;
        let to_producer = p.set(k, v);
        let to_consumer = c.set(k, v);
        if let (Err(e), Err(_)) = (to_producer, to_consumer) {
            return Err(CliError::Usage(format!("-X {k}={v}: {e}")));
        }
    }
    let usage =
        |flag: &str, v: &dyn std::fmt::Display, e: weir::Error| CliError::Usage(format!("{flag} {v}: {e}"));
    if let Some(z) = &a.compression {
        p.compression = z
            .parse::<Compression>()
            .map_err(|_| CliError::Usage(format!("-z {z:?}: expected none, gzip, snappy, lz4 or zstd")))?;
    }
    if let Some(ms) = a.linger_ms {
        p.set("linger.ms", &ms.to_string())
            .map_err(|e| usage("--linger-ms", &ms, e))?;
    }
    if let Some(acks) = &a.acks {
        p.set("acks", acks).map_err(|e| usage("--acks", acks, e))?;
        let idempotence_set = a
            .props
            .iter()
            .any(|p| p.trim_start().starts_with("enable.idempotence"));
        if acks != "all" && acks != "-1" && !idempotence_set {
            p.idempotence = false;
        }
    }
    if let Some(ms) = a.fetch_max_wait_ms {
        c.set("fetch.max.wait.ms", &ms.to_string())
            .map_err(|e| usage("--fetch-max-wait-ms", &ms, e))?;
    }
    if a.record_size > p.max_record_size as u64 {
        return Err(CliError::Usage(format!(
            "--record-size {} is over the producer's max.request.size ({} bytes): raise it with \
             -X max.request.size=BYTES",
            a.record_size, p.max_record_size
        )));
    }
    p.validate()?;
    c.validate()?;
    Ok((p, c))
}

/// What the acknowledgements said.
struct Acks {
    /// Send → acknowledgement of the measured records.
    latency: Histogram<u64>,
    /// Records acknowledged, warm-up included.
    acked: u64,
    /// Measured records acknowledged.
    acked_measured: u64,
    failed: u64,
    first_error: Option<String>,
}

impl Acks {
    fn new() -> Acks {
        Acks {
            latency: histogram(),
            acked: 0,
            acked_measured: 0,
            failed: 0,
            first_error: None,
        }
    }

    /// Counts the outcome of record `seq`, due at `due`, resolved now.
    fn tally(
        &mut self,
        seq: u64,
        due: Duration,
        result: weir::Result<RecordMetadata>,
        origin: Instant,
        warmup: u64,
    ) {
        match result {
            Ok(_) => {
                self.acked += 1;
                if seq >= warmup {
                    self.acked_measured += 1;
                    let now: Duration = Instant::now() - origin;
                    self.latency.saturating_record(nanos(now.saturating_sub(due)));
                }
            }
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert(e.to_string());
            }
        }
    }
}

/// A delivery future with the record's number and due time.
type Pending = Pin<Box<dyn Future<Output = (u64, Duration, weir::Result<RecordMetadata>)> + Send>>;

/// What the schedule's thread leaves behind.
struct Sent {
    /// Measured records sent.
    measured: u64,
    /// Resource usage when the first measured record was due.
    usage_start: Option<ResourceUsage>,
    error: Option<String>,
    acks: Acks,
    /// Delivery futures not yet resolved.
    pending: FuturesUnordered<Pending>,
}

/// Sends the schedule's records, each when it is due, on this (blocking, non-runtime) thread: std's sleep is
/// precise to tens of microseconds where tokio's timer fires on its next 1 ms tick, which would send records in
/// bursts of rate/1000 and add up to 1 ms to their latency. The delivery futures are polled here between two
/// records, with a waker that does nothing, so an acknowledgement wakes no thread and is timed at most one
/// interval (1 / rate) late.
fn send_schedule(
    rt: &tokio::runtime::Handle,
    producer: &Producer,
    plan: &Plan,
    interrupt: &Interrupt,
    pb: Option<&ProgressBar>,
) -> Sent {
    let &Plan {
        ref topic,
        run,
        record_size,
        schedule,
        origin,
        ref payloads,
    } = plan;
    let mut sent = Sent {
        measured: 0,
        usage_start: None,
        error: None,
        acks: Acks::new(),
        pending: FuturesUnordered::new(),
    };
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    for seq in 0..schedule.total() {
        if interrupt.requested() {
            break;
        }
        let due = schedule.due(seq);
        if seq == schedule.warmup {
            sent.usage_start = Some(ResourceUsage::now());
        }
        // Behind schedule (a slow send): send at once, the latency still counts from `due`.
        if let Some(wait) = due.checked_sub(origin.elapsed()) {
            std::thread::sleep(wait);
        }
        let mut value = BytesMut::with_capacity(record_size);
        value.put_slice(&header(run, seq, due));
        value.put_slice(&payloads.value(seq)[HEADER_LEN as usize..]);
        let record = ProducerRecord::new(topic.as_str(), Bytes::from(value));
        match rt.block_on(producer.send(record)) {
            Ok(f) => {
                sent.pending.push(Box::pin(async move { (seq, due, f.await) }));
                if seq >= schedule.warmup {
                    sent.measured += 1;
                }
            }
            Err(e) => {
                sent.error = Some(format!("cannot produce to {topic:?}: {e}"));
                break;
            }
        }
        while let Poll::Ready(Some((seq, due, result))) = sent.pending.poll_next_unpin(&mut cx) {
            sent.acks.tally(seq, due, result, origin, schedule.warmup);
        }
        if let (Some(pb), 0) = (pb, seq % 64) {
            pb.set_position(seq + 1);
        }
    }
    sent
}

/// What the schedule's thread needs to build the records.
struct Plan {
    topic: String,
    run: u64,
    record_size: usize,
    schedule: Schedule,
    origin: Instant,
    payloads: Payloads,
}

/// What the reading side saw.
struct Receipts {
    /// Send → receive of the measured records.
    latency: Histogram<u64>,
    /// Records of this run read, warm-up included.
    received: u64,
    /// Measured records read.
    received_measured: u64,
    /// Records of other runs.
    foreign: u64,
    /// When the last measured record was read.
    last: Option<Instant>,
    error: Option<String>,
}

/// Reads until `done` names how many records to expect and that many arrived, or its deadline passed.
async fn receive(
    consumer: &Consumer,
    run: u64,
    origin: Instant,
    warmup: u64,
    mut done: watch::Receiver<Option<(u64, Instant)>>,
) -> Receipts {
    let mut r = Receipts {
        latency: histogram(),
        received: 0,
        received_measured: 0,
        foreign: 0,
        last: None,
        error: None,
    };
    loop {
        if let Some((expected, deadline)) = *done.borrow_and_update() {
            if r.received >= expected || Instant::now() >= deadline {
                return r;
            }
        }
        let batch = match consumer.poll(POLL_RECORDS, POLL_TIMEOUT).await {
            Ok(b) => b,
            Err(e) => {
                r.error = Some(e.to_string());
                return r;
            }
        };
        let now = Instant::now();
        let since_origin = now - origin;
        for rec in &batch {
            match rec.value.as_deref().and_then(|v| parse_header(run, v)) {
                Some((seq, due)) => {
                    r.received += 1;
                    if seq >= warmup {
                        r.received_measured += 1;
                        r.latency
                            .saturating_record(nanos(since_origin.saturating_sub(due)));
                        r.last = Some(now);
                    }
                }
                None => r.foreign += 1,
            }
        }
    }
}

pub async fn run(g: &Global, a: LatencyArgs) -> Result<(), CliError> {
    let (pcfg, ccfg) = configs(g, &a)?;
    let schedule = Schedule::new(a.rate, a.warmup, a.duration);
    if schedule.measured == 0 {
        return Err(CliError::Usage(format!(
            "--rate {} for --duration {:?} schedules no record to measure",
            a.rate, a.duration
        )));
    }
    let admin = Admin::new(pcfg.client.clone())?;
    let partitions = topic::ensure(&admin, &a.topic).await;
    let _ = admin.close().await;
    let partitions = partitions?;
    let topic = a.topic.topic.as_str();

    // The reader starts at the end of every partition before the first record is sent.
    let consumer = Arc::new(Consumer::new(ccfg)?);
    let assignment: Vec<_> = (0..partitions)
        .map(|p| (TopicPartition::new(topic, p), weir::consumer::StartOffset::Latest))
        .collect();
    consumer.assign(&assignment).await?;
    let producer = Producer::new(pcfg)?;
    let payloads = Payloads::new(a.record_size as usize, 0);
    let run = {
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        SplitMix64::new(clock ^ u64::from(std::process::id())).next_u64()
    };

    let origin = Instant::now();
    let (done_tx, done_rx) = watch::channel(None);
    let reader = {
        let consumer = consumer.clone();
        tokio::spawn(async move { receive(&consumer, run, origin, schedule.warmup, done_rx).await })
    };

    let interrupt = Interrupt::install()?;
    let pb = progress(g.quiet, "sent");
    let sending = {
        let (rt, producer, interrupt, pb) = (
            tokio::runtime::Handle::current(),
            producer.clone(),
            interrupt.clone(),
            pb.clone(),
        );
        let plan = Plan {
            topic: topic.to_owned(),
            run,
            record_size: a.record_size as usize,
            schedule,
            origin,
            payloads,
        };
        tokio::task::spawn_blocking(move || send_schedule(&rt, &producer, &plan, &interrupt, pb.as_ref()))
    };
    let Sent {
        measured: sent_measured,
        usage_start,
        error: send_error,
        mut acks,
        mut pending,
    } = sending
        .await
        .map_err(|e| CliError::Failed(format!("the sending thread failed: {e}")))?;
    let usage_start = usage_start.unwrap_or_else(ResourceUsage::now);
    let flushed = producer.flush().await;
    while let Some((seq, due, result)) = pending.next().await {
        acks.tally(seq, due, result, origin, schedule.warmup);
    }
    let _ = done_tx.send(Some((acks.acked, Instant::now() + a.drain_timeout)));
    let receipts = reader
        .await
        .map_err(|e| CliError::Failed(format!("the reading task failed: {e}")))?;
    let usage_end = ResourceUsage::now();
    let measured_start = origin + schedule.due(schedule.warmup);
    let wall = receipts
        .last
        .map_or(Duration::ZERO, |l| l.saturating_duration_since(measured_start));
    let closed = producer.close().await;
    let _ = consumer.close().await;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }

    let m = Measured {
        records: receipts.received_measured,
        payload_bytes: receipts.received_measured * a.record_size,
        wall,
        usage_start,
        usage_end,
        warmup_records: schedule.warmup,
        warmup: schedule.due(schedule.warmup),
    };
    let mut report = Report::new("latency", &m);
    report.count("rate", "rate (records/s)", a.rate);
    report.number("duration_s", "duration s", a.duration.as_secs_f64(), 3);
    report.count("partitions", "partitions", partitions as u64);
    report.count("record_size", "record size (value bytes)", a.record_size);
    report.flag("interrupted", "interrupted", interrupt.requested());
    report.count("sent", "sent (measured)", sent_measured);
    report.count("acked", "acknowledged (measured)", acks.acked_measured);
    report.count("failed", "failed", acks.failed);
    let missing = acks.acked.saturating_sub(receipts.received);
    report.count("missing", "acknowledged, not read", missing);
    report.count("foreign", "records of other runs", receipts.foreign);
    percentiles(&mut report, E2E_KEYS, "end-to-end", &receipts.latency);
    percentiles(&mut report, ACK_KEYS, "send → ack", &acks.latency);
    report.print(a.json)?;

    if let Some(e) = send_error {
        return Err(CliError::Failed(e));
    }
    if let Some(e) = receipts.error {
        return Err(CliError::Failed(format!("reading the records failed: {e}")));
    }
    if acks.failed > 0 {
        return Err(CliError::Failed(format!(
            "{} records failed: {}",
            acks.failed,
            acks.first_error.unwrap_or_default()
        )));
    }
    if missing > 0 {
        return Err(CliError::Failed(format!(
            "{missing} acknowledged records were not read within {:?} after the last send",
            a.drain_timeout
        )));
    }
    flushed.map_err(|e| CliError::Failed(format!("flush failed: {e}")))?;
    closed.map_err(|e| CliError::Failed(format!("closing the producer failed: {e}")))
}

/// JSON keys of the end-to-end latencies: p50, p90, p99, p99.9, max (microseconds).
const E2E_KEYS: [&str; 5] = [
    "e2e_p50_us",
    "e2e_p90_us",
    "e2e_p99_us",
    "e2e_p99_9_us",
    "e2e_max_us",
];
/// JSON keys of the send → acknowledgement latencies, likewise.
const ACK_KEYS: [&str; 5] = [
    "ack_p50_us",
    "ack_p90_us",
    "ack_p99_us",
    "ack_p99_9_us",
    "ack_max_us",
];
/// The quantiles reported before the maximum, with their names.
const QUANTILES: [(&str, f64); 4] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)];

/// Adds the percentiles and the maximum of `h` (nanoseconds) in microseconds, under `keys`.
fn percentiles(report: &mut Report, keys: [&'static str; 5], label: &str, h: &Histogram<u64>) {
    for ((name, q), key) in QUANTILES.iter().zip(keys) {
        let us = h.value_at_quantile(*q) as f64 / 1e3;
        report.number(key, &format!("{label} {name} µs"), us, 1);
    }
    report.number(keys[4], &format!("{label} max µs"), h.max() as f64 / 1e3, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_even_and_counts_exactly() {
        let s = Schedule::new(
            200,
            Warmup::Time(Duration::from_millis(500)),
            Duration::from_secs(2),
        );
        assert_eq!(s.warmup, 100);
        assert_eq!(s.measured, 400);
        assert_eq!(s.total(), 500);
        assert_eq!(s.due(0), Duration::ZERO);
        assert_eq!(s.due(1), Duration::from_millis(5));
        assert_eq!(s.due(400), Duration::from_secs(2));
        let s = Schedule::new(3, Warmup::Records(7), Duration::from_millis(999));
        assert_eq!((s.warmup, s.measured), (7, 2));
        assert_eq!(s.due(1), Duration::from_nanos(333_333_333));
    }

    #[test]
    fn histograms_keep_latencies_from_nanoseconds_to_an_hour() {
        let mut h = histogram();
        for ms in 1..=100u64 {
            h.saturating_record(nanos(Duration::from_millis(ms)));
        }
        h.saturating_record(nanos(Duration::from_secs(7200)));
        let p50 = h.value_at_quantile(0.5) as f64;
        // 101 values: the median is the 51st, 51 ms (to 3 significant digits).
        assert!((p50 - 51e6).abs() <= 51e6 * 1e-3, "{p50}");
        assert!(
            (h.max() as f64 - 3600e9).abs() <= 3600e9 * 1e-3,
            "an hour at most: {}",
            h.max()
        );
    }

    #[test]
    fn headers_round_trip_and_other_runs_are_told_apart() {
        let h = header(42, 7, Duration::from_nanos(123_456_789));
        let mut value = h.to_vec();
        value.extend_from_slice(b"payload");
        assert_eq!(
            parse_header(42, &value),
            Some((7, Duration::from_nanos(123_456_789)))
        );
        assert_eq!(parse_header(43, &value), None);
        assert_eq!(parse_header(42, &value[..23]), None);
    }
}
