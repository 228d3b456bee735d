//! Ctrl-C (SIGINT) and SIGTERM end a load test early: the run stops where it is and reports what it measured.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};

use crate::util::CliError;

/// Whether SIGINT or SIGTERM arrived since [`Interrupt::install`].
#[derive(Clone)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Installs the handlers (from then on the signals no longer kill the process) and a task that notes them.
    pub fn install() -> Result<Interrupt, CliError> {
        let mut sigint = signal(SignalKind::interrupt())
            .map_err(|e| CliError::Failed(format!("cannot install the SIGINT handler: {e}")))?;
        let mut sigterm = signal(SignalKind::terminate())
            .map_err(|e| CliError::Failed(format!("cannot install the SIGTERM handler: {e}")))?;
        let flag = Arc::new(AtomicBool::new(false));
        let noted = flag.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = sigint.recv() => {}
                _ = sigterm.recv() => {}
            }
            noted.store(true, Ordering::Relaxed);
        });
        Ok(Interrupt(flag))
    }

    /// Whether the run should stop now.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
