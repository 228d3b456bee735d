//! Records as delivered to the application.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

/// One consumed record. Key, value and header values are zero-copy slices of fetched data (or small copies,
/// so that a few survivors never pin a large fetch response).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp in ms since the epoch (create time, or log append time if the topic says so).
    pub timestamp: i64,
    /// Key; `None` is a null key.
    pub key: Option<Bytes>,
    /// Value; `None` is a null value.
    pub value: Option<Bytes>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// The leader epoch of the batch the record came in (Java's `leaderEpoch()`), -1 if unknown (a broker
    /// that does not stamp batches). A commit of the position after this record carries it, so that whoever
    /// starts there can detect a truncated log (KIP-320). An `i32` and not an `Option`, so that the record
    /// stays 128 bytes.
    pub leader_epoch: i32,
}

/// Memory of one buffered record besides its bytes.
pub(crate) const RECORD_ENTRY: usize = std::mem::size_of::<ConsumerRecord>();
/// Memory of one header entry besides its bytes.
pub(crate) const HEADER_ENTRY: usize = std::mem::size_of::<(String, Option<Bytes>)>();

impl ConsumerRecord {
    /// Bytes this record accounts for in the partition buffer: what it holds in memory, its own struct and
    /// each header's entry included (so records of empty values or many empty headers still count for what
    /// they cost).
    pub(crate) fn size(&self) -> usize {
        let kv = self.key.as_ref().map_or(0, Bytes::len) + self.value.as_ref().map_or(0, Bytes::len);
        let h: usize = self
            .headers
            .iter()
            .map(|(k, v)| HEADER_ENTRY + k.len() + v.as_ref().map_or(0, Bytes::len))
            .sum();
        RECORD_ENTRY + kv + h
    }

    /// Bytes of the record's key, value and headers (names and values): what the application receives, and
    /// what the consumer counts as bytes consumed.
    pub(crate) fn payload_size(&self) -> usize {
        let kv = self.key.as_ref().map_or(0, Bytes::len) + self.value.as_ref().map_or(0, Bytes::len);
        let h: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len))
            .sum();
        kv + h
    }

    /// The byte strings the record points into a fetched buffer with: key, value, header values.
    fn fields_mut(&mut self) -> impl Iterator<Item = &mut Bytes> {
        self.key
            .iter_mut()
            .chain(self.value.iter_mut())
            .chain(self.headers.iter_mut().filter_map(|(_, v)| v.as_mut()))
    }
}

/// Moves the bytes of `records` (keys, values, header values) into one buffer of their exact size, so that they
/// no longer keep alive the (larger) buffer they were sliced from: a fetch response or decompressed batch mostly
/// left behind. One allocation and one copy for all of them.
pub(crate) fn compact(records: &mut [ConsumerRecord]) {
    let len: usize = records
        .iter_mut()
        .flat_map(ConsumerRecord::fields_mut)
        .map(|b| b.len())
        .sum();
    let mut buf = BytesMut::with_capacity(len);
    for b in records.iter_mut().flat_map(ConsumerRecord::fields_mut) {
        buf.extend_from_slice(b);
    }
    let buf = buf.freeze();
    let mut at = 0;
    for b in records.iter_mut().flat_map(ConsumerRecord::fields_mut) {
        let n = b.len();
        *b = buf.slice(at..at + n);
        at += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(b: &Bytes, buf: &Bytes) -> bool {
        let (p, start) = (b.as_ptr() as usize, buf.as_ptr() as usize);
        b.is_empty() || (p >= start && p + b.len() <= start + buf.len())
    }

    /// Each buffered record costs its entry: adding a field must not grow it unnoticed.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_record_entry_is_128_bytes() {
        assert_eq!(RECORD_ENTRY, 128);
    }

    #[test]
    fn compaction_keeps_every_field_and_lets_the_source_go() {
        let source = Bytes::from((0..=255u8).cycle().take(64 << 10).collect::<Vec<u8>>());
        let record = |at: usize, headers: Vec<(String, Option<Bytes>)>| ConsumerRecord {
            topic: Arc::from("t"),
            partition: 0,
            offset: at as i64,
            timestamp: 0,
            key: Some(source.slice(at..at + 3)),
            value: (at % 2 == 0).then(|| source.slice(at + 3..at + 103)),
            headers,
            leader_epoch: 0,
        };
        let mut records = vec![
            record(0, Vec::new()),
            record(
                1000,
                vec![("h".into(), Some(source.slice(9..19))), ("n".into(), None)],
            ),
            record(5001, vec![("e".into(), Some(Bytes::new()))]),
        ];
        let before = records.clone();
        compact(&mut records);
        assert_eq!(records, before);
        let fields: Vec<Bytes> = records
            .iter_mut()
            .flat_map(ConsumerRecord::fields_mut)
            .map(|b| b.clone())
            .collect();
        assert_eq!(fields.len(), 7);
        assert!(fields.iter().all(|b| b.is_empty() || !within(b, &source)));
        // One buffer holds them all, back to back.
        let base = fields[0].as_ptr() as usize;
        let total: usize = fields.iter().map(Bytes::len).sum();
        assert!(fields.iter().all(|b| b.is_empty()
            || (b.as_ptr() as usize >= base && b.as_ptr() as usize + b.len() <= base + total)));
    }
}
