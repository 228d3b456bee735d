//! A replay server: an in-process stand-in for a Kafka broker that answers Fetch from record batches encoded
//! once, up front, so that a consumer's own cost can be measured with no broker in the way.
//!
//! The server holds one topic of P partitions. Each partition's log is a `Vec<Bytes>` of record batches (v2,
//! any codec) with known base offsets, built by [`ReplayBuilder`] before the server starts: records of
//! `record_size` value bytes (no key, no headers), `records_per_batch` to a batch. Record `o` of partition `p`
//! has timestamp [`BASE_TIMESTAMP_MS`]` + o` and the value [`ReplayServer::value`]`(p, o)`: the text `p:o:`, then
//! letters that are half random (from a generator seeded by partition and offset) and half a fixed phrase, so a
//! codec finds something to compress but not everything.
//!
//! It answers, by hand-written encoders:
//!
//! * **ApiVersions** v0–v3, advertising what it serves (a newer ApiVersions gets `UNSUPPORTED_VERSION` in the
//!   v0 layout, as Kafka answers, so the client retries with a version it has), plus Produce v3–v7 and
//!   FindCoordinator v0, which it does not serve: librdkafka decides from their presence that the broker reads
//!   record batches v2, lz4 and zstd, and without them sends no Fetch newer than v0;
//! * **Metadata** v1–v12: itself as the only broker (node 1), leader (epoch 0) of every partition and controller;
//! * **ListOffsets** v1–v8: earliest (0) and latest (the log end), the max timestamp, and timestamps (the first
//!   record at or after it; every record has its own millisecond);
//! * **Fetch** v4–v12 (v12 is flexible): full fetches only. A request that asks to create a fetch session
//!   (session id 0, epoch 0) is answered with session id 0, which tells the client that no session was made
//!   (what Kafka answers when its session cache is full), so the next request is a full fetch again; a request
//!   naming a session gets `FETCH_SESSION_ID_NOT_FOUND`.
//!
//! A Fetch response is assembled from pre-encoded pieces: the response and partition headers are written by hand
//! into a small buffer, and the batches' `Bytes` are handed to one vectored write (`writev`) beside it, so the
//! batch bytes are never copied or re-encoded per request. Each partition returns the batches from the one that
//! contains its fetch offset, as many as fit in `partition_max_bytes` and in what is left of the request's
//! `max_bytes`, except that the first batch of the response is returned even if it is larger (KIP-74). The high
//! watermark and the last stable offset are the log end. A fetch that finds nothing to return (every partition
//! at its log end) waits `max_wait_ms` (at most 30 s, woken early only when the server stops) before it
//! answers, as Kafka does on a log that does not grow: clients then long-poll instead of spinning, and no
//! thread of the server spins either.
//!
//! One thread serves each connection (librdkafka opens several); requests on one connection are answered in
//! order. Every request is untrusted: its size is checked before anything is read (at most 1 MiB), every count is
//! bounded by the bytes left, and a malformed request, an API the server does not serve or a version it does not
//! advertise closes that connection only (with a line on stderr saying why).
//!
//! ```no_run
//! use weir_proto::record::Compression;
//! use weir_testkit::ReplayServer;
//!
//! let server = ReplayServer::builder()
//!     .topic("replay")
//!     .partitions(4)
//!     .records_per_partition(10_000)
//!     .record_size(100)
//!     .records_per_batch(100)
//!     .compression(Compression::Lz4)
//!     .start()
//!     .expect("replay server");
//! // Point any Kafka consumer at it:
//! let bootstrap = server.bootstrap(); // "127.0.0.1:PORT"
//! assert_eq!(server.value(3, 7).len(), 100);
//! assert!(server.value(3, 7).starts_with(b"3:7:"));
//! # let _ = bootstrap;
//! ```

mod fetch;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use weir_proto::call::Call;
use weir_proto::kafka_code::KafkaCode;
use weir_proto::record::{BatchBuilder, BatchOptions, Compression, ProducerIds};

use crate::cpu_time::thread_cpu;

/// Timestamp (ms since the epoch) of offset 0 in every partition; offset `o` has `BASE_TIMESTAMP_MS + o`.
pub const BASE_TIMESTAMP_MS: i64 = 1_700_000_000_000;

/// The server's node id (its only broker, leader of everything, controller).
const NODE_ID: i32 = 1;
/// Cluster id in Metadata responses.
const CLUSTER_ID: &str = "weir-replay";
/// Largest request the server reads; a larger size prefix closes the connection.
const MAX_REQUEST: usize = 1 << 20;
/// Smallest request: api key, api version, correlation id.
const MIN_REQUEST: usize = 8;
/// Longest a fetch with nothing to return waits, whatever `max_wait_ms` it asks for.
const MAX_FETCH_WAIT: Duration = Duration::from_secs(30);

const API_VERSIONS: i16 = <weir_proto::versions::ApiVersionsRequest as Call>::KEY;
const METADATA: i16 = <weir_proto::metadata::MetadataRequest as Call>::KEY;
const LIST_OFFSETS: i16 = <weir_proto::list_offsets::ListOffsetsRequest as Call>::KEY;
const FETCH: i16 = <weir_proto::fetch::FetchRequest as Call>::KEY;
const PRODUCE: i16 = <weir_proto::produce::ProduceRequest as Call>::KEY;
const FIND_COORDINATOR: i16 = <weir_proto::group::FindCoordinatorRequest as Call>::KEY;

/// `(api key, min version, max version)` the server serves.
const SERVED: [(i16, i16, i16); 4] = [
    (API_VERSIONS, 0, 3),
    (METADATA, 1, 12),
    (LIST_OFFSETS, 1, 8),
    (FETCH, 4, 12),
];

/// APIs advertised in ApiVersions but not served, because librdkafka derives its "features" from the APIs a
/// broker lists: without Produce v3 it assumes a broker older than record batches v2 and will not send a Fetch
/// v4+ at all ("request not supported by broker"); Produce v7 (with Fetch v10) enables zstd, and FindCoordinator
/// v0 enables lz4. A request for one of them closes the connection, like any API the server does not serve.
const ADVERTISED_NOT_SERVED: [(i16, i16, i16); 2] = [(PRODUCE, 3, 7), (FIND_COORDINATOR, 0, 0)];

/// The first version of each served API that is flexible (compact strings and arrays, tagged fields, request
/// header v2, response header v1; ApiVersions responses keep header v0 at every version).
fn flexible(api_key: i16, version: i16) -> bool {
    let first = match api_key {
        API_VERSIONS => 3,
        METADATA => 9,
        LIST_OFFSETS => 6,
        FETCH => 12,
        _ => return false,
    };
    version >= first
}

/// How a replay log is built; [`ReplayBuilder::start`] builds it and starts the server.
#[derive(Debug, Clone)]
pub struct ReplayBuilder {
    topic: String,
    partitions: i32,
    records_per_partition: u64,
    record_size: usize,
    records_per_batch: usize,
    compression: Compression,
}

impl Default for ReplayBuilder {
    fn default() -> Self {
        ReplayBuilder {
            topic: "replay".to_owned(),
            partitions: 1,
            records_per_partition: 1000,
            record_size: 100,
            records_per_batch: 100,
            compression: Compression::None,
        }
    }
}

impl ReplayBuilder {
    /// The topic's name (default `replay`).
    pub fn topic(mut self, name: &str) -> Self {
        self.topic = name.to_owned();
        self
    }

    /// Number of partitions (default 1).
    pub fn partitions(mut self, n: i32) -> Self {
        self.partitions = n;
        self
    }

    /// Records in each partition (default 1000).
    pub fn records_per_partition(mut self, n: u64) -> Self {
        self.records_per_partition = n;
        self
    }

    /// Bytes of each record's value (default 100); records have no key and no headers.
    pub fn record_size(mut self, bytes: usize) -> Self {
        self.record_size = bytes;
        self
    }

    /// Records in each batch (default 100); a partition's last batch holds the rest.
    pub fn records_per_batch(mut self, n: usize) -> Self {
        self.records_per_batch = n;
        self
    }

    /// Codec of every batch (default none).
    pub fn compression(mut self, codec: Compression) -> Self {
        self.compression = codec;
        self
    }

    fn check(&self) -> io::Result<()> {
        let invalid = |what: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, what.to_owned()));
        if self.topic.is_empty() || self.topic.len() > i16::MAX as usize {
            return invalid("replay: the topic name must have 1 to 32767 bytes");
        }
        if self.partitions < 1 {
            return invalid("replay: at least one partition");
        }
        if self.records_per_batch < 1 || self.records_per_batch > i32::MAX as usize {
            return invalid("replay: records per batch must be 1 to i32::MAX");
        }
        if self.records_per_partition > i64::MAX as u64 / 2 {
            return invalid("replay: too many records per partition");
        }
        // A batch's length field is an i32: keep a batch well below it (the codecs' framing adds a little).
        let batch = (self.record_size as u128 + 32) * self.records_per_batch as u128;
        if batch > (i32::MAX as u128) / 2 {
            return invalid("replay: records per batch x record size is too large for one batch");
        }
        Ok(())
    }

    /// Encodes every partition's batches (partitions in parallel, one thread per core), then listens on
    /// `127.0.0.1:0` and serves until the [`ReplayServer`] is dropped.
    pub fn start(self) -> io::Result<ReplayServer> {
        self.check()?;
        let log = self.build_log()?;
        ReplayServer::serve(log, self)
    }

    fn build_log(&self) -> io::Result<Log> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let partitions: Vec<i32> = (0..self.partitions).collect();
        let chunk = partitions.len().div_ceil(threads).max(1);
        let built: Vec<io::Result<Vec<PartitionLog>>> = std::thread::scope(|s| {
            let workers: Vec<_> = partitions
                .chunks(chunk)
                .map(|ps| s.spawn(move || ps.iter().map(|&p| self.build_partition(p)).collect()))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        let mut logs = Vec::with_capacity(partitions.len());
        for b in built {
            logs.extend(b?);
        }
        Ok(Log {
            topic: self.topic.clone(),
            topic_id: topic_id(&self.topic),
            partitions: logs,
        })
    }

    fn build_partition(&self, partition: i32) -> io::Result<PartitionLog> {
        let n = self.records_per_partition as i64;
        let per_batch = self.records_per_batch as i64;
        let mut value = vec![0u8; self.record_size];
        let mut log = PartitionLog {
            batches: Vec::with_capacity((n / per_batch + 1) as usize),
            next_offsets: Vec::with_capacity((n / per_batch + 1) as usize),
            end: n,
        };
        let mut base = 0i64;
        while base < n {
            let count = per_batch.min(n - base);
            let opts = BatchOptions {
                compression: self.compression,
                base_offset: base,
                ..BatchOptions::default()
            };
            let mut b = BatchBuilder::with_capacity(opts, count as usize * (self.record_size + 16));
            for o in base..base + count {
                write_value(partition, o, &mut value);
                b.push(BASE_TIMESTAMP_MS + o, None, Some(&value), &[]);
            }
            let batch = b
                .seal(ProducerIds::NONE)
                .map_err(|e| io::Error::other(format!("replay: sealing a batch: {e}")))?;
            log.batches.push(batch);
            base += count;
            log.next_offsets.push(base);
        }
        Ok(log)
    }
}

/// The filler after the `p:o:` prefix: its second half cycles through this text.
const PHRASE: &[u8] = b"the-quick-brown-fox-jumps-over-the-lazy-dog-pack-my-box-with-five-dozen-liquor-jugs-";

/// Writes the value of record `offset` of `partition` into `out` (its length is the record size).
fn write_value(partition: i32, offset: i64, out: &mut [u8]) {
    let mut prefix = [0u8; 40];
    let mut cursor = &mut prefix[..];
    // Cannot fail: the longest prefix (two signed numbers and two colons) is 33 bytes.
    let _ = write!(cursor, "{partition}:{offset}:");
    let prefix_len = 40 - cursor.len();
    let k = prefix_len.min(out.len());
    out[..k].copy_from_slice(&prefix[..k]);
    let filler = &mut out[k..];
    let random = filler.len() / 2;
    let mut state = ((partition as u64) << 40) ^ (offset as u64) ^ 0x5eed_5eed_5eed_5eed;
    for chunk in filler[..random].chunks_mut(8) {
        let mut x = splitmix64(&mut state);
        for b in chunk {
            *b = b'a' + (x & 15) as u8;
            x >>= 4;
        }
    }
    for (i, b) in filler[random..].iter_mut().enumerate() {
        *b = PHRASE[(offset as usize).wrapping_add(i) % PHRASE.len()];
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A topic id derived from the name (never all zeros, which means "no id").
fn topic_id(topic: &str) -> [u8; 16] {
    let mut state = topic.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&splitmix64(&mut state).to_be_bytes());
    id[8..].copy_from_slice(&splitmix64(&mut state).to_be_bytes());
    id[15] |= 1;
    id
}

/// The topic's batches.
struct Log {
    topic: String,
    topic_id: [u8; 16],
    partitions: Vec<PartitionLog>,
}

impl Log {
    /// The partition's log, if `topic`/`partition` names one.
    fn partition(&self, topic: &[u8], partition: i32) -> Option<&PartitionLog> {
        if topic != self.topic.as_bytes() {
            return None;
        }
        usize::try_from(partition)
            .ok()
            .and_then(|p| self.partitions.get(p))
    }
}

/// One partition: its batches in offset order.
struct PartitionLog {
    batches: Vec<Bytes>,
    /// The offset after each batch (the next batch's base offset).
    next_offsets: Vec<i64>,
    /// The log end offset (high watermark).
    end: i64,
}

impl PartitionLog {
    /// Index of the batch that holds `offset` (`batches.len()` at the log end).
    fn batch_at(&self, offset: i64) -> usize {
        self.next_offsets.partition_point(|&next| next <= offset)
    }
}

/// State shared by the accept thread, the connection threads and the handle.
struct Shared {
    log: Log,
    port: u16,
    /// True once the server is stopping; fetch waits sleep on `wake`.
    stopping: Mutex<bool>,
    wake: Condvar,
    /// A clone of each connection's socket (to shut it down on stop) and its thread.
    connections: Mutex<Vec<(TcpStream, JoinHandle<()>)>>,
    accepted: AtomicUsize,
    /// Fetches waiting at the log end right now.
    waiting: AtomicUsize,
    fetch_responses: AtomicU64,
    batch_bytes_served: AtomicU64,
    cpu_ns: AtomicU64,
}

impl Shared {
    fn stopping(&self) -> MutexGuard<'_, bool> {
        self.stopping.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps up to `wait`, or until the server stops.
    fn wait(&self, wait: Duration) {
        let guard = self.stopping();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _ = self
            .wake
            .wait_timeout_while(guard, wait.min(MAX_FETCH_WAIT), |stopping| !*stopping);
        self.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A running replay server; it stops (closing every connection) when dropped. See the [module docs](self).
pub struct ReplayServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    config: ReplayBuilder,
}

impl std::fmt::Debug for ReplayServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayServer")
            .field("addr", &self.addr)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ReplayServer {
    /// A builder with the defaults: topic `replay`, 1 partition, 1000 records of 100 B, 100 to a batch,
    /// uncompressed.
    pub fn builder() -> ReplayBuilder {
        ReplayBuilder::default()
    }

    fn serve(log: Log, config: ReplayBuilder) -> io::Result<ReplayServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            log,
            port: addr.port(),
            stopping: Mutex::new(false),
            wake: Condvar::new(),
            connections: Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            fetch_responses: AtomicU64::new(0),
            batch_bytes_served: AtomicU64::new(0),
            cpu_ns: AtomicU64::new(0),
        });
        let sh = shared.clone();
        let accept = std::thread::Builder::new()
            .name("replay-accept".into())
            .spawn(move || accept_loop(listener, sh))?;
        Ok(ReplayServer {
            addr,
            shared,
            accept: Some(accept),
            config,
        })
    }

    /// The address the server listens on (`127.0.0.1`, an ephemeral port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, for a client's bootstrap servers.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.shared.log.topic
    }

    /// Number of partitions.
    pub fn partitions(&self) -> i32 {
        self.config.partitions
    }

    /// Records in each partition (offsets `0..records_per_partition`).
    pub fn records_per_partition(&self) -> u64 {
        self.config.records_per_partition
    }

    /// Records in the whole topic.
    pub fn record_count(&self) -> u64 {
        self.config.records_per_partition * self.config.partitions as u64
    }

    /// Bytes of each record's value.
    pub fn record_size(&self) -> usize {
        self.config.record_size
    }

    /// Codec of the batches.
    pub fn compression(&self) -> Compression {
        self.config.compression
    }

    /// The encoded batches of `partition`, in offset order (empty for a partition the topic does not have).
    pub fn batches(&self, partition: i32) -> &[Bytes] {
        usize::try_from(partition)
            .ok()
            .and_then(|p| self.shared.log.partitions.get(p))
            .map_or(&[], |p| &p.batches)
    }

    /// Total bytes of every partition's batches: what a consumer reading everything receives as records.
    pub fn log_bytes(&self) -> u64 {
        self.shared
            .log
            .partitions
            .iter()
            .flat_map(|p| &p.batches)
            .map(|b| b.len() as u64)
            .sum()
    }

    /// The value of record `offset` of `partition`, as the builder made it: `record_size` bytes starting with
    /// `partition:offset:` (cut short if the record size is smaller), then letters.
    pub fn value(&self, partition: i32, offset: i64) -> Vec<u8> {
        let mut v = vec![0u8; self.config.record_size];
        write_value(partition, offset, &mut v);
        v
    }

    /// The timestamp of record `offset` (every partition): [`BASE_TIMESTAMP_MS`]` + offset`.
    pub fn timestamp(offset: i64) -> i64 {
        BASE_TIMESTAMP_MS + offset
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// Fetch requests waiting right now at the log end (for up to their `max_wait_ms`) before they answer.
    pub fn fetches_waiting(&self) -> usize {
        self.shared.waiting.load(Ordering::Relaxed)
    }

    /// Fetch responses sent so far.
    pub fn fetch_responses(&self) -> u64 {
        self.shared.fetch_responses.load(Ordering::Relaxed)
    }

    /// Batch bytes sent in Fetch responses so far.
    pub fn batch_bytes_served(&self) -> u64 {
        self.shared.batch_bytes_served.load(Ordering::Relaxed)
    }

    /// CPU time the server's connection threads have used so far (counted after each request they answer and
    /// when they end), so a benchmark running a client in the same process can subtract it.
    pub fn server_cpu(&self) -> Duration {
        Duration::from_nanos(self.shared.cpu_ns.load(Ordering::Relaxed))
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        *self.shared.stopping() = true;
        self.shared.wake.notify_all();
        // Wake the accept thread, which then sees `stopping`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        let connections =
            std::mem::take(&mut *self.shared.connections.lock().unwrap_or_else(|e| e.into_inner()));
        for (socket, thread) in connections {
            let _ = socket.shutdown(Shutdown::Both);
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if *shared.stopping() {
            return;
        }
        let Ok(stream) = stream else {
            // Out of descriptors and the like: try again a little later rather than spin.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let Ok(clone) = stream.try_clone() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let n = shared.accepted.fetch_add(1, Ordering::Relaxed);
        let sh = shared.clone();
        let Ok(thread) = std::thread::Builder::new()
            .name(format!("replay-conn-{n}"))
            .spawn(move || serve_connection(stream, &sh))
        else {
            continue;
        };
        let mut conns = shared.connections.lock().unwrap_or_else(|e| e.into_inner());
        conns.retain(|(_, t)| !t.is_finished());
        conns.push((clone, thread));
    }
}

/// Why a connection is closed.
#[derive(Debug)]
enum Close {
    /// The peer went away or the socket failed: nothing to report.
    Io,
    /// A request the server refuses: reported on stderr.
    Refused(String),
}

impl From<io::Error> for Close {
    fn from(_: io::Error) -> Self {
        Close::Io
    }
}

impl From<Malformed> for Close {
    fn from(m: Malformed) -> Self {
        Close::Refused(format!("malformed request: {}", m.0))
    }
}

fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    let mut request = Vec::new();
    let mut out = Vec::new();
    let mut cpu = thread_cpu();
    let peer = stream.peer_addr().ok();
    let result = loop {
        match serve_one(&mut stream, shared, &mut request, &mut out) {
            Ok(()) => {}
            Err(e) => break e,
        }
        let now = thread_cpu();
        shared
            .cpu_ns
            .fetch_add(now.saturating_sub(cpu).as_nanos() as u64, Ordering::Relaxed);
        cpu = now;
    };
    if let Close::Refused(why) = result {
        eprintln!(
            "weir-testkit replay server: closing the connection from {}: {why}",
            peer.map_or_else(|| "?".to_owned(), |p| p.to_string())
        );
    }
    let _ = stream.shutdown(Shutdown::Both);
    shared.cpu_ns.fetch_add(
        thread_cpu().saturating_sub(cpu).as_nanos() as u64,
        Ordering::Relaxed,
    );
}

/// Reads one request and answers it.
fn serve_one(
    stream: &mut TcpStream,
    shared: &Shared,
    request: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<(), Close> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = i32::from_be_bytes(size);
    let len = match usize::try_from(size) {
        Ok(n) if (MIN_REQUEST..=MAX_REQUEST).contains(&n) => n,
        _ => {
            return Err(Close::Refused(format!(
                "request size {size} (must be {MIN_REQUEST} to {MAX_REQUEST})"
            )))
        }
    };
    request.clear();
    request.resize(len, 0);
    stream.read_exact(request)?;
    let mut r = Reader::new(request);
    let api_key = r.i16("api key")?;
    let version = r.i16("api version")?;
    let correlation_id = r.i32("correlation id")?;
    let Some(&(_, min, max)) = SERVED.iter().find(|(k, _, _)| *k == api_key) else {
        return Err(Close::Refused(format!(
            "API key {api_key} (v{version}) is not served"
        )));
    };
    if api_key == API_VERSIONS && version > max {
        // Kafka's answer to an ApiVersions it does not know: UNSUPPORTED_VERSION and its ranges, in the v0
        // layout every client can read, so the client asks again with a version from the list.
        api_versions_response(out, correlation_id, 0, KafkaCode::UnsupportedVersion.code());
        stream.write_all(out)?;
        return Ok(());
    }
    if !(min..=max).contains(&version) {
        return Err(Close::Refused(format!(
            "API key {api_key} v{version} (served: v{min} to v{max})"
        )));
    }
    let flex = flexible(api_key, version);
    // Request header v1 (client id, a non-compact nullable string even in v2), then tagged fields in v2.
    r.string(false, "client id")?;
    if flex {
        r.tags()?;
    }
    match api_key {
        API_VERSIONS => {
            if flex {
                r.string(true, "client software name")?;
                r.string(true, "client software version")?;
                r.tags()?;
            }
            r.end()?;
            api_versions_response(out, correlation_id, version, 0);
            stream.write_all(out)?;
        }
        METADATA => {
            metadata_response(&mut r, version, flex, correlation_id, shared, out)?;
            stream.write_all(out)?;
        }
        LIST_OFFSETS => {
            list_offsets_response(&mut r, version, flex, correlation_id, &shared.log, out)?;
            stream.write_all(out)?;
        }
        FETCH => {
            let req = fetch::parse(&mut r, version)?;
            fetch::respond(stream, shared, &req, version, correlation_id, out)?;
        }
        _ => unreachable!("SERVED lists only the APIs matched above"),
    }
    Ok(())
}

/// Starts a response in `out`: a size placeholder, the correlation id, and (header v1) no tagged fields.
fn begin_response(out: &mut Vec<u8>, correlation_id: i32, header_v1: bool) {
    out.clear();
    out.extend_from_slice(&[0; 4]);
    put_i32(out, correlation_id);
    if header_v1 {
        put_uvarint(out, 0);
    }
}

/// Writes the size prefix of a response begun by [`begin_response`] (plus `extra` bytes sent after `out`).
fn finish_response(out: &mut [u8], extra: usize) -> io::Result<()> {
    let size = i32::try_from(out.len() - 4 + extra)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "replay: response over 2 GiB"))?;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

fn api_versions_response(out: &mut Vec<u8>, correlation_id: i32, version: i16, error_code: i16) {
    let flex = flexible(API_VERSIONS, version);
    begin_response(out, correlation_id, false);
    put_i16(out, error_code);
    put_array_len(out, flex, SERVED.len() + ADVERTISED_NOT_SERVED.len());
    for (key, min, max) in SERVED.into_iter().chain(ADVERTISED_NOT_SERVED) {
        put_i16(out, key);
        put_i16(out, min);
        put_i16(out, max);
        if flex {
            put_uvarint(out, 0);
        }
    }
    if version >= 1 {
        put_i32(out, 0); // throttle time
    }
    if flex {
        put_uvarint(out, 0);
    }
    // Cannot fail: a few dozen bytes.
    let _ = finish_response(out, 0);
}

/// A topic a Metadata request names: by name, or (v10+) by id with a null name.
struct MetadataTopic<'a> {
    id: [u8; 16],
    name: Option<&'a [u8]>,
}

fn metadata_response(
    r: &mut Reader<'_>,
    version: i16,
    flex: bool,
    correlation_id: i32,
    shared: &Shared,
    out: &mut Vec<u8>,
) -> Result<(), Close> {
    let log = &shared.log;
    // Smallest topic entry: v10+ an id, a compact null name and tags; v9 a compact name and tags; before, a
    // string length.
    let min_topic = if version >= 10 { 18 } else { 2 };
    let count = r.array_len(flex, min_topic, "topics")?;
    let mut asked = Vec::with_capacity(count.unwrap_or(0));
    for _ in 0..count.unwrap_or(0) {
        let id = if version >= 10 {
            r.uuid("topic id")?
        } else {
            [0; 16]
        };
        let name = r.string(flex, "topic name")?;
        if name.is_none() && version < 10 {
            return Err(Malformed("null topic name before v10").into());
        }
        if flex {
            r.tags()?;
        }
        asked.push(MetadataTopic { id, name });
    }
    if version >= 4 {
        r.bool("allow auto topic creation")?;
    }
    if (8..=10).contains(&version) {
        r.bool("include cluster authorized operations")?;
    }
    if version >= 8 {
        r.bool("include topic authorized operations")?;
    }
    if flex {
        r.tags()?;
    }
    r.end()?;

    begin_response(out, correlation_id, flex);
    if version >= 3 {
        put_i32(out, 0); // throttle time
    }
    put_array_len(out, flex, 1);
    put_i32(out, NODE_ID);
    put_string(out, flex, Some(b"127.0.0.1"));
    put_i32(out, i32::from(shared.port));
    put_string(out, flex, None); // rack
    if flex {
        put_uvarint(out, 0);
    }
    if version >= 2 {
        put_string(out, flex, Some(CLUSTER_ID.as_bytes()));
    }
    put_i32(out, NODE_ID); // controller
                           // A null list asks for every topic: the one topic.
    let ours = MetadataTopic {
        id: log.topic_id,
        name: Some(log.topic.as_bytes()),
    };
    let answered: Vec<&MetadataTopic<'_>> = match count {
        None => vec![&ours],
        Some(_) => asked.iter().collect(),
    };
    put_array_len(out, flex, answered.len());
    for t in answered {
        let known = match t.name {
            Some(name) => name == log.topic.as_bytes(),
            None => t.id == log.topic_id,
        };
        let error = match (known, t.name) {
            (true, _) => 0,
            (false, Some(_)) => KafkaCode::UnknownTopicOrPartition.code(),
            (false, None) => KafkaCode::UnknownTopicId.code(),
        };
        put_i16(out, error);
        let name = if known { Some(log.topic.as_bytes()) } else { t.name };
        if version >= 12 {
            put_string(out, flex, name);
        } else {
            put_string(out, flex, Some(name.unwrap_or_default()));
        }
        if version >= 10 {
            out.extend_from_slice(if known { &log.topic_id } else { &t.id });
        }
        put_bool(out, false); // internal
        let partitions = if known { log.partitions.len() } else { 0 };
        put_array_len(out, flex, partitions);
        for p in 0..partitions {
            put_i16(out, 0);
            put_i32(out, p as i32);
            put_i32(out, NODE_ID); // leader
            if version >= 7 {
                put_i32(out, 0); // leader epoch
            }
            for _ in 0..2 {
                // replicas, in-sync replicas
                put_array_len(out, flex, 1);
                put_i32(out, NODE_ID);
            }
            if version >= 5 {
                put_array_len(out, flex, 0); // offline replicas
            }
            if flex {
                put_uvarint(out, 0);
            }
        }
        if version >= 8 {
            put_i32(out, i32::MIN); // topic authorized operations: not asked for
        }
        if flex {
            put_uvarint(out, 0);
        }
    }
    if (8..=10).contains(&version) {
        put_i32(out, i32::MIN); // cluster authorized operations: not asked for
    }
    if flex {
        put_uvarint(out, 0);
    }
    finish_response(out, 0)?;
    Ok(())
}

/// ListOffsets' special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

/// `(error code, timestamp, offset)` of one ListOffsets lookup.
fn list_offset(log: &PartitionLog, timestamp: i64) -> (i16, i64, i64) {
    match timestamp {
        LATEST => (0, -1, log.end),
        EARLIEST | EARLIEST_LOCAL => (0, -1, 0),
        MAX_TIMESTAMP if log.end > 0 => (0, BASE_TIMESTAMP_MS + log.end - 1, log.end - 1),
        MAX_TIMESTAMP => (0, -1, -1),
        t if t >= 0 => {
            // Offset o has timestamp BASE + o: the first record at or after `t`.
            let o = t.saturating_sub(BASE_TIMESTAMP_MS).max(0);
            if o < log.end {
                (0, BASE_TIMESTAMP_MS + o, o)
            } else {
                (0, -1, -1)
            }
        }
        _ => (KafkaCode::InvalidRequest.code(), -1, -1),
    }
}

fn list_offsets_response(
    r: &mut Reader<'_>,
    version: i16,
    flex: bool,
    correlation_id: i32,
    log: &Log,
    out: &mut Vec<u8>,
) -> Result<(), Close> {
    r.i32("replica id")?;
    if version >= 2 {
        r.i8("isolation level")?;
    }
    let min_partition = 12 + if version >= 4 { 4 } else { 0 } + usize::from(flex);
    let topic_count = r.array_len(flex, 2, "topics")?.unwrap_or(0);
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let name = r
            .string(flex, "topic name")?
            .ok_or(Malformed("null topic name"))?;
        let count = r.array_len(flex, min_partition, "partitions")?.unwrap_or(0);
        let mut partitions = Vec::with_capacity(count);
        for _ in 0..count {
            let partition = r.i32("partition")?;
            if version >= 4 {
                r.i32("current leader epoch")?;
            }
            let timestamp = r.i64("timestamp")?;
            if flex {
                r.tags()?;
            }
            partitions.push((partition, timestamp));
        }
        if flex {
            r.tags()?;
        }
        topics.push((name, partitions));
    }
    if flex {
        r.tags()?;
    }
    r.end()?;

    begin_response(out, correlation_id, flex);
    if version >= 2 {
        put_i32(out, 0); // throttle time
    }
    put_array_len(out, flex, topics.len());
    for (name, partitions) in &topics {
        put_string(out, flex, Some(name));
        put_array_len(out, flex, partitions.len());
        for &(partition, timestamp) in partitions {
            let (error, ts, offset) = match log.partition(name, partition) {
                Some(p) => list_offset(p, timestamp),
                None => (KafkaCode::UnknownTopicOrPartition.code(), -1, -1),
            };
            put_i32(out, partition);
            put_i16(out, error);
            put_i64(out, ts);
            put_i64(out, offset);
            if version >= 4 {
                put_i32(out, 0); // leader epoch
            }
            if flex {
                put_uvarint(out, 0);
            }
        }
        if flex {
            put_uvarint(out, 0);
        }
    }
    if flex {
        put_uvarint(out, 0);
    }
    finish_response(out, 0)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Wire primitives
// ---------------------------------------------------------------------------------------------

/// A request that does not parse: what was being read.
#[derive(Debug)]
struct Malformed(&'static str);

/// A bounded reader over one request: every read checks the bytes left first.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        if n > self.buf.len() {
            return Err(Malformed(what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Malformed> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn i8(&mut self, what: &'static str) -> Result<i8, Malformed> {
        Ok(i8::from_be_bytes(self.array(what)?))
    }

    fn bool(&mut self, what: &'static str) -> Result<bool, Malformed> {
        Ok(self.i8(what)? != 0)
    }

    fn i16(&mut self, what: &'static str) -> Result<i16, Malformed> {
        Ok(i16::from_be_bytes(self.array(what)?))
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, Malformed> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, Malformed> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    fn uuid(&mut self, what: &'static str) -> Result<[u8; 16], Malformed> {
        self.array(what)
    }

    /// An unsigned varint of at most 5 bytes (32 bits).
    fn uvarint(&mut self, what: &'static str) -> Result<u32, Malformed> {
        let mut v = 0u32;
        for i in 0..5 {
            let b = self.take(1, what)?[0];
            if i == 4 && b > 0x0f {
                return Err(Malformed(what));
            }
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Malformed(what))
    }

    /// The length of a nullable field: `None` for null. Compact: varint `n + 1` (0 is null); else `i16` (string)
    /// or `i32` (array), -1 is null.
    fn nullable_len(
        &mut self,
        compact: bool,
        wide: bool,
        what: &'static str,
    ) -> Result<Option<usize>, Malformed> {
        if compact {
            return Ok(match self.uvarint(what)? {
                0 => None,
                n => Some(n as usize - 1),
            });
        }
        let n = if wide {
            self.i32(what)?
        } else {
            i32::from(self.i16(what)?)
        };
        match n {
            -1 => Ok(None),
            n if n < 0 => Err(Malformed(what)),
            n => Ok(Some(n as usize)),
        }
    }

    /// A nullable string's bytes (not checked as UTF-8: only compared).
    fn string(&mut self, compact: bool, what: &'static str) -> Result<Option<&'a [u8]>, Malformed> {
        match self.nullable_len(compact, false, what)? {
            None => Ok(None),
            Some(n) => self.take(n, what).map(Some),
        }
    }

    /// A nullable array's length, refused if its elements (at least `min_element` bytes each) cannot fit in
    /// the bytes left.
    fn array_len(
        &mut self,
        compact: bool,
        min_element: usize,
        what: &'static str,
    ) -> Result<Option<usize>, Malformed> {
        let n = self.nullable_len(compact, true, what)?;
        if let Some(n) = n {
            if n.saturating_mul(min_element.max(1)) > self.buf.len() {
                return Err(Malformed(what));
            }
        }
        Ok(n)
    }

    /// Skips a tagged-field section (none of them is read).
    fn tags(&mut self) -> Result<(), Malformed> {
        let count = self.uvarint("tagged field count")? as usize;
        if count.saturating_mul(2) > self.buf.len() {
            return Err(Malformed("tagged field count"));
        }
        for _ in 0..count {
            self.uvarint("tag")?;
            let size = self.uvarint("tagged field size")? as usize;
            self.take(size, "tagged field")?;
        }
        Ok(())
    }

    /// Fails if bytes are left over.
    fn end(&self) -> Result<(), Malformed> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Malformed("bytes after the request's last field"))
        }
    }
}

fn put_i16(out: &mut Vec<u8>, v: i16) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.push(u8::from(v));
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// An array length: compact (varint `n + 1`) or `i32`.
fn put_array_len(out: &mut Vec<u8>, compact: bool, n: usize) {
    if compact {
        put_uvarint(out, n as u64 + 1);
    } else {
        put_i32(out, n as i32);
    }
}

/// A nullable string: compact (varint `len + 1`, 0 for null) or `i16` length (-1 for null).
fn put_string(out: &mut Vec<u8>, compact: bool, s: Option<&[u8]>) {
    match (s, compact) {
        (None, true) => put_uvarint(out, 0),
        (None, false) => put_i16(out, -1),
        (Some(s), true) => {
            put_uvarint(out, s.len() as u64 + 1);
            out.extend_from_slice(s);
        }
        (Some(s), false) => {
            put_i16(out, s.len() as i16);
            out.extend_from_slice(s);
        }
    }
}
