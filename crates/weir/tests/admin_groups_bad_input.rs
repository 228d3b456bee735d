//! Group administration against a fake broker that answers ListGroups and DescribeGroups with absurd counts
//! and lengths: every answer is refused with a typed error ([`Error::Protocol`]: the whole call for a
//! ListGroups answer, the group's own outcome for a DescribeGroups answer), nothing panics, and nothing is
//! allocated for what the bytes only claim (the allocator of `support/capped_alloc.rs` remembers the largest
//! single allocation and refuses any over 1 GiB).

#[path = "support/capped_alloc.rs"]
mod capped_alloc;
#[path = "support/fake_broker.rs"]
mod fake_broker;

use bytes::{BufMut, Bytes, BytesMut};
use fake_broker::{bounded, Action, Body, FakeBroker, FakeConfig};
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{ApiKey, DescribeGroupsResponse, GroupId, ListGroupsResponse};
use kafka_protocol::protocol::{Encodable, StrBytes};
use weir::admin::{GroupFilter, GroupState, GroupType};
use weir::config::ClientConfig;
use weir::{Admin, Error, TopicPartition};
use weir_proto::consumer_protocol::ConsumerAssignment;

/// 2^31 - 1 as a compact (unsigned varint, + 1) count.
const HUGE: [u8; 5] = [0x80, 0x80, 0x80, 0x80, 0x08];

/// The highest ListGroups and DescribeGroups versions Kafka 4 serves.
const LIST_V: i16 = 5;
const DESCRIBE_V: i16 = 6;

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_owned())
}

fn encode<M: Encodable>(m: &M, version: i16) -> Bytes {
    let mut b = BytesMut::new();
    m.encode(&mut b, version).unwrap();
    b.freeze()
}

/// A compact string.
fn compact(b: &mut BytesMut, x: &str) {
    b.put_u8(x.len() as u8 + 1);
    b.put_slice(x.as_bytes());
}

// Every allocation is recorded and any over 1 GiB refused (see `support/capped_alloc.rs`).
#[global_allocator]
static ALLOC: capped_alloc::Capped = capped_alloc::Capped;

/// A fake broker that also speaks ListGroups and DescribeGroups (not ConsumerGroupDescribe: groups are
/// described with DescribeGroups), answering them with `answer(api, request)`.
async fn fake(answer: impl Fn(ApiKey, &Body) -> Option<Bytes> + Send + Sync + 'static) -> FakeBroker {
    let mut cfg = FakeConfig::new(&[("t", 1)]).script(move |req| match answer(req.api_key, &req.body) {
        Some(body) => Action::RawBody(body),
        None => Action::Answer,
    });
    cfg.versions.push((ApiKey::ListGroups, 0, LIST_V));
    cfg.versions.push((ApiKey::DescribeGroups, 0, DESCRIBE_V));
    FakeBroker::start(cfg).await
}

fn admin(fake: &FakeBroker) -> Admin {
    let mut c = ClientConfig::new(&fake.bootstrap());
    c.set("request.timeout.ms", "5000").unwrap();
    c.set("max.block.ms", "3000").unwrap();
    Admin::new(c).unwrap()
}

/// The largest single allocation these tests tolerate: far above anything the fake's small answers need, far
/// below what their counts claim (a reservation sized from them would be 2 GiB or far more).
const TOLERATED: usize = 64 << 20;

fn is_protocol_error(e: &Error) -> bool {
    matches!(e, Error::Protocol { .. })
}

#[tokio::test]
async fn list_groups_answers_with_absurd_counts_are_protocol_errors() {
    bounded(60, async {
        // Throttle, no error, 2^31 - 1 groups, then one group's worth of bytes.
        let mut huge = BytesMut::new();
        huge.put_i32(0);
        huge.put_i16(0);
        huge.put_slice(&HUGE);
        compact(&mut huge, "g");
        compact(&mut huge, "consumer");
        compact(&mut huge, "Stable");
        compact(&mut huge, "classic");
        huge.put_u8(0);
        huge.put_u8(0);
        // A well-formed answer listing two groups but claiming a thousand.
        let listed = ListGroupsResponse::default().with_groups(
            ["a", "b"]
                .iter()
                .map(|g| {
                    ListedGroup::default()
                        .with_group_id(GroupId(s(g)))
                        .with_protocol_type(s("consumer"))
                        .with_group_state(s("Empty"))
                        .with_group_type(s("classic"))
                })
                .collect(),
        );
        let well_formed = encode(&listed, LIST_V);
        let mut overclaiming = BytesMut::from(&well_formed[..]);
        // Throttle (4), error (2), then the compact count: 2 groups + 1 becomes 1000 + 1 (two varint bytes).
        assert_eq!(overclaiming[6], 3);
        let tail = overclaiming.split_off(7);
        overclaiming.truncate(6);
        overclaiming.put_slice(&[0xE9, 0x07]);
        overclaiming.put_slice(&tail);

        let answers = [well_formed, huge.freeze(), overclaiming.freeze()];
        let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let n = asked.clone();
        let fake = fake(move |api, _| {
            (api == ApiKey::ListGroups)
                .then(|| answers[n.fetch_add(1, std::sync::atomic::Ordering::SeqCst).min(2)].clone())
        })
        .await;
        let admin = admin(&fake);
        // The broker answering sensibly is understood: the errors below are the answers'.
        let listed = admin.list_groups(&GroupFilter::all()).await.unwrap();
        let got: Vec<(&str, GroupType, Option<GroupState>)> = listed
            .iter()
            .map(|g| (g.group_id.as_str(), g.group_type.clone(), g.state.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", GroupType::Classic, Some(GroupState::Empty)),
                ("b", GroupType::Classic, Some(GroupState::Empty))
            ]
        );
        for what in ["2^31 - 1 groups", "1000 groups claimed, 2 sent"] {
            match admin.list_groups(&GroupFilter::all()).await {
                Err(e) => assert!(is_protocol_error(&e), "{what}: {e:?}"),
                Ok(g) => panic!("{what}: listed {g:?}"),
            }
            capped_alloc::assert_largest_allocation_below(TOLERATED, what);
        }
    })
    .await;
}

/// A DescribeGroups v6 answer about group `g` (no error, Stable, consumer / range) whose member count is
/// `members` (compact) followed by `rest`.
fn describe_answer(members: &[u8], rest: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i32(0); // throttle
    b.put_u8(2); // one group
    b.put_i16(0); // no error
    b.put_u8(0); // null message
    compact(&mut b, "g");
    compact(&mut b, "Stable");
    compact(&mut b, "consumer");
    compact(&mut b, "range");
    b.put_slice(members);
    b.put_slice(rest);
    b.freeze()
}

/// One member `m` of a DescribeGroups v6 answer, its assignment's length field being `assignment_len`
/// (compact, + 1) followed by `assignment`.
fn member(assignment_len: &[u8], assignment: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    compact(&mut b, "m");
    b.put_u8(0); // no instance id
    compact(&mut b, "client");
    compact(&mut b, "/127.0.0.1");
    b.put_u8(1); // empty metadata
    b.put_slice(assignment_len);
    b.put_slice(assignment);
    b.put_u8(0); // tags
    b.to_vec()
}

#[tokio::test]
async fn describe_groups_answers_with_absurd_member_counts_or_assignment_lengths_fail_that_group() {
    bounded(60, async {
        let tail = [0, 0, 0, 0, 0, 0]; // authorized operations, group tags, response tags
                                       // 2^31 - 1 members.
        let members = describe_answer(&HUGE, &tail);
        // One member whose assignment claims 2^31 - 1 bytes.
        let assignment_bytes = describe_answer(&[2], &member(&HUGE, &[0, 0]));
        // A well-formed answer whose assignment (consumer protocol) claims 2^31 - 1 topics, beside a group
        // whose assignment is sound: only the first fails.
        let mut absurd_topics = BytesMut::new();
        absurd_topics.put_i16(0);
        absurd_topics.put_i32(i32::MAX);
        absurd_topics.put_slice(b"\0\x01t");
        let sound = ConsumerAssignment {
            version: 0,
            partitions: vec![("t".into(), vec![0])],
            user_data: None,
        }
        .encode();
        let group = |id: &str, assignment: Bytes| {
            DescribedGroup::default()
                .with_group_id(GroupId(s(id)))
                .with_group_state(s("Stable"))
                .with_protocol_type(s("consumer"))
                .with_protocol_data(s("range"))
                .with_members(vec![DescribedGroupMember::default()
                    .with_member_id(s(&format!("{id}-member")))
                    .with_client_id(s("client"))
                    .with_client_host(s("/127.0.0.1"))
                    .with_member_assignment(assignment)])
        };
        let mixed = encode(
            &DescribeGroupsResponse::default()
                .with_groups(vec![group("g", absurd_topics.freeze()), group("h", sound)]),
            DESCRIBE_V,
        );

        let answers = [mixed, members, assignment_bytes];
        let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let n = asked.clone();
        let fake = fake(move |api, _| {
            (api == ApiKey::DescribeGroups)
                .then(|| answers[n.fetch_add(1, std::sync::atomic::Ordering::SeqCst).min(2)].clone())
        })
        .await;
        let admin = admin(&fake);
        // A group whose assignment is sound is described beside one whose assignment is not.
        let described = admin.describe_groups(&["g", "h"]).await.unwrap();
        let g = described[0].1.as_ref().unwrap_err();
        assert!(is_protocol_error(g), "{g:?}");
        let h = described[1].1.as_ref().unwrap();
        assert_eq!(h.members[0].assignment, [TopicPartition::new("t", 0)]);
        assert_eq!(h.state, GroupState::Stable);
        for what in ["2^31 - 1 members", "an assignment of 2^31 - 1 bytes"] {
            let described = admin.describe_groups(&["g"]).await.unwrap();
            assert_eq!(described.len(), 1);
            let (id, outcome) = &described[0];
            assert_eq!(id, "g");
            match outcome {
                Err(e) => assert!(is_protocol_error(e), "{what}: {e:?}"),
                Ok(d) => panic!("{what}: described {d:?}"),
            }
            capped_alloc::assert_largest_allocation_below(TOLERATED, what);
        }
        // Every attempt reached the fake's DescribeGroups (no answer was made up elsewhere).
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 3);
    })
    .await;
}

#[tokio::test]
async fn groups_the_broker_does_not_have_are_not_found() {
    bounded(60, async {
        // The fake's own answer: every group unknown (GROUP_ID_NOT_FOUND at v6).
        let fake = fake(|_, _| None).await;
        let admin = admin(&fake);
        let described = admin.describe_groups(&["x", "y", "x"]).await.unwrap();
        let ids: Vec<&str> = described.iter().map(|(g, _)| g.as_str()).collect();
        assert_eq!(ids, ["x", "y"]);
        for (_, d) in &described {
            let e = d.as_ref().unwrap_err();
            assert_eq!(
                e.kafka_code(),
                Some(weir::error::KafkaCode::GroupIdNotFound),
                "{e}"
            );
        }
        assert!(admin.list_groups(&GroupFilter::all()).await.unwrap().is_empty());
    })
    .await;
}
