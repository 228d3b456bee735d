//! Turning the records of one partition in a fetch response into [`ConsumerRecord`]s.

use std::sync::Arc;

use bytes::Bytes;
use weir_proto::record::{batches, RecordError};

use super::ConsumerRecord;
use crate::error::Error;

/// What one partition of one fetch response yielded.
pub(crate) struct Decoded {
    pub(crate) records: Vec<ConsumerRecord>,
    /// Decompressed bytes the records account for.
    pub(crate) bytes: usize,
    /// Where the next fetch of this partition starts.
    pub(crate) next_offset: i64,
    /// Corrupt data stops decoding at the bad batch; records before it are kept.
    pub(crate) error: Option<Error>,
}

/// Limits applied while decoding.
pub(crate) struct DecodeLimits {
    /// Stop taking further batches once this many bytes were taken (one batch is always taken).
    pub(crate) room: usize,
    /// Largest decompressed size of one batch.
    pub(crate) max_decompressed: usize,
    pub(crate) check_crcs: bool,
    /// Copy record bytes out of the response instead of slicing it.
    pub(crate) detach: bool,
}

pub(crate) fn decode_partition(
    topic: &Arc<str>,
    partition: i32,
    data: Bytes,
    fetch_offset: i64,
    limits: &DecodeLimits,
) -> Decoded {
    let mut out = Decoded {
        records: Vec::new(),
        bytes: 0,
        next_offset: fetch_offset,
        error: None,
    };
    let corrupt = |offset: i64, source: RecordError| Error::CorruptRecords {
        topic: topic.to_string(),
        partition,
        offset,
        source,
    };
    for batch in batches(data) {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                out.error = Some(corrupt(out.next_offset, e));
                break;
            }
        };
        if batch.next_offset() <= out.next_offset {
            continue; // Entirely before the fetch position (Kafka returns the batch containing it).
        }
        if out.bytes > 0 && out.bytes >= limits.room {
            // The buffer is full: leave the rest for a later fetch, which starts at this batch boundary.
            break;
        }
        if limits.check_crcs {
            if let Err(e) = batch.verify_crc() {
                out.error = Some(corrupt(batch.base_offset(), e));
                break;
            }
        }
        if batch.is_control() {
            out.next_offset = batch.next_offset();
            continue;
        }
        let records = match batch.records(limits.max_decompressed) {
            Ok(r) => r,
            Err(e) => {
                out.error = Some(corrupt(batch.base_offset(), e));
                break;
            }
        };
        let mut failed = None;
        for r in records {
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            if r.offset < fetch_offset {
                continue;
            }
            let headers = r
                .headers
                .iter()
                .filter_map(Result::ok)
                .map(|h| (String::from_utf8_lossy(&h.key).into_owned(), h.value))
                .collect();
            let mut rec = ConsumerRecord {
                topic: topic.clone(),
                partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
                headers,
            };
            if limits.detach {
                rec.detach();
            }
            out.bytes += rec.size();
            out.records.push(rec);
        }
        if let Some(e) = failed {
            // Records decoded before the bad one are delivered; the position stops at the bad record.
            out.next_offset = out
                .records
                .last()
                .map_or(fetch_offset.max(batch.base_offset()), |r| r.offset + 1);
            out.error = Some(corrupt(out.next_offset, e));
            break;
        }
        out.next_offset = batch.next_offset();
    }
    out
}
