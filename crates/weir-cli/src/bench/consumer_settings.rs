//! The consumer settings the consuming load tests share: where to start, fetch settings, buffers, `-X`.

use clap::{Args, ValueEnum};
use weir::consumer::StartOffset;

use crate::buffer_flags::BufferFlags;
use crate::util::{apply_named, apply_props, CliError};

/// Where partitions without a committed offset start.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The first record of each partition.
    Earliest,
    /// The end of each partition: only records produced from now on.
    Latest,
}

impl StartAt {
    /// As a start offset for `assign`.
    pub fn offset(self) -> StartOffset {
        match self {
            StartAt::Earliest => StartOffset::Earliest,
            StartAt::Latest => StartOffset::Latest,
        }
    }

    /// As `auto.offset.reset` for a group.
    pub fn reset(self) -> &'static str {
        match self {
            StartAt::Earliest => "earliest",
            StartAt::Latest => "latest",
        }
    }
}

/// Fetch and buffer settings, and any other consumer property.
#[derive(Args, Debug, Clone)]
pub struct ConsumerSettings {
    /// fetch.max.wait.ms: longest time the broker holds a fetch waiting for fetch.min.bytes (default 500)
    #[arg(long = "fetch-max-wait-ms", value_name = "MS")]
    pub fetch_max_wait_ms: Option<u64>,

    /// fetch.min.bytes: bytes the broker gathers before answering a fetch (default 1)
    #[arg(long = "fetch-min-bytes", value_name = "BYTES")]
    pub fetch_min_bytes: Option<u64>,

    #[command(flatten)]
    pub buffers: BufferFlags,

    /// Any other consumer property (Java / librdkafka name), e.g. -X fetch.max.bytes=1048576 (repeatable)
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub props: Vec<String>,
}

impl ConsumerSettings {
    /// Applies `-X`, then the named options over them, with `set` (a consumer's or a group's).
    pub fn apply(&self, mut set: impl FnMut(&str, &str) -> weir::Result<()>) -> Result<(), CliError> {
        apply_props(&self.props, &mut set)?;
        let named = [
            ("--fetch-max-wait-ms", "fetch.max.wait.ms", self.fetch_max_wait_ms),
            ("--fetch-min-bytes", "fetch.min.bytes", self.fetch_min_bytes),
        ];
        apply_named(&named, &mut set)?;
        self.buffers.apply(set)
    }
}
