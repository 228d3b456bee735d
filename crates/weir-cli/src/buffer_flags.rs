//! The consumer's buffer options, shared by `weir consume` and the consuming `weir bench` commands.

use clap::Args;

use crate::util::{apply_named, CliError};

/// How much the consumer buffers: per partition, how it is sized, and in all.
#[derive(Args, Debug, Clone, Default)]
pub struct BufferFlags {
    /// Per-partition buffer high watermark in bytes (weir.partition.buffer.bytes, default 8 MiB): the most a
    /// partition buffers; fetching it resumes when its buffer drains below half of its limit
    #[arg(long = "partition-buffer", value_name = "BYTES")]
    pub partition_buffer: Option<u64>,

    /// Rate-sized buffers (weir.buffer.target.ms, default 1000): each partition's limit is what this consumer
    /// drains from it in this many ms, within the partition buffer and the budget; 0: every partition gets its
    /// fair share of the budget
    #[arg(long = "buffer-target-ms", value_name = "MS")]
    pub buffer_target_ms: Option<u64>,

    /// Upper bound on bytes buffered by the consumer across all partitions (weir.memory.budget.bytes,
    /// default 64 MiB)
    #[arg(long = "memory-budget", value_name = "BYTES")]
    pub memory_budget: Option<u64>,
}

impl BufferFlags {
    /// Sets the options given with `set` (a consumer's or a group's).
    pub fn apply(&self, set: impl FnMut(&str, &str) -> weir::Result<()>) -> Result<(), CliError> {
        let named = [
            (
                "--partition-buffer",
                "weir.partition.buffer.bytes",
                self.partition_buffer,
            ),
            (
                "--buffer-target-ms",
                "weir.buffer.target.ms",
                self.buffer_target_ms,
            ),
            ("--memory-budget", "weir.memory.budget.bytes", self.memory_budget),
        ];
        apply_named(&named, set)
    }
}
