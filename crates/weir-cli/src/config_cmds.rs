//! `weir configs describe|alter`: configurations of topics and brokers, as `kafka-configs.sh` shows and changes
//! them; and the configuration changes `weir topics alter` shares.

use clap::{ArgGroup, Args, Subcommand};
use serde_json::{json, Value};
use weir::admin::{AlterConfigOp, ConfigEntry, ConfigResource, ConfigResourceType, ConfigSource};

use crate::admin_cmds::{admin, json_line, print, Output};
use crate::util::CliError;
use crate::{ClientPropsArgs, Global};

const DESCRIBE_HELP: &str = "\
Prints, as kafka-configs.sh --describe does, the configurations set on the resource itself (dynamic ones),
or with --all every configuration, one per line:
  max.message.bytes=2000000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:max.message.bytes=2000000, \\
DEFAULT_CONFIG:message.max.bytes=1048588}
Synonyms are the values of every source in line, highest precedence first. Sensitive values (passwords, keys)
are never sent by Kafka and print as null.";

const ALTER_HELP: &str = "\
Changes are applied together or not at all (IncrementalAlterConfigs), e.g.
  weir configs alter --topic orders --set retention.ms=86400000 --delete cleanup.policy
  weir configs alter --broker 1 --set log.cleaner.threads=2
  weir configs alter --broker-defaults --set log.retention.ms=604800000
  weir configs alter --topic orders --append cleanup.policy=compact --validate-only
A value may hold '=' and ','; --append and --subtract take the comma-separated items of a list setting.";

/// `weir configs ...`.
#[derive(Subcommand, Debug)]
pub enum ConfigsCommand {
    /// Show the configuration of a topic or a broker (like kafka-configs.sh --describe)
    #[command(after_help = DESCRIBE_HELP)]
    Describe(ConfigDescribeArgs),
    /// Change the configuration of a topic or a broker (like kafka-configs.sh --alter)
    #[command(after_help = ALTER_HELP)]
    Alter(ConfigAlterArgs),
}

/// Which resource's configuration, as `kafka-configs.sh` names them.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("resource").required(true).args(["topic", "broker", "broker_defaults"])))]
pub struct ResourceArg {
    /// A topic
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topic: Option<String>,
    /// A broker, by id (its own configuration, asked of that broker)
    #[arg(long = "broker", value_name = "ID")]
    pub broker: Option<i32>,
    /// The default of every broker (kafka-configs.sh --entity-type brokers --entity-default)
    #[arg(long = "broker-defaults")]
    pub broker_defaults: bool,
}

impl ResourceArg {
    fn resource(&self) -> ConfigResource {
        match (&self.topic, self.broker) {
            (Some(t), _) => ConfigResource::topic(t),
            (None, Some(id)) => ConfigResource::broker(id),
            (None, None) => ConfigResource::broker_defaults(),
        }
    }
}

/// Arguments of `weir configs describe`.
#[derive(Args, Debug)]
pub struct ConfigDescribeArgs {
    #[command(flatten)]
    pub resource: ResourceArg,
    /// Every configuration, not only those set on the resource itself
    #[arg(long = "all")]
    pub all: bool,
    /// text (kafka-configs.sh's lines) or json (one object: the resource and its configurations, each with its
    /// value, source, read_only, sensitive, default, type and synonyms)
    #[arg(long = "output", value_enum, default_value = "text", value_name = "FORMAT")]
    pub output: Output,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

/// The configuration changes of one resource.
#[derive(Args, Debug)]
pub struct ConfigOpsArgs {
    /// Set KEY to VALUE (repeatable)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Remove KEY from the resource: the next source in line applies again (repeatable)
    #[arg(long = "delete", value_name = "KEY")]
    pub delete: Vec<String>,
    /// Add the comma-separated VALUES to the list setting KEY (repeatable)
    #[arg(long = "append", value_name = "KEY=VALUES")]
    pub append: Vec<String>,
    /// Remove the comma-separated VALUES from the list setting KEY (repeatable)
    #[arg(long = "subtract", value_name = "KEY=VALUES")]
    pub subtract: Vec<String>,
    /// Only check that the broker would accept the changes; change nothing
    #[arg(long = "validate-only")]
    pub validate_only: bool,
}

impl ConfigOpsArgs {
    /// The changes, in the order: sets, deletes, appends, subtracts; at least one.
    pub fn ops(&self) -> Result<Vec<AlterConfigOp>, CliError> {
        let split = |flag: &str, kv: &str| match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
            _ => Err(CliError::Usage(format!("--{flag} {kv:?}: expected KEY=VALUE"))),
        };
        let mut ops = Vec::new();
        for kv in &self.set {
            let (k, v) = split("set", kv)?;
            ops.push(AlterConfigOp::set(k, v));
        }
        for k in &self.delete {
            if k.trim().is_empty() {
                return Err(CliError::Usage("--delete: expected a KEY".into()));
            }
            ops.push(AlterConfigOp::delete(k.trim()));
        }
        for kv in &self.append {
            let (k, v) = split("append", kv)?;
            ops.push(AlterConfigOp::append(k, v));
        }
        for kv in &self.subtract {
            let (k, v) = split("subtract", kv)?;
            ops.push(AlterConfigOp::subtract(k, v));
        }
        if ops.is_empty() {
            return Err(CliError::Usage(
                "nothing to change: give --set, --delete, --append or --subtract".into(),
            ));
        }
        Ok(ops)
    }
}

/// Arguments of `weir configs alter`.
#[derive(Args, Debug)]
pub struct ConfigAlterArgs {
    #[command(flatten)]
    pub resource: ResourceArg,
    #[command(flatten)]
    pub ops: ConfigOpsArgs,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

/// Runs `weir configs ...`.
pub async fn run(g: &Global, c: ConfigsCommand) -> Result<(), CliError> {
    match c {
        ConfigsCommand::Describe(a) => describe(g, a).await,
        ConfigsCommand::Alter(a) => {
            let resource = a.resource.resource();
            alter(g, &a.client, resource, &a.ops).await
        }
    }
}

/// How `kafka-configs.sh` names a resource in its heading: `topic orders`, `broker 1`.
fn heading(r: &ConfigResource) -> String {
    match (r.resource_type, r.name.as_str()) {
        (ConfigResourceType::Broker, "") => "brokers in the cluster".into(),
        (ConfigResourceType::Topic, name) => format!("topic {name}"),
        (ConfigResourceType::Broker, name) => format!("broker {name}"),
        (t, name) => format!("{} {name}", t.name().to_lowercase()),
    }
}

/// Whether `e` is set on `r` itself: what `kafka-configs.sh --describe` shows without `--all`.
fn set_on_resource(r: &ConfigResource, e: &ConfigEntry) -> bool {
    match (r.resource_type, r.name.as_str()) {
        (ConfigResourceType::Topic, _) => e.source == ConfigSource::DynamicTopicConfig,
        (ConfigResourceType::Broker, "") => e.source == ConfigSource::DynamicDefaultBrokerConfig,
        (ConfigResourceType::Broker, _) => e.source == ConfigSource::DynamicBrokerConfig,
        (ConfigResourceType::BrokerLogger, _) => e.source == ConfigSource::DynamicBrokerLoggerConfig,
        _ => !e.is_default,
    }
}

fn show(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("null")
}

/// `kafka-configs.sh --describe`'s text.
fn text(r: &ConfigResource, all: bool, entries: &[&ConfigEntry]) -> String {
    let mut out = match (all, r.resource_type, r.name.as_str()) {
        (false, ConfigResourceType::Broker, "") => {
            "Default configs for brokers in the cluster are:\n".to_string()
        }
        (true, ..) => format!("All configs for {} are:\n", heading(r)),
        (false, ..) => format!("Dynamic configs for {} are:\n", heading(r)),
    };
    for e in entries {
        let synonyms: Vec<String> = e
            .synonyms
            .iter()
            .map(|s| format!("{}:{}={}", s.source, s.name, show(&s.value)))
            .collect();
        out.push_str(&format!(
            "  {}={} sensitive={} synonyms={{{}}}\n",
            e.name,
            show(&e.value),
            e.sensitive,
            synonyms.join(", ")
        ));
    }
    out
}

/// One configuration as JSON.
fn entry_json(e: &ConfigEntry) -> Value {
    let synonyms: Vec<Value> = e
        .synonyms
        .iter()
        .map(|s| json!({"name": s.name, "value": s.value, "source": s.source.name()}))
        .collect();
    json!({
        "name": e.name,
        "value": e.value,
        "source": e.source.name(),
        "read_only": e.read_only,
        "sensitive": e.sensitive,
        "default": e.is_default,
        "type": e.config_type.name(),
        "synonyms": synonyms,
    })
}

async fn describe(g: &Global, a: ConfigDescribeArgs) -> Result<(), CliError> {
    let resource = a.resource.resource();
    let mut described = admin(g, &a.client)?
        .describe_configs(std::slice::from_ref(&resource))
        .await?;
    let entries = match described.pop() {
        Some((_, outcome)) => outcome?,
        None => return Err(CliError::Failed(format!("no answer for {resource}"))),
    };
    let shown: Vec<&ConfigEntry> = entries
        .iter()
        .filter(|e| a.all || set_on_resource(&resource, e))
        .collect();
    let out = match a.output {
        Output::Text => text(&resource, a.all, &shown),
        Output::Json => {
            let configs: Vec<Value> = shown.iter().map(|e| entry_json(e)).collect();
            json_line(&json!({
                "resource": {"type": resource.resource_type.name(), "name": resource.name},
                "configs": configs,
            }))
        }
    };
    print(out.as_bytes())
}

/// Applies `ops` to `resource`, saying so on stderr (unless quiet).
pub(crate) async fn alter(
    g: &Global,
    client: &ClientPropsArgs,
    resource: ConfigResource,
    ops: &ConfigOpsArgs,
) -> Result<(), CliError> {
    let changes = ops.ops()?;
    let n = changes.len();
    let outcomes = admin(g, client)?
        .incremental_alter_configs(&[(resource.clone(), changes)], ops.validate_only)
        .await
        .map_err(|e| match e {
            weir::Error::InvalidArgument(m) => CliError::Usage(m),
            e => e.into(),
        })?;
    for (_, outcome) in outcomes {
        outcome?;
    }
    if !g.quiet {
        let what = if ops.validate_only {
            "would accept"
        } else {
            "applied"
        };
        eprintln!(
            "weir: the broker {what} {n} change(s) to the configuration of {}",
            heading(&resource)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(set: &[&str], delete: &[&str]) -> ConfigOpsArgs {
        ConfigOpsArgs {
            set: set.iter().map(|s| s.to_string()).collect(),
            delete: delete.iter().map(|s| s.to_string()).collect(),
            append: vec!["cleanup.policy=compact,delete".into()],
            subtract: vec![],
            validate_only: false,
        }
    }

    #[test]
    fn changes_parse_and_bad_ones_are_usage_errors() {
        let got = ops(&["retention.ms=1000", "x=a=b"], &["y"]).ops().unwrap();
        let shown: Vec<(String, String, Option<String>)> = got
            .iter()
            .map(|o| (o.name.clone(), o.op.to_string(), o.value.clone()))
            .collect();
        assert_eq!(
            shown,
            [
                ("retention.ms".into(), "SET".into(), Some("1000".into())),
                ("x".into(), "SET".into(), Some("a=b".into())),
                ("y".into(), "DELETE".into(), None),
                (
                    "cleanup.policy".into(),
                    "APPEND".into(),
                    Some("compact,delete".into())
                ),
            ]
        );
        assert!(matches!(ops(&["novalue"], &[]).ops(), Err(CliError::Usage(_))));
        assert!(matches!(ops(&["=v"], &[]).ops(), Err(CliError::Usage(_))));
        let none = ConfigOpsArgs {
            set: vec![],
            delete: vec![],
            append: vec![],
            subtract: vec![],
            validate_only: true,
        };
        assert!(matches!(none.ops(), Err(CliError::Usage(_))));
    }

    #[test]
    fn headings_are_kafka_configs_ones() {
        assert_eq!(heading(&ConfigResource::topic("t")), "topic t");
        assert_eq!(heading(&ConfigResource::broker(2)), "broker 2");
        assert_eq!(
            heading(&ConfigResource::broker_defaults()),
            "brokers in the cluster"
        );
        assert_eq!(
            text(&ConfigResource::broker_defaults(), false, &[]),
            "Default configs for brokers in the cluster are:\n"
        );
        assert_eq!(
            text(&ConfigResource::broker(1), true, &[]),
            "All configs for broker 1 are:\n"
        );
    }
}
