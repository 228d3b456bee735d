//! The peak of a consumer's buffered bytes while a test runs, sampled on a thread of its own.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use weir::consumer::Consumer;

/// Samples `Consumer::buffered_bytes` every 200 µs until [`BufferedPeak::stop`].
pub struct BufferedPeak {
    done: Arc<AtomicBool>,
    peak: Arc<AtomicUsize>,
    thread: JoinHandle<()>,
}

impl BufferedPeak {
    /// Starts sampling `consumer`.
    pub fn start(consumer: Arc<Consumer>) -> BufferedPeak {
        let (done, peak) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
        let thread = {
            let (done, peak) = (done.clone(), peak.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(consumer.buffered_bytes(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        };
        BufferedPeak { done, peak, thread }
    }

    /// Stops sampling; returns the peak.
    pub fn stop(self) -> usize {
        self.done.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        self.peak.load(Ordering::Relaxed)
    }
}
