//! `weir consume -G GROUP TOPIC...`: balanced consumer group mode, as `kcat -G`.

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use weir::consumer::{ConsumerRecord, TopicPartition};
use weir::group::{BoxFuture, GroupConfig, GroupConsumer, RebalanceContext, RebalanceListener};

use crate::consume::{output_format, write_error, BROKEN_PIPE, MAX_POLL_RECORDS};
use crate::format::Message;
use crate::stats_view::StatsView;
use crate::util::{apply_props, progress, CliError};
use crate::{ConsumeArgs, Global};

/// How long one poll waits in group mode: bounds how often `-e` re-checks the assigned partitions.
const POLL_TIMEOUT: Duration = Duration::from_millis(200);

/// Maps `-o` in group mode to `auto.offset.reset` (`None`: keep the configured one).
fn offset_reset(o: &str) -> Result<Option<&'static str>, CliError> {
    match o {
        "beginning" | "earliest" | "smallest" => Ok(Some("earliest")),
        "end" | "latest" | "largest" => Ok(Some("latest")),
        "stored" => Ok(None),
        _ => Err(CliError::Usage(format!(
            "-o {o:?} with -G: expected beginning, end or stored (the group's committed offsets decide where \
             each partition starts; -o only sets auto.offset.reset)"
        ))),
    }
}

/// Prints rebalances on stderr, as kcat does (`% Group G rebalanced: assigned: t [0], t [1]`).
struct PrintRebalances {
    group: String,
}

fn list(partitions: &[TopicPartition]) -> String {
    if partitions.is_empty() {
        return "(none)".into();
    }
    partitions
        .iter()
        .map(|tp| format!("{} [{}]", tp.topic, tp.partition))
        .collect::<Vec<_>>()
        .join(", ")
}

impl RebalanceListener for PrintRebalances {
    fn on_assigned<'a>(&'a self, _: &'a RebalanceContext<'a>, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        eprintln!("% Group {} rebalanced: assigned: {}", self.group, list(p));
        Box::pin(async {})
    }
    fn on_revoked<'a>(&'a self, _: &'a RebalanceContext<'a>, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        eprintln!("% Group {} rebalanced: revoked: {}", self.group, list(p));
        Box::pin(async {})
    }
    fn on_lost<'a>(&'a self, _: &'a RebalanceContext<'a>, p: &'a [TopicPartition]) -> BoxFuture<'a, ()> {
        eprintln!("% Group {} rebalanced: lost: {}", self.group, list(p));
        Box::pin(async {})
    }
}

pub async fn run(g: &Global, a: ConsumeArgs) -> Result<(), CliError> {
    // Install the handlers first, so a signal is never delivered with the default (killing) action.
    let mut sigint = signal(SignalKind::interrupt())
        .map_err(|e| CliError::Failed(format!("cannot install the SIGINT handler: {e}")))?;
    let mut sigterm = signal(SignalKind::terminate())
        .map_err(|e| CliError::Failed(format!("cannot install the SIGTERM handler: {e}")))?;

    let group_id = a.group.clone().unwrap_or_default();
    let mut topics: Vec<String> = a.topics.clone();
    topics.extend(a.topic.clone());
    if topics.is_empty() {
        return Err(CliError::Usage(
            "-G GROUP needs at least one TOPIC argument".into(),
        ));
    }
    if a.partition.is_some() {
        return Err(CliError::Usage(
            "-p cannot be used with -G: the group assigns the partitions".into(),
        ));
    }
    let mut cfg = GroupConfig::new(&g.brokers, &group_id);
    apply_props(&a.props, |k, v| cfg.set(k, v))?;
    if let Some(o) = &a.offset {
        if let Some(reset) = offset_reset(o)? {
            cfg.set("auto.offset.reset", reset)?;
        }
    }
    a.buffers.apply(|k, v| cfg.set(k, v))?;
    let format = output_format(&a)?;

    let group = GroupConsumer::new(cfg)?;
    if !g.quiet {
        group.set_listener(Arc::new(PrintRebalances {
            group: group_id.clone(),
        }));
    }
    // As kcat: a topic starting with `^` is a regular expression (one pattern; plain names beside it are
    // folded into it as alternatives).
    if topics.iter().any(|t| t.starts_with('^')) {
        let alternatives: Vec<String> = topics
            .iter()
            .map(|t| {
                if t.starts_with('^') {
                    format!("(?:{t})")
                } else {
                    format!("(?:^{}$)", regex::escape(t))
                }
            })
            .collect();
        group.subscribe_pattern(&alternatives.join("|"))?;
    } else {
        let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        group.subscribe(&refs);
    }
    tracing::debug!(group = %group_id, ?topics, "consuming in a group");

    let mut view = StatsView::new(a.stats);
    let pb = progress(g.quiet || StatsView::is_live(&view), "consumed");
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut printed: u64 = 0;
    let limit = a.count.unwrap_or(u64::MAX);

    let result: Result<(), CliError> = async {
        loop {
            if printed >= limit {
                return Ok(());
            }
            if a.exit_at_end && all_at_end(&group) {
                return Ok(());
            }
            // Never take more than will be printed: what poll returns counts as delivered (auto-commit).
            let max = (limit - printed).min(MAX_POLL_RECORDS as u64) as usize;
            // `poll` is cancel-safe: it waits only while it holds no records.
            let batch: Vec<ConsumerRecord> = tokio::select! {
                r = group.poll(max, POLL_TIMEOUT) => r?,
                _ = sigint.recv() => return Ok(()),
                _ = sigterm.recv() => return Ok(()),
                _ = StatsView::due(&mut view) => {
                    if let Some(v) = &mut view {
                        let s = group.stats();
                        v.draw(&s, Some(&s));
                    }
                    continue;
                }
            };
            for r in &batch {
                format.write(&mut out, &Message::from(r)).map_err(write_error)?;
                printed += 1;
            }
            out.flush().map_err(write_error)?;
            if let Some(pb) = &pb {
                pb.set_position(printed);
            }
        }
    }
    .await;

    // Before leaving: the partitions are still this member's.
    if let Some(v) = &mut view {
        let s = group.stats();
        v.finish(&s, Some(&s));
    }
    // Commit what was delivered (auto-commit) and leave the group, whatever ended the loop.
    let closed = group.close().await.map_err(|e| {
        CliError::Failed(format!(
            "group {group_id}: committing on close failed (the next member re-reads from the last commit): {e}"
        ))
    });
    if let Some(pb) = &pb {
        pb.set_position(printed);
        pb.finish();
    }
    let flushed = out.flush().map_err(write_error);
    match result.and(flushed) {
        Err(CliError::Failed(m)) if m == BROKEN_PIPE => closed,
        r => r.and(closed),
    }
}

/// `-e` in group mode, as kcat: every partition assigned to this member has been read to the high watermark
/// of a fetch made since it was assigned. False while nothing is assigned (e.g. during a rebalance).
fn all_at_end(group: &GroupConsumer) -> bool {
    let assigned = group.assignment();
    if assigned.is_empty() {
        return false;
    }
    assigned
        .iter()
        .all(|tp| match (group.position(tp), group.high_watermark(tp)) {
            (Some(pos), Some(hw)) => hw >= 0 && pos >= hw,
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_in_group_mode() {
        assert_eq!(offset_reset("beginning").unwrap(), Some("earliest"));
        assert_eq!(offset_reset("end").unwrap(), Some("latest"));
        assert_eq!(offset_reset("stored").unwrap(), None);
        assert!(offset_reset("42").is_err());
        assert!(offset_reset("-5").is_err());
    }

    #[test]
    fn partition_lists_like_kcat() {
        let tps = [TopicPartition::new("t", 0), TopicPartition::new("t", 3)];
        assert_eq!(list(&tps), "t [0], t [3]");
        assert_eq!(list(&[]), "(none)");
    }
}
