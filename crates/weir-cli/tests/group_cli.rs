//! `weir consume -G GROUP TOPIC...` against real Apache Kafka: members share partitions, print every record
//! once, commit and leave on SIGINT / SIGTERM, and a restarted member continues from the commits (inside
//! batches of many records).

#[path = "../../weir/tests/support/group.rs"]
mod group;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use weir_testkit::{unique_topic, Kafka};

/// Produces `range` records to each of `partitions`, values `p{P}-r{OFFSET}` (the weir
/// group tests' helper, on a runtime of its own: these tests are synchronous).
fn produce_numbered(broker: &Kafka, topic: &str, partitions: i32, range: std::ops::Range<i64>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(group::produce_numbered(broker, topic, partitions, range));
}

/// Group settings for fast tests: quick heartbeats so members notice rebalances fast, frequent auto-commits.
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

/// A `weir consume -G` process; stdout lines and stderr lines are collected by threads.
struct Member {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<Vec<String>>>,
    started: Instant,
}

impl Member {
    fn start(broker: &Kafka, group: &str, topic: &str, extra: &[&str]) -> Member {
        let b = broker.bootstrap();
        let mut args = vec!["consume", "-b", &b, "-G", group, topic, "-f", "%p %o %s\\n"];
        args.extend_from_slice(&GROUP_PROPS);
        args.extend_from_slice(extra);
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(&args)
            .env_remove("WEIR_BROKERS")
            .env("WEIR_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn weir");
        let (tx, lines) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for l in out.lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for l in err.lines() {
                let Ok(l) = l else { break };
                sink.lock().unwrap().push(l);
            }
        });
        Member {
            child,
            lines,
            stderr,
            started: Instant::now(),
        }
    }

    /// Records printed so far (partition, offset), checking each line's value.
    fn drain(&self, into: &mut Vec<(i32, i64)>) {
        while let Ok(l) = self.lines.try_recv() {
            let mut it = l.splitn(3, ' ');
            let p: i32 = it.next().unwrap().parse().unwrap();
            let o: i64 = it.next().unwrap().parse().unwrap();
            assert_eq!(it.next().unwrap(), format!("p{p}-r{o}"), "line {l:?}");
            into.push((p, o));
        }
    }

    /// The partitions of the latest "assigned" report on stderr, if any.
    fn assigned(&self) -> Option<Vec<i32>> {
        let err = self.stderr.lock().unwrap();
        let last = err
            .iter()
            .rev()
            .find_map(|l| l.split_once("rebalanced: assigned: "))?;
        Some(
            last.1
                .split(", ")
                .filter_map(|tp| tp.rsplit_once('[')?.1.strip_suffix(']')?.parse().ok())
                .collect(),
        )
    }

    fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Sends `sig` and waits (bounded) for the exit; returns whether it exited 0.
    fn stop(mut self, sig: &str, into: &mut Vec<(i32, i64)>) -> (bool, Duration, String) {
        let t = Instant::now();
        let kill = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = wait_bounded(&mut self.child, Duration::from_secs(30));
        let took = t.elapsed();
        // The stdout thread ends at EOF: take everything it read.
        std::thread::sleep(Duration::from_millis(100));
        self.drain(into);
        (status.is_some_and(|s| s.success()), took, self.stderr_text())
    }

    /// Waits (bounded) for the process to exit on its own.
    fn wait(mut self, into: &mut Vec<(i32, i64)>) -> (bool, String) {
        let status = wait_bounded(&mut self.child, Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(100));
        self.drain(into);
        (status.is_some_and(|s| s.success()), self.stderr_text())
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > until {
            let _ = child.kill();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn counts(records: &[(i32, i64)]) -> BTreeMap<(i32, i64), usize> {
    let mut c = BTreeMap::new();
    for r in records {
        *c.entry(*r).or_default() += 1;
    }
    c
}

#[test]
fn two_group_members_split_partitions_print_everything_once_and_resume_after_sigterm() {
    let broker = Kafka::shared();
    let topic = unique_topic("cli-grp");
    broker.create_topic(&topic, 4);
    let group = unique_topic("g-cli");
    produce_numbered(broker, &topic, 4, 0..10);

    let a = Member::start(broker, &group, &topic, &[]);
    let b = Member::start(broker, &group, &topic, &[]);
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    // Both members report 2 partitions each, together all 4.
    let until = Instant::now() + Duration::from_secs(60);
    let (pa, pb) = loop {
        a.drain(&mut seen_a);
        b.drain(&mut seen_b);
        if let (Some(pa), Some(pb)) = (a.assigned(), b.assigned()) {
            let mut all: Vec<i32> = pa.iter().chain(pb.iter()).copied().collect();
            all.sort();
            if pa.len() == 2 && pb.len() == 2 && all == [0, 1, 2, 3] {
                break (pa, pb);
            }
        }
        assert!(
            Instant::now() < until,
            "no 2/2 split:\nA:\n{}\nB:\n{}",
            a.stderr_text(),
            b.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    produce_numbered(broker, &topic, 4, 10..20);
    let until = Instant::now() + Duration::from_secs(60);
    while counts(&[seen_a.clone(), seen_b.clone()].concat()).len() < 80 {
        a.drain(&mut seen_a);
        b.drain(&mut seen_b);
        assert!(
            Instant::now() < until,
            "{} + {} records\nA:\n{}\nB:\n{}",
            seen_a.len(),
            seen_b.len(),
            a.stderr_text(),
            b.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Records produced after the split come from the member that owns their partition.
    assert!(
        seen_a.iter().filter(|r| r.1 >= 10).all(|r| pa.contains(&r.0)),
        "{seen_a:?}"
    );
    assert!(
        seen_b.iter().filter(|r| r.1 >= 10).all(|r| pb.contains(&r.0)),
        "{seen_b:?}"
    );
    assert_eq!(seen_a.iter().filter(|r| r.1 >= 10).count(), 20);
    assert_eq!(seen_b.iter().filter(|r| r.1 >= 10).count(), 20);

    // SIGINT to one, SIGTERM to the other: both commit, leave and exit 0 promptly.
    let (ok, took, err) = a.stop("-INT", &mut seen_a);
    assert!(ok, "SIGINT: not exit 0 ({took:?}): {err}");
    assert!(took < Duration::from_secs(10), "SIGINT took {took:?}");
    // B takes A's partitions over.
    let until = Instant::now() + Duration::from_secs(60);
    while b.assigned().is_none_or(|p| p.len() != 4) {
        b.drain(&mut seen_b);
        assert!(
            Instant::now() < until,
            "B did not take over:\n{}",
            b.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (ok, took, err) = b.stop("-TERM", &mut seen_b);
    assert!(ok, "SIGTERM: not exit 0 ({took:?}): {err}");
    assert!(took < Duration::from_secs(10), "SIGTERM took {took:?}");
    // Every record printed exactly once (revokes commit what was printed, so a handover re-reads nothing).
    let all = counts(&[seen_a.clone(), seen_b.clone()].concat());
    assert_eq!(all.len(), 80);
    let dups: Vec<_> = all.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicates: {dups:?}");

    // A restarted member continues from the commits: only the new records, then -e ends it (every assigned
    // partition at its end).
    produce_numbered(broker, &topic, 4, 20..25);
    let c = Member::start(broker, &group, &topic, &["-e"]);
    let started = c.started;
    let mut seen_c = Vec::new();
    let (ok, err) = c.wait(&mut seen_c);
    assert!(ok, "-e member failed after {:?}: {err}", started.elapsed());
    let want: Vec<(i32, i64)> = (0..4).flat_map(|p| (20..25).map(move |o| (p, o))).collect();
    let got: Vec<(i32, i64)> = counts(&seen_c).into_keys().collect();
    assert_eq!(got, want, "stderr: {err}");
    assert_eq!(seen_c.len(), 20, "duplicates: {seen_c:?}");
    assert!(err.contains("assigned: "), "{err}");
}

#[test]
fn group_mode_bad_arguments_are_usage_errors() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(args)
            .env_remove("WEIR_BROKERS")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    for args in [
        &["consume", "-b", "127.0.0.1:1", "-G", "g"][..],
        &["consume", "-b", "127.0.0.1:1", "-G", "g", "-p", "1", "t"],
        &["consume", "-b", "127.0.0.1:1", "-G", "g", "-o", "42", "t"],
        &[
            "consume",
            "-b",
            "127.0.0.1:1",
            "-G",
            "g",
            "-X",
            "partition.assignment.strategy=nope",
            "t",
        ],
        &["consume", "-b", "127.0.0.1:1", "t"],
        &["consume", "-b", "127.0.0.1:1", "-t", "x", "y"],
    ] {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
