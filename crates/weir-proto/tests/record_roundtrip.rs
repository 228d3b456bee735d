//! Round trips through `BatchBuilder` and the lazy decoder, truncation, CRC and codec errors, memory bounds.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use weir_proto::record::{
    batches, BatchBuilder, BatchOptions, Compression, ControlType, Header, ProducerIds, RecordError,
    TimestampType, BATCH_HEADER_LEN,
};

const LIMIT: usize = 64 << 20;

#[derive(Clone, Debug)]
struct In {
    ts: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn bytes_opt(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Vec::new())),
        4 => proptest::collection::vec(any::<u8>(), 0..max).prop_map(Some),
    ]
}

fn value_opt() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        8 => bytes_opt(300),
        1 => (1usize..64 * 1024, any::<u8>()).prop_map(|(n, b)| Some((0..n).map(|i| b.wrapping_add((i % 7) as u8)).collect())),
    ]
}

fn record_in() -> impl Strategy<Value = In> {
    (
        prop_oneof![any::<i64>(), 1_600_000_000_000i64..1_800_000_000_000],
        bytes_opt(40),
        value_opt(),
        proptest::collection::vec(("[a-z\u{e9}]{0,8}", bytes_opt(20)), 0..4),
    )
        .prop_map(|(ts, key, value, headers)| In {
            ts,
            key,
            value,
            headers,
        })
}

fn build(records: &[In], opts: BatchOptions, ids: ProducerIds) -> Bytes {
    let mut b = BatchBuilder::new(opts);
    let mut expected_size = BATCH_HEADER_LEN;
    for r in records {
        let hs: Vec<(&str, Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        let add = b.record_size(r.ts, r.key.as_deref(), r.value.as_deref(), &hs);
        b.push(r.ts, r.key.as_deref(), r.value.as_deref(), &hs);
        expected_size += add;
        assert_eq!(b.records_len() + BATCH_HEADER_LEN, expected_size);
    }
    assert_eq!(b.len(), records.len());
    let est = b.estimated_size();
    let sealed = b.seal(ids).unwrap();
    assert!(sealed.len() <= est, "sealed {} > estimate {est}", sealed.len());
    if opts.compression == Compression::None {
        assert_eq!(sealed.len(), est);
    }
    sealed
}

fn check(batch_bytes: &Bytes, records: &[In], opts: BatchOptions, ids: ProducerIds) {
    let mut it = batches(batch_bytes.clone());
    let batch = it.next().unwrap().unwrap();
    assert!(it.next().is_none());
    assert!(!it.is_truncated());
    check_batch(&batch, records, opts, ids);
}

fn check_batch(batch: &weir_proto::record::Batch, records: &[In], opts: BatchOptions, ids: ProducerIds) {
    batch.verify_crc().unwrap();
    assert_eq!(batch.magic(), 2);
    assert_eq!(batch.base_offset(), opts.base_offset);
    assert_eq!(batch.compression().unwrap(), opts.compression);
    assert_eq!(batch.timestamp_type(), opts.timestamp_type);
    assert_eq!(batch.is_transactional(), opts.transactional);
    assert!(!batch.is_control());
    assert_eq!(batch.record_count() as usize, records.len());
    assert_eq!(batch.last_offset(), opts.base_offset + records.len() as i64 - 1);
    assert_eq!(batch.next_offset(), opts.base_offset + records.len() as i64);
    assert_eq!(batch.producer_id(), ids.producer_id);
    assert_eq!(batch.producer_epoch(), ids.producer_epoch);
    assert_eq!(batch.base_sequence(), ids.base_sequence);
    assert_eq!(batch.partition_leader_epoch(), -1);
    assert_eq!(batch.base_timestamp(), records[0].ts);
    let max_ts = records.iter().map(|r| r.ts).max().unwrap();
    assert_eq!(batch.max_timestamp(), max_ts);
    let decoded: Vec<_> = batch.records(LIMIT).unwrap().collect::<Result<_, _>>().unwrap();
    // The borrowing path sees the same records.
    let mut rs = batch.records(LIMIT).unwrap();
    let mut i = 0;
    while let Some(r) = rs.next_ref() {
        let r = r.unwrap();
        assert_eq!(r.to_record(), decoded[i]);
        assert_eq!(r.key(), decoded[i].key.as_deref());
        assert_eq!(r.value(), decoded[i].value.as_deref());
        assert_eq!(r.offset(), decoded[i].offset);
        assert_eq!(r.timestamp(), decoded[i].timestamp);
        assert_eq!(r.header_count(), decoded[i].headers.len());
        i += 1;
    }
    assert_eq!(i, decoded.len());
    assert_eq!(decoded.len(), records.len());
    for (i, (d, r)) in decoded.iter().zip(records).enumerate() {
        assert_eq!(d.offset, opts.base_offset + i as i64);
        let ts = match opts.timestamp_type {
            TimestampType::CreateTime => r.ts,
            TimestampType::LogAppendTime => max_ts,
        };
        assert_eq!(d.timestamp, ts);
        assert_eq!(d.key.as_deref(), r.key.as_deref());
        assert_eq!(d.value.as_deref(), r.value.as_deref());
        assert_eq!(d.headers.len(), r.headers.len());
        let hs: Vec<Header> = d.headers.to_vec().unwrap();
        for (h, (k, v)) in hs.iter().zip(&r.headers) {
            assert_eq!(h.key_str(), Some(k.as_str()));
            assert_eq!(h.value.as_deref(), v.as_deref());
        }
    }
}

fn opts_strategy() -> impl Strategy<Value = BatchOptions> {
    (
        proptest::sample::select(Compression::ALL.to_vec()),
        any::<bool>(),
        any::<bool>(),
        0i64..1 << 40,
    )
        .prop_map(
            |(compression, log_append, transactional, base_offset)| BatchOptions {
                compression,
                timestamp_type: if log_append {
                    TimestampType::LogAppendTime
                } else {
                    TimestampType::CreateTime
                },
                transactional,
                base_offset,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_every_codec(records in proptest::collection::vec(record_in(), 1..40), opts in opts_strategy(),
                              pid in -1i64..1000, epoch in -1i16..10, seq in -1i32..1000) {
        let ids = ProducerIds { producer_id: pid, producer_epoch: epoch, base_sequence: seq };
        for codec in Compression::ALL {
            let opts = BatchOptions { compression: codec, ..opts };
            let bytes = build(&records, opts, ids);
            check(&bytes, &records, opts, ids);
        }
    }

    #[test]
    fn concatenated_batches(groups in proptest::collection::vec(
        (proptest::collection::vec(record_in(), 1..10), proptest::sample::select(Compression::ALL.to_vec())), 1..6)) {
        let mut blob = BytesMut::new();
        let mut offset = 0i64;
        let mut expected = Vec::new();
        for (records, codec) in &groups {
            let opts = BatchOptions { compression: *codec, base_offset: offset, ..Default::default() };
            blob.extend_from_slice(&build(records, opts, ProducerIds::NONE));
            expected.push((records.clone(), opts));
            offset += records.len() as i64;
        }
        let mut it = batches(blob.freeze());
        for (records, opts) in &expected {
            let b = it.next().unwrap().unwrap();
            check_batch(&b, records, *opts, ProducerIds::NONE);
        }
        prop_assert!(it.next().is_none());
        prop_assert!(!it.is_truncated());
    }
}

fn sample(n: usize, codec: Compression, base_offset: i64) -> Bytes {
    let mut b = BatchBuilder::new(BatchOptions {
        compression: codec,
        base_offset,
        ..Default::default()
    });
    for i in 0..n {
        let v = format!("value-{i}-{}", "x".repeat(i % 50));
        b.push(
            1_700_000_000_000 + i as i64,
            Some(format!("k{i}").as_bytes()),
            Some(v.as_bytes()),
            &[("h", Some(b"1"))],
        );
    }
    b.seal(ProducerIds::NONE).unwrap()
}

#[test]
fn truncated_trailing_batch_is_skipped() {
    for codec in Compression::ALL {
        let a = sample(5, codec, 0);
        let b = sample(7, codec, 5);
        let last = sample(9, codec, 12);
        let mut full = BytesMut::new();
        full.extend_from_slice(&a);
        full.extend_from_slice(&b);
        full.extend_from_slice(&last);
        let full = full.freeze();
        let prefix = a.len() + b.len();
        for cut in 1..last.len() {
            let mut it = batches(full.slice(..prefix + cut));
            let x = it.next().unwrap().unwrap();
            assert_eq!(x.base_offset(), 0);
            assert_eq!(x.records(LIMIT).unwrap().count(), 5);
            let y = it.next().unwrap().unwrap();
            assert_eq!(y.base_offset(), 5);
            y.verify_crc().unwrap();
            assert_eq!(y.records(LIMIT).unwrap().filter(|r| r.is_ok()).count(), 7);
            assert!(it.next().is_none(), "codec {codec} cut {cut}");
            assert!(it.is_truncated(), "codec {codec} cut {cut}");
            assert!(it.next().is_none());
        }
        let mut it = batches(full.clone());
        assert_eq!(it.by_ref().count(), 3);
        assert!(!it.is_truncated());
    }
}

#[test]
fn crc_mismatch_detected() {
    let good = sample(3, Compression::None, 42);
    let mut bad = good.to_vec();
    let n = bad.len();
    bad[n - 1] ^= 0x01;
    let batch = batches(Bytes::from(bad)).next().unwrap().unwrap();
    match batch.verify_crc() {
        Err(RecordError::CrcMismatch {
            base_offset,
            expected,
            actual,
        }) => {
            assert_eq!(base_offset, 42);
            assert_ne!(expected, actual);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_codec_names_base_offset() {
    for codec in 5u8..=7 {
        let mut bytes = sample(3, Compression::None, 1234).to_vec();
        bytes[22] = (bytes[22] & !0x07) | codec;
        let batch = batches(Bytes::from(bytes)).next().unwrap().unwrap();
        let e = batch.records(LIMIT).unwrap_err();
        assert!(
            matches!(e, RecordError::UnknownCompression { base_offset: 1234, codec: c } if c == codec),
            "{e:?}"
        );
        assert!(e.to_string().contains("1234"));
        assert!(batch.compression().is_err());
    }
}

#[test]
fn unsupported_magic_and_short_length() {
    let mut bytes = sample(2, Compression::None, 9).to_vec();
    bytes[16] = 1;
    let mut it = batches(Bytes::from(bytes));
    assert!(matches!(
        it.next(),
        Some(Err(RecordError::UnsupportedMagic {
            base_offset: 9,
            magic: 1
        }))
    ));
    assert!(it.next().is_none());

    let mut bytes = sample(2, Compression::None, 9).to_vec();
    bytes[8..12].copy_from_slice(&20i32.to_be_bytes());
    let mut it = batches(Bytes::from(bytes));
    assert!(matches!(
        it.next(),
        Some(Err(RecordError::Corrupt { offset: 9, .. }))
    ));
    assert!(it.next().is_none());
}

#[test]
fn gzip_zip_bomb_is_refused() {
    use std::io::Write;
    // 100 MB of zeros, gzip-compressed (about 100 KB), labelled as one record.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..100 {
        enc.write_all(&chunk).unwrap();
    }
    let compressed = enc.finish().unwrap();
    let batch = forge(Compression::Gzip, &compressed, 1, 77);
    let e = batch.records(1 << 20).unwrap_err();
    assert!(
        matches!(e, RecordError::DecompressedTooLarge { base_offset: 77, limit } if limit == 1 << 20),
        "{e:?}"
    );
}

#[test]
fn every_codec_bomb_is_refused() {
    let zeros = vec![0u8; 8 << 20];
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut b = BatchBuilder::new(BatchOptions {
            compression: codec,
            ..Default::default()
        });
        b.push(0, None, Some(&zeros), &[]);
        let sealed = b.seal(ProducerIds::NONE).unwrap();
        assert!(sealed.len() < 1 << 20, "{codec}: {}", sealed.len());
        let batch = batches(sealed).next().unwrap().unwrap();
        let e = batch.records(1 << 20).unwrap_err();
        assert!(
            matches!(e, RecordError::DecompressedTooLarge { .. }),
            "{codec}: {e:?}"
        );
        // With enough room it decodes.
        let r = batch.records(16 << 20).unwrap().next().unwrap().unwrap();
        assert_eq!(r.value.unwrap().len(), zeros.len());
    }
}

/// A batch around an arbitrary records section.
fn forge(codec: Compression, section: &[u8], count: i32, base_offset: i64) -> weir_proto::record::Batch {
    forge_attrs(codec.attribute_bits(), section, count, base_offset)
}

fn forge_attrs(attributes: i16, section: &[u8], count: i32, base_offset: i64) -> weir_proto::record::Batch {
    let mut v = Vec::new();
    v.extend_from_slice(&base_offset.to_be_bytes());
    v.extend_from_slice(&((BATCH_HEADER_LEN - 12 + section.len()) as i32).to_be_bytes());
    v.extend_from_slice(&(-1i32).to_be_bytes());
    v.push(2);
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&attributes.to_be_bytes());
    v.extend_from_slice(&(count - 1).to_be_bytes());
    v.extend_from_slice(&0i64.to_be_bytes());
    v.extend_from_slice(&0i64.to_be_bytes());
    v.extend_from_slice(&(-1i64).to_be_bytes());
    v.extend_from_slice(&(-1i16).to_be_bytes());
    v.extend_from_slice(&(-1i32).to_be_bytes());
    v.extend_from_slice(&count.to_be_bytes());
    v.extend_from_slice(section);
    let crc = crc32c::crc32c(&v[21..]);
    v[17..21].copy_from_slice(&crc.to_be_bytes());
    let b = batches(Bytes::from(v)).next().unwrap().unwrap();
    b.verify_crc().unwrap();
    b
}

#[test]
fn control_batch_records() {
    // Commit marker: key = version 0, type 1; value = version 0, coordinator epoch 5.
    let mut rec = Vec::new();
    let body: Vec<u8> = {
        let mut b = vec![0u8, 0, 0]; // attributes, timestamp delta 0, offset delta 0
        b.push(8); // key length 4 (zig-zag)
        b.extend_from_slice(&[0, 0, 0, 1]);
        b.push(12); // value length 6
        b.extend_from_slice(&[0, 0, 0, 0, 0, 5]);
        b.push(0); // no headers
        b
    };
    rec.push((body.len() as u8) << 1);
    rec.extend_from_slice(&body);
    let attrs = (1 << 4) | (1 << 5);
    let batch = forge_attrs(attrs, &rec, 1, 500);
    assert!(batch.is_control());
    assert!(batch.is_transactional());
    let r = batch.records(LIMIT).unwrap().next().unwrap().unwrap();
    assert_eq!(r.offset, 500);
    assert_eq!(r.control_type(), Some(ControlType::Commit));
}

#[test]
fn trailing_bytes_after_last_record_is_corrupt() {
    let good = sample(2, Compression::None, 0);
    let section = &good[BATCH_HEADER_LEN..];
    let mut with_extra = section.to_vec();
    with_extra.extend_from_slice(&[0; 8]);
    let batch = forge(Compression::None, &with_extra, 2, 3);
    let items: Vec<_> = batch.records(LIMIT).unwrap().collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[1].is_ok());
    assert!(matches!(items[2], Err(RecordError::Corrupt { offset: 3, .. })));
}

#[test]
fn empty_builder_refuses_to_seal() {
    let b = BatchBuilder::new(BatchOptions::default());
    assert!(b.is_empty());
    assert!(matches!(b.seal(ProducerIds::NONE), Err(RecordError::EmptyBatch)));
}

#[test]
fn compression_names() {
    for c in Compression::ALL {
        assert_eq!(c.to_string().parse::<Compression>().unwrap(), c);
        assert_eq!(Compression::from_attributes(c.attribute_bits() | 0x30), Some(c));
    }
    assert_eq!("ZSTD".parse::<Compression>().unwrap(), Compression::Zstd);
    assert!("brotli".parse::<Compression>().is_err());
    assert_eq!(Compression::from_attributes(5), None);
}
