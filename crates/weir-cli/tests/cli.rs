//! End-to-end tests of the `weir` binary against real Apache Kafka, checked with kcat (librdkafka 2.16).

use std::process::{Command, Output, Stdio};

use weir_testkit::{unique_topic, Kafka, Kcat};

#[path = "support/run.rs"]
mod run;

use run::{weir, Watchdog};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn assert_ok(o: &Output) {
    assert!(o.status.success(), "weir failed ({}): {}", o.status, stderr(o));
}

/// Lines of `text`, sorted (for comparing multi-partition output whose interleaving is not defined).
fn sorted_lines(text: &[u8]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = text.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    v.sort();
    v
}

#[test]
fn produce_keyed_lines_read_back_exactly_by_kcat() {
    let Some(kcat) = Kcat::require_or_skip() else {
        return;
    };
    let broker = Kafka::shared();
    let topic = unique_topic("cli-keyed");
    broker.create_topic(&topic, 1);
    let b = broker.bootstrap();

    let mut input = Vec::new();
    let mut expected = Vec::new();
    for i in 0..1000 {
        // Every 7th line has no delimiter: null key (%K = -1), whole line is the value.
        if i % 7 == 0 {
            input.extend_from_slice(format!("no-delimiter {i}\n").as_bytes());
            expected.extend_from_slice(format!("-1||no-delimiter {i}\n").as_bytes());
        } else {
            // Only the first ':' splits: the value keeps the rest.
            input.extend_from_slice(format!("key{i}:value:{i}\n").as_bytes());
            expected.extend_from_slice(format!("{}|key{i}|value:{i}\n", format!("key{i}").len()).as_bytes());
        }
    }
    let out = weir(&["produce", "-b", &b, "-t", &topic, "-K", ":"], &input);
    assert_ok(&out);
    assert!(out.stdout.is_empty());

    let got = kcat.consume_all(&b, &topic, "%K|%k|%s\n", &[]);
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected));
}

#[test]
fn produce_spreads_over_partitions_keeps_order_and_edge_lines() {
    let Some(kcat) = Kcat::require_or_skip() else {
        return;
    };
    let broker = Kafka::shared();
    let topic = unique_topic("cli-multi");
    broker.create_topic(&topic, 3);
    let b = broker.bootstrap();

    // Empty lines are skipped (as in kcat); a missing final newline still ends a record; ":v" has an empty
    // key, "k:" an empty value, and a multi-byte delimiter splits at its first occurrence.
    let input = b"k1::v1\n\n::v-empty-key\nk2::\nk3::a::b\nlast-without-newline";
    let out = weir(&["produce", "-b", &b, "-t", &topic, "-K", "::"], input);
    assert_ok(&out);
    let got = kcat.consume_all(&b, &topic, "%K|%k|%S|%s\n", &[]);
    let expected = b"2|k1|2|v1\n0||11|v-empty-key\n2|k2|0|\n2|k3|4|a::b\n-1||20|last-without-newline\n";
    assert_eq!(sorted_lines(&got), sorted_lines(expected));

    // Order is kept per partition: 3000 unkeyed records spread over partitions, offsets dense.
    let topic = unique_topic("cli-order");
    broker.create_topic(&topic, 3);
    let input: Vec<u8> = (0..3000).flat_map(|i| format!("{i}\n").into_bytes()).collect();
    assert_ok(&weir(&["produce", "-b", &b, "-t", &topic], &input));
    let got = kcat.consume_all(&b, &topic, "%p %o %s\n", &[]);
    let mut per_partition: Vec<Vec<(i64, u32)>> = vec![Vec::new(); 3];
    for line in String::from_utf8(got).unwrap().lines() {
        let f: Vec<&str> = line.split(' ').collect();
        per_partition[f[0].parse::<usize>().unwrap()].push((f[1].parse().unwrap(), f[2].parse().unwrap()));
    }
    let mut all: Vec<u32> = Vec::new();
    for p in &per_partition {
        let offsets: Vec<i64> = p.iter().map(|r| r.0).collect();
        assert_eq!(
            offsets,
            (0..p.len() as i64).collect::<Vec<_>>(),
            "offsets dense from 0"
        );
        assert!(
            p.windows(2).all(|w| w[0].1 < w[1].1),
            "send order kept within a partition"
        );
        all.extend(p.iter().map(|r| r.1));
    }
    all.sort();
    assert_eq!(all, (0..3000).collect::<Vec<_>>());

    // Keyed records go where the Java client's murmur2 partitioner puts them.
    let input: Vec<u8> = (0..300)
        .flat_map(|i| format!("key-{i}|v\n").into_bytes())
        .collect();
    assert_ok(&weir(&["produce", "-b", &b, "-t", &topic, "-K", "|"], &input));
    let got = kcat.consume_all(&b, &topic, "%p %k\n", &[]);
    let mut keyed = 0;
    for line in String::from_utf8(got).unwrap().lines() {
        let (p, k) = line.split_once(' ').unwrap();
        if !k.is_empty() {
            keyed += 1;
            let want = weir::producer::partitioner::partition_for_key(k.as_bytes(), 3);
            assert_eq!(p.parse::<i32>().unwrap(), want, "key {k}");
        }
    }
    assert_eq!(keyed, 300);
}

#[test]
fn produce_with_each_codec_partition_and_headers() {
    let Some(kcat) = Kcat::require_or_skip() else {
        return;
    };
    let broker = Kafka::shared();
    let b = broker.bootstrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = unique_topic(&format!("cli-{codec}"));
        broker.create_topic(&topic, 2);
        let input: Vec<u8> = (0..500)
            .flat_map(|i| format!("k{i}\t{codec} record {i} {}\n", "x".repeat(i % 50)).into_bytes())
            .collect();
        let out = weir(
            &[
                "produce", "-b", &b, "-t", &topic, "-p", "1", "-K", r"\t", "-z", codec, "-H", "src=weir",
                "-H", "n=1",
            ],
            &input,
        );
        assert_ok(&out);
        let got = kcat.consume_all(&b, &topic, "%p|%k=%s|%h\n", &[]);
        let expected: Vec<u8> = (0..500)
            .flat_map(|i| {
                format!("1|k{i}={codec} record {i} {}|src=weir,n=1\n", "x".repeat(i % 50)).into_bytes()
            })
            .collect();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "codec {codec}"
        );
    }
}

#[test]
fn produce_to_missing_topic_fails_clearly() {
    let broker = Kafka::shared();
    let topic = unique_topic("cli-missing");
    // A topic the cluster does not know is waited for (max.block.ms, 60 s by default), then refused.
    let out = weir(
        &[
            "produce",
            "-b",
            &broker.bootstrap(),
            "-t",
            &topic,
            "-X",
            "max.block.ms=300",
        ],
        b"a\nb\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with("weir: "), "{err}");
    assert!(err.contains(&topic) && err.contains("unknown topic"), "{err}");
}

#[test]
fn produce_to_missing_partition_fails() {
    let broker = Kafka::shared();
    let topic = unique_topic("cli-nopart");
    broker.create_topic(&topic, 2);
    let out = weir(
        &["produce", "-b", &broker.bootstrap(), "-t", &topic, "-p", "7"],
        b"a\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains(&topic), "{}", stderr(&out));
}

#[test]
fn failed_records_are_counted_and_exit_nonzero() {
    let Some(kcat) = Kcat::require_or_skip() else {
        return;
    };
    let broker = Kafka::shared();
    let topic = unique_topic("cli-toolarge");
    broker.create_topic(&topic, 1);
    let b = broker.bootstrap();
    let big = "y".repeat(4000);
    let input = format!("small1\n{big}\nsmall2\n{big}\nsmall3\n");
    let out = weir(
        &["produce", "-b", &b, "-t", &topic, "-X", "message.max.bytes=1000"],
        input.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with("weir: 2 of 5 records failed: "), "{err}");
    assert!(err.contains("exceeds the maximum"), "{err}");
    // The records that fit were still delivered.
    assert_eq!(
        kcat.consume_all(&b, &topic, "%s\n", &[]),
        b"small1\nsmall2\nsmall3\n"
    );
}

#[test]
fn bad_configuration_is_a_usage_error() {
    let broker = Kafka::shared();
    let b = broker.bootstrap();
    let topic = unique_topic("cli-badcfg");
    broker.create_topic(&topic, 1);
    for (args, needle) in [
        (vec!["-X", "no.such.property=1"], "no.such.property"),
        (vec!["-X", "linger.ms"], "KEY=VALUE"),
        (vec!["-X", "linger.ms=soon"], "linger.ms"),
        (vec!["-z", "brotli"], "brotli"),
    ] {
        let mut full = vec!["produce", "-b", &b, "-t", &topic];
        full.extend(args.iter().copied());
        let out = weir(&full, b"a\n");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with("weir: ") && stderr(&out).contains(needle),
            "{}",
            stderr(&out)
        );
    }
    let out = weir(&["topics", "list", "-b", &b, "-X", "nope=1"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
}

#[test]
fn empty_input_produces_nothing_and_succeeds() {
    let broker = Kafka::shared();
    let topic = unique_topic("cli-empty");
    broker.create_topic(&topic, 1);
    let out = weir(&["produce", "-b", &broker.bootstrap(), "-t", &topic, "-q"], b"");
    assert_ok(&out);
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

#[test]
fn topics_create_list_metadata_delete_round_trip() {
    let broker = Kafka::shared();
    let b = broker.bootstrap();
    let topic = unique_topic("cli-admin");

    assert_ok(&weir(&["topics", "create", &topic, "-P", "4", "-b", &b], b""));
    let out = weir(&["topics", "list", "-b", &b], b"");
    assert_ok(&out);
    let names = String::from_utf8(out.stdout).unwrap();
    assert!(names.lines().any(|l| l == topic), "{names}");

    // Creating it again fails with the broker's reason.
    let out = weir(&["topics", "create", &topic, "-b", &b], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("TopicAlreadyExists"), "{}", stderr(&out));

    let out = weir(&["metadata", "-b", &b, "-t", &topic], b"");
    assert_ok(&out);
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.contains(" 1 brokers:") && md.contains("(controller)"), "{md}");
    assert!(
        md.contains(&format!("topic \"{topic}\" with 4 partitions:")),
        "{md}"
    );
    for p in 0..4 {
        assert!(md.contains(&format!("    partition {p}, leader ")), "{md}");
    }

    assert_ok(&weir(&["topics", "delete", &topic, "-b", &b], b""));
    let out = weir(&["topics", "list", "-b", &b], b"");
    assert_ok(&out);
    let names = String::from_utf8(out.stdout).unwrap();
    assert!(!names.lines().any(|l| l == topic), "{names}");
}

#[test]
fn brokers_come_from_the_environment() {
    let broker = Kafka::shared();
    let topic = unique_topic("cli-env");
    broker.create_topic(&topic, 1);
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["topics", "list"])
        .env("WEIR_BROKERS", broker.bootstrap())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).lines().any(|l| l == topic));
}

// ---------------------------------------------------------------------------------------------------------
// consume
// ---------------------------------------------------------------------------------------------------------

fn consume(b: &str, topic: &str, extra: &[&str]) -> Output {
    let mut args = vec!["consume", "-b", b, "-t", topic];
    args.extend_from_slice(extra);
    weir(&args, b"")
}

/// Produces `lines` with kcat to `partition` (keys before ':', one header).
fn kcat_produce(kcat: &Kcat, b: &str, topic: &str, partition: i32, lines: &[u8]) {
    let out = kcat.produce(
        b,
        topic,
        Some(partition),
        lines,
        &["-K", ":", "-H", "origin=kcat"],
    );
    assert!(
        out.status.success(),
        "kcat -P failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn consume_to_end_with_format_matches_kcat() {
    let Some(kcat) = Kcat::require_or_skip() else {
        return;
    };
    let broker = Kafka::shared();
    let b = broker.bootstrap();
    let topic = unique_topic("cli-consume");
    broker.create_topic(&topic, 4);
    for p in 0..3 {
        let lines: Vec<u8> = (0..300 + p * 100)
            .flat_map(|i| match i % 5 {
                0 => format!("no key in line {p}/{i}\n").into_bytes(),
                1 => format!("k{i}:\n").into_bytes(),
                _ => format!("k{i}:value \u{e9} {p}/{i}\n").into_bytes(),
            })
            .collect();
        kcat_produce(&kcat, &b, &topic, p, &lines);
    }
    // Partition 3 stays empty: -e must not wait for it.
    let fmt = r"%t|%p|%o|%T|%K|%k|%S|%s|%h\n";
    let expected = kcat.consume_all(&b, &topic, fmt, &[]);
    assert_eq!(expected.iter().filter(|&&c| c == b'\n').count(), 300 + 400 + 500);

    let out = consume(&b, &topic, &["-e", "-f", fmt]);
    assert_ok(&out);
    assert_eq!(sorted_lines(&out.stdout), sorted_lines(&expected));

    // One partition: byte-for-byte the same as kcat, in offset order.
    let expected = kcat.consume_all(&b, &topic, fmt, &["-p", "1"]);
    let out = consume(&b, &topic, &["-p", "1", "-e", "-f", fmt]);
    assert_ok(&out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&expected)
    );

    // Default format: the value and a newline; -K DELIM prints the key first.
    let out = consume(&b, &topic, &["-p", "2", "-e"]);
    assert_ok(&out);
    assert_eq!(out.stdout, kcat.consume_all(&b, &topic, r"%s\n", &["-p", "2"]));
    let out = consume(&b, &topic, &["-p", "2", "-e", "-K", r"\t"]);
    assert_ok(&out);
    assert_eq!(
        out.stdout,
        kcat.consume_all(&b, &topic, r"%k\t%s\n", &["-p", "2"])
    );
}

#[test]
fn consume_start_offsets() {
    let Some(kcat) = Kcat::require_or_skip() else {
        return;
    };
    let broker = Kafka::shared();
    let b = broker.bootstrap();
    let topic = unique_topic("cli-offsets");
    broker.create_topic(&topic, 4);
    let sizes = [100, 50, 3, 0];
    for (p, &n) in sizes.iter().enumerate().take(3) {
        let lines: Vec<u8> = (0..n).flat_map(|i| format!("{i}\n").into_bytes()).collect();
        let out = kcat.produce(&b, &topic, Some(p as i32), &lines, &[]);
        assert!(
            out.status.success(),
            "kcat -P failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let offsets_of = |out: &Output| -> Vec<Vec<i64>> {
        assert_ok(out);
        let mut per = vec![Vec::new(); 4];
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            let (p, o) = l.split_once(' ').unwrap();
            per[p.parse::<usize>().unwrap()].push(o.parse().unwrap());
        }
        per
    };

    // -o -N: the last N records of each partition (all of them when there are fewer).
    let per = offsets_of(&consume(&b, &topic, &["-o", "-10", "-e", "-f", r"%p %o\n"]));
    assert_eq!(
        per,
        vec![
            (90..100).collect::<Vec<i64>>(),
            (40..50).collect(),
            vec![0, 1, 2],
            vec![]
        ]
    );

    // -o OFFSET: from that offset on (past the end: nothing).
    let per = offsets_of(&consume(&b, &topic, &["-o", "45", "-e", "-f", r"%p %o\n"]));
    assert_eq!(
        per,
        vec![
            (45..100).collect::<Vec<i64>>(),
            (45..50).collect(),
            vec![],
            vec![]
        ]
    );

    // -o end -e: nothing to read, exits at once.
    let per = offsets_of(&consume(&b, &topic, &["-o", "end", "-e", "-f", r"%p %o\n"]));
    assert_eq!(per, vec![Vec::<i64>::new(); 4]);

    // -o beginning is the default; -c stops after CNT records.
    let out = consume(&b, &topic, &["-p", "0", "-c", "7", "-f", r"%o,"]);
    assert_ok(&out);
    assert_eq!(out.stdout, b"0,1,2,3,4,5,6,");
}

#[test]
fn weir_produce_then_weir_consume_round_trips_raw_bytes() {
    let broker = Kafka::shared();
    let b = broker.bootstrap();
    let topic = unique_topic("cli-raw");
    broker.create_topic(&topic, 1);
    // Not UTF-8: must come back byte for byte.
    let mut input = Vec::new();
    for i in 0..200u32 {
        input.extend_from_slice(&[0xff, 0xfe, b'=', 0x80 | (i % 128) as u8, 0xc3]);
        input.extend_from_slice(format!(" {i}\n").as_bytes());
    }
    assert_ok(&weir(
        &["produce", "-b", &b, "-t", &topic, "-K", "=", "-z", "zstd"],
        &input,
    ));
    let out = consume(&b, &topic, &["-e", "-f", r"%k=%s\n"]);
    assert_ok(&out);
    assert_eq!(out.stdout, input);
}

#[test]
fn consume_errors_are_clear() {
    let broker = Kafka::shared();
    let b = broker.bootstrap();
    let topic = unique_topic("cli-consume-err");
    broker.create_topic(&topic, 2);

    let out = consume(&b, &unique_topic("cli-nope"), &["-e"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("weir: unknown topic"),
        "{}",
        stderr(&out)
    );

    let out = consume(&b, &topic, &["-e", "-p", "5"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no partition 5"), "{}", stderr(&out));

    for (args, needle) in [
        (vec!["-X", "fetch.wait.max.mss=1"], "fetch.wait.max.mss"),
        (vec!["-f", "%x"], "%x"),
        (vec!["-o", "stored"], "stored"),
        (vec!["-o", "soon"], "soon"),
        (vec!["--memory-budget", "0"], "budget"),
    ] {
        let mut full = vec!["-e"];
        full.extend(args.iter().copied());
        let out = consume(&b, &topic, &full);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn consume_small_buffers_still_read_everything() {
    let broker = Kafka::shared();
    let b = broker.bootstrap();
    let topic = unique_topic("cli-buffers");
    broker.create_topic(&topic, 2);
    let input: Vec<u8> = (0..5000)
        .flat_map(|i| format!("{i:05} {}\n", "z".repeat(100)).into_bytes())
        .collect();
    assert_ok(&weir(&["produce", "-b", &b, "-t", &topic, "-p", "0"], &input));
    let out = consume(
        &b,
        &topic,
        &[
            "-e",
            "--partition-buffer",
            "16384",
            "--memory-budget",
            "65536",
            "-X",
            "fetch.max.bytes=16384",
        ],
    );
    assert_ok(&out);
    assert_eq!(out.stdout, input);
}

#[test]
fn sigint_and_sigterm_stop_consuming_cleanly() {
    use std::io::{BufRead, BufReader};
    let broker = Kafka::shared();
    let b = broker.bootstrap();
    let topic = unique_topic("cli-signal");
    broker.create_topic(&topic, 1);
    let input: Vec<u8> = (0..10).flat_map(|i| format!("m{i}\n").into_bytes()).collect();
    assert_ok(&weir(&["produce", "-b", &b, "-t", &topic], &input));

    for sig in ["-INT", "-TERM"] {
        // No -e: it would consume forever.
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["consume", "-b", &b, "-t", &topic, "-X", "fetch.wait.max.ms=10"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let guard = Watchdog::new(child.id(), &["consume", "(signal test)"]);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut got = Vec::new();
        for _ in 0..10 {
            stdout.read_until(b'\n', &mut got).unwrap();
        }
        // All records printed: weir is in its poll loop, with its signal handlers installed.
        assert_eq!(got, input);
        let kill = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = child.wait().unwrap();
        guard.disarm();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert!(status.success(), "{sig}: {status}: {err}");
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
        assert!(rest.is_empty());
    }
}

/// `weir produce -X transactional.id=...`: committed transactions of N records; read_committed consumers (weir
/// and kcat, whose default is read_committed) see every record, and the log holds one commit marker per
/// transaction.
#[test]
fn produce_in_transactions() {
    let kafka = Kafka::shared();
    let b = kafka.bootstrap();
    let topic = unique_topic("cli-txn");
    kafka.create_topic(&topic, 1);
    let input: String = (1..=250).map(|i| format!("{i}\n")).collect();
    let tid = format!("transactional.id={}", unique_topic("cli-tid"));
    let args = [
        "produce",
        "-b",
        &b,
        "-t",
        &topic,
        "-p",
        "0",
        "-X",
        &tid,
        "--txn-records",
        "100",
    ];
    let out = weir(&args, input.as_bytes());
    assert_ok(&out);
    let got = consume(
        &b,
        &topic,
        &["-e", "-f", "%o %s\n", "-X", "isolation.level=read_committed"],
    );
    assert_ok(&got);
    let lines: Vec<String> = String::from_utf8(got.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 250, "{lines:?}");
    // Three transactions (100, 100, 50): a marker after each, so the values 101 and 201 sit one and two
    // offsets after their sequence numbers.
    assert_eq!(lines[0], "0 1");
    assert_eq!(lines[100], "101 101");
    assert_eq!(lines[249], "251 250");
    let kcat = Kcat::require();
    let seen = kcat.consume_all(&b, &topic, "%s\n", &["-X", "isolation.level=read_committed"]);
    assert_eq!(String::from_utf8(seen).unwrap(), input);
}
