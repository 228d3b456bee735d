//! Record batch v2: weir's codec against `kafka_protocol::records` on the same data, per codec.
//!
//! `decode`: one batch of 1,000 records × 100-byte printable values with small keys; weir verifies the CRC,
//! iterates every record and touches key and value lengths; kafka-protocol decodes the same bytes (it checks the
//! CRC itself) and the same lengths are touched. `weir` yields owned `Record`s (zero-copy `Bytes` slices: two
//! atomic reference-count operations per key/value); `weir-ref` uses the borrowing `Records::next_ref`.
//! `encode`: weir `BatchBuilder` push × 1,000 + seal against `RecordBatchEncoder::encode` of prebuilt records.

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KpTimestampType,
};
use weir_proto::record::{batches, BatchBuilder, BatchOptions, Compression, ProducerIds};

const RECORDS: usize = 1_000;
const VALUE_LEN: usize = 100;
const T0: i64 = 1_700_000_000_000;

fn kp(c: Compression) -> KpCompression {
    match c {
        Compression::None => KpCompression::None,
        Compression::Gzip => KpCompression::Gzip,
        Compression::Snappy => KpCompression::Snappy,
        Compression::Lz4 => KpCompression::Lz4,
        Compression::Zstd => KpCompression::Zstd,
    }
}

/// Random-ish printable values (compressible like real text/JSON, not trivially), small keys.
fn data() -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let words: [&[u8]; 12] = [
        b"user",
        b"order",
        b"id",
        b"\"status\":",
        b"ok",
        b"amount",
        b"eur",
        b"2024-05-01",
        b"{",
        b"}",
        b",",
        b"item",
    ];
    (0..RECORDS)
        .map(|i| {
            let mut v = Vec::with_capacity(VALUE_LEN);
            while v.len() < VALUE_LEN {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x % 3 == 0 {
                    v.extend_from_slice(words[(x >> 8) as usize % words.len()]);
                } else {
                    v.push(b'!' + ((x >> 16) % 94) as u8);
                }
            }
            v.truncate(VALUE_LEN);
            (format!("key-{i}").into_bytes(), v)
        })
        .collect()
}

fn weir_encode(data: &[(Vec<u8>, Vec<u8>)], codec: Compression) -> Bytes {
    let mut b = BatchBuilder::new(BatchOptions {
        compression: codec,
        ..Default::default()
    });
    for (i, (k, v)) in data.iter().enumerate() {
        b.push(T0 + i as i64, Some(k), Some(v), &[]);
    }
    b.seal(ProducerIds::NONE).unwrap()
}

fn kp_records(data: &[(Vec<u8>, Vec<u8>)]) -> Vec<KpRecord> {
    data.iter()
        .enumerate()
        .map(|(i, (k, v))| KpRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: KpTimestampType::Creation,
            offset: i as i64,
            sequence: -1 + i as i32,
            timestamp: T0 + i as i64,
            key: Some(Bytes::copy_from_slice(k)),
            value: Some(Bytes::copy_from_slice(v)),
            headers: IndexMap::new(),
        })
        .collect()
}

fn weir_decode(bytes: &Bytes) -> usize {
    let mut sum = 0;
    for batch in batches(bytes.clone()) {
        let batch = batch.unwrap();
        batch.verify_crc().unwrap();
        for r in batch.records(64 << 20).unwrap() {
            let r = r.unwrap();
            sum += r.key.map_or(0, |k| k.len()) + r.value.map_or(0, |v| v.len()) + r.headers.len();
        }
    }
    sum
}

/// Same work through the borrowing API (`Records::next_ref`): no reference counting per record.
fn weir_decode_ref(bytes: &Bytes) -> usize {
    let mut sum = 0;
    for batch in batches(bytes.clone()) {
        let batch = batch.unwrap();
        batch.verify_crc().unwrap();
        let mut records = batch.records(64 << 20).unwrap();
        while let Some(r) = records.next_ref() {
            let r = r.unwrap();
            sum += r.key().map_or(0, |k| k.len()) + r.value().map_or(0, |v| v.len()) + r.header_count();
        }
    }
    sum
}

fn kp_decode(bytes: &Bytes) -> usize {
    let mut buf = bytes.clone();
    let set = RecordBatchDecoder::decode(&mut buf).unwrap();
    set.records
        .iter()
        .map(|r| {
            r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()) + r.headers.len()
        })
        .sum()
}

fn decode(c: &mut Criterion) {
    let data = data();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(RECORDS as u64));
    for codec in Compression::ALL {
        let bytes = weir_encode(&data, codec);
        assert_eq!(weir_decode(&bytes), kp_decode(&bytes));
        assert_eq!(weir_decode_ref(&bytes), kp_decode(&bytes));
        g.bench_with_input(BenchmarkId::new("weir", codec), &bytes, |b, bytes| {
            b.iter(|| black_box(weir_decode(black_box(bytes))))
        });
        g.bench_with_input(BenchmarkId::new("weir-ref", codec), &bytes, |b, bytes| {
            b.iter(|| black_box(weir_decode_ref(black_box(bytes))))
        });
        g.bench_with_input(BenchmarkId::new("kafka-protocol", codec), &bytes, |b, bytes| {
            b.iter(|| black_box(kp_decode(black_box(bytes))))
        });
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let data = data();
    let records = kp_records(&data);
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(RECORDS as u64));
    for codec in Compression::ALL {
        g.bench_with_input(BenchmarkId::new("weir", codec), &data, |b, data| {
            b.iter(|| black_box(weir_encode(black_box(data), codec)))
        });
        let opts = RecordEncodeOptions {
            version: 2,
            compression: kp(codec),
        };
        g.bench_with_input(
            BenchmarkId::new("kafka-protocol", codec),
            &records,
            |b, records| {
                b.iter(|| {
                    let mut buf = BytesMut::new();
                    RecordBatchEncoder::encode(&mut buf, black_box(records), &opts).unwrap();
                    black_box(buf)
                })
            },
        );
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = decode, encode
}
criterion_main!(benches);
