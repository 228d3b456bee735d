//! The Prometheus example (`examples/prometheus.rs`) on real Apache Kafka, scraped over plain HTTP as Prometheus
//! would scrape it, its metrics checked against the traffic it made: 3,000 records of 100 bytes over 3 partitions,
//! produced, then consumed with partition 0 paused for a while.
//!
//! The example runs as a child process and reports each phase on stdout (`scrape URL`, `produced`, `paused`,
//! `resumed`, `done`); the test waits for those lines, never for a fixed time. The per-partition gauges are
//! copied by the consumer's metrics task once a second, so after a phase's line the test scrapes until they show
//! that phase, with a deadline. Then:
//!
//! - while partition 0 is paused: `kafka_consumer_partition_paused{reason="application"}` 1 for it and 0 for the
//!   others, never `backpressure`; its `records_lag` what the example says is left of it, every other lag 0,
//!   and `records_consumed_total` the records of the other partitions plus what partition 0 gave before;
//! - once done: records sent and consumed are the 3,000 records, bytes consumed the keys and values the example
//!   wrote, bytes sent the sum of the batch sizes and at least the payload, no record failed or retried, nothing
//!   queued or in flight; every lag and buffer 0, nothing paused; Produce and Fetch requests counted under the
//!   clients' `client_id`s (every sample of weir's names one of the example's clients), every Produce request
//!   answered (latency samples = requests), every Fetch request answered or in flight; each connection gauge is
//!   what was opened less what was closed, all of them together the TCP connections the process really has to
//!   the broker (from `/proc`), the admin client's none (it was dropped).
//!
//! The example binary is built by the test with a nested `cargo build` (as `exactly_once.rs` does: a no-op when
//! up to date, its path read from Cargo's JSON messages).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_testkit::{run_with_timeout, unique_name, Kafka};

const RECORDS: usize = 3000;
const RECORD_SIZE: usize = 100;
const PARTITIONS: usize = 3;
/// How long the example keeps partition 0 paused: the metrics task publishes once a second, the test has this
/// long to see it.
const PAUSE_SECS: u64 = 8;

/// Builds the example (in this test's profile) and returns its executable, as Cargo reports it.
fn build_example() -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "build",
        "-p",
        "weir",
        "--example",
        "prometheus",
        "--message-format=json-render-diagnostics",
    ]);
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let out = run_with_timeout(cmd, None, Duration::from_secs(600));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "building the example failed:\n{stderr}");
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "prometheus")
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .next_back()
        .unwrap_or_else(|| panic!("cargo named no executable for the example:\n{stdout}\n{stderr}"))
}

/// The example running: its stdout lines as they come, its stderr kept for failure messages; killed when
/// dropped.
struct Example {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Example {
    fn start(exe: &PathBuf, args: &[String]) -> Example {
        let mut child = Command::new(exe)
            .args(args)
            .env_remove("WEIR_BROKERS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let (tx, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Example {
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// What the example said so far, for failure messages.
    fn transcript(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.seen.join("\n"),
            self.stderr.lock().unwrap()
        )
    }

    /// Waits up to `within` for the next stdout line starting with `prefix` (other lines are passed over).
    fn wait_for(&mut self, prefix: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {prefix:?} line within {within:?}\n{}", self.transcript())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().unwrap();
                    // Let the stderr thread take what is left.
                    std::thread::sleep(Duration::from_millis(100));
                    panic!(
                        "the example ended ({status}) before a {prefix:?} line\n{}",
                        self.transcript()
                    )
                }
            }
        }
    }

    /// Whether a line starting with `prefix` came already, without waiting.
    fn said(&mut self, prefix: &str) -> bool {
        self.seen.extend(self.lines.try_iter());
        self.seen.iter().any(|l| l.starts_with(prefix))
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The words of `line` after `prefix`, split on spaces and `()`: `"produced 3 records (5 bytes"` after
/// `"produced"` gives `["3", "records", "5", "bytes"]`.
fn words<'a>(line: &'a str, prefix: &str) -> Vec<&'a str> {
    line[prefix.len()..]
        .split([' ', '(', ')', ':'])
        .filter(|w| !w.is_empty())
        .collect()
}

fn number(word: &str, line: &str) -> u64 {
    word.parse()
        .unwrap_or_else(|e| panic!("{word:?} in {line:?}: {e}"))
}

/// One sample of a scrape: `name{labels} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape, parsed: the samples, and each metric's `# TYPE`.
struct Scrape {
    samples: Vec<Sample>,
    types: BTreeMap<String, String>,
    text: String,
}

impl Scrape {
    /// The samples named `name` whose labels include `labels`.
    fn matching<'a>(&'a self, name: &'a str, labels: &'a [(&str, &str)]) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// The one sample named `name` with `labels` among its labels; `None` if there is none, a panic if several.
    fn one(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<&Sample> = self.matching(name, labels).collect();
        assert!(found.len() <= 1, "several {name} {labels:?}: {found:?}");
        found.first().map(|s| s.value)
    }

    /// The sum of the samples named `name` with `labels` among their labels (over brokers, say); 0 if none.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|s| s.value).sum()
    }

    /// `one`, which must exist.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.one(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in the scrape:\n{}", self.text))
    }
}

/// Reads a label value's escapes (`\\`, `\"`, `\n`) up to its closing quote; returns it and what follows.
fn label_value(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// Parses one sample line: `name value` or `name{k="v",...} value [timestamp]`.
fn parse_sample(line: &str) -> Option<Sample> {
    let end = line.find(['{', ' '])?;
    let name = line[..end].to_owned();
    let mut rest = &line[end..];
    let mut labels = BTreeMap::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            inner = inner.trim_start_matches([',', ' ']);
            if let Some(after) = inner.strip_prefix('}') {
                rest = after;
                break;
            }
            let (key, after) = inner.split_once("=\"")?;
            let (value, after) = label_value(after)?;
            labels.insert(key.to_owned(), value);
            inner = after;
        }
    }
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample { name, labels, value })
}

/// Parses the Prometheus text format: every sample, and the `# TYPE` lines.
fn parse(text: String) -> Result<Scrape, String> {
    let (mut samples, mut types) = (Vec::new(), BTreeMap::new());
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let (name, kind) = t.split_once(' ').ok_or(format!("bad TYPE line {line:?}"))?;
            types.insert(name.to_owned(), kind.to_owned());
        } else if !line.starts_with('#') {
            samples.push(parse_sample(line).ok_or(format!("bad sample line {line:?}"))?);
        }
    }
    Ok(Scrape { samples, types, text })
}

/// `GET /metrics` over a plain TCP stream (HTTP/1.1, `Connection: close`), the body parsed.
fn scrape(addr: SocketAddr) -> Result<Scrape, String> {
    let err = |e: std::io::Error| format!("scraping {addr}: {e}");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(err)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(err)?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
    )
    .map_err(err)?;
    let mut response = Vec::new();
    stream.take(64 << 20).read_to_end(&mut response).map_err(err)?;
    let response = String::from_utf8(response).map_err(|e| format!("scraping {addr}: {e}"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("scraping {addr}: no end of headers in {response:?}"))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("scraping {addr}: {status}"));
    }
    let head = head.to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        return Err(format!("scraping {addr}: a chunked body, not read here"));
    }
    if let Some(len) = head.lines().find_map(|l| l.strip_prefix("content-length:")) {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|e| format!("content-length {len:?}: {e}"))?;
        if len != body.len() {
            return Err(format!(
                "scraping {addr}: {} bytes of a {len}-byte body",
                body.len()
            ));
        }
    }
    parse(body.to_owned())
}

/// Scrapes until `ready` holds for a scrape, and returns it; `Err` with the last scrape when `give_up` says so
/// first (checked between scrapes), or after `within`.
fn scrape_until(
    addr: SocketAddr,
    within: Duration,
    mut give_up: impl FnMut() -> bool,
    mut ready: impl FnMut(&Scrape) -> bool,
) -> Result<Scrape, String> {
    let deadline = Instant::now() + within;
    loop {
        let s = scrape(addr)?;
        if ready(&s) {
            return Ok(s);
        }
        if give_up() || Instant::now() > deadline {
            return Err(s.text);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Established TCP connections process `pid` has to any of `ports` (the remote end), read from `/proc`: the
/// inodes of its sockets matched against `/proc/PID/net/tcp` and `tcp6`.
fn tcp_connections(pid: u32, ports: &HashSet<u16>) -> usize {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let mut n = 0;
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let (Some(remote), Some(&state), Some(inode)) = (f.get(2), f.get(3), f.get(9)) else {
                continue;
            };
            let port = remote
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if state == "01" && port.is_some_and(|p| ports.contains(&p)) && inodes.contains(*inode) {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn prometheus_example_serves_metrics_that_match_its_traffic() {
    let t0 = Instant::now();
    let kafka = Kafka::shared();
    let exe = build_example();
    eprintln!("Kafka up and the example built in {:.1?}", t0.elapsed());
    let bootstrap = kafka.bootstrap();
    let broker_ports: HashSet<u16> = bootstrap
        .split(',')
        .filter_map(|a| a.rsplit(':').next()?.parse().ok())
        .collect();
    let topic = unique_name("prometheus");
    let id = unique_name("prom");
    let (producer, consumer, admin) = (
        format!("{id}-producer"),
        format!("{id}-consumer"),
        format!("{id}-admin"),
    );
    let args: Vec<String> = [
        "--brokers",
        &bootstrap,
        "--listen",
        "127.0.0.1:0",
        "--topic",
        &topic,
        "--partitions",
        &PARTITIONS.to_string(),
        "--records",
        &RECORDS.to_string(),
        "--record-size",
        &RECORD_SIZE.to_string(),
        "--pause-secs",
        &PAUSE_SECS.to_string(),
        // Ends by itself should this test die without killing it.
        "--exit-after",
        "300",
        "--client-id",
        &id,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut ex = Example::start(&exe, &args);

    let line = ex.wait_for("scrape ", Duration::from_secs(30));
    let addr: SocketAddr = line
        .strip_prefix("scrape http://")
        .and_then(|l| l.strip_suffix("/metrics"))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("bad scrape line {line:?}"));
    // Listening at once, before any client exists.
    scrape(addr).unwrap_or_else(|e| panic!("{e}\n{}", ex.transcript()));

    let line = ex.wait_for("produced ", Duration::from_secs(30));
    let w = words(&line, "produced");
    assert_eq!(number(w[0], &line), RECORDS as u64, "{line}");
    let payload = number(w[2], &line);
    assert!(payload >= (RECORDS * RECORD_SIZE) as u64, "{line}");

    // Paused: partition 0 with what is left of it behind, every other partition consumed.
    let line = ex.wait_for("paused ", Duration::from_secs(30));
    let w = words(&line, "paused");
    assert_eq!(w[0], format!("{topic}-0"), "{line}");
    let behind = number(w[1], &line);
    let in_first = RECORDS.div_ceil(PARTITIONS) as u64;
    assert!(behind > 0 && behind < in_first, "{line}");
    // A per-partition gauge of the consumer; `reason` for the paused ones.
    let gauge = |s: &Scrape, name: &str, p: usize, reason: Option<&str>| {
        let p = p.to_string();
        let mut l = vec![
            ("client_id", consumer.as_str()),
            ("topic", topic.as_str()),
            ("partition", p.as_str()),
        ];
        l.extend(reason.map(|r| ("reason", r)));
        s.one(name, &l)
    };
    const PAUSED: &str = "kafka_consumer_partition_paused";
    const LAG: &str = "kafka_consumer_partition_records_lag";
    const APP: Option<&str> = Some("application");
    const BACKPRESSURE: Option<&str> = Some("backpressure");
    let paused_phase = |s: &Scrape| {
        gauge(s, PAUSED, 0, APP) == Some(1.0)
            && gauge(s, LAG, 0, None) == Some(behind as f64)
            && (1..PARTITIONS).all(|p| gauge(s, LAG, p, None) == Some(0.0))
    };
    let s = scrape_until(
        addr,
        Duration::from_secs(PAUSE_SECS),
        || ex.said("resumed "),
        paused_phase,
    )
    .unwrap_or_else(|last| {
        panic!(
            "the pause of partition 0 ({behind} records behind) did not show before it ended; last scrape:\n{last}"
        )
    });
    for p in 1..PARTITIONS {
        assert_eq!(gauge(&s, PAUSED, p, APP), Some(0.0), "partition {p}");
    }
    // Partition 0 may show backpressure too: paused, it drains nothing, so its rate-sized buffer shrinks below
    // what it holds. The others hold nothing.
    for p in 1..PARTITIONS {
        assert_eq!(gauge(&s, PAUSED, p, BACKPRESSURE), Some(0.0), "partition {p}");
    }
    let by_consumer = [("client_id", consumer.as_str())];
    assert_eq!(
        s.get("kafka_consumer_records_consumed_total", &by_consumer),
        (RECORDS as u64 - behind) as f64,
        "records consumed while partition 0 is paused"
    );

    // Done: everything consumed, nothing paused, no lag.
    let line = ex.wait_for("done: ", Duration::from_secs(PAUSE_SECS + 30));
    let w = words(&line, "done");
    assert_eq!(number(w[1], &line), RECORDS as u64, "{line}");
    assert_eq!(number(w[3], &line), payload, "{line}");
    let s = scrape_until(
        addr,
        Duration::from_secs(10),
        || false,
        |s| {
            (0..PARTITIONS)
                .all(|p| gauge(s, PAUSED, p, APP) == Some(0.0) && gauge(s, LAG, p, None) == Some(0.0))
        },
    )
    .unwrap_or_else(|last| panic!("lags and pauses did not go to 0 after the end; last scrape:\n{last}"));
    for p in 0..PARTITIONS {
        let buffered = gauge(&s, "kafka_consumer_partition_buffered_bytes", p, None);
        assert_eq!(
            buffered,
            Some(0.0),
            "partition {p}: buffered bytes once all is consumed"
        );
    }
    for (name, kind) in [
        ("kafka_producer_record_send_total", "counter"),
        ("kafka_consumer_records_consumed_total", "counter"),
        (LAG, "gauge"),
        ("kafka_client_request_latency_seconds", "summary"),
    ] {
        assert_eq!(
            s.types.get(name).map(String::as_str),
            Some(kind),
            "# TYPE of {name}"
        );
    }

    // The consumer's counters: every record and byte written.
    assert_eq!(
        s.get("kafka_consumer_records_consumed_total", &by_consumer),
        RECORDS as f64
    );
    assert_eq!(
        s.get("kafka_consumer_bytes_consumed_total", &by_consumer),
        payload as f64
    );
    let fetches = s.get("kafka_consumer_fetch_total", &by_consumer);
    assert!(fetches >= 1.0, "kafka_consumer_fetch_total {fetches}");

    // The producer's: records, and bytes as the batches that carried them.
    let by_producer = [("client_id", producer.as_str())];
    let p = |name: &str| s.one(name, &by_producer).unwrap_or(0.0);
    assert_eq!(p("kafka_producer_record_send_total"), RECORDS as f64);
    assert_eq!(p("kafka_producer_record_error_total"), 0.0);
    assert_eq!(p("kafka_producer_record_retry_total"), 0.0);
    assert_eq!(p("kafka_producer_batch_size_records_sum"), RECORDS as f64);
    let bytes_sent = p("kafka_producer_byte_total");
    assert!(
        bytes_sent >= payload as f64,
        "kafka_producer_byte_total {bytes_sent} < {payload} bytes of keys and values"
    );
    assert_eq!(
        p("kafka_producer_batch_size_bytes_sum"),
        bytes_sent,
        "batch sizes against bytes sent"
    );
    assert_eq!(p("kafka_producer_records_queued"), 0.0);
    assert_eq!(p("kafka_producer_batches_in_flight"), 0.0);

    // Requests, per client and API.
    let requests = |client: &str, api: &str| {
        s.sum(
            "kafka_client_request_total",
            &[("client_id", client), ("api", api)],
        )
    };
    let produce_requests = requests(&producer, "Produce");
    assert!(produce_requests >= 1.0, "no Produce request counted:\n{}", s.text);
    assert!(
        produce_requests <= p("kafka_producer_batch_size_records_count"),
        "{produce_requests} Produce requests for fewer batches"
    );
    let answered = s.sum(
        "kafka_client_request_latency_seconds_count",
        &[("client_id", &producer), ("api", "Produce")],
    );
    assert_eq!(
        answered, produce_requests,
        "Produce requests against their latency samples"
    );
    let fetch_requests = requests(&consumer, "Fetch");
    assert!(
        fetch_requests >= fetches,
        "{fetch_requests} Fetch requests counted for {fetches} responses"
    );
    // The consumer keeps long-polling: every Fetch request sent is answered or waiting. The three numbers are
    // not read at one instant, hence a few scrapes until they are.
    let mut fetch = (0.0, 0.0, 0.0);
    let fetch_balance = scrape_until(
        addr,
        Duration::from_secs(10),
        || false,
        |s| {
            let l = [("client_id", consumer.as_str()), ("api", "Fetch")];
            fetch = (
                s.sum("kafka_client_request_total", &l),
                s.sum("kafka_client_request_latency_seconds_count", &l),
                s.sum("kafka_client_requests_in_flight", &l),
            );
            fetch.0 == fetch.1 + fetch.2
        },
    );
    assert!(
        fetch_balance.is_ok(),
        "Fetch requests {} against {} answered and {} in flight",
        fetch.0,
        fetch.1,
        fetch.2
    );
    assert_eq!(requests(&consumer, "Produce"), 0.0);
    assert_eq!(requests(&producer, "Fetch"), 0.0);
    // Every sample of weir's names one of the example's clients; those of requests and connections a broker.
    for sample in s.samples.iter().filter(|s| s.name.starts_with("kafka_")) {
        let client = sample.labels.get("client_id").map(String::as_str);
        assert!(
            [Some(&*producer), Some(&*consumer), Some(&*admin)].contains(&client),
            "{sample:?}: not one of the example's clients"
        );
        let per_broker = ["kafka_client_request", "kafka_client_connection"];
        if per_broker.iter().any(|p| sample.name.starts_with(p)) {
            assert!(sample.labels.contains_key("broker"), "{sample:?}");
        }
    }
    let errors: Vec<&Sample> = s.matching("kafka_client_request_error_total", &[]).collect();
    if !errors.is_empty() {
        eprintln!("request errors (not asserted): {errors:#?}");
    }

    // Connections: per client and broker, opened less closed; all together, the process's sockets to the
    // broker. The admin client was dropped after creating the topic.
    let open = |s: &Scrape, client: &str| s.sum("kafka_client_connection_count", &[("client_id", client)]);
    for c in s.matching("kafka_client_connection_count", &[]) {
        let l: Vec<(&str, &str)> = c.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let opened = s.one("kafka_client_connection_creation_total", &l).unwrap_or(0.0);
        let closed = s.one("kafka_client_connection_close_total", &l).unwrap_or(0.0);
        assert_eq!(
            c.value,
            opened - closed,
            "{:?}: open against opened - closed",
            c.labels
        );
    }
    assert!(open(&s, &producer) >= 1.0, "the producer has no connection");
    assert!(open(&s, &consumer) >= 1.0, "the consumer has no connection");
    let pid = ex.child.id();
    let mut seen = (0.0, 0, 0.0);
    let settled = scrape_until(
        addr,
        Duration::from_secs(10),
        || false,
        |s| {
            let gauges = s.sum("kafka_client_connection_count", &[]);
            seen = (gauges, tcp_connections(pid, &broker_ports), open(s, &admin));
            seen.2 == 0.0 && gauges == seen.1 as f64
        },
    );
    if let Err(last) = settled {
        panic!(
            "kafka_client_connection_count: {} over all clients, {} of the admin client (dropped), against {} TCP \
             connections to the broker; last scrape:\n{last}",
            seen.0, seen.2, seen.1
        );
    }
    eprintln!("done in {:.1?}", t0.elapsed());
}
