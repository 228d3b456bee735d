//! Batches that fail their CRC-32C check are fetched again before they are reported as corrupt.
//!
//! A CRC mismatch is the one finding of the decoder that may be damage in transit (a bit flipped on a link, a
//! broken proxy) rather than data stored that way: another copy from the broker may well be intact. So when a
//! fetch finds a batch failing its CRC, the records before it are delivered and the partition is fetched again
//! from there, after the retry backoff (`retry.backoff.ms`), through the normal fetch path; only the
//! [`CRC_FETCH_ATTEMPTS`]th fetch in a row to find it damaged reports it ([`crate::Error::CorruptRecords`]) and
//! stops the partition until a seek, as any corrupt data does. Other corrupt data (an unknown codec, a malformed
//! record, in a batch whose CRC holds or was not checked) is reported at once: those bytes are what the broker
//! stores, and another copy would be the same.
//!
//! The count ([`CrcStreak`]) is of fetches that found a damaged batch at one offset of the partition, in one
//! epoch. A fetch that brings the batch intact moves the partition past that offset, and a seek or a new
//! assignment moves it to a new epoch: either way the next damaged batch starts a new count.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Fetches in a row that may find a batch failing its CRC at one offset before it is reported: the first
/// and two more.
///
/// Damage in transit is rare and independent from one copy to the next, so a second copy is almost always
/// intact; the third covers a short burst (a link or proxy misbehaving for a moment). Damage that persists (on
/// the broker's disk, or a proxy that mangles every copy) still reaches the application after three transfers
/// of the batch and two backoffs (200 ms at the default `retry.backoff.ms`): more attempts would only delay
/// reporting it.
pub(crate) const CRC_FETCH_ATTEMPTS: u32 = 3;

/// Fetches that found a batch failing its CRC at `offset` of a partition in its `epoch` (`fetches` zero: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CrcStreak {
    /// The partition's epoch during those fetches.
    pub(crate) epoch: u32,
    /// Base offset of the damaged batch.
    pub(crate) offset: i64,
    /// How many fetches in a row found it damaged.
    pub(crate) fetches: u32,
}

/// What to do about a batch that failed its CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CrcVerdict {
    /// Fetch it again after the retry backoff; the streak, which counts this fetch, is kept for the next one.
    Refetch(CrcStreak),
    /// Report it as corrupt: this fetch was the last attempt.
    Report,
}

impl CrcStreak {
    /// A fetch in `epoch` found the batch at `offset` failing its CRC: one more of the same streak, or the
    /// first of a new one.
    pub(crate) fn failed(self, epoch: u32, offset: i64) -> CrcVerdict {
        let same = self.fetches > 0 && self.epoch == epoch && self.offset == offset;
        let fetches = if same { self.fetches.saturating_add(1) } else { 1 };
        if fetches < CRC_FETCH_ATTEMPTS {
            CrcVerdict::Refetch(CrcStreak {
                epoch,
                offset,
                fetches,
            })
        } else {
            CrcVerdict::Report
        }
    }
}

/// A partition's [`CrcStreak`], kept in its slot. Only the holder of the partition's fetch ticket reads or
/// writes it (one fetch at a time, the ticket handed over through the state word's acquire and release), so
/// relaxed atomics suffice and the two words are never seen half written.
#[derive(Debug, Default)]
pub(crate) struct CrcStreakCell {
    /// The epoch in the high 32 bits, the fetches in the low ones.
    epoch_fetches: AtomicU64,
    offset: AtomicI64,
}

impl CrcStreakCell {
    pub(crate) fn load(&self) -> CrcStreak {
        let w = self.epoch_fetches.load(Ordering::Relaxed);
        CrcStreak {
            epoch: (w >> 32) as u32,
            offset: self.offset.load(Ordering::Relaxed),
            fetches: w as u32,
        }
    }

    /// Stores `streak`; call before the fetch ticket is handed back.
    pub(crate) fn store(&self, streak: CrcStreak) {
        let w = (u64::from(streak.epoch) << 32) | u64::from(streak.fetches);
        self.epoch_fetches.store(w, Ordering::Relaxed);
        self.offset.store(streak.offset, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdicts on a run of damaged fetches (`(epoch, offset)` each), in order, from `streak` on.
    fn run(mut streak: CrcStreak, failures: &[(u32, i64)]) -> Vec<CrcVerdict> {
        failures
            .iter()
            .map(|&(epoch, offset)| {
                let v = streak.failed(epoch, offset);
                if let CrcVerdict::Refetch(s) = v {
                    streak = s;
                }
                v
            })
            .collect()
    }

    fn refetch(epoch: u32, offset: i64, fetches: u32) -> CrcVerdict {
        CrcVerdict::Refetch(CrcStreak {
            epoch,
            offset,
            fetches,
        })
    }

    #[test]
    fn the_same_damaged_batch_is_fetched_three_times_then_reported() {
        let v = run(CrcStreak::default(), &[(1, 3), (1, 3), (1, 3)]);
        assert_eq!(v, [refetch(1, 3, 1), refetch(1, 3, 2), CrcVerdict::Report]);
        assert_eq!(CRC_FETCH_ATTEMPTS as usize, v.len());
    }

    /// Getting past the offset (the next damage is at another) or moving to a new epoch (a seek back to the same
    /// offset) starts a new count.
    #[test]
    fn another_offset_or_epoch_starts_a_new_count() {
        let v = run(
            CrcStreak::default(),
            &[(1, 3), (1, 3), (1, 9), (1, 9), (2, 9), (2, 9), (2, 9)],
        );
        assert_eq!(
            v,
            [
                refetch(1, 3, 1),
                refetch(1, 3, 2),
                refetch(1, 9, 1),
                refetch(1, 9, 2),
                refetch(2, 9, 1),
                refetch(2, 9, 2),
                CrcVerdict::Report
            ]
        );
    }

    /// The empty streak at offset 0 of epoch 0 (a cell's initial value) is no streak: damage there is a first.
    #[test]
    fn the_initial_value_counts_nothing() {
        assert_eq!(CrcStreak::default().failed(0, 0), refetch(0, 0, 1));
        let counted_out = CrcStreak {
            epoch: 0,
            offset: 0,
            fetches: u32::MAX,
        };
        assert_eq!(counted_out.failed(0, 0), CrcVerdict::Report);
    }

    #[test]
    fn the_cell_keeps_every_field() {
        let cell = CrcStreakCell::default();
        assert_eq!(cell.load(), CrcStreak::default());
        let s = CrcStreak {
            epoch: u32::MAX,
            offset: i64::MIN,
            fetches: 2,
        };
        cell.store(s);
        assert_eq!(cell.load(), s);
    }
}
