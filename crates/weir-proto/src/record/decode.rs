//! Lazy, zero-copy decoding of record batches, records and headers.

use std::fmt;
use std::iter::FusedIterator;

use bytes::Bytes;

use super::codec;
use super::varint::{read_varint, read_varlong};
use super::{Compression, ControlType, RecordError, TimestampType, BATCH_HEADER_LEN, LOG_OVERHEAD, MAGIC_V2};

// Field offsets within a batch (from the start of `baseOffset`).
const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const PARTITION_LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORD_COUNT: usize = 57;

/// Smallest possible encoded record: length, attributes, timestamp delta, offset delta, key length,
/// value length and header count, one byte each.
const MIN_RECORD_LEN: usize = 7;

const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;
const DELETE_HORIZON_BIT: i16 = 1 << 6;

#[inline(always)]
fn be<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

/// Lazily splits the `records` bytes of one partition in a Fetch response into batches.
///
/// The iterator yields each complete batch as a zero-copy slice of `records`. It ends quietly at an incomplete
/// trailing batch (brokers cut the last batch at the fetch's max bytes) and then reports
/// [`Batches::is_truncated`]. A batch whose magic is not 2 yields [`RecordError::UnsupportedMagic`], a length
/// smaller than the v2 header yields [`RecordError::Corrupt`]; iteration stops after any error.
///
/// CRCs are not checked here: call [`Batch::verify_crc`] (cheap, hardware CRC-32C) where integrity matters.
pub fn batches(records: Bytes) -> Batches {
    Batches {
        buf: records,
        pos: 0,
        truncated: false,
        done: false,
    }
}

/// Iterator over the batches of a `records` blob; see [`batches`].
pub struct Batches {
    buf: Bytes,
    pos: usize,
    truncated: bool,
    done: bool,
}

impl Batches {
    /// True once iteration stopped at an incomplete trailing batch. That is normal (the broker cuts the last
    /// batch at the fetch's max bytes) and not an error: fetch again from the next offset.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Bytes of the input not yet consumed as complete batches.
    pub fn remaining_bytes(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn fail(&mut self, e: RecordError) -> Option<Result<Batch, RecordError>> {
        self.done = true;
        Some(Err(e))
    }
}

impl fmt::Debug for Batches {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batches")
            .field("len", &self.buf.len())
            .field("pos", &self.pos)
            .field("truncated", &self.truncated)
            .field("done", &self.done)
            .finish()
    }
}

impl Iterator for Batches {
    type Item = Result<Batch, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = &self.buf[self.pos..];
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        if rest.len() < LOG_OVERHEAD {
            self.truncated = true;
            self.done = true;
            return None;
        }
        let base_offset = i64::from_be_bytes(be(rest, BASE_OFFSET));
        let length = i32::from_be_bytes(be(rest, BATCH_LENGTH));
        if length < 0 {
            return self.fail(RecordError::Corrupt {
                offset: base_offset,
                reason: "negative batch length",
            });
        }
        // Legacy message sets (magic 0 and 1) keep their magic byte at the same position.
        if let Some(&magic) = rest.get(MAGIC) {
            if magic as i8 != MAGIC_V2 {
                return self.fail(RecordError::UnsupportedMagic {
                    base_offset,
                    magic: magic as i8,
                });
            }
        }
        let length = length as usize;
        if length < BATCH_HEADER_LEN - LOG_OVERHEAD {
            return self.fail(RecordError::Corrupt {
                offset: base_offset,
                reason: "batch length smaller than the v2 batch header",
            });
        }
        let total = LOG_OVERHEAD + length;
        if rest.len() < total {
            self.truncated = true;
            self.done = true;
            return None;
        }
        let batch = Batch {
            buf: self.buf.slice(self.pos..self.pos + total),
        };
        self.pos += total;
        Some(Ok(batch))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            (0, Some((self.buf.len() - self.pos) / BATCH_HEADER_LEN + 1))
        }
    }
}

impl FusedIterator for Batches {}

/// One v2 record batch: a zero-copy slice of the fetched bytes, at least [`BATCH_HEADER_LEN`] long.
///
/// Header accessors are plain big-endian reads; nothing is validated until [`Batch::verify_crc`] or
/// [`Batch::records`].
#[derive(Clone)]
pub struct Batch {
    buf: Bytes,
}

impl Batch {
    /// Offset of the first record of the batch.
    pub fn base_offset(&self) -> i64 {
        i64::from_be_bytes(be(&self.buf, BASE_OFFSET))
    }

    /// Offset of the last record of the batch (`base_offset + last_offset_delta`, wrapping on bad input).
    pub fn last_offset(&self) -> i64 {
        self.base_offset()
            .wrapping_add(i64::from(self.last_offset_delta()))
    }

    /// Offset following the batch (`last_offset + 1`): where the next fetch starts.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// Total bytes of the batch, including the 12-byte offset and length prefix.
    pub fn batch_len(&self) -> usize {
        self.buf.len()
    }

    /// The partition leader epoch stamped by the broker (-1 from producers).
    pub fn partition_leader_epoch(&self) -> i32 {
        i32::from_be_bytes(be(&self.buf, PARTITION_LEADER_EPOCH))
    }

    /// The magic byte (always 2 for a batch yielded by [`batches`]).
    pub fn magic(&self) -> i8 {
        self.buf[MAGIC] as i8
    }

    /// The CRC-32C stored in the batch.
    pub fn crc(&self) -> u32 {
        u32::from_be_bytes(be(&self.buf, CRC))
    }

    /// The raw attributes field.
    pub fn attributes(&self) -> i16 {
        i16::from_be_bytes(be(&self.buf, ATTRIBUTES))
    }

    /// The batch's codec; [`RecordError::UnknownCompression`] for codec ids 5..=7.
    pub fn compression(&self) -> Result<Compression, RecordError> {
        let attributes = self.attributes();
        Compression::from_attributes(attributes).ok_or(RecordError::UnknownCompression {
            base_offset: self.base_offset(),
            codec: (attributes & 0x07) as u8,
        })
    }

    /// Whether record timestamps are create times or the broker's log append time.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch holds control records (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }

    /// Whether the log cleaner set a delete horizon (attribute bit 6); `base_timestamp` then holds it.
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes() & DELETE_HORIZON_BIT != 0
    }

    /// Offset delta of the last record.
    pub fn last_offset_delta(&self) -> i32 {
        i32::from_be_bytes(be(&self.buf, LAST_OFFSET_DELTA))
    }

    /// Timestamp of the first record (base of the records' timestamp deltas).
    pub fn base_timestamp(&self) -> i64 {
        i64::from_be_bytes(be(&self.buf, BASE_TIMESTAMP))
    }

    /// Largest timestamp in the batch (the log append time for [`TimestampType::LogAppendTime`] batches).
    pub fn max_timestamp(&self) -> i64 {
        i64::from_be_bytes(be(&self.buf, MAX_TIMESTAMP))
    }

    /// Producer id (-1 when not idempotent).
    pub fn producer_id(&self) -> i64 {
        i64::from_be_bytes(be(&self.buf, PRODUCER_ID))
    }

    /// Producer epoch (-1 when not idempotent).
    pub fn producer_epoch(&self) -> i16 {
        i16::from_be_bytes(be(&self.buf, PRODUCER_EPOCH))
    }

    /// Sequence number of the first record (-1 when not idempotent).
    pub fn base_sequence(&self) -> i32 {
        i32::from_be_bytes(be(&self.buf, BASE_SEQUENCE))
    }

    /// Number of records the header announces (untrusted; [`Batch::records`] checks it).
    pub fn record_count(&self) -> i32 {
        i32::from_be_bytes(be(&self.buf, RECORD_COUNT))
    }

    /// The whole batch as it was on the wire, prefix included.
    pub fn as_bytes(&self) -> &Bytes {
        &self.buf
    }

    /// Size of the (possibly compressed) records section.
    pub fn records_section_len(&self) -> usize {
        self.buf.len() - BATCH_HEADER_LEN
    }

    /// Bytes the records section occupies once decompressed, when known without decompressing: the section
    /// length for uncompressed batches, `None` otherwise.
    pub fn uncompressed_len_hint(&self) -> Option<usize> {
        match self.compression() {
            Ok(Compression::None) => Some(self.records_section_len()),
            _ => None,
        }
    }

    /// Checks the stored CRC-32C against one computed over `attributes` to the end of the batch.
    pub fn verify_crc(&self) -> Result<(), RecordError> {
        let expected = self.crc();
        let actual = crc32c::crc32c(&self.buf[ATTRIBUTES..]);
        if expected == actual {
            Ok(())
        } else {
            Err(RecordError::CrcMismatch {
                base_offset: self.base_offset(),
                expected,
                actual,
            })
        }
    }

    /// Records of the batch.
    ///
    /// Uncompressed: zero-copy views into the batch (`max_decompressed` does not apply: the bytes are already in
    /// memory). Compressed: decompresses once into one `Bytes` buffer, refusing to produce more than
    /// `max_decompressed` bytes ([`RecordError::DecompressedTooLarge`]); nothing is allocated from a size the
    /// data claims.
    pub fn records(&self, max_decompressed: usize) -> Result<Records, RecordError> {
        let base_offset = self.base_offset();
        let codec = self.compression()?;
        let count = self.record_count();
        if count < 0 {
            return Err(RecordError::Corrupt {
                offset: base_offset,
                reason: "negative record count",
            });
        }
        let section = self.buf.slice(BATCH_HEADER_LEN..);
        let data = match codec {
            Compression::None => section,
            // Record positions are u32: never produce more than that, whatever the caller allows.
            c => Bytes::from(codec::decompress(
                c,
                &section,
                max_decompressed.min(u32::MAX as usize),
                base_offset,
            )?),
        };
        if data.len() > u32::MAX as usize {
            return Err(RecordError::DecompressedTooLarge {
                base_offset,
                limit: u32::MAX as usize,
            });
        }
        if count as usize > data.len() / MIN_RECORD_LEN {
            return Err(RecordError::Corrupt {
                offset: base_offset,
                reason: "record count exceeds what the records section can hold",
            });
        }
        let log_append_time = match self.timestamp_type() {
            TimestampType::LogAppendTime => Some(self.max_timestamp()),
            TimestampType::CreateTime => None,
        };
        Ok(Records {
            data,
            pos: 0,
            remaining: count as u32,
            base_offset,
            base_timestamp: self.base_timestamp(),
            log_append_time,
            done: false,
        })
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("base_offset", &self.base_offset())
            .field("batch_len", &self.batch_len())
            .field("last_offset_delta", &self.last_offset_delta())
            .field("record_count", &self.record_count())
            .field("attributes", &format_args!("{:#06x}", self.attributes()))
            .field("producer_id", &self.producer_id())
            .field("producer_epoch", &self.producer_epoch())
            .field("base_sequence", &self.base_sequence())
            .field("crc", &format_args!("{:#010x}", self.crc()))
            .finish()
    }
}

/// Iterator over the records of one batch; see [`Batch::records`].
///
/// Stops after the first error. After the announced number of records, leftover bytes are reported as
/// [`RecordError::Corrupt`], as the Java client does.
pub struct Records {
    data: Bytes,
    pos: usize,
    remaining: u32,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    done: bool,
}

impl Records {
    /// Bytes of the (decompressed) records section, for memory accounting.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    /// Records the batch header announced that have not been read yet.
    pub fn remaining(&self) -> usize {
        if self.done {
            0
        } else {
            self.remaining as usize
        }
    }

    #[cold]
    fn corrupt(&mut self, reason: &'static str) -> RecordError {
        self.done = true;
        RecordError::Corrupt {
            offset: self.base_offset,
            reason,
        }
    }

    #[inline(always)]
    fn parse(&mut self) -> Result<Parsed, &'static str> {
        let data: &[u8] = &self.data;
        let mut pos = self.pos;
        let len = read_varint(data, &mut pos)?;
        if len < 0 {
            return Err("negative record length");
        }
        let end = pos
            .checked_add(len as usize)
            .filter(|&e| e <= data.len())
            .ok_or("record length runs past the end of the records section")?;
        let rec = &data[..end];
        // Record attributes: unused.
        if pos >= end {
            return Err("record too short");
        }
        pos += 1;
        let timestamp_delta = read_varlong(rec, &mut pos)?;
        let offset_delta = read_varint(rec, &mut pos)?;
        let key = read_slice(rec, &mut pos)?;
        let value = read_slice(rec, &mut pos)?;
        let header_count = read_varint(rec, &mut pos)?;
        if header_count < 0 {
            return Err("negative header count");
        }
        // Each header takes at least two bytes (key length and value length).
        if header_count as usize > (end - pos) / 2 {
            return Err("header count exceeds the record's remaining bytes");
        }
        if header_count == 0 && pos != end {
            return Err("bytes left after the record's headers");
        }
        self.pos = end;
        Ok(Parsed {
            offset: self.base_offset.wrapping_add(i64::from(offset_delta)),
            timestamp: match self.log_append_time {
                Some(t) => t,
                None => self.base_timestamp.wrapping_add(timestamp_delta),
            },
            key: Span::from(key),
            value: Span::from(value),
            headers_start: pos as u32,
            headers_end: end as u32,
            header_count: header_count as u32,
        })
    }

    /// The next record as a borrowed view: no reference counting, no allocation. This is the fastest way to
    /// read records when keys and values are consumed in place (deserialized, copied, hashed);
    /// [`RecordRef::to_record`] turns a view into an owned [`Record`] when needed. Mixing `next_ref` and
    /// [`Iterator::next`] is fine: both advance the same cursor.
    #[inline(always)]
    pub fn next_ref(&mut self) -> Option<Result<RecordRef<'_>, RecordError>> {
        if self.done {
            return None;
        }
        if self.remaining == 0 {
            self.done = true;
            if self.pos != self.data.len() {
                return Some(Err(self.corrupt("bytes left after the last record")));
            }
            return None;
        }
        match self.parse() {
            Ok(p) => {
                self.remaining -= 1;
                Some(Ok(RecordRef {
                    data: &self.data,
                    base_offset: self.base_offset,
                    parsed: p,
                }))
            }
            Err(reason) => Some(Err(self.corrupt(reason))),
        }
    }
}

/// Positions of one parsed record within the records section (which is at most `u32::MAX` bytes long).
#[derive(Clone, Copy, Debug)]
struct Parsed {
    offset: i64,
    timestamp: i64,
    key: Span,
    value: Span,
    headers_start: u32,
    headers_end: u32,
    header_count: u32,
}

/// `start..start + len` within the records section; `len == -1` for null.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    len: i32,
}

impl Span {
    #[inline(always)]
    fn from(r: Option<(usize, usize)>) -> Span {
        match r {
            // Positions fit: the records section is at most u32::MAX bytes and lengths come from i32 varints.
            Some((a, b)) => Span {
                start: a as u32,
                len: (b - a) as i32,
            },
            None => Span { start: 0, len: -1 },
        }
    }

    #[inline(always)]
    fn get(self, data: &[u8]) -> Option<&[u8]> {
        if self.len < 0 {
            None
        } else {
            let a = self.start as usize;
            data.get(a..a + self.len as usize)
        }
    }

    #[inline(always)]
    fn slice(self, data: &Bytes) -> Option<Bytes> {
        if self.len < 0 {
            None
        } else {
            let a = self.start as usize;
            Some(data.slice(a..a + self.len as usize))
        }
    }
}

/// A record borrowed from its [`Records`] iterator; see [`Records::next_ref`].
#[derive(Clone, Copy)]
pub struct RecordRef<'a> {
    data: &'a Bytes,
    base_offset: i64,
    parsed: Parsed,
}

impl<'a> RecordRef<'a> {
    /// Absolute offset.
    #[inline]
    pub fn offset(&self) -> i64 {
        self.parsed.offset
    }

    /// Absolute timestamp (see [`Record::timestamp`]).
    #[inline]
    pub fn timestamp(&self) -> i64 {
        self.parsed.timestamp
    }

    /// The key; `None` for a null key.
    #[inline]
    pub fn key(&self) -> Option<&'a [u8]> {
        self.parsed.key.get(self.data)
    }

    /// The value; `None` for a null value.
    #[inline]
    pub fn value(&self) -> Option<&'a [u8]> {
        self.parsed.value.get(self.data)
    }

    /// Number of headers announced.
    #[inline]
    pub fn header_count(&self) -> usize {
        self.parsed.header_count as usize
    }

    /// The headers as an owned lazy [`Headers`] (one reference-count increment when there are any).
    pub fn headers(&self) -> Headers {
        if self.parsed.header_count == 0 {
            Headers::default()
        } else {
            Headers {
                raw: self
                    .data
                    .slice(self.parsed.headers_start as usize..self.parsed.headers_end as usize),
                count: self.parsed.header_count,
                base_offset: self.base_offset,
            }
        }
    }

    /// An owned [`Record`] sharing the batch's buffer (zero-copy `Bytes` slices).
    #[inline]
    pub fn to_record(&self) -> Record {
        let p = &self.parsed;
        Record {
            offset: p.offset,
            timestamp: p.timestamp,
            key: p.key.slice(self.data),
            value: p.value.slice(self.data),
            headers: self.headers(),
        }
    }
}

impl fmt::Debug for RecordRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordRef")
            .field("offset", &self.offset())
            .field("timestamp", &self.timestamp())
            .field("key", &self.key())
            .field("value", &self.value())
            .field("header_count", &self.header_count())
            .finish()
    }
}

/// Reads a varint length and that many bytes; -1 means null. Returns the byte range within `buf`.
#[inline(always)]
fn read_slice(buf: &[u8], pos: &mut usize) -> Result<Option<(usize, usize)>, &'static str> {
    let len = read_varint(buf, pos)?;
    if len < 0 {
        if len == -1 {
            return Ok(None);
        }
        return Err("negative length");
    }
    let start = *pos;
    let end = start
        .checked_add(len as usize)
        .filter(|&e| e <= buf.len())
        .ok_or("length runs past the end of the record")?;
    *pos = end;
    Ok(Some((start, end)))
}

impl Iterator for Records {
    type Item = Result<Record, RecordError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.next_ref().map(|r| r.map(|r| r.to_record()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            // One more item is possible: the trailing-bytes error.
            (0, Some(self.remaining as usize + 1))
        }
    }
}

impl FusedIterator for Records {}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records")
            .field("base_offset", &self.base_offset)
            .field("data_len", &self.data.len())
            .field("pos", &self.pos)
            .field("remaining", &self.remaining)
            .field("done", &self.done)
            .finish()
    }
}

/// One record with absolute offset and timestamp; key, value and headers are zero-copy views.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Absolute offset (`base_offset + offset_delta`).
    pub offset: i64,
    /// Absolute timestamp in milliseconds (`base_timestamp + timestamp_delta`; for
    /// [`TimestampType::LogAppendTime`] batches, the batch's `max_timestamp`).
    pub timestamp: i64,
    /// The key; `None` for a null key (distinct from an empty one).
    pub key: Option<Bytes>,
    /// The value; `None` for a null value (a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// The headers, parsed lazily.
    pub headers: Headers,
}

impl Record {
    /// Reads the key as a control record key (`version: i16, type: i16`). Only meaningful for records of a
    /// batch with [`Batch::is_control`]; `None` when the key is null or shorter than four bytes.
    pub fn control_type(&self) -> Option<ControlType> {
        let key = self.key.as_ref()?;
        if key.len() < 4 {
            return None;
        }
        Some(match i16::from_be_bytes([key[2], key[3]]) {
            0 => ControlType::Abort,
            1 => ControlType::Commit,
            other => ControlType::Other(other),
        })
    }
}

/// Headers of a record: the raw encoded bytes and the header count, parsed on iteration.
///
/// Two `Headers` are equal when their encodings are.
#[derive(Clone, Default)]
pub struct Headers {
    raw: Bytes,
    count: u32,
    base_offset: i64,
}

impl Headers {
    /// Number of headers announced (bounded by the record's size when decoded).
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Bytes the headers take on the wire (keys, values and their length prefixes): an upper bound of their
    /// keys' and values' bytes.
    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// True when the record has no headers.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Iterates the headers in order, parsing as it goes; stops after the first error.
    pub fn iter(&self) -> HeadersIter<'_> {
        HeadersIter {
            headers: self,
            pos: 0,
            remaining: self.count,
            done: false,
        }
    }

    /// The value of the first header named `key` (`Some(None)` for a header with a null value).
    /// Headers that fail to parse end the search.
    pub fn get(&self, key: &[u8]) -> Option<Option<Bytes>> {
        self.iter()
            .map_while(Result::ok)
            .find(|h| h.key == key)
            .map(|h| h.value)
    }

    /// All headers, or the first parse error.
    pub fn to_vec(&self) -> Result<Vec<Header>, RecordError> {
        self.iter().collect()
    }

    /// The encoded headers (without their count), as they appear in the record.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count && self.raw == other.raw
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = Result<Header, RecordError>;
    type IntoIter = HeadersIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over [`Headers`].
#[derive(Debug)]
pub struct HeadersIter<'a> {
    headers: &'a Headers,
    pos: usize,
    remaining: u32,
    done: bool,
}

impl HeadersIter<'_> {
    fn parse(&mut self) -> Result<Header, &'static str> {
        let raw = &self.headers.raw;
        let mut pos = self.pos;
        let key = read_slice(raw, &mut pos)?.ok_or("null header key")?;
        let value = read_slice(raw, &mut pos)?;
        self.pos = pos;
        Ok(Header {
            key: raw.slice(key.0..key.1),
            value: value.map(|(a, b)| raw.slice(a..b)),
        })
    }
}

impl Iterator for HeadersIter<'_> {
    type Item = Result<Header, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let corrupt = |reason| RecordError::Corrupt {
            offset: self.headers.base_offset,
            reason,
        };
        if self.remaining == 0 {
            self.done = true;
            if self.pos != self.headers.raw.len() {
                return Some(Err(corrupt("bytes left after the record's headers")));
            }
            return None;
        }
        match self.parse() {
            Ok(h) => {
                self.remaining -= 1;
                Some(Ok(h))
            }
            Err(reason) => {
                self.done = true;
                Some(Err(corrupt(reason)))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            (0, Some(0))
        } else {
            (0, Some(self.remaining as usize + 1))
        }
    }
}

impl FusedIterator for HeadersIter<'_> {}

/// One record header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The key: UTF-8 by the specification, kept as bytes (see [`Header::key_str`]).
    pub key: Bytes,
    /// The value; `None` for a null value.
    pub value: Option<Bytes>,
}

impl Header {
    /// The key as text, when it is valid UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.key).ok()
    }
}
