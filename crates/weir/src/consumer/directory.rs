//! The partition directory: from a topic name and a partition number to the partition's cell, with lookups that
//! take no lock and write nothing shared (plain acquire loads), so that a by-name pause or resume costs a hash and
//! a few loads. An `ArcSwap` of a map, as before, cost two locked instructions per lookup to load and release
//! its guard: more than the pause itself.
//!
//! The directory only grows (cells are never removed, only unassigned), and nothing a reader can reach is
//! freed before the directory itself: that is what makes lock-free reads simple. Writers go one at a time,
//! under a mutex.
//!
//! - **Topics**: a table of `AtomicPtr` slots, open addressing with linear probing, at most half full. A new
//!   topic is stored into an empty slot in place; when the table would pass half full it is copied into one
//!   twice as large, which is then published; the old one is retired.
//! - **Partitions**: each topic has an array of `AtomicPtr` slots indexed by partition number — the flat
//!   array a by-name call indexes. A partition inside the array is stored in place; one beyond its end copies
//!   the array into one at least twice as long, which is then published; the old one is retired.
//!
//! Retired tables and arrays are kept, for readers still in them, until the directory drops; doubling bounds
//! them by the size of the live ones. Every item is kept in an `Arc` the directory owns.
//!
//! # Invariants
//!
//! 1. **Nothing reachable is freed.** Every pointer a reader can load points into an allocation listed in
//!    [`Owned`], which frees nothing before the directory drops (and dropping needs `&mut`).
//! 2. **Published means initialised.** Writers fill a table, an array or an item completely, then publish
//!    its pointer with a `Release` store; readers load with `Acquire`.
//! 3. **Probing ends.** A topic table is never more than half full and slots are never emptied, so a probe
//!    reaches an empty slot or the topic.

use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::marker::PhantomData;
use std::ptr;
use std::sync::Arc;

use super::sync::{lock, AtomicPtr, Mutex, Ordering};

/// The Fx hash (as used by rustc): one rotate/xor/multiply per 8 bytes. Topic names come from the application
/// and the cluster, so HashDoS resistance is not needed here, while SipHash of the topic name dominated by-name
/// pause/resume in the calibration runs.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.add(u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// Builds [`FxHasher`]s, for the `HashMap`s of the consumer's tables.
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

#[inline]
fn hash(topic: &str) -> u64 {
    FxBuild::default().hash_one(topic)
}

/// One topic: its name and its partition array.
pub(crate) struct TopicEntry<T> {
    name: Arc<str>,
    hash: u64,
    parts: AtomicPtr<Slots<T>>,
}

/// An array of `AtomicPtr` slots, null where empty.
struct Slots<T> {
    slots: Box<[AtomicPtr<T>]>,
    /// Hands out `&T` to any thread: `Send` and `Sync` only when `Arc<T>` is.
    _items: PhantomData<Arc<T>>,
}

impl<T> Slots<T> {
    fn new(len: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: (0..len).map(|_| AtomicPtr::new(ptr::null_mut())).collect(),
            _items: PhantomData,
        })
    }

    /// The item at `i`, if any (invariants 1 and 2).
    #[inline]
    fn get(&self, i: usize) -> Option<&T> {
        let p = self.slots.get(i)?.load(Ordering::Acquire);
        // SAFETY: non-null slots point to items owned by the directory, fully built before being published
        // (invariants 1 and 2); they live as long as the directory, which outlives `&self`.
        (!p.is_null()).then(|| unsafe { &*p })
    }
}

/// What the directory owns: everything a reader may reach (invariant 1), freed on drop. In `Arc`s, whose
/// contents stay put (and keep the pointers taken from them valid) however the vectors move them.
struct Owned<T> {
    topic_tables: Vec<Arc<Slots<TopicEntry<T>>>>,
    topics: Vec<Arc<TopicEntry<T>>>,
    part_arrays: Vec<Arc<Slots<T>>>,
    items: Vec<Arc<T>>,
}

/// See the module docs.
pub(crate) struct Directory<T> {
    /// The current topic table (its length a power of two).
    topics: AtomicPtr<Slots<TopicEntry<T>>>,
    owned: Mutex<Owned<T>>,
}

impl<T> Default for Directory<T> {
    fn default() -> Self {
        let table = Slots::new(8);
        let current = Arc::as_ptr(&table).cast_mut();
        Self {
            topics: AtomicPtr::new(current),
            owned: Mutex::new(Owned {
                topic_tables: vec![table],
                topics: Vec::new(),
                part_arrays: Vec::new(),
                items: Vec::new(),
            }),
        }
    }
}

/// One topic of a [`Directory`], for batch calls: one hash per topic, then an index per partition.
pub(crate) struct Topic<'a, T> {
    parts: &'a Slots<T>,
}

impl<'a, T> Topic<'a, T> {
    /// The item of `partition`, if the directory has one.
    #[inline]
    pub(crate) fn get(&self, partition: i32) -> Option<&'a T> {
        self.parts.get(usize::try_from(partition).ok()?)
    }

    /// Every item of the topic, by partition number.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &'a T> + 'a {
        let parts = self.parts;
        (0..parts.slots.len()).filter_map(move |i| parts.get(i))
    }
}

impl<T> Directory<T> {
    #[inline]
    fn table(&self) -> &Slots<TopicEntry<T>> {
        // SAFETY: the current table is owned by the directory and fully built before it was published
        // (invariants 1 and 2).
        unsafe { &*self.topics.load(Ordering::Acquire) }
    }

    /// The topic's entry: a hash, then probing from its slot (invariant 3).
    #[inline]
    fn entry(&self, topic: &str) -> Option<&TopicEntry<T>> {
        let h = hash(topic);
        let table = self.table();
        let mask = table.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let e = table.get(i)?;
            if e.hash == h && *e.name == *topic {
                return Some(e);
            }
            i = (i + 1) & mask;
        }
    }

    /// A topic, for several lookups in it.
    #[inline]
    pub(crate) fn topic(&self, topic: &str) -> Option<Topic<'_, T>> {
        let e = self.entry(topic)?;
        // SAFETY: a topic's partition array is owned by the directory and fully built before it was
        // published (invariants 1 and 2).
        let parts = unsafe { &*e.parts.load(Ordering::Acquire) };
        Some(Topic { parts })
    }

    /// The item of `topic`-`partition`, if any.
    #[inline]
    pub(crate) fn get(&self, topic: &str, partition: i32) -> Option<&T> {
        self.topic(topic)?.get(partition)
    }

    /// Calls `f` for every item (lock-free: a walk of the current tables).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&T)) {
        let table = self.table();
        for i in 0..table.slots.len() {
            if let Some(e) = table.get(i) {
                // SAFETY: as in `topic`.
                let parts = unsafe { &*e.parts.load(Ordering::Acquire) };
                for j in 0..parts.slots.len() {
                    if let Some(item) = parts.get(j) {
                        f(item);
                    }
                }
            }
        }
    }

    /// Number of topics.
    pub(crate) fn topic_count(&self) -> usize {
        lock(&self.owned).topics.len()
    }

    /// The item of `topic`-`partition`, made by `make(name)` (with the directory's copy of the topic name) if
    /// there is none yet. `None` for a negative partition. One writer at a time; readers are never blocked.
    pub(crate) fn get_or_insert(
        &self,
        topic: &Arc<str>,
        partition: i32,
        make: impl FnOnce(Arc<str>) -> Arc<T>,
    ) -> Option<&T> {
        let index = usize::try_from(partition).ok()?;
        let mut owned = lock(&self.owned);
        let entry = match self.entry(topic) {
            Some(e) => e,
            None => self.insert_topic(&mut owned, topic),
        };
        // SAFETY: as in `topic`.
        let parts = unsafe { &*entry.parts.load(Ordering::Acquire) };
        if let Some(item) = parts.get(index) {
            return Some(item);
        }
        let parts = if index < parts.slots.len() {
            parts
        } else {
            // Grow: copy into an array at least twice as long, publish it, keep the old one (invariant 1).
            let len = (index + 1).max(parts.slots.len() * 2);
            let grown = Slots::new(len);
            for (to, from) in grown.slots.iter().zip(parts.slots.iter()) {
                to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            let p = Arc::as_ptr(&grown).cast_mut();
            owned.part_arrays.push(grown);
            entry.parts.store(p, Ordering::Release);
            // SAFETY: just published, owned by the directory.
            unsafe { &*p }
        };
        let item = make(Arc::clone(&entry.name));
        let p = Arc::as_ptr(&item).cast_mut();
        owned.items.push(item);
        parts.slots[index].store(p, Ordering::Release);
        // SAFETY: just published, owned by the directory.
        Some(unsafe { &*p })
    }

    /// Adds a topic (the caller holds the writer lock and checked it is absent).
    fn insert_topic(&self, owned: &mut Owned<T>, topic: &Arc<str>) -> &TopicEntry<T> {
        let mut table = self.table();
        if (owned.topics.len() + 1) * 2 > table.slots.len() {
            // Keep the table at most half full (invariant 3): copy into one twice as large, publish it.
            let grown = Slots::new(table.slots.len() * 2);
            for e in &owned.topics {
                place(&grown, e);
            }
            let p = Arc::as_ptr(&grown).cast_mut();
            owned.topic_tables.push(grown);
            self.topics.store(p, Ordering::Release);
            // SAFETY: just published, owned by the directory.
            table = unsafe { &*p };
        }
        let parts = Slots::new(0);
        let entry = Arc::new(TopicEntry {
            name: Arc::clone(topic),
            hash: hash(topic),
            parts: AtomicPtr::new(Arc::as_ptr(&parts).cast_mut()),
        });
        owned.part_arrays.push(parts);
        place(table, &entry);
        let e = Arc::as_ptr(&entry);
        owned.topics.push(entry);
        // SAFETY: owned by the directory from now on (invariant 1).
        unsafe { &*e }
    }
}

/// Publishes `entry` in the first empty slot of its probe sequence in `table`.
fn place<T>(table: &Slots<TopicEntry<T>>, entry: &TopicEntry<T>) {
    let mask = table.slots.len() - 1;
    let mut i = entry.hash as usize & mask;
    while !table.slots[i].load(Ordering::Relaxed).is_null() {
        i = (i + 1) & mask;
    }
    table.slots[i].store(ptr::from_ref(entry).cast_mut(), Ordering::Release);
}

#[cfg(all(test, not(feature = "loom-model")))]
mod tests {
    use super::*;

    fn name(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[test]
    fn fx_hasher_distinguishes_lengths() {
        let b = FxBuild::default();
        assert_ne!(b.hash_one("a"), b.hash_one("a\0"));
        assert_ne!(b.hash_one("topic-1"), b.hash_one("topic-2"));
    }

    #[test]
    fn grows_and_finds_everything() {
        let d: Directory<(String, i32)> = Directory::default();
        assert!(d.get("a", 0).is_none());
        for t in 0..100 {
            let topic = name(&format!("topic-{t}"));
            // Out of order, with gaps, growing each partition array several times.
            for p in [3, 0, 17, 1, 64] {
                let got = d
                    .get_or_insert(&topic, p, |n| Arc::new((n.to_string(), p)))
                    .unwrap();
                assert_eq!(*got, (topic.to_string(), p));
            }
        }
        assert_eq!(d.topic_count(), 100);
        for t in 0..100 {
            let topic = format!("topic-{t}");
            for p in [0, 1, 3, 17, 64] {
                assert_eq!(d.get(&topic, p).unwrap().1, p);
            }
            for p in [2, 18, 65, 1000, -1] {
                assert!(d.get(&topic, p).is_none());
            }
            let all: Vec<i32> = d.topic(&topic).unwrap().iter().map(|x| x.1).collect();
            assert_eq!(all, [0, 1, 3, 17, 64]);
        }
        assert!(d.get("topic-100", 0).is_none());
        assert!(d.get_or_insert(&name("x"), -1, |_| unreachable!()).is_none());
        let mut n = 0;
        d.for_each(|_| n += 1);
        assert_eq!(n, 500);
    }

    #[test]
    fn an_item_is_made_once_and_keeps_its_address() {
        let d: Directory<i32> = Directory::default();
        let first = d.get_or_insert(&name("t"), 2, |_| Arc::new(7)).unwrap() as *const i32;
        let again = d.get_or_insert(&name("t"), 2, |_| panic!("made twice")).unwrap();
        assert_eq!(first, again as *const i32);
        d.get_or_insert(&name("t"), 500, |_| Arc::new(8)); // grows the array
        assert_eq!(first, d.get("t", 2).unwrap() as *const i32);
        // Items share the directory's copy of the name.
        let d2: Directory<Arc<str>> = Directory::default();
        let a = d2.get_or_insert(&name("t"), 0, Arc::new).unwrap().clone();
        let b = d2.get_or_insert(&name("t"), 1, Arc::new).unwrap();
        assert!(Arc::ptr_eq(&a, b));
    }

    #[test]
    fn readers_race_a_growing_writer() {
        let d: Arc<Directory<(usize, i32)>> = Arc::new(Directory::default());
        std::thread::scope(|s| {
            let w = d.clone();
            s.spawn(move || {
                for t in 0..200usize {
                    let topic = name(&format!("t{t}"));
                    for p in 0..20 {
                        w.get_or_insert(&topic, p, |_| Arc::new((t, p)));
                    }
                }
            });
            for _ in 0..2 {
                let r = d.clone();
                s.spawn(move || {
                    for round in 0..200i32 {
                        for t in 0..200usize {
                            if let Some(x) = r.get(&format!("t{t}"), round % 20) {
                                assert_eq!(*x, (t, round % 20));
                            }
                        }
                    }
                });
            }
        });
        assert_eq!(d.get("t199", 19), Some(&(199, 19)));
    }
}
