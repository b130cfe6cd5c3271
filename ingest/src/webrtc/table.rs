//! The WebRTC session table, sans-IO: which session a datagram belongs to, and what the
//! ingest lets strangers hold.
//!
//! A datagram is routed by what it carries: a STUN binding request by the local ICE
//! username fragment its USERNAME names (the ufrag is ours, one per session, in the SDP
//! answer), anything else (DTLS, SRTP, SRTCP) by the remote address it came from, which a
//! session learns when it first sends to that address (str0m answers only checks whose
//! MESSAGE-INTEGRITY verified, so an address is learnt only after the peer proved it
//! knows the session's ICE password). A session keeps at most
//! [`Limits::max_addresses`] addresses, the most recent ones.
//!
//! What a stranger can hold is bounded: sessions (with the ones being set up, reserved
//! once the stream key checked out) at most [`Limits::max_sessions`], per client at most
//! [`Limits::max_per_ip`] (a client is [`ClientGroup`]'s: an IPv4 address or an IPv6 /64,
//! as the load balancer counts them); a session that is not connected (ICE and DTLS) within
//! [`Limits::setup_timeout`] or sends nothing for [`Limits::idle_timeout`] expires.
//!
//! Generic over the payload `P` the driver keeps per session (its handle to the session's
//! owner), so the tests below need no socket and no runtime.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use domain::ClientGroup;

/// The bounds of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Sessions at once, set up or being set up.
    pub(crate) max_sessions: usize,
    /// Sessions at once from one client (an IPv4 address, an IPv6 /64).
    pub(crate) max_per_ip: usize,
    /// From the answer to a connected session (ICE checked, DTLS done).
    pub(crate) setup_timeout: Duration,
    /// Longest silence (no media) of a connected session.
    pub(crate) idle_timeout: Duration,
    /// Remote addresses remembered per session.
    pub(crate) max_addresses: usize,
}

/// Why a session could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// [`Limits::max_sessions`] are open or being set up.
    Global,
    /// [`Limits::max_per_ip`] are open or being set up from this client.
    PerIp,
}

/// Why a session expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// Not connected within [`Limits::setup_timeout`].
    Setup,
    /// Silent for [`Limits::idle_timeout`].
    Idle,
}

/// A place held for a session being set up (counted against the caps until it is opened
/// or cancelled).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a reservation holds a place until it is opened or cancelled"]
pub(crate) struct Ticket {
    client: ClientGroup,
}

#[derive(Debug)]
struct Entry<P> {
    client: ClientGroup,
    ufrag: String,
    addresses: VecDeque<SocketAddr>,
    /// Until connected: when setting up gives up.
    setup_deadline: Option<Instant>,
    /// Once connected: when silence ends the session.
    idle_deadline: Instant,
    payload: P,
}

/// The sessions, keyed by `K` (the WHIP session id).
#[derive(Debug)]
pub(crate) struct SessionTable<K, P> {
    limits: Limits,
    sessions: HashMap<K, Entry<P>>,
    by_ufrag: HashMap<String, K>,
    by_address: HashMap<SocketAddr, K>,
    /// Sessions and reservations per client.
    per_client: HashMap<ClientGroup, usize>,
    /// Reservations not yet opened or cancelled.
    reserved: usize,
}

impl<K: Copy + Eq + std::hash::Hash, P> SessionTable<K, P> {
    /// An empty table within `limits`.
    pub(crate) fn new(limits: Limits) -> Self {
        SessionTable {
            limits,
            sessions: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_address: HashMap::new(),
            per_client: HashMap::new(),
            reserved: 0,
        }
    }

    /// Whether a session from `ip` would be refused now, without holding a place: a
    /// stranger is refused at a cap before it costs a catalog lookup.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), Full> {
        if self.sessions.len() + self.reserved >= self.limits.max_sessions {
            return Err(Full::Global);
        }
        let held = self
            .per_client
            .get(&ClientGroup::of(ip))
            .copied()
            .unwrap_or(0);
        if held >= self.limits.max_per_ip {
            return Err(Full::PerIp);
        }
        Ok(())
    }

    /// Holds a place for a session from `ip`, if the caps allow one more.
    pub(crate) fn reserve(&mut self, ip: IpAddr) -> Result<Ticket, Full> {
        self.check(ip)?;
        let client = ClientGroup::of(ip);
        *self.per_client.entry(client).or_insert(0) += 1;
        self.reserved += 1;
        Ok(Ticket { client })
    }

    /// Gives a reserved place back.
    pub(crate) fn cancel(&mut self, ticket: Ticket) {
        self.reserved = self.reserved.saturating_sub(1);
        self.release(ticket.client);
    }

    /// Turns a reservation into session `key`, routed by its local ICE `ufrag` until it
    /// learns an address; it must connect by `now + setup_timeout`. Refused (and the place
    /// given back) if the key or the ufrag is taken, which random ids make a bug, not an
    /// event.
    pub(crate) fn open(
        &mut self,
        ticket: Ticket,
        key: K,
        ufrag: String,
        now: Instant,
        payload: P,
    ) -> Result<(), P> {
        if self.sessions.contains_key(&key) || self.by_ufrag.contains_key(&ufrag) {
            self.cancel(ticket);
            return Err(payload);
        }
        self.reserved = self.reserved.saturating_sub(1);
        self.by_ufrag.insert(ufrag.clone(), key);
        self.sessions.insert(
            key,
            Entry {
                client: ticket.client,
                ufrag,
                addresses: VecDeque::new(),
                setup_deadline: Some(now + self.limits.setup_timeout),
                idle_deadline: now + self.limits.setup_timeout + self.limits.idle_timeout,
                payload,
            },
        );
        Ok(())
    }

    /// The session a STUN message for local ufrag `ufrag` belongs to.
    pub(crate) fn by_ufrag(&self, ufrag: &str) -> Option<K> {
        self.by_ufrag.get(ufrag).copied()
    }

    /// The session that last sent to `address`.
    pub(crate) fn by_address(&self, address: SocketAddr) -> Option<K> {
        self.by_address.get(&address).copied()
    }

    /// The payload of session `key`.
    pub(crate) fn get(&self, key: K) -> Option<&P> {
        self.sessions.get(&key).map(|e| &e.payload)
    }

    /// Session `key` sent to `address`: datagrams from there are its own from now on (an
    /// address another session had moves to this one; the oldest of this session's
    /// addresses beyond [`Limits::max_addresses`] is forgotten).
    pub(crate) fn learn(&mut self, key: K, address: SocketAddr) {
        let Some(entry) = self.sessions.get_mut(&key) else {
            return;
        };
        if entry.addresses.contains(&address) {
            return;
        }
        if let Some(previous) = self.by_address.insert(address, key) {
            if previous != key {
                if let Some(other) = self.sessions.get_mut(&previous) {
                    other.addresses.retain(|a| *a != address);
                }
            }
        }
        let Some(entry) = self.sessions.get_mut(&key) else {
            return;
        };
        entry.addresses.push_back(address);
        while entry.addresses.len() > self.limits.max_addresses.max(1) {
            if let Some(old) = entry.addresses.pop_front() {
                self.by_address.remove(&old);
            }
        }
    }

    /// Session `key` is connected: no setup deadline any more, silence counts from `now`.
    pub(crate) fn connected(&mut self, key: K, now: Instant) {
        if let Some(entry) = self.sessions.get_mut(&key) {
            entry.setup_deadline = None;
            entry.idle_deadline = now + self.limits.idle_timeout;
        }
    }

    /// Session `key` sent media at `now`.
    pub(crate) fn touch(&mut self, key: K, now: Instant) {
        if let Some(entry) = self.sessions.get_mut(&key) {
            if entry.setup_deadline.is_none() {
                entry.idle_deadline = now + self.limits.idle_timeout;
            }
        }
    }

    /// Removes session `key`; its payload, if it was there.
    pub(crate) fn remove(&mut self, key: K) -> Option<P> {
        let entry = self.sessions.remove(&key)?;
        self.by_ufrag.remove(&entry.ufrag);
        for address in &entry.addresses {
            if self.by_address.get(address) == Some(&key) {
                self.by_address.remove(address);
            }
        }
        self.release(entry.client);
        Some(entry.payload)
    }

    /// The sessions past a deadline at `now`, and which.
    pub(crate) fn expired(&self, now: Instant) -> Vec<(K, Expiry)> {
        self.sessions
            .iter()
            .filter_map(|(key, e)| match e.setup_deadline {
                Some(deadline) if deadline <= now => Some((*key, Expiry::Setup)),
                Some(_) => None,
                None if e.idle_deadline <= now => Some((*key, Expiry::Idle)),
                None => None,
            })
            .collect()
    }

    /// The earliest deadline of any session.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.sessions
            .values()
            .map(|e| e.setup_deadline.unwrap_or(e.idle_deadline))
            .min()
    }

    fn release(&mut self, client: ClientGroup) {
        if let Some(count) = self.per_client.get_mut(&client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_client.remove(&client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> Limits {
        Limits {
            max_sessions: 4,
            max_per_ip: 2,
            setup_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            max_addresses: 2,
        }
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    fn addr(n: u8, port: u16) -> SocketAddr {
        SocketAddr::new(ip(n), port)
    }

    #[test]
    fn caps_hold_for_reservations_and_sessions_alike() {
        let now = Instant::now();
        let mut t: SessionTable<u32, ()> = SessionTable::new(limits());
        let a = t.reserve(ip(1)).expect("first");
        let b = t.reserve(ip(1)).expect("second");
        assert_eq!(t.reserve(ip(1)), Err(Full::PerIp));
        t.open(a, 1, "u1".into(), now, ()).expect("opened");
        assert_eq!(t.reserve(ip(1)), Err(Full::PerIp));
        let c = t.reserve(ip(2)).expect("other ip");
        let d = t.reserve(ip(3)).expect("other ip");
        assert_eq!(t.reserve(ip(4)), Err(Full::Global));
        t.cancel(b);
        t.cancel(c);
        t.cancel(d);
        assert!(t.reserve(ip(1)).is_ok());
        assert_eq!(t.remove(1), Some(()));
        assert_eq!(t.remove(1), None);
    }

    /// One IPv6 subscriber is one client: the addresses of a /64 share its cap (issue 45
    /// item 5: counting single addresses gave one /64 every place in the table), and a
    /// check holds no place.
    #[test]
    fn an_ipv6_64_is_one_client() {
        let mut t: SessionTable<u32, ()> = SessionTable::new(limits());
        let v6 = |s: &str| -> IpAddr { s.parse().expect("an IPv6 address") };
        let _a = t.reserve(v6("2001:db8:0:1::1")).expect("first");
        let _b = t.reserve(v6("2001:db8:0:1::2")).expect("second");
        assert_eq!(t.check(v6("2001:db8:0:1:ffff::3")), Err(Full::PerIp));
        assert_eq!(t.reserve(v6("2001:db8:0:1:ffff::3")), Err(Full::PerIp));
        assert_eq!(t.check(v6("2001:db8:0:2::1")), Ok(()));
        assert_eq!(t.check(v6("2001:db8:0:2::1")), Ok(()));
        assert_eq!(t.reserved, 2);
        let _c = t.reserve(v6("2001:db8:0:2::1")).expect("another /64");
    }

    #[test]
    fn datagrams_route_by_ufrag_then_by_learnt_address() {
        let now = Instant::now();
        let mut t: SessionTable<u32, &str> = SessionTable::new(limits());
        let ticket = t.reserve(ip(1)).expect("place");
        t.open(ticket, 7, "abcd".into(), now, "s7").expect("opened");
        assert_eq!(t.by_ufrag("abcd"), Some(7));
        assert_eq!(t.by_ufrag("abce"), None);
        assert_eq!(t.by_address(addr(1, 5000)), None);
        t.learn(7, addr(1, 5000));
        assert_eq!(t.by_address(addr(1, 5000)), Some(7));
        // At most two addresses: the oldest is forgotten.
        t.learn(7, addr(1, 5001));
        t.learn(7, addr(1, 5002));
        assert_eq!(t.by_address(addr(1, 5000)), None);
        assert_eq!(t.by_address(addr(1, 5002)), Some(7));
        // A duplicate ufrag is refused and its place given back.
        let ticket = t.reserve(ip(2)).expect("place");
        assert_eq!(t.open(ticket, 8, "abcd".into(), now, "s8"), Err("s8"));
        assert!(t.reserve(ip(2)).is_ok());
        t.remove(7);
        assert_eq!(t.by_address(addr(1, 5002)), None);
        assert_eq!(t.by_ufrag("abcd"), None);
    }

    #[test]
    fn setup_and_idle_deadlines() {
        let now = Instant::now();
        let mut t: SessionTable<u32, ()> = SessionTable::new(limits());
        for key in [1, 2] {
            let ticket = t.reserve(ip(key as u8)).expect("place");
            t.open(ticket, key, format!("u{key}"), now, ())
                .expect("opened");
        }
        assert_eq!(t.next_deadline(), Some(now + Duration::from_secs(10)));
        t.connected(1, now + Duration::from_secs(1));
        assert!(t.expired(now + Duration::from_secs(5)).is_empty());
        assert_eq!(
            t.expired(now + Duration::from_secs(6)),
            vec![(1, Expiry::Idle)]
        );
        t.touch(1, now + Duration::from_secs(6));
        let mut late = t.expired(now + Duration::from_secs(10));
        late.sort_by_key(|(k, _)| *k);
        assert_eq!(late, vec![(2, Expiry::Setup)]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Reserve(u8),
        Cancel(usize),
        Open(usize, u16),
        Learn(u16, u8, u16),
        Remove(u16),
        Connect(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..4).prop_map(Op::Reserve),
            (0usize..8).prop_map(Op::Cancel),
            (0usize..8, 0u16..12).prop_map(|(t, k)| Op::Open(t, k)),
            (0u16..12, 0u8..4, 0u16..6).prop_map(|(k, i, p)| Op::Learn(k, i, p)),
            (0u16..12).prop_map(Op::Remove),
            (0u16..12).prop_map(Op::Connect),
        ]
    }

    proptest! {
        /// Whatever strangers do, the caps hold, the indexes agree with the sessions, and
        /// removing everything leaves nothing counted.
        #[test]
        fn caps_and_indexes_hold(ops in proptest::collection::vec(op(), 1..200)) {
            let now = Instant::now();
            let limits = limits();
            let mut t: SessionTable<u16, ()> = SessionTable::new(limits);
            let mut tickets: Vec<Ticket> = Vec::new();
            for op in ops {
                match op {
                    Op::Reserve(i) => {
                        if let Ok(ticket) = t.reserve(ip(i)) {
                            tickets.push(ticket);
                        }
                    }
                    Op::Cancel(n) if n < tickets.len() => t.cancel(tickets.swap_remove(n)),
                    Op::Open(n, key) if n < tickets.len() => {
                        let _ = t.open(tickets.swap_remove(n), key, format!("u{key}"), now, ());
                    }
                    Op::Learn(key, i, port) => t.learn(key, addr(i, port)),
                    Op::Remove(key) => { t.remove(key); }
                    Op::Connect(key) => t.connected(key, now),
                    _ => {}
                }
                prop_assert!(t.sessions.len() + t.reserved <= limits.max_sessions);
                prop_assert_eq!(t.reserved, tickets.len());
                let counted: usize = t.per_client.values().sum();
                prop_assert_eq!(counted, t.sessions.len() + t.reserved);
                prop_assert!(t.per_client.values().all(|n| *n >= 1 && *n <= limits.max_per_ip));
                prop_assert_eq!(t.by_ufrag.len(), t.sessions.len());
                for (address, key) in &t.by_address {
                    let entry = t.sessions.get(key);
                    prop_assert!(entry.is_some_and(|e| e.addresses.contains(address)));
                }
                for (key, e) in &t.sessions {
                    prop_assert!(e.addresses.len() <= limits.max_addresses);
                    prop_assert_eq!(t.by_ufrag.get(&e.ufrag), Some(key));
                    for a in &e.addresses {
                        prop_assert_eq!(t.by_address.get(a), Some(key));
                    }
                }
            }
            for ticket in tickets.drain(..) {
                t.cancel(ticket);
            }
            let keys: Vec<u16> = t.sessions.keys().copied().collect();
            for key in keys {
                t.remove(key);
            }
            prop_assert!(t.per_client.is_empty());
            prop_assert!(t.by_address.is_empty());
            prop_assert!(t.by_ufrag.is_empty());
            prop_assert_eq!(t.reserved, 0);
        }
    }
}
