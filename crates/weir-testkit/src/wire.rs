//! A blocking Kafka protocol client just big enough for the harness: is a node up (Metadata), create a topic
//! (CreateTopics), where are the leaders. Requests are encoded and responses decoded by `weir-proto`, so the
//! harness needs neither weir's async client nor a JVM per admin call.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use weir_proto::kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use weir_proto::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use weir_proto::kafka_protocol::messages::{ApiKey, CreateTopicsRequest, MetadataRequest, TopicName};
use weir_proto::kafka_protocol::protocol::{Request, StrBytes};
use weir_proto::metadata::MetadataResponse;

/// Metadata v12 and CreateTopics v7: both in every Kafka 4.x broker.
const METADATA_VERSION: i16 = 12;
const CREATE_TOPICS_VERSION: i16 = 7;
/// Largest response the harness accepts.
const MAX_RESPONSE: usize = 64 << 20;

/// One request, one response, on a fresh connection to `127.0.0.1:port`; every step bounded by `timeout`.
fn round_trip<R: Request>(port: u16, req: &R, version: i16, timeout: Duration) -> Result<Bytes, String> {
    let key = ApiKey::try_from(R::KEY).map_err(|_| format!("unknown api key {}", R::KEY))?;
    let frame = weir_proto::frame::encode_request(req, version, 1, Some("weir-testkit"))
        .map_err(|e| format!("encoding {key:?}: {e}"))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.write_all(&frame)
        .map_err(|e| format!("send {key:?} to {addr}: {e}"))?;
    let mut size = [0u8; 4];
    s.read_exact(&mut size)
        .map_err(|e| format!("read {key:?} from {addr}: {e}"))?;
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > MAX_RESPONSE {
        return Err(format!("{key:?} response from {addr} has size {size}"));
    }
    let mut body = vec![0u8; size as usize];
    s.read_exact(&mut body)
        .map_err(|e| format!("read {key:?} from {addr}: {e}"))?;
    weir_proto::strip_response_header(Bytes::from(body), key.response_header_version(version))
        .map_err(|e| format!("{key:?} response from {addr}: {e}"))
}

/// The node's Metadata: all topics when `topics` is `None`.
pub(crate) fn metadata(
    port: u16,
    topics: Option<&[&str]>,
    timeout: Duration,
) -> Result<MetadataResponse, String> {
    let req = MetadataRequest::default()
        .with_topics(topics.map(|ts| {
            ts.iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(topic_name(t))))
                .collect()
        }))
        .with_allow_auto_topic_creation(false);
    let body = round_trip(port, &req, METADATA_VERSION, timeout)?;
    weir_proto::metadata::decode_metadata_response(body, METADATA_VERSION).map_err(|e| e.to_string())
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
    let topic = CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string((*k).into()))
                        .with_value(Some(StrBytes::from_string((*v).into())))
                })
                .collect(),
        );
    let req = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(timeout.as_millis() as i32);
    let body = round_trip(port, &req, CREATE_TOPICS_VERSION, timeout)?;
    let results = weir_proto::admin::decode_create_topics_response(body, CREATE_TOPICS_VERSION)
        .map_err(|e| e.to_string())?;
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

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}
