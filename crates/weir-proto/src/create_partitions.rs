//! The CreatePartitions request (v0–v3, flexible from v2) and its response, decoded here rather than by
//! `kafka-protocol`, so that no count from the wire is trusted before it is checked against the bytes present.
//! Tagged fields are skipped.

use bytes::Bytes;

use crate::call::ErrorCodes;
use crate::wire::{check_version, prealloc, WireReader};
use crate::ProtoError;

/// Versions [`decode_create_partitions_response`] reads.
pub const CREATE_PARTITIONS_VERSIONS: std::ops::RangeInclusive<i16> = 0..=3;

/// One topic's new partition count.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionsIncrease {
    /// The topic.
    pub topic: String,
    /// The total number of partitions the topic is to have (more than it has).
    pub count: i32,
    /// The replicas of each new partition (broker ids, the preferred leader first), one list per new
    /// partition; `None` lets the controller place them.
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// A CreatePartitions request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreatePartitionsRequest {
    /// The topics to grow; the response has one result per topic.
    pub topics: Vec<PartitionsIncrease>,
    /// How long the controller may take.
    pub timeout_ms: i32,
    /// Only check that the increases would be accepted; change nothing.
    pub validate_only: bool,
}

impl CreatePartitionsRequest {
    pub(crate) fn to_wire(&self, _version: i16) -> kafka_protocol::messages::CreatePartitionsRequest {
        use kafka_protocol::messages::create_partitions_request::{
            CreatePartitionsAssignment, CreatePartitionsTopic,
        };
        use kafka_protocol::messages::BrokerId;
        kafka_protocol::messages::CreatePartitionsRequest::default()
            .with_topics(
                self.topics
                    .iter()
                    .map(|t| {
                        CreatePartitionsTopic::default()
                            .with_name(crate::call::wire_topic(&t.topic))
                            .with_count(t.count)
                            .with_assignments(t.assignments.as_ref().map(|a| {
                                a.iter()
                                    .map(|ids| {
                                        CreatePartitionsAssignment::default()
                                            .with_broker_ids(ids.iter().map(|&b| BrokerId(b)).collect())
                                    })
                                    .collect()
                            }))
                    })
                    .collect(),
            )
            .with_timeout_ms(self.timeout_ms)
            .with_validate_only(self.validate_only)
    }
}

/// One topic's result in a CreatePartitions response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CreatePartitionsResult {
    /// The topic.
    pub topic: String,
    /// Error code, 0 if none.
    pub error_code: i16,
    /// The broker's message for an error, if any.
    pub error_message: Option<String>,
}

impl ErrorCodes for CreatePartitionsResult {
    fn error_codes(&self, f: &mut dyn FnMut(i16)) {
        self.error_code.error_codes(f);
    }
}

/// Decodes a CreatePartitions response body (after the response header) of `version` (0..=3): one result per
/// topic.
pub fn decode_create_partitions_response(
    body: Bytes,
    version: i16,
) -> Result<Vec<CreatePartitionsResult>, ProtoError> {
    const API: &str = "CreatePartitions";
    check_version(API, version, &CREATE_PARTITIONS_VERSIONS)?;
    let flex = version >= 2;
    let mut r = WireReader::new(body, API, version);
    r.i32("throttle time")?;
    // Name, error code, error message, tags (flexible).
    let min_result = if flex { 1 + 2 + 1 + 1 } else { 2 + 2 + 2 };
    let n = r.count(flex, min_result, "result count")?.unwrap_or(0);
    let mut results = Vec::with_capacity(prealloc(n));
    for _ in 0..n {
        let topic = r.required_string(flex, "topic name")?;
        let error_code = r.i16("error code")?;
        let error_message = r.string(flex, "error message")?;
        if flex {
            r.tagged_fields()?;
        }
        results.push(CreatePartitionsResult {
            topic,
            error_code,
            error_message,
        });
    }
    if flex {
        r.tagged_fields()?;
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_every_field() {
        let req = CreatePartitionsRequest {
            topics: vec![
                PartitionsIncrease {
                    topic: "a".into(),
                    count: 6,
                    assignments: Some(vec![vec![1, 2], vec![2, 3]]),
                },
                PartitionsIncrease {
                    topic: "b".into(),
                    count: 2,
                    assignments: None,
                },
            ],
            timeout_ms: 1500,
            validate_only: true,
        }
        .to_wire(3);
        assert_eq!((req.timeout_ms, req.validate_only), (1500, true));
        assert_eq!((&*req.topics[0].name.0, req.topics[0].count), ("a", 6));
        let a = req.topics[0].assignments.as_ref().unwrap();
        let ids: Vec<Vec<i32>> = a
            .iter()
            .map(|x| x.broker_ids.iter().map(|b| b.0).collect())
            .collect();
        assert_eq!(ids, vec![vec![1, 2], vec![2, 3]]);
        assert!(req.topics[1].assignments.is_none());
    }
}
