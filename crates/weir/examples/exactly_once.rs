//! Exactly-once consume-transform-produce: copies a topic to another, each input record exactly once in the
//! output as a read_committed consumer sees it, however often the copier crashes and restarts.
//!
//! ```text
//! cargo run -p weir --example exactly_once -- --brokers 127.0.0.1:9092 --input IN --output OUT \
//!     --group G --transactional-id T [--batch 500] [--idle-exit-ms MS] \
//!     [--group-config KEY=VALUE]... [--producer-config KEY=VALUE]...
//! ```
//!
//! Each record of `IN` partition *p* goes to `OUT` partition *p* with its key, value, headers and timestamp, so
//! the order within a partition is kept (`OUT` needs at least as many partitions as `IN`). The copier runs
//! until its stdin closes or, with `--idle-exit-ms`, until no input came for that long while it owned
//! partitions; then it finishes the current transaction and leaves. One line per committed transaction goes
//! to stderr (`WEIR_LOG=weir=debug` adds weir's log). `--group-config` and `--producer-config` set any other
//! property of the group member or of the producer (e.g. `group.instance.id`, `session.timeout.ms`,
//! `transaction.timeout.ms`).
//!
//! # The pattern
//!
//! 1. A transactional [`Producer`] (`transactional.id`) calls [`Producer::init_transactions`] **first**. This
//!    fences every earlier incarnation of the copier (same transactional id) and completes its open
//!    transaction: the coordinator aborts it, and answers only once the previous transaction of the id —
//!    committed or aborted — has its markers written, offsets included. So the committed offsets the group
//!    member fetches next are final: nothing of a crashed predecessor is still in flight.
//! 2. A [`GroupConsumer`] with `isolation.level=read_committed` (the input may itself be transactional: only
//!    committed records are copied), `enable.auto.commit=false` (offsets are committed *only* inside
//!    transactions, never on their own) and `auto.offset.reset=earliest` (a partition never committed is copied
//!    from its start) subscribes to the input.
//! 3. Per poll: `begin_transaction`; send every record; `send_offsets_to_transaction` with, per partition, the
//!    offset after the batch's last record, and the member's [`GroupConsumer::group_metadata`]; then
//!    `commit_transaction`. The output records and the input offsets commit atomically: after a crash, either
//!    both are there (the restarted copier continues after the batch) or neither (it copies the batch again,
//!    and read_committed consumers never see the first, aborted copy).
//! 4. When a transaction fails (a write refused, offsets refused because the group rebalanced and this member
//!    lost its generation, a coordinator that kept failing): `abort_transaction`, then **rewind** every
//!    partition of the batch to where the batch started, and carry on. The consumer's position has moved past
//!    the batch, but the batch was not committed: without the rewind its records would be skipped (lost).
//!    Where the batch started *is* the last committed offset of the partition: every earlier transaction of this
//!    copier either committed up to there or was itself rewound. The rewind uses this local knowledge and
//!    [`GroupConsumer::seek`] rather than [`GroupConsumer::committed`] (the Java client's
//!    `resetToLastCommittedPositions`): `commit_transaction` returns once the coordinator decided the commit,
//!    before the markers that make its offsets visible are written, so `committed()` right after has to wait
//!    for them (the group member asks for stable offsets), which the local knowledge does not. A partition revoked meanwhile cannot be
//!    sought (and needs not be): its next owner starts from its committed offset.
//! 5. A fencing error (another copier with the same transactional id took over) ends this copier.
//!
//! The group metadata is read before the poll and compared again before the transaction opens and before its
//! offsets are sent: when the member's generation changed (a rebalance, or the first join completing during the
//! poll), the batch may hold records of partitions this member no longer owns, and its offsets would be refused
//! (or, for a member that had no generation yet, not checked at all). Such a batch is rewound and polled again,
//! its transaction aborted if it was open.
//!
//! **Partitions that change owner.** Exactly-once across a rebalance also needs the partition's next owner to
//! wait until the previous owner's last transaction has completed before it reads the committed offset: weir's
//! group member asks for stable offsets (OffsetFetch `require_stable`, KIP-447), as the Java consumer does, and
//! the broker answers UNSTABLE_OFFSET_COMMIT (retried) meanwhile.
//!
//! `tests/exactly_once.rs` kills this copier with SIGKILL at random points, restarts it, and checks the
//! output holds every input record exactly once, in order.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use weir::config::ProducerConfig;
use weir::consumer::{StartOffset, TopicPartition};
use weir::error::KafkaCode;
use weir::group::{GroupConfig, GroupConsumer};
use weir::{Error, Producer, ProducerRecord};

/// When the process started: stderr lines say how long after it they were written.
static START: OnceLock<Instant> = OnceLock::new();

/// Writes one line to stderr: `eos <ms since the start> ms: ...`.
macro_rules! say {
    ($($arg:tt)*) => {
        eprintln!(
            "eos {:>6} ms: {}",
            START.get_or_init(Instant::now).elapsed().as_millis(),
            format_args!($($arg)*)
        )
    };
}

const USAGE: &str = "usage: exactly_once --brokers B --input IN --output OUT --group G --transactional-id T \
[--batch N] [--idle-exit-ms MS] [--group-config KEY=VALUE]... [--producer-config KEY=VALUE]...";

/// Command-line options.
struct Options {
    brokers: String,
    input: String,
    output: String,
    group: String,
    transactional_id: String,
    batch: usize,
    idle_exit: Option<Duration>,
    group_config: Vec<(String, String)>,
    producer_config: Vec<(String, String)>,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let (mut brokers, mut input, mut output, mut group, mut tid) = (None, None, None, None, None);
    let mut batch = 500;
    let mut idle_exit = None;
    let (mut group_config, mut producer_config) = (Vec::new(), Vec::new());
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|e| format!("{flag} {v:?}: {e}\n{USAGE}"))
        };
        let pair = |v: &str| {
            v.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("{flag} {v:?}: expected KEY=VALUE\n{USAGE}"))
        };
        match flag.as_str() {
            "--brokers" => brokers = Some(value),
            "--input" => input = Some(value),
            "--output" => output = Some(value),
            "--group" => group = Some(value),
            "--transactional-id" => tid = Some(value),
            "--batch" => batch = number(&value)?.max(1) as usize,
            "--idle-exit-ms" => idle_exit = Some(Duration::from_millis(number(&value)?)),
            "--group-config" => group_config.push(pair(&value)?),
            "--producer-config" => producer_config.push(pair(&value)?),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    let need = |v: Option<String>, name: &str| v.ok_or_else(|| format!("{name} is required\n{USAGE}"));
    Ok(Options {
        brokers: need(brokers, "--brokers")?,
        input: need(input, "--input")?,
        output: need(output, "--output")?,
        group: need(group, "--group")?,
        transactional_id: need(tid, "--transactional-id")?,
        batch,
        idle_exit,
        group_config,
        producer_config,
    })
}

/// Errors after which this copier cannot go on: another producer took the transactional id, or it is not
/// allowed; a static member whose instance id another instance took; a closed client.
fn fatal(e: &Error) -> bool {
    matches!(e, Error::Closed)
        || matches!(
            e.kafka_code(),
            Some(
                KafkaCode::ProducerFenced
                    | KafkaCode::InvalidProducerEpoch
                    | KafkaCode::TransactionalIdAuthorizationFailed
                    | KafkaCode::FencedInstanceId
            )
        )
}

/// Watches stdin on a thread of its own (a blocking read cannot be cancelled; a plain thread does not keep the
/// process alive at exit, unlike tokio's stdin): `stop` is set once stdin closes.
fn watch_stdin(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        // Anything written to stdin is ignored; only its end matters.
        let _ = std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut sink);
        stop.store(true, Ordering::SeqCst);
    });
}

/// Why a batch was not committed.
enum Failed {
    /// The member's generation changed since the poll (a rebalance, or the first join completing during
    /// it); no transaction was opened.
    Rebalanced(i32, i32),
    /// The transaction failed: it must be aborted.
    Txn(Error),
}

/// The member's generation moved away from `metadata`'s.
fn rebalanced(member: &GroupConsumer, metadata: &weir::producer::ConsumerGroupMetadata) -> Option<Failed> {
    let now = member.group_metadata();
    (now != *metadata).then_some(Failed::Rebalanced(metadata.generation_id, now.generation_id))
}

/// One transaction: the batch's records to the output and the positions after them to the group.
async fn copy_batch(
    producer: &Producer,
    member: &GroupConsumer,
    output: &str,
    records: &[weir::consumer::ConsumerRecord],
    positions: &[(TopicPartition, i64)],
    metadata: &weir::producer::ConsumerGroupMetadata,
) -> Result<(), Failed> {
    // Records polled across a change of generation may belong to partitions this member lost, and offsets sent
    // with the wrong generation would be refused (or, for a member that had none yet, not checked): such a
    // batch is rewound and polled again, before and while its transaction is open.
    if let Some(f) = rebalanced(member, metadata) {
        return Err(f);
    }
    producer.begin_transaction().map_err(Failed::Txn)?;
    for r in records {
        let record = ProducerRecord {
            topic: output.to_owned(),
            partition: Some(r.partition),
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r.headers.clone(),
            timestamp: Some(r.timestamp),
        };
        // The delivery future is not needed: `commit_transaction` waits for every record of the transaction
        // and fails if one of them failed.
        drop(producer.send(record).await.map_err(Failed::Txn)?);
    }
    if let Some(Failed::Rebalanced(before, now)) = rebalanced(member, metadata) {
        return Err(Failed::Txn(Error::InvalidArgument(format!(
            "the group rebalanced during the transaction (generation {before} -> {now})"
        ))));
    }
    producer
        .send_offsets_to_transaction(positions, metadata)
        .await
        .map_err(Failed::Txn)?;
    producer.commit_transaction().await.map_err(Failed::Txn)
}

/// Aborts the open transaction, retrying a few times; `Err` when it cannot be aborted (fenced, or the
/// coordinator kept failing): the copier exits, and the next one's `init_transactions` aborts it.
async fn abort(producer: &Producer) -> weir::Result<()> {
    let mut attempt = 0;
    loop {
        match producer.abort_transaction().await {
            Ok(()) => return Ok(()),
            Err(e) if fatal(&e) || attempt >= 3 => return Err(e),
            Err(e) => {
                attempt += 1;
                say!("abort failed ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn describe(offsets: &[(TopicPartition, i64)]) -> String {
    offsets
        .iter()
        .map(|(tp, o)| format!("{tp}={o}"))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn run(opts: Options) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    watch_stdin(stop.clone());

    let mut pcfg = ProducerConfig::new(&opts.brokers);
    pcfg.set("transactional.id", &opts.transactional_id)
        .map_err(|e| e.to_string())?;
    for (k, v) in &opts.producer_config {
        pcfg.set(k, v)
            .map_err(|e| format!("--producer-config {k}: {e}"))?;
    }
    let producer = Producer::new(pcfg).map_err(|e| e.to_string())?;
    // Before the group member exists, so that the offsets it fetches are final (see the module comment).
    producer
        .init_transactions()
        .await
        .map_err(|e| format!("init_transactions: {e}"))?;
    say!("producer ready (transactional id {})", opts.transactional_id);

    let mut gcfg = GroupConfig::new(&opts.brokers, &opts.group);
    for (k, v) in [
        ("isolation.level", "read_committed"),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
    ] {
        gcfg.set(k, v).map_err(|e| e.to_string())?;
    }
    for (k, v) in &opts.group_config {
        gcfg.set(k, v).map_err(|e| format!("--group-config {k}: {e}"))?;
    }
    if gcfg.enable_auto_commit {
        return Err("enable.auto.commit=true would commit offsets outside the transactions".into());
    }
    let member = GroupConsumer::new(gcfg).map_err(|e| e.to_string())?;
    member.subscribe(&[opts.input.as_str()]);

    let (mut committed, mut aborted, mut copied) = (0u64, 0u64, 0u64);
    let mut last_input = Instant::now();
    let mut owned: Vec<TopicPartition> = Vec::new();
    let result = loop {
        if stop.load(Ordering::SeqCst) {
            say!("stdin closed");
            break Ok(());
        }
        if let Some(idle) = opts.idle_exit {
            // Idle time counts only while the member owns partitions: waiting to join is not "no input".
            if member.assignment().is_empty() {
                last_input = Instant::now();
            } else if last_input.elapsed() >= idle {
                say!("no input for {idle:?}");
                break Ok(());
            }
        }
        // Read before the poll: the generation the records are delivered in (checked again before committing).
        let metadata = member.group_metadata();
        let records = match member.poll(opts.batch, Duration::from_millis(200)).await {
            Ok(records) => records,
            Err(e) if fatal(&e) => break Err(format!("poll: {e}")),
            Err(e) => {
                // A group error (reported once); the member goes on by itself.
                say!("poll: {e}");
                continue;
            }
        };
        let assignment = member.assignment();
        if assignment != owned {
            say!(
                "owning {:?} (generation {})",
                assignment.iter().map(|tp| tp.to_string()).collect::<Vec<_>>(),
                member.group_metadata().generation_id
            );
            owned = assignment;
        }
        if records.is_empty() {
            continue;
        }
        // Per partition: where the batch starts (to rewind to) and the offset after its last record (to
        // commit). A poll delivers each partition's records contiguously and in order.
        let mut span: BTreeMap<TopicPartition, (i64, i64)> = BTreeMap::new();
        for r in &records {
            let tp = TopicPartition::new(r.topic.clone(), r.partition);
            let e = span.entry(tp).or_insert((r.offset, r.offset + 1));
            e.0 = e.0.min(r.offset);
            e.1 = e.1.max(r.offset + 1);
        }
        let positions: Vec<(TopicPartition, i64)> =
            span.iter().map(|(tp, (_, next))| (tp.clone(), *next)).collect();
        let txn = committed + aborted + 1;
        match copy_batch(&producer, &member, &opts.output, &records, &positions, &metadata).await {
            Ok(()) => {
                committed += 1;
                copied += records.len() as u64;
                say!(
                    "committed txn {txn}: {} records, generation {}, next offsets {}",
                    records.len(),
                    metadata.generation_id,
                    describe(&positions)
                );
            }
            Err(Failed::Txn(e)) if fatal(&e) => break Err(format!("txn {txn}: {e}")),
            Err(failed) => {
                let why = match failed {
                    Failed::Rebalanced(before, now) => {
                        format!("not opened: generation {before} -> {now} since the poll")
                    }
                    Failed::Txn(e) => {
                        aborted += 1;
                        if let Err(e) = abort(&producer).await {
                            break Err(format!("txn {txn}: abort failed: {e}"));
                        }
                        format!("aborted: {e}")
                    }
                };
                // Rewind to the last committed offsets: where the batch started (see the module comment).
                let mut rewound = Vec::new();
                for (tp, (first, _)) in &span {
                    match member.seek(tp, StartOffset::Offset(*first)).await {
                        Ok(()) => rewound.push((tp.clone(), *first)),
                        // Revoked meanwhile: its next owner starts from the committed offset.
                        Err(e) => say!("not rewinding {tp}: {e}"),
                    }
                }
                say!("txn {txn} {why}; rewound {}", describe(&rewound));
            }
        }
        // Idle time is time spent polling without input, not time spent in transactions.
        last_input = Instant::now();
    };
    say!("{committed} transactions committed, {aborted} aborted, {copied} records copied");
    // No commit on close: auto-commit is off, every offset was committed by a transaction.
    if let Err(e) = member.close().await {
        say!("leaving the group: {e}");
    }
    if let Err(e) = producer.close().await {
        say!("closing the producer: {e}");
    }
    result
}

#[tokio::main]
async fn main() -> ExitCode {
    START.get_or_init(Instant::now);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(opts).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
