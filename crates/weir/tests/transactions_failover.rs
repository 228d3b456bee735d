//! Transactions through coordinator failover on a three-node Apache Kafka cluster (replication factor 3,
//! `min.insync.replicas=2`, `__transaction_state` with one partition): a weir transactional producer commits
//! transactions of 100 records over three partitions in a loop, and the broker that is the transaction
//! coordinator of its transactional id is killed with SIGKILL just as a commit starts, and restarted once it
//! has moved. Three rounds: records acknowledged before the commit (the kill meets EndTxn), records still in
//! flight (it meets AddPartitionsToTxn and the writes), and acknowledged with the kill 3 ms later. Each round
//! kills the coordinator of the moment, so never the same node twice in a row; the cluster elects leaders in
//! replica order, so the last replica of `__transaction_state-0` never becomes coordinator while the other two
//! are in sync, and rounds one and three kill the same node.
//!
//! The producer recovers or fails cleanly: a failed commit is aborted, and a producer that cannot abort (or is
//! fenced) is replaced by a new one with the same transactional id, as an application would do. Nothing is
//! half-visible: a read_committed consumer sees every committed transaction whole, exactly once, at the offsets
//! its deliveries reported, in transaction order per partition; an aborted one not at all; one whose outcome
//! the producer could not learn (commit and abort both failed) either whole or not at all.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    FindCoordinatorRequest, MetadataRequest, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::sync::{mpsc, watch};
use tokio::time::{timeout, Instant};
use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::error::KafkaCode;
use weir::producer::DeliveryFuture;
use weir::{Error, Producer, ProducerRecord, RecordMetadata};
use weir_testkit::{unique_name, Kafka, Shape};

const PARTITIONS: i32 = 3;
/// Records per transaction, record `i` to partition `i % PARTITIONS`.
const PER_TXN: usize = 100;
/// Bound of any one producer call (init, commit, abort, the deliveries of a transaction): longer is a hang.
const CALL_BOUND: Duration = Duration::from_secs(60);
/// Committed transactions the producer must manage after each kill (and after each restart) to count as
/// recovered.
const AFTER_KILL: usize = 3;
const AFTER_RESTART: usize = 2;

/// The kill rounds: whether the producer waits for its records' acknowledgements before the commit that the
/// kill targets (then the kill lands in EndTxn), and how long after the commit starts the kill comes.
const ROUNDS: [(Arm, u64); 3] = [(Arm::Acked, 0), (Arm::InFlight, 0), (Arm::Acked, 3)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Arm {
    None = 0,
    /// Every record acknowledged, then the commit (flush is immediate: the kill meets EndTxn).
    Acked = 1,
    /// The commit right after the sends (the kill meets the flush: produce requests, AddPartitionsToTxn).
    InFlight = 2,
}

/// What the producer learnt of a transaction.
#[derive(Debug, Clone)]
enum Outcome {
    /// `commit_transaction` returned Ok: every record visible, at these (partition, offset)s.
    Committed(Vec<(i32, i64)>),
    /// The commit (or a send) failed and `abort_transaction` returned Ok: nothing visible.
    Aborted(String),
    /// Neither commit nor abort succeeded (the producer was replaced): all or nothing.
    Unknown(String),
}

#[derive(Debug, Clone)]
struct TxnReport {
    txn: usize,
    /// Which producer instance (0, 1, ...: replaced after a fatal error) ran it.
    generation: usize,
    /// Whether a kill was armed for this transaction's commit.
    targeted: bool,
    outcome: Outcome,
    /// How long `commit_transaction` took (None if it was not called).
    commit_took: Option<Duration>,
}

/// Between the test and the producer task.
struct Control {
    /// Arm the next commit: tell `commit_started` just before it is called.
    arm: AtomicU8,
    stop: AtomicBool,
    commit_started: mpsc::UnboundedSender<usize>,
    /// Committed transactions so far.
    committed: watch::Sender<usize>,
    /// Problems that are weir bugs whatever the outcome: a call that did not return in time, a commit that
    /// returned Ok although a record of it failed.
    bugs: std::sync::Mutex<Vec<String>>,
}

fn transactional(bootstrap: &str, id: &str) -> Producer {
    let mut cfg = ProducerConfig::new(bootstrap);
    cfg.set("transactional.id", id).unwrap();
    cfg.set("transaction.timeout.ms", "30000").unwrap();
    cfg.set("acks", "all").unwrap();
    cfg.set("enable.idempotence", "true").unwrap();
    cfg.set("request.timeout.ms", "10000").unwrap();
    cfg.set("delivery.timeout.ms", "45000").unwrap();
    Producer::new(cfg).unwrap()
}

fn fenced(e: &Error) -> bool {
    matches!(
        e.kafka_code(),
        Some(KafkaCode::ProducerFenced | KafkaCode::InvalidProducerEpoch)
    )
}

/// Awaits every delivery of a transaction (bounded): the offsets, or the first error.
async fn deliveries(acks: Vec<DeliveryFuture>) -> Result<Vec<RecordMetadata>, String> {
    let all = async {
        let mut out = Vec::with_capacity(acks.len());
        for (i, a) in acks.into_iter().enumerate() {
            out.push(a.await.map_err(|e| format!("record {i}: {e}"))?);
        }
        Ok(out)
    };
    timeout(CALL_BOUND, all)
        .await
        .unwrap_or_else(|_| Err(format!("deliveries not resolved after {CALL_BOUND:?}")))
}

/// The producer's loop: transactions until told to stop; a producer whose commit and abort failed, or that
/// was fenced, is replaced (same transactional id: `init_transactions` fences it and ends its transaction).
async fn produce(bootstrap: String, topic: String, txn_id: String, ctl: Arc<Control>) -> Vec<TxnReport> {
    let mut reports = Vec::new();
    let mut producer: Option<Producer> = None;
    let mut generation = 0usize;
    let mut committed = 0usize;
    let mut txn = 0usize;
    let bug = |what: String| {
        eprintln!("BUG: {what}");
        ctl.bugs.lock().unwrap().push(what);
    };
    while !ctl.stop.load(Ordering::Acquire) {
        let p = match &producer {
            Some(p) => p.clone(),
            None => {
                let p = transactional(&bootstrap, &txn_id);
                match timeout(CALL_BOUND, p.init_transactions()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        // The coordinator may still be moving: a new producer tries again.
                        eprintln!("producer {generation}: init_transactions failed: {e}");
                        let _ = timeout(Duration::from_secs(5), p.close()).await;
                        generation += 1;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    Err(_) => {
                        bug(format!(
                            "producer {generation}: init_transactions hung for {CALL_BOUND:?}"
                        ));
                        generation += 1;
                        continue;
                    }
                }
                producer = Some(p.clone());
                p
            }
        };
        if let Err(e) = p.begin_transaction() {
            // Only a finished (fenced) producer refuses: nothing of this transaction was sent.
            eprintln!("producer {generation}: begin_transaction failed: {e}; replacing it");
            let _ = timeout(Duration::from_secs(5), p.close()).await;
            producer = None;
            generation += 1;
            continue;
        }
        let mut acks = Vec::with_capacity(PER_TXN);
        let mut failed: Option<String> = None;
        for i in 0..PER_TXN {
            let record =
                ProducerRecord::new(topic.as_str(), format!("t{txn}-{i}")).partition(i as i32 % PARTITIONS);
            match timeout(CALL_BOUND, p.send(record)).await {
                Ok(Ok(d)) => acks.push(d),
                Ok(Err(e)) => {
                    failed = Some(format!("send of record {i}: {e}"));
                    break;
                }
                Err(_) => {
                    bug(format!("t{txn}: send of record {i} hung for {CALL_BOUND:?}"));
                    failed = Some("send hung".into());
                    break;
                }
            }
        }
        let mut arm = Arm::None;
        if failed.is_none() {
            arm = match ctl.arm.swap(Arm::None as u8, Ordering::AcqRel) {
                1 => Arm::Acked,
                2 => Arm::InFlight,
                _ => Arm::None,
            };
        }
        let mut acked = None;
        if arm == Arm::Acked {
            match deliveries(std::mem::take(&mut acks)).await {
                Ok(m) => acked = Some(m),
                Err(e) => failed = Some(format!("before the commit: {e}")),
            }
        }
        let mut commit_took = None;
        let mut fatal = false;
        if failed.is_none() {
            if arm != Arm::None {
                let _ = ctl.commit_started.send(txn);
            }
            let t0 = Instant::now();
            let result = timeout(CALL_BOUND, p.commit_transaction()).await;
            commit_took = Some(t0.elapsed());
            match result {
                Ok(Ok(())) => {
                    let metas = match acked.take() {
                        Some(m) => Ok(m),
                        None => deliveries(std::mem::take(&mut acks)).await,
                    };
                    let offsets = match metas {
                        Ok(m) => m.iter().map(|m| (m.partition, m.offset)).collect(),
                        Err(e) => {
                            bug(format!("t{txn}: commit_transaction returned Ok, but {e}"));
                            Vec::new()
                        }
                    };
                    committed += 1;
                    ctl.committed.send_replace(committed);
                    reports.push(TxnReport {
                        txn,
                        generation,
                        targeted: arm != Arm::None,
                        outcome: Outcome::Committed(offsets),
                        commit_took,
                    });
                    txn += 1;
                    continue;
                }
                Ok(Err(e)) => {
                    fatal = fenced(&e);
                    failed = Some(format!("commit: {e}"));
                }
                Err(_) => {
                    bug(format!("t{txn}: commit_transaction hung for {CALL_BOUND:?}"));
                    fatal = true;
                    failed = Some("commit hung".into());
                }
            }
        }
        // The transaction failed: abort it, or, if this producer is finished, leave it to the next one.
        let why = failed.unwrap_or_default();
        let outcome = if fatal {
            Outcome::Unknown(why)
        } else {
            match timeout(CALL_BOUND, p.abort_transaction()).await {
                Ok(Ok(())) => Outcome::Aborted(why),
                Ok(Err(e)) => Outcome::Unknown(format!("{why}; abort: {e}")),
                Err(_) => {
                    bug(format!("t{txn}: abort_transaction hung for {CALL_BOUND:?}"));
                    Outcome::Unknown(format!("{why}; abort hung"))
                }
            }
        };
        eprintln!("producer {generation}: t{txn} failed: {outcome:?}");
        if matches!(outcome, Outcome::Unknown(_)) {
            let _ = timeout(Duration::from_secs(5), p.close()).await;
            producer = None;
            generation += 1;
        }
        reports.push(TxnReport {
            txn,
            generation,
            targeted: arm != Arm::None,
            outcome,
            commit_took,
        });
        txn += 1;
        if arm != Arm::None && commit_took.is_none() {
            // The targeted transaction failed before its commit: target the next one.
            ctl.arm.store(arm as u8, Ordering::Release);
        }
    }
    if let Some(p) = producer {
        if timeout(Duration::from_secs(30), p.close()).await.is_err() {
            bug("close hung".into());
        }
    }
    reports
}

// --- A few blocking protocol calls of the test's own (weir has no API for these): the transaction
// coordinator of an id (FindCoordinator, key type 1) and the in-sync replicas of partitions (Metadata). ---

fn call<R: Request>(port: u16, req: &R, version: i16) -> Result<R::Response, String> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("weir-txn-failover-test")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, R::header_version(version))
        .map_err(|e| e.to_string())?;
    req.encode(&mut body, version).map_err(|e| e.to_string())?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let bound = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&addr, bound).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(bound)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(bound)).map_err(|e| e.to_string())?;
    s.write_all(&(body.len() as i32).to_be_bytes())
        .and_then(|_| s.write_all(&body))
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut size = [0u8; 4];
    s.read_exact(&mut size)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let size = i32::from_be_bytes(size);
    if !(0..64 << 20).contains(&size) {
        return Err(format!("response of size {size}"));
    }
    let mut resp = vec![0u8; size as usize];
    s.read_exact(&mut resp)
        .map_err(|e| format!("read from {addr}: {e}"))?;
    let mut resp = Bytes::from(resp);
    ResponseHeader::decode(&mut resp, R::Response::header_version(version)).map_err(|e| e.to_string())?;
    R::Response::decode(&mut resp, version).map_err(|e| e.to_string())
}

/// The transaction coordinator of `txn_id`, as a live node answers FindCoordinator (bounded wait).
fn coordinator(kafka: &Kafka, live: &[i32], txn_id: &str) -> i32 {
    let mut req = FindCoordinatorRequest::default();
    req.key_type = 1;
    req.coordinator_keys = vec![StrBytes::from_string(txn_id.to_owned())];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    loop {
        for &id in live {
            match call(kafka.port(id), &req, 4) {
                Ok(r) => match r.coordinators.first() {
                    Some(c) if c.error_code == 0 && live.contains(&c.node_id.0) => return c.node_id.0,
                    Some(c) => {
                        last = format!("node {id}: coordinator {} error {}", c.node_id.0, c.error_code)
                    }
                    None => last = format!("node {id}: empty answer"),
                },
                Err(e) => last = format!("node {id}: {e}"),
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no transaction coordinator for {txn_id} after 30 s: {last}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (bounded) until every partition of `topics` has all three replicas in sync, as every live node
/// reports it: a restarted node has caught up, so that the next kill leaves two in-sync replicas everywhere.
fn wait_for_full_isr(kafka: &Kafka, live: &[i32], topics: &[&str]) {
    let mut req = MetadataRequest::default();
    req.topics = Some(
        topics
            .iter()
            .map(|t| {
                let mut mt = MetadataRequestTopic::default();
                mt.name = Some(TopicName(StrBytes::from_string(t.to_string())));
                mt
            })
            .collect(),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mut lagging = Vec::new();
        for &id in live {
            match call(kafka.port(id), &req, 12) {
                Ok(m) => {
                    for t in &m.topics {
                        let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                        if t.error_code != 0 || t.partitions.is_empty() {
                            lagging.push(format!("node {id}: {name} error {}", t.error_code));
                        }
                        for p in &t.partitions {
                            if p.isr_nodes.len() < 3 || p.leader_id.0 < 0 {
                                lagging.push(format!(
                                    "node {id}: {name}-{} leader {} isr {:?}",
                                    p.partition_index,
                                    p.leader_id.0,
                                    p.isr_nodes.iter().map(|b| b.0).collect::<Vec<_>>()
                                ));
                            }
                        }
                    }
                }
                Err(e) => lagging.push(format!("node {id}: {e}")),
            }
        }
        if lagging.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replicas not in sync after 60 s: {lagging:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (bounded) until the producer has committed `n` transactions.
async fn committed_at_least(rx: &mut watch::Receiver<usize>, n: usize, bound: Duration, what: &str) {
    let ok = matches!(timeout(bound, rx.wait_for(|c| *c >= n)).await, Ok(Ok(_)));
    let now = *rx.borrow();
    assert!(
        ok,
        "{what}: the producer committed {now} transactions, not {n}, within {bound:?}"
    );
}

/// Every record a consumer at `isolation` delivers from every partition until it reaches their ends:
/// (partition, offset, value).
async fn read_all(bootstrap: &str, topic: &str, isolation: &str) -> Vec<(i32, i64, String)> {
    let mut cfg = ConsumerConfig::new(bootstrap);
    cfg.set("isolation.level", isolation).unwrap();
    let consumer = Consumer::new(cfg).unwrap();
    let tps: Vec<TopicPartition> = (0..PARTITIONS).map(|p| TopicPartition::new(topic, p)).collect();
    let assign: Vec<(TopicPartition, StartOffset)> =
        tps.iter().map(|tp| (tp.clone(), StartOffset::Earliest)).collect();
    consumer.assign(&assign).await.unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for r in consumer.poll(1000, Duration::from_millis(100)).await.unwrap() {
            let v = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
            got.push((r.partition, r.offset, v));
        }
        let at_end = tps.iter().all(|tp| {
            let end = consumer.high_watermark(tp).filter(|e| *e >= 0);
            end.is_some() && consumer.position(tp) >= end
        });
        if at_end {
            consumer.close().await.unwrap();
            return got;
        }
        let where_: Vec<_> = tps
            .iter()
            .map(|tp| (consumer.position(tp), consumer.high_watermark(tp)))
            .collect();
        assert!(
            Instant::now() < deadline,
            "{isolation}: not at the end after 60 s (position, high watermark per partition: {where_:?}); {} records",
            got.len()
        );
    }
}

/// `t{txn}-{i}` → (txn, i).
fn parse(v: &str) -> Option<(usize, usize)> {
    let (t, i) = v.strip_prefix('t')?.split_once('-')?;
    Some((t.parse().ok()?, i.parse().ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_killed_during_commits_leaves_nothing_half_visible() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("WEIR_LOG"))
        .with_test_writer()
        .try_init();
    let started = Instant::now();
    let mut kafka = Kafka::start(Shape::Three);
    let topic = unique_name("txn-failover");
    kafka.create_topic(&topic, PARTITIONS);
    let bootstrap = kafka.bootstrap();
    let txn_id = unique_name("txn-failover-id");
    let all_nodes = kafka.node_ids();

    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    let (committed_tx, mut committed_rx) = watch::channel(0usize);
    let ctl = Arc::new(Control {
        arm: AtomicU8::new(Arm::None as u8),
        stop: AtomicBool::new(false),
        commit_started: started_tx,
        committed: committed_tx,
        bugs: std::sync::Mutex::new(Vec::new()),
    });
    let producing = tokio::spawn(produce(
        bootstrap.clone(),
        topic.clone(),
        txn_id.clone(),
        ctl.clone(),
    ));

    // A few transactions first: the first init_transactions creates __transaction_state.
    committed_at_least(&mut committed_rx, 3, Duration::from_secs(60), "before the kills").await;
    let mut killed = Vec::new();
    for (round, (arm, delay_ms)) in ROUNDS.iter().enumerate() {
        let victim = tokio::task::block_in_place(|| {
            let c = coordinator(&kafka, &all_nodes, &txn_id);
            let leader = kafka.leader("__transaction_state", 0);
            assert_eq!(
                c, leader,
                "the coordinator leads __transaction_state-0 (one partition)"
            );
            c
        });
        ctl.arm.store(*arm as u8, Ordering::Release);
        let txn = timeout(Duration::from_secs(60), started_rx.recv())
            .await
            .expect("the armed commit started within 60 s")
            .expect("the producer is running");
        if *delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(*delay_ms)).await;
        }
        let t0 = Instant::now();
        tokio::task::block_in_place(|| kafka.kill(victim));
        eprintln!(
            "round {round}: killed node {victim} (the coordinator) {delay_ms} ms after t{txn}'s commit began \
             ({arm:?}), kill took {:?}, at {:?}",
            t0.elapsed(),
            started.elapsed()
        );
        killed.push((victim, txn));
        let c = *committed_rx.borrow();
        committed_at_least(
            &mut committed_rx,
            c + AFTER_KILL,
            Duration::from_secs(90),
            &format!("round {round}, node {victim} down"),
        )
        .await;
        let live: Vec<i32> = all_nodes.iter().copied().filter(|n| *n != victim).collect();
        let new_coordinator = tokio::task::block_in_place(|| coordinator(&kafka, &live, &txn_id));
        tokio::task::block_in_place(|| {
            kafka.restart(victim);
            wait_for_full_isr(&kafka, &all_nodes, &[topic.as_str(), "__transaction_state"]);
        });
        eprintln!(
            "round {round}: coordinator moved to node {new_coordinator}; node {victim} restarted and in sync at {:?}",
            started.elapsed()
        );
        let c = *committed_rx.borrow();
        committed_at_least(
            &mut committed_rx,
            c + AFTER_RESTART,
            Duration::from_secs(60),
            &format!("round {round}, node {victim} back"),
        )
        .await;
    }
    ctl.stop.store(true, Ordering::Release);
    let reports = timeout(Duration::from_secs(120), producing)
        .await
        .expect("the producer stopped within 120 s")
        .expect("the producer task did not panic");

    let committed = read_all(&bootstrap, &topic, "read_committed").await;
    let everything = read_all(&bootstrap, &topic, "read_uncommitted").await;

    // What each transaction left visible.
    let mut visible: BTreeMap<usize, Vec<(i32, i64, usize)>> = BTreeMap::new();
    let mut written: BTreeMap<usize, usize> = BTreeMap::new();
    let mut problems: Vec<String> = ctl.bugs.lock().unwrap().clone();
    // Even aborted records are written once: a retried write is deduplicated by its sequence number.
    let mut in_log: HashMap<&str, (i32, i64)> = HashMap::new();
    for (p, o, v) in &everything {
        if let Some((t, _)) = parse(v) {
            *written.entry(t).or_default() += 1;
        }
        if let Some(first) = in_log.insert(v, (*p, *o)) {
            problems.push(format!(
                "{v} written twice to the log: at {first:?} and at ({p}, {o})"
            ));
        }
    }
    let mut seen: HashMap<&str, (i32, i64)> = HashMap::new();
    let mut last: BTreeMap<i32, (usize, usize)> = BTreeMap::new();
    for (p, o, v) in &committed {
        let Some((t, i)) = parse(v) else {
            problems.push(format!("{topic}-{p}@{o}: unexpected value {v:?}"));
            continue;
        };
        if let Some(first) = seen.insert(v, (*p, *o)) {
            problems.push(format!("{v} twice: at {first:?} and at ({p}, {o})"));
        }
        if i as i32 % PARTITIONS != *p {
            problems.push(format!("{v} in partition {p}"));
        }
        if let Some(prev) = last.insert(*p, (t, i)) {
            if prev >= (t, i) {
                problems.push(format!(
                    "partition {p}: t{t}-{i} at {o} after t{}-{}",
                    prev.0, prev.1
                ));
            }
        }
        visible.entry(t).or_default().push((*p, *o, i));
    }
    let reported: HashMap<usize, &TxnReport> = reports.iter().map(|r| (r.txn, r)).collect();
    for t in visible.keys() {
        if !reported.contains_key(t) {
            problems.push(format!("t{t} visible, but the producer never ran it"));
        }
    }
    let mut table = String::new();
    for r in &reports {
        let vis = visible.get(&r.txn).map_or(0, |v| v.len());
        let (kind, detail) = match &r.outcome {
            Outcome::Committed(_) => ("committed", String::new()),
            Outcome::Aborted(why) => ("aborted", why.clone()),
            Outcome::Unknown(why) => ("unknown", why.clone()),
        };
        table.push_str(&format!(
            "  t{:<3} producer {} {:<9} commit took {:>9} visible {:>3}/{PER_TXN} written {:>3}{} {}\n",
            r.txn,
            r.generation,
            kind,
            r.commit_took.map_or("-".to_string(), |d| format!("{:.0?}", d)),
            vis,
            written.get(&r.txn).copied().unwrap_or(0),
            if r.targeted { " KILL" } else { "" },
            detail
        ));
        if vis != 0 && vis != PER_TXN {
            problems.push(format!(
                "t{}: half-visible, {vis} of {PER_TXN} records ({kind})",
                r.txn
            ));
        }
        match &r.outcome {
            Outcome::Committed(offsets) => {
                if vis != PER_TXN {
                    problems.push(format!("t{}: committed, but {vis} of {PER_TXN} visible", r.txn));
                }
                // Each record where its delivery said.
                let at: HashMap<usize, (i32, i64)> = visible
                    .get(&r.txn)
                    .map(|v| v.iter().map(|(p, o, i)| (*i, (*p, *o))).collect())
                    .unwrap_or_default();
                for (i, want) in offsets.iter().enumerate() {
                    if let Some(have) = at.get(&i) {
                        if have != want {
                            problems.push(format!("t{}-{i}: delivered at {want:?}, read at {have:?}", r.txn));
                        }
                    }
                }
            }
            Outcome::Aborted(_) => {
                if vis != 0 {
                    problems.push(format!("t{}: aborted, but {vis} records visible", r.txn));
                }
            }
            Outcome::Unknown(_) => {}
        }
    }
    eprintln!(
        "{} transactions in {:?}; kills (node, targeted transaction): {killed:?}\n{table}",
        reports.len(),
        started.elapsed()
    );
    assert!(
        problems.is_empty(),
        "{} problem(s):\n  {}\ntransactions:\n{table}",
        problems.len(),
        problems.join("\n  ")
    );
    // Each kill came at a different coordinator (leadership does not move back by itself within the test).
    let victims: Vec<i32> = killed.iter().map(|(v, _)| *v).collect();
    eprintln!("coordinators killed: {victims:?}");
}
