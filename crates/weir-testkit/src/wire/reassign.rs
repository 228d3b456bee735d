//! AlterPartitionReassignments (API 45, v0): moving partitions to other brokers. The broker forwards it to the
//! active controller, which adds the new replicas, waits until they are in sync, then drops the old ones (and
//! elects a new leader if the old one is no longer a replica). Its completion is seen in Metadata.

use std::time::Duration;

use super::call_flexible;
use super::flexible::{Reader, Writer};

const API: (&str, i16, i16) = ("AlterPartitionReassignments", 45, 0);

/// Asks the node on `port` to move each `(partition, replicas)` of `topic` to its replicas (the first is the
/// preferred leader). Returns once the controller accepted every move, or the first refusal as text.
pub(crate) fn alter(
    port: u16,
    topic: &str,
    moves: &[(i32, Vec<i32>)],
    timeout: Duration,
) -> Result<(), String> {
    let mut w = Writer::default();
    w.i32(timeout.as_millis() as i32);
    w.len(1).string(topic).len(moves.len());
    for (partition, replicas) in moves {
        w.i32(*partition).len(replicas.len());
        for r in replicas {
            w.i32(*r);
        }
        w.tags();
    }
    w.tags().tags();
    let body = call_flexible(port, API, &w.finish(), timeout)?;
    let mut r = Reader::new(body, API.0);
    r.i32("throttle time")?;
    let error = r.i16("error code")?;
    let message = r.string("error message")?;
    if error != 0 {
        return Err(format!("error code {error}: {}", message.unwrap_or_default()));
    }
    // Name (1), partitions (1), tags (1).
    let topics = r.len(3, "topics")?.unwrap_or(0);
    let mut answered = 0;
    for _ in 0..topics {
        r.string("topic name")?;
        // Index, error, message, tags: 4 + 2 + 1 + 1.
        for _ in 0..r.len(8, "partitions")?.unwrap_or(0) {
            let partition = r.i32("partition index")?;
            let error = r.i16("partition error code")?;
            let message = r.string("partition error message")?;
            r.tags()?;
            if error != 0 {
                return Err(format!(
                    "{topic}/{partition}: error code {error}: {}",
                    message.unwrap_or_default()
                ));
            }
            answered += 1;
        }
        r.tags()?;
    }
    if answered != moves.len() {
        return Err(format!("{answered} partitions answered of {}", moves.len()));
    }
    Ok(())
}
