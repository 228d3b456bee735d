//! The figures a load test ends with: a table for people, or one JSON object (`--json`) for scripts.

use std::io::Write;
use std::time::Duration;

use serde_json::{Map, Value};

use super::resource_usage::ResourceUsage;
use crate::util::{table, CliError};

/// What every load test measured over its measured part (the warm-up excluded).
#[derive(Debug, Clone)]
pub struct Measured {
    /// Records counted.
    pub records: u64,
    /// Their payload: key and value bytes.
    pub payload_bytes: u64,
    /// From the end of the warm-up to the end of the run.
    pub wall: Duration,
    /// The process's usage when the measured part began.
    pub usage_start: ResourceUsage,
    /// ... and when it ended.
    pub usage_end: ResourceUsage,
    /// Records of the warm-up.
    pub warmup_records: u64,
    /// Time the warm-up took.
    pub warmup: Duration,
}

/// One figure: its JSON field, its label in the table, its value.
struct Figure {
    key: &'static str,
    label: String,
    value: Value,
    text: String,
}

/// The figures of one run, in the order they are printed.
pub struct Report {
    command: &'static str,
    figures: Vec<Figure>,
}

impl Report {
    /// The figures every load test reports, for `command` (`produce`, `consume`, ...).
    pub fn new(command: &'static str, m: &Measured) -> Report {
        let secs = m.wall.as_secs_f64();
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let (user, system) = m.usage_end.cpu_since(&m.usage_start);
        let mut r = Report {
            command,
            figures: Vec::new(),
        };
        r.count("records", "records", m.records);
        r.number("records_per_sec", "records/s", per_sec(m.records), 0);
        r.number("mb_per_sec", "MB/s (payload)", per_sec(m.payload_bytes) / 1e6, 2);
        r.count("payload_bytes", "payload bytes", m.payload_bytes);
        r.number("wall_s", "wall s", secs, 3);
        r.number("cpu_s", "CPU s (user + sys)", (user + system).as_secs_f64(), 3);
        r.number("cpu_user_s", "CPU user s", user.as_secs_f64(), 3);
        r.number("cpu_sys_s", "CPU sys s", system.as_secs_f64(), 3);
        r.figures.push(Figure {
            key: "peak_rss_bytes",
            label: "peak RSS".into(),
            value: Value::from(m.usage_end.peak_rss_bytes),
            text: format!("{:.1} MiB", m.usage_end.peak_rss_bytes as f64 / (1 << 20) as f64),
        });
        r.count("warmup_records", "warm-up records", m.warmup_records);
        r.number("warmup_s", "warm-up s", m.warmup.as_secs_f64(), 3);
        r
    }

    /// Adds a count.
    pub fn count(&mut self, key: &'static str, label: &str, n: u64) {
        self.figures.push(Figure {
            key,
            label: label.into(),
            value: Value::from(n),
            text: n.to_string(),
        });
    }

    /// Adds a number, shown with `decimals` in the table.
    pub fn number(&mut self, key: &'static str, label: &str, x: f64, decimals: usize) {
        self.figures.push(Figure {
            key,
            label: label.into(),
            value: Value::from(x),
            text: format!("{x:.decimals$}"),
        });
    }

    /// Adds a word or setting.
    pub fn text(&mut self, key: &'static str, label: &str, s: &str) {
        self.figures.push(Figure {
            key,
            label: label.into(),
            value: Value::from(s),
            text: s.into(),
        });
    }

    /// Adds a yes/no figure.
    pub fn flag(&mut self, key: &'static str, label: &str, b: bool) {
        self.figures.push(Figure {
            key,
            label: label.into(),
            value: Value::from(b),
            text: if b { "yes" } else { "no" }.into(),
        });
    }

    /// Adds a word or setting that may be absent: `null` in JSON, `-` in the table.
    pub fn optional_text(&mut self, key: &'static str, label: &str, s: Option<&str>) {
        self.figures.push(Figure {
            key,
            label: label.into(),
            value: s.map_or(Value::Null, Value::from),
            text: s.unwrap_or("-").into(),
        });
    }

    /// The JSON object: `command`, then every figure under its key.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("command".into(), Value::from(self.command));
        for f in &self.figures {
            obj.insert(f.key.into(), f.value.clone());
        }
        Value::Object(obj)
    }

    /// The table: one figure per line.
    pub fn to_table(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .figures
            .iter()
            .map(|f| vec![f.label.clone(), f.text.clone()])
            .collect();
        table(
            &[&format!("BENCH {}", self.command.to_uppercase()), "VALUE"],
            &rows,
        )
    }

    /// Prints the report on stdout: one JSON object with `json`, else the table.
    pub fn print(&self, json: bool) -> Result<(), CliError> {
        let text = if json {
            format!("{}\n", self.to_json())
        } else {
            self.to_table()
        };
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| CliError::Failed(format!("writing stdout: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_table_carry_the_same_figures() {
        let usage = |cpu_ms: u64| ResourceUsage {
            user: Duration::from_millis(cpu_ms),
            system: Duration::from_millis(cpu_ms / 2),
            peak_rss_bytes: 10 << 20,
        };
        let m = Measured {
            records: 1000,
            payload_bytes: 2_000_000,
            wall: Duration::from_secs(2),
            usage_start: usage(100),
            usage_end: usage(300),
            warmup_records: 10,
            warmup: Duration::from_millis(250),
        };
        let mut r = Report::new("produce", &m);
        r.count("failed", "failed", 0);
        let j = r.to_json();
        assert_eq!(j["command"], "produce");
        assert_eq!(j["records"], 1000);
        assert_eq!(j["records_per_sec"], 500.0);
        assert_eq!(j["mb_per_sec"], 1.0);
        assert!((j["cpu_s"].as_f64().unwrap() - 0.3).abs() < 1e-9);
        assert_eq!(j["peak_rss_bytes"], 10 << 20);
        assert_eq!(j["failed"], 0);
        let t = r.to_table();
        assert!(t.starts_with("BENCH PRODUCE"), "{t}");
        assert!(t.contains("records/s           500\n"), "{t}");
        assert!(t.contains("peak RSS            10.0 MiB\n"), "{t}");
    }
}
