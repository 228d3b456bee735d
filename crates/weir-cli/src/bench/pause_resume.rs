//! `weir bench pause-resume`: the seed workload of application back-pressure. Records go from `poll` into a
//! bounded application buffer per partition, which worker threads drain; a partition whose buffer is full is
//! paused, and the worker that drains it below a threshold resumes it. Each record costs a few passes of a
//! cheap hash over its value.
//!
//! Ownership: partition `p` is always handed to worker `p % workers`, in the order `poll` returned its records,
//! so each worker checks that its partitions' offsets strictly increase. A partition's buffer (count and whether
//! the application paused it) sits behind its own lock, held across the client's pause or resume call, so the
//! flag and the client's state never disagree.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use weir::consumer::{Consumer, ConsumerConfig, ConsumerPartition, ConsumerRecord, TopicPartition};
use weir::Admin;

use super::consume::{payload_len, Counted};
use super::consumer_settings::{ConsumerSettings, StartAt};
use super::interrupt::Interrupt;
use super::report::{Measured, Report};
use super::resource_usage::ResourceUsage;
use super::run_length::{parse_duration, parse_warmup, RunLength, Warmup};
use super::topic;
use crate::util::{progress, CliError};
use crate::Global;

/// How long one poll waits at most: bounds how late the loop sees its end.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Arguments of `weir bench pause-resume`.
#[derive(Args, Debug)]
pub struct PauseResumeArgs {
    /// Topic to read (every partition); it must exist and hold records
    #[arg(short = 't', long = "topic")]
    pub topic: String,

    #[command(flatten)]
    pub length: RunLength,

    /// Warm-up before measuring: a time with its unit (1s), or N records; processed but not counted
    #[arg(long = "warmup", value_name = "N|TIME", default_value = "1s", value_parser = parse_warmup)]
    pub warmup: Warmup,

    /// Worker threads draining the application buffers
    #[arg(long = "workers", value_name = "W", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub workers: u64,

    /// Records a partition's application buffer holds before the partition is paused
    #[arg(long = "app-buffer", value_name = "N", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=(1 << 30)))]
    pub app_buffer: u64,

    /// A paused partition is resumed once its buffer drains below this many records (1 to --app-buffer)
    #[arg(long = "resume-below", value_name = "N", default_value_t = 250,
          value_parser = clap::value_parser!(u64).range(1..=(1 << 30)))]
    pub resume_below: u64,

    /// Passes of 64-bit FNV-1a over each value: the work each record costs
    #[arg(long = "work-rounds", value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub work_rounds: u64,

    /// Records taken from the consumer per poll at most
    #[arg(long = "poll-records", value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=(1 << 20)))]
    pub poll_records: u64,

    /// Where to start in each partition
    #[arg(long = "start", value_enum, default_value_t = StartAt::Earliest)]
    pub start: StartAt,

    #[command(flatten)]
    pub settings: ConsumerSettings,

    /// With --records: fail if no record is polled or processed for this long
    #[arg(long = "idle-timeout", value_name = "TIME", default_value = "10s", value_parser = parse_duration)]
    pub idle_timeout: Duration,

    /// Print one JSON object instead of the table
    #[arg(long = "json")]
    pub json: bool,
}

/// The per-record work: `rounds` passes of 64-bit FNV-1a over `v`.
fn fnv_work(v: &[u8], rounds: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for _ in 0..rounds {
        for &b in v {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// One partition's application buffer: records held, and whether the application paused the partition.
#[repr(align(64))]
#[derive(Default)]
struct AppBuffer {
    state: Mutex<(u64, bool)>,
}

/// What the poll loop and the workers share.
struct Shared {
    buffers: Vec<AppBuffer>,
    handles: Vec<ConsumerPartition>,
    resume_below: u64,
    rounds: u64,
    /// Records the workers finished.
    processed: AtomicU64,
    resumes: AtomicU64,
    /// Records in the application buffers now.
    buffered: AtomicU64,
    violations: AtomicU64,
    first_violation: Mutex<Option<String>>,
}

impl Shared {
    /// A worker: processes batches until the poll loop hangs up.
    fn work(&self, rx: mpsc::Receiver<Vec<ConsumerRecord>>) {
        let mut last_offset: Vec<Option<i64>> = vec![None; self.buffers.len()];
        while let Ok(batch) = rx.recv() {
            // Records of one partition are contiguous in a batch: settle each run at once.
            let mut i = 0;
            while i < batch.len() {
                let p = batch[i].partition as usize;
                let mut j = i;
                while j < batch.len() && batch[j].partition as usize == p {
                    let r = &batch[j];
                    std::hint::black_box(fnv_work(r.value.as_deref().unwrap_or_default(), self.rounds));
                    if let Some(last) = last_offset[p].filter(|&last| r.offset <= last) {
                        self.violation(format!(
                            "{}-{}: offset {} after {last}",
                            r.topic, r.partition, r.offset
                        ));
                    }
                    last_offset[p] = Some(r.offset);
                    j += 1;
                }
                let n = (j - i) as u64;
                i = j;
                self.processed.fetch_add(n, Ordering::Relaxed);
                self.buffered.fetch_sub(n, Ordering::Relaxed);
                let mut s = self.buffers[p].state.lock().unwrap_or_else(|e| e.into_inner());
                s.0 -= n;
                if s.1 && s.0 < self.resume_below {
                    s.1 = false;
                    if self.handles[p].resume().is_ok() {
                        self.resumes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    fn violation(&self, what: String) {
        self.violations.fetch_add(1, Ordering::Relaxed);
        self.first_violation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(what);
    }
}

pub async fn run(g: &Global, a: PauseResumeArgs) -> Result<(), CliError> {
    if a.resume_below > a.app_buffer {
        return Err(CliError::Usage(format!(
            "--resume-below {} is over --app-buffer {}: a partition is paused when its buffer holds \
             --app-buffer records and resumed below --resume-below, so give at most --app-buffer",
            a.resume_below, a.app_buffer
        )));
    }
    let mut cfg = ConsumerConfig::new(&g.brokers);
    a.settings.apply(|k, v| cfg.set(k, v))?;
    cfg.validate()?;
    let admin = Admin::new(cfg.client.clone())?;
    let count = topic::existing_partitions(&admin, &a.topic).await;
    let _ = admin.close().await;
    let count = count?;
    let consumer = Consumer::new(cfg)?;
    let tps: Vec<TopicPartition> = (0..count)
        .map(|p| TopicPartition::new(a.topic.as_str(), p))
        .collect();
    let assignment: Vec<_> = tps.iter().map(|tp| (tp.clone(), a.start.offset())).collect();
    consumer.assign(&assignment).await?;
    let handles: Vec<ConsumerPartition> = tps
        .iter()
        .map(|tp| {
            consumer
                .partition(tp)
                .ok_or_else(|| CliError::Failed(format!("{tp:?} is not assigned after assign")))
        })
        .collect::<Result<_, _>>()?;
    let shared = Arc::new(Shared {
        buffers: (0..count).map(|_| AppBuffer::default()).collect(),
        handles,
        resume_below: a.resume_below,
        rounds: a.work_rounds,
        processed: AtomicU64::new(0),
        resumes: AtomicU64::new(0),
        buffered: AtomicU64::new(0),
        violations: AtomicU64::new(0),
        first_violation: Mutex::new(None),
    });
    let workers = a.workers as usize;
    let mut senders = Vec::with_capacity(workers);
    let mut threads = Vec::with_capacity(workers);
    for w in 0..workers {
        let (tx, rx) = mpsc::channel::<Vec<ConsumerRecord>>();
        senders.push(tx);
        let shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("bench-worker-{w}"))
            .spawn(move || shared.work(rx))
            .map_err(|e| CliError::Failed(format!("cannot start worker thread {w}: {e}")))?;
        threads.push(thread);
    }

    let interrupt = Interrupt::install()?;
    let pb = progress(g.quiet, "processed");
    let started = Instant::now();
    let mut warm = Counted::default();
    let mut measured = Counted::default();
    let mut pauses = 0u64;
    let mut peak_buffered = 0u64;
    // Set when the warm-up ends: the measured part's start, and the pause and resume counts then.
    let mut t0: Option<(Instant, ResourceUsage, u64, u64)> = None;
    let mut last_progress = (Instant::now(), 0u64);
    let mut batches: Vec<Vec<ConsumerRecord>> = (0..workers).map(|_| Vec::new()).collect();
    let outcome: Result<(), CliError> = async {
        loop {
            if interrupt.requested() {
                return Ok(());
            }
            if t0.is_none() && a.warmup.is_done(warm.records, started.elapsed()) {
                let resumes = shared.resumes.load(Ordering::Relaxed);
                t0 = Some((Instant::now(), ResourceUsage::now(), pauses, resumes));
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
            let records = consumer.poll(max as usize, POLL_TIMEOUT).await?;
            let processed = shared.processed.load(Ordering::Relaxed);
            if !records.is_empty() || processed != last_progress.1 {
                last_progress = (Instant::now(), processed);
            } else if a.length.records.is_some() && last_progress.0.elapsed() >= a.idle_timeout {
                return Err(CliError::Failed(format!(
                    "only {} of {} records were polled after the warm-up: nothing polled or processed for {:?}",
                    measured.records,
                    a.length.records.unwrap_or_default(),
                    a.idle_timeout
                )));
            }
            // Count each partition's run into its buffer, pausing partitions that became full.
            let mut it = records.into_iter().peekable();
            while let Some(first) = it.next() {
                let p = first.partition as usize;
                let Some(buffer) = shared.buffers.get(p) else {
                    continue;
                };
                let mut run = vec![first];
                while let Some(r) = it.next_if(|r| r.partition as usize == p) {
                    run.push(r);
                }
                for r in &run {
                    if t0.is_none() && a.warmup.is_done(warm.records, started.elapsed()) {
                        let resumes = shared.resumes.load(Ordering::Relaxed);
                        t0 = Some((Instant::now(), ResourceUsage::now(), pauses, resumes));
                    }
                    if t0.is_none() {
                        warm.records += 1;
                        warm.bytes += payload_len(r);
                    } else {
                        measured.add(r);
                    }
                }
                let n = run.len() as u64;
                let now_buffered = shared.buffered.fetch_add(n, Ordering::Relaxed) + n;
                peak_buffered = peak_buffered.max(now_buffered);
                let mut s = buffer.state.lock().unwrap_or_else(|e| e.into_inner());
                s.0 += n;
                if !s.1 && s.0 >= a.app_buffer {
                    s.1 = true;
                    if shared.handles[p].pause().is_ok() {
                        pauses += 1;
                    }
                }
                drop(s);
                batches[p % workers].extend(run);
            }
            for (w, batch) in batches.iter_mut().enumerate() {
                if !batch.is_empty() && senders[w].send(std::mem::take(batch)).is_err() {
                    return Err(CliError::Failed(format!("worker thread {w} stopped")));
                }
            }
            if let Some(pb) = &pb {
                pb.set_position(shared.processed.load(Ordering::Relaxed));
            }
        }
    }
    .await;
    // The workers finish what they were handed.
    drop(senders);
    let mut panicked = 0;
    for t in threads {
        if t.join().is_err() {
            panicked += 1;
        }
    }
    let (t0, usage_start, pauses_start, resumes_start) =
        t0.unwrap_or_else(|| (Instant::now(), ResourceUsage::now(), pauses, 0));
    let wall = t0.elapsed();
    let usage_end = ResourceUsage::now();
    let stats = consumer.stats();
    let closed = consumer.close().await;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }

    let resumes = shared.resumes.load(Ordering::Relaxed);
    let processed = shared.processed.load(Ordering::Relaxed);
    let violations = shared.violations.load(Ordering::Relaxed);
    let secs = wall.as_secs_f64();
    let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let m = Measured {
        records: measured.records,
        payload_bytes: measured.bytes,
        wall,
        usage_start,
        usage_end,
        warmup_records: warm.records,
        warmup: t0.saturating_duration_since(started),
    };
    let mut report = Report::new("pause-resume", &m);
    report.flag("interrupted", "interrupted", interrupt.requested());
    report.count("pauses", "pauses", pauses - pauses_start);
    report.count("resumes", "resumes", resumes - resumes_start);
    report.number("pauses_per_sec", "pauses/s", per_sec(pauses - pauses_start), 0);
    report.number(
        "resumes_per_sec",
        "resumes/s",
        per_sec(resumes - resumes_start),
        0,
    );
    report.count(
        "peak_buffered",
        "peak buffered records (all partitions)",
        peak_buffered,
    );
    report.count("order_violations", "offset order violations", violations);
    report.count(
        "processed_total",
        "records processed, warm-up included",
        processed,
    );
    report.count("partitions", "partitions", count as u64);
    report.count("workers", "workers", a.workers);
    report.count("app_buffer", "app buffer (records)", a.app_buffer);
    report.count("resume_below", "resume below (records)", a.resume_below);
    report.count("work_rounds", "work rounds", a.work_rounds);
    report.count(
        "backpressure_pauses",
        "consumer backpressure pauses",
        stats.backpressure_pauses,
    );
    report.print(a.json)?;

    outcome?;
    if panicked > 0 {
        return Err(CliError::Failed(format!("{panicked} worker thread(s) panicked")));
    }
    if violations > 0 {
        let first = shared
            .first_violation
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default();
        return Err(CliError::Failed(format!(
            "{violations} records arrived out of offset order; the first: {first}"
        )));
    }
    if processed != warm.records + measured.records {
        return Err(CliError::Failed(format!(
            "{} records were polled but {processed} processed",
            warm.records + measured.records
        )));
    }
    closed.map_err(|e| CliError::Failed(format!("closing the consumer failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_work_is_fnv1a_repeated() {
        // FNV-1a 64 of "a" is the published test vector 0xaf63dc4c8601ec8c.
        assert_eq!(fnv_work(b"a", 1), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv_work(b"abc", 0), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fnv_work(b"abc", 2), fnv_work(b"abc", 1));
    }
}
