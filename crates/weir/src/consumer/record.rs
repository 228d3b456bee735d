//! Records as delivered to the application.

use std::sync::Arc;

use bytes::Bytes;

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

    /// Copies key, value and headers out of the fetch response they point into.
    pub(crate) fn detach(&mut self) {
        let copy = |b: &mut Option<Bytes>| {
            if let Some(x) = b {
                *x = Bytes::copy_from_slice(x);
            }
        };
        copy(&mut self.key);
        copy(&mut self.value);
        for (_, v) in &mut self.headers {
            copy(v);
        }
    }
}
