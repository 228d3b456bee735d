//! The replay server's Fetch (v4–v12): a bounded request parser, and a response written as a small header
//! buffer interleaved with the log's batch `Bytes` in one vectored write.
//!
//! Request (after the request header; fields by version):
//!
//! ```text
//! replica_id i32 | max_wait_ms i32 | min_bytes i32 | max_bytes i32 | isolation_level i8 |
//! session_id i32 (v7+) | session_epoch i32 (v7+) |
//! [topic string | [partition i32 | current_leader_epoch i32 (v9+) | fetch_offset i64 |
//!   last_fetched_epoch i32 (v12+) | log_start_offset i64 (v5+) | partition_max_bytes i32]] |
//! forgotten [topic string | [partition i32]] (v7+) | rack_id string (v11+)
//! ```
//!
//! Response (the layout `weir_proto::fetch` decodes, plus v12's compact forms and tagged fields):
//!
//! ```text
//! throttle_time_ms i32 | error_code i16 (v7+) | session_id i32 (v7+) |
//! [topic string | [partition i32 | error_code i16 | high_watermark i64 | last_stable_offset i64 |
//!   log_start_offset i64 (v5+) | aborted_transactions [..] | preferred_read_replica i32 (v11+) |
//!   records bytes]]
//! ```
//!
//! In v12 strings, arrays and the records' length are compact (varint length + 1) and every structure ends
//! with an (empty) tagged-field section.

use std::io::{self, IoSlice, Write};
use std::net::TcpStream;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use weir_proto::kafka_code::KafkaCode;

use super::{
    begin_response, finish_response, put_array_len, put_i16, put_i32, put_i64, put_string, put_uvarint,
    Close, Malformed, Reader, Shared,
};

/// A parsed Fetch request: what the server uses of it.
pub(super) struct FetchRequest<'a> {
    max_wait_ms: i32,
    max_bytes: i32,
    session_id: i32,
    session_epoch: i32,
    topics: Vec<(&'a [u8], Vec<FetchPartition>)>,
}

/// One partition of a Fetch request.
struct FetchPartition {
    partition: i32,
    fetch_offset: i64,
    max_bytes: i32,
}

/// Session epoch of a request that creates a session, and of one that uses none.
const INITIAL_EPOCH: i32 = 0;
const FINAL_EPOCH: i32 = -1;

/// Parses a Fetch request body of `version` (4..=12), every count bounded by the bytes left.
pub(super) fn parse<'a>(r: &mut Reader<'a>, version: i16) -> Result<FetchRequest<'a>, Malformed> {
    let flex = version >= 12;
    r.i32("replica id")?;
    let max_wait_ms = r.i32("max wait")?;
    r.i32("min bytes")?;
    let max_bytes = r.i32("max bytes")?;
    r.i8("isolation level")?;
    let (session_id, session_epoch) = if version >= 7 {
        (r.i32("session id")?, r.i32("session epoch")?)
    } else {
        (0, FINAL_EPOCH)
    };
    let min_partition = 16
        + if version >= 9 { 4 } else { 0 }
        + if version >= 12 { 4 } else { 0 }
        + if version >= 5 { 8 } else { 0 }
        + usize::from(flex);
    let min_topic = if flex { 3 } else { 6 };
    let topic_count = r
        .array_len(flex, min_topic, "topics")?
        .ok_or(Malformed("null topics"))?;
    let mut topics = Vec::with_capacity(topic_count);
    for _ in 0..topic_count {
        let name = r
            .string(flex, "topic name")?
            .ok_or(Malformed("null topic name"))?;
        let count = r
            .array_len(flex, min_partition, "partitions")?
            .ok_or(Malformed("null partitions"))?;
        let mut partitions = Vec::with_capacity(count);
        for _ in 0..count {
            let partition = r.i32("partition")?;
            if version >= 9 {
                r.i32("current leader epoch")?;
            }
            let fetch_offset = r.i64("fetch offset")?;
            if version >= 12 {
                r.i32("last fetched epoch")?;
            }
            if version >= 5 {
                r.i64("log start offset")?;
            }
            let max_bytes = r.i32("partition max bytes")?;
            if flex {
                r.tags()?;
            }
            partitions.push(FetchPartition {
                partition,
                fetch_offset,
                max_bytes,
            });
        }
        if flex {
            r.tags()?;
        }
        topics.push((name, partitions));
    }
    if version >= 7 {
        // Forgotten topics only mean something in a session, and the server keeps none: read and ignored.
        let forgotten = r.array_len(flex, min_topic, "forgotten topics")?.unwrap_or(0);
        for _ in 0..forgotten {
            r.string(flex, "forgotten topic name")?;
            let n = r.array_len(flex, 4, "forgotten partitions")?.unwrap_or(0);
            r.take(n * 4, "forgotten partitions")?;
            if flex {
                r.tags()?;
            }
        }
    }
    if version >= 11 {
        r.string(flex, "rack id")?;
    }
    if flex {
        r.tags()?;
    }
    r.end()?;
    Ok(FetchRequest {
        max_wait_ms,
        max_bytes,
        session_id,
        session_epoch,
        topics,
    })
}

/// One piece of a response: a range of the header buffer, or batches of the log, sent as they are.
enum Piece<'l> {
    Head(Range<usize>),
    Batches(&'l [Bytes]),
}

/// Answers `req`: writes the headers into `head` and sends them with the selected batches in one vectored
/// write. Waits up to the request's `max_wait_ms` first when there is nothing to return.
pub(super) fn respond(
    stream: &mut TcpStream,
    shared: &Shared,
    req: &FetchRequest<'_>,
    version: i16,
    correlation_id: i32,
    head: &mut Vec<u8>,
) -> Result<(), Close> {
    let flex = version >= 12;
    let log = &shared.log;
    let session_error = if req.session_id != 0 {
        KafkaCode::FetchSessionIdNotFound.code()
    } else if req.session_epoch != INITIAL_EPOCH && req.session_epoch != FINAL_EPOCH {
        KafkaCode::InvalidFetchSessionEpoch.code()
    } else {
        0
    };
    begin_response(head, correlation_id, flex);
    put_i32(head, 0); // throttle time
    if version >= 7 {
        put_i16(head, session_error);
        put_i32(head, 0); // session id: none was created
    }
    let mut pieces: Vec<Piece<'_>> = Vec::new();
    let mut mark = 0;
    let budget = usize::try_from(req.max_bytes).unwrap_or(0);
    // Batch bytes selected so far in this response.
    let mut total = 0usize;
    let mut any_error = session_error != 0;
    let topics: &[(&[u8], Vec<FetchPartition>)] = if session_error != 0 { &[] } else { &req.topics };
    put_array_len(head, flex, topics.len());
    for (name, partitions) in topics {
        put_string(head, flex, Some(name));
        put_array_len(head, flex, partitions.len());
        for fp in partitions {
            let (error, end, selected): (i16, i64, &[Bytes]) = match log.partition(name, fp.partition) {
                None => (KafkaCode::UnknownTopicOrPartition.code(), -1, &[]),
                Some(pl) if fp.fetch_offset < 0 || fp.fetch_offset > pl.end => {
                    (KafkaCode::OffsetOutOfRange.code(), pl.end, &[])
                }
                Some(pl) => {
                    let partition_budget = usize::try_from(fp.max_bytes).unwrap_or(0);
                    let first = pl.batch_at(fp.fetch_offset);
                    let mut last = first;
                    let mut bytes = 0usize;
                    while let Some(batch) = pl.batches.get(last) {
                        // KIP-74: the response's first batch goes even if it is larger than either limit, so
                        // a consumer always makes progress.
                        let first_of_response = total == 0 && bytes == 0;
                        let len = batch.len();
                        if !first_of_response
                            && (bytes + len > partition_budget || total + bytes + len > budget)
                        {
                            break;
                        }
                        bytes += len;
                        last += 1;
                    }
                    total += bytes;
                    (0, pl.end, &pl.batches[first..last])
                }
            };
            any_error |= error != 0;
            let records_len: usize = selected.iter().map(Bytes::len).sum();
            put_i32(head, fp.partition);
            put_i16(head, error);
            put_i64(head, end); // high watermark
            put_i64(head, end); // last stable offset
            if version >= 5 {
                put_i64(head, if end >= 0 { 0 } else { -1 }); // log start offset
            }
            put_array_len(head, flex, 0); // aborted transactions
            if version >= 11 {
                put_i32(head, -1); // preferred read replica
            }
            if flex {
                put_uvarint(head, records_len as u64 + 1);
            } else {
                // Cannot truncate: a partition's selection is at most `partition_max_bytes` (an i32), or
                // one batch, and a batch's length is an i32.
                put_i32(head, records_len as i32);
            }
            if !selected.is_empty() {
                pieces.push(Piece::Head(mark..head.len()));
                mark = head.len();
                pieces.push(Piece::Batches(selected));
            }
            if flex {
                put_uvarint(head, 0);
            }
        }
        if flex {
            put_uvarint(head, 0);
        }
    }
    if flex {
        put_uvarint(head, 0);
    }
    pieces.push(Piece::Head(mark..head.len()));
    finish_response(head, total)?;
    if total == 0 && !any_error {
        // Every partition is at its log end, and the log never grows: wait as long as the client allows, so
        // it long-polls rather than spins.
        shared.wait(Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)));
    }
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(pieces.len() * 2);
    for piece in &pieces {
        match piece {
            Piece::Head(range) => slices.push(IoSlice::new(&head[range.clone()])),
            Piece::Batches(batches) => slices.extend(batches.iter().map(|b| IoSlice::new(b))),
        }
    }
    write_all_vectored(stream, &mut slices)?;
    shared.fetch_responses.fetch_add(1, Ordering::Relaxed);
    shared
        .batch_bytes_served
        .fetch_add(total as u64, Ordering::Relaxed);
    Ok(())
}

/// Writes every slice, however many `writev` calls it takes (each call takes at most `IOV_MAX` slices and may
/// write part of them).
fn write_all_vectored(stream: &mut TcpStream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match stream.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
