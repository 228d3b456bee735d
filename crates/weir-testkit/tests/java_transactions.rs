//! The Java peer's transactional producer (`produce-txn`) on the shared single-node cluster, read back by the Java
//! consumer at both isolation levels. The offsets asserted here are the broker's layout of transactions in a
//! partition: each commit or abort marker takes one offset after its transaction's records.

use std::time::Duration;

use weir_testkit::peers::java::{ConsumedRecord, JavaPeer, PeerRecord, TxnStep};
use weir_testkit::{unique_name, Kafka};

const READ_COMMITTED: &[&str] = &["--config", "isolation.level=read_committed"];
const READ_UNCOMMITTED: &[&str] = &["--config", "isolation.level=read_uncommitted"];
const TIMEOUT: Duration = Duration::from_secs(30);

fn record(value: &str) -> TxnStep {
    TxnStep::Record(PeerRecord::new(value.as_bytes()))
}

/// (offset, value) of what was read.
fn read(records: &[ConsumedRecord]) -> Vec<(i64, String)> {
    records
        .iter()
        .map(|r| {
            assert_eq!(r.partition, 0);
            (
                r.offset,
                String::from_utf8(r.value.clone().expect("a value")).expect("UTF-8"),
            )
        })
        .collect()
}

fn owned(v: &[(i64, &str)]) -> Vec<(i64, String)> {
    v.iter().map(|(o, s)| (*o, s.to_string())).collect()
}

#[test]
fn committed_and_aborted_transactions_by_isolation_level() {
    let java = JavaPeer::require();
    let kafka = Kafka::shared();
    let bootstrap = kafka.bootstrap();
    let topic = unique_name("java-txn");
    kafka.create_topic(&topic, 1);

    use TxnStep::{Abort, Begin, Commit};
    let steps = [
        Begin,
        record("c1"),
        record("c2"),
        record("c3"),
        Commit,
        Begin,
        record("a1"),
        record("a2"),
        Abort,
        Begin,
        record("c4"),
        Commit,
    ];
    let acks = java.produce_transactions(&bootstrap, &topic, &unique_name("java-txn-id"), &steps, &[]);
    let offsets: Vec<(i32, i64)> = acks.iter().map(|a| (a.partition, a.offset)).collect();
    eprintln!("acknowledged (partition, offset) of c1 c2 c3 | a1 a2 | c4: {offsets:?}");
    // Records 0..=2, commit marker 3, aborted records 4 and 5, abort marker 6, record 7 (commit marker 8).
    assert_eq!(offsets, [(0, 0), (0, 1), (0, 2), (0, 4), (0, 5), (0, 7)]);

    let committed = read(&java.consume_with(&bootstrap, &topic, 4, None, TIMEOUT, READ_COMMITTED));
    eprintln!("read_committed: {committed:?}");
    // c4 comes after the aborted records in the partition, so reading it fourth shows they were skipped.
    assert_eq!(committed, owned(&[(0, "c1"), (1, "c2"), (2, "c3"), (7, "c4")]));

    let all = read(&java.consume_with(&bootstrap, &topic, 6, None, TIMEOUT, READ_UNCOMMITTED));
    eprintln!("read_uncommitted: {all:?}");
    assert_eq!(
        all,
        owned(&[(0, "c1"), (1, "c2"), (2, "c3"), (4, "a1"), (5, "a2"), (7, "c4")])
    );
}

#[test]
fn a_transaction_left_open_is_aborted_by_the_next_producer_with_its_id() {
    let java = JavaPeer::require();
    let kafka = Kafka::shared();
    let bootstrap = kafka.bootstrap();
    let topic = unique_name("java-txn-open");
    kafka.create_topic(&topic, 1);
    let id = unique_name("java-txn-open-id");

    use TxnStep::{Begin, Commit};
    // The peer exits with the second transaction open.
    let first = java.produce_transactions(
        &bootstrap,
        &topic,
        &id,
        &[Begin, record("c1"), Commit, Begin, record("o1")],
        &[],
    );
    let first: Vec<i64> = first.iter().map(|a| a.offset).collect();
    eprintln!("first run, offsets of c1 | o1 (left open): {first:?}");
    assert_eq!(first, [0, 2]);

    // The open transaction's record is in the log; read_committed stops before it (only c1 is there to read).
    let all = read(&java.consume_with(&bootstrap, &topic, 2, None, TIMEOUT, READ_UNCOMMITTED));
    assert_eq!(all, owned(&[(0, "c1"), (2, "o1")]));
    let committed = read(&java.consume_with(&bootstrap, &topic, 1, None, TIMEOUT, READ_COMMITTED));
    assert_eq!(committed, owned(&[(0, "c1")]));

    // initTransactions with the same id aborts it (marker at 3) before the new transaction.
    let second = java.produce_transactions(&bootstrap, &topic, &id, &[Begin, record("c2"), Commit], &[]);
    let second: Vec<i64> = second.iter().map(|a| a.offset).collect();
    eprintln!("second run, offset of c2: {second:?}");
    assert_eq!(second, [4]);
    let committed = read(&java.consume_with(&bootstrap, &topic, 2, None, TIMEOUT, READ_COMMITTED));
    eprintln!("read_committed after the second run: {committed:?}");
    assert_eq!(committed, owned(&[(0, "c1"), (4, "c2")]));
}

#[test]
fn a_record_outside_a_transaction_fails_with_the_client_error() {
    let java = JavaPeer::require();
    let kafka = Kafka::shared();
    let bootstrap = kafka.bootstrap();
    let topic = unique_name("java-txn-bad");
    kafka.create_topic(&topic, 1);
    let err = std::panic::catch_unwind(|| {
        java.produce_transactions(
            &bootstrap,
            &topic,
            &unique_name("java-txn-bad-id"),
            &[record("x")],
            &[],
        )
    })
    .expect_err("a send outside a transaction must fail");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("line 1 (a record) failed") && msg.contains("IllegalStateException"),
        "{msg}"
    );
}
