//! Fault injection against an in-process fake broker: bad input gets a clear error, nothing is lost.
//!
//! Every test is bounded by a timeout and synchronises on events (records polled, requests and connections the
//! fake broker recorded), never on sleeps.

#[path = "support/capped_alloc.rs"]
mod capped_alloc;
#[path = "support/fake_broker.rs"]
mod fake_broker;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fake_broker::{
    batch, batch_at_epoch, bounded, metadata_answer, Action, FakeBroker, FakeConfig, NODE_ID, PRODUCER_ID,
};
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::{ApiKey, BrokerId};
use kafka_protocol::protocol::{Encodable, StrBytes};
use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, ConsumerRecord, StartOffset, TopicPartition};
use weir::error::KafkaCode;
use weir::{Error, Producer, ProducerRecord};
use weir_proto::record::{batches, RecordError};

// Every allocation is recorded and any over 1 GiB refused (see `support/capped_alloc.rs`).
#[global_allocator]
static ALLOC: capped_alloc::Capped = capped_alloc::Capped;

// ---------------------------------------------------------------------------------------------------------
// Helpers.

const TOPIC: &str = "t";

fn consumer_config(fake: &FakeBroker) -> ConsumerConfig {
    let mut cfg = ConsumerConfig::new(&fake.bootstrap());
    cfg.set("fetch.wait.max.ms", "10").unwrap();
    cfg.set("reconnect.backoff.ms", "10").unwrap();
    cfg.set("retry.backoff.ms", "10").unwrap();
    cfg
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new(TOPIC, p)
}

fn values(p: i32, range: std::ops::Range<i64>) -> Vec<String> {
    range.map(|i| format!("p{p}-r{i}")).collect()
}

/// Appends `batches` batches of `size` records to partition `p`.
fn fill(fake: &FakeBroker, p: i32, batches: i64, size: i64) {
    for _ in 0..batches {
        let end = fake.log_end(TOPIC, p);
        fake.append(TOPIC, p, &values(p, end..end + size));
    }
}

/// What polling has returned so far.
#[derive(Default)]
struct Seen {
    records: Vec<ConsumerRecord>,
    errors: Vec<Error>,
}

impl Seen {
    fn offsets(&self, p: i32) -> Vec<i64> {
        self.records
            .iter()
            .filter(|r| r.partition == p)
            .map(|r| r.offset)
            .collect()
    }

    /// Every record of `p` has the value the fake stored at its offset.
    fn check_values(&self) {
        for r in &self.records {
            let want = format!("p{}-r{}", r.partition, r.offset);
            assert_eq!(
                r.value.as_deref(),
                Some(want.as_bytes()),
                "wrong value at {}-{}",
                r.partition,
                r.offset
            );
        }
    }
}

/// Polls until `cond` holds (panics after 20 s naming `what`).
async fn poll_until(c: &Consumer, seen: &mut Seen, what: &str, cond: impl Fn(&Seen) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond(seen) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; offsets p0 {:?} p1 {:?}; errors {:?}",
            seen.offsets(0),
            seen.offsets(1),
            seen.errors
        );
        match c.poll(1000, Duration::from_millis(100)).await {
            Ok(r) => seen.records.extend(r),
            Err(e) => seen.errors.push(e),
        }
    }
}

fn range(n: i64) -> Vec<i64> {
    (0..n).collect()
}

/// Index of the first Fetch served on a connection opened after the one that carried fetch `api_seq`.
fn fetched_on_new_connection(fake: &FakeBroker, api_seq: usize) -> bool {
    fake.recorded(|r| {
        let Some(bad) = r.of(ApiKey::Fetch).find(|q| q.api_seq == api_seq) else {
            return false;
        };
        r.of(ApiKey::Fetch).any(|q| q.conn > bad.conn)
    })
}

/// Replaces the codec bits of a batch's attributes and fixes the CRC, so only the codec is wrong.
fn with_codec(batch: &Bytes, codec: i16) -> Bytes {
    let mut b = BytesMut::from(&batch[..]);
    let attrs = i16::from_be_bytes([b[21], b[22]]);
    b[21..23].copy_from_slice(&((attrs & !7) | codec).to_be_bytes());
    let b = b.freeze();
    // The decoder's own CRC-32C tells what the CRC of the edited bytes is.
    let crc = match batches(b.clone()).next().unwrap().unwrap().verify_crc() {
        Ok(()) => return b,
        Err(RecordError::CrcMismatch { actual, .. }) => actual,
        Err(e) => panic!("{e}"),
    };
    let mut b = BytesMut::from(&b[..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

// ---------------------------------------------------------------------------------------------------------
// 1 and 2: corrupt batches are reported once, naming partition and offset; nothing else stops. A batch failing
// its CRC is fetched again first: damage in transit is survived.

/// Fetches of the fake whose partition `p` starts at `offset`.
fn fetches_at(fake: &FakeBroker, p: i32, offset: i64) -> usize {
    fake.recorded(|r| {
        r.of(ApiKey::Fetch)
            .filter(|q| q.fetch_offsets().contains(&(p, offset)))
            .count()
    })
}

/// Fetches that find a batch failing its CRC at one offset before it is reported (documented at
/// `consumer::crc_retry`, a private module).
const CRC_FETCH_ATTEMPTS: usize = 3;

/// `batch` with its last byte changed: it no longer matches its CRC.
fn damaged(batch: &Bytes) -> Bytes {
    let mut bad = BytesMut::from(&batch[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    bad.freeze()
}

/// Partition 1 holds a good batch at 0..3, a bad one at 3..6 and a good one at 6..9; partition 0 six good
/// batches; the fake answers one batch per partition per fetch. The bad batch is reported as `CorruptRecords`
/// for partition 1 at offset 3, after `fetches` fetches of it (and no more later); partition 1's records before
/// it are delivered and none after it; partition 0 keeps being consumed. Fetches of the bad batch wait for the
/// retry backoff between them.
async fn corrupt_batch_case(bad: Bytes, fetches: usize, check_source: impl Fn(&RecordError)) {
    let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 2)]).batches_per_fetch(1)).await;
    fill(&fake, 0, 6, 3);
    fake.append(TOPIC, 1, &values(1, 0..3));
    fake.append_raw(TOPIC, 1, bad);
    fake.append(TOPIC, 1, &values(1, 6..9));
    let mut cfg = consumer_config(&fake);
    // One fetch at a time: after the first response both partitions are fetched together.
    cfg.set("weir.fetches.in.flight", "1").unwrap();
    let backoff = Duration::from_millis(100);
    cfg.set("retry.backoff.ms", "100").unwrap();
    let c = Consumer::new(cfg).unwrap();
    let started = std::time::Instant::now();
    c.assign(&[(tp(0), StartOffset::Offset(0)), (tp(1), StartOffset::Offset(0))])
        .await
        .unwrap();
    let mut seen = Seen::default();
    poll_until(&c, &mut seen, "the error", |s| !s.errors.is_empty()).await;
    let waited = started.elapsed();
    assert!(
        waited >= backoff * (fetches as u32 - 1),
        "reported after {waited:?}: fetched again without waiting for the backoff"
    );
    poll_until(&c, &mut seen, "the error and the good records", |s| {
        !s.errors.is_empty() && s.offsets(0) == range(18) && s.offsets(1) == range(3)
    })
    .await;
    // (That the other partitions of the very response that carried the bad batch are kept is a unit test of
    // `consumer::fetch_apply`: here the express lane may fetch partition 1 alone.)
    assert_eq!(seen.errors.len(), 1, "{:?}", seen.errors);
    assert_eq!(
        fetches_at(&fake, 1, 3),
        fetches,
        "fetches of the bad batch before it is reported"
    );
    match &seen.errors[0] {
        Error::CorruptRecords {
            topic,
            partition,
            offset,
            source,
        } => {
            assert_eq!((topic.as_str(), *partition, *offset), (TOPIC, 1, 3));
            check_source(source);
        }
        other => panic!("expected CorruptRecords, got {other:?}"),
    }
    assert!(!seen.errors[0].is_retriable());
    // Later responses keep delivering partition 0.
    fill(&fake, 0, 1, 3);
    poll_until(&c, &mut seen, "partition 0's later records", |s| {
        s.offsets(0) == range(21)
    })
    .await;
    assert_eq!(
        seen.offsets(1),
        range(3),
        "nothing of partition 1 after the bad batch"
    );
    assert_eq!(
        seen.errors.len(),
        1,
        "the error is reported once: {:?}",
        seen.errors
    );
    assert_eq!(c.position(&tp(1)), Some(3), "partition 1 stops at the bad batch");
    assert_eq!(
        fetches_at(&fake, 1, 3),
        fetches,
        "the bad batch is not fetched after the report"
    );
    seen.check_values();
}

/// A batch damaged on the broker (failing its CRC in every copy) is fetched the bounded number of times, then
/// reported as corrupt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crc_mismatch_in_every_copy_names_partition_and_offset_after_three_fetches() {
    bounded(60, async {
        let bad = damaged(&batch(3, &values(1, 3..6)));
        corrupt_batch_case(bad, CRC_FETCH_ATTEMPTS, |source| {
            assert!(
                matches!(source, RecordError::CrcMismatch { base_offset: 3, .. }),
                "{source:?}"
            )
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_codec_names_partition_and_offset() {
    bounded(60, async {
        // Its CRC holds: the broker stores it so, and another copy would be the same.
        let bad = with_codec(&batch(3, &values(1, 3..6)), 5);
        corrupt_batch_case(bad, 1, |source| {
            assert!(
                matches!(
                    source,
                    RecordError::UnknownCompression {
                        base_offset: 3,
                        codec: 5
                    }
                ),
                "{source:?}"
            )
        })
        .await;
    })
    .await;
}

/// The layout of `corrupt_batch_case`, all intact on the broker, but partition 1's batch at 3..6 arrives
/// failing its CRC in the first `damaged` answers that carry it. It is fetched again until it arrives intact:
/// every record is delivered once, in order, and no error reaches `poll`.
async fn damaged_in_transit_case(damaged_answers: usize) {
    let bad = damaged(&batch(3, &values(1, 3..6)));
    let left = Arc::new(AtomicUsize::new(damaged_answers));
    let fake = FakeBroker::start(
        FakeConfig::new(&[(TOPIC, 2)])
            .batches_per_fetch(1)
            .script(move |req| {
                let damage = req.api_key == ApiKey::Fetch
                    && req.fetch_offsets().contains(&(1, 3))
                    && left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                match damage {
                    true => Action::FetchRecords(BTreeMap::from([((TOPIC.to_owned(), 1), bad.clone())])),
                    false => Action::Answer,
                }
            }),
    )
    .await;
    fill(&fake, 0, 6, 3);
    fill(&fake, 1, 3, 3);
    let mut cfg = consumer_config(&fake);
    cfg.set("weir.fetches.in.flight", "1").unwrap();
    let c = Consumer::new(cfg).unwrap();
    c.assign(&[(tp(0), StartOffset::Offset(0)), (tp(1), StartOffset::Offset(0))])
        .await
        .unwrap();
    let mut seen = Seen::default();
    poll_until(&c, &mut seen, "every record", |s| {
        s.records.len() >= 27 || !s.errors.is_empty()
    })
    .await;
    assert!(seen.errors.is_empty(), "no error reaches poll: {:?}", seen.errors);
    assert_eq!(seen.offsets(0), range(18));
    assert_eq!(seen.offsets(1), range(9), "nothing lost or duplicated, in order");
    seen.check_values();
    assert_eq!(
        fetches_at(&fake, 1, 3),
        damaged_answers + 1,
        "fetched again until intact, then never from there again"
    );
    let late = c.poll(1000, Duration::from_millis(50)).await.expect("no error");
    assert!(late.is_empty(), "duplicates after the end: {late:?}");
    assert_eq!(c.position(&tp(1)), Some(9));
    c.close().await.unwrap();
}

/// Damage in transit (the broker's copy intact) is survived: once, and as many times in a row as the bound
/// leaves room for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crc_mismatch_in_transit_is_fetched_again_and_every_record_delivered_once() {
    bounded(60, async {
        damaged_in_transit_case(1).await;
        damaged_in_transit_case(CRC_FETCH_ATTEMPTS - 1).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// 3: a truncated trailing batch is normal.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_trailing_batch_is_refetched_whole() {
    bounded(60, async {
        let b0 = batch(0, &values(0, 0..5));
        let b1 = batch(5, &values(0, 5..10));
        let mut cut = BytesMut::from(&b0[..]);
        cut.extend_from_slice(&b1[..b1.len() - 7]);
        let cut = cut.freeze();
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).script(move |req| {
            if req.api_key == ApiKey::Fetch && req.api_seq == 0 {
                Action::FetchRecords(BTreeMap::from([((TOPIC.to_owned(), 0), cut.clone())]))
            } else {
                Action::Answer
            }
        }))
        .await;
        fake.append_raw(TOPIC, 0, b0);
        fake.append_raw(TOPIC, 0, b1);
        let c = Consumer::new(consumer_config(&fake)).unwrap();
        c.assign(&[(tp(0), StartOffset::Offset(0))]).await.unwrap();
        let mut seen = Seen::default();
        poll_until(&c, &mut seen, "all ten records", |s| s.records.len() >= 10).await;
        assert!(seen.errors.is_empty(), "{:?}", seen.errors);
        assert_eq!(seen.offsets(0), range(10));
        seen.check_values();
        let late = c.poll(1000, Duration::from_millis(50)).await.expect("no error");
        assert!(late.is_empty(), "duplicates after the end");
        let offsets: Vec<i64> = fake.recorded(|r| {
            r.of(ApiKey::Fetch)
                .take(2)
                .map(|q| q.fetch_offsets()[0].1)
                .collect()
        });
        assert_eq!(offsets, [0, 5], "the second fetch starts at the cut batch");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// 4, 5, 6: transport faults are survived quietly, nothing lost or duplicated.

/// Consumes partition 0 (`batches` batches of 5 records, one batch per fetch) while `script` injects faults
/// into fetches; checks that all records arrive once, in order, with no error; returns the fake broker.
async fn consume_through_faults(
    cfg: impl FnOnce(&mut ConsumerConfig),
    batches: i64,
    script: impl Fn(&fake_broker::Request) -> Action + Send + Sync + 'static,
) -> FakeBroker {
    let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).batches_per_fetch(1).script(script)).await;
    fill(&fake, 0, batches, 5);
    let mut config = consumer_config(&fake);
    cfg(&mut config);
    let c = Consumer::new(config).unwrap();
    c.assign(&[(tp(0), StartOffset::Offset(0))]).await.unwrap();
    let mut seen = Seen::default();
    let n = batches * 5;
    poll_until(&c, &mut seen, "every record", |s| s.records.len() as i64 >= n).await;
    assert!(seen.errors.is_empty(), "no error reaches poll: {:?}", seen.errors);
    assert_eq!(seen.offsets(0), range(n), "nothing lost or duplicated");
    seen.check_values();
    // Nothing more (a duplicate) arrives afterwards.
    let late = c.poll(1000, Duration::from_millis(50)).await.expect("no error");
    assert!(
        late.is_empty(),
        "duplicates after the end: {:?}",
        late.iter().map(|r| r.offset).collect::<Vec<_>>()
    );
    c.close().await.unwrap();
    fake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_drops_the_connection_quietly() {
    bounded(60, async {
        let started = std::time::Instant::now();
        let fake = consume_through_faults(
            |_| {},
            4,
            |req| match (req.api_key, req.api_seq) {
                (ApiKey::Fetch, 1) => Action::OversizedFrame(200 << 20),
                _ => Action::Answer,
            },
        )
        .await;
        assert!(fetched_on_new_connection(&fake, 1), "the consumer reconnected");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
        capped_alloc::assert_largest_allocation_below(100 << 20, "a frame claiming 200 MiB");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_lost_mid_response_or_after_answering_loses_nothing() {
    bounded(60, async {
        let fake = consume_through_faults(
            |_| {},
            8,
            |req| match (req.api_key, req.api_seq) {
                // Half a response, then the broker is gone.
                (ApiKey::Fetch, 1) => Action::TruncatedFrame,
                // Closed instead of answered.
                (ApiKey::Fetch, 3) => Action::Close,
                // Answered, then closed: the data of that answer must be used, not fetched twice.
                (ApiKey::Fetch, 5) => Action::AnswerThenClose,
                // Bytes that are no frame at all (a negative size).
                (ApiKey::Fetch, 7) => Action::Garbage(vec![0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]),
                // A well-framed answer whose body is nonsense.
                (ApiKey::Fetch, 9) => Action::RawBody(Bytes::from_static(&[0xff; 9])),
                _ => Action::Answer,
            },
        )
        .await;
        for bad in [1, 3, 7, 9] {
            assert!(
                fetched_on_new_connection(&fake, bad),
                "reconnected after fetch {bad}"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_fetch_times_out_and_the_consumer_reconnects() {
    bounded(60, async {
        let started = std::time::Instant::now();
        let fake = consume_through_faults(
            |c| c.set("request.timeout.ms", "500").unwrap(),
            4,
            |req| match (req.api_key, req.api_seq) {
                // The broker stops answering anything on this connection.
                (ApiKey::Fetch, 1) => Action::Stall,
                _ => Action::Answer,
            },
        )
        .await;
        assert!(fetched_on_new_connection(&fake, 1), "the consumer reconnected");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "took {:?}",
            started.elapsed()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_answer_after_timeout_is_ignored() {
    bounded(60, async {
        let fake = consume_through_faults(
            |c| c.set("request.timeout.ms", "500").unwrap(),
            4,
            |req| match (req.api_key, req.api_seq) {
                // Answered, but only after the request timed out.
                (ApiKey::Fetch, 1) => Action::Delay(Duration::from_millis(1500), Box::new(Action::Answer)),
                _ => Action::Answer,
            },
        )
        .await;
        assert!(fetched_on_new_connection(&fake, 1), "the consumer reconnected");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// 7: producer faults.

fn producer_config(fake: &FakeBroker) -> ProducerConfig {
    let mut cfg = ProducerConfig::new(&fake.bootstrap());
    cfg.set("retry.backoff.ms", "10").unwrap();
    cfg.set("reconnect.backoff.ms", "10").unwrap();
    cfg.set("linger.ms", "0").unwrap();
    cfg.set("delivery.timeout.ms", "20000").unwrap();
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_retry_after_lost_produce_response_writes_once() {
    bounded(60, async {
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).script(|req| {
            match (req.api_key, req.api_seq) {
                // Written, but the connection closes instead of answering.
                (ApiKey::Produce, 0) => Action::ApplyThenClose,
                _ => Action::Answer,
            }
        }))
        .await;
        let p = Producer::new(producer_config(&fake)).unwrap();
        let d = p
            .send(ProducerRecord::new(TOPIC, "once").partition(0))
            .await
            .unwrap();
        let meta = d.await.expect("delivered");
        assert_eq!((meta.partition, meta.offset), (0, 0));
        let produced: Vec<Bytes> =
            fake.recorded(|r| r.of(ApiKey::Produce).map(|q| q.produced()[0].2.clone()).collect());
        assert_eq!(produced.len(), 2, "one attempt and one retry");
        assert_eq!(
            produced[0], produced[1],
            "the retry resends the same batch (same producer id and sequence)"
        );
        let first = batches(produced[0].clone()).next().unwrap().unwrap();
        assert_eq!((first.producer_id(), first.base_sequence()), (PRODUCER_ID, 0));
        let stored = fake.batches(TOPIC, 0);
        assert_eq!(stored.len(), 1, "written exactly once");
        p.close().await.unwrap();
    })
    .await;
}

/// A broker that stops answering Produce: `send` accepts records until `buffer.memory` is taken, then waits for
/// room `max.block.ms` and fails with a retriable timeout; the queue never grows past the memory, and the
/// records accepted are still delivered once the broker answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_broker_makes_send_wait_then_time_out_within_buffer_memory() {
    bounded(60, async {
        let stalled = Arc::new(AtomicBool::new(true));
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).script({
            let stalled = stalled.clone();
            move |req| match req.api_key {
                ApiKey::Produce if stalled.load(Ordering::SeqCst) => Action::NoAnswer,
                _ => Action::Answer,
            }
        }))
        .await;
        const MEMORY: usize = 64 * 1024;
        let mut cfg = producer_config(&fake);
        cfg.set("buffer.memory", &MEMORY.to_string()).unwrap();
        cfg.set("max.block.ms", "300").unwrap();
        cfg.set("request.timeout.ms", "1000").unwrap();
        let p = Producer::new(cfg).unwrap();
        let value = "v".repeat(1000);
        let mut accepted = Vec::new();
        let err = loop {
            let started = tokio::time::Instant::now();
            match p
                .send(ProducerRecord::new(TOPIC, value.clone()).partition(0))
                .await
            {
                Ok(d) => accepted.push(d),
                Err(e) => break (e, started.elapsed()),
            }
            assert!(
                accepted.len() <= MEMORY / 1000,
                "{} records of 1000 B accepted",
                accepted.len()
            );
        };
        let (err, waited) = err;
        assert!(matches!(err, weir::Error::Timeout { .. }), "{err:?}");
        assert_eq!(err.kind(), weir::ErrorKind::Retriable);
        assert!(err.to_string().contains("buffer.memory"), "{err}");
        assert!(waited >= Duration::from_millis(300), "gave up after {waited:?}");
        assert!(
            accepted.len() >= MEMORY / 2 / 1000,
            "only {} accepted",
            accepted.len()
        );

        // The broker answers again: every accepted record is delivered, and send has room again.
        stalled.store(false, Ordering::SeqCst);
        let n = accepted.len() as i64;
        for (i, d) in accepted.into_iter().enumerate() {
            assert_eq!(d.await.expect("delivered").offset, i as i64);
        }
        let d = p
            .send(ProducerRecord::new(TOPIC, value).partition(0))
            .await
            .unwrap();
        assert_eq!(d.await.unwrap().offset, n);
        p.close().await.unwrap();
    })
    .await;
}

/// A broker claiming a base offset of `i64::MAX` for a two-record batch: the first record gets that offset,
/// the one past it is unknown (-1); the sender does not overflow and the producer keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_base_offset_at_i64_max_does_not_overflow() {
    use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
    use kafka_protocol::messages::{ProduceResponse, TopicName};
    bounded(60, async {
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).script(|req| {
            if req.api_key == ApiKey::Produce && req.api_seq == 0 {
                let resp = ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
                    .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                    .with_partition_responses(vec![PartitionProduceResponse::default()
                        .with_index(0)
                        .with_base_offset(i64::MAX)])]);
                let mut b = BytesMut::new();
                resp.encode(&mut b, req.version).unwrap();
                Action::RawBody(b.freeze())
            } else {
                Action::Answer
            }
        }))
        .await;
        let mut cfg = producer_config(&fake);
        cfg.set("linger.ms", "200").unwrap();
        let p = Producer::new(cfg).unwrap();
        let a = p
            .send(ProducerRecord::new(TOPIC, "a").partition(0))
            .await
            .unwrap();
        let b = p
            .send(ProducerRecord::new(TOPIC, "b").partition(0))
            .await
            .unwrap();
        assert_eq!(a.await.unwrap().offset, i64::MAX);
        assert_eq!(b.await.unwrap().offset, -1);
        // The sender task is alive: the next record is delivered normally.
        let c = p
            .send(ProducerRecord::new(TOPIC, "c").partition(0))
            .await
            .unwrap();
        assert_eq!(c.await.unwrap().offset, 0);
        p.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_closed_before_writing_is_retried() {
    bounded(60, async {
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).script(|req| {
            match (req.api_key, req.api_seq) {
                (ApiKey::Produce, 0) => Action::Close,
                _ => Action::Answer,
            }
        }))
        .await;
        let p = Producer::new(producer_config(&fake)).unwrap();
        let d = p
            .send(ProducerRecord::new(TOPIC, "once").partition(0))
            .await
            .unwrap();
        let meta = d.await.expect("delivered");
        assert_eq!((meta.partition, meta.offset), (0, 0));
        assert_eq!(fake.batches(TOPIC, 0).len(), 1, "written exactly once");
        p.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_retriable_produce_error_fails_the_delivery_naming_the_partition() {
    bounded(60, async {
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 2)]).script(|req| {
            match (req.api_key, req.produced().first().map(|p| p.1)) {
                (ApiKey::Produce, Some(0)) => Action::ProduceError(87),
                (ApiKey::Produce, Some(1)) => Action::ProduceError(10),
                _ => Action::Answer,
            }
        }))
        .await;
        let p = Producer::new(producer_config(&fake)).unwrap();
        for (partition, code) in [(0, KafkaCode::InvalidRecord), (1, KafkaCode::MessageTooLarge)] {
            let d = p
                .send(ProducerRecord::new(TOPIC, "bad").partition(partition))
                .await
                .unwrap();
            match d.await {
                Err(Error::Kafka { code: got, context }) => {
                    assert_eq!(got, code);
                    assert!(context.contains(&format!("{TOPIC}-{partition}")), "{context}");
                }
                other => panic!("expected Kafka error {code:?}, got {other:?}"),
            }
        }
        let attempts = fake.recorded(|r| r.of(ApiKey::Produce).count());
        assert_eq!(attempts, 2, "non-retriable errors are not retried");
        p.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_leader_is_retried_after_a_metadata_refresh() {
    bounded(60, async {
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).script(|req| {
            match (req.api_key, req.api_seq) {
                (ApiKey::Produce, 0) => Action::ProduceError(6),
                _ => Action::Answer,
            }
        }))
        .await;
        let p = Producer::new(producer_config(&fake)).unwrap();
        let d = p
            .send(ProducerRecord::new(TOPIC, "moved").partition(0))
            .await
            .unwrap();
        let meta = d.await.expect("delivered after the retry");
        assert_eq!(meta.offset, 0);
        let (first, refresh, second) = fake.recorded(|r| {
            let produce: Vec<usize> = r.of(ApiKey::Produce).map(|q| q.seq).collect();
            let refresh = r.of(ApiKey::Metadata).map(|q| q.seq).find(|&s| s > produce[0]);
            (produce[0], refresh, produce.get(1).copied())
        });
        let refresh = refresh.expect("metadata refreshed after NOT_LEADER_OR_FOLLOWER");
        let second = second.expect("produce retried");
        assert!(first < refresh, "refresh follows the error");
        assert_eq!(fake.batches(TOPIC, 0).len(), 1);
        // The refresh is started at once and the retry waits a backoff; the retry normally comes after it.
        if refresh > second {
            eprintln!("note: retry sent before the metadata refresh was requested");
        }
        p.close().await.unwrap();
    })
    .await;
}

/// KIP-951: a broker answering NOT_LEADER_OR_FOLLOWER names the new leader (at a newer epoch) and its endpoint;
/// the batch goes there at once: no metadata round trip, no retry backoff (set to a minute here, longer than
/// the test may take).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_hint_moves_the_produce_there_without_metadata_or_backoff() {
    use kafka_protocol::messages::produce_response::{
        LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{ProduceResponse, TopicName};
    bounded(30, async {
        let new_leader = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)])).await;
        let port = new_leader.addr.port();
        let old_leader = FakeBroker::start(
            FakeConfig::new(&[(TOPIC, 1)])
                .metadata(|_, port| {
                    let mut m = metadata_answer(port, &[(TOPIC, 1)]);
                    m.topics[0].partitions[0].leader_epoch = 1;
                    m
                })
                .script(move |req| match req.api_key {
                    ApiKey::Produce => {
                        let moved = ProduceResponse::default()
                            .with_responses(vec![TopicProduceResponse::default()
                                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                                .with_partition_responses(vec![PartitionProduceResponse::default()
                                    .with_index(0)
                                    .with_error_code(KafkaCode::NotLeaderOrFollower.code())
                                    .with_base_offset(-1)
                                    .with_current_leader(
                                        LeaderIdAndEpoch::default()
                                            .with_leader_id(BrokerId(7))
                                            .with_leader_epoch(2),
                                    )])])
                            .with_node_endpoints(vec![NodeEndpoint::default()
                                .with_node_id(BrokerId(7))
                                .with_host(StrBytes::from_static_str("127.0.0.1"))
                                .with_port(i32::from(port))]);
                        let mut b = BytesMut::new();
                        moved.encode(&mut b, req.version).unwrap();
                        Action::RawBody(b.freeze())
                    }
                    _ => Action::Answer,
                }),
        )
        .await;
        let mut cfg = producer_config(&old_leader);
        cfg.set("retry.backoff.ms", "60000").unwrap();
        let p = Producer::new(cfg).unwrap();
        let d = p
            .send(ProducerRecord::new(TOPIC, "moved").partition(0))
            .await
            .unwrap();
        let meta = d.await.expect("delivered by the new leader");
        assert_eq!(meta.offset, 0);
        assert_eq!(new_leader.batches(TOPIC, 0).len(), 1, "written by the new leader");
        assert!(old_leader.batches(TOPIC, 0).is_empty());
        let (produced_at, metadata_after) = old_leader.recorded(|r| {
            let first = r.of(ApiKey::Produce).map(|q| q.seq).next().unwrap();
            (first, r.of(ApiKey::Metadata).filter(|q| q.seq > first).count())
        });
        assert_eq!(old_leader.recorded(|r| r.of(ApiKey::Produce).count()), 1);
        assert_eq!(
            metadata_after, 0,
            "no metadata asked of the old leader after its answer (produce #{produced_at})"
        );
        assert_eq!(
            new_leader.recorded(|r| r.of(ApiKey::Metadata).count()),
            0,
            "nor of the new one"
        );
        p.close().await.unwrap();
    })
    .await;
}

/// KIP-320: fetches carry the leader epoch of the metadata the partition was routed by; a broker answering
/// FENCED_LEADER_EPOCH (our epoch is older than its) sends the partition through a metadata refresh, and it is
/// fetched again with the new epoch, nothing lost and no error surfaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_leader_epoch_refreshes_metadata_and_fetches_with_the_new_epoch() {
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, TopicName};
    bounded(60, async {
        let refreshes = Arc::new(AtomicUsize::new(0));
        let counter = refreshes.clone();
        let fake = FakeBroker::start(
            FakeConfig::new(&[(TOPIC, 1)])
                .metadata(move |_, port| {
                    // Epoch 1 in the first answer, 2 after.
                    let epoch = if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                        1
                    } else {
                        2
                    };
                    let mut m = metadata_answer(port, &[(TOPIC, 1)]);
                    for p in &mut m.topics[0].partitions {
                        p.leader_epoch = epoch;
                    }
                    m
                })
                .script(|req| match (req.api_key, req.api_seq) {
                    (ApiKey::Fetch, 0) => {
                        let fenced =
                            FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                                .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
                                .with_topic_id(fake_broker::topic_uuid(TOPIC))
                                .with_partitions(vec![PartitionData::default()
                                    .with_partition_index(0)
                                    .with_error_code(KafkaCode::FencedLeaderEpoch.code())
                                    .with_high_watermark(-1)])]);
                        let mut b = BytesMut::new();
                        fenced.encode(&mut b, req.version).unwrap();
                        Action::RawBody(b.freeze())
                    }
                    _ => Action::Answer,
                }),
        )
        .await;
        fill(&fake, 0, 3, 3);
        let c = Consumer::new(consumer_config(&fake)).unwrap();
        c.assign(&[(tp(0), StartOffset::Offset(0))]).await.unwrap();
        let mut seen = Seen::default();
        poll_until(&c, &mut seen, "every record", |s| {
            s.records.len() >= 9 || !s.errors.is_empty()
        })
        .await;
        assert!(seen.errors.is_empty(), "no error reaches poll: {:?}", seen.errors);
        assert_eq!(seen.offsets(0), range(9));
        let epochs: Vec<i32> = fake.recorded(|r| {
            r.of(ApiKey::Fetch)
                .filter_map(|q| match &q.body {
                    fake_broker::Body::Fetch(f) => f
                        .topics
                        .first()
                        .and_then(|t| t.partitions.first())
                        .map(|p| p.current_leader_epoch),
                    _ => None,
                })
                .collect()
        });
        assert_eq!(
            epochs.first(),
            Some(&1),
            "the first fetch carries the epoch of the first metadata: {epochs:?}"
        );
        assert_eq!(
            epochs.last(),
            Some(&2),
            "after the fence, the refreshed epoch: {epochs:?}"
        );
        assert!(
            refreshes.load(Ordering::SeqCst) >= 2,
            "metadata refreshed after the fence"
        );
        c.close().await.unwrap();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Fetch v13+ (topic ids, KIP-516) and v16+ (new-leader hints, KIP-951).

/// The Fetch requests `fake` received: `(version, topic ids, current leader epochs, forgotten topic ids)`.
#[allow(clippy::type_complexity)]
fn fetch_requests(fake: &FakeBroker) -> Vec<(i16, Vec<[u8; 16]>, Vec<i32>, Vec<[u8; 16]>)> {
    fake.recorded(|r| {
        r.of(ApiKey::Fetch)
            .map(|q| match &q.body {
                fake_broker::Body::Fetch(f) => (
                    q.version,
                    f.topics.iter().map(|t| t.topic_id.into_bytes()).collect(),
                    f.topics
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .map(|p| p.current_leader_epoch)
                        .collect(),
                    f.forgotten_topics_data
                        .iter()
                        .map(|t| t.topic_id.into_bytes())
                        .collect(),
                ),
                _ => unreachable!(),
            })
            .collect()
    })
}

/// How a hinted move is tested: the old leader (metadata at leader epoch 1) serves offsets 0..5, then answers
/// NOT_LEADER_OR_FOLLOWER naming node 7 at epoch 2 (with its endpoint when `with_endpoint`); node 7 (another
/// fake) leads at epoch 2 with offsets 0..10. After the hint, the old leader's metadata names node 7 too.
/// Returns both fakes, the consumer's stats and what it read.
async fn hinted_move(with_endpoint: bool) -> (FakeBroker, FakeBroker, weir::consumer::ConsumerStats, Seen) {
    use kafka_protocol::messages::fetch_response::{
        FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
    };
    use kafka_protocol::messages::FetchResponse;
    let first = batch_at_epoch(0, &values(0, 0..5), 1);
    let new_leader = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)])).await;
    new_leader.elect(
        TOPIC,
        0,
        2,
        0,
        vec![first.clone(), batch_at_epoch(5, &values(0, 5..10), 2)],
    );
    let port = new_leader.addr.port();
    let hinted = Arc::new(AtomicBool::new(false));
    let (moved, told) = (hinted.clone(), hinted.clone());
    let old_leader = FakeBroker::start(
        FakeConfig::new(&[(TOPIC, 1)])
            .metadata(move |_, own| {
                let mut m = metadata_answer(own, &[(TOPIC, 1)]);
                if told.load(Ordering::SeqCst) {
                    m.brokers.push(
                        MetadataResponseBroker::default()
                            .with_node_id(BrokerId(7))
                            .with_host(StrBytes::from_static_str("127.0.0.1"))
                            .with_port(i32::from(port)),
                    );
                    m.topics[0].partitions[0].leader_id = BrokerId(7);
                    m.topics[0].partitions[0].leader_epoch = 2;
                } else {
                    m.topics[0].partitions[0].leader_epoch = 1;
                }
                m
            })
            .script(move |req| {
                if req.api_key != ApiKey::Fetch || req.fetch_offsets().iter().all(|&(_, o)| o < 5) {
                    return Action::Answer;
                }
                moved.store(true, Ordering::SeqCst);
                let endpoints = match with_endpoint {
                    true => vec![NodeEndpoint::default()
                        .with_node_id(BrokerId(7))
                        .with_host(StrBytes::from_static_str("127.0.0.1"))
                        .with_port(i32::from(port))],
                    false => Vec::new(),
                };
                let answer = FetchResponse::default()
                    .with_responses(vec![FetchableTopicResponse::default()
                        .with_topic(kafka_protocol::messages::TopicName(StrBytes::from_static_str(
                            TOPIC,
                        )))
                        .with_topic_id(fake_broker::topic_uuid(TOPIC))
                        .with_partitions(vec![PartitionData::default()
                            .with_partition_index(0)
                            .with_error_code(KafkaCode::NotLeaderOrFollower.code())
                            .with_high_watermark(-1)
                            .with_current_leader(
                                LeaderIdAndEpoch::default()
                                    .with_leader_id(BrokerId(7))
                                    .with_leader_epoch(2),
                            )])])
                    .with_node_endpoints(endpoints);
                let mut b = BytesMut::new();
                answer.encode(&mut b, req.version).unwrap();
                Action::RawBody(b.freeze())
            }),
    )
    .await;
    old_leader.append_raw(TOPIC, 0, first);
    let mut cfg = consumer_config(&old_leader);
    // A refresh is never due by age during the test.
    cfg.set("metadata.max.age.ms", "600000").unwrap();
    let c = Consumer::new(cfg).unwrap();
    c.assign(&[(tp(0), StartOffset::Offset(0))]).await.unwrap();
    let mut seen = Seen::default();
    poll_until(&c, &mut seen, "ten records", |s| {
        s.records.len() >= 10 || !s.errors.is_empty()
    })
    .await;
    assert!(seen.errors.is_empty(), "no error reaches poll: {:?}", seen.errors);
    assert_eq!(seen.offsets(0), range(10));
    seen.check_values();
    assert!(hinted.load(Ordering::SeqCst));
    let stats = c.stats();
    c.close().await.unwrap();
    (old_leader, new_leader, stats, seen)
}

/// KIP-951: a fetch answered NOT_LEADER_OR_FOLLOWER naming a newer leader (and its endpoint) moves the
/// partition to that broker at once: it is fetched there next, at the new leader epoch, by topic id, with no
/// Metadata request of either broker in between; its position is validated against the new leader first
/// (KIP-320, the epoch changed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_leader_hint_moves_the_partition_to_the_named_broker_without_metadata() {
    bounded(30, async {
        let (old_leader, new_leader, stats, _) = hinted_move(true).await;
        assert_eq!(stats.leader_hint_moves, 1);
        let (hinted_at, metadata_after) = old_leader.recorded(|r| {
            let hinted = r
                .of(ApiKey::Fetch)
                .find(|q| q.fetch_offsets().contains(&(0, 5)))
                .map(|q| q.seq)
                .unwrap();
            (hinted, r.of(ApiKey::Metadata).filter(|q| q.seq > hinted).count())
        });
        assert_eq!(
            metadata_after, 0,
            "no metadata asked of the old leader after its hint (fetch #{hinted_at})"
        );
        assert_eq!(
            new_leader.recorded(|r| r.of(ApiKey::Metadata).count()),
            0,
            "nor of the new one"
        );
        let id = fake_broker::topic_id(TOPIC);
        for (version, ids, epochs, _) in fetch_requests(&old_leader) {
            assert_eq!(
                (version, ids, epochs),
                (17, vec![id], vec![1]),
                "by id, at epoch 1"
            );
        }
        let fetched = fetch_requests(&new_leader);
        assert!(!fetched.is_empty());
        for (version, ids, epochs, _) in fetched {
            assert_eq!(
                (version, ids, epochs),
                (17, vec![id], vec![2]),
                "by id, at the hinted epoch"
            );
        }
        let validated: Vec<(i32, i32)> = epoch_questions(&new_leader);
        assert_eq!(validated, [(2, 1)], "validated at epoch 2 for the epoch fetched");
    })
    .await;
}

/// A hint naming a broker whose address is unknown (no endpoint sent, not in the metadata) cannot be
/// followed: the partition goes through a metadata refresh, as without a hint, and is read on from the
/// leader the refreshed metadata names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_hint_without_an_address_goes_through_metadata() {
    bounded(30, async {
        let (old_leader, new_leader, stats, _) = hinted_move(false).await;
        assert_eq!(stats.leader_hint_moves, 0);
        let metadata_after = old_leader.recorded(|r| {
            let hinted = r
                .of(ApiKey::Fetch)
                .find(|q| q.fetch_offsets().contains(&(0, 5)))
                .map(|q| q.seq)
                .unwrap();
            r.of(ApiKey::Metadata).filter(|q| q.seq > hinted).count()
        });
        assert!(metadata_after >= 1, "metadata refreshed after the hint");
        assert!(fetch_requests(&new_leader).iter().all(|f| f.2 == [2]));
    })
    .await;
}

/// Metadata without topic ids (a broker before Metadata v10): fetches name topics, at Fetch v12.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_without_ids_are_fetched_by_name_at_v12() {
    bounded(30, async {
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).sessions().metadata(|_, port| {
            let mut m = metadata_answer(port, &[(TOPIC, 1)]);
            m.topics[0].topic_id = uuid::Uuid::nil();
            m
        }))
        .await;
        fill(&fake, 0, 2, 5);
        let c = Consumer::new(consumer_config(&fake)).unwrap();
        c.assign(&[(tp(0), StartOffset::Offset(0))]).await.unwrap();
        let mut seen = Seen::default();
        poll_until(&c, &mut seen, "ten records", |s| s.records.len() >= 10).await;
        assert_eq!(seen.offsets(0), range(10));
        // Sessions by name work as before: later fetches are incremental.
        fake.wait_until("an incremental fetch", |r| {
            r.of(ApiKey::Fetch)
                .any(|q| matches!(&q.body, fake_broker::Body::Fetch(f) if f.session_epoch > 0))
        })
        .await;
        let names: Vec<(i16, Vec<String>)> = fake.recorded(|r| {
            r.of(ApiKey::Fetch)
                .map(|q| match &q.body {
                    fake_broker::Body::Fetch(f) => (
                        q.version,
                        f.topics.iter().map(|t| t.topic.0.to_string()).collect(),
                    ),
                    _ => unreachable!(),
                })
                .collect()
        });
        assert!(!names.is_empty());
        for (version, topics) in &names {
            assert_eq!(*version, 12, "{names:?}");
            assert!(topics.iter().all(|t| t == TOPIC), "{names:?}");
        }
        c.close().await.unwrap();
    })
    .await;
}

/// A topic id the broker does not know (the topic was recreated: the metadata the consumer had is older than
/// the broker's) is answered UNKNOWN_TOPIC_ID: the partition goes through a metadata refresh and is fetched
/// with the id the refreshed metadata names; the fetch session forgets it under the old id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_topic_id_is_rerouted_through_fresh_metadata() {
    bounded(30, async {
        const STALE: [u8; 16] = [0x5a; 16];
        let refreshes = Arc::new(AtomicUsize::new(0));
        let counter = refreshes.clone();
        let fake = FakeBroker::start(
            FakeConfig::new(&[(TOPIC, 1)])
                .sessions()
                .metadata(move |_, port| {
                    let mut m = metadata_answer(port, &[(TOPIC, 1)]);
                    if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                        m.topics[0].topic_id = uuid::Uuid::from_bytes(STALE);
                    }
                    m
                }),
        )
        .await;
        fill(&fake, 0, 2, 5);
        let mut cfg = consumer_config(&fake);
        cfg.set("weir.fetches.in.flight", "1").unwrap();
        let c = Consumer::new(cfg).unwrap();
        c.assign(&[(tp(0), StartOffset::Offset(0))]).await.unwrap();
        let mut seen = Seen::default();
        poll_until(&c, &mut seen, "ten records", |s| {
            s.records.len() >= 10 || !s.errors.is_empty()
        })
        .await;
        assert!(seen.errors.is_empty(), "no error reaches poll: {:?}", seen.errors);
        assert_eq!(seen.offsets(0), range(10));
        assert!(refreshes.load(Ordering::SeqCst) >= 2, "metadata refreshed");
        let fetches = fetch_requests(&fake);
        assert_eq!(fetches[0].1, vec![STALE], "first fetched by the stale id");
        let fresh = fetches
            .iter()
            .position(|f| f.1 == [fake_broker::topic_id(TOPIC)])
            .expect("fetched by the fresh id");
        assert!(
            fetches[fresh..].iter().all(|f| !f.1.contains(&STALE)),
            "never by the stale id again: {fetches:?}"
        );
        assert!(
            fetches.iter().any(|f| f.3.contains(&STALE)),
            "the session forgot the partition under the stale id: {fetches:?}"
        );
        c.close().await.unwrap();
    })
    .await;
}

/// A fake leading partition 0 of [`TOPIC`] at leader epoch 1 with offsets 0..10 (batches 0..7 and 7..10 of
/// epoch 1), whose
/// metadata reports the epoch in `epoch`; and a consumer (`auto.offset.reset` as given) that has read them all.
async fn read_ten_at_epoch_one(reset: &str) -> (FakeBroker, Arc<AtomicI32>, Consumer, Seen) {
    let epoch = Arc::new(AtomicI32::new(1));
    let reported = epoch.clone();
    let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).metadata(move |_, port| {
        let mut m = metadata_answer(port, &[(TOPIC, 1)]);
        for p in &mut m.topics[0].partitions {
            p.leader_epoch = reported.load(Ordering::SeqCst);
        }
        m
    }))
    .await;
    let first = vec![
        batch_at_epoch(0, &values(0, 0..7), 1),
        batch_at_epoch(7, &values(0, 7..10), 1),
    ];
    fake.elect(TOPIC, 0, 1, 0, first);
    let mut cfg = consumer_config(&fake);
    cfg.set("auto.offset.reset", reset).unwrap();
    let c = Consumer::new(cfg).unwrap();
    c.assign(&[(tp(0), StartOffset::Offset(0))]).await.unwrap();
    let mut seen = Seen::default();
    poll_until(&c, &mut seen, "the first ten records", |s| {
        s.records.len() >= 10 || !s.errors.is_empty()
    })
    .await;
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    assert_eq!(seen.offsets(0), range(10));
    (fake, epoch, c, seen)
}

/// An unclean election: the new leader, at epoch 2, never had offsets 7..10 of epoch 1; from 7 its log holds
/// records of its own (`new-r7`..`new-r11`).
fn unclean_election(fake: &FakeBroker, epoch: &AtomicI32) {
    epoch.store(2, Ordering::SeqCst);
    let theirs: Vec<String> = (7..12).map(|i| format!("new-r{i}")).collect();
    fake.elect(TOPIC, 0, 2, 7, vec![batch_at_epoch(7, &theirs, 2)]);
}

/// The OffsetForLeaderEpoch questions the fake was asked: `(current leader epoch, leader epoch)`.
fn epoch_questions(fake: &FakeBroker) -> Vec<(i32, i32)> {
    fake.recorded(|r| {
        r.of(ApiKey::OffsetForLeaderEpoch)
            .flat_map(|q| match &q.body {
                fake_broker::Body::OffsetForLeaderEpoch(o) => o
                    .topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| (p.current_leader_epoch, p.leader_epoch))
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    })
}

/// KIP-320: after a leader change, the position is validated against the new leader (OffsetForLeaderEpoch,
/// with the epoch of the last batch fetched). A log truncated below it (an unclean election) is found: with a
/// reset policy the partition goes back to where the logs part and reads the new leader's records from there,
/// no error surfaced, the truncation counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_truncated_by_an_unclean_election_is_found_and_read_from_where_it_parts() {
    bounded(60, async {
        let (fake, epoch, c, mut seen) = read_ten_at_epoch_one("earliest").await;
        assert!(
            epoch_questions(&fake).is_empty(),
            "no validation without a leader change"
        );
        unclean_election(&fake, &epoch);
        poll_until(&c, &mut seen, "the new leader's records", |s| {
            s.records.len() >= 15 || !s.errors.is_empty()
        })
        .await;
        assert!(seen.errors.is_empty(), "no error reaches poll: {:?}", seen.errors);
        let after: Vec<(i64, String)> = seen.records[10..]
            .iter()
            .map(|r| {
                (
                    r.offset,
                    String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned(),
                )
            })
            .collect();
        let want: Vec<(i64, String)> = (7..12).map(|i| (i, format!("new-r{i}"))).collect();
        assert_eq!(
            after, want,
            "read again from where the logs part, the new leader's records"
        );
        assert_eq!(
            epoch_questions(&fake).first(),
            Some(&(2, 1)),
            "validated at the new epoch, for the epoch fetched"
        );
        assert_eq!(c.stats().log_truncations, 1);
        c.close().await.unwrap();
    })
    .await;
}

/// With `auto.offset.reset=none`, the truncation is reported (where the logs part included) and the partition
/// stops; a seek to the divergent offset reads the new leader's log from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncation_without_a_reset_policy_is_reported_and_the_partition_stops() {
    bounded(60, async {
        let (fake, epoch, c, mut seen) = read_ten_at_epoch_one("none").await;
        unclean_election(&fake, &epoch);
        poll_until(&c, &mut seen, "the truncation reported", |s| !s.errors.is_empty()).await;
        match &seen.errors[..] {
            [Error::LogTruncation {
                partition: 0,
                offset: 10,
                divergent_offset: Some(7),
                ..
            }] => {}
            other => panic!("want one LogTruncation at 10 diverging at 7, got {other:?}"),
        }
        assert_eq!(seen.records.len(), 10, "nothing more delivered");
        // Stopped: nothing from it until a seek (the answers of a few more polls).
        for _ in 0..3 {
            assert!(c.poll(100, Duration::from_millis(50)).await.unwrap().is_empty());
        }
        assert_eq!(c.stats().log_truncations, 1);
        c.seek(&tp(0), StartOffset::Offset(7)).await.unwrap();
        poll_until(&c, &mut seen, "the new leader's records", |s| {
            s.records.len() >= 15
        })
        .await;
        let offsets: Vec<i64> = seen.records[10..].iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (7..12).collect::<Vec<_>>());
        c.close().await.unwrap();
    })
    .await;
}

/// A leader change without truncation (a clean election: the new leader has every record) is validated and
/// fetching goes on from the position: nothing read twice, nothing counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_leader_change_is_validated_and_reading_goes_on() {
    bounded(60, async {
        let (fake, epoch, c, mut seen) = read_ten_at_epoch_one("earliest").await;
        epoch.store(2, Ordering::SeqCst);
        fake.elect(TOPIC, 0, 2, 10, vec![batch_at_epoch(10, &values(0, 10..15), 2)]);
        poll_until(&c, &mut seen, "the records after the change", |s| {
            s.records.len() >= 15 || !s.errors.is_empty()
        })
        .await;
        assert!(seen.errors.is_empty(), "{:?}", seen.errors);
        assert_eq!(seen.offsets(0), range(15));
        seen.check_values();
        assert_eq!(epoch_questions(&fake).first(), Some(&(2, 1)));
        assert_eq!(c.stats().log_truncations, 0);
        c.close().await.unwrap();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// 8: absurd metadata.

/// A Metadata answer (at `version`) whose partition array claims `count` entries while holding one.
fn metadata_claiming_partitions(version: i16, port: u16, count: u32) -> Bytes {
    const SENTINEL: i32 = 0x5a5a_5a5a;
    let mut resp = metadata_answer(port, &[(TOPIC, 0)]);
    resp.topics[0].topic_authorized_operations = SENTINEL;
    let mut b = BytesMut::new();
    resp.encode(&mut b, version).unwrap();
    // The (empty) partition array sits right before topicAuthorizedOperations (v8+).
    let at = b
        .windows(4)
        .position(|w| w == SENTINEL.to_be_bytes())
        .expect("sentinel present (Metadata v8+)");
    let flexible = version >= 9;
    let (len_at, len_bytes): (usize, Vec<u8>) = if flexible {
        // Compact array: unsigned varint of count + 1; the empty array was the single byte 1.
        let mut v = u64::from(count) + 1;
        let mut out = Vec::new();
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        (at - 1, out)
    } else {
        (at - 4, count.to_be_bytes().to_vec())
    };
    let mut out = BytesMut::new();
    out.extend_from_slice(&b[..len_at]);
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&b[at..]);
    out.freeze()
}

async fn consumer_survives_metadata(claimed: u32) {
    let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).script(move |req| {
        if req.api_key == ApiKey::Metadata {
            Action::RawBody(metadata_claiming_partitions(req.version, 0, claimed))
        } else {
            Action::Answer
        }
    }))
    .await;
    let mut cfg = consumer_config(&fake);
    cfg.set("request.timeout.ms", "2000").unwrap();
    let c = Consumer::new(cfg).unwrap();
    // Offset 0 needs no ListOffsets: assign succeeds, the router keeps failing to learn a leader.
    c.assign(&[(tp(0), StartOffset::Offset(0))]).await.unwrap();
    fake.wait_until("a few metadata requests", |r| r.of(ApiKey::Metadata).count() >= 2)
        .await;
    let got = c.poll(10, Duration::from_millis(200)).await;
    assert!(matches!(&got, Ok(v) if v.is_empty()), "{got:?}");
    capped_alloc::assert_largest_allocation_below(
        100 << 20,
        &format!("metadata claiming {claimed} partitions"),
    );
    // Admin metadata surfaces a clear protocol error.
    let admin = weir::Admin::new(weir::config::ClientConfig::new(&fake.bootstrap())).unwrap();
    match admin.metadata().await {
        Err(Error::Protocol { .. }) => {}
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_claiming_more_partitions_than_sent_is_a_protocol_error() {
    bounded(60, consumer_survives_metadata(1 << 16)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_claiming_i32_max_partitions_does_not_allocate_absurdly() {
    bounded(60, consumer_survives_metadata(i32::MAX as u32)).await;
}

fn absurd_brokers(port: u16) -> Vec<MetadataResponseBroker> {
    let huge = "h".repeat(30_000);
    vec![
        // The leader, at a host no resolver accepts.
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(NODE_ID))
            .with_host(StrBytes::from_string(huge))
            .with_port(i32::from(port)),
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(2))
            .with_host(StrBytes::from_static_str("\0\u{7f}::[]%/?#@"))
            .with_port(-1),
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(3))
            .with_host(StrBytes::from_static_str(""))
            .with_port(i32::MAX),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_broker_hosts_do_not_panic() {
    bounded(60, async {
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).metadata(|_, port| {
            let mut m = metadata_answer(port, &[(TOPIC, 1)]);
            m.brokers = absurd_brokers(port);
            m
        }))
        .await;
        fill(&fake, 0, 1, 3);
        let c = Consumer::new(consumer_config(&fake)).unwrap();
        c.assign(&[(tp(0), StartOffset::Offset(0))]).await.unwrap();
        // The router learns the leader's absurd address and keeps failing to connect to it, quietly.
        fake.wait_until("metadata refreshes", |r| r.of(ApiKey::Metadata).count() >= 2)
            .await;
        let got = c.poll(10, Duration::from_millis(300)).await;
        assert!(matches!(&got, Ok(v) if v.is_empty()), "{got:?}");
        // A producer fails the record with a clear, bounded error instead of panicking.
        let mut pcfg = producer_config(&fake);
        pcfg.set("delivery.timeout.ms", "1000").unwrap();
        let p = Producer::new(pcfg).unwrap();
        let d = p
            .send(ProducerRecord::new(TOPIC, "x").partition(0))
            .await
            .unwrap();
        let err = d.await.expect_err("no broker reachable");
        assert!(err.is_retriable(), "{err:?}");
        c.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrected_broker_address_is_used_after_refresh() {
    bounded(60, async {
        let fixed = Arc::new(AtomicBool::new(false));
        let fixed2 = fixed.clone();
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).metadata(move |_, port| {
            let mut m = metadata_answer(port, &[(TOPIC, 1)]);
            if !fixed2.load(Ordering::SeqCst) {
                m.brokers = absurd_brokers(port);
            }
            m
        }))
        .await;
        fill(&fake, 0, 1, 3);
        let c = Consumer::new(consumer_config(&fake)).unwrap();
        c.assign(&[(tp(0), StartOffset::Offset(0))]).await.unwrap();
        fake.wait_until("metadata refreshes", |r| r.of(ApiKey::Metadata).count() >= 2)
            .await;
        assert_eq!(c.poll(10, Duration::from_millis(100)).await.unwrap().len(), 0);
        fixed.store(true, Ordering::SeqCst);
        let mut seen = Seen::default();
        poll_until(&c, &mut seen, "records once the address is valid", |s| {
            s.records.len() >= 3
        })
        .await;
        assert_eq!(seen.offsets(0), range(3));
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// A batch larger than a partition's share of the budget.

/// Assigns `held` from the start, waits until each holds records (nothing is polled), then pauses them: they keep
/// what they hold, and it counts against the budget.
async fn assign_until_holding_then_pause(
    c: &Consumer,
    held: &[TopicPartition],
    deadline: tokio::time::Instant,
) {
    let start: Vec<_> = held.iter().map(|t| (t.clone(), StartOffset::Earliest)).collect();
    c.assign(&start).await.unwrap();
    while !held
        .iter()
        .all(|t| c.partition_view(t).unwrap().buffered_bytes > 0)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{held:?} never all held records"
        );
        tokio::time::sleep(Duration::from_millis(5)).await; // waiting for a condition, bounded by the deadline
    }
    c.pause(held).unwrap();
}

/// Partitions 0..7 hold data (paused); partition 7's only batch costs more memory than its share of the budget
/// (and than the fetch's reservation), but the budget has room: it is delivered, whole, in both modes, and the
/// budget holds. (It used to be taken only once nothing at all was buffered: never, while others held data.)
async fn large_batch_case(target_ms: &str) {
    const BUDGET: usize = 4 << 20;
    const SHARE: usize = 256 << 10;
    let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 8)])).await;
    for p in 0..7 {
        fill(&fake, p, 40, 100);
    }
    // One batch of 3,000 records of 200 B: about 1 MiB of memory, four shares.
    let big: Vec<String> = (0..3000).map(|i| format!("{i:06}{}", "b".repeat(194))).collect();
    fake.append(TOPIC, 7, &big);
    let mut cfg = consumer_config(&fake).with_partition_buffer(SHARE);
    cfg.memory_budget = BUDGET;
    cfg.set("weir.buffer.target.ms", target_ms).unwrap();
    let c = Consumer::new(cfg).unwrap();
    let held: Vec<TopicPartition> = (0..7).map(tp).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    assign_until_holding_then_pause(&c, &held, deadline).await;
    let buffered_before = c.buffered_bytes();
    assert!(buffered_before > 0);
    c.assign(&[(tp(7), StartOffset::Earliest)]).await.unwrap();
    let mut next = 0i64;
    while next < big.len() as i64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "partition 7's batch never delivered ({next} records)"
        );
        for r in c.poll(5000, Duration::from_millis(100)).await.unwrap() {
            assert_eq!((r.partition, r.offset), (7, next));
            next += 1;
        }
        assert!(c.buffered_bytes() <= BUDGET, "budget exceeded");
    }
    let view = c.partition_view(&tp(7)).unwrap();
    assert!(
        view.buffer_limit < 1 << 20,
        "the batch was larger than the limit {}",
        view.buffer_limit
    );
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_its_share_is_taken_while_others_hold_data() {
    bounded(60, large_batch_case("0")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_its_share_is_taken_with_rate_sized_buffers() {
    bounded(60, large_batch_case("1000")).await;
}

/// The budget is held by paused partitions, with less left than one batch costs: the partition still to fetch
/// waits for budget instead of being fetched again and again for a batch it cannot take (it used to be, about
/// a thousand times a second), and gets its batch once the application frees budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_little_budget_for_a_batch_waits_instead_of_fetching_in_a_loop() {
    bounded(60, async {
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 3)])).await;
        // One batch of 300 records of 100 B per partition: about 70 KB of memory each.
        for p in 0..3 {
            let big: Vec<String> = (0..300)
                .map(|i| format!("{p}-{i:04}-{}", "v".repeat(90)))
                .collect();
            fake.append(TOPIC, p, &big);
        }
        let mut cfg = consumer_config(&fake);
        cfg.memory_budget = 160 << 10;
        cfg.set("weir.buffer.target.ms", "0").unwrap();
        let c = Consumer::new(cfg).unwrap();
        let held = [tp(0), tp(1)];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        assign_until_holding_then_pause(&c, &held, deadline).await;
        let left = (160 << 10) - c.buffered_bytes();
        assert!(
            left < 70_000,
            "{left} bytes of budget left: the test needs less than a batch"
        );
        c.assign(&[(tp(2), StartOffset::Earliest)]).await.unwrap();
        // Half a second with nothing to take: a handful of fetches at most, not a loop.
        let before = c.stats().fetches;
        assert!(c.poll(100, Duration::from_millis(500)).await.unwrap().is_empty());
        let during = c.stats().fetches - before;
        assert!(
            during < 10,
            "{during} fetches in 500 ms with too little budget for a batch"
        );
        // The application takes partition 0's records (and pauses it again, so that no long poll of it holds
        // budget): budget is freed, and partition 2's batch comes.
        c.resume(&[tp(0)]).unwrap();
        let mut got = [0i64; 3];
        while got[2] < 300 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "partition 2 never delivered: {got:?}"
            );
            for r in c.poll(1000, Duration::from_millis(100)).await.unwrap() {
                assert_eq!(r.offset, got[r.partition as usize]);
                got[r.partition as usize] += 1;
            }
            if got[0] == 300 {
                c.pause(&[tp(0)]).unwrap();
            }
        }
        assert_eq!(got, [300, 0, 300]);
        c.close().await.unwrap();
    })
    .await;
}

// Offset out of range (tansu 0.6.0 never reports it, so only the fake broker can check this).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_out_of_range_resets_to_earliest_quietly() {
    bounded(60, async {
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)])).await;
        fake.append(TOPIC, 0, &values(0, 0..5));
        let mut cfg = consumer_config(&fake);
        cfg.set("auto.offset.reset", "earliest").unwrap();
        let c = Consumer::new(cfg).unwrap();
        c.assign(&[(tp(0), StartOffset::Offset(1_000))]).await.unwrap();
        let mut seen = Seen::default();
        poll_until(&c, &mut seen, "five records after the reset", |s| {
            s.records.len() >= 5
        })
        .await;
        assert!(seen.errors.is_empty(), "{:?}", seen.errors);
        assert_eq!(seen.offsets(0), range(5));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_out_of_range_without_reset_policy_is_a_per_partition_error() {
    bounded(60, async {
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 2)])).await;
        fake.append(TOPIC, 0, &values(0, 0..5));
        fake.append(TOPIC, 1, &values(1, 0..5));
        let mut cfg = consumer_config(&fake);
        cfg.set("auto.offset.reset", "none").unwrap();
        let c = Consumer::new(cfg).unwrap();
        c.assign(&[
            (tp(0), StartOffset::Offset(1_000)),
            (tp(1), StartOffset::Offset(0)),
        ])
        .await
        .unwrap();
        let mut seen = Seen::default();
        poll_until(&c, &mut seen, "partition 1 and an error", |s| {
            s.records.len() >= 5 && !s.errors.is_empty()
        })
        .await;
        assert_eq!(seen.offsets(1), range(5), "the other partition keeps delivering");
        assert!(seen.offsets(0).is_empty());
        let e = &seen.errors[0];
        assert_eq!(e.kafka_code(), Some(KafkaCode::OffsetOutOfRange), "{e}");
        assert!(
            e.to_string().contains("t-0"),
            "the error names the partition: {e}"
        );
        // The partition stays stopped (no error storm) until a seek moves it.
        let more = c.poll(100, Duration::from_millis(200)).await;
        assert!(matches!(more, Ok(ref v) if v.is_empty()), "{more:?}");
        c.seek(&tp(0), StartOffset::Offset(0)).await.unwrap();
        poll_until(&c, &mut seen, "partition 0 after the seek", |s| {
            s.offsets(0).len() >= 5
        })
        .await;
        assert_eq!(seen.offsets(0), range(5));
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Assign: start offsets of many partitions resolved in one ListOffsets request per leader and kind of offset.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_resolves_offsets_with_one_request_per_leader_and_kind() {
    bounded(60, async {
        let fake = FakeBroker::start(FakeConfig::new(&[("a", 20), ("b", 20)])).await;
        for topic in ["a", "b"] {
            for p in 0..20 {
                fake.append(topic, p, &values(p, 0..3));
            }
        }
        let c = Consumer::new(consumer_config(&fake)).unwrap();
        let a = |p| TopicPartition::new("a", p);
        let b = |p| TopicPartition::new("b", p);
        let mut starts: Vec<_> = (0..20).map(|p| (a(p), StartOffset::Latest)).collect();
        starts.extend((0..10).map(|p| (b(p), StartOffset::Earliest)));
        starts.extend((10..20).map(|p| (b(p), StartOffset::FromEnd(2))));
        starts.push((b(0), StartOffset::Offset(1))); // the last start of a partition wins
        starts.push((a(0), StartOffset::Latest)); // named twice: asked once
        starts.push((b(15), StartOffset::Earliest)); // also asked Earliest for its FromEnd: asked once
        c.assign(&starts).await.unwrap();
        for p in 0..20 {
            assert_eq!(c.position(&a(p)), Some(3), "a-{p} at Latest");
            let want = match p {
                0 => 1,
                1..=9 | 15 => 0,
                _ => 1,
            };
            assert_eq!(c.position(&b(p)), Some(want), "b-{p}");
        }
        // Two kinds of offset asked (Latest for `a` and for `FromEnd`; Earliest for `b` and for `FromEnd`'s
        // floor), one broker: two requests, each naming every partition of its kind once.
        let asked: Vec<Vec<(String, i32)>> = fake.recorded(|r| {
            r.of(ApiKey::ListOffsets)
                .map(|q| match &q.body {
                    fake_broker::Body::ListOffsets(l) => l
                        .topics
                        .iter()
                        .flat_map(|t| {
                            t.partitions
                                .iter()
                                .map(|p| (t.name.0.to_string(), p.partition_index))
                        })
                        .collect(),
                    _ => unreachable!(),
                })
                .collect()
        });
        assert_eq!(asked.len(), 2, "{asked:?}");
        assert_eq!(asked.iter().map(Vec::len).sum::<usize>(), 30 + 20, "{asked:?}");
        for request in &asked {
            let unique: std::collections::BTreeSet<_> = request.iter().collect();
            assert_eq!(
                unique.len(),
                request.len(),
                "a partition named twice: {request:?}"
            );
        }
        // By timestamp: the record at or after it, or the end of the log when there is none (looked up then).
        let before = fake.recorded(|r| r.of(ApiKey::ListOffsets).count());
        let t = fake_broker::RECORD_TIME_BASE;
        c.assign(&[
            (a(1), StartOffset::Timestamp(t + 1)),
            (a(2), StartOffset::Timestamp(t + 99)),
        ])
        .await
        .unwrap();
        assert_eq!((c.position(&a(1)), c.position(&a(2))), (Some(1), Some(3)));
        assert_eq!(
            fake.recorded(|r| r.of(ApiKey::ListOffsets).count()) - before,
            3,
            "one request per timestamp, then the end for the one past every record"
        );
        let bad = c.assign(&[(a(-1), StartOffset::Offset(0))]).await;
        assert!(matches!(bad, Err(Error::InvalidArgument(_))), "{bad:?}");
        c.close().await.unwrap();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Fetch sessions (KIP-227), against a fake broker that keeps them as Kafka does.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sessions_leave_out_idle_partitions_and_forget_paused_ones() {
    bounded(60, async {
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 3)]).sessions()).await;
        for p in 0..3 {
            fake.append(TOPIC, p, &values(p, 0..5));
        }
        let mut cfg = consumer_config(&fake);
        // One regular lane; the express lane, when used, keeps a session of its own (on its own connection).
        cfg.set("weir.fetches.in.flight", "1").unwrap();
        let c = Consumer::new(cfg).unwrap();
        c.assign(
            &(0..3)
                .map(|p| (tp(p), StartOffset::Offset(0)))
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
        let mut seen = Seen::default();
        poll_until(&c, &mut seen, "15 records", |s| s.records.len() >= 15).await;
        c.pause(&[tp(2)]).unwrap();
        let sent_before_pause = fake.recorded(|r| r.of(ApiKey::Fetch).count());
        // Produce more into partition 0 only, twice: several fetches are planned after the pause.
        fake.append(TOPIC, 0, &values(0, 5..8));
        poll_until(&c, &mut seen, "3 more records", |s| s.records.len() >= 18).await;
        fake.append(TOPIC, 0, &values(0, 8..10));
        poll_until(&c, &mut seen, "2 more records", |s| s.records.len() >= 20).await;
        assert!(seen.errors.is_empty(), "{:?}", seen.errors);
        // While paused, partition 2 is not fetched: on each lane, the fetches after the first one sent after the
        // pause (which may have been planned before it) leave it out, and a lane whose session held it forgets
        // it in the first of them.
        let lanes: Vec<(usize, bool, bool, bool)> = fake.recorded(|r| {
            let fetches: Vec<_> = r.of(ApiKey::Fetch).collect();
            let conns: BTreeSet<usize> = fetches.iter().map(|q| q.conn).collect();
            conns
                .into_iter()
                .map(|conn| {
                    let on_lane: Vec<_> = fetches
                        .iter()
                        .enumerate()
                        .filter(|(_, q)| q.conn == conn)
                        .collect();
                    let lists_2 = |q: &fake_broker::Request| q.fetch_offsets().iter().any(|(p, _)| *p == 2);
                    let forgets_2 = |q: &fake_broker::Request| match &q.body {
                        fake_broker::Body::Fetch(f) => {
                            f.forgotten_topics_data.iter().any(|t| t.partitions.contains(&2))
                        }
                        _ => false,
                    };
                    let held = on_lane
                        .iter()
                        .filter(|(i, _)| *i < sent_before_pause)
                        .fold(false, |held, (_, q)| (held || lists_2(q)) && !forgets_2(q));
                    let after: Vec<_> = on_lane
                        .iter()
                        .filter(|(i, _)| *i >= sent_before_pause)
                        .skip(1)
                        .collect();
                    let never_listed = after.iter().all(|(_, q)| !lists_2(q));
                    let post: Vec<_> = on_lane.iter().filter(|(i, _)| *i >= sent_before_pause).collect();
                    let forgot = !held || post.len() < 2 || post.iter().any(|(_, q)| forgets_2(q));
                    (conn, held, never_listed, forgot)
                })
                .collect()
        });
        // (lane, whether its session held 2 at the pause, never listed it after, forgot it in time)
        for (conn, _, never_listed, forgot) in &lanes {
            assert!(
                never_listed,
                "lane {conn} fetched the paused partition: {lanes:?}"
            );
            assert!(
                forgot,
                "lane {conn} held the paused partition and did not forget it: {lanes:?}"
            );
        }
        c.resume(&[tp(2)]).unwrap();
        fake.append(TOPIC, 2, &values(2, 5..7));
        poll_until(&c, &mut seen, "partition 2 after resume", |s| {
            s.offsets(2).len() >= 7
        })
        .await;
        for (p, n) in [(0, 10), (1, 5), (2, 7)] {
            assert_eq!(seen.offsets(p), range(n), "partition {p}");
        }
        let fetches: Vec<_> = fake.recorded(|r| {
            r.of(ApiKey::Fetch)
                .map(|q| match &q.body {
                    fake_broker::Body::Fetch(f) => (
                        q.conn,
                        f.session_id,
                        f.session_epoch,
                        q.fetch_offsets().len(),
                        f.forgotten_topics_data
                            .iter()
                            .map(|t| t.partitions.clone())
                            .collect::<Vec<_>>(),
                    ),
                    _ => unreachable!(),
                })
                .collect()
        });
        assert_eq!(
            (fetches[0].1, fetches[0].2),
            (0, 0),
            "first fetch creates a session"
        );
        assert!(fetches[0].3 > 0, "{fetches:?}");
        // On each connection (lane), the first fetch creates a session and the later ones are incremental.
        for (i, f) in fetches.iter().enumerate() {
            let first_on_lane = fetches[..i].iter().all(|g| g.0 != f.0);
            assert!(
                first_on_lane == (f.1 == 0 && f.2 == 0),
                "fetch {i} of lane {}: first {first_on_lane}: {fetches:?}",
                f.0
            );
        }
        let idle = fetches.iter().filter(|f| f.3 < 3 && f.1 != 0).count();
        assert!(idle > 0, "unchanged partitions are not re-listed: {fetches:?}");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Cancel-safety: a request future dropped mid-flight neither corrupts the connection nor leaks its slot.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_request_futures_leave_the_connection_healthy() {
    bounded(60, async {
        // The first ListOffsets is answered late; by then its caller has given up (its future was dropped).
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).script(|req| {
            match (req.api_key, req.api_seq) {
                (ApiKey::ListOffsets, 0) => {
                    Action::Delay(Duration::from_millis(300), Box::new(Action::Answer))
                }
                _ => Action::Answer,
            }
        }))
        .await;
        fake.append(TOPIC, 0, &values(0, 0..3));
        let mut cfg = weir::config::ClientConfig::new(&fake.bootstrap());
        cfg.max_in_flight = 1; // one slot: a leaked slot would block every later request
        let admin = weir::Admin::new(cfg).unwrap();
        let spec = weir::admin::OffsetSpec::Latest;
        let early = tokio::time::timeout(Duration::from_millis(50), admin.list_offsets(TOPIC, spec)).await;
        assert!(
            early.is_err(),
            "the first request should still be pending when dropped"
        );
        for _ in 0..5 {
            let ends = admin
                .list_offsets(TOPIC, spec)
                .await
                .expect("later requests succeed");
            assert_eq!(ends.get(&0), Some(&3));
        }
        let conns: Vec<usize> = fake.recorded(|r| r.of(ApiKey::ListOffsets).map(|q| q.conn).collect());
        assert_eq!(conns.len(), 6);
        assert!(
            conns.iter().all(|&c| c == conns[0]),
            "the connection was kept, not replaced: {conns:?}"
        );
        assert_eq!(fake.recorded(|r| r.disconnections), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_failing_for_good_starts_a_new_producer_epoch() {
    bounded(60, async {
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).script(|req| {
            match (req.api_key, req.api_seq) {
                (ApiKey::Produce, 0) => Action::ProduceError(87), // INVALID_RECORD: not retriable
                _ => Action::Answer,
            }
        }))
        .await;
        let p = Producer::new(producer_config(&fake)).unwrap();
        let first = p
            .send(ProducerRecord::new(TOPIC, "refused").partition(0))
            .await
            .unwrap();
        let e = first.await.expect_err("refused for good");
        assert_eq!(e.kafka_code(), Some(KafkaCode::InvalidRecord), "{e}");
        // The refused batch used sequence 0; sending sequence 1 next would be out of order for the broker.
        let second = p
            .send(ProducerRecord::new(TOPIC, "accepted").partition(0))
            .await
            .unwrap();
        let meta = second.await.expect("delivered after a new epoch");
        assert_eq!(meta.offset, 0);
        let stamps: Vec<(i16, i32)> = fake.recorded(|r| {
            r.of(ApiKey::Produce)
                .map(|q| {
                    let b = batches(q.produced()[0].2.clone()).next().unwrap().unwrap();
                    (b.producer_epoch(), b.base_sequence())
                })
                .collect()
        });
        assert_eq!(
            stamps,
            vec![(0, 0), (1, 0)],
            "second batch: new epoch, sequence restarted"
        );
        assert_eq!(fake.recorded(|r| r.of(ApiKey::InitProducerId).count()), 2);
        p.close().await.unwrap();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// ListOffsets errors while assigning: a leader that is not ready yet (right after a topic is created or a
// leader moves: Kafka answers NOT_LEADER_OR_FOLLOWER for a moment) is asked again; a fatal error is not.

/// A ListOffsets response naming `partitions` of `topic`, each with `error` (and offset -1).
fn list_offsets_error(topic: &str, partitions: &[i32], error: i16, version: i16) -> Bytes {
    use kafka_protocol::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    use kafka_protocol::messages::{ListOffsetsResponse, TopicName};
    let resp = ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
        .with_partitions(
            partitions
                .iter()
                .map(|&p| {
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(p)
                        .with_error_code(error)
                        .with_offset(-1)
                })
                .collect(),
        )]);
    let mut b = BytesMut::new();
    resp.encode(&mut b, version).unwrap();
    b.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_asks_again_when_a_leader_is_not_ready() {
    bounded(30, async {
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 2)]).script(|req| {
            if req.api_key == ApiKey::ListOffsets && req.api_seq < 2 {
                // NOT_LEADER_OR_FOLLOWER for both partitions, twice.
                Action::RawBody(list_offsets_error(TOPIC, &[0, 1], 6, req.version))
            } else {
                Action::Answer
            }
        }))
        .await;
        for p in 0..2 {
            fake.append(TOPIC, p, &values(p, 0..4));
        }
        let c = Consumer::new(consumer_config(&fake)).unwrap();
        c.assign(&[(tp(0), StartOffset::Latest), (tp(1), StartOffset::Earliest)])
            .await
            .expect("asked again until the leader answers");
        assert_eq!(c.position(&tp(0)), Some(4));
        assert_eq!(c.position(&tp(1)), Some(0));
        assert!(fake.recorded(|r| r.of(ApiKey::ListOffsets).count()) >= 3);
        c.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_fails_at_once_on_a_fatal_list_offsets_error() {
    bounded(30, async {
        let fake = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).script(|req| {
            if req.api_key == ApiKey::ListOffsets {
                // TOPIC_AUTHORIZATION_FAILED: no retry can help.
                Action::RawBody(list_offsets_error(TOPIC, &[0], 29, req.version))
            } else {
                Action::Answer
            }
        }))
        .await;
        let c = Consumer::new(consumer_config(&fake)).unwrap();
        let err = c.assign(&[(tp(0), StartOffset::Latest)]).await.unwrap_err();
        assert_eq!(
            err.kafka_code(),
            Some(KafkaCode::TopicAuthorizationFailed),
            "{err}"
        );
        assert_eq!(fake.recorded(|r| r.of(ApiKey::ListOffsets).count()), 1);
        c.close().await.unwrap();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// A partition with records waiting at the broker is not held up by fetches long-polling caught-up partitions.

/// The broker holds every fetch naming only caught-up partitions for 3 s (a long poll with nothing to return);
/// partition 0 has 2,000 records in batches of 50, two batches per fetch, and a 4 KiB buffer, so it stops
/// after every fetch and resumes once the application drained it. Each time
/// it resumes, both regular lanes may be held at the broker: it goes on the express lane instead of waiting
/// for them, and everything arrives in seconds rather than a dozen long polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_partition_does_not_wait_for_long_polls_of_idle_ones() {
    bounded(60, async {
        let config = FakeConfig::new(&[(TOPIC, 3)]).batches_per_fetch(2);
        let fake = FakeBroker::start(config.script(|req| match &req.body {
            fake_broker::Body::Fetch(f)
                if f.topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .all(|p| p.partition != 0) =>
            {
                Action::Delay(Duration::from_secs(3), Box::new(Action::Answer))
            }
            _ => Action::Answer,
        }))
        .await;
        for i in 0..40 {
            fake.append(TOPIC, 0, &values(0, i * 50..(i + 1) * 50));
        }
        let c = Consumer::new(consumer_config(&fake).with_partition_buffer(4 * 1024)).unwrap();
        c.assign(&[
            (tp(0), StartOffset::Offset(0)),
            (tp(1), StartOffset::Offset(0)),
            (tp(2), StartOffset::Offset(0)),
        ])
        .await
        .unwrap();
        let mut seen = Seen::default();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while seen.records.len() < 2000 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of 2000 records in 10 s: the resumed partition waited for the idle ones' long polls ({:?})",
                seen.records.len(),
                c.stats()
            );
            match c.poll(50, Duration::from_millis(100)).await {
                Ok(batch) => seen.records.extend(batch),
                Err(e) => seen.errors.push(e),
            }
        }
        assert!(seen.errors.is_empty(), "{:?}", seen.errors);
        assert_eq!(seen.offsets(0), range(2000));
        assert!(c.stats().backpressure_pauses >= 5, "{:?}", c.stats());
        c.close().await.unwrap();
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// Choosing a broker for a metadata refresh: a broker that just failed waits out its reconnect backoff while the
// others answer, and a broker that fails the request hands it on to the next within the same refresh.

/// Node 1 at `one` and node 2 at `two`, on 127.0.0.1.
fn two_brokers(one: u16, two: u16) -> Vec<MetadataResponseBroker> {
    [(1, one), (2, two)]
        .into_iter()
        .map(|(id, port)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_static_str("127.0.0.1"))
                .with_port(i32::from(port))
        })
        .collect()
}

/// An admin client that waits out every backoff and request for longer than a test lasts: a refresh that
/// waited for a link in backoff, or for a broker that never answers, would wedge the test's bounded wait.
fn patient_admin(bootstrap: &str) -> weir::Admin {
    let mut cfg = weir::config::ClientConfig::new(bootstrap);
    cfg.set("reconnect.backoff.ms", "600000").unwrap();
    cfg.set("reconnect.backoff.max.ms", "600000").unwrap();
    cfg.set("request.timeout.ms", "600000").unwrap();
    weir::Admin::new(cfg).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_asks_a_live_broker_while_the_dead_one_is_in_backoff() {
    bounded(30, async {
        // Node 1 drops its first connection at the first request (ApiVersions) and never answers on a later
        // one; node 2 answers everything.
        let dead = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).script(|req| match req.conn {
            0 => Action::Close,
            _ => Action::Stall,
        }))
        .await;
        let dead_port = dead.addr.port();
        let live = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).metadata(move |_, port| {
            let mut m = metadata_answer(port, &[(TOPIC, 1)]);
            m.brokers = two_brokers(dead_port, port);
            m
        }))
        .await;
        let admin = patient_admin(&live.bootstrap());
        assert_eq!(admin.metadata().await.unwrap().brokers.len(), 2);
        // A call only node 1 can answer: its link fails to connect and enters its (ten-minute) backoff. It is
        // now the only broker link this client made: before the fix, the refresh asked it first and waited.
        let described = admin
            .describe_configs(&[weir::admin::ConfigResource::broker(1)])
            .await
            .unwrap();
        assert!(described[0].1.is_err(), "{described:?}");
        dead.wait_until("the failed connection's end", |r| r.disconnections == 1)
            .await;

        let snap = admin
            .metadata()
            .await
            .expect("refresh answered by the live broker");
        assert_eq!(snap.brokers.len(), 2);
        assert_eq!(live.recorded(|r| r.of(ApiKey::Metadata).count()), 2);
        dead.recorded(|r| {
            // Still in backoff: not one connection attempt since the failed one.
            assert_eq!(r.connections, 1, "reconnected to the dead broker");
            assert_eq!(r.of(ApiKey::Metadata).count(), 0);
        });
        admin.close().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_failing_on_one_broker_is_answered_by_the_next() {
    bounded(30, async {
        let second_port = Arc::new(AtomicU16::new(0));
        let port_of_second = second_port.clone();
        // Node 1 answers the first Metadata request and drops the connection at every later one.
        let first = FakeBroker::start(
            FakeConfig::new(&[(TOPIC, 1)])
                .metadata(move |_, port| {
                    let mut m = metadata_answer(port, &[(TOPIC, 1)]);
                    m.brokers = two_brokers(port, port_of_second.load(Ordering::SeqCst));
                    m
                })
                .script(|req| match (req.api_key, req.api_seq) {
                    (ApiKey::Metadata, 1..) => Action::Close,
                    _ => Action::Answer,
                }),
        )
        .await;
        let first_port = first.addr.port();
        let second = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).metadata(move |_, port| {
            let mut m = metadata_answer(port, &[(TOPIC, 1)]);
            m.brokers = two_brokers(first_port, port);
            m
        }))
        .await;
        second_port.store(second.addr.port(), Ordering::SeqCst);
        let admin = patient_admin(&first.bootstrap());
        assert_eq!(admin.metadata().await.unwrap().brokers.len(), 2);

        // Node 1's open connection is the first choice; it fails the request, node 2 answers it.
        let snap = admin.metadata().await.expect("refresh answered by node 2");
        assert_eq!(snap.brokers.len(), 2);
        assert_eq!(second.recorded(|r| r.of(ApiKey::Metadata).count()), 1);
        // Asked once more, not twice: a broker that failed is not asked again within the same refresh.
        assert_eq!(first.recorded(|r| r.of(ApiKey::Metadata).count()), 2);
        admin.close().await.unwrap();
    })
    .await;
}

/// The values stored in a partition of `fake`, in log order.
fn stored_values(fake: &FakeBroker, partition: i32) -> Vec<String> {
    fake.batches(TOPIC, partition)
        .into_iter()
        .flat_map(|b| {
            let batch = batches(b.bytes).next().unwrap().unwrap();
            batch.records(1 << 20).unwrap().collect::<Vec<_>>()
        })
        .map(|r| String::from_utf8(r.unwrap().value.unwrap().to_vec()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_goes_to_the_new_leader_while_the_dead_one_is_in_backoff() {
    bounded(30, async {
        // Node 1 leads the partition until it dies: from then on it drops every connection at its first
        // request, so a reconnect fails and its link enters its (ten-minute) backoff.
        let dead = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicBool::new(false));
        let (is_dead, refuses) = (dead.clone(), refused.clone());
        let second_port = Arc::new(AtomicU16::new(0));
        let port_of_second = second_port.clone();
        let first = FakeBroker::start(
            FakeConfig::new(&[(TOPIC, 1)])
                .metadata(move |_, port| {
                    let mut m = metadata_answer(port, &[(TOPIC, 1)]);
                    m.brokers = two_brokers(port, port_of_second.load(Ordering::SeqCst));
                    m
                })
                .script(move |req| {
                    if !is_dead.load(Ordering::SeqCst) {
                        return Action::Answer;
                    }
                    if req.api_key == ApiKey::ApiVersions {
                        refuses.store(true, Ordering::SeqCst);
                    }
                    Action::Close
                }),
        )
        .await;
        let first_port = first.addr.port();
        // Node 2 names node 1 the leader until its second answer after node 1 refused a connection: the new
        // leader is elected a little after the client's link to node 1 entered its backoff.
        let answers_since_refusal = Arc::new(AtomicUsize::new(0));
        let (refused_seen, answers) = (refused.clone(), answers_since_refusal.clone());
        let second = FakeBroker::start(FakeConfig::new(&[(TOPIC, 1)]).metadata(move |_, port| {
            let mut m = metadata_answer(port, &[(TOPIC, 1)]);
            m.brokers = two_brokers(first_port, port);
            let elected = refused_seen.load(Ordering::SeqCst) && answers.fetch_add(1, Ordering::SeqCst) >= 1;
            if elected {
                for t in m.topics.iter_mut() {
                    for p in t.partitions.iter_mut() {
                        p.leader_id = BrokerId(2);
                        p.replica_nodes = vec![BrokerId(2)];
                        p.isr_nodes = vec![BrokerId(2)];
                    }
                }
            }
            m
        }))
        .await;
        second_port.store(second.addr.port(), Ordering::SeqCst);

        let mut cfg = producer_config(&first);
        cfg.set("reconnect.backoff.ms", "600000").unwrap();
        cfg.set("reconnect.backoff.max.ms", "600000").unwrap();
        let p = Producer::new(cfg).unwrap();
        let before: Vec<String> = (0..3).map(|i| format!("before-{i}")).collect();
        for v in &before {
            let d = p
                .send(ProducerRecord::new(TOPIC, v.clone()).partition(0))
                .await
                .unwrap();
            d.await.expect("delivered by node 1");
        }

        dead.store(true, Ordering::SeqCst);
        let after: Vec<String> = (0..5).map(|i| format!("after-{i}")).collect();
        let mut deliveries = Vec::new();
        for v in &after {
            deliveries.push(
                p.send(ProducerRecord::new(TOPIC, v.clone()).partition(0))
                    .await
                    .unwrap(),
            );
        }
        let mut offsets = Vec::new();
        for d in deliveries {
            offsets.push(d.await.expect("delivered by node 2").offset);
        }
        assert!(refused.load(Ordering::SeqCst), "node 1 refused a reconnect");
        assert!(
            answers_since_refusal.load(Ordering::SeqCst) >= 2,
            "node 2 was elected"
        );
        // Acknowledged by node 2, every record once and in order, at the offsets it gave them.
        assert_eq!(offsets, (0..5).collect::<Vec<i64>>());
        assert_eq!(stored_values(&second, 0), after);
        assert_eq!(stored_values(&first, 0), before);
        // The one produce request node 1 got after its death is the one its connection dropped; nothing was
        // sent to it while its link waited out the backoff.
        assert_eq!(
            first.recorded(|r| r.of(ApiKey::Produce).count()),
            before.len() + 1
        );
        p.close().await.unwrap();
    })
    .await;
}
