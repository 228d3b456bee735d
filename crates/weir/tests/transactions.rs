//! Transactions on real Apache Kafka: records of committed transactions are what a read_committed consumer
//! delivers, aborted ones never are (their offsets and the transaction markers are passed over), while
//! read_uncommitted delivers both. Transactions written by the Java client (the reference).

use std::time::{Duration, Instant};

use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir_testkit::peers::java::{JavaPeer, PeerRecord, TxnStep};
use weir_testkit::{unique_name, Kafka};

/// Every value of partition 0 of `topic` that a consumer at `isolation` delivers until it reaches the
/// partition's end, with its offset; and the position then.
async fn read_all(kafka: &Kafka, topic: &str, isolation: &str) -> (Vec<(i64, String)>, i64) {
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
        if end.is_some() && position >= end {
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
