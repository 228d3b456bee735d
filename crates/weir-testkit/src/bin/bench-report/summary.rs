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

    /// The case's value of parameter `name`, if all its clients give it and agree on it.
    pub fn param(&self, name: &str) -> Option<&ParamValue> {
        let first = self.clients.first()?.params.get(name)?;
        self.clients
            .iter()
            .all(|c| c.params.get(name) == Some(first))
            .then_some(first)
    }

    /// The parameters all the case's clients give with the same value.
    pub fn common_params(&self) -> BTreeMap<String, ParamValue> {
        let Some(first) = self.clients.first() else {
            return BTreeMap::new();
        };
        first
            .params
            .keys()
            .filter_map(|k| Some((k.clone(), self.param(k)?.clone())))
            .collect()
    }
}

/// Cases of one bench in which one parameter varies, taking three values or more, while every other parameter
/// of theirs is the same: a one-dimension sweep, worth a plot of each metric against the parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// The varying parameter.
    pub param: String,
    /// The other parameters, shared by the cases.
    pub fixed: BTreeMap<String, ParamValue>,
    /// Indices into the bench's cases with the parameter's value, ordered by it (numbers ascending; labels in
    /// the order the cases first appear).
    pub points: Vec<(usize, ParamValue)>,
}

impl Sweep {
    /// Whether every value of the parameter is a number.
    pub fn numeric(&self) -> bool {
        self.points.iter().all(|(_, v)| matches!(v, ParamValue::Num(_)))
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
    /// The bench's sweeps (see [`Sweep`]), by parameter in name order, then by the other parameters' values in
    /// the order their first case appears. A case takes part with the parameters all its clients
    /// agree on; one case can be in several sweeps (the base case of a matrix is in all of them).
    pub fn sweeps(&self) -> Vec<Sweep> {
        let params: Vec<BTreeMap<String, ParamValue>> =
            self.cases.iter().map(|c| c.common_params()).collect();
        let mut names: Vec<&String> = params.iter().flat_map(|p| p.keys()).collect();
        names.sort();
        names.dedup();
        let mut out = Vec::new();
        for name in names {
            // Cases grouped by their other parameters.
            let mut groups: Vec<Sweep> = Vec::new();
            for (i, p) in params.iter().enumerate() {
                let Some(v) = p.get(name) else { continue };
                let mut fixed = p.clone();
                fixed.remove(name);
                match groups.iter_mut().find(|g| g.fixed == fixed) {
                    Some(g) => g.points.push((i, v.clone())),
                    None => groups.push(Sweep {
                        param: name.clone(),
                        fixed,
                        points: vec![(i, v.clone())],
                    }),
                }
            }
            for mut g in groups {
                let mut distinct: Vec<&ParamValue> = Vec::new();
                for (_, v) in &g.points {
                    if !distinct.contains(&v) {
                        distinct.push(v);
                    }
                }
                if distinct.len() < 3 {
                    continue;
                }
                if g.numeric() {
                    g.points.sort_by(|a, b| match (&a.1, &b.1) {
                        (ParamValue::Num(x), ParamValue::Num(y)) => x.total_cmp(y),
                        _ => std::cmp::Ordering::Equal,
                    });
                }
                out.push(g);
            }
        }
        out
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
        assert_eq!(c1.param("threads"), Some(&ParamValue::Num(1.0)));
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
        assert!(summarize(&parse_all(&two).unwrap())[0].sweeps().is_empty());
        let three = [two, line("b", "t8", "weir", 1, 1.0, 8)].join("\n");
        let sweeps = summarize(&parse_all(&three).unwrap())[0].sweeps();
        assert_eq!(sweeps.len(), 1);
        assert_eq!(sweeps[0].param, "threads");
        assert!(sweeps[0].numeric());
        assert_eq!(
            sweeps[0].points.iter().map(|p| p.0).collect::<Vec<_>>(),
            [0, 1, 2]
        );
    }

    /// A results line of a matrix case.
    fn cell(case: &str, client: &str, op: &str, partitions: u32, codec: &str) -> String {
        format!(
            r#"{{"bench":"m","case":"{case}","client":"{client}","run":1,"params":{{"op":"{op}","partitions":{partitions},"codec":"{codec}"}},"metrics":{{"records_per_s":1}}}}"#
        )
    }

    #[test]
    fn a_matrix_gives_one_sweep_per_parameter_and_fixed_values() {
        let mut text = Vec::new();
        for op in ["produce", "consume"] {
            // Partitions 100, 10, 1 with no codec; codecs at 6 partitions, the base case (6, none) in both.
            for (p, codec) in [
                (100, "none"),
                (10, "none"),
                (1, "none"),
                (6, "none"),
                (6, "lz4"),
                (6, "zstd"),
            ] {
                for client in ["weir", "java"] {
                    text.push(cell(&format!("{op} {p} {codec}"), client, op, p, codec));
                }
            }
        }
        // A case whose clients disagree on a parameter takes part without it.
        text.push(cell("odd", "weir", "produce", 6, "gzip"));
        text.push(cell("odd", "java", "produce", 7, "gzip"));
        let b = &summarize(&parse_all(&text.join("\n")).unwrap())[0];
        let sweeps = b.sweeps();
        let shape: Vec<(&str, String, Vec<String>)> = sweeps
            .iter()
            .map(|s| {
                (
                    s.param.as_str(),
                    s.fixed["op"].to_string(),
                    s.points.iter().map(|p| p.1.to_string()).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                (
                    "codec",
                    "produce".into(),
                    vec!["none".into(), "lz4".into(), "zstd".into()]
                ),
                (
                    "codec",
                    "consume".into(),
                    vec!["none".into(), "lz4".into(), "zstd".into()]
                ),
                (
                    "partitions",
                    "produce".into(),
                    vec!["1".into(), "6".into(), "10".into(), "100".into()]
                ),
                (
                    "partitions",
                    "consume".into(),
                    vec!["1".into(), "6".into(), "10".into(), "100".into()]
                ),
            ]
        );
        assert!(!sweeps[0].numeric() && sweeps[2].numeric());
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
