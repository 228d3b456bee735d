//! Record batch v2 (magic 2) codec.
//!
//! - [`batches`] lazily splits the `records` bytes of one partition in a Fetch response into [`Batch`]es
//!   without copying; [`Batch::records`] iterates the records of one batch (zero-copy when uncompressed,
//!   one bounded decompression into a single buffer otherwise).
//! - [`BatchBuilder`] appends records one at a time into one growing buffer and seals them into a batch
//!   (compression, header, length, CRC-32C).
//!
//! Everything read from the wire is untrusted: lengths, counts and varints are bounded by the bytes actually
//! present before anything is allocated, arithmetic on wire values wraps instead of overflowing, and no input
//! makes the decoder panic or loop without consuming bytes.
//!
//! Layout of a batch (all integers big-endian):
//!
//! ```text
//! baseOffset i64 | batchLength i32 | partitionLeaderEpoch i32 | magic i8 | crc u32 |
//! attributes i16 | lastOffsetDelta i32 | baseTimestamp i64 | maxTimestamp i64 |
//! producerId i64 | producerEpoch i16 | baseSequence i32 | recordCount i32 | records...
//! ```
//!
//! The CRC-32C covers everything from `attributes` to the end of the batch.

mod builder;
mod codec;
mod decode;
mod varint;

use std::fmt;
use std::str::FromStr;

/// Gives back the capacity of a buffer that is about to live on as `Bytes` (which keeps the whole allocation)
/// when more than an eighth of it is unused. Shrinking an allocation in place is cheap.
fn release_slack(buf: &mut Vec<u8>) {
    if buf.capacity() - buf.len() > buf.len() / 8 {
        buf.shrink_to_fit();
    }
}

pub use builder::{restamp, BatchBuilder, BatchOptions, ProducerIds};
pub use decode::{batches, Batch, Batches, Header, Headers, HeadersIter, Record, RecordRef, Records};

/// Size of the fixed v2 batch header, from `baseOffset` up to and including `recordCount`.
pub const BATCH_HEADER_LEN: usize = 61;
/// Size of the `baseOffset` + `batchLength` prefix that precedes every batch (Kafka's `LOG_OVERHEAD`).
pub const LOG_OVERHEAD: usize = 12;
/// The only batch format this codec reads and writes.
pub const MAGIC_V2: i8 = 2;

/// Compression codec of a batch (attribute bits 0..=2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (codec 0).
    #[default]
    None,
    /// gzip (codec 1).
    Gzip,
    /// Snappy with the xerial (snappy-java) framing when writing; xerial or raw when reading (codec 2).
    Snappy,
    /// LZ4 frame format as KIP-57 specifies (codec 3).
    Lz4,
    /// Zstandard (codec 4).
    Zstd,
}

impl Compression {
    /// All codecs, in codec-id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec in bits 0..=2 of batch `attributes`; `None` for the unassigned ids 5..=7.
    pub fn from_attributes(attributes: i16) -> Option<Compression> {
        Self::from_id((attributes & 0x07) as u8)
    }

    /// The codec with this numeric id (0..=4).
    pub fn from_id(id: u8) -> Option<Compression> {
        match id {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The numeric codec id (0..=4).
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec's bits within batch `attributes`.
    pub fn attribute_bits(self) -> i16 {
        i16::from(self.id())
    }

    /// The name Kafka configuration uses (`none`, `gzip`, `snappy`, `lz4`, `zstd`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A string that names no compression codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression codec {0:?} (expected none, gzip, snappy, lz4 or zstd)")]
pub struct ParseCompressionError(pub String);

impl FromStr for Compression {
    type Err = ParseCompressionError;

    /// Parses `none`, `gzip`, `snappy`, `lz4` or `zstd` (ASCII case-insensitive, surrounding whitespace ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Compression::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| ParseCompressionError(s.to_owned()))
    }
}

/// Meaning of the timestamps of a batch (attribute bit 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Timestamps were set by the producer.
    #[default]
    CreateTime,
    /// The broker overwrote timestamps with the append time; every record's timestamp is the batch's
    /// `max_timestamp`.
    LogAppendTime,
}

/// Type of a control record (the `type` field of its key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlType {
    /// A transaction was aborted (type 0).
    Abort,
    /// A transaction was committed (type 1).
    Commit,
    /// Any other control record type (KRaft leader change, snapshot markers, ...).
    Other(i16),
}

/// Errors from the record batch codec.
///
/// Every error that concerns a batch names the batch's base offset so that the caller can add the topic and
/// partition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The bytes do not form a valid batch or record.
    #[error("corrupt record batch at base offset {offset}: {reason}")]
    Corrupt {
        /// Base offset of the batch in which the corruption was found (as read from the wire).
        offset: i64,
        /// What was wrong.
        reason: &'static str,
    },
    /// The CRC-32C stored in the batch does not match its contents.
    #[error("CRC mismatch in record batch at base offset {base_offset}: stored {expected:#010x}, computed {actual:#010x}")]
    CrcMismatch {
        /// Base offset of the batch.
        base_offset: i64,
        /// The CRC stored in the batch.
        expected: u32,
        /// The CRC computed over the batch.
        actual: u32,
    },
    /// The batch is not a v2 batch (legacy message sets, magic 0 and 1, are not supported).
    #[error("unsupported record batch magic {magic} at base offset {base_offset}")]
    UnsupportedMagic {
        /// Base offset of the batch.
        base_offset: i64,
        /// The magic byte found.
        magic: i8,
    },
    /// The batch's attributes name a codec id that does not exist (5..=7).
    #[error("unknown compression codec {codec} in record batch at base offset {base_offset}")]
    UnknownCompression {
        /// Base offset of the batch.
        base_offset: i64,
        /// The codec id found.
        codec: u8,
    },
    /// Decompression failed: the compressed data is corrupt.
    #[error("cannot decompress {codec} record batch at base offset {base_offset}: {reason}")]
    Decompress {
        /// Base offset of the batch.
        base_offset: i64,
        /// The batch's codec.
        codec: Compression,
        /// What the decompressor reported.
        reason: String,
    },
    /// Decompressing the batch would produce more than the allowed number of bytes.
    #[error("record batch at base offset {base_offset} decompresses to more than {limit} bytes")]
    DecompressedTooLarge {
        /// Base offset of the batch.
        base_offset: i64,
        /// The limit that was exceeded.
        limit: usize,
    },
    /// Compression failed while sealing a batch.
    #[error("cannot compress record batch with {codec}: {reason}")]
    Compress {
        /// The codec used.
        codec: Compression,
        /// What the compressor reported.
        reason: String,
    },
    /// A sealed batch would exceed the 2 GiB limit of the `batchLength` field (or a record count overflows `i32`).
    #[error("record batch too large to encode ({size} bytes)")]
    BatchTooLarge {
        /// Size the batch would have had.
        size: usize,
    },
    /// [`BatchBuilder::seal`] was called on a builder holding no records.
    #[error("cannot seal an empty record batch")]
    EmptyBatch,
}
