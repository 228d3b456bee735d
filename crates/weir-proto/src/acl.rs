//! The ACL administration requests — CreateAcls, DescribeAcls, DeleteAcls (v2–v3, all flexible) — and their
//! responses, decoded here rather than by `kafka-protocol`, so that no count from the wire is trusted before it
//! is checked against the bytes present. Tagged fields are skipped.
//!
//! The codes of an ACL (resource type, pattern type, operation, permission) are typed: [`ResourceType`],
//! [`PatternType`], [`AclOperation`], [`AclPermissionType`], with Kafka's codes (`ResourceType.java`,
//! `PatternType.java`, `AclOperation.java`, `AclPermissionType.java`). A code weir does not know is kept as
//! `Unknown(code)`, never refused: a newer broker may add values.
//!
//! v3 adds the `USER` resource type; v2 and v3 are otherwise the same.

use std::fmt;

use bytes::Bytes;

use crate::call::ErrorCodes;
use crate::wire::{check_version, prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_create_acls_response`] reads.
pub const CREATE_ACLS_VERSIONS: std::ops::RangeInclusive<i16> = 2..=3;
/// Versions [`decode_describe_acls_response`] reads.
pub const DESCRIBE_ACLS_VERSIONS: std::ops::RangeInclusive<i16> = 2..=3;
/// Versions [`decode_delete_acls_response`] reads.
pub const DELETE_ACLS_VERSIONS: std::ops::RangeInclusive<i16> = 2..=3;

/// A name that is not one of an enumeration's values (parsing [`ResourceType`], [`PatternType`],
/// [`AclOperation`], [`AclPermissionType`] or [`crate::scram_credentials::ScramMechanism`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// What was being parsed ("ACL operation").
    pub what: &'static str,
    /// The text given.
    pub input: String,
    /// The names accepted.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?} (expected one of {})",
            self.what,
            self.input,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for UnknownName {}

/// `Read`, `READ`, `read`, `Cluster-Action`, `CLUSTER_ACTION`, `clusterAction` all become `clusteraction`.
pub(crate) fn normalize_name(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Declares an enumeration of Kafka byte codes: its variants with their codes and Kafka's names, `Unknown(code)`
/// for any other code, `code`, `from_code`, `name`, `Display` (Kafka's name) and `FromStr` (Kafka's name or
/// the variant's, case, `_` and `-` ignored).
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $var:ident = $code:literal, $kafka:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $var, )*
            /// A code weir does not know (0 is Kafka's `UNKNOWN`), kept as received.
            Unknown(i8),
        }

        impl $name {
            /// Every named value, in the order of their codes.
            pub const ALL: &'static [$name] = &[$($name::$var),*];
            /// Kafka's names of [`Self::ALL`].
            pub const NAMES: &'static [&'static str] = &[$($kafka),*];

            /// The code on the wire.
            pub const fn code(self) -> i8 {
                match self {
                    $($name::$var => $code,)*
                    $name::Unknown(c) => c,
                }
            }

            /// The value of a wire code (`Unknown(code)` for a code weir does not know).
            pub const fn from_code(code: i8) -> Self {
                match code {
                    $($code => $name::$var,)*
                    c => $name::Unknown(c),
                }
            }

            /// Kafka's name (the Java enum constant), `UNKNOWN` for an unknown code.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$var => $kafka,)*
                    $name::Unknown(_) => "UNKNOWN",
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self {
                    $name::Unknown(c) => write!(f, "UNKNOWN({c})"),
                    v => f.write_str(v.name()),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::acl::UnknownName;

            /// Kafka's name or the variant's, ignoring case, `_`, `-` and spaces (`Read`, `READ`,
            /// `ClusterAction`, `CLUSTER_ACTION`, `cluster-action`).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let n = $crate::acl::normalize_name(s);
                $(
                    if n == $crate::acl::normalize_name($kafka) || n == $crate::acl::normalize_name(stringify!($var)) {
                        return Ok($name::$var);
                    }
                )*
                Err($crate::acl::UnknownName { what: $what, input: s.to_owned(), expected: Self::NAMES })
            }
        }
    };
}
pub(crate) use code_enum;

code_enum! {
    /// The type of resource an ACL protects (Kafka's `ResourceType`).
    pub enum ResourceType ("resource type") {
        /// In a filter: any type. Not valid in an ACL.
        Any = 1, "ANY";
        /// A topic.
        Topic = 2, "TOPIC";
        /// A consumer group.
        Group = 3, "GROUP";
        /// The cluster (its name is `kafka-cluster`).
        Cluster = 4, "CLUSTER";
        /// A transactional id.
        TransactionalId = 5, "TRANSACTIONAL_ID";
        /// A delegation token.
        DelegationToken = 6, "DELEGATION_TOKEN";
        /// A user (for creating delegation tokens on a user's behalf; CreateAcls v3+).
        User = 7, "USER";
    }
}

code_enum! {
    /// How an ACL's resource name is matched (Kafka's `PatternType`).
    pub enum PatternType ("pattern type") {
        /// In a filter: any pattern type.
        Any = 1, "ANY";
        /// In a filter: every ACL that applies to the filter's resource name (literal, prefixed or `*`).
        Match = 2, "MATCH";
        /// The name exactly (or `*`, every resource of the type).
        Literal = 3, "LITERAL";
        /// Every resource whose name starts with the ACL's name.
        Prefixed = 4, "PREFIXED";
    }
}

code_enum! {
    /// An operation an ACL allows or denies (Kafka's `AclOperation`).
    pub enum AclOperation ("ACL operation") {
        /// In a filter: any operation. Not valid in an ACL.
        Any = 1, "ANY";
        /// Every operation.
        All = 2, "ALL";
        /// Read.
        Read = 3, "READ";
        /// Write.
        Write = 4, "WRITE";
        /// Create.
        Create = 5, "CREATE";
        /// Delete.
        Delete = 6, "DELETE";
        /// Alter.
        Alter = 7, "ALTER";
        /// Describe.
        Describe = 8, "DESCRIBE";
        /// Cluster action (inter-broker requests).
        ClusterAction = 9, "CLUSTER_ACTION";
        /// Describe configurations.
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        /// Alter configurations.
        AlterConfigs = 11, "ALTER_CONFIGS";
        /// Idempotent produce.
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        /// Create delegation tokens.
        CreateTokens = 13, "CREATE_TOKENS";
        /// Describe delegation tokens.
        DescribeTokens = 14, "DESCRIBE_TOKENS";
    }
}

code_enum! {
    /// Whether an ACL allows or denies (Kafka's `AclPermissionType`).
    pub enum AclPermissionType ("permission type") {
        /// In a filter: either.
        Any = 1, "ANY";
        /// Denies the operation (a deny wins over any allow).
        Deny = 2, "DENY";
        /// Allows the operation.
        Allow = 3, "ALLOW";
    }
}

macro_rules! default_any {
    ($($t:ident),*) => {$(
        impl Default for $t {
            /// `Any`: what an empty filter matches.
            fn default() -> Self {
                $t::Any
            }
        }
    )*};
}
default_any!(ResourceType, PatternType, AclOperation, AclPermissionType);

/// One ACL as the protocol carries it: a resource pattern and an access control entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Acl {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The resource name (`*` for every resource of the type with [`PatternType::Literal`]).
    pub resource_name: String,
    /// How the name is matched.
    pub pattern_type: PatternType,
    /// The principal, e.g. `User:alice`.
    pub principal: String,
    /// The host the principal connects from, `*` for any.
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission_type: AclPermissionType,
}

/// A filter over ACLs as the protocol carries it: `Any` and `None` match everything.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AclFilter {
    /// The resource type, or `Any`.
    pub resource_type: ResourceType,
    /// The resource name, or `None` for any.
    pub resource_name: Option<String>,
    /// The pattern type, `Any`, or `Match`.
    pub pattern_type: PatternType,
    /// The principal, or `None` for any.
    pub principal: Option<String>,
    /// The host, or `None` for any.
    pub host: Option<String>,
    /// The operation, or `Any`.
    pub operation: AclOperation,
    /// The permission, or `Any`.
    pub permission_type: AclPermissionType,
}

/// A CreateAcls request: the ACLs to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateAclsRequest {
    /// ACLs to create; the response has one result per ACL, in this order.
    pub creations: Vec<Acl>,
}

impl CreateAclsRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::CreateAclsRequest {
        use kafka_protocol::messages::create_acls_request::AclCreation;
        kafka_protocol::messages::CreateAclsRequest::default().with_creations(
            self.creations
                .iter()
                .map(|a| {
                    AclCreation::default()
                        .with_resource_type(a.resource_type.code())
                        .with_resource_name(crate::call::wire_str(&a.resource_name))
                        .with_resource_pattern_type(a.pattern_type.code())
                        .with_principal(crate::call::wire_str(&a.principal))
                        .with_host(crate::call::wire_str(&a.host))
                        .with_operation(a.operation.code())
                        .with_permission_type(a.permission_type.code())
                })
                .collect(),
        )
    }
}

/// A DescribeAcls request: one filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeAclsRequest {
    /// Which ACLs to describe.
    pub filter: AclFilter,
}

impl DescribeAclsRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::DescribeAclsRequest {
        let f = &self.filter;
        let opt = |s: &Option<String>| s.as_deref().map(crate::call::wire_str);
        kafka_protocol::messages::DescribeAclsRequest::default()
            .with_resource_type_filter(f.resource_type.code())
            .with_resource_name_filter(opt(&f.resource_name))
            .with_pattern_type_filter(f.pattern_type.code())
            .with_principal_filter(opt(&f.principal))
            .with_host_filter(opt(&f.host))
            .with_operation(f.operation.code())
            .with_permission_type(f.permission_type.code())
    }
}

/// A DeleteAcls request: every ACL matching any of the filters is deleted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteAclsRequest {
    /// The filters; the response has one result per filter, in this order.
    pub filters: Vec<AclFilter>,
}

impl DeleteAclsRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::DeleteAclsRequest {
        use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
        let opt = |s: &Option<String>| s.as_deref().map(crate::call::wire_str);
        kafka_protocol::messages::DeleteAclsRequest::default().with_filters(
            self.filters
                .iter()
                .map(|f| {
                    DeleteAclsFilter::default()
                        .with_resource_type_filter(f.resource_type.code())
                        .with_resource_name_filter(opt(&f.resource_name))
                        .with_pattern_type_filter(f.pattern_type.code())
                        .with_principal_filter(opt(&f.principal))
                        .with_host_filter(opt(&f.host))
                        .with_operation(f.operation.code())
                        .with_permission_type(f.permission_type.code())
                })
                .collect(),
        )
    }
}

/// One ACL's result in a CreateAcls response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclCreationResult {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// The broker's message for an error, if any.
    pub error_message: Option<String>,
}

impl ErrorCodes for AclCreationResult {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes a CreateAcls response body (after the response header) of `version` (2..=3): one result per ACL, in
/// the order sent.
pub fn decode_create_acls_response(body: Bytes, version: i16) -> Result<Vec<AclCreationResult>, ProtoError> {
    const API: &str = "CreateAcls";
    check_version(API, version, &CREATE_ACLS_VERSIONS)?;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    // Error code, error message, tags.
    let n = r.count(true, 2 + 1 + 1, "result count")?.unwrap_or(0);
    let mut results = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let error_code = r.i16("error code")?;
        let error_message = r.string(true, "error message")?;
        r.tagged_fields()?;
        results.push(AclCreationResult {
            error_code,
            error_message,
        });
    }
    r.tagged_fields()?;
    Ok(results)
}

/// A decoded DescribeAcls response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeAclsResponse {
    /// Error code, 0 if none.
    pub error_code: i16,
    /// The broker's message for an error, if any.
    pub error_message: Option<String>,
    /// The matching ACLs, one per resource and entry, in the order of the response.
    pub acls: Vec<Acl>,
}

impl ErrorCodes for DescribeAclsResponse {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes a DescribeAcls response body (after the response header) of `version` (2..=3).
pub fn decode_describe_acls_response(body: Bytes, version: i16) -> Result<DescribeAclsResponse, ProtoError> {
    const API: &str = "DescribeAcls";
    check_version(API, version, &DESCRIBE_ACLS_VERSIONS)?;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    let error_code = r.i16("error code")?;
    let error_message = r.string(true, "error message")?;
    // Resource type, name, pattern type, ACL count, tags.
    let resources = r.count(true, 1 + 1 + 1 + 1 + 1, "resource count")?.unwrap_or(0);
    let mut acls = Vec::with_capacity(prealloc(resources));
    for _ in 0..resources {
        let resource_type = ResourceType::from_code(r.i8("resource type")?);
        let resource_name = r.required_string(true, "resource name")?;
        let pattern_type = PatternType::from_code(r.i8("pattern type")?);
        // Principal, host, operation, permission, tags.
        let n = r.count(true, 1 + 1 + 1 + 1 + 1, "ACL count")?.unwrap_or(0);
        for _ in 0..n {
            let principal = r.required_string(true, "principal")?;
            let host = r.required_string(true, "host")?;
            let operation = AclOperation::from_code(r.i8("operation")?);
            let permission_type = AclPermissionType::from_code(r.i8("permission type")?);
            r.tagged_fields()?;
            acls.push(Acl {
                resource_type,
                resource_name: resource_name.clone(),
                pattern_type,
                principal,
                host,
                operation,
                permission_type,
            });
        }
        r.tagged_fields()?;
    }
    r.tagged_fields()?;
    Ok(DescribeAclsResponse {
        error_code,
        error_message,
        acls,
    })
}

/// One filter's result in a DeleteAcls response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeleteAclsFilterResult {
    /// Error code of the filter, 0 if none.
    pub error_code: i16,
    /// The broker's message for an error, if any.
    pub error_message: Option<String>,
    /// The ACLs the filter matched, each with its deletion's outcome.
    pub matching: Vec<DeletedAcl>,
}

impl ErrorCodes for DeleteAclsFilterResult {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
        self.matching.error_codes(f);
    }
}

/// An ACL a DeleteAcls filter matched.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeletedAcl {
    /// Error code of its deletion, 0 if it was deleted.
    pub error_code: i16,
    /// The broker's message for an error, if any.
    pub error_message: Option<String>,
    /// The ACL.
    pub acl: Acl,
}

impl ErrorCodes for DeletedAcl {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes a DeleteAcls response body (after the response header) of `version` (2..=3): one result per filter,
/// in the order sent.
pub fn decode_delete_acls_response(
    body: Bytes,
    version: i16,
) -> Result<Vec<DeleteAclsFilterResult>, ProtoError> {
    const API: &str = "DeleteAcls";
    check_version(API, version, &DELETE_ACLS_VERSIONS)?;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    // Error code, error message, matching count, tags.
    let n = r.count(true, 2 + 1 + 1 + 1, "filter result count")?.unwrap_or(0);
    let mut results = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let error_code = r.i16("error code")?;
        let error_message = r.string(true, "error message")?;
        // Error code, message, resource type, name, pattern type, principal, host, operation, permission, tags.
        let m = r
            .count(true, 2 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1, "matching ACL count")?
            .unwrap_or(0);
        let mut matching = Vec::with_capacity(prealloc(m));
        for _ in 0..m {
            let error_code = r.i16("error code")?;
            let error_message = r.string(true, "error message")?;
            let resource_type = ResourceType::from_code(r.i8("resource type")?);
            let resource_name = r.required_string(true, "resource name")?;
            let pattern_type = PatternType::from_code(r.i8("pattern type")?);
            let principal = r.required_string(true, "principal")?;
            let host = r.required_string(true, "host")?;
            let operation = AclOperation::from_code(r.i8("operation")?);
            let permission_type = AclPermissionType::from_code(r.i8("permission type")?);
            r.tagged_fields()?;
            matching.push(DeletedAcl {
                error_code,
                error_message,
                acl: Acl {
                    resource_type,
                    resource_name,
                    pattern_type,
                    principal,
                    host,
                    operation,
                    permission_type,
                },
            });
        }
        r.tagged_fields()?;
        results.push(DeleteAclsFilterResult {
            error_code,
            error_message,
            matching,
        });
    }
    r.tagged_fields()?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kafka() {
        let t: Vec<(i8, &str)> = ResourceType::ALL.iter().map(|v| (v.code(), v.name())).collect();
        assert_eq!(
            t,
            [
                (1, "ANY"),
                (2, "TOPIC"),
                (3, "GROUP"),
                (4, "CLUSTER"),
                (5, "TRANSACTIONAL_ID"),
                (6, "DELEGATION_TOKEN"),
                (7, "USER")
            ]
        );
        let p: Vec<i8> = PatternType::ALL.iter().map(|v| v.code()).collect();
        assert_eq!(p, [1, 2, 3, 4]);
        assert_eq!(PatternType::Literal.code(), 3);
        assert_eq!(PatternType::Prefixed.code(), 4);
        let o: Vec<i8> = AclOperation::ALL.iter().map(|v| v.code()).collect();
        assert_eq!(o, (1..=14).collect::<Vec<i8>>());
        assert_eq!(AclOperation::IdempotentWrite.code(), 12);
        assert_eq!(AclPermissionType::Allow.code(), 3);
        assert_eq!(AclPermissionType::Deny.code(), 2);
        for c in i8::MIN..=i8::MAX {
            assert_eq!(AclOperation::from_code(c).code(), c);
            assert_eq!(ResourceType::from_code(c).code(), c);
        }
        assert_eq!(ResourceType::from_code(0), ResourceType::Unknown(0));
        assert_eq!(ResourceType::Unknown(9).to_string(), "UNKNOWN(9)");
    }

    #[test]
    fn names_parse_in_kafkas_spellings() {
        for s in [
            "ClusterAction",
            "CLUSTER_ACTION",
            "cluster-action",
            "clusteraction",
        ] {
            assert_eq!(s.parse::<AclOperation>(), Ok(AclOperation::ClusterAction), "{s}");
        }
        assert_eq!("Read".parse::<AclOperation>(), Ok(AclOperation::Read));
        assert_eq!(
            "transactional-id".parse::<ResourceType>(),
            Ok(ResourceType::TransactionalId)
        );
        assert_eq!("prefixed".parse::<PatternType>(), Ok(PatternType::Prefixed));
        assert_eq!("Allow".parse::<AclPermissionType>(), Ok(AclPermissionType::Allow));
        let e = "Reed".parse::<AclOperation>().unwrap_err().to_string();
        assert!(e.contains("Reed") && e.contains("READ"), "{e}");
        for v in AclOperation::ALL {
            assert_eq!(v.to_string().parse::<AclOperation>(), Ok(*v));
        }
    }
}

#[cfg(test)]
mod request_tests {
    use super::*;

    fn acl() -> Acl {
        Acl {
            resource_type: ResourceType::Topic,
            resource_name: "t".into(),
            pattern_type: PatternType::Prefixed,
            principal: "User:carol".into(),
            host: "*".into(),
            operation: AclOperation::Write,
            permission_type: AclPermissionType::Deny,
        }
    }

    #[test]
    fn requests_carry_every_field() {
        let w = CreateAclsRequest {
            creations: vec![acl()],
        }
        .to_wire(3);
        let c = &w.creations[0];
        assert_eq!(
            (c.resource_type, &*c.resource_name, c.resource_pattern_type),
            (2, "t", 4)
        );
        assert_eq!(
            (&*c.principal, &*c.host, c.operation, c.permission_type),
            ("User:carol", "*", 4, 2)
        );
        let filter = AclFilter {
            resource_type: ResourceType::Group,
            resource_name: None,
            pattern_type: PatternType::Match,
            principal: Some("User:x".into()),
            host: None,
            operation: AclOperation::Any,
            permission_type: AclPermissionType::Allow,
        };
        let d = DescribeAclsRequest {
            filter: filter.clone(),
        }
        .to_wire(2);
        assert_eq!((d.resource_type_filter, d.pattern_type_filter), (3, 2));
        assert_eq!(d.resource_name_filter, None);
        assert_eq!(d.principal_filter.as_deref(), Some("User:x"));
        assert_eq!((d.operation, d.permission_type), (1, 3));
        let x = DeleteAclsRequest {
            filters: vec![filter],
        }
        .to_wire(3);
        let f = &x.filters[0];
        assert_eq!(
            (
                f.resource_type_filter,
                f.pattern_type_filter,
                f.operation,
                f.permission_type
            ),
            (3, 2, 1, 3)
        );
        assert_eq!(f.host_filter, None);
    }
}
