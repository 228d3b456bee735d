//! A partition's undelivered records, kept as the vectors the fetcher decoded them into.
//!
//! A fetch decodes a partition's records into one `Vec`; appending it here moves the vector, not its records,
//! and `poll` moves each record once more, into the vector it returns, or takes a whole decoded vector as that
//! vector when it wants all of it. A record is built in place by the decoder and moved at most once after, so
//! a record's size (about 128 bytes) is not copied record by record through a ring buffer and a growing output.

use std::collections::VecDeque;
use std::vec;

use super::ConsumerRecord;

/// Undelivered records in offset order: a queue of decoded vectors, each partly taken from the front.
#[derive(Default)]
pub(crate) struct RecordQueue {
    chunks: VecDeque<vec::IntoIter<ConsumerRecord>>,
    len: usize,
}

impl RecordQueue {
    /// Records queued.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// True when no record is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops every queued record.
    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    /// Queues `records` after those already queued.
    pub(crate) fn push_back(&mut self, records: Vec<ConsumerRecord>) {
        if !records.is_empty() {
            self.len += records.len();
            self.chunks.push_back(records.into_iter());
        }
    }

    /// Queues `records` before those already queued (records taken and given back).
    pub(crate) fn push_front(&mut self, records: Vec<ConsumerRecord>) {
        if !records.is_empty() {
            self.len += records.len();
            self.chunks.push_front(records.into_iter());
        }
    }

    /// Moves up to `max` records from the front into `out`, after what `out` holds; returns how many. When `out`
    /// is empty and the first vector fits, that vector becomes `out` (no record is moved).
    pub(crate) fn take_into(&mut self, max: usize, out: &mut Vec<ConsumerRecord>) -> usize {
        let mut taken = 0;
        while taken < max {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let want = max - taken;
            if front.len() <= want {
                let chunk = self.chunks.pop_front().expect("front exists");
                let n = chunk.len();
                if out.is_empty() {
                    // Reuses the vector's allocation (moving the rest to its start if some were taken before).
                    *out = chunk.collect();
                } else {
                    out.extend(chunk);
                }
                taken += n;
            } else {
                out.extend(front.by_ref().take(want));
                taken += want;
            }
        }
        self.len -= taken;
        taken
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn records(offsets: std::ops::Range<i64>) -> Vec<ConsumerRecord> {
        offsets
            .map(|offset| ConsumerRecord {
                topic: Arc::from("t"),
                partition: 0,
                offset,
                timestamp: 0,
                key: None,
                value: None,
                headers: Vec::new(),
                leader_epoch: 0,
            })
            .collect()
    }

    fn offsets(v: &[ConsumerRecord]) -> Vec<i64> {
        v.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn records_come_out_in_order_across_vectors_and_partial_takes() {
        let mut q = RecordQueue::default();
        q.push_back(records(0..3));
        q.push_back(Vec::new());
        q.push_back(records(3..8));
        assert_eq!(q.len(), 8);
        let mut out = Vec::new();
        assert_eq!(q.take_into(2, &mut out), 2);
        assert_eq!(offsets(&out), [0, 1]);
        assert_eq!(q.take_into(4, &mut out), 4);
        assert_eq!(offsets(&out), [0, 1, 2, 3, 4, 5]);
        let mut rest = Vec::new();
        assert_eq!(q.take_into(100, &mut rest), 2);
        assert_eq!(offsets(&rest), [6, 7]);
        assert!(q.is_empty());
        assert_eq!(q.take_into(5, &mut rest), 0);
    }

    #[test]
    fn a_whole_vector_taken_into_an_empty_output_is_not_copied() {
        let mut q = RecordQueue::default();
        let v = records(0..4);
        let ptr = v.as_ptr();
        q.push_back(v);
        q.push_back(records(4..6));
        let mut out = Vec::new();
        assert_eq!(q.take_into(4, &mut out), 4);
        assert_eq!(out.as_ptr(), ptr, "the decoded vector itself was handed over");
        assert_eq!(offsets(&out), [0, 1, 2, 3]);
        // Beyond it, records are moved after the ones taken (the vector may grow, and move, for them).
        assert_eq!(q.take_into(1, &mut out), 1);
        assert_eq!(offsets(&out), [0, 1, 2, 3, 4]);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn records_given_back_come_first() {
        let mut q = RecordQueue::default();
        q.push_back(records(5..7));
        q.push_front(records(2..5));
        let mut out = Vec::new();
        q.take_into(10, &mut out);
        assert_eq!(offsets(&out), [2, 3, 4, 5, 6]);
        q.push_back(records(7..9));
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.take_into(10, &mut out), 0);
    }
}
