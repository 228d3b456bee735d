//! `weir bench`: load tests of weir against the user's own cluster, to compare clients on one's own workload.
//! One file per subcommand (`produce`, `consume`, `latency`, `pause_resume`), and one per concept they share:
//! the run's length and warm-up, the topic, the payloads, the consumer settings, the resource usage and the
//! report.

mod consume;
mod consumer_settings;
mod interrupt;
mod latency;
mod pause_resume;
mod payload;
mod produce;
mod report;
mod resource_usage;
mod run_length;
mod topic;

use clap::Subcommand;

use crate::util::CliError;
use crate::Global;

/// What `weir bench --help` says after the options: how runs are measured and the JSON fields.
pub const AFTER_HELP: &str = "\
Every run reports, over its measured part (after the warm-up): records, records/s, MB/s of payload (key and
value bytes, 1 MB = 10^6 bytes), wall time, CPU time (user + system of the whole process, getrusage) and peak
RSS, plus the subcommand's own figures: a table on stdout, or with --json one JSON object on one line.
A progress bar is shown on stderr when it is a terminal (never with -q).

JSON fields of every subcommand:
  command          produce | consume | latency | pause-resume
  records          records counted in the measured part
  records_per_sec  records / wall_s
  mb_per_sec       payload_bytes / wall_s / 10^6
  payload_bytes    key and value bytes of those records
  wall_s           seconds from the end of the warm-up to the end of the run
  cpu_s            cpu_user_s + cpu_sys_s over the same span
  cpu_user_s, cpu_sys_s
  peak_rss_bytes   the process's peak resident set size (ru_maxrss)
  warmup_records, warmup_s   what the warm-up took
  interrupted      true when SIGINT or SIGTERM ended the run early
produce: failed, partitions, record_size, key_size, compression, acks, batches, produce_requests, retries
consume: partitions, group (null without --group), fetches, bytes_fetched, backpressure_pauses
latency: rate, duration_s, partitions, record_size, sent (measured records sent), acked, failed, missing, foreign,
  e2e_p50_us e2e_p90_us e2e_p99_us e2e_p99_9_us e2e_max_us (send -> receive, microseconds),
  ack_p50_us ack_p90_us ack_p99_us ack_p99_9_us ack_max_us (send -> acknowledgement)
pause-resume: pauses, resumes, pauses_per_sec, resumes_per_sec, peak_buffered, order_violations,
  processed_total, partitions, workers, app_buffer, resume_below, work_rounds, backpressure_pauses

Ctrl-C (SIGINT) or SIGTERM stops a run early: it reports what it measured until then (interrupted: true)
and exits 0 if nothing failed.

Exit status: 0 when every record was delivered as expected; 1 when a record failed or went missing, records
were out of order, or the topic is missing; 2 for invalid arguments. The figures are printed in every case
where the run got as far as measuring.

Examples:
  weir bench produce -t bench --create -P 6 --records 1000000 --record-size 512 -z lz4 --linger-ms 10
  weir bench consume -t bench --records 1000000 --start earliest --json
  weir bench latency -t bench-lat --create --rate 2000 --duration 30s --acks all
  weir bench pause-resume -t bench --duration 20s --workers 8 --app-buffer 500 --resume-below 250";

/// `weir bench` subcommands.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Produce records of a given size as fast as the cluster acknowledges them
    #[command(after_help = AFTER_HELP)]
    Produce(produce::ProduceBenchArgs),
    /// Consume a topic as fast as possible, from assigned partitions or as a group member
    #[command(after_help = AFTER_HELP)]
    Consume(consume::ConsumeBenchArgs),
    /// Produce at a fixed rate while reading back in the same process: end-to-end and produce latency
    /// percentiles, measured from each record's scheduled send time
    #[command(after_help = AFTER_HELP)]
    Latency(latency::LatencyArgs),
    /// Consume with bounded application buffers per partition drained by worker threads: pause a partition
    /// when its buffer is full, resume it when drained; checks that offsets only increase
    #[command(name = "pause-resume", after_help = AFTER_HELP)]
    PauseResume(pause_resume::PauseResumeArgs),
}

/// Runs one `weir bench` subcommand.
pub async fn run(g: &Global, c: BenchCommand) -> Result<(), CliError> {
    match c {
        BenchCommand::Produce(a) => produce::run(g, a).await,
        BenchCommand::Consume(a) => consume::run(g, a).await,
        BenchCommand::Latency(a) => latency::run(g, a).await,
        BenchCommand::PauseResume(a) => pause_resume::run(g, a).await,
    }
}
