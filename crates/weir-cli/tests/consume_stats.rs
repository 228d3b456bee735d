//! `weir consume --stats` against real Apache Kafka: with stderr not a terminal, one table of the partitions when
//! consuming ends (position, high watermark, lag, buffer, state, fetches), plain and in group mode.

#[path = "../../weir/tests/support/group.rs"]
mod group;
#[path = "support/run.rs"]
mod run;

use std::process::Output;

use run::weir;
use weir_testkit::{unique_name, unique_topic, Kafka};

const PARTITIONS: i32 = 3;
const PER_PARTITION: i64 = 40;

/// A topic of [`PARTITIONS`] partitions holding [`PER_PARTITION`] records each (values `p{P}-r{OFFSET}`); returns
/// it with the bytes of all its values.
fn topic_with_records(prefix: &str) -> (String, usize) {
    let broker = Kafka::shared();
    let topic = unique_topic(prefix);
    broker.create_topic(&topic, PARTITIONS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(group::produce_numbered(
        broker,
        &topic,
        PARTITIONS,
        0..PER_PARTITION,
    ));
    let bytes = (0..PARTITIONS)
        .flat_map(|p| (0..PER_PARTITION).map(move |i| format!("p{p}-r{i}").len()))
        .sum();
    (topic, bytes)
}

/// One partition's row of the table: the columns that are one word each.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    partition: i32,
    position: i64,
    high_watermark: i64,
    lag: i64,
    buffered: String,
    state: String,
    fetched: u64,
}

/// The rows of `topic` in the table on stderr (BUFFERED, LIMIT and DRAIN are two words each: `0 B`, `8.0 MiB`,
/// `1.2 MiB/s`).
fn rows(stderr: &str, topic: &str) -> Vec<Row> {
    let header = stderr
        .lines()
        .find(|l| l.starts_with("TOPIC"))
        .unwrap_or_else(|| panic!("no table on stderr:\n{stderr}"));
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "TOPIC",
            "PARTITION",
            "POSITION",
            "HIGH_WATERMARK",
            "LAG",
            "BUFFERED",
            "LIMIT",
            "DRAIN",
            "STATE",
            "FETCHES",
            "FETCHED"
        ]
    );
    stderr
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(topic))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(w.len(), 14, "{l}");
            Row {
                partition: w[1].parse().unwrap(),
                position: w[2].parse().unwrap(),
                high_watermark: w[3].parse().unwrap(),
                lag: w[4].parse().unwrap(),
                buffered: format!("{} {}", w[5], w[6]),
                state: w[11].to_owned(),
                fetched: w[13].parse().unwrap(),
            }
        })
        .collect()
}

fn stderr_of(o: &Output) -> String {
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "weir failed ({}): {e}", o.status);
    e
}

/// `-e --stats`: every record printed on stdout, and on stderr the totals and one row per partition read to
/// its end (unassigned by `-e` once done, so shown as it was last).
#[test]
fn the_table_at_the_end_shows_every_partition_read_to_its_end() {
    let (topic, bytes) = topic_with_records("cli-stats");
    let b = Kafka::shared().bootstrap();
    let out = weir(&["consume", "-b", &b, "-t", &topic, "-e", "--stats"], b"");
    let stderr = stderr_of(&out);
    let printed = String::from_utf8_lossy(&out.stdout).lines().count() as i64;
    assert_eq!(
        printed,
        PARTITIONS as i64 * PER_PARTITION,
        "stdout holds only the records"
    );
    let want = format!(
        "% consumed {} records ({bytes} B)",
        PARTITIONS as i64 * PER_PARTITION
    );
    assert!(stderr.contains(&want), "no {want:?} in:\n{stderr}");
    let rows = rows(&stderr, &topic);
    let expected: Vec<Row> = (0..PARTITIONS)
        .map(|partition| Row {
            partition,
            position: PER_PARTITION,
            high_watermark: PER_PARTITION,
            lag: 0,
            buffered: "0 B".into(),
            state: "unassigned".into(),
            fetched: PER_PARTITION as u64,
        })
        .collect();
    assert_eq!(rows, expected, "{stderr}");
}

/// `-G ... -e --stats -q`: the same table for the member's partitions, still assigned, and the group's line:
/// member, state, one rebalance (joining). `-q` silences the rebalance messages, not the asked-for table.
#[test]
fn group_mode_adds_the_members_place_in_the_group() {
    let (topic, _) = topic_with_records("cli-stats-g");
    let b = Kafka::shared().bootstrap();
    let group = unique_name("cli-stats-g");
    let out = weir(
        &[
            "consume",
            "-b",
            &b,
            "-G",
            &group,
            &topic,
            "-e",
            "--stats",
            "-q",
            "-X",
            "auto.offset.reset=earliest",
            "-X",
            "heartbeat.interval.ms=200",
        ],
        b"",
    );
    let stderr = stderr_of(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count() as i64,
        PARTITIONS as i64 * PER_PARTITION
    );
    assert!(!stderr.contains("rebalanced:"), "-q: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&format!("% group {group}: member ")))
        .unwrap_or_else(|| panic!("no group line in:\n{stderr}"));
    assert!(line.contains(", stable; 1 rebalances, the last took "), "{line}");
    let rows = rows(&stderr, &topic);
    assert_eq!(rows.len(), PARTITIONS as usize, "{stderr}");
    for (p, r) in rows.iter().enumerate() {
        assert_eq!(r.partition, p as i32);
        assert_eq!(
            (r.position, r.high_watermark, r.lag),
            (PER_PARTITION, PER_PARTITION, 0),
            "{r:?}"
        );
        assert_eq!(
            (r.state.as_str(), r.fetched),
            ("fetching", PER_PARTITION as u64),
            "{r:?}"
        );
    }
}
