//! SVG plots with `plotters` (its SVG backend writes `<text>` elements and estimates their size itself, so no
//! font files or fontconfig are involved): grouped bars of medians per case and client with the ratio to weir
//! above each bar, a metric against a swept parameter (a panel per sweep of it), and time series.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::markdown::{fmt_num, fmt_ratio, fmt_tick};
use crate::results::ParamValue;
use crate::summary::{BenchSummary, Sweep, REFERENCE};

const WIDTH: u32 = 960;
const HEIGHT: u32 = 480;
const FONT: &str = "sans-serif";
/// The legend's column, right of the plot, so that it never hides a bar or a line.
const LEGEND_WIDTH: u32 = 150;

/// Each client of `bench` that `keep` accepts, with its colour.
fn entries(bench: &BenchSummary, keep: impl Fn(&str) -> bool) -> Vec<(String, RGBColor)> {
    bench
        .clients
        .iter()
        .enumerate()
        .filter(|(_, c)| keep(c))
        .map(|(i, c)| (c.clone(), color(i)))
        .collect()
}

/// The legend: a colour box and a name per line, at the top of `area`.
fn legend(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    entries: &[(String, RGBColor)],
    e: &impl Fn(DrawingAreaErrorKind<std::io::Error>) -> String,
) -> Result<(), String> {
    for (i, (name, c)) in entries.iter().enumerate() {
        let y = 48 + 20 * i as i32;
        area.draw(&Rectangle::new([(4, y - 6), (16, y + 6)], c.filled()))
            .map_err(e)?;
        let style = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        area.draw(&Text::new(name.clone(), (22, y), style)).map_err(e)?;
    }
    Ok(())
}

/// A colour per client, by its index in the bench's client list (weir first).
fn color(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 10] = [
        RGBColor(0xd6, 0x27, 0x28), // weir: red
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x8c, 0x56, 0x4b),
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0x2c, 0xa0, 0x2c),
        RGBColor(0x94, 0x67, 0xbd),
        RGBColor(0x17, 0xbe, 0xcf),
        RGBColor(0x7f, 0x7f, 0x7f),
        RGBColor(0xbc, 0xbd, 0x22),
        RGBColor(0xe3, 0x77, 0xc2),
    ];
    PALETTE[i % PALETTE.len()]
}

/// The y axis: linear, or log10 (values plotted as their logarithm, labels as the values) when the positive
/// values span at least two decades.
#[derive(Clone, Copy)]
struct YAxis {
    log: bool,
    lo: f64,
    hi: f64,
}

impl YAxis {
    /// An axis for `values` with `headroom` (a fraction of the range) above them for labels and the legend.
    fn fit(values: &[f64], headroom: f64) -> YAxis {
        let pos: Vec<f64> = values
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        let max = values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let min_pos = pos.iter().copied().fold(f64::INFINITY, f64::min);
        if !pos.is_empty() && max / min_pos >= 100.0 {
            // A little below the smallest value, so that its bar shows.
            let lo = (min_pos.log10() - 0.3).floor();
            let hi = max.log10();
            YAxis {
                log: true,
                lo,
                hi: hi + (hi - lo) * headroom,
            }
        } else {
            let hi = if max > 0.0 { max } else { 1.0 };
            YAxis {
                log: false,
                lo: 0.0,
                hi: hi * (1.0 + headroom),
            }
        }
    }

    fn at(&self, v: f64) -> f64 {
        if self.log {
            v.max(f64::MIN_POSITIVE).log10()
        } else {
            v
        }
    }

    /// Where bars start.
    fn base(&self) -> f64 {
        self.lo
    }

    fn label(&self, y: f64) -> String {
        if self.log {
            fmt_num(10f64.powf(y))
        } else {
            fmt_tick(y)
        }
    }
}

fn err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// Grouped bars: for each case, one bar per client it has (median, with a [min–max] whisker), the ratio to
/// weir's median above each bar (weir's own median above its bar).
pub fn bars(path: &Path, bench: &BenchSummary, metric: &str) -> Result<(), String> {
    let e = err(path);
    let cases: Vec<_> = bench
        .cases
        .iter()
        .filter(|c| c.clients.iter().any(|k| k.metrics.contains_key(metric)))
        .collect();
    // Per case, the indices (into `bench.clients`, which fixes the colours) of the clients with this metric.
    let present: Vec<Vec<usize>> = cases
        .iter()
        .map(|c| {
            (0..bench.clients.len())
                .filter(|&k| {
                    c.client(&bench.clients[k])
                        .is_some_and(|x| x.metrics.contains_key(metric))
                })
                .collect()
        })
        .collect();
    let values: Vec<f64> = cases
        .iter()
        .flat_map(|c| c.clients.iter())
        .filter_map(|k| k.metrics.get(metric))
        .flat_map(|s| [s.min, s.max])
        .collect();
    let y = YAxis::fit(&values, 0.12);
    let n = cases.len().max(1) as f64;
    let labels: Vec<String> = cases.iter().map(|c| c.case.clone()).collect();

    // Wider with many cases, so that their labels fit under their groups.
    let width = WIDTH.max(LEGEND_WIDTH + 90 + 330 * cases.len() as u32);
    let root = SVGBackend::new(path, (width, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(&e)?;
    let (root, legend_area) = root.split_horizontally(width - LEGEND_WIDTH);
    let shown = |name: &str| present.iter().flatten().any(|&k| bench.clients[k] == name);
    legend(&legend_area, &entries(bench, shown), &e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: {metric}, median [min–max] of runs; labels: ratio to weir (weir: its median)",
                bench.bench
            ),
            (FONT, 17),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..n, y.lo..y.hi)
        .map_err(&e)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        // Ticks every half unit: the ones at a group's centre carry its case label.
        .x_labels(2 * cases.len() + 1)
        .x_label_formatter(&|x| {
            let i = x.floor();
            if (x - i - 0.5).abs() < 1e-6 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| y.label(*v))
        .y_desc(if y.log {
            format!("{metric} (log scale)")
        } else {
            metric.to_owned()
        })
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(&e)?;

    for (i, case) in cases.iter().enumerate() {
        let slot_width = 0.8 / present[i].len().max(1) as f64;
        for (slot, &k) in present[i].iter().enumerate() {
            let client = &bench.clients[k];
            let Some(s) = case.client(client).and_then(|x| x.metrics.get(metric)) else {
                continue;
            };
            let x0 = i as f64 + 0.1 + slot_width * slot as f64;
            let xc = x0 + slot_width * 0.45;
            let bar = Rectangle::new(
                [(x0, y.base()), (x0 + slot_width * 0.9, y.at(s.median))],
                color(k).filled(),
            );
            chart.draw_series([bar]).map_err(&e)?;
            if s.runs > 1 {
                let whisker =
                    PathElement::new(vec![(xc, y.at(s.min)), (xc, y.at(s.max))], BLACK.stroke_width(1));
                chart.draw_series([whisker]).map_err(&e)?;
            }
            let label = if client == REFERENCE {
                fmt_num(s.median)
            } else {
                case.ratio_to_reference(client, metric)
                    .map(fmt_ratio)
                    .unwrap_or_default()
            };
            let style = TextStyle::from((FONT, 11).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
            chart
                .draw_series([Text::new(label, (xc, y.at(s.max.max(s.median))), style)])
                .map_err(&e)?;
        }
    }
    root.present().map_err(&e)
}

/// Width of one panel of a sweep plot with several panels.
const PANEL_WIDTH: u32 = 640;

/// `metric`'s median against the swept parameter, one line per client, one panel per sweep in `sweeps` (all of
/// the same parameter, e.g. a produce and a consume sweep), each panel titled by its fixed parameters that
/// differ between the sweeps. A numeric parameter spanning two decades or more gets a log x axis; a label
/// parameter (a codec) gets one slot per value, in the sweep's order.
pub fn sweep(path: &Path, bench: &BenchSummary, metric: &str, sweeps: &[&Sweep]) -> Result<(), String> {
    let e = err(path);
    let Some(first) = sweeps.first() else {
        return Ok(());
    };
    let param = &first.param;
    let width = if sweeps.len() == 1 {
        WIDTH
    } else {
        LEGEND_WIDTH + PANEL_WIDTH * sweeps.len() as u32
    };
    let root = SVGBackend::new(path, (width, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(&e)?;
    let (root, legend_area) = root.split_horizontally(width - LEGEND_WIDTH);
    let has = |client: &str, s: &Sweep| {
        s.points.iter().any(|(i, _)| {
            bench.cases[*i]
                .client(client)
                .is_some_and(|k| k.metrics.contains_key(metric))
        })
    };
    legend(
        &legend_area,
        &entries(bench, |k| sweeps.iter().any(|s| has(k, s))),
        &e,
    )?;
    let root = root
        .titled(
            &format!("{}: {metric} against {param} (medians)", bench.bench),
            (FONT, 18),
        )
        .map_err(&e)?;
    // The fixed parameters that tell the panels apart.
    let differing: Vec<&String> = first
        .fixed
        .keys()
        .filter(|k| sweeps.iter().any(|s| s.fixed.get(*k) != first.fixed.get(*k)))
        .collect();
    let panels = root.split_evenly((1, sweeps.len()));
    for (panel, s) in panels.iter().zip(sweeps) {
        let numeric = s.numeric();
        let values: Vec<f64> = s
            .points
            .iter()
            .filter_map(|(_, v)| match v {
                ParamValue::Num(x) => Some(*x),
                ParamValue::Str(_) => None,
            })
            .collect();
        let (x_lo, x_hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                (a.min(*x), b.max(*x))
            });
        let log_x = numeric && x_lo > 0.0 && x_hi / x_lo >= 100.0;
        let labels: Vec<String> = s.points.iter().map(|(_, v)| v.to_string()).collect();
        // Where a point goes on the x axis: its value (or log10), or its label's slot centre.
        let x_of = |slot: usize, v: &ParamValue| match v {
            ParamValue::Num(x) if numeric && log_x => x.log10(),
            ParamValue::Num(x) if numeric => *x,
            _ => slot as f64 + 0.5,
        };
        let (lo, hi) = if !numeric {
            (0.0, s.points.len() as f64)
        } else if log_x {
            (x_lo.log10() - 0.15, x_hi.log10() + 0.15)
        } else {
            let pad = ((x_hi - x_lo) * 0.05).max(0.5);
            (x_lo - pad, x_hi + pad)
        };
        // Per client: its colour index and points (x, median), in the sweep's order.
        let lines: Vec<(usize, Vec<(f64, f64)>)> = bench
            .clients
            .iter()
            .enumerate()
            .map(|(k, client)| {
                let pts = s
                    .points
                    .iter()
                    .enumerate()
                    .filter_map(|(slot, (i, v))| {
                        let m = bench.cases[*i].client(client)?.metrics.get(metric)?;
                        Some((x_of(slot, v), m.median))
                    })
                    .collect();
                (k, pts)
            })
            .filter(|(_, pts): &(usize, Vec<(f64, f64)>)| !pts.is_empty())
            .collect();
        let y = YAxis::fit(
            &lines
                .iter()
                .flat_map(|l| l.1.iter().map(|p| p.1))
                .collect::<Vec<_>>(),
            0.15,
        );
        let title: Vec<String> = differing
            .iter()
            .filter_map(|k| Some(format!("{k} {}", s.fixed.get(*k)?)))
            .collect();
        let mut chart = ChartBuilder::on(panel);
        chart.margin(12).x_label_area_size(36).y_label_area_size(72);
        if !title.is_empty() {
            chart.caption(title.join(", "), (FONT, 15));
        }
        let mut chart = chart.build_cartesian_2d(lo..hi, y.lo..y.hi).map_err(&e)?;
        let x_label = |x: &f64| {
            if !numeric {
                // Ticks every half slot: the ones at a slot's centre carry its label.
                let i = x.floor();
                if (x - i - 0.5).abs() < 1e-6 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            } else if log_x {
                // Powers of ten only.
                if (x - x.round()).abs() < 1e-6 {
                    fmt_tick(10f64.powf(x.round()))
                } else {
                    String::new()
                }
            } else {
                fmt_tick(*x)
            }
        };
        let mut mesh = chart.configure_mesh();
        if !numeric {
            mesh.disable_x_mesh().x_labels(2 * s.points.len() + 1);
        } else if log_x {
            mesh.x_labels(((hi - lo) * 4.0).ceil() as usize + 1);
        }
        mesh.x_label_formatter(&x_label)
            .y_label_formatter(&|v| y.label(*v))
            .x_desc(if log_x {
                format!("{param} (log scale)")
            } else {
                param.clone()
            })
            .y_desc(if y.log {
                format!("{metric} (log scale)")
            } else {
                metric.to_owned()
            })
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()
            .map_err(&e)?;
        for (k, pts) in &lines {
            let c = color(*k);
            let pts: Vec<(f64, f64)> = pts.iter().map(|&(x, v)| (x, y.at(v))).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(&e)?;
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(&e)?;
        }
    }
    root.present().map_err(&e)
}

/// Column `column` of `case`'s time series against `t_s`: one line per client and run (runs after the first
/// thinner).
pub fn series(path: &Path, bench: &BenchSummary, case: &str, column: &str) -> Result<(), String> {
    let e = err(path);
    let Some(c) = bench.cases.iter().find(|c| c.case == case) else {
        return Ok(());
    };
    let all: Vec<(f64, f64)> = c
        .clients
        .iter()
        .filter_map(|k| k.series.get(column))
        .flat_map(|runs| runs.iter().flat_map(|r| r.1.iter().copied()))
        .collect();
    let t_hi = all
        .iter()
        .map(|p| p.0)
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let y = YAxis::fit(&all.iter().map(|p| p.1).collect::<Vec<_>>(), 0.3);
    let y = YAxis {
        log: false,
        lo: 0.0,
        hi: if y.log {
            all.iter().map(|p| p.1).fold(0.0, f64::max) * 1.3
        } else {
            y.hi
        },
    };

    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(&e)?;
    let (root, legend_area) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
    legend(
        &legend_area,
        &entries(bench, |k| {
            c.client(k).is_some_and(|x| x.series.contains_key(column))
        }),
        &e,
    )?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: {column} over time — {case}", bench.bench),
            (FONT, 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..t_hi, y.lo..y.hi)
        .map_err(&e)?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| fmt_tick(*x))
        .y_label_formatter(&|v| y.label(*v))
        .x_desc("t_s")
        .y_desc(column)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(&e)?;
    for (k, client) in bench.clients.iter().enumerate() {
        let Some(runs) = c.client(client).and_then(|x| x.series.get(column)) else {
            continue;
        };
        let col = color(k);
        for (i, (_, pts)) in runs.iter().enumerate() {
            chart
                .draw_series(LineSeries::new(
                    pts.clone(),
                    col.stroke_width(if i == 0 { 2 } else { 1 }),
                ))
                .map_err(&e)?;
        }
    }
    root.present().map_err(&e)
}
