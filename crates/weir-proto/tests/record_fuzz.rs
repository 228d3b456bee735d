//! "Cannot panic": arbitrary bytes and mutated valid batches only ever give `Ok` or `Err`, and finish fast.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use weir_proto::record::{batches, BatchBuilder, BatchOptions, Compression, ProducerIds, BATCH_HEADER_LEN};

const LIMIT: usize = 1 << 20;

/// Walks everything the decoder offers; returns how many items were produced.
fn exercise(input: Bytes) -> usize {
    let start = Instant::now();
    let len = input.len();
    let mut items = 0usize;
    let mut it = batches(input);
    for batch in it.by_ref() {
        items += 1;
        let Ok(batch) = batch else { continue };
        let _ = batch.verify_crc();
        let _ = (
            batch.base_offset(),
            batch.last_offset(),
            batch.next_offset(),
            batch.batch_len(),
            batch.partition_leader_epoch(),
            batch.magic(),
            batch.crc(),
            batch.compression(),
            batch.timestamp_type(),
            batch.is_transactional(),
            batch.is_control(),
            batch.base_timestamp(),
            batch.max_timestamp(),
            batch.producer_id(),
            batch.producer_epoch(),
            batch.base_sequence(),
            batch.record_count(),
            batch.uncompressed_len_hint(),
        );
        let _ = format!("{batch:?}");
        if let Ok(mut records) = batch.records(LIMIT) {
            let mut n = 0usize;
            while let Some(r) = records.next_ref() {
                n += 1;
                assert!(n <= records_bound(&batch));
                if let Ok(r) = r {
                    let _ = (
                        r.offset(),
                        r.timestamp(),
                        r.key(),
                        r.value(),
                        r.header_count(),
                        format!("{r:?}"),
                    );
                    let _ = r.headers().to_vec();
                }
            }
        }
        let Ok(records) = batch.records(LIMIT) else {
            continue;
        };
        let data_len = records.data_len();
        let mut n = 0usize;
        for r in records {
            n += 1;
            assert!(n <= data_len + 1, "more records than bytes");
            let Ok(r) = r else { continue };
            let _ = r.control_type();
            let _ = r.headers.get(b"k");
            let _ = format!("{r:?}");
            let mut h = 0usize;
            for header in &r.headers {
                h += 1;
                assert!(h <= r.headers.raw().len() + 1);
                if let Ok(header) = header {
                    let _ = header.key_str();
                }
            }
        }
        items += n;
    }
    let _ = it.is_truncated();
    assert!(items <= len + 1, "more batches than bytes");
    assert!(start.elapsed() < Duration::from_secs(5), "slow decode");
    items
}

fn records_bound(batch: &weir_proto::record::Batch) -> usize {
    LIMIT.max(batch.batch_len()) + 1
}

fn valid_blob(spec: &[(u8, usize, usize)]) -> Vec<u8> {
    let mut blob = BytesMut::new();
    let mut offset = 0;
    for &(codec, n, vlen) in spec {
        let mut b = BatchBuilder::new(BatchOptions {
            compression: Compression::ALL[codec as usize % 5],
            base_offset: offset,
            ..Default::default()
        });
        for i in 0..n {
            let v = vec![b'a' + (i % 26) as u8; vlen];
            let key = format!("key{i}");
            let hs: &[(&str, Option<&[u8]>)] = if i % 2 == 0 {
                &[("k", Some(b"v")), ("n", None)]
            } else {
                &[]
            };
            b.push(1_000 + i as i64, Some(key.as_bytes()), Some(&v), hs);
        }
        offset += n as i64;
        blob.extend_from_slice(&b.seal(ProducerIds::NONE).unwrap());
    }
    blob.to_vec()
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    SetI32(usize, i32),
    Varintish(usize, Vec<u8>),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting_i32 = prop_oneof![
        any::<i32>(),
        Just(i32::MAX),
        Just(i32::MIN),
        Just(-1),
        Just(0),
        Just(1),
        Just(48),
        Just(49),
        Just(1 << 20),
    ];
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Set(p, b)),
        (any::<usize>(), interesting_i32).prop_map(|(p, v)| Mutation::SetI32(p, v)),
        (
            any::<usize>(),
            prop_oneof![
                Just(vec![0xff; 10]),
                Just(vec![0x80; 12]),
                Just(vec![0x01]),
                Just(vec![0x03]),
                Just(vec![0xfe, 0xff, 0xff, 0xff, 0x0f]),
                proptest::collection::vec(any::<u8>(), 1..6)
            ]
        )
            .prop_map(|(p, v)| Mutation::Varintish(p, v)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(p, v)| Mutation::Insert(p, v)),
        (any::<usize>(), 1usize..16).prop_map(|(p, n)| Mutation::Remove(p, n)),
    ]
}

fn apply(buf: &mut Vec<u8>, m: &Mutation) {
    if buf.is_empty() {
        return;
    }
    let len = buf.len();
    match m {
        Mutation::Flip(p, b) => buf[p % len] ^= b,
        Mutation::Set(p, b) => buf[p % len] = *b,
        Mutation::SetI32(p, v) => {
            // Header fields (batch length at 8, record count at 57) are the interesting targets.
            let at = match p % 3 {
                0 => 8,
                1 => 57,
                _ => p % len,
            };
            for (i, b) in v.to_be_bytes().iter().enumerate() {
                if let Some(x) = buf.get_mut(at + i) {
                    *x = *b;
                }
            }
        }
        Mutation::Varintish(p, v) => {
            let at = p % len;
            for (i, b) in v.iter().enumerate() {
                if let Some(x) = buf.get_mut(at + i) {
                    *x = *b;
                }
            }
        }
        Mutation::Truncate(p) => buf.truncate(p % len),
        Mutation::Insert(p, v) => {
            let at = p % len;
            buf.splice(at..at, v.iter().copied());
        }
        Mutation::Remove(p, n) => {
            let at = p % len;
            let end = (at + n).min(len);
            buf.drain(at..end);
        }
    }
}

/// Re-wraps a mutated (uncompressed) records section in a valid header with `codec`, so that corruption
/// reaches the record parser behind every decompressor.
fn rewrap(section: &[u8], count: i32, codec: Compression) -> Bytes {
    let compressed = compress(codec, section);
    let mut v = Vec::with_capacity(BATCH_HEADER_LEN + compressed.len());
    v.extend_from_slice(&0i64.to_be_bytes());
    v.extend_from_slice(&((BATCH_HEADER_LEN - 12 + compressed.len()) as i32).to_be_bytes());
    v.extend_from_slice(&(-1i32).to_be_bytes());
    v.push(2);
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&codec.attribute_bits().to_be_bytes());
    v.extend_from_slice(&(count.wrapping_sub(1)).to_be_bytes());
    v.extend_from_slice(&[0; 16]);
    v.extend_from_slice(&(-1i64).to_be_bytes());
    v.extend_from_slice(&(-1i16).to_be_bytes());
    v.extend_from_slice(&(-1i32).to_be_bytes());
    v.extend_from_slice(&count.to_be_bytes());
    v.extend_from_slice(&compressed);
    Bytes::from(v)
}

fn compress(codec: Compression, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match codec {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Snappy => snap::raw::Encoder::new().compress_vec(data).unwrap(),
        Compression::Lz4 => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd::bulk::compress(data, 1).unwrap(),
    }
}

fn blob_spec() -> impl Strategy<Value = Vec<(u8, usize, usize)>> {
    proptest::collection::vec((0u8..5, 1usize..20, 0usize..200), 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        exercise(Bytes::from(data));
    }

    #[test]
    fn arbitrary_bytes_behind_valid_prefix(data in proptest::collection::vec(any::<u8>(), 0..300),
                                           count in any::<i32>(), codec in 0usize..5) {
        // A valid batch header around garbage: reaches the decompressors and the record parser.
        exercise(rewrap(&data, count, Compression::ALL[codec]));
        // Same garbage stored raw behind a header claiming each codec.
        let mut v = rewrap(&[], count, Compression::None).to_vec();
        v[22] = Compression::ALL[codec].id();
        v.extend_from_slice(&data);
        let len = (v.len() - 12) as i32;
        v[8..12].copy_from_slice(&len.to_be_bytes());
        exercise(Bytes::from(v));
    }

    #[test]
    fn mutated_valid_batches(spec in blob_spec(), muts in proptest::collection::vec(mutation(), 1..6)) {
        let mut blob = valid_blob(&spec);
        for m in &muts {
            apply(&mut blob, m);
        }
        exercise(Bytes::from(blob));
    }

    #[test]
    fn mutated_records_behind_every_codec(n in 1usize..20, vlen in 0usize..100,
                                          muts in proptest::collection::vec(mutation(), 1..4),
                                          count_delta in -2i32..3, codec in 0usize..5) {
        let blob = valid_blob(&[(0, n, vlen)]);
        let mut section = blob[BATCH_HEADER_LEN..].to_vec();
        for m in &muts {
            apply(&mut section, m);
        }
        exercise(rewrap(&section, n as i32 + count_delta, Compression::ALL[codec]));
    }
}

#[test]
fn valid_blob_exercises_everything() {
    let blob = valid_blob(&[(0, 3, 10), (1, 3, 10), (2, 3, 10), (3, 3, 10), (4, 3, 10)]);
    assert_eq!(exercise(Bytes::from(blob)), 5 + 15);
}

#[test]
fn huge_counts_and_lengths_do_not_allocate_or_loop() {
    for count in [i32::MAX, i32::MAX - 1, 1 << 24] {
        for codec in Compression::ALL {
            let b = batches(rewrap(&[0u8; 64], count, codec)).next().unwrap().unwrap();
            let start = Instant::now();
            if let Ok(records) = b.records(LIMIT) {
                assert!(records.take(1000).count() <= 65);
            }
            assert!(start.elapsed() < Duration::from_secs(1));
        }
    }
    // A batch claiming 2 GiB but holding 100 bytes is a truncated trailing batch, not an allocation.
    let mut v = rewrap(&[0u8; 40], 1, Compression::None).to_vec();
    v[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    let mut it = batches(Bytes::from(v));
    assert!(it.next().is_none());
    assert!(it.is_truncated());
}
