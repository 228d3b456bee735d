//! A global allocator for the bad-input tests: it remembers the largest single allocation and refuses absurd
//! ones (over [`REFUSE_ABOVE`], 1 GiB), so a decoder that trusts a size or count from the wire fails
//! deterministically (a refused allocation aborts the test process) instead of depending on the machine's
//! overcommit policy, and a test can assert that nothing near what the bytes claim was ever asked for.
//!
//! The attribute must stand in the test binary itself, so each binary that includes this module declares
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: capped_alloc::Capped = capped_alloc::Capped;
//! ```

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The allocator: [`System`], recording every request's size and refusing those over [`REFUSE_ABOVE`].
pub struct Capped;

/// The largest size asked of [`Capped`] so far in this process (allocations and reallocations alike).
static LARGEST_ALLOC: AtomicUsize = AtomicUsize::new(0);

/// Requests above this size (1 GiB) are refused: no test here needs anything near it.
pub const REFUSE_ABOVE: usize = 1 << 30;

impl Capped {
    /// Records `size` and says whether it may be served.
    fn admit(size: usize) -> bool {
        LARGEST_ALLOC.fetch_max(size, Ordering::Relaxed);
        size <= REFUSE_ABOVE
    }
}

// SAFETY: every method either hands the caller's arguments unchanged to `System` (so `System`'s guarantees are
// the caller's) or returns null, which `GlobalAlloc` allows to signal a failed `alloc`, `alloc_zeroed` or
// `realloc` (a failed `realloc` leaves the old block untouched, as here). Nothing is allocated by the recording
// itself.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Self::admit(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's `layout` (non-zero size, as `GlobalAlloc::alloc` requires), passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !Self::admit(layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout`, so from `System` with `layout` (every block this
        // allocator hands out is `System`'s).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !Self::admit(new_size) {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` and `layout` are a block of `System`'s (as in `dealloc`); `new_size` is the caller's,
        // non-zero and not overflowing `isize` once rounded to `layout.align()`, as `GlobalAlloc::realloc`
        // requires.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The largest single allocation (or reallocation) asked for so far in this process, in bytes.
pub fn largest_allocation() -> usize {
    LARGEST_ALLOC.load(Ordering::Relaxed)
}

/// Asserts that no single allocation so far in this process asked for `limit` bytes or more: `limit` is far
/// above what the tests' small answers need and far below what their sizes and counts claim, so an allocation
/// over it means `what` trusted a size or count from the wire.
#[track_caller]
pub fn assert_largest_allocation_below(limit: usize, what: &str) {
    let largest = largest_allocation();
    assert!(
        largest < limit,
        "{what}: largest allocation {largest} bytes (limit {limit}): a size or count from the wire was trusted"
    );
}
