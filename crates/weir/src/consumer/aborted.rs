//! read_committed: which batches of one partition's fetch data belong to aborted transactions. The broker sends
//! the aborted transactions that overlap the data (producer id, first offset); a producer's transactional
//! batches are dropped from its aborted transaction's first offset until that transaction's abort marker. Fed
//! every batch in offset order, as the Java consumer does it.

use std::collections::HashSet;

use weir_proto::record::{Batch, ControlType};

/// The aborted transactions of one partition of one fetch response, consumed in offset order.
pub(crate) struct AbortedTransactions {
    /// Not yet reached, latest first offset first (taken from the back).
    pending: Vec<(i64, i64)>,
    /// Producers inside an aborted transaction at the current batch.
    open: HashSet<i64>,
}

impl AbortedTransactions {
    /// From the response's list of (producer id, first offset).
    pub(crate) fn new(mut aborted: Vec<(i64, i64)>) -> AbortedTransactions {
        aborted.sort_unstable_by_key(|&(_, first)| std::cmp::Reverse(first));
        AbortedTransactions {
            pending: aborted,
            open: HashSet::new(),
        }
    }

    /// Whether `batch` (the next in offset order) is part of an aborted transaction: its records are not
    /// delivered, its offsets are passed over. An abort marker ends its producer's aborted transaction.
    pub(crate) fn skips(&mut self, batch: &Batch, abort_marker: impl FnOnce() -> bool) -> bool {
        let producer = batch.producer_id();
        if producer < 0 {
            return false;
        }
        while let Some(&(pid, first)) = self.pending.last() {
            if first > batch.last_offset() {
                break;
            }
            self.open.insert(pid);
            self.pending.pop();
        }
        if batch.is_control() {
            if abort_marker() {
                self.open.remove(&producer);
            }
            return false;
        }
        batch.is_transactional() && self.open.contains(&producer)
    }
}

/// Whether a control batch's first record is an abort marker (its key: version i16, type i16 = 0).
pub(crate) fn is_abort_marker(batch: &Batch, max_decompressed: usize) -> bool {
    let Ok(mut records) = batch.records(max_decompressed) else {
        return false;
    };
    match records.next() {
        Some(Ok(r)) => r.control_type() == Some(ControlType::Abort),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use weir_proto::record::{batches, BatchBuilder, BatchOptions, ProducerIds};

    use super::*;

    /// A batch at `base` of `count` records by `producer`; a control batch holds one marker (`Some(commit)`).
    fn batch(base: i64, producer: i64, transactional: bool, count: usize, marker: Option<bool>) -> Bytes {
        let mut b = BatchBuilder::new(BatchOptions {
            transactional,
            base_offset: base,
            ..Default::default()
        });
        match marker {
            Some(commit) => {
                b.push(
                    0,
                    Some(&[0, 0, 0, u8::from(commit)]),
                    Some(&[0, 0, 0, 0, 0, 0]),
                    &[],
                );
            }
            None => (0..count).for_each(|_| {
                b.push(0, None, Some(b"v"), &[]);
            }),
        }
        let ids = ProducerIds {
            producer_id: producer,
            producer_epoch: 0,
            base_sequence: 0,
        };
        let mut bytes = BytesMut::from(&b.seal(ids).unwrap()[..]);
        if marker.is_some() {
            bytes[22] |= 0x20; // the control bit of the attributes (the CRC is not checked here)
        }
        bytes.freeze()
    }

    #[test]
    fn batches_of_aborted_transactions_are_skipped_until_their_marker() {
        let log: Vec<u8> = [
            batch(0, 7, true, 2, None),        // aborted
            batch(2, 7, true, 1, Some(false)), // abort marker
            batch(3, 7, true, 2, None),        // committed
            batch(5, 7, true, 1, Some(true)),  // commit marker
            batch(6, 8, false, 1, None),       // idempotent, not transactional
            batch(7, 9, true, 1, None),        // aborted
            batch(8, 9, true, 1, Some(false)),
        ]
        .concat();
        let mut aborted = AbortedTransactions::new(vec![(9, 7), (7, 0)]);
        let skipped: Vec<(i64, bool)> = batches(Bytes::from(log))
            .map(|b| b.unwrap())
            .filter_map(|b| {
                let skip = aborted.skips(&b, || is_abort_marker(&b, 1 << 20));
                (!b.is_control()).then_some((b.base_offset(), skip))
            })
            .collect();
        assert_eq!(skipped, [(0, true), (3, false), (6, false), (7, true)]);
    }
}
