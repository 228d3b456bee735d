//! `weir bench` against real Apache Kafka: each subcommand's JSON report checked against what it did (records
//! read back, exact counts from a deterministic schedule, pause and resume counts), and bad input refused.

use std::process::Output;

use serde_json::Value;
use weir_testkit::{unique_name, unique_topic, Kafka};

#[path = "support/run.rs"]
mod run;

use run::weir;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `weir bench ARGS... --json -q` and returns its report; the command must succeed.
#[track_caller]
fn bench_json(args: &[&str]) -> Value {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "-q"]);
    let out = weir(&all, b"");
    assert!(
        out.status.success(),
        "weir {} failed ({}): {}",
        all.join(" "),
        out.status,
        stderr(&out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let report = lines
        .next()
        .unwrap_or_else(|| panic!("no report on stdout; stderr: {}", stderr(&out)));
    assert_eq!(lines.next(), None, "one JSON object on one line: {text}");
    serde_json::from_str(report).unwrap_or_else(|e| panic!("not JSON ({e}): {report}"))
}

#[track_caller]
fn num(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {report}"))
}

/// The figures every subcommand reports: present and sensible for a run that moved `records` records.
#[track_caller]
fn assert_common_figures(report: &Value, records: u64) {
    assert_eq!(report["records"], records, "{report}");
    assert!(num(report, "records_per_sec") > 0.0, "{report}");
    assert!(num(report, "mb_per_sec") > 0.0, "{report}");
    assert!(num(report, "wall_s") > 0.0, "{report}");
    assert!(num(report, "cpu_s") > 0.0, "{report}");
    assert!(
        (num(report, "cpu_s") - num(report, "cpu_user_s") - num(report, "cpu_sys_s")).abs() < 1e-6,
        "{report}"
    );
    // At least the binary and the tokio runtime are resident; a few MiB at the very least.
    assert!(num(report, "peak_rss_bytes") > (1 << 20) as f64, "{report}");
    let rate = num(report, "records_per_sec");
    let expected = records as f64 / num(report, "wall_s");
    assert!((rate - expected).abs() <= expected * 1e-9 + 1e-9, "{report}");
}

/// Lines `weir consume -e -f FORMAT` prints for the whole topic.
fn consume_all(b: &str, topic: &str, format: &str) -> Vec<String> {
    let out = weir(&["consume", "-b", b, "-t", topic, "-e", "-q", "-f", format], b"");
    assert!(out.status.success(), "weir consume failed: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn produce_counts_acknowledged_records_and_consume_reads_exactly_n() {
    let broker = Kafka::shared();
    let b = broker.bootstrap();
    let topic = unique_topic("bench-produce");

    // 500 warm-up records, then 2000 measured: the topic is created by --create and holds all 2500.
    let report = bench_json(&[
        "produce",
        "-b",
        &b,
        "-t",
        &topic,
        "--create",
        "-P",
        "3",
        "--records",
        "2000",
        "--warmup",
        "500",
        "--record-size",
        "200",
        "--key-size",
        "8",
        "-z",
        "lz4",
        "--linger-ms",
        "2",
    ]);
    assert_common_figures(&report, 2000);
    assert_eq!(report["command"], "produce");
    assert_eq!(report["warmup_records"], 500);
    assert_eq!(report["failed"], 0);
    assert_eq!(report["partitions"], 3);
    assert_eq!(report["payload_bytes"], 2000 * 208);
    assert_eq!(report["compression"], "lz4");
    assert!(num(&report, "batches") >= 1.0, "{report}");

    // Every record arrived once, with a value of 200 letters and digits and a key of 8, spread over the
    // partitions by their keys.
    let lines = consume_all(&b, &topic, "%p %K %S %s\\n");
    assert_eq!(lines.len(), 2500);
    let mut per_partition = [0; 3];
    for l in &lines {
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!(f.len(), 4, "{l}");
        assert_eq!((f[1], f[2]), ("8", "200"), "{l}");
        assert!(f[3].bytes().all(|c| c.is_ascii_alphanumeric()), "{l}");
        per_partition[f[0].parse::<usize>().unwrap()] += 1;
    }
    assert!(per_partition.iter().all(|&n| n > 0), "{per_partition:?}");

    // Reading it back: 500 warm-up records, then exactly the 2000 asked for (the topic holds no more).
    let report = bench_json(&[
        "consume",
        "-b",
        &b,
        "-t",
        &topic,
        "--records",
        "2000",
        "--warmup",
        "500",
    ]);
    assert_common_figures(&report, 2000);
    assert_eq!(report["command"], "consume");
    assert_eq!(report["warmup_records"], 500);
    assert_eq!(report["payload_bytes"], 2000 * 208);
    assert_eq!(report["partitions"], 3);

    // The same as a group member, without warm-up: every record of the topic.
    let group = unique_name("bench-group");
    let report = bench_json(&[
        "consume",
        "-b",
        &b,
        "-t",
        &topic,
        "--group",
        &group,
        "--records",
        "2500",
        "--warmup",
        "0",
        "--fetch-max-wait-ms",
        "100",
    ]);
    assert_common_figures(&report, 2500);
    assert_eq!(report["group"], group.as_str());
    assert_eq!(report["warmup_records"], 0);
}

#[test]
fn produce_and_consume_by_duration() {
    let broker = Kafka::shared();
    let b = broker.bootstrap();
    let topic = unique_topic("bench-duration");
    let report = bench_json(&[
        "produce",
        "-b",
        &b,
        "-t",
        &topic,
        "--create",
        "--duration",
        "1s",
        "--warmup",
        "100ms",
        "--record-size",
        "64",
    ]);
    let produced = report["records"].as_u64().unwrap();
    assert!(produced > 0, "{report}");
    // The run ends once the last record sent before the deadline is acknowledged.
    let wall = num(&report, "wall_s");
    assert!((1.0..10.0).contains(&wall), "{report}");
    let warm = report["warmup_records"].as_u64().unwrap();
    assert_eq!(consume_all(&b, &topic, "%S\\n").len() as u64, produced + warm);
}

#[test]
fn latency_counts_the_schedule_exactly_and_orders_percentiles() {
    let broker = Kafka::shared();
    let b = broker.bootstrap();
    let topic = unique_topic("bench-latency");
    // 200 records/s for 2 s after a 0.5 s warm-up: records 100..500 of the schedule are measured. The schedule
    // is fixed in advance (one record every 5 ms from the start), so exactly 400 are sent, and the command
    // exits 1 unless every acknowledged record is read back: the count is exact, not approximate.
    let report = bench_json(&[
        "latency",
        "-b",
        &b,
        "-t",
        &topic,
        "--create",
        "-P",
        "2",
        "--rate",
        "200",
        "--duration",
        "2s",
        "--warmup",
        "500ms",
        "--record-size",
        "64",
        "--fetch-max-wait-ms",
        "50",
    ]);
    assert_common_figures(&report, 400);
    assert_eq!(report["command"], "latency");
    assert_eq!(report["warmup_records"], 100);
    assert_eq!(report["sent"], 400);
    assert_eq!(report["acked"], 400);
    assert_eq!(
        (report["failed"].clone(), report["missing"].clone()),
        (0.into(), 0.into())
    );
    // The measured part spans the schedule's 2 s: its last record is due 1.995 s after the first, and is read
    // some milliseconds later (bounded generously: this is a shared test machine).
    let wall = num(&report, "wall_s");
    assert!((1.995..4.0).contains(&wall), "{report}");
    for prefix in ["e2e", "ack"] {
        let p: Vec<f64> = ["p50", "p90", "p99", "p99_9", "max"]
            .iter()
            .map(|q| num(&report, &format!("{prefix}_{q}_us")))
            .collect();
        assert!(p[0] > 0.0, "{prefix}: {report}");
        assert!(
            p.windows(2).all(|w| w[0] <= w[1]),
            "{prefix} percentiles in order: {p:?}"
        );
    }
    // A record is read after the broker wrote it: its end-to-end latency is at least a network round trip.
    assert!(num(&report, "e2e_p50_us") >= 10.0, "{report}");
}

#[test]
fn pause_resume_pauses_resumes_and_delivers_every_record_in_order() {
    let broker = Kafka::shared();
    let b = broker.bootstrap();
    let topic = unique_topic("bench-pause");
    let fill = bench_json(&[
        "produce",
        "-b",
        &b,
        "-t",
        &topic,
        "--create",
        "-P",
        "2",
        "--records",
        "3000",
        "--warmup",
        "0",
        "--record-size",
        "100",
        "--key-size",
        "4",
    ]);
    assert_eq!(fill["records"], 3000);

    // Buffers of 50 records per partition: the first poll alone (up to 1000 records of a topic holding 3000)
    // fills one, so partitions are paused, and each pause is followed by a resume once a worker drains it.
    let report = bench_json(&[
        "pause-resume",
        "-b",
        &b,
        "-t",
        &topic,
        "--records",
        "3000",
        "--warmup",
        "0",
        "--workers",
        "2",
        "--app-buffer",
        "50",
        "--resume-below",
        "25",
        "--work-rounds",
        "1",
    ]);
    assert_common_figures(&report, 3000);
    assert_eq!(report["command"], "pause-resume");
    assert_eq!(report["processed_total"], 3000);
    assert_eq!(report["order_violations"], 0);
    assert_eq!(report["partitions"], 2);
    let (pauses, resumes) = (num(&report, "pauses"), num(&report, "resumes"));
    assert!(pauses > 0.0, "{report}");
    assert!(resumes > 0.0, "{report}");
    assert!(
        resumes <= pauses,
        "a partition is resumed only after a pause: {report}"
    );
    assert!(num(&report, "peak_buffered") >= 50.0, "{report}");
}

#[test]
fn bad_input_is_refused_with_the_right_exit_code() {
    let broker = Kafka::shared();
    let b = broker.bootstrap();
    let missing = unique_topic("bench-missing");

    // A topic that does not exist, without --create: exit 1, and the message says what to do.
    for sub in [
        vec!["bench", "produce", "-b", &b, "-t", &missing, "--records", "10"],
        vec!["bench", "consume", "-b", &b, "-t", &missing, "--records", "10"],
        vec![
            "bench",
            "latency",
            "-b",
            &b,
            "-t",
            &missing,
            "--rate",
            "10",
            "--duration",
            "1s",
        ],
        vec![
            "bench",
            "pause-resume",
            "-b",
            &b,
            "-t",
            &missing,
            "--records",
            "10",
        ],
    ] {
        let out = weir(&sub, b"");
        assert_eq!(out.status.code(), Some(1), "{sub:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("topic \"{missing}\" does not exist")),
            "{sub:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "no report without a run: {sub:?}");
    }
    let out = weir(
        &["bench", "produce", "-b", &b, "-t", &missing, "--records", "10"],
        b"",
    );
    assert!(stderr(&out).contains("--create"), "{}", stderr(&out));
    // ... and the topic was not created by asking.
    assert!(!consume_topics(&b).contains(&missing));

    // Usage errors (exit 2), refused before any connection.
    let usage: [&[&str]; 7] = [
        &[
            "bench",
            "produce",
            "-t",
            "t",
            "--records",
            "10",
            "--record-size",
            "2000000000",
        ],
        &[
            "bench",
            "produce",
            "-t",
            "t",
            "--records",
            "10",
            "--record-size",
            "2000000",
            "--key-size",
            "0",
        ],
        &["bench", "latency", "-t", "t", "--rate", "0", "--duration", "1s"],
        &[
            "bench",
            "latency",
            "-t",
            "t",
            "--rate",
            "1",
            "--duration",
            "100ms",
        ],
        &["bench", "produce", "-t", "t"],
        &[
            "bench",
            "produce",
            "-t",
            "t",
            "--records",
            "1",
            "--duration",
            "1s",
        ],
        &[
            "bench",
            "pause-resume",
            "-t",
            "t",
            "--records",
            "1",
            "--app-buffer",
            "10",
            "--resume-below",
            "20",
        ],
    ];
    for args in usage {
        // An address nothing listens on: a usage error must not need the cluster.
        let mut with_broker = args.to_vec();
        with_broker.extend_from_slice(&["-b", "127.0.0.1:1"]);
        let out = weir(&with_broker, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = weir(
        &[
            "bench",
            "produce",
            "-b",
            "127.0.0.1:1",
            "-t",
            "t",
            "--records",
            "1",
            "--record-size",
            "2000000000",
        ],
        b"",
    );
    assert!(stderr(&out).contains("--record-size"), "{}", stderr(&out));
    let out = weir(
        &[
            "bench",
            "produce",
            "-b",
            "127.0.0.1:1",
            "-t",
            "t",
            "--records",
            "1",
            "--record-size",
            "2000000",
        ],
        b"",
    );
    assert!(stderr(&out).contains("max.request.size"), "{}", stderr(&out));
}

/// Topic names of the cluster, by `weir topics list`.
fn consume_topics(b: &str) -> Vec<String> {
    let out = weir(&["topics", "list", "-b", b], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}
