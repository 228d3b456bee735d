//! The Java client peer (`crates/weir-testkit/peers/java`): Apache Kafka's own client, at the broker's
//! version, as the reference for what a client does. `peers/java/build` (run by `scripts/setup-test-env
//! java-peer`) puts it in `$REPO/.peers/java`; [`JavaPeer`] runs its subcommands and parses what they print
//! (JSON lines, bytes as base64; the format is documented at the top of `peers/java/src/main/java/weir/peer/
//! Main.java`). For the side-by-side benches, [`JavaPeer::bench_produce_cmd`] and [`JavaPeer::bench_consume_cmd`]
//! build the commands of its throughput modes (raw values per line, `peers/java/src/main/java/weir/peer/
//! Bench.java`), and [`JvmTimes`] reads what the peer measured inside its JVM.
//!
//! ```no_run
//! use weir_testkit::peers::java::{JavaPeer, PeerRecord};
//! use weir_testkit::{unique_name, Kafka};
//!
//! let kafka = Kafka::shared();
//! let topic = unique_name("demo");
//! kafka.create_topic(&topic, 3);
//! let java = JavaPeer::require();
//! let sent = java.produce(&kafka.bootstrap(), &topic, "zstd", &[PeerRecord::new(b"v").key(b"k")]);
//! let read = java.consume(&kafka.bootstrap(), &topic, 1, None, std::time::Duration::from_secs(30));
//! assert_eq!((read[0].partition, read[0].offset), (sent[0].partition, sent[0].offset));
//! assert_eq!(read[0].value.as_deref(), Some(&b"v"[..]));
//! ```
//!
//! Every call is bounded: one-shot subcommands are killed after their timeout (plus JVM start-up slack) and the
//! call panics with the peer's stderr; a [`Member`] is killed when dropped, and its waits take a timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::process::{run_with_timeout, TOOL_TIMEOUT};
use crate::{repo_root, SETUP_HINT};

mod bench;

pub use bench::JvmTimes;

/// Options of the peer's JVMs: small heap, fast start-up (the peer runs for seconds).
const JVM_OPTIONS: &[&str] = &[
    "-Xms64m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
];
/// Added to a subcommand's own timeout for the JVM's start-up and shutdown.
const JVM_SLACK: Duration = Duration::from_secs(30);
/// How long [`Member::close`] waits for the member to commit, leave and exit.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(40);

/// The Java client peer: a `java` and the peer's jars.
#[derive(Debug, Clone)]
pub struct JavaPeer {
    java: PathBuf,
    dir: PathBuf,
    kafka_clients: String,
}

/// A record for [`JavaPeer::produce`] and [`TxnStep::Record`]. `None` is null (key, value, header value) or "not
/// given" (partition: the default partitioner picks; timestamp: the producer's clock).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerRecord {
    /// Explicit partition.
    pub partition: Option<i32>,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Create time, ms since the epoch.
    pub timestamp: Option<i64>,
}

impl PeerRecord {
    /// A record with this value, no key, no headers.
    pub fn new(value: &[u8]) -> PeerRecord {
        PeerRecord {
            value: Some(value.to_vec()),
            ..PeerRecord::default()
        }
    }

    /// With this key.
    pub fn key(mut self, key: &[u8]) -> PeerRecord {
        self.key = Some(key.to_vec());
        self
    }

    /// To this partition.
    pub fn partition(mut self, partition: i32) -> PeerRecord {
        self.partition = Some(partition);
        self
    }

    /// With this header added.
    pub fn header(mut self, key: &str, value: Option<&[u8]>) -> PeerRecord {
        self.headers.push((key.to_string(), value.map(<[u8]>::to_vec)));
        self
    }

    /// With this create time.
    pub fn timestamp(mut self, ms: i64) -> PeerRecord {
        self.timestamp = Some(ms);
        self
    }
}

/// One step of a transactional producer's run ([`JavaPeer::produce_transactions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnStep {
    /// `beginTransaction()`.
    Begin,
    /// `send()` of this record (inside a transaction: the Java client refuses one outside).
    Record(PeerRecord),
    /// `commitTransaction()`, which flushes the transaction's records first.
    Commit,
    /// `flush()`, so that the transaction's records reach the log, then `abortTransaction()`.
    Abort,
}

/// Where the Java producer put a record: its acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The record's timestamp as the producer reports it (create time, or the log append time).
    pub timestamp: i64,
}

/// A record as the Java consumer read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key (`None`: null).
    pub key: Option<Vec<u8>>,
    /// Value (`None`: null).
    pub value: Option<Vec<u8>>,
    /// Headers in order (`None` values: null).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Timestamp, ms since the epoch.
    pub timestamp: i64,
    /// `CreateTime`, `LogAppendTime` or `NoTimestampType`.
    pub timestamp_type: String,
}

impl JavaPeer {
    /// The peer's directory (`$WEIR_JAVA_PEER_DIR`, else `$REPO/.peers/java`) and a Java runtime
    /// ([`crate::java`]); an error naming what is missing.
    pub fn find() -> Result<JavaPeer, String> {
        let dir = std::env::var_os("WEIR_JAVA_PEER_DIR")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".peers/java"));
        if !dir.join("weir-java-peer.jar").is_file() {
            return Err(format!(
                "the Java client peer is not built (no {}): {SETUP_HINT}",
                dir.join("weir-java-peer.jar").display()
            ));
        }
        let kafka_clients = jar_version(&dir, "kafka-clients-")
            .ok_or_else(|| format!("no kafka-clients jar in {}: {SETUP_HINT}", dir.display()))?;
        // The peer must be the broker's version: both come from the poms, a stale build does not.
        if let Some(broker) = crate::kafka_libs()
            .ok()
            .and_then(|libs| jar_version(&libs, "kafka-clients-"))
        {
            if broker != kafka_clients {
                return Err(format!(
                    "the Java peer has kafka-clients {kafka_clients} but the broker is {broker}: {SETUP_HINT}"
                ));
            }
        }
        let java = crate::java().map_err(|e| format!("{e}: {SETUP_HINT}"))?;
        Ok(JavaPeer {
            java,
            dir,
            kafka_clients,
        })
    }

    /// Like [`JavaPeer::find`], but panics with setup instructions ("run scripts/setup-test-env") when
    /// anything is missing.
    pub fn require() -> JavaPeer {
        JavaPeer::find().unwrap_or_else(|e| panic!("weir-testkit: {e}"))
    }

    /// The kafka-clients version the peer runs, e.g. `"4.4.0"`.
    pub fn kafka_clients_version(&self) -> &str {
        &self.kafka_clients
    }

    /// `java ... weir.peer.Main SUBCOMMAND`; add the subcommand's options.
    pub fn command(&self, subcommand: &str) -> Command {
        self.command_with(JVM_OPTIONS, subcommand)
    }

    /// `java JVM_OPTIONS -cp ... weir.peer.Main SUBCOMMAND`.
    fn command_with(&self, jvm_options: &[&str], subcommand: &str) -> Command {
        let mut cp = OsString::from(self.dir.as_os_str());
        cp.push("/*");
        let mut cmd = Command::new(&self.java);
        cmd.args(jvm_options)
            .arg("-cp")
            .arg(cp)
            .arg("weir.peer.Main")
            .arg(subcommand);
        cmd
    }

    /// Produces `records` to `topic` with an idempotent Java producer compressing with `compression`
    /// (`none`, `gzip`, `snappy`, `lz4`, `zstd`); returns the acknowledgement of each record, in order.
    pub fn produce(
        &self,
        bootstrap: &str,
        topic: &str,
        compression: &str,
        records: &[PeerRecord],
    ) -> Vec<Produced> {
        self.produce_with(bootstrap, topic, &["--compression", compression], records)
    }

    /// Like [`JavaPeer::produce`] with the peer's own options (`--compression C`, `--acks A`,
    /// `--linger-ms N`, `--config KEY=VALUE`...).
    pub fn produce_with(
        &self,
        bootstrap: &str,
        topic: &str,
        options: &[&str],
        records: &[PeerRecord],
    ) -> Vec<Produced> {
        let input: String = records.iter().map(|r| record_json(r) + "\n").collect();
        let mut cmd = self.command("produce");
        cmd.args(["--bootstrap", bootstrap, "--topic", topic])
            .args(options);
        let out = self.run(cmd, Some(input.as_bytes()), TOOL_TIMEOUT);
        let lines = parse_lines(&out, "produce");
        assert_eq!(
            lines.len(),
            records.len(),
            "weir-testkit: the Java producer acknowledged {} of {} records; stderr:\n{}",
            lines.len(),
            records.len(),
            String::from_utf8_lossy(&out.stderr)
        );
        lines.iter().map(produced).collect()
    }

    /// Runs `steps` with one transactional Java producer (`transactional.id` = `transactional_id`, idempotent,
    /// acks all) writing to `topic`: `initTransactions()` once, then each step in order. Returns the
    /// acknowledgement of every [`TxnStep::Record`], in order, committed and aborted ones alike ([`TxnStep::Abort`]
    /// flushes before aborting, so an aborted transaction's records are in the log and have offsets; the
    /// transaction markers take the offsets in between). A transaction still open after the last step is flushed
    /// and left open: the peer exits without closing the producer, so the partitions' last stable offset stays
    /// before it until the coordinator aborts it (`transaction.timeout.ms`, 60 s unless `options` set it) or a
    /// later run with the same `transactional_id` does (its `initTransactions()`). `options` are the peer's own (`--compression C`,
    /// `--config KEY=VALUE`...).
    ///
    /// Panics with the peer's stderr if any step fails (a record outside a transaction, a fenced producer...).
    pub fn produce_transactions(
        &self,
        bootstrap: &str,
        topic: &str,
        transactional_id: &str,
        steps: &[TxnStep],
        options: &[&str],
    ) -> Vec<Produced> {
        let input: String = steps
            .iter()
            .map(|s| match s {
                TxnStep::Begin => "{\"txn\": \"begin\"}\n".to_string(),
                TxnStep::Record(r) => record_json(r) + "\n",
                TxnStep::Commit => "{\"txn\": \"commit\"}\n".to_string(),
                TxnStep::Abort => "{\"txn\": \"abort\"}\n".to_string(),
            })
            .collect();
        let mut cmd = self.command("produce-txn");
        cmd.args([
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--transactional-id",
            transactional_id,
        ])
        .args(options);
        let out = self.run(cmd, Some(input.as_bytes()), TOOL_TIMEOUT);
        let lines = parse_lines(&out, "produce-txn");
        // The peer prints, per step but Begin, in order: an acknowledgement, {"txn": "committed"} or
        // {"txn": "aborted"}.
        let expected: Vec<&TxnStep> = steps.iter().filter(|s| **s != TxnStep::Begin).collect();
        let matches = lines.len() == expected.len()
            && lines.iter().zip(&expected).all(|(j, s)| match (j.get("txn"), s) {
                (Json::Null, TxnStep::Record(_)) => true,
                (Json::Str(t), TxnStep::Commit) => t == "committed",
                (Json::Str(t), TxnStep::Abort) => t == "aborted",
                _ => false,
            });
        assert!(
            matches,
            "weir-testkit: the transactional Java producer's output does not follow its {} steps:\n{}stderr:\n{}",
            steps.len(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        lines
            .iter()
            .filter(|j| *j.get("txn") == Json::Null)
            .map(produced)
            .collect()
    }

    /// Reads `count` records of `topic` from the beginning with a Java consumer: without a group by assigning
    /// every partition, with one by subscribing (earliest, classic protocol; it commits what it read). Panics,
    /// with what was read and the peer's stderr, if fewer than `count` arrive within `timeout`.
    pub fn consume(
        &self,
        bootstrap: &str,
        topic: &str,
        count: usize,
        group: Option<&str>,
        timeout: Duration,
    ) -> Vec<ConsumedRecord> {
        self.consume_with(bootstrap, topic, count, group, timeout, &[])
    }

    /// Like [`JavaPeer::consume`] with the peer's own options (`--config KEY=VALUE`...). It reads
    /// `read_uncommitted` (the Java default); `&["--config", "isolation.level=read_committed"]` reads committed
    /// records only, up to the last stable offset (aborted records and transaction markers are skipped, so offsets
    /// have gaps; an open transaction holds it back, so `count` must not reach past it).
    pub fn consume_with(
        &self,
        bootstrap: &str,
        topic: &str,
        count: usize,
        group: Option<&str>,
        timeout: Duration,
        options: &[&str],
    ) -> Vec<ConsumedRecord> {
        let mut cmd = self.command("consume");
        cmd.args(options);
        let timeout_ms = timeout.as_millis().to_string();
        let count_s = count.to_string();
        cmd.args([
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--count",
            &count_s,
            "--timeout-ms",
            &timeout_ms,
        ]);
        if let Some(g) = group {
            cmd.args(["--group", g]);
        }
        let out = run_with_timeout(cmd, None, timeout + JVM_SLACK);
        let records: Vec<ConsumedRecord> = parse_lines(&out, "consume")
            .iter()
            .map(|j| ConsumedRecord {
                partition: j.int("partition") as i32,
                offset: j.int("offset"),
                key: j.bytes("key"),
                value: j.bytes("value"),
                headers: j.headers("headers"),
                timestamp: j.int("timestamp"),
                timestamp_type: j.str("timestamp_type").to_string(),
            })
            .collect();
        if !out.status.success() {
            let got: Vec<(i32, i64)> = records.iter().map(|r| (r.partition, r.offset)).collect();
            panic!(
                "weir-testkit: the Java consumer of {topic} failed ({}) after reading {} of {count} records \
                 (partition, offset: {got:?}); stderr:\n{}",
                out.status,
                records.len(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        records
    }

    /// The partition the Java producer's default partitioner gives each key among `partitions` partitions.
    pub fn partition(&self, partitions: i32, keys: &[&[u8]]) -> Vec<i32> {
        let input: String = keys.iter().map(|k| base64_encode(k) + "\n").collect();
        let mut cmd = self.command("partition");
        cmd.args(["--partitions", &partitions.to_string()]);
        let out = self.run(cmd, Some(input.as_bytes()), TOOL_TIMEOUT);
        let text = String::from_utf8_lossy(&out.stdout);
        let got: Vec<i32> = text
            .lines()
            .map(|l| {
                l.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("weir-testkit: the Java peer printed {l:?} for a partition"))
            })
            .collect();
        assert_eq!(
            got.len(),
            keys.len(),
            "weir-testkit: partitions for {} keys: {text}",
            keys.len()
        );
        got
    }

    /// Starts a classic-protocol group member of `group` consuming `topic` with `assignor` (`range`,
    /// `cooperative-sticky`, `roundrobin`, `sticky`); with `commit` it commits what it read after every poll, on
    /// revoke and before leaving. Returns at once, the JVM starting; watch [`Member::assignment`] for its joining.
    pub fn member(&self, bootstrap: &str, group: &str, topic: &str, assignor: &str, commit: bool) -> Member {
        let mut cmd = self.command("member");
        cmd.args([
            "--bootstrap",
            bootstrap,
            "--group",
            group,
            "--topic",
            topic,
            "--assignor",
            assignor,
        ]);
        if commit {
            cmd.arg("--commit");
        }
        Member::spawn(cmd, format!("Java member of {group} ({assignor}) on {topic}"))
    }

    /// The committed offsets of `group` for partitions `0..partitions` of `topic` (`None`: nothing committed),
    /// read with the Java Admin client.
    pub fn committed(&self, bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
        let mut cmd = self.command("committed");
        cmd.args(["--bootstrap", bootstrap, "--group", group, "--topic", topic])
            .args(["--partitions", &partitions.to_string()]);
        let out = self.run(cmd, None, TOOL_TIMEOUT);
        let lines = parse_lines(&out, "committed");
        assert_eq!(
            lines.len(),
            partitions as usize,
            "weir-testkit: committed offsets of {group}"
        );
        lines
            .iter()
            .map(|j| match j.get("offset") {
                Json::Null => None,
                _ => Some(j.int("offset")),
            })
            .collect()
    }

    /// Commits `offsets` (partition, next offset to read) of `topic` for `group` with a Java consumer that does not
    /// join (the group must have no members).
    pub fn commit(&self, bootstrap: &str, group: &str, topic: &str, offsets: &[(i32, i64)]) {
        let list: Vec<String> = offsets.iter().map(|(p, o)| format!("{p}={o}")).collect();
        let mut cmd = self.command("commit");
        cmd.args(["--bootstrap", bootstrap, "--group", group, "--topic", topic])
            .args(["--offsets", &list.join(",")]);
        let out = self.run(cmd, None, TOOL_TIMEOUT);
        assert_eq!(
            parse_lines(&out, "commit").len(),
            offsets.len(),
            "weir-testkit: the Java commit for {group} printed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// Runs a subcommand; panics with its stderr unless it succeeds.
    fn run(&self, cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
        let desc = format!("{cmd:?}");
        let out = run_with_timeout(cmd, stdin, timeout + JVM_SLACK);
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            // The build is not redone when Main.java changes; a peer built before a subcommand lacks it.
            let hint = if stderr.contains("java-peer: unknown subcommand") {
                format!(
                    "\n(the peer in {} predates this subcommand: run scripts/setup-test-env java-peer)",
                    self.dir.display()
                )
            } else {
                String::new()
            };
            panic!(
                "weir-testkit: the Java peer failed ({}): {desc}\nstderr:\n{stderr}{hint}",
                out.status
            );
        }
        out
    }
}

/// The version in a jar name `PREFIX<version>.jar` in `dir`.
fn jar_version(dir: &Path, prefix: &str) -> Option<String> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let name = e.file_name().into_string().ok()?;
        let v = name.strip_prefix(prefix)?.strip_suffix(".jar")?;
        (!v.contains("test") && !v.contains("sources")).then(|| v.to_string())
    })
}

fn parse_lines(out: &Output, what: &str) -> Vec<Json> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            Json::parse(l).unwrap_or_else(|e| {
                panic!(
                    "weir-testkit: the Java peer ({what}) printed a line that is not JSON ({e}): {l}\nstderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
        })
        .collect()
}

/// What a [`Member`] reported, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// `onPartitionsAssigned` (cooperative protocol: the added partitions only; possibly none).
    Assigned(Vec<i32>),
    /// `onPartitionsRevoked`.
    Revoked(Vec<i32>),
    /// `onPartitionsLost`.
    Lost(Vec<i32>),
    /// A record returned by `poll`.
    Record {
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
        /// Value (`None`: null).
        value: Option<Vec<u8>>,
    },
    /// A `commitSync` that succeeded: (partition, next offset).
    Committed(Vec<(i32, i64)>),
    /// A `commitSync` that failed, with the exception.
    CommitFailed(String),
    /// `close()` returned: the member left the group.
    Closed,
}

#[derive(Debug, Default)]
struct MemberLog {
    events: Vec<MemberEvent>,
    stderr: Vec<String>,
    /// stdout reached EOF: the process is exiting.
    stdout_done: bool,
}

/// A Java group member started by [`JavaPeer::member`]. Its events are collected by a thread as it prints them;
/// [`Member::close`] makes it commit, leave and exit; dropping it kills the JVM.
#[derive(Debug)]
pub struct Member {
    child: Child,
    stdin: Option<ChildStdin>,
    log: Arc<(Mutex<MemberLog>, Condvar)>,
    readers: Vec<std::thread::JoinHandle<()>>,
    desc: String,
}

impl Member {
    fn spawn(mut cmd: Command, desc: String) -> Member {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("weir-testkit: cannot start the {desc}: {e}"));
        let log: Arc<(Mutex<MemberLog>, Condvar)> = Arc::default();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let out_log = log.clone();
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let event = parse_event(&line);
                let (m, cv) = &*out_log;
                let mut l = lock(m);
                match event {
                    Ok(e) => l.events.push(e),
                    Err(e) => l.stderr.push(format!("(bad event line: {e}: {line})")),
                }
                cv.notify_all();
            }
            let (m, cv) = &*out_log;
            lock(m).stdout_done = true;
            cv.notify_all();
        });
        let err_log = log.clone();
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lock(&err_log.0).stderr.push(line);
            }
        });
        Member {
            stdin: child.stdin.take(),
            child,
            log,
            readers: vec![out_reader, err_reader],
            desc,
        }
    }

    /// Everything it reported so far.
    pub fn events(&self) -> Vec<MemberEvent> {
        lock(&self.log.0).events.clone()
    }

    /// Its assignment now: the assigned partitions minus the revoked and lost ones, replayed from the events
    /// (eager callbacks list everything, cooperative ones only the change); `None` before its first assignment.
    pub fn assignment(&self) -> Option<BTreeSet<i32>> {
        assignment_of(&lock(&self.log.0).events)
    }

    /// The records it read so far: (partition, offset, value).
    pub fn records(&self) -> Vec<(i32, i64, Option<Vec<u8>>)> {
        records_of(&lock(&self.log.0).events)
    }

    /// The latest offset it committed per partition.
    pub fn committed(&self) -> BTreeMap<i32, i64> {
        committed_of(&lock(&self.log.0).events)
    }

    /// Its stderr so far (Java client warnings and errors).
    pub fn stderr(&self) -> String {
        lock(&self.log.0).stderr.join("\n")
    }

    /// A summary for failure messages: the events (records counted per partition) and the stderr tail.
    pub fn describe(&self) -> String {
        let l = lock(&self.log.0);
        describe_log(&self.desc, &l)
    }

    /// Blocks until `done` holds for the events so far, for at most `timeout`; panics (naming `what`, with
    /// [`Member::describe`]) on timeout or if the member exits first.
    pub fn wait_until(&self, what: &str, timeout: Duration, mut done: impl FnMut(&[MemberEvent]) -> bool) {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.log;
        let mut l = lock(m);
        loop {
            if done(&l.events) {
                return;
            }
            let now = Instant::now();
            if l.stdout_done || now >= deadline {
                let why = if l.stdout_done { "it exited" } else { "timed out" };
                let log = describe_log(&self.desc, &l);
                // Not holding the lock while panicking: the reader threads and the drop still use it.
                drop(l);
                panic!(
                    "weir-testkit: waiting for the {} ({what}): {why} after {timeout:?}\n{log}",
                    self.desc
                );
            }
            l = cv
                .wait_timeout(l, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Whether the JVM is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Closes its stdin, which makes it commit (with `commit`), close the consumer (leaving the group) and exit;
    /// waits for that, at most 40 s. Returns every event; panics if it does not exit cleanly in time.
    pub fn close(mut self) -> Vec<MemberEvent> {
        drop(self.stdin.take());
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!(
                        "weir-testkit: the {} did not close within {CLOSE_TIMEOUT:?}\n{}",
                        self.desc,
                        self.describe()
                    );
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("weir-testkit: waiting for the {}: {e}", self.desc),
            }
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let events = self.events();
        if !status.success() || events.last() != Some(&MemberEvent::Closed) {
            panic!(
                "weir-testkit: the {} did not close cleanly ({status})\n{}",
                self.desc,
                self.describe()
            );
        }
        events
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        drop(self.stdin.take());
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

/// Locks the member's log whether or not a thread panicked holding it (a failed `wait_until` predicate).
fn lock(m: &Mutex<MemberLog>) -> MutexGuard<'_, MemberLog> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A member's assignment after `events` (as [`Member::assignment`]); for predicates of [`Member::wait_until`].
pub fn assignment_of(events: &[MemberEvent]) -> Option<BTreeSet<i32>> {
    let mut now = BTreeSet::new();
    let mut assigned = false;
    for e in events {
        match e {
            MemberEvent::Assigned(ps) => {
                assigned = true;
                now.extend(ps.iter().copied());
            }
            MemberEvent::Revoked(ps) | MemberEvent::Lost(ps) => {
                for p in ps {
                    now.remove(p);
                }
            }
            _ => {}
        }
    }
    assigned.then_some(now)
}

/// The latest offset committed per partition among `events` (as [`Member::committed`]).
pub fn committed_of(events: &[MemberEvent]) -> BTreeMap<i32, i64> {
    let mut m = BTreeMap::new();
    for e in events {
        if let MemberEvent::Committed(offsets) = e {
            m.extend(offsets.iter().copied());
        }
    }
    m
}

/// The records among `events`, (partition, offset, value) (as [`Member::records`]).
pub fn records_of(events: &[MemberEvent]) -> Vec<(i32, i64, Option<Vec<u8>>)> {
    events
        .iter()
        .filter_map(|e| match e {
            MemberEvent::Record {
                partition,
                offset,
                value,
            } => Some((*partition, *offset, value.clone())),
            _ => None,
        })
        .collect()
}

fn describe_log(desc: &str, l: &MemberLog) -> String {
    let mut s = format!("{desc}: events (records summarised):\n");
    let mut run: BTreeMap<i32, (i64, i64, usize)> = BTreeMap::new();
    let flush = |s: &mut String, run: &mut BTreeMap<i32, (i64, i64, usize)>| {
        for (p, (first, last, n)) in std::mem::take(run) {
            s.push_str(&format!(
                "  {n} records of partition {p}, offsets {first}..={last}\n"
            ));
        }
    };
    for e in &l.events {
        match e {
            MemberEvent::Record {
                partition, offset, ..
            } => {
                let r = run.entry(*partition).or_insert((*offset, *offset, 0));
                r.1 = *offset;
                r.2 += 1;
            }
            other => {
                flush(&mut s, &mut run);
                s.push_str(&format!("  {other:?}\n"));
            }
        }
    }
    flush(&mut s, &mut run);
    let tail: Vec<&String> = l.stderr.iter().rev().take(40).collect();
    s.push_str(if tail.is_empty() {
        "stderr: (nothing)\n"
    } else {
        "stderr (last lines):\n"
    });
    for line in tail.into_iter().rev() {
        s.push_str("  ");
        s.push_str(line);
        s.push('\n');
    }
    s
}

fn parse_event(line: &str) -> Result<MemberEvent, String> {
    let j = Json::parse(line)?;
    let partitions = |j: &Json| -> Vec<i32> {
        j.get("partitions")
            .items()
            .iter()
            .map(|p| p.as_int() as i32)
            .collect()
    };
    Ok(match j.str("event") {
        "assigned" => MemberEvent::Assigned(partitions(&j)),
        "revoked" => MemberEvent::Revoked(partitions(&j)),
        "lost" => MemberEvent::Lost(partitions(&j)),
        "record" => MemberEvent::Record {
            partition: j.int("partition") as i32,
            offset: j.int("offset"),
            value: j.bytes("value"),
        },
        "committed" => MemberEvent::Committed(
            j.get("offsets")
                .items()
                .iter()
                .map(|po| {
                    let po = po.items();
                    (po[0].as_int() as i32, po[1].as_int())
                })
                .collect(),
        ),
        "commit_failed" => MemberEvent::CommitFailed(j.str("error").to_string()),
        "closed" => MemberEvent::Closed,
        other => return Err(format!("unknown event {other:?}")),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Just enough JSON and base64 for the peer's lines.

/// A parsed JSON value (numbers are integers: the peer prints no others).
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

static NULL: Json = Json::Null;

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            s: text.as_bytes(),
            i: 0,
        };
        p.ws();
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing characters at {}", p.i));
        }
        Ok(v)
    }

    /// A field of an object (`Null` if absent).
    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map_or(&NULL, |(_, v)| v),
            _ => &NULL,
        }
    }

    fn items(&self) -> &[Json] {
        match self {
            Json::Arr(v) => v,
            other => panic!("weir-testkit: expected a JSON array from the Java peer, got {other:?}"),
        }
    }

    fn as_int(&self) -> i64 {
        match self {
            Json::Int(n) => *n,
            other => panic!("weir-testkit: expected an integer from the Java peer, got {other:?}"),
        }
    }

    fn int(&self, key: &str) -> i64 {
        match self.get(key) {
            Json::Int(n) => *n,
            other => panic!(
                "weir-testkit: expected an integer {key:?} from the Java peer, got {other:?} in {self:?}"
            ),
        }
    }

    fn str(&self, key: &str) -> &str {
        match self.get(key) {
            Json::Str(s) => s,
            other => panic!(
                "weir-testkit: expected a string {key:?} from the Java peer, got {other:?} in {self:?}"
            ),
        }
    }

    fn as_bytes(&self) -> Option<Vec<u8>> {
        match self {
            Json::Null => None,
            Json::Str(s) => Some(
                base64_decode(s)
                    .unwrap_or_else(|e| panic!("weir-testkit: bad base64 from the Java peer ({e}): {s}")),
            ),
            other => panic!("weir-testkit: expected base64 or null from the Java peer, got {other:?}"),
        }
    }

    fn bytes(&self, key: &str) -> Option<Vec<u8>> {
        self.get(key).as_bytes()
    }

    fn headers(&self, key: &str) -> Vec<(String, Option<Vec<u8>>)> {
        self.get(key)
            .items()
            .iter()
            .map(|h| match h.items() {
                [Json::Str(k), v] => (k.clone(), v.as_bytes()),
                other => panic!("weir-testkit: a header from the Java peer is {other:?}"),
            })
            .collect()
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", c as char, self.i))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.s.get(self.i) {
            None => Err("unexpected end".into()),
            Some(b'{') => {
                self.i += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.eat(b'}') {
                    return Ok(Json::Obj(fields));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.ws();
                    self.expect(b':')?;
                    self.ws();
                    fields.push((k, self.value()?));
                    self.ws();
                    if self.eat(b'}') {
                        return Ok(Json::Obj(fields));
                    }
                    self.expect(b',')?;
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.eat(b']') {
                    return Ok(Json::Arr(items));
                }
                loop {
                    self.ws();
                    items.push(self.value()?);
                    self.ws();
                    if self.eat(b']') {
                        return Ok(Json::Arr(items));
                    }
                    self.expect(b',')?;
                }
            }
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(_) => {
                for (word, v) in [
                    ("null", Json::Null),
                    ("true", Json::Bool(true)),
                    ("false", Json::Bool(false)),
                ] {
                    if self.s[self.i..].starts_with(word.as_bytes()) {
                        self.i += word.len();
                        return Ok(v);
                    }
                }
                let start = self.i;
                while self.i < self.s.len() && (self.s[self.i] == b'-' || self.s[self.i].is_ascii_digit()) {
                    self.i += 1;
                }
                std::str::from_utf8(&self.s[start..self.i])
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .map(Json::Int)
                    .ok_or_else(|| format!("bad value at {start}"))
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = *self.s.get(self.i).ok_or("unterminated string")?;
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or("unterminated escape")?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut unit = self.hex4()?;
                            // A surrogate pair is two escapes.
                            if (0xD800..0xDC00).contains(&unit) && self.s[self.i..].starts_with(b"\\u") {
                                self.i += 2;
                                let low = self.hex4()?;
                                unit = 0x10000 + ((unit - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3ff);
                            }
                            let ch = char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER);
                            out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                        _ => return Err(format!("bad escape at {}", self.i)),
                    }
                }
                _ => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
        self.i += 4;
        std::str::from_utf8(h)
            .ok()
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| "bad \\u escape".to_string())
    }
}

/// A [`PeerRecord`] as the peer's `produce` input line (without the newline).
fn record_json(r: &PeerRecord) -> String {
    let mut s = String::from("{\"partition\": ");
    s.push_str(&r.partition.map_or("null".to_string(), |p| p.to_string()));
    s.push_str(", \"key\": ");
    s.push_str(&json_bytes(r.key.as_deref()));
    s.push_str(", \"value\": ");
    s.push_str(&json_bytes(r.value.as_deref()));
    s.push_str(", \"headers\": [");
    for (i, (k, v)) in r.headers.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('[');
        s.push_str(&json_string(k));
        s.push_str(", ");
        s.push_str(&json_bytes(v.as_deref()));
        s.push(']');
    }
    s.push_str("], \"timestamp\": ");
    s.push_str(&r.timestamp.map_or("null".to_string(), |t| t.to_string()));
    s.push('}');
    s
}

/// An acknowledgement line of `produce` or `produce-txn`.
fn produced(j: &Json) -> Produced {
    Produced {
        partition: j.int("partition") as i32,
        offset: j.int("offset"),
        timestamp: j.int("timestamp"),
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_bytes(b: Option<&[u8]>) -> String {
    match b {
        None => "null".into(),
        Some(b) => format!("\"{}\"", base64_encode(b)),
    }
}

/// Standard padded base64 (Java's `Base64.getEncoder()`).
fn base64_encode(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// The inverse of [`base64_encode`], strictly.
fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for n in 0..40usize {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_decode("Zm9vYg==").unwrap(), b"foob");
        assert!(base64_decode("Zg=").is_err());
        assert!(base64_decode("Zg==Zg==").is_err());
    }

    #[test]
    fn parses_peer_lines() {
        let j = Json::parse(
            r#"{"partition": 2, "offset": -1, "key": null, "value": "", "headers": [["h\"\u00e9\ud83d\ude00", null], ["x", "AAE="]], "timestamp_type": "CreateTime"}"#,
        )
        .unwrap();
        assert_eq!(j.int("partition"), 2);
        assert_eq!(j.int("offset"), -1);
        assert_eq!(j.bytes("key"), None);
        assert_eq!(j.bytes("value"), Some(vec![]));
        assert_eq!(
            j.headers("headers"),
            vec![("h\"é😀".to_string(), None), ("x".to_string(), Some(vec![0, 1]))]
        );
        assert_eq!(j.str("timestamp_type"), "CreateTime");
        assert!(Json::parse("{\"a\": 1} x").is_err());
        assert_eq!(
            Json::parse(&json_string("a\"\\\n\u{1}é")).unwrap(),
            Json::Str("a\"\\\n\u{1}é".into())
        );
    }

    #[test]
    fn parses_member_events() {
        assert_eq!(
            parse_event(r#"{"event": "assigned", "partitions": [0, 3]}"#).unwrap(),
            MemberEvent::Assigned(vec![0, 3])
        );
        assert_eq!(
            parse_event(r#"{"event": "committed", "offsets": [[0, 5], [3, 7]]}"#).unwrap(),
            MemberEvent::Committed(vec![(0, 5), (3, 7)])
        );
        assert_eq!(
            parse_event(r#"{"event": "record", "partition": 1, "offset": 9, "value": null}"#).unwrap(),
            MemberEvent::Record {
                partition: 1,
                offset: 9,
                value: None
            }
        );
        let events = vec![
            MemberEvent::Assigned(vec![0, 1, 2]),
            MemberEvent::Revoked(vec![1]),
            MemberEvent::Assigned(vec![]),
            MemberEvent::Lost(vec![2]),
        ];
        assert_eq!(assignment_of(&events), Some(BTreeSet::from([0])));
        assert_eq!(assignment_of(&[]), None);
    }
}
