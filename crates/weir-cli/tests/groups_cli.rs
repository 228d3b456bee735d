//! `weir groups list|describe|delete|reset-offsets` against real Apache Kafka, with a group made by `weir
//! consume -G` (which keeps working beside them): lists and tables in the shape of
//! `kafka-consumer-groups.sh`, `--output json`, reset plans that are dry runs unless `--execute`, refused
//! while a member is live and applied once it left (the next `weir consume -G` starts there), per-group
//! deletion, and bad arguments as usage errors.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weir_testkit::{unique_name, Kafka};

#[path = "support/run.rs"]
mod run;

use run::weir;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn ok(args: &[&str]) -> String {
    let o = weir(args, b"");
    assert!(
        o.status.success(),
        "`weir {}` failed ({}): {}",
        args.join(" "),
        o.status,
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// Runs a command expected to fail with exit status `code`; returns it.
#[track_caller]
fn fails(args: &[&str], code: i32) -> Output {
    let o = weir(args, b"");
    assert_eq!(
        o.status.code(),
        Some(code),
        "`weir {}`: stdout {} stderr {}",
        args.join(" "),
        text(&o.stdout),
        text(&o.stderr)
    );
    o
}

/// The document `--output json` printed: one line, parsed.
#[track_caller]
fn parse_json(out: &str) -> Value {
    assert!(out.ends_with('\n') && out.lines().count() == 1, "one line: {out}");
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// `got` is `want`, keys in the same order: both keep the order their keys were written in
/// (serde_json's `preserve_order`), so their serializations are equal.
#[track_caller]
fn assert_json(got: &Value, want: &Value) {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap();
    assert_eq!(pretty(got), pretty(want));
}

/// The rows of a table, each split on whitespace, header dropped.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

/// Runs `check` until it returns `Ok`, for at most 60 s.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match check() {
            Ok(t) => return t,
            Err(e) if Instant::now() >= deadline => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// `weir groups reset-offsets -g GROUP REST...`.
fn reset_offsets<'a>(group: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["groups", "reset-offsets", "-g", group];
    args.extend_from_slice(rest);
    args
}

/// Group settings for fast tests.
const GROUP_PROPS: [&str; 8] = [
    "-X",
    "heartbeat.interval.ms=200",
    "-X",
    "session.timeout.ms=10000",
    "-X",
    "auto.commit.interval.ms=200",
    "-X",
    "auto.offset.reset=earliest",
];

/// A `weir consume -G` process left running; stopped with SIGTERM (it commits and leaves).
struct LiveMember {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl LiveMember {
    fn start(b: &str, group: &str, topic: &str) -> LiveMember {
        let mut args = vec!["consume", "-b", b, "-G", group, topic, "-X", "client.id=cli-live"];
        args.extend_from_slice(&GROUP_PROPS);
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(&args)
            .env_remove("WEIR_BROKERS")
            .env("WEIR_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weir");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let err = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for l in err.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        LiveMember { child, stderr }
    }

    fn stop(mut self) {
        let kill = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                assert!(
                    s.success(),
                    "the member exited with {s}: {:?}",
                    self.stderr.lock().unwrap()
                );
                return;
            }
            assert!(Instant::now() < deadline, "the member did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LiveMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `weir consume -G group topic -e`: the (partition, offset, value) lines it printed.
fn consume_group_to_end(b: &str, group: &str, topic: &str) -> Vec<(i32, i64, String)> {
    let mut args = vec![
        "consume",
        "-b",
        b,
        "-G",
        group,
        topic,
        "-e",
        "-q",
        "-f",
        "%p %o %s\\n",
    ];
    args.extend_from_slice(&GROUP_PROPS);
    ok(&args)
        .lines()
        .map(|l| {
            let mut it = l.splitn(3, ' ');
            (
                it.next().unwrap().parse().unwrap(),
                it.next().unwrap().parse().unwrap(),
                it.next().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn groups_are_listed_described_reset_and_deleted_from_the_command_line() {
    let kafka = Kafka::shared();
    let b = kafka.bootstrap();
    let topic = unique_name("cli-groups");
    kafka.create_topic(&topic, 2);
    for p in 0..2 {
        let lines: String = (0..10).map(|i| format!("p{p}-r{i}\n")).collect();
        let o = weir(
            &["produce", "-b", &b, "-t", &topic, "-p", &p.to_string()],
            lines.as_bytes(),
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let group = unique_name("cli-g");

    // `weir consume -G` reads everything and commits on leaving.
    let read = consume_group_to_end(&b, &group, &topic);
    assert_eq!(read.len(), 20, "{read:?}");
    assert!(read.iter().all(|(p, o, v)| *v == format!("p{p}-r{o}")));

    // Listed: ids only, then with columns, filtered by state, as JSON.
    let listed = ok(&["groups", "list", "-b", &b]);
    assert!(listed.lines().any(|l| l == group), "{listed}");
    let table = ok(&["groups", "list", "-b", &b, "--state", "--type"]);
    assert!(table.starts_with("GROUP"), "{table}");
    assert!(
        rows(&table).contains(&vec![group.clone(), "classic".into(), "Empty".into()]),
        "{table}"
    );
    let stable = ok(&["groups", "list", "-b", &b, "--state", "stable"]);
    assert!(!stable.contains(&group), "{stable}");
    let listed = parse_json(&ok(&["groups", "list", "-b", &b, "--output", "json"]));
    let mine = listed
        .as_array()
        .and_then(|l| l.iter().find(|g| g["group"] == group.as_str()))
        .unwrap_or_else(|| panic!("{group} in {listed}"));
    assert!(mine["coordinator"].is_i64(), "{mine}");
    assert_json(
        mine,
        &json!({
            "group": group,
            "type": "classic",
            "state": "Empty",
            "protocol_type": "consumer",
            "coordinator": mine["coordinator"],
        }),
    );

    // Described: one row per partition, committed at the end, nobody owning it.
    let described = ok(&["groups", "describe", "-b", &b, "-g", &group]);
    let header = described.lines().next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ]
    );
    let want: Vec<Vec<String>> = (0..2)
        .map(|p| {
            [&group, &topic, &p.to_string(), "10", "10", "0", "-", "-", "-"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        })
        .collect();
    assert_eq!(rows(&described), want);
    let missing = unique_name("cli-missing");
    let o = fails(&["groups", "describe", "-b", &b, "-g", &group, "-g", &missing], 1);
    assert_eq!(
        rows(&text(&o.stdout)),
        want,
        "the group that exists is still described"
    );
    assert!(text(&o.stderr).contains("GroupIdNotFound"), "{}", text(&o.stderr));

    // A live member: the plan is a dry run and --execute is refused; the group is not deleted.
    let member = LiveMember::start(&b, &group, &topic);
    eventually("the member owns both partitions", || {
        let d = ok(&["groups", "describe", "-b", &b, "-g", &group]);
        let r = rows(&d);
        (r.len() == 2 && r.iter().all(|row| row[6] != "-" && row[8] == "cli-live"))
            .then_some(())
            .ok_or(d)
    });
    let doc = parse_json(&ok(&[
        "groups", "describe", "-b", &b, "-g", &group, "--output", "json",
    ]));
    let (described, described_member) = (&doc[0], &doc[0]["members"][0]);
    let member_id = described_member["member_id"].as_str().unwrap_or_default();
    assert!(member_id.starts_with("cli-live-"), "{doc}");
    assert!(
        described_member["host"].is_string() && described["coordinator"].is_i64(),
        "{doc}"
    );
    assert!(
        !described["protocol"].as_str().unwrap_or_default().is_empty(),
        "{doc}"
    );
    let owned = |p: i32| {
        json!({
            "topic": topic,
            "partition": p,
            "committed": 10,
            "log_end": 10,
            "lag": 0,
            "member_id": member_id,
            "host": described_member["host"],
            "client_id": "cli-live",
        })
    };
    // A classic group: no epochs, no target assignment.
    assert_json(
        &doc,
        &json!([{
            "group": group,
            "type": "classic",
            "state": "Stable",
            "protocol_type": "consumer",
            "protocol": described["protocol"],
            "coordinator": described["coordinator"],
            "group_epoch": null,
            "assignment_epoch": null,
            "members": [{
                "member_id": member_id,
                "instance_id": null,
                "client_id": "cli-live",
                "host": described_member["host"],
                "member_epoch": null,
                "assignment": [{"topic": topic, "partition": 0}, {"topic": topic, "partition": 1}],
                "target_assignment": null,
            }],
            "offsets": [owned(0), owned(1)],
            "error": null,
        }]),
    );
    let dry = weir(
        &reset_offsets(&group, &["-b", &b, "--topic", &topic, "--to-earliest"]),
        b"",
    );
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    assert_eq!(
        rows(&text(&dry.stdout)),
        (0..2)
            .map(|p| vec![
                group.clone(),
                topic.clone(),
                p.to_string(),
                "10".into(),
                "0".into()
            ])
            .collect::<Vec<_>>()
    );
    let note = text(&dry.stderr);
    assert!(
        note.contains("dry run") && note.contains("would be refused"),
        "{note}"
    );
    let refused = fails(
        &reset_offsets(
            &group,
            &["-b", &b, "--topic", &topic, "--to-earliest", "--execute"],
        ),
        1,
    );
    assert!(
        text(&refused.stderr).contains("NonEmptyGroup"),
        "{}",
        text(&refused.stderr)
    );
    let kept = fails(&["groups", "delete", "-b", &b, "-g", &group], 1);
    assert!(
        text(&kept.stderr).contains("NonEmptyGroup"),
        "{}",
        text(&kept.stderr)
    );
    let d = ok(&["groups", "describe", "-b", &b, "-g", &group]);
    assert!(
        rows(&d).iter().all(|r| r[3] == "10"),
        "nothing was committed by the refused reset: {d}"
    );

    // Once it left: applied, shown as JSON; the next `weir consume -G` starts there.
    member.stop();
    eventually("the group empty", || {
        let d = ok(&["groups", "list", "-b", &b, "--state", "Empty"]);
        rows(&d).iter().any(|r| r[0] == group).then_some(()).ok_or(d)
    });
    let applied = ok(&reset_offsets(
        &group,
        &[
            "-b",
            &b,
            "--topic",
            &format!("{topic}:0"),
            "--shift-by",
            "-3",
            "--execute",
            "--output",
            "json",
        ],
    ));
    assert_json(
        &parse_json(&applied),
        &json!({
            "group": group,
            "state": "Empty",
            "executed": true,
            "offsets": [{"topic": topic, "partition": 0, "current": 10, "new": 7, "error": null}],
        }),
    );
    let plan = ok(&reset_offsets(
        &group,
        &["-b", &b, "--all-topics", "--to-offset", "2"],
    ));
    assert_eq!(
        rows(&plan),
        [
            vec![group.clone(), topic.clone(), "0".into(), "7".into(), "2".into()],
            vec![group.clone(), topic.clone(), "1".into(), "10".into(), "2".into()]
        ]
    );
    let past = ok(&reset_offsets(
        &group,
        &[
            "-b",
            &b,
            "--topic",
            &topic,
            "--to-datetime",
            "2001-09-09T01:46:40Z",
        ],
    ));
    assert!(rows(&past).iter().all(|r| r[4] == "0"), "{past}");
    let read = consume_group_to_end(&b, &group, &topic);
    let got: Vec<(i32, i64)> = read.iter().map(|(p, o, _)| (*p, *o)).collect();
    assert_eq!(got, [(0, 7), (0, 8), (0, 9)], "continued from the reset offsets");

    // Deleted per group: the missing one fails alone.
    let o = fails(&["groups", "delete", "-b", &b, "-g", &group, "-g", &missing], 1);
    assert_eq!(text(&o.stdout), format!("deleted group {group}\n"));
    assert!(text(&o.stderr).contains(&missing) && text(&o.stderr).contains("GroupIdNotFound"));
    let listed = ok(&["groups", "list", "-b", &b]);
    assert!(!listed.lines().any(|l| l == group), "{listed}");

    // Bad arguments are usage errors (exit 2), before anything is asked.
    for args in [
        reset_offsets("g", &["--topic", "t"]),
        reset_offsets("g", &["--to-earliest"]),
        reset_offsets("g", &["--topic", "t", "--to-earliest", "--to-offset", "1"]),
        reset_offsets("g", &["--topic", "t:x", "--to-earliest"]),
        reset_offsets("g", &["--topic", "t", "--to-datetime", "yesterday"]),
        vec!["groups", "describe"],
        vec!["groups", "list", "--state", "Sleeping"],
        vec!["groups", "list", "--output", "yaml"],
    ] {
        let mut args = args.clone();
        args.extend(["-b", "127.0.0.1:1"]);
        fails(&args, 2);
    }
}
