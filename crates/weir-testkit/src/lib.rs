//! weir-testkit: the harness for weir's integration tests.
//!
//! * [`Broker`]: a real tansu 0.6.0 broker (Kafka protocol, in-memory storage) on `127.0.0.1:<free port>`,
//!   killed when dropped — and also when the test process dies without dropping it (a panic that aborts,
//!   a `static` broker, a SIGKILL from a test runner's timeout): tansu runs under a tiny `/bin/sh` watchdog
//!   that SIGTERMs it as soon as the test process's end of a pipe closes.
//! * [`Kcat`] and [`Python`]: librdkafka 2.16 tooling for interop checks (kcat run against the librdkafka
//!   bundled in the PyPI `confluent-kafka` wheel, and that wheel's Python). Debian's librdkafka 2.0.2 cannot
//!   talk to tansu at all, so these refuse to use it.
//!
//! Everything is prepared by `scripts/setup-test-env` (run by `scripts/test`). Interop tests must not pass
//! silently when the tooling is missing: use [`Kcat::require`] / [`Python::require`], or
//! [`Kcat::require_or_skip`] / [`Python::require_or_skip`], which skip only when
//! `WEIR_ALLOW_NO_LIBRDKAFKA=1`.
//!
//! ```no_run
//! use weir_testkit::{unique_topic, Broker, Kcat};
//!
//! let broker = Broker::start();
//! let topic = unique_topic("demo");
//! broker.create_topic(&topic, 3);
//! let kcat = Kcat::require();
//! let out = kcat.produce(&broker.bootstrap(), &topic, Some(0), b"a\nb\n", &[]);
//! assert!(out.status.success());
//! let got = kcat.consume_all(&broker.bootstrap(), &topic, "%s\n", &[]);
//! assert_eq!(got, b"a\nb\n");
//! ```

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Root of the weir repository (where `scripts/`, `.venv/` and `.rdk/` live).
pub fn repo_root() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    p.canonicalize().unwrap_or(p)
}

/// The librdkafka major.minor that the interop tooling must use.
pub const LIBRDKAFKA_VERSION: &str = "2.16";

/// How long a broker may take to start answering before [`Broker::start`] panics.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Broker`]'s drop waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound for one tool invocation (`tansu topic create`, kcat, python).
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

const SETUP_HINT: &str = "run scripts/setup-test-env (or use scripts/test, which runs it)";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A topic name unique within this machine's test run: `PREFIX-PID-N` (N counts up per process).
pub fn unique_topic(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

// ---------------------------------------------------------------------------------------------------------
// Broker
// ---------------------------------------------------------------------------------------------------------

/// The watchdog around tansu. `$1` = log file, `$2` = tansu binary, rest = tansu arguments.
/// Prints tansu's pid, then waits for it and exits with its status. A background reader blocks on our
/// stdin (fd 3, because asynchronous lists get /dev/null as stdin) and SIGTERMs tansu when the pipe
/// closes — i.e. when the Broker is dropped or the test process dies — then SIGKILLs it if it is still
/// there after about 5 s, and removes the log file.
const WATCHDOG: &str = r#"log=$1; shift
exec 3<&0
"$@" </dev/null 3<&- >>"$log" 2>&1 &
pid=$!
echo "$pid"
( while read -r _ <&3; do :; done
  kill -TERM "$pid" 2>/dev/null
  i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i+1))
    if [ "$i" -gt 50 ]; then kill -KILL "$pid" 2>/dev/null; break; fi
    sleep 0.1
  done
  rm -f "$log" ) </dev/null >/dev/null 2>&1 &
exec 3<&-
wait "$pid"
"#;

/// A running tansu broker on `127.0.0.1:<port>` with in-memory storage. Dropping it stops the broker
/// (SIGTERM, wait, SIGKILL if it lingers) and deletes its log file.
#[derive(Debug)]
pub struct Broker {
    port: u16,
    tansu: PathBuf,
    /// The `/bin/sh` watchdog; tansu is its child, so tansu is fully gone once this has exited.
    watchdog: Child,
    /// Closing this tells the watchdog to stop tansu.
    watchdog_stdin: Option<ChildStdin>,
    tansu_pid: i32,
    log: PathBuf,
}

extern "C" {
    // From the C library std already links against; avoids a `libc` dependency.
    fn kill(pid: i32, sig: i32) -> i32;
}
const SIGTERM: i32 = 15;
const SIGKILL: i32 = 9;

/// Path of the tansu binary: `$WEIR_TANSU`, else `tansu` on PATH, else `~/.cargo/bin/tansu`.
pub fn tansu_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WEIR_TANSU").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = find_on_path("tansu") {
        return Some(p);
    }
    let home = std::env::var_os("HOME")?;
    let p = Path::new(&home).join(".cargo/bin/tansu");
    p.is_file().then_some(p)
}

impl Broker {
    /// Starts tansu on a free loopback port and waits (at most 10 s, no fixed sleeps) until it answers a
    /// Kafka ApiVersions request. Panics with the broker's log if it does not come up, or with setup
    /// instructions if tansu is not installed.
    pub fn start() -> Broker {
        let tansu = tansu_path().unwrap_or_else(|| {
            panic!("weir-testkit: tansu is not installed (not on PATH, nor in ~/.cargo/bin, nor $WEIR_TANSU): {SETUP_HINT}")
        });
        // The port is free when we pick it but could be taken before tansu binds it: retry then.
        let mut last_err = String::new();
        for _ in 0..5 {
            match Broker::try_start(&tansu) {
                Ok(b) => return b,
                Err(e) => last_err = e,
            }
        }
        panic!("weir-testkit: tansu did not start: {last_err}");
    }

    fn try_start(tansu: &Path) -> Result<Broker, String> {
        let port = free_port();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("weir-tansu-{}-{n}-{port}.log", std::process::id()));
        File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let url = format!("tcp://127.0.0.1:{port}");
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("weir-tansu-watchdog")
            .arg(&log)
            .arg(tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        tansu_env(&mut cmd);
        let mut watchdog = cmd.spawn().map_err(|e| format!("cannot spawn /bin/sh: {e}"))?;
        let watchdog_stdin = watchdog.stdin.take();
        let mut line = String::new();
        let stdout = watchdog.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("reading watchdog: {e}"))?;
        let tansu_pid: i32 = match line.trim().parse() {
            Ok(p) => p,
            Err(_) => {
                let _ = watchdog.kill();
                let _ = watchdog.wait();
                return Err(format!("watchdog printed {line:?} instead of a pid"));
            }
        };
        let mut broker = Broker {
            port,
            tansu: tansu.to_path_buf(),
            watchdog,
            watchdog_stdin,
            tansu_pid,
            log,
        };

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = broker.watchdog.try_wait() {
                let tail = broker.log_tail(40);
                // `broker` drops here: nothing left to stop, the log is removed.
                return Err(format!(
                    "tansu exited during startup ({status}) on port {port}; log tail:\n{tail}"
                ));
            }
            if api_versions_ok(port) {
                return Ok(broker);
            }
            if Instant::now() >= deadline {
                let tail = broker.log_tail(40);
                drop(broker);
                panic!(
                    "weir-testkit: tansu did not answer on 127.0.0.1:{port} within {START_TIMEOUT:?}; log tail:\n{tail}"
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `"127.0.0.1:PORT"`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `"tcp://127.0.0.1:PORT"`, the form tansu's own CLI wants.
    pub fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Process id of the tansu process.
    pub fn pid(&self) -> u32 {
        self.tansu_pid as u32
    }

    /// The broker's stdout+stderr log (deleted on drop).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the broker's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read(&self.log)
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

    /// Creates a topic (replication factor 1) with `tansu topic create` and returns when the broker has
    /// confirmed it. Panics with the tool's output and the broker log on failure.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        // tansu 0.6.0 happily creates a topic with 0 partitions (Kafka refuses); never what a test wants.
        assert!(
            partitions >= 1,
            "weir-testkit: create_topic({name:?}, {partitions}): need at least 1 partition"
        );
        let mut cmd = Command::new(&self.tansu);
        cmd.args([
            "topic",
            "create",
            name,
            "--partitions",
            &partitions.to_string(),
            "--broker",
            &self.url(),
        ]);
        tansu_env(&mut cmd);
        let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
        if !out.status.success() {
            panic!(
                "weir-testkit: `tansu topic create {name} --partitions {partitions}` failed ({}):\nstdout: {}\nstderr: {}\nbroker log tail:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log_tail(20)
            );
        }
    }

    fn stop(&mut self) {
        if let Ok(None) = self.watchdog.try_wait() {
            // tansu is the watchdog's unreaped child, so its pid cannot have been reused.
            unsafe { kill(self.tansu_pid, SIGTERM) };
        }
        drop(self.watchdog_stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.watchdog.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    unsafe { kill(self.tansu_pid, SIGKILL) };
                    let _ = self.watchdog.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "weir-testkit: broker on port {} log tail:\n{}",
                self.port,
                self.log_tail(20)
            );
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Environment for tansu processes: its log level comes from `$WEIR_TANSU_LOG` (default `warn`), not
/// from the tests' own `RUST_LOG`; tansu settings that it would read from the environment are cleared.
fn tansu_env(cmd: &mut Command) {
    let level = std::env::var("WEIR_TANSU_LOG").unwrap_or_else(|_| "warn".into());
    cmd.env("RUST_LOG", level);
    for var in [
        "CLUSTER_ID",
        "LISTENER_URL",
        "ADVERTISED_LISTENER_URL",
        "STORAGE_ENGINE",
        "SCHEMA_REGISTRY",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ] {
        cmd.env_remove(var);
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("weir-testkit: cannot bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Sends ApiVersions v0 and checks for a well-formed answer with error code 0.
fn api_versions_ok(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let client_id = b"weir-testkit";
    let mut req = Vec::new();
    req.extend_from_slice(&18i16.to_be_bytes()); // api key: ApiVersions
    req.extend_from_slice(&0i16.to_be_bytes()); // version 0
    req.extend_from_slice(&0x7e57_i32.to_be_bytes()); // correlation id
    req.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    req.extend_from_slice(client_id);
    let mut frame = (req.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&req);
    if s.write_all(&frame).is_err() {
        return false;
    }
    let mut head = [0u8; 10]; // size, correlation id, error code
    let ok = s.read_exact(&mut head).is_ok()
        && i32::from_be_bytes(head[4..8].try_into().unwrap()) == 0x7e57
        && i16::from_be_bytes(head[8..10].try_into().unwrap()) == 0;
    let _ = s.shutdown(Shutdown::Both);
    ok
}

// ---------------------------------------------------------------------------------------------------------
// librdkafka tooling
// ---------------------------------------------------------------------------------------------------------

fn allow_missing_librdkafka() -> bool {
    std::env::var("WEIR_ALLOW_NO_LIBRDKAFKA").is_ok_and(|v| v == "1")
}

/// kcat running on librdkafka 2.16 (via `LD_LIBRARY_PATH`).
#[derive(Debug, Clone)]
pub struct Kcat {
    kcat: PathBuf,
    rdk_lib: PathBuf,
    version_line: String,
}

impl Kcat {
    /// Finds kcat (`$WEIR_KCAT`, else `kcat` on PATH) and the librdkafka directory (`$WEIR_RDK_LIB`,
    /// else `$REPO/.rdk`), and checks that `kcat -V` reports librdkafka 2.16. `None` if anything is missing.
    pub fn find() -> Option<Kcat> {
        static FOUND: OnceLock<Option<Kcat>> = OnceLock::new();
        FOUND.get_or_init(Kcat::probe).clone()
    }

    fn probe() -> Option<Kcat> {
        let kcat = std::env::var_os("WEIR_KCAT")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| find_on_path("kcat"))?;
        let rdk_lib = std::env::var_os("WEIR_RDK_LIB")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".rdk"));
        if !rdk_lib.join("librdkafka.so.1").exists() {
            return None;
        }
        let mut k = Kcat {
            kcat,
            rdk_lib,
            version_line: String::new(),
        };
        let out = k.command().arg("-V").stdin(Stdio::null()).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        let line = text
            .lines()
            .find(|l| l.contains("librdkafka"))?
            .trim()
            .to_string();
        if !line.contains(&format!("librdkafka {LIBRDKAFKA_VERSION}.")) {
            return None;
        }
        k.version_line = line;
        Some(k)
    }

    /// Like [`Kcat::find`], but panics with setup instructions when kcat/librdkafka 2.16 is missing.
    pub fn require() -> Kcat {
        Kcat::find().unwrap_or_else(|| {
            panic!(
                "weir-testkit: kcat on librdkafka {LIBRDKAFKA_VERSION} not found (looked at $WEIR_KCAT or `kcat` on PATH, \
                 with LD_LIBRARY_PATH=$WEIR_RDK_LIB or {}/.rdk): {SETUP_HINT}. \
                 Set WEIR_ALLOW_NO_LIBRDKAFKA=1 to skip interop tests instead.",
                repo_root().display()
            )
        })
    }

    /// For tests: `Some(kcat)`, or `None` (the test should return early) only when kcat is missing and
    /// `WEIR_ALLOW_NO_LIBRDKAFKA=1`; otherwise missing kcat panics like [`Kcat::require`].
    pub fn require_or_skip() -> Option<Kcat> {
        if allow_missing_librdkafka() {
            let k = Kcat::find();
            if k.is_none() {
                eprintln!("weir-testkit: SKIPPED: kcat/librdkafka {LIBRDKAFKA_VERSION} missing and WEIR_ALLOW_NO_LIBRDKAFKA=1");
            }
            return k;
        }
        Some(Kcat::require())
    }

    /// Path of the kcat binary.
    pub fn path(&self) -> &Path {
        &self.kcat
    }

    /// The `kcat -V` line naming the librdkafka version.
    pub fn version(&self) -> &str {
        &self.version_line
    }

    /// A `kcat` command with `LD_LIBRARY_PATH` pointing at librdkafka 2.16.
    pub fn command(&self) -> Command {
        let mut ld = OsString::from(self.rdk_lib.as_os_str());
        if let Some(old) = std::env::var_os("LD_LIBRARY_PATH").filter(|p| !p.is_empty()) {
            ld.push(":");
            ld.push(old);
        }
        let mut cmd = Command::new(&self.kcat);
        cmd.env("LD_LIBRARY_PATH", ld);
        cmd
    }

    /// `kcat -P -b BROKERS -t TOPIC [-p PARTITION] EXTRA...` with `lines` on stdin (one message per
    /// line by default). Returns kcat's output; the caller checks `status`.
    pub fn produce(
        &self,
        brokers: &str,
        topic: &str,
        partition: Option<i32>,
        lines: &[u8],
        extra: &[&str],
    ) -> Output {
        let mut cmd = self.command();
        cmd.args(["-P", "-b", brokers, "-t", topic]);
        if let Some(p) = partition {
            cmd.args(["-p", &p.to_string()]);
        }
        cmd.args(extra);
        run_with_timeout(cmd, Some(lines), TOOL_TIMEOUT)
    }

    /// Everything currently in `topic`, formatted by kcat's `-f FORMAT`:
    /// `kcat -C -b BROKERS -t TOPIC -o beginning -e -f FORMAT -X fetch.wait.max.ms=10 EXTRA...`.
    /// Panics (with stderr) if kcat fails.
    pub fn consume_all(&self, brokers: &str, topic: &str, format: &str, extra: &[&str]) -> Vec<u8> {
        let mut cmd = self.command();
        cmd.args([
            "-C",
            "-b",
            brokers,
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-f",
            format,
        ])
        .args(["-X", "fetch.wait.max.ms=10"])
        .args(extra);
        let out = run_with_timeout(cmd, None, TOOL_TIMEOUT);
        if !out.status.success() {
            panic!(
                "weir-testkit: kcat -C on {topic} at {brokers} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        out.stdout
    }
}

/// The `.venv` Python with `confluent-kafka` (librdkafka 2.16).
#[derive(Debug, Clone)]
pub struct Python {
    python: PathBuf,
    librdkafka_version: String,
}

impl Python {
    /// `$WEIR_PYTHON`, else `$REPO/.venv/bin/python`, if it imports `confluent_kafka` on librdkafka 2.16.
    pub fn find() -> Option<Python> {
        static FOUND: OnceLock<Option<Python>> = OnceLock::new();
        FOUND.get_or_init(Python::probe).clone()
    }

    fn probe() -> Option<Python> {
        let python = std::env::var_os("WEIR_PYTHON")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
        let out = Command::new(&python)
            .args([
                "-c",
                "import confluent_kafka; print(confluent_kafka.libversion()[0])",
            ])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && v.starts_with(&format!("{LIBRDKAFKA_VERSION}."))).then_some(Python {
            python,
            librdkafka_version: v,
        })
    }

    /// Like [`Python::find`], but panics with setup instructions when missing.
    pub fn require() -> Python {
        Python::find().unwrap_or_else(|| {
            panic!(
                "weir-testkit: Python with confluent-kafka (librdkafka {LIBRDKAFKA_VERSION}) not found \
                 ($WEIR_PYTHON or {}/.venv/bin/python): {SETUP_HINT}. \
                 Set WEIR_ALLOW_NO_LIBRDKAFKA=1 to skip interop tests instead.",
                repo_root().display()
            )
        })
    }

    /// `Some(python)`, or `None` only when missing and `WEIR_ALLOW_NO_LIBRDKAFKA=1` (else panics).
    pub fn require_or_skip() -> Option<Python> {
        if allow_missing_librdkafka() {
            let p = Python::find();
            if p.is_none() {
                eprintln!(
                    "weir-testkit: SKIPPED: confluent-kafka venv missing and WEIR_ALLOW_NO_LIBRDKAFKA=1"
                );
            }
            return p;
        }
        Some(Python::require())
    }

    pub fn path(&self) -> &Path {
        &self.python
    }

    /// librdkafka version reported by `confluent_kafka.libversion()`.
    pub fn librdkafka_version(&self) -> &str {
        &self.librdkafka_version
    }

    /// A command running this Python.
    pub fn command(&self) -> Command {
        Command::new(&self.python)
    }

    /// `python -c CODE ARGS...` (so `sys.argv[1:] == ARGS`), stdin closed. Returns its output; the
    /// caller checks `status`.
    pub fn run_script(&self, code: &str, args: &[&str]) -> Output {
        let mut cmd = self.command();
        cmd.arg("-c").arg(code).args(args);
        run_with_timeout(cmd, None, TOOL_TIMEOUT)
    }
}

// ---------------------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------------------

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs `cmd` with `stdin` fed (or closed), collecting stdout/stderr; kills it and panics after `timeout`.
fn run_with_timeout(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("weir-testkit: cannot run {desc}: {e}"));
    let writer = stdin.map(|data| {
        let mut w = child.stdin.take().expect("piped stdin");
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        })
    });
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status: ExitStatus = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err_t.join().unwrap_or_default();
                panic!(
                    "weir-testkit: {desc} did not finish within {timeout:?}; stderr: {}",
                    String::from_utf8_lossy(&stderr)
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => panic!("weir-testkit: waiting for {desc}: {e}"),
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}
