//! The build of the C drivers on librdkafka in `crates/weir-testkit/peers/c/`: `latency.c` for
//! [`RdkLatency`](super::rdk_latency::RdkLatency), `pressure.c` for
//! [`RdkPressure`](super::rdk_pressure::RdkPressure).
//!
//! [`RdkDriver::require`] compiles `peers/c/{name}.c` with `cc` (or `$CC`, `-O2 -std=c11 -Wall -Wextra
//! -Werror`) into `$CARGO_TARGET_DIR/rdk-{name}/rdk-{name}` (default `$REPO/target`), again whenever the source,
//! the header the drivers share (`peers/c/driver.h`) or the library is newer than the binary. Headers: Debian's
//! `librdkafka-dev` (2.0.2, installed by `scripts/setup-test-env librdkafka`); shared object: the librdkafka 2.16
//! of the PyPI wheel that `$REPO/.rdk/librdkafka.so.1` (or `$WEIR_RDK_LIB`) points at, linked by its real path
//! and found at run time through the run path set at link time, so Debian's own 2.0.2 library can never be
//! picked instead. Every driver prints `rd_kafka_version_str()` for `--version`, which [`RdkDriver::require`]
//! checks against [`LIBRDKAFKA_VERSION`].

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::run_with_timeout;
use crate::{repo_root, LIBRDKAFKA_VERSION, SETUP_HINT};

/// Where the headers of `librdkafka-dev` are.
const HEADER: &str = "/usr/include/librdkafka/rdkafka.h";

/// A compiled C driver on librdkafka.
#[derive(Debug, Clone)]
pub struct RdkDriver {
    bin: PathBuf,
    version: String,
}

impl RdkDriver {
    /// Builds `peers/c/{name}.c` into `rdk-{name}` if the binary is missing or older than its source,
    /// `driver.h` or the library, and checks that it runs on librdkafka [`LIBRDKAFKA_VERSION`]. Panics with
    /// what is missing (the headers, the library, a compiler) or the compiler's output.
    pub fn require(name: &str) -> RdkDriver {
        let src = repo_root().join(format!("crates/weir-testkit/peers/c/{name}.c"));
        let exe = format!("rdk-{name}");
        let out_dir = std::env::var_os("CARGO_TARGET_DIR")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target"))
            .join(&exe);
        let bin = out_dir.join(&exe);
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
        // The header every driver includes (`peers/c/driver.h`) counts as a source too.
        let header = src.with_file_name("driver.h");
        if stale(&bin, &[&src, &header, &lib]) {
            compile(&src, &lib, &out_dir, &bin);
        }
        let version = probe_version(&bin);
        assert!(
            version.starts_with(&format!("{LIBRDKAFKA_VERSION}.")),
            "weir-testkit: {} runs on librdkafka {version}, expected {LIBRDKAFKA_VERSION}.x",
            bin.display()
        );
        RdkDriver { bin, version }
    }

    /// The librdkafka version the driver runs on (`rd_kafka_version_str()`), e.g. `2.16.0`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// A command running the driver (add its arguments).
    pub fn command(&self) -> Command {
        Command::new(&self.bin)
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
    // Per process, so that two builds at once do not write one file; the rename is atomic.
    let tmp = bin.with_extension(format!("{}.tmp", std::process::id()));
    let mut cmd = Command::new(&cc);
    cmd.args(["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&tmp)
        .arg(src)
        .arg(lib)
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .arg("-lpthread");
    let out = run_with_timeout(cmd, None, Duration::from_secs(120));
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
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

/// What `rdk-{name} --version` prints: the version of the librdkafka it was loaded with.
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
