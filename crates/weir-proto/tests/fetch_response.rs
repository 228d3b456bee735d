//! The hand-written Fetch response decoder against `kafka-protocol`'s encoder (independent implementation), and
//! against arbitrary bytes.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData, SnapshotId,
};
use kafka_protocol::messages::{BrokerId, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;
use weir_proto::fetch::decode_fetch_response;
use weir_proto::leader_hint::CurrentLeader;

/// One partition: index, error, high watermark, last stable offset, log start, aborted transactions,
/// preferred replica, records, and the tagged fields (diverging epoch, current leader, snapshot id).
#[derive(Debug, Clone)]
struct Part {
    partition: i32,
    error: i16,
    high_watermark: i64,
    last_stable: i64,
    log_start: i64,
    aborted: Option<Vec<(i64, i64)>>,
    preferred: i32,
    records: Option<Vec<u8>>,
    diverging: Option<(i32, i64)>,
    leader: Option<(i32, i32)>,
    snapshot: Option<(i64, i32)>,
}

fn part() -> impl Strategy<Value = Part> {
    (
        (
            any::<i32>(),
            any::<i16>(),
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
        ),
        proptest::option::of(proptest::collection::vec((any::<i64>(), any::<i64>()), 0..3)),
        any::<i32>(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        proptest::option::of((any::<i32>(), any::<i64>())),
        // Leader ids and epochs around -1 (unknown), where the decoder draws its line.
        proptest::option::of((-2i32..5, -2i32..5)),
        proptest::option::of((any::<i64>(), any::<i32>())),
    )
        .prop_map(
            |(
                (partition, error, high_watermark, last_stable, log_start),
                aborted,
                preferred,
                records,
                diverging,
                leader,
                snapshot,
            )| Part {
                partition,
                error,
                high_watermark,
                last_stable,
                log_start,
                aborted,
                preferred,
                records,
                diverging,
                leader,
                snapshot,
            },
        )
}

/// One topic: name, id, partitions.
type Topic = (String, [u8; 16], Vec<Part>);

/// A node endpoint: id, host, port, rack.
type Endpoint = (i32, String, i32, Option<String>);

fn encode(
    version: i16,
    throttle: i32,
    error: i16,
    session: i32,
    topics: &[Topic],
    endpoints: &[Endpoint],
) -> Bytes {
    let flex = version >= 12;
    let resp = FetchResponse::default()
        .with_throttle_time_ms(throttle)
        .with_error_code(if version >= 7 { error } else { 0 })
        .with_session_id(if version >= 7 { session } else { 0 })
        .with_node_endpoints(if version >= 16 {
            endpoints
                .iter()
                .map(|(id, host, port, rack)| {
                    NodeEndpoint::default()
                        .with_node_id(BrokerId(*id))
                        .with_host(StrBytes::from_string(host.clone()))
                        .with_port(*port)
                        .with_rack(rack.clone().map(StrBytes::from_string))
                })
                .collect()
        } else {
            Vec::new()
        })
        .with_responses(
            topics
                .iter()
                .map(|(name, id, parts)| {
                    FetchableTopicResponse::default()
                        .with_topic(TopicName(StrBytes::from_string(name.clone())))
                        .with_topic_id(uuid::Uuid::from_bytes(*id))
                        .with_partitions(parts.iter().map(|p| partition_data(version, flex, p)).collect())
                })
                .collect(),
        );
    let mut buf = BytesMut::new();
    resp.encode(&mut buf, version).unwrap();
    buf.freeze()
}

fn partition_data(version: i16, flex: bool, p: &Part) -> PartitionData {
    let mut d = PartitionData::default()
        .with_partition_index(p.partition)
        .with_error_code(p.error)
        .with_high_watermark(p.high_watermark)
        .with_last_stable_offset(p.last_stable)
        .with_log_start_offset(if version >= 5 { p.log_start } else { -1 })
        .with_aborted_transactions(p.aborted.as_ref().map(|v| {
            v.iter()
                .map(|&(pid, off)| {
                    AbortedTransaction::default()
                        .with_producer_id(ProducerId(pid))
                        .with_first_offset(off)
                })
                .collect()
        }))
        .with_preferred_read_replica(BrokerId(if version >= 11 { p.preferred } else { -1 }))
        .with_records(p.records.clone().map(Bytes::from));
    if flex {
        if let Some((epoch, end)) = p.diverging {
            d = d.with_diverging_epoch(EpochEndOffset::default().with_epoch(epoch).with_end_offset(end));
        }
        if let Some((id, epoch)) = p.leader {
            d = d.with_current_leader(
                LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(id))
                    .with_leader_epoch(epoch),
            );
        }
        if let Some((end, epoch)) = p.snapshot {
            d = d.with_snapshot_id(SnapshotId::default().with_end_offset(end).with_epoch(epoch));
        }
    }
    d
}

fn topics() -> impl Strategy<Value = Vec<Topic>> {
    proptest::collection::vec(
        (
            "[a-z]{1,12}",
            any::<[u8; 16]>(),
            proptest::collection::vec(part(), 0..4),
        ),
        0..4,
    )
}

fn endpoints() -> impl Strategy<Value = Vec<Endpoint>> {
    proptest::collection::vec(
        (
            any::<i32>(),
            "[a-z.]{1,12}",
            any::<i32>(),
            proptest::option::of("[a-z]{0,6}"),
        ),
        0..3,
    )
}

proptest! {
    #[test]
    fn matches_kafka_protocol(
        version in 4i16..=17,
        throttle in any::<i32>(),
        error in any::<i16>(),
        session in any::<i32>(),
        topics in topics(),
        endpoints in endpoints(),
    ) {
        let body = encode(version, throttle, error, session, &topics, &endpoints);
        let got = decode_fetch_response(body.clone(), version).unwrap();
        prop_assert_eq!(got.throttle_time_ms, throttle);
        if version >= 7 {
            prop_assert_eq!((got.error_code, got.session_id), (error, session));
        }
        prop_assert_eq!(got.topics.len(), topics.len());
        for (t, (name, id, parts)) in got.topics.iter().zip(&topics) {
            if version >= 13 {
                prop_assert_eq!(&t.topic_id, id);
                prop_assert!(t.name.is_empty());
            } else {
                prop_assert_eq!(&t.name, name);
                prop_assert_eq!(t.topic_id, [0u8; 16]);
            }
            prop_assert_eq!(t.partitions.len(), parts.len());
            for (p, want) in t.partitions.iter().zip(parts) {
                prop_assert_eq!((p.partition, p.error_code, p.high_watermark, p.last_stable_offset),
                    (want.partition, want.error, want.high_watermark, want.last_stable));
                if version >= 5 {
                    prop_assert_eq!(p.log_start_offset, want.log_start);
                }
                if version >= 11 {
                    prop_assert_eq!(p.preferred_read_replica, want.preferred);
                }
                prop_assert_eq!(&p.aborted_transactions, &want.aborted.clone().unwrap_or_default());
                prop_assert_eq!(p.records.as_deref(), want.records.as_deref());
                // A hint is kept only when it names a leader at a known epoch.
                let hint = want
                    .leader
                    .filter(|&(id, epoch)| version >= 12 && id >= 0 && epoch >= 0)
                    .map(|(leader_id, leader_epoch)| CurrentLeader { leader_id, leader_epoch });
                prop_assert_eq!(p.current_leader, hint);
            }
        }
        let want_endpoints: Vec<(i32, &str, i32)> = if version >= 16 {
            endpoints.iter().map(|(id, host, port, _)| (*id, host.as_str(), *port)).collect()
        } else {
            Vec::new()
        };
        let got_endpoints: Vec<(i32, &str, i32)> =
            got.node_endpoints.iter().map(|e| (e.node_id, e.host.as_str(), e.port)).collect();
        prop_assert_eq!(got_endpoints, want_endpoints);
        // Every truncation is an error, never a panic.
        for cut in 0..body.len() {
            let r = decode_fetch_response(body.slice(..cut), version);
            prop_assert!(r.is_err() || cut == body.len());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(version in 4i16..=17, bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_fetch_response(Bytes::from(bytes), version);
    }

    /// A valid response with one byte changed anywhere decodes to something or fails; it never panics.
    #[test]
    fn damaged_responses_never_panic(
        version in 12i16..=17,
        topics in topics(),
        endpoints in endpoints(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let body = encode(version, 0, 0, 1, &topics, &endpoints);
        let mut bad = body.to_vec();
        if !bad.is_empty() {
            let i = at.index(bad.len());
            bad[i] = byte;
        }
        let _ = decode_fetch_response(Bytes::from(bad), version);
    }
}

#[test]
fn huge_counts_are_refused_before_allocating() {
    // throttle, error, session, then a topic count of i32::MAX with nothing behind it.
    let mut b = vec![0u8; 10];
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_fetch_response(Bytes::from(b), 11).is_err());
    // One topic "t" claiming i32::MAX partitions.
    let mut b = vec![0u8; 10];
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&1i16.to_be_bytes());
    b.push(b't');
    b.extend_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_fetch_response(Bytes::from(b), 11).is_err());
}

/// Flexible versions: compact counts (unsigned varints) claiming more topics, partitions, aborted transactions,
/// tagged fields or node endpoints than the bytes left could hold are refused before anything is reserved.
#[test]
fn huge_compact_counts_are_refused_before_allocating() {
    // throttle, error, session.
    let head = || vec![0u8; 10];
    let varint_max = [0xff, 0xff, 0xff, 0xff, 0x0f];
    for version in [12i16, 13, 16, 17] {
        // A topic count of u32::MAX - 1.
        let mut b = head();
        b.extend_from_slice(&varint_max);
        assert!(
            decode_fetch_response(Bytes::from(b), version).is_err(),
            "v{version} topics"
        );
        // One topic claiming u32::MAX - 1 partitions.
        let mut b = head();
        b.push(2);
        if version >= 13 {
            b.extend_from_slice(&[7u8; 16]);
        } else {
            b.extend_from_slice(&[2, b't']);
        }
        b.extend_from_slice(&varint_max);
        assert!(
            decode_fetch_response(Bytes::from(b), version).is_err(),
            "v{version} partitions"
        );
        // No topics, then one tagged field claiming more bytes than follow.
        let mut b = head();
        b.extend_from_slice(&[1, 1, 0]);
        b.extend_from_slice(&varint_max);
        assert!(
            decode_fetch_response(Bytes::from(b), version).is_err(),
            "v{version} tagged field"
        );
    }
    // v16+: node endpoints (tag 0) whose count claims more than the field holds.
    let mut b = head();
    b.extend_from_slice(&[1, 1, 0, 6]);
    b.extend_from_slice(&varint_max);
    b.push(0);
    assert!(
        decode_fetch_response(Bytes::from(b), 16).is_err(),
        "node endpoints"
    );
}

/// A current leader's tagged field is read within its declared size: one that claims a shorter size than its
/// structure (so that the leader's fields would run into the next bytes) is an error, not a misread.
#[test]
fn a_current_leader_shorter_than_its_structure_is_refused() {
    let leader = |size: u8| {
        let mut b = vec![0u8; 10]; // throttle, error, session
        b.push(2); // one topic
        b.extend_from_slice(&[9u8; 16]);
        b.push(2); // one partition
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&6i16.to_be_bytes()); // NOT_LEADER_OR_FOLLOWER
        b.extend_from_slice(&[0u8; 24]); // high watermark, last stable, log start
        b.push(1); // no aborted transactions
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.push(0); // null records
        b.extend_from_slice(&[1, 1, size]); // one tagged field: tag 1, `size` bytes
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&5i32.to_be_bytes());
        b.push(0); // the structure's own tags
        b.push(0); // the topic's tags
        b.push(0); // the response's tags
        Bytes::from(b)
    };
    let ok = decode_fetch_response(leader(9), 16).unwrap();
    assert_eq!(
        ok.topics[0].partitions[0].current_leader,
        Some(CurrentLeader {
            leader_id: 2,
            leader_epoch: 5
        })
    );
    assert!(decode_fetch_response(leader(8), 16).is_err());
}
