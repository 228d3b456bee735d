//! `weir groups reset-offsets`: which partitions (`--topic T[:P,P]`, `--all-topics`), where to
//! (`--to-earliest`, `--to-latest`, `--to-datetime`, `--to-timestamp`, `--shift-by`, `--to-offset`), the plan
//! printed, and committed only with `--execute`.

use clap::{ArgGroup, Args};
use serde_json::{json, Value};
use weir::admin::{ResetPlan, ResetSpec};
use weir::{Admin, TopicPartition};

use super::OutputFormat;
use crate::admin_cmds::{admin, json_line, print};
use crate::util::{table, CliError};
use crate::{ClientPropsArgs, Global};

pub const RESET_HELP: &str = "\
A dry run unless --execute is given: the plan (current and new offset per partition) is printed and nothing is
committed. Kafka accepts new offsets only while the group has no active members (state Empty or Dead); with
--execute weir checks that first and refuses otherwise (exit status 1), as kafka-consumer-groups.sh does.
--shift-by and --to-offset are kept within each partition's log (its start and end offsets); --to-datetime and
--to-timestamp give the first offset at or after the time, or the log end if there is none.
  weir groups reset-offsets --group billing --topic orders --to-earliest
  weir groups reset-offsets --group billing --topic orders:0,2 --shift-by -100 --execute
  weir groups reset-offsets --group billing --all-topics --to-datetime 2024-05-01T12:00:00Z --output json";

/// Arguments of `weir groups reset-offsets`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("scope").required(true).args(["topics", "all_topics"])))]
#[command(group(ArgGroup::new("spec").required(true).args([
    "to_earliest", "to_latest", "to_datetime", "to_timestamp", "shift_by", "to_offset",
])))]
pub struct ResetArgs {
    /// The consumer group
    #[arg(short = 'g', long = "group", value_name = "GROUP")]
    pub group: String,
    /// A topic (every partition) or TOPIC:P,P (those partitions); repeatable
    #[arg(long = "topic", value_name = "TOPIC[:P,P]")]
    pub topics: Vec<String>,
    /// Every partition the group has a committed offset for
    #[arg(long = "all-topics")]
    pub all_topics: bool,
    /// To the log start offset
    #[arg(long = "to-earliest")]
    pub to_earliest: bool,
    /// To the log end offset
    #[arg(long = "to-latest")]
    pub to_latest: bool,
    /// To the first offset at or after a date and time: YYYY-MM-DDTHH:MM[:SS[.sss]], then Z or +HH:MM /
    /// -HH:MM (without a zone, UTC)
    #[arg(long = "to-datetime", value_name = "DATETIME")]
    pub to_datetime: Option<String>,
    /// To the first offset at or after a time in ms since the epoch
    #[arg(long = "to-timestamp", value_name = "MS")]
    pub to_timestamp: Option<i64>,
    /// Move the committed offset by N (negative: back), within the log
    #[arg(long = "shift-by", value_name = "N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// To offset N, within the log
    #[arg(long = "to-offset", value_name = "N")]
    pub to_offset: Option<i64>,
    /// Commit the new offsets (without it, only print the plan)
    #[arg(long = "execute")]
    pub execute: bool,
    /// text (a table) or json
    #[arg(long = "output", value_name = "FORMAT", default_value = "text", value_enum)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

impl ResetArgs {
    fn spec(&self) -> Result<ResetSpec, CliError> {
        Ok(if self.to_earliest {
            ResetSpec::Earliest
        } else if self.to_latest {
            ResetSpec::Latest
        } else if let Some(dt) = &self.to_datetime {
            ResetSpec::Timestamp(
                parse_datetime(dt).map_err(|e| CliError::Usage(format!("--to-datetime: {e}")))?,
            )
        } else if let Some(ms) = self.to_timestamp {
            ResetSpec::Timestamp(ms)
        } else if let Some(n) = self.shift_by {
            ResetSpec::ShiftBy(n)
        } else if let Some(o) = self.to_offset {
            if o < 0 {
                return Err(CliError::Usage(format!(
                    "--to-offset {o}: offsets are not negative"
                )));
            }
            ResetSpec::Offset(o)
        } else {
            return Err(CliError::Usage(
                "say where to reset to (--to-earliest, ...)".into(),
            ));
        })
    }
}

/// `TOPIC` or `TOPIC:P,P,...`: the topic and its partitions (`None`: all).
pub fn parse_topic_arg(arg: &str) -> Result<(String, Option<Vec<i32>>), String> {
    let Some((topic, parts)) = arg.rsplit_once(':') else {
        return if arg.is_empty() {
            Err("empty topic".into())
        } else {
            Ok((arg.to_owned(), None))
        };
    };
    if topic.is_empty() {
        return Err(format!("{arg:?}: expected TOPIC or TOPIC:P,P"));
    }
    let partitions = parts
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<i32>()
                .ok()
                .filter(|p| *p >= 0)
                .ok_or_else(|| format!("{arg:?}: partition {p:?} is not a partition number"))
        })
        .collect::<Result<Vec<i32>, String>>()?;
    Ok((topic.to_owned(), Some(partitions)))
}

/// Days from 1970-01-01 to the civil date `y-m-d` (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDTHH:MM[:SS[.fff]][Z|±HH:MM|±HHMM]` as ms since the epoch (no zone: UTC).
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?}: expected YYYY-MM-DDTHH:MM:SS[.sss] with Z or an offset like +02:00");
    let (date, rest) = s.split_once(['T', ' ']).ok_or_else(bad)?;
    let num = |t: &str, lo: i64, hi: i64| -> Result<i64, String> {
        let v: i64 = t.parse().map_err(|_| bad())?;
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) || v < lo || v > hi {
            return Err(bad());
        }
        Ok(v)
    };
    let mut d = date.split('-');
    let (y, mo, da) = match (d.next(), d.next(), d.next(), d.next()) {
        (Some(y), Some(m), Some(da), None) if y.len() == 4 => {
            (num(y, 0, 9999)?, num(m, 1, 12)?, num(da, 1, 31)?)
        }
        _ => return Err(bad()),
    };
    // Split off the zone: Z, or the last + / - (the time itself has none).
    let (time, zone_ms) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (t, z) = rest.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let z = z[1..].replace(':', "");
        if z.len() != 4 {
            return Err(bad());
        }
        let (h, m) = (num(&z[..2], 0, 23)?, num(&z[2..], 0, 59)?);
        (t, sign * (h * 60 + m) * 60_000)
    } else {
        (rest, 0)
    };
    let mut t = time.split(':');
    let (h, mi, sec) = match (t.next(), t.next(), t.next(), t.next()) {
        (Some(h), Some(m), sec, None) => (num(h, 0, 23)?, num(m, 0, 59)?, sec),
        _ => return Err(bad()),
    };
    let (sec, ms) = match sec {
        None => (0, 0),
        Some(sec) => match sec.split_once('.') {
            None => (num(sec, 0, 60)?, 0),
            Some((s2, frac)) => {
                if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let ms: i64 = format!("{frac:0<3}")[..3].parse().map_err(|_| bad())?;
                (num(s2, 0, 60)?, ms)
            }
        },
    };
    let days = days_from_civil(y, mo, da);
    Ok(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms - zone_ms)
}

/// The partitions `--topic` (parsed: `topics`) and `--all-topics` name.
async fn partitions(
    admin: &Admin,
    a: &ResetArgs,
    topics: Vec<(String, Option<Vec<i32>>)>,
) -> Result<Vec<TopicPartition>, CliError> {
    if a.all_topics {
        let committed = admin.list_group_offsets(&a.group, None).await?;
        if committed.is_empty() {
            return Err(CliError::Failed(format!(
                "group {:?} has no committed offsets: name the partitions with --topic",
                a.group
            )));
        }
        return Ok(committed.into_iter().map(|o| o.partition).collect());
    }
    let mut out = Vec::new();
    let meta = admin.metadata().await?;
    for (topic, parts) in topics {
        match parts {
            Some(ps) => out.extend(ps.into_iter().map(|p| TopicPartition::new(topic.as_str(), p))),
            None => {
                let t = meta
                    .topic(&topic)
                    .ok_or_else(|| CliError::Failed(format!("unknown topic {topic:?}")))?;
                out.extend((0..t.partition_count()).map(|p| TopicPartition::new(topic.as_str(), p)));
            }
        }
    }
    Ok(out)
}

/// The plan as a table or JSON (`outcomes`: what `--execute` did per partition).
fn render(
    plan: &ResetPlan,
    outcomes: Option<&[(TopicPartition, weir::Result<()>)]>,
    output: OutputFormat,
) -> String {
    let outcome = |tp: &TopicPartition| {
        outcomes
            .and_then(|o| o.iter().find(|(p, _)| p == tp))
            .map(|(_, r)| r)
    };
    match output {
        OutputFormat::Text => {
            let rows: Vec<Vec<String>> = plan
                .offsets
                .iter()
                .map(|p| {
                    let mut row = vec![
                        plan.group.clone(),
                        p.partition.topic.to_string(),
                        p.partition.partition.to_string(),
                        p.current.map_or("-".into(), |c| c.to_string()),
                        p.new.to_string(),
                    ];
                    if let Some(r) = outcome(&p.partition) {
                        row.push(match r {
                            Ok(()) => "committed".into(),
                            Err(e) => format!("failed: {e}"),
                        });
                    }
                    row
                })
                .collect();
            let mut header = vec!["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"];
            if outcomes.is_some() {
                header.push("RESULT");
            }
            table(&header, &rows)
        }
        OutputFormat::Json => {
            let offsets: Vec<Value> = plan
                .offsets
                .iter()
                .map(|p| {
                    let mut offset = json!({
                        "topic": &*p.partition.topic,
                        "partition": p.partition.partition,
                        "current": p.current,
                        "new": p.new,
                    });
                    if let Some(r) = outcome(&p.partition) {
                        offset["error"] = json!(r.as_ref().err().map(|e| e.to_string()));
                    }
                    offset
                })
                .collect();
            json_line(&json!({
                "group": plan.group,
                "state": plan.state.to_string(),
                "executed": outcomes.is_some(),
                "offsets": offsets,
            }))
        }
    }
}

/// `weir groups reset-offsets`.
pub async fn run(g: &Global, a: ResetArgs) -> Result<(), CliError> {
    let spec = a.spec()?;
    let topics = a
        .topics
        .iter()
        .map(|t| parse_topic_arg(t).map_err(|e| CliError::Usage(format!("--topic {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let admin = admin(g, &a.client)?;
    let partitions = partitions(&admin, &a, topics).await?;
    let plan = admin.reset_offsets(&a.group, &partitions, spec).await?;
    if !a.execute {
        print(render(&plan, None, a.output).as_bytes())?;
        if !g.quiet {
            eprintln!("weir: dry run: nothing committed (add --execute to commit these offsets)");
            if !plan.state.is_inactive() {
                eprintln!(
                    "weir: group {:?} is {} with active members: --execute would be refused until they leave",
                    a.group, plan.state
                );
            }
        }
        return Ok(());
    }
    let outcomes = admin.apply_reset(&plan).await?;
    print(render(&plan, Some(&outcomes), a.output).as_bytes())?;
    match outcomes
        .iter()
        .find_map(|(tp, r)| r.as_ref().err().map(|e| (tp, e)))
    {
        Some((tp, e)) => Err(CliError::Failed(format!(
            "not every offset was committed: {tp}: {e}"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_args_name_topics_or_partitions() {
        assert_eq!(parse_topic_arg("orders"), Ok(("orders".into(), None)));
        assert_eq!(
            parse_topic_arg("orders:0,2"),
            Ok(("orders".into(), Some(vec![0, 2])))
        );
        assert!(parse_topic_arg("orders:x").is_err());
        assert!(parse_topic_arg("orders:-1").is_err());
        assert!(parse_topic_arg(":1").is_err());
        assert!(parse_topic_arg("").is_err());
    }

    #[test]
    fn datetimes_are_read_with_their_zone() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_datetime("1970-01-01T00:00:00.5Z"), Ok(500));
        assert_eq!(parse_datetime("2023-11-14T22:13:20.000Z"), Ok(1_700_000_000_000));
        assert_eq!(parse_datetime("2023-11-14T23:13:20+01:00"), Ok(1_700_000_000_000));
        assert_eq!(parse_datetime("2023-11-14T21:13:20-0100"), Ok(1_700_000_000_000));
        assert_eq!(parse_datetime("2023-11-14T22:13:20"), Ok(1_700_000_000_000));
        assert_eq!(parse_datetime("2024-02-29T00:00"), Ok(1_709_164_800_000));
        for bad in [
            "2024-13-01T00:00:00Z",
            "2024-01-01",
            "yesterday",
            "2024-01-01T25:00:00Z",
            "2024-01-01T00:00:00+1",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad}");
        }
    }
}
