//! The topic a load test uses: it must exist, or (`--create`) it is created and waited for until every
//! partition has a leader.

use std::time::{Duration, Instant};

use clap::Args;
use weir::error::KafkaCode;
use weir::Admin;

use crate::util::CliError;

/// How long a new topic may take until every partition has a leader.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between two looks at the metadata of a new topic.
const CREATE_POLL: Duration = Duration::from_millis(100);

/// `--topic`, and how to create it when it does not exist.
#[derive(Args, Debug, Clone)]
pub struct TopicArgs {
    /// Topic to write to; it must exist unless --create is given
    #[arg(short = 't', long = "topic")]
    pub topic: String,

    /// Create the topic (with --partitions and --replication-factor) if it does not exist
    #[arg(long = "create")]
    pub create: bool,

    /// Partitions of a topic created with --create
    #[arg(short = 'P', long = "partitions", default_value_t = 1, requires = "create",
          value_parser = clap::value_parser!(i32).range(1..))]
    pub partitions: i32,

    /// Replication factor of a topic created with --create
    #[arg(short = 'R', long = "replication-factor", default_value_t = 1, requires = "create",
          value_parser = clap::value_parser!(i16).range(1..))]
    pub replication_factor: i16,
}

/// The partition count of `topic`; an error that says so if the cluster does not have it.
pub async fn existing_partitions(admin: &Admin, topic: &str) -> Result<i32, CliError> {
    partitions_with_leaders(admin, topic).await?.ok_or_else(|| {
        CliError::Failed(format!(
            "topic {topic:?} does not exist (or has a partition without a leader)"
        ))
    })
}

/// The partition count of the topic, created first if `--create` asks and it does not exist.
pub async fn ensure(admin: &Admin, t: &TopicArgs) -> Result<i32, CliError> {
    if let Some(n) = partitions_with_leaders(admin, &t.topic).await? {
        return Ok(n);
    }
    if !t.create {
        return Err(CliError::Failed(format!(
            "topic {:?} does not exist (give --create to create it, with --partitions N and \
             --replication-factor R)",
            t.topic
        )));
    }
    match admin
        .create_topic(&t.topic, t.partitions, t.replication_factor)
        .await
    {
        Ok(()) => {}
        // Created meanwhile by someone else: use it.
        Err(e) if e.kafka_code() == Some(KafkaCode::TopicAlreadyExists) => {}
        Err(e) => {
            return Err(CliError::Failed(format!(
                "cannot create topic {:?}: {e}",
                t.topic
            )))
        }
    }
    let deadline = Instant::now() + CREATE_TIMEOUT;
    loop {
        if let Some(n) = partitions_with_leaders(admin, &t.topic).await? {
            return Ok(n);
        }
        if Instant::now() >= deadline {
            return Err(CliError::Failed(format!(
                "topic {:?} was created but its partitions have no leader after {CREATE_TIMEOUT:?}",
                t.topic
            )));
        }
        tokio::time::sleep(CREATE_POLL).await;
    }
}

/// The topic's partition count if it exists and every partition has a leader.
async fn partitions_with_leaders(admin: &Admin, topic: &str) -> Result<Option<i32>, CliError> {
    let md = admin.metadata().await?;
    Ok(md.topic(topic).and_then(|t| {
        let all_led = t.partition_count() > 0 && (0..t.partition_count()).all(|p| t.leader(p).is_some());
        all_led.then(|| t.partition_count())
    }))
}
