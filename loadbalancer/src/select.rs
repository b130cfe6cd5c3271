//! Which broadcast node a request goes to: the backend set, its membership, and the choice.
//!
//! # The rule ([`Mode::Cookie`], the default)
//!
//! 1. A trusted `sealcast_node` cookie naming an eligible node (present, healthy, presence
//!    ready) → that node: a sticky hit. The cookie is reissued once it has lived half its
//!    lifetime, so a viewer who keeps watching keeps its node.
//! 2. Otherwise the least-loaded eligible node that is not behind live (any eligible
//!    node when all are behind), load being active connections divided by weight; nodes equally loaded take turns (smooth weighted round-robin), so viewers
//!    arriving between requests, when every load is zero, still spread evenly, even when
//!    they share one address. A cookie naming the node is issued.
//!
//! A node behind live keeps the viewers whose cookie names it (they are served from its
//! window meanwhile) but takes no new ones while another node is caught up.
//!
//! [`Mode::Hash`] instead maps the client address onto a [`Ring`] of the eligible nodes
//! (those not behind, unless all are) and
//! neither reads nor sets cookies: a viewer's node follows from its address alone.
//!
//! # Concurrency
//!
//! Everything takes `&mut self` and does no I/O: the proxy keeps one [`Backends`] behind a
//! mutex, calls [`Backends::choose`] per request and [`Backends::connection_opened`] /
//! [`Backends::connection_closed`] around each upstream request, and feeds membership and
//! health changes in from its MQTT and health-check tasks.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::SystemTime;

use domain::NodeId;

use crate::cookie::{CookieCheck, Rejection, StickyCookies};
use crate::ring::{self, Ring};
use crate::LoadBalancerError;

/// A node's share of viewers relative to the others: a node of weight 2 is given twice
/// the active connections of a node of weight 1, and twice the arc of the hash ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight(u32);

impl Weight {
    /// The weight of an ordinary node.
    pub const ONE: Weight = Weight(1);
    /// The largest weight: it bounds the hash ring at 100 × 160 points per node.
    pub const MAX: u32 = 100;

    /// A weight from 1 to [`Weight::MAX`].
    pub fn new(weight: u32) -> Result<Self, LoadBalancerError> {
        if weight == 0 || weight > Self::MAX {
            return Err(LoadBalancerError::InvalidWeight {
                weight,
                max: Self::MAX,
            });
        }
        Ok(Weight(weight))
    }

    /// The weight as a number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Weight {
    fn default() -> Self {
        Weight::ONE
    }
}

/// How viewers without a say are placed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Signed sticky cookie; least-loaded node for viewers without a trusted one.
    #[default]
    Cookie,
    /// Consistent hashing of the client address, for players that drop cookies.
    Hash,
}

/// What the load balancer knows about one broadcast node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendState {
    /// The last health check (`/healthz`) passed. False until the first one does, so a
    /// node is never given viewers on the strength of its presence message alone.
    pub healthy: bool,
    /// Its presence says `ready`: it holds the full live window. A joining node is
    /// healthy long before it is ready.
    pub ready: bool,
    /// Its presence says `behind`: ready, but more than a segment behind live. It keeps its
    /// sticky viewers and is given new ones only when no eligible node is caught up.
    pub behind: bool,
    /// Requests the proxy currently has open to it.
    pub active: u64,
    /// Its share relative to the others.
    pub weight: Weight,
}

impl BackendState {
    /// Whether the node may be given requests: healthy and ready.
    pub fn is_eligible(&self) -> bool {
        self.healthy && self.ready
    }

    /// Whether the node may be given new viewers while some node is: eligible and caught
    /// up with live.
    pub fn is_caught_up(&self) -> bool {
        self.is_eligible() && !self.behind
    }
}

#[derive(Debug, Clone)]
struct Entry {
    state: BackendState,
    /// Smooth weighted round-robin credit, used only to break ties in load.
    credit: i64,
}

/// The request facts a choice depends on.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// The `Cookie:` header value, if any (HTTP/2 crumbs joined with `"; "`).
    pub cookie: Option<&'a str>,
    /// The client's address, for [`Mode::Hash`].
    pub client: IpAddr,
    /// The time now, for cookie age and issue time.
    pub now: SystemTime,
}

/// Why a node was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A trusted cookie named it and it is eligible.
    StickyHit,
    /// No sticky cookie: a new viewer, given the least-loaded node.
    NewViewer,
    /// A `sealcast_node` cookie that was not trusted (ignored, never followed).
    CookieRejected(Rejection),
    /// A trusted cookie named a node that is gone, unhealthy or not ready; the viewer was
    /// moved to the least-loaded node.
    Moved {
        /// The node the cookie named.
        from: NodeId,
    },
    /// [`Mode::Hash`]: the ring owner of the client address.
    Hashed,
}

/// Where one request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The node to proxy to.
    pub node: NodeId,
    /// Why.
    pub reason: Reason,
    /// A `Set-Cookie` value to add to the response: a new pin, a moved pin, or a refresh.
    pub set_cookie: Option<String>,
}

/// The outcome of [`Backends::choose`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Proxy to this node.
    Route(Route),
    /// No node is eligible: answer 503 (with `Retry-After`), set no cookie.
    NoBackend,
}

impl Choice {
    /// The chosen node, if any.
    pub fn node(&self) -> Option<&NodeId> {
        match self {
            Choice::Route(route) => Some(&route.node),
            Choice::NoBackend => None,
        }
    }
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

/// The broadcast nodes and the choice among them.
#[derive(Debug)]
pub struct Backends {
    /// By id, so iteration, tie-breaks and ring building are the same on every load
    /// balancer given the same membership.
    nodes: BTreeMap<NodeId, Entry>,
    mode: Mode,
    cookies: StickyCookies,
    /// The ring of eligible nodes; `None` after any change that could alter it, rebuilt
    /// on the next hashed choice.
    ring: Option<Ring>,
    counters: Counters,
}

impl Backends {
    /// An empty set that signs cookies with `cookies`.
    pub fn new(cookies: StickyCookies, mode: Mode) -> Self {
        Backends {
            nodes: BTreeMap::new(),
            mode,
            cookies,
            ring: None,
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
        if let Some(entry) = self.nodes.get_mut(&node) {
            if entry.state.weight != weight {
                entry.state.weight = weight;
                self.ring = None;
            }
            return false;
        }
        self.nodes.insert(
            node,
            Entry {
                state: BackendState {
                    healthy: false,
                    ready: false,
                    behind: false,
                    active: 0,
                    weight,
                },
                credit: 0,
            },
        );
        // A new node is neither healthy nor ready, so the ring of eligible nodes is unchanged.
        true
    }

    /// Removes a node (presence offline, or its last will). Returns whether it was known.
    /// Viewers pinned to it are moved on their next request.
    pub fn leave(&mut self, node: &NodeId) -> bool {
        let known = self.nodes.remove(node).is_some();
        if known {
            self.ring = None;
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

    /// Records a health-check result. Returns whether the node is known.
    pub fn set_healthy(&mut self, node: &NodeId, healthy: bool) -> bool {
        self.update(node, |state| state.healthy = healthy)
    }

    /// One more request open to `node` (call after [`Backends::choose`] routed there).
    pub fn connection_opened(&mut self, node: &NodeId) {
        if let Some(entry) = self.nodes.get_mut(node) {
            entry.state.active = entry.state.active.saturating_add(1);
        }
    }

    /// One request to `node` finished. A node that left and came back meanwhile starts
    /// from zero, so this saturates rather than underflows.
    pub fn connection_closed(&mut self, node: &NodeId) {
        if let Some(entry) = self.nodes.get_mut(node) {
            entry.state.active = entry.state.active.saturating_sub(1);
        }
    }

    /// What is known about `node`.
    pub fn get(&self, node: &NodeId) -> Option<&BackendState> {
        self.nodes.get(node).map(|entry| &entry.state)
    }

    /// Every known node, by id (for per-backend metrics and status pages).
    pub fn iter(&self) -> impl Iterator<Item = (&NodeId, &BackendState)> {
        self.nodes.iter().map(|(node, entry)| (node, &entry.state))
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
        match self.mode {
            Mode::Cookie => self.choose_sticky(request),
            Mode::Hash => self.choose_hashed(request.client),
        }
    }

    fn choose_sticky(&mut self, request: &RequestInfo<'_>) -> Choice {
        let check = request.cookie.map_or(CookieCheck::Absent, |header| {
            self.cookies.inspect(header, request.now)
        });
        let reason = match check {
            CookieCheck::Valid(sticky) if self.is_eligible(&sticky.node) => {
                self.counters.sticky_hits += 1;
                let set_cookie = self
                    .cookies
                    .needs_refresh(&sticky, request.now)
                    .then(|| self.cookies.issue(&sticky.node, request.now));
                return Choice::Route(Route {
                    node: sticky.node,
                    reason: Reason::StickyHit,
                    set_cookie,
                });
            }
            CookieCheck::Valid(sticky) => Reason::Moved { from: sticky.node },
            CookieCheck::Rejected(rejection) => Reason::CookieRejected(rejection),
            CookieCheck::Absent => Reason::NewViewer,
        };
        let Some(node) = self.least_loaded() else {
            self.counters.no_backend += 1;
            return Choice::NoBackend;
        };
        match reason {
            Reason::Moved { .. } => {
                self.counters.sticky_misses += 1;
                self.counters.choice_changes += 1;
            }
            Reason::CookieRejected(_) => {
                self.counters.sticky_misses += 1;
                self.counters.cookies_rejected += 1;
            }
            Reason::NewViewer => self.counters.new_viewers += 1,
            Reason::StickyHit | Reason::Hashed => {}
        }
        let set_cookie = Some(self.cookies.issue(&node, request.now));
        Choice::Route(Route {
            node,
            reason,
            set_cookie,
        })
    }

    fn choose_hashed(&mut self, client: IpAddr) -> Choice {
        let nodes = &self.nodes;
        let placeable = self.placeable();
        let ring = self.ring.get_or_insert_with(|| {
            Ring::build(
                nodes
                    .iter()
                    .filter(|(_, entry)| placeable(&entry.state))
                    .map(|(node, entry)| (node, entry.state.weight)),
            )
        });
        match ring.get(ring::key_for_addr(client)).cloned() {
            Some(node) => {
                self.counters.hashed += 1;
                Choice::Route(Route {
                    node,
                    reason: Reason::Hashed,
                    set_cookie: None,
                })
            }
            None => {
                self.counters.no_backend += 1;
                Choice::NoBackend
            }
        }
    }

    /// Which nodes new viewers may be placed on: the caught-up ones, or every eligible
    /// node when none is caught up (a node behind live still beats a 503).
    fn placeable(&self) -> fn(&BackendState) -> bool {
        if self.nodes.values().any(|e| e.state.is_caught_up()) {
            BackendState::is_caught_up
        } else {
            BackendState::is_eligible
        }
    }

    /// The placeable node with the least `active / weight`; among equals, the one whose
    /// smooth weighted round-robin credit is highest (first by id on a tie).
    fn least_loaded(&mut self) -> Option<NodeId> {
        let placeable = self.placeable();
        // Compare active_a / weight_a with active_b / weight_b without division.
        let load = |state: &BackendState| (u128::from(state.active), u128::from(state.weight.0));
        let lighter = |a: (u128, u128), b: (u128, u128)| a.0 * b.1 < b.0 * a.1;
        let same = |a: (u128, u128), b: (u128, u128)| a.0 * b.1 == b.0 * a.1;

        let mut least: Option<(u128, u128)> = None;
        for entry in self.nodes.values().filter(|e| placeable(&e.state)) {
            let l = load(&entry.state);
            if least.is_none_or(|best| lighter(l, best)) {
                least = Some(l);
            }
        }
        let least = least?;

        let mut total: i64 = 0;
        let mut chosen: Option<(&NodeId, &mut Entry)> = None;
        for (node, entry) in self
            .nodes
            .iter_mut()
            .filter(|(_, e)| placeable(&e.state) && same(load(&e.state), least))
        {
            let weight = i64::from(entry.state.weight.0);
            total += weight;
            entry.credit += weight;
            if chosen
                .as_ref()
                .is_none_or(|(_, best)| entry.credit > best.credit)
            {
                chosen = Some((node, entry));
            }
        }
        let (node, entry) = chosen?;
        entry.credit -= total;
        Some(node.clone())
    }

    fn update(&mut self, node: &NodeId, change: impl FnOnce(&mut BackendState)) -> bool {
        let Some(entry) = self.nodes.get_mut(node) else {
            return false;
        };
        let was = (entry.state.is_eligible(), entry.state.is_caught_up());
        change(&mut entry.state);
        if (entry.state.is_eligible(), entry.state.is_caught_up()) != was {
            self.ring = None;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cookie::CookieKey;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;
    use std::time::{Duration, UNIX_EPOCH};

    const T0: u64 = 1_700_000_000;
    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9));

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn node(i: usize) -> NodeId {
        NodeId::new(format!("broadcast{i}")).expect("valid")
    }

    fn signer() -> StickyCookies {
        StickyCookies::new(CookieKey::new(&[42u8; 32]).expect("32 bytes"))
    }

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
        let set = route.set_cookie.as_deref().expect("a cookie was set");
        set.split(';').next().expect("one item").to_owned()
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
        let header = signer().issue(&stranger, at(T0));
        let header = header.split(';').next().expect("one item");
        let moved = route(b.choose(&request(Some(header), T0)));
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

        let old = signer().issue(&node(3), at(T0));
        let old = old.split(';').next().expect("one item");
        let late = T0 + signer().max_age().as_secs() + 1;
        let r = route(b.choose(&request(Some(old), late)));
        assert_eq!(r.reason, Reason::CookieRejected(Rejection::Stale));
        assert_eq!(b.counters().cookies_rejected, 2);
    }

    #[test]
    fn a_long_watching_viewer_gets_its_cookie_refreshed() {
        let mut b = cluster(2, Mode::Cookie);
        let first = route(b.choose(&request(None, T0)));
        let cookie = cookie_of(&first);
        let half = signer().max_age().as_secs() / 2;
        let r = route(b.choose(&request(Some(&cookie), T0 + half + 1)));
        assert_eq!(r.reason, Reason::StickyHit);
        let refreshed = cookie_of(&r);
        assert_ne!(refreshed, cookie);
        // The refreshed cookie outlives the first one.
        let later = T0 + signer().max_age().as_secs() + 10;
        let r = route(b.choose(&request(Some(&refreshed), later)));
        assert_eq!((r.node, r.reason), (first.node, Reason::StickyHit));
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
        let pinned = b.cookies().issue(&node(1), at(T0));
        let pinned = pinned.split(';').next().expect("one item").to_owned();
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
    fn weights_scale_the_share_of_held_connections() {
        let mut b = Backends::new(signer(), Mode::Cookie);
        add(&mut b, 1, Weight::new(2).expect("valid"));
        add(&mut b, 2, Weight::ONE);
        for _ in 0..30 {
            let chosen = route(b.choose(&request(None, T0))).node;
            b.connection_opened(&chosen);
        }
        let active = |i| b.get(&node(i)).expect("known").active;
        assert_eq!((active(1), active(2)), (20, 10));
    }

    #[test]
    fn weights_scale_the_share_of_short_requests_too() {
        let mut b = Backends::new(signer(), Mode::Cookie);
        add(&mut b, 1, Weight::new(3).expect("valid"));
        add(&mut b, 2, Weight::ONE);
        let firsts = (0..40)
            .filter(|_| b.choose(&request(None, T0)).node() == Some(&node(1)))
            .count();
        assert_eq!(firsts, 30);
    }

    #[test]
    fn hash_mode_follows_the_address_and_ignores_cookies() {
        let mut b = cluster(3, Mode::Hash);
        let pinned = signer().issue(&node(1), at(T0));
        let pinned = pinned.split(';').next().expect("one item");
        let first = route(b.choose(&request(None, T0)));
        assert_eq!(
            (first.reason.clone(), first.set_cookie.clone()),
            (Reason::Hashed, None)
        );
        for cookie in [None, Some(pinned)] {
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

    #[test]
    fn weights_are_bounded() {
        assert!(Weight::new(0).is_err());
        assert!(Weight::new(Weight::MAX + 1).is_err());
        assert_eq!(
            Weight::new(Weight::MAX).map(Weight::get).ok(),
            Some(Weight::MAX)
        );
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

        #[test]
        fn cookieless_viewers_spread_within_one(
            n in 1usize..8,
            m in 0usize..200,
            hold in any::<bool>(),
        ) {
            // Every viewer comes from one address (one NAT), with no cookie. With `hold`
            // they keep their connection open (load decides); without, every load is zero
            // when the next viewer arrives (the round-robin tie-break decides).
            let mut b = cluster(n, Mode::Cookie);
            let mut counts = vec![0usize; n + 1];
            for _ in 0..m {
                let r = route(b.choose(&request(None, T0)));
                prop_assert_eq!(&r.reason, &Reason::NewViewer);
                prop_assert!(r.set_cookie.is_some());
                if hold {
                    b.connection_opened(&r.node);
                }
                let i: usize = r.node.as_str().trim_start_matches("broadcast").parse().expect("ours");
                counts[i] += 1;
            }
            let counts = &counts[1..];
            let (min, max) = (counts.iter().min(), counts.iter().max());
            prop_assert!(max.zip(min).is_some_and(|(max, min)| max - min <= 1), "{counts:?}");
        }
    }
}
