//! `weir consume --stats`: the consumer's partitions on stderr, from `stats()`. A live table redrawn about once a
//! second when stderr is a terminal, like the backpressure demo's view; otherwise one table when consuming ends
//! (so that scripts and tests can read it).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use weir::consumer::{ConsumerStats, PartitionStats, TopicPartition};
use weir::group::GroupStats;

use crate::util::table;

/// How often the live table is redrawn.
const REFRESH: Duration = Duration::from_secs(1);
/// Rows of the live table at most (the partitions with the most lag); the table at the end has every one.
const LIVE_ROWS: usize = 24;

/// The `--stats` view of one `weir consume`.
pub struct StatsView {
    /// Redrawn in place on a terminal; `None`: one table at the end.
    live: Option<Live>,
    started: Instant,
    /// Every partition seen, as last seen: a partition unassigned meanwhile (read to its end with `-e`, or
    /// revoked) keeps its last row.
    seen: BTreeMap<TopicPartition, PartitionStats>,
}

struct Live {
    tick: tokio::time::Interval,
    /// Lines drawn last time, to move back over.
    drawn: usize,
}

impl StatsView {
    /// The view `--stats` asks for (`None` without it): live when stderr is a terminal.
    pub fn new(enabled: bool) -> Option<StatsView> {
        enabled.then(|| StatsView {
            live: std::io::stderr().is_terminal().then(|| Live {
                tick: tokio::time::interval(REFRESH),
                drawn: 0,
            }),
            started: Instant::now(),
            seen: BTreeMap::new(),
        })
    }

    /// Whether the view draws on the terminal (the progress line must then stay off).
    pub fn is_live(view: &Option<StatsView>) -> bool {
        view.as_ref().is_some_and(|v| v.live.is_some())
    }

    /// Completes when the live table is due for a redraw; never without a live table.
    pub async fn due(view: &mut Option<StatsView>) {
        match view.as_mut().and_then(|v| v.live.as_mut()) {
            Some(live) => {
                live.tick.tick().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Remembers the partitions of `stats` (call before unassigning some).
    pub fn observe(&mut self, stats: &ConsumerStats) {
        for p in &stats.partitions {
            self.seen.insert(p.topic_partition.clone(), p.clone());
        }
    }

    /// Redraws the live table from `stats` (and the group's side, in group mode).
    pub fn draw(&mut self, stats: &ConsumerStats, group: Option<&GroupStats>) {
        self.observe(stats);
        let text = self.render(stats, group, Some(LIVE_ROWS));
        let Some(live) = &mut self.live else { return };
        let mut out = String::new();
        if live.drawn > 0 {
            out.push_str(&format!("\x1b[{}A", live.drawn));
        }
        for line in text.lines() {
            out.push_str("\x1b[2K");
            out.push_str(line);
            out.push('\n');
        }
        // Lines left over from a longer table before.
        let lines = text.lines().count();
        for _ in lines..live.drawn {
            out.push_str("\x1b[2K\n");
        }
        if live.drawn > lines {
            out.push_str(&format!("\x1b[{}A", live.drawn - lines));
        }
        live.drawn = lines;
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
        let _ = err.flush();
    }

    /// Consuming ended: the live table is drawn a last time (and stays), or the whole table is printed.
    pub fn finish(&mut self, stats: &ConsumerStats, group: Option<&GroupStats>) {
        if self.live.is_some() {
            self.draw(stats, group);
            return;
        }
        self.observe(stats);
        let text = self.render(stats, group, None);
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }

    /// The header lines and the table; with `max_rows`, only the partitions with the most lag (in partition
    /// order) and a line saying how many are left out.
    fn render(&self, stats: &ConsumerStats, group: Option<&GroupStats>, max_rows: Option<usize>) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "% consumed {} records ({}) in {:.1} s; fetched {} records ({}) in {} fetches; buffered {} of {}; \
             {} backpressure pauses; {}\n",
            stats.records_delivered,
            bytes(stats.bytes_delivered),
            self.started.elapsed().as_secs_f64(),
            stats.records_fetched,
            bytes(stats.bytes_fetched),
            stats.fetches,
            bytes(stats.buffered_bytes as u64),
            bytes(stats.memory_budget as u64),
            stats.backpressure_pauses,
            match stats.buffer_target.as_millis() {
                0 => "fixed buffers (fair shares)".to_string(),
                ms => format!("buffers sized for {ms} ms of drain"),
            },
        ));
        if let Some(g) = group {
            let last = g
                .last_rebalance
                .map(|d| format!(", the last took {} ms", d.as_millis()))
                .unwrap_or_default();
            out.push_str(&format!(
                "% group {}: member {}, generation {}, {}; {} rebalances{last}\n",
                g.group_id, g.member_id, g.generation, g.state, g.rebalances
            ));
        }
        let assigned: BTreeMap<&TopicPartition, &PartitionStats> =
            stats.partitions.iter().map(|p| (&p.topic_partition, p)).collect();
        let mut rows: Vec<(&PartitionStats, bool)> = self
            .seen
            .iter()
            .map(|(tp, last)| match assigned.get(tp) {
                Some(now) => (*now, true),
                None => (last, false),
            })
            .collect();
        let mut left_out = 0;
        if let Some(max) = max_rows.filter(|&m| rows.len() > m) {
            left_out = rows.len() - max;
            rows.sort_by_key(|(p, assigned)| std::cmp::Reverse((*assigned, p.lag.unwrap_or(0))));
            rows.truncate(max);
            rows.sort_by(|a, b| a.0.topic_partition.cmp(&b.0.topic_partition));
        }
        let cells: Vec<Vec<String>> = rows.iter().map(|(p, assigned)| row(p, *assigned)).collect();
        out.push_str(&table(
            &[
                "TOPIC",
                "PARTITION",
                "POSITION",
                "HIGH_WATERMARK",
                "LAG",
                "BUFFERED",
                "LIMIT",
                "DRAIN",
                "STATE",
                "FETCHES",
                "FETCHED",
            ],
            &cells,
        ));
        if left_out > 0 {
            out.push_str(&format!("% ... and {left_out} more partitions (less lag)\n"));
        }
        out
    }
}

/// One partition's row; `assigned`: still assigned (else its last state before it was unassigned).
fn row(p: &PartitionStats, assigned: bool) -> Vec<String> {
    let known = |o: Option<i64>| o.map_or_else(|| "-".to_string(), |o| o.to_string());
    let state = if !assigned {
        "unassigned"
    } else if p.paused {
        "paused"
    } else if p.held {
        "held"
    } else if p.backpressured {
        "backpressured"
    } else {
        "fetching"
    };
    vec![
        p.topic_partition.topic.to_string(),
        p.topic_partition.partition.to_string(),
        p.position.to_string(),
        known(p.high_watermark),
        known(p.lag),
        bytes(p.buffered_bytes),
        bytes(p.buffer_limit),
        format!("{}/s", bytes(p.drain_rate)),
        state.to_string(),
        p.fetches.to_string(),
        p.records_fetched.to_string(),
    ]
}

/// Bytes for people: `512 B`, `16.0 KiB`, `8.0 MiB`, `1.5 GiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_for_people() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(16 << 10), "16.0 KiB");
        assert_eq!(bytes(8 << 20), "8.0 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }
}
