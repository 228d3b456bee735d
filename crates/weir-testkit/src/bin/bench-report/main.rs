//! `bench-report`: the side-by-side benchmark report, from the results lines the benches append to
//! `$WEIR_BENCH_OUT` (`weir_testkit::bench_out`). Run by `scripts/bench-report`; by hand:
//!
//! ```text
//! bench-report render RESULTS [--docs docs/benchmarks.md] [--plots docs/benchmarks]
//! bench-report machine RESULTS [KEY=VALUE...]  # append a meta line: nproc, CPU model, memory, kernel, date
//! bench-report meta RESULTS BENCH KEY=VALUE... # append a meta line about BENCH (e.g. command=...)
//! ```
//!
//! `render` computes medians over runs per (bench, case, client, metric) and ratios to weir's median in the
//! same case, writes SVG plots into the plots directory (it owns the directory's `*.svg`: stale ones are
//! removed) and replaces the block between `<!-- report:start -->` and `<!-- report:end -->` in the docs file
//! (inserting it after the Machine section if absent). Per bench: one grouped-bar plot per metric (up to a dozen
//! cases), one plot per metric against each parameter its cases sweep (three values or more while the other
//! parameters stay the same; a panel per such sweep, e.g. produce and consume), and one plot per case and
//! column of its time series.

mod machine;
mod markdown;
mod plots;
mod results;
mod summary;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use markdown::PlotRef;

/// A bench with more cases than this gets no grouped-bar plots (its sweeps are plotted).
const MAX_BAR_CASES: usize = 12;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some("render") if args.len() >= 2 => render_cmd(&args[1..]),
        Some("machine") if args.len() >= 2 => key_values(&args[2..]).and_then(|extra| {
            let mut facts = machine::facts();
            facts.extend(extra);
            append_meta(Path::new(&args[1]), None, facts)
        }),
        Some("meta") if args.len() >= 3 => {
            key_values(&args[3..]).and_then(|f| append_meta(Path::new(&args[1]), Some(&args[2]), f))
        }
        _ => Err(
            "usage: bench-report render RESULTS [--docs FILE] [--plots DIR] | machine RESULTS [KEY=VALUE...] | \
                  meta RESULTS BENCH KEY=VALUE..."
                .to_owned(),
        ),
    };
    if let Err(e) = outcome {
        eprintln!("bench-report: {e}");
        std::process::exit(1);
    }
}

/// `KEY=VALUE` arguments as pairs.
fn key_values(args: &[String]) -> Result<Vec<(String, String)>, String> {
    args.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| format!("{kv:?} is not KEY=VALUE"))
        })
        .collect()
}

fn append_meta(path: &Path, bench: Option<&str>, facts: Vec<(String, String)>) -> Result<(), String> {
    let mut o = serde_json::Map::new();
    if let Some(b) = bench {
        o.insert("bench".into(), b.into());
    }
    o.insert(
        "meta".into(),
        facts
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::from(v)))
            .collect(),
    );
    let line = format!("{}\n", serde_json::Value::Object(o));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn render_cmd(args: &[String]) -> Result<(), String> {
    let results = PathBuf::from(&args[0]);
    let root = weir_testkit::repo_root();
    let mut docs = root.join("docs/benchmarks.md");
    let mut plots_dir = root.join("docs/benchmarks");
    let mut rest = args[1..].iter();
    while let Some(a) = rest.next() {
        let value = rest.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--docs" => docs = PathBuf::from(value),
            "--plots" => plots_dir = PathBuf::from(value),
            _ => return Err(format!("unknown option {a}")),
        }
    }
    let text = std::fs::read_to_string(&results).map_err(|e| format!("{}: {e}", results.display()))?;
    let lines = results::parse_all(&text).map_err(|e| format!("{}: {e}", results.display()))?;
    let benches = summary::summarize(&lines);
    if benches.is_empty() {
        return Err(format!("{}: no measurements", results.display()));
    }
    let meta = summary::meta(&lines);

    std::fs::create_dir_all(&plots_dir).map_err(|e| format!("{}: {e}", plots_dir.display()))?;
    for entry in std::fs::read_dir(&plots_dir).map_err(|e| format!("{}: {e}", plots_dir.display()))? {
        let p = entry.map_err(|e| e.to_string())?.path();
        if p.extension().is_some_and(|x| x == "svg") {
            std::fs::remove_file(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
    }
    // Image paths relative to the docs file.
    let rel_dir = relative(docs.parent().unwrap_or(Path::new(".")), &plots_dir);
    let mut plot_refs: BTreeMap<String, Vec<PlotRef>> = BTreeMap::new();
    for b in &benches {
        let refs = plot_refs.entry(b.bench.clone()).or_default();
        let mut add = |file: String, title: String, draw: &dyn Fn(&Path) -> Result<(), String>| {
            let path = plots_dir.join(&file);
            draw(&path)?;
            eprintln!("bench-report: wrote {}", path.display());
            refs.push(PlotRef {
                title,
                path: format!("{rel_dir}{file}"),
            });
            Ok::<(), String>(())
        };
        // Bars of every case side by side stop being readable past a dozen cases; the sweeps show those.
        if b.cases.len() <= MAX_BAR_CASES {
            for m in &b.metrics {
                add(
                    format!("{}-{}.svg", slug(&b.bench), slug(m)),
                    format!("{} {m}", b.bench),
                    &|p| plots::bars(p, b, m),
                )?;
            }
        }
        let sweeps = b.sweeps();
        let mut params: Vec<&String> = sweeps.iter().map(|s| &s.param).collect();
        params.dedup();
        for param in params {
            let of_param: Vec<&summary::Sweep> = sweeps.iter().filter(|s| &s.param == param).collect();
            // A metric only one client reports (a peer's own figure) has no comparison to plot.
            let compared = |m: &String| {
                b.clients
                    .iter()
                    .filter(|k| {
                        of_param.iter().any(|s| {
                            s.points.iter().any(|(i, _)| {
                                b.cases[*i].client(k).is_some_and(|c| c.metrics.contains_key(m))
                            })
                        })
                    })
                    .count()
                    >= 2
                    || b.clients.len() == 1
            };
            for m in b.metrics.iter().filter(|m| compared(m)) {
                add(
                    format!("{}-{}-vs-{}.svg", slug(&b.bench), slug(m), slug(param)),
                    format!("{} {m} against {param}", b.bench),
                    &|p| plots::sweep(p, b, m, &of_param),
                )?;
            }
        }
        for c in &b.cases {
            let mut columns: Vec<&String> = c.clients.iter().flat_map(|k| k.series.keys()).collect();
            columns.sort();
            columns.dedup();
            for col in columns {
                add(
                    format!("{}-{}-{}.svg", slug(&b.bench), slug(&c.case), slug(col)),
                    format!("{} {col} over time, {}", b.bench, c.case),
                    &|p| plots::series(p, b, &c.case, col),
                )?;
            }
        }
    }
    let mut block = markdown::render(&benches, &meta, &plot_refs);
    block.push_str(&format!(
        "Results file: `{}` ({} lines).\n",
        results.file_name().map_or_else(
            || results.display().to_string(),
            |n| n.to_string_lossy().into_owned()
        ),
        lines.len()
    ));
    let doc = std::fs::read_to_string(&docs).unwrap_or_default();
    let updated = markdown::replace_block(&doc, &block);
    std::fs::write(&docs, updated).map_err(|e| format!("{}: {e}", docs.display()))?;
    eprintln!("bench-report: updated {}", docs.display());
    Ok(())
}

/// `to` relative to directory `from`, with a trailing `/` (both made absolute first), e.g. `benchmarks/`.
fn relative(from: &Path, to: &Path) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let (from, to) = (abs(from), abs(to));
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = String::new();
    for _ in from.components().skip(common) {
        out.push_str("../");
    }
    for c in to.components().skip(common) {
        out.push_str(&c.as_os_str().to_string_lossy());
        out.push('/');
    }
    out
}

/// A file-name-safe form of a label: lowercase ASCII letters, digits, `_`; runs of anything else become `-`.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_relative_paths() {
        assert_eq!(
            slug("produce 1M x 100 B, 6 partitions"),
            "produce-1m-x-100-b-6-partitions"
        );
        assert_eq!(slug("wall_s"), "wall_s");
        assert_eq!(
            relative(Path::new("/r/docs"), Path::new("/r/docs/benchmarks")),
            "benchmarks/"
        );
        assert_eq!(relative(Path::new("/r/docs"), Path::new("/r/out")), "../out/");
    }
}
