//! One record batch with a valid header and CRC-32C around fuzzed bytes, so that the decompressors and the
//! record parser are reached for every codec.
//!
//! Input: `[mode, attributes_lo, count_hint, ts_delta...]` then the payload. Mode bit 0 chooses what the
//! payload is: the records section as it goes on the wire (fed to the chosen decompressor as is), or the
//! uncompressed records section, which is compressed here with the chosen codec (so the record parser sees the
//! fuzzed records through every decompressor). Whatever decodes cleanly is rebuilt with `BatchBuilder` and
//! decoded again: the records must come back equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_proto::record::{
    batches, BatchBuilder, BatchOptions, Compression, ProducerIds, Record, TimestampType,
};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (head, payload) = data.split_at(4);
    let mode = head[0];
    let codec_id = head[1] % 5;
    let codec = Compression::from_id(codec_id).expect("ids 0..=4 are codecs");
    // Timestamp type, transactional and control bits from the input; the codec always one that exists.
    let attributes = i16::from(codec_id) | (i16::from(head[1] & 0x78));
    let section = if mode & 1 == 0 {
        payload.to_vec()
    } else {
        compress(codec, payload, mode >> 1)
    };
    // The real count, when the payload is well formed, is unknown here: the input claims one.
    let count = i32::from(head[2] % 64);
    let base_ts = 1_700_000_000_000i64 + i64::from(head[3]);
    let batch_bytes = weir_fuzz::seal_raw(
        i64::from(head[3]) * 1000,
        attributes,
        count.saturating_sub(1).max(0),
        base_ts,
        base_ts + 5,
        count,
        &section,
    );
    let walk = weir_fuzz::walk_records(batch_bytes.clone());
    assert_eq!(walk.batches, 1);
    assert_eq!(walk.valid_crcs, 1, "the CRC written here is the one weir-proto computes");

    // Round trip what decoded cleanly, records and all.
    let batch = batches(batch_bytes).next().unwrap().unwrap();
    let Ok(records) = batch.records(weir_fuzz::MAX_DECOMPRESSED) else {
        return;
    };
    let Ok(decoded) = records.collect::<Result<Vec<Record>, _>>() else {
        return;
    };
    if decoded.is_empty() {
        return;
    }
    let mut headers = Vec::with_capacity(decoded.len());
    for r in &decoded {
        let Ok(hs) = r.headers.to_vec() else { return };
        let mut owned = Vec::with_capacity(hs.len());
        for h in hs {
            // BatchBuilder takes header keys as text; the decoder keeps them as bytes.
            let Ok(k) = String::from_utf8(h.key.to_vec()) else { return };
            owned.push((k, h.value));
        }
        headers.push(owned);
    }
    let mut b = BatchBuilder::new(BatchOptions {
        compression: codec,
        timestamp_type: batch.timestamp_type(),
        transactional: batch.is_transactional(),
        base_offset: batch.base_offset(),
    });
    for (r, hs) in decoded.iter().zip(&headers) {
        let hs: Vec<(&str, Option<&[u8]>)> = hs.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
        b.push(r.timestamp, r.key.as_deref(), r.value.as_deref(), &hs);
    }
    let sealed = b.seal(ProducerIds::NONE).expect("decoded records re-encode");
    let again = batches(sealed).next().unwrap().unwrap();
    again.verify_crc().expect("a sealed batch has a valid CRC");
    let redecoded: Vec<Record> = again
        .records(weir_fuzz::MAX_DECOMPRESSED.max(again.records_section_len() * 2))
        .expect("a sealed batch decodes")
        .collect::<Result<_, _>>()
        .expect("a sealed batch's records decode");
    assert_eq!(redecoded.len(), decoded.len());
    for (i, (a, b)) in decoded.iter().zip(&redecoded).enumerate() {
        assert_eq!(a.key, b.key, "record {i}: key");
        assert_eq!(a.value, b.value, "record {i}: value");
        assert_eq!(
            a.headers.to_vec().unwrap(),
            b.headers.to_vec().unwrap(),
            "record {i}: headers"
        );
        match batch.timestamp_type() {
            TimestampType::CreateTime => assert_eq!(a.timestamp, b.timestamp, "record {i}: timestamp"),
            // The builder keeps the records' own times; the decoder reads the batch's append time.
            TimestampType::LogAppendTime => {}
        }
        assert_eq!(b.offset, batch.base_offset().wrapping_add(i as i64), "record {i}: offset");
    }
});

/// The records section compressed with `codec` by the codec crates themselves (not weir-proto's compressor),
/// in a framing a producer may use: `variant` picks raw or xerial snappy, independent or linked LZ4 blocks with
/// or without checksums, and the gzip and zstd levels.
fn compress(codec: Compression, payload: &[u8], variant: u8) -> Vec<u8> {
    use std::io::Write;
    match codec {
        Compression::None => payload.to_vec(),
        Compression::Gzip => {
            let level = flate2::Compression::new(u32::from(variant % 10));
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), level);
            enc.write_all(payload).unwrap();
            enc.finish().unwrap()
        }
        Compression::Snappy => {
            let block = snap::raw::Encoder::new().compress_vec(payload).unwrap();
            if variant & 1 == 0 {
                block
            } else {
                let mut out = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
                out
            }
        }
        Compression::Lz4 => {
            use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
            let info = FrameInfo::new()
                .block_size(BlockSize::Max64KB)
                .block_mode(if variant & 1 == 0 { BlockMode::Independent } else { BlockMode::Linked })
                .block_checksums(variant & 2 != 0)
                .content_checksum(variant & 4 != 0);
            let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(payload).unwrap();
            enc.finish().unwrap()
        }
        Compression::Zstd => zstd::bulk::compress(payload, i32::from(variant % 8) + 1).unwrap(),
    }
}
