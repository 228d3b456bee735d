//! DescribeQuorum (API 55, v0): which voter leads the KRaft metadata quorum, i.e. which node is the active
//! controller. Asked of a node's controller listener, which answers only if that node is the quorum's leader
//! (the others say NOT_LEADER_OR_FOLLOWER).

use std::time::Duration;

use super::call_flexible;
use super::flexible::{Reader, Writer};

const API: (&str, i16, i16) = ("DescribeQuorum", 55, 0);
/// The metadata log's topic and partition.
const METADATA_TOPIC: &str = "__cluster_metadata";

/// The quorum's leader and epoch as the node on `controller_port` reports them: `Ok(None)` when that node
/// answers that it is not the leader (or knows none), `Err` when it cannot be asked or answers otherwise.
pub(crate) fn leader(controller_port: u16, timeout: Duration) -> Result<Option<(i32, i32)>, String> {
    let mut w = Writer::default();
    w.len(1).string(METADATA_TOPIC);
    w.len(1).i32(0).tags();
    w.tags().tags();
    let body = call_flexible(controller_port, API, &w.finish(), timeout)?;
    let mut r = Reader::new(body, API.0);
    match r.i16("error code")? {
        0 => {}
        NOT_LEADER_OR_FOLLOWER => return Ok(None),
        e => return Err(format!("DescribeQuorum: error code {e}")),
    }
    // Topic name (1), partitions (1), tags (1).
    if r.len(3, "topics")? != Some(1) {
        return Err("DescribeQuorum: not one topic in the answer".into());
    }
    r.string("topic name")?;
    // Index, error, leader, epoch, high watermark, voters, observers, tags: 4 + 2 + 4 + 4 + 8 + 1 + 1 + 1.
    if r.len(25, "partitions")? != Some(1) {
        return Err("DescribeQuorum: not one partition in the answer".into());
    }
    r.i32("partition index")?;
    match r.i16("partition error code")? {
        0 => {}
        NOT_LEADER_OR_FOLLOWER => return Ok(None),
        e => return Err(format!("DescribeQuorum: partition error code {e}")),
    }
    let leader = r.i32("leader id")?;
    let epoch = r.i32("leader epoch")?;
    Ok((leader >= 0).then_some((leader, epoch)))
}

const NOT_LEADER_OR_FOLLOWER: i16 = 6;
