//! Cluster metadata: snapshots that readers never lock, leader routing, refresh on demand and periodically.

mod broker_choice;
pub(crate) mod coordinators;
mod epoch_ends;
mod leader_hints;
mod metadata;
mod metrics;
mod offsets;

pub(crate) use epoch_ends::EpochAsk;
pub(crate) use leader_hints::LeaderHint;
pub use metadata::{MetadataSnapshot, PartitionMetadata, TopicMetadata};
pub use offsets::OffsetSpec;

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use arc_swap::ArcSwap;
use tracing::Instrument;
use weir_proto::metadata::MetadataRequest;
use weir_proto::Call;

use crate::config::ClientConfig;
use crate::error::{Error, KafkaCode, Result};
use crate::net::{BrokerLink, Connection, LinkState, Transport};

/// Shared view of the cluster: broker links and the latest metadata snapshot.
pub(crate) struct Cluster {
    cfg: Arc<ClientConfig>,
    transport: Arc<Transport>,
    snapshot: ArcSwap<MetadataSnapshot>,
    /// Links by (broker id, lane): lane 0 carries control traffic and produce; fetchers use their own lanes,
    /// so a long-polling fetch never delays other requests and several fetches run in parallel (a broker
    /// answers the requests of one connection one at a time).
    links: ArcSwap<HashMap<(i32, u8), Arc<BrokerLink>>>,
    bootstrap: Vec<Arc<BrokerLink>>,
    /// Counts choices of a broker for requests any broker can answer; rotates the choice among equal brokers.
    choices: AtomicUsize,
    /// Topics whose metadata this client keeps fresh.
    interest: Mutex<BTreeSet<String>>,
    refreshing: tokio::sync::Mutex<()>,
    refresh_metrics: metrics::RefreshMetrics,
}

impl Cluster {
    /// A cluster handle; starts the periodic refresh task.
    pub(crate) fn new(cfg: ClientConfig) -> Result<Arc<Cluster>> {
        if cfg.bootstrap_servers.is_empty() {
            return Err(Error::Config("bootstrap.servers is empty".into()));
        }
        let transport = Transport::new(&cfg)?;
        crate::net::metrics::describe();
        metrics::describe();
        let refresh_metrics = metrics::RefreshMetrics::new(&cfg.client_id);
        let cfg = Arc::new(cfg);
        let bootstrap = cfg
            .bootstrap_servers
            .iter()
            .map(|a| Arc::new(BrokerLink::new(a.clone(), cfg.clone(), transport.clone())))
            .collect();
        let cluster = Arc::new(Cluster {
            cfg,
            transport,
            snapshot: ArcSwap::from_pointee(MetadataSnapshot::default()),
            links: ArcSwap::from_pointee(HashMap::new()),
            bootstrap,
            choices: AtomicUsize::new(0),
            interest: Mutex::new(BTreeSet::new()),
            refreshing: tokio::sync::Mutex::new(()),
            refresh_metrics,
        });
        tokio::spawn(periodic_refresh(
            Arc::downgrade(&cluster),
            cluster.cfg.metadata_max_age,
        ));
        Ok(cluster)
    }

    pub(crate) fn config(&self) -> &Arc<ClientConfig> {
        &self.cfg
    }

    /// How this client's connections are made (TLS, SASL).
    pub(crate) fn transport(&self) -> &Arc<Transport> {
        &self.transport
    }

    /// The latest snapshot (a lock-free load).
    pub(crate) fn snapshot(&self) -> Arc<MetadataSnapshot> {
        self.snapshot.load_full()
    }

    /// Adds topics to those kept fresh; returns true if any was new.
    pub(crate) fn add_interest<'a>(&self, topics: impl IntoIterator<Item = &'a str>) -> bool {
        let mut set = self.interest.lock().unwrap();
        let mut added = false;
        for t in topics {
            added |= set.insert(t.to_owned());
        }
        added
    }

    /// A link to broker `id` at its address in the latest snapshot. A broker that moved (restarted with another
    /// advertised address) gets a new link; the old one's connection closes when its last user lets go.
    pub(crate) fn link(&self, id: i32) -> Result<Arc<BrokerLink>> {
        self.lane_link(id, 0)
    }

    /// Like [`Cluster::link`], for a separate connection (`lane`) to the same broker.
    pub(crate) fn lane_link(&self, id: i32, lane: u8) -> Result<Arc<BrokerLink>> {
        let snap = self.snapshot();
        let addr = snap.brokers.get(&id).ok_or_else(|| Error::Kafka {
            code: KafkaCode::BrokerNotAvailable,
            context: format!("broker {id} is not in the metadata"),
        })?;
        if let Some(l) = self.links.load().get(&(id, lane)).filter(|l| l.addr() == addr) {
            return Ok(l.clone());
        }
        let link = Arc::new(BrokerLink::new(
            addr.clone(),
            self.cfg.clone(),
            self.transport.clone(),
        ));
        self.links.rcu(|links| {
            let mut map = HashMap::clone(links);
            map.insert((id, lane), link.clone());
            map
        });
        Ok(link)
    }

    /// A link to `addr` (a coordinator's address from FindCoordinator), made as every link of this client.
    pub(crate) fn link_to(&self, addr: String) -> Arc<BrokerLink> {
        Arc::new(BrokerLink::new(addr, self.cfg.clone(), self.transport.clone()))
    }

    /// A connection to any broker: the first of [`Cluster::links_to_try`] that connects.
    pub(crate) async fn any_connection(&self) -> Result<Arc<Connection>> {
        self.on_any_broker(|conn| async move { Ok(conn) }).await
    }

    /// Sends `req`, which any broker can answer, to the first of [`Cluster::links_to_try`] that connects; if
    /// that broker fails it (the connection is lost, the request times out, the answer cannot be read), to the
    /// next. The error is the last broker's.
    pub(crate) async fn any_call<C: Call>(&self, req: &C) -> Result<C::Response> {
        self.on_any_broker(|conn| async move { conn.call(req).await })
            .await
    }

    /// `f` on a connection to each of [`Cluster::links_to_try`] in turn, until one succeeds. A link found in its
    /// reconnect backoff is passed over, and waited for only once every other link has failed.
    async fn on_any_broker<T, F, Fut>(&self, mut f: F) -> Result<T>
    where
        F: FnMut(Arc<Connection>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut last_err = None;
        let mut in_backoff = Vec::new();
        for link in self.links_to_try() {
            match link.get_unless_backoff().await {
                Some(Ok(conn)) => match f(conn).await {
                    Ok(done) => return Ok(done),
                    Err(e) => last_err = Some(e),
                },
                Some(Err(e)) => last_err = Some(e),
                None => in_backoff.push(link),
            }
        }
        for link in in_backoff {
            let answered = match link.get().await {
                Ok(conn) => f(conn).await,
                Err(e) => Err(e),
            };
            match answered {
                Ok(done) => return Ok(done),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or(Error::Config("no brokers".into())))
    }

    /// The links to try, best first, for a request any broker can answer: the links of the brokers in the
    /// latest metadata and of the bootstrap addresses, one per address, in the order
    /// [`broker_choice::try_order`] gives for their states now (read without locking).
    fn links_to_try(&self) -> Vec<Arc<BrokerLink>> {
        let snap = self.snapshot();
        let mut ids: Vec<i32> = snap.brokers.keys().copied().collect();
        ids.sort_unstable();
        let links: Vec<Arc<BrokerLink>> = ids
            .into_iter()
            .filter_map(|id| self.link(id).ok())
            .chain(self.bootstrap.iter().cloned())
            .collect();
        let now = tokio::time::Instant::now();
        let states: Vec<(&str, LinkState)> = links.iter().map(|l| (l.addr(), l.state(now))).collect();
        let start = self.choices.fetch_add(1, Ordering::Relaxed);
        broker_choice::try_order(&states, start)
            .into_iter()
            .map(|i| links[i].clone())
            .collect()
    }

    /// A connection to the controller (for topic administration), or to any broker if the controller is unknown,
    /// cannot connect or is in its reconnect backoff.
    pub(crate) async fn controller_connection(&self) -> Result<Arc<Connection>> {
        let snap = self.snapshot();
        if snap.controller_id >= 0 {
            // A controller in its reconnect backoff is not waited for: another broker forwards the request.
            if let Ok(link) = self.link(snap.controller_id) {
                if let Some(Ok(c)) = link.get_unless_backoff().await {
                    return Ok(c);
                }
            }
        }
        self.any_connection().await
    }

    /// Refreshes metadata for the topics of interest (all topics when `all`), and returns the new snapshot.
    /// Counted in the refresh metrics, in a `metadata_refresh` span (debug level).
    pub(crate) async fn refresh(&self, all: bool) -> Result<Arc<MetadataSnapshot>> {
        let _guard = self.refreshing.lock().await;
        let topics: Option<Vec<String>> = if all {
            None
        } else {
            Some(self.interest.lock().unwrap().iter().cloned().collect())
        };
        let span = tracing::debug_span!(
            "metadata_refresh",
            all,
            topics = topics.as_ref().map_or(0, Vec::len),
            brokers = tracing::field::Empty,
        );
        let traced = span.clone();
        let started = tokio::time::Instant::now();
        let refreshed = async move {
            let snapshot = self.refresh_locked(all, topics).await?;
            traced.record("brokers", snapshot.brokers.len());
            Ok(snapshot)
        }
        .instrument(span)
        .await;
        self.refresh_metrics
            .refreshed(refreshed.is_ok(), started.elapsed());
        refreshed
    }

    /// [`Cluster::refresh`], with the refresh lock held.
    async fn refresh_locked(&self, all: bool, topics: Option<Vec<String>>) -> Result<Arc<MetadataSnapshot>> {
        let req = MetadataRequest {
            topics,
            allow_auto_topic_creation: false,
        };
        let resp = self.any_call(&req).await?;
        let fresh = MetadataSnapshot::from_response(&resp);
        // A partial refresh keeps topics it did not ask about.
        let merged = if all {
            fresh
        } else {
            self.snapshot().merged_with(fresh)
        };
        let merged = Arc::new(merged);
        self.snapshot.store(merged.clone());
        Ok(merged)
    }

    /// Metadata of `topic`, refreshing while the cluster does not know it yet (a topic just created reaches
    /// every broker's metadata a little later), for at most `max.block.ms`. Errors at once for any other
    /// error the cluster reports for the topic (authorization, an invalid name), and with
    /// [`Error::UnknownTopic`] once the wait is over.
    pub(crate) async fn topic(&self, topic: &str) -> Result<Arc<TopicMetadata>> {
        if let Some(t) = self.snapshot().topic(topic) {
            return Ok(t);
        }
        self.add_interest([topic]);
        let mut retry = RetryWindow::new(&self.cfg);
        loop {
            let snap = self.refresh(false).await?;
            if let Some(t) = snap.topic(topic) {
                return Ok(t);
            }
            match snap.topic_errors.get(topic) {
                None | Some(KafkaCode::UnknownTopicOrPartition | KafkaCode::LeaderNotAvailable) => {}
                Some(code) => {
                    return Err(Error::Kafka {
                        code: *code,
                        context: format!("metadata of topic {topic}"),
                    })
                }
            }
            if !retry.wait().await {
                return Err(Error::UnknownTopic(topic.to_owned()));
            }
        }
    }
}

/// Waits between attempts at something the cluster should soon answer (a topic just created, a leader just
/// elected): backoff doubling from `retry.backoff.ms` up to `retry.backoff.max.ms`, for at most
/// `max.block.ms` in all.
pub(crate) struct RetryWindow {
    deadline: tokio::time::Instant,
    backoff: std::time::Duration,
    max: std::time::Duration,
}

impl RetryWindow {
    pub(crate) fn new(cfg: &ClientConfig) -> Self {
        Self {
            deadline: tokio::time::Instant::now() + cfg.max_block,
            backoff: cfg.retry_backoff,
            max: cfg.retry_backoff_cap(),
        }
    }

    /// Sleeps before the next attempt; `false`, without sleeping, once the window is over.
    pub(crate) async fn wait(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        if now >= self.deadline {
            return false;
        }
        tokio::time::sleep(self.backoff.min(self.deadline - now)).await;
        self.backoff = (self.backoff * 2).min(self.max);
        true
    }
}

async fn periodic_refresh(cluster: Weak<Cluster>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(c) = cluster.upgrade() else { return };
        if c.interest.lock().unwrap().is_empty() {
            continue;
        }
        if let Err(e) = c.refresh(false).await {
            tracing::debug!(error = %e, "periodic metadata refresh failed");
        }
    }
}
