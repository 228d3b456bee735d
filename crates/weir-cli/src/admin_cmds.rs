//! `weir topics create|delete|list` and `weir metadata`; what every admin command shares (the client, stdout,
//! `--output`, JSON).

use std::io::Write;

use clap::ValueEnum;
use weir::Admin;

use crate::util::{client_config, CliError};
use crate::{ClientPropsArgs, Global, MetadataArgs, TopicCreateArgs, TopicNameArgs};

/// What a describe command prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Text in the shape of Kafka's own tools
    Text,
    /// One JSON document on stdout
    Json,
}

pub(crate) fn admin(g: &Global, c: &ClientPropsArgs) -> Result<Admin, CliError> {
    Ok(Admin::new(client_config(&g.brokers, &c.props)?)?)
}

/// A JSON document as `--output json` prints it: compact, on a line of its own.
pub(crate) fn json_line(doc: &serde_json::Value) -> String {
    format!("{doc}\n")
}

pub(crate) fn print(out: &[u8]) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(out).and_then(|_| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Failed(format!("writing stdout: {e}"))),
    }
}

pub async fn create(g: &Global, a: TopicCreateArgs) -> Result<(), CliError> {
    if a.partitions < 1 {
        return Err(CliError::Usage("-P: a topic needs at least 1 partition".into()));
    }
    if a.replication_factor < 1 {
        return Err(CliError::Usage(
            "-R: the replication factor must be at least 1".into(),
        ));
    }
    admin(g, &a.client)?
        .create_topic(&a.name, a.partitions, a.replication_factor)
        .await?;
    if !g.quiet {
        eprintln!(
            "weir: created topic {:?} with {} partition(s), replication factor {}",
            a.name, a.partitions, a.replication_factor
        );
    }
    Ok(())
}

pub async fn delete(g: &Global, a: TopicNameArgs) -> Result<(), CliError> {
    admin(g, &a.client)?.delete_topic(&a.name).await?;
    if !g.quiet {
        eprintln!("weir: deleted topic {:?}", a.name);
    }
    Ok(())
}

pub async fn list(g: &Global, a: ClientPropsArgs) -> Result<(), CliError> {
    let names = admin(g, &a)?.list_topics().await?;
    let mut out = Vec::new();
    for n in names {
        out.extend_from_slice(n.as_bytes());
        out.push(b'\n');
    }
    print(&out)
}

/// kcat -L style listing.
pub async fn metadata(g: &Global, a: MetadataArgs) -> Result<(), CliError> {
    let md = admin(g, &a.client)?.metadata().await?;
    let mut s = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        s,
        "Metadata for {} (from {}):",
        a.topic
            .as_deref()
            .map_or("all topics".to_string(), |t| format!("topic {t:?}")),
        g.brokers
    );
    let mut brokers: Vec<_> = md.brokers.iter().collect();
    brokers.sort();
    let _ = writeln!(s, " {} brokers:", brokers.len());
    for (id, addr) in brokers {
        let ctl = if *id == md.controller_id {
            " (controller)"
        } else {
            ""
        };
        let _ = writeln!(s, "  broker {id} at {addr}{ctl}");
    }
    let mut topics: Vec<_> = md
        .topics
        .values()
        .filter(|t| a.topic.as_deref().is_none_or(|n| n == t.name))
        .collect();
    topics.sort_by(|x, y| x.name.cmp(&y.name));
    let mut errors: Vec<_> = md
        .topic_errors
        .iter()
        .filter(|(n, _)| a.topic.as_deref().is_none_or(|t| t == n.as_str()))
        .collect();
    errors.sort_by(|x, y| x.0.cmp(y.0));
    if let Some(t) = &a.topic {
        if topics.is_empty() && errors.is_empty() {
            return Err(CliError::Failed(format!("unknown topic {t:?}")));
        }
    }
    let _ = writeln!(s, " {} topics:", topics.len() + errors.len());
    for t in topics {
        let _ = writeln!(s, "  topic {:?} with {} partitions:", t.name, t.partitions.len());
        for p in &t.partitions {
            let _ = write!(
                s,
                "    partition {}, leader {}, leader epoch {}",
                p.id, p.leader, p.leader_epoch
            );
            if let Some(e) = p.error {
                let _ = write!(s, ", error {e:?}");
            }
            s.push('\n');
        }
    }
    for (name, e) in errors {
        let _ = writeln!(s, "  topic {name:?} error: {e:?}");
    }
    print(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_compact_keeps_key_order_and_escapes_strings() {
        let doc = serde_json::json!({"b": 1, "a": [null, "q\"\\\n\u{1}é"], "c": {}});
        assert_eq!(
            json_line(&doc),
            "{\"b\":1,\"a\":[null,\"q\\\"\\\\\\n\\u0001é\"],\"c\":{}}\n"
        );
    }
}
