//! A blocking Kafka protocol client just big enough for the harness: is a node up (Metadata), create a topic
//! (CreateTopics), where are the leaders. Requests are encoded and responses decoded by `weir-proto`, so the
//! harness needs neither weir's async client nor a JVM per admin call. The operator's APIs weir itself never
//! sends (which controller is active, moving partitions) are encoded and decoded here ([`flexible`],
//! [`quorum`], [`reassign`]).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use weir_proto::admin::{CreateTopicsRequest, NewTopic};
use weir_proto::create_partitions::{CreatePartitionsRequest, PartitionsIncrease};
use weir_proto::metadata::MetadataRequest;
use weir_proto::metadata::MetadataResponse;
use weir_proto::Call;

pub(crate) mod flexible;
pub(crate) mod quorum;
pub(crate) mod reassign;

/// Metadata v12 and CreateTopics v7: both in every Kafka 4.x broker.
const METADATA_VERSION: i16 = 12;
const CREATE_TOPICS_VERSION: i16 = 7;
const CREATE_PARTITIONS_VERSION: i16 = 3;
/// Largest response the harness accepts.
const MAX_RESPONSE: usize = 64 << 20;

/// One request, one response, on a fresh connection to `127.0.0.1:port`; every step bounded by `timeout`.
fn call<C: Call>(port: u16, req: &C, version: i16, timeout: Duration) -> Result<C::Response, String> {
    let api = C::NAME;
    let frame = req
        .encode(version, 1, Some("weir-testkit"))
        .map_err(|e| format!("encoding {api}: {e}"))?;
    let body = exchange(port, api, &frame, timeout)?;
    C::decode(body, version).map_err(|e| format!("{api} response from port {port}: {e}"))
}

/// One request of a flexible version (request header v2, response header v1) that `weir-proto` does not
/// know: `body` is the request body, the response body is returned undecoded.
pub(crate) fn call_flexible(
    port: u16,
    (api, key, version): (&str, i16, i16),
    body: &[u8],
    timeout: Duration,
) -> Result<Bytes, String> {
    let mut w = flexible::Writer::default();
    // The size, filled in below; the header: key, version, correlation id, the client id (a classic nullable
    // string even in header v2), the header's (empty) tagged fields.
    let client_id = b"weir-testkit";
    w.i32(0).i16(key).i16(version).i32(1);
    w.i16(client_id.len() as i16).raw(client_id).tags();
    w.raw(body);
    let mut frame = w.finish();
    let size = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    let response = exchange(port, api, &frame, timeout)?;
    weir_proto::strip_response_header(response, 1)
        .map_err(|e| format!("{api} response from port {port}: {e}"))
}

/// Sends `frame` (size prefix included) on a fresh connection to `127.0.0.1:port` and reads one response frame
/// (at most [`MAX_RESPONSE`]), returned without its size prefix; every step bounded by `timeout`.
fn exchange(port: u16, api: &str, frame: &[u8], timeout: Duration) -> Result<Bytes, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.write_all(frame)
        .map_err(|e| format!("send {api} to {addr}: {e}"))?;
    let mut size = [0u8; 4];
    s.read_exact(&mut size)
        .map_err(|e| format!("read {api} from {addr}: {e}"))?;
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > MAX_RESPONSE {
        return Err(format!("{api} response from {addr} has size {size}"));
    }
    let mut body = vec![0u8; size as usize];
    s.read_exact(&mut body)
        .map_err(|e| format!("read {api} from {addr}: {e}"))?;
    Ok(Bytes::from(body))
}

/// The node's Metadata: all topics when `topics` is `None`.
pub(crate) fn metadata(
    port: u16,
    topics: Option<&[&str]>,
    timeout: Duration,
) -> Result<MetadataResponse, String> {
    let req = MetadataRequest {
        topics: topics.map(|ts| ts.iter().map(|t| t.to_string()).collect()),
        allow_auto_topic_creation: false,
    };
    call(port, &req, METADATA_VERSION, timeout)
}

/// Sends CreateTopics for one topic to `port` and returns the broker's error, if any, as text.
pub(crate) fn create_topic(
    port: u16,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(&str, &str)],
    timeout: Duration,
) -> Result<(), String> {
    let req = CreateTopicsRequest {
        topics: vec![NewTopic {
            name: name.to_owned(),
            partitions,
            replication_factor,
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }],
        timeout_ms: timeout.as_millis() as i32,
    };
    let results = call(port, &req, CREATE_TOPICS_VERSION, timeout)?;
    match results.as_slice() {
        [r] if r.error_code == 0 => Ok(()),
        [r] => Err(format!(
            "error code {}{}",
            r.error_code,
            r.error_message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        )),
        other => Err(format!("{} results for one topic", other.len())),
    }
}

/// Sends CreatePartitions growing `name` to `total` partitions and returns the broker's error, if any, as text.
pub(crate) fn create_partitions(port: u16, name: &str, total: i32, timeout: Duration) -> Result<(), String> {
    let req = CreatePartitionsRequest {
        topics: vec![PartitionsIncrease {
            topic: name.to_owned(),
            count: total,
            assignments: None,
        }],
        timeout_ms: timeout.as_millis() as i32,
        validate_only: false,
    };
    let results = call(port, &req, CREATE_PARTITIONS_VERSION, timeout)?;
    match results.as_slice() {
        [r] if r.error_code == 0 => Ok(()),
        [r] => Err(format!(
            "error code {}: {}",
            r.error_code,
            r.error_message.as_deref().unwrap_or("")
        )),
        other => Err(format!("{} results for one topic", other.len())),
    }
}
