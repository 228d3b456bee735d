//! Cross-checks against an independent implementation: `kafka_protocol::records`.
//!
//! We read batches its encoder writes (every codec), and its decoder reads batches our builder writes.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KpTimestampType,
};
use proptest::prelude::*;
use weir_proto::record::{batches, BatchBuilder, BatchOptions, Compression, ProducerIds};

fn kp(c: Compression) -> KpCompression {
    match c {
        Compression::None => KpCompression::None,
        Compression::Gzip => KpCompression::Gzip,
        Compression::Snappy => KpCompression::Snappy,
        Compression::Lz4 => KpCompression::Lz4,
        Compression::Zstd => KpCompression::Zstd,
    }
}

#[derive(Clone, Debug)]
struct In {
    ts: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    /// Unique keys: kafka-protocol keeps headers in a map.
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn bytes_opt(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Vec::new())),
        4 => proptest::collection::vec(any::<u8>(), 0..max).prop_map(Some),
    ]
}

fn record_in() -> impl Strategy<Value = In> {
    (
        1_600_000_000_000i64..1_800_000_000_000,
        bytes_opt(40),
        prop_oneof![4 => bytes_opt(500), 1 => (1usize..70_000).prop_map(|n| Some(vec![b'z'; n]))],
        proptest::collection::btree_map("[a-z]{1,6}", bytes_opt(20), 0..4),
    )
        .prop_map(|(ts, key, value, headers)| In {
            ts,
            key,
            value,
            headers: headers.into_iter().collect(),
        })
}

fn kp_records(records: &[In], base_offset: i64, ids: ProducerIds) -> Vec<KpRecord> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| KpRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: ids.producer_id,
            producer_epoch: ids.producer_epoch,
            timestamp_type: KpTimestampType::Creation,
            offset: base_offset + i as i64,
            // kafka-protocol groups records into one batch while `offset - sequence` is constant.
            sequence: ids.base_sequence.wrapping_add(i as i32),
            timestamp: r.ts,
            key: r.key.clone().map(Bytes::from),
            value: r.value.clone().map(Bytes::from),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone().map(Bytes::from)))
                .collect::<IndexMap<_, _>>(),
        })
        .collect()
}

fn weir_batch(records: &[In], codec: Compression, base_offset: i64, ids: ProducerIds) -> Bytes {
    let mut b = BatchBuilder::new(BatchOptions {
        compression: codec,
        base_offset,
        ..Default::default()
    });
    for r in records {
        let hs: Vec<(&str, Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        b.push(r.ts, r.key.as_deref(), r.value.as_deref(), &hs);
    }
    b.seal(ids).unwrap()
}

fn assert_weir_reads(bytes: Bytes, records: &[In], codec: Compression, base_offset: i64) {
    let mut it = batches(bytes);
    let batch = it.next().unwrap().unwrap();
    assert!(it.next().is_none() && !it.is_truncated());
    batch.verify_crc().unwrap();
    assert_eq!(batch.compression().unwrap(), codec);
    assert_eq!(batch.base_offset(), base_offset);
    assert_eq!(batch.record_count() as usize, records.len());
    let got: Vec<_> = batch
        .records(64 << 20)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got.len(), records.len());
    for (i, (g, r)) in got.iter().zip(records).enumerate() {
        assert_eq!(g.offset, base_offset + i as i64);
        assert_eq!(g.timestamp, r.ts);
        assert_eq!(g.key.as_deref(), r.key.as_deref());
        assert_eq!(g.value.as_deref(), r.value.as_deref());
        let hs = g.headers.to_vec().unwrap();
        assert_eq!(hs.len(), r.headers.len());
        for (h, (k, v)) in hs.iter().zip(&r.headers) {
            assert_eq!(h.key_str(), Some(k.as_str()));
            assert_eq!(h.value.as_deref(), v.as_deref());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn weir_reads_kafka_protocol(records in proptest::collection::vec(record_in(), 1..30), base in 0i64..1 << 40) {
        let ids = ProducerIds { producer_id: 17, producer_epoch: 2, base_sequence: 40 };
        let kp_recs = kp_records(&records, base, ids);
        for codec in Compression::ALL {
            let mut buf = BytesMut::new();
            RecordBatchEncoder::encode(&mut buf, &kp_recs, &RecordEncodeOptions { version: 2, compression: kp(codec) }).unwrap();
            let bytes = buf.freeze();
            assert_weir_reads(bytes.clone(), &records, codec, base);
            let b = batches(bytes).next().unwrap().unwrap();
            prop_assert_eq!(b.producer_id(), 17);
            prop_assert_eq!(b.producer_epoch(), 2);
            prop_assert_eq!(b.base_sequence(), 40);
        }
    }

    #[test]
    fn kafka_protocol_reads_weir(records in proptest::collection::vec(record_in(), 1..30), base in 0i64..1 << 40) {
        let ids = ProducerIds { producer_id: 99, producer_epoch: 1, base_sequence: 7 };
        let expected = kp_records(&records, base, ids);
        for codec in Compression::ALL {
            let mut bytes = weir_batch(&records, codec, base, ids);
            let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
            prop_assert_eq!(set.compression, kp(codec));
            prop_assert_eq!(set.records.len(), expected.len());
            for (got, want) in set.records.iter().zip(&expected) {
                prop_assert_eq!(got.offset, want.offset);
                prop_assert_eq!(got.timestamp, want.timestamp);
                prop_assert_eq!(got.sequence, want.sequence);
                prop_assert_eq!(got.producer_id, want.producer_id);
                prop_assert_eq!(got.producer_epoch, want.producer_epoch);
                prop_assert_eq!(&got.key, &want.key);
                prop_assert_eq!(&got.value, &want.value);
                prop_assert_eq!(&got.headers, &want.headers);
            }
            prop_assert!(bytes.is_empty());
        }
    }
}

/// A fixed batch with headers, as the Java client writes it (uncompressed, producer ids unset),
/// checked byte for byte against kafka-protocol's encoder: the uncompressed encoding is canonical.
#[test]
fn uncompressed_encoding_is_byte_identical() {
    let records = vec![
        In {
            ts: 1_700_000_000_000,
            key: Some(b"key".to_vec()),
            value: Some(b"value".to_vec()),
            headers: vec![("h1".into(), Some(b"v".to_vec())), ("h2".into(), None)],
        },
        In {
            ts: 1_700_000_000_005,
            key: None,
            value: None,
            headers: vec![],
        },
        In {
            ts: 1_700_000_000_009,
            key: Some(vec![]),
            value: Some(vec![b'x'; 300]),
            headers: vec![],
        },
    ];
    let ids = ProducerIds::NONE;
    let ours = weir_batch(&records, Compression::None, 0, ids);
    let mut theirs = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut theirs,
        &kp_records(&records, 0, ids),
        &RecordEncodeOptions {
            version: 2,
            compression: KpCompression::None,
        },
    )
    .unwrap();
    assert_eq!(&ours[..], &theirs[..]);
}

/// Both implementations write the xerial snappy framing that the Java client writes.
#[test]
fn snappy_uses_xerial_framing() {
    let records = vec![In {
        ts: 1,
        key: None,
        value: Some(vec![b'a'; 100_000]),
        headers: vec![],
    }];
    let ours = weir_batch(&records, Compression::Snappy, 0, ProducerIds::NONE);
    assert_eq!(&ours[61..77], b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01");
    // 100 KB of records => 4 chunks of at most 32 KiB.
    let mut pos = 77;
    let mut chunks = 0;
    while pos < ours.len() {
        let n = u32::from_be_bytes(ours[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 4 + n;
        chunks += 1;
    }
    assert_eq!(pos, ours.len());
    assert_eq!(chunks, 4);
}
