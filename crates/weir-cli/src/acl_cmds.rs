//! `weir acls list|create|delete`, with the options of `kafka-acls.sh`.

use clap::{Args, Subcommand};
use weir::admin::{AclBinding, AclFilter, AclOperation, AclPermissionType, PatternType, ResourceType};

use crate::admin_cmds::{admin, print};
use crate::util::{table, CliError};
use crate::{ClientPropsArgs, Global};

const CREATE_HELP: &str = "\
One ACL is created for every combination of principal, host, operation and resource given, e.g.
  weir acls create --allow-principal User:alice --operation Read --operation Describe --topic orders
  weir acls create --allow-principal User:alice --operation Write --topic logs- --resource-pattern-type prefixed
  weir acls create --deny-principal User:mallory --deny-host 10.0.0.9 --operation All --cluster
Operations: All, Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs,
IdempotentWrite, CreateTokens, DescribeTokens (any case; CLUSTER_ACTION and cluster-action work too).";

const DELETE_HELP: &str = "\
Deletes every ACL that matches: the resources given (with --resource-pattern-type, literal by default), and,
if given, the principals, hosts and operations. Without a principal, every ACL of the resources goes.
The deleted ACLs are printed as `weir acls list` prints them.";

/// `weir acls ...`.
#[derive(Subcommand, Debug)]
pub enum AclsCommand {
    /// List ACLs, all or those matching the options, as a table
    List(AclListArgs),
    /// Create ACLs: one per principal, host, operation and resource given
    #[command(after_help = CREATE_HELP)]
    Create(AclCreateArgs),
    /// Delete the ACLs matching the options (at least one resource) and print them
    #[command(after_help = DELETE_HELP)]
    Delete(AclDeleteArgs),
}

/// The resources of an ACL command, as `kafka-acls.sh` names them.
#[derive(Args, Debug)]
pub struct ResourceArgs {
    /// Topic (repeatable; '*' is every topic)
    #[arg(long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,
    /// Consumer group (repeatable; '*' is every group)
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// The cluster (resource name kafka-cluster)
    #[arg(long = "cluster")]
    pub cluster: bool,
    /// Transactional id (repeatable; '*' is every transactional id)
    #[arg(long = "transactional-id", value_name = "ID")]
    pub transactional_ids: Vec<String>,
    /// Delegation token id (repeatable)
    #[arg(long = "delegation-token", value_name = "TOKEN")]
    pub delegation_tokens: Vec<String>,
    /// User principal as a resource, for delegation tokens on its behalf (repeatable)
    #[arg(long = "user-principal", value_name = "PRINCIPAL")]
    pub user_principals: Vec<String>,
}

impl ResourceArgs {
    /// `(type, name)` of every resource given.
    fn resources(&self) -> Vec<(ResourceType, String)> {
        let mut r = Vec::new();
        let mut add = |t: ResourceType, names: &[String]| r.extend(names.iter().map(|n| (t, n.clone())));
        add(ResourceType::Topic, &self.topics);
        add(ResourceType::Group, &self.groups);
        if self.cluster {
            add(ResourceType::Cluster, &["kafka-cluster".to_string()]);
        }
        add(ResourceType::TransactionalId, &self.transactional_ids);
        add(ResourceType::DelegationToken, &self.delegation_tokens);
        add(ResourceType::User, &self.user_principals);
        r
    }
}

/// Arguments of `weir acls list`.
#[derive(Args, Debug)]
pub struct AclListArgs {
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Only ACLs of this principal, e.g. User:alice
    #[arg(long = "principal", value_name = "PRINCIPAL")]
    pub principal: Option<String>,
    /// Only ACLs of this operation
    #[arg(long = "operation", value_name = "OPERATION", value_parser = parse_operation)]
    pub operation: Option<AclOperation>,
    /// any, literal, prefixed, or match (every ACL that applies to the resources named: literal, '*' and
    /// matching prefixes)
    #[arg(long = "resource-pattern-type", value_name = "TYPE", default_value = "any", value_parser = parse_pattern)]
    pub pattern: PatternType,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

/// Arguments of `weir acls create`.
#[derive(Args, Debug)]
pub struct AclCreateArgs {
    /// Principal to allow, e.g. User:alice (repeatable)
    #[arg(long = "allow-principal", value_name = "PRINCIPAL")]
    pub allow_principals: Vec<String>,
    /// Principal to deny (repeatable)
    #[arg(long = "deny-principal", value_name = "PRINCIPAL")]
    pub deny_principals: Vec<String>,
    /// Host the allowing ACLs apply to (repeatable) [default: *]
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// Host the denying ACLs apply to (repeatable) [default: *]
    #[arg(long = "deny-host", value_name = "HOST")]
    pub deny_hosts: Vec<String>,
    /// Operation (repeatable)
    #[arg(long = "operation", value_name = "OPERATION", required = true, value_parser = parse_operation)]
    pub operations: Vec<AclOperation>,
    /// literal or prefixed (the ACL applies to every resource whose name starts with the name given)
    #[arg(long = "resource-pattern-type", value_name = "TYPE", default_value = "literal", value_parser = parse_pattern)]
    pub pattern: PatternType,
    #[command(flatten)]
    pub resources: ResourceArgs,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

/// Arguments of `weir acls delete`.
#[derive(Args, Debug)]
pub struct AclDeleteArgs {
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Only allowing ACLs of this principal (repeatable)
    #[arg(long = "allow-principal", value_name = "PRINCIPAL")]
    pub allow_principals: Vec<String>,
    /// Only denying ACLs of this principal (repeatable)
    #[arg(long = "deny-principal", value_name = "PRINCIPAL")]
    pub deny_principals: Vec<String>,
    /// Only ACLs of this principal, allowing or denying (repeatable)
    #[arg(long = "principal", value_name = "PRINCIPAL")]
    pub principals: Vec<String>,
    /// Only ACLs for this host (repeatable)
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Only ACLs of this operation (repeatable)
    #[arg(long = "operation", value_name = "OPERATION", value_parser = parse_operation)]
    pub operations: Vec<AclOperation>,
    /// literal, prefixed, any, or match
    #[arg(long = "resource-pattern-type", value_name = "TYPE", default_value = "literal", value_parser = parse_pattern)]
    pub pattern: PatternType,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

fn parse_operation(s: &str) -> Result<AclOperation, String> {
    s.parse().map_err(|e: weir::admin::UnknownName| e.to_string())
}

fn parse_pattern(s: &str) -> Result<PatternType, String> {
    s.parse().map_err(|e: weir::admin::UnknownName| e.to_string())
}

/// `Type:name`, as Kafka parses principals.
fn check_principal(p: &str) -> Result<(), CliError> {
    match p.split_once(':') {
        Some((t, n)) if !t.is_empty() && !n.is_empty() => Ok(()),
        _ => Err(CliError::Usage(format!(
            "principal {p:?}: expected TYPE:NAME, e.g. User:alice"
        ))),
    }
}

/// Runs `weir acls ...`.
pub async fn run(g: &Global, c: AclsCommand) -> Result<(), CliError> {
    match c {
        AclsCommand::List(a) => list(g, a).await,
        AclsCommand::Create(a) => create(g, a).await,
        AclsCommand::Delete(a) => delete(g, a).await,
    }
}

/// The table `list` and `delete` print.
fn acl_table(acls: &[AclBinding]) -> String {
    let rows: Vec<Vec<String>> = acls
        .iter()
        .map(|a| {
            vec![
                a.principal.clone(),
                a.host.clone(),
                a.permission.to_string(),
                a.operation.to_string(),
                a.resource_type.to_string(),
                a.name.clone(),
                a.pattern.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "PRINCIPAL",
            "HOST",
            "PERMISSION",
            "OPERATION",
            "RESOURCE",
            "NAME",
            "PATTERN",
        ],
        &rows,
    )
}

async fn list(g: &Global, a: AclListArgs) -> Result<(), CliError> {
    if let Some(p) = &a.principal {
        check_principal(p)?;
    }
    let base = AclFilter {
        pattern: a.pattern,
        principal: a.principal.clone(),
        operation: a.operation.unwrap_or(AclOperation::Any),
        ..AclFilter::default()
    };
    let resources = a.resources.resources();
    let filters: Vec<AclFilter> = if resources.is_empty() {
        vec![base]
    } else {
        resources
            .into_iter()
            .map(|(t, n)| base.clone().with_resource(t, n))
            .collect()
    };
    let admin = admin(g, &a.client)?;
    let mut acls = Vec::new();
    for f in &filters {
        acls.extend(admin.describe_acls(f).await?);
    }
    acls.sort();
    acls.dedup();
    print(acl_table(&acls).as_bytes())
}

async fn create(g: &Global, a: AclCreateArgs) -> Result<(), CliError> {
    if a.allow_principals.is_empty() && a.deny_principals.is_empty() {
        return Err(CliError::Usage(
            "give --allow-principal or --deny-principal".into(),
        ));
    }
    for p in a.allow_principals.iter().chain(&a.deny_principals) {
        check_principal(p)?;
    }
    if !matches!(a.pattern, PatternType::Literal | PatternType::Prefixed) {
        return Err(CliError::Usage(format!(
            "--resource-pattern-type {}: an ACL is literal or prefixed",
            a.pattern
        )));
    }
    if a.operations.contains(&AclOperation::Any) {
        return Err(CliError::Usage(
            "--operation Any only filters; an ACL names an operation (All for every one)".into(),
        ));
    }
    let resources = a.resources.resources();
    if resources.is_empty() {
        return Err(CliError::Usage(
            "give a resource: --topic, --group, --cluster, --transactional-id, --delegation-token or --user-principal"
                .into(),
        ));
    }
    let star = vec!["*".to_string()];
    let hosts = |h: &Vec<String>| if h.is_empty() { star.clone() } else { h.clone() };
    let sides = [
        (
            AclPermissionType::Allow,
            &a.allow_principals,
            hosts(&a.allow_hosts),
        ),
        (AclPermissionType::Deny, &a.deny_principals, hosts(&a.deny_hosts)),
    ];
    let mut acls = Vec::new();
    for (permission, principals, hosts) in &sides {
        for principal in principals.iter() {
            for host in hosts {
                for operation in &a.operations {
                    for (resource_type, name) in &resources {
                        acls.push(AclBinding {
                            resource_type: *resource_type,
                            name: name.clone(),
                            pattern: a.pattern,
                            principal: principal.clone(),
                            host: host.clone(),
                            operation: *operation,
                            permission: *permission,
                        });
                    }
                }
            }
        }
    }
    let outcomes = admin(g, &a.client)?.create_acls(&acls).await?;
    let mut failed = 0;
    for (acl, outcome) in acls.iter().zip(outcomes) {
        match outcome {
            Ok(()) if !g.quiet => eprintln!("weir: created ACL: {acl}"),
            Ok(()) => {}
            Err(e) => {
                failed += 1;
                eprintln!("weir: could not create ACL: {e}");
            }
        }
    }
    if failed > 0 {
        return Err(CliError::Failed(format!(
            "{failed} of {} ACL(s) not created",
            acls.len()
        )));
    }
    Ok(())
}

async fn delete(g: &Global, a: AclDeleteArgs) -> Result<(), CliError> {
    let resources = a.resources.resources();
    if resources.is_empty() {
        return Err(CliError::Usage(
            "give the resource whose ACLs to delete: --topic, --group, --cluster, --transactional-id, \
             --delegation-token or --user-principal ('*' names the ACLs on every resource of the type)"
                .into(),
        ));
    }
    let mut principals: Vec<(Option<String>, AclPermissionType)> = Vec::new();
    for (list, permission) in [
        (&a.allow_principals, AclPermissionType::Allow),
        (&a.deny_principals, AclPermissionType::Deny),
        (&a.principals, AclPermissionType::Any),
    ] {
        for p in list {
            check_principal(p)?;
            principals.push((Some(p.clone()), permission));
        }
    }
    if principals.is_empty() {
        principals.push((None, AclPermissionType::Any));
    }
    let hosts: Vec<Option<String>> = if a.hosts.is_empty() {
        vec![None]
    } else {
        a.hosts.iter().cloned().map(Some).collect()
    };
    let operations = if a.operations.is_empty() {
        vec![AclOperation::Any]
    } else {
        a.operations.clone()
    };
    let mut filters = Vec::new();
    for (resource_type, name) in &resources {
        for (principal, permission) in &principals {
            for host in &hosts {
                for operation in &operations {
                    filters.push(AclFilter {
                        resource_type: *resource_type,
                        name: Some(name.clone()),
                        pattern: a.pattern,
                        principal: principal.clone(),
                        host: host.clone(),
                        operation: *operation,
                        permission: *permission,
                    });
                }
            }
        }
    }
    let outcomes = admin(g, &a.client)?.delete_acls(&filters).await?;
    let mut deleted = Vec::new();
    let mut failed = None;
    for outcome in outcomes {
        match outcome {
            Ok(acls) => deleted.extend(acls),
            Err(e) => {
                eprintln!("weir: could not delete ACLs: {e}");
                failed = Some(e);
            }
        }
    }
    deleted.sort();
    deleted.dedup();
    print(acl_table(&deleted).as_bytes())?;
    if !g.quiet {
        eprintln!("weir: deleted {} ACL(s)", deleted.len());
    }
    match failed {
        Some(e) => Err(CliError::Failed(format!("not every ACL was deleted: {e}"))),
        None => Ok(()),
    }
}
