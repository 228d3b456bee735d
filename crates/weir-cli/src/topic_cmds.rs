//! `weir topics describe|alter|add-partitions`, in the shape of `kafka-topics.sh --describe` and `--alter`.

use std::collections::HashMap;
use std::fmt::Write as _;

use clap::Args;
use serde_json::{json, Map, Value};
use weir::admin::{ConfigEntry, ConfigResource, NewPartitions, TopicDescription};

use crate::admin_cmds::{admin, json_line, print, Output};
use crate::config_cmds::{self, ConfigOpsArgs};
use crate::util::CliError;
use crate::{ClientPropsArgs, Global};

const DESCRIBE_HELP: &str = "\
Text, as kafka-topics.sh --describe prints it: per topic a line with its id, partition count, replication
factor and the configurations that are not Kafka's defaults, then one line per partition:
  Topic: orders	TopicId: Fz7s8eEsTf6yQhY1Z7Rn2g	PartitionCount: 2	ReplicationFactor: 3	Configs: retention.ms=1000
  	Topic: orders	Partition: 0	Leader: 1	Replicas: 1,2,3	Isr: 1,2,3
(\"Leader: none\" while a partition has none; \"Offline: ...\" when replicas are offline). A topic that does not
exist is reported on stderr, the others are still printed, and the exit status is 1.";

/// Arguments of `weir topics describe`.
#[derive(Args, Debug)]
#[command(after_help = DESCRIBE_HELP)]
pub struct TopicDescribeArgs {
    /// Topics to describe (every topic if none, internal ones included)
    #[arg(value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// Leave internal topics (__consumer_offsets, __transaction_state) out when describing every topic
    #[arg(long = "exclude-internal")]
    pub exclude_internal: bool,
    /// text (kafka-topics.sh's lines) or json (an array: per topic its id, internal, partition_count,
    /// replication_factor, configs that are not defaults, and partitions with leader, leader_epoch, replicas,
    /// isr, offline_replicas; or the topic's error)
    #[arg(long = "output", value_enum, default_value = "text", value_name = "FORMAT")]
    pub output: Output,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

/// Arguments of `weir topics alter`.
#[derive(Args, Debug)]
#[command(after_help = "Like weir configs alter --topic TOPIC, e.g.\n  \
    weir topics alter orders --set retention.ms=86400000 --delete cleanup.policy")]
pub struct TopicAlterArgs {
    /// Topic name
    #[arg(value_name = "TOPIC")]
    pub topic: String,
    #[command(flatten)]
    pub ops: ConfigOpsArgs,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

/// Arguments of `weir topics add-partitions`.
#[derive(Args, Debug)]
#[command(
    after_help = "Partitions are only ever added. Records keyed by partition (hash(key) % partitions) go \
    elsewhere once a topic has more partitions."
)]
pub struct AddPartitionsArgs {
    /// Topic name
    #[arg(value_name = "TOPIC")]
    pub topic: String,
    /// The number of partitions the topic is to have, in all (more than it has)
    #[arg(short = 'P', long = "partitions", value_name = "N")]
    pub partitions: i32,
    /// Only check that the controller would accept it; change nothing
    #[arg(long = "validate-only")]
    pub validate_only: bool,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

/// `name=value` of the configurations that are not Kafka's defaults, as `kafka-topics.sh` lists them.
fn overrides(entries: &[ConfigEntry]) -> Vec<&ConfigEntry> {
    entries.iter().filter(|e| !e.is_default).collect()
}

fn ids(v: &[i32]) -> String {
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

fn text(t: &TopicDescription, configs: &[&ConfigEntry], out: &mut String) {
    let configs: Vec<String> = configs
        .iter()
        .map(|e| format!("{}={}", e.name, e.value.as_deref().unwrap_or("null")))
        .collect();
    let _ = write!(out, "Topic: {}", t.name);
    if !t.topic_id.is_zero() {
        let _ = write!(out, "\tTopicId: {}", t.topic_id);
    }
    let _ = writeln!(
        out,
        "\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
        t.partitions.len(),
        t.replication_factor(),
        configs.join(",")
    );
    for p in &t.partitions {
        let leader = p.leader.map_or("none".to_string(), |l| l.to_string());
        let _ = write!(
            out,
            "\tTopic: {}\tPartition: {}\tLeader: {leader}\tReplicas: {}\tIsr: {}",
            t.name,
            p.partition,
            ids(&p.replicas),
            ids(&p.isr)
        );
        if !p.offline_replicas.is_empty() {
            let _ = write!(out, "\tOffline: {}", ids(&p.offline_replicas));
        }
        out.push('\n');
    }
}

fn topic_json(t: &TopicDescription, configs: &[&ConfigEntry]) -> Value {
    let configs: Map<String, Value> = configs.iter().map(|e| (e.name.clone(), json!(e.value))).collect();
    let partitions: Vec<Value> = t
        .partitions
        .iter()
        .map(|p| {
            json!({
                "partition": p.partition,
                "leader": p.leader,
                "leader_epoch": p.leader_epoch,
                "replicas": p.replicas,
                "isr": p.isr,
                "offline_replicas": p.offline_replicas,
            })
        })
        .collect();
    json!({
        "topic": t.name,
        "topic_id": t.topic_id.to_string(),
        "internal": t.internal,
        "partition_count": t.partitions.len(),
        "replication_factor": t.replication_factor(),
        "configs": configs,
        "partitions": partitions,
    })
}

/// `weir topics describe`.
pub async fn describe(g: &Global, a: TopicDescribeArgs) -> Result<(), CliError> {
    let admin = admin(g, &a.client)?;
    let names: Vec<&str> = a.topics.iter().map(String::as_str).collect();
    let mut described = admin
        .describe_topics((!names.is_empty()).then_some(names.as_slice()))
        .await?;
    if names.is_empty() && a.exclude_internal {
        described.retain(|(_, d)| !d.as_ref().is_ok_and(|t| t.internal));
    }
    // The configurations of the topics found, in one call.
    let found: Vec<ConfigResource> = described
        .iter()
        .filter(|(_, d)| d.is_ok())
        .map(|(n, _)| ConfigResource::topic(n))
        .collect();
    let mut configs: HashMap<String, Vec<ConfigEntry>> = HashMap::new();
    for (r, outcome) in admin.describe_configs(&found).await? {
        match outcome {
            Ok(entries) => {
                configs.insert(r.name, entries);
            }
            Err(e) => eprintln!("weir: configuration of topic {:?}: {e}", r.name),
        }
    }
    let mut out = String::new();
    let mut docs = Vec::new();
    let mut failed = None;
    for (name, d) in &described {
        let t = match d {
            Ok(t) => t,
            Err(e) => {
                eprintln!("weir: topic {name:?}: {e}");
                failed = Some(format!("topic {name:?}: {e}"));
                if a.output == Output::Json {
                    docs.push(json!({"topic": name, "error": e.to_string()}));
                }
                continue;
            }
        };
        let shown = configs.get(name).map(|c| overrides(c)).unwrap_or_default();
        match a.output {
            Output::Text => text(t, &shown, &mut out),
            Output::Json => docs.push(topic_json(t, &shown)),
        }
    }
    if a.output == Output::Json {
        out = json_line(&Value::Array(docs));
    }
    print(out.as_bytes())?;
    match failed {
        Some(e) => Err(CliError::Failed(e)),
        None => Ok(()),
    }
}

/// `weir topics alter`.
pub async fn alter(g: &Global, a: TopicAlterArgs) -> Result<(), CliError> {
    config_cmds::alter(g, &a.client, ConfigResource::topic(&a.topic), &a.ops).await
}

/// `weir topics add-partitions`.
pub async fn add_partitions(g: &Global, a: AddPartitionsArgs) -> Result<(), CliError> {
    if a.partitions < 1 {
        return Err(CliError::Usage(
            "--partitions: a topic has at least 1 partition".into(),
        ));
    }
    let outcomes = admin(g, &a.client)?
        .create_partitions(
            &[NewPartitions::increase_to(&a.topic, a.partitions)],
            a.validate_only,
        )
        .await?;
    for (_, outcome) in outcomes {
        outcome?;
    }
    if !g.quiet {
        let what = if a.validate_only { "would grow" } else { "grew" };
        eprintln!(
            "weir: the controller {what} topic {:?} to {} partitions",
            a.topic, a.partitions
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_ids_join_as_kafka_prints_them() {
        assert_eq!(ids(&[1, 2, 3]), "1,2,3");
        assert_eq!(ids(&[]), "");
    }
}
