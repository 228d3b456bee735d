//! Real Apache Kafka for tests: KRaft clusters of one combined broker+controller node, or of three (three
//! voters, replication factor 3, `min.insync.replicas=2`), run from the jars `scripts/setup-test-env` resolves
//! with Maven, on free loopback ports, with fresh storage formatted for each cluster.
//!
//! A test binary shares one single-node cluster ([`Kafka::shared`]); tests keep out of each other's way with
//! unique topic and group names ([`crate::unique_name`]). Tests that stop or kill brokers start their own
//! cluster ([`Kafka::start`]). Every wait is bounded; a cluster that cannot start gives one message naming the
//! cause and the log to read, and the shared one is not retried by every test of the binary.
//!
//! Each node runs under a watchdog ([`crate::process`]) that kills it when the owning `Kafka` is dropped or the
//! test process dies, and then removes the cluster's directory (kept, with its logs, when startup failed).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::chaos::Chaos;
use crate::process::{find_on_path, free_port, run_with_timeout, Supervised};
use crate::wire;
use crate::{repo_root, SETUP_HINT};

mod operator;
mod secure;

pub use operator::PartitionPlacement;
pub use secure::{SecureOptions, SecurityProtocol};

/// How long the nodes of a cluster may take to start before startup fails.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long `kafka.tools.StorageTool format` may take.
const FORMAT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a created topic may take to have a leader for every partition on every live node.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of one harness request to a node.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Partitions created by one CreateTopics or CreatePartitions request of the harness (each is a metadata record
/// or more, and the controller takes at most 10,000 records per request).
const MAX_PARTITIONS_PER_REQUEST: i32 = 5000;
/// Startup attempts with fresh ports when a port was taken between choosing and binding it.
const PORT_ATTEMPTS: usize = 3;

/// The shapes of cluster the harness starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shape {
    /// One node, broker and controller; replication factor 1. The default for tests.
    Single,
    /// Three nodes, each broker and controller (three voters); replication factor 3, `min.insync.replicas=2`:
    /// any one node can die without losing an acknowledged (`acks=all`) record.
    Three,
}

impl Shape {
    /// Number of nodes.
    pub fn nodes(self) -> usize {
        match self {
            Shape::Single => 1,
            Shape::Three => 3,
        }
    }

    /// Replication factor of the internal topics and of [`Kafka::create_topic`].
    pub fn replication_factor(self) -> i16 {
        self.nodes() as i16
    }

    fn min_insync(self) -> usize {
        self.nodes().min(2)
    }
}

/// The Kafka jars: `$WEIR_KAFKA_LIBS`, else `$REPO/.kafka/lib` (filled by `scripts/setup-test-env kafka`).
pub fn kafka_libs() -> Result<PathBuf, String> {
    let dir = std::env::var_os("WEIR_KAFKA_LIBS")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".kafka/lib"));
    match kafka_jar_version(&dir) {
        Some(_) => Ok(dir),
        None => Err(format!(
            "no Kafka broker jar (kafka_2.13-*.jar) in {}: {SETUP_HINT}",
            dir.display()
        )),
    }
}

/// The Kafka version of the jars in `dir`, read from the broker jar's name.
fn kafka_jar_version(dir: &Path) -> Option<String> {
    fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let name = e.file_name().into_string().ok()?;
        let v = name.strip_prefix("kafka_2.13-")?.strip_suffix(".jar")?;
        (!v.contains("-test") && !v.contains("-sources")).then(|| v.to_string())
    })
}

/// The `java` to run Kafka and the Java peer with: `$WEIR_JAVA`, else `$JAVA_HOME/bin/java`, else `java` on
/// PATH.
pub fn java() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("WEIR_JAVA").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(home) = std::env::var_os("JAVA_HOME").filter(|p| !p.is_empty()) {
        let p = Path::new(&home).join("bin/java");
        if p.is_file() {
            return Ok(p);
        }
    }
    find_on_path("java").ok_or_else(|| {
        "no Java runtime: neither $WEIR_JAVA, $JAVA_HOME/bin/java nor `java` on PATH (Kafka 4 needs Java 17+)"
            .to_string()
    })
}

/// A running Apache Kafka cluster on loopback. Dropping it kills every node and removes its storage.
#[derive(Debug)]
pub struct Kafka {
    shape: Shape,
    version: String,
    dir: PathBuf,
    java: PathBuf,
    libs: PathBuf,
    nodes: Vec<Node>,
    started_in: Duration,
    /// The TLS/SASL side of a cluster started with [`Kafka::start_secure`].
    secure: Option<secure::Secure>,
}

#[derive(Debug)]
struct Node {
    id: i32,
    /// The PLAINTEXT client listener's port (the harness's own requests go there).
    port: u16,
    /// The port clients are told (advertised) and given in [`Kafka::bootstrap`]: the chaos proxy's in front of
    /// `port` for a cluster started with [`Kafka::start_proxied`], else `port`.
    client_port: u16,
    /// The listener for replication (`REPLICATION`), apart from the proxied client listener, when proxied.
    replication_port: Option<u16>,
    controller_port: u16,
    /// The client listeners besides PLAINTEXT ([`Kafka::start_secure`]), each on its own port.
    secure_ports: Vec<(SecurityProtocol, u16)>,
    server: Option<Supervised>,
    /// Watchdogs of killed incarnations: their pipes stay open so that they leave the storage alone for a
    /// restart; they clean up when the cluster is dropped.
    retired: Vec<Supervised>,
}

impl Kafka {
    /// The single-node cluster shared by every test of this test binary, started on first use. Panics, in every
    /// test that asks, with the same message if it could not start (it is not retried).
    pub fn shared() -> &'static Kafka {
        static SHARED: OnceLock<Result<Kafka, String>> = OnceLock::new();
        match SHARED.get_or_init(|| Kafka::try_start(Shape::Single, &[])) {
            Ok(k) => k,
            Err(e) => panic!("weir-testkit: the shared Kafka cluster did not start: {e}"),
        }
    }

    /// Starts a cluster of `shape`. Panics with the cause and the log to read if it cannot start.
    pub fn start(shape: Shape) -> Kafka {
        Kafka::start_with(shape, &[])
    }

    /// Like [`Kafka::start`], with extra broker settings (`key=value` pairs, applied after the harness's own).
    /// `{node}` in a value is replaced by each node's id (`("broker.rack", "rack-{node}")`).
    pub fn start_with(shape: Shape, settings: &[(&str, &str)]) -> Kafka {
        Kafka::try_start(shape, settings).unwrap_or_else(|e| panic!("weir-testkit: Kafka did not start: {e}"))
    }

    /// Starts a cluster; the error names the cause and, when a node failed, the log to read.
    pub fn try_start(shape: Shape, settings: &[(&str, &str)]) -> Result<Kafka, String> {
        Kafka::try_start_inner(shape, settings, None, None).map(|(k, _)| k)
    }

    /// Like [`Kafka::start_with`], with a chaos proxy in front of every broker's client listener: the brokers
    /// advertise the proxies, [`Kafka::bootstrap`] names them, and replication (a listener of its own,
    /// `REPLICATION`) and the controller go direct, so that chaos hits the clients only. The proxies start
    /// [`Behaviour::Calm`](crate::chaos::Behaviour::Calm), with the seed of [`Chaos::seed_from_env`].
    pub fn start_proxied(shape: Shape, settings: &[(&str, &str)]) -> (Kafka, Chaos) {
        let seed = Chaos::seed_from_env();
        match Kafka::try_start_inner(shape, settings, None, Some(seed)) {
            Ok((k, Some(chaos))) => (k, chaos),
            Ok((_, None)) => unreachable!("a proxied start returns its proxies"),
            Err(e) => panic!("weir-testkit: Kafka did not start: {e}"),
        }
    }

    fn try_start_inner(
        shape: Shape,
        settings: &[(&str, &str)],
        secure: Option<&SecureOptions>,
        chaos_seed: Option<u64>,
    ) -> Result<(Kafka, Option<Chaos>), String> {
        let java = java()?;
        let libs = kafka_libs()?;
        let version = kafka_jar_version(&libs).unwrap_or_default();
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            match Kafka::try_start_once(shape, settings, secure, chaos_seed, &java, &libs, &version) {
                Ok(k) => return Ok(k),
                Err(StartFailure::PortTaken(e)) => last = e,
                Err(StartFailure::Other(e)) => return Err(e),
            }
        }
        Err(last)
    }

    fn try_start_once(
        shape: Shape,
        settings: &[(&str, &str)],
        secure: Option<&SecureOptions>,
        chaos_seed: Option<u64>,
        java: &Path,
        libs: &Path,
        version: &str,
    ) -> Result<(Kafka, Option<Chaos>), StartFailure> {
        let t0 = Instant::now();
        let dir = std::env::temp_dir().join(format!("weir-kafka-{}", crate::unique_name("c")));
        fs::create_dir_all(&dir)
            .map_err(|e| StartFailure::Other(format!("cannot create {}: {e}", dir.display())))?;
        let mut kafka = Kafka {
            shape,
            version: version.to_string(),
            dir,
            java: java.to_path_buf(),
            libs: libs.to_path_buf(),
            nodes: (1..=shape.nodes() as i32)
                .map(|id| {
                    let port = free_port();
                    Node {
                        id,
                        port,
                        client_port: port,
                        replication_port: None,
                        controller_port: free_port(),
                        secure_ports: match secure {
                            Some(_) => SecurityProtocol::SECURE
                                .iter()
                                .map(|p| (*p, free_port()))
                                .collect(),
                            None => Vec::new(),
                        },
                        server: None,
                        retired: Vec::new(),
                    }
                })
                .collect(),
            started_in: Duration::ZERO,
            secure: None,
        };
        let fail = |kafka: &Kafka, e: String| {
            // Keep the directory (logs, configs) for whoever reads the message.
            let _ = fs::write(kafka.dir.join("keep"), b"");
            StartFailure::Other(e)
        };
        if let Some(opts) = secure {
            kafka.secure = Some(secure::Secure::new(&kafka.dir, opts).map_err(|e| fail(&kafka, e))?);
        }
        // The proxies' ports are advertised: they listen before the configs are written.
        let chaos = match chaos_seed {
            Some(seed) => {
                let targets: Vec<u16> = kafka.nodes.iter().map(|n| n.port).collect();
                let chaos = Chaos::start(&targets, seed)
                    .map_err(|e| fail(&kafka, format!("the chaos proxies did not start: {e}")))?;
                for (n, port) in kafka.nodes.iter_mut().zip(chaos.ports()) {
                    n.client_port = *port;
                    n.replication_port = Some(free_port());
                }
                Some(chaos)
            }
            None => None,
        };
        kafka.write_configs(settings).map_err(|e| fail(&kafka, e))?;
        kafka.format().map_err(|e| fail(&kafka, e))?;
        for i in 0..kafka.nodes.len() {
            kafka.spawn(i).map_err(|e| fail(&kafka, e))?;
        }
        let ids: Vec<i32> = kafka.nodes.iter().map(|n| n.id).collect();
        match kafka.wait_until_listed(&ids, START_TIMEOUT) {
            Ok(()) => {
                kafka.started_in = t0.elapsed();
                Ok((kafka, chaos))
            }
            Err(e) if e.contains("Address already in use") => Err(StartFailure::PortTaken(e)),
            Err(e) => Err(fail(&kafka, e)),
        }
    }

    fn node_dir(&self, id: i32) -> PathBuf {
        self.dir.join(format!("node-{id}"))
    }

    /// The data directory of node `id` (`log.dirs`: one directory per partition, `TOPIC-PARTITION`).
    pub fn data_dir(&self, id: i32) -> PathBuf {
        self.node_dir(id).join("data")
    }

    /// The log of node `id` (stdout and stderr of its JVM).
    pub fn log_path(&self, id: i32) -> PathBuf {
        self.node_dir(id).join("server.log")
    }

    fn write_configs(&self, settings: &[(&str, &str)]) -> Result<(), String> {
        let write = |path: PathBuf, text: String| {
            fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        };
        write(self.dir.join("log4j2.properties"), LOG4J2.to_string())?;
        let rf = self.shape.replication_factor();
        let isr = self.shape.min_insync();
        let secure_settings = self
            .secure
            .as_ref()
            .map(|s| s.broker_settings())
            .unwrap_or_default();
        let voters: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller_port))
            .collect();
        for n in &self.nodes {
            let dir = self.node_dir(n.id);
            let data = self.data_dir(n.id);
            fs::create_dir_all(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
            // The secure client listeners, if any: `,SSL://127.0.0.1:P,...`, and their protocol map entries.
            let secure_listeners: String = n
                .secure_ports
                .iter()
                .map(|(p, port)| format!(",{}://127.0.0.1:{port}", p.name()))
                .collect();
            let secure_map: String = n
                .secure_ports
                .iter()
                .map(|(p, _)| format!(",{0}:{0}", p.name()))
                .collect();
            // Proxied: replication has a listener of its own, direct.
            let replication = n
                .replication_port
                .map(|p| format!(",REPLICATION://127.0.0.1:{p}"))
                .unwrap_or_default();
            let (inter_broker, replication_map) = match n.replication_port {
                Some(_) => ("REPLICATION", ",REPLICATION:PLAINTEXT"),
                None => ("PLAINTEXT", ""),
            };
            let mut props = vec![
                ("process.roles".to_string(), "broker,controller".to_string()),
                ("node.id".into(), n.id.to_string()),
                (
                    "listeners".into(),
                    format!(
                        "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}{replication}{secure_listeners}",
                        n.port, n.controller_port
                    ),
                ),
                ("inter.broker.listener.name".into(), inter_broker.into()),
                ("controller.listener.names".into(), "CONTROLLER".into()),
                (
                    "listener.security.protocol.map".into(),
                    format!("CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT{replication_map}{secure_map}"),
                ),
                ("log.dirs".into(), data.display().to_string()),
            ];
            if self.shape == Shape::Single {
                // A dynamic quorum of one, formatted with --standalone.
                props.push((
                    "advertised.listeners".into(),
                    format!(
                        "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}{replication}{secure_listeners}",
                        n.client_port, n.controller_port
                    ),
                ));
                props.push((
                    "controller.quorum.bootstrap.servers".into(),
                    format!("127.0.0.1:{}", n.controller_port),
                ));
            } else {
                props.push((
                    "advertised.listeners".into(),
                    format!(
                        "PLAINTEXT://127.0.0.1:{}{replication}{secure_listeners}",
                        n.client_port
                    ),
                ));
                props.push(("controller.quorum.voters".into(), voters.join(",")));
            }
            for (k, v) in [
                ("num.partitions", "1".to_string()),
                ("default.replication.factor", rf.to_string()),
                ("min.insync.replicas", isr.to_string()),
                ("auto.create.topics.enable", "false".into()),
                ("group.initial.rebalance.delay.ms", "0".into()),
                ("offsets.topic.replication.factor", rf.to_string()),
                ("offsets.topic.num.partitions", "1".into()),
                ("transaction.state.log.replication.factor", rf.to_string()),
                ("transaction.state.log.min.isr", isr.to_string()),
                ("transaction.state.log.num.partitions", "1".into()),
                ("share.coordinator.state.topic.replication.factor", rf.to_string()),
                ("share.coordinator.state.topic.min.isr", isr.to_string()),
                ("share.coordinator.state.topic.num.partitions", "1".into()),
                // Both KIP-848 and share groups on (the default in 4.2+, said here so that it stays so).
                (
                    "group.coordinator.rebalance.protocols",
                    "classic,consumer,share".into(),
                ),
                // Fast group timing for tests; clients still choose their own within these bounds.
                ("group.min.session.timeout.ms", "1000".into()),
                ("group.consumer.min.session.timeout.ms", "1000".into()),
                ("group.consumer.min.heartbeat.interval.ms", "100".into()),
                ("group.share.min.session.timeout.ms", "1000".into()),
                ("group.share.min.heartbeat.interval.ms", "100".into()),
                // A killed broker is fenced after 3 s rather than 9 s; nothing waits for a controlled shutdown.
                ("broker.session.timeout.ms", "3000".into()),
                ("broker.heartbeat.interval.ms", "500".into()),
                ("controlled.shutdown.enable", "false".into()),
            ]
            .into_iter()
            .chain(secure_settings.iter().map(|(k, v)| (k.as_str(), v.clone())))
            .chain(
                settings
                    .iter()
                    .map(|(k, v)| (*k, v.replace("{node}", &n.id.to_string()))),
            ) {
                props.retain(|(key, _)| key != k);
                props.push((k.to_string(), v));
            }
            let text: String = props.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            write(dir.join("server.properties"), text)?;
        }
        Ok(())
    }

    /// Formats every node's storage (in parallel: one JVM each) with a fresh cluster id.
    fn format(&self) -> Result<(), String> {
        let cluster_id = random_cluster_id()?;
        let standalone = self.shape == Shape::Single;
        std::thread::scope(|s| {
            let runs: Vec<_> = self
                .nodes
                .iter()
                .map(|n| {
                    let props = self.node_dir(n.id).join("server.properties");
                    let cluster_id = cluster_id.clone();
                    s.spawn(move || {
                        let mut cmd = std::process::Command::new(&self.java);
                        cmd.args(TOOL_JVM_OPTIONS)
                            .arg(format!(
                                "-Dlog4j2.configurationFile={}",
                                self.dir.join("log4j2.properties").display()
                            ))
                            .arg("-cp")
                            .arg(self.classpath())
                            .args(["kafka.tools.StorageTool", "format", "-t", &cluster_id, "-c"])
                            .arg(&props);
                        if standalone {
                            cmd.arg("--standalone");
                        }
                        if let Some(secure) = &self.secure {
                            cmd.args(secure.format_args());
                        }
                        let out = run_with_timeout(cmd, None, FORMAT_TIMEOUT);
                        let log = self.node_dir(n.id).join("format.log");
                        let text = String::from_utf8_lossy(&out.stdout).into_owned()
                            + &String::from_utf8_lossy(&out.stderr);
                        let _ = fs::write(&log, &text);
                        if out.status.success() {
                            return Ok(());
                        }
                        // The exception's message says what is wrong; the stack trace is in the log.
                        let cause = text
                            .lines()
                            .find(|l| l.contains("Exception") || l.contains("Error"))
                            .or_else(|| text.lines().next())
                            .unwrap_or("(no output)");
                        Err(format!(
                            "formatting the storage of node {} failed ({}): {}; read {}",
                            n.id,
                            out.status,
                            cause.trim(),
                            log.display()
                        ))
                    })
                })
                .collect();
            runs.into_iter().try_for_each(|r| {
                r.join()
                    .unwrap_or_else(|_| Err("the format thread panicked".into()))
            })
        })
    }

    fn classpath(&self) -> OsString {
        // Java expands `DIR/*` itself; no shell is involved.
        self.libs.join("*").into_os_string()
    }

    fn spawn(&mut self, i: usize) -> Result<(), String> {
        let id = self.nodes[i].id;
        let dir = self.node_dir(id);
        let mut args: Vec<OsString> = BROKER_JVM_OPTIONS.iter().map(OsString::from).collect();
        args.push(
            format!(
                "-Dlog4j2.configurationFile={}",
                self.dir.join("log4j2.properties").display()
            )
            .into(),
        );
        if let Some(secure) = &self.secure {
            args.extend(secure.opts.jvm_options.iter().map(OsString::from));
        }
        args.push("-cp".into());
        args.push(self.classpath());
        args.push("kafka.Kafka".into());
        args.push(dir.join("server.properties").into_os_string());
        let server = Supervised::spawn(&self.java, &args, &[], &dir.join("server.log"), Some(&self.dir))
            .map_err(|e| format!("cannot start node {id}: {e}"))?;
        self.nodes[i].server = Some(server);
        Ok(())
    }

    /// Waits until every node in `ids` answers Metadata listing every node in `ids`, which means each has
    /// registered and is unfenced. Fails at once, with the log tail, if a node's JVM exits.
    fn wait_until_listed(&mut self, ids: &[i32], timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut all = true;
            for &id in ids {
                let i = self.index(id);
                if let Some(status) = self.nodes[i].server.as_mut().and_then(|s| s.exited()) {
                    return Err(format!(
                        "Kafka node {id} exited during startup ({status}); read {}; its last lines:\n{}",
                        self.log_path(id).display(),
                        self.log_tail(id, 30)
                    ));
                }
                let listed = wire::metadata(self.nodes[i].port, Some(&[]), REQUEST_TIMEOUT)
                    .map(|m| ids.iter().all(|id| m.brokers.iter().any(|b| b.0 == *id)))
                    .unwrap_or(false);
                all &= listed;
            }
            if all {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "Kafka nodes {ids:?} did not all come up within {timeout:?}; read {}; last lines of node {}:\n{}",
                    self.log_path(ids[0]).display(),
                    ids[0],
                    self.log_tail(ids[0], 30)
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn index(&self, id: i32) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .unwrap_or_else(|| panic!("weir-testkit: no node {id} in this cluster"))
    }

    /// The Kafka version of the jars, e.g. `"4.4.0"`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The shape of this cluster.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// How long startup took: formatting storage, starting every JVM, until every node listed every node.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// `"127.0.0.1:P1,127.0.0.1:P2,..."`: every node's client listener (its proxy, for a cluster started with
    /// [`Kafka::start_proxied`]).
    pub fn bootstrap(&self) -> String {
        let addrs: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.client_port))
            .collect();
        addrs.join(",")
    }

    /// Node ids, `1..=n`.
    pub fn node_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// The client port of node `id` (its proxy's, for a cluster started with [`Kafka::start_proxied`]).
    pub fn port(&self, id: i32) -> u16 {
        self.nodes[self.index(id)].client_port
    }

    /// The process id of node `id`'s JVM, if it is running.
    pub fn pid(&self, id: i32) -> Option<u32> {
        self.nodes[self.index(id)].server.as_ref().map(|s| s.pid())
    }

    /// The last `lines` lines of node `id`'s log.
    pub fn log_tail(&self, id: i32, lines: usize) -> String {
        let text = fs::read(self.log_path(id))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        if tail.is_empty() {
            "(empty log)".into()
        } else {
            tail
        }
    }

    fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.server.is_some())
            .map(|n| n.port)
            .collect()
    }

    /// Creates a topic with the cluster's replication factor and waits until every partition has a leader in
    /// every live node's metadata. Panics with the broker's answer on failure.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.create_topic_with(name, partitions, &[]);
    }

    /// Like [`Kafka::create_topic`], with topic configs (`("cleanup.policy", "compact")`, ...).
    pub fn create_topic_with(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        self.create_topic_replicated(name, partitions, self.shape.replication_factor(), configs);
    }

    /// Like [`Kafka::create_topic_with`], with `replication_factor` replicas per partition instead of the
    /// cluster's (e.g. 2 of 3 nodes, so that partitions can be moved to the third).
    pub fn create_topic_replicated(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(&str, &str)],
    ) {
        let ports = self.live_ports();
        let port = *ports.first().expect("weir-testkit: no live node");
        // Thousands of partitions take the controller a while: 10 ms more per partition for the answer.
        let per_partition = Duration::from_millis(10) * partitions.max(0) as u32;
        // The controller refuses to write more than 10,000 records for one request: larger topics are created
        // in steps.
        let first = partitions.min(MAX_PARTITIONS_PER_REQUEST);
        wire::create_topic(
            port,
            name,
            first,
            replication_factor,
            configs,
            REQUEST_TIMEOUT + per_partition,
        )
        .unwrap_or_else(|e| {
            panic!("weir-testkit: creating topic {name:?} ({partitions} partitions) failed: {e}")
        });
        let mut total = first;
        while total < partitions {
            total = partitions.min(total + MAX_PARTITIONS_PER_REQUEST);
            wire::create_partitions(port, name, total, REQUEST_TIMEOUT + per_partition).unwrap_or_else(|e| {
                panic!("weir-testkit: growing topic {name:?} to {total} partitions failed: {e}")
            });
        }
        let deadline = Instant::now() + TOPIC_TIMEOUT + per_partition;
        for port in ports {
            loop {
                let ready = wire::metadata(port, Some(&[name]), REQUEST_TIMEOUT).is_ok_and(|m| {
                    m.topics.iter().any(|t| {
                        t.error_code == 0
                            && t.partitions.len() == partitions as usize
                            && t.partitions.iter().all(|p| p.leader_id >= 0)
                    })
                });
                if ready {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "weir-testkit: topic {name:?} has no leader for every partition on port {port} after {TOPIC_TIMEOUT:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// The leader of `topic`/`partition` as a live node reports it, once it has one (bounded wait).
    pub fn leader(&self, topic: &str, partition: i32) -> i32 {
        self.leader_where(topic, partition, |_| true)
    }

    /// The leader of `topic`/`partition` once a live node reports one other than `old` (after `old` was
    /// killed: the new leader the controller elected). Bounded wait.
    pub fn leader_other_than(&self, topic: &str, partition: i32, old: i32) -> i32 {
        self.leader_where(topic, partition, |l| l != old)
    }

    fn leader_where(&self, topic: &str, partition: i32, accept: impl Fn(i32) -> bool) -> i32 {
        let deadline = Instant::now() + TOPIC_TIMEOUT;
        loop {
            for port in self.live_ports() {
                let leader = wire::metadata(port, Some(&[topic]), REQUEST_TIMEOUT)
                    .ok()
                    .and_then(|m| {
                        m.topics
                            .iter()
                            .flat_map(|t| &t.partitions)
                            .find(|p| p.partition == partition)
                            .map(|p| p.leader_id)
                    });
                if let Some(l) = leader.filter(|l| *l >= 0 && accept(*l)) {
                    return l;
                }
            }
            assert!(
                Instant::now() < deadline,
                "weir-testkit: {topic}/{partition} has no leader after {TOPIC_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills node `id` with SIGKILL (no shutdown of any kind: a crash) and waits until its process is gone.
    pub fn kill(&mut self, id: i32) {
        let i = self.index(id);
        let node = &mut self.nodes[i];
        if let Some(mut s) = node.server.take() {
            s.kill();
            node.retired.push(s);
        }
    }

    /// Starts node `id` again on its storage and ports, and waits until every live node lists it.
    pub fn restart(&mut self, id: i32) {
        let i = self.index(id);
        assert!(
            self.nodes[i].server.is_none(),
            "weir-testkit: node {id} is running"
        );
        self.spawn(i).unwrap_or_else(|e| panic!("weir-testkit: {e}"));
        let live: Vec<i32> = self
            .nodes
            .iter()
            .filter(|n| n.server.is_some())
            .map(|n| n.id)
            .collect();
        if let Err(e) = self.wait_until_listed(&live, START_TIMEOUT) {
            panic!("weir-testkit: node {id} did not rejoin: {e}");
        }
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(s) = n.server.as_mut() {
                s.kill();
            }
        }
        if std::thread::panicking() {
            for n in &self.nodes {
                eprintln!(
                    "weir-testkit: Kafka node {} log tail:\n{}",
                    n.id,
                    self.log_tail(n.id, 20)
                );
            }
        }
        // Dropping the watchdogs lets them clean up; the directory goes here too, so that it is gone on return.
        for n in &mut self.nodes {
            n.server = None;
            n.retired.clear();
        }
        if !self.dir.join("keep").exists() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

enum StartFailure {
    PortTaken(String),
    Other(String),
}

/// A cluster id as Kafka writes them: 16 random bytes, base64url without padding, not starting with '-'.
fn random_cluster_id() -> Result<String, String> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut f = fs::File::open("/dev/urandom").map_err(|e| format!("/dev/urandom: {e}"))?;
    loop {
        let mut b = [0u8; 16];
        std::io::Read::read_exact(&mut f, &mut b).map_err(|e| format!("/dev/urandom: {e}"))?;
        let bits = u128::from_be_bytes(b);
        // 22 characters of 6 bits: 132 bits, the last 4 of them zero padding.
        let id: String = (0..22)
            .map(|i| {
                let shift = 128i32 - 6 * (i + 1);
                let v = if shift >= 0 {
                    (bits >> shift) & 63
                } else {
                    (bits << -shift) & 63
                };
                ALPHABET[v as usize] as char
            })
            .collect();
        if !id.starts_with('-') && bits != 0 {
            return Ok(id);
        }
    }
}

/// JVM options of a broker: a small heap for tests, the GC settings of Kafka's own start script.
const BROKER_JVM_OPTIONS: &[&str] = &[
    "-Xms256m",
    "-Xmx768m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-Djava.awt.headless=true",
];

/// JVM options of a short-lived tool: start fast, no tuning for throughput.
const TOOL_JVM_OPTIONS: &[&str] = &["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"];

/// Warnings and errors to the node's log, plus the line saying the server started.
const LOG4J2: &str = "\
rootLogger.level=WARN
rootLogger.appenderRef.o.ref=O
appender.o.type=Console
appender.o.target=SYSTEM_ERR
appender.o.name=O
appender.o.layout.type=PatternLayout
appender.o.layout.pattern=[%d] %p %m (%c)%n
logger.s.name=kafka.server.KafkaRaftServer
logger.s.level=INFO
";
