//! A lock-free list of `Arc`s that any thread pushes to and a consumer takes all at once: the consumer's ready
//! queues (partitions that became fetchable, one list per fetcher) and its delivery queue (partitions with
//! records to deliver).
//!
//! The list is *intrusive*: each item carries its own link (an `AtomicPtr` field named by a [`Link`]), so a
//! push allocates nothing and takes no lock. It is a Treiber stack whose only pop is "take everything" (one
//! `swap` of the head), which rules out the ABA problem of single pops; [`Taken`] hands the items back in
//! push order.
//!
//! # Invariants
//!
//! 1. **An item is in a list at most once.** A link holds [`UNLINKED`] while its item is in no list; a push
//!    first claims the link with a CAS from `UNLINKED`, and pushing an item that is already linked does
//!    nothing. A take returns the link to `UNLINKED` (after reading it) before it hands the item out. Hence a
//!    chain never contains a cycle or a shared tail, whatever callers do.
//! 2. **The list owns one strong count per item in it**, moved in by [`IntrusiveList::push`] (`Arc::into_raw`)
//!    and moved out by [`Taken`] (`Arc::from_raw`) exactly once, because a chain is reachable from exactly one
//!    owner: the head until a take swaps it out, then that take's [`Taken`].
//! 3. **A take sees every item pushed before it.** Pushes publish with a `Release` CAS on the head; the take's
//!    `swap` is `Acquire`, and later pushes' CASes are read-modify-writes continuing the release sequence, so
//!    the taker sees every link it follows.

use std::marker::PhantomData;
use std::ptr;
use std::sync::Arc;

use super::sync::{AtomicPtr, Ordering};

/// Names the link field that a list threads through `T` (a type can be in several lists at once, one per link).
///
/// # Safety
///
/// `next` must return the same field of `item` every time, that field must start as [`unlinked`] (see
/// [`new_link`]), and nothing but this `Link`'s lists may write it: the list's invariants 1 and 2 rest on it.
pub(crate) unsafe trait Link<T> {
    /// The link field of `item`.
    fn next(item: &T) -> &AtomicPtr<T>;
}

/// The value of a link whose item is in no list (a dangling, never-allocated address; `null` ends a chain).
pub(crate) fn unlinked<T>() -> *mut T {
    ptr::dangling_mut()
}

/// A link field's initial value, for `T`'s constructor.
pub(crate) fn new_link<T>() -> AtomicPtr<T> {
    AtomicPtr::new(unlinked())
}

/// Marks ownership of `Arc<T>`s (so a list is `Send`/`Sync` exactly when `Arc<T>` is) threaded through `L`.
type Owns<T, L> = PhantomData<(Arc<T>, fn() -> L)>;

/// See the module docs.
pub(crate) struct IntrusiveList<T, L: Link<T>> {
    head: AtomicPtr<T>,
    _items: Owns<T, L>,
}

impl<T, L: Link<T>> Default for IntrusiveList<T, L> {
    fn default() -> Self {
        Self {
            head: AtomicPtr::new(ptr::null_mut()),
            _items: PhantomData,
        }
    }
}

impl<T, L: Link<T>> IntrusiveList<T, L> {
    /// Pushes `item` unless it is already in a list of this link (then nothing happens). Returns whether the
    /// list was empty before: the caller wakes the consumer on that transition only.
    pub(crate) fn push(&self, item: Arc<T>) -> bool {
        // Claim the link (invariant 1). Acquire pairs with the Release that unlinked it in a take, so the
        // claim happens after that take stopped reading it.
        if L::next(&item)
            .compare_exchange(unlinked(), ptr::null_mut(), Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        // Hand the count over before the node becomes visible: a take may release it as soon as the head CAS
        // below succeeds (invariant 2).
        let node = Arc::into_raw(item).cast_mut();
        // SAFETY: `node` holds the count just moved in, which nothing can release before the head CAS publishes
        // it; until then only this thread can reach the node.
        let link = L::next(unsafe { &*node });
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // We own the link now: no one else writes it until a take unlinks it.
            link.store(head, Ordering::Relaxed);
            // Release: a take that sees `node` sees the link just stored (invariant 3).
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return head.is_null(),
                Err(actual) => head = actual,
            }
        }
    }

    /// Takes every item pushed so far, in push order.
    pub(crate) fn take_all(&self) -> Taken<T, L> {
        // Acquire: see every link of the chain (invariant 3).
        let mut chain = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        // The chain runs newest first; reverse it in place (it is ours alone now) to hand out the oldest first.
        let mut fifo = ptr::null_mut();
        while !chain.is_null() {
            // SAFETY: `chain` came from `Arc::into_raw` in `push` and its count is owned by this chain, which
            // the swap made ours alone (invariant 2): the item is alive, and no one else writes its link.
            let link = L::next(unsafe { &*chain });
            let next = link.load(Ordering::Relaxed);
            link.store(fifo, Ordering::Relaxed);
            fifo = chain;
            chain = next;
        }
        Taken {
            next: fifo,
            _items: PhantomData,
        }
    }

    /// Whether the list holds no item (a snapshot).
    pub(crate) fn is_empty(&self) -> bool {
        self.head.load(Ordering::Acquire).is_null()
    }
}

impl<T, L: Link<T>> Drop for IntrusiveList<T, L> {
    fn drop(&mut self) {
        drop(self.take_all());
    }
}

/// The items of one [`IntrusiveList::take_all`], oldest first. Items not iterated are released on drop.
pub(crate) struct Taken<T, L: Link<T>> {
    next: *mut T,
    _items: Owns<T, L>,
}

// SAFETY: a `Taken` owns the `Arc<T>`s of its chain exclusively (invariant 2): sending it is sending them.
unsafe impl<T: Send + Sync, L: Link<T>> Send for Taken<T, L> {}

impl<T, L: Link<T>> Iterator for Taken<T, L> {
    type Item = Arc<T>;

    fn next(&mut self) -> Option<Arc<T>> {
        if self.next.is_null() {
            return None;
        }
        // SAFETY: every pointer of a taken chain came from `Arc::into_raw` in `push`, and the chain is owned by
        // this `Taken` alone (invariant 2): each count is taken back exactly once, here.
        let item = unsafe { Arc::from_raw(self.next) };
        let link = L::next(&item);
        self.next = link.load(Ordering::Relaxed);
        // Release: a later push's Acquire claim sees this item out of the chain (invariant 1).
        link.store(unlinked(), Ordering::Release);
        Some(item)
    }
}

impl<T, L: Link<T>> Drop for Taken<T, L> {
    fn drop(&mut self) {
        self.for_each(drop);
    }
}

#[cfg(all(test, not(feature = "loom-model")))]
mod tests {
    use super::*;

    struct Item {
        id: u32,
        link: AtomicPtr<Item>,
    }
    struct ItemLink;
    // SAFETY: always the `link` field, which starts unlinked and only lists write.
    unsafe impl Link<Item> for ItemLink {
        fn next(item: &Item) -> &AtomicPtr<Item> {
            &item.link
        }
    }
    fn item(id: u32) -> Arc<Item> {
        Arc::new(Item { id, link: new_link() })
    }
    type List = IntrusiveList<Item, ItemLink>;

    fn ids(list: &List) -> Vec<u32> {
        list.take_all().map(|i| i.id).collect()
    }

    #[test]
    fn fifo_and_empty_transitions() {
        let list = List::default();
        assert!(list.is_empty() && ids(&list).is_empty());
        let items: Vec<_> = (0..4).map(item).collect();
        assert!(list.push(items[0].clone()), "empty -> non-empty");
        assert!(!list.push(items[1].clone()));
        assert!(!list.push(items[2].clone()));
        assert!(!list.is_empty());
        assert_eq!(ids(&list), [0, 1, 2]);
        assert!(list.is_empty());
        assert!(list.push(items[3].clone()), "empty again after a take");
        assert_eq!(ids(&list), [3]);
    }

    #[test]
    fn an_item_is_in_the_list_once() {
        let list = List::default();
        let a = item(1);
        assert!(list.push(a.clone()));
        assert!(!list.push(a.clone()), "already linked: no-op");
        assert_eq!(Arc::strong_count(&a), 2, "the list holds one count");
        let taken: Vec<_> = list.take_all().collect();
        assert_eq!(taken.len(), 1);
        // Taken out: it can be pushed again, even while the taker still holds it.
        assert!(list.push(a.clone()));
        drop(taken);
        assert_eq!(ids(&list), [1]);
        assert_eq!(Arc::strong_count(&a), 1);
    }

    #[test]
    fn drops_release_counts() {
        let a = item(1);
        let b = item(2);
        {
            let list = List::default();
            list.push(a.clone());
            list.push(b.clone());
            let mut t = list.take_all();
            assert_eq!(t.next().unwrap().id, 1);
            list.push(a.clone());
            // `t` still holds b; `list` holds a.
        }
        assert_eq!(Arc::strong_count(&a), 1);
        assert_eq!(Arc::strong_count(&b), 1);
        assert!(List::default().push(b.clone()), "b is unlinked after the drop");
    }

    #[test]
    fn many_threads_push_one_takes() {
        const THREADS: u32 = 4;
        const PER: u32 = 2_000;
        let list = Arc::new(List::default());
        let items: Arc<Vec<_>> = Arc::new((0..THREADS * PER).map(item).collect());
        let seen = std::thread::scope(|s| {
            for t in 0..THREADS {
                let (list, items) = (list.clone(), items.clone());
                s.spawn(move || {
                    for i in t * PER..(t + 1) * PER {
                        list.push(items[i as usize].clone());
                        list.push(items[i as usize].clone()); // no-op, or a re-push after a take
                    }
                });
            }
            let mut seen = vec![0u32; (THREADS * PER) as usize];
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while seen.contains(&0) && std::time::Instant::now() < deadline {
                for i in list.take_all() {
                    seen[i.id as usize] += 1;
                }
            }
            seen
        });
        let rest: Vec<u32> = list.take_all().map(|i| i.id).collect();
        assert!(
            seen.iter().all(|&n| (1..=2).contains(&n)),
            "every item taken, at most twice"
        );
        assert!(rest.len() <= items.len());
        assert!(items.iter().all(|i| Arc::strong_count(i) == 1), "no count leaked");
    }
}
