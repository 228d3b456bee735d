//! Incremental record batch builder.

use bytes::Bytes;

use super::codec;
use super::varint::{put_varint, put_varlong, varint_len, varlong_len};
use super::{Compression, RecordError, TimestampType, BATCH_HEADER_LEN, LOG_OVERHEAD, MAGIC_V2};

/// How a batch is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// Codec of the records section.
    pub compression: Compression,
    /// Timestamp type bit of the attributes (producers write [`TimestampType::CreateTime`]).
    pub timestamp_type: TimestampType,
    /// Sets the transactional attribute bit.
    pub transactional: bool,
    /// Base offset written in the header (producers write 0; the broker assigns offsets).
    pub base_offset: i64,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            compression: Compression::None,
            timestamp_type: TimestampType::CreateTime,
            transactional: false,
            base_offset: 0,
        }
    }
}

/// Producer identity written into a batch when it is sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProducerIds {
    /// Producer id from InitProducerId, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the batch's first record, or -1.
    pub base_sequence: i32,
}

impl ProducerIds {
    /// No producer identity (non-idempotent producer): all -1.
    pub const NONE: ProducerIds = ProducerIds {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
}

impl Default for ProducerIds {
    fn default() -> Self {
        ProducerIds::NONE
    }
}

/// Incremental builder: append records one at a time, seal once.
///
/// Records are encoded as they are pushed into one growing buffer that already reserves room for the batch
/// header, so sealing an uncompressed batch copies nothing. Offsets deltas are assigned in push order, and the
/// first record's timestamp is the batch's base timestamp.
///
/// Fields longer than `i32::MAX` bytes cannot be represented; such a batch is refused by [`BatchBuilder::seal`]
/// with [`RecordError::BatchTooLarge`] (its size necessarily exceeds the batch length field).
#[derive(Clone, Debug)]
pub struct BatchBuilder {
    opts: BatchOptions,
    /// `BATCH_HEADER_LEN` reserved bytes, then the encoded records.
    buf: Vec<u8>,
    count: u64,
    base_timestamp: i64,
    max_timestamp: i64,
}

#[inline(always)]
fn bytes_field_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_len(b.len() as i32) + b.len(),
    }
}

#[inline(always)]
fn put_bytes_field(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

impl BatchBuilder {
    /// An empty builder.
    pub fn new(opts: BatchOptions) -> Self {
        Self::with_capacity(opts, 0)
    }

    /// An empty builder whose buffer has room for `records_bytes` bytes of encoded records without growing.
    pub fn with_capacity(opts: BatchOptions, records_bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(BATCH_HEADER_LEN.saturating_add(records_bytes));
        buf.resize(BATCH_HEADER_LEN, 0);
        BatchBuilder {
            opts,
            buf,
            count: 0,
            base_timestamp: 0,
            max_timestamp: 0,
        }
    }

    /// The options the builder was created with.
    pub fn options(&self) -> &BatchOptions {
        &self.opts
    }

    #[inline(always)]
    fn body_len(
        &self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        let ts_delta = if self.count == 0 {
            0
        } else {
            timestamp_ms.wrapping_sub(self.base_timestamp)
        };
        let mut n = 1 // attributes
            + varlong_len(ts_delta)
            + varint_len(self.count as i32)
            + bytes_field_len(key)
            + bytes_field_len(value)
            + varint_len(headers.len() as i32);
        for (k, v) in headers {
            n += bytes_field_len(Some(k.as_bytes())) + bytes_field_len(*v);
        }
        n
    }

    /// Bytes the record would add to the uncompressed records section if pushed now (exact). With a codec,
    /// [`BatchBuilder::estimated_size`] may grow by a few bytes more (its worst-case framing bound).
    pub fn record_size(
        &self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        let body = self.body_len(timestamp_ms, key, value, headers);
        varint_len(body as i32) + body
    }

    /// Appends one record; returns the estimated sealed size so far (see [`BatchBuilder::estimated_size`]).
    pub fn push(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        if self.count == 0 {
            self.base_timestamp = timestamp_ms;
            self.max_timestamp = timestamp_ms;
        } else if timestamp_ms > self.max_timestamp {
            self.max_timestamp = timestamp_ms;
        }
        let body = self.body_len(timestamp_ms, key, value, headers);
        let buf = &mut self.buf;
        buf.reserve(body + 5);
        put_varint(buf, body as i32);
        buf.push(0); // record attributes
        put_varlong(buf, timestamp_ms.wrapping_sub(self.base_timestamp));
        put_varint(buf, self.count as i32);
        put_bytes_field(buf, key);
        put_bytes_field(buf, value);
        put_varint(buf, headers.len() as i32);
        for (k, v) in headers {
            put_bytes_field(buf, Some(k.as_bytes()));
            put_bytes_field(buf, *v);
        }
        self.count += 1;
        self.estimated_size()
    }

    /// Estimated sealed size: the exact size for an uncompressed batch; with a codec, an upper bound (the
    /// uncompressed size plus the codec's worst-case framing overhead).
    pub fn estimated_size(&self) -> usize {
        BATCH_HEADER_LEN + codec::max_compressed_len(self.opts.compression, self.records_len())
    }

    /// Bytes of encoded (uncompressed) records so far.
    pub fn records_len(&self) -> usize {
        self.buf.len() - BATCH_HEADER_LEN
    }

    /// Number of records pushed.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// True when no record has been pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Compresses the records (if any codec), writes header, length and CRC.
    ///
    /// Producer ids and sequence are given here because the idempotent producer assigns sequences when a batch
    /// is drained, not when it is opened. Fails with [`RecordError::EmptyBatch`] when no record was pushed.
    pub fn seal(self, ids: ProducerIds) -> Result<Bytes, RecordError> {
        if self.count == 0 {
            return Err(RecordError::EmptyBatch);
        }
        let count =
            i32::try_from(self.count).map_err(|_| RecordError::BatchTooLarge { size: self.buf.len() })?;
        let codec = self.opts.compression;
        let mut out = match codec {
            Compression::None => self.buf,
            c => {
                let src = &self.buf[BATCH_HEADER_LEN..];
                let mut out = Vec::with_capacity(BATCH_HEADER_LEN + codec::max_compressed_len(c, src.len()));
                out.resize(BATCH_HEADER_LEN, 0);
                codec::compress(c, src, &mut out)?;
                out
            }
        };
        let length = i32::try_from(out.len() - LOG_OVERHEAD)
            .map_err(|_| RecordError::BatchTooLarge { size: out.len() })?;
        let mut attributes = codec.attribute_bits();
        if self.opts.timestamp_type == TimestampType::LogAppendTime {
            attributes |= 1 << 3;
        }
        if self.opts.transactional {
            attributes |= 1 << 4;
        }
        let h = &mut out[..BATCH_HEADER_LEN];
        h[0..8].copy_from_slice(&self.opts.base_offset.to_be_bytes());
        h[8..12].copy_from_slice(&length.to_be_bytes());
        h[12..16].copy_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        h[16] = MAGIC_V2 as u8;
        // 17..21: CRC, below.
        h[21..23].copy_from_slice(&attributes.to_be_bytes());
        h[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        h[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        h[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        h[43..51].copy_from_slice(&ids.producer_id.to_be_bytes());
        h[51..53].copy_from_slice(&ids.producer_epoch.to_be_bytes());
        h[53..57].copy_from_slice(&ids.base_sequence.to_be_bytes());
        h[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&out[21..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        // A sealed batch lives until the broker acknowledges it (doubling while records were pushed, or the
        // worst-case room reserved for the compressor, would stay alive with it).
        super::release_slack(&mut out);
        Ok(Bytes::from(out))
    }
}

/// Rewrites the producer id, epoch and base sequence of a sealed batch and recomputes its CRC, leaving the
/// records untouched. The idempotent producer uses it when it starts a new producer epoch (after a batch failed
/// for good, which leaves a gap in the sequence) and must renumber batches that were already sealed.
pub fn restamp(batch: &Bytes, ids: ProducerIds) -> Result<Bytes, RecordError> {
    if batch.len() < BATCH_HEADER_LEN {
        return Err(RecordError::Corrupt {
            offset: -1,
            reason: "batch shorter than its header",
        });
    }
    let mut out = batch.to_vec();
    out[43..51].copy_from_slice(&ids.producer_id.to_be_bytes());
    out[51..53].copy_from_slice(&ids.producer_epoch.to_be_bytes());
    out[53..57].copy_from_slice(&ids.base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod restamp_tests {
    use super::*;
    use crate::record::batches;

    #[test]
    fn restamp_changes_ids_keeps_records_and_a_valid_crc() {
        let mut b = BatchBuilder::new(BatchOptions {
            compression: Compression::Lz4,
            ..Default::default()
        });
        b.push(1, Some(b"k"), Some(b"v1"), &[]);
        b.push(2, None, Some(b"v2"), &[("h", None)]);
        let sealed = b
            .seal(ProducerIds {
                producer_id: 7,
                producer_epoch: 1,
                base_sequence: 40,
            })
            .unwrap();
        let again = restamp(
            &sealed,
            ProducerIds {
                producer_id: 9,
                producer_epoch: 3,
                base_sequence: 0,
            },
        )
        .unwrap();
        let batch = batches(again).next().unwrap().unwrap();
        batch.verify_crc().unwrap();
        assert_eq!(
            (batch.producer_id(), batch.producer_epoch(), batch.base_sequence()),
            (9, 3, 0)
        );
        let old: Vec<_> = batches(sealed)
            .next()
            .unwrap()
            .unwrap()
            .records(1 << 20)
            .unwrap()
            .collect();
        let new: Vec<_> = batch.records(1 << 20).unwrap().collect();
        assert_eq!(format!("{old:?}"), format!("{new:?}"));
        assert!(restamp(&Bytes::from_static(b"short"), ProducerIds::NONE).is_err());
    }
}
