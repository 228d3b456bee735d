//! The atomics and locks of the consumer's concurrent state, from `loom` under the `loom-model` feature so that the
//! state table and its lists can be model-checked, from `std` otherwise.

#[cfg(feature = "loom-model")]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(feature = "loom-model")]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(feature = "loom-model"))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(not(feature = "loom-model"))]
pub(crate) use std::sync::{Mutex, MutexGuard};

pub(crate) use std::sync::atomic::Ordering;

/// Gives way to another thread (a few instructions' wait on a rare race).
pub(crate) fn spin() {
    #[cfg(feature = "loom-model")]
    loom::thread::yield_now();
    #[cfg(not(feature = "loom-model"))]
    std::thread::yield_now();
}

/// Locks `m`, ignoring poisoning (the data behind these locks stays consistent across a panic).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
