//! Machine-readable results of the side-by-side benchmarks, for `scripts/bench-report`.
//!
//! When the environment variable `WEIR_BENCH_OUT` names a file, every call here APPENDS one JSON object per line
//! to it (opened in append mode, each line written with one `write`, never truncated); without the variable the
//! calls do nothing. Three kinds of lines:
//!
//! - [`record`]: one run of one client,
//!   `{"bench":"vs_peers","case":"produce 1M x 100 B","client":"weir","run":1,"params":{"partitions":6},
//!   "metrics":{"wall_s":0.73,"cpu_s":0.43}}`;
//! - [`series`]: a time series of one run of one client, `"series":{"t_s":[..],"rss_mib":[..]}` instead of
//!   `"metrics"` (equally long arrays; `t_s` is the x axis);
//! - [`meta`]: facts about a bench's environment (broker and client versions),
//!   `{"bench":"vs_peers","meta":{"broker":"Apache Kafka 4.1.0","kcat":"1.7.1"}}`.
//!
//! `bench` is the bench target's name; `case` a short label, the same for every client of one comparison;
//! `client` one of `weir`, `weir-<variant>`, `franz-go`, `librdkafka`, `java`, `memcpy` or a baseline's name;
//! `run` counts from 1. Metric names carry their unit: `wall_s`, `cpu_s`, `peak_rss_mib`, `records_per_s`,
//! `mb_per_s`, `calls_per_s`, `p50_ms`, `p99_ms`, `p999_ms`, `max_ms`, or another snake_case name with a unit
//! suffix. `params` (numbers or strings: partitions, record_size, threads, codec, ...) let the report plot a
//! metric against a parameter. Non-finite numbers are written as `null` (JSON has no NaN).
//!
//! ```no_run
//! use weir_testkit::bench_out;
//!
//! bench_out::record(
//!     "pause_resume",
//!     "live, by name",
//!     "weir",
//!     1,
//!     &[("threads", 4.into()), ("mode", "name".into())],
//!     &[("calls_per_s", 9.1e6)],
//! );
//! ```

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Map, Number, Value};

/// The environment variable naming the results file.
pub const ENV: &str = "WEIR_BENCH_OUT";

/// The value of one parameter of a case: a number or a string.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// A numeric parameter (partitions, threads, record_size, ...), plottable on an axis.
    Num(f64),
    /// A label (codec, mode, ...).
    Str(String),
}

macro_rules! param_from_number {
    ($($t:ty),*) => {$(
        impl From<$t> for Param {
            fn from(v: $t) -> Self {
                Param::Num(v as f64)
            }
        }
    )*};
}
param_from_number!(i32, i64, u32, u64, usize, f64);

impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Str(v.to_owned())
    }
}

impl From<String> for Param {
    fn from(v: String) -> Self {
        Param::Str(v)
    }
}

/// The results file, if `WEIR_BENCH_OUT` is set (and not empty).
pub fn path() -> Option<PathBuf> {
    std::env::var_os(ENV).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Whether results are being written (`WEIR_BENCH_OUT` is set).
pub fn enabled() -> bool {
    path().is_some()
}

/// Appends one measurement of run `run` (from 1) of `client` in `case` of `bench`.
///
/// Does nothing without `WEIR_BENCH_OUT`. Panics if the file cannot be written: a bench asked for its results
/// must not lose them quietly.
pub fn record(
    bench: &str,
    case: &str,
    client: &str,
    run: usize,
    params: &[(&str, Param)],
    metrics: &[(&str, f64)],
) {
    if !enabled() {
        return;
    }
    let metrics = metrics.iter().map(|(k, v)| (k.to_string(), number(*v))).collect();
    append(&line(
        bench,
        case,
        client,
        run,
        params,
        "metrics",
        Value::Object(metrics),
    ));
}

/// Appends one time series of run `run` of `client` in `case` of `bench`: named, equally long columns, `t_s`
/// among them as the x axis.
///
/// Does nothing without `WEIR_BENCH_OUT`. Panics if the file cannot be written or the columns differ in length.
pub fn series(
    bench: &str,
    case: &str,
    client: &str,
    run: usize,
    params: &[(&str, Param)],
    columns: &[(&str, &[f64])],
) {
    if !enabled() {
        return;
    }
    if let Some((first, rest)) = columns.split_first() {
        for c in rest {
            assert_eq!(
                c.1.len(),
                first.1.len(),
                "bench_out::series: column {} has {} values, {} has {}",
                c.0,
                c.1.len(),
                first.0,
                first.1.len()
            );
        }
    }
    let columns = columns
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Value::Array(v.iter().map(|&x| number(x)).collect()),
            )
        })
        .collect();
    append(&line(
        bench,
        case,
        client,
        run,
        params,
        "series",
        Value::Object(columns),
    ));
}

/// Appends facts about `bench`'s environment (e.g. `("broker", "Apache Kafka 4.1.0")`, `("franz-go", "v1.19")`),
/// shown by the report beside the machine.
///
/// Does nothing without `WEIR_BENCH_OUT`. Panics if the file cannot be written.
pub fn meta(bench: &str, facts: &[(&str, &str)]) {
    if !enabled() {
        return;
    }
    let facts = facts
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    let mut o = Map::new();
    o.insert("bench".into(), bench.into());
    o.insert("meta".into(), Value::Object(facts));
    append(&Value::Object(o));
}

fn number(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

fn line(
    bench: &str,
    case: &str,
    client: &str,
    run: usize,
    params: &[(&str, Param)],
    kind: &str,
    values: Value,
) -> Value {
    let mut o = Map::new();
    o.insert("bench".into(), bench.into());
    o.insert("case".into(), case.into());
    o.insert("client".into(), client.into());
    o.insert("run".into(), run.into());
    if !params.is_empty() {
        let p = params
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Param::Num(x) => number(*x),
                    Param::Str(s) => Value::from(s.as_str()),
                };
                (k.to_string(), v)
            })
            .collect();
        o.insert("params".into(), Value::Object(p));
    }
    o.insert(kind.into(), values);
    Value::Object(o)
}

fn append(v: &Value) {
    let Some(path) = path() else { return };
    let mut text = v.to_string();
    text.push('\n');
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        panic!("{ENV}={}: cannot append a result: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_measurement_line_has_the_schema_fields() {
        let v = line(
            "b",
            "c",
            "weir",
            2,
            &[("threads", 4.into()), ("codec", "lz4".into())],
            "metrics",
            serde_json::json!({"wall_s": 1.5, "bad_s": number(f64::NAN)}),
        );
        assert_eq!(v["bench"], "b");
        assert_eq!(v["case"], "c");
        assert_eq!(v["client"], "weir");
        assert_eq!(v["run"], 2);
        assert_eq!(v["params"]["threads"], 4.0);
        assert_eq!(v["params"]["codec"], "lz4");
        assert_eq!(v["metrics"]["wall_s"], 1.5);
        assert!(v["metrics"]["bad_s"].is_null());
        assert!(!v.to_string().contains('\n'), "one line: {v}");
    }
}
