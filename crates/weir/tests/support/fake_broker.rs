//! An in-process fake Kafka broker for fault injection.
//!
//! A tokio TCP server on `127.0.0.1:0` that speaks just enough Kafka (with the `kafka-protocol` crate) to serve
//! ApiVersions, Metadata (one broker: itself), ListOffsets, Fetch, Produce and InitProducerId from an in-memory
//! log of raw record batches, and to act as a minimal group coordinator (FindCoordinator, JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch; see [`GroupState`]), and to answer ListGroups and DescribeGroups
//! as a broker without groups. Every request is shown to a script (a closure) that decides the reply: the normal
//! answer, an answer with replaced records, a Kafka error code, or a fault (close the connection, an oversized or
//! truncated frame, garbage bytes, no answer, a delay).
//!
//! The log stores batches as raw bytes, so a test can store corrupt batches and serve them like any other.
//! Everything the broker sees (connections, requests, produced batches) is recorded; tests wait for recorded
//! events with [`FakeBroker::wait_until`] instead of sleeping.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse,
    InitProducerIdRequest, InitProducerIdResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, ProduceRequest,
    ProduceResponse, ProducerId, RequestHeader, ResponseHeader, SyncGroupRequest, SyncGroupResponse,
    TopicName,
};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, DeleteRecordsRequest, DeleteRecordsResponse,
    DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::messages::{
    DescribeGroupsRequest, DescribeGroupsResponse, GroupId, ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use weir_proto::record::{BatchBuilder, BatchOptions, ProducerIds};

/// Node id of the fake broker (it is its own only broker, leader of everything, and controller).
pub const NODE_ID: i32 = 1;
/// Producer id handed out by InitProducerId.
pub const PRODUCER_ID: i64 = 4242;
/// Largest request frame the fake accepts.
const MAX_REQUEST: usize = 64 << 20;

/// A decoded request body (only the APIs the fake serves are decoded).
#[derive(Debug, Clone)]
pub enum Body {
    ApiVersions(ApiVersionsRequest),
    Metadata(MetadataRequest),
    ListOffsets(ListOffsetsRequest),
    Fetch(FetchRequest),
    Produce(ProduceRequest),
    InitProducerId(InitProducerIdRequest),
    FindCoordinator(FindCoordinatorRequest),
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    /// ListGroups: normally answered with no groups (a script answers otherwise with [`Action::RawBody`]).
    ListGroups(ListGroupsRequest),
    /// DescribeGroups: normally answered with every group unknown (`Dead` before v6, GROUP_ID_NOT_FOUND from
    /// v6), as Kafka answers for groups it does not have.
    DescribeGroups(DescribeGroupsRequest),
    /// DescribeCluster: normally answered with this broker alone, in cluster [`FAKE_CLUSTER_ID`]. (The
    /// admin APIs below are offered in ApiVersions only when a test adds them to [`FakeConfig::versions`].)
    DescribeCluster(DescribeClusterRequest),
    /// DescribeConfigs: normally answered with every resource found and no entries.
    DescribeConfigs(DescribeConfigsRequest),
    /// IncrementalAlterConfigs: normally answered with every resource accepted (nothing is stored).
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    /// CreatePartitions: normally answered with every topic accepted (nothing changes).
    CreatePartitions(CreatePartitionsRequest),
    /// DeleteRecords: normally answered with each partition's log start at the offset asked (nothing is
    /// deleted).
    DeleteRecords(DeleteRecordsRequest),
    /// OffsetForLeaderEpoch: answered from the log, by the leader epochs its batches carry (see
    /// [`FakeBroker::elect`]).
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    /// An API the fake does not serve; it answers nothing and closes the connection.
    Other,
}

/// One request as the fake broker received it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Connection number, counted from 0 in accept order.
    pub conn: usize,
    /// Index of this request among all requests the broker received.
    pub seq: usize,
    /// Index of this request among requests of the same API (all connections).
    pub api_seq: usize,
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub body: Body,
}

impl Request {
    /// `(partition, fetch_offset)` of every partition of a Fetch request.
    pub fn fetch_offsets(&self) -> Vec<(i32, i64)> {
        match &self.body {
            Body::Fetch(f) => f
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| (p.partition, p.fetch_offset)))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// `(topic, partition, offset)` of every partition of an OffsetCommit request.
    pub fn commit_offsets(&self) -> Vec<(String, i32, i64)> {
        match &self.body {
            Body::OffsetCommit(c) => c
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .map(|p| (t.name.0.to_string(), p.partition_index, p.committed_offset))
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// `(topic, partition, offset, committed leader epoch)` of an OffsetCommit request, empty for any other.
    pub fn commit_epochs(&self) -> Vec<(String, i32, i64, i32)> {
        match &self.body {
            Body::OffsetCommit(c) => c
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(|p| {
                        (
                            t.name.0.to_string(),
                            p.partition_index,
                            p.committed_offset,
                            p.committed_leader_epoch,
                        )
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The record bytes of every partition of a Produce request.
    pub fn produced(&self) -> Vec<(String, i32, Bytes)> {
        match &self.body {
            Body::Produce(p) => p
                .topic_data
                .iter()
                .flat_map(|t| {
                    t.partition_data.iter().map(|d| {
                        (
                            t.name.0.to_string(),
                            d.index,
                            d.records.clone().unwrap_or_default(),
                        )
                    })
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// What the broker does with one request.
#[derive(Debug, Clone)]
pub enum Action {
    /// The normal answer, from the log.
    Answer,
    /// A Fetch answer whose records for these `(topic, partition)`s are the given bytes (others from the log).
    FetchRecords(BTreeMap<(String, i32), Bytes>),
    /// A Produce answer with this error code for every partition (nothing is appended).
    ProduceError(i16),
    /// A group API's answer (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
    /// OffsetFetch) carrying this error code; the request has no effect.
    GroupError(i16),
    /// This response body (after a correct response header) instead of the normal one.
    RawBody(Bytes),
    /// Apply the request's effects (append produced batches) and answer; then close the connection.
    AnswerThenClose,
    /// Apply the request's effects but close the connection instead of answering (the response is lost).
    ApplyThenClose,
    /// Close the connection without applying or answering.
    Close,
    /// Send a size prefix of this many bytes followed by a few bytes; then answer nothing more on this
    /// connection (the client must drop it).
    OversizedFrame(u32),
    /// Send the size prefix and the first half of the normal response, then close.
    TruncatedFrame,
    /// Send these raw bytes; then answer nothing more on this connection.
    Garbage(Vec<u8>),
    /// Do not answer this request; keep serving the connection.
    NoAnswer,
    /// Answer neither this request nor any later one on this connection (which stays open).
    Stall,
    /// Wait, then do the inner action.
    Delay(Duration, Box<Action>),
}

/// Decides the reply to each request.
pub type Script = Arc<dyn Fn(&Request) -> Action + Send + Sync>;

/// One stored batch.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub base_offset: i64,
    pub next_offset: i64,
    pub bytes: Bytes,
}

impl StoredBatch {
    fn producer(&self) -> (i64, i16, i32) {
        producer_fields(&self.bytes)
    }
}

fn producer_fields(b: &[u8]) -> (i64, i16, i32) {
    if b.len() < 61 {
        return (-1, -1, -1);
    }
    (
        i64::from_be_bytes(b[43..51].try_into().unwrap()),
        i16::from_be_bytes(b[51..53].try_into().unwrap()),
        i32::from_be_bytes(b[53..57].try_into().unwrap()),
    )
}

/// Base offset and record count read from a raw batch header (without validating anything else).
pub fn batch_span(b: &[u8]) -> (i64, i64) {
    let base = i64::from_be_bytes(b[0..8].try_into().unwrap());
    let last_delta = i32::from_be_bytes(b[23..27].try_into().unwrap());
    (base, i64::from(last_delta) + 1)
}

/// Everything recorded so far.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Connections accepted.
    pub connections: usize,
    /// Connections that ended (closed by either side).
    pub disconnections: usize,
    /// Every request received, in arrival order.
    pub requests: Vec<Request>,
}

impl Recorded {
    pub fn of(&self, key: ApiKey) -> impl Iterator<Item = &Request> {
        self.requests.iter().filter(move |r| r.api_key == key)
    }
}

/// How the fake is set up.
#[derive(Clone)]
pub struct FakeConfig {
    /// `(topic, partition count)`.
    pub topics: Vec<(String, i32)>,
    /// `(api, min, max)` offered in ApiVersions.
    pub versions: Vec<(ApiKey, i16, i16)>,
    /// At most this many batches per partition in one Fetch answer (`None`: as many as fit).
    pub batches_per_fetch: Option<usize>,
    /// The script; by default every request gets [`Action::Answer`].
    pub script: Script,
    /// Replaces the normal Metadata answer (given the request version and the broker's own port).
    pub metadata: Option<Arc<dyn Fn(i16, u16) -> MetadataResponse + Send + Sync>>,
    /// Keep incremental fetch sessions (KIP-227) as Kafka does.
    pub sessions: bool,
    /// The group coordinator's state, when shared with another fake broker (else a fresh one).
    pub group: Option<Arc<Mutex<GroupState>>>,
}

impl FakeConfig {
    pub fn new(topics: &[(&str, i32)]) -> Self {
        FakeConfig {
            topics: topics.iter().map(|&(t, n)| (t.to_owned(), n)).collect(),
            versions: vec![
                (ApiKey::ApiVersions, 0, 3),
                (ApiKey::Metadata, 1, 12),
                (ApiKey::ListOffsets, 1, 8),
                (ApiKey::Fetch, 4, 17),
                (ApiKey::Produce, 3, 11),
                (ApiKey::InitProducerId, 0, 4),
                (ApiKey::OffsetCommit, 2, 8),
                (ApiKey::OffsetFetch, 1, 7),
                (ApiKey::FindCoordinator, 0, 4),
                (ApiKey::JoinGroup, 0, 9),
                (ApiKey::Heartbeat, 0, 4),
                (ApiKey::LeaveGroup, 0, 5),
                (ApiKey::SyncGroup, 0, 5),
                (ApiKey::OffsetForLeaderEpoch, 2, 4),
            ],
            batches_per_fetch: None,
            script: Arc::new(|_| Action::Answer),
            metadata: None,
            sessions: false,
            group: None,
        }
    }

    /// Share the group coordinator's state (members, generation, committed offsets) with `other`, as a Kafka
    /// coordinator that takes a group over loads it from `__consumer_offsets`.
    pub fn share_group(mut self, other: &FakeBroker) -> Self {
        self.group = Some(other.state.group.clone());
        self
    }

    pub fn script(mut self, f: impl Fn(&Request) -> Action + Send + Sync + 'static) -> Self {
        self.script = Arc::new(f);
        self
    }

    /// Serve fetch sessions (KIP-227).
    pub fn sessions(mut self) -> Self {
        self.sessions = true;
        self
    }

    pub fn batches_per_fetch(mut self, n: usize) -> Self {
        self.batches_per_fetch = Some(n);
        self
    }

    pub fn metadata(mut self, f: impl Fn(i16, u16) -> MetadataResponse + Send + Sync + 'static) -> Self {
        self.metadata = Some(Arc::new(f));
        self
    }
}

struct State {
    cfg: FakeConfig,
    port: u16,
    log: Mutex<BTreeMap<(String, i32), Vec<StoredBatch>>>,
    recorded: Mutex<Recorded>,
    /// Notified on every recorded event and every append.
    changed: Notify,
    /// Fetch sessions: id -> (next expected epoch, partition -> (fetch offset, max bytes)).
    sessions: Mutex<HashMap<i32, (i32, SessionParts)>>,
    /// The group coordinator's state (possibly shared with other fake brokers).
    group: Arc<Mutex<GroupState>>,
    /// Where FindCoordinator points: `(node id, port)`; `None`: this broker.
    coordinator: Mutex<Option<(i32, u16)>>,
    /// The leader epoch this broker leads a partition at (set by [`FakeBroker::elect`]; none: fetches are not
    /// checked). Locked inside `log`, so that a leader change and the fetches it fences are ordered.
    epochs: Mutex<HashMap<(String, i32), i32>>,
}

/// The running fake broker; stops when dropped.
pub struct FakeBroker {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeBroker {
    /// Starts the broker on an ephemeral port of 127.0.0.1.
    pub async fn start(cfg: FakeConfig) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut log = BTreeMap::new();
        for (t, n) in &cfg.topics {
            for p in 0..*n {
                log.insert((t.clone(), p), Vec::new());
            }
        }
        let group = cfg.group.clone().unwrap_or_default();
        let state = Arc::new(State {
            cfg,
            group,
            coordinator: Mutex::new(None),
            port: addr.port(),
            log: Mutex::new(log),
            recorded: Mutex::new(Recorded::default()),
            changed: Notify::new(),
            sessions: Mutex::new(HashMap::new()),
            epochs: Mutex::new(HashMap::new()),
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            // Connection tasks live in the set, so they are aborted with the accept task.
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let conn = {
                            let mut r = st.recorded.lock().unwrap();
                            r.connections += 1;
                            r.connections - 1
                        };
                        st.changed.notify_waiters();
                        let st2 = st.clone();
                        conns.spawn(async move {
                            serve(st2.clone(), stream, conn).await;
                            st2.recorded.lock().unwrap().disconnections += 1;
                            st2.changed.notify_waiters();
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        FakeBroker { addr, state, task }
    }

    /// `127.0.0.1:port`.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Appends a raw batch (any bytes with a batch header) at the offsets its header names.
    pub fn append_raw(&self, topic: &str, partition: i32, bytes: Bytes) {
        let (base, count) = batch_span(&bytes);
        self.state
            .log
            .lock()
            .unwrap()
            .entry((topic.to_owned(), partition))
            .or_default()
            .push(StoredBatch {
                base_offset: base,
                next_offset: base + count,
                bytes,
            });
        self.state.changed.notify_waiters();
    }

    /// A leader change at once: from now on this broker leads `topic`/`partition` at leader epoch `epoch`
    /// (fetches and OffsetForLeaderEpoch requests at an older current epoch are answered FENCED_LEADER_EPOCH),
    /// and its log is cut back to `truncate_to` (an unclean election: the new leader never had what follows),
    /// then `batches` are appended. Fetches waiting for data are woken and see the change.
    pub fn elect(&self, topic: &str, partition: i32, epoch: i32, truncate_to: i64, batches: Vec<Bytes>) {
        let mut log = self.state.log.lock().unwrap();
        self.state
            .epochs
            .lock()
            .unwrap()
            .insert((topic.to_owned(), partition), epoch);
        let stored = log.entry((topic.to_owned(), partition)).or_default();
        assert!(
            stored
                .iter()
                .all(|b| b.base_offset >= truncate_to || b.next_offset <= truncate_to),
            "the fake truncates only at batch boundaries"
        );
        stored.retain(|b| b.base_offset < truncate_to);
        for bytes in batches {
            let (base, count) = batch_span(&bytes);
            stored.push(StoredBatch {
                base_offset: base,
                next_offset: base + count,
                bytes,
            });
        }
        drop(log);
        self.state.changed.notify_waiters();
    }

    /// Appends a well-formed batch of `values` at the log end; returns its base offset.
    pub fn append(&self, topic: &str, partition: i32, values: &[String]) -> i64 {
        let base = self.log_end(topic, partition);
        self.append_raw(topic, partition, batch(base, values));
        base
    }

    /// The offset the next batch gets.
    pub fn log_end(&self, topic: &str, partition: i32) -> i64 {
        log_end(&self.state.log.lock().unwrap(), topic, partition)
    }

    /// The stored batches of a partition.
    pub fn batches(&self, topic: &str, partition: i32) -> Vec<StoredBatch> {
        self.state
            .log
            .lock()
            .unwrap()
            .get(&(topic.to_owned(), partition))
            .cloned()
            .unwrap_or_default()
    }

    /// Makes FindCoordinator point at `(node_id, port)` (`None`: this broker). While it points elsewhere, this
    /// broker answers the other group APIs with NOT_COORDINATOR.
    pub fn set_coordinator(&self, to: Option<(i32, u16)>) {
        *self.state.coordinator.lock().unwrap() = to;
        self.state.changed.notify_waiters();
    }

    /// Runs `f` on the group coordinator's state.
    pub fn group<T>(&self, f: impl FnOnce(&mut GroupState) -> T) -> T {
        let out = f(&mut self.state.group.lock().unwrap());
        self.state.changed.notify_waiters();
        out
    }

    /// The offset committed for a partition, if any.
    pub fn committed(&self, topic: &str, partition: i32) -> Option<i64> {
        self.group(|g| g.offsets.get(&(topic.to_owned(), partition)).copied())
    }

    /// Waits until `cond` holds on the group coordinator's state (panics after 20 s, naming `what`).
    pub async fn wait_group(&self, what: &str, cond: impl Fn(&GroupState) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let changed = self.state.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if cond(&self.state.group.lock().unwrap()) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!(
                    "timed out waiting for {what}; group: {:?}",
                    self.state.group.lock().unwrap()
                );
            }
        }
    }

    /// Runs `f` on what was recorded so far.
    pub fn recorded<T>(&self, f: impl FnOnce(&Recorded) -> T) -> T {
        f(&self.state.recorded.lock().unwrap())
    }

    /// Waits until `cond` holds on the recorded events (panics after 20 s, naming `what`).
    pub async fn wait_until(&self, what: &str, cond: impl Fn(&Recorded) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let changed = self.state.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if cond(&self.state.recorded.lock().unwrap()) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                let r = self.state.recorded.lock().unwrap();
                panic!(
                    "timed out waiting for {what}; {} connections, requests: {:?}",
                    r.connections,
                    r.requests
                        .iter()
                        .map(|q| (q.conn, q.api_key, q.api_seq))
                        .collect::<Vec<_>>()
                );
            }
        }
    }
}

/// The timestamp of the record at offset 0 in batches built by [`batch`] (each next offset one ms later).
pub const RECORD_TIME_BASE: i64 = 1_700_000_000_000;

/// [`batch`] as a leader at `leader_epoch` stores it (the partition leader epoch in its header, which the CRC
/// does not cover).
pub fn batch_at_epoch(base_offset: i64, values: &[String], leader_epoch: i32) -> Bytes {
    let mut b = BytesMut::from(&batch(base_offset, values)[..]);
    b[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    b.freeze()
}

/// The partition leader epoch of a stored batch.
fn leader_epoch_of(b: &StoredBatch) -> i32 {
    i32::from_be_bytes(b.bytes[12..16].try_into().unwrap())
}

/// A well-formed uncompressed batch of `values` starting at `base_offset`.
pub fn batch(base_offset: i64, values: &[String]) -> Bytes {
    let mut b = BatchBuilder::new(BatchOptions {
        base_offset,
        ..Default::default()
    });
    for (i, v) in values.iter().enumerate() {
        b.push(
            RECORD_TIME_BASE + base_offset + i as i64,
            None,
            Some(v.as_bytes()),
            &[],
        );
    }
    b.seal(ProducerIds::NONE).unwrap()
}

fn log_end(log: &BTreeMap<(String, i32), Vec<StoredBatch>>, topic: &str, partition: i32) -> i64 {
    log.get(&(topic.to_owned(), partition))
        .and_then(|v| v.iter().map(|b| b.next_offset).max())
        .unwrap_or(0)
}

enum Outcome {
    /// Keep serving.
    Continue,
    /// Keep reading requests but answer none (the stream is desynchronised or stalled).
    Mute,
    /// End the connection.
    Close,
}

async fn serve(st: Arc<State>, mut stream: TcpStream, conn: usize) {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut muted = false;
    loop {
        // One whole frame.
        while buf.len() < 4 || buf.len() < 4 + frame_len(&buf) {
            if buf.len() >= 4 && frame_len(&buf) > MAX_REQUEST {
                return;
            }
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let n = frame_len(&buf);
        let _ = buf.split_to(4);
        let frame = buf.split_to(n).freeze();
        let Some(mut req) = decode_request(conn, frame) else {
            return;
        };
        {
            let mut r = st.recorded.lock().unwrap();
            req.seq = r.requests.len();
            req.api_seq = r.of(req.api_key).count();
            r.requests.push(req.clone());
        }
        st.changed.notify_waiters();
        if muted {
            continue;
        }
        if matches!(req.body, Body::Other) {
            return;
        }
        let action = (st.cfg.script)(&req);
        match act(&st, &mut stream, &req, action).await {
            Outcome::Continue => {}
            Outcome::Mute => muted = true,
            Outcome::Close => return,
        }
    }
}

fn frame_len(buf: &[u8]) -> usize {
    i32::from_be_bytes(buf[0..4].try_into().unwrap()).max(0) as usize
}

fn decode_request(conn: usize, mut frame: Bytes) -> Option<Request> {
    if frame.len() < 4 {
        return None;
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key = ApiKey::try_from(key).ok()?;
    let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version)).ok()?;
    let body = match api_key {
        ApiKey::ApiVersions => {
            // An ApiVersions request at a version we cannot parse still gets an answer (UNSUPPORTED_VERSION).
            Body::ApiVersions(ApiVersionsRequest::decode(&mut frame, version).unwrap_or_default())
        }
        ApiKey::Metadata => Body::Metadata(MetadataRequest::decode(&mut frame, version).ok()?),
        ApiKey::ListOffsets => Body::ListOffsets(ListOffsetsRequest::decode(&mut frame, version).ok()?),
        ApiKey::Fetch => Body::Fetch(FetchRequest::decode(&mut frame, version).ok()?),
        ApiKey::Produce => Body::Produce(ProduceRequest::decode(&mut frame, version).ok()?),
        ApiKey::InitProducerId => {
            Body::InitProducerId(InitProducerIdRequest::decode(&mut frame, version).ok()?)
        }
        ApiKey::FindCoordinator => {
            Body::FindCoordinator(FindCoordinatorRequest::decode(&mut frame, version).ok()?)
        }
        ApiKey::JoinGroup => Body::JoinGroup(JoinGroupRequest::decode(&mut frame, version).ok()?),
        ApiKey::SyncGroup => Body::SyncGroup(SyncGroupRequest::decode(&mut frame, version).ok()?),
        ApiKey::Heartbeat => Body::Heartbeat(HeartbeatRequest::decode(&mut frame, version).ok()?),
        ApiKey::LeaveGroup => Body::LeaveGroup(LeaveGroupRequest::decode(&mut frame, version).ok()?),
        ApiKey::OffsetCommit => Body::OffsetCommit(OffsetCommitRequest::decode(&mut frame, version).ok()?),
        ApiKey::OffsetFetch => Body::OffsetFetch(OffsetFetchRequest::decode(&mut frame, version).ok()?),
        ApiKey::ListGroups => Body::ListGroups(ListGroupsRequest::decode(&mut frame, version).ok()?),
        ApiKey::DescribeGroups => {
            Body::DescribeGroups(DescribeGroupsRequest::decode(&mut frame, version).ok()?)
        }
        ApiKey::DescribeCluster => {
            Body::DescribeCluster(DescribeClusterRequest::decode(&mut frame, version).ok()?)
        }
        ApiKey::DescribeConfigs => {
            Body::DescribeConfigs(DescribeConfigsRequest::decode(&mut frame, version).ok()?)
        }
        ApiKey::IncrementalAlterConfigs => {
            Body::IncrementalAlterConfigs(IncrementalAlterConfigsRequest::decode(&mut frame, version).ok()?)
        }
        ApiKey::CreatePartitions => {
            Body::CreatePartitions(CreatePartitionsRequest::decode(&mut frame, version).ok()?)
        }
        ApiKey::DeleteRecords => Body::DeleteRecords(DeleteRecordsRequest::decode(&mut frame, version).ok()?),
        ApiKey::OffsetForLeaderEpoch => {
            Body::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::decode(&mut frame, version).ok()?)
        }
        _ => Body::Other,
    };
    Some(Request {
        conn,
        seq: 0,
        api_seq: 0,
        api_key,
        version,
        correlation_id: header.correlation_id,
        body,
    })
}

async fn write(stream: &mut TcpStream, bytes: Bytes) -> bool {
    stream.write_all(&bytes).await.is_ok()
}

async fn act(st: &State, stream: &mut TcpStream, req: &Request, action: Action) -> Outcome {
    let mut action = action;
    while let Action::Delay(d, inner) = action {
        tokio::time::sleep(d).await;
        action = *inner;
    }
    match action {
        Action::Delay(..) => unreachable!(),
        Action::Answer
        | Action::FetchRecords(_)
        | Action::ProduceError(_)
        | Action::GroupError(_)
        | Action::RawBody(_) => {
            let body = match action {
                Action::RawBody(b) => b,
                other => answer(st, req, &other).await,
            };
            if write(stream, frame(req, body)).await {
                Outcome::Continue
            } else {
                Outcome::Close
            }
        }
        Action::AnswerThenClose => {
            let body = answer(st, req, &Action::Answer).await;
            let _ = write(stream, frame(req, body)).await;
            let _ = stream.shutdown().await;
            Outcome::Close
        }
        Action::ApplyThenClose => {
            let _ = answer(st, req, &Action::Answer).await;
            Outcome::Close
        }
        Action::Close => Outcome::Close,
        Action::OversizedFrame(size) => {
            let mut b = BytesMut::new();
            b.put_u32(size);
            b.put_i32(req.correlation_id);
            b.put_slice(&[0u8; 56]);
            let _ = write(stream, b.freeze()).await;
            Outcome::Mute
        }
        Action::TruncatedFrame => {
            let body = answer(st, req, &Action::Answer).await;
            let whole = frame(req, body);
            let cut = 4 + (whole.len() - 4) / 2;
            let _ = write(stream, whole.slice(..cut)).await;
            let _ = stream.shutdown().await;
            Outcome::Close
        }
        Action::Garbage(bytes) => {
            let _ = write(stream, Bytes::from(bytes)).await;
            Outcome::Mute
        }
        Action::NoAnswer => Outcome::Continue,
        Action::Stall => Outcome::Mute,
    }
}

/// Size prefix + response header + body.
fn frame(req: &Request, body: Bytes) -> Bytes {
    let header_version = req.api_key.response_header_version(req.version);
    let header = ResponseHeader::default().with_correlation_id(req.correlation_id);
    let mut h = BytesMut::new();
    header.encode(&mut h, header_version).unwrap();
    let mut out = BytesMut::with_capacity(4 + h.len() + body.len());
    out.put_i32((h.len() + body.len()) as i32);
    out.put_slice(&h);
    out.put_slice(&body);
    out.freeze()
}

pub fn encode<T: Encodable>(msg: &T, version: i16) -> Bytes {
    let mut b = BytesMut::new();
    msg.encode(&mut b, version)
        .unwrap_or_else(|e| panic!("fake broker cannot encode its answer at v{version}: {e}"));
    b.freeze()
}

/// The body of the normal answer to `req` (applying its effects), shaped by `action`.
async fn answer(st: &State, req: &Request, action: &Action) -> Bytes {
    let v = req.version;
    match &req.body {
        Body::ApiVersions(_) => {
            let keys = st
                .cfg
                .versions
                .iter()
                .map(|&(k, lo, hi)| {
                    ApiVersion::default()
                        .with_api_key(k as i16)
                        .with_min_version(lo)
                        .with_max_version(hi)
                })
                .collect();
            let (code, v) = if v > 3 { (35, 0) } else { (0, v) };
            encode(
                &ApiVersionsResponse::default()
                    .with_error_code(code)
                    .with_api_keys(keys),
                v,
            )
        }
        Body::Metadata(m) => {
            if let Some(f) = &st.cfg.metadata {
                return encode(&f(v, st.port), v);
            }
            encode(&metadata(st, m), v)
        }
        // Each InitProducerId starts a new epoch of the same producer id (0, 1, ...), as a bump does in Kafka.
        Body::InitProducerId(_) => encode(
            &InitProducerIdResponse::default()
                .with_producer_id(ProducerId(PRODUCER_ID))
                .with_producer_epoch(req.api_seq as i16),
            v,
        ),
        Body::ListOffsets(l) => {
            let log = st.log.lock().unwrap();
            let topics = l
                .topics
                .iter()
                .map(|t| {
                    let name = t.name.0.to_string();
                    ListOffsetsTopicResponse::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    let batches = log.get(&(name.clone(), p.partition_index));
                                    let start = batches.and_then(|b| b.first()).map_or(0, |b| b.base_offset);
                                    let end = log_end(&log, &name, p.partition_index);
                                    let r = ListOffsetsPartitionResponse::default()
                                        .with_partition_index(p.partition_index)
                                        .with_timestamp(-1);
                                    match batches {
                                        None => r.with_error_code(3),
                                        Some(_) if p.timestamp == -2 => r.with_offset(start),
                                        // The first offset whose timestamp is at or after the one asked (records
                                        // of `batch` carry 1_700_000_000_000 + offset), none (-1) past the end.
                                        Some(_) if p.timestamp >= 0 => {
                                            let at = (p.timestamp - RECORD_TIME_BASE).max(start);
                                            r.with_offset(if at < end { at } else { -1 })
                                        }
                                        Some(_) => r.with_offset(end),
                                    }
                                })
                                .collect(),
                        )
                })
                .collect();
            encode(&ListOffsetsResponse::default().with_topics(topics), v)
        }
        Body::Fetch(f) => encode(&fetch(st, f, v, action).await, v),
        Body::Produce(p) => encode(&produce(st, p, action), v),
        Body::FindCoordinator(_)
        | Body::JoinGroup(_)
        | Body::SyncGroup(_)
        | Body::Heartbeat(_)
        | Body::LeaveGroup(_)
        | Body::OffsetCommit(_)
        | Body::OffsetFetch(_) => group_answer(st, req, action),
        Body::ListGroups(_) => encode(&ListGroupsResponse::default(), v),
        Body::DescribeGroups(d) => encode(&unknown_groups(&d.groups, v), v),
        Body::DescribeCluster(_) => encode(&describe_cluster_answer(st.port), v),
        Body::DescribeConfigs(d) => encode(&describe_configs_answer(d), v),
        Body::IncrementalAlterConfigs(a) => encode(&alter_configs_answer(a), v),
        Body::CreatePartitions(c) => encode(&create_partitions_answer(c), v),
        Body::DeleteRecords(d) => encode(&delete_records_answer(d), v),
        Body::OffsetForLeaderEpoch(o) => encode(&offset_for_leader_epoch_answer(st, o), v),
        Body::Other => Bytes::new(),
    }
}

/// The cluster id the fake's DescribeCluster answer names.
pub const FAKE_CLUSTER_ID: &str = "fake-cluster";

/// The normal DescribeCluster answer: this broker alone, and controller.
fn describe_cluster_answer(port: u16) -> DescribeClusterResponse {
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_static_str(FAKE_CLUSTER_ID))
        .with_controller_id(BrokerId(NODE_ID))
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(NODE_ID))
            .with_host(StrBytes::from_static_str("127.0.0.1"))
            .with_port(i32::from(port))])
}

/// The normal DescribeConfigs answer: every resource, without entries.
fn describe_configs_answer(d: &DescribeConfigsRequest) -> DescribeConfigsResponse {
    DescribeConfigsResponse::default().with_results(
        d.resources
            .iter()
            .map(|r| {
                DescribeConfigsResult::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone())
            })
            .collect(),
    )
}

/// The normal IncrementalAlterConfigs answer: every resource accepted.
fn alter_configs_answer(a: &IncrementalAlterConfigsRequest) -> IncrementalAlterConfigsResponse {
    IncrementalAlterConfigsResponse::default().with_responses(
        a.resources
            .iter()
            .map(|r| {
                AlterConfigsResourceResponse::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone())
            })
            .collect(),
    )
}

/// The normal CreatePartitions answer: every topic accepted.
fn create_partitions_answer(c: &CreatePartitionsRequest) -> CreatePartitionsResponse {
    CreatePartitionsResponse::default().with_results(
        c.topics
            .iter()
            .map(|t| CreatePartitionsTopicResult::default().with_name(t.name.clone()))
            .collect(),
    )
}

/// The code a leader at `ours` (none: unchecked) answers a request at the client's current leader epoch
/// `theirs` with: FENCED_LEADER_EPOCH when older, UNKNOWN_LEADER_EPOCH when newer, 0 when equal or unknown.
fn epoch_check(ours: Option<i32>, theirs: i32) -> i16 {
    match ours {
        Some(ours) if theirs >= 0 && theirs < ours => 74,
        Some(ours) if theirs > ours => 75,
        _ => 0,
    }
}

/// Answers OffsetForLeaderEpoch from the log: the largest epoch of its batches not above the one asked, and
/// where it ends (the first batch of a later epoch, or the log end); -1 and -1 when there is none.
fn offset_for_leader_epoch_answer(
    st: &State,
    o: &OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    use kafka_protocol::messages::offset_for_leader_epoch_response::{
        EpochEndOffset, OffsetForLeaderTopicResult,
    };
    let log = st.log.lock().unwrap();
    let epochs = st.epochs.lock().unwrap();
    let topics = o
        .topics
        .iter()
        .map(|t| {
            let name = t.topic.0.to_string();
            let partitions = t
                .partitions
                .iter()
                .map(|q| {
                    let key = (name.clone(), q.partition);
                    let answer = EpochEndOffset::default().with_partition(q.partition);
                    let Some(batches) = log.get(&key) else {
                        return answer.with_error_code(3);
                    };
                    let code = epoch_check(epochs.get(&key).copied(), q.current_leader_epoch);
                    if code != 0 {
                        return answer.with_error_code(code);
                    }
                    let found = batches
                        .iter()
                        .map(leader_epoch_of)
                        .filter(|&e| e <= q.leader_epoch)
                        .max();
                    match found {
                        None => answer.with_leader_epoch(-1).with_end_offset(-1),
                        Some(e) => answer.with_leader_epoch(e).with_end_offset(
                            batches
                                .iter()
                                .find(|b| leader_epoch_of(b) > e)
                                .map_or_else(|| log_end(&log, &name, q.partition), |b| b.base_offset),
                        ),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// The normal DeleteRecords answer: each partition's log start at the offset asked.
fn delete_records_answer(d: &DeleteRecordsRequest) -> DeleteRecordsResponse {
    DeleteRecordsResponse::default().with_topics(
        d.topics
            .iter()
            .map(|t| {
                DeleteRecordsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                DeleteRecordsPartitionResult::default()
                                    .with_partition_index(p.partition_index)
                                    .with_low_watermark(p.offset)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

fn metadata(st: &State, m: &MetadataRequest) -> MetadataResponse {
    let wanted: Vec<String> = match &m.topics {
        None => st.cfg.topics.iter().map(|(t, _)| t.clone()).collect(),
        Some(ts) => ts
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect(),
    };
    let topics = wanted
        .into_iter()
        .map(|name| {
            let t = MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                .with_topic_id(topic_uuid(&name));
            match st.cfg.topics.iter().find(|(n, _)| *n == name) {
                None => t.with_error_code(3),
                Some(&(_, count)) => t.with_partitions(
                    (0..count)
                        .map(|p| {
                            MetadataResponsePartition::default()
                                .with_partition_index(p)
                                .with_leader_id(BrokerId(NODE_ID))
                                .with_leader_epoch(0)
                                .with_replica_nodes(vec![BrokerId(NODE_ID)])
                                .with_isr_nodes(vec![BrokerId(NODE_ID)])
                        })
                        .collect(),
                ),
            }
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(vec![self_broker(st.port)])
        .with_controller_id(BrokerId(NODE_ID))
        .with_topics(topics)
}

/// The id of topic `name` in every fake broker's answers (Metadata v10+, Fetch v13+): derived from the name,
/// so that fake brokers of one test agree, and never all zero.
pub fn topic_id(name: &str) -> [u8; 16] {
    // FNV-1a, twice over (with two offsets) for 16 bytes.
    let fnv = |seed: u64| {
        name.bytes()
            .fold(seed, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
    };
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_be_bytes());
    id[8..].copy_from_slice(&(fnv(0x6c62_272e_07bb_0142) | 1).to_be_bytes());
    id
}

/// [`topic_id`] as kafka-protocol's type.
pub fn topic_uuid(name: &str) -> uuid::Uuid {
    uuid::Uuid::from_bytes(topic_id(name))
}

/// This broker's entry in a Metadata answer.
pub fn self_broker(port: u16) -> MetadataResponseBroker {
    MetadataResponseBroker::default()
        .with_node_id(BrokerId(NODE_ID))
        .with_host(StrBytes::from_static_str("127.0.0.1"))
        .with_port(i32::from(port))
}

/// The normal Metadata answer for `topics` (each with `count` partitions led by this broker).
pub fn metadata_answer(port: u16, topics: &[(&str, i32)]) -> MetadataResponse {
    MetadataResponse::default()
        .with_brokers(vec![self_broker(port)])
        .with_controller_id(BrokerId(NODE_ID))
        .with_topics(
            topics
                .iter()
                .map(|&(name, count)| {
                    MetadataResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))))
                        .with_topic_id(topic_uuid(name))
                        .with_partitions(
                            (0..count)
                                .map(|p| {
                                    MetadataResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_leader_id(BrokerId(NODE_ID))
                                        .with_replica_nodes(vec![BrokerId(NODE_ID)])
                                        .with_isr_nodes(vec![BrokerId(NODE_ID)])
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
}

/// Records from the log at `offset`: whole batches whose end is past it, within `max_bytes` (at least one).
fn read_log(batches: &[StoredBatch], offset: i64, max_bytes: usize, max_batches: Option<usize>) -> Bytes {
    let mut out = BytesMut::new();
    for (n, b) in batches.iter().filter(|b| b.next_offset > offset).enumerate() {
        if n > 0 && (out.len() + b.bytes.len() > max_bytes || max_batches.is_some_and(|m| n >= m)) {
            break;
        }
        out.put_slice(&b.bytes);
    }
    out.freeze()
}

/// A fetch session's partitions: (topic, partition) -> (fetch offset, max bytes).
type SessionParts = BTreeMap<(String, i32), (i64, i32)>;
/// (topic, partition, fetch offset, max bytes) of one partition a fetch reads.
type Target = (String, i32, i64, i32);

/// The partitions a fetch reads — the request's own, or its session's after applying the request — plus the
/// session id to answer with, or a top-level error code.
fn fetch_targets(st: &State, f: &FetchRequest) -> Result<(i32, bool, Vec<Target>), i16> {
    let listed = f.topics.iter().flat_map(|t| {
        t.partitions.iter().map(|p| {
            (
                (t.topic.0.to_string(), p.partition),
                (p.fetch_offset, p.partition_max_bytes),
            )
        })
    });
    if !st.cfg.sessions || f.session_epoch == -1 {
        return Ok((0, false, listed.map(|((t, p), (o, m))| (t, p, o, m)).collect()));
    }
    let mut sessions = st.sessions.lock().unwrap();
    let (id, incremental) = if f.session_epoch == 0 {
        let id = sessions.len() as i32 + 1;
        sessions.insert(id, (1, BTreeMap::new()));
        (id, false)
    } else {
        (f.session_id, true)
    };
    let Some((epoch, parts)) = sessions.get_mut(&id) else {
        return Err(70);
    };
    if incremental {
        if f.session_epoch != *epoch {
            return Err(71); // INVALID_FETCH_SESSION_EPOCH
        }
        *epoch += 1;
    }
    parts.extend(listed);
    for t in &f.forgotten_topics_data {
        for p in &t.partitions {
            parts.remove(&(t.topic.0.to_string(), *p));
        }
    }
    Ok((
        id,
        incremental,
        parts
            .iter()
            .map(|((t, p), &(o, m))| (t.clone(), *p, o, m))
            .collect(),
    ))
}

/// The request with its topics named (from v13 a request names them by id; the fake maps the ids of its
/// topics back to their names), and the ids it does not know.
fn named_fetch(st: &State, f: &FetchRequest, version: i16) -> (FetchRequest, Vec<uuid::Uuid>) {
    let mut f = f.clone();
    if version < 13 {
        return (f, Vec::new());
    }
    let name_of = |id: &uuid::Uuid| {
        st.cfg
            .topics
            .iter()
            .find(|(n, _)| topic_uuid(n) == *id)
            .map(|(n, _)| TopicName(StrBytes::from_string(n.clone())))
    };
    let mut unknown = Vec::new();
    f.topics.retain_mut(|t| match name_of(&t.topic_id) {
        Some(name) => {
            t.topic = name;
            true
        }
        None => {
            unknown.push(t.topic_id);
            false
        }
    });
    f.forgotten_topics_data
        .retain_mut(|t| match name_of(&t.topic_id) {
            Some(name) => {
                t.topic = name;
                true
            }
            None => false,
        });
    (f, unknown)
}

async fn fetch(st: &State, f: &FetchRequest, version: i16, action: &Action) -> FetchResponse {
    let original = f;
    let (named, unknown_ids) = named_fetch(st, f, version);
    let f = &named;
    let overrides = match action {
        Action::FetchRecords(m) => Some(m),
        _ => None,
    };
    let (session_id, incremental, targets) = match fetch_targets(st, f) {
        Ok(t) => t,
        Err(code) => return FetchResponse::default().with_error_code(code),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(f.max_wait_ms.max(0) as u64);
    loop {
        // Long poll: wait (up to max_wait_ms) until some requested partition has data.
        let changed = st.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let mut any = overrides.is_some();
        let mut topics: BTreeMap<String, Vec<PartitionData>> = BTreeMap::new();
        {
            let log = st.log.lock().unwrap();
            let epochs = st.epochs.lock().unwrap();
            for (name, partition, fetch_offset, max_bytes) in &targets {
                let key = (name.clone(), *partition);
                let mut d = PartitionData::default().with_partition_index(*partition);
                // The epoch this request names for the partition (none for one an incremental request leaves out).
                let theirs = f
                    .topics
                    .iter()
                    .filter(|t| t.topic.0.as_str() == name)
                    .flat_map(|t| &t.partitions)
                    .find(|p| p.partition == *partition)
                    .map_or(-1, |p| p.current_leader_epoch);
                let fenced = epoch_check(epochs.get(&key).copied(), theirs);
                match log.get(&key) {
                    _ if fenced != 0 => {
                        d = d.with_error_code(fenced).with_high_watermark(-1);
                        any = true;
                    }
                    None => d = d.with_error_code(3),
                    Some(batches) => {
                        let end = log_end(&log, name, *partition);
                        let start = batches.first().map_or(0, |b| b.base_offset);
                        if *fetch_offset > end || *fetch_offset < start {
                            d = d.with_error_code(1); // OFFSET_OUT_OF_RANGE
                            any = true;
                        } else {
                            let records = match overrides.and_then(|o| o.get(&key)) {
                                Some(r) => r.clone(),
                                None => read_log(
                                    batches,
                                    *fetch_offset,
                                    (*max_bytes).max(0) as usize,
                                    st.cfg.batches_per_fetch,
                                ),
                            };
                            any |= !records.is_empty();
                            if incremental && records.is_empty() {
                                continue; // An incremental answer leaves out partitions with nothing new.
                            }
                            d = d
                                .with_high_watermark(end)
                                .with_last_stable_offset(end)
                                .with_log_start_offset(start)
                                .with_records(Some(records));
                        }
                    }
                }
                topics.entry(name.clone()).or_default().push(d);
            }
        }
        // Topic ids the fake does not know: UNKNOWN_TOPIC_ID for each of their partitions, as Kafka answers.
        let unknown = original
            .topics
            .iter()
            .filter(|t| unknown_ids.contains(&t.topic_id))
            .map(|t| {
                FetchableTopicResponse::default()
                    .with_topic_id(t.topic_id)
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                PartitionData::default()
                                    .with_partition_index(p.partition)
                                    .with_error_code(100)
                                    .with_high_watermark(-1)
                            })
                            .collect(),
                    )
            });
        if any || !unknown_ids.is_empty() || tokio::time::timeout_at(deadline, changed).await.is_err() {
            let responses = topics
                .into_iter()
                .map(|(t, parts)| {
                    FetchableTopicResponse::default()
                        .with_topic_id(topic_uuid(&t))
                        .with_topic(TopicName(StrBytes::from_string(t)))
                        .with_partitions(parts)
                })
                .chain(unknown)
                .collect();
            return FetchResponse::default()
                .with_session_id(session_id)
                .with_responses(responses);
        }
    }
}

fn produce(st: &State, p: &ProduceRequest, action: &Action) -> ProduceResponse {
    let forced = match action {
        Action::ProduceError(code) => Some(*code),
        _ => None,
    };
    let mut log = st.log.lock().unwrap();
    let responses = p
        .topic_data
        .iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let parts = t
                .partition_data
                .iter()
                .map(|d| {
                    let r = PartitionProduceResponse::default().with_index(d.index);
                    if let Some(code) = forced {
                        return r.with_error_code(code).with_base_offset(-1);
                    }
                    let key = (name.clone(), d.index);
                    let end = log_end(&log, &name, d.index);
                    let Some(batches) = log.get_mut(&key) else {
                        return r.with_error_code(3).with_base_offset(-1);
                    };
                    let records = d.records.clone().unwrap_or_default();
                    if records.len() < 61 {
                        return r.with_error_code(87).with_base_offset(-1);
                    }
                    let ids = producer_fields(&records);
                    // Idempotence: a batch already written (same producer id, epoch and sequence) is answered
                    // with its original offset, as Kafka does.
                    if ids.0 >= 0 {
                        if let Some(dup) = batches.iter().find(|b| b.producer() == ids) {
                            return r.with_base_offset(dup.base_offset);
                        }
                    }
                    let (_, count) = batch_span(&records);
                    let mut stored = BytesMut::from(&records[..]);
                    stored[0..8].copy_from_slice(&end.to_be_bytes());
                    batches.push(StoredBatch {
                        base_offset: end,
                        next_offset: end + count,
                        bytes: stored.freeze(),
                    });
                    r.with_base_offset(end)
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_partition_responses(parts)
        })
        .collect();
    drop(log);
    st.changed.notify_waiters();
    ProduceResponse::default().with_responses(responses)
}

// ---------------------------------------------------------------------------------------------------------
// group coordinator
// ---------------------------------------------------------------------------------------------------------

const NOT_COORDINATOR: i16 = 16;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;

/// A minimal classic-protocol group coordinator for one group (the group id is not checked), friendly to a
/// single member: a JoinGroup completes at once (a new generation; the first member is the leader and gets
/// every member's metadata), a SyncGroup from the leader stores the assignments and each member's SyncGroup
/// returns its own. JoinGroup v4+ with an empty member id gets MEMBER_ID_REQUIRED and a new id, as in Kafka.
#[derive(Debug, Default)]
pub struct GroupState {
    pub generation: i32,
    /// Member id -> the `(protocol, metadata)` pairs of its last JoinGroup.
    pub members: BTreeMap<String, Vec<(String, Bytes)>>,
    /// Member ids handed out with MEMBER_ID_REQUIRED and not joined yet.
    pub pending: Vec<String>,
    pub leader: Option<String>,
    pub protocol: Option<String>,
    /// Member id -> assignment bytes of the current generation.
    pub assignments: HashMap<String, Bytes>,
    /// Committed offsets.
    pub offsets: BTreeMap<(String, i32), i64>,
    /// The leader epochs committed with them (absent: -1, none given).
    pub offset_epochs: BTreeMap<(String, i32), i32>,
    /// Heartbeats get REBALANCE_IN_PROGRESS until the next JoinGroup.
    pub rebalancing: bool,
    next_member: u32,
}

impl GroupState {
    /// The member's status for a request naming `member` and `generation`: 0 or an error code.
    fn check(&self, member: &str, generation: i32) -> i16 {
        if !self.members.contains_key(member) {
            UNKNOWN_MEMBER_ID
        } else if generation != self.generation {
            ILLEGAL_GENERATION
        } else {
            0
        }
    }
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn find_coordinator_answer(v: i16, key: &str, code: i16, node: i32, port: u16) -> FindCoordinatorResponse {
    let (node, host, port) = if code == 0 {
        (node, sb("127.0.0.1"), i32::from(port))
    } else {
        (-1, sb(""), -1)
    };
    if v >= 4 {
        FindCoordinatorResponse::default().with_coordinators(vec![Coordinator::default()
            .with_key(sb(key))
            .with_node_id(BrokerId(node))
            .with_host(host)
            .with_port(port)
            .with_error_code(code)])
    } else {
        FindCoordinatorResponse::default()
            .with_node_id(BrokerId(node))
            .with_host(host)
            .with_port(port)
            .with_error_code(code)
    }
}

/// The answer to a group API request, or one carrying `forced` as its error code (the request has no effect).
fn group_answer(st: &State, req: &Request, action: &Action) -> Bytes {
    let v = req.version;
    let mut forced = match action {
        Action::GroupError(code) => Some(*code),
        _ => None,
    };
    let coordinator = *st.coordinator.lock().unwrap();
    if let Body::FindCoordinator(f) = &req.body {
        let key = if v >= 4 {
            f.coordinator_keys
                .first()
                .map(|k| k.to_string())
                .unwrap_or_default()
        } else {
            f.key.to_string()
        };
        let (node, port) = coordinator.unwrap_or((NODE_ID, st.port));
        return encode(
            &find_coordinator_answer(v, &key, forced.unwrap_or(0), node, port),
            v,
        );
    }
    if coordinator.is_some_and(|(_, port)| port != st.port) {
        forced = forced.or(Some(NOT_COORDINATOR));
    }
    let mut g = st.group.lock().unwrap();
    let out = match &req.body {
        Body::JoinGroup(j) => {
            let r = JoinGroupResponse::default().with_generation_id(-1);
            let r = if v >= 7 {
                r.with_protocol_type(Some(sb("consumer")))
            } else {
                r
            };
            if let Some(code) = forced {
                return encode(&r.with_error_code(code).with_protocol_name(Some(sb(""))), v);
            }
            let mut id = j.member_id.to_string();
            if id.is_empty() {
                g.next_member += 1;
                id = format!("fake-{}-member-{}", st.port, g.next_member);
                if v >= 4 {
                    g.pending.push(id.clone());
                    return encode(
                        &r.with_error_code(MEMBER_ID_REQUIRED)
                            .with_member_id(sb(&id))
                            .with_protocol_name(Some(sb(""))),
                        v,
                    );
                }
            } else if let Some(i) = g.pending.iter().position(|p| *p == id) {
                g.pending.remove(i);
            } else if !g.members.contains_key(&id) {
                return encode(
                    &r.with_error_code(UNKNOWN_MEMBER_ID)
                        .with_member_id(sb(&id))
                        .with_protocol_name(Some(sb(""))),
                    v,
                );
            }
            let protocols: Vec<(String, Bytes)> = j
                .protocols
                .iter()
                .map(|p| (p.name.to_string(), p.metadata.clone()))
                .collect();
            let protocol = protocols.first().map(|p| p.0.clone()).unwrap_or_default();
            g.members.insert(id.clone(), protocols);
            g.generation += 1;
            g.rebalancing = false;
            g.assignments.clear();
            if !g.leader.as_ref().is_some_and(|l| g.members.contains_key(l)) {
                g.leader = Some(id.clone());
            }
            g.protocol = Some(protocol.clone());
            let leader = g.leader.clone().unwrap_or_default();
            let members = if leader == id {
                g.members
                    .iter()
                    .map(|(m, ps)| {
                        let metadata = ps
                            .iter()
                            .find(|(n, _)| *n == protocol)
                            .map(|(_, b)| b.clone())
                            .unwrap_or_default();
                        JoinGroupResponseMember::default()
                            .with_member_id(sb(m))
                            .with_metadata(metadata)
                    })
                    .collect()
            } else {
                Vec::new()
            };
            encode(
                &r.with_generation_id(g.generation)
                    .with_protocol_name(Some(sb(&protocol)))
                    .with_leader(sb(&leader))
                    .with_member_id(sb(&id))
                    .with_members(members),
                v,
            )
        }
        Body::SyncGroup(s) => {
            let id = s.member_id.to_string();
            let code = forced.unwrap_or_else(|| g.check(&id, s.generation_id));
            let mut r = SyncGroupResponse::default().with_error_code(code);
            if code == 0 {
                if g.leader.as_deref() == Some(id.as_str()) {
                    for a in &s.assignments {
                        g.assignments
                            .insert(a.member_id.to_string(), a.assignment.clone());
                    }
                }
                r = r.with_assignment(g.assignments.get(&id).cloned().unwrap_or_default());
                if v >= 5 {
                    r = r
                        .with_protocol_type(Some(sb("consumer")))
                        .with_protocol_name(g.protocol.as_deref().map(sb));
                }
            }
            encode(&r, v)
        }
        Body::Heartbeat(h) => {
            let mut code = forced.unwrap_or_else(|| g.check(&h.member_id, h.generation_id));
            if code == 0 && g.rebalancing {
                code = REBALANCE_IN_PROGRESS;
            }
            encode(&HeartbeatResponse::default().with_error_code(code), v)
        }
        Body::LeaveGroup(l) => {
            let ids: Vec<String> = if v >= 3 {
                l.members.iter().map(|m| m.member_id.to_string()).collect()
            } else {
                vec![l.member_id.to_string()]
            };
            let mut r = LeaveGroupResponse::default().with_error_code(forced.unwrap_or(0));
            if forced.is_none() {
                for id in &ids {
                    g.members.remove(id);
                    g.assignments.remove(id);
                }
                if !g.members.is_empty() {
                    g.rebalancing = true;
                }
                if v >= 3 {
                    r = r.with_members(
                        ids.iter()
                            .map(|id| MemberResponse::default().with_member_id(sb(id)))
                            .collect(),
                    );
                }
            }
            encode(&r, v)
        }
        Body::OffsetCommit(c) => {
            let id = c.member_id.to_string();
            // A commit outside any generation (-1, no member) is accepted, as Kafka does for an empty group.
            let code = forced.unwrap_or_else(|| {
                if c.generation_id_or_member_epoch < 0 && id.is_empty() {
                    0
                } else {
                    g.check(&id, c.generation_id_or_member_epoch)
                }
            });
            let topics = c
                .topics
                .iter()
                .map(|t| {
                    let parts = t
                        .partitions
                        .iter()
                        .map(|p| {
                            if code == 0 {
                                let key = (t.name.0.to_string(), p.partition_index);
                                g.offsets.insert(key.clone(), p.committed_offset);
                                g.offset_epochs.insert(key, p.committed_leader_epoch);
                            }
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect();
                    OffsetCommitResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(parts)
                })
                .collect();
            encode(&OffsetCommitResponse::default().with_topics(topics), v)
        }
        Body::OffsetFetch(f) => {
            let code = forced.unwrap_or(0);
            let wanted: Vec<(TopicName, Vec<i32>)> = match &f.topics {
                Some(ts) => ts
                    .iter()
                    .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                    .collect(),
                None => {
                    let mut all: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                    for (t, p) in g.offsets.keys() {
                        all.entry(t.clone()).or_default().push(*p);
                    }
                    all.into_iter()
                        .map(|(t, ps)| (TopicName(StrBytes::from_string(t)), ps))
                        .collect()
                }
            };
            let topics = wanted
                .into_iter()
                .map(|(name, ps)| {
                    let parts = ps
                        .into_iter()
                        .map(|p| {
                            let key = (name.0.to_string(), p);
                            let offset = g.offsets.get(&key).copied().unwrap_or(-1);
                            let epoch = g.offset_epochs.get(&key).copied().unwrap_or(-1);
                            let r = OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(if code == 0 { offset } else { -1 })
                                .with_committed_leader_epoch(if code == 0 { epoch } else { -1 })
                                .with_metadata(Some(sb("")));
                            if v < 2 {
                                r.with_error_code(code)
                            } else {
                                r
                            }
                        })
                        .collect();
                    OffsetFetchResponseTopic::default()
                        .with_name(name)
                        .with_partitions(parts)
                })
                .collect();
            let r = OffsetFetchResponse::default().with_topics(topics);
            encode(&if v >= 2 { r.with_error_code(code) } else { r }, v)
        }
        _ => unreachable!("not a group API"),
    };
    drop(g);
    st.changed.notify_waiters();
    out
}

/// A DescribeGroups answer for groups the broker does not have.
fn unknown_groups(groups: &[GroupId], v: i16) -> DescribeGroupsResponse {
    const GROUP_ID_NOT_FOUND: i16 = 69;
    DescribeGroupsResponse::default().with_groups(
        groups
            .iter()
            .map(|g| {
                let d = DescribedGroup::default().with_group_id(g.clone());
                if v >= 6 {
                    d.with_error_code(GROUP_ID_NOT_FOUND)
                } else {
                    d.with_group_state(sb("Dead"))
                }
            })
            .collect(),
    )
}

/// Runs a test body under a hard deadline (with `WEIR_LOG` tracing), so a bug fails the test instead of
/// hanging it.
pub async fn bounded<F: std::future::Future<Output = ()>>(secs: u64, f: F) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("WEIR_LOG"))
        .with_test_writer()
        .try_init();
    if tokio::time::timeout(Duration::from_secs(secs), f).await.is_err() {
        panic!("test did not finish within {secs} s");
    }
}
