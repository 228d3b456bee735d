//! Every response weir decodes, as the connection hands it over: a frame without its size prefix, header
//! included, decoded by the `Call` that sent the request (`Call::decode`, which strips the header for that API
//! and version and runs weir-proto's bounded decoder).
//!
//! Input: `[call, version]` then the frame. `call` picks one of the calls weir makes (in `SPOKEN`'s order);
//! `version` one of its versions, or one just outside the range (which must be refused, not misread).
//! Beyond "no panic": a response never reports more error codes than two-byte fields fit in the frame, and a
//! Fetch response's records go through the consumer's decoding (`weir_fuzz::walk_records`), and an ApiVersions
//! response's version table picks, for every call, a version in both sides' ranges.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_proto::call::ErrorCodes;
use weir_proto::Call;

/// Decodes `frame` as `C`'s response at the version `v` picks, and checks it.
fn decode<C: Call>(v: u8, frame: Bytes) -> Option<C::Response>
where
    C::Response: std::fmt::Debug,
{
    let lo = *C::VERSIONS.start();
    let span = C::VERSIONS.end() - lo + 1;
    // One below the range, the range, one above it.
    let version = lo - 1 + (i16::from(v) % (span + 2));
    let len = frame.len();
    let decoded = C::decode(frame, version);
    if !C::VERSIONS.contains(&version) {
        assert!(decoded.is_err(), "{} v{version} is outside the decoder's range", C::NAME);
        return None;
    }
    match decoded {
        Ok(resp) => {
            let mut codes = 0usize;
            resp.error_codes(&mut |code| {
                assert_ne!(code, 0);
                codes += 1;
            });
            assert!(codes <= len / 2, "{}: {codes} error codes from {len} bytes", C::NAME);
            let _ = format!("{resp:?}");
            Some(resp)
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            None
        }
    }
}

macro_rules! calls {
    ($($req:path),* $(,)?) => {
        /// The calls weir makes, in one list with `SPOKEN`'s order.
        const CALLS: &[fn(u8, Bytes)] = &[$(|v, f| { decode::<$req>(v, f); }),*];
        const KEYS: &[i16] = &[$(<$req as Call>::KEY),*];
    };
}

use weir_proto::{acl, admin, configs, create_partitions, delete_records, describe_cluster};
use weir_proto::{describe_producers, group, group_admin, group_offsets, list_offsets, metadata};
use weir_proto::offset_for_leader_epoch;
use weir_proto::{produce, producer_id, sasl, scram_credentials, txn, versions};

calls![
    produce::ProduceRequest,
    weir_proto::fetch::FetchRequest,
    list_offsets::ListOffsetsRequest,
    metadata::MetadataRequest,
    group_offsets::OffsetCommitRequest,
    group_offsets::OffsetFetchRequest,
    group::FindCoordinatorRequest,
    group::JoinGroupRequest,
    group::HeartbeatRequest,
    group::LeaveGroupRequest,
    group::SyncGroupRequest,
    versions::ApiVersionsRequest,
    admin::CreateTopicsRequest,
    admin::DeleteTopicsRequest,
    describe_cluster::DescribeClusterRequest,
    create_partitions::CreatePartitionsRequest,
    delete_records::DeleteRecordsRequest,
    configs::DescribeConfigsRequest,
    configs::IncrementalAlterConfigsRequest,
    producer_id::InitProducerIdRequest,
    sasl::SaslHandshakeRequest,
    sasl::SaslAuthenticateRequest,
    acl::DescribeAclsRequest,
    acl::CreateAclsRequest,
    acl::DeleteAclsRequest,
    scram_credentials::DescribeUserScramCredentialsRequest,
    scram_credentials::AlterUserScramCredentialsRequest,
    txn::AddPartitionsToTxnRequest,
    txn::AddOffsetsToTxnRequest,
    txn::EndTxnRequest,
    txn::TxnOffsetCommitRequest,
    group_admin::ListGroupsRequest,
    group_admin::DescribeGroupsRequest,
    group_admin::DeleteGroupsRequest,
    group_admin::ConsumerGroupDescribeRequest,
    group_admin::OffsetDeleteRequest,
    describe_producers::DescribeProducersRequest,
    offset_for_leader_epoch::OffsetForLeaderEpochRequest,
];

fuzz_target!(|data: &[u8]| {
    // The list here and weir-proto's list of the calls it speaks must not drift apart.
    debug_assert!(KEYS.iter().eq(weir_proto::call::SPOKEN.iter().map(|(k, _, _)| k)));
    let [call, version, frame @ ..] = data else { return };
    let frame = Bytes::copy_from_slice(frame);
    let call = usize::from(*call) % CALLS.len();
    if KEYS[call] == <weir_proto::fetch::FetchRequest as Call>::KEY {
        // Fetch: the records of every partition as the consumer reads them.
        if let Some(resp) = decode::<weir_proto::fetch::FetchRequest>(*version, frame) {
            for t in resp.topics {
                for p in t.partitions {
                    if let Some(records) = p.records {
                        weir_fuzz::walk_records(records);
                    }
                }
            }
        }
    } else if KEYS[call] == <versions::ApiVersionsRequest as Call>::KEY {
        // ApiVersions: the version table a connection builds from it picks, for every call, a version both
        // sides speak.
        if let Some(resp) = decode::<versions::ApiVersionsRequest>(*version, frame) {
            let table = versions::VersionTable::from_response(&resp);
            for (key, _, ours) in weir_proto::call::SPOKEN {
                if let Some(v) = table.pick(*key, ours) {
                    assert!(ours.contains(&v), "picked v{v} of key {key} outside weir's {ours:?}");
                    let (lo, hi) = resp
                        .ranges
                        .iter()
                        .filter(|(k, _, _)| k == key)
                        .map(|&(_, lo, hi)| (lo, hi))
                        .next_back()
                        .expect("a picked key is in the response");
                    assert!((lo..=hi).contains(&v), "picked v{v} of key {key} outside the broker's {lo}..={hi}");
                }
            }
            let _ = (table.transaction_version(), table.finalized_features_epoch());
        }
    } else {
        CALLS[call](*version, frame);
    }
});
