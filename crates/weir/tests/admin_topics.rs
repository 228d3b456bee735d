//! Topic, cluster and configuration administration on a three-node Apache Kafka cluster (every broker in rack
//! `rack-a`), every answer of weir's compared with what Kafka's own Java Admin client sees of the same cluster
//! (`tests/java/AdminTopics.java`, one fact per line, rendered here from weir's answers in the same form): the
//! cluster and topics described, configurations after weir altered them and after Java did, partitions added,
//! records deleted and offsets looked up by time. A consumer positioned before a log start that DeleteRecords
//! moved follows `auto.offset.reset`.

use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use weir::admin::{
    AlterConfigOp, ClusterDescription, ConfigEntry, ConfigResource, ConfigSource, NewPartitions,
    OffsetAndTimestamp, OffsetSpec, TopicDescription, DELETE_TO_HIGH_WATERMARK,
};
use weir::config::{ClientConfig, ProducerConfig};
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir::error::KafkaCode;
use weir::{Admin, Error, Producer, ProducerRecord};
use weir_testkit::{java, kafka_libs, run_with_timeout, unique_name, Kafka, Shape};

/// Every broker's `broker.rack`.
const RACK: &str = "rack-a";
/// How long a change may take to reach every broker (applied from the metadata log a moment after the
/// controller acknowledged it).
const PROPAGATION: Duration = Duration::from_secs(30);

fn cluster() -> &'static Kafka {
    static K: OnceLock<Kafka> = OnceLock::new();
    K.get_or_init(|| Kafka::start_with(Shape::Three, &[("broker.rack", RACK)]))
}

/// Runs a blocking call (the harness, the Java client) without stalling the runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("WEIR_LOG"))
        .with_test_writer()
        .try_init();
}

/// The cluster (started on first use) and an admin client for it.
fn setup() -> (&'static Kafka, Admin) {
    init_logging();
    let kafka = blocking(cluster);
    let mut c = ClientConfig::new(&kafka.bootstrap());
    c.set("request.timeout.ms", "10000").unwrap();
    c.set("max.block.ms", "10000").unwrap();
    (kafka, Admin::new(c).unwrap())
}

/// Runs `AdminTopics.java` with `steps` in one JVM: the facts each step printed.
fn java_sees(steps: &[Vec<&str>]) -> Vec<Vec<String>> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java/AdminTopics.java");
    let mut cmd = Command::new(java().unwrap_or_else(|e| panic!("{e}")));
    cmd.args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp"])
        .arg(kafka_libs().unwrap_or_else(|e| panic!("{e}")).join("*"))
        .arg(&source)
        .arg(cluster().bootstrap());
    for (i, s) in steps.iter().enumerate() {
        if i > 0 {
            cmd.arg("--");
        }
        cmd.args(s);
    }
    let out = blocking(|| run_with_timeout(cmd, None, Duration::from_secs(90)));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "AdminTopics.java failed ({}); stdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut facts = vec![Vec::new(); steps.len()];
    for line in stdout.lines() {
        let Some((step, fact)) = line.strip_prefix("FACT ").and_then(|l| l.split_once(' ')) else {
            continue;
        };
        facts[step.parse::<usize>().unwrap()].push(fact.to_owned());
    }
    facts
}

/// Retries `attempt` until it returns `Ok`, for at most [`PROPAGATION`]; panics with `what` and the last finding.
async fn eventually<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + PROPAGATION;
    loop {
        match attempt().await {
            Ok(t) => return t,
            Err(e) if Instant::now() >= deadline => panic!("{what}: still not after {PROPAGATION:?}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The name of the exception Java's admin client fails an item with, for the error weir reports.
fn java_exception(e: &Error) -> String {
    match e.kafka_code() {
        Some(KafkaCode::InvalidConfig) => "InvalidConfigurationException".into(),
        Some(KafkaCode::TopicAuthorizationFailed) => "TopicAuthorizationException".into(),
        Some(code) => format!("{}Exception", code.name()),
        None => format!("{e}"),
    }
}

fn ids(v: &[i32]) -> String {
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn show(v: &Option<String>) -> String {
    v.as_deref().map_or("null".into(), |s| s.replace('\n', "\\n"))
}

/// weir's answer in the facts of `AdminTopics.java cluster`.
fn cluster_facts(c: &ClusterDescription) -> Vec<String> {
    let controller = c.controller.map_or("none".to_string(), |id| id.to_string());
    let mut facts = vec![format!("cluster id={} controller={controller}", c.cluster_id)];
    for b in &c.brokers {
        facts.push(format!(
            "broker {} {}:{} rack={}",
            b.id,
            b.host,
            b.port,
            show(&b.rack)
        ));
    }
    facts
}

/// weir's answer in the facts of `AdminTopics.java topics`.
fn topic_facts(name: &str, d: &Result<TopicDescription, Error>) -> Vec<String> {
    let t = match d {
        Ok(t) => t,
        Err(e) => return vec![format!("topic {name} error={}", java_exception(e))],
    };
    let mut facts = vec![format!(
        "topic {name} id={} internal={} partitions={}",
        t.topic_id,
        t.internal,
        t.partitions.len()
    )];
    for p in &t.partitions {
        let leader = p.leader.map_or("none".to_string(), |l| l.to_string());
        facts.push(format!(
            "partition {name} {} leader={leader} replicas={} isr={}",
            p.partition,
            ids(&p.replicas),
            ids(&p.isr)
        ));
    }
    facts
}

/// weir's answer in the facts of `AdminTopics.java configs`.
fn config_facts(entries: &Result<Vec<ConfigEntry>, Error>) -> Vec<String> {
    let entries = match entries {
        Ok(e) => e,
        Err(e) => return vec![format!("configs error={}", java_exception(e))],
    };
    entries
        .iter()
        .map(|e| {
            let synonyms: Vec<String> = e
                .synonyms
                .iter()
                .map(|s| format!("{}:{}={}", s.source.name(), s.name, show(&s.value)))
                .collect();
            format!(
                "config {}={} source={} readOnly={} sensitive={} default={} type={} synonyms={}",
                e.name,
                show(&e.value),
                e.source.name(),
                e.read_only,
                e.sensitive,
                e.is_default,
                e.config_type.name(),
                synonyms.join(",")
            )
        })
        .collect()
}

/// weir's answer in the facts of `AdminTopics.java offsets`.
fn offset_facts(
    topic: &str,
    found: &std::collections::BTreeMap<i32, Option<OffsetAndTimestamp>>,
) -> Vec<String> {
    found
        .iter()
        .map(|(p, o)| {
            let (offset, ts) = o.map_or((-1, -1), |o| (o.offset, o.timestamp.unwrap_or(-1)));
            format!("offset {topic} {p} offset={offset} timestamp={ts}")
        })
        .collect()
}

/// The entry `name` of `resource` as weir describes it.
async fn entry(admin: &Admin, resource: &ConfigResource, name: &str) -> Result<ConfigEntry, String> {
    let mut described = admin
        .describe_configs(std::slice::from_ref(resource))
        .await
        .map_err(|e| e.to_string())?;
    let entries = described.pop().unwrap().1.map_err(|e| e.to_string())?;
    entries
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| format!("no entry {name}"))
}

async fn produce(kafka: &Kafka, records: Vec<ProducerRecord>) {
    let mut cfg = ProducerConfig::new(&kafka.bootstrap());
    cfg.set("acks", "all").unwrap();
    let producer = Producer::new(cfg).unwrap();
    let mut delivered = Vec::new();
    for r in records {
        delivered.push(producer.send(r).await.unwrap());
    }
    for d in delivered {
        d.await.unwrap();
    }
    producer.close().await.unwrap();
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_and_topics_are_described_as_java_describes_them() {
    let (kafka, admin) = setup();
    let (wide, narrow, missing) = (unique_name("wide"), unique_name("narrow"), unique_name("missing"));
    blocking(|| {
        kafka.create_topic(&wide, 6);
        kafka.create_topic(&narrow, 1);
    });
    // An internal topic: finding a group's coordinator creates `__consumer_offsets`.
    let group = unique_name("coordinated");
    assert_eq!(
        java_sees(&[vec!["coordinator", &group]])[0],
        ["coordinator found"]
    );
    const OFFSETS: &str = "__consumer_offsets";
    eventually("__consumer_offsets led and in sync everywhere", || async {
        let d = admin
            .describe_topics(Some(&[OFFSETS]))
            .await
            .map_err(|e| e.to_string())?;
        let t = d[0].1.as_ref().map_err(|e| e.to_string())?;
        let settled = !t.partitions.is_empty()
            && t.partitions
                .iter()
                .all(|p| p.leader.is_some() && p.isr.len() == p.replicas.len());
        if settled {
            Ok(())
        } else {
            Err(format!("{t:?}"))
        }
    })
    .await;

    let names = [wide.as_str(), narrow.as_str(), missing.as_str(), OFFSETS];
    let mut topics_step = vec!["topics"];
    topics_step.extend(names);
    let java = java_sees(&[vec!["cluster"], topics_step]);
    let described_cluster = admin.describe_cluster().await.unwrap();
    let described = admin.describe_topics(Some(&names)).await.unwrap();

    // The cluster: the same id and brokers. The controller a broker names is one of the brokers, chosen by the
    // broker answering (in KRaft, the controllers are not brokers): compared as that.
    let weir_cluster = cluster_facts(&described_cluster);
    assert_eq!(weir_cluster[1..], java[0][1..], "brokers");
    let head = |f: &str| f.split(" controller=").next().unwrap().to_owned();
    assert_eq!(head(&weir_cluster[0]), head(&java[0][0]));
    let brokers: Vec<i32> = described_cluster.brokers.iter().map(|b| b.id).collect();
    assert_eq!(brokers, kafka.node_ids());
    assert!(brokers.contains(&described_cluster.controller.unwrap()));
    let java_controller: i32 = java[0][0].rsplit_once(" controller=").unwrap().1.parse().unwrap();
    assert!(brokers.contains(&java_controller), "{}", java[0][0]);
    assert!(described_cluster
        .brokers
        .iter()
        .all(|b| b.rack.as_deref() == Some(RACK)));

    // The topics, one answer per name in the order given, the unknown one with its own error.
    let got: Vec<&str> = described.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(got, names);
    let weir_topics: Vec<String> = described.iter().flat_map(|(n, d)| topic_facts(n, d)).collect();
    assert_eq!(weir_topics, java[1]);
    assert_eq!(
        java[1].len(),
        1 + 6 + 1 + 1 + 1 + 1 + described[3].1.as_ref().unwrap().partitions.len()
    );
    assert!(java[1].contains(&format!("topic {missing} error=UnknownTopicOrPartitionException")));
    assert_eq!(
        described[2].1.as_ref().unwrap_err().kafka_code(),
        Some(KafkaCode::UnknownTopicOrPartition)
    );
    let wide_t = described[0].1.as_ref().unwrap();
    assert_eq!((wide_t.partitions.len(), wide_t.replication_factor()), (6, 3));
    assert!(!wide_t.topic_id.is_zero() && !wide_t.internal);
    assert!(described[3].1.as_ref().unwrap().internal);
    for p in &wide_t.partitions {
        assert!(p.offline_replicas.is_empty() && p.error.is_none(), "{p:?}");
        assert!(p.leader_epoch >= 0, "{p:?}");
    }

    // Every topic: the same descriptions as asked by name.
    let all = admin.describe_topics(None).await.unwrap();
    let all_names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert!(all_names.windows(2).all(|w| w[0] < w[1]), "sorted: {all_names:?}");
    for (name, d) in &described {
        match all.iter().find(|(n, _)| n == name) {
            Some((_, a)) => assert_eq!(a.as_ref().unwrap(), d.as_ref().unwrap()),
            None => assert_eq!(name, &missing),
        }
    }
    assert!(admin.describe_topics(Some(&[])).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_altered_by_weir_are_seen_by_java_and_the_other_way_round() {
    let (kafka, admin) = setup();
    let (by_weir, by_java, missing) = (
        unique_name("conf-weir"),
        unique_name("conf-java"),
        unique_name("nope"),
    );
    blocking(|| {
        kafka.create_topic_with(&by_weir, 1, &[("cleanup.policy", "compact")]);
        kafka.create_topic(&by_java, 1);
    });
    let topic = ConfigResource::topic(&by_weir);

    // Validate only: accepted, nothing changes.
    let checked = admin
        .incremental_alter_configs(
            &[(topic.clone(), vec![AlterConfigOp::set("retention.ms", "1234567")])],
            true,
        )
        .await
        .unwrap();
    assert!(checked[0].1.is_ok(), "{checked:?}");
    let retention = entry(&admin, &topic, "retention.ms").await.unwrap();
    assert!(
        retention.is_default && retention.source == ConfigSource::DefaultConfig,
        "{retention:?}"
    );

    // One call, two resources: the one with an unknown name fails alone.
    let outcomes = admin
        .incremental_alter_configs(
            &[
                (
                    topic.clone(),
                    vec![
                        AlterConfigOp::set("retention.ms", "1234567"),
                        AlterConfigOp::append("cleanup.policy", "delete"),
                        AlterConfigOp::set("max.message.bytes", "300000"),
                    ],
                ),
                (
                    ConfigResource::topic(&by_java),
                    vec![AlterConfigOp::set("no.such.config", "1")],
                ),
            ],
            false,
        )
        .await
        .unwrap();
    assert!(outcomes[0].1.is_ok(), "{outcomes:?}");
    assert_eq!(
        outcomes[1].1.as_ref().unwrap_err().kafka_code(),
        Some(KafkaCode::InvalidConfig),
        "{outcomes:?}"
    );
    eventually("SET and APPEND applied", || async {
        let policy = entry(&admin, &topic, "cleanup.policy").await?;
        let retention = entry(&admin, &topic, "retention.ms").await?;
        match (policy.value.as_deref(), retention.value.as_deref()) {
            (Some("compact,delete"), Some("1234567")) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let retention = entry(&admin, &topic, "retention.ms").await.unwrap();
    assert_eq!(retention.source, ConfigSource::DynamicTopicConfig);
    assert!(!retention.is_default && !retention.read_only && !retention.sensitive);
    assert_eq!(
        (retention.synonyms[0].name.as_str(), retention.synonyms[0].source),
        ("retention.ms", ConfigSource::DynamicTopicConfig)
    );

    // SUBTRACT and DELETE.
    let outcomes = admin
        .incremental_alter_configs(
            &[(
                topic.clone(),
                vec![
                    AlterConfigOp::subtract("cleanup.policy", "compact"),
                    AlterConfigOp::delete("max.message.bytes"),
                ],
            )],
            false,
        )
        .await
        .unwrap();
    assert!(outcomes[0].1.is_ok(), "{outcomes:?}");
    eventually("SUBTRACT and DELETE applied", || async {
        let policy = entry(&admin, &topic, "cleanup.policy").await?;
        let max = entry(&admin, &topic, "max.message.bytes").await?;
        match (policy.value.as_deref(), max.is_default) {
            (Some("delete"), true) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // A broker's own configuration, altered on that broker.
    let broker = ConfigResource::broker(2);
    let outcomes = admin
        .incremental_alter_configs(
            &[(
                broker.clone(),
                vec![AlterConfigOp::set("log.cleaner.threads", "2")],
            )],
            false,
        )
        .await
        .unwrap();
    assert!(outcomes[0].1.is_ok(), "{outcomes:?}");
    eventually("broker 2's dynamic setting applied", || async {
        let e = entry(&admin, &broker, "log.cleaner.threads").await?;
        match (e.value.as_deref(), e.source) {
            (Some("2"), ConfigSource::DynamicBrokerConfig) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // What Java sees of both, after Java altered the other topic; then what weir reads of it.
    let java = java_sees(&[
        vec!["configs", "topic", &by_weir],
        vec!["configs", "broker", "2"],
        vec![
            "alter",
            "topic",
            &by_java,
            "set:retention.ms=7654321",
            "set:cleanup.policy=compact",
        ],
        vec!["configs", "topic", &missing],
    ]);
    let described = admin
        .describe_configs(&[topic.clone(), broker.clone(), ConfigResource::topic(&missing)])
        .await
        .unwrap();
    assert_eq!(config_facts(&described[0].1), java[0], "topic altered by weir");
    let seen = |facts: &[String], prefix: &str| facts.iter().any(|f| f.starts_with(prefix));
    assert!(
        seen(
            &java[0],
            "config retention.ms=1234567 source=DYNAMIC_TOPIC_CONFIG "
        ),
        "{:?}",
        java[0]
    );
    assert!(
        seen(
            &java[0],
            "config cleanup.policy=delete source=DYNAMIC_TOPIC_CONFIG "
        ),
        "{:?}",
        java[0]
    );
    assert!(
        seen(
            &java[1],
            "config log.cleaner.threads=2 source=DYNAMIC_BROKER_CONFIG "
        ),
        "{:?}",
        java[1]
    );
    assert_eq!(config_facts(&described[1].1), java[1], "broker 2");
    assert_eq!(java[2], ["altered"]);
    assert_eq!(config_facts(&described[2].1), java[3], "unknown topic");
    let broker_entries = described[1].1.as_ref().unwrap();
    assert!(
        broker_entries.iter().any(|e| e.read_only),
        "static broker settings are read only"
    );
    for e in broker_entries.iter().filter(|e| e.sensitive) {
        assert!(
            e.value.is_none() && e.synonyms.iter().all(|s| s.value.is_none()),
            "{e:?}"
        );
    }
    let by_java_topic = ConfigResource::topic(&by_java);
    eventually("Java's change read by weir", || async {
        let retention = entry(&admin, &by_java_topic, "retention.ms").await?;
        let policy = entry(&admin, &by_java_topic, "cleanup.policy").await?;
        match (
            retention.value.as_deref(),
            policy.value.as_deref(),
            retention.source,
        ) {
            (Some("7654321"), Some("compact"), ConfigSource::DynamicTopicConfig) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let again = java_sees(&[vec!["configs", "topic", &by_java]]);
    let described = admin.describe_configs(&[by_java_topic]).await.unwrap();
    assert_eq!(config_facts(&described[0].1), again[0], "topic altered by Java");
    assert!(
        seen(
            &again[0],
            "config retention.ms=7654321 source=DYNAMIC_TOPIC_CONFIG "
        ),
        "{:?}",
        again[0]
    );

    // The broker's setting removed again; a broker that does not exist is that resource's own error.
    let outcomes = admin
        .incremental_alter_configs(
            &[(broker.clone(), vec![AlterConfigOp::delete("log.cleaner.threads")])],
            false,
        )
        .await
        .unwrap();
    assert!(outcomes[0].1.is_ok(), "{outcomes:?}");
    eventually("broker 2's dynamic setting removed", || async {
        let e = entry(&admin, &broker, "log.cleaner.threads").await?;
        match e.source {
            ConfigSource::DynamicBrokerConfig => Err(format!("{e:?}")),
            _ => Ok(()),
        }
    })
    .await;
    let described = admin
        .describe_configs(&[ConfigResource::broker(99), ConfigResource::topic(&by_weir)])
        .await
        .unwrap();
    assert_eq!(
        described[0].1.as_ref().unwrap_err().kafka_code(),
        Some(KafkaCode::BrokerNotAvailable)
    );
    assert!(described[1].1.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_added_by_weir_are_seen_by_java() {
    let (kafka, admin) = setup();
    let (grown, placed, missing) = (unique_name("grown"), unique_name("placed"), unique_name("nope"));
    blocking(|| {
        kafka.create_topic(&grown, 2);
        kafka.create_topic(&placed, 1);
    });
    let count = |admin: Admin, name: String| async move {
        let d = admin
            .describe_topics(Some(&[name.as_str()]))
            .await
            .map_err(|e| e.to_string())?;
        let t = d[0].1.clone().map_err(|e| e.to_string())?;
        Ok::<_, String>(t)
    };

    // Validate only: accepted, nothing changes.
    let checked = admin
        .create_partitions(&[NewPartitions::increase_to(&grown, 5)], true)
        .await
        .unwrap();
    assert!(checked[0].1.is_ok(), "{checked:?}");
    assert_eq!(
        count(admin.clone(), grown.clone())
            .await
            .unwrap()
            .partitions
            .len(),
        2
    );

    // One call: grown to 5, placed to 3 on the replicas given, an unknown topic failing alone.
    let outcomes = admin
        .create_partitions(
            &[
                NewPartitions::increase_to(&grown, 5),
                NewPartitions::increase_to(&placed, 3).with_assignments(vec![vec![2, 3, 1], vec![3, 1, 2]]),
                NewPartitions::increase_to(&missing, 4),
            ],
            false,
        )
        .await
        .unwrap();
    let names: Vec<&str> = outcomes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [grown.as_str(), placed.as_str(), missing.as_str()]);
    assert!(outcomes[0].1.is_ok() && outcomes[1].1.is_ok(), "{outcomes:?}");
    assert_eq!(
        outcomes[2].1.as_ref().unwrap_err().kafka_code(),
        Some(KafkaCode::UnknownTopicOrPartition)
    );
    // Fewer partitions than the topic has: refused.
    let fewer = admin
        .create_partitions(&[NewPartitions::increase_to(&grown, 3)], false)
        .await
        .unwrap();
    assert_eq!(
        fewer[0].1.as_ref().unwrap_err().kafka_code(),
        Some(KafkaCode::InvalidPartitions)
    );

    for (name, want) in [(&grown, 5), (&placed, 3)] {
        eventually("new partitions led and in sync", || async {
            let t = count(admin.clone(), name.clone()).await?;
            let ready = t.partitions.len() == want
                && t.partitions
                    .iter()
                    .all(|p| p.leader.is_some() && p.isr.len() == 3);
            if ready {
                Ok(())
            } else {
                Err(format!("{t:?}"))
            }
        })
        .await;
    }
    let java = java_sees(&[vec!["topics", &grown, &placed]]);
    let described = admin
        .describe_topics(Some(&[grown.as_str(), placed.as_str()]))
        .await
        .unwrap();
    let weir_facts: Vec<String> = described.iter().flat_map(|(n, d)| topic_facts(n, d)).collect();
    assert_eq!(weir_facts, java[0]);
    assert_eq!(java[0].len(), 1 + 5 + 1 + 3);
    let placed_t = described[1].1.as_ref().unwrap();
    assert_eq!(placed_t.partitions[1].replicas, [2, 3, 1]);
    assert_eq!(placed_t.partitions[2].replicas, [3, 1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_deleted_by_weir_move_the_log_start_java_sees() {
    let (kafka, admin) = setup();
    let (topic, missing) = (unique_name("trimmed"), unique_name("nope"));
    blocking(|| kafka.create_topic(&topic, 3));
    let records = (0..10)
        .flat_map(|i| (0..3).map(move |p| (p, i)))
        .map(|(p, i)| ProducerRecord::new(topic.as_str(), format!("p{p}-{i}")).partition(p))
        .collect();
    produce(kafka, records).await;
    // The partitions are led by different brokers: each is asked of its own leader.
    let d = admin.describe_topics(Some(&[topic.as_str()])).await.unwrap();
    let leaders: std::collections::BTreeSet<i32> = d[0]
        .1
        .as_ref()
        .unwrap()
        .partitions
        .iter()
        .map(|p| p.leader.unwrap())
        .collect();
    assert!(leaders.len() > 1, "leaders {leaders:?}");

    let tp = |p| TopicPartition::new(topic.as_str(), p);
    let asked = [
        (tp(0), 4),
        (tp(1), DELETE_TO_HIGH_WATERMARK),
        (tp(2), 100),
        (tp(3), 1),
        (TopicPartition::new(missing.as_str(), 0), 1),
    ];
    let outcomes = admin.delete_records(&asked).await.unwrap();
    let got: Vec<(TopicPartition, Result<i64, Option<KafkaCode>>)> = outcomes
        .into_iter()
        .map(|(tp, o)| (tp, o.map_err(|e| e.kafka_code())))
        .collect();
    assert_eq!(
        got,
        vec![
            (tp(0), Ok(4)),
            (tp(1), Ok(10)),
            (tp(2), Err(Some(KafkaCode::OffsetOutOfRange))),
            (tp(3), Err(Some(KafkaCode::UnknownTopicOrPartition))),
            (
                TopicPartition::new(missing.as_str(), 0),
                Err(Some(KafkaCode::UnknownTopicOrPartition))
            ),
        ]
    );
    let twice = admin.delete_records(&[(tp(0), 5), (tp(0), 6)]).await.unwrap_err();
    assert!(matches!(twice, Error::InvalidArgument(_)), "{twice}");

    let java = java_sees(&[
        vec!["offsets", &topic, "earliest"],
        vec!["offsets", &topic, "latest"],
    ]);
    let earliest = admin
        .list_offsets_with_timestamps(&topic, OffsetSpec::Earliest)
        .await
        .unwrap();
    let latest = admin
        .list_offsets_with_timestamps(&topic, OffsetSpec::Latest)
        .await
        .unwrap();
    assert_eq!(offset_facts(&topic, &earliest), java[0]);
    assert_eq!(offset_facts(&topic, &latest), java[1]);
    assert_eq!(java[0].len(), 3);
    let starts: Vec<i64> = earliest.values().map(|o| o.unwrap().offset).collect();
    assert_eq!(starts, [4, 10, 0]);
    assert_eq!(
        admin.list_offsets(&topic, OffsetSpec::Earliest).await.unwrap(),
        std::collections::BTreeMap::from([(0, 4), (1, 10), (2, 0)])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_by_time_are_found_as_java_finds_them() {
    let (kafka, admin) = setup();
    let topic = unique_name("timed");
    blocking(|| kafka.create_topic(&topic, 2));
    // Ten minutes ago, a record a second on partition 0; partition 1 stays empty.
    let base = now_ms() - 600_000;
    let records = (0..5)
        .map(|i| {
            ProducerRecord::new(topic.as_str(), format!("r{i}"))
                .partition(0)
                .timestamp(base + i * 1000)
        })
        .collect();
    produce(kafka, records).await;

    let between = (base + 2500).to_string();
    let after = (base + 10_000).to_string();
    let java = java_sees(&[vec!["offsets", &topic, &between], vec!["offsets", &topic, &after]]);
    let found = admin
        .list_offsets_with_timestamps(&topic, OffsetSpec::Timestamp(base + 2500))
        .await
        .unwrap();
    assert_eq!(offset_facts(&topic, &found), java[0]);
    assert_eq!(
        java[0][0],
        format!("offset {topic} 0 offset=3 timestamp={}", base + 3000)
    );
    let first = found[&0].unwrap();
    assert_eq!((first.offset, first.timestamp), (3, Some(base + 3000)));
    assert_eq!(found[&1], None);
    let none = admin
        .list_offsets_with_timestamps(&topic, OffsetSpec::Timestamp(base + 10_000))
        .await
        .unwrap();
    assert_eq!(offset_facts(&topic, &none), java[1]);
    assert!(none.values().all(Option::is_none));
}

/// A consumer positioned before the log start DeleteRecords moved gets OffsetOutOfRange, handled as
/// `auto.offset.reset` says: `earliest` goes on from the new log start, `none` reports the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_before_the_new_log_start_follows_auto_offset_reset() {
    let (kafka, admin) = setup();
    let topic = unique_name("reset");
    blocking(|| kafka.create_topic(&topic, 1));
    let records = (0..10)
        .map(|i| ProducerRecord::new(topic.as_str(), format!("r{i}")).partition(0))
        .collect();
    produce(kafka, records).await;
    let tp = TopicPartition::new(topic.as_str(), 0);
    let deleted = admin.delete_records(&[(tp.clone(), 6)]).await.unwrap();
    assert_eq!(deleted[0].1.as_ref().unwrap(), &6);

    let consumer = |policy: &str| {
        let mut cfg = ConsumerConfig::new(&kafka.bootstrap());
        cfg.set("auto.offset.reset", policy).unwrap();
        Consumer::new(cfg).unwrap()
    };
    let deadline = || tokio::time::Instant::now() + Duration::from_secs(30);

    let c = consumer("earliest");
    c.assign(&[(tp.clone(), StartOffset::Offset(2))]).await.unwrap();
    let mut got = Vec::new();
    let until = deadline();
    while got.len() < 4 {
        assert!(tokio::time::Instant::now() < until, "only {got:?}");
        got.extend(c.poll(10, Duration::from_millis(200)).await.unwrap());
    }
    let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [6, 7, 8, 9]);
    assert_eq!(got[0].value.as_deref(), Some(&b"r6"[..]));
    c.close().await.unwrap();

    let c = consumer("none");
    c.assign(&[(tp.clone(), StartOffset::Offset(2))]).await.unwrap();
    let until = deadline();
    let err = loop {
        assert!(tokio::time::Instant::now() < until, "no OffsetOutOfRange error");
        match c.poll(10, Duration::from_millis(200)).await {
            Ok(records) => assert!(records.is_empty(), "{records:?}"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kafka_code(), Some(KafkaCode::OffsetOutOfRange), "{err}");
    assert!(err.to_string().contains(&format!("{topic}-0")), "{err}");
    c.close().await.unwrap();
}
