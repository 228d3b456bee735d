//! Transactions on real Apache Kafka: records of committed transactions are what a read_committed consumer
//! delivers, aborted ones never are (their offsets and the transaction markers are passed over), while
//! read_uncommitted delivers both, for transactions written by the Java client (the reference) and by weir;
//! fencing of an older producer with the same transactional id; an abort after a failed write; offsets
//! committed with a transaction (consume-transform-produce).

use std::time::{Duration, Instant};

use weir::config::ProducerConfig;
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::error::KafkaCode;
use weir::group::{GroupConfig, GroupConsumer};
use weir::{Error, Producer, ProducerRecord};
use weir_testkit::peers::java::{JavaPeer, PeerRecord, TxnStep};
use weir_testkit::{unique_name, Kafka};

/// Every value of partition 0 of `topic` that a consumer at `isolation` delivers until it reaches the
/// partition's end, with its offset; and the position then.
async fn read_all(kafka: &Kafka, topic: &str, isolation: &str) -> (Vec<(i64, String)>, i64) {
    // The log's end now, transaction markers included. A commit or abort returns once the coordinator has
    // logged it; its markers reach the partitions after that, and until they do the last stable offset stays
    // before the transaction: reading to it alone could end before the records are visible.
    let admin = weir::Admin::new(weir::config::ClientConfig::new(&kafka.bootstrap())).unwrap();
    let log_end = admin
        .list_offsets(topic, weir::admin::OffsetSpec::Latest)
        .await
        .unwrap()[&0];
    admin.close().await.unwrap();
    let mut cfg = ConsumerConfig::new(&kafka.bootstrap());
    cfg.set("isolation.level", isolation).unwrap();
    let consumer = Consumer::new(cfg).unwrap();
    let tp = TopicPartition::new(topic, 0);
    consumer
        .assign(&[(tp.clone(), StartOffset::Earliest)])
        .await
        .unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for r in consumer.poll(1000, Duration::from_millis(100)).await.unwrap() {
            got.push((r.offset, String::from_utf8(r.value.unwrap().to_vec()).unwrap()));
        }
        let end = consumer.high_watermark(&tp);
        let position = consumer.position(&tp);
        if end.is_some() && position >= end && position >= Some(log_end) {
            consumer.close().await.unwrap();
            return (got, position.unwrap());
        }
        assert!(
            Instant::now() < deadline,
            "{isolation}: at {position:?} of {end:?}, got {got:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_delivers_committed_transactions_only() {
    let kafka = Kafka::shared();
    let java = JavaPeer::require();
    let topic = unique_name("txn-read");
    kafka.create_topic(&topic, 1);
    let rec = |v: &str| TxnStep::Record(PeerRecord::new(v.as_bytes()).partition(0));
    let steps = [
        TxnStep::Begin,
        rec("c1"),
        rec("c2"),
        rec("c3"),
        TxnStep::Commit,
        TxnStep::Begin,
        rec("a1"),
        rec("a2"),
        TxnStep::Abort,
        TxnStep::Begin,
        rec("c4"),
        TxnStep::Commit,
    ];
    let txn_id = unique_name("txn");
    let bootstrap = kafka.bootstrap();
    tokio::task::block_in_place(|| java.produce_transactions(&bootstrap, &topic, &txn_id, &steps, &[]));

    let (committed, end) = read_all(kafka, &topic, "read_committed").await;
    let values: Vec<&str> = committed.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, ["c1", "c2", "c3", "c4"]);
    // Offsets: c1-c3 at 0-2, a commit marker at 3, a1-a2 at 4-5, an abort marker at 6, c4 at 7, a marker at 8.
    let offsets: Vec<i64> = committed.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, [0, 1, 2, 7]);
    assert_eq!(end, 9, "the position passes the last marker");

    let (everything, end) = read_all(kafka, &topic, "read_uncommitted").await;
    let values: Vec<&str> = everything.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, ["c1", "c2", "c3", "a1", "a2", "c4"]);
    assert_eq!(end, 9);
}

fn transactional(kafka: &Kafka, id: &str) -> Producer {
    let mut cfg = ProducerConfig::new(&kafka.bootstrap());
    cfg.set("transactional.id", id).unwrap();
    cfg.set("transaction.timeout.ms", "10000").unwrap();
    Producer::new(cfg).unwrap()
}

/// Sends `values` to partition 0 of `topic` and waits for every acknowledgement.
async fn send_all(p: &Producer, topic: &str, values: &[&str]) {
    let mut acks = Vec::new();
    for v in values {
        acks.push(
            p.send(ProducerRecord::new(topic, v.to_string()).partition(0))
                .await
                .unwrap(),
        );
    }
    for a in acks {
        a.await.unwrap();
    }
}

/// weir's transactions: a commit is visible to read_committed consumers (weir's and Java's), an abort never
/// is, read_uncommitted sees both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weirs_committed_transactions_are_visible_and_aborted_ones_never() {
    let kafka = Kafka::shared();
    let topic = unique_name("txn-weir");
    kafka.create_topic(&topic, 1);
    let p = transactional(kafka, &unique_name("tid"));
    p.init_transactions().await.unwrap();
    p.begin_transaction().unwrap();
    send_all(&p, &topic, &["c1", "c2", "c3"]).await;
    p.commit_transaction().await.unwrap();
    p.begin_transaction().unwrap();
    send_all(&p, &topic, &["a1", "a2"]).await;
    p.abort_transaction().await.unwrap();
    p.begin_transaction().unwrap();
    send_all(&p, &topic, &["c4"]).await;
    p.commit_transaction().await.unwrap();
    p.close().await.unwrap();

    let (committed, _) = read_all(kafka, &topic, "read_committed").await;
    let values: Vec<&str> = committed.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, ["c1", "c2", "c3", "c4"]);
    let (everything, _) = read_all(kafka, &topic, "read_uncommitted").await;
    assert_eq!(everything.len(), 6);
    let java = JavaPeer::require();
    let bootstrap = kafka.bootstrap();
    let read = tokio::task::block_in_place(|| {
        java.consume_with(
            &bootstrap,
            &topic,
            4,
            None,
            Duration::from_secs(60),
            &["--config", "isolation.level=read_committed"],
        )
    });
    let read: Vec<String> = read
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    assert_eq!(
        read,
        ["c1", "c2", "c3", "c4"],
        "the Java client at read_committed"
    );
}

/// Two producers with one transactional id: the older is fenced, its open transaction aborted, and every later
/// call it makes returns the fencing error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_with_the_same_id_fences_the_first() {
    let kafka = Kafka::shared();
    let topic = unique_name("txn-fence");
    kafka.create_topic(&topic, 1);
    let id = unique_name("tid");
    let old = transactional(kafka, &id);
    old.init_transactions().await.unwrap();
    old.begin_transaction().unwrap();
    send_all(&old, &topic, &["zombie-1", "zombie-2"]).await;

    let new = transactional(kafka, &id);
    new.init_transactions().await.unwrap();
    let fenced = |e: &Error| {
        matches!(
            e.kafka_code(),
            Some(KafkaCode::ProducerFenced | KafkaCode::InvalidProducerEpoch)
        )
    };
    let e = old.commit_transaction().await.unwrap_err();
    assert!(fenced(&e), "{e:?}");
    let later = match old.send(ProducerRecord::new(topic.as_str(), "zombie-3")).await {
        Ok(_) => panic!("a fenced producer sent"),
        Err(e) => e,
    };
    assert!(fenced(&later), "{later:?}");
    assert!(fenced(&old.begin_transaction().unwrap_err()));
    assert!(fenced(&old.abort_transaction().await.unwrap_err()));

    new.begin_transaction().unwrap();
    send_all(&new, &topic, &["new-1"]).await;
    new.commit_transaction().await.unwrap();
    let (committed, _) = read_all(kafka, &topic, "read_committed").await;
    let values: Vec<&str> = committed.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, ["new-1"], "the zombie's transaction was aborted");
    old.close().await.ok();
    new.close().await.unwrap();
}

/// A write the broker refuses (a record without a key on a compacted topic) fails the transaction: commit
/// returns the error, abort succeeds, and the next transaction commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_after_a_failed_write_leaves_the_producer_usable() {
    let kafka = Kafka::shared();
    let (good, compacted) = (unique_name("txn-ok"), unique_name("txn-compact"));
    kafka.create_topic(&good, 1);
    kafka.create_topic_with(&compacted, 1, &[("cleanup.policy", "compact")]);
    let p = transactional(kafka, &unique_name("tid"));
    p.init_transactions().await.unwrap();
    p.begin_transaction().unwrap();
    send_all(&p, &good, &["lost-1"]).await;
    let refused = p
        .send(ProducerRecord::new(compacted.as_str(), "no key").partition(0))
        .await
        .unwrap()
        .await
        .unwrap_err();
    assert!(!refused.is_retriable(), "{refused:?}");
    let e = p.commit_transaction().await.unwrap_err();
    assert_eq!(e.kafka_code(), refused.kafka_code(), "{e:?}");
    p.abort_transaction().await.unwrap();
    p.begin_transaction().unwrap();
    send_all(&p, &good, &["kept-1"]).await;
    p.commit_transaction().await.unwrap();
    p.close().await.unwrap();
    let (committed, _) = read_all(kafka, &good, "read_committed").await;
    let values: Vec<&str> = committed.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, ["kept-1"]);
}

/// Consume-transform-produce: the consumer's offsets are committed with the transaction's records, for its
/// group, only when it commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_commit_with_the_transaction() {
    let kafka = Kafka::shared();
    let (input, output, group) = (
        unique_name("txn-in"),
        unique_name("txn-out"),
        unique_name("txn-g"),
    );
    kafka.create_topic(&input, 1);
    kafka.create_topic(&output, 1);
    let plain = Producer::new(ProducerConfig::new(&kafka.bootstrap())).unwrap();
    send_all(&plain, &input, &["x1", "x2", "x3", "x4"]).await;
    plain.close().await.unwrap();

    let mut gc = GroupConfig::new(&kafka.bootstrap(), &group);
    gc.set("auto.offset.reset", "earliest").unwrap();
    gc.set("enable.auto.commit", "false").unwrap();
    let member = GroupConsumer::new(gc).unwrap();
    member.subscribe(&[input.as_str()]);
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while records.len() < 4 && Instant::now() < deadline {
        records.extend(member.poll(100, Duration::from_millis(200)).await.unwrap());
    }
    assert_eq!(records.len(), 4);
    let tp = TopicPartition::new(input.as_str(), 0);
    let p = transactional(kafka, &unique_name("tid"));
    p.init_transactions().await.unwrap();

    // Two records copied, then aborted: nothing committed.
    p.begin_transaction().unwrap();
    send_all(&p, &output, &["X1", "X2"]).await;
    p.send_offsets_to_transaction(&[(tp.clone(), 2)], &member.group_metadata())
        .await
        .unwrap();
    p.abort_transaction().await.unwrap();
    let committed = member.committed(std::slice::from_ref(&tp)).await.unwrap();
    assert_eq!(
        committed.get(&tp).copied().flatten(),
        None,
        "offsets of an aborted transaction"
    );

    // All four copied and committed with the offset after them.
    p.begin_transaction().unwrap();
    send_all(&p, &output, &["X1", "X2", "X3", "X4"]).await;
    p.send_offsets_to_transaction(&[(tp.clone(), 4)], &member.group_metadata())
        .await
        .unwrap();
    p.commit_transaction().await.unwrap();
    // The coordinator writes the transaction's markers after EndTxn returns: the offset becomes stable (and
    // visible to OffsetFetch) a moment later.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let committed = member.committed(std::slice::from_ref(&tp)).await.unwrap();
        match committed.get(&tp).copied().flatten() {
            Some(4) => break,
            other => assert!(Instant::now() < deadline, "committed: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (copied, _) = read_all(kafka, &output, "read_committed").await;
    let values: Vec<&str> = copied.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, ["X1", "X2", "X3", "X4"]);
    p.close().await.unwrap();
    member.close().await.unwrap();
}
