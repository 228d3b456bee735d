//! Captures the seed corpora of weir's fuzz targets (`fuzz/`) from a real Apache Kafka broker.
//!
//! ```text
//! WEIR_FUZZ_SEEDS=fuzz/seeds cargo run -p weir-testkit --example capture_fuzz_seeds
//! ```
//!
//! Starts a one-node cluster (the harness's jars), writes record batches in every codec to it (sealed by
//! weir-proto's `BatchBuilder`, and, when `WEIR_KCAT` names kcat, by librdkafka), runs a consumer group (weir's
//! own JoinGroup and SyncGroup, and a kcat `-G` member when kcat is there), and sends every request weir makes at
//! the lowest and highest version both sides speak. Each response frame the broker sends back is written, as the
//! `responses` target reads it (`[call index, version byte]` then the frame, header included), to
//! `$WEIR_FUZZ_SEEDS/responses/`; the records of every fetched partition to `record_batches_raw/`; each fetched
//! batch's header fields and records section to `record_batch_valid_crc/`; the members' subscriptions and
//! assignments to `consumer_protocol/`. Without `WEIR_FUZZ_SEEDS` it does nothing.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_proto::call::SPOKEN;
use weir_proto::record::{batches, BatchBuilder, BatchOptions, Compression, ProducerIds, BATCH_HEADER_LEN};
use weir_proto::Call;
use weir_testkit::{Kafka, Kcat};

/// Every step against the broker is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest seed written: a fuzz input far larger than this only slows the fuzzer down.
const MAX_SEED: usize = 32 << 10;

/// Where the seeds go, and what has been written.
struct Seeds {
    dir: PathBuf,
    written: BTreeSet<PathBuf>,
}

impl Seeds {
    fn write(&mut self, target: &str, name: &str, data: &[u8]) {
        if data.len() > MAX_SEED {
            return;
        }
        let dir = self.dir.join(target);
        std::fs::create_dir_all(&dir).expect("create the seed directory");
        let path = dir.join(name);
        std::fs::write(&path, data).expect("write a seed");
        self.written.insert(path);
    }
}

/// A connection to the broker, one request at a time, every frame it answers kept.
struct Link {
    stream: TcpStream,
    correlation: i32,
}

impl Link {
    fn open(port: u16) -> Link {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect to the broker");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        Link {
            stream,
            correlation: 0,
        }
    }

    /// Sends `req` at `version` and returns the response frame (header included, size prefix not), or why not.
    fn exchange<C: Call>(&mut self, req: &C, version: i16) -> Result<Bytes, String> {
        self.correlation += 1;
        let frame = req
            .encode(version, self.correlation, Some("weir-seed-capture"))
            .map_err(|e| e.to_string())?;
        self.stream.write_all(&frame).map_err(|e| e.to_string())?;
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).map_err(|e| e.to_string())?;
        let size = i32::from_be_bytes(size);
        if !(0..64 << 20).contains(&size) {
            return Err(format!("response size {size}"));
        }
        let mut body = vec![0u8; size as usize];
        self.stream.read_exact(&mut body).map_err(|e| e.to_string())?;
        Ok(Bytes::from(body))
    }
}

/// The broker's version range of each API, from ApiVersions v0 on a link of its own.
fn broker_versions(port: u16) -> weir_proto::versions::VersionTable {
    let req = weir_proto::versions::ApiVersionsRequest::default();
    let frame = Link::open(port).exchange(&req, 0).expect("ApiVersions");
    let ranges = weir_proto::versions::ApiVersionsRequest::decode(frame, 0).expect("ApiVersions decodes");
    weir_proto::versions::VersionTable::from_response(&ranges)
}

/// Sends `req` at the lowest and highest version both sides speak (each on a fresh link, since a broker may
/// close a connection after a request it refuses), writes each response as a `responses` seed named
/// `<api>-v<version>-<what>`, and returns the decoded responses.
fn capture<C: Call>(
    seeds: &mut Seeds,
    port: u16,
    table: &weir_proto::versions::VersionTable,
    what: &str,
    req: &C,
) -> Vec<(i16, C::Response)> {
    let Some(high) = table.pick(C::KEY, &C::VERSIONS) else {
        eprintln!("{}: the broker speaks no version weir does", C::NAME);
        return Vec::new();
    };
    let low = table
        .pick(C::KEY, &(*C::VERSIONS.start()..=*C::VERSIONS.start()))
        .unwrap_or(high);
    let index = SPOKEN
        .iter()
        .position(|(k, _, _)| *k == C::KEY)
        .expect("a call weir speaks") as u8;
    let mut out = Vec::new();
    for version in BTreeSet::from([low, high]) {
        let frame = match Link::open(port).exchange(req, version) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("{} v{version} ({what}): {e}", C::NAME);
                continue;
            }
        };
        // The `responses` target maps its version byte to `start - 1 + byte`.
        let vbyte = (version - C::VERSIONS.start() + 1) as u8;
        let mut seed = vec![index, vbyte];
        seed.extend_from_slice(&frame);
        seeds.write("responses", &format!("{}-v{version}-{what}", C::NAME), &seed);
        match C::decode(frame, version) {
            Ok(r) => out.push((version, r)),
            Err(e) => eprintln!("{} v{version} ({what}) does not decode: {e}", C::NAME),
        }
    }
    out
}

/// One uncompressed and one batch of each codec, with the record shapes a consumer meets: keys and none, empty
/// and null values, headers (one with a null value), and a larger compressible value.
fn sealed_batches(codec: Compression) -> Vec<Bytes> {
    let mut out = Vec::new();
    for round in 0..2 {
        let mut b = BatchBuilder::new(BatchOptions {
            compression: codec,
            ..BatchOptions::default()
        });
        let t = 1_700_000_000_000 + round * 1000;
        b.push(t, Some(b"key-1"), Some(b"value one"), &[]);
        b.push(t + 1, None, Some(b""), &[("trace", Some(b"abc")), ("null", None)]);
        b.push(t + 2, Some(b""), None, &[]);
        let big = format!("{codec} ").repeat(200 + round as usize * 50);
        b.push(t + 3, Some(b"big"), Some(big.as_bytes()), &[("h", Some(b""))]);
        out.push(b.seal(ProducerIds::NONE).expect("seal"));
    }
    out
}

fn topic_for(codec: Compression) -> String {
    format!("seeds-{codec}")
}

fn produce(seeds: &mut Seeds, port: u16, table: &weir_proto::versions::VersionTable, codec: Compression) {
    use weir_proto::produce::ProduceRequest;
    // One batch per partition and request: what brokers take from Produce v3 on.
    for (i, batch) in sealed_batches(codec).into_iter().enumerate() {
        let req = ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: TIMEOUT.as_millis() as i32,
            topics: vec![(Arc::from(topic_for(codec)), vec![(0, batch)])],
        };
        for (v, resp) in capture(seeds, port, table, &format!("{codec}-{i}"), &req) {
            // zstd needs Produce v7: an older version's refusal is a seed too.
            let ok = resp
                .topics
                .iter()
                .flat_map(|t| &t.partitions)
                .all(|p| p.error_code == 0);
            if !ok {
                eprintln!("Produce v{v} of {codec}: {resp:?}");
            }
        }
    }
}

fn kcat_produce(kcat: &Kcat, bootstrap: &str, codec: Compression) {
    let lines: Vec<u8> = (0..40)
        .flat_map(|i| format!("key{i}:kcat {codec} value {i} {}\n", "x".repeat(i * 7)).into_bytes())
        .collect();
    let out = kcat.produce(
        bootstrap,
        &topic_for(codec),
        Some(0),
        &lines,
        &["-K", ":", "-z", codec.name(), "-H", "origin=kcat"],
    );
    assert!(
        out.status.success(),
        "kcat -P: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fetch from offset 0 of every codec's topic; the records of each partition and each batch become seeds.
/// Topics go by name and by id (Fetch v13+), the ids from the broker's metadata.
fn fetch(seeds: &mut Seeds, port: u16, table: &weir_proto::versions::VersionTable) {
    use weir_proto::fetch::{FetchPartitionRequest, FetchRequest, FetchTopicRequest};
    use weir_proto::metadata::MetadataRequest;
    let names: Vec<String> = Compression::ALL.iter().map(|&c| topic_for(c)).collect();
    let ids: Vec<(String, [u8; 16])> = table
        .pick(MetadataRequest::KEY, &MetadataRequest::VERSIONS)
        .and_then(|v| {
            let req = MetadataRequest {
                topics: Some(names.clone()),
                allow_auto_topic_creation: false,
            };
            let frame = Link::open(port).exchange(&req, v).ok()?;
            MetadataRequest::decode(frame, v).ok()
        })
        .map(|m| {
            m.topics
                .into_iter()
                .filter_map(|t| Some((t.name?, t.topic_id)))
                .collect()
        })
        .unwrap_or_default();
    let id_of = |name: &str| ids.iter().find(|(n, _)| n == name).map_or([0; 16], |(_, id)| *id);
    let topics = names
        .iter()
        .map(|name| FetchTopicRequest {
            name: name.clone(),
            topic_id: id_of(name),
            partitions: vec![FetchPartitionRequest {
                partition: 0,
                fetch_offset: 0,
                max_bytes: 1 << 20,
                current_leader_epoch: -1,
            }],
        })
        .collect();
    let req = FetchRequest {
        max_wait_ms: 100,
        min_bytes: 1,
        max_bytes: 4 << 20,
        isolation_level: 0,
        session_id: 0,
        session_epoch: -1,
        topics,
        forgotten: Vec::new(),
        rack_id: String::new(),
    };
    let mut uncompressed_sections = Vec::new();
    for (v, resp) in capture(seeds, port, table, "all-codecs", &req) {
        for t in &resp.topics {
            let name = match t.name.is_empty() {
                true => ids
                    .iter()
                    .find(|(_, id)| *id == t.topic_id)
                    .map_or("", |(n, _)| n.as_str()),
                false => t.name.as_str(),
            };
            for p in &t.partitions {
                let Some(records) = &p.records else { continue };
                seeds.write("record_batches_raw", &format!("{name}-fetch-v{v}"), records);
                for (i, batch) in batches(records.clone()).enumerate() {
                    let batch = batch.expect("the broker's batches split");
                    let codec = batch.compression().expect("a known codec");
                    // `record_batch_valid_crc`: [mode, attributes, count, ts] then the section; mode 0 is the
                    // section as on the wire.
                    let attrs = (batch.attributes() & 0x78) as u8 | codec.id();
                    let head = [0u8, attrs, batch.record_count() as u8, 0];
                    let section = &batch.as_bytes()[BATCH_HEADER_LEN..];
                    let mut seed = head.to_vec();
                    seed.extend_from_slice(section);
                    seeds.write("record_batch_valid_crc", &format!("{name}-{i}-wire"), &seed);
                    if codec == Compression::None {
                        uncompressed_sections.push((batch.record_count() as u8, section.to_vec()));
                    }
                }
            }
        }
    }
    // Mode 1: the uncompressed records compressed by the target with each codec.
    for (i, (count, section)) in uncompressed_sections.iter().enumerate() {
        for codec in Compression::ALL {
            let mut seed = vec![1u8, codec.id(), *count, 0];
            seed.extend_from_slice(section);
            seeds.write("record_batch_valid_crc", &format!("plain-{i}-as-{codec}"), &seed);
        }
    }
}

/// A kcat consumer-group member (librdkafka's subscription and assignment encodings), until dropped.
struct KcatMember(Child);

impl Drop for KcatMember {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kcat_member(kcat: &Kcat, bootstrap: &str, group: &str, topics: &[String]) -> KcatMember {
    let mut cmd = kcat.command();
    cmd.args(["-b", bootstrap, "-G", group])
        .args(topics)
        .args(["-o", "beginning", "-q"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    KcatMember(cmd.spawn().expect("spawn kcat -G"))
}

/// Group calls: FindCoordinator, then weir's own member (JoinGroup, SyncGroup as leader, Heartbeat, OffsetCommit,
/// OffsetFetch, LeaveGroup), then DescribeGroups of a group with a kcat member.
fn group_calls(
    seeds: &mut Seeds,
    port: u16,
    table: &weir_proto::versions::VersionTable,
    kcat: Option<&Kcat>,
    bootstrap: &str,
) {
    use weir::group::{Assignment, Subscription};
    use weir_proto::group::*;
    use weir_proto::group_admin::DescribeGroupsRequest;
    use weir_proto::group_offsets::{CommitOffset, OffsetCommitRequest, OffsetFetchRequest};

    let group = "seeds-group".to_string();
    let topics: Vec<String> = Compression::ALL.iter().map(|&c| topic_for(c)).collect();
    capture(
        seeds,
        port,
        table,
        "group",
        &FindCoordinatorRequest {
            key: group.clone(),
            key_type: 0,
        },
    );

    // weir's member: every round at one version, on one link (a member id is valid for its session).
    let sub = Subscription {
        topics: topics.clone(),
        owned: [(topics[0].clone(), vec![0])].into_iter().collect(),
        generation: 3,
        rack: Some("rack-a".into()),
        user_data: Some(Bytes::from_static(b"user data")),
    };
    seeds.write(
        "consumer_protocol",
        "subscription-weir",
        &[&[0u8][..], &sub.encode()].concat(),
    );
    let version = |key: i16, range: &std::ops::RangeInclusive<i16>| table.pick(key, range);
    let Some(jv) = version(JoinGroupRequest::KEY, &JoinGroupRequest::VERSIONS) else {
        return;
    };
    let mut link = Link::open(port);
    let mut join = JoinGroupRequest {
        group_id: group.clone(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: String::new(),
        group_instance_id: None,
        protocol_type: "consumer".into(),
        protocols: vec![
            ("range".into(), sub.encode()),
            ("roundrobin".into(), sub.encode()),
        ],
        reason: None,
    };
    let mut joined = None;
    let idx = SPOKEN
        .iter()
        .position(|(k, _, _)| *k == JoinGroupRequest::KEY)
        .unwrap() as u8;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let frame = link.exchange(&join, jv).expect("JoinGroup");
        let mut seed = vec![idx, (jv - JoinGroupRequest::VERSIONS.start() + 1) as u8];
        seed.extend_from_slice(&frame);
        let resp = JoinGroupRequest::decode(frame, jv).expect("JoinGroup decodes");
        seeds.write(
            "responses",
            &format!("JoinGroup-v{jv}-error-{}", resp.error_code),
            &seed,
        );
        if resp.error_code == 79 {
            // MEMBER_ID_REQUIRED: join again with the id given.
            join.member_id = resp.member_id.clone();
            continue;
        }
        if matches!(resp.error_code, 14..=16) {
            // The coordinator is loading, or not yet known: the first group on a new cluster creates
            // __consumer_offsets.
            std::thread::sleep(Duration::from_millis(500));
            link = Link::open(port);
            continue;
        }
        joined = Some(resp);
        break;
    }
    let joined = joined.expect("joined the group");
    assert_eq!(joined.error_code, 0, "JoinGroup: {joined:?}");
    for m in &joined.members {
        seeds.write(
            "consumer_protocol",
            "subscription-joined",
            &[&[0u8][..], &m.metadata].concat(),
        );
    }
    let assignment = Assignment {
        partitions: topics.iter().map(|t| (t.clone(), vec![0])).collect(),
        user_data: None,
    };
    seeds.write(
        "consumer_protocol",
        "assignment-weir",
        &[&[1u8][..], &assignment.encode()].concat(),
    );
    let sync = SyncGroupRequest {
        group_id: group.clone(),
        generation_id: joined.generation_id,
        member_id: joined.member_id.clone(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: joined.protocol_name.clone(),
        assignments: vec![(joined.member_id.clone(), assignment.encode())],
    };
    for (_, r) in capture_on(seeds, &mut link, table, "leader", &sync) {
        seeds.write(
            "consumer_protocol",
            "assignment-synced",
            &[&[1u8][..], &r.assignment].concat(),
        );
    }
    let hb = HeartbeatRequest {
        group_id: group.clone(),
        generation_id: joined.generation_id,
        member_id: joined.member_id.clone(),
        group_instance_id: None,
    };
    capture_on(seeds, &mut link, table, "member", &hb);
    let commit = OffsetCommitRequest {
        group_id: group.clone(),
        generation_id: joined.generation_id,
        member_id: joined.member_id.clone(),
        group_instance_id: None,
        topics: topics
            .iter()
            .map(|t| {
                let offset = CommitOffset {
                    partition: 0,
                    offset: 1,
                    leader_epoch: Some(0),
                };
                (t.clone(), vec![offset])
            })
            .collect(),
    };
    capture_on(seeds, &mut link, table, "member", &commit);
    let fetch = OffsetFetchRequest {
        group_id: group.clone(),
        topics: Some(topics.iter().map(|t| (t.clone(), vec![0, 1])).collect()),
        require_stable: true,
    };
    capture(seeds, port, table, "committed", &fetch);
    capture(
        seeds,
        port,
        table,
        "one-member",
        &DescribeGroupsRequest {
            groups: vec![group.clone()],
        },
    );
    let leave = LeaveGroupRequest {
        group_id: group.clone(),
        member_id: joined.member_id.clone(),
        group_instance_id: None,
        reason: Some("seed capture done".into()),
    };
    capture_on(seeds, &mut link, table, "member", &leave);

    // A librdkafka member: its subscription and assignment, as DescribeGroups shows them.
    let Some(kcat) = kcat else { return };
    let kgroup = "seeds-kcat-group".to_string();
    let _member = kcat_member(kcat, bootstrap, &kgroup, &topics);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let req = DescribeGroupsRequest {
            groups: vec![kgroup.clone()],
        };
        let described = capture(seeds, port, table, "kcat-member", &req);
        let stable = described
            .iter()
            .flat_map(|(_, gs)| gs)
            .find(|g| g.group_state == "Stable" && g.members.iter().all(|m| !m.member_assignment.is_empty()));
        if let Some(g) = stable {
            for (i, m) in g.members.iter().enumerate() {
                let sub = [&[0u8][..], &m.member_metadata].concat();
                seeds.write("consumer_protocol", &format!("subscription-librdkafka-{i}"), &sub);
                let asg = [&[1u8][..], &m.member_assignment].concat();
                seeds.write("consumer_protocol", &format!("assignment-librdkafka-{i}"), &asg);
                let len = (m.member_metadata.len() as u16).to_be_bytes();
                let leader = [&[2u8, 3, len[0], len[1]][..], &m.member_metadata].concat();
                seeds.write("consumer_protocol", &format!("leader-librdkafka-{i}"), &leader);
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the kcat member never became stable: {described:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// As [`capture`], at the highest version only, on a link that carries a session (a group member's).
fn capture_on<C: Call>(
    seeds: &mut Seeds,
    link: &mut Link,
    table: &weir_proto::versions::VersionTable,
    what: &str,
    req: &C,
) -> Vec<(i16, C::Response)> {
    let Some(version) = table.pick(C::KEY, &C::VERSIONS) else {
        return Vec::new();
    };
    let index = SPOKEN.iter().position(|(k, _, _)| *k == C::KEY).unwrap() as u8;
    let frame = match link.exchange(req, version) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{} v{version}: {e}", C::NAME);
            return Vec::new();
        }
    };
    let mut seed = vec![index, (version - C::VERSIONS.start() + 1) as u8];
    seed.extend_from_slice(&frame);
    seeds.write("responses", &format!("{}-v{version}-{what}", C::NAME), &seed);
    match C::decode(frame, version) {
        Ok(r) => vec![(version, r)],
        Err(e) => {
            eprintln!("{} v{version} does not decode: {e}", C::NAME);
            Vec::new()
        }
    }
}

/// The rest of the calls weir makes, with requests that name the topics and group above where they take any
/// (the broker's answers, errors included, are what the decoders meet), else the request's defaults.
fn other_calls(seeds: &mut Seeds, port: u16, table: &weir_proto::versions::VersionTable) {
    use weir_proto::*;
    let topic = topic_for(Compression::None);
    capture(
        seeds,
        port,
        table,
        "all",
        &metadata::MetadataRequest {
            topics: None,
            allow_auto_topic_creation: false,
        },
    );
    let some = metadata::MetadataRequest {
        topics: Some(vec![topic.clone(), "seeds-missing".into()]),
        allow_auto_topic_creation: false,
    };
    capture(seeds, port, table, "some", &some);
    let list = list_offsets::ListOffsetsRequest {
        isolation_level: 1,
        topics: Compression::ALL
            .iter()
            .map(|&c| (topic_for(c), vec![(0, -1), (1, -2)]))
            .collect(),
    };
    capture(seeds, port, table, "latest", &list);
    let describe = configs::DescribeConfigsRequest {
        resources: vec![configs::DescribeConfigsResource {
            resource_type: configs::ConfigResourceType::Topic,
            name: topic.clone(),
            keys: None,
        }],
        include_synonyms: true,
        include_documentation: true,
    };
    capture(seeds, port, table, "topic", &describe);
    let exists = admin::CreateTopicsRequest {
        topics: vec![admin::NewTopic {
            name: topic.clone(),
            partitions: 1,
            replication_factor: 1,
            configs: Vec::new(),
        }],
        timeout_ms: 5000,
    };
    capture(seeds, port, table, "exists", &exists);
    capture(
        seeds,
        port,
        table,
        "all",
        &group_admin::ListGroupsRequest::default(),
    );
    let init = producer_id::InitProducerIdRequest {
        transactional_id: None,
        transaction_timeout_ms: 60_000,
        producer_id: -1,
        producer_epoch: -1,
    };
    capture(seeds, port, table, "idempotent", &init);
    // Epoch 0 of a partition that has one (its end), and an epoch it never had (none).
    for (name, leader_epoch) in [("epoch0", 0), ("future", 99)] {
        let ask = offset_for_leader_epoch::OffsetForLeaderEpochRequest {
            topics: vec![(
                topic.clone(),
                vec![offset_for_leader_epoch::EpochQuery {
                    partition: 0,
                    current_leader_epoch: -1,
                    leader_epoch,
                }],
            )],
        };
        capture(seeds, port, table, name, &ask);
    }

    macro_rules! defaults {
        ($($req:ty),* $(,)?) => {$(
            capture(seeds, port, table, "default", &<$req>::default());
        )*};
    }
    defaults![
        admin::DeleteTopicsRequest,
        describe_cluster::DescribeClusterRequest,
        create_partitions::CreatePartitionsRequest,
        delete_records::DeleteRecordsRequest,
        configs::IncrementalAlterConfigsRequest,
        sasl::SaslHandshakeRequest,
        acl::DescribeAclsRequest,
        acl::CreateAclsRequest,
        acl::DeleteAclsRequest,
        scram_credentials::DescribeUserScramCredentialsRequest,
        scram_credentials::AlterUserScramCredentialsRequest,
        txn::AddPartitionsToTxnRequest,
        txn::AddOffsetsToTxnRequest,
        txn::EndTxnRequest,
        txn::TxnOffsetCommitRequest,
        group_admin::DeleteGroupsRequest,
        group_admin::ConsumerGroupDescribeRequest,
        group_admin::OffsetDeleteRequest,
        describe_producers::DescribeProducersRequest,
        versions::ApiVersionsRequest,
    ];
}

fn main() {
    let Some(dir) = std::env::var_os("WEIR_FUZZ_SEEDS") else {
        eprintln!("WEIR_FUZZ_SEEDS is not set: nothing to capture (see the example's documentation)");
        return;
    };
    let mut seeds = Seeds {
        dir: PathBuf::from(dir),
        written: BTreeSet::new(),
    };
    let kafka = Kafka::shared();
    let port = kafka.port(kafka.node_ids()[0]);
    let bootstrap = kafka.bootstrap();
    let kcat = Kcat::find();
    if kcat.is_none() {
        eprintln!("WEIR_KCAT is not set or kcat is missing: no librdkafka batches or group member");
    }
    for codec in Compression::ALL {
        kafka.create_topic(&topic_for(codec), 1);
    }
    let table = broker_versions(port);
    for codec in Compression::ALL {
        produce(&mut seeds, port, &table, codec);
        if let Some(k) = &kcat {
            kcat_produce(k, &bootstrap, codec);
        }
    }
    fetch(&mut seeds, port, &table);
    group_calls(&mut seeds, port, &table, kcat.as_ref(), &bootstrap);
    other_calls(&mut seeds, port, &table);
    let total: u64 = seeds
        .written
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    println!(
        "{} seeds, {total} bytes, under {}",
        seeds.written.len(),
        Path::new(&seeds.dir).display()
    );
}
