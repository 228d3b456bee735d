//! Compression and bounded decompression of the records section.

use std::io::{Read, Write};

use super::{Compression, RecordError};

/// Header of the xerial (snappy-java) framing: magic `\x82SNAPPY\0`, version 1, minimum compatible version 1.
pub(crate) const XERIAL_HEADER: [u8; 16] = *b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// Uncompressed bytes per xerial chunk, as snappy-java's `SnappyOutputStream` writes by default.
const XERIAL_CHUNK: usize = 32 * 1024;
/// zstd compression level the Java client and librdkafka use by default.
const ZSTD_LEVEL: i32 = 3;
/// gzip level the Java client uses by default (zlib's default).
const GZIP_LEVEL: u32 = 6;

/// Smallest zstd window (log2) accepted regardless of `max_decompressed`: 8 MiB covers every level up to 19.
const ZSTD_MIN_WINDOW_LOG: u32 = 23;
/// Largest zstd window (log2) ever accepted: zstd's own default limit (128 MiB).
const ZSTD_MAX_WINDOW_LOG: u32 = 27;

/// Upper bound of the compressed size of `n` uncompressed bytes, framing included.
pub(crate) fn max_compressed_len(codec: Compression, n: usize) -> usize {
    match codec {
        Compression::None => n,
        // zlib's deflateBound plus the 10-byte gzip header and 8-byte trailer.
        Compression::Gzip => n + (n >> 12) + (n >> 14) + (n >> 25) + 13 + 18,
        Compression::Snappy => {
            let chunks = n.div_ceil(XERIAL_CHUNK);
            let full = n / XERIAL_CHUNK;
            let rest = n % XERIAL_CHUNK;
            let mut total = XERIAL_HEADER.len() + chunks * 4;
            total += full * snap::raw::max_compress_len(XERIAL_CHUNK);
            if rest > 0 {
                total += snap::raw::max_compress_len(rest);
            }
            total
        }
        // 15-byte max frame header, 4-byte size per 64 KiB block (stored uncompressed at worst), end mark.
        Compression::Lz4 => n + n.div_ceil(64 * 1024) * 4 + 15 + 4 + 4,
        // ZSTD_COMPRESSBOUND.
        Compression::Zstd => {
            let small = if n < (128 << 10) {
                ((128 << 10) - n) >> 11
            } else {
                0
            };
            n + (n >> 8) + small
        }
    }
}

/// Appends the compressed form of `src` to `out`.
pub(crate) fn compress(codec: Compression, src: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
    let err = |e: &dyn std::fmt::Display| RecordError::Compress {
        codec,
        reason: e.to_string(),
    };
    match codec {
        Compression::None => out.extend_from_slice(src),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::new(GZIP_LEVEL));
            enc.write_all(src).map_err(|e| err(&e))?;
            enc.finish().map_err(|e| err(&e))?;
        }
        Compression::Snappy => {
            out.extend_from_slice(&XERIAL_HEADER);
            let mut enc = snap::raw::Encoder::new();
            for chunk in src.chunks(XERIAL_CHUNK) {
                let len_at = out.len();
                let bound = snap::raw::max_compress_len(chunk.len());
                out.resize(len_at + 4 + bound, 0);
                let n = enc.compress(chunk, &mut out[len_at + 4..]).map_err(|e| err(&e))?;
                out.truncate(len_at + 4 + n);
                let n32 = u32::try_from(n).map_err(|e| err(&e))?;
                out[len_at..len_at + 4].copy_from_slice(&n32.to_be_bytes());
            }
        }
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
            enc.write_all(src).map_err(|e| err(&e))?;
            enc.finish().map_err(|e| err(&e))?;
        }
        Compression::Zstd => {
            let start = out.len();
            out.resize(start + zstd::zstd_safe::compress_bound(src.len()), 0);
            let mut c = zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| err(&e))?;
            let n = c
                .compress_to_buffer(src, &mut out[start..])
                .map_err(|e| err(&e))?;
            out.truncate(start + n);
        }
    }
    Ok(())
}

/// Decompresses `src`, refusing to produce more than `limit` bytes.
pub(crate) fn decompress(
    codec: Compression,
    src: &[u8],
    limit: usize,
    base_offset: i64,
) -> Result<Vec<u8>, RecordError> {
    let too_large = || RecordError::DecompressedTooLarge { base_offset, limit };
    let corrupt = |reason: String| RecordError::Decompress {
        base_offset,
        codec,
        reason,
    };
    let read_bounded = |r: &mut dyn Read| -> Result<Vec<u8>, RecordError> {
        // A first guess from the compressed size, never from a size the data claims.
        let mut out = Vec::with_capacity(src.len().saturating_mul(4).min(limit).min(16 << 20));
        let cap = (limit as u64).saturating_add(1);
        r.take(cap)
            .read_to_end(&mut out)
            .map_err(|e| corrupt(e.to_string()))?;
        if out.len() > limit {
            return Err(too_large());
        }
        // The records point into this buffer while they are buffered (the first guess, or the doubling while
        // reading, can leave a multiple of what they use).
        super::release_slack(&mut out);
        Ok(out)
    };
    match codec {
        Compression::None => {
            if src.len() > limit {
                return Err(too_large());
            }
            Ok(src.to_vec())
        }
        Compression::Gzip => read_bounded(&mut flate2::read::MultiGzDecoder::new(src)),
        Compression::Lz4 => read_bounded(&mut lz4_flex::frame::FrameDecoder::new(src)),
        Compression::Zstd => {
            let mut dec =
                zstd::stream::read::Decoder::with_buffer(src).map_err(|e| corrupt(e.to_string()))?;
            let want = usize::BITS - limit.max(1).saturating_sub(1).leading_zeros();
            let window_log = want.clamp(ZSTD_MIN_WINDOW_LOG, ZSTD_MAX_WINDOW_LOG);
            dec.window_log_max(window_log)
                .map_err(|e| corrupt(e.to_string()))?;
            read_bounded(&mut dec)
        }
        Compression::Snappy => snappy_decompress(src, limit).map_err(|e| match e {
            SnappyError::TooLarge => too_large(),
            SnappyError::Corrupt(reason) => corrupt(reason),
        }),
    }
}

enum SnappyError {
    TooLarge,
    Corrupt(String),
}

impl From<snap::Error> for SnappyError {
    fn from(e: snap::Error) -> Self {
        SnappyError::Corrupt(e.to_string())
    }
}

/// Raw snappy block into `out`, bounded: the claimed length is checked against `limit` before allocating.
fn snappy_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), SnappyError> {
    let n = snap::raw::decompress_len(block)?;
    // Snappy expands at most 64 bytes per 3-byte copy element: a block claiming more is corrupt, and is
    // refused before its claim is allocated.
    if n > block.len().saturating_mul(22) {
        return Err(SnappyError::Corrupt(format!(
            "a {}-byte snappy block claims {n} bytes",
            block.len()
        )));
    }
    let start = out.len();
    if n > limit.saturating_sub(start) {
        return Err(SnappyError::TooLarge);
    }
    out.resize(start + n, 0);
    let written = snap::raw::Decoder::new().decompress(block, &mut out[start..])?;
    out.truncate(start + written);
    Ok(())
}

/// Xerial framing when its magic is present (possibly several concatenated streams), else one raw block.
fn snappy_decompress(src: &[u8], limit: usize) -> Result<Vec<u8>, SnappyError> {
    let mut out = Vec::new();
    if !src.starts_with(&XERIAL_HEADER[..8]) {
        snappy_block(src, &mut out, limit)?;
        return Ok(out);
    }
    if src.len() < XERIAL_HEADER.len() {
        return Err(SnappyError::Corrupt("truncated xerial snappy header".into()));
    }
    let mut pos = XERIAL_HEADER.len();
    while pos < src.len() {
        // A concatenated stream starts with another header (snappy-java accepts this too).
        if src[pos..].starts_with(&XERIAL_HEADER[..8]) {
            if src.len() - pos < XERIAL_HEADER.len() {
                return Err(SnappyError::Corrupt("truncated xerial snappy header".into()));
            }
            pos += XERIAL_HEADER.len();
            continue;
        }
        let Some(len_bytes) = src.get(pos..pos + 4) else {
            return Err(SnappyError::Corrupt("truncated xerial chunk length".into()));
        };
        let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        pos += 4;
        let Some(block) = src.get(pos..pos.saturating_add(len)) else {
            return Err(SnappyError::Corrupt(
                "xerial chunk runs past the end of the data".into(),
            ));
        };
        pos += len;
        snappy_block(block, &mut out, limit)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_and_respects_bound() {
        let data: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 1000) as u8)
            .collect();
        for codec in Compression::ALL {
            let mut out = Vec::new();
            compress(codec, &data, &mut out).unwrap();
            assert!(out.len() <= max_compressed_len(codec, data.len()), "{codec}");
            assert_eq!(decompress(codec, &out, data.len(), 7).unwrap(), data, "{codec}");
            let e = decompress(codec, &out, data.len() - 1, 7).unwrap_err();
            assert!(
                matches!(e, RecordError::DecompressedTooLarge { base_offset: 7, .. }),
                "{codec}: {e}"
            );
        }
    }

    #[test]
    fn incompressible_within_bound() {
        let mut x = 0x1234_5678u32;
        let data: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for n in [0, 1, 100, 65_536, 300_000] {
            for codec in Compression::ALL {
                let mut out = Vec::new();
                compress(codec, &data[..n], &mut out).unwrap();
                assert!(
                    out.len() <= max_compressed_len(codec, n),
                    "{codec} {n}: {}",
                    out.len()
                );
            }
        }
    }

    #[test]
    fn lz4_linked_blocks_and_checksums_are_read() {
        // librdkafka writes LZ4F defaults: linked blocks; other writers may add checksums.
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 97) as u8).collect();
        let info = lz4_flex::frame::FrameInfo::new()
            .block_mode(lz4_flex::frame::BlockMode::Linked)
            .block_checksums(true)
            .content_checksum(true)
            .content_size(Some(data.len() as u64));
        let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(&data).unwrap();
        let framed = enc.finish().unwrap();
        assert_eq!(
            decompress(Compression::Lz4, &framed, data.len(), 0).unwrap(),
            data
        );
    }

    #[test]
    fn zstd_window_too_large_for_limit_is_refused_cleanly() {
        // A frame declaring a 128 MiB window without content size: accepted only when the limit is that large.
        let data = vec![7u8; 1000];
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.set_parameter(zstd::zstd_safe::CParameter::WindowLog(27))
            .unwrap();
        enc.include_contentsize(false).unwrap();
        enc.write_all(&data).unwrap();
        let framed = enc.finish().unwrap();
        assert!(decompress(Compression::Zstd, &framed, 1 << 20, 0).is_err());
        assert_eq!(
            decompress(Compression::Zstd, &framed, 128 << 20, 0).unwrap(),
            data
        );
    }

    #[test]
    fn snappy_claims_beyond_its_expansion_are_corrupt_and_the_densest_real_data_is_read() {
        // A 6-byte block (varint length 50 MiB, one literal) claiming 50 MiB is refused before allocating.
        let mut claim = Vec::new();
        let mut n: u32 = 50 << 20;
        while n >= 0x80 {
            claim.push((n as u8) | 0x80);
            n >>= 7;
        }
        claim.push(n as u8);
        claim.extend_from_slice(&[0, b'x']);
        let err = decompress(Compression::Snappy, &claim, 64 << 20, 0).unwrap_err();
        assert!(err.to_string().contains("claims"), "{err}");
        // Zeros compress as densely as snappy can: still read.
        let zeros = vec![0u8; 4 << 20];
        let raw = snap::raw::Encoder::new().compress_vec(&zeros).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw, 8 << 20, 0).unwrap(), zeros);
    }

    #[test]
    fn raw_snappy_is_read() {
        let data = b"hello hello hello hello raw snappy".repeat(100);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw, 1 << 20, 0).unwrap(), data);
    }

    #[test]
    fn concatenated_xerial_streams_are_read() {
        let mut a = Vec::new();
        compress(Compression::Snappy, b"first part ", &mut a).unwrap();
        compress(Compression::Snappy, b"second part", &mut a).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &a, 1 << 20, 0).unwrap(),
            b"first part second part"
        );
    }
}
