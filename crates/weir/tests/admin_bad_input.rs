//! The topic, cluster and configuration admin calls against a fake broker that answers with bad input: absurd
//! counts (DescribeConfigs entries and synonyms, DescribeCluster brokers, Metadata topics and replicas, the
//! results of CreatePartitions, DeleteRecords and IncrementalAlterConfigs), a config value longer than the
//! frame holds, unknown config sources, types and resource types, a sensitive value sent anyway. Each is bounded
//! and typed: a protocol error naming what was wrong, or an `Unknown(code)` value; no panic, and no allocation
//! anywhere near what the counts claim (the allocator of
//! `support/capped_alloc.rs` remembers the largest and refuses any over 1 GiB).

#[path = "support/capped_alloc.rs"]
mod capped_alloc;
#[path = "support/fake_broker.rs"]
mod fake_broker;

use bytes::{BufMut, Bytes, BytesMut};
use fake_broker::{bounded, Action, FakeBroker, FakeConfig, FAKE_CLUSTER_ID, NODE_ID};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsResponse};
use kafka_protocol::protocol::{Encodable, StrBytes};
use weir::admin::{
    AlterConfigOp, ConfigResource, ConfigResourceType, ConfigSource, ConfigType, NewPartitions,
};
use weir::config::ClientConfig;
use weir::{Admin, Error, TopicPartition};

// Every allocation is recorded and any over 1 GiB refused (see `support/capped_alloc.rs`).
#[global_allocator]
static ALLOC: capped_alloc::Capped = capped_alloc::Capped;

/// The largest single allocation these tests tolerate: far above anything the fake's small answers need, far
/// below what their counts claim.
const TOLERATED: usize = 64 << 20;

// ---------------------------------------------------------------------------------------------------------
// Response bodies by hand, at a version: the counts and lengths a well-behaved encoder cannot write.

const TOPIC: &str = "t";
/// A count no answer of a few bytes can hold: 2^31 - 1.
const ABSURD: u32 = i32::MAX as u32;

/// Writes the fields of a response body, compact (flexible versions) or not.
struct Wire {
    b: BytesMut,
    flex: bool,
}

impl Wire {
    fn new(flex: bool) -> Wire {
        Wire {
            b: BytesMut::new(),
            flex,
        }
    }

    fn uvarint(&mut self, mut v: u64) -> &mut Self {
        while v >= 0x80 {
            self.b.put_u8((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.b.put_u8(v as u8);
        self
    }

    fn i8(&mut self, v: i8) -> &mut Self {
        self.b.put_i8(v);
        self
    }

    fn i16(&mut self, v: i16) -> &mut Self {
        self.b.put_i16(v);
        self
    }

    fn i32(&mut self, v: i32) -> &mut Self {
        self.b.put_i32(v);
        self
    }

    /// An array or string length: `count + 1` as a varint when compact, else an `i32` (`short`: `i16`).
    fn len(&mut self, count: u32, short: bool) -> &mut Self {
        match (self.flex, short) {
            (true, _) => self.uvarint(u64::from(count) + 1),
            (false, true) => self.i16(count as i16),
            (false, false) => self.i32(count as i32),
        }
    }

    fn count(&mut self, n: u32) -> &mut Self {
        self.len(n, false)
    }

    fn string(&mut self, s: &str) -> &mut Self {
        self.len(s.len() as u32, true);
        self.b.put_slice(s.as_bytes());
        self
    }

    fn null_string(&mut self) -> &mut Self {
        if self.flex {
            self.uvarint(0)
        } else {
            self.i16(-1)
        }
    }

    /// Filler, so that a count is not refused merely because nothing follows it.
    fn filler(&mut self, n: usize) -> &mut Self {
        self.b.put_bytes(0, n);
        self
    }

    fn done(&mut self) -> Bytes {
        std::mem::take(&mut self.b).freeze()
    }
}

/// A DescribeConfigs answer (v`version`) with one result for topic `t`, whose entries are written by `entries`.
fn describe_configs_body(version: i16, entries: impl FnOnce(&mut Wire)) -> Bytes {
    let mut b = Wire::new(version >= 4);
    b.i32(0).count(1).i16(0).null_string().i8(2).string(TOPIC);
    entries(&mut b);
    b.done()
}

/// The fake's default set-up, with the APIs of `versions` offered at those versions (the topic, cluster and
/// configuration admin APIs are not offered by default).
async fn fake(
    versions: &[(ApiKey, i16, i16)],
    script: impl Fn(&fake_broker::Request) -> Action + Send + Sync + 'static,
) -> FakeBroker {
    let mut cfg = FakeConfig::new(&[(TOPIC, 2)]).script(script);
    for &(key, lo, hi) in versions {
        cfg.versions.retain(|(k, _, _)| *k != key);
        cfg.versions.push((key, lo, hi));
    }
    FakeBroker::start(cfg).await
}

fn admin(fake: &FakeBroker) -> Admin {
    let mut c = ClientConfig::new(&fake.bootstrap());
    c.set("request.timeout.ms", "5000").unwrap();
    c.set("max.block.ms", "2000").unwrap();
    c.set("retry.backoff.ms", "10").unwrap();
    c.set("reconnect.backoff.ms", "10").unwrap();
    Admin::new(c).unwrap()
}

/// A protocol error about `api` whose reason mentions `what`.
#[track_caller]
fn assert_protocol_error(e: &Error, api: &str, what: &str) {
    match e {
        Error::Protocol { source, .. } => {
            let shown = source.to_string();
            assert!(shown.contains(api) && shown.contains(what), "{shown}");
        }
        other => panic!("expected a protocol error about {api} {what}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------------------
// DescribeConfigs.

/// At every version: a result claiming 2^31 - 1 entries, then an entry claiming 2^31 - 1 synonyms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_configs_with_absurd_counts_is_a_protocol_error() {
    bounded(60, async {
        for version in 1..=4i16 {
            for synonyms in [false, true] {
                let f = fake(&[(ApiKey::DescribeConfigs, version, version)], move |req| {
                    if req.api_key != ApiKey::DescribeConfigs {
                        return Action::Answer;
                    }
                    Action::RawBody(describe_configs_body(req.version, |b| {
                        if !synonyms {
                            b.count(ABSURD).filler(64);
                            return;
                        }
                        // One entry "k" = null, not read only, source 5, not sensitive, then the synonyms.
                        b.count(1).string("k").null_string().i8(0).i8(5).i8(0);
                        b.count(ABSURD).filler(64);
                    }))
                })
                .await;
                let described = admin(&f)
                    .describe_configs(&[ConfigResource::topic(TOPIC)])
                    .await
                    .unwrap();
                let e = described[0].1.as_ref().unwrap_err();
                let what = if synonyms { "synonym count" } else { "config count" };
                assert_protocol_error(e, "DescribeConfigs", what);
                assert!(!e.is_retriable(), "v{version}: {e}");
                capped_alloc::assert_largest_allocation_below(
                    TOLERATED,
                    &format!("DescribeConfigs v{version}: {what}"),
                );
            }
        }
    })
    .await;
}

/// A value whose length claims more than the frame holds: refused at the value, before anything is reserved
/// for it (a compact length of 2^31 at v4, an `i16` length of 32767 before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_value_longer_than_the_frame_is_a_protocol_error() {
    bounded(60, async {
        for version in 1..=4i16 {
            let f = fake(&[(ApiKey::DescribeConfigs, version, version)], |req| {
                if req.api_key != ApiKey::DescribeConfigs {
                    return Action::Answer;
                }
                Action::RawBody(describe_configs_body(req.version, |b| {
                    b.count(1).string("k");
                    if b.flex {
                        b.uvarint(1 << 31);
                    } else {
                        b.i16(i16::MAX);
                    }
                    // More than an entry's smallest encoding, far less than the value claims.
                    b.b.put_slice(b"the value goes on for a while but nowhere near that long");
                }))
            })
            .await;
            let described = admin(&f)
                .describe_configs(&[ConfigResource::topic(TOPIC)])
                .await
                .unwrap();
            assert_protocol_error(
                described[0].1.as_ref().unwrap_err(),
                "DescribeConfigs",
                "config value",
            );
            capped_alloc::assert_largest_allocation_below(TOLERATED, "DescribeConfigs config value");
        }
    })
    .await;
}

/// Sources, types and resource types weir does not know are kept as `Unknown(code)`; a sensitive value sent
/// anyway is dropped, from the entry and its synonyms, and so never shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_config_codes_are_kept_and_sensitive_values_dropped() {
    bounded(60, async {
        let f = fake(&[(ApiKey::DescribeConfigs, 1, 4)], |req| {
            if req.api_key != ApiKey::DescribeConfigs {
                return Action::Answer;
            }
            let s = |x: &str| StrBytes::from_string(x.to_owned());
            let entry = |name: &str, value: &str, source: i8, sensitive: bool, config_type: i8| {
                DescribeConfigsResourceResult::default()
                    .with_name(s(name))
                    .with_value(Some(s(value)))
                    .with_config_source(source)
                    .with_is_sensitive(sensitive)
                    .with_config_type(config_type)
                    .with_synonyms(vec![DescribeConfigsSynonym::default()
                        .with_name(s(name))
                        .with_value(Some(s(value)))
                        .with_source(source)])
            };
            let resp =
                DescribeConfigsResponse::default().with_results(vec![DescribeConfigsResult::default()
                    .with_resource_type(2)
                    .with_resource_name(s(TOPIC))
                    .with_configs(vec![
                        entry("future.setting", "42", 42, false, 77),
                        entry("leaked.password", "hunter2", 2, true, 9),
                    ])]);
            let mut b = BytesMut::new();
            resp.encode(&mut b, req.version).unwrap();
            Action::RawBody(b.freeze())
        })
        .await;
        let admin = admin(&f);
        let described = admin
            .describe_configs(&[ConfigResource::topic(TOPIC)])
            .await
            .unwrap();
        let entries = described[0].1.as_ref().unwrap();
        let future = &entries[0];
        assert_eq!(future.name, "future.setting");
        assert_eq!(future.value.as_deref(), Some("42"));
        assert_eq!(future.source, ConfigSource::Unknown(42));
        assert_eq!(future.synonyms[0].source, ConfigSource::Unknown(42));
        assert_eq!(future.config_type, ConfigType::Unknown(77));
        assert!(!future.is_default);
        let secret = &entries[1];
        assert!(secret.sensitive);
        assert_eq!(secret.config_type, ConfigType::Password);
        assert_eq!(secret.value, None);
        assert_eq!(secret.synonyms[0].value, None);
        let shown = format!("{described:?}");
        assert!(!shown.contains("hunter2"), "{shown}");

        // A resource type weir does not know is sent as its code. The fake answers for topic `t` whatever was
        // asked: the resource asked for has no result, a protocol error of its own.
        let odd = ConfigResource {
            resource_type: ConfigResourceType::Unknown(64),
            name: "x".into(),
        };
        let described = admin.describe_configs(&[odd]).await.unwrap();
        assert_protocol_error(
            described[0].1.as_ref().unwrap_err(),
            "DescribeConfigs",
            "no result",
        );
        let sent: Vec<(i8, String)> = f.recorded(|r| {
            r.of(ApiKey::DescribeConfigs)
                .flat_map(|q| match &q.body {
                    fake_broker::Body::DescribeConfigs(d) => d
                        .resources
                        .iter()
                        .map(|x| (x.resource_type, x.resource_name.to_string()))
                        .collect(),
                    _ => Vec::new(),
                })
                .collect()
        });
        assert_eq!(sent, [(2, TOPIC.to_string()), (64, "x".to_string())]);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// DescribeCluster and Metadata.

/// At every version: 2^31 - 1 brokers, then a broker whose host claims more bytes than the frame holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_cluster_with_absurd_counts_is_a_protocol_error() {
    bounded(60, async {
        for version in 0..=2i16 {
            for long_host in [false, true] {
                let f = fake(&[(ApiKey::DescribeCluster, version, version)], move |req| {
                    if req.api_key != ApiKey::DescribeCluster {
                        return Action::Answer;
                    }
                    let mut b = Wire::new(true);
                    b.i32(0).i16(0).null_string();
                    if req.version >= 1 {
                        b.i8(1);
                    }
                    b.string(FAKE_CLUSTER_ID).i32(NODE_ID);
                    if long_host {
                        b.count(1).i32(NODE_ID).uvarint(1 << 31).filler(64);
                    } else {
                        b.count(ABSURD).filler(64);
                    }
                    Action::RawBody(b.done())
                })
                .await;
                let e = admin(&f).describe_cluster().await.unwrap_err();
                let what = if long_host { "host" } else { "broker count" };
                assert_protocol_error(&e, "DescribeCluster", what);
                capped_alloc::assert_largest_allocation_below(TOLERATED, &format!("DescribeCluster: {what}"));
            }
        }
        // The fake's normal answer, for contrast: what a well-formed one gives.
        let f = fake(&[(ApiKey::DescribeCluster, 0, 2)], |_| Action::Answer).await;
        let c = admin(&f).describe_cluster().await.unwrap();
        assert_eq!(
            (c.cluster_id.as_str(), c.controller),
            (FAKE_CLUSTER_ID, Some(NODE_ID))
        );
        assert_eq!(c.brokers.len(), 1);
    })
    .await;
}

/// A Metadata answer (v12, flexible) for topic `t`: one partition whose replica list claims `replicas`
/// entries; or, with `topics`, a topic count of 2^31 - 1.
fn metadata_body(replicas: u32, absurd_topics: bool) -> Bytes {
    let mut b = Wire::new(true);
    b.i32(0).count(0).null_string().i32(NODE_ID);
    if absurd_topics {
        b.count(ABSURD).filler(64);
        return b.done();
    }
    b.count(1).i16(0).string(TOPIC).filler(16).i8(0);
    b.count(1).i16(0).i32(0).i32(NODE_ID).i32(0);
    b.count(replicas).filler(64);
    b.done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_with_absurd_counts_fails_describe_topics_with_a_protocol_error() {
    bounded(60, async {
        for (replicas, absurd_topics, what) in [
            (ABSURD, false, "replica nodes"),
            (1 << 20, false, "replica nodes"),
            (0, true, "topic count"),
        ] {
            let f = fake(&[(ApiKey::Metadata, 12, 12)], move |req| {
                if req.api_key == ApiKey::Metadata {
                    Action::RawBody(metadata_body(replicas, absurd_topics))
                } else {
                    Action::Answer
                }
            })
            .await;
            let admin = admin(&f);
            let e = admin.describe_topics(Some(&[TOPIC])).await.unwrap_err();
            assert_protocol_error(&e, "Metadata", what);
            let e = admin.describe_topics(None).await.unwrap_err();
            assert_protocol_error(&e, "Metadata", what);
            capped_alloc::assert_largest_allocation_below(TOLERATED, &format!("Metadata: {what}"));
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------------
// CreatePartitions, DeleteRecords, IncrementalAlterConfigs.

/// Each answers with a result count of 2^31 - 1 (at a flexible and a non-flexible version): the call's items
/// fail with a protocol error, nothing absurd is reserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_and_config_changes_with_absurd_counts_are_protocol_errors() {
    bounded(60, async {
        for flexible in [false, true] {
            let versions = if flexible {
                [
                    (ApiKey::CreatePartitions, 2, 3),
                    (ApiKey::DeleteRecords, 2, 2),
                    (ApiKey::IncrementalAlterConfigs, 1, 1),
                ]
            } else {
                [
                    (ApiKey::CreatePartitions, 0, 1),
                    (ApiKey::DeleteRecords, 0, 1),
                    (ApiKey::IncrementalAlterConfigs, 0, 0),
                ]
            };
            let f = fake(&versions, move |req| {
                let mut b = Wire::new(flexible);
                b.i32(0);
                match req.api_key {
                    ApiKey::CreatePartitions | ApiKey::IncrementalAlterConfigs => {
                        b.count(ABSURD).filler(64);
                    }
                    // One topic, 2^31 - 1 partitions.
                    ApiKey::DeleteRecords => {
                        b.count(1).string(TOPIC).count(ABSURD).filler(64);
                    }
                    _ => return Action::Answer,
                }
                Action::RawBody(b.done())
            })
            .await;
            let admin = admin(&f);
            let grown = admin
                .create_partitions(&[NewPartitions::increase_to(TOPIC, 4)], false)
                .await
                .unwrap_err();
            assert_protocol_error(&grown, "CreatePartitions", "result count");
            let deleted = admin
                .delete_records(&[
                    (TopicPartition::new(TOPIC, 0), 1),
                    (TopicPartition::new(TOPIC, 1), 1),
                ])
                .await
                .unwrap();
            for (_, outcome) in &deleted {
                assert_protocol_error(outcome.as_ref().unwrap_err(), "DeleteRecords", "partition count");
            }
            let altered = admin
                .incremental_alter_configs(
                    &[(
                        ConfigResource::topic(TOPIC),
                        vec![AlterConfigOp::set("retention.ms", "1")],
                    )],
                    false,
                )
                .await
                .unwrap();
            assert_protocol_error(
                altered[0].1.as_ref().unwrap_err(),
                "IncrementalAlterConfigs",
                "result count",
            );
            capped_alloc::assert_largest_allocation_below(TOLERATED, "IncrementalAlterConfigs result count");
        }
    })
    .await;
}

/// For contrast: the fake's well-formed answers give each item its outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_formed_answers_give_each_item_its_outcome() {
    bounded(60, async {
        let f = fake(
            &[
                (ApiKey::CreatePartitions, 0, 3),
                (ApiKey::DeleteRecords, 0, 2),
                (ApiKey::IncrementalAlterConfigs, 0, 1),
                (ApiKey::DescribeConfigs, 1, 4),
            ],
            |_| Action::Answer,
        )
        .await;
        let admin = admin(&f);
        let grown = admin
            .create_partitions(&[NewPartitions::increase_to(TOPIC, 4)], true)
            .await
            .unwrap();
        assert!(grown[0].1.is_ok(), "{grown:?}");
        let deleted = admin
            .delete_records(&[
                (TopicPartition::new(TOPIC, 1), 7),
                (TopicPartition::new(TOPIC, 5), 1),
            ])
            .await
            .unwrap();
        assert_eq!(deleted[0].1.as_ref().unwrap(), &7);
        // Partition 5 of a topic of 2: refused before anything is sent.
        assert_eq!(
            deleted[1].1.as_ref().unwrap_err().kafka_code(),
            Some(weir::error::KafkaCode::UnknownTopicOrPartition)
        );
        let altered = admin
            .incremental_alter_configs(
                &[(
                    ConfigResource::topic(TOPIC),
                    vec![AlterConfigOp::delete("retention.ms")],
                )],
                true,
            )
            .await
            .unwrap();
        assert!(altered[0].1.is_ok(), "{altered:?}");
        let described = admin
            .describe_configs(&[ConfigResource::topic(TOPIC)])
            .await
            .unwrap();
        assert!(described[0].1.as_ref().unwrap().is_empty());
        // Only partition 1 was asked of the leader.
        let asked: Vec<Vec<(i32, i64)>> = f.recorded(|r| {
            r.of(ApiKey::DeleteRecords)
                .map(|q| match &q.body {
                    fake_broker::Body::DeleteRecords(d) => d
                        .topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.offset)))
                        .collect(),
                    _ => Vec::new(),
                })
                .collect()
        });
        assert_eq!(asked, [vec![(1, 7)]]);
    })
    .await;
}
