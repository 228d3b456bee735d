//! A lazily (re)connected link to one broker address, with exponential reconnect backoff.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::time::Instant;

use super::{Connection, Transport};
use crate::config::ClientConfig;
use crate::error::Result;

/// The current connection to a broker, replaced transparently when it dies.
pub(crate) struct BrokerLink {
    addr: String,
    cfg: Arc<ClientConfig>,
    transport: Arc<Transport>,
    current: ArcSwapOption<Connection>,
    connecting: tokio::sync::Mutex<()>,
    failures: AtomicU32,
    last_failure: Mutex<Option<Instant>>,
}

impl BrokerLink {
    pub(crate) fn new(addr: String, cfg: Arc<ClientConfig>, transport: Arc<Transport>) -> Self {
        Self {
            addr,
            cfg,
            transport,
            current: ArcSwapOption::empty(),
            connecting: tokio::sync::Mutex::new(()),
            failures: AtomicU32::new(0),
            last_failure: Mutex::new(None),
        }
    }

    /// A live connection, connecting (after any backoff) if there is none.
    pub(crate) async fn get(&self) -> Result<Arc<Connection>> {
        if let Some(c) = self.current.load_full().filter(|c| !c.is_closed()) {
            return Ok(c);
        }
        let _guard = self.connecting.lock().await;
        if let Some(c) = self.current.load_full().filter(|c| !c.is_closed()) {
            return Ok(c);
        }
        let failures = self.failures.load(Ordering::Relaxed);
        if failures > 0 {
            let last = *self.last_failure.lock().unwrap();
            if let Some(last) = last {
                tokio::time::sleep_until(last + self.backoff(failures)).await;
            }
        }
        match Connection::connect(&self.addr, &self.cfg, &self.transport).await {
            Ok(c) => {
                let c = Arc::new(c);
                self.failures.store(0, Ordering::Relaxed);
                self.current.store(Some(c.clone()));
                Ok(c)
            }
            Err(e) => {
                tracing::debug!(broker = %self.addr, error = %e, "connect failed");
                self.failures.fetch_add(1, Ordering::Relaxed);
                *self.last_failure.lock().unwrap() = Some(Instant::now());
                Err(e)
            }
        }
    }

    /// The address this link connects to.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    fn backoff(&self, failures: u32) -> Duration {
        let base = self.cfg.reconnect_backoff.as_millis() as u64;
        let ms = base.saturating_mul(1u64 << failures.min(16).saturating_sub(1));
        Duration::from_millis(ms).min(self.cfg.reconnect_backoff_max)
    }
}
