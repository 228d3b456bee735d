//! Shared pieces of weir's fuzz targets: the consumer's walk over a partition's record batches, with the checks
//! every target that reaches record batches makes.

use bytes::Bytes;
use weir_proto::record::{batches, Batch, RecordError, LOG_OVERHEAD};

/// The decompressed size a fuzzed batch may reach: small enough that libFuzzer's `-malloc_limit_mb` catches a
/// decoder that allocates far beyond it, large enough for every real batch in the seed corpus.
pub const MAX_DECOMPRESSED: usize = 4 << 20;

/// What a walk over a `records` blob saw.
#[derive(Debug, Default)]
pub struct Walk {
    /// Complete batches yielded.
    pub batches: usize,
    /// Batches whose stored CRC-32C matched.
    pub valid_crcs: usize,
    /// Records decoded without error.
    pub records: usize,
}

/// Decodes `records` as the consumer does (`batches`, `verify_crc`, `records` bounded by
/// [`MAX_DECOMPRESSED`], each record, its headers and control key), asserting what must hold for any input:
/// batches never cover more bytes than given, a decompressed section never exceeds the limit, a batch never
/// yields more records than its header announced, and every key, value and header lies within its section.
pub fn walk_records(records: Bytes) -> Walk {
    let input_len = records.len();
    let mut walk = Walk::default();
    let mut covered = 0usize;
    let mut it = batches(records);
    for batch in it.by_ref() {
        let Ok(batch) = batch else { break };
        walk.batches += 1;
        covered += batch.batch_len();
        assert!(batch.batch_len() >= weir_proto::record::BATCH_HEADER_LEN);
        assert!(covered <= input_len, "batches cover {covered} of {input_len} bytes");
        if batch.verify_crc().is_ok() {
            walk.valid_crcs += 1;
        }
        walk.records += walk_batch(&batch);
    }
    assert!(it.remaining_bytes() <= input_len);
    assert!(it.next().is_none(), "a finished batch iterator stays finished");
    walk
}

/// Decodes one batch's records; returns how many decoded without error.
pub fn walk_batch(batch: &Batch) -> usize {
    // Header accessors never fail on a yielded batch.
    let _ = (
        batch.base_offset(),
        batch.last_offset(),
        batch.next_offset(),
        batch.partition_leader_epoch(),
        batch.timestamp_type(),
        batch.is_transactional(),
        batch.is_control(),
        batch.has_delete_horizon(),
        batch.producer_id(),
        batch.producer_epoch(),
        batch.base_sequence(),
        batch.uncompressed_len_hint(),
        format!("{batch:?}"),
    );
    let mut records = match batch.records(MAX_DECOMPRESSED) {
        Ok(r) => r,
        Err(e) => {
            check_error(&e);
            return 0;
        }
    };
    let data_len = records.data_len();
    assert!(data_len <= MAX_DECOMPRESSED.max(batch.records_section_len()));
    let announced = records.remaining();
    assert!(announced as i64 == i64::from(batch.record_count()));
    let mut ok = 0;
    while let Some(r) = records.next_ref() {
        let Ok(r) = r else { break };
        ok += 1;
        assert!(ok <= announced, "more records than the batch announced");
        let key = r.key().map_or(0, <[u8]>::len);
        let value = r.value().map_or(0, <[u8]>::len);
        assert!(key + value <= data_len);
        let _ = format!("{r:?}");
        let record = r.to_record();
        assert!(record.headers.raw_len() <= data_len);
        assert!(record.headers.len() <= record.headers.raw_len() / 2);
        let mut header_bytes = 0;
        for h in record.headers.iter() {
            let Ok(h) = h else { break };
            header_bytes += h.key.len() + h.value.as_ref().map_or(0, Bytes::len);
            let _ = h.key_str();
        }
        assert!(header_bytes <= record.headers.raw_len());
        let _ = record.control_type();
        let _ = format!("{:?}", record.headers);
    }
    ok
}

fn check_error(e: &RecordError) {
    // Every error renders (the consumer reports them through `poll`).
    assert!(!e.to_string().is_empty());
}

/// Builds a batch header (with a valid CRC-32C) around `section`, the (possibly compressed) records section.
#[allow(clippy::too_many_arguments)]
pub fn seal_raw(
    base_offset: i64,
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    record_count: i32,
    section: &[u8],
) -> Bytes {
    let header = weir_proto::record::BATCH_HEADER_LEN;
    let mut out = Vec::with_capacity(header + section.len());
    out.extend_from_slice(&base_offset.to_be_bytes());
    let length = (header - LOG_OVERHEAD + section.len()) as i32;
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.push(2);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&last_offset_delta.to_be_bytes());
    out.extend_from_slice(&base_timestamp.to_be_bytes());
    out.extend_from_slice(&max_timestamp.to_be_bytes());
    out.extend_from_slice(&(-1i64).to_be_bytes());
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.extend_from_slice(&record_count.to_be_bytes());
    out.extend_from_slice(section);
    let crc = crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}

/// CRC-32C (Castagnoli), bit by bit: independent of the table weir-proto uses, and fast enough for fuzz inputs.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
        }
    }
    !crc
}
