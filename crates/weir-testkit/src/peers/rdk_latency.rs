//! The librdkafka latency driver (`crates/weir-testkit/peers/c/latency.c`): a small C program on librdkafka 2.16
//! that produces at a fixed rate and reads the records back in the same process (see the file's header), for the
//! `latency_vs_peers` bench. kcat cannot do this (it cannot stamp a schedule into values, nor produce and consume
//! at once), and a Python driver on confluent-kafka would measure Python's loop, not librdkafka.
//!
//! [`RdkLatency::require`] compiles it with `cc` (or `$CC`) into `$CARGO_TARGET_DIR/rdk-latency/` (default
//! `$REPO/target`), again whenever the source is newer than the binary. Headers: Debian's `librdkafka-dev`
//! (2.0.2, installed by `scripts/setup-test-env librdkafka`); shared object: the librdkafka 2.16 of the PyPI wheel
//! that `$REPO/.rdk/librdkafka.so.1` (or `$WEIR_RDK_LIB`) points at, linked by its real path and found at run time
//! through the run path set at link time, so Debian's own 2.0.2 library can never be picked instead. The driver
//! prints `rd_kafka_version_str()`, which [`RdkLatency::require`] checks against [`LIBRDKAFKA_VERSION`].

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::run_with_timeout;
use crate::{repo_root, LIBRDKAFKA_VERSION, SETUP_HINT};

/// Where the headers of `librdkafka-dev` are.
const HEADER: &str = "/usr/include/librdkafka/rdkafka.h";

/// The compiled driver.
#[derive(Debug, Clone)]
pub struct RdkLatency {
    bin: PathBuf,
    version: String,
}

impl RdkLatency {
    /// Builds the driver if it is missing or older than its source, and checks that it runs on librdkafka 2.16.
    /// Panics with what is missing (the headers, the library, a compiler) or the compiler's output.
    pub fn require() -> RdkLatency {
        let src = repo_root().join("crates/weir-testkit/peers/c/latency.c");
        let out_dir = std::env::var_os("CARGO_TARGET_DIR")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"))
            .join("rdk-latency");
        let bin = out_dir.join("rdk-latency");
        if !Path::new(HEADER).is_file() {
            panic!("weir-testkit: no {HEADER} (Debian's librdkafka-dev): {SETUP_HINT}");
        }
        let lib_dir = std::env::var_os("WEIR_RDK_LIB")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".rdk"));
        let lib = std::fs::canonicalize(lib_dir.join("librdkafka.so.1")).unwrap_or_else(|e| {
            panic!(
                "weir-testkit: no librdkafka {LIBRDKAFKA_VERSION} at {}: {e}: {SETUP_HINT}",
                lib_dir.join("librdkafka.so.1").display()
            )
        });
        if stale(&bin, &[&src, &lib]) {
            compile(&src, &lib, &out_dir, &bin);
        }
        let version = probe_version(&bin);
        assert!(
            version.starts_with(&format!("{LIBRDKAFKA_VERSION}.")),
            "weir-testkit: {} runs on librdkafka {version}, expected {LIBRDKAFKA_VERSION}.x",
            bin.display()
        );
        RdkLatency { bin, version }
    }

    /// The librdkafka version the driver runs on (`rd_kafka_version_str()`), e.g. `2.16.0`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// `rdk-latency BROKERS TOPIC PARTITIONS RATE DURATION_MS WARMUP_MS RECORD_SIZE [KEY=VALUE...]`; settings
    /// prefixed `producer.` or `consumer.` go to that client only. Prints one JSON object on stdout.
    #[allow(clippy::too_many_arguments)]
    pub fn command(
        &self,
        brokers: &str,
        topic: &str,
        partitions: i32,
        rate: u64,
        duration: Duration,
        warmup: Duration,
        record_size: usize,
        settings: &[&str],
    ) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args([brokers, topic])
            .arg(partitions.to_string())
            .arg(rate.to_string())
            .arg(duration.as_millis().to_string())
            .arg(warmup.as_millis().to_string())
            .arg(record_size.to_string())
            .args(settings);
        cmd
    }
}

/// Whether `bin` is missing or older than any of `inputs`.
fn stale(bin: &Path, inputs: &[&Path]) -> bool {
    let modified = |p: &Path| p.metadata().and_then(|m| m.modified()).ok();
    let Some(built) = modified(bin) else {
        return true;
    };
    inputs.iter().any(|p| modified(p).is_none_or(|t| t > built))
}

fn compile(src: &Path, lib: &Path, out_dir: &Path, bin: &Path) {
    std::fs::create_dir_all(out_dir)
        .unwrap_or_else(|e| panic!("weir-testkit: cannot create {}: {e}", out_dir.display()));
    let cc = std::env::var_os("CC")
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "cc".into());
    let lib_dir = lib.parent().expect("a library file has a directory");
    let tmp = bin.with_extension("tmp");
    let mut cmd = Command::new(&cc);
    cmd.args(["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&tmp)
        .arg(src)
        .arg(lib)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lpthread");
    let out = run_with_timeout(cmd, None, Duration::from_secs(120));
    if !out.status.success() {
        panic!(
            "weir-testkit: compiling {} with {} failed ({}):\n{}{}",
            src.display(),
            cc.to_string_lossy(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::rename(&tmp, bin)
        .unwrap_or_else(|e| panic!("weir-testkit: cannot move {} into place: {e}", tmp.display()));
}

/// What `rdk-latency --version` prints: the version of the librdkafka it was loaded with.
fn probe_version(bin: &Path) -> String {
    let out = Command::new(bin)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("weir-testkit: cannot run {}: {e}", bin.display()));
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && !text.is_empty(),
        "weir-testkit: {} --version failed ({}): {}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
