//! `weir users list|set-password|delete`: SCRAM credentials, as `kafka-configs.sh --entity-type users` manages
//! them.

use std::io::Read;

use clap::{ArgGroup, Args, Subcommand};
use weir::admin::{ScramAlteration, ScramMechanism, UserScramCredentials};
use weir::config::Secret;

use crate::admin_cmds::{admin, print};
use crate::util::{table, CliError};
use crate::{ClientPropsArgs, Global};

const SET_PASSWORD_HELP: &str = "\
The password is salted (32 random bytes) and hashed with PBKDF2 here; only the result is sent. Prefer
--password-stdin, which keeps the password out of shell history and process listings:
  printf '%s' \"$PW\" | weir users set-password alice --mechanism SCRAM-SHA-512 --password-stdin
With --password-stdin the first line of stdin is the password (its line ending removed).";

/// `weir users ...`.
#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// List users with SCRAM credentials (all, or the USERs given) as a table: user, mechanism, iterations
    List(UserListArgs),
    /// Create or replace a user's SCRAM credential for each --mechanism
    #[command(after_help = SET_PASSWORD_HELP)]
    SetPassword(SetPasswordArgs),
    /// Delete a user's SCRAM credential for each --mechanism
    Delete(UserDeleteArgs),
}

/// Arguments of `weir users list`.
#[derive(Args, Debug)]
pub struct UserListArgs {
    /// Users to show (all users with a credential if none)
    #[arg(value_name = "USER")]
    pub users: Vec<String>,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

/// Arguments of `weir users set-password` (their `Debug` leaves the password out).
#[derive(Args)]
#[command(group(ArgGroup::new("secret").required(true).args(["password_stdin", "password"])))]
pub struct SetPasswordArgs {
    /// User name
    #[arg(value_name = "USER")]
    pub user: String,
    /// SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable: one credential per mechanism)
    #[arg(short = 'm', long = "mechanism", value_name = "MECHANISM", required = true, value_parser = parse_mechanism)]
    pub mechanisms: Vec<ScramMechanism>,
    /// Read the password from the first line of stdin
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// The password (visible in shell history and process listings: prefer --password-stdin)
    #[arg(long = "password", value_name = "PASSWORD")]
    pub password: Option<String>,
    /// PBKDF2 iterations, 4096 to 16384
    #[arg(long = "iterations", value_name = "N", default_value_t = weir::admin::DEFAULT_SCRAM_ITERATIONS)]
    pub iterations: u32,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

impl std::fmt::Debug for SetPasswordArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetPasswordArgs")
            .field("user", &self.user)
            .field("mechanisms", &self.mechanisms)
            .field("password_stdin", &self.password_stdin)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("iterations", &self.iterations)
            .field("client", &self.client)
            .finish()
    }
}

/// Arguments of `weir users delete`.
#[derive(Args, Debug)]
pub struct UserDeleteArgs {
    /// User name
    #[arg(value_name = "USER")]
    pub user: String,
    /// SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable)
    #[arg(short = 'm', long = "mechanism", value_name = "MECHANISM", required = true, value_parser = parse_mechanism)]
    pub mechanisms: Vec<ScramMechanism>,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

fn parse_mechanism(s: &str) -> Result<ScramMechanism, String> {
    s.parse().map_err(|e: weir::admin::UnknownName| e.to_string())
}

/// Runs `weir users ...`.
pub async fn run(g: &Global, c: UsersCommand) -> Result<(), CliError> {
    match c {
        UsersCommand::List(a) => list(g, a).await,
        UsersCommand::SetPassword(a) => set_password(g, a).await,
        UsersCommand::Delete(a) => delete(g, a).await,
    }
}

async fn list(g: &Global, a: UserListArgs) -> Result<(), CliError> {
    let names: Vec<&str> = a.users.iter().map(String::as_str).collect();
    let users = admin(g, &a.client)?
        .describe_user_scram_credentials((!names.is_empty()).then_some(names.as_slice()))
        .await?;
    let mut rows = Vec::new();
    let mut failed = None;
    for UserScramCredentials { user, credentials } in users {
        match credentials {
            Ok(cs) => {
                for c in cs {
                    rows.push(vec![
                        user.clone(),
                        c.mechanism.to_string(),
                        c.iterations.to_string(),
                    ]);
                }
            }
            Err(e) => {
                eprintln!("weir: {e}");
                failed = Some(e);
            }
        }
    }
    print(table(&["USER", "MECHANISM", "ITERATIONS"], &rows).as_bytes())?;
    match failed {
        Some(e) => Err(CliError::Failed(e.to_string())),
        None => Ok(()),
    }
}

/// The first line of stdin, without its line ending.
fn password_from_stdin() -> Result<Secret, CliError> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| CliError::Failed(format!("reading the password from stdin: {e}")))?;
    let line = input.split('\n').next().unwrap_or_default();
    Ok(Secret::new(line.strip_suffix('\r').unwrap_or(line)))
}

async fn set_password(g: &Global, a: SetPasswordArgs) -> Result<(), CliError> {
    let password = match a.password {
        Some(p) => Secret::new(p),
        None => password_from_stdin()?,
    };
    if password.is_empty() {
        return Err(CliError::Usage("the password is empty".into()));
    }
    // Kafka takes one alteration per user and request: one request per mechanism.
    for m in &a.mechanisms {
        let change =
            ScramAlteration::upsert(a.user.as_str(), *m, password.clone()).with_iterations(a.iterations);
        alter(g, &a.client, change).await?;
        if !g.quiet {
            eprintln!(
                "weir: set the {m} credential of {:?} ({} iterations)",
                a.user, a.iterations
            );
        }
    }
    Ok(())
}

/// Applies one change.
async fn alter(g: &Global, c: &ClientPropsArgs, change: ScramAlteration) -> Result<(), CliError> {
    let outcomes = admin(g, c)?
        .alter_user_scram_credentials(&[change])
        .await
        .map_err(|e| match e {
            weir::Error::InvalidArgument(m) => CliError::Usage(m),
            e => e.into(),
        })?;
    for (_, outcome) in outcomes {
        outcome?;
    }
    Ok(())
}

async fn delete(g: &Global, a: UserDeleteArgs) -> Result<(), CliError> {
    for m in &a.mechanisms {
        alter(g, &a.client, ScramAlteration::delete(a.user.as_str(), *m)).await?;
        if !g.quiet {
            eprintln!("weir: deleted the {m} credential of {:?}", a.user);
        }
    }
    Ok(())
}
