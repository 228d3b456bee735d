//! Transactions of a producer with a `transactional.id`: the state of the current transaction and the calls to
//! the transaction coordinator (FindCoordinator, InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn) and
//! to the group coordinator (TxnOffsetCommit).
//!
//! weir speaks the transaction protocol every Kafka since 2.5 accepts (transaction version 1: partitions and
//! offsets are added to the transaction explicitly, EndTxn up to v4, Produce up to v11), also on clusters that
//! finalized KIP-890's version 2, which serves these clients unchanged and verifies each transactional write
//! against the partitions added (KIP-890 part 1).
//!
//! Errors by kind, as the Java client handles them: a fenced producer (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH,
//! a transactional id not authorized) is finished, and every later call returns the same error; a transaction
//! whose writes or offsets failed must be aborted (`abort_transaction`), after which the producer goes on;
//! CONCURRENT_TRANSACTIONS, COORDINATOR_LOAD_IN_PROGRESS and a moved coordinator are retried.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_proto::producer_id::InitProducerIdRequest;
use weir_proto::record::ProducerIds;
use weir_proto::txn::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, TxnOffset, TxnOffsetCommitRequest,
    END_TXN_MAX_VERSION_BEFORE_TV2, TXN_OFFSET_COMMIT_MAX_VERSION_BEFORE_TV2,
};
use weir_proto::Call;

use crate::cluster::coordinators::{self, coordinator_moved};
use crate::cluster::Cluster;
use crate::error::{check, Error, KafkaCode, Result};
use crate::net::{BrokerLink, Connection};
use crate::types::TopicPartition;

/// Where the producer's transaction stands.
#[derive(Debug, Clone)]
pub(super) enum Phase {
    /// `init_transactions` has not completed.
    Uninitialized,
    /// No transaction open.
    Ready,
    /// A transaction is open: records may be sent.
    Open,
    /// A write or an offset of the open transaction failed: only `abort_transaction` is possible.
    MustAbort(Error),
    /// Fenced or refused for good: every call returns this.
    Fatal(Error),
}

/// The consumer group position a transaction commits offsets for (the Java client's `ConsumerGroupMetadata`,
/// KIP-447): the coordinator refuses the offsets of a member that is no longer the partitions' owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// The group.
    pub group_id: String,
    /// The member's generation, -1 for none.
    pub generation_id: i32,
    /// The member id, empty for none.
    pub member_id: String,
    /// The static instance id, if any.
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// Metadata of a group without a member (offsets committed without fencing by generation).
    pub fn new(group_id: impl Into<String>) -> ConsumerGroupMetadata {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

struct State {
    phase: Phase,
    /// Partitions added to the open transaction.
    added: HashSet<(Arc<str>, i32)>,
    /// An AddPartitionsToTxn is in flight.
    adding: bool,
    /// Whether the open transaction has anything for the coordinator to end.
    touched: bool,
}

impl State {
    /// Enters `phase` with no partition added and nothing to end.
    fn start(&mut self, phase: Phase) {
        self.phase = phase;
        self.added.clear();
        self.touched = false;
    }
}

/// The transactional side of a producer.
pub(super) struct Transactions {
    pub(super) id: String,
    timeout_ms: i32,
    state: Mutex<State>,
    coordinator: tokio::sync::Mutex<Option<Arc<BrokerLink>>>,
    /// The last consumer group's coordinator (TxnOffsetCommit), kept across transactions.
    group_coordinator: tokio::sync::Mutex<Option<(String, Arc<BrokerLink>)>>,
}

/// How often a retriable transaction call is tried before its error is returned.
const ATTEMPTS: u32 = 20;
/// The pause before retrying a call the coordinator answered CONCURRENT_TRANSACTIONS.
const CONCURRENT_BACKOFF: Duration = Duration::from_millis(20);

impl Transactions {
    pub(super) fn new(id: String, timeout: Duration) -> Transactions {
        Transactions {
            id,
            timeout_ms: timeout.as_millis().min(i32::MAX as u128) as i32,
            state: Mutex::new(State {
                phase: Phase::Uninitialized,
                added: HashSet::new(),
                adding: false,
                touched: false,
            }),
            coordinator: tokio::sync::Mutex::new(None),
            group_coordinator: tokio::sync::Mutex::new(None),
        }
    }

    pub(super) fn phase(&self) -> Phase {
        self.state.lock().unwrap().phase.clone()
    }

    /// Whether the open transaction can no longer send its records: it must be aborted, or the producer is
    /// finished.
    pub(super) fn stuck(&self) -> bool {
        matches!(self.phase(), Phase::MustAbort(_) | Phase::Fatal(_))
    }

    /// Whether a record may be sent now: inside an open transaction.
    pub(super) fn check_send(&self) -> Result<()> {
        match self.phase() {
            Phase::Open => Ok(()),
            Phase::MustAbort(e) | Phase::Fatal(e) => Err(e),
            Phase::Uninitialized => Err(Error::InvalidArgument(
                "a transactional producer sends after init_transactions".into(),
            )),
            Phase::Ready => Err(Error::InvalidArgument(
                "a transactional producer sends inside a transaction (begin_transaction)".into(),
            )),
        }
    }

    /// A write of the open transaction failed for good: the transaction must be aborted (a fencing error
    /// finishes the producer).
    pub(super) fn write_failed(&self, e: &Error) {
        let mut st = self.state.lock().unwrap();
        match st.phase {
            Phase::Fatal(_) => {}
            _ if fenced(e) => st.phase = Phase::Fatal(e.clone()),
            Phase::Open => st.phase = Phase::MustAbort(e.clone()),
            _ => {}
        }
    }

    /// Whether `partition` may be written: added to the open transaction. Otherwise it is collected in
    /// `to_add` (the sender adds them, then writes).
    pub(super) fn may_write(
        &self,
        topic: &Arc<str>,
        partition: i32,
        to_add: &mut Vec<(Arc<str>, i32)>,
    ) -> bool {
        let st = self.state.lock().unwrap();
        if !matches!(st.phase, Phase::Open) {
            return false;
        }
        if st.added.contains(&(topic.clone(), partition)) {
            return true;
        }
        to_add.push((topic.clone(), partition));
        false
    }

    /// Marks an AddPartitionsToTxn as started; false if one is already in flight.
    pub(super) fn start_adding(&self) -> bool {
        let mut st = self.state.lock().unwrap();
        !std::mem::replace(&mut st.adding, true)
    }

    pub(super) fn begin(&self) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        match &st.phase {
            Phase::Ready => {
                st.start(Phase::Open);
                Ok(())
            }
            Phase::Fatal(e) => Err(e.clone()),
            Phase::Uninitialized => Err(Error::InvalidArgument(
                "begin_transaction before init_transactions".into(),
            )),
            Phase::Open | Phase::MustAbort(_) => Err(Error::InvalidArgument(
                "begin_transaction while a transaction is open".into(),
            )),
        }
    }

    /// The transaction coordinator, found with FindCoordinator (key type 1) if unknown.
    async fn coordinator(&self, cluster: &Cluster) -> Result<Arc<Connection>> {
        let mut current = self.coordinator.lock().await;
        if let Some(link) = current.as_ref() {
            return link.get().await;
        }
        let link = cluster.link_to(
            cluster
                .find_coordinator(&self.id, coordinators::TRANSACTION)
                .await?
                .0,
        );
        let conn = link.get().await?;
        *current = Some(link);
        Ok(conn)
    }

    /// The coordinator of `group`, found with FindCoordinator (key type 0) unless it is the one kept.
    async fn group_coordinator(&self, cluster: &Cluster, group: &str) -> Result<Arc<BrokerLink>> {
        let mut kept = self.group_coordinator.lock().await;
        if let Some((_, link)) = kept.as_ref().filter(|(g, _)| g == group) {
            return Ok(link.clone());
        }
        let link = cluster.link_to(cluster.find_coordinator(group, coordinators::GROUP).await?.0);
        *kept = Some((group.to_owned(), link.clone()));
        Ok(link)
    }

    /// Calls the transaction coordinator with `req` (at most `max_version`), answered by `answer`; retries
    /// while the coordinator is busy or moved.
    async fn call<C: Call + Sync, T>(
        &self,
        cluster: &Cluster,
        req: &C,
        max_version: i16,
        answer: impl Fn(C::Response) -> Result<T>,
    ) -> Result<T>
    where
        C::Response: Send,
    {
        retrying(cluster, &self.id, || async {
            let result = async {
                let conn = self.coordinator(cluster).await?;
                answer(conn.call_capped(req, max_version).await?)
            }
            .await;
            if result.as_ref().is_err_and(coordinator_moved) {
                *self.coordinator.lock().await = None;
            }
            result
        })
        .await
    }

    /// InitProducerId with the transactional id: a producer id and epoch, fencing every older producer of this
    /// id (the coordinator aborts their open transaction). With `current` (a producer that has an id), the epoch
    /// is bumped instead (KIP-360), after a transaction whose writes failed.
    pub(super) async fn init(&self, cluster: &Cluster, current: Option<ProducerIds>) -> Result<ProducerIds> {
        if let Phase::Fatal(e) = self.phase() {
            return Err(e);
        }
        let req = InitProducerIdRequest {
            transactional_id: Some(self.id.clone()),
            transaction_timeout_ms: self.timeout_ms,
            producer_id: current.map_or(-1, |c| c.producer_id),
            producer_epoch: current.map_or(-1, |c| c.producer_epoch),
        };
        let ids = self
            .call(cluster, &req, i16::MAX, |r| {
                check(r.error_code, || format!("InitProducerId for {}", self.id))?;
                Ok(ProducerIds {
                    producer_id: r.producer_id,
                    producer_epoch: r.producer_epoch,
                    base_sequence: 0,
                })
            })
            .await
            .inspect_err(|e| self.fail_if_fenced(e))?;
        self.state.lock().unwrap().start(Phase::Ready);
        Ok(ids)
    }

    /// AddPartitionsToTxn for `partitions`; they may be written once it succeeded.
    pub(super) async fn add_partitions(
        &self,
        cluster: &Cluster,
        ids: ProducerIds,
        partitions: Vec<(Arc<str>, i32)>,
    ) -> Result<()> {
        let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in &partitions {
            topics.entry(t).or_default().push(*p);
        }
        let req = AddPartitionsToTxnRequest {
            transactional_id: self.id.clone(),
            producer_id: ids.producer_id,
            producer_epoch: ids.producer_epoch,
            topics: topics.into_iter().map(|(t, ps)| (t.to_owned(), ps)).collect(),
        };
        let result = self
            .call(cluster, &req, i16::MAX, |topics| {
                for t in topics {
                    for (p, code) in t.partitions {
                        check(code, || format!("AddPartitionsToTxn {}-{p}", t.name))?;
                    }
                }
                Ok(())
            })
            .await;
        let mut st = self.state.lock().unwrap();
        st.adding = false;
        match &result {
            Ok(()) => {
                st.touched = true;
                st.added.extend(partitions);
            }
            Err(e) => {
                drop(st);
                self.write_failed(e);
            }
        }
        result
    }

    /// AddOffsetsToTxn to the transaction coordinator, then TxnOffsetCommit to the group's coordinator.
    pub(super) async fn send_offsets(
        &self,
        cluster: &Cluster,
        ids: ProducerIds,
        offsets: &[(TopicPartition, i64)],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        self.check_send()?;
        let result = self.commit_offsets(cluster, ids, offsets, group).await;
        if let Err(e) = &result {
            self.write_failed(e);
        }
        result
    }

    async fn commit_offsets(
        &self,
        cluster: &Cluster,
        ids: ProducerIds,
        offsets: &[(TopicPartition, i64)],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let add = AddOffsetsToTxnRequest {
            transactional_id: self.id.clone(),
            producer_id: ids.producer_id,
            producer_epoch: ids.producer_epoch,
            group_id: group.group_id.clone(),
        };
        self.call(cluster, &add, i16::MAX, |code| {
            check(code, || format!("AddOffsetsToTxn {}", group.group_id))
        })
        .await?;
        self.state.lock().unwrap().touched = true;
        let mut topics: BTreeMap<&str, Vec<TxnOffset>> = BTreeMap::new();
        for (tp, offset) in offsets {
            topics.entry(&tp.topic).or_default().push(TxnOffset {
                partition: tp.partition,
                offset: *offset,
                leader_epoch: -1,
                metadata: None,
            });
        }
        let req = TxnOffsetCommitRequest {
            transactional_id: self.id.clone(),
            group_id: group.group_id.clone(),
            producer_id: ids.producer_id,
            producer_epoch: ids.producer_epoch,
            generation_id: group.generation_id,
            member_id: group.member_id.clone(),
            group_instance_id: group.group_instance_id.clone(),
            topics: topics.into_iter().map(|(t, o)| (t.to_owned(), o)).collect(),
        };
        retrying(cluster, &self.id, || async {
            let result = async {
                let link = self.group_coordinator(cluster, &group.group_id).await?;
                let topics = link
                    .get()
                    .await?
                    .call_capped(&req, TXN_OFFSET_COMMIT_MAX_VERSION_BEFORE_TV2)
                    .await?;
                for t in topics {
                    for (p, code) in t.partitions {
                        check(code, || {
                            format!("TxnOffsetCommit {} {}-{p}", group.group_id, t.name)
                        })?;
                    }
                }
                Ok(())
            }
            .await;
            if result.as_ref().is_err_and(coordinator_moved) {
                *self.group_coordinator.lock().await = None;
            }
            result
        })
        .await
    }

    /// Ends the open transaction (commit or abort) with EndTxn, if it touched anything. The caller has made
    /// sure every write of it was answered.
    pub(super) async fn end(&self, cluster: &Cluster, ids: ProducerIds, commit: bool) -> Result<()> {
        let touched = {
            let st = self.state.lock().unwrap();
            match &st.phase {
                Phase::Fatal(e) => return Err(e.clone()),
                Phase::MustAbort(e) if commit => return Err(e.clone()),
                Phase::Open | Phase::MustAbort(_) => st.touched,
                Phase::Ready | Phase::Uninitialized => {
                    return Err(Error::InvalidArgument("no transaction is open".into()))
                }
            }
        };
        if touched {
            let req = EndTxnRequest {
                transactional_id: self.id.clone(),
                producer_id: ids.producer_id,
                producer_epoch: ids.producer_epoch,
                committed: commit,
            };
            let what = if commit { "commit" } else { "abort" };
            self.call(cluster, &req, END_TXN_MAX_VERSION_BEFORE_TV2, |r| {
                check(r.error_code, || format!("EndTxn ({what}) {}", self.id))
            })
            .await
            .inspect_err(|e| {
                if commit {
                    self.write_failed(e)
                } else {
                    self.fail_if_fenced(e)
                }
            })?;
        }
        self.state.lock().unwrap().start(Phase::Ready);
        Ok(())
    }

    fn fail_if_fenced(&self, e: &Error) {
        if fenced(e) {
            self.state.lock().unwrap().phase = Phase::Fatal(e.clone());
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or [`ATTEMPTS`] tries have failed, with backoff.
async fn retrying<T, F: std::future::Future<Output = Result<T>>>(
    cluster: &Cluster,
    id: &str,
    mut attempt: impl FnMut() -> F,
) -> Result<T> {
    let mut backoff = cluster.config().retry_backoff;
    let mut tries = 0;
    let busy_until = tokio::time::Instant::now() + cluster.config().request_timeout;
    loop {
        let err = match attempt().await {
            Ok(t) => return Ok(t),
            Err(e) => e,
        };
        if err.kafka_code() == Some(KafkaCode::ConcurrentTransactions)
            && tokio::time::Instant::now() < busy_until
        {
            // The coordinator is still writing the previous transaction's markers, usually a matter of
            // milliseconds (the Java client retries AddPartitionsToTxn after 20 ms too); for at most the
            // request timeout.
            tokio::time::sleep(CONCURRENT_BACKOFF).await;
            continue;
        }
        tries += 1;
        if !retriable(&err) || tries >= ATTEMPTS {
            return Err(err);
        }
        tracing::debug!(transactional_id = %id, error = %err, "transaction call: retrying");
        tokio::time::sleep(backoff).await;
        backoff = cluster.config().next_retry_backoff(backoff);
    }
}

/// Errors that end the producer: another producer took the transactional id, or it is not allowed.
fn fenced(e: &Error) -> bool {
    matches!(
        e.kafka_code(),
        Some(
            KafkaCode::ProducerFenced
                | KafkaCode::InvalidProducerEpoch
                | KafkaCode::TransactionalIdAuthorizationFailed
        )
    )
}

/// Worth trying again shortly.
fn retriable(e: &Error) -> bool {
    coordinator_moved(e)
        || matches!(
            e.kafka_code(),
            Some(KafkaCode::ConcurrentTransactions | KafkaCode::CoordinatorLoadInProgress)
        )
        || (e.is_retriable() && !fenced(e))
}
