//! ACLs: [`AclBinding`] (a resource pattern and who may do what on it), [`AclFilter`] (which bindings to
//! describe or delete), and the [`Admin`] calls that create, describe and delete them.
//!
//! ACLs are enforced by brokers that run an authorizer (`authorizer.class.name`, e.g. KRaft's
//! `StandardAuthorizer`); creating and deleting them needs `ALTER` on the cluster, describing them `DESCRIBE`.
//! Kafka 4 brokers forward the changes to the controller themselves: any broker will do.
//!
//! ```no_run
//! use weir::admin::{AclBinding, AclFilter, AclOperation, ResourceType};
//! # async fn demo(admin: weir::Admin) -> weir::Result<()> {
//! let read = AclBinding::allow(ResourceType::Topic, "orders", "User:carol", AclOperation::Read);
//! for outcome in admin.create_acls(&[read.clone()]).await? {
//!     outcome?;
//! }
//! let on_orders = AclFilter::any().with_resource(ResourceType::Topic, "orders");
//! for acl in admin.describe_acls(&on_orders).await? {
//!     println!("{acl}");
//! }
//! for outcome in admin.delete_acls(&[AclFilter::from(&read)]).await? {
//!     println!("deleted {:?}", outcome?);
//! }
//! # Ok(()) }
//! ```

use std::fmt;

use weir_proto::acl::{
    Acl, AclFilter as WireFilter, CreateAclsRequest, DeleteAclsFilterResult, DeleteAclsRequest,
    DescribeAclsRequest,
};
pub use weir_proto::acl::{AclOperation, AclPermissionType, PatternType, ResourceType, UnknownName};

use weir_proto::Call;

use super::{count_mismatch, Admin};
use crate::error::{check, Error, Result};

/// One ACL: `principal` is allowed (or denied) `operation` on the resources `pattern` matches, from `host`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclBinding {
    /// The type of resource: `Topic`, `Group`, `Cluster`, `TransactionalId`, `DelegationToken`, `User`.
    pub resource_type: ResourceType,
    /// The resource's name; `*` (with [`PatternType::Literal`]) for every resource of the type; `kafka-cluster`
    /// for the cluster.
    pub name: String,
    /// How [`Self::name`] is matched: `Literal` or `Prefixed`.
    pub pattern: PatternType,
    /// Who: `User:alice`, `User:CN=client,O=org` for a certificate, `User:*` for everyone.
    pub principal: String,
    /// The client host the ACL applies to (an IP address), `*` for any.
    pub host: String,
    /// What: `Read`, `Write`, `Describe`, ... (`All` for everything).
    pub operation: AclOperation,
    /// `Allow` or `Deny` (a deny wins over any allow).
    pub permission: AclPermissionType,
}

impl AclBinding {
    /// Allows `principal` `operation` on the resource `name` of `resource_type`, from any host, the name matched
    /// literally.
    ///
    /// ```
    /// use weir::admin::{AclBinding, AclOperation, PatternType, ResourceType};
    /// let acl = AclBinding::allow(ResourceType::Topic, "logs-", "User:carol", AclOperation::Write)
    ///     .with_pattern(PatternType::Prefixed);
    /// assert_eq!(acl.to_string(), "User:carol ALLOW WRITE on TOPIC logs- (PREFIXED) from host *");
    /// ```
    pub fn allow(
        resource_type: ResourceType,
        name: impl Into<String>,
        principal: impl Into<String>,
        operation: AclOperation,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            name: name.into(),
            pattern: PatternType::Literal,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission: AclPermissionType::Allow,
        }
    }

    /// Denies `principal` `operation` on the resource `name` of `resource_type`, from any host, the name matched
    /// literally.
    pub fn deny(
        resource_type: ResourceType,
        name: impl Into<String>,
        principal: impl Into<String>,
        operation: AclOperation,
    ) -> AclBinding {
        AclBinding {
            permission: AclPermissionType::Deny,
            ..AclBinding::allow(resource_type, name, principal, operation)
        }
    }

    /// The same binding with another pattern type (`Prefixed`: every resource whose name starts with
    /// [`Self::name`]).
    pub fn with_pattern(mut self, pattern: PatternType) -> AclBinding {
        self.pattern = pattern;
        self
    }

    /// The same binding for connections from `host` only.
    pub fn with_host(mut self, host: impl Into<String>) -> AclBinding {
        self.host = host.into();
        self
    }

    /// Why Kafka would refuse this binding before looking at it, if it would: an `Unknown(_)` code, or a
    /// filter's wildcard (`Any`, `Match`) where a binding names one value. (A broker fails every binding of a
    /// request with one of these; Kafka's Java client cannot even build them.)
    fn invalid_element(&self) -> Option<String> {
        if let Some(what) = unknown_element(self.resource_type, self.pattern, self.operation, self.permission)
        {
            return Some(format!("{what} is UNKNOWN"));
        }
        if self.resource_type == ResourceType::Any {
            Some("the resource type is ANY (a binding names one type)".into())
        } else if !matches!(self.pattern, PatternType::Literal | PatternType::Prefixed) {
            Some(format!(
                "the pattern type is {} (a binding is LITERAL or PREFIXED)",
                self.pattern
            ))
        } else if self.operation == AclOperation::Any {
            Some("the operation is ANY (a binding names one operation, or ALL)".into())
        } else if self.permission == AclPermissionType::Any {
            Some("the permission is ANY (a binding allows or denies)".into())
        } else {
            None
        }
    }

    pub(crate) fn to_wire(&self) -> Acl {
        Acl {
            resource_type: self.resource_type,
            resource_name: self.name.clone(),
            pattern_type: self.pattern,
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: self.operation,
            permission_type: self.permission,
        }
    }

    pub(crate) fn from_wire(a: Acl) -> AclBinding {
        AclBinding {
            resource_type: a.resource_type,
            name: a.resource_name,
            pattern: a.pattern_type,
            principal: a.principal,
            host: a.host,
            operation: a.operation,
            permission: a.permission_type,
        }
    }
}

impl fmt::Display for AclBinding {
    /// `User:carol ALLOW READ on TOPIC orders (LITERAL) from host *`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} on {} {} ({}) from host {}",
            self.principal,
            self.permission,
            self.operation,
            self.resource_type,
            self.name,
            self.pattern,
            self.host
        )
    }
}

/// Which ACLs to describe or delete: every field narrows the match, `Any` and `None` match everything.
/// [`AclFilter::default`] (also [`AclFilter::any`]) matches every ACL.
///
/// ```
/// use weir::admin::{AclFilter, AclOperation, PatternType, ResourceType};
/// // Carol's ACLs that apply to topic "orders": literal ones, prefixed ones that match it, and `*`.
/// let f = AclFilter::any()
///     .with_resource(ResourceType::Topic, "orders")
///     .with_pattern(PatternType::Match)
///     .with_principal("User:carol");
/// assert_eq!(f.operation, AclOperation::Any);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AclFilter {
    /// The resource type, or `Any`.
    pub resource_type: ResourceType,
    /// The resource name, or `None` for any.
    pub name: Option<String>,
    /// The pattern type: `Literal` or `Prefixed` match bindings of that type with exactly [`Self::name`];
    /// `Match` matches every binding that applies to the resource [`Self::name`] (literal, `*`, and prefixed
    /// ones that are a prefix of it); `Any` matches both types.
    pub pattern: PatternType,
    /// The principal, or `None` for any.
    pub principal: Option<String>,
    /// The host, or `None` for any.
    pub host: Option<String>,
    /// The operation, or `Any`.
    pub operation: AclOperation,
    /// The permission, or `Any`.
    pub permission: AclPermissionType,
}

impl AclFilter {
    /// A filter matching every ACL.
    pub fn any() -> AclFilter {
        AclFilter::default()
    }

    /// Only bindings on the resource `name` of `resource_type`.
    pub fn with_resource(mut self, resource_type: ResourceType, name: impl Into<String>) -> AclFilter {
        self.resource_type = resource_type;
        self.name = Some(name.into());
        self
    }

    /// Only bindings on resources of `resource_type`.
    pub fn with_resource_type(mut self, resource_type: ResourceType) -> AclFilter {
        self.resource_type = resource_type;
        self
    }

    /// Only bindings of pattern type `pattern` (or, with `Match`, every binding that applies to the name).
    pub fn with_pattern(mut self, pattern: PatternType) -> AclFilter {
        self.pattern = pattern;
        self
    }

    /// Only bindings of `principal` (`User:carol`).
    pub fn with_principal(mut self, principal: impl Into<String>) -> AclFilter {
        self.principal = Some(principal.into());
        self
    }

    /// Only bindings for `host`.
    pub fn with_host(mut self, host: impl Into<String>) -> AclFilter {
        self.host = Some(host.into());
        self
    }

    /// Only bindings of `operation`.
    pub fn with_operation(mut self, operation: AclOperation) -> AclFilter {
        self.operation = operation;
        self
    }

    /// Only bindings of `permission`.
    pub fn with_permission(mut self, permission: AclPermissionType) -> AclFilter {
        self.permission = permission;
        self
    }

    /// Why Kafka would refuse this filter before looking at it, if it would: an `Unknown(_)` code.
    fn invalid_element(&self) -> Option<String> {
        unknown_element(self.resource_type, self.pattern, self.operation, self.permission)
            .map(|what| format!("{what} is UNKNOWN"))
    }

    pub(crate) fn to_wire(&self) -> WireFilter {
        WireFilter {
            resource_type: self.resource_type,
            resource_name: self.name.clone(),
            pattern_type: self.pattern,
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: self.operation,
            permission_type: self.permission,
        }
    }
}

impl From<&AclBinding> for AclFilter {
    /// The filter that matches exactly `b`.
    fn from(b: &AclBinding) -> AclFilter {
        AclFilter {
            resource_type: b.resource_type,
            name: Some(b.name.clone()),
            pattern: b.pattern,
            principal: Some(b.principal.clone()),
            host: Some(b.host.clone()),
            operation: b.operation,
            permission: b.permission,
        }
    }
}

/// Which of the four codes, if any, is one Kafka does not know.
fn unknown_element(
    resource_type: ResourceType,
    pattern: PatternType,
    operation: AclOperation,
    permission: AclPermissionType,
) -> Option<&'static str> {
    if matches!(resource_type, ResourceType::Unknown(_)) {
        Some("the resource type")
    } else if matches!(pattern, PatternType::Unknown(_)) {
        Some("the pattern type")
    } else if matches!(operation, AclOperation::Unknown(_)) {
        Some("the operation")
    } else if matches!(permission, AclPermissionType::Unknown(_)) {
        Some("the permission")
    } else {
        None
    }
}

/// `: message` when the broker sent one.
fn with_message(msg: Option<String>) -> String {
    match msg {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}

impl Admin {
    /// Creates ACLs. The outer error is the request's (no connection, not authorized to send it); each binding
    /// has its own outcome, in the order given: `Ok(())`, or [`crate::Error::Kafka`] with the broker's code
    /// (`InvalidRequest` for a binding the controller refuses, such as a cluster not named `kafka-cluster` or
    /// an empty name; `ClusterAuthorizationFailed` without `ALTER` on the cluster), or
    /// [`crate::Error::InvalidArgument`], without asking the broker, for a binding holding a filter's wildcard
    /// (`ResourceType::Any`, `PatternType::Any` or `Match`, `AclOperation::Any`, `AclPermissionType::Any`) or an
    /// `Unknown(_)` code. Creating an ACL that exists already succeeds.
    ///
    /// ACLs take effect once the brokers have applied the change from the metadata log, a moment after this
    /// returns.
    ///
    /// ```no_run
    /// use weir::admin::{AclBinding, AclOperation, PatternType, ResourceType};
    /// # async fn demo(admin: weir::Admin) -> weir::Result<()> {
    /// let acls = [
    ///     AclBinding::allow(ResourceType::Topic, "orders", "User:carol", AclOperation::Read),
    ///     AclBinding::allow(ResourceType::Group, "billing-", "User:carol", AclOperation::Read)
    ///         .with_pattern(PatternType::Prefixed),
    /// ];
    /// for (acl, outcome) in acls.iter().zip(admin.create_acls(&acls).await?) {
    ///     if let Err(e) = outcome {
    ///         eprintln!("{acl}: {e}");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn create_acls(&self, acls: &[AclBinding]) -> Result<Vec<Result<()>>> {
        self.per_item(
            acls,
            AclBinding::invalid_element,
            |sent| CreateAclsRequest {
                creations: sent.iter().map(|a| a.to_wire()).collect(),
            },
            |r, acl| {
                let msg = with_message(r.error_message);
                check(r.error_code, || format!("create ACL {acl}{msg}"))
            },
            "ACLs",
        )
        .await
    }

    /// The ACLs `filter` matches, sorted. Needs `DESCRIBE` on the cluster (`ClusterAuthorizationFailed`
    /// otherwise); a broker without an authorizer answers `SecurityDisabled`. A filter holding an `Unknown(_)`
    /// code is [`crate::Error::InvalidArgument`]. The answering broker describes its authorizer's copy of the
    /// ACLs, which shows a change a moment after [`Admin::create_acls`] or [`Admin::delete_acls`] returned.
    ///
    /// ```no_run
    /// use weir::admin::AclFilter;
    /// # async fn demo(admin: weir::Admin) -> weir::Result<()> {
    /// for acl in admin.describe_acls(&AclFilter::any().with_principal("User:carol")).await? {
    ///     println!("{acl}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn describe_acls(&self, filter: &AclFilter) -> Result<Vec<AclBinding>> {
        if let Some(why) = filter.invalid_element() {
            return Err(invalid(&why, filter));
        }
        let req = DescribeAclsRequest {
            filter: filter.to_wire(),
        };
        let resp = self.cluster()?.any_connection().await?.call(&req).await?;
        let msg = with_message(resp.error_message);
        check(resp.error_code, || format!("describe ACLs{msg}"))?;
        let mut acls: Vec<AclBinding> = resp.acls.into_iter().map(AclBinding::from_wire).collect();
        acls.sort();
        Ok(acls)
    }

    /// Deletes every ACL that matches any of `filters`. The outer error is the request's; each filter has its
    /// own outcome, in the order given: the bindings it deleted, sorted (none if it matched none), or the
    /// filter's error ([`crate::Error::InvalidArgument`], without asking the broker, for an `Unknown(_)`
    /// code), or the error of the first of its bindings that could not be deleted.
    ///
    /// ```no_run
    /// use weir::admin::{AclFilter, ResourceType};
    /// # async fn demo(admin: weir::Admin) -> weir::Result<()> {
    /// // Every ACL on topic "orders", whoever it names.
    /// let filter = AclFilter::any().with_resource(ResourceType::Topic, "orders");
    /// for outcome in admin.delete_acls(&[filter]).await? {
    ///     for acl in outcome? {
    ///         println!("deleted {acl}");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn delete_acls(&self, filters: &[AclFilter]) -> Result<Vec<Result<Vec<AclBinding>>>> {
        self.per_item(
            filters,
            AclFilter::invalid_element,
            |sent| DeleteAclsRequest {
                filters: sent.iter().map(|f| f.to_wire()).collect(),
            },
            deleted,
            "filters",
        )
        .await
    }

    /// One request about `items` to the controller, one outcome per item, in order. An item Kafka would refuse
    /// before looking at it (`refused` says why) fails here, alone, unsent: a broker would fail the whole
    /// request.
    async fn per_item<I: fmt::Debug, C: Call<Response = Vec<R>>, R, T>(
        &self,
        items: &[I],
        refused: impl Fn(&I) -> Option<String>,
        request: impl FnOnce(&[&I]) -> C,
        answer: impl Fn(R, &I) -> Result<T>,
        what: &str,
    ) -> Result<Vec<Result<T>>> {
        let mut outcomes: Vec<Option<Result<T>>> = items
            .iter()
            .map(|item| refused(item).map(|why| Err(invalid(&why, item))))
            .collect();
        let sent: Vec<&I> = items.iter().filter(|item| refused(item).is_none()).collect();
        if !sent.is_empty() {
            let req = request(&sent);
            let conn = self.cluster()?.controller_connection().await?;
            let results = conn.call(&req).await?;
            if results.len() != sent.len() {
                return Err(count_mismatch::<C>(
                    &conn,
                    format!("{} results for {} {what}", results.len(), sent.len()),
                ));
            }
            let mut results = results.into_iter().zip(sent);
            for slot in outcomes.iter_mut().filter(|o| o.is_none()) {
                let (r, item) = results.next().expect("one result per item sent");
                *slot = Some(answer(r, item));
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every item answered or refused"))
            .collect())
    }
}

/// What one DeleteAcls filter deleted, or its error, or the first error of its bindings.
fn deleted(r: DeleteAclsFilterResult, filter: &AclFilter) -> Result<Vec<AclBinding>> {
    let msg = with_message(r.error_message);
    check(r.error_code, || format!("delete ACLs matching {filter:?}{msg}"))?;
    let mut deleted = Vec::with_capacity(r.matching.len());
    for m in r.matching {
        let acl = AclBinding::from_wire(m.acl);
        let msg = with_message(m.error_message);
        check(m.error_code, || format!("delete ACL {acl}{msg}"))?;
        deleted.push(acl);
    }
    deleted.sort();
    Ok(deleted)
}

/// The error for a binding or filter Kafka would refuse before looking at it (not sent).
fn invalid(why: &str, item: &dyn fmt::Debug) -> Error {
    Error::InvalidArgument(format!("{why}: {item:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_round_trips_through_the_wire_and_filters_match_it_exactly() {
        let b = AclBinding::deny(ResourceType::Group, "g", "User:x", AclOperation::Describe)
            .with_host("10.0.0.1")
            .with_pattern(PatternType::Prefixed);
        assert_eq!(AclBinding::from_wire(b.to_wire()), b);
        let f = AclFilter::from(&b).to_wire();
        assert_eq!(f.resource_name.as_deref(), Some("g"));
        assert_eq!(f.host.as_deref(), Some("10.0.0.1"));
        assert_eq!(f.permission_type, AclPermissionType::Deny);
        assert_eq!(f.pattern_type, PatternType::Prefixed);
        let any = AclFilter::any().to_wire();
        assert_eq!(
            (
                any.resource_type,
                any.pattern_type,
                any.operation,
                any.permission_type
            ),
            (
                ResourceType::Any,
                PatternType::Any,
                AclOperation::Any,
                AclPermissionType::Any
            )
        );
        assert_eq!((any.resource_name, any.principal, any.host), (None, None, None));
    }
}
