//! Medians over runs per (bench, case, client, metric), and ratios to `weir`'s median in the same case.

use std::collections::BTreeMap;

use crate::results::{Line, ParamValue};

/// The client every other one is compared with.
pub const REFERENCE: &str = "weir";

/// One figure over runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// How many runs.
    pub runs: usize,
}

/// Median, min and max of `values`; `None` when empty.
pub fn stat(values: &[f64]) -> Option<Stat> {
    let mut s: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Some(Stat {
        median,
        min: s[0],
        max: s[n - 1],
        runs: n,
    })
}

/// `value / reference`, when both are known and the reference is not zero.
pub fn ratio(value: f64, reference: f64) -> Option<f64> {
    (reference != 0.0 && value.is_finite() && reference.is_finite()).then(|| value / reference)
}

/// One run of a time series: its run number and `(t_s, value)` points.
pub type SeriesRun = (u64, Vec<(f64, f64)>);

/// One client in one case.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSummary {
    /// The client's name.
    pub client: String,
    /// Its parameters (of its first line).
    pub params: BTreeMap<String, ParamValue>,
    /// Per metric, the statistics over runs.
    pub metrics: BTreeMap<String, Stat>,
    /// Per series column other than `t_s`, every run's `(t_s, value)` points, in run order.
    pub series: BTreeMap<String, Vec<SeriesRun>>,
}

/// One case of one bench: its clients in report order.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseSummary {
    /// The case's label.
    pub case: String,
    /// The clients, `weir` first, then `weir-*` variants, then the others in the order they first appear.
    pub clients: Vec<ClientSummary>,
}

impl CaseSummary {
    /// The client named `name`.
    pub fn client(&self, name: &str) -> Option<&ClientSummary> {
        self.clients.iter().find(|c| c.client == name)
    }

    /// `client`'s median of `metric` over `weir`'s in this case.
    pub fn ratio_to_reference(&self, client: &str, metric: &str) -> Option<f64> {
        let value = self.client(client)?.metrics.get(metric)?.median;
        let reference = self.client(REFERENCE)?.metrics.get(metric)?.median;
        ratio(value, reference)
    }

    /// The case's value of numeric parameter `name`, if all its clients agree on it.
    pub fn num_param(&self, name: &str) -> Option<f64> {
        let mut v = None;
        for c in &self.clients {
            match (c.params.get(name), v) {
                (Some(ParamValue::Num(x)), None) => v = Some(*x),
                (Some(ParamValue::Num(x)), Some(y)) if *x == y => {}
                _ => return None,
            }
        }
        v
    }
}

/// One bench: its cases in the order they first appear, the metrics and series columns they report.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchSummary {
    /// The bench's name.
    pub bench: String,
    /// Its cases.
    pub cases: Vec<CaseSummary>,
    /// Every metric any of its measurements has, in first-seen order.
    pub metrics: Vec<String>,
    /// Every client, in report order (see [`CaseSummary::clients`]).
    pub clients: Vec<String>,
}

impl BenchSummary {
    /// Numeric parameters that take at least three values over the cases, each case agreeing within itself:
    /// the ones worth a plot of a metric against them.
    pub fn swept_params(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for c in &self.cases {
            for k in &c.clients {
                for (name, v) in &k.params {
                    if matches!(v, ParamValue::Num(_)) && !names.contains(name) {
                        names.push(name.clone());
                    }
                }
            }
        }
        names
            .into_iter()
            .filter(|name| {
                let mut values: Vec<f64> = Vec::new();
                for c in &self.cases {
                    let Some(x) = c.num_param(name) else { return false };
                    if !values.contains(&x) {
                        values.push(x);
                    }
                }
                values.len() >= 3
            })
            .collect()
    }
}

/// Rank of a client in report order: `weir`, then its variants, then the rest (ties: first seen).
fn client_rank(name: &str) -> u8 {
    if name == REFERENCE {
        0
    } else if name.starts_with("weir-") {
        1
    } else {
        2
    }
}

/// The schema's metric names come first, in its order; the others after them (stable: first-seen order).
fn metric_rank(name: &str) -> usize {
    const KNOWN: [&str; 10] = [
        "wall_s",
        "cpu_s",
        "peak_rss_mib",
        "records_per_s",
        "mb_per_s",
        "calls_per_s",
        "p50_ms",
        "p99_ms",
        "p999_ms",
        "max_ms",
    ];
    KNOWN.iter().position(|k| *k == name).unwrap_or(KNOWN.len())
}

fn order_clients(names: &mut [String]) {
    // Stable: first-seen order within a rank.
    names.sort_by_key(|n| client_rank(n));
}

/// Groups `lines` by bench (first-seen order), case and client, and computes the statistics.
pub fn summarize(lines: &[Line]) -> Vec<BenchSummary> {
    // Per bench, per case, per client: raw values.
    struct Raw {
        params: BTreeMap<String, ParamValue>,
        metrics: BTreeMap<String, Vec<f64>>,
        series: BTreeMap<String, Vec<SeriesRun>>,
    }
    type Clients = Vec<(String, Raw)>;
    // Bench name, its cases with their clients, its metric names.
    type Bench = (String, Vec<(String, Clients)>, Vec<String>);
    let mut benches: Vec<Bench> = Vec::new();
    for line in lines {
        let key = match line {
            Line::Measurement { key, .. } | Line::Series { key, .. } => key,
            Line::Meta { .. } => continue,
        };
        let bi = match benches.iter().position(|b| b.0 == key.bench) {
            Some(i) => i,
            None => {
                benches.push((key.bench.clone(), Vec::new(), Vec::new()));
                benches.len() - 1
            }
        };
        let (_, cases, metric_names) = &mut benches[bi];
        let ci = match cases.iter().position(|c| c.0 == key.case) {
            Some(i) => i,
            None => {
                cases.push((key.case.clone(), Vec::new()));
                cases.len() - 1
            }
        };
        let clients = &mut cases[ci].1;
        let ki = match clients.iter().position(|c| c.0 == key.client) {
            Some(i) => i,
            None => {
                let raw = Raw {
                    params: key.params.clone(),
                    metrics: BTreeMap::new(),
                    series: BTreeMap::new(),
                };
                clients.push((key.client.clone(), raw));
                clients.len() - 1
            }
        };
        let raw = &mut clients[ki].1;
        match line {
            Line::Measurement { metrics, .. } => {
                for (name, v) in metrics {
                    if !metric_names.contains(name) {
                        metric_names.push(name.clone());
                    }
                    raw.metrics.entry(name.clone()).or_default().push(*v);
                }
            }
            Line::Series { columns, .. } => {
                let Some(t) = columns.get("t_s") else { continue };
                for (name, ys) in columns.iter().filter(|(n, _)| n.as_str() != "t_s") {
                    let points = t
                        .iter()
                        .copied()
                        .zip(ys.iter().copied())
                        .filter(|(x, y)| x.is_finite() && y.is_finite());
                    raw.series
                        .entry(name.clone())
                        .or_default()
                        .push((key.run, points.collect()));
                }
            }
            Line::Meta { .. } => {}
        }
    }
    benches
        .into_iter()
        .map(|(bench, cases, metrics)| {
            let mut all_clients: Vec<String> = Vec::new();
            let cases = cases
                .into_iter()
                .map(|(case, clients)| {
                    let mut clients: Vec<ClientSummary> = clients
                        .into_iter()
                        .map(|(client, raw)| {
                            if !all_clients.contains(&client) {
                                all_clients.push(client.clone());
                            }
                            ClientSummary {
                                client,
                                params: raw.params,
                                metrics: raw
                                    .metrics
                                    .iter()
                                    .filter_map(|(k, v)| Some((k.clone(), stat(v)?)))
                                    .collect(),
                                series: raw.series,
                            }
                        })
                        .collect();
                    clients.sort_by_key(|c| client_rank(&c.client));
                    CaseSummary { case, clients }
                })
                .collect();
            order_clients(&mut all_clients);
            let mut metrics = metrics;
            metrics.sort_by_key(|m| metric_rank(m));
            BenchSummary {
                bench,
                cases,
                metrics,
                clients: all_clients,
            }
        })
        .collect()
}

/// The facts of the meta lines: the machine's (no bench) and each bench's, later lines overriding earlier ones.
pub fn meta(lines: &[Line]) -> BTreeMap<Option<String>, BTreeMap<String, String>> {
    let mut out: BTreeMap<Option<String>, BTreeMap<String, String>> = BTreeMap::new();
    for line in lines {
        if let Line::Meta { bench, facts } = line {
            out.entry(bench.clone()).or_default().extend(facts.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::parse_all;

    #[test]
    fn median_of_odd_and_even_counts_and_the_range() {
        assert_eq!(
            stat(&[3.0, 1.0, 2.0]),
            Some(Stat {
                median: 2.0,
                min: 1.0,
                max: 3.0,
                runs: 3
            })
        );
        assert_eq!(
            stat(&[4.0, 1.0, 3.0, 2.0]),
            Some(Stat {
                median: 2.5,
                min: 1.0,
                max: 4.0,
                runs: 4
            })
        );
        assert_eq!(stat(&[f64::NAN, 5.0]).map(|s| (s.median, s.runs)), Some((5.0, 1)));
        assert_eq!(stat(&[]), None);
    }

    #[test]
    fn ratio_needs_a_nonzero_reference() {
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(3.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }

    fn line(bench: &str, case: &str, client: &str, run: u64, wall: f64, threads: u32) -> String {
        format!(
            r#"{{"bench":"{bench}","case":"{case}","client":"{client}","run":{run},"params":{{"threads":{threads}}},"metrics":{{"wall_s":{wall}}}}}"#
        )
    }

    #[test]
    fn groups_by_bench_case_and_client_with_weir_first() {
        let text = [
            line("b", "c1", "franz-go", 1, 3.0, 1),
            line("b", "c1", "weir-x", 1, 9.0, 1),
            line("b", "c1", "weir", 1, 1.0, 1),
            line("b", "c1", "franz-go", 2, 5.0, 1),
            line("b", "c1", "weir", 2, 3.0, 1),
            line("b", "c2", "franz-go", 1, 8.0, 4),
            line("other", "c1", "weir", 1, 7.0, 1),
            r#"{"bench":"b","meta":{"broker":"Kafka 4"}}"#.to_owned(),
            r#"{"meta":{"nproc":"2"}}"#.to_owned(),
        ]
        .join("\n");
        let lines = parse_all(&text).unwrap();
        let s = summarize(&lines);
        assert_eq!(
            s.iter().map(|b| b.bench.as_str()).collect::<Vec<_>>(),
            ["b", "other"]
        );
        let b = &s[0];
        assert_eq!(b.clients, ["weir", "weir-x", "franz-go"]);
        assert_eq!(b.metrics, ["wall_s"]);
        assert_eq!(metric_rank("cpu_s"), 1);
        assert!(metric_rank("mb_per_cpu_s") > metric_rank("max_ms"));
        assert_eq!(
            b.cases.iter().map(|c| c.case.as_str()).collect::<Vec<_>>(),
            ["c1", "c2"]
        );
        let c1 = &b.cases[0];
        assert_eq!(
            c1.clients.iter().map(|c| c.client.as_str()).collect::<Vec<_>>(),
            ["weir", "weir-x", "franz-go"]
        );
        assert_eq!(c1.client("weir").unwrap().metrics["wall_s"].median, 2.0);
        assert_eq!(c1.client("franz-go").unwrap().metrics["wall_s"].median, 4.0);
        assert_eq!(c1.ratio_to_reference("franz-go", "wall_s"), Some(2.0));
        assert_eq!(c1.ratio_to_reference("weir", "wall_s"), Some(1.0));
        // No weir in c2: no ratio.
        assert_eq!(b.cases[1].ratio_to_reference("franz-go", "wall_s"), None);
        assert_eq!(c1.num_param("threads"), Some(1.0));
        let m = meta(&lines);
        assert_eq!(m[&None]["nproc"], "2");
        assert_eq!(m[&Some("b".to_owned())]["broker"], "Kafka 4");
    }

    #[test]
    fn a_parameter_is_swept_when_it_takes_three_values() {
        let two = [
            line("b", "t1", "weir", 1, 1.0, 1),
            line("b", "t4", "weir", 1, 1.0, 4),
        ]
        .join("\n");
        assert!(summarize(&parse_all(&two).unwrap())[0].swept_params().is_empty());
        let three = [two, line("b", "t8", "weir", 1, 1.0, 8)].join("\n");
        assert_eq!(
            summarize(&parse_all(&three).unwrap())[0].swept_params(),
            ["threads"]
        );
    }

    #[test]
    fn series_keep_every_run_as_points() {
        let text = r#"{"bench":"s","case":"c","client":"weir","run":1,"series":{"t_s":[0,1],"rss_mib":[5,6]}}
{"bench":"s","case":"c","client":"weir","run":2,"series":{"t_s":[0,1],"rss_mib":[7,8]}}"#;
        let s = summarize(&parse_all(text).unwrap());
        let runs = &s[0].cases[0].clients[0].series["rss_mib"];
        assert_eq!(
            runs,
            &vec![
                (1, vec![(0.0, 5.0), (1.0, 6.0)]),
                (2, vec![(0.0, 7.0), (1.0, 8.0)])
            ]
        );
    }
}
