//! Cancel-safety on real Apache Kafka: public futures dropped at each of their await points in turn (the k-th
//! time they return `Pending`, for k = 1, 2, ... until one finishes), then the client used again. What must hold
//! after every cancellation: nothing lost (a cancelled `poll` gives back no record it took, a cancelled `send`
//! queued nothing), no memory or in-flight slot leaked (the same calls complete afterwards, as many as the limits
//! allow and more), nothing wedged (every wait here is bounded).

use std::collections::BTreeMap;
use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use weir::admin::Admin;
use weir::config::{ClientConfig, ProducerConfig};
use weir::consumer::{Consumer, ConsumerConfig, ConsumerRecord, StartOffset, TopicPartition};
use weir::group::{GroupConfig, GroupConsumer};
use weir::{Producer, ProducerRecord};
use weir_testkit::{unique_name, unique_topic, Kafka};

/// How many cancellation points a call is tried at before the test gives up on it finishing.
const MAX_POINTS: usize = 200;
/// Bound on any one wait of these tests.
const WAIT: Duration = Duration::from_secs(60);

fn init_log() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("WEIR_LOG"))
        .with_test_writer()
        .try_init();
}

/// Polls `fut` until it has returned `Pending` `k` times, then drops it there (cancelled at its k-th await
/// point): `None`. Its output if it finished first.
async fn cancel_at<F: Future>(k: usize, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut pendings = 0;
    std::future::poll_fn(move |cx| match fut.as_mut().poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => {
            pendings += 1;
            if pendings == k {
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        }
    })
    .await
}

/// Runs `call()` cancelled at its first, second, ... await point, until a run finishes; returns its output and
/// how many cancellations came first.
async fn through_every_point<T, F, Fut>(what: &str, mut call: F) -> (T, usize)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    for k in 1..=MAX_POINTS {
        let run = tokio::time::timeout(WAIT, cancel_at(k, call()))
            .await
            .unwrap_or_else(|_| panic!("{what}: wedged when run to its {k}th await point"));
        if let Some(out) = run {
            return (out, k - 1);
        }
    }
    panic!("{what}: still pending after {MAX_POINTS} await points");
}

/// `stream.next()` cancelled at its first, second, ... await point until one finishes (counting the
/// cancellations in `cancelled`).
async fn next_through_every_point<S: futures::Stream + Unpin>(
    stream: &mut S,
    cancelled: &mut usize,
) -> Option<S::Item> {
    use futures::StreamExt;
    for k in 1..=MAX_POINTS {
        let run = tokio::time::timeout(WAIT, cancel_at(k, stream.next()))
            .await
            .unwrap_or_else(|_| panic!("next(): wedged when run to its {k}th await point"));
        match run {
            Some(item) => return item,
            None => *cancelled += 1,
        }
    }
    panic!("next(): still pending after {MAX_POINTS} await points");
}

/// Produces `per_partition` records to each partition, a few at a time, each few awaited before the next
/// (so that a consumer reading meanwhile keeps waiting for records: its calls have await points to cancel at).
async fn produce(broker: &Kafka, topic: &str, partitions: i32, per_partition: usize) {
    let producer = Producer::new(ProducerConfig::new(&broker.bootstrap())).unwrap();
    let mut acks = Vec::new();
    for i in 0..per_partition {
        for p in 0..partitions {
            let r = ProducerRecord::new(topic, format!("p{p}-{i}")).partition(p);
            acks.push(producer.send(r).await.unwrap());
        }
        if i % 5 == 4 {
            producer.flush().await.unwrap();
        }
    }
    for a in acks {
        a.await.unwrap();
    }
    producer.close().await.unwrap();
}

/// A consumer of partitions `0..partitions` of `topic`, from their earliest offsets.
async fn assigned_from_earliest(broker: &Kafka, topic: &str, partitions: i32) -> Consumer {
    let consumer = Consumer::new(ConsumerConfig::new(&broker.bootstrap())).unwrap();
    let starts: Vec<_> = (0..partitions)
        .map(|p| (TopicPartition::new(topic, p), StartOffset::Earliest))
        .collect();
    consumer.assign(&starts).await.unwrap();
    consumer
}

fn produce_in_background(topic: &str, partitions: i32, per_partition: usize) -> tokio::task::JoinHandle<()> {
    let topic = topic.to_owned();
    tokio::spawn(async move { produce(Kafka::shared(), &topic, partitions, per_partition).await })
}

/// Polls through `poll`, each call cancelled at its first, second, ... await point in turn, until `total`
/// records came; returns them and the number of cancellations.
async fn read_cancelling<F, Fut>(what: &str, total: usize, mut poll: F) -> (Vec<ConsumerRecord>, usize)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = weir::Result<Vec<ConsumerRecord>>>,
{
    let (mut got, mut cancelled) = (Vec::new(), 0);
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < total {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} of {total} records after {WAIT:?}",
            got.len()
        );
        let (records, c) = through_every_point(what, &mut poll).await;
        cancelled += c;
        got.extend(records.unwrap());
    }
    (got, cancelled)
}

/// Every offset `0..per_partition` of every partition exactly once, in order.
fn assert_complete(records: &[ConsumerRecord], partitions: i32, per_partition: usize) {
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for r in records {
        by_partition.entry(r.partition).or_default().push(r.offset);
    }
    for p in 0..partitions {
        let want: Vec<i64> = (0..per_partition as i64).collect();
        assert_eq!(
            by_partition.get(&p),
            Some(&want),
            "partition {p}: offsets lost, repeated or out of order"
        );
    }
}

/// `Consumer::poll` dropped while waiting for records hands none of them over to nobody: every record of the
/// topic arrives once, in order, through the polls that finished. Records are produced while the consumer
/// polls, so that polls are cancelled while fetches complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_poll_loses_no_record() {
    init_log();
    let broker = Kafka::shared();
    let topic = unique_topic("cancel-poll");
    let (partitions, per_partition) = (3, 400);
    broker.create_topic(&topic, partitions);
    let consumer = assigned_from_earliest(broker, &topic, partitions).await;
    let producing = produce_in_background(&topic, partitions, per_partition);
    // Small polls, cancelled at their first, second, ... await point in turn.
    let total = partitions as usize * per_partition;
    let (got, cancelled) =
        read_cancelling("poll", total, || consumer.poll(7, Duration::from_millis(200))).await;
    producing.await.unwrap();
    assert!(
        cancelled > 0,
        "no poll was ever cancelled: the test did not test anything"
    );
    eprintln!("poll: {cancelled} cancellations");
    assert_complete(&got, partitions, per_partition);
    // Nothing more arrives (a record handed out twice would show up here).
    assert!(consumer
        .poll(100, Duration::from_millis(300))
        .await
        .unwrap()
        .is_empty());
    consumer.close().await.unwrap();
}

/// `next()` on `Consumer::stream` and on a `partition_stream`, dropped at every await point: every record arrives
/// once, in order (the stream keeps what it holds across a dropped `next`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_stream_next_loses_no_record() {
    init_log();
    let broker = Kafka::shared();
    let topic = unique_topic("cancel-stream");
    let (partitions, per_partition) = (2, 300);
    broker.create_topic(&topic, partitions);
    let consumer = assigned_from_earliest(broker, &topic, partitions).await;
    // Partition 1 through its own stream of batches, partition 0 through the consumer's record stream.
    let mut batches = Box::pin(
        consumer
            .partition_stream(&TopicPartition::new(topic.as_str(), 1), 7)
            .unwrap(),
    );
    let mut records = std::pin::pin!(consumer.stream(5));
    let producing = produce_in_background(&topic, partitions, per_partition);
    let mut got = Vec::new();
    let mut cancelled = 0;
    while got.iter().filter(|r: &&ConsumerRecord| r.partition == 0).count() < per_partition {
        let r = next_through_every_point(&mut records, &mut cancelled).await;
        got.push(r.expect("stream ended").unwrap());
    }
    while got.len() < partitions as usize * per_partition {
        let batch = next_through_every_point(&mut batches, &mut cancelled).await;
        got.extend(batch.expect("partition stream ended"));
    }
    producing.await.unwrap();
    assert!(
        cancelled > 0,
        "no next() was ever cancelled: the test did not test anything"
    );
    eprintln!("stream next: {cancelled} cancellations");
    assert_complete(&got, partitions, per_partition);
    consumer.close().await.unwrap();
}

/// `Producer::send` dropped while waiting for `buffer.memory` queued nothing and holds no memory: every record
/// whose send finished is delivered exactly once, the cancelled ones never, and the producer keeps sending as
/// much as its memory allows afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_send_queues_nothing_and_leaks_no_memory() {
    init_log();
    let broker = Kafka::shared();
    let topic = unique_topic("cancel-send");
    broker.create_topic(&topic, 2);
    let mut cfg = ProducerConfig::new(&broker.bootstrap());
    // Small memory, so that sends wait for it (an await point) often.
    cfg.set("buffer.memory", "65536").unwrap();
    cfg.set("batch.size", "16384").unwrap();
    cfg.set("linger.ms", "2").unwrap();
    let producer = Producer::new(cfg).unwrap();
    let value = |i: usize| format!("{i:06}-{}", "v".repeat(1000));
    let mut acks = Vec::new();
    let mut sent = Vec::new();
    let mut cancelled = Vec::new();
    for i in 0..600 {
        let k = i % 3 + 1;
        let record = || ProducerRecord::new(&topic, value(i)).partition((i % 2) as i32);
        match tokio::time::timeout(WAIT, cancel_at(k, producer.send(record())))
            .await
            .expect("send wedged")
        {
            Some(ack) => {
                acks.push(ack.unwrap());
                sent.push(i);
            }
            None => cancelled.push(i),
        }
    }
    assert!(
        !cancelled.is_empty(),
        "no send was ever cancelled: the test did not test anything"
    );
    eprintln!("send: {} of 600 cancelled", cancelled.len());
    tokio::time::timeout(WAIT, producer.flush())
        .await
        .expect("flush wedged")
        .unwrap();
    for a in acks {
        a.await.unwrap();
    }
    // No memory leaked: 4 x buffer.memory more, awaited one by one at the end.
    let mut more = Vec::new();
    for i in 600..(600 + 4 * 64) {
        let r = ProducerRecord::new(&topic, value(i)).partition((i % 2) as i32);
        more.push(
            tokio::time::timeout(WAIT, producer.send(r))
                .await
                .expect("memory leaked")
                .unwrap(),
        );
        sent.push(i);
    }
    for a in more {
        a.await.unwrap();
    }
    producer.close().await.unwrap();

    let consumer = assigned_from_earliest(broker, &topic, 2).await;
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.len() < sent.len() && tokio::time::Instant::now() < deadline {
        for r in consumer.poll(1000, Duration::from_millis(500)).await.unwrap() {
            let v = r.value.unwrap();
            seen.push(std::str::from_utf8(&v[..6]).unwrap().parse::<usize>().unwrap());
        }
    }
    assert!(consumer
        .poll(1000, Duration::from_millis(300))
        .await
        .unwrap()
        .is_empty());
    consumer.close().await.unwrap();
    seen.sort_unstable();
    assert_eq!(
        seen,
        sent,
        "records delivered: every finished send once, no cancelled one ({} cancelled)",
        cancelled.len()
    );
}

/// `flush`, `assign`, `seek` and admin calls dropped at every await point leave their client usable: the call
/// then completes and does what it says, and the connections still carry more requests than their in-flight
/// limit (no slot left taken by a cancelled request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_flush_assign_seek_and_admin_calls_leave_the_clients_usable() {
    init_log();
    let broker = Kafka::shared();
    let topic = unique_topic("cancel-calls");
    broker.create_topic(&topic, 2);

    // flush, with records waiting for their linger.
    let mut cfg = ProducerConfig::new(&broker.bootstrap());
    cfg.set("linger.ms", "50").unwrap();
    let producer = Producer::new(cfg).unwrap();
    let mut acks = Vec::new();
    for i in 0..100 {
        let r = ProducerRecord::new(&topic, format!("{i}")).partition(i % 2);
        acks.push(producer.send(r).await.unwrap());
    }
    let (flushed, flush_cancels) = through_every_point("flush", || producer.flush()).await;
    flushed.unwrap();
    for a in acks {
        a.await.unwrap();
    }
    producer.close().await.unwrap();

    // assign, then seek, cancelled at every point; then both work.
    let consumer = Consumer::new(ConsumerConfig::new(&broker.bootstrap())).unwrap();
    let tps = [
        TopicPartition::new(topic.as_str(), 0),
        TopicPartition::new(topic.as_str(), 1),
    ];
    let starts: Vec<_> = tps.iter().map(|tp| (tp.clone(), StartOffset::Earliest)).collect();
    let (assigned, _) = through_every_point("assign", || consumer.assign(&starts)).await;
    assigned.unwrap();
    let (sought, _) = through_every_point("seek", || consumer.seek(&tps[1], StartOffset::Offset(40))).await;
    sought.unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < 60 && tokio::time::Instant::now() < deadline {
        got.extend(consumer.poll(100, Duration::from_millis(500)).await.unwrap());
    }
    let first = |p: i32| got.iter().find(|r| r.partition == p).map(|r| r.offset);
    assert_eq!(
        (first(0), first(1)),
        (Some(0), Some(40)),
        "positions after the cancelled calls"
    );
    assert_eq!(got.len(), 60);
    consumer.close().await.unwrap();

    // Admin: metadata, list_offsets and create_topic cancelled at every point, then many calls at once.
    let admin = Admin::new(ClientConfig::new(&broker.bootstrap())).unwrap();
    let (offsets, admin_cancels) = through_every_point("list_offsets", || {
        admin.list_offsets(&topic, weir::admin::OffsetSpec::Latest)
    })
    .await;
    assert_eq!(offsets.unwrap(), BTreeMap::from([(0, 50), (1, 50)]));
    let created = unique_topic("cancel-created");
    let (made, _) = through_every_point("create_topic", || admin.create_topic(&created, 1, 1)).await;
    // A cancelled attempt may have reached the controller first: then the topic exists already.
    if let Err(e) = made {
        assert!(e.to_string().contains("exists"), "{e}");
    }
    let calls = (0..20).map(|_| admin.list_offsets(&created, weir::admin::OffsetSpec::Latest));
    let all = tokio::time::timeout(WAIT, futures::future::join_all(calls))
        .await
        .expect("admin wedged");
    assert!(all.into_iter().all(|r| r.unwrap() == BTreeMap::from([(0, 0)])));
    admin.close().await.unwrap();
    assert!(
        flush_cancels + admin_cancels > 0,
        "nothing was cancelled: the test did not test anything"
    );
    eprintln!("flush: {flush_cancels} cancellations; list_offsets: {admin_cancels}");
}

/// A group member's `poll` dropped at every await point through joining, then `commit_sync`, `committed` and
/// `close` likewise: the member still joins, receives every record once, commits, and leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_member_survives_cancellation_at_every_point() {
    init_log();
    let broker = Kafka::shared();
    let topic = unique_topic("cancel-group");
    let (partitions, per_partition) = (2, 100);
    broker.create_topic(&topic, partitions);
    let mut cfg = GroupConfig::new(&broker.bootstrap(), &unique_name("cancel-group"));
    cfg.set("auto.offset.reset", "earliest").unwrap();
    cfg.set("enable.auto.commit", "false").unwrap();
    let member = GroupConsumer::new(cfg).unwrap();
    member.subscribe(&[&topic]);
    // Records arrive while the member joins and polls.
    let producing = produce_in_background(&topic, partitions, per_partition);
    let total = partitions as usize * per_partition;
    let (got, cancelled) =
        read_cancelling("group poll", total, || member.poll(9, Duration::from_millis(300))).await;
    assert!(
        cancelled > 0,
        "no poll was ever cancelled: the test did not test anything"
    );
    producing.await.unwrap();
    eprintln!("group poll: {cancelled} cancellations");
    assert_complete(&got, partitions, per_partition);

    let offsets: Vec<_> = (0..partitions)
        .map(|p| (TopicPartition::new(topic.as_str(), p), per_partition as i64))
        .collect();
    let (committed, _) = through_every_point("commit_sync", || member.commit_sync(&offsets)).await;
    committed.unwrap();
    let tps: Vec<_> = offsets.iter().map(|(tp, _)| tp.clone()).collect();
    let (read, _) = through_every_point("committed", || member.committed(&tps)).await;
    let read = read.unwrap();
    for tp in &tps {
        assert_eq!(read.get(tp), Some(&Some(per_partition as i64)), "{tp}");
    }
    let (closed, _) = through_every_point("close", || member.close()).await;
    closed.unwrap();
}
