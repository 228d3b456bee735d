//! Fetch sessions (KIP-227), as a pure state machine: which partitions a fetch request must list and which it
//! must tell the broker to forget, so that partitions with nothing new (idle, or unchanged) are not re-sent and
//! paused or backpressured partitions leave the session cheaply and come back when fetched again.

use std::collections::HashMap;

use super::TopicPartition;

/// Session epoch of a request that asks the broker to create a new session.
const INITIAL_EPOCH: i32 = 0;
/// Session epoch of a request that neither uses nor creates a session.
const FINAL_EPOCH: i32 = -1;

/// What a broker's session keeps of one partition: the fetch offset and the most bytes to return for it. A
/// change of either lists the partition again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FetchAt {
    pub(crate) offset: i64,
    pub(crate) max_bytes: i32,
    /// The leader epoch known from metadata (-1: unknown); a new one lists the partition again.
    pub(crate) leader_epoch: i32,
}

/// One fetch session with one broker. Requests of a session must be sent one at a time, in order.
#[derive(Debug, Default)]
pub(crate) struct FetchSession {
    id: i32,
    epoch: i32,
    disabled: bool,
    /// What the broker's session holds: partition -> fetch offset and max bytes last sent.
    sent: HashMap<TopicPartition, FetchAt>,
}

/// What to put in one fetch request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SessionRequest {
    pub(crate) session_id: i32,
    pub(crate) epoch: i32,
    /// Partitions to list (new to the session, or at a new offset or size), with their fetch offset and size.
    pub(crate) send: Vec<(TopicPartition, FetchAt)>,
    /// Partitions to remove from the session.
    pub(crate) forgotten: Vec<TopicPartition>,
}

impl FetchSession {
    /// A session that never asks for one (full fetch requests), for brokers without Fetch v7.
    pub(crate) fn disabled() -> Self {
        Self {
            disabled: true,
            ..Self::default()
        }
    }

    /// The request that fetches exactly `planned` (partition, offset and size).
    pub(crate) fn prepare(&mut self, planned: &[(TopicPartition, FetchAt)]) -> SessionRequest {
        if self.disabled || self.id == 0 {
            self.sent = planned.iter().cloned().collect();
            return SessionRequest {
                session_id: 0,
                epoch: if self.disabled { FINAL_EPOCH } else { INITIAL_EPOCH },
                send: planned.to_vec(),
                forgotten: Vec::new(),
            };
        }
        let send: Vec<(TopicPartition, FetchAt)> = planned
            .iter()
            .filter(|(tp, off)| self.sent.get(tp) != Some(off))
            .cloned()
            .collect();
        let mut next: HashMap<TopicPartition, FetchAt> = planned.iter().cloned().collect();
        let forgotten: Vec<TopicPartition> = self
            .sent
            .keys()
            .filter(|tp| !next.contains_key(*tp))
            .cloned()
            .collect();
        std::mem::swap(&mut self.sent, &mut next);
        SessionRequest {
            session_id: self.id,
            epoch: self.epoch,
            send,
            forgotten,
        }
    }

    /// Records the broker's answer to the last prepared request (`error_code` is the response's top-level code).
    pub(crate) fn on_response(&mut self, error_code: i16, session_id: i32) {
        if self.disabled {
            return;
        }
        if error_code != 0 {
            // FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH or anything else: start over with a full
            // request.
            self.reset();
        } else if self.id == 0 {
            if session_id != 0 {
                self.id = session_id;
                self.epoch = 1;
            }
        } else {
            self.epoch = if self.epoch == i32::MAX { 1 } else { self.epoch + 1 };
        }
    }

    /// Forgets the session (after a failed request or a lost connection): the next request is a full one.
    pub(crate) fn reset(&mut self) {
        self.id = 0;
        self.epoch = INITIAL_EPOCH;
        self.sent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: i64) -> FetchAt {
        FetchAt {
            offset,
            max_bytes: 1 << 20,
            leader_epoch: 3,
        }
    }

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    #[test]
    fn full_then_incremental_then_forgotten() {
        let mut s = FetchSession::default();
        let r = s.prepare(&[(tp(0), at(0)), (tp(1), at(0)), (tp(2), at(5))]);
        assert_eq!((r.session_id, r.epoch, r.send.len()), (0, 0, 3));
        s.on_response(0, 77);

        // Partition 0 advanced, 1 is idle (same offset), 2 was paused (not planned).
        let r = s.prepare(&[(tp(0), at(10)), (tp(1), at(0))]);
        assert_eq!((r.session_id, r.epoch), (77, 1));
        assert_eq!(r.send, vec![(tp(0), at(10))]);
        assert_eq!(r.forgotten, vec![tp(2)]);
        s.on_response(0, 77);

        // 2 resumed: back into the session at its offset.
        let r = s.prepare(&[(tp(0), at(10)), (tp(1), at(0)), (tp(2), at(5))]);
        assert_eq!(r.epoch, 2);
        assert_eq!(r.send, vec![(tp(2), at(5))]);
        assert!(r.forgotten.is_empty());
    }

    /// A partition whose size changes (a batch larger than its ask, a new fair share) is listed again, so
    /// that the broker's session uses the new size.
    #[test]
    fn a_new_size_lists_the_partition_again() {
        let mut s = FetchSession::default();
        s.prepare(&[(tp(0), at(0)), (tp(1), at(0))]);
        s.on_response(0, 5);
        let bigger = FetchAt {
            max_bytes: 4 << 20,
            ..at(0)
        };
        let r = s.prepare(&[(tp(0), bigger), (tp(1), at(0))]);
        assert_eq!(r.send, vec![(tp(0), bigger)]);
        assert!(r.forgotten.is_empty());
    }

    #[test]
    fn session_errors_restart_with_a_full_request() {
        let mut s = FetchSession::default();
        s.prepare(&[(tp(0), at(0))]);
        s.on_response(0, 9);
        s.prepare(&[(tp(0), at(1))]);
        s.on_response(71, 0); // INVALID_FETCH_SESSION_EPOCH
        let r = s.prepare(&[(tp(0), at(1))]);
        assert_eq!((r.session_id, r.epoch, r.send.len()), (0, 0, 1));
    }

    #[test]
    fn brokers_without_sessions_get_full_requests() {
        let mut s = FetchSession::default();
        s.prepare(&[(tp(0), at(0))]);
        s.on_response(0, 0); // no session created
        let r = s.prepare(&[(tp(0), at(3))]);
        assert_eq!((r.session_id, r.epoch, r.send.len()), (0, 0, 1));
        let mut d = FetchSession::disabled();
        assert_eq!(d.prepare(&[(tp(0), at(0))]).epoch, -1);
    }
}
