//! Configurations of topics and brokers, as `kafka-configs.sh` manages them: describe them (every entry with its
//! value, where the value comes from, and the values of the other sources in line), and change them entry by
//! entry (IncrementalAlterConfigs: set, delete, append to a list, subtract from a list).
//!
//! A broker's own configuration is asked of that broker; topics (and the default of every broker, the empty
//! broker name) of any broker, which forwards changes to the controller. Describing needs `DESCRIBE_CONFIGS`,
//! altering `ALTER_CONFIGS`, on the topic or the cluster.
//!
//! Sensitive values (passwords, keys) are never in an entry: Kafka does not send them, and weir drops one sent
//! anyway. The `Debug` of an [`AlterConfigOp`] never shows its value.
//!
//! ```no_run
//! use weir::admin::{AlterConfigOp, ConfigResource};
//! # async fn demo(admin: weir::Admin) -> weir::Result<()> {
//! let topic = ConfigResource::topic("events");
//! let changes = vec![AlterConfigOp::set("retention.ms", "3600000"), AlterConfigOp::delete("cleanup.policy")];
//! for (resource, outcome) in admin.incremental_alter_configs(&[(topic.clone(), changes)], false).await? {
//!     outcome?;
//! }
//! for (resource, entries) in admin.describe_configs(&[topic, ConfigResource::broker(1)]).await? {
//!     for e in entries? {
//!         println!("{resource}: {}={:?} ({})", e.name, e.value, e.source);
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use weir_proto::configs::{AlterConfigOpType, ConfigResourceType, ConfigSource, ConfigType};
use weir_proto::configs::{
    AlterConfigsResource, AlterableConfig, ConfigEntry as WireEntry, DescribeConfigsRequest,
    DescribeConfigsResource, IncrementalAlterConfigsRequest,
};

use super::{count_mismatch, Admin};
use crate::error::{check, Error, KafkaCode, Result};
use crate::net::Connection;

/// A resource that has a configuration: a topic, a broker, the default of every broker.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigResource {
    /// The resource's type.
    pub resource_type: ConfigResourceType,
    /// Its name: a topic's name, a broker's id, `""` for the default of every broker.
    pub name: String,
}

impl ConfigResource {
    /// The configuration of topic `name`.
    pub fn topic(name: impl Into<String>) -> ConfigResource {
        ConfigResource {
            resource_type: ConfigResourceType::Topic,
            name: name.into(),
        }
    }

    /// The configuration of broker `id`.
    pub fn broker(id: i32) -> ConfigResource {
        ConfigResource {
            resource_type: ConfigResourceType::Broker,
            name: id.to_string(),
        }
    }

    /// The dynamic default of every broker (`kafka-configs.sh --entity-default --entity-type brokers`).
    pub fn broker_defaults() -> ConfigResource {
        ConfigResource {
            resource_type: ConfigResourceType::Broker,
            name: String::new(),
        }
    }

    /// The log levels of broker `id`'s loggers.
    pub fn broker_logger(id: i32) -> ConfigResource {
        ConfigResource {
            resource_type: ConfigResourceType::BrokerLogger,
            name: id.to_string(),
        }
    }

    /// The broker this resource must be asked of: a broker's (or its loggers') own id; `None` for any broker.
    fn broker_id(&self) -> Option<i32> {
        match self.resource_type {
            ConfigResourceType::Broker | ConfigResourceType::BrokerLogger => self.name.parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigResource {
    /// `TOPIC events`, `BROKER 1`, `BROKER <default>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.resource_type, self.name.as_str()) {
            (ConfigResourceType::Broker, "") => write!(f, "{} <default>", self.resource_type),
            (t, name) => write!(f, "{t} {name}"),
        }
    }
}

/// The value another source gives a configuration, under that source's name for it (a topic's `retention.ms`
/// is a broker's `log.retention.ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigSynonym {
    /// The name in that source.
    pub name: String,
    /// The value there; `None` if null or sensitive.
    pub value: Option<String>,
    /// The source.
    pub source: ConfigSource,
}

/// One configuration of a resource, as [`Admin::describe_configs`] finds it. Its `Debug` never shows the value
/// of a sensitive entry (which weir never holds anyway).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigEntry {
    /// The name.
    pub name: String,
    /// The value; `None` if null, or if [`Self::sensitive`].
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it cannot be changed on this resource (a static broker setting).
    pub read_only: bool,
    /// Whether the value is secret (passwords, keys): never sent by Kafka.
    pub sensitive: bool,
    /// Whether the value is Kafka's default ([`ConfigSource::DefaultConfig`]).
    pub is_default: bool,
    /// The values of every source in line, highest precedence first (the value itself first).
    pub synonyms: Vec<ConfigSynonym>,
    /// The value's type (`Unknown(0)` when the broker does not say).
    pub config_type: ConfigType,
}

impl fmt::Debug for ConfigEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| match (v, self.sensitive) {
            (Some(_), true) => Some("<redacted>".to_owned()),
            (v, _) => v.clone(),
        };
        let synonyms: Vec<ConfigSynonym> = self
            .synonyms
            .iter()
            .map(|s| ConfigSynonym {
                value: redact(&s.value),
                ..s.clone()
            })
            .collect();
        f.debug_struct("ConfigEntry")
            .field("name", &self.name)
            .field("value", &redact(&self.value))
            .field("source", &self.source)
            .field("read_only", &self.read_only)
            .field("sensitive", &self.sensitive)
            .field("is_default", &self.is_default)
            .field("synonyms", &synonyms)
            .field("config_type", &self.config_type)
            .finish()
    }
}

impl ConfigEntry {
    fn from_wire(e: WireEntry) -> ConfigEntry {
        let sensitive = e.sensitive;
        ConfigEntry {
            value: e.value.filter(|_| !sensitive),
            source: e.source,
            read_only: e.read_only,
            sensitive,
            is_default: e.source == ConfigSource::DefaultConfig,
            synonyms: e
                .synonyms
                .into_iter()
                .map(|s| ConfigSynonym {
                    name: s.name,
                    value: s.value.filter(|_| !sensitive),
                    source: s.source,
                })
                .collect(),
            config_type: e.config_type,
            name: e.name,
        }
    }
}

/// One change to a configuration, for [`Admin::incremental_alter_configs`]. Its `Debug` never shows the value
/// (it may be a password).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlterConfigOp {
    /// The configuration's name.
    pub name: String,
    /// What to do.
    pub op: AlterConfigOpType,
    /// The value (`None` for [`AlterConfigOpType::Delete`]).
    pub value: Option<String>,
}

impl AlterConfigOp {
    /// Sets `name` to `value` on the resource.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp {
            name: name.into(),
            op: AlterConfigOpType::Set,
            value: Some(value.into()),
        }
    }

    /// Removes `name` from the resource: the next source in line (the broker's setting, Kafka's default) applies
    /// again.
    pub fn delete(name: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp {
            name: name.into(),
            op: AlterConfigOpType::Delete,
            value: None,
        }
    }

    /// Adds the comma-separated `values` to the list configuration `name` (those not in it yet).
    pub fn append(name: impl Into<String>, values: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp {
            name: name.into(),
            op: AlterConfigOpType::Append,
            value: Some(values.into()),
        }
    }

    /// Removes the comma-separated `values` from the list configuration `name`.
    pub fn subtract(name: impl Into<String>, values: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp {
            name: name.into(),
            op: AlterConfigOpType::Subtract,
            value: Some(values.into()),
        }
    }
}

impl fmt::Debug for AlterConfigOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlterConfigOp")
            .field("name", &self.name)
            .field("op", &self.op)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The resources of one call, grouped by the broker that must answer them (`None`: any broker), each with its
/// index in the call.
fn by_broker<'a>(resources: impl Iterator<Item = &'a ConfigResource>) -> BTreeMap<Option<i32>, Vec<usize>> {
    let mut groups: BTreeMap<Option<i32>, Vec<usize>> = BTreeMap::new();
    for (i, r) in resources.enumerate() {
        groups.entry(r.broker_id()).or_default().push(i);
    }
    groups
}

impl Admin {
    /// Describes the configurations of `resources` (topics, brokers, the default of every broker), each entry
    /// with its synonyms, sorted by name. One outcome per resource, in the order given: the entries, or
    /// [`crate::Error::Kafka`] (`UnknownTopicOrPartition`; `TopicAuthorizationFailed`,
    /// `ClusterAuthorizationFailed`; `BrokerNotAvailable` for a broker not in the cluster).
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
    ) -> Result<Vec<(ConfigResource, Result<Vec<ConfigEntry>>)>> {
        let mut out: Vec<Option<Result<Vec<ConfigEntry>>>> = vec![None; resources.len()];
        let asks = by_broker(resources.iter())
            .into_iter()
            .map(|(broker, idx)| async move {
                let req = DescribeConfigsRequest {
                    resources: idx
                        .iter()
                        .map(|&i| DescribeConfigsResource {
                            resource_type: resources[i].resource_type,
                            name: resources[i].name.clone(),
                            keys: None,
                        })
                        .collect(),
                    include_synonyms: true,
                    include_documentation: false,
                };
                let answered = match self.config_connection(broker).await {
                    Ok(conn) => conn.call(&req).await.map(|r| (conn, r)),
                    Err(e) => Err(e),
                };
                (idx, answered)
            });
        for (idx, answered) in futures::future::join_all(asks).await {
            match answered {
                Err(e) => {
                    for i in idx {
                        out[i] = Some(Err(e.clone()));
                    }
                }
                Ok((conn, mut results)) => {
                    for i in idx {
                        let r = &resources[i];
                        let pos = results
                            .iter()
                            .position(|d| d.resource_type == r.resource_type && d.resource_name == r.name);
                        out[i] = Some(match pos.map(|p| results.swap_remove(p)) {
                            None => Err(count_mismatch::<DescribeConfigsRequest>(
                                &conn,
                                format!("no result for {r}"),
                            )),
                            Some(d) => {
                                let msg = d.error_message.unwrap_or_default();
                                check(d.error_code, || format!("describe configs of {r} {msg}")).map(|()| {
                                    let mut entries: Vec<ConfigEntry> =
                                        d.entries.into_iter().map(ConfigEntry::from_wire).collect();
                                    entries.sort_by(|a, b| a.name.cmp(&b.name));
                                    entries
                                })
                            }
                        });
                    }
                }
            }
        }
        Ok(resources
            .iter()
            .cloned()
            .zip(out.into_iter().map(unanswered))
            .collect())
    }

    /// Changes configurations entry by entry (IncrementalAlterConfigs): per resource, its operations (set,
    /// delete, append to a list, subtract from a list), applied together or not at all; with `validate_only`,
    /// only checks that they would be. One outcome per resource, in the order given: `Ok(())`, or
    /// [`crate::Error::Kafka`] (`InvalidConfig`: an unknown name, a bad value, a read-only setting;
    /// `InvalidRequest`: a resource given twice, or an entry twice in one resource; `UnknownTopicOrPartition`;
    /// authorization errors). Other brokers apply a change a moment after this returns.
    pub async fn incremental_alter_configs(
        &self,
        changes: &[(ConfigResource, Vec<AlterConfigOp>)],
        validate_only: bool,
    ) -> Result<Vec<(ConfigResource, Result<()>)>> {
        for (r, ops) in changes {
            if let Some(op) = ops.iter().find(|o| o.name.is_empty()) {
                return Err(Error::InvalidArgument(format!(
                    "alter configs of {r}: {} of an empty name",
                    op.op
                )));
            }
            if let Some(op) = ops
                .iter()
                .find(|o| o.op != AlterConfigOpType::Delete && o.value.is_none())
            {
                return Err(Error::InvalidArgument(format!(
                    "alter configs of {r}: {} {} needs a value",
                    op.op, op.name
                )));
            }
        }
        let mut out: Vec<Option<Result<()>>> = vec![None; changes.len()];
        let asks = by_broker(changes.iter().map(|(r, _)| r))
            .into_iter()
            .map(|(broker, idx)| async move {
                let req = IncrementalAlterConfigsRequest {
                    resources: idx
                        .iter()
                        .map(|&i| {
                            let (r, ops) = &changes[i];
                            AlterConfigsResource {
                                resource_type: r.resource_type,
                                name: r.name.clone(),
                                configs: ops
                                    .iter()
                                    .map(|o| AlterableConfig {
                                        name: o.name.clone(),
                                        op: o.op,
                                        value: o.value.clone(),
                                    })
                                    .collect(),
                            }
                        })
                        .collect(),
                    validate_only,
                };
                let answered = match self.config_connection(broker).await {
                    Ok(conn) => conn.call(&req).await.map(|r| (conn, r)),
                    Err(e) => Err(e),
                };
                (idx, answered)
            });
        for (idx, answered) in futures::future::join_all(asks).await {
            match answered {
                Err(e) => {
                    for i in idx {
                        out[i] = Some(Err(e.clone()));
                    }
                }
                Ok((conn, results)) => {
                    for i in idx {
                        let r = &changes[i].0;
                        let found = results
                            .iter()
                            .find(|a| a.resource_type == r.resource_type && a.resource_name == r.name);
                        out[i] = Some(match found {
                            None => Err(count_mismatch::<IncrementalAlterConfigsRequest>(
                                &conn,
                                format!("no result for {r}"),
                            )),
                            Some(a) => {
                                let msg = a.error_message.clone().unwrap_or_default();
                                check(a.error_code, || format!("alter configs of {r} {msg}"))
                            }
                        });
                    }
                }
            }
        }
        Ok(changes
            .iter()
            .map(|(r, _)| r.clone())
            .zip(out.into_iter().map(unanswered))
            .collect())
    }

    /// A connection to `broker` (a broker resource is answered by that broker only), or to any broker.
    async fn config_connection(&self, broker: Option<i32>) -> Result<Arc<Connection>> {
        let cluster = self.cluster()?;
        let Some(id) = broker else {
            return cluster.any_connection().await;
        };
        if !cluster.snapshot().brokers.contains_key(&id) {
            cluster.refresh(false).await?;
        }
        cluster.link(id)?.get().await
    }
}

/// An outcome every path sets; an internal error rather than a panic if one did not.
fn unanswered<T>(o: Option<Result<T>>) -> Result<T> {
    o.unwrap_or_else(|| {
        Err(Error::Kafka {
            code: KafkaCode::UnknownServerError,
            context: "config resource left unanswered".into(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_name_their_broker() {
        assert_eq!(ConfigResource::broker(3).broker_id(), Some(3));
        assert_eq!(ConfigResource::broker_logger(2).broker_id(), Some(2));
        assert_eq!(ConfigResource::broker_defaults().broker_id(), None);
        assert_eq!(ConfigResource::topic("7").broker_id(), None);
        assert_eq!(ConfigResource::topic("t").to_string(), "TOPIC t");
        assert_eq!(ConfigResource::broker(1).to_string(), "BROKER 1");
        assert_eq!(ConfigResource::broker_defaults().to_string(), "BROKER <default>");
        let groups = by_broker(
            [
                ConfigResource::topic("a"),
                ConfigResource::broker(2),
                ConfigResource::topic("b"),
                ConfigResource::broker(2),
            ]
            .iter(),
        );
        assert_eq!(
            groups,
            BTreeMap::from([(None, vec![0, 2]), (Some(2), vec![1, 3])])
        );
    }

    #[test]
    fn sensitive_values_are_dropped_and_never_shown() {
        let wire = WireEntry {
            name: "ssl.key.password".into(),
            value: Some("hunter2".into()),
            read_only: false,
            source: ConfigSource::DynamicBrokerConfig,
            sensitive: true,
            synonyms: vec![weir_proto::configs::ConfigSynonym {
                name: "ssl.key.password".into(),
                value: Some("hunter3".into()),
                source: ConfigSource::DynamicBrokerConfig,
            }],
            config_type: ConfigType::Password,
            documentation: None,
        };
        let e = ConfigEntry::from_wire(wire);
        assert_eq!(e.value, None);
        assert_eq!(e.synonyms[0].value, None);
        assert!(!e.is_default);
        let shown = format!("{e:?}");
        assert!(!shown.contains("hunter"), "{shown}");
        let hand_built = ConfigEntry {
            value: Some("hunter4".into()),
            ..e
        };
        let shown = format!("{hand_built:?}");
        assert!(
            !shown.contains("hunter") && shown.contains("<redacted>"),
            "{shown}"
        );
        let op = AlterConfigOp::set("ssl.key.password", "hunter5");
        let shown = format!("{op:?}");
        assert!(
            !shown.contains("hunter") && shown.contains("ssl.key.password"),
            "{shown}"
        );
    }
}
