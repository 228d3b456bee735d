//! Tests of the harness itself: a real tansu broker, kcat and Python on librdkafka 2.16.

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use weir_testkit::{unique_topic, Broker, Kcat, Python};

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
fn kcat_roundtrip_on_partition_1_then_drop_closes_port() {
    let Some(kcat) = Kcat::require_or_skip() else {
        return;
    };
    let broker = Broker::start();
    let topic = unique_topic("harness");
    broker.create_topic(&topic, 3);

    let lines: String = (0..10).map(|i| format!("line-{i}\n")).collect();
    let out = kcat.produce(&broker.bootstrap(), &topic, Some(1), lines.as_bytes(), &[]);
    assert!(
        out.status.success(),
        "kcat -P failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    let got = kcat.consume_all(&broker.bootstrap(), &topic, "%p %o %s\n", &[]);
    let expected: String = (0..10).map(|i| format!("1 {i} line-{i}\n")).collect();
    assert_eq!(String::from_utf8_lossy(&got), expected);

    let (port, pid, log) = (broker.port(), broker.pid(), broker.log_path().to_path_buf());
    assert!(port_open(port));
    drop(broker);
    assert!(
        !port_open(port),
        "port {port} still accepts connections after the broker was dropped"
    );
    assert!(!process_alive(pid), "tansu pid {pid} still running after drop");
    assert!(!log.exists(), "broker log {} not removed", log.display());
}

#[test]
fn two_brokers_get_distinct_ports_and_topics_are_unique() {
    let a = Broker::start();
    let b = Broker::start();
    assert_ne!(a.port(), b.port());
    assert_eq!(a.bootstrap(), format!("127.0.0.1:{}", a.port()));
    let t1 = unique_topic("t");
    let t2 = unique_topic("t");
    assert_ne!(t1, t2);
    assert!(t1.starts_with(&format!("t-{}-", std::process::id())));
    a.create_topic(&t1, 1);
    b.create_topic(&t1, 2);
}

#[test]
fn broker_is_stopped_when_a_test_panics() {
    let mut seen = None;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let broker = Broker::start();
        seen = Some((broker.pid(), broker.port()));
        panic!("deliberate panic while a broker is running");
    }));
    assert!(r.is_err());
    let (pid, port) = seen.unwrap();
    assert!(!process_alive(pid), "tansu pid {pid} survived a panicking test");
    assert!(!port_open(port));
}

/// A broker that is never dropped (a `static`, `process::exit`, an abort, a runner's SIGKILL) must still
/// not outlive the test process: the watchdog sees its stdin pipe close and stops tansu.
#[test]
fn broker_is_stopped_when_the_test_process_dies_without_dropping_it() {
    const CHILD_ENV: &str = "WEIR_TESTKIT_EXIT_WITHOUT_DROP";
    if std::env::var_os(CHILD_ENV).is_some() {
        let broker = Broker::start();
        println!("BROKER {} {}", broker.pid(), broker.port());
        std::process::exit(0); // skips every destructor
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "broker_is_stopped_when_the_test_process_dies_without_dropping_it",
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while process_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !process_alive(pid),
        "orphaned tansu pid {pid} still running 10 s after its test process exited"
    );
    assert!(!port_open(port));
}

#[test]
fn python_confluent_kafka_sees_the_topic() {
    let Some(py) = Python::require_or_skip() else {
        return;
    };
    assert!(py.librdkafka_version().starts_with("2.16."));
    let broker = Broker::start();
    let topic = unique_topic("py");
    broker.create_topic(&topic, 2);
    let code = r#"
import sys
from confluent_kafka.admin import AdminClient
md = AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(timeout=10)
print(len(md.topics[sys.argv[2]].partitions))
"#;
    let out = py.run_script(code, &[&broker.bootstrap(), &topic]);
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
