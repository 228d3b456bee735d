//! DescribeProducers (v0, flexible; KIP-664): the producers a partition leader holds state for (idempotent
//! and transactional producers that wrote to the partition and have not expired), decoded here rather than by
//! `kafka-protocol`, so that no count from the wire is trusted before it is checked against the bytes
//! present. Tagged fields are skipped.

use bytes::Bytes;

use crate::call::ErrorCodes;
use crate::wire::{check_version, prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_describe_producers_response`] reads.
pub const DESCRIBE_PRODUCERS_VERSIONS: std::ops::RangeInclusive<i16> = 0..=0;

/// A DescribeProducers request: partitions per topic, all led by the broker asked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DescribeProducersRequest {
    /// Partitions per topic.
    pub topics: Vec<(String, Vec<i32>)>,
}

impl DescribeProducersRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::DescribeProducersRequest {
        use kafka_protocol::messages::describe_producers_request::TopicRequest;
        kafka_protocol::messages::DescribeProducersRequest::default().with_topics(
            self.topics
                .iter()
                .map(|(t, ps)| {
                    TopicRequest::default()
                        .with_name(crate::call::wire_topic(t))
                        .with_partition_indexes(ps.clone())
                })
                .collect(),
        )
    }
}

/// One active producer of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProducerState {
    /// The producer id.
    pub producer_id: i64,
    /// The producer's epoch.
    pub producer_epoch: i32,
    /// The sequence number of the last record the partition has from it (-1 if none).
    pub last_sequence: i32,
    /// The timestamp of its last write, in ms since the epoch (-1 if unknown).
    pub last_timestamp: i64,
    /// The epoch of the transaction coordinator that last wrote a marker for it (-1 if none).
    pub coordinator_epoch: i32,
    /// The first offset of its open transaction on the partition (-1 if none is open).
    pub current_txn_start_offset: i64,
}

/// One partition of a DescribeProducers response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducersPartition {
    /// The partition index.
    pub partition: i32,
    /// Error code, 0 if none (6 NOT_LEADER_OR_FOLLOWER: asked of a broker that does not lead it).
    pub error_code: i16,
    /// The broker's message for an error, if any.
    pub error_message: Option<String>,
    /// The partition's active producers.
    pub active_producers: Vec<ProducerState>,
}

impl ErrorCodes for ProducersPartition {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// One topic of a DescribeProducers response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducersTopic {
    /// The topic name.
    pub name: String,
    /// Its partitions.
    pub partitions: Vec<ProducersPartition>,
}

impl ErrorCodes for ProducersTopic {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.partitions.error_codes(f);
    }
}

/// Decodes a DescribeProducers response body (after the response header) of `version` (0).
pub fn decode_describe_producers_response(
    body: Bytes,
    version: i16,
) -> Result<Vec<ProducersTopic>, ProtoError> {
    const API: &str = "DescribeProducers";
    check_version(API, version, &DESCRIBE_PRODUCERS_VERSIONS)?;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    // Name, partition count, tags.
    let n = r.count(true, 1 + 1 + 1, "topic count")?.unwrap_or(0);
    let mut topics = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let name = r.required_string(true, "topic name")?;
        // Index, error, message, producer count, tags.
        let pn = r.count(true, 4 + 2 + 1 + 1 + 1, "partition count")?.unwrap_or(0);
        let mut partitions = Vec::with_capacity(prealloc(pn));
        for _ in 0..pn {
            let partition = r.i32("partition")?;
            let error_code = r.i16("error code")?;
            let error_message = r.string(true, "error message")?;
            // Id, epoch, last sequence, last timestamp, coordinator epoch, transaction start, tags.
            let m = r
                .count(true, 8 + 4 + 4 + 8 + 4 + 8 + 1, "producer count")?
                .unwrap_or(0);
            let mut active_producers = Vec::with_capacity(prealloc(m));
            for _ in 0..m {
                let state = ProducerState {
                    producer_id: r.i64("producer id")?,
                    producer_epoch: r.i32("producer epoch")?,
                    last_sequence: r.i32("last sequence")?,
                    last_timestamp: r.i64("last timestamp")?,
                    coordinator_epoch: r.i32("coordinator epoch")?,
                    current_txn_start_offset: r.i64("current transaction start offset")?,
                };
                r.tagged_fields()?;
                active_producers.push(state);
            }
            r.tagged_fields()?;
            partitions.push(ProducersPartition {
                partition,
                error_code,
                error_message,
                active_producers,
            });
        }
        r.tagged_fields()?;
        topics.push(ProducersTopic { name, partitions });
    }
    r.tagged_fields()?;
    Ok(topics)
}

#[cfg(test)]
mod request_tests {
    use super::*;

    #[test]
    fn request_carries_every_partition() {
        let req = DescribeProducersRequest {
            topics: vec![("a".into(), vec![0, 3]), ("b".into(), vec![1])],
        }
        .to_wire(0);
        let got: Vec<(&str, Vec<i32>)> = req
            .topics
            .iter()
            .map(|t| (&*t.name.0, t.partition_indexes.clone()))
            .collect();
        assert_eq!(got, [("a", vec![0, 3]), ("b", vec![1])]);
    }
}
