//! Delivery results: one shared outcome per record batch, one cheap future per record.
//!
//! A batch succeeds or fails as a whole (Kafka acknowledges or refuses a batch, never part of it), so the sender
//! resolves a batch once, and each record's [`DeliveryFuture`] reads its own result from the batch's outcome: its
//! offset is the batch's base offset plus the record's index. A send therefore costs one reference-count
//! increment instead of a channel allocation per record, and a pending record holds 16 bytes instead of a
//! channel.
//!
//! Wake-ups: a future polled before its batch resolved leaves its waker in the batch's list (replacing its own
//! earlier one when polled again); resolving takes the list and wakes each. The outcome is set before the list is
//! taken and a poller re-checks the outcome under the list's lock before it registers, so no wake-up is lost.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use super::RecordMetadata;
use crate::error::{Error, Result};

/// How a batch ended.
#[derive(Debug)]
pub(super) enum BatchOutcome {
    /// Acknowledged: where the batch's first record landed; `base_offset` is -1 when the broker did not say
    /// (`acks=0`).
    Written {
        topic: Arc<str>,
        partition: i32,
        base_offset: i64,
    },
    /// Failed for good: every record of the batch fails with this error.
    Failed(Error),
}

/// The outcome of one batch, shared by the delivery futures of its records.
#[derive(Debug, Default)]
pub(super) struct BatchDelivery {
    outcome: OnceLock<BatchOutcome>,
    waiters: Mutex<Vec<Waker>>,
}

impl BatchDelivery {
    /// Resolves the batch (the first outcome wins) and wakes every future that waits for it.
    pub(super) fn resolve(&self, outcome: BatchOutcome) {
        if self.outcome.set(outcome).is_err() {
            return; // Resolved before: its waiters were woken then, and later ones saw the outcome.
        }
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap());
        for w in waiters {
            w.wake();
        }
    }

    /// Whether the batch failed (`None` while it is unresolved).
    #[cfg(test)]
    fn failed(&self) -> Option<bool> {
        self.outcome.get().map(|o| matches!(o, BatchOutcome::Failed(_)))
    }

    /// The result of the batch's `index`-th record, once the batch is resolved.
    fn result(&self, index: u32) -> Option<Result<RecordMetadata>> {
        Some(match self.outcome.get()? {
            BatchOutcome::Written {
                topic,
                partition,
                base_offset,
            } => Ok(RecordMetadata {
                topic: topic.clone(),
                partition: *partition,
                offset: nth_offset(*base_offset, index),
            }),
            BatchOutcome::Failed(e) => Err(e.clone()),
        })
    }
}

/// The offset of a batch's `index`-th record; -1 (unknown) when the base is unknown or the sum cannot be an
/// offset.
fn nth_offset(base: i64, index: u32) -> i64 {
    if base < 0 {
        -1
    } else {
        base.checked_add(i64::from(index)).unwrap_or(-1)
    }
}

/// Resolves once the broker acknowledged the record (or delivery failed for good).
///
/// Dropping it does not cancel the record: it is sent all the same, only its result is not read.
#[must_use = "a delivery future tells whether the record was written"]
#[derive(Debug)]
pub struct DeliveryFuture {
    batch: Arc<BatchDelivery>,
    index: u32,
    /// Where this future's waker sits in the batch's list, once it registered one.
    slot: Option<usize>,
}

impl DeliveryFuture {
    pub(super) fn new(batch: Arc<BatchDelivery>, index: u32) -> Self {
        Self {
            batch,
            index,
            slot: None,
        }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(r) = this.batch.result(this.index) {
            return Poll::Ready(r);
        }
        let mut waiters = this.batch.waiters.lock().unwrap();
        // Resolved between the first look and the lock: its wake-ups may already be gone.
        if let Some(r) = this.batch.result(this.index) {
            return Poll::Ready(r);
        }
        match this.slot {
            // The list is only ever emptied by `resolve`, which set the outcome first: the slot is still ours.
            Some(i) if i < waiters.len() => {
                if !waiters[i].will_wake(cx.waker()) {
                    waiters[i] = cx.waker().clone();
                }
            }
            _ => {
                this.slot = Some(waiters.len());
                waiters.push(cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

/// A future whose batch is already resolved.
#[cfg(test)]
pub(super) fn resolved(outcome: BatchOutcome) -> DeliveryFuture {
    let batch = Arc::new(BatchDelivery::default());
    batch.resolve(outcome);
    DeliveryFuture::new(batch, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_once(f: &mut DeliveryFuture, w: &Arc<CountingWaker>) -> Poll<Result<RecordMetadata>> {
        let waker = Waker::from(w.clone());
        Pin::new(f).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn each_record_gets_the_base_offset_plus_its_index() {
        let batch = Arc::new(BatchDelivery::default());
        let mut futures: Vec<_> = (0..3).map(|i| DeliveryFuture::new(batch.clone(), i)).collect();
        let w = Arc::new(CountingWaker(AtomicUsize::new(0)));
        for f in &mut futures {
            assert!(poll_once(f, &w).is_pending());
        }
        batch.resolve(BatchOutcome::Written {
            topic: "t".into(),
            partition: 2,
            base_offset: 40,
        });
        assert_eq!(w.0.load(Ordering::SeqCst), 3, "every waiting future woken once");
        let offsets: Vec<i64> = futures
            .iter_mut()
            .map(|f| match poll_once(f, &w) {
                Poll::Ready(Ok(m)) => {
                    assert_eq!((&*m.topic, m.partition), ("t", 2));
                    m.offset
                }
                other => panic!("expected a delivered record, got {other:?}"),
            })
            .collect();
        assert_eq!(offsets, [40, 41, 42]);
    }

    #[test]
    fn a_future_polled_again_keeps_one_waker_in_the_list() {
        let batch = Arc::new(BatchDelivery::default());
        let mut f = DeliveryFuture::new(batch.clone(), 0);
        let a = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let b = Arc::new(CountingWaker(AtomicUsize::new(0)));
        for _ in 0..5 {
            assert!(poll_once(&mut f, &a).is_pending());
        }
        assert!(poll_once(&mut f, &b).is_pending());
        assert_eq!(batch.waiters.lock().unwrap().len(), 1);
        batch.resolve(BatchOutcome::Failed(Error::Closed));
        assert_eq!(a.0.load(Ordering::SeqCst), 0, "the replaced waker is not woken");
        assert_eq!(b.0.load(Ordering::SeqCst), 1);
        assert!(matches!(poll_once(&mut f, &b), Poll::Ready(Err(Error::Closed))));
        assert_eq!(batch.failed(), Some(true));
    }

    #[test]
    fn unknown_or_impossible_offsets_read_as_minus_one() {
        assert_eq!(nth_offset(-1, 3), -1);
        assert_eq!(nth_offset(i64::MAX, 1), -1);
        assert_eq!(nth_offset(7, 0), 7);
        let mut f = resolved(BatchOutcome::Written {
            topic: "t".into(),
            partition: 0,
            base_offset: -1,
        });
        let w = Arc::new(CountingWaker(AtomicUsize::new(0)));
        assert!(matches!(poll_once(&mut f, &w), Poll::Ready(Ok(m)) if m.offset == -1));
    }

    #[test]
    fn the_first_outcome_wins() {
        let batch = Arc::new(BatchDelivery::default());
        batch.resolve(BatchOutcome::Failed(Error::Closed));
        batch.resolve(BatchOutcome::Written {
            topic: "t".into(),
            partition: 0,
            base_offset: 1,
        });
        assert_eq!(batch.failed(), Some(true));
    }
}
