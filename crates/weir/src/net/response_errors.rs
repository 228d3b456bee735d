//! Which Kafka error codes a response carries, for the request error metric: read from the response frame of any
//! call, whatever its type, without the connection knowing the types.
//!
//! [`Connection::call`](super::Connection::call) is one generic function over every [`Call`], and a response's
//! type says nothing generic about its errors. So the frame is decoded a second time here by the decoder of the
//! concrete call its API key names (the frame is shared, `Bytes`), and every non-zero error code found is
//! reported: the top-level code where the response has one, and the per-item codes (topic, partition, resource,
//! member, user) where it has them. The second decoding is bounded like the first and costs what the first did,
//! which is nothing next to a round trip for the control-plane calls it is done for.
//!
//! Left out on purpose: **Produce** and **Fetch**, the calls that carry data. Their responses are already walked
//! partition by partition by their callers (the producer's sender, the consumer's fetcher), which count what
//! they find with [`ConnectionMetrics::count_error`](super::metrics::ConnectionMetrics::count_error) instead of
//! paying for a second decoding on the hot path. A call this file does not list (one added to weir-proto
//! later) has none of its errors counted until a line is added here.

use bytes::Bytes;
use weir_proto::acl::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use weir_proto::admin::{CreateTopicsRequest, DeleteTopicsRequest};
use weir_proto::group::{
    FindCoordinatorRequest, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest,
};
use weir_proto::group_offsets::{OffsetCommitRequest, OffsetFetchRequest};
use weir_proto::list_offsets::ListOffsetsRequest;
use weir_proto::metadata::MetadataRequest;
use weir_proto::producer_id::InitProducerIdRequest;
use weir_proto::sasl::{SaslAuthenticateRequest, SaslHandshakeRequest};
use weir_proto::scram_credentials::{AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest};
use weir_proto::txn::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, TxnOffsetCommitRequest,
};
use weir_proto::versions::ApiVersionsRequest;
use weir_proto::Call;

/// Whether [`visit`] may read the responses of `C`: false for Produce and Fetch (the frame need not be kept).
pub(crate) const fn visited<C: Call>() -> bool {
    !matches!(C::KEY, 0 | 1)
}

/// Calls `f` with every non-zero error code in `frame`, a response of `C` at `version` (nothing if it does not
/// decode: the caller reports that).
pub(crate) fn visit<C: Call>(frame: &Bytes, version: i16, mut f: impl FnMut(i16)) {
    let mut each = |code: i16| {
        if code != 0 {
            f(code)
        }
    };
    let key = C::KEY;
    if key == ListOffsetsRequest::KEY {
        for p in decoded::<ListOffsetsRequest>(frame, version)
            .into_iter()
            .flatten()
        {
            each(p.error_code);
        }
    } else if key == MetadataRequest::KEY {
        for t in decoded::<MetadataRequest>(frame, version)
            .map(|r| r.topics)
            .into_iter()
            .flatten()
        {
            each(t.error_code);
            t.partitions.iter().for_each(|p| each(p.error_code));
        }
    } else if key == OffsetCommitRequest::KEY {
        for t in decoded::<OffsetCommitRequest>(frame, version)
            .into_iter()
            .flatten()
        {
            t.partitions.iter().for_each(|&(_, code)| each(code));
        }
    } else if key == OffsetFetchRequest::KEY {
        if let Some(r) = decoded::<OffsetFetchRequest>(frame, version) {
            each(r.error_code);
            for t in r.topics {
                t.partitions.iter().for_each(|p| each(p.error_code));
            }
        }
    } else if key == FindCoordinatorRequest::KEY {
        for c in decoded::<FindCoordinatorRequest>(frame, version)
            .into_iter()
            .flatten()
        {
            each(c.error_code);
        }
    } else if key == JoinGroupRequest::KEY {
        if let Some(r) = decoded::<JoinGroupRequest>(frame, version) {
            each(r.error_code);
        }
    } else if key == HeartbeatRequest::KEY {
        if let Some(code) = decoded::<HeartbeatRequest>(frame, version) {
            each(code);
        }
    } else if key == LeaveGroupRequest::KEY {
        if let Some(r) = decoded::<LeaveGroupRequest>(frame, version) {
            each(r.error_code);
            r.members.iter().for_each(|m| each(m.error_code));
        }
    } else if key == SyncGroupRequest::KEY {
        if let Some(r) = decoded::<SyncGroupRequest>(frame, version) {
            each(r.error_code);
        }
    } else if key == ApiVersionsRequest::KEY {
        if let Some(r) = decoded::<ApiVersionsRequest>(frame, version) {
            each(r.error_code);
        }
    } else if key == CreateTopicsRequest::KEY {
        for t in decoded::<CreateTopicsRequest>(frame, version)
            .into_iter()
            .flatten()
        {
            each(t.error_code);
        }
    } else if key == DeleteTopicsRequest::KEY {
        decoded::<DeleteTopicsRequest>(frame, version)
            .into_iter()
            .flatten()
            .for_each(&mut each);
    } else if key == InitProducerIdRequest::KEY {
        if let Some(r) = decoded::<InitProducerIdRequest>(frame, version) {
            each(r.error_code);
        }
    } else if key == SaslHandshakeRequest::KEY {
        if let Some(r) = decoded::<SaslHandshakeRequest>(frame, version) {
            each(r.error_code);
        }
    } else if key == SaslAuthenticateRequest::KEY {
        if let Some(r) = decoded::<SaslAuthenticateRequest>(frame, version) {
            each(r.error_code);
        }
    } else if key == DescribeAclsRequest::KEY {
        if let Some(r) = decoded::<DescribeAclsRequest>(frame, version) {
            each(r.error_code);
        }
    } else if key == CreateAclsRequest::KEY {
        for r in decoded::<CreateAclsRequest>(frame, version).into_iter().flatten() {
            each(r.error_code);
        }
    } else if key == DeleteAclsRequest::KEY {
        for r in decoded::<DeleteAclsRequest>(frame, version).into_iter().flatten() {
            each(r.error_code);
            r.matching.iter().for_each(|m| each(m.error_code));
        }
    } else if key == DescribeUserScramCredentialsRequest::KEY {
        if let Some(r) = decoded::<DescribeUserScramCredentialsRequest>(frame, version) {
            each(r.error_code);
            r.results.iter().for_each(|u| each(u.error_code));
        }
    } else if key == AlterUserScramCredentialsRequest::KEY {
        for u in decoded::<AlterUserScramCredentialsRequest>(frame, version)
            .into_iter()
            .flatten()
        {
            each(u.error_code);
        }
    } else if key == AddPartitionsToTxnRequest::KEY {
        for t in decoded::<AddPartitionsToTxnRequest>(frame, version)
            .into_iter()
            .flatten()
        {
            t.partitions.iter().for_each(|&(_, code)| each(code));
        }
    } else if key == AddOffsetsToTxnRequest::KEY {
        if let Some(code) = decoded::<AddOffsetsToTxnRequest>(frame, version) {
            each(code);
        }
    } else if key == EndTxnRequest::KEY {
        if let Some(r) = decoded::<EndTxnRequest>(frame, version) {
            each(r.error_code);
        }
    } else if key == TxnOffsetCommitRequest::KEY {
        for t in decoded::<TxnOffsetCommitRequest>(frame, version)
            .into_iter()
            .flatten()
        {
            t.partitions.iter().for_each(|&(_, code)| each(code));
        }
    }
}

/// `frame` decoded as a response of `R` at `version`, if it decodes.
fn decoded<R: Call>(frame: &Bytes, version: i16) -> Option<R::Response> {
    R::decode(frame.clone(), version).ok()
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::{self as kp, ResponseHeader};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;

    /// A response frame as a broker sends it (header and body, without the size prefix) of `C` at `version`.
    fn frame<C: Call>(body: &impl Encodable, version: i16) -> Bytes {
        let key = kp::ApiKey::try_from(C::KEY).unwrap();
        let mut out = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(7)
            .encode(&mut out, key.response_header_version(version))
            .unwrap();
        let mut b = BytesMut::new();
        body.encode(&mut b, version).unwrap();
        out.put_slice(&b);
        out.freeze()
    }

    fn codes<C: Call>(frame: &Bytes, version: i16) -> Vec<i16> {
        let mut out = Vec::new();
        visit::<C>(frame, version, |c| out.push(c));
        out
    }

    fn topic_name(s: &str) -> kp::TopicName {
        kp::TopicName(StrBytes::from_string(s.to_owned()))
    }

    #[test]
    fn per_topic_errors_of_create_topics_at_every_version() {
        for v in CreateTopicsRequest::VERSIONS {
            let body = kp::CreateTopicsResponse::default().with_topics(vec![
                kp::create_topics_response::CreatableTopicResult::default().with_name(topic_name("fresh")),
                kp::create_topics_response::CreatableTopicResult::default()
                    .with_name(topic_name("taken"))
                    .with_error_code(36),
            ]);
            assert_eq!(
                codes::<CreateTopicsRequest>(&frame::<CreateTopicsRequest>(&body, v), v),
                [36],
                "v{v}"
            );
        }
    }

    #[test]
    fn top_level_error_of_heartbeat_at_every_version() {
        for v in HeartbeatRequest::VERSIONS {
            let failed = kp::HeartbeatResponse::default().with_error_code(27);
            assert_eq!(
                codes::<HeartbeatRequest>(&frame::<HeartbeatRequest>(&failed, v), v),
                [27],
                "v{v}"
            );
            let ok = kp::HeartbeatResponse::default();
            assert!(
                codes::<HeartbeatRequest>(&frame::<HeartbeatRequest>(&ok, v), v).is_empty(),
                "v{v}"
            );
        }
    }

    #[test]
    fn topic_and_partition_errors_of_metadata() {
        let v = *MetadataRequest::VERSIONS.end();
        let partition = |index: i32, code: i16| {
            kp::metadata_response::MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_error_code(code)
        };
        let body = kp::MetadataResponse::default().with_topics(vec![
            kp::metadata_response::MetadataResponseTopic::default()
                .with_name(Some(topic_name("missing")))
                .with_error_code(3),
            kp::metadata_response::MetadataResponseTopic::default()
                .with_name(Some(topic_name("electing")))
                .with_partitions(vec![partition(0, 0), partition(1, 5)]),
        ]);
        assert_eq!(
            codes::<MetadataRequest>(&frame::<MetadataRequest>(&body, v), v),
            [3, 5]
        );
    }

    #[test]
    fn undecodable_frames_and_data_calls_report_nothing() {
        let v = *CreateTopicsRequest::VERSIONS.end();
        assert!(codes::<CreateTopicsRequest>(&Bytes::from_static(&[0, 0, 0, 7, 0xff]), v).is_empty());
        assert!(!visited::<weir_proto::produce::ProduceRequest>());
        assert!(!visited::<weir_proto::fetch::FetchRequest>());
        assert!(visited::<CreateTopicsRequest>());
    }
}
