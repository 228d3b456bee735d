//! `weir`: a kcat-style command line for Kafka, built on the weir client.

mod acl_cmds;
mod admin_cmds;
mod bench;
mod buffer_flags;
mod config_cmds;
mod consume;
mod format;
mod group_consume;
mod groups;
mod produce;
mod stats_view;
mod topic_cmds;
mod user_cmds;
mod util;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use buffer_flags::BufferFlags;
use util::CliError;

const AFTER_HELP: &str = "\
Brokers: -b, else $WEIR_BROKERS, else 127.0.0.1:9092.
Logging: WEIR_LOG sets the tracing filter on stderr (default \"warn\"), e.g. WEIR_LOG=weir=debug.
Security: every command takes the Java client's and librdkafka's settings with -X, e.g.
  -X security.protocol=SASL_SSL -X ssl.ca.location=ca.pem -X sasl.mechanism=SCRAM-SHA-512
  -X sasl.username=app -X sasl.password=... (or -X sasl.jaas.config=...; OAUTHBEARER: -X
  sasl.oauthbearer.token.endpoint.url=... -X sasl.oauthbearer.client.id=... -X sasl.oauthbearer.client.secret=...)
Exit status: 0 on success, 1 when the operation failed, 2 for invalid arguments or configuration.";

#[derive(Parser, Debug)]
#[command(
    name = "weir",
    version,
    about = "A kcat-style command line for Apache Kafka, built on the pure-Rust weir client.",
    after_help = AFTER_HELP
)]
struct Cli {
    /// Bootstrap brokers, comma-separated host:port list [default: $WEIR_BROKERS or 127.0.0.1:9092]
    #[arg(short = 'b', long = "brokers", global = true, value_name = "BROKERS")]
    brokers: Option<String>,

    /// Quiet: never show a progress bar or status messages on stderr (errors are still printed)
    #[arg(short = 'q', long = "quiet", global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Produce one record per line of stdin (like kcat -P)
    #[command(after_help = produce::AFTER_HELP)]
    Produce(ProduceArgs),
    /// Consume records and print them with a kcat-style format (like kcat -C, or kcat -G with -G)
    #[command(after_help = consume::AFTER_HELP)]
    Consume(ConsumeArgs),
    /// Create, delete, list, describe or alter topics, add partitions (like kafka-topics.sh)
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// Show brokers, topics, partitions and leaders (like kcat -L)
    Metadata(MetadataArgs),
    /// List, create or delete ACLs (like kafka-acls.sh)
    #[command(subcommand)]
    Acls(acl_cmds::AclsCommand),
    /// List, set or delete users' SCRAM credentials (like kafka-configs.sh --entity-type users)
    #[command(subcommand)]
    Users(user_cmds::UsersCommand),
    /// Show or change the configuration of topics and brokers (like kafka-configs.sh)
    #[command(subcommand)]
    Configs(config_cmds::ConfigsCommand),
    /// List, describe or delete consumer groups and reset their offsets (like kafka-consumer-groups.sh)
    #[command(subcommand)]
    Groups(groups::GroupsCommand),
    /// Load tests against your cluster: produce and consume throughput, end-to-end latency, pause/resume
    #[command(subcommand, after_help = bench::AFTER_HELP)]
    Bench(bench::BenchCommand),
}

/// Arguments of `weir produce`.
#[derive(Args, Debug)]
pub struct ProduceArgs {
    /// Topic to produce to
    #[arg(short = 't', long = "topic")]
    pub topic: String,

    /// Partition to produce to; without it (or with -1) the partitioner chooses
    /// (murmur2 of the key; sticky for null keys)
    #[arg(short = 'p', long = "partition", allow_negative_numbers = true)]
    pub partition: Option<i32>,

    /// Key delimiter: the text before the first DELIM of a line is the key, the rest the value; a line
    /// without DELIM is sent with a null key and the whole line as value. Escapes \t \n \r \\ are understood
    #[arg(short = 'K', long = "key-delimiter", value_name = "DELIM")]
    pub key_delimiter: Option<String>,

    /// Compression codec: none, gzip, snappy, lz4 or zstd (overrides -X compression.type)
    #[arg(short = 'z', long = "compression", value_name = "CODEC")]
    pub compression: Option<String>,

    /// Header added to every record, as NAME=VALUE (repeatable)
    #[arg(short = 'H', long = "header", value_name = "NAME=VALUE")]
    pub headers: Vec<String>,

    /// Producer property (Java / librdkafka name), e.g. -X linger.ms=10 -X acks=1 (repeatable)
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub props: Vec<String>,

    /// With -X transactional.id=ID: one transaction per N records (the default, 0, makes the whole input one
    /// transaction)
    #[arg(long = "txn-records", value_name = "N", default_value_t = 0)]
    pub txn_records: u64,
}

/// Arguments of `weir consume`.
#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// Topic to consume (without -G)
    #[arg(short = 't', long = "topic", required_unless_present = "group")]
    pub topic: Option<String>,

    /// Balanced consumer group mode (like kcat -G): join GROUP and consume the TOPICs given as arguments;
    /// the group's members share their partitions, offsets are committed to the group
    #[arg(short = 'G', long = "group", value_name = "GROUP", requires = "topics")]
    pub group: Option<String>,

    /// Topics to subscribe to with -G; a topic starting with ^ is a regular expression (as kcat), matched
    /// against the cluster's topics, including topics created later
    #[arg(value_name = "TOPIC", requires = "group")]
    pub topics: Vec<String>,

    /// Partition to consume; without it all partitions of the topic are consumed (not with -G)
    #[arg(short = 'p', long = "partition", conflicts_with = "group")]
    pub partition: Option<i32>,

    /// Start offset: beginning (the default), end, OFFSET (absolute), -N (the last N records of each
    /// partition) or s@TIMESTAMP (first record at or after TIMESTAMP ms since the epoch). With -G only
    /// beginning or end, for partitions without a committed offset (auto.offset.reset), or stored
    #[arg(short = 'o', long = "offset", allow_hyphen_values = true)]
    pub offset: Option<String>,

    /// Exit once every partition has been read to its end, fixed per partition when consuming starts (see
    /// below); records past that end are not printed, and partitions empty at startup are done at once.
    /// With -G: exit once every partition assigned to this member has reached its end (as kcat)
    #[arg(short = 'e', long = "exit")]
    pub exit_at_end: bool,

    /// Exit after printing CNT records
    #[arg(short = 'c', long = "count", value_name = "CNT")]
    pub count: Option<u64>,

    /// Output format, kcat tokens: %t topic, %p partition, %o offset, %k key, %s value,
    /// %T timestamp (ms), %h headers (k=v,k2=v2), %K key length, %S value length (-1 for null), %%;
    /// escapes \n \t \r \\. Null keys and values print as nothing. Default: "%s\n", or "%k<DELIM>%s\n" with -K
    #[arg(short = 'f', long = "format", value_name = "FORMAT")]
    pub format: Option<String>,

    /// Key delimiter for the default format: print "%k<DELIM>%s\n" (ignored with -f)
    #[arg(short = 'K', long = "key-delimiter", value_name = "DELIM")]
    pub key_delimiter: Option<String>,

    /// Consumer property (Java / librdkafka name), e.g. -X fetch.wait.max.ms=10 (repeatable)
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub props: Vec<String>,

    #[command(flatten)]
    pub buffers: BufferFlags,

    /// Show the consumer's partitions on stderr: position, high watermark, lag, buffered bytes, buffer limit,
    /// drain rate, paused by the application or by backpressure. A live table refreshed every
    /// second when stderr is a terminal (instead of the progress line; best with stdout redirected), else one
    /// table when consuming ends
    #[arg(long = "stats")]
    pub stats: bool,
}

#[derive(Subcommand, Debug)]
enum TopicsCommand {
    /// Create a topic
    Create(TopicCreateArgs),
    /// Delete a topic
    Delete(TopicNameArgs),
    /// List topic names, one per line, sorted
    List(ClientPropsArgs),
    /// Describe topics: partitions, leaders, replicas, in-sync replicas, configs (like kafka-topics.sh --describe)
    Describe(topic_cmds::TopicDescribeArgs),
    /// Change a topic's configuration (like kafka-configs.sh --alter --entity-type topics)
    Alter(topic_cmds::TopicAlterArgs),
    /// Grow a topic to N partitions in all (like kafka-topics.sh --alter --partitions N)
    AddPartitions(topic_cmds::AddPartitionsArgs),
}

/// Arguments of `weir topics create`.
#[derive(Args, Debug)]
pub struct TopicCreateArgs {
    /// Topic name
    pub name: String,
    /// Number of partitions
    #[arg(short = 'P', long = "partitions", default_value_t = 1)]
    pub partitions: i32,
    /// Replication factor
    #[arg(short = 'R', long = "replication-factor", default_value_t = 1)]
    pub replication_factor: i16,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

/// Arguments of `weir topics delete`.
#[derive(Args, Debug)]
pub struct TopicNameArgs {
    /// Topic name
    pub name: String,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

/// Client properties for admin commands.
#[derive(Args, Debug)]
pub struct ClientPropsArgs {
    /// Client property (Java / librdkafka name), e.g. -X request.timeout.ms=5000 (repeatable)
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub props: Vec<String>,
}

/// Arguments of `weir metadata`.
#[derive(Args, Debug)]
pub struct MetadataArgs {
    /// Only show this topic
    #[arg(short = 't', long = "topic")]
    pub topic: Option<String>,
    #[command(flatten)]
    pub client: ClientPropsArgs,
}

/// Settings every command shares.
pub struct Global {
    pub brokers: String,
    pub quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let global = Global {
        brokers: util::resolve_brokers(cli.brokers),
        quiet: cli.quiet,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return util::report(CliError::Failed(format!("cannot start the tokio runtime: {e}"))),
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Produce(a) => produce::run(&global, a).await,
            Command::Consume(a) => consume::run(&global, a).await,
            Command::Topics(TopicsCommand::Create(a)) => admin_cmds::create(&global, a).await,
            Command::Topics(TopicsCommand::Delete(a)) => admin_cmds::delete(&global, a).await,
            Command::Topics(TopicsCommand::List(a)) => admin_cmds::list(&global, a).await,
            Command::Topics(TopicsCommand::Describe(a)) => topic_cmds::describe(&global, a).await,
            Command::Topics(TopicsCommand::Alter(a)) => topic_cmds::alter(&global, a).await,
            Command::Topics(TopicsCommand::AddPartitions(a)) => topic_cmds::add_partitions(&global, a).await,
            Command::Metadata(a) => admin_cmds::metadata(&global, a).await,
            Command::Acls(c) => acl_cmds::run(&global, c).await,
            Command::Users(c) => user_cmds::run(&global, c).await,
            Command::Configs(c) => config_cmds::run(&global, c).await,
            Command::Groups(c) => groups::run(&global, c).await,
            Command::Bench(c) => bench::run(&global, c).await,
        }
    });
    // Background tasks (sender, fetchers) are not waited for: every command closes its client itself.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => util::report(e),
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
