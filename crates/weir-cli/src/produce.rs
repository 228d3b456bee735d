//! `weir produce`: one record per line of stdin, pipelined.

use std::collections::VecDeque;
use std::io::Read;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;
use weir::config::ProducerConfig;
use weir::producer::DeliveryFuture;
use weir::{Compression, Producer, ProducerRecord};

use crate::util::{apply_props, progress, unescape, CliError};
use crate::{Global, ProduceArgs};

pub const AFTER_HELP: &str = "\
Each line of stdin (newline removed) becomes one record; empty lines are skipped, as in kcat.
Records are sent pipelined; weir exits 0 only after the broker acknowledged every record, otherwise it
reports how many failed and the first error, and exits 1.

Transactions: with -X transactional.id=ID the records are written in transactions, one per --txn-records N
records (default: the whole input is one transaction), each committed before the next begins; a transaction
that cannot commit is aborted (none of its records becomes visible to read_committed consumers) and weir
exits 1, saying how many records earlier transactions committed.

Example: seq 1000 | weir produce -b 127.0.0.1:9092 -t events -K : -z zstd -X linger.ms=20
         seq 1000 | weir produce -t events -X transactional.id=loader-1 --txn-records 100";

/// Deliveries awaited at most; beyond this `send` waits for the oldest acknowledgement.
pub(crate) const WINDOW: usize = 256 * 1024;
/// Size of one read from stdin.
const READ_CHUNK: usize = 1 << 20;

pub async fn run(g: &Global, a: ProduceArgs) -> Result<(), CliError> {
    let mut cfg = ProducerConfig::new(&g.brokers);
    apply_props(&a.props, |k, v| cfg.set(k, v))?;
    if let Some(z) = &a.compression {
        let codec: Compression = z
            .parse()
            .map_err(|_| CliError::Usage(format!("-z {z:?}: expected none, gzip, snappy, lz4 or zstd")))?;
        cfg.compression = codec;
    }
    cfg.validate()?;
    let key_delim = match a.key_delimiter.as_deref().map(unescape) {
        Some(d) if d.is_empty() => return Err(CliError::Usage("-K: the key delimiter is empty".into())),
        d => d,
    };
    let partition = a.partition.filter(|&p| p >= 0);
    let mut headers = Vec::with_capacity(a.headers.len());
    for h in &a.headers {
        let (k, v) = h
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("-H {h:?}: expected NAME=VALUE")))?;
        headers.push((k.to_string(), Some(Bytes::copy_from_slice(v.as_bytes()))));
    }

    let transactional = cfg.transactional_id.is_some();
    let producer = Producer::new(cfg)?;
    if transactional {
        producer.init_transactions().await?;
        producer.begin_transaction()?;
    }
    let mut txn = Txn::default();
    let pb = progress(g.quiet, "produced");
    let mut chunks = spawn_stdin_reader();
    let mut st = State::default();
    let mut fatal: Option<String> = None;

    'input: while let Some(chunk) = chunks.recv().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                fatal = Some(format!("reading stdin: {e}"));
                break;
            }
        };
        let mut start = 0;
        while start < chunk.len() {
            let end = memchr::memchr(b'\n', &chunk[start..]).map_or(chunk.len(), |i| start + i);
            let line = chunk.slice(start..end);
            start = end + 1;
            if line.is_empty() {
                continue;
            }
            let mut rec = ProducerRecord::tombstone(a.topic.as_str());
            match &key_delim {
                Some(d) => match memchr::memmem::find(&line, d) {
                    Some(i) => {
                        rec.key = Some(line.slice(..i));
                        rec.value = Some(line.slice(i + d.len()..));
                    }
                    None => rec.value = Some(line),
                },
                None => rec.value = Some(line),
            }
            rec.partition = partition;
            if !headers.is_empty() {
                rec.headers = headers.clone();
            }
            st.total += 1;
            txn.records += 1;
            match producer.send(rec).await {
                Ok(d) => st.pending.push_back(d),
                Err(e @ weir::Error::RecordTooLarge { .. }) => st.fail(e.to_string()),
                Err(e) => {
                    st.total -= 1;
                    fatal = Some(format!("cannot produce to {:?}: {e}", a.topic));
                    break 'input;
                }
            }
            if st.pending.len() >= WINDOW {
                st.settle_oldest().await;
            }
            if transactional && a.txn_records > 0 && txn.records >= a.txn_records {
                if let Err(e) = txn.end(&producer, &mut st, true).await {
                    fatal = Some(e);
                    break 'input;
                }
            }
        }
        if let Some(pb) = &pb {
            pb.set_position(st.total);
        }
    }
    drop(chunks);

    if transactional && fatal.is_none() {
        if let Err(e) = txn.end(&producer, &mut st, false).await {
            fatal = Some(e);
        }
    }
    if let Err(e) = producer.flush().await {
        fatal.get_or_insert_with(|| format!("flush failed: {e}"));
    }
    while !st.pending.is_empty() {
        st.settle_oldest().await;
    }
    if let Err(e) = producer.close().await {
        fatal.get_or_insert_with(|| format!("closing the producer failed: {e}"));
    }
    if let Some(pb) = &pb {
        pb.set_position(st.total);
        pb.finish();
    }

    let acked = st.total - st.failed;
    match (fatal, st.failed) {
        (None, 0) => Ok(()),
        (None, n) => Err(CliError::Failed(format!(
            "{n} of {} records failed: {}",
            st.total,
            st.first_error.unwrap_or_default()
        ))),
        (Some(f), 0) if acked == 0 => Err(CliError::Failed(f)),
        (Some(f), 0) => Err(CliError::Failed(format!(
            "{f} ({acked} records were acknowledged before)"
        ))),
        (Some(f), n) => Err(CliError::Failed(format!(
            "{f} ({acked} records were acknowledged before; {n} of {} sent records failed: {})",
            st.total,
            st.first_error.unwrap_or_default()
        ))),
    }
}

/// The open transaction of a transactional run.
#[derive(Default)]
struct Txn {
    /// Records sent in it.
    records: u64,
    /// Records of committed transactions.
    committed: u64,
}

impl Txn {
    /// Commits the open transaction (its records all acknowledged), then begins the next unless this is the
    /// last; a transaction that cannot commit is aborted and its records counted as failed.
    async fn end(&mut self, producer: &Producer, st: &mut State, more: bool) -> Result<(), String> {
        let n = std::mem::take(&mut self.records);
        match producer.commit_transaction().await {
            Ok(()) => {
                while !st.pending.is_empty() {
                    st.settle_oldest().await;
                }
                self.committed += n;
                if more {
                    producer.begin_transaction().map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            Err(e) => {
                let _ = producer.abort_transaction().await;
                st.pending.clear();
                st.total -= n;
                Err(format!(
                    "a transaction of {n} records was aborted: {e} ({} records were committed before)",
                    self.committed
                ))
            }
        }
    }
}

#[derive(Default)]
struct State {
    pending: VecDeque<DeliveryFuture>,
    total: u64,
    failed: u64,
    first_error: Option<String>,
}

impl State {
    fn fail(&mut self, e: String) {
        self.failed += 1;
        self.first_error.get_or_insert(e);
    }

    async fn settle_oldest(&mut self) {
        if let Some(d) = self.pending.pop_front() {
            if let Err(e) = d.await {
                self.fail(e.to_string());
            }
        }
    }
}

/// Reads stdin on its own thread and hands over chunks that end at a newline (the last one may not), so
/// lines are sliced out of shared buffers without copying.
fn spawn_stdin_reader() -> mpsc::Receiver<std::io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(8);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        // Bytes of `buf` already known to hold no newline.
        let mut scanned = 0;
        loop {
            if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                buf.reserve(READ_CHUNK);
            }
            let filled = buf.len();
            buf.resize(buf.capacity(), 0);
            let n = match stdin.read(&mut buf[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                    buf.truncate(filled);
                    continue;
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            buf.truncate(filled + n);
            if n == 0 {
                if !buf.is_empty() {
                    let _ = tx.blocking_send(Ok(buf.split().freeze()));
                }
                return;
            }
            if let Some(i) = memchr::memrchr(b'\n', &buf[scanned..]) {
                let chunk = buf.split_to(scanned + i + 1).freeze();
                scanned = 0;
                if tx.blocking_send(Ok(chunk)).is_err() {
                    return;
                }
            } else {
                scanned = buf.len();
            }
        }
    });
    rx
}
