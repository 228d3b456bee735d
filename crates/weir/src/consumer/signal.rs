//! A wake-up for one task that any thread can send without a lock (std atomics: it is not part of the loom
//! model, which drives the state table with its own wakers).

use std::future::poll_fn;
use std::task::Poll;

use futures::task::AtomicWaker;

use super::state_table::ReadyWaker;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A flag plus the waiting task's waker. [`Signal::wake`] sets the flag and wakes the task only if the flag
/// was clear; [`Signal::wait`] returns once the flag is set, clearing it. Wakes sent while the task is busy
/// coalesce into one. Only one task may wait at a time.
#[derive(Default)]
pub(crate) struct Signal {
    set: AtomicBool,
    waker: AtomicWaker,
    /// Task wake-ups sent (wakes that found the flag clear), for tests and statistics.
    wakeups: AtomicU64,
}

impl Signal {
    /// Sets the flag; wakes the waiting task if it was clear. Returns whether it woke (or will wake) the task.
    pub(crate) fn wake(&self) -> bool {
        // A read-modify-write, not a load first: the waiter's `swap(false)` either reads this write (and its
        // later reads see what the caller published before calling `wake`), or comes after it.
        if self.set.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.wakeups.fetch_add(1, Ordering::Relaxed);
        self.waker.wake();
        true
    }

    /// Waits until the flag is set, and clears it.
    pub(crate) async fn wait(&self) {
        poll_fn(|cx| {
            if self.set.swap(false, Ordering::AcqRel) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // A wake between the first check and the registration found no waker: check again.
            if self.set.swap(false, Ordering::AcqRel) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Wake-ups sent so far.
    pub(crate) fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Relaxed)
    }
}

impl ReadyWaker for Signal {
    fn wake(&self) {
        Signal::wake(self);
    }
}

#[cfg(all(test, not(feature = "loom-model")))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_coalesce_and_are_not_lost() {
        let s = Arc::new(Signal::default());
        assert!(s.wake());
        assert!(!s.wake(), "already set: no second wake-up");
        s.wait().await; // set before waiting: returns at once
        assert_eq!(s.wakeups(), 1);
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(s.wake());
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("woken")
            .unwrap();
        assert_eq!(s.wakeups(), 2);
    }
}
