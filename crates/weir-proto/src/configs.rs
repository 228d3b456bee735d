//! The configuration administration requests — DescribeConfigs (v1–v4, flexible from v4) and
//! IncrementalAlterConfigs (v0–v1, flexible from v1) — and their responses, decoded here rather than by
//! `kafka-protocol`, so that no count from the wire is trusted before it is checked against the bytes present.
//! Tagged fields are skipped.
//!
//! The codes are typed: [`ConfigResourceType`], [`ConfigSource`], [`ConfigType`] with Kafka's codes
//! (`ConfigResource.Type`, `DescribeConfigsResponse.ConfigSource` and `.ConfigType`); a code weir does not know
//! is kept as `Unknown(code)`, never refused (a newer broker may add values). [`AlterConfigOpType`] is what a
//! request asks for (`AlterConfigOp.OpType`).
//!
//! A config value may be of any length the frame holds. The value of a sensitive entry is dropped as it is
//! decoded, with its synonyms' values (Kafka sends null for them; one sent anyway never reaches weir's memory),
//! and the `Debug` of an entry shows no value when it is sensitive; the `Debug` of an alteration shows no value
//! at all (it may be a password).

use std::fmt;

use bytes::Bytes;

use crate::acl::code_enum;
use crate::call::ErrorCodes;
use crate::wire::{check_version, prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_describe_configs_response`] reads.
pub const DESCRIBE_CONFIGS_VERSIONS: std::ops::RangeInclusive<i16> = 1..=4;
/// Versions [`decode_incremental_alter_configs_response`] reads.
pub const INCREMENTAL_ALTER_CONFIGS_VERSIONS: std::ops::RangeInclusive<i16> = 0..=1;

code_enum! {
    /// The kind of resource a configuration belongs to (Kafka's `ConfigResource.Type`).
    pub enum ConfigResourceType ("config resource type") {
        /// A topic (named by its name).
        Topic = 2, "TOPIC";
        /// A broker (named by its id; the empty name is the default of every broker).
        Broker = 4, "BROKER";
        /// A broker's loggers (named by the broker's id).
        BrokerLogger = 8, "BROKER_LOGGER";
        /// A client metrics subscription (KIP-714).
        ClientMetrics = 16, "CLIENT_METRICS";
        /// A consumer or share group (KIP-848).
        Group = 32, "GROUP";
    }
}

code_enum! {
    /// Where a configuration's value comes from (the wire's `DescribeConfigsResponse.ConfigSource`, with the
    /// names of the Java admin client's `ConfigEntry.ConfigSource`).
    pub enum ConfigSource ("config source") {
        /// Set on the topic.
        DynamicTopicConfig = 1, "DYNAMIC_TOPIC_CONFIG";
        /// Set dynamically on this broker.
        DynamicBrokerConfig = 2, "DYNAMIC_BROKER_CONFIG";
        /// Set dynamically as the default of every broker.
        DynamicDefaultBrokerConfig = 3, "DYNAMIC_DEFAULT_BROKER_CONFIG";
        /// From the broker's properties file.
        StaticBrokerConfig = 4, "STATIC_BROKER_CONFIG";
        /// Kafka's default.
        DefaultConfig = 5, "DEFAULT_CONFIG";
        /// A broker logger's level set dynamically.
        DynamicBrokerLoggerConfig = 6, "DYNAMIC_BROKER_LOGGER_CONFIG";
        /// Set on a client metrics subscription.
        DynamicClientMetricsConfig = 7, "DYNAMIC_CLIENT_METRICS_CONFIG";
        /// Set on a group.
        DynamicGroupConfig = 8, "DYNAMIC_GROUP_CONFIG";
    }
}

code_enum! {
    /// The type of a configuration's value (DescribeConfigs v3+; Kafka's `ConfigEntry.ConfigType`).
    pub enum ConfigType ("config type") {
        /// A boolean.
        Boolean = 1, "BOOLEAN";
        /// A string.
        String = 2, "STRING";
        /// A 32-bit integer.
        Int = 3, "INT";
        /// A 16-bit integer.
        Short = 4, "SHORT";
        /// A 64-bit integer.
        Long = 5, "LONG";
        /// A floating-point number.
        Double = 6, "DOUBLE";
        /// A comma-separated list.
        List = 7, "LIST";
        /// A Java class name.
        Class = 8, "CLASS";
        /// A password (always sensitive).
        Password = 9, "PASSWORD";
    }
}

/// What an IncrementalAlterConfigs entry does (Kafka's `AlterConfigOp.OpType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AlterConfigOpType {
    /// Sets the value.
    Set,
    /// Removes the value set on the resource (the next source in line applies again).
    Delete,
    /// Adds the values to a list configuration (those not in it yet).
    Append,
    /// Removes the values from a list configuration.
    Subtract,
}

impl AlterConfigOpType {
    /// The code on the wire.
    pub const fn code(self) -> i8 {
        match self {
            AlterConfigOpType::Set => 0,
            AlterConfigOpType::Delete => 1,
            AlterConfigOpType::Append => 2,
            AlterConfigOpType::Subtract => 3,
        }
    }

    /// Kafka's name (`SET`, `DELETE`, `APPEND`, `SUBTRACT`).
    pub const fn name(self) -> &'static str {
        match self {
            AlterConfigOpType::Set => "SET",
            AlterConfigOpType::Delete => "DELETE",
            AlterConfigOpType::Append => "APPEND",
            AlterConfigOpType::Subtract => "SUBTRACT",
        }
    }
}

impl fmt::Display for AlterConfigOpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One resource to describe.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeConfigsResource {
    /// The resource's type.
    pub resource_type: ConfigResourceType,
    /// The resource's name (a topic's name, a broker's id).
    pub name: String,
    /// The configurations to describe, `None` for all.
    pub keys: Option<Vec<String>>,
}

impl Default for ConfigResourceType {
    /// `Unknown(0)`, Kafka's `UNKNOWN`.
    fn default() -> Self {
        ConfigResourceType::Unknown(0)
    }
}

/// A DescribeConfigs request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeConfigsRequest {
    /// The resources; the response has one result per resource.
    pub resources: Vec<DescribeConfigsResource>,
    /// Whether each entry lists its synonyms (the values of every source, in order of precedence).
    pub include_synonyms: bool,
    /// Whether each entry carries its documentation (v3+; not asked for before).
    pub include_documentation: bool,
}

impl DescribeConfigsRequest {
    pub(crate) fn to_wire(&self, version: i16) -> kafka_protocol::messages::DescribeConfigsRequest {
        use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource as Wire;
        kafka_protocol::messages::DescribeConfigsRequest::default()
            .with_resources(
                self.resources
                    .iter()
                    .map(|r| {
                        Wire::default()
                            .with_resource_type(r.resource_type.code())
                            .with_resource_name(crate::call::wire_str(&r.name))
                            .with_configuration_keys(
                                r.keys
                                    .as_ref()
                                    .map(|ks| ks.iter().map(|k| crate::call::wire_str(k)).collect()),
                            )
                    })
                    .collect(),
            )
            .with_include_synonyms(self.include_synonyms)
            .with_include_documentation(self.include_documentation && version >= 3)
    }
}

/// One synonym of a configuration: the value another source gives it, under that source's name for it
/// (`log.retention.ms` on a broker for a topic's `retention.ms`).
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The name in that source.
    pub name: String,
    /// The value there (`None` if null, or if the configuration is sensitive).
    pub value: Option<String>,
    /// The source.
    pub source: ConfigSource,
}

/// One configuration of a resource. Its `Debug` shows no value when it is sensitive.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The name.
    pub name: String,
    /// The value; `None` if null, or if the configuration is sensitive (a value sent anyway is dropped).
    pub value: Option<String>,
    /// Whether it cannot be changed on this resource.
    pub read_only: bool,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether the value is secret (passwords, keys).
    pub sensitive: bool,
    /// Its synonyms, highest precedence first (empty unless asked for).
    pub synonyms: Vec<ConfigSynonym>,
    /// The value's type (v3+; `Unknown(0)` before).
    pub config_type: ConfigType,
    /// Its documentation (v3+, when asked for).
    pub documentation: Option<String>,
}

/// `Debug` of a value that is never shown when `sensitive`.
fn value_debug(value: &Option<String>, sensitive: bool) -> &dyn fmt::Debug {
    match (value, sensitive) {
        (Some(_), true) => &"<redacted>",
        _ => value,
    }
}

impl fmt::Debug for ConfigSynonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigSynonym")
            .field("name", &self.name)
            .field("value", &self.value)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Debug for ConfigEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The synonyms of a sensitive entry carry no values (dropped when decoded); a hand-built one is still
        // shown without them.
        let synonyms: Vec<(&str, &dyn fmt::Debug, ConfigSource)> = self
            .synonyms
            .iter()
            .map(|s| (s.name.as_str(), value_debug(&s.value, self.sensitive), s.source))
            .collect();
        f.debug_struct("ConfigEntry")
            .field("name", &self.name)
            .field("value", value_debug(&self.value, self.sensitive))
            .field("read_only", &self.read_only)
            .field("source", &self.source)
            .field("sensitive", &self.sensitive)
            .field("synonyms", &synonyms)
            .field("config_type", &self.config_type)
            .field("documentation", &self.documentation)
            .finish()
    }
}

/// One resource's result in a DescribeConfigs response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DescribedConfigs {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// The broker's message for an error, if any.
    pub error_message: Option<String>,
    /// The resource's type.
    pub resource_type: ConfigResourceType,
    /// The resource's name.
    pub resource_name: String,
    /// Its configurations.
    pub entries: Vec<ConfigEntry>,
}

impl ErrorCodes for DescribedConfigs {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes a DescribeConfigs response body (after the response header) of `version` (1..=4): one result per
/// resource.
pub fn decode_describe_configs_response(
    body: Bytes,
    version: i16,
) -> Result<Vec<DescribedConfigs>, ProtoError> {
    const API: &str = "DescribeConfigs";
    check_version(API, version, &DESCRIBE_CONFIGS_VERSIONS)?;
    let flex = version >= 4;
    let v3 = version >= 3;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    // A string, a nullable string and an array take 1 byte each at their smallest when flexible, else 2, 2, 4.
    let (s, a) = if flex { (1, 1) } else { (2, 4) };
    let tags = usize::from(flex);
    // Error code, error message, resource type, resource name, configs, tags.
    let min_result = 2 + s + 1 + s + a + tags;
    // Name, value, read only, source, sensitive, synonyms, type (v3), documentation (v3), tags.
    let min_entry = s + s + 1 + 1 + 1 + a + if v3 { 1 + s } else { 0 } + tags;
    // Name, value, source, tags.
    let min_synonym = s + s + 1 + tags;
    let n = r.count(flex, min_result, "result count")?.unwrap_or(0);
    let mut results = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let error_code = r.i16("error code")?;
        let error_message = r.string(flex, "error message")?;
        let resource_type = ConfigResourceType::from_code(r.i8("resource type")?);
        let resource_name = r.required_string(flex, "resource name")?;
        let m = r.count(flex, min_entry, "config count")?.unwrap_or(0);
        let mut entries = Vec::with_capacity(prealloc(m));
        for _ in 0..m {
            let name = r.required_string(flex, "config name")?;
            let value = r.string(flex, "config value")?;
            let read_only = r.bool("read only")?;
            let source = ConfigSource::from_code(r.i8("config source")?);
            let sensitive = r.bool("is sensitive")?;
            let k = r.count(flex, min_synonym, "synonym count")?.unwrap_or(0);
            let mut synonyms = Vec::with_capacity(prealloc(k));
            for _ in 0..k {
                let name = r.required_string(flex, "synonym name")?;
                let value = r.string(flex, "synonym value")?;
                let source = ConfigSource::from_code(r.i8("synonym source")?);
                if flex {
                    r.tagged_fields()?;
                }
                synonyms.push(ConfigSynonym {
                    name,
                    value: value.filter(|_| !sensitive),
                    source,
                });
            }
            let (config_type, documentation) = if v3 {
                (
                    ConfigType::from_code(r.i8("config type")?),
                    r.string(flex, "documentation")?,
                )
            } else {
                (ConfigType::Unknown(0), None)
            };
            if flex {
                r.tagged_fields()?;
            }
            entries.push(ConfigEntry {
                name,
                value: value.filter(|_| !sensitive),
                read_only,
                source,
                sensitive,
                synonyms,
                config_type,
                documentation,
            });
        }
        if flex {
            r.tagged_fields()?;
        }
        results.push(DescribedConfigs {
            error_code,
            error_message,
            resource_type,
            resource_name,
            entries,
        });
    }
    if flex {
        r.tagged_fields()?;
    }
    Ok(results)
}

/// One change to a configuration. Its `Debug` shows no value (it may be a password).
#[derive(Clone, PartialEq, Eq)]
pub struct AlterableConfig {
    /// The configuration's name.
    pub name: String,
    /// What to do.
    pub op: AlterConfigOpType,
    /// The value (`None` for [`AlterConfigOpType::Delete`]).
    pub value: Option<String>,
}

impl fmt::Debug for AlterableConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlterableConfig")
            .field("name", &self.name)
            .field("op", &self.op)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The changes to one resource's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlterConfigsResource {
    /// The resource's type.
    pub resource_type: ConfigResourceType,
    /// The resource's name.
    pub name: String,
    /// The changes.
    pub configs: Vec<AlterableConfig>,
}

/// An IncrementalAlterConfigs request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IncrementalAlterConfigsRequest {
    /// The resources to change; the response has one result per resource.
    pub resources: Vec<AlterConfigsResource>,
    /// Only check that the changes would be accepted; change nothing.
    pub validate_only: bool,
}

impl IncrementalAlterConfigsRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::IncrementalAlterConfigsRequest {
        use kafka_protocol::messages::incremental_alter_configs_request::{
            AlterConfigsResource as WireResource, AlterableConfig as WireConfig,
        };
        kafka_protocol::messages::IncrementalAlterConfigsRequest::default()
            .with_resources(
                self.resources
                    .iter()
                    .map(|r| {
                        WireResource::default()
                            .with_resource_type(r.resource_type.code())
                            .with_resource_name(crate::call::wire_str(&r.name))
                            .with_configs(
                                r.configs
                                    .iter()
                                    .map(|c| {
                                        WireConfig::default()
                                            .with_name(crate::call::wire_str(&c.name))
                                            .with_config_operation(c.op.code())
                                            .with_value(c.value.as_deref().map(crate::call::wire_str))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
            .with_validate_only(self.validate_only)
    }
}

/// One resource's result in an IncrementalAlterConfigs response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AlteredConfigs {
    /// Error code, 0 if every change of the resource was applied (or would be, when validating only).
    pub error_code: i16,
    /// The broker's message for an error, if any.
    pub error_message: Option<String>,
    /// The resource's type.
    pub resource_type: ConfigResourceType,
    /// The resource's name.
    pub resource_name: String,
}

impl ErrorCodes for AlteredConfigs {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes an IncrementalAlterConfigs response body (after the response header) of `version` (0..=1): one
/// result per resource.
pub fn decode_incremental_alter_configs_response(
    body: Bytes,
    version: i16,
) -> Result<Vec<AlteredConfigs>, ProtoError> {
    const API: &str = "IncrementalAlterConfigs";
    check_version(API, version, &INCREMENTAL_ALTER_CONFIGS_VERSIONS)?;
    let flex = version >= 1;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    // Error code, error message, resource type, resource name, tags.
    let min_result = if flex { 2 + 1 + 1 + 1 + 1 } else { 2 + 2 + 1 + 2 };
    let n = r.count(flex, min_result, "result count")?.unwrap_or(0);
    let mut results = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let error_code = r.i16("error code")?;
        let error_message = r.string(flex, "error message")?;
        let resource_type = ConfigResourceType::from_code(r.i8("resource type")?);
        let resource_name = r.required_string(flex, "resource name")?;
        if flex {
            r.tagged_fields()?;
        }
        results.push(AlteredConfigs {
            error_code,
            error_message,
            resource_type,
            resource_name,
        });
    }
    if flex {
        r.tagged_fields()?;
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_kafkas() {
        assert_eq!(ConfigResourceType::Topic.code(), 2);
        assert_eq!(ConfigResourceType::Broker.code(), 4);
        assert_eq!(ConfigResourceType::BrokerLogger.code(), 8);
        assert_eq!(ConfigResourceType::from_code(3), ConfigResourceType::Unknown(3));
        assert_eq!(ConfigSource::DefaultConfig.code(), 5);
        assert_eq!(ConfigSource::from_code(1), ConfigSource::DynamicTopicConfig);
        assert_eq!(ConfigSource::from_code(42), ConfigSource::Unknown(42));
        assert_eq!(ConfigSource::Unknown(42).to_string(), "UNKNOWN(42)");
        assert_eq!(ConfigType::Password.code(), 9);
        assert_eq!(ConfigType::from_code(-1), ConfigType::Unknown(-1));
        assert_eq!("topic".parse(), Ok(ConfigResourceType::Topic));
        assert_eq!(
            "static-broker-config".parse(),
            Ok(ConfigSource::StaticBrokerConfig)
        );
        let ops = [
            AlterConfigOpType::Set,
            AlterConfigOpType::Delete,
            AlterConfigOpType::Append,
            AlterConfigOpType::Subtract,
        ];
        let codes: Vec<i8> = ops.iter().map(|o| o.code()).collect();
        assert_eq!(codes, [0, 1, 2, 3]);
        assert_eq!(AlterConfigOpType::Subtract.to_string(), "SUBTRACT");
    }

    #[test]
    fn debug_hides_sensitive_values_and_every_altered_value() {
        let entry = ConfigEntry {
            name: "ssl.key.password".into(),
            value: Some("hunter2".into()),
            read_only: false,
            source: ConfigSource::DynamicBrokerConfig,
            sensitive: true,
            synonyms: vec![ConfigSynonym {
                name: "ssl.key.password".into(),
                value: Some("hunter3".into()),
                source: ConfigSource::StaticBrokerConfig,
            }],
            config_type: ConfigType::Password,
            documentation: None,
        };
        let shown = format!("{entry:?}");
        assert!(!shown.contains("hunter"), "{shown}");
        assert!(
            shown.contains("ssl.key.password") && shown.contains("<redacted>"),
            "{shown}"
        );
        let plain = ConfigEntry {
            sensitive: false,
            value: Some("1000".into()),
            ..entry
        };
        assert!(format!("{plain:?}").contains("\"1000\""));
        let alter = IncrementalAlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: ConfigResourceType::Broker,
                name: "1".into(),
                configs: vec![AlterableConfig {
                    name: "listener.name.x.ssl.key.password".into(),
                    op: AlterConfigOpType::Set,
                    value: Some("hunter2".into()),
                }],
            }],
            validate_only: false,
        };
        let shown = format!("{alter:?}");
        assert!(
            !shown.contains("hunter") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn requests_carry_every_field() {
        let d = DescribeConfigsRequest {
            resources: vec![
                DescribeConfigsResource {
                    resource_type: ConfigResourceType::Topic,
                    name: "t".into(),
                    keys: Some(vec!["retention.ms".into()]),
                },
                DescribeConfigsResource {
                    resource_type: ConfigResourceType::Broker,
                    name: "1".into(),
                    keys: None,
                },
            ],
            include_synonyms: true,
            include_documentation: true,
        };
        let w = d.to_wire(4);
        assert!(w.include_synonyms && w.include_documentation);
        assert_eq!(
            (w.resources[0].resource_type, &*w.resources[0].resource_name),
            (2, "t")
        );
        let keys: Vec<&str> = w.resources[0]
            .configuration_keys
            .as_ref()
            .unwrap()
            .iter()
            .map(|k| &**k)
            .collect();
        assert_eq!(keys, ["retention.ms"]);
        assert!(w.resources[1].configuration_keys.is_none());
        assert!(!d.to_wire(2).include_documentation);
        let a = IncrementalAlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: ConfigResourceType::Topic,
                name: "t".into(),
                configs: vec![
                    AlterableConfig {
                        name: "retention.ms".into(),
                        op: AlterConfigOpType::Set,
                        value: Some("1000".into()),
                    },
                    AlterableConfig {
                        name: "cleanup.policy".into(),
                        op: AlterConfigOpType::Delete,
                        value: None,
                    },
                ],
            }],
            validate_only: true,
        }
        .to_wire(1);
        assert!(a.validate_only);
        let c = &a.resources[0].configs;
        assert_eq!(
            (&*c[0].name, c[0].config_operation, c[0].value.as_deref()),
            ("retention.ms", 0, Some("1000"))
        );
        assert_eq!((c[1].config_operation, c[1].value.is_none()), (1, true));
    }
}
