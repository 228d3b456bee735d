//! Tests of the harness itself: real Kafka clusters, kcat and Python on librdkafka 2.16.

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use weir_testkit::{unique_name, Kafka, Kcat, Python, Shape};

fn process_alive(pid: u32) -> bool {
    // A zombie still has /proc/PID, so look at its state too.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

#[test]
fn kcat_roundtrip_on_the_shared_cluster() {
    let Some(kcat) = Kcat::require_or_skip() else {
        return;
    };
    let kafka = Kafka::shared();
    assert!(kafka.version().starts_with("4."), "Kafka {}", kafka.version());
    eprintln!(
        "shared single-node Kafka {} started in {:?}",
        kafka.version(),
        kafka.started_in()
    );
    let topic = unique_name("harness");
    kafka.create_topic(&topic, 3);

    let lines: String = (0..10).map(|i| format!("line-{i}\n")).collect();
    let out = kcat.produce(&kafka.bootstrap(), &topic, Some(1), lines.as_bytes(), &[]);
    assert!(
        out.status.success(),
        "kcat -P failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let got = kcat.consume_all(&kafka.bootstrap(), &topic, "%p %o %s\n", &[]);
    let expected: String = (0..10).map(|i| format!("1 {i} line-{i}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&got), expected);
}

#[test]
fn unique_names_differ() {
    let t1 = unique_name("t");
    let t2 = unique_name("t");
    assert_ne!(t1, t2);
    assert!(t1.starts_with(&format!("t-{}-", std::process::id())));
}

/// The three-node shape: every node lists every other, a topic gets three replicas, a killed node's port closes
/// and the node comes back on restart; dropping the cluster kills every JVM and removes its storage.
#[test]
fn three_nodes_start_kill_restart_and_drop() {
    let mut kafka = Kafka::start(Shape::Three);
    eprintln!(
        "three-node Kafka {} started in {:?}",
        kafka.version(),
        kafka.started_in()
    );
    assert_eq!(kafka.node_ids(), vec![1, 2, 3]);
    assert_eq!(kafka.bootstrap().split(',').count(), 3);
    let topic = unique_name("three");
    kafka.create_topic(&topic, 3);
    let leader = kafka.leader(&topic, 0);
    let port = kafka.port(leader);
    let pid = kafka.pid(leader).unwrap();
    kafka.kill(leader);
    assert!(!process_alive(pid), "node {leader} (pid {pid}) survived SIGKILL");
    assert!(!port_open(port));
    assert!(kafka.pid(leader).is_none());
    let new_leader = kafka.leader_other_than(&topic, 0, leader);
    assert_ne!(new_leader, leader);
    kafka.restart(leader);
    assert!(
        port_open(port),
        "restarted node {leader} does not listen on {port}"
    );
    let pids: Vec<u32> = kafka
        .node_ids()
        .iter()
        .map(|id| kafka.pid(*id).unwrap())
        .collect();
    let dir = kafka
        .log_path(1)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(dir.is_dir());
    drop(kafka);
    for pid in pids {
        assert!(!process_alive(pid), "Kafka pid {pid} still running after drop");
    }
    assert!(!dir.exists(), "{} not removed", dir.display());
}

/// A cluster that cannot start says why and where to read, at once: here a setting Kafka refuses.
#[test]
fn a_broker_that_cannot_start_names_the_cause_and_the_log() {
    let t0 = Instant::now();
    let err = Kafka::try_start(Shape::Single, &[("num.network.threads", "not-a-number")]).unwrap_err();
    assert!(err.contains("num.network.threads"), "{err}");
    assert!(err.contains(".log"), "no log named: {err}");
    assert!(t0.elapsed() < Duration::from_secs(60), "took {:?}", t0.elapsed());
}

/// No Java: the message names the cause, with nothing started. (In a child process: the variable is global.)
#[test]
fn no_java_is_a_clear_error() {
    const CHILD_ENV: &str = "WEIR_TESTKIT_NO_JAVA_CHILD";
    if std::env::var_os(CHILD_ENV).is_some() {
        let err = Kafka::try_start(Shape::Single, &[]).unwrap_err();
        println!("ERR {err}");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["no_java_is_a_clear_error", "--exact", "--nocapture"])
        .env(CHILD_ENV, "1")
        .env_remove("JAVA_HOME")
        .env("WEIR_JAVA", "")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ERR no Java runtime"), "{stdout}");
}

/// A cluster that is never dropped (a `static`, `process::exit`, an abort, a runner's SIGKILL) must still
/// not outlive the test process: the watchdog sees its stdin pipe close and kills the JVM.
#[test]
fn kafka_is_stopped_when_the_test_process_dies_without_dropping_it() {
    const CHILD_ENV: &str = "WEIR_TESTKIT_EXIT_WITHOUT_DROP";
    if std::env::var_os(CHILD_ENV).is_some() {
        let kafka = Kafka::shared();
        println!("BROKER {} {}", kafka.pid(1).unwrap(), kafka.port(1));
        std::process::exit(0); // skips every destructor
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "kafka_is_stopped_when_the_test_process_dies_without_dropping_it",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BROKER "))
        .unwrap_or_else(|| {
            panic!(
                "child printed no broker: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let mut it = line.split_whitespace().map(|s| s.parse::<u32>().unwrap());
    let (pid, port) = (it.next().unwrap(), it.next().unwrap() as u16);
    // The JVM's main thread can be a zombie while its other threads still hold the sockets: wait for both.
    let deadline = Instant::now() + Duration::from_secs(10);
    while (process_alive(pid) || port_open(port)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !process_alive(pid),
        "orphaned Kafka pid {pid} still running 10 s after its test process exited"
    );
    assert!(
        !port_open(port),
        "port {port} still open 10 s after its test process exited"
    );
}

#[test]
fn python_confluent_kafka_sees_the_topic() {
    let Some(py) = Python::require_or_skip() else {
        return;
    };
    assert!(py.librdkafka_version().starts_with("2.16."));
    let kafka = Kafka::shared();
    let topic = unique_name("py");
    kafka.create_topic(&topic, 2);
    let code = r#"
import sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(timeout=10)
print(len(md.topics[sys.argv[2]].partitions))
"#;
    let out = py.run_script(code, &[&kafka.bootstrap(), &topic]);
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
}

#[test]
fn testkit_locates_repo_root() {
    assert!(weir_testkit::repo_root().join("scripts/setup-test-env").is_file());
    assert!(Path::new(env!("CARGO_MANIFEST_DIR")).starts_with(weir_testkit::repo_root()));
}
