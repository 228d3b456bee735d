//! `weir topics describe|alter|add-partitions` and `weir configs describe|alter` against real Apache Kafka:
//! output in the shape of `kafka-topics.sh --describe` and `kafka-configs.sh --describe` (and as JSON),
//! changes that reach the broker, per-item failures that exit 1, bad arguments that exit 2, help that names
//! what the code does.

use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weir_testkit::{unique_name, Kafka};

#[path = "support/run.rs"]
mod run;

use run::weir;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `weir ARGS -b <cluster>` and returns its stdout; fails the test if it failed.
#[track_caller]
fn ok(args: &[&str]) -> String {
    let o = run_on_cluster(args);
    assert!(
        o.status.success(),
        "`weir {}` failed ({}): {}",
        args.join(" "),
        o.status,
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn run_on_cluster(args: &[&str]) -> Output {
    let b = Kafka::shared().bootstrap();
    let mut all = args.to_vec();
    all.extend(["-b", &b]);
    weir(&all, b"")
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

/// Runs `weir ARGS` (no cluster needed) and returns its output.
fn run_alone(args: &[&str]) -> Output {
    weir(args, b"")
}

#[track_caller]
fn assert_exit(o: &Output, code: i32, stderr_has: &str) {
    assert_eq!(o.status.code(), Some(code), "stderr: {}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(stderr_has),
        "stderr: {}",
        text(&o.stderr)
    );
}

/// Runs `check` until it returns `Ok`, for at most 30 s (changes reach the broker a moment after they are
/// acknowledged).
fn eventually(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => panic!("{what}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The `Topic:` line of `weir topics describe TOPIC`, with the topic id replaced by `ID`.
fn topic_line(topic: &str) -> String {
    let out = ok(&["topics", "describe", topic]);
    let first = out.lines().next().unwrap_or_default().to_owned();
    let mut fields: Vec<String> = first.split('\t').map(str::to_owned).collect();
    if let Some(id) = fields.iter_mut().find(|f| f.starts_with("TopicId: ")) {
        assert_eq!(id.len(), "TopicId: ".len() + 22, "{first}");
        *id = "TopicId: ID".into();
    }
    fields.join("\t")
}

/// A `Topic:` line split at `\tConfigs: `: the head, and the configurations that are not Kafka's defaults
/// (the topic's own, and the broker's static settings, as `kafka-topics.sh` shows them).
fn split_configs(line: &str) -> (String, Vec<String>) {
    let (head, configs) = line.split_once("\tConfigs: ").unwrap_or((line, ""));
    let configs = configs
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    (head.to_owned(), configs)
}

#[test]
fn topics_are_described_altered_and_grown() {
    let kafka = Kafka::shared();
    let (topic, missing) = (unique_name("cli-topic"), unique_name("cli-missing"));
    kafka.create_topic_with(&topic, 2, &[("cleanup.policy", "compact")]);

    // kafka-topics.sh --describe's lines: the overridden configuration only.
    let out = ok(&["topics", "describe", &topic]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let (head, overridden) = split_configs(&topic_line(&topic));
    assert_eq!(
        head,
        format!("Topic: {topic}\tTopicId: ID\tPartitionCount: 2\tReplicationFactor: 1")
    );
    assert!(
        overridden.contains(&"cleanup.policy=compact".to_string()),
        "{overridden:?}"
    );
    assert!(
        !overridden.iter().any(|c| c.starts_with("retention.ms=")),
        "{overridden:?}"
    );
    for (p, line) in lines[1..].iter().enumerate() {
        assert_eq!(
            *line,
            format!("\tTopic: {topic}\tPartition: {p}\tLeader: 1\tReplicas: 1\tIsr: 1")
        );
    }

    // A configuration changed through `topics alter`.
    ok(&[
        "topics",
        "alter",
        &topic,
        "--set",
        "retention.ms=123456",
        "--delete",
        "cleanup.policy",
    ]);
    eventually("the topic's configuration changed", || {
        let (_, overridden) = split_configs(&topic_line(&topic));
        let changed = overridden.contains(&"retention.ms=123456".to_string())
            && !overridden.iter().any(|c| c.starts_with("cleanup.policy="));
        if changed {
            Ok(())
        } else {
            Err(format!("{overridden:?}"))
        }
    });

    // Partitions added; validate-only and fewer partitions change nothing.
    ok(&[
        "topics",
        "add-partitions",
        &topic,
        "--partitions",
        "6",
        "--validate-only",
    ]);
    ok(&["topics", "add-partitions", &topic, "--partitions", "4"]);
    let fewer = run_on_cluster(&["topics", "add-partitions", &topic, "--partitions", "3"]);
    assert_exit(&fewer, 1, "InvalidPartitions");
    eventually("four partitions", || {
        let out = ok(&["topics", "describe", &topic]);
        let led = out.lines().filter(|l| l.contains("\tLeader: 1\t")).count();
        if out.contains("\tPartitionCount: 4\t") && led == 4 {
            Ok(())
        } else {
            Err(out)
        }
    });

    // JSON: the same facts, as text prints them.
    let out = ok(&["topics", "describe", &topic, "--output", "json"]);
    let doc = parse_json(&out);
    let got = &doc[0];
    let id = got["topic_id"].as_str().unwrap_or_default();
    assert_eq!(id.len(), 22, "{out}");
    let (_, overridden) = split_configs(&topic_line(&topic));
    let configs: Vec<String> = got["configs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("null")))
        .collect();
    assert_eq!(configs, overridden, "{out}");
    assert!(
        overridden.contains(&"retention.ms=123456".to_string()),
        "{overridden:?}"
    );
    let partitions: Vec<Value> = (0..4)
        .map(|p| {
            let epoch = &got["partitions"][p]["leader_epoch"];
            assert!(epoch.as_i64().is_some_and(|e| e >= 0), "{out}");
            json!({
                "partition": p,
                "leader": 1,
                "leader_epoch": epoch,
                "replicas": [1],
                "isr": [1],
                "offline_replicas": [],
            })
        })
        .collect();
    assert_json(
        &doc,
        &json!([{
            "topic": topic,
            "topic_id": id,
            "internal": false,
            "partition_count": 4,
            "replication_factor": 1,
            "configs": got["configs"],
            "partitions": partitions,
        }]),
    );

    // A topic that does not exist: reported, the others still printed, exit 1.
    let o = run_on_cluster(&["topics", "describe", &missing, &topic]);
    assert_exit(&o, 1, &missing);
    assert!(
        text(&o.stderr).contains("UnknownTopicOrPartition"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout).starts_with(&format!("Topic: {topic}\t")),
        "{}",
        text(&o.stdout)
    );
    let o = run_on_cluster(&["topics", "describe", &missing, "--output", "json"]);
    assert_exit(&o, 1, &missing);
    let doc = parse_json(&text(&o.stdout));
    let error = doc[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("UnknownTopicOrPartition"), "{doc}");
    assert_json(&doc, &json!([{"topic": missing, "error": error}]));

    // Every topic: this one among them.
    let all = ok(&["topics", "describe", "--exclude-internal"]);
    assert!(all.contains(&format!("Topic: {topic}\t")), "{all}");
    assert!(!all.contains("Topic: __consumer_offsets\t"), "{all}");
}

#[test]
fn configs_are_described_and_altered_as_kafka_configs_does() {
    let kafka = Kafka::shared();
    let topic = unique_name("cli-configs");
    kafka.create_topic(&topic, 1);

    ok(&[
        "configs",
        "alter",
        "--topic",
        &topic,
        "--set",
        "retention.ms=1000",
        "--set",
        "max.message.bytes=2000000",
    ]);
    // Validate only, and a name Kafka does not know: nothing changes.
    ok(&[
        "configs",
        "alter",
        "--topic",
        &topic,
        "--set",
        "retention.ms=5",
        "--validate-only",
    ]);
    let bad = run_on_cluster(&["configs", "alter", "--topic", &topic, "--set", "no.such.config=1"]);
    assert_exit(&bad, 1, "InvalidConfig");

    // kafka-configs.sh --describe: the dynamic configurations, sorted, with their synonyms.
    eventually("the topic's dynamic configuration", || {
        let out = ok(&["configs", "describe", "--topic", &topic]);
        let lines: Vec<&str> = out.lines().collect();
        let want_head = format!("Dynamic configs for topic {topic} are:");
        let fine = lines.len() == 3
            && lines[0] == want_head
            && lines[1].starts_with(
                "  max.message.bytes=2000000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:max.message.bytes=2000000, ",
            )
            && lines[2].starts_with(
                "  retention.ms=1000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000",
            );
        if fine {
            Ok(())
        } else {
            Err(out)
        }
    });
    let all = ok(&["configs", "describe", "--topic", &topic, "--all"]);
    assert!(
        all.starts_with(&format!("All configs for topic {topic} are:\n")),
        "{all}"
    );
    assert!(all.lines().count() > 20, "{all}");
    assert!(
        all.contains(
            "\n  cleanup.policy=delete sensitive=false synonyms={DEFAULT_CONFIG:log.cleanup.policy=delete}\n"
        ),
        "{all}"
    );
    let doc = parse_json(&ok(&[
        "configs", "describe", "--topic", &topic, "--output", "json",
    ]));
    let entry = |name: &str, value: &str, config_type: &str, i: usize| {
        // The synonyms, highest precedence first: the value set on the topic.
        let synonyms = &doc["configs"][i]["synonyms"];
        assert_json(
            &synonyms[0],
            &json!({"name": name, "value": value, "source": "DYNAMIC_TOPIC_CONFIG"}),
        );
        json!({
            "name": name,
            "value": value,
            "source": "DYNAMIC_TOPIC_CONFIG",
            "read_only": false,
            "sensitive": false,
            "default": false,
            "type": config_type,
            "synonyms": synonyms,
        })
    };
    assert_json(
        &doc,
        &json!({
            "resource": {"type": "TOPIC", "name": topic},
            "configs": [
                entry("max.message.bytes", "2000000", "INT", 0),
                entry("retention.ms", "1000", "LONG", 1),
            ],
        }),
    );
    let synonyms = doc["configs"][0]["synonyms"].as_array().unwrap();
    assert_json(
        synonyms.last().unwrap(),
        &json!({"name": "message.max.bytes", "value": "1048588", "source": "DEFAULT_CONFIG"}),
    );

    // A broker's own configuration.
    ok(&[
        "configs",
        "alter",
        "--broker",
        "1",
        "--set",
        "log.cleaner.threads=2",
    ]);
    eventually("broker 1's dynamic configuration", || {
        let out = ok(&["configs", "describe", "--broker", "1"]);
        let want =
            "  log.cleaner.threads=2 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.cleaner.threads=2, ";
        if out.starts_with("Dynamic configs for broker 1 are:\n") && out.contains(want) {
            Ok(())
        } else {
            Err(out)
        }
    });
    let all = parse_json(&ok(&[
        "configs", "describe", "--broker", "1", "--all", "--output", "json",
    ]));
    assert_json(&all["resource"], &json!({"type": "BROKER", "name": "1"}));
    let configs = all["configs"].as_array().unwrap();
    let threads = configs
        .iter()
        .find(|c| c["name"] == "log.cleaner.threads")
        .unwrap_or_else(|| panic!("log.cleaner.threads in {all}"));
    assert_json(
        threads,
        &json!({
            "name": "log.cleaner.threads",
            "value": "2",
            "source": "DYNAMIC_BROKER_CONFIG",
            "read_only": false,
            "sensitive": false,
            "default": false,
            "type": "INT",
            "synonyms": threads["synonyms"],
        }),
    );
    assert_json(
        &threads["synonyms"][0],
        &json!({"name": "log.cleaner.threads", "value": "2", "source": "DYNAMIC_BROKER_CONFIG"}),
    );
    assert!(
        configs.iter().any(|c| c["read_only"] == true),
        "static settings are read only: {all}"
    );
    ok(&[
        "configs",
        "alter",
        "--broker",
        "1",
        "--delete",
        "log.cleaner.threads",
    ]);
    eventually("broker 1's setting removed", || {
        let out = ok(&["configs", "describe", "--broker", "1"]);
        if out.contains("log.cleaner.threads") {
            Err(out)
        } else {
            Ok(())
        }
    });
    let defaults = ok(&["configs", "describe", "--broker-defaults"]);
    assert!(
        defaults.starts_with("Default configs for brokers in the cluster are:\n"),
        "{defaults}"
    );
}

#[test]
fn bad_arguments_are_usage_errors_and_help_names_the_options() {
    for (args, says) in [
        (vec!["configs", "describe"], "--topic"),
        (
            vec!["configs", "describe", "--topic", "t", "--broker", "1"],
            "cannot be used with",
        ),
        (vec!["configs", "alter", "--topic", "t"], "nothing to change"),
        (vec!["topics", "alter", "t"], "nothing to change"),
        (
            vec!["topics", "alter", "t", "--set", "novalue"],
            "expected KEY=VALUE",
        ),
        (
            vec!["topics", "add-partitions", "t", "--partitions", "0"],
            "at least 1 partition",
        ),
        (vec!["topics", "add-partitions", "t"], "--partitions"),
        (vec!["topics", "describe", "--output", "yaml"], "yaml"),
    ] {
        let o = run_alone(&args);
        assert_exit(&o, 2, says);
    }
    let help = text(&run_alone(&["topics", "--help"]).stdout);
    for sub in ["describe", "alter", "add-partitions", "create", "delete", "list"] {
        assert!(help.contains(&format!("  {sub} ")), "{sub} in {help}");
    }
    let help = text(&run_alone(&["configs", "alter", "--help"]).stdout);
    for opt in [
        "--topic",
        "--broker",
        "--broker-defaults",
        "--set",
        "--delete",
        "--append",
        "--subtract",
        "--validate-only",
    ] {
        assert!(help.contains(opt), "{opt} in {help}");
    }
    let help = text(&run_alone(&["topics", "describe", "--help"]).stdout);
    for opt in ["--output", "--exclude-internal", "PartitionCount", "Leader: none"] {
        assert!(help.contains(opt), "{opt} in {help}");
    }
}
