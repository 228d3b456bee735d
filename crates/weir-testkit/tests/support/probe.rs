//! Apache Kafka's own Java client as a probe (`crates/weir-testkit/java/Probe.java`, run by the JDK's
//! single-file launcher on the broker's jars): steps run in one JVM, one outcome each.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use weir_testkit::{java, kafka_libs, run_with_timeout};

/// One probe step: an action and its `KEY=VALUE` tokens.
pub struct Step(pub Vec<String>);

impl Step {
    pub fn new(action: &str, config: &[(String, String)]) -> Step {
        let mut v = vec![action.to_string()];
        v.extend(config.iter().map(|(k, val)| format!("{k}={val}")));
        Step(v)
    }

    pub fn arg(mut self, key: &str, value: &str) -> Step {
        self.0.push(format!("{key}={value}"));
        self
    }
}

/// What a probe step printed: `Ok(result)` or `Err(exception chain and message)`.
pub type Outcome = Result<String, String>;

/// Runs the steps in one JVM started with `jvm_options`, killed after `timeout`; one outcome per step.
pub fn probe(jvm_options: &[String], steps: Vec<Step>, timeout: Duration) -> Vec<Outcome> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("java/Probe.java");
    let mut cmd = Command::new(java().unwrap_or_else(|e| panic!("{e}")));
    cmd.args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
        .args(jvm_options)
        .arg("-cp")
        .arg(kafka_libs().unwrap_or_else(|e| panic!("{e}")).join("*"))
        .arg(&source);
    let n = steps.len();
    for (i, s) in steps.into_iter().enumerate() {
        if i > 0 {
            cmd.arg("--");
        }
        cmd.args(s.0);
    }
    let out = run_with_timeout(cmd, None, timeout);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let results: Vec<Outcome> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("PROBE "))
        .map(|l| match l.strip_prefix("OK") {
            Some(rest) => Ok(rest.trim().to_string()),
            None => Err(l.strip_prefix("FAIL ").unwrap_or(l).to_string()),
        })
        .collect();
    assert!(
        out.status.success() && results.len() == n,
        "the probe printed {} of {n} results; stdout:\n{stdout}\nstderr:\n{stderr}",
        results.len()
    );
    results
}

#[track_caller]
pub fn ok(o: &Outcome, what: &str) -> String {
    match o {
        Ok(r) => r.clone(),
        Err(e) => panic!("{what}: expected success, got {e}"),
    }
}

#[track_caller]
pub fn fails_with(o: &Outcome, what: &str, needles: &[&str]) {
    match o {
        Ok(r) => panic!("{what}: expected a failure, got OK {r}"),
        Err(e) => {
            eprintln!("{what}: refused as expected: {e}");
            assert!(
                needles.iter().all(|n| e.contains(n)),
                "{what}: expected a failure mentioning {needles:?}, got {e}"
            )
        }
    }
}
