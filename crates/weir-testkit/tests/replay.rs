//! The replay server against three readers that share none of its code: `kafka-protocol`'s encoders and
//! decoders at every version it serves, weir's `Consumer`, and kcat (librdkafka 2.16); and against malformed
//! requests, which must close only the connection that sent them.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use weir::consumer::{Consumer, ConsumerConfig, StartOffset, TopicPartition};
use weir_proto::record::Compression;
use weir_testkit::replay::BASE_TIMESTAMP_MS;
use weir_testkit::{Kcat, ReplayServer};

/// Bound on every socket read and write of these tests.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on consuming a whole replay log.
const CONSUME_TIMEOUT: Duration = Duration::from_secs(60);

/// `(api key, min, max)` the server must advertise: what it serves (ApiVersions, Metadata, ListOffsets, Fetch),
/// then Produce and FindCoordinator, listed for librdkafka's feature detection only.
const ADVERTISED: [(i16, i16, i16); 6] = [
    (18, 0, 3),
    (3, 1, 12),
    (2, 1, 8),
    (1, 4, 12),
    (0, 3, 7),
    (10, 0, 0),
];

/// A blocking client encoding with kafka-protocol.
struct Client {
    s: TcpStream,
    correlation_id: i32,
}

impl Client {
    fn connect(server: &ReplayServer) -> Client {
        let s = TcpStream::connect_timeout(&server.addr(), IO_TIMEOUT).expect("connect");
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        Client { s, correlation_id: 0 }
    }

    fn call<Req: Encodable, Resp: Decodable>(&mut self, key: ApiKey, version: i16, req: &Req) -> Resp {
        self.correlation_id += 1;
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("replay-test")))
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        req.encode(&mut buf, version).unwrap();
        self.send(&buf);
        let mut body = self.receive();
        let header = ResponseHeader::decode(&mut body, key.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, self.correlation_id, "{key:?} v{version}");
        let resp = Resp::decode(&mut body, version).unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
        assert!(
            body.is_empty(),
            "{key:?} v{version}: {} bytes after the response",
            body.len()
        );
        resp
    }

    /// Sends one frame: the size prefix, then `body`.
    fn send(&mut self, body: &[u8]) {
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        self.s.write_all(&frame).unwrap();
    }

    fn receive(&mut self) -> Bytes {
        let mut size = [0u8; 4];
        self.s.read_exact(&mut size).expect("response size");
        let size = i32::from_be_bytes(size);
        assert!((0..64 << 20).contains(&size), "response size {size}");
        let mut body = vec![0u8; size as usize];
        self.s.read_exact(&mut body).expect("response body");
        Bytes::from(body)
    }

    /// True if the server closes the connection (end of stream, or a reset) within the read timeout; false if it
    /// keeps it open that long.
    fn closed_by_server(&mut self) -> bool {
        let mut b = [0u8; 64];
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
                Err(_) => return true,
            }
        }
    }
}

fn server(
    partitions: i32,
    records: u64,
    record_size: usize,
    per_batch: usize,
    codec: Compression,
) -> ReplayServer {
    ReplayServer::builder()
        .topic("replay-test")
        .partitions(partitions)
        .records_per_partition(records)
        .record_size(record_size)
        .records_per_batch(per_batch)
        .compression(codec)
        .start()
        .expect("replay server")
}

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

fn fetch_request(
    topic: &str,
    partitions: &[(i32, i64, i32)],
    max_bytes: i32,
    max_wait_ms: i32,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(
                partitions
                    .iter()
                    .map(|&(p, offset, max)| {
                        FetchPartition::default()
                            .with_partition(p)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(max)
                    })
                    .collect(),
            )])
}

/// The records of each partition of a Fetch response, in response order.
fn fetched(resp: &FetchResponse) -> Vec<(i32, i16, i64, Bytes)> {
    resp.responses
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    p.partition_index,
                    p.error_code,
                    p.high_watermark,
                    p.records.clone().unwrap_or_default(),
                )
            })
        })
        .collect()
}

fn concat(batches: &[Bytes]) -> Bytes {
    Bytes::from(batches.concat())
}

#[test]
fn api_versions_advertises_what_it_serves_at_every_version() {
    let server = server(1, 10, 10, 5, Compression::None);
    let mut c = Client::connect(&server);
    for v in 0..=3 {
        let resp: ApiVersionsResponse = c.call(ApiKey::ApiVersions, v, &ApiVersionsRequest::default());
        assert_eq!(resp.error_code, 0, "v{v}");
        let got: Vec<_> = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        assert_eq!(got, ADVERTISED, "v{v}");
    }
    // A version it does not know: UNSUPPORTED_VERSION and its ranges, in the v0 layout.
    let mut raw = Vec::new();
    raw.extend_from_slice(&18i16.to_be_bytes());
    raw.extend_from_slice(&9i16.to_be_bytes());
    raw.extend_from_slice(&77i32.to_be_bytes());
    raw.extend_from_slice(&[0, 1, b'x', 0, 0, 0]);
    c.send(&raw);
    let mut body = c.receive();
    let header = ResponseHeader::decode(&mut body, 0).unwrap();
    assert_eq!(header.correlation_id, 77);
    let resp = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(resp.error_code, 35);
    assert_eq!(resp.api_keys.len(), ADVERTISED.len());
    // The connection still serves.
    let resp: ApiVersionsResponse = c.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(resp.error_code, 0);
}

#[test]
fn metadata_names_itself_leader_of_every_partition_at_every_version() {
    let server = server(4, 10, 10, 5, Compression::None);
    let mut c = Client::connect(&server);
    let mut topic_id = None;
    for v in 1..=12 {
        let resp: MetadataResponse =
            c.call(ApiKey::Metadata, v, &MetadataRequest::default().with_topics(None));
        assert_eq!(resp.brokers.len(), 1, "v{v}");
        let b = &resp.brokers[0];
        assert_eq!(
            (b.node_id.0, b.host.as_str(), b.port),
            (1, "127.0.0.1", server.addr().port() as i32)
        );
        assert_eq!(resp.controller_id.0, 1, "v{v}");
        assert_eq!(resp.topics.len(), 1, "v{v}");
        let t = &resp.topics[0];
        assert_eq!(t.error_code, 0);
        assert_eq!(t.name.as_ref().map(|n| n.0.as_str()), Some("replay-test"), "v{v}");
        let mut parts: Vec<_> = t
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id.0, p.error_code))
            .collect();
        parts.sort();
        assert_eq!(parts, vec![(0, 1, 0), (1, 1, 0), (2, 1, 0), (3, 1, 0)], "v{v}");
        if v >= 10 {
            assert!(!t.topic_id.is_nil(), "v{v}");
            topic_id = Some(t.topic_id);
        }
        // An unknown topic, by name.
        let req = MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name("nope")))
        ]));
        let resp: MetadataResponse = c.call(ApiKey::Metadata, v, &req);
        assert_eq!(resp.topics.len(), 1);
        assert_eq!(resp.topics[0].error_code, 3, "v{v}");
        assert!(resp.topics[0].partitions.is_empty());
    }
    // By id (v12).
    let req = MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
        .with_name(None)
        .with_topic_id(topic_id.unwrap())]));
    let resp: MetadataResponse = c.call(ApiKey::Metadata, 12, &req);
    assert_eq!(resp.topics[0].error_code, 0);
    assert_eq!(
        resp.topics[0].name.as_ref().map(|n| n.0.as_str()),
        Some("replay-test")
    );
    assert_eq!(resp.topics[0].partitions.len(), 4);
}

#[test]
fn list_offsets_answers_earliest_latest_and_timestamps_at_every_version() {
    let server = server(2, 50, 10, 7, Compression::None);
    let mut c = Client::connect(&server);
    for v in 1..=8 {
        let mut cases = vec![
            (0, -2, 0, 0),
            (1, -1, 0, 50),
            (0, BASE_TIMESTAMP_MS + 20, 0, 20),
            (0, BASE_TIMESTAMP_MS + 50, 0, -1),
            (5, -1, 3, -1),
        ];
        if v >= 7 {
            cases.push((1, -3, 0, 49));
        }
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic_name("replay-test"))
                .with_partitions(
                    cases
                        .iter()
                        .map(|&(p, ts, _, _)| {
                            ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_timestamp(ts)
                        })
                        .collect(),
                )]);
        let resp: ListOffsetsResponse = c.call(ApiKey::ListOffsets, v, &req);
        let got: Vec<_> = resp.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.error_code, p.offset))
            .collect();
        let want: Vec<_> = cases.iter().map(|&(p, _, e, o)| (p, e, o)).collect();
        assert_eq!(got, want, "v{v}");
    }
}

#[test]
fn fetch_returns_the_logs_batches_at_every_version() {
    let server = server(3, 40, 20, 10, Compression::Lz4);
    let mut c = Client::connect(&server);
    for v in 4..=12 {
        let req = fetch_request(
            "replay-test",
            &[(0, 0, 1 << 20), (1, 15, 1 << 20), (2, 40, 1 << 20)],
            1 << 20,
            0,
        );
        let resp: FetchResponse = c.call(ApiKey::Fetch, v, &req);
        assert_eq!((resp.error_code, resp.session_id), (0, 0), "v{v}");
        let got = fetched(&resp);
        assert_eq!(got.len(), 3, "v{v}");
        assert_eq!(got[0], (0, 0, 40, concat(server.batches(0))), "v{v}");
        // Offset 15 is in the second batch (10..20): from there on.
        assert_eq!(got[1], (1, 0, 40, concat(&server.batches(1)[1..])), "v{v}");
        // At the log end: nothing, and the high watermark.
        assert_eq!(got[2], (2, 0, 40, Bytes::new()), "v{v}");
    }
}

#[test]
fn fetch_honours_max_bytes_partition_max_bytes_and_kip_74() {
    let server = server(2, 100, 50, 10, Compression::None);
    let b0 = server.batches(0);
    let b1 = server.batches(1);
    let batch = b0[0].len() as i32;
    assert!(
        b0.iter().chain(b1).all(|b| b.len() as i32 == batch),
        "equal batches make the limits exact"
    );
    let mut c = Client::connect(&server);
    for v in [4, 11, 12] {
        let mut fetch = |parts: &[(i32, i64, i32)], max_bytes: i32| -> Vec<(i32, i16, i64, Bytes)> {
            let resp: FetchResponse = c.call(
                ApiKey::Fetch,
                v,
                &fetch_request("replay-test", parts, max_bytes, 0),
            );
            fetched(&resp)
        };
        // partition_max_bytes of 2.5 batches: two batches each.
        let got = fetch(&[(0, 0, batch * 5 / 2), (1, 0, batch * 5 / 2)], i32::MAX);
        assert_eq!(got[0].3, concat(&b0[..2]), "v{v}");
        assert_eq!(got[1].3, concat(&b1[..2]), "v{v}");
        // max_bytes of three batches: all to the first partition, none left for the second.
        let got = fetch(&[(0, 0, i32::MAX), (1, 0, i32::MAX)], batch * 3);
        assert_eq!(got[0].3, concat(&b0[..3]), "v{v}");
        assert_eq!(got[1].3, Bytes::new(), "v{v}");
        // Limits smaller than one batch: the response's first batch comes anyway (KIP-74), nothing more.
        let got = fetch(&[(0, 35, 1), (1, 0, 1)], i32::MAX);
        assert_eq!(got[0].3, b0[3].clone(), "v{v}");
        assert_eq!(got[1].3, Bytes::new(), "v{v}");
        let got = fetch(&[(0, 0, i32::MAX), (1, 0, i32::MAX)], 1);
        assert_eq!(got[0].3, b0[0].clone(), "v{v}");
        assert_eq!(got[1].3, Bytes::new(), "v{v}");
        // A partition at its end passes its turn to the next one.
        let got = fetch(&[(0, 100, 1), (1, 90, 1)], 1);
        assert_eq!(got[0].3, Bytes::new(), "v{v}");
        assert_eq!(got[1].3, b1[9].clone(), "v{v}");
        // Out of range and unknown partitions.
        let got = fetch(
            &[(0, 101, i32::MAX), (0, -5, i32::MAX), (7, 0, i32::MAX)],
            i32::MAX,
        );
        assert_eq!((got[0].1, got[0].2), (1, 100), "v{v}");
        assert_eq!((got[1].1, got[1].2), (1, 100), "v{v}");
        assert_eq!(got[2].1, 3, "v{v}");
        // Unknown topic.
        let resp: FetchResponse = c.call(ApiKey::Fetch, v, &fetch_request("nope", &[(0, 0, 100)], 100, 0));
        assert_eq!(fetched(&resp)[0].1, 3, "v{v}");
    }
}

#[test]
fn fetch_sessions_are_refused_politely() {
    let server = server(1, 20, 10, 10, Compression::None);
    let mut c = Client::connect(&server);
    for v in [7, 11, 12] {
        // A request that would create a session: answered in full, with session id 0 (none made).
        let req = fetch_request("replay-test", &[(0, 0, 1 << 20)], 1 << 20, 0).with_session_epoch(0);
        let resp: FetchResponse = c.call(ApiKey::Fetch, v, &req);
        assert_eq!((resp.error_code, resp.session_id), (0, 0), "v{v}");
        assert_eq!(fetched(&resp)[0].3, concat(server.batches(0)));
        // A request in a session the server never made.
        let req = fetch_request("replay-test", &[(0, 0, 1 << 20)], 1 << 20, 0)
            .with_session_id(42)
            .with_session_epoch(1);
        let resp: FetchResponse = c.call(ApiKey::Fetch, v, &req);
        assert_eq!(resp.error_code, 70, "v{v}");
        assert!(resp.responses.is_empty());
        // No session, but an epoch that is neither "create" nor "none".
        let req = fetch_request("replay-test", &[(0, 0, 1 << 20)], 1 << 20, 0).with_session_epoch(3);
        let resp: FetchResponse = c.call(ApiKey::Fetch, v, &req);
        assert_eq!(resp.error_code, 71, "v{v}");
    }
}

#[test]
fn fetch_at_the_log_end_waits_max_wait_ms_then_answers_empty() {
    let server = server(2, 20, 10, 10, Compression::None);
    let mut c = Client::connect(&server);
    let started = Instant::now();
    let resp: FetchResponse = c.call(
        ApiKey::Fetch,
        12,
        &fetch_request("replay-test", &[(0, 20, 100), (1, 20, 100)], 1000, 300),
    );
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "answered after {waited:?}");
    assert!(fetched(&resp)
        .iter()
        .all(|p| p.1 == 0 && p.2 == 20 && p.3.is_empty()));
    // With data in one partition, no wait: the answer comes at once (well under the 5 s asked for).
    let started = Instant::now();
    let resp: FetchResponse = c.call(
        ApiKey::Fetch,
        12,
        &fetch_request("replay-test", &[(0, 20, 100), (1, 0, 1000)], 1000, 5000),
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fetched(&resp)[1].3, concat(server.batches(1)));
    // Dropping the server ends a wait in progress: a 20 s wait is cut short.
    let mut waiting = Client::connect(&server);
    let t = std::thread::spawn(move || {
        let started = Instant::now();
        let mut req = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(1)
            .with_request_api_version(11)
            .with_correlation_id(1)
            .encode(&mut req, 1)
            .unwrap();
        fetch_request("replay-test", &[(0, 20, 100)], 1000, 20_000)
            .encode(&mut req, 11)
            .unwrap();
        waiting.send(&req);
        let mut b = [0u8; 1];
        let _ = waiting.s.read(&mut b);
        started.elapsed()
    });
    // Drop the server once that fetch is waiting.
    let deadline = Instant::now() + IO_TIMEOUT;
    while server.fetches_waiting() == 0 {
        assert!(Instant::now() < deadline, "the fetch never waited");
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(server);
    let waited = t.join().unwrap();
    assert!(
        waited < Duration::from_secs(10),
        "the wait lasted {waited:?} after the server stopped"
    );
}

/// Reads the whole log with weir's Consumer; checks every record once, in order, with the builder's value.
/// Reads the whole log with weir, `weir.buffer.target.ms` set to `target_ms`, checking every record.
async fn consume_with_weir(server: &ReplayServer, target_ms: &str) {
    let mut cfg = ConsumerConfig::new(&server.bootstrap());
    cfg.set("weir.buffer.target.ms", target_ms)
        .expect("a target window");
    let consumer = Consumer::new(cfg).expect("consumer");
    let tps: Vec<_> = (0..server.partitions())
        .map(|p| (TopicPartition::new(server.topic(), p), StartOffset::Earliest))
        .collect();
    consumer.assign(&tps).await.expect("assign");
    let mut next: HashMap<i32, i64> = HashMap::new();
    let mut got = 0u64;
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    while got < server.record_count() {
        assert!(
            Instant::now() < deadline,
            "consumed {got} of {} in {CONSUME_TIMEOUT:?}",
            server.record_count()
        );
        for r in consumer.poll(10_000, Duration::from_secs(1)).await.expect("poll") {
            let want = next.entry(r.partition).or_insert(0);
            assert_eq!(
                r.offset, *want,
                "partition {}: out of order or repeated",
                r.partition
            );
            assert_eq!(&*r.topic, server.topic());
            assert_eq!(r.timestamp, BASE_TIMESTAMP_MS + r.offset);
            assert_eq!(r.key, None);
            let value = r.value.as_deref().expect("a value");
            assert!(value.starts_with(format!("{}:{}:", r.partition, r.offset).as_bytes()));
            assert_eq!(value, &server.value(r.partition, r.offset)[..]);
            *want += 1;
            got += 1;
        }
    }
    // Nothing more: no record twice.
    let more = consumer
        .poll(10_000, Duration::from_millis(500))
        .await
        .expect("poll");
    assert!(more.is_empty(), "{} records after the whole log", more.len());
    let mut ends: Vec<_> = next.into_iter().collect();
    ends.sort();
    let want: Vec<_> = (0..server.partitions())
        .map(|p| (p, server.records_per_partition() as i64))
        .collect();
    assert_eq!(ends, want);
    consumer.close().await.expect("close");
}

/// With fixed watermarks (8 MiB partitions, more than each partition holds) every batch crosses the wire once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_consumer_reads_every_record_once_in_order_with_every_codec() {
    for codec in Compression::ALL {
        let server = server(4, 5_000, 120, 64, codec);
        consume_with_weir(&server, "0").await;
        assert!(server.fetch_responses() > 0);
        assert_eq!(
            server.batch_bytes_served(),
            server.log_bytes(),
            "{codec:?}: every batch sent once"
        );
    }
}

/// With rate-sized buffers (the default) partitions start small, and until the consumer has learned what a wire
/// byte costs in memory some batches are sent past a partition's room and sent again: every record still arrives
/// once, in order, and the batches sent again stay a fraction of the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_sized_buffers_read_every_record_once_in_order_with_every_codec() {
    for codec in Compression::ALL {
        let server = server(4, 5_000, 120, 64, codec);
        consume_with_weir(&server, "1000").await;
        let (served, log) = (server.batch_bytes_served(), server.log_bytes());
        assert!(served >= log);
        assert!(
            served < log * 2,
            "{codec:?}: {served} bytes served for a log of {log}"
        );
    }
}

#[test]
fn kcat_reads_the_same_records() {
    let kcat = Kcat::require();
    for codec in [Compression::None, Compression::Lz4] {
        let server = server(4, 5_000, 120, 64, codec);
        let out = kcat.consume_all(&server.bootstrap(), server.topic(), "%p %o %s\n", &[]);
        let mut next: HashMap<i32, i64> = HashMap::new();
        let mut count = 0u64;
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let mut fields = line.splitn(3, |&b| b == b' ');
            let p: i32 = std::str::from_utf8(fields.next().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            let o: i64 = std::str::from_utf8(fields.next().unwrap())
                .unwrap()
                .parse()
                .unwrap();
            let value = fields.next().expect("a value");
            let want = next.entry(p).or_insert(0);
            assert_eq!(o, *want, "{codec:?} partition {p}");
            assert_eq!(value, &server.value(p, o)[..], "{codec:?} {p}/{o}");
            *want += 1;
            count += 1;
        }
        assert_eq!(count, server.record_count(), "{codec:?}");
    }
}

#[test]
fn malformed_requests_close_their_connection_only() {
    let server = server(1, 20, 10, 10, Compression::None);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "garbage after the size prefix",
            [&20i32.to_be_bytes()[..], &[0x5a; 20]].concat(),
        ),
        ("an absurd length", i32::MAX.to_be_bytes().to_vec()),
        ("a negative length", (-7i32).to_be_bytes().to_vec()),
        (
            "a length below a header",
            [&3i32.to_be_bytes()[..], &[0; 3]].concat(),
        ),
        (
            // Fetch v11, client id "x", then a topic count of a billion.
            "a count larger than the request",
            {
                let mut b = Vec::new();
                for f in [
                    &1i16.to_be_bytes()[..],
                    &11i16.to_be_bytes(),
                    &1i32.to_be_bytes(),
                    &[0, 1, b'x'],
                ] {
                    b.extend_from_slice(f);
                }
                for v in [-1i32, 500, 1, 1000] {
                    b.extend_from_slice(&v.to_be_bytes());
                }
                b.push(0);
                for v in [0i32, -1, 1_000_000_000] {
                    b.extend_from_slice(&v.to_be_bytes());
                }
                [&(b.len() as i32).to_be_bytes()[..], &b].concat()
            },
        ),
        (
            // A served API at a version it does not advertise (Fetch v3).
            "an unadvertised version",
            [
                &12i32.to_be_bytes()[..],
                &1i16.to_be_bytes(),
                &3i16.to_be_bytes(),
                &1i32.to_be_bytes(),
                &[0, 0, 0, 0],
            ]
            .concat(),
        ),
        (
            // An API it does not serve (Produce).
            "an unserved API",
            [
                &10i32.to_be_bytes()[..],
                &0i16.to_be_bytes(),
                &9i16.to_be_bytes(),
                &1i32.to_be_bytes(),
                &[0, 0],
            ]
            .concat(),
        ),
    ];
    for (what, bytes) in &cases {
        let mut c = Client::connect(&server);
        c.s.write_all(bytes).unwrap();
        assert!(c.closed_by_server(), "{what}: the connection stayed open");
        // The server still serves new connections.
        let mut fresh = Client::connect(&server);
        let resp: ApiVersionsResponse = fresh.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        assert_eq!(resp.error_code, 0, "after {what}");
    }
    // A request cut short (the client stops writing mid-request): the connection ends, the server lives on.
    let mut c = Client::connect(&server);
    c.s.write_all(&[&100i32.to_be_bytes()[..], &[0; 10]].concat())
        .unwrap();
    c.s.shutdown(Shutdown::Write).unwrap();
    assert!(
        c.closed_by_server(),
        "a truncated request: the connection stayed open"
    );
    let mut fresh = Client::connect(&server);
    let resp: FetchResponse = fresh.call(
        ApiKey::Fetch,
        12,
        &fetch_request("replay-test", &[(0, 0, 1 << 20)], 1 << 20, 0),
    );
    assert_eq!(fetched(&resp)[0].3, concat(server.batches(0)));
}
