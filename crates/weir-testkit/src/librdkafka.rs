//! librdkafka tooling for interop checks: kcat and the Python `confluent-kafka` package, both on the
//! librdkafka 2.16 bundled in the PyPI wheel (`scripts/setup-test-env` links it into `$REPO/.rdk`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::process::{find_on_path, run_with_timeout, TOOL_TIMEOUT};
use crate::{repo_root, SETUP_HINT};

/// The librdkafka major.minor that the interop tooling must use.
pub const LIBRDKAFKA_VERSION: &str = "2.16";

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

    /// `kcat 1.7.1, librdkafka 2.16.0`: the two versions of [`Kcat::version`]'s line, without the feature list
    /// (the whole line if it does not have that shape).
    pub fn short_version(&self) -> String {
        let line = self.version_line.as_str();
        let word_after = |w: &str| line.split_once(w).and_then(|(_, r)| r.split_whitespace().next());
        match (word_after("Version "), word_after("librdkafka ")) {
            (Some(k), Some(r)) => format!("kcat {k}, librdkafka {r}"),
            _ => line.to_owned(),
        }
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
