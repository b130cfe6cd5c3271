//! Which broadcast node a request goes to: the backend set, its membership, and the choice.
//! Sans-IO: everything takes `&mut self` and does no I/O.
//!
//! One file per policy, as pingora's `selection/` lays them out:
//!
//! - [`Mode::Cookie`], the default: [`sticky`] keeps a viewer whose trusted
//!   `sealcast_node` cookie names an eligible node on that node; every other viewer is
//!   placed by [`least_loaded`] (fewest active requests per unit of weight, equals taking
//!   turns) and pinned there with a fresh cookie.
//! - [`Mode::Hash`]: [`ketama`] maps the client address onto a consistent-hash ring of the
//!   placeable nodes and neither reads nor sets cookies.
//!
//! What they share: `backend` ([`BackendState`], [`Weight`]: what is known about one node,
//! and which nodes new viewers may be placed on: the caught-up ones, or every eligible one
//! when none is) and `route` ([`RequestInfo`] in, [`Choice`] out). A node behind live
//! keeps the viewers whose cookie names it (they are served from its window meanwhile) but
//! takes no new ones while another node is caught up, in either mode.
//!
//! # Concurrency
//!
//! The proxy keeps one [`Backends`] behind a mutex, calls [`Backends::choose`] per request
//! and [`Backends::connection_opened`] / [`Backends::connection_closed`] around each
//! upstream request, and feeds membership and health changes in from its MQTT and
//! health-check tasks.

mod backend;
pub mod ketama;
pub mod least_loaded;
mod route;
pub mod sticky;
#[cfg(test)]
mod testing;

use std::collections::BTreeMap;

use domain::NodeId;

pub use backend::{BackendState, Weight};
pub use route::{Choice, Reason, RequestInfo, Route};

use crate::cookie::StickyCookies;
use ketama::Ketama;
use least_loaded::LeastLoaded;
use sticky::Sticky;

/// How viewers without a say are placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Signed sticky cookie; least-loaded node for viewers without a trusted one.
    #[default]
    Cookie,
    /// Consistent hashing of the client address, for players that drop cookies.
    Hash,
}

/// Running totals since start, for the caller to export as Prometheus counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Requests sent to the node their trusted cookie named.
    pub sticky_hits: u64,
    /// Requests that carried a `sealcast_node` cookie that could not be honoured
    /// (rejected, or naming a node that is not eligible).
    pub sticky_misses: u64,
    /// Requests with no `sealcast_node` cookie.
    pub new_viewers: u64,
    /// Requests whose cookie was rejected (forged, malformed, stale, future-dated).
    pub cookies_rejected: u64,
    /// Viewers moved off the node their trusted cookie named (a backend choice change).
    pub choice_changes: u64,
    /// Requests placed by the hash ring.
    pub hashed: u64,
    /// Requests for which no node was eligible.
    pub no_backend: u64,
}

impl Counters {
    /// Counts a request routed for `reason`.
    fn routed(&mut self, reason: &Reason) {
        match reason {
            Reason::Moved { .. } => {
                self.sticky_misses += 1;
                self.choice_changes += 1;
            }
            Reason::CookieRejected(_) => {
                self.sticky_misses += 1;
                self.cookies_rejected += 1;
            }
            Reason::NewViewer => self.new_viewers += 1,
            Reason::StickyHit => self.sticky_hits += 1,
            Reason::Hashed => self.hashed += 1,
        }
    }
}

/// The broadcast nodes and the choice among them.
#[derive(Debug)]
pub struct Backends {
    /// By id, so iteration, tie-breaks and ring building are the same on every load
    /// balancer given the same membership.
    nodes: BTreeMap<NodeId, BackendState>,
    mode: Mode,
    cookies: StickyCookies,
    /// The least-loaded policy's turn-taking between equally loaded nodes.
    least_loaded: LeastLoaded,
    /// The hash policy's ring.
    ketama: Ketama,
    counters: Counters,
}

impl Backends {
    /// An empty set that signs cookies with `cookies`.
    pub fn new(cookies: StickyCookies, mode: Mode) -> Self {
        Backends {
            nodes: BTreeMap::new(),
            mode,
            cookies,
            least_loaded: LeastLoaded::default(),
            ketama: Ketama::default(),
            counters: Counters::default(),
        }
    }

    /// The placement mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Changes the placement mode (for a config reload).
    pub fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    /// The cookie signer, for callers that need to verify a cookie outside a choice.
    pub fn cookies(&self) -> &StickyCookies {
        &self.cookies
    }

    /// Adds a node seen in presence, neither healthy nor ready yet; or, if it is already
    /// known, updates its weight and keeps its state. Returns whether it is new.
    pub fn join(&mut self, node: NodeId, weight: Weight) -> bool {
        if let Some(state) = self.nodes.get_mut(&node) {
            if state.weight != weight {
                state.weight = weight;
                self.ketama.invalidate();
            }
            return false;
        }
        // A new node is neither healthy nor ready, so the ring of eligible nodes is unchanged.
        self.nodes.insert(node, BackendState::joined(weight));
        true
    }

    /// Removes a node (presence offline, or its last will). Returns whether it was known.
    /// Viewers pinned to it are moved on their next request.
    pub fn leave(&mut self, node: &NodeId) -> bool {
        let known = self.nodes.remove(node).is_some();
        if known {
            self.ketama.invalidate();
            self.least_loaded.forget(node);
        }
        known
    }

    /// Records the node's presence state (ready or still joining). Returns whether the
    /// node is known.
    pub fn set_ready(&mut self, node: &NodeId, ready: bool) -> bool {
        self.update(node, |state| state.ready = ready)
    }

    /// Records whether the node says it is behind live. Returns whether it is known.
    pub fn set_behind(&mut self, node: &NodeId, behind: bool) -> bool {
        self.update(node, |state| state.behind = behind)
    }

    /// Records whether the node says it is draining (shutting down). Returns whether it
    /// is known.
    pub fn set_draining(&mut self, node: &NodeId, draining: bool) -> bool {
        self.update(node, |state| state.draining = draining)
    }

    /// Records a health-check result. Returns whether the node is known.
    pub fn set_healthy(&mut self, node: &NodeId, healthy: bool) -> bool {
        self.update(node, |state| state.healthy = healthy)
    }

    /// One more request open to `node` (call after [`Backends::choose`] routed there).
    pub fn connection_opened(&mut self, node: &NodeId) {
        if let Some(state) = self.nodes.get_mut(node) {
            state.active = state.active.saturating_add(1);
        }
    }

    /// One request to `node` finished. A node that left and came back meanwhile starts
    /// from zero, so this saturates rather than underflows.
    pub fn connection_closed(&mut self, node: &NodeId) {
        if let Some(state) = self.nodes.get_mut(node) {
            state.active = state.active.saturating_sub(1);
        }
    }

    /// What is known about `node`.
    pub fn get(&self, node: &NodeId) -> Option<&BackendState> {
        self.nodes.get(node)
    }

    /// Every known node, by id (for per-backend metrics and status pages).
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &BackendState)> {
        self.nodes.iter()
    }

    /// Whether `node` is known, healthy and ready.
    pub fn is_eligible(&self, node: &NodeId) -> bool {
        self.get(node).is_some_and(BackendState::is_eligible)
    }

    /// The running totals.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Where `request` goes, and which cookie to set.
    pub fn choose(&mut self, request: &RequestInfo<'_>) -> Choice {
        let route = match self.mode {
            Mode::Cookie => {
                let nodes = &self.nodes;
                // A draining node keeps its viewers only while no other node may (asked
                // only then: the other nodes are looked at for a draining one's viewers).
                let eligible = |node: &NodeId| {
                    nodes.get(node).is_some_and(|s| {
                        s.is_eligible()
                            && (!s.draining || BackendState::placeable(nodes.values())(s))
                    })
                };
                match sticky::check(&self.cookies, request, eligible) {
                    Sticky::Stay(route) => Some(route),
                    Sticky::Place(reason) => self
                        .least_loaded
                        .pick(&self.nodes)
                        .map(|node| sticky::pin(&self.cookies, node, reason, request.now)),
                }
            }
            Mode::Hash => self
                .ketama
                .owner(&self.nodes, request.client)
                .map(|node| Route {
                    node,
                    reason: Reason::Hashed,
                    set_cookie: None,
                }),
        };
        match route {
            Some(route) => {
                self.counters.routed(&route.reason);
                Choice::Route(route)
            }
            None => {
                self.counters.no_backend += 1;
                Choice::NoBackend
            }
        }
    }

    fn update(&mut self, node: &NodeId, change: impl FnOnce(&mut BackendState)) -> bool {
        let Some(state) = self.nodes.get_mut(node) else {
            return false;
        };
        let tiers = |s: &BackendState| (s.is_eligible(), s.is_staying(), s.is_caught_up());
        let was = tiers(state);
        change(state);
        if tiers(state) != was {
            self.ketama.invalidate();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use proptest::prelude::*;

    use super::testing::{at, header, node, signer, CLIENT, T0};
    use super::*;
    use crate::cookie::Rejection;

    /// `n` healthy, ready nodes of weight 1.
    fn cluster(n: usize, mode: Mode) -> Backends {
        let mut b = Backends::new(signer(), mode);
        for i in 1..=n {
            add(&mut b, i, Weight::ONE);
        }
        b
    }

    fn add(b: &mut Backends, i: usize, weight: Weight) {
        assert!(b.join(node(i), weight));
        assert!(b.set_ready(&node(i), true));
        assert!(b.set_healthy(&node(i), true));
    }

    fn request(cookie: Option<&str>, now: u64) -> RequestInfo<'_> {
        RequestInfo {
            cookie,
            client: CLIENT,
            now: at(now),
        }
    }

    /// The `Cookie:` header a browser sends back for a route's `Set-Cookie`.
    fn cookie_of(route: &Route) -> String {
        header(route.set_cookie.as_deref().expect("a cookie was set"))
    }

    fn route(choice: Choice) -> Route {
        match choice {
            Choice::Route(route) => route,
            Choice::NoBackend => panic!("no backend"),
        }
    }

    #[test]
    fn a_viewer_stays_on_its_node_whatever_the_load() {
        let mut b = cluster(3, Mode::Cookie);
        let first = route(b.choose(&request(None, T0)));
        assert_eq!(first.reason, Reason::NewViewer);
        let cookie = cookie_of(&first);
        for _ in 0..10 {
            b.connection_opened(&first.node);
        }
        for s in 1..50 {
            let again = route(b.choose(&request(Some(&cookie), T0 + s)));
            assert_eq!(again.node, first.node);
            assert_eq!(again.reason, Reason::StickyHit);
            assert_eq!(again.set_cookie, None, "no refresh this early");
        }
        let c = b.counters();
        assert_eq!((c.sticky_hits, c.new_viewers, c.sticky_misses), (49, 1, 0));
    }

    #[test]
    fn a_cookie_naming_an_unknown_node_moves_the_viewer_and_reissues() {
        let mut b = cluster(2, Mode::Cookie);
        let stranger = NodeId::new("broadcast9").expect("valid");
        let cookie = header(&signer().issue(&stranger, at(T0)));
        let moved = route(b.choose(&request(Some(&cookie), T0)));
        assert_eq!(moved.reason, Reason::Moved { from: stranger });
        assert!(b.is_eligible(&moved.node));
        let cookie = cookie_of(&moved);
        assert_eq!(b.cookies().verify(&cookie, at(T0)), Some(moved.node));
        let c = b.counters();
        assert_eq!(
            (c.choice_changes, c.sticky_misses, c.sticky_hits),
            (1, 1, 0)
        );
    }

    #[test]
    fn when_the_sticky_node_dies_the_next_request_goes_elsewhere_and_sticks_there() {
        let mut b = cluster(3, Mode::Cookie);
        let first = route(b.choose(&request(None, T0)));
        let cookie = cookie_of(&first);
        b.set_healthy(&first.node, false);
        let moved = route(b.choose(&request(Some(&cookie), T0 + 1)));
        assert_ne!(moved.node, first.node);
        assert_eq!(
            moved.reason,
            Reason::Moved {
                from: first.node.clone()
            }
        );
        let cookie = cookie_of(&moved);
        // The old node comes back: the viewer stays where it was moved to.
        b.set_healthy(&first.node, true);
        let after = route(b.choose(&request(Some(&cookie), T0 + 2)));
        assert_eq!(
            (&after.node, &after.reason),
            (&moved.node, &Reason::StickyHit)
        );
        // Presence going offline moves the viewer the same way as a failed health check.
        assert!(b.leave(&after.node));
        let gone = route(b.choose(&request(Some(&cookie), T0 + 3)));
        assert_ne!(gone.node, after.node);
        assert_eq!(gone.reason, Reason::Moved { from: after.node });
        assert_eq!(b.counters().choice_changes, 2);
    }

    #[test]
    fn forged_and_stale_cookies_are_ignored_not_followed() {
        let mut b = cluster(3, Mode::Cookie);
        let forged = format!("sealcast_node=v1.broadcast3.{T0}.{}", "ab".repeat(32));
        let r = route(b.choose(&request(Some(&forged), T0)));
        assert_eq!(r.reason, Reason::CookieRejected(Rejection::BadMac));
        assert!(r.set_cookie.is_some());

        let old = header(&signer().issue(&node(3), at(T0)));
        let late = T0 + signer().max_age().as_secs() + 1;
        let r = route(b.choose(&request(Some(&old), late)));
        assert_eq!(r.reason, Reason::CookieRejected(Rejection::Stale));
        assert_eq!(b.counters().cookies_rejected, 2);
    }

    #[test]
    fn a_node_behind_live_keeps_its_viewers_but_gets_no_new_ones() {
        for mode in [Mode::Cookie, Mode::Hash] {
            let mut b = cluster(2, mode);
            b.set_behind(&node(1), true);
            // Every new viewer goes to the node that is caught up.
            for i in 0..20u8 {
                let mut r = request(None, T0);
                r.client = IpAddr::V4(Ipv4Addr::new(198, 51, 100, i));
                assert_eq!(b.choose(&r).node(), Some(&node(2)), "{mode:?}");
            }
            // With every node behind, a viewer still gets one rather than a 503.
            b.set_behind(&node(2), true);
            assert!(b.choose(&request(None, T0)).node().is_some(), "{mode:?}");
            b.set_behind(&node(2), false);
        }
        // A viewer pinned to the node stays there while it catches up.
        let mut b = cluster(2, Mode::Cookie);
        let pinned = header(&b.cookies().issue(&node(1), at(T0)));
        b.set_behind(&node(1), true);
        let r = route(b.choose(&request(Some(&pinned), T0)));
        assert_eq!((r.node, r.reason), (node(1), Reason::StickyHit));
        b.set_behind(&node(1), false);
        let placed: Vec<_> = (0..4)
            .map(|_| route(b.choose(&request(None, T0))).node)
            .collect();
        assert!(placed.contains(&node(1)), "back in rotation: {placed:?}");
    }

    #[test]
    fn a_draining_node_loses_its_viewers_while_another_node_may_take_them() {
        for mode in [Mode::Cookie, Mode::Hash] {
            let mut b = cluster(2, mode);
            b.set_draining(&node(1), true);
            for i in 0..20u8 {
                let mut r = request(None, T0);
                r.client = IpAddr::V4(Ipv4Addr::new(198, 51, 100, i));
                assert_eq!(b.choose(&r).node(), Some(&node(2)), "{mode:?}");
            }
            // Even a node behind live is a better place than a node going away.
            b.set_behind(&node(2), true);
            for i in 0..20u8 {
                let mut r = request(None, T0);
                r.client = IpAddr::V4(Ipv4Addr::new(198, 51, 100, i));
                assert_eq!(b.choose(&r).node(), Some(&node(2)), "{mode:?}");
            }
            // The last node up serves while it drains rather than a 503.
            b.set_healthy(&node(2), false);
            assert_eq!(
                b.choose(&request(None, T0)).node(),
                Some(&node(1)),
                "{mode:?}"
            );
        }
        // A viewer pinned to it moves (a new cookie), unless no other node may take it.
        let mut b = cluster(2, Mode::Cookie);
        let pinned = header(&b.cookies().issue(&node(1), at(T0)));
        b.set_draining(&node(1), true);
        let r = route(b.choose(&request(Some(&pinned), T0)));
        assert_eq!(r.node, node(2));
        assert!(matches!(r.reason, Reason::Moved { .. }), "{:?}", r.reason);
        assert!(r.set_cookie.is_some());
        b.set_healthy(&node(2), false);
        let r = route(b.choose(&request(Some(&pinned), T0)));
        assert_eq!((r.node, r.reason), (node(1), Reason::StickyHit));
    }

    #[test]
    fn a_node_gets_viewers_only_once_healthy_and_ready() {
        let mut b = Backends::new(signer(), Mode::Cookie);
        assert_eq!(b.choose(&request(None, T0)), Choice::NoBackend);
        assert!(b.join(node(1), Weight::ONE));
        assert!(!b.join(node(1), Weight::ONE), "a second join is an update");
        assert_eq!(b.choose(&request(None, T0)), Choice::NoBackend);
        b.set_healthy(&node(1), true);
        assert_eq!(b.choose(&request(None, T0)), Choice::NoBackend, "joining");
        b.set_ready(&node(1), true);
        assert_eq!(b.choose(&request(None, T0)).node(), Some(&node(1)));
        assert!(b.leave(&node(1)));
        assert!(!b.leave(&node(1)));
        assert!(
            !b.set_healthy(&node(1), true),
            "unknown nodes are not recreated"
        );
        assert_eq!(b.choose(&request(None, T0)), Choice::NoBackend);
        assert_eq!(b.counters().no_backend, 4);
    }

    #[test]
    fn hash_mode_follows_the_address_and_ignores_cookies() {
        let mut b = cluster(3, Mode::Hash);
        let pinned = header(&signer().issue(&node(1), at(T0)));
        let first = route(b.choose(&request(None, T0)));
        assert_eq!(
            (first.reason.clone(), first.set_cookie.clone()),
            (Reason::Hashed, None)
        );
        for cookie in [None, Some(pinned.as_str())] {
            assert_eq!(b.choose(&request(cookie, T0)).node(), Some(&first.node));
        }
        b.set_healthy(&first.node, false);
        let moved = route(b.choose(&request(None, T0)));
        assert_ne!(moved.node, first.node);
        b.set_healthy(&first.node, true);
        assert_eq!(b.choose(&request(None, T0)).node(), Some(&first.node));
        assert_eq!(b.counters().hashed, 5);
        b.set_mode(Mode::Cookie);
        assert_eq!(b.mode(), Mode::Cookie);
    }

    /// One step of a random membership history.
    #[derive(Debug, Clone)]
    enum Op {
        Join(usize, u32),
        Leave(usize),
        Healthy(usize, bool),
        Ready(usize, bool),
        Open(usize),
        Close(usize),
        Choose {
            cookie_for: Option<usize>,
            hash: bool,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        let i = 1usize..7;
        prop_oneof![
            (i.clone(), 1u32..4).prop_map(|(i, w)| Op::Join(i, w)),
            i.clone().prop_map(Op::Leave),
            (i.clone(), any::<bool>()).prop_map(|(i, h)| Op::Healthy(i, h)),
            (i.clone(), any::<bool>()).prop_map(|(i, r)| Op::Ready(i, r)),
            i.clone().prop_map(Op::Open),
            i.clone().prop_map(Op::Close),
            (proptest::option::of(1usize..9), any::<bool>())
                .prop_map(|(cookie_for, hash)| Op::Choose { cookie_for, hash }),
        ]
    }

    proptest! {
        #[test]
        fn choose_never_returns_an_ineligible_or_absent_node(
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let mut b = Backends::new(signer(), Mode::Cookie);
            for op in ops {
                match op {
                    Op::Join(i, w) => { b.join(node(i), Weight::new(w).expect("1..4")); }
                    Op::Leave(i) => { b.leave(&node(i)); }
                    Op::Healthy(i, h) => { b.set_healthy(&node(i), h); }
                    Op::Ready(i, r) => { b.set_ready(&node(i), r); }
                    Op::Open(i) => b.connection_opened(&node(i)),
                    Op::Close(i) => b.connection_closed(&node(i)),
                    Op::Choose { cookie_for, hash } => {
                        b.set_mode(if hash { Mode::Hash } else { Mode::Cookie });
                        let header = cookie_for.map(|i| signer().issue(&node(i), at(T0)));
                        let choice = b.choose(&request(header.as_deref(), T0));
                        let any_eligible = b.iter().any(|(_, s)| s.is_eligible());
                        match choice.node() {
                            Some(chosen) => prop_assert!(b.is_eligible(chosen), "{chosen} chosen"),
                            None => prop_assert!(!any_eligible, "NoBackend with an eligible node"),
                        }
                    }
                }
            }
        }
    }
}
