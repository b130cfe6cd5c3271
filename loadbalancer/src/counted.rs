//! Which viewers each node has counted lately: what lets a live playlist request collapse.
//!
//! A node counts its viewers by the client addresses its live playlist requests come from
//! (the `x-forwarded-for` this load balancer sets), over
//! [`VIEWER_WINDOW`](domain::load::VIEWER_WINDOW). A viewer's playlist request answered
//! with another's answer ([`crate::collapse`]) never reaches the node, so it may be
//! answered that way only while the node has seen one from the same address for the same
//! stream within half that window ([`RECOUNT_WITHIN`]); every other one goes to the node,
//! and is noted here when it does. An LL-HLS player reloads every part (about three times
//! a second), so all but about one in fifteen of its reloads may collapse while its node
//! still counts it.
//!
//! A client is what the node counts as one viewer ([`ClientGroup`]: an IPv4 address or an
//! IPv6 /64), so that a request is answered for another of the same /64 only while the
//! node has counted that /64.
//!
//! Kept per (client, node and stream), hashed: at most [`MAX_COUNTED`] entries,
//! pruned every [`RECOUNT_WITHIN`]. When full, a viewer not yet noted is not noted: its
//! requests all go to the node, as they would without collapsing.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use domain::{ClientGroup, NodeId, StreamName};
use parking_lot::Mutex;

/// How recently a node must have seen a viewer's playlist request for the next one to
/// collapse: half the node's counting window, so a viewer that keeps watching is never
/// out of its node's count.
pub const RECOUNT_WITHIN: Duration = Duration::from_secs(domain::load::VIEWER_WINDOW.as_secs() / 2);

/// The most (client, node, stream) entries kept: about 40 bytes each, so under 16 MiB.
pub const MAX_COUNTED: usize = 1 << 18;

/// The viewers each node has counted within a time.
#[derive(Debug)]
pub struct Counted {
    within: Duration,
    hasher: RandomState,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// (client, hash of node and stream) → when its request last went to the node.
    at: HashMap<(ClientGroup, u64), Instant>,
    pruned: Option<Instant>,
}

impl Default for Counted {
    fn default() -> Self {
        Self::within(RECOUNT_WITHIN)
    }
}

impl Counted {
    /// Viewers count as counted for `within` after their request reached their node.
    pub fn within(within: Duration) -> Self {
        Counted {
            within,
            hasher: RandomState::new(),
            inner: Mutex::new(Inner {
                at: HashMap::new(),
                pruned: None,
            }),
        }
    }

    fn key(&self, client: IpAddr, node: &NodeId, stream: &StreamName) -> (ClientGroup, u64) {
        (
            ClientGroup::of(client),
            self.hasher.hash_one((node, stream)),
        )
    }

    /// Whether `node` saw a live playlist request of `stream` from `client` within the
    /// time, so that this one may be answered without it.
    pub fn fresh(&self, client: IpAddr, node: &NodeId, stream: &StreamName, now: Instant) -> bool {
        let key = self.key(client, node, stream);
        self.inner
            .lock()
            .at
            .get(&key)
            .is_some_and(|t| now.saturating_duration_since(*t) < self.within)
    }

    /// A live playlist request of `stream` from `client` goes to `node` at `now`.
    pub fn reached(&self, client: IpAddr, node: &NodeId, stream: &StreamName, now: Instant) {
        let key = self.key(client, node, stream);
        let mut inner = self.inner.lock();
        let due = inner
            .pruned
            .is_none_or(|t| now.saturating_duration_since(t) >= self.within);
        if due {
            let within = self.within;
            inner
                .at
                .retain(|_, t| now.saturating_duration_since(*t) < within);
            inner.pruned = Some(now);
        }
        if let Some(t) = inner.at.get_mut(&key) {
            *t = now;
        } else if inner.at.len() < MAX_COUNTED {
            inner.at.insert(key, now);
        }
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.inner.lock().at.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n))
    }

    fn node(name: &str) -> NodeId {
        NodeId::new(name).expect("node")
    }

    fn stream(name: &str) -> StreamName {
        StreamName::new(name).expect("stream")
    }

    #[test]
    fn fresh_only_for_the_same_client_node_and_stream_within_the_time() {
        let counted = Counted::default();
        let t0 = Instant::now();
        let (a, s) = (node("a"), stream("cam"));
        assert!(!counted.fresh(ip(1), &a, &s, t0), "never seen");
        counted.reached(ip(1), &a, &s, t0);
        assert!(counted.fresh(ip(1), &a, &s, t0));
        assert!(counted.fresh(
            ip(1),
            &a,
            &s,
            t0 + RECOUNT_WITHIN - Duration::from_millis(1)
        ));
        assert!(!counted.fresh(ip(1), &a, &s, t0 + RECOUNT_WITHIN), "stale");
        assert!(!counted.fresh(ip(2), &a, &s, t0), "another client");
        assert!(!counted.fresh(ip(1), &node("b"), &s, t0), "another node");
        assert!(
            !counted.fresh(ip(1), &a, &stream("other"), t0),
            "another stream"
        );
        counted.reached(ip(1), &a, &s, t0 + Duration::from_secs(4));
        assert!(
            counted.fresh(ip(1), &a, &s, t0 + Duration::from_secs(8)),
            "reaching again renews it"
        );
    }

    /// Issue 45 item 11: the node counts an IPv6 /64 as one viewer, so the addresses of a
    /// counted /64 are fresh, and another /64 is not.
    #[test]
    fn an_ipv6_64_is_one_client() {
        let counted = Counted::default();
        let t0 = Instant::now();
        let (a, s) = (node("a"), stream("cam"));
        let v6 = |text: &str| -> IpAddr { text.parse().expect(text) };
        counted.reached(v6("2001:db8:1:2::1"), &a, &s, t0);
        assert!(counted.fresh(v6("2001:db8:1:2:ffff::9"), &a, &s, t0));
        assert!(!counted.fresh(v6("2001:db8:1:3::1"), &a, &s, t0));
        counted.reached(v6("::ffff:192.0.2.1"), &a, &s, t0);
        assert!(counted.fresh(v6("192.0.2.1"), &a, &s, t0), "mapped is IPv4");
        assert_eq!(counted.len(), 2);
    }

    #[test]
    fn the_window_is_half_the_nodes() {
        assert_eq!(RECOUNT_WITHIN * 2, domain::load::VIEWER_WINDOW);
    }

    #[test]
    fn stale_entries_are_pruned_and_a_full_table_notes_no_one_new() {
        let counted = Counted::within(Duration::from_secs(1));
        let t0 = Instant::now();
        let (a, s) = (node("a"), stream("cam"));
        for n in 0..100 {
            counted.reached(ip(n), &a, &s, t0);
        }
        assert_eq!(counted.len(), 100);
        counted.reached(ip(1000), &a, &s, t0 + Duration::from_secs(2));
        assert_eq!(counted.len(), 1, "the stale ones went");

        let t1 = t0 + Duration::from_secs(3);
        for n in 0..MAX_COUNTED as u32 {
            counted.reached(ip(n), &a, &s, t1);
        }
        assert_eq!(counted.len(), MAX_COUNTED);
        counted.reached(ip(u32::MAX >> 1), &a, &s, t1);
        assert_eq!(counted.len(), MAX_COUNTED, "bounded");
        assert!(
            !counted.fresh(ip(u32::MAX >> 1), &a, &s, t1),
            "not noted, so never answered without its node"
        );
        assert!(counted.fresh(ip(7), &a, &s, t1), "those noted stay");
    }

    proptest! {
        /// Whatever the order of requests, a client is fresh exactly when its last
        /// request to the node is less than the time ago (a model with no bound).
        #[test]
        fn fresh_matches_a_model(ops in proptest::collection::vec((0u32..4, 0u64..3000, any::<bool>()), 1..60)) {
            let counted = Counted::within(Duration::from_millis(1000));
            let (a, s) = (node("a"), stream("cam"));
            let t0 = Instant::now();
            let mut now = t0;
            let mut last: HashMap<u32, Instant> = HashMap::new();
            for (client, step, reach) in ops {
                now += Duration::from_millis(step);
                let expected = last
                    .get(&client)
                    .is_some_and(|t| now.duration_since(*t) < Duration::from_millis(1000));
                prop_assert_eq!(counted.fresh(ip(client), &a, &s, now), expected);
                if reach {
                    counted.reached(ip(client), &a, &s, now);
                    last.insert(client, now);
                }
            }
        }
    }
}
