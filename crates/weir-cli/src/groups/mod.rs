//! `weir groups list|describe|delete|reset-offsets`: consumer groups, in the shape of
//! `kafka-consumer-groups.sh` (`--list`, `--describe`, `--delete`, `--reset-offsets`).

mod reset;

use std::collections::BTreeMap;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use weir::admin::{GroupDescription, GroupFilter, GroupOffset, GroupState, GroupType, ListedGroup};
use weir::{Admin, TopicPartition};

use crate::admin_cmds::{admin, json_line, print};
use crate::util::{table, CliError};
use crate::{ClientPropsArgs, Global};

const LIST_HELP: &str = "\
Without --state or --type, prints the ids of the consumer groups (classic and consumer-protocol groups of
protocol type consumer, as kafka-consumer-groups.sh --list), one per line. With --state and/or --type, a table
GROUP TYPE STATE; a value filters (comma-separated, any case), no value just adds the column:
  weir groups list --state                       every consumer group with its state
  weir groups list --state Stable,Empty --type consumer
  weir groups list --all --output json           every group of any type (share, streams, connect too)";

const DESCRIBE_HELP: &str = "\
For each group a table of its partitions: those its members own and those it has committed offsets for.
CURRENT-OFFSET is the committed offset, LAG = LOG-END-OFFSET - CURRENT-OFFSET; '-' where there is none (no
commit yet, or a partition owned by no member). A member that owns nothing gets a row of its own.
The exit status is 1 if any group could not be described (e.g. it does not exist).";

/// `weir groups ...`.
#[derive(Subcommand, Debug)]
pub enum GroupsCommand {
    /// List consumer groups (like kafka-consumer-groups.sh --list)
    #[command(after_help = LIST_HELP)]
    List(ListArgs),
    /// Describe groups: per partition the committed offset, log end offset, lag and owning member (like
    /// kafka-consumer-groups.sh --describe)
    #[command(after_help = DESCRIBE_HELP)]
    Describe(DescribeArgs),
    /// Delete groups and their committed offsets; a group with active members is not deleted (like
    /// kafka-consumer-groups.sh --delete)
    Delete(DeleteArgs),
    /// Plan, and with --execute commit, new offsets for a group without active members (like
    /// kafka-consumer-groups.sh --reset-offsets); a dry run by default
    #[command(after_help = reset::RESET_HELP)]
    ResetOffsets(reset::ResetArgs),
}

/// `--output`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Tables (and plain lists) for people
    Text,
    /// One JSON document on stdout
    Json,
}

/// Arguments of `weir groups list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Show each group's state; with a value, only groups in these states (comma-separated: Stable, Empty,
    /// PreparingRebalance, CompletingRebalance, Assigning, Reconciling, Dead)
    #[arg(long = "state", value_name = "STATES", num_args = 0..=1, default_missing_value = "")]
    pub state: Option<String>,
    /// Show each group's type; with a value, only groups of these types (comma-separated: classic, consumer;
    /// with --all also share, streams)
    #[arg(long = "type", value_name = "TYPES", num_args = 0..=1, default_missing_value = "")]
    pub group_type: Option<String>,
    /// Every group, of any type and protocol (share and streams groups, Kafka Connect's), not only consumer
    /// groups
    #[arg(long = "all")]
    pub all: bool,
    /// text or json (an array of objects: group, type, state, protocol_type, coordinator)
    #[arg(long = "output", value_name = "FORMAT", default_value = "text", value_enum)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

/// Arguments of `weir groups describe`.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["groups", "all_groups"])))]
pub struct DescribeArgs {
    /// A group to describe (repeatable)
    #[arg(short = 'g', long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// Every consumer group
    #[arg(long = "all-groups")]
    pub all_groups: bool,
    /// text (one table per group) or json (an array: each group with its members and per-partition offsets,
    /// or its error)
    #[arg(long = "output", value_name = "FORMAT", default_value = "text", value_enum)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

/// Arguments of `weir groups delete`.
#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// A group to delete (repeatable)
    #[arg(short = 'g', long = "group", value_name = "GROUP", required = true)]
    pub groups: Vec<String>,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

/// Runs a `weir groups` command.
pub async fn run(g: &Global, c: GroupsCommand) -> Result<(), CliError> {
    match c {
        GroupsCommand::List(a) => list(g, a).await,
        GroupsCommand::Describe(a) => describe(g, a).await,
        GroupsCommand::Delete(a) => delete(g, a).await,
        GroupsCommand::ResetOffsets(a) => reset::run(g, a).await,
    }
}

/// Comma-separated values parsed with `parse` (none for an empty string).
fn split<T>(arg: &str, what: &str, parse: impl Fn(&str) -> weir::Result<T>) -> Result<Vec<T>, CliError> {
    arg.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse(s).map_err(|e| CliError::Usage(format!("--{what}: {e}"))))
        .collect()
}

async fn list(g: &Global, a: ListArgs) -> Result<(), CliError> {
    let mut filter = if a.all {
        GroupFilter::all()
    } else {
        GroupFilter::consumer_groups()
    };
    if let Some(states) = &a.state {
        filter.states = split(states, "state", str::parse::<GroupState>)?;
    }
    if let Some(types) = &a.group_type {
        let types = split(types, "type", str::parse::<GroupType>)?;
        if !types.is_empty() {
            filter.types = types;
        }
    }
    let groups = admin(g, &a.client)?.list_groups(&filter).await?;
    let out = match a.output {
        OutputFormat::Json => listed_json(&groups),
        OutputFormat::Text if a.state.is_none() && a.group_type.is_none() => {
            groups.iter().map(|l| format!("{}\n", l.group_id)).collect()
        }
        OutputFormat::Text => {
            let mut header = vec!["GROUP"];
            if a.group_type.is_some() {
                header.push("TYPE");
            }
            if a.state.is_some() {
                header.push("STATE");
            }
            let rows: Vec<Vec<String>> = groups
                .iter()
                .map(|l| {
                    let mut row = vec![l.group_id.clone()];
                    if a.group_type.is_some() {
                        row.push(l.group_type.to_string());
                    }
                    if a.state.is_some() {
                        row.push(l.state.as_ref().map_or("Unknown".into(), |s| s.to_string()));
                    }
                    row
                })
                .collect();
            table(&header, &rows)
        }
    };
    print(out.as_bytes())
}

fn listed_json(groups: &[ListedGroup]) -> String {
    let listed: Vec<Value> = groups
        .iter()
        .map(|l| {
            json!({
                "group": l.group_id,
                "type": l.group_type.to_string(),
                "state": l.state.as_ref().map(|s| s.to_string()),
                "protocol_type": l.protocol_type,
                "coordinator": l.coordinator,
            })
        })
        .collect();
    json_line(&Value::Array(listed))
}

/// One row of `describe`: a partition with its offsets and owner, or a member that owns nothing.
struct Row {
    partition: Option<TopicPartition>,
    offset: Option<GroupOffset>,
    owner: Option<(String, String, String)>,
}

/// The rows of a group: every partition owned or committed (sorted), then members without partitions.
async fn rows_of(admin: &Admin, d: &GroupDescription) -> weir::Result<Vec<Row>> {
    let mut owners: BTreeMap<TopicPartition, (String, String, String)> = BTreeMap::new();
    for m in &d.members {
        for tp in &m.assignment {
            owners.insert(
                tp.clone(),
                (m.member_id.clone(), m.host.clone(), m.client_id.clone()),
            );
        }
    }
    let mut offsets = admin.list_group_offsets(&d.group_id, None).await?;
    let uncommitted: Vec<TopicPartition> = owners
        .keys()
        .filter(|tp| !offsets.iter().any(|o| o.partition == **tp))
        .cloned()
        .collect();
    if !uncommitted.is_empty() {
        offsets.extend(admin.list_group_offsets(&d.group_id, Some(&uncommitted)).await?);
        offsets.sort_by(|a, b| a.partition.cmp(&b.partition));
    }
    let mut rows: Vec<Row> = offsets
        .into_iter()
        .map(|o| Row {
            partition: Some(o.partition.clone()),
            owner: owners.get(&o.partition).cloned(),
            offset: Some(o),
        })
        .collect();
    for m in d.members.iter().filter(|m| m.assignment.is_empty()) {
        rows.push(Row {
            partition: None,
            offset: None,
            owner: Some((m.member_id.clone(), m.host.clone(), m.client_id.clone())),
        });
    }
    Ok(rows)
}

fn dash<T: ToString>(v: Option<T>) -> String {
    v.map_or("-".into(), |x| x.to_string())
}

async fn describe(g: &Global, a: DescribeArgs) -> Result<(), CliError> {
    let admin = admin(g, &a.client)?;
    let ids: Vec<String> = if a.all_groups {
        admin
            .list_groups(&GroupFilter::consumer_groups())
            .await?
            .into_iter()
            .map(|l| l.group_id)
            .collect()
    } else {
        a.groups.clone()
    };
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let described = admin.describe_groups(&refs).await?;
    let mut failed = 0;
    let mut text = String::new();
    let mut docs = Vec::new();
    for (id, d) in described {
        let rows = match &d {
            Ok(d) => rows_of(&admin, d).await.map(Some),
            Err(_) => Ok(None),
        };
        let error = match (&d, &rows) {
            (Err(e), _) | (Ok(_), Err(e)) => Some(e.to_string()),
            _ => None,
        };
        if let Some(e) = &error {
            failed += 1;
            if a.output == OutputFormat::Text {
                eprintln!("weir: group {id:?}: {e}");
            }
        }
        let (d, rows) = match (d, rows) {
            (Ok(d), Ok(Some(rows))) => (d, rows),
            _ => {
                docs.push(json!({"group": id, "error": error}));
                continue;
            }
        };
        match a.output {
            OutputFormat::Text => {
                if !g.quiet {
                    match d.state {
                        GroupState::Empty => eprintln!("weir: group {id:?} has no active members"),
                        GroupState::Stable | GroupState::Dead => {}
                        ref s => eprintln!("weir: group {id:?} is rebalancing ({s})"),
                    }
                }
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&describe_table(&id, &rows));
            }
            OutputFormat::Json => docs.push(describe_json(&d, &rows)),
        }
    }
    let out = match a.output {
        OutputFormat::Text => text,
        OutputFormat::Json => json_line(&Value::Array(docs)),
    };
    print(out.as_bytes())?;
    if failed > 0 {
        return Err(CliError::Failed(format!(
            "{failed} group(s) could not be described"
        )));
    }
    Ok(())
}

fn describe_table(id: &str, rows: &[Row]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let o = r.offset.as_ref();
            let (member, host, client) = r
                .owner
                .clone()
                .unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
            vec![
                id.to_owned(),
                dash(r.partition.as_ref().map(|p| p.topic.clone())),
                dash(r.partition.as_ref().map(|p| p.partition)),
                dash(o.and_then(|o| o.committed)),
                dash(o.and_then(|o| o.log_end)),
                dash(o.and_then(|o| o.lag)),
                member,
                host,
                client,
            ]
        })
        .collect();
    table(
        &[
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ],
        &rows,
    )
}

fn partitions_json(tps: &[TopicPartition]) -> Value {
    tps.iter()
        .map(|tp| json!({"topic": &*tp.topic, "partition": tp.partition}))
        .collect()
}

fn describe_json(d: &GroupDescription, rows: &[Row]) -> Value {
    let members: Vec<Value> = d
        .members
        .iter()
        .map(|m| {
            json!({
                "member_id": m.member_id,
                "instance_id": m.instance_id,
                "client_id": m.client_id,
                "host": m.host,
                "member_epoch": m.member_epoch,
                "assignment": partitions_json(&m.assignment),
                "target_assignment": m.target_assignment.as_deref().map(partitions_json),
            })
        })
        .collect();
    let offsets: Vec<Value> = rows
        .iter()
        .filter_map(|r| {
            let (tp, o) = (r.partition.as_ref()?, r.offset.as_ref()?);
            let owner = r.owner.as_ref();
            Some(json!({
                "topic": &*tp.topic,
                "partition": tp.partition,
                "committed": o.committed,
                "log_end": o.log_end,
                "lag": o.lag,
                "member_id": owner.map(|o| &o.0),
                "host": owner.map(|o| &o.1),
                "client_id": owner.map(|o| &o.2),
            }))
        })
        .collect();
    json!({
        "group": d.group_id,
        "type": d.group_type.to_string(),
        "state": d.state.to_string(),
        "protocol_type": d.protocol_type,
        "protocol": d.protocol,
        "coordinator": d.coordinator,
        "group_epoch": d.group_epoch,
        "assignment_epoch": d.assignment_epoch,
        "members": members,
        "offsets": offsets,
        "error": null,
    })
}

async fn delete(g: &Global, a: DeleteArgs) -> Result<(), CliError> {
    let refs: Vec<&str> = a.groups.iter().map(String::as_str).collect();
    let outcomes = admin(g, &a.client)?.delete_groups(&refs).await?;
    let mut failed = Vec::new();
    let mut out = String::new();
    for (id, outcome) in outcomes {
        match outcome {
            Ok(()) => out.push_str(&format!("deleted group {id}\n")),
            Err(e) => {
                eprintln!("weir: group {id:?} not deleted: {e}");
                failed.push(id);
            }
        }
    }
    print(out.as_bytes())?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::Failed(format!(
            "{} group(s) not deleted: {}",
            failed.len(),
            failed.join(", ")
        )))
    }
}
