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
    /// Room left under the partition's high watermark: no further batch is taken once it is used up, so a
    /// partition's buffer passes its high watermark by at most one batch (and then stops being fetched).
    pub(crate) partition_room: usize,
    /// Room left in the budget reserved for this fetch: a batch that would go past it is left for a later
    /// fetch (from its boundary), so the consumer-wide budget holds whatever the broker sent.
    pub(crate) budget_room: usize,
    /// Take the first batch even if it alone exceeds `budget_room` (progress for a batch larger than the
    /// reservation, allowed only when nothing else is buffered).
    pub(crate) allow_oversize: bool,
    /// Largest decompressed size of one batch.
    pub(crate) max_decompressed: usize,
    pub(crate) check_crcs: bool,
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
        if out.bytes >= limits.partition_room {
            break; // The partition's buffer is full: the rest waits for a later fetch, from this boundary.
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
        let mut taken = Vec::new();
        let mut taken_bytes = 0;
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
            let rec = ConsumerRecord {
                topic: topic.clone(),
                partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
                headers,
            };
            taken_bytes += rec.size();
            taken.push(rec);
        }
        let fits = out.bytes + taken_bytes <= limits.budget_room
            || (out.records.is_empty() && limits.allow_oversize);
        if !fits {
            break; // The budget is used up: leave this batch for a later fetch, from its boundary.
        }
        out.bytes += taken_bytes;
        out.records.append(&mut taken);
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
