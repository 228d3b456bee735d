//! Topics and the cluster, as `kafka-topics.sh` and `kafka-delete-records.sh` manage them: describe the cluster
//! and topics (partitions, leaders, replicas, in-sync replicas), create and delete topics, add partitions,
//! delete records, list offsets by position or time.
//!
//! Calls about several items answer per item (as the SCRAM calls do): one topic unknown or refused does not
//! fail the others. Partition-level calls (DeleteRecords, ListOffsets) go to each partition's leader; partitions
//! whose leader answers with a retriable error (a leader just elected or moved) are asked again after a metadata
//! refresh, with backoff, for at most `max.block.ms`.
//!
//! ```no_run
//! use weir::admin::NewPartitions;
//! use weir::TopicPartition;
//! # async fn demo(admin: weir::Admin) -> weir::Result<()> {
//! let cluster = admin.describe_cluster().await?;
//! println!("cluster {} with {} brokers", cluster.cluster_id, cluster.brokers.len());
//! for (name, described) in admin.describe_topics(Some(&["events"])).await? {
//!     let t = described?;
//!     println!("{name} ({}): {} partitions", t.topic_id, t.partitions.len());
//! }
//! for (topic, outcome) in admin.create_partitions(&[NewPartitions::increase_to("events", 12)], false).await? {
//!     outcome?;
//! }
//! for (tp, low) in admin.delete_records(&[(TopicPartition::new("events", 0), 1000)]).await? {
//!     println!("{tp} now starts at {}", low?);
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use base64::Engine as _;
use weir_proto::admin::{CreateTopicsRequest, DeleteTopicsRequest, NewTopic};
use weir_proto::create_partitions::{CreatePartitionsRequest, PartitionsIncrease};
use weir_proto::delete_records::DeleteRecordsRequest;
pub use weir_proto::delete_records::DELETE_TO_HIGH_WATERMARK;
use weir_proto::describe_cluster::DescribeClusterRequest;
use weir_proto::list_offsets::ListOffsetsRequest;
use weir_proto::metadata::{MetadataRequest, MetadataTopic};

use super::{count_mismatch, Admin};
use crate::cluster::{MetadataSnapshot, OffsetSpec, RetryWindow};
use crate::error::{check, Error, KafkaCode, Result};
use crate::net::Connection;
use crate::types::TopicPartition;

/// A topic's id: the UUID Kafka gives a topic when it is created (a topic deleted and created again under the
/// same name gets another). Shown as Kafka shows it: 22 characters of URL-safe base64.
///
/// ```
/// let id: weir::admin::TopicId = "Fz7s8eEsTf6yQhY1Z7Rn2g".parse().unwrap();
/// assert_eq!(id.to_string(), "Fz7s8eEsTf6yQhY1Z7Rn2g");
/// assert!(weir::admin::TopicId::ZERO.is_zero());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicId(pub [u8; 16]);

impl TopicId {
    /// The all-zero id: no id (a broker older than Metadata v10 sends none).
    pub const ZERO: TopicId = TopicId([0; 16]);

    /// Whether this is [`TopicId::ZERO`].
    pub fn is_zero(&self) -> bool {
        *self == TopicId::ZERO
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicId({self})")
    }
}

impl std::str::FromStr for TopicId {
    type Err = Error;

    /// Kafka's form: 22 characters of URL-safe base64 without padding.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::InvalidArgument(format!(
                "topic id {s:?}: expected 22 characters of URL-safe base64"
            ))
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| bad())?;
        Ok(TopicId(bytes.try_into().map_err(|_| bad())?))
    }
}

/// One broker of the cluster, as [`Admin::describe_cluster`] finds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct BrokerDescription {
    /// The broker's id.
    pub id: i32,
    /// The host of its client listener.
    pub host: String,
    /// The port of its client listener.
    pub port: i32,
    /// Its rack (`broker.rack`), if it has one.
    pub rack: Option<String>,
}

/// The cluster, as [`Admin::describe_cluster`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterDescription {
    /// The cluster's id.
    pub cluster_id: String,
    /// The broker the answering broker names as controller, if any (in a KRaft cluster, where the controllers
    /// are not brokers, one of the brokers, which forwards what is meant for the controller).
    pub controller: Option<i32>,
    /// The brokers, by id.
    pub brokers: Vec<BrokerDescription>,
}

/// One partition of a topic, as [`Admin::describe_topics`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionDescription {
    /// The partition's index.
    pub partition: i32,
    /// The leader's broker id, `None` while it has none.
    pub leader: Option<i32>,
    /// The leader's epoch (-1 if the broker did not say).
    pub leader_epoch: i32,
    /// The replicas' broker ids, the preferred leader first.
    pub replicas: Vec<i32>,
    /// The in-sync replicas' broker ids.
    pub isr: Vec<i32>,
    /// The broker ids of replicas that are offline.
    pub offline_replicas: Vec<i32>,
    /// An error the broker reported for the partition (`LeaderNotAvailable`, `ReplicaNotAvailable`), if any.
    pub error: Option<KafkaCode>,
}

/// A topic, as [`Admin::describe_topics`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicDescription {
    /// The topic's name.
    pub name: String,
    /// The topic's id.
    pub topic_id: TopicId,
    /// Whether it is internal (`__consumer_offsets`, `__transaction_state`).
    pub internal: bool,
    /// Its partitions, by index.
    pub partitions: Vec<PartitionDescription>,
}

impl TopicDescription {
    /// The number of replicas of its first partition (0 without partitions): what `kafka-topics.sh` shows as
    /// the replication factor.
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }

    fn from_wire(name: String, t: MetadataTopic) -> TopicDescription {
        let mut partitions: Vec<PartitionDescription> = t
            .partitions
            .into_iter()
            .map(|p| PartitionDescription {
                partition: p.partition,
                leader: (p.leader_id >= 0).then_some(p.leader_id),
                leader_epoch: p.leader_epoch,
                replicas: p.replicas,
                isr: p.isr,
                offline_replicas: p.offline_replicas,
                error: KafkaCode::from_code(p.error_code),
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        TopicDescription {
            name,
            topic_id: TopicId(t.topic_id),
            internal: t.is_internal,
            partitions,
        }
    }
}

/// A topic's new partition count, for [`Admin::create_partitions`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewPartitions {
    /// The topic.
    pub topic: String,
    /// The total number of partitions it is to have (partitions are only ever added).
    pub total: i32,
    /// Where the new partitions' replicas go: one list of broker ids per new partition, the preferred leader
    /// first; `None` lets the controller choose.
    pub assignments: Option<Vec<Vec<i32>>>,
}

impl NewPartitions {
    /// Grows `topic` to `total` partitions, the controller placing the new replicas.
    pub fn increase_to(topic: impl Into<String>, total: i32) -> NewPartitions {
        NewPartitions {
            topic: topic.into(),
            total,
            assignments: None,
        }
    }

    /// The same increase with the new partitions' replicas given: one list of broker ids per new partition.
    pub fn with_assignments(mut self, assignments: Vec<Vec<i32>>) -> NewPartitions {
        self.assignments = Some(assignments);
        self
    }
}

/// An offset found by a lookup, with the timestamp of the record there when the lookup was by time
/// ([`Admin::list_offsets_with_timestamps`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct OffsetAndTimestamp {
    /// The offset.
    pub offset: i64,
    /// The timestamp of the record at [`Self::offset`] (lookups by time), `None` for lookups by position.
    pub timestamp: Option<i64>,
}

impl Admin {
    /// Creates a topic. Already existing is an error (`TopicAlreadyExists`).
    pub async fn create_topic(&self, name: &str, partitions: i32, replication_factor: i16) -> Result<()> {
        let req = CreateTopicsRequest {
            topics: vec![NewTopic {
                name: name.to_owned(),
                partitions,
                replication_factor,
                configs: Vec::new(),
            }],
            timeout_ms: self.timeout_ms()?,
        };
        let topics = self.cluster()?.controller_connection().await?.call(&req).await?;
        for t in topics {
            let msg = t.error_message.unwrap_or_default();
            check(t.error_code, || format!("create topic {name} {msg}"))?;
        }
        Ok(())
    }

    /// Deletes a topic.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let req = DeleteTopicsRequest {
            names: vec![name.to_owned()],
            timeout_ms: self.timeout_ms()?,
        };
        let codes = self.cluster()?.controller_connection().await?.call(&req).await?;
        for code in codes {
            check(code, || format!("delete topic {name}"))?;
        }
        Ok(())
    }

    /// Metadata of every topic in the cluster.
    pub async fn metadata(&self) -> Result<Arc<MetadataSnapshot>> {
        self.cluster()?.refresh(true).await
    }

    /// Names of all topics, sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self.metadata().await?.topics.keys().cloned().collect();
        names.sort();
        Ok(names)
    }

    /// The offset `spec` of every partition of `topic`, asked of each partition's leader.
    pub async fn list_offsets(&self, topic: &str, spec: OffsetSpec) -> Result<BTreeMap<i32, i64>> {
        let meta = self.cluster()?.topic(topic).await?;
        let partitions: Vec<i32> = (0..meta.partition_count()).collect();
        self.cluster()?.list_offsets(topic, &partitions, spec).await
    }

    /// The offset `spec` of every partition of `topic` with the timestamp of the record found there:
    /// [`OffsetSpec::Timestamp`] finds, per partition, the first record whose timestamp is at or after the time
    /// given, `None` where there is none. `Earliest` and `Latest` always find an offset, without a timestamp.
    /// Asked of each partition's leader; the first partition that fails fails the call.
    ///
    /// ```no_run
    /// use weir::admin::OffsetSpec;
    /// # async fn demo(admin: weir::Admin) -> weir::Result<()> {
    /// let an_hour_ago = 1_700_000_000_000;
    /// for (p, found) in admin.list_offsets_with_timestamps("events", OffsetSpec::Timestamp(an_hour_ago)).await? {
    ///     match found {
    ///         Some(o) => println!("{p}: offset {} written at {:?}", o.offset, o.timestamp),
    ///         None => println!("{p}: nothing written since"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_offsets_with_timestamps(
        &self,
        topic: &str,
        spec: OffsetSpec,
    ) -> Result<BTreeMap<i32, Option<OffsetAndTimestamp>>> {
        let meta = self.cluster()?.topic(topic).await?;
        let topic: Arc<str> = Arc::from(topic);
        let items: Vec<(TopicPartition, ())> = (0..meta.partition_count())
            .map(|p| (TopicPartition::new(Arc::clone(&topic), p), ()))
            .collect();
        let by_time = matches!(spec, OffsetSpec::Timestamp(_));
        let found = self
            .at_leaders(items, |conn, batch| async move {
                let mut topics: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
                for (tp, ()) in &batch {
                    topics
                        .entry(&*tp.topic)
                        .or_default()
                        .push((tp.partition, spec_wire(spec)));
                }
                let req = ListOffsetsRequest {
                    isolation_level: 0,
                    topics: topics.into_iter().map(|(t, ps)| (t.to_owned(), ps)).collect(),
                };
                let listed = conn.call(&req).await?;
                Ok(listed
                    .into_iter()
                    .map(|l| {
                        let tp = TopicPartition::new(l.topic, l.partition);
                        let outcome = check(l.error_code, || format!("list offsets {tp}")).map(|()| {
                            (l.offset >= 0).then_some(OffsetAndTimestamp {
                                offset: l.offset,
                                timestamp: (by_time && l.timestamp >= 0).then_some(l.timestamp),
                            })
                        });
                        (tp, outcome)
                    })
                    .collect())
            })
            .await?;
        let mut out = BTreeMap::new();
        for (tp, outcome) in found {
            out.insert(tp.partition, outcome?);
        }
        Ok(out)
    }

    /// The cluster's id, controller and brokers (DescribeCluster), as the broker answering sees them.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let req = DescribeClusterRequest::default();
        let resp = self.cluster()?.any_connection().await?.call(&req).await?;
        let msg = resp.error_message.unwrap_or_default();
        check(resp.error_code, || format!("describe cluster {msg}"))?;
        let mut brokers: Vec<BrokerDescription> = resp
            .brokers
            .into_iter()
            .map(|b| BrokerDescription {
                id: b.broker_id,
                host: b.host,
                port: b.port,
                rack: b.rack,
            })
            .collect();
        brokers.sort_by_key(|b| b.id);
        Ok(ClusterDescription {
            cluster_id: resp.cluster_id,
            controller: (resp.controller_id >= 0).then_some(resp.controller_id),
            brokers,
        })
    }

    /// Describes `topics` (`None`: every topic, internal ones included, sorted by name): per topic its
    /// partitions with their leaders, replicas and in-sync replicas, its id and whether it is internal; or the
    /// topic's own error ([`crate::Error::Kafka`] with `UnknownTopicOrPartition` for a topic that does not
    /// exist, `TopicAuthorizationFailed`). One entry per topic named, in the order given (a name given twice
    /// is described once).
    pub async fn describe_topics(
        &self,
        topics: Option<&[&str]>,
    ) -> Result<Vec<(String, Result<TopicDescription>)>> {
        let mut names: Vec<String> = Vec::new();
        for t in topics.unwrap_or_default() {
            if !names.iter().any(|n| n == t) {
                names.push((*t).to_owned());
            }
        }
        if topics.is_some() && names.is_empty() {
            return Ok(Vec::new());
        }
        let req = MetadataRequest {
            topics: topics.map(|_| names.clone()),
            allow_auto_topic_creation: false,
        };
        let conn = self.cluster()?.any_connection().await?;
        let resp = conn.call(&req).await?;
        let mut found: HashMap<String, MetadataTopic> = HashMap::with_capacity(resp.topics.len());
        for t in resp.topics {
            if let Some(name) = t.name.clone() {
                found.insert(name, t);
            }
        }
        if topics.is_none() {
            names = found.keys().cloned().collect();
            names.sort();
        }
        Ok(names
            .into_iter()
            .map(|name| {
                let outcome = match found.remove(&name) {
                    None => Err(count_mismatch::<MetadataRequest>(
                        &conn,
                        format!("no metadata for topic {name}"),
                    )),
                    Some(t) => check(t.error_code, || format!("describe topic {name}"))
                        .map(|()| TopicDescription::from_wire(name.clone(), t)),
                };
                (name, outcome)
            })
            .collect())
    }

    /// Grows topics to the partition counts given (CreatePartitions), or with `validate_only` only checks that
    /// the controller would. One outcome per topic, in the order given: `Ok(())`, or [`crate::Error::Kafka`]
    /// (`InvalidPartitions`: not more than the topic has; `UnknownTopicOrPartition`; `InvalidReplicaAssignment`;
    /// `InvalidRequest`: a topic given twice). The new partitions appear in metadata a moment after this
    /// returns.
    ///
    /// A topic keyed by partition (`hash(key) % partitions`) sends the same keys elsewhere once it has more
    /// partitions.
    pub async fn create_partitions(
        &self,
        increases: &[NewPartitions],
        validate_only: bool,
    ) -> Result<Vec<(String, Result<()>)>> {
        if increases.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(p) = increases.iter().find(|p| p.topic.is_empty()) {
            return Err(Error::InvalidArgument(format!(
                "create partitions: empty topic name (to {} partitions)",
                p.total
            )));
        }
        let req = CreatePartitionsRequest {
            topics: increases
                .iter()
                .map(|p| PartitionsIncrease {
                    topic: p.topic.clone(),
                    count: p.total,
                    assignments: p.assignments.clone(),
                })
                .collect(),
            timeout_ms: self.timeout_ms()?,
            validate_only,
        };
        let conn = self.cluster()?.controller_connection().await?;
        let results = conn.call(&req).await?;
        let mut names: Vec<&str> = Vec::new();
        for p in increases {
            if !names.contains(&p.topic.as_str()) {
                names.push(&p.topic);
            }
        }
        Ok(names
            .into_iter()
            .map(|topic| {
                let outcome = match results.iter().find(|r| r.topic == topic) {
                    Some(r) => {
                        let msg = r.error_message.clone().unwrap_or_default();
                        check(r.error_code, || format!("create partitions of {topic} {msg}"))
                    }
                    None => Err(count_mismatch::<CreatePartitionsRequest>(
                        &conn,
                        format!("no result for topic {topic}"),
                    )),
                };
                (topic.to_owned(), outcome)
            })
            .collect())
    }

    /// Deletes the records before the offsets given (DeleteRecords): each partition's log start moves to its
    /// offset ([`DELETE_TO_HIGH_WATERMARK`]: to the high watermark, deleting everything). Asked of each
    /// partition's leader. One outcome per partition, in the order given: the partition's new log start (low
    /// watermark), or [`crate::Error::Kafka`] (`OffsetOutOfRange`: past the high watermark;
    /// `UnknownTopicOrPartition`; `PolicyViolation` for a compacted topic; `TopicAuthorizationFailed`).
    ///
    /// A consumer positioned before the new log start gets `OffsetOutOfRange` on its next fetch, which it
    /// handles as `auto.offset.reset` says. A partition given twice fails the call with
    /// [`crate::Error::InvalidArgument`] before anything is sent.
    pub async fn delete_records(
        &self,
        before: &[(TopicPartition, i64)],
    ) -> Result<Vec<(TopicPartition, Result<i64>)>> {
        let mut seen = std::collections::HashSet::with_capacity(before.len());
        for (tp, offset) in before {
            if !seen.insert(tp) {
                return Err(Error::InvalidArgument(format!(
                    "delete records: {tp} is given twice"
                )));
            }
            if *offset < 0 && *offset != DELETE_TO_HIGH_WATERMARK {
                return Err(Error::InvalidArgument(format!(
                    "delete records of {tp} before offset {offset}: expected an offset, or -1 for the high \
                     watermark"
                )));
            }
        }
        let timeout_ms = self.timeout_ms()?;
        let mut found = self
            .at_leaders(before.to_vec(), |conn, batch| async move {
                let mut topics: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
                for (tp, offset) in &batch {
                    topics
                        .entry(&*tp.topic)
                        .or_default()
                        .push((tp.partition, *offset));
                }
                let req = DeleteRecordsRequest {
                    topics: topics.into_iter().map(|(t, ps)| (t.to_owned(), ps)).collect(),
                    timeout_ms,
                };
                let deleted = conn.call(&req).await?;
                Ok(deleted
                    .into_iter()
                    .map(|d| {
                        let tp = TopicPartition::new(d.topic, d.partition);
                        let outcome = check(d.error_code, || format!("delete records of {tp}"))
                            .map(|()| d.low_watermark);
                        (tp, outcome)
                    })
                    .collect())
            })
            .await?;
        Ok(before
            .iter()
            .map(|(tp, _)| {
                let outcome = found.remove(tp).unwrap_or_else(|| {
                    Err(Error::Kafka {
                        code: KafkaCode::UnknownServerError,
                        context: format!("delete records of {tp}: no answer"),
                    })
                });
                (tp.clone(), outcome)
            })
            .collect())
    }

    /// The request timeout, in the milliseconds a request's own timeout field takes.
    fn timeout_ms(&self) -> Result<i32> {
        Ok(i32::try_from(self.cluster()?.config().request_timeout.as_millis()).unwrap_or(i32::MAX))
    }

    /// Runs a per-partition request at each partition's leader: `ask` sends one leader's batch and returns
    /// an outcome per partition. Partitions without a known leader, or whose outcome (or whose leader's whole
    /// answer) is a retriable error, are asked again after a metadata refresh, with backoff, for at most
    /// `max.block.ms`; then their last error is their outcome. A topic the cluster does not know, or a
    /// partition beyond its count, is answered at once with `UnknownTopicOrPartition`.
    async fn at_leaders<T, V, F, Fut>(
        &self,
        items: Vec<(TopicPartition, T)>,
        ask: F,
    ) -> Result<HashMap<TopicPartition, Result<V>>>
    where
        T: Clone,
        F: Fn(Arc<Connection>, Vec<(TopicPartition, T)>) -> Fut,
        Fut: Future<Output = Result<Vec<(TopicPartition, Result<V>)>>>,
    {
        let cluster = self.cluster()?;
        let mut out: HashMap<TopicPartition, Result<V>> = HashMap::with_capacity(items.len());
        if items.is_empty() {
            return Ok(out);
        }
        cluster.add_interest(items.iter().map(|(tp, _)| &*tp.topic));
        let mut retry = RetryWindow::new(cluster.config());
        let mut todo = items;
        loop {
            // Fresh metadata each round: partitions just added, leaders just moved.
            let snap = cluster.refresh(false).await?;
            let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, T)>> = BTreeMap::new();
            let mut again: Vec<(TopicPartition, T, Error)> = Vec::new();
            for (tp, t) in todo {
                match leader_of(&snap, &tp) {
                    Ok(leader) => by_leader.entry(leader).or_default().push((tp, t)),
                    // Only a missing leader is waited for: the cluster's word that a topic does not exist is
                    // final here (a leader saying so is asked again, below).
                    Err(e) if e.kafka_code() == Some(KafkaCode::LeaderNotAvailable) => again.push((tp, t, e)),
                    Err(e) => {
                        out.insert(tp, Err(e));
                    }
                }
            }
            let asks = by_leader.into_iter().map(|(leader, batch)| {
                let ask = &ask;
                async move {
                    let sent = batch.clone();
                    let answered = match cluster.link(leader) {
                        Ok(link) => match link.get().await {
                            Ok(conn) => ask(conn, batch).await,
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(e),
                    };
                    (sent, answered)
                }
            });
            for (sent, answered) in futures::future::join_all(asks).await {
                match answered {
                    Err(e) if e.is_retriable() => {
                        again.extend(sent.into_iter().map(|(tp, t)| (tp, t, e.clone())));
                    }
                    Err(e) => {
                        for (tp, _) in sent {
                            out.insert(tp, Err(e.clone()));
                        }
                    }
                    Ok(outcomes) => {
                        let mut outcomes: HashMap<TopicPartition, Result<V>> = outcomes.into_iter().collect();
                        for (tp, t) in sent {
                            match outcomes.remove(&tp) {
                                Some(Err(e)) if e.is_retriable() => again.push((tp, t, e)),
                                Some(outcome) => {
                                    out.insert(tp, outcome);
                                }
                                None => {
                                    let e = Error::Kafka {
                                        code: KafkaCode::UnknownServerError,
                                        context: format!("{tp}: the leader's answer left it out"),
                                    };
                                    out.insert(tp, Err(e));
                                }
                            }
                        }
                    }
                }
            }
            if again.is_empty() {
                return Ok(out);
            }
            if !retry.wait().await {
                for (tp, _, e) in again {
                    out.insert(tp, Err(e));
                }
                return Ok(out);
            }
            tracing::debug!(partitions = again.len(), error = %again[0].2, "retrying at the leaders");
            todo = again.into_iter().map(|(tp, t, _)| (tp, t)).collect();
        }
    }
}

/// The wire timestamp of a lookup: -2 earliest, -1 latest, else the time.
fn spec_wire(spec: OffsetSpec) -> i64 {
    match spec {
        OffsetSpec::Earliest => -2,
        OffsetSpec::Latest => -1,
        OffsetSpec::Timestamp(t) => t,
    }
}

/// The leader of `tp` in `snap`: `UnknownTopicOrPartition` for a topic the cluster reported unknown or a
/// partition beyond its count, another topic error as reported, a retriable `LeaderNotAvailable` while there is
/// no leader (or the topic is not in the snapshot yet).
fn leader_of(snap: &MetadataSnapshot, tp: &TopicPartition) -> Result<i32> {
    let unknown = || Error::Kafka {
        code: KafkaCode::UnknownTopicOrPartition,
        context: format!("{tp}: no such partition"),
    };
    if let Some(code) = snap.topic_errors.get(&*tp.topic) {
        return Err(match code {
            KafkaCode::UnknownTopicOrPartition => unknown(),
            code => Error::Kafka {
                code: *code,
                context: format!("metadata of topic {}", tp.topic),
            },
        });
    }
    let Some(t) = snap.topic(&tp.topic) else {
        return Err(Error::Kafka {
            code: KafkaCode::LeaderNotAvailable,
            context: format!("{tp}: topic not in the metadata yet"),
        });
    };
    if tp.partition < 0 || tp.partition >= t.partition_count() {
        return Err(unknown());
    }
    t.leader(tp.partition).ok_or_else(|| Error::Kafka {
        code: KafkaCode::LeaderNotAvailable,
        context: format!("{tp} has no leader"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_ids_read_and_print_as_kafka_does() {
        let id = TopicId([
            0x17, 0x3e, 0xec, 0xf1, 0xe1, 0x2c, 0x4d, 0xfe, 0xb2, 0x42, 0x16, 0x35, 0x67, 0xb4, 0x67, 0xda,
        ]);
        assert_eq!(id.to_string(), "Fz7s8eEsTf6yQhY1Z7Rn2g");
        assert_eq!("Fz7s8eEsTf6yQhY1Z7Rn2g".parse::<TopicId>().unwrap(), id);
        assert_eq!(TopicId::ZERO.to_string(), "AAAAAAAAAAAAAAAAAAAAAA");
        assert!("short".parse::<TopicId>().is_err());
        assert!("Fz7s8eEsTf6yQhY1Z7Rn2g==".parse::<TopicId>().is_err());
        assert_eq!(format!("{id:?}"), "TopicId(Fz7s8eEsTf6yQhY1Z7Rn2g)");
    }

    #[test]
    fn leaders_unknown_partitions_and_topic_errors() {
        use crate::cluster::{PartitionMetadata, TopicMetadata};
        let mut snap = MetadataSnapshot::default();
        snap.topics.insert(
            "t".into(),
            Arc::new(TopicMetadata {
                name: "t".into(),
                topic_id: [0; 16],
                partitions: vec![
                    PartitionMetadata {
                        id: 0,
                        leader: 2,
                        leader_epoch: 0,
                        error: None,
                    },
                    PartitionMetadata {
                        id: 1,
                        leader: -1,
                        leader_epoch: 0,
                        error: None,
                    },
                ],
                internal: false,
            }),
        );
        snap.topic_errors
            .insert("gone".into(), KafkaCode::UnknownTopicOrPartition);
        snap.topic_errors
            .insert("secret".into(), KafkaCode::TopicAuthorizationFailed);
        let code = |tp: TopicPartition| leader_of(&snap, &tp).unwrap_err().kafka_code();
        assert_eq!(leader_of(&snap, &TopicPartition::new("t", 0)).unwrap(), 2);
        assert_eq!(
            code(TopicPartition::new("t", 1)),
            Some(KafkaCode::LeaderNotAvailable)
        );
        assert_eq!(
            code(TopicPartition::new("t", 2)),
            Some(KafkaCode::UnknownTopicOrPartition)
        );
        assert_eq!(
            code(TopicPartition::new("t", -1)),
            Some(KafkaCode::UnknownTopicOrPartition)
        );
        assert_eq!(
            code(TopicPartition::new("gone", 0)),
            Some(KafkaCode::UnknownTopicOrPartition)
        );
        assert_eq!(
            code(TopicPartition::new("secret", 0)),
            Some(KafkaCode::TopicAuthorizationFailed)
        );
        assert_eq!(
            code(TopicPartition::new("new", 0)),
            Some(KafkaCode::LeaderNotAvailable)
        );
    }
}
