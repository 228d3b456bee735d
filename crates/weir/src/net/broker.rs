//! A lazily (re)connected link to one broker address, with exponential reconnect backoff, and what it can do
//! for a request right now ([`LinkState`], read without locking).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::time::Instant;

use super::{Connection, Transport};
use crate::config::ClientConfig;
use crate::error::Result;

/// What a link can do for a request right now, as the choice of a broker for a request any broker can answer
/// sees it (a snapshot: it may change as soon as it is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkState {
    /// Connected, with this many requests awaiting their answers.
    Ready { in_flight: usize },
    /// Never connected, and nothing known against it: it may connect at once.
    Idle,
    /// Its connection closed, or its last attempt failed, and its backoff is over: it may connect at once.
    Lost,
    /// An attempt to connect is under way (its outcome may take up to the connect and request timeouts).
    Connecting,
    /// Waiting out its reconnect backoff, until this instant.
    Backoff { until: Instant },
}

/// The current connection to a broker, replaced transparently when it dies.
pub(crate) struct BrokerLink {
    addr: String,
    cfg: Arc<ClientConfig>,
    transport: Arc<Transport>,
    current: ArcSwapOption<Connection>,
    /// Held while connecting, so one caller connects and the others take its connection. Nobody holds it while
    /// waiting out a backoff: a caller that will not wait is never queued behind one that does.
    connecting: tokio::sync::Mutex<()>,
    /// An attempt is under way (for [`BrokerLink::state`]).
    attempting: AtomicBool,
    /// Failed attempts since the last success.
    failures: AtomicU32,
    /// When the backoff after the last failed attempt ends, in nanoseconds after `epoch` (0: no failure yet).
    retry_at: AtomicU64,
    epoch: Instant,
}

impl BrokerLink {
    pub(crate) fn new(addr: String, cfg: Arc<ClientConfig>, transport: Arc<Transport>) -> Self {
        Self {
            addr,
            cfg,
            transport,
            current: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
            attempting: AtomicBool::new(false),
            failures: AtomicU32::new(0),
            retry_at: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// A live connection, connecting (after any backoff) if there is none.
    pub(crate) async fn get(&self) -> Result<Arc<Connection>> {
        loop {
            if let Some(got) = self.get_unless_backoff().await {
                return got;
            }
            // Each pass either returns or sleeps until a backoff ends (a later failure sets a later end).
            if let Some(until) = self.backoff_until(Instant::now()) {
                tokio::time::sleep_until(until).await;
            }
        }
    }

    /// Like [`BrokerLink::get`], but `None` at once, without connecting, while the link waits out a reconnect
    /// backoff (also when an attempt this call waited for has just failed).
    pub(crate) async fn get_unless_backoff(&self) -> Option<Result<Arc<Connection>>> {
        if let Some(c) = self.ready() {
            return Some(Ok(c));
        }
        if self.backoff_until(Instant::now()).is_some() {
            return None;
        }
        let _guard = self.connecting.lock().await;
        if let Some(c) = self.ready() {
            return Some(Ok(c));
        }
        if self.backoff_until(Instant::now()).is_some() {
            return None;
        }
        Some(self.connect().await)
    }

    /// The state of this link at `now`, read without locking.
    pub(crate) fn state(&self, now: Instant) -> LinkState {
        let current = self.current.load();
        if let Some(c) = current.as_ref().filter(|c| !c.is_closed()) {
            return LinkState::Ready {
                in_flight: c.in_flight(),
            };
        }
        if self.attempting.load(Ordering::Acquire) {
            return LinkState::Connecting;
        }
        if let Some(until) = self.backoff_until(now) {
            return LinkState::Backoff { until };
        }
        if current.is_some() || self.failures.load(Ordering::Relaxed) > 0 {
            return LinkState::Lost;
        }
        LinkState::Idle
    }

    /// The address this link connects to.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// The current connection, if it is open.
    fn ready(&self) -> Option<Arc<Connection>> {
        self.current.load_full().filter(|c| !c.is_closed())
    }

    /// When the backoff after the last failed attempt ends, if it has not ended at `now`.
    fn backoff_until(&self, now: Instant) -> Option<Instant> {
        match self.retry_at.load(Ordering::Acquire) {
            0 => None,
            nanos => Some(self.epoch + Duration::from_nanos(nanos)).filter(|&until| until > now),
        }
    }

    /// One attempt to connect (the caller holds `connecting`).
    async fn connect(&self) -> Result<Arc<Connection>> {
        let _attempt = Attempt::start(&self.attempting);
        match Connection::connect(&self.addr, &self.cfg, &self.transport).await {
            Ok(c) => {
                let c = Arc::new(c);
                self.failures.store(0, Ordering::Relaxed);
                self.retry_at.store(0, Ordering::Release);
                self.current.store(Some(c.clone()));
                Ok(c)
            }
            Err(e) => {
                tracing::debug!(broker = %self.addr, error = %e, "connect failed");
                let failures = self.failures.fetch_add(1, Ordering::Relaxed).saturating_add(1);
                let until = Instant::now() + self.backoff(failures);
                // At least 1 ns after the epoch: 0 means no failure.
                let nanos = u64::try_from(until.duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
                self.retry_at.store(nanos.max(1), Ordering::Release);
                Err(e)
            }
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let base = self.cfg.reconnect_backoff.as_millis() as u64;
        let ms = base.saturating_mul(1u64 << failures.min(16).saturating_sub(1));
        Duration::from_millis(ms).min(self.cfg.reconnect_backoff_max)
    }
}

/// Marks an attempt to connect as under way until dropped (also when the attempt's future is dropped).
struct Attempt<'a>(&'a AtomicBool);

impl<'a> Attempt<'a> {
    fn start(flag: &'a AtomicBool) -> Self {
        flag.store(true, Ordering::Release);
        Attempt(flag)
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link to `addr` whose backoff and requests outlast any test.
    fn patient_link(addr: String) -> BrokerLink {
        let mut cfg = ClientConfig::new(&addr);
        cfg.reconnect_backoff = Duration::from_secs(600);
        cfg.reconnect_backoff_max = Duration::from_secs(600);
        cfg.request_timeout = Duration::from_secs(600);
        let transport = Transport::new(&cfg).unwrap();
        BrokerLink::new(addr, Arc::new(cfg), transport)
    }

    #[tokio::test]
    async fn a_failed_attempt_starts_a_backoff_that_get_unless_backoff_does_not_wait_for() {
        // A port nothing listens on: connecting is refused.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap().to_string();
        drop(closed);
        let link = patient_link(addr);
        assert_eq!(link.state(Instant::now()), LinkState::Idle);
        assert!(link.get().await.is_err());
        let now = Instant::now();
        match link.state(now) {
            LinkState::Backoff { until } => assert!(until > now + Duration::from_secs(500)),
            other => panic!("expected a backoff, got {other:?}"),
        }
        // Would wait ten minutes if it waited at all.
        assert!(link.get_unless_backoff().await.is_none());
        assert_eq!(link.state(now + Duration::from_secs(601)), LinkState::Lost);
    }

    #[tokio::test]
    async fn an_attempt_under_way_is_connecting_until_it_ends_even_if_abandoned() {
        // A listener that accepts and never answers: the attempt waits for ApiVersions' answer.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let link = Arc::new(patient_link(listener.local_addr().unwrap().to_string()));
        let attempt = tokio::spawn({
            let link = link.clone();
            async move { link.get().await.map(|_| ()) }
        });
        let (_held, _) = listener.accept().await.unwrap();
        assert_eq!(link.state(Instant::now()), LinkState::Connecting);
        attempt.abort();
        assert!(attempt.await.unwrap_err().is_cancelled());
        assert_eq!(link.state(Instant::now()), LinkState::Idle);
    }
}
