//! `weir consume`: print records with a kcat-style format.

use std::collections::BTreeMap;
use std::io::{BufWriter, ErrorKind, Write};
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use weir::admin::OffsetSpec;
use weir::consumer::{Consumer, ConsumerConfig, ConsumerRecord, StartOffset, TopicPartition};
use weir::Admin;

use crate::format::{Format, Message};
use crate::stats_view::StatsView;
use crate::util::{apply_props, progress, CliError};
use crate::{ConsumeArgs, Global};

pub const AFTER_HELP: &str = "\
Without -p every partition of the topic is consumed. Records of one partition are printed in offset order.
SIGINT and SIGTERM stop consuming cleanly: buffered output is written and weir exits 0.

With -e, a partition ends at the end of its log when consuming starts (ListOffsets latest); records produced
later are not printed, and partitions empty at startup end at once.

Group mode (-G GROUP TOPIC..., as kcat -G): the members of GROUP share the topics' partitions; each starts
from the group's committed offset, else from auto.offset.reset (-o beginning|end sets it; default latest).
-X takes group properties too (enable.auto.commit, auto.commit.interval.ms, partition.assignment.strategy,
group.instance.id, session.timeout.ms, heartbeat.interval.ms). Printed records are committed every
auto.commit.interval.ms, on revoke and on exit; SIGINT / SIGTERM commit, leave the group and exit 0.
Rebalances are reported on stderr (not with -q). -e exits once every partition assigned to this member has
been read to its end.

--stats shows the partitions (position, high watermark, lag, buffered bytes, buffer limit, state: fetching,
paused, backpressured, held by a rebalance, unassigned) on stderr: a table redrawn every second on a terminal,
with the group's generation, state and rebalances in group mode; when stderr is not a terminal, one table once
consuming ends.

Examples:
  weir consume -t events -e -f '%p:%o %k=%s\\n'      everything up to the current end, then exit
  weir consume -G readers events audit               one member of group readers, until interrupted
  weir consume -t events -o -10 -e                   the last 10 records of each partition
  weir consume -t events -o end                      only new records, until interrupted
  weir consume -t events --stats > out.txt           watch positions, lag and buffers live";

/// Records taken from the consumer per poll.
pub(crate) const MAX_POLL_RECORDS: usize = 16 * 1024;
/// How long one poll waits; only bounds how often the loop re-checks its exit conditions.
pub(crate) const POLL_TIMEOUT: Duration = Duration::from_secs(1);

/// Parses kcat's `-o`: `beginning`, `end`, `OFFSET`, `-N`, `s@TIMESTAMP`.
pub fn parse_offset(s: &str) -> Result<StartOffset, CliError> {
    let bad = || {
        CliError::Usage(format!(
            "-o {s:?}: expected beginning, end, an offset, -N (last N records) or s@TIMESTAMP_MS"
        ))
    };
    Ok(match s {
        "beginning" | "earliest" | "smallest" => StartOffset::Earliest,
        "end" | "latest" | "largest" => StartOffset::Latest,
        "stored" => {
            return Err(CliError::Usage(
                "-o stored: stored offsets belong to a consumer group (-G GROUP TOPIC...)".into(),
            ))
        }
        _ => {
            if let Some(ts) = s.strip_prefix("s@") {
                StartOffset::Timestamp(ts.parse().map_err(|_| bad())?)
            } else if let Some(n) = s.strip_prefix('-') {
                StartOffset::FromEnd(n.parse::<u64>().map_err(|_| bad())?.min(i64::MAX as u64) as i64)
            } else {
                StartOffset::Offset(s.parse::<u64>().map_err(|_| bad())?.min(i64::MAX as u64) as i64)
            }
        }
    })
}

pub async fn run(g: &Global, a: ConsumeArgs) -> Result<(), CliError> {
    if a.group.is_some() {
        return crate::group_consume::run(g, a).await;
    }
    let Some(topic) = a.topic.clone() else {
        return Err(CliError::Usage(
            "give a topic with -t, or a group and topics with -G".into(),
        ));
    };
    if !a.topics.is_empty() {
        return Err(CliError::Usage(format!(
            "unexpected argument {:?}: topics are given as arguments only with -G",
            a.topics[0]
        )));
    }
    // Install the handlers first, so a signal is never delivered with the default (killing) action.
    let mut sigint = signal(SignalKind::interrupt())
        .map_err(|e| CliError::Failed(format!("cannot install the SIGINT handler: {e}")))?;
    let mut sigterm = signal(SignalKind::terminate())
        .map_err(|e| CliError::Failed(format!("cannot install the SIGTERM handler: {e}")))?;

    let mut cfg = ConsumerConfig::new(&g.brokers);
    apply_props(&a.props, |k, v| cfg.set(k, v))?;
    a.buffers.apply(|k, v| cfg.set(k, v))?;
    cfg.validate()?;
    let format = output_format(&a)?;
    let start = parse_offset(a.offset.as_deref().unwrap_or("beginning"))?;
    if a.partition.is_some_and(|p| p < 0) {
        return Err(CliError::Usage("-p: the partition must be 0 or more".into()));
    }

    // Which partitions, and (with -e) where each one ends.
    let admin = Admin::new(cfg.client.clone())?;
    let md = admin.metadata().await?;
    let Some(topic_md) = md.topic(&topic) else {
        let why = md
            .topic_errors
            .get(&topic)
            .map(|e| format!(" ({e:?})"))
            .unwrap_or_default();
        return Err(CliError::Failed(format!("unknown topic {:?}{why}", topic)));
    };
    let partitions: Vec<i32> = match a.partition {
        Some(p) if p >= topic_md.partition_count() => {
            return Err(CliError::Failed(format!(
                "topic {:?} has {} partition(s), there is no partition {p}",
                topic,
                topic_md.partition_count()
            )))
        }
        Some(p) => vec![p],
        None => (0..topic_md.partition_count()).collect(),
    };
    let mut ends = if a.exit_at_end {
        let latest = admin.list_offsets(&topic, OffsetSpec::Latest).await?;
        Some(Ends::new(&partitions, &latest))
    } else {
        None
    };
    tracing::debug!(topic = %topic, ?partitions, ?start, ?ends, "consuming");
    let consumer = Consumer::new(cfg)?;
    let tps: Vec<TopicPartition> = partitions
        .iter()
        .map(|&p| TopicPartition::new(topic.as_str(), p))
        .collect();
    let assignment: Vec<(TopicPartition, StartOffset)> = tps.iter().map(|tp| (tp.clone(), start)).collect();
    consumer.assign(&assignment).await?;

    // With -e: partitions not yet read to their end.
    let mut unfinished: Vec<TopicPartition> = if ends.is_some() { tps.clone() } else { Vec::new() };
    let mut view = StatsView::new(a.stats);
    let pb = progress(g.quiet || StatsView::is_live(&view), "consumed");
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut printed: u64 = 0;
    let limit = a.count.unwrap_or(u64::MAX);

    let result: Result<(), CliError> = async {
        loop {
            if let Some(ends) = &mut ends {
                ends.retire_finished(&consumer, &mut unfinished, view.as_mut());
                if unfinished.is_empty() {
                    return Ok(());
                }
            }
            if printed >= limit {
                return Ok(());
            }
            // `poll` is cancel-safe: it waits only while it holds no records.
            let batch: Vec<ConsumerRecord> = tokio::select! {
                r = consumer.poll(MAX_POLL_RECORDS, POLL_TIMEOUT) => r?,
                _ = sigint.recv() => return Ok(()),
                _ = sigterm.recv() => return Ok(()),
                _ = StatsView::due(&mut view) => {
                    if let Some(v) = &mut view {
                        v.draw(&consumer.stats(), None);
                    }
                    continue;
                }
            };
            for r in &batch {
                // With -e, records past the end fixed for their partition are not part of what is read.
                if ends
                    .as_ref()
                    .is_some_and(|e| e.is_past_end(r.partition, r.offset))
                {
                    continue;
                }
                format.write(&mut out, &Message::from(r)).map_err(write_error)?;
                printed += 1;
                if printed >= limit {
                    break;
                }
            }
            out.flush().map_err(write_error)?;
            if let Some(pb) = &pb {
                pb.set_position(printed);
            }
        }
    }
    .await;

    if let Some(v) = &mut view {
        v.finish(&consumer.stats(), None);
    }
    consumer.close().await?;
    if let Some(pb) = &pb {
        pb.set_position(printed);
        pb.finish();
    }
    let flushed = out.flush().map_err(write_error);
    match result.and(flushed) {
        Err(CliError::Failed(m)) if m == BROKEN_PIPE => Ok(()),
        r => r,
    }
}

/// The output format: `-f`, else `%k<DELIM>%s\n` with `-K`, else `%s\n`.
pub(crate) fn output_format(a: &ConsumeArgs) -> Result<Format, CliError> {
    match (&a.format, &a.key_delimiter) {
        (Some(f), _) => Format::parse(f),
        (None, Some(d)) => Format::parse(&format!("%k{}%s\\n", d.replace('%', "%%"))),
        (None, None) => Format::parse("%s\\n"),
    }
    .map_err(|e| CliError::Usage(format!("-f: {e}")))
}

/// Where `-e` stops, per partition: the end of the log (ListOffsets latest) when consuming starts.
#[derive(Debug)]
struct Ends {
    fixed: BTreeMap<i32, i64>,
}

impl Ends {
    fn new(partitions: &[i32], latest: &BTreeMap<i32, i64>) -> Ends {
        let fixed = partitions
            .iter()
            .map(|&p| (p, latest.get(&p).copied().unwrap_or(0)))
            .collect();
        Ends { fixed }
    }

    fn is_past_end(&self, partition: i32, offset: i64) -> bool {
        self.fixed.get(&partition).is_some_and(|&end| offset >= end)
    }

    /// Drops partitions whose next record would be at or past their end, and stops fetching them (`view`, with
    /// `--stats`, sees them a last time first).
    fn retire_finished(
        &mut self,
        consumer: &Consumer,
        unfinished: &mut Vec<TopicPartition>,
        view: Option<&mut StatsView>,
    ) {
        let mut done = Vec::new();
        unfinished.retain(|tp| {
            let finished = match (consumer.position(tp), self.fixed.get(&tp.partition)) {
                // Not assigned any more: it cannot make progress either.
                (None, _) => true,
                (Some(pos), Some(&end)) => pos >= end,
                (Some(_), None) => false,
            };
            if finished {
                done.push(tp.clone());
            }
            !finished
        });
        if !done.is_empty() {
            if let Some(v) = view {
                v.observe(&consumer.stats());
            }
            consumer.unassign(&done);
        }
    }
}

pub(crate) const BROKEN_PIPE: &str = "broken pipe";

/// A closed stdout (`weir consume | head`) ends consuming quietly; other write errors are failures.
pub(crate) fn write_error(e: std::io::Error) -> CliError {
    if e.kind() == ErrorKind::BrokenPipe {
        CliError::Failed(BROKEN_PIPE.into())
    } else {
        CliError::Failed(format!("writing stdout: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_like_kcat() {
        assert_eq!(parse_offset("beginning").unwrap(), StartOffset::Earliest);
        assert_eq!(parse_offset("end").unwrap(), StartOffset::Latest);
        assert_eq!(parse_offset("42").unwrap(), StartOffset::Offset(42));
        assert_eq!(parse_offset("-5").unwrap(), StartOffset::FromEnd(5));
        assert_eq!(
            parse_offset("s@1700000000000").unwrap(),
            StartOffset::Timestamp(1_700_000_000_000)
        );
        for bad in ["stored", "x", "s@", "--1", ""] {
            assert!(parse_offset(bad).is_err(), "{bad}");
        }
    }
}
