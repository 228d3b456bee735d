//! Consumer group administration on real Apache Kafka, compared with what Kafka's own Java Admin client sees
//! on the same cluster (`tests/java/AdminGroups.java`, one fact per line): a classic group of weir members
//! and a consumer-protocol (KIP-848) group of Java consumers, listed and described the same way, with the
//! same committed offsets; reset plans, refused while members are live and applied once they left (a member
//! joining afterwards starts there); offsets and groups deleted, per partition and per group; a partition's
//! active producers after a weir idempotent producer wrote.

#[path = "support/group.rs"]
mod group;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use group::{group_config, produce_numbered};
use weir::admin::{GroupDescription, GroupFilter, GroupState, GroupType, ResetSpec};
use weir::config::{ClientConfig, ProducerConfig};
use weir::error::KafkaCode;
use weir::group::GroupConsumer;
use weir::{Admin, Error, Producer, ProducerRecord, TopicPartition};
use weir_testkit::{java, kafka_libs, run_with_timeout, unique_name, Kafka, Shape};

/// The cluster of this test binary: consumer-protocol members heartbeat every 500 ms (Kafka's default, 5 s,
/// would make a group of two take several seconds to settle).
fn cluster() -> &'static Kafka {
    static K: OnceLock<Kafka> = OnceLock::new();
    K.get_or_init(|| Kafka::start_with(Shape::Single, &[("group.consumer.heartbeat.interval.ms", "500")]))
}

fn admin() -> Admin {
    let mut c = ClientConfig::new(&cluster().bootstrap());
    c.set("request.timeout.ms", "10000").unwrap();
    c.set("max.block.ms", "20000").unwrap();
    Admin::new(c).unwrap()
}

fn tp(topic: &str, p: i32) -> TopicPartition {
    TopicPartition::new(topic, p)
}

/// Retries `check` until it returns `Ok`, for at most 60 s (group changes reach the coordinator's state a
/// moment after the members' calls return); panics with `what` and the last finding.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match check().await {
            Ok(t) => return t,
            Err(e) if Instant::now() >= deadline => panic!("{what}: still not after 60 s: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The Java program's command line, on the broker's jars.
fn java_command() -> Command {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java/AdminGroups.java");
    let mut cmd = Command::new(java().unwrap_or_else(|e| panic!("{e}")));
    cmd.args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp"])
        .arg(kafka_libs().unwrap_or_else(|e| panic!("{e}")).join("*"))
        .arg(source);
    cmd
}

/// Runs admin steps of `AdminGroups.java` in one JVM; returns the facts it printed (without the `AG ` prefix
/// and the `done` markers).
fn java_admin(steps: &[Vec<String>]) -> Vec<String> {
    let mut cmd = java_command();
    for (i, s) in steps.iter().enumerate() {
        if i > 0 {
            cmd.arg("--");
        }
        cmd.args(s);
    }
    let out = run_with_timeout(cmd, None, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let facts: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("AG ")).collect();
    let done = facts.iter().filter(|f| f.starts_with("done ")).count();
    assert!(
        out.status.success() && done == steps.len(),
        "AdminGroups.java finished {done} of {} steps ({}); stdout:\n{stdout}\nstderr:\n{}",
        steps.len(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    facts
        .into_iter()
        .filter(|f| !f.starts_with("done "))
        .map(normalize)
        .collect()
}

/// Java names group types `Classic`, `Consumer`; weir `classic`, `consumer`.
fn normalize(fact: &str) -> String {
    fact.split(' ')
        .map(|w| match w.strip_prefix("type=") {
            Some(t) => format!("type={}", t.to_lowercase()),
            None => w.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn step(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// Consumer-protocol members run by `AdminGroups.java consumers`; they leave when closed (or killed on drop).
struct JavaConsumers {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl JavaConsumers {
    fn start(group: &str, topic: &str, n: usize) -> JavaConsumers {
        let mut cmd = java_command();
        cmd.args(["consumers", &cluster().bootstrap(), group, topic, &n.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start the Java consumers");
        let lines: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let stderr: Arc<Mutex<Vec<String>>> = Arc::default();
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(f) = line.strip_prefix("AG ") {
                    l.0.lock().unwrap().push(f.to_owned());
                    l.1.notify_all();
                }
            }
            l.0.lock().unwrap().push("(exited)".into());
            l.1.notify_all();
        });
        let e = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                e.lock().unwrap().push(line);
            }
        });
        JavaConsumers {
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
        }
    }

    /// Waits (blocking; call from `spawn_blocking`) until `done` holds for the facts so far, at most 60 s.
    fn wait(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let (m, cv) = &*self.lines;
        let mut l = m.lock().unwrap();
        while !done(&l) {
            let now = Instant::now();
            if now >= deadline || l.last().is_some_and(|f| f == "(exited)") {
                panic!(
                    "Java consumers: {what}: not after 60 s; facts:\n{}\nstderr tail:\n{}",
                    l.join("\n"),
                    self.stderr
                        .lock()
                        .unwrap()
                        .iter()
                        .rev()
                        .take(30)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            l = cv.wait_timeout(l, deadline - now).unwrap().0;
        }
    }

    /// Each consumer's latest assignment (client id -> partitions, "-" for none).
    fn assignments(facts: &[String]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for f in facts {
            if let Some(rest) = f.strip_prefix("assigned ") {
                if let Some((client, parts)) = rest.split_once(' ') {
                    out.insert(client.to_owned(), parts.to_owned());
                }
            }
        }
        out
    }

    /// The latest offset committed per partition (`T-P` -> offset), by any consumer.
    fn committed(facts: &[String]) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        for f in facts {
            if let Some(rest) = f.strip_prefix("committed ") {
                let parts = rest.split_once(' ').map_or("", |(_, p)| p);
                for kv in parts.split(',') {
                    if let Some((tp, o)) = kv.split_once('=') {
                        out.insert(tp.to_owned(), o.parse().unwrap());
                    }
                }
            }
        }
        out
    }

    /// Closes stdin: the consumers leave the group and the JVM exits (within 60 s).
    fn close(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "Java consumers exited with {status}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Java consumers did not close within 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let facts = self.lines.0.lock().unwrap();
        assert!(facts.iter().any(|f| f == "closed"), "Java consumers: {facts:?}");
    }
}

impl Drop for JavaConsumers {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A partition's committed offset, log end and lag.
type OffsetRow = (TopicPartition, Option<i64>, Option<i64>, Option<i64>);

fn dash<T: ToString>(v: Option<T>) -> String {
    v.map_or("-".into(), |x| x.to_string())
}

fn partition_list(tps: &[TopicPartition]) -> String {
    let names: BTreeSet<String> = tps.iter().map(|tp| tp.to_string()).collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.into_iter().collect::<Vec<_>>().join(",")
    }
}

/// weir's description in the facts `AdminGroups.java describe` prints.
fn describe_facts(id: &str, d: &weir::Result<GroupDescription>) -> Vec<String> {
    let d = match d {
        Ok(d) => d,
        Err(Error::Kafka {
            code: KafkaCode::GroupIdNotFound,
            ..
        }) => return vec![format!("error {id} GroupIdNotFoundException")],
        Err(e) => return vec![format!("error {id} {e}")],
    };
    let mut out = vec![format!(
        "group {id} type={} state={} assignor={} coordinator={} members={} groupEpoch={} targetEpoch={}",
        d.group_type,
        d.state,
        if d.protocol.is_empty() { "-" } else { &d.protocol },
        d.coordinator,
        d.members.len(),
        dash(d.group_epoch),
        dash(d.assignment_epoch),
    )];
    for m in &d.members {
        out.push(format!(
            "member {id} {} client={} host={} instance={} epoch={} assignment={} target={}",
            m.member_id,
            m.client_id,
            m.host,
            dash(m.instance_id.clone()),
            dash(m.member_epoch),
            partition_list(&m.assignment),
            m.target_assignment.as_deref().map_or("-".into(), partition_list),
        ));
    }
    out
}

/// A weir group member (classic protocol) with client id `client`, subscribed to `topic`.
fn weir_member(group: &str, topic: &str, client: &str) -> GroupConsumer {
    let m = GroupConsumer::new(group_config(cluster(), group, &[("client.id", client)])).unwrap();
    m.subscribe(&[topic]);
    m
}

/// Polls `members` until they hold `partitions` partitions between them (each at least one) and have
/// delivered `records` records in all.
async fn consume_all(members: &[&GroupConsumer], partitions: usize, records: usize) {
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for m in members {
            seen += m.poll(100, Duration::from_millis(50)).await.unwrap().len();
        }
        let owned: Vec<usize> = members.iter().map(|m| m.assignment().len()).collect();
        if seen >= records && owned.iter().all(|&n| n > 0) && owned.iter().sum::<usize>() == partitions {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "members own {owned:?} of {partitions} partitions, {seen} of {records} records"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_and_consumer_protocol_groups_are_seen_as_java_sees_them() {
    let admin = admin();
    let b = cluster().bootstrap();

    // A classic group of two weir members over 3 partitions, 10 records each, all read and committed; then 5
    // more records on partition 0, not read: lag 5 there.
    let classic_topic = unique_name("ag-classic");
    cluster().create_topic(&classic_topic, 3);
    produce_numbered(cluster(), &classic_topic, 3, 0..10).await;
    let classic = unique_name("g-classic");
    let a = weir_member(&classic, &classic_topic, "weir-a");
    let bm = weir_member(&classic, &classic_topic, "weir-b");
    consume_all(&[&a, &bm], 3, 30).await;

    // A consumer-protocol group of two Java consumers over 2 partitions of 10 records, read and committed.
    let kip848_topic = unique_name("ag-kip848");
    cluster().create_topic(&kip848_topic, 2);
    produce_numbered(cluster(), &kip848_topic, 2, 0..10).await;
    let kip848 = unique_name("g-kip848");
    let java = Arc::new(JavaConsumers::start(&kip848, &kip848_topic, 2));
    let j = java.clone();
    let t = kip848_topic.clone();
    tokio::task::spawn_blocking(move || {
        j.wait("both assigned and everything committed", |facts| {
            let assigned = JavaConsumers::assignments(facts);
            let committed = JavaConsumers::committed(facts);
            assigned.len() == 2
                && assigned.values().all(|p| p != "-")
                && (0..2).all(|p| committed.get(&format!("{t}-{p}")) == Some(&10))
        })
    })
    .await
    .unwrap();

    // The classic group's commits (auto-commit every 200 ms) and the unread records.
    eventually("the classic group committed everything", || async {
        let offsets = admin
            .list_group_offsets(&classic, None)
            .await
            .map_err(|e| e.to_string())?;
        let committed: Vec<Option<i64>> = offsets.iter().map(|o| o.committed).collect();
        (committed == [Some(10); 3])
            .then_some(())
            .ok_or(format!("{offsets:?}"))
    })
    .await;
    let producer = Producer::new(ProducerConfig::new(&b)).unwrap();
    for i in 0..5 {
        producer
            .send(ProducerRecord::new(classic_topic.as_str(), format!("late-{i}")).partition(0))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    producer.close().await.unwrap();

    // Both groups settled: the classic one Stable; the consumer-protocol one Stable with every member owning
    // its target assignment.
    let missing = unique_name("g-missing");
    let ids = [classic.as_str(), kip848.as_str(), missing.as_str()];
    eventually("both groups stable", || async {
        let described = admin.describe_groups(&ids).await.map_err(|e| e.to_string())?;
        let settled = described[..2].iter().all(|(_, d)| {
            d.as_ref().is_ok_and(|d| {
                d.state == GroupState::Stable
                    && d.members.len() == 2
                    && d.members.iter().all(|m| {
                        !m.assignment.is_empty()
                            && m.target_assignment.as_ref().is_none_or(|t| *t == m.assignment)
                    })
            })
        });
        settled.then_some(()).ok_or(format!("{described:?}"))
    })
    .await;

    // weir's view, typed.
    let described = admin.describe_groups(&ids).await.unwrap();
    assert_eq!(described.len(), 3);
    let c = described[0].1.as_ref().unwrap();
    assert_eq!(
        (
            c.group_type.clone(),
            c.protocol_type.as_str(),
            c.protocol.as_str()
        ),
        (GroupType::Classic, "consumer", "range")
    );
    let clients: Vec<&str> = c.members.iter().map(|m| m.client_id.as_str()).collect();
    assert_eq!(
        clients.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from(["weir-a", "weir-b"])
    );
    let member_ids: BTreeSet<String> = [a.member().0, bm.member().0].into();
    assert_eq!(
        c.members
            .iter()
            .map(|m| m.member_id.clone())
            .collect::<BTreeSet<_>>(),
        member_ids
    );
    for m in &c.members {
        let owner = if m.client_id == "weir-a" { &a } else { &bm };
        let mut owned = owner.assignment();
        owned.sort();
        assert_eq!(m.assignment, owned, "{}", m.client_id);
        assert!(m.host.contains("127.0.0.1"), "{}", m.host);
    }
    let k = described[1].1.as_ref().unwrap();
    assert_eq!(k.group_type, GroupType::Consumer);
    assert!(k.group_epoch.is_some() && k.assignment_epoch.is_some());
    let all: BTreeSet<TopicPartition> = k.members.iter().flat_map(|m| m.assignment.clone()).collect();
    assert_eq!(all, BTreeSet::from([tp(&kip848_topic, 0), tp(&kip848_topic, 1)]));
    assert!(k
        .members
        .iter()
        .all(|m| m.subscribed_topics == [kip848_topic.clone()]));
    let e = described[2].1.as_ref().unwrap_err();
    assert_eq!(e.kafka_code(), Some(KafkaCode::GroupIdNotFound), "{e}");

    let offsets = admin.list_group_offsets(&classic, None).await.unwrap();
    let rows: Vec<OffsetRow> = offsets
        .iter()
        .map(|o| (o.partition.clone(), o.committed, o.log_end, o.lag))
        .collect();
    assert_eq!(
        rows,
        vec![
            (tp(&classic_topic, 0), Some(10), Some(15), Some(5)),
            (tp(&classic_topic, 1), Some(10), Some(10), Some(0)),
            (tp(&classic_topic, 2), Some(10), Some(10), Some(0)),
        ]
    );
    let by_type = admin
        .list_groups(&GroupFilter::all().with_type(GroupType::Consumer))
        .await
        .unwrap();
    assert!(by_type.iter().any(|g| g.group_id == kip848) && !by_type.iter().any(|g| g.group_id == classic));
    let stable = admin
        .list_groups(&GroupFilter::consumer_groups().with_state(GroupState::Stable))
        .await
        .unwrap();
    assert!(stable.iter().any(|g| g.group_id == kip848) && stable.iter().any(|g| g.group_id == classic));
    let empty = admin
        .list_groups(&GroupFilter::all().with_state(GroupState::Empty))
        .await
        .unwrap();
    assert!(!empty
        .iter()
        .any(|g| g.group_id == kip848 || g.group_id == classic));

    // Java's view of the same groups, fact by fact (asked again if a group changed between the two looks).
    let java_steps = [
        step(&["list", &b]),
        step(&["describe", &b, &classic, &kip848, &missing]),
        step(&["offsets", &b, &classic]),
        step(&["offsets", &b, &kip848]),
    ];
    let mut attempts = 0;
    loop {
        attempts += 1;
        let java_facts = tokio::task::spawn_blocking({
            let steps = java_steps.to_vec();
            move || java_admin(&steps)
        })
        .await
        .unwrap();
        let mut ours: Vec<String> = Vec::new();
        for g in admin.list_groups(&GroupFilter::all()).await.unwrap() {
            if g.group_id == classic || g.group_id == kip848 {
                ours.push(format!(
                    "group {} type={} state={} protocol={}",
                    g.group_id,
                    g.group_type,
                    dash(g.state),
                    if g.protocol_type.is_empty() {
                        "-"
                    } else {
                        &g.protocol_type
                    }
                ));
            }
        }
        let mut described = admin.describe_groups(&ids).await.unwrap();
        described.sort_by(|x, y| x.0.cmp(&y.0));
        for (id, d) in &described {
            ours.extend(describe_facts(id, d));
        }
        for g in [&classic, &kip848] {
            for o in admin.list_group_offsets(g, None).await.unwrap() {
                ours.push(format!("offset {g} {} {}", o.partition, o.committed.unwrap()));
            }
        }
        let theirs: Vec<String> = java_facts
            .into_iter()
            .filter(|f| {
                // `list` lines of other tests' groups are left out above; describe lines name only ours.
                !f.starts_with("group ")
                    || f.split(' ')
                        .nth(1)
                        .is_some_and(|id| id == classic || id == kip848)
            })
            .collect();
        // `list` facts come first in both, then describe (sorted by group id), then offsets.
        if ours == theirs {
            break;
        }
        assert!(
            attempts < 3,
            "weir and Java disagree:\nweir:\n{}\nJava:\n{}",
            ours.join("\n"),
            theirs.join("\n")
        );
    }

    a.close().await.unwrap();
    bm.close().await.unwrap();
    tokio::task::spawn_blocking(move || Arc::try_unwrap(java).ok().expect("one owner").close())
        .await
        .unwrap();
    // Gone from the group: both groups Empty, their offsets kept.
    eventually("both groups empty", || async {
        let d = admin
            .describe_groups(&ids[..2])
            .await
            .map_err(|e| e.to_string())?;
        d.iter()
            .all(|(_, d)| {
                d.as_ref()
                    .is_ok_and(|d| d.state == GroupState::Empty && d.members.is_empty())
            })
            .then_some(())
            .ok_or(format!("{d:?}"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_reset_only_once_the_members_left_and_a_new_member_starts_there() {
    let admin = admin();
    let topic = unique_name("ag-reset");
    cluster().create_topic(&topic, 2);
    produce_numbered(cluster(), &topic, 2, 0..20).await;
    let group = unique_name("g-reset");
    let member = weir_member(&group, &topic, "weir-reset");
    consume_all(&[&member], 2, 40).await;
    let parts = [tp(&topic, 0), tp(&topic, 1)];
    eventually("committed at the end", || async {
        let o = admin
            .list_group_offsets(&group, Some(&parts))
            .await
            .map_err(|e| e.to_string())?;
        o.iter()
            .all(|o| o.committed == Some(20) && o.lag == Some(0))
            .then_some(())
            .ok_or(format!("{o:?}"))
    })
    .await;

    // Plans for every kind of spec; nothing is committed by planning.
    let new_offsets = |plan: &weir::admin::ResetPlan| -> Vec<(Option<i64>, i64)> {
        assert_eq!(
            plan.offsets
                .iter()
                .map(|p| p.partition.clone())
                .collect::<Vec<_>>(),
            parts
        );
        plan.offsets.iter().map(|p| (p.current, p.new)).collect()
    };
    let far_future = 4_000_000_000_000;
    for (spec, want) in [
        (ResetSpec::Earliest, 0),
        (ResetSpec::Latest, 20),
        (ResetSpec::ShiftBy(-7), 13),
        (ResetSpec::ShiftBy(-100), 0),
        (ResetSpec::ShiftBy(100), 20),
        (ResetSpec::Offset(99), 20),
        (ResetSpec::Timestamp(0), 0),
        (ResetSpec::Timestamp(far_future), 20),
    ] {
        let plan = admin.reset_offsets(&group, &parts, spec).await.unwrap();
        assert_eq!(new_offsets(&plan), [(Some(20), want); 2], "{spec:?}");
    }
    let plan = admin
        .reset_offsets(&group, &parts, ResetSpec::Offset(5))
        .await
        .unwrap();
    assert_eq!(new_offsets(&plan), [(Some(20), 5); 2]);
    assert!(!plan.state.is_inactive(), "{:?}", plan.state);
    let missing = admin
        .reset_offsets(&group, &[tp(&topic, 7)], ResetSpec::Earliest)
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::UnknownTopic(_)), "{missing}");

    // Refused while the member is live: nothing committed.
    let refused = admin.apply_reset(&plan).await.unwrap_err();
    assert_eq!(refused.kafka_code(), Some(KafkaCode::NonEmptyGroup), "{refused}");
    let offsets = admin.list_group_offsets(&group, None).await.unwrap();
    assert!(offsets.iter().all(|o| o.committed == Some(20)), "{offsets:?}");

    // Applied once it left.
    member.close().await.unwrap();
    eventually("the group empty", || async {
        let d = admin
            .describe_groups(&[group.as_str()])
            .await
            .map_err(|e| e.to_string())?;
        match &d[0].1 {
            Ok(g) if g.state == GroupState::Empty => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let applied = admin.apply_reset(&plan).await.unwrap();
    assert_eq!(applied.len(), 2);
    for (p, outcome) in &applied {
        assert!(outcome.is_ok(), "{p}: {outcome:?}");
    }
    let offsets = admin.list_group_offsets(&group, None).await.unwrap();
    let rows: Vec<(Option<i64>, Option<i64>)> = offsets.iter().map(|o| (o.committed, o.lag)).collect();
    assert_eq!(rows, [(Some(5), Some(15)); 2]);

    // A member joining afterwards starts at the reset offsets.
    let again = weir_member(&group, &topic, "weir-reset-2");
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    let mut count = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while count < 30 {
        for r in again.poll(100, Duration::from_millis(50)).await.unwrap() {
            assert_eq!(
                r.value.as_deref().unwrap(),
                format!("p{}-r{}", r.partition, r.offset).as_bytes()
            );
            first.entry(r.partition).or_insert(r.offset);
            count += 1;
        }
        assert!(Instant::now() < deadline, "{count} records: {first:?}");
    }
    assert_eq!(first, BTreeMap::from([(0, 5), (1, 5)]));
    assert_eq!(count, 30);
    again.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_and_groups_are_deleted_per_partition_and_per_group() {
    let admin = admin();
    let topic = unique_name("ag-delete");
    cluster().create_topic(&topic, 2);
    produce_numbered(cluster(), &topic, 2, 0..10).await;

    // A group with offsets and no members: made by an admin commit.
    let idle = unique_name("g-idle");
    let committed = admin
        .alter_group_offsets(&idle, &[(tp(&topic, 0), 3), (tp(&topic, 1), 4)])
        .await
        .unwrap();
    assert!(committed.iter().all(|(_, r)| r.is_ok()), "{committed:?}");
    let rows: Vec<(Option<i64>, Option<i64>)> = admin
        .list_group_offsets(&idle, None)
        .await
        .unwrap()
        .iter()
        .map(|o| (o.committed, o.lag))
        .collect();
    assert_eq!(rows, [(Some(3), Some(7)), (Some(4), Some(6))]);
    let deleted = admin.delete_group_offsets(&idle, &[tp(&topic, 1)]).await.unwrap();
    assert_eq!(deleted.len(), 1);
    deleted[0].1.clone().unwrap();
    let left: Vec<TopicPartition> = admin
        .list_group_offsets(&idle, None)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.partition)
        .collect();
    assert_eq!(left, [tp(&topic, 0)]);
    let asked = admin
        .list_group_offsets(&idle, Some(&[tp(&topic, 1)]))
        .await
        .unwrap();
    assert_eq!(
        (asked[0].committed, asked[0].log_end, asked[0].lag),
        (None, Some(10), None)
    );

    // A live group: its subscribed topic's offsets stay, per partition; the group itself is not deleted.
    let live = unique_name("g-live");
    let member = weir_member(&live, &topic, "weir-live");
    consume_all(&[&member], 2, 20).await;
    eventually("the live group committed", || async {
        let o = admin
            .list_group_offsets(&live, None)
            .await
            .map_err(|e| e.to_string())?;
        (o.len() == 2).then_some(()).ok_or(format!("{o:?}"))
    })
    .await;
    let refused = admin.delete_group_offsets(&live, &[tp(&topic, 0)]).await.unwrap();
    let e = refused[0].1.clone().unwrap_err();
    assert_eq!(e.kafka_code(), Some(KafkaCode::GroupSubscribedToTopic), "{e}");
    // Committing as an administrator into a live group is refused by Kafka, per partition.
    let intruding = admin
        .alter_group_offsets(&live, &[(tp(&topic, 0), 1)])
        .await
        .unwrap();
    assert!(intruding[0].1.is_err(), "{intruding:?}");

    let missing = unique_name("g-never");
    let outcomes = admin
        .delete_groups(&[idle.as_str(), live.as_str(), missing.as_str(), idle.as_str()])
        .await
        .unwrap();
    let ids: Vec<&str> = outcomes.iter().map(|(g, _)| g.as_str()).collect();
    assert_eq!(
        ids,
        [idle.as_str(), live.as_str(), missing.as_str()],
        "one outcome per distinct group"
    );
    outcomes[0].1.clone().unwrap();
    assert_eq!(
        outcomes[1].1.clone().unwrap_err().kafka_code(),
        Some(KafkaCode::NonEmptyGroup)
    );
    assert_eq!(
        outcomes[2].1.clone().unwrap_err().kafka_code(),
        Some(KafkaCode::GroupIdNotFound)
    );
    let listed = admin.list_groups(&GroupFilter::all()).await.unwrap();
    assert!(!listed.iter().any(|g| g.group_id == idle), "deleted: {listed:?}");
    assert!(listed.iter().any(|g| g.group_id == live));
    let d = admin.describe_groups(&[idle.as_str()]).await.unwrap();
    assert_eq!(
        d[0].1.as_ref().unwrap_err().kafka_code(),
        Some(KafkaCode::GroupIdNotFound)
    );

    member.close().await.unwrap();
    eventually("the live group deleted once empty", || async {
        let o = admin
            .delete_groups(&[live.as_str()])
            .await
            .map_err(|e| e.to_string())?;
        o[0].1.clone().map_err(|e| e.to_string())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_producers_are_described_as_java_describes_them() {
    let admin = admin();
    let topic = unique_name("ag-producers");
    cluster().create_topic(&topic, 2);
    let producer = Producer::new(ProducerConfig::new(&cluster().bootstrap())).unwrap();
    let mut last = None;
    for i in 0..3i64 {
        let d = producer
            .send(
                ProducerRecord::new(topic.as_str(), format!("v{i}"))
                    .partition(0)
                    .timestamp(1_700_000_000_000 + i),
            )
            .await
            .unwrap();
        last = Some(d.await.unwrap());
    }
    assert_eq!(last.unwrap().offset, 2);
    producer.close().await.unwrap();

    let asked = [tp(&topic, 0), tp(&topic, 1), tp(&topic, 7)];
    let described = admin.describe_producers(&asked).await.unwrap();
    assert_eq!(
        described.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
        asked
    );
    let on_0 = described[0].1.as_ref().unwrap();
    assert_eq!(on_0.len(), 1, "{on_0:?}");
    let p = on_0[0];
    assert!(p.producer_id >= 0);
    assert_eq!(
        (p.producer_epoch, p.last_sequence, p.last_timestamp),
        (0, 2, 1_700_000_000_002)
    );
    assert_eq!((p.coordinator_epoch, p.current_txn_start_offset), (None, None));
    assert!(described[1].1.as_ref().unwrap().is_empty());
    assert!(
        matches!(described[2].1, Err(Error::UnknownTopic(_))),
        "{:?}",
        described[2].1
    );

    let b = cluster().bootstrap();
    let (p0, p1) = (format!("{topic}-0"), format!("{topic}-1"));
    let java = tokio::task::spawn_blocking(move || java_admin(&[step(&["producers", &b, &p0, &p1])]))
        .await
        .unwrap();
    let ours: Vec<String> = described[..2]
        .iter()
        .flat_map(|(tp, producers)| {
            producers.as_ref().unwrap().iter().map(move |s| {
                format!(
                    "producer {tp} id={} epoch={} lastSequence={} lastTimestamp={} coordinatorEpoch={} txnStartOffset={}",
                    s.producer_id,
                    s.producer_epoch,
                    s.last_sequence,
                    s.last_timestamp,
                    dash(s.coordinator_epoch),
                    dash(s.current_txn_start_offset)
                )
            })
        })
        .collect();
    assert_eq!(ours, java);
}
