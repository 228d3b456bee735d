//! Fetch sessions (KIP-227), as a pure state machine: which partitions a fetch request must list and which it
//! must tell the broker to forget, so that partitions with nothing new (idle, or unchanged) are not re-sent and
//! paused or backpressured partitions leave the session cheaply and come back when fetched again.
//!
//! A session names its topics either by name (Fetch v7–v12) or by id (v13+, KIP-516), for its whole life: a
//! broker refuses a request that names them the other way (FETCH_SESSION_TOPIC_ID_ERROR). A request whose way
//! differs from its session's starts a new session. By id, a topic recreated under the same name (a new id) is
//! a different topic to the broker: its partitions are listed with the new id and forgotten with the old one.

use std::collections::HashMap;

use super::TopicPartition;

/// Session epoch of a request that asks the broker to create a new session.
const INITIAL_EPOCH: i32 = 0;
/// Session epoch of a request that neither uses nor creates a session.
const FINAL_EPOCH: i32 = -1;

/// What a broker's session keeps of one partition: the fetch offset and the most bytes to return for it, and
/// the leader epoch and topic id it is fetched with. A change of any lists the partition again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FetchAt {
    /// The topic's id when the request names topics by id, all zero when by name.
    pub(crate) topic_id: [u8; 16],
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
    /// The session names topics by id (Fetch v13+).
    by_id: bool,
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
    /// Partitions to remove from the session, with the topic id the session holds them under (all zero when
    /// by name).
    pub(crate) forgotten: Vec<(TopicPartition, [u8; 16])>,
}

impl FetchSession {
    /// A session that never asks for one (full fetch requests), for brokers without Fetch v7.
    pub(crate) fn disabled() -> Self {
        Self {
            disabled: true,
            ..Self::default()
        }
    }

    /// The request that fetches exactly `planned` (partition, offset and size), naming topics by id when
    /// `by_id` (then every `FetchAt::topic_id` is known).
    pub(crate) fn prepare(&mut self, planned: &[(TopicPartition, FetchAt)], by_id: bool) -> SessionRequest {
        if by_id != self.by_id {
            // The broker's session names topics the other way: a new session.
            self.reset();
            self.by_id = by_id;
        }
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
        // Left out, or listed under another topic id (the broker keys its session by id).
        let forgotten: Vec<(TopicPartition, [u8; 16])> = self
            .sent
            .iter()
            .filter(|(tp, at)| next.get(*tp).is_none_or(|now| now.topic_id != at.topic_id))
            .map(|(tp, at)| (tp.clone(), at.topic_id))
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
            topic_id: [0; 16],
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
        let r = s.prepare(&[(tp(0), at(0)), (tp(1), at(0)), (tp(2), at(5))], false);
        assert_eq!((r.session_id, r.epoch, r.send.len()), (0, 0, 3));
        s.on_response(0, 77);

        // Partition 0 advanced, 1 is idle (same offset), 2 was paused (not planned).
        let r = s.prepare(&[(tp(0), at(10)), (tp(1), at(0))], false);
        assert_eq!((r.session_id, r.epoch), (77, 1));
        assert_eq!(r.send, vec![(tp(0), at(10))]);
        assert_eq!(r.forgotten, vec![(tp(2), [0; 16])]);
        s.on_response(0, 77);

        // 2 resumed: back into the session at its offset.
        let r = s.prepare(&[(tp(0), at(10)), (tp(1), at(0)), (tp(2), at(5))], false);
        assert_eq!(r.epoch, 2);
        assert_eq!(r.send, vec![(tp(2), at(5))]);
        assert!(r.forgotten.is_empty());
    }

    /// A partition whose size changes (a batch larger than its ask, a new fair share) is listed again, so
    /// that the broker's session uses the new size.
    #[test]
    fn a_new_size_lists_the_partition_again() {
        let mut s = FetchSession::default();
        s.prepare(&[(tp(0), at(0)), (tp(1), at(0))], false);
        s.on_response(0, 5);
        let bigger = FetchAt {
            max_bytes: 4 << 20,
            ..at(0)
        };
        let r = s.prepare(&[(tp(0), bigger), (tp(1), at(0))], false);
        assert_eq!(r.send, vec![(tp(0), bigger)]);
        assert!(r.forgotten.is_empty());
    }

    #[test]
    fn session_errors_restart_with_a_full_request() {
        let mut s = FetchSession::default();
        s.prepare(&[(tp(0), at(0))], false);
        s.on_response(0, 9);
        s.prepare(&[(tp(0), at(1))], false);
        s.on_response(71, 0); // INVALID_FETCH_SESSION_EPOCH
        let r = s.prepare(&[(tp(0), at(1))], false);
        assert_eq!((r.session_id, r.epoch, r.send.len()), (0, 0, 1));
    }

    #[test]
    fn brokers_without_sessions_get_full_requests() {
        let mut s = FetchSession::default();
        s.prepare(&[(tp(0), at(0))], false);
        s.on_response(0, 0); // no session created
        let r = s.prepare(&[(tp(0), at(3))], false);
        assert_eq!((r.session_id, r.epoch, r.send.len()), (0, 0, 1));
        let mut d = FetchSession::disabled();
        assert_eq!(d.prepare(&[(tp(0), at(0))], false).epoch, -1);
    }

    fn by_id(offset: i64, id: u8) -> FetchAt {
        FetchAt {
            topic_id: [id; 16],
            ..at(offset)
        }
    }

    /// By id, a partition is forgotten under the id the session holds it by; a topic recreated under its name
    /// (a new id) is listed with the new id and forgotten with the old one.
    #[test]
    fn by_id_partitions_are_forgotten_under_the_id_the_session_holds() {
        let mut s = FetchSession::default();
        let r = s.prepare(&[(tp(0), by_id(0, 1)), (tp(1), by_id(0, 1))], true);
        assert_eq!((r.session_id, r.epoch, r.send.len()), (0, 0, 2));
        s.on_response(0, 5);
        let r = s.prepare(&[(tp(0), by_id(0, 2))], true);
        assert_eq!(r.epoch, 1);
        assert_eq!(r.send, vec![(tp(0), by_id(0, 2))]);
        let mut forgotten = r.forgotten.clone();
        forgotten.sort_by_key(|(tp, _)| tp.partition);
        assert_eq!(forgotten, vec![(tp(0), [1; 16]), (tp(1), [1; 16])]);
    }

    /// A request naming topics the other way than its session (by name after by id: a topic whose id is not
    /// known) starts a new session, which the broker would otherwise refuse.
    #[test]
    fn switching_between_names_and_ids_starts_a_new_session() {
        let mut s = FetchSession::default();
        s.prepare(&[(tp(0), by_id(0, 1))], true);
        s.on_response(0, 5);
        let r = s.prepare(&[(tp(0), at(3))], false);
        assert_eq!((r.session_id, r.epoch, r.send.len()), (0, 0, 1));
        assert!(r.forgotten.is_empty());
        s.on_response(0, 6);
        let r = s.prepare(&[(tp(0), at(3))], false);
        assert_eq!((r.session_id, r.epoch), (6, 1), "then incremental by name");
        let r = s.prepare(&[(tp(0), by_id(3, 1))], true);
        assert_eq!((r.session_id, r.epoch), (0, 0), "and back by id: new again");
    }
}
