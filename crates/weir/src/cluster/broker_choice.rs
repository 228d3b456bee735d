//! Which broker to ask first for a request any broker can answer (Metadata, FindCoordinator, most admin calls),
//! in the spirit of the Java client's least-loaded node: a broker with an open connection first (the one with
//! the fewest requests awaiting answers), then one that can connect at once, then one whose attempt to connect
//! is still under way, and a broker waiting out its reconnect backoff last, so that nobody waits for a broker
//! that just failed while another could answer. A pure function of the links' states.

use std::collections::HashMap;

use crate::net::LinkState;

/// The order in which to try `links` (each an address and its link's state; an address may have several
/// links, such as a broker's and a bootstrap address's): indices into `links`, one per address.
///
/// Per address, an open connection speaks for it (the least loaded one, if several); otherwise what is known
/// against it does: a backoff (the latest), else an attempt under way, else a lost connection. Addresses are
/// then ordered: open connections (fewest requests in flight first), never-connected addresses, addresses
/// whose connection was lost and whose backoff is over, attempts under way (an attempt that has not finished
/// is what a dead host looks like, so a fresh attempt elsewhere goes first), and backoffs (the soonest over
/// first). Ties keep the given order, rotated by `start`, so successive choices spread over equal brokers.
pub(crate) fn try_order(links: &[(&str, LinkState)], start: usize) -> Vec<usize> {
    let n = links.len();
    let mut rotated: Vec<usize> = (0..n).collect();
    rotated.rotate_left(start.checked_rem(n).unwrap_or(0));
    // Per address (in rotated order of first appearance), the index of the link that speaks for it.
    let mut chosen: Vec<usize> = Vec::with_capacity(n);
    let mut by_addr: HashMap<&str, usize> = HashMap::with_capacity(n);
    for i in rotated {
        match by_addr.get(links[i].0) {
            None => {
                by_addr.insert(links[i].0, chosen.len());
                chosen.push(i);
            }
            Some(&slot) => {
                if speaks_louder(links[i].1, links[chosen[slot]].1) {
                    chosen[slot] = i;
                }
            }
        }
    }
    // A stable sort: ties keep the rotated order.
    chosen.sort_by_key(|&i| rank(links[i].1));
    chosen
}

/// Whether `a` says more than `b` about an address whose links are in states `a` and `b`.
fn speaks_louder(a: LinkState, b: LinkState) -> bool {
    use LinkState::*;
    match (a, b) {
        (Ready { in_flight: x }, Ready { in_flight: y }) => x < y,
        (Ready { .. }, _) => true,
        (_, Ready { .. }) => false,
        (Backoff { until: x }, Backoff { until: y }) => x > y,
        _ => evidence(a) > evidence(b),
    }
}

/// How much a state without an open connection says against its address.
fn evidence(s: LinkState) -> u8 {
    match s {
        LinkState::Ready { .. } | LinkState::Idle => 0,
        LinkState::Lost => 1,
        LinkState::Connecting => 2,
        LinkState::Backoff { .. } => 3,
    }
}

/// The sort key of an address by the state speaking for it (lower: tried sooner).
fn rank(s: LinkState) -> (u8, usize, Option<tokio::time::Instant>) {
    match s {
        LinkState::Ready { in_flight } => (0, in_flight, None),
        LinkState::Idle => (1, 0, None),
        LinkState::Lost => (2, 0, None),
        LinkState::Connecting => (3, 0, None),
        LinkState::Backoff { until } => (4, 0, Some(until)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use LinkState::*;

    fn order(links: &[(&str, LinkState)], start: usize) -> Vec<usize> {
        try_order(links, start)
    }

    #[test]
    fn a_link_in_backoff_comes_after_every_link_that_can_answer() {
        let later = Instant::now() + Duration::from_secs(1);
        let links = [
            ("dead:9092", Backoff { until: later }),
            ("b:9092", Ready { in_flight: 3 }),
            ("c:9092", Lost),
            ("d:9092", Connecting),
            ("e:9092", Idle),
        ];
        for start in 0..links.len() {
            assert_eq!(order(&links, start), vec![1, 4, 2, 3, 0], "start {start}");
        }
    }

    #[test]
    fn ready_links_go_first_fewest_in_flight_first() {
        let links = [
            ("a:1", Idle),
            ("b:1", Ready { in_flight: 5 }),
            ("c:1", Ready { in_flight: 0 }),
            ("d:1", Ready { in_flight: 2 }),
        ];
        assert_eq!(order(&links, 0), vec![2, 3, 1, 0]);
    }

    #[test]
    fn backoffs_are_tried_soonest_over_first() {
        let now = Instant::now();
        let links = [
            (
                "a:1",
                Backoff {
                    until: now + Duration::from_millis(900),
                },
            ),
            (
                "b:1",
                Backoff {
                    until: now + Duration::from_millis(100),
                },
            ),
            (
                "c:1",
                Backoff {
                    until: now + Duration::from_millis(500),
                },
            ),
        ];
        assert_eq!(order(&links, 0), vec![1, 2, 0]);
    }

    #[test]
    fn ties_are_rotated_by_start() {
        let links = [("a:1", Idle), ("b:1", Idle), ("c:1", Idle)];
        assert_eq!(order(&links, 0), vec![0, 1, 2]);
        assert_eq!(order(&links, 1), vec![1, 2, 0]);
        assert_eq!(order(&links, 5), vec![2, 0, 1]);
        let ready = [
            ("a:1", Ready { in_flight: 1 }),
            ("b:1", Ready { in_flight: 1 }),
            ("c:1", Idle),
        ];
        assert_eq!(order(&ready, 1), vec![1, 0, 2]);
    }

    #[test]
    fn one_link_per_address_an_open_connection_speaking_for_it() {
        // A broker's link and a bootstrap link to the same address.
        let links = [("a:1", Lost), ("b:1", Idle), ("a:1", Ready { in_flight: 0 })];
        assert_eq!(order(&links, 0), vec![2, 1]);
        let two_open = [("a:1", Ready { in_flight: 4 }), ("a:1", Ready { in_flight: 1 })];
        assert_eq!(order(&two_open, 0), vec![1]);
    }

    #[test]
    fn an_address_that_failed_is_in_backoff_even_through_an_unused_link() {
        // The dead broker's link is in backoff; the bootstrap link to the same address was never used.
        let later = Instant::now() + Duration::from_secs(1);
        let links = [
            ("dead:1", Idle),
            ("live:1", Idle),
            ("dead:1", Backoff { until: later }),
        ];
        for start in 0..links.len() {
            assert_eq!(order(&links, start), vec![1, 2], "start {start}");
        }
        let connecting = [("dead:1", Connecting), ("live:1", Lost), ("dead:1", Idle)];
        assert_eq!(order(&connecting, 2), vec![1, 0]);
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(order(&[], 3).is_empty());
    }
}
