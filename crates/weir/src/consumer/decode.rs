//! Turning the records of one partition in a fetch response into [`ConsumerRecord`]s.

use std::sync::Arc;

use bytes::Bytes;
use weir_proto::record::{batches, Compression, RecordError};

use super::aborted::{is_abort_marker, AbortedTransactions};
use super::record::{compact, HEADER_ENTRY, RECORD_ENTRY};
use super::ConsumerRecord;
use crate::error::Error;

/// What one partition of one fetch response yielded.
pub(crate) struct Decoded {
    pub(crate) records: Vec<ConsumerRecord>,
    /// Bytes the records account for in memory.
    pub(crate) bytes: usize,
    /// Wire bytes of the batches the records came from.
    pub(crate) wire_bytes: usize,
    /// Where the next fetch of this partition starts.
    pub(crate) next_offset: i64,
    /// Corrupt data stops decoding at the bad batch; records before it are kept.
    pub(crate) error: Option<Error>,
    /// Wire size of the largest complete batch in the data, taken or not.
    pub(crate) largest_batch: usize,
    /// A batch was left for a later fetch because it needs more memory than the partition has room for.
    pub(crate) left_for_room: bool,
    /// A batch was left for a later fetch because it did not fit the partition's room or the fetch's
    /// reservation.
    pub(crate) left: bool,
    /// The partition leader epoch of the last batch `next_offset` moved into or past (the epoch the fetch
    /// position is validated with after a leader change, KIP-320), -1 if it did not move.
    pub(crate) last_epoch: i32,
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
    /// A batch taken oversize is cut (the rest fetched again from the next offset) once its records cost this
    /// much. High enough that ordinary configurations never cut: a broker answers a fetch from inside a batch
    /// with the whole batch again, so cutting is for pathological batches only.
    pub(crate) oversize_cut: usize,
    pub(crate) check_crcs: bool,
}

pub(crate) fn decode_partition(
    topic: &Arc<str>,
    partition: i32,
    data: Bytes,
    fetch_offset: i64,
    limits: &DecodeLimits,
    mut aborted: Option<AbortedTransactions>,
) -> Decoded {
    let mut out = Decoded {
        records: Vec::new(),
        bytes: 0,
        wire_bytes: 0,
        next_offset: fetch_offset,
        error: None,
        largest_batch: 0,
        left_for_room: false,
        left: false,
        last_epoch: -1,
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
        out.largest_batch = out.largest_batch.max(batch.batch_len());
        if batch.last_offset_delta() < 0
            || batch
                .base_offset()
                .checked_add(i64::from(batch.last_offset_delta()) + 1)
                .is_none()
        {
            out.error = Some(corrupt(
                batch.base_offset(),
                RecordError::Corrupt {
                    offset: batch.base_offset(),
                    reason: "batch offsets out of range (negative last offset delta or past i64::MAX)",
                },
            ));
            break;
        }
        // read_committed: every batch goes through the aborted transactions, in order.
        let aborted_batch = aborted
            .as_mut()
            .is_some_and(|a| a.skips(&batch, || is_abort_marker(&batch, limits.max_decompressed)));
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
        if batch.is_control() || aborted_batch {
            // Never delivered; their offsets are passed over (and committed past).
            out.next_offset = batch.next_offset();
            out.last_epoch = batch.partition_leader_epoch();
            continue;
        }
        let records = match batch.records(limits.max_decompressed) {
            Ok(r) => r,
            Err(e) => {
                out.error = Some(corrupt(batch.base_offset(), e));
                break;
            }
        };
        let compressed = !matches!(batch.compression(), Ok(Compression::None));
        let data_len = records.data_len();
        let mut failed = None;
        // This batch's records go straight into `out.records` (from `start`), and are cut off again if the batch
        // does not fit: each record is built in place once, and moved no more.
        let start = out.records.len();
        // The count is the batch's own (bounded by its size): reserve no more than the budget can take.
        let budget_records = limits.budget_room.saturating_sub(out.bytes) / RECORD_ENTRY + 1;
        out.records.reserve(records.remaining().min(budget_records));
        let mut taken_bytes = 0;
        // What the batch needed as far as it was read, when a record did not fit the budget.
        let mut over_budget = None;
        let mut cut = false;
        for r in records {
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            if r.offset < batch.base_offset() || r.offset > batch.last_offset() {
                failed = Some(RecordError::Corrupt {
                    offset: batch.base_offset(),
                    reason: "record offset outside its batch",
                });
                break;
            }
            if r.offset < fetch_offset {
                continue;
            }
            // What the record will cost, known before anything is built: a batch that cannot fit is left for
            // a later fetch without materialising the rest of it (many small records or headers cost far more
            // in memory than on the wire). A batch taken oversize (nothing else buffered, for progress) is cut
            // once it has cost `oversize_cut`; the rest is fetched again from the next offset.
            if start == 0
                && limits.allow_oversize
                && out.records.len() > start
                && taken_bytes > limits.oversize_cut
            {
                cut = true;
                break;
            }
            let headers_raw = r.headers.raw_len();
            let estimate = RECORD_ENTRY
                + r.key.as_ref().map_or(0, Bytes::len)
                + r.value.as_ref().map_or(0, Bytes::len)
                + r.headers.len() * HEADER_ENTRY
                + headers_raw;
            if out.bytes + taken_bytes + estimate > limits.budget_room
                && !(start == 0 && limits.allow_oversize)
            {
                over_budget = Some(out.bytes + taken_bytes + estimate);
                break;
            }
            // A malformed header is corrupt data like any other: reported, never silently dropped.
            let headers = if r.headers.is_empty() {
                Vec::new()
            } else {
                match r
                    .headers
                    .iter()
                    .map(|h| h.map(|h| (String::from_utf8_lossy(&h.key).into_owned(), h.value)))
                    .collect::<Result<Vec<_>, _>>()
                {
                    Ok(h) => h,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            };
            let rec = ConsumerRecord {
                topic: topic.clone(),
                partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
                headers,
                leader_epoch: batch.partition_leader_epoch(),
            };
            taken_bytes += rec.size();
            out.records.push(rec);
        }
        let fits = over_budget.is_none()
            && (out.bytes + taken_bytes <= limits.budget_room || (start == 0 && limits.allow_oversize));
        if !fits {
            // Left for a later fetch. If the partition's own room could not hold it either (rather than the
            // fetch's reservation running out, shared with other partitions), it is full for now.
            let needed = over_budget.unwrap_or(out.bytes + taken_bytes);
            out.left_for_room = needed > limits.partition_room;
            out.left = true;
            out.records.truncate(start);
            break; // The budget is used up: leave this batch for a later fetch, from its boundary.
        }
        let taken = &mut out.records[start..];
        // Bytes of the buffer the taken records point into (keys, values, header keys and values): what they
        // account for, less their entries. Only compressed batches have a buffer of their own to pin.
        let kept = || {
            let entries: usize = taken
                .iter()
                .map(|r| RECORD_ENTRY + r.headers.len() * HEADER_ENTRY)
                .sum();
            taken_bytes - entries
        };
        if compressed && kept() < data_len / 2 {
            // A few survivors of a large decompressed batch (the rest was before the fetch position, or is
            // headers): copy them out, so they do not pin the whole buffer their size does not account for.
            compact(taken);
        }
        out.bytes += taken_bytes;
        out.wire_bytes += batch.batch_len();
        if out.records.len() > start {
            out.last_epoch = batch.partition_leader_epoch();
        }
        if cut {
            out.next_offset = out.records.last().map_or(out.next_offset, |r| r.offset + 1);
            break;
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
        out.last_epoch = batch.partition_leader_epoch();
    }
    // The vector is buffered as it is: capacity grown by doubling over many batches would cost memory that no
    // record accounts for.
    if out.records.capacity() - out.records.len() > out.records.len() / 8 {
        out.records.shrink_to_fit();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_proto::record::{BatchBuilder, BatchOptions, ProducerIds};

    fn batch(base_offset: i64, compression: Compression, records: &[(&[u8], usize)]) -> Bytes {
        let mut b = BatchBuilder::new(BatchOptions {
            compression,
            base_offset,
            ..BatchOptions::default()
        });
        for (value, headers) in records {
            let hs: Vec<(&str, Option<&[u8]>)> = (0..*headers).map(|_| ("", None)).collect();
            b.push(0, None, Some(value), &hs);
        }
        b.seal(ProducerIds::NONE).unwrap()
    }

    fn limits(budget_room: usize, allow_oversize: bool) -> DecodeLimits {
        DecodeLimits {
            partition_room: usize::MAX,
            budget_room,
            allow_oversize,
            max_decompressed: 64 << 20,
            oversize_cut: 64 << 20,
            check_crcs: true,
        }
    }

    fn topic() -> Arc<str> {
        Arc::from("t")
    }

    /// Empty headers cost almost nothing on the wire and a full entry each in memory: they are counted as such,
    /// so a header-heavy batch cannot slip under the budget.
    #[test]
    fn headers_and_records_count_what_they_cost_in_memory() {
        let data = batch(0, Compression::Zstd, &[(b"v", 20_000)]);
        assert!(data.len() < 2_000, "{} wire bytes", data.len());
        let d = decode_partition(&topic(), 0, data.clone(), 0, &limits(usize::MAX, false), None);
        assert_eq!(d.records.len(), 1);
        assert!(
            d.bytes >= 20_000 * HEADER_ENTRY + RECORD_ENTRY,
            "{} bytes counted",
            d.bytes
        );
        assert_eq!(d.bytes, d.records.iter().map(ConsumerRecord::size).sum::<usize>());
        // Under a 64 KiB budget the batch is left for later, before its headers are built.
        let d = decode_partition(&topic(), 0, data.clone(), 0, &limits(64 << 10, false), None);
        assert!(d.records.is_empty() && d.bytes == 0 && d.next_offset == 0 && d.error.is_none());
        // With nothing else buffered it is taken anyway (progress), and counted in full.
        let d = decode_partition(&topic(), 0, data, 0, &limits(64 << 10, true), None);
        assert_eq!(d.records.len(), 1);
        assert_eq!(d.next_offset, 1);
    }

    /// A batch of many tiny records costs far more in memory than on the wire. Taken oversize (nothing else
    /// buffered), it is cut once it has cost `oversize_cut`, and the next decode continues from there.
    #[test]
    fn an_oversize_batch_of_tiny_records_is_taken_in_bounded_pieces() {
        let records: Vec<(&[u8], usize)> = (0..20_000).map(|_| (&b"x"[..], 0)).collect();
        let data = batch(0, Compression::Zstd, &records);
        let mut l = limits(1 << 10, true);
        l.oversize_cut = 256 << 10;
        let mut position = 0;
        let mut pieces = 0;
        while position < 20_000 {
            let d = decode_partition(&topic(), 0, data.clone(), position, &l, None);
            assert!(d.error.is_none());
            assert!(d.bytes <= (256 << 10) + 200, "{} bytes in one piece", d.bytes);
            assert_eq!(d.records.first().map(|r| r.offset), Some(position));
            assert_eq!(d.next_offset, d.records.last().unwrap().offset + 1);
            position = d.next_offset;
            pieces += 1;
        }
        assert!(pieces >= 8, "{pieces} pieces");
    }

    /// A survivor of a large compressed batch (the rest was before the fetch position) is copied out instead of
    /// pinning the decompressed buffer.
    #[test]
    fn few_survivors_of_a_compressed_batch_are_copied_out() {
        let big = vec![7u8; 100_000];
        let records: [(&[u8], usize); 4] = [(&big, 0), (&big, 0), (b"x", 0), (b"y", 0)];
        let survivors = |compression| {
            let data = batch(0, compression, &records);
            let d = decode_partition(&topic(), 0, data, 2, &limits(usize::MAX, false), None);
            assert_eq!(d.records.len(), 2);
            let values: Vec<Bytes> = d.records.iter().map(|r| r.value.clone().unwrap()).collect();
            assert_eq!((&values[0][..], &values[1][..]), (&b"x"[..], &b"y"[..]));
            drop(d);
            values
        };
        // Copied out into one buffer of their own, back to back (in the batch, record framing lies between them).
        let adjacent = |v: &[Bytes]| v[0].as_ptr().wrapping_add(1) == v[1].as_ptr();
        let values = survivors(Compression::Lz4);
        assert!(adjacent(&values));
        // Uncompressed records stay zero-copy slices of the fetched data.
        let values = survivors(Compression::None);
        assert!(!adjacent(&values));
    }

    /// A malformed header makes the record corrupt data (reported with its offset), never a record delivered
    /// without the header.
    #[test]
    fn a_malformed_header_is_corrupt_data() {
        let mut b = BatchBuilder::new(BatchOptions::default());
        b.push(0, None, Some(b"first"), &[]);
        b.push(0, None, Some(b"second"), &[("k", Some(b"v"))]);
        let mut data = b.seal(ProducerIds::NONE).unwrap().to_vec();
        // The batch ends with the header: count 1, key length 1, "k", value length 1, "v" (zigzag varints).
        let n = data.len();
        assert_eq!(&data[n - 5..], &[2, 2, b'k', 2, b'v']);
        data[n - 4] = 0x7e; // key length 63: past the record's end
        let mut l = limits(usize::MAX, false);
        l.check_crcs = false;
        let d = decode_partition(&topic(), 0, Bytes::from(data), 0, &l, None);
        assert_eq!(d.records.len(), 1, "the record before the bad one is delivered");
        assert!(
            matches!(d.error, Some(Error::CorruptRecords { offset: 1, .. })),
            "{:?}",
            d.error
        );
        assert_eq!(d.next_offset, 1);
    }

    /// Offsets near `i64::MAX` are corrupt data, not an overflow.
    #[test]
    fn batch_offsets_past_i64_max_are_corrupt() {
        let data = batch(
            i64::MAX - 1,
            Compression::None,
            &[(b"a", 0), (b"b", 0), (b"c", 0)],
        );
        let d = decode_partition(&topic(), 0, data, i64::MAX - 1, &limits(usize::MAX, false), None);
        assert!(d.records.is_empty());
        assert!(
            matches!(d.error, Some(Error::CorruptRecords { .. })),
            "{:?}",
            d.error
        );
        assert_eq!(d.next_offset, i64::MAX - 1);
    }
}
