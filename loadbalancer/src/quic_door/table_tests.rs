use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

fn relay(n: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 9, n)), 443)
}

fn viewer(n: u16) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, (n % 250) as u8)),
        40_000 + n,
    )
}

fn limits(max_flows: usize) -> DoorLimits {
    DoorLimits {
        max_flows,
        idle: Duration::from_secs(60),
        evictable_after: Duration::from_secs(5),
        silence: Duration::from_secs(5),
    }
}

/// A table with relays `1..=n`, all checked healthy.
fn table(n: u8, max_flows: usize) -> FlowTable {
    let mut table = FlowTable::new(limits(max_flows));
    table.set_relays((1..=n).map(relay));
    for r in 1..=n {
        table.set_health(relay(r), true);
    }
    table
}

fn relay_of(verdict: Verdict) -> Option<SocketAddr> {
    match verdict {
        Verdict::Forward { relay } | Verdict::Open { relay, .. } => Some(relay),
        Verdict::Drop(_) => None,
    }
}

#[test]
fn an_unchecked_relay_takes_nothing() {
    let t0 = Instant::now();
    let mut table = FlowTable::new(limits(8));
    table.set_relays([relay(1)]);
    assert_eq!(
        table.viewer_sent(viewer(1), t0),
        Verdict::Drop(DropReason::NoRelay)
    );
    table.set_health(relay(1), true);
    assert_eq!(
        table.viewer_sent(viewer(1), t0),
        Verdict::Open {
            relay: relay(1),
            moved_from: None,
            evicted: None
        }
    );
    assert_eq!(
        table.viewer_sent(viewer(1), t0),
        Verdict::Forward { relay: relay(1) }
    );
}

#[test]
fn a_silent_relay_is_taken_out_and_a_check_brings_it_back() {
    let t0 = Instant::now();
    let mut table = table(1, 8);
    table.viewer_sent(viewer(1), t0);
    assert!(table.is_eligible(relay(1), t0 + Duration::from_secs(4)));
    assert_eq!(
        table.viewer_sent(viewer(1), t0 + Duration::from_secs(6)),
        Verdict::Drop(DropReason::NoRelay),
        "forwarded to for 5 s without an answer"
    );
    table.set_health(relay(1), true);
    assert!(table.is_eligible(relay(1), t0 + Duration::from_secs(6)));
    // An answer keeps it in however long the flow lasts.
    let mut table = self::table(1, 8);
    for s in 0..20 {
        let now = t0 + Duration::from_secs(s);
        assert!(relay_of(table.viewer_sent(viewer(1), now)).is_some());
        assert!(table.relay_sent(viewer(1), relay(1), now));
    }
}

#[test]
fn a_failed_check_keeps_new_flows_off_a_relay_and_only_checks_in_a_row_move_its_own() {
    let t0 = Instant::now();
    let mut table = table(2, 64);
    let old = viewer(1);
    let first = relay_of(table.viewer_sent(old, t0)).expect("placed");
    let other = if first == relay(1) {
        relay(2)
    } else {
        relay(1)
    };
    table.set_health(first, false);
    // Every new viewer goes to the relay whose last check passed.
    for v in 2..40 {
        assert_eq!(relay_of(table.viewer_sent(viewer(v), t0)), Some(other));
    }
    // The flow it has stays, until enough checks in a row failed.
    for _ in 1..OUT_AFTER_FAILED_CHECKS {
        assert_eq!(
            table.viewer_sent(old, t0),
            Verdict::Forward { relay: first }
        );
        table.set_health(first, false);
    }
    assert!(!table.is_eligible(first, t0));
    assert_eq!(
        table.viewer_sent(old, t0),
        Verdict::Open {
            relay: other,
            moved_from: Some(first),
            evicted: None
        }
    );
    // A pass forgives the failures; with every relay's last check failed, new flows still
    // find an eligible one.
    table.set_health(first, true);
    table.set_health(other, false);
    assert_eq!(relay_of(table.viewer_sent(viewer(50), t0)), Some(first));
    table.set_health(first, false);
    assert!(relay_of(table.viewer_sent(viewer(51), t0)).is_some());
}

#[test]
fn a_refused_relay_moves_its_flows_on_their_next_datagram() {
    let t0 = Instant::now();
    let mut table = table(2, 8);
    let first = relay_of(table.viewer_sent(viewer(7), t0)).expect("placed");
    table.relay_refused(first);
    match table.viewer_sent(viewer(7), t0) {
        Verdict::Open {
            relay, moved_from, ..
        } => {
            assert_ne!(relay, first);
            assert_eq!(moved_from, Some(first));
        }
        other => panic!("expected a move, got {other:?}"),
    }
    // The old relay's late answers are not the flow's any more.
    assert!(!table.relay_sent(viewer(7), first, t0));
}

#[test]
fn at_the_cap_a_new_viewer_is_dropped_unless_a_flow_is_stale() {
    let t0 = Instant::now();
    let mut table = table(2, 2);
    // Each placed and answered by its relay (a relay that never answers goes out).
    for (v, at) in [(1, 0), (2, 1)] {
        let now = t0 + Duration::from_secs(at);
        let r = relay_of(table.viewer_sent(viewer(v), now)).expect("placed");
        assert!(table.relay_sent(viewer(v), r, now));
    }
    assert_eq!(
        table.viewer_sent(viewer(3), t0 + Duration::from_secs(2)),
        Verdict::Drop(DropReason::TableFull)
    );
    // Viewer 1 idle for 5 s: it gives its place up.
    match table.viewer_sent(viewer(3), t0 + Duration::from_secs(5)) {
        Verdict::Open { evicted, .. } => assert_eq!(evicted, Some(viewer(1))),
        other => panic!("expected an eviction, got {other:?}"),
    }
    assert_eq!(table.flows(), 2);
    assert_eq!(table.relay_of(viewer(1)), None);
}

#[test]
fn idle_flows_expire() {
    let t0 = Instant::now();
    let mut table = table(2, 8);
    table.viewer_sent(viewer(1), t0);
    table.viewer_sent(viewer(2), t0 + Duration::from_secs(30));
    assert!(table.expire(t0 + Duration::from_secs(59)).is_empty());
    assert_eq!(table.expire(t0 + Duration::from_secs(60)), vec![viewer(1)]);
    assert_eq!(table.flows(), 1);
}

#[derive(Debug, Clone)]
enum Op {
    /// A datagram from viewer `n`, `ms` after the previous op.
    Viewer(u16, u64),
    /// An answer from viewer `n`'s relay.
    Answer(u16, u64),
    /// Relay `n`'s health check result.
    Health(u8, bool),
    /// Relay `n` leaves the list, or comes back.
    Listed(u8, bool),
    /// Expiry runs.
    Expire(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u16..64, 0u64..3_000).prop_map(|(v, ms)| Op::Viewer(v, ms)),
        4 => (0u16..64, 0u64..500).prop_map(|(v, ms)| Op::Answer(v, ms)),
        1 => (1u8..=4, any::<bool>()).prop_map(|(r, h)| Op::Health(r, h)),
        1 => (1u8..=4, any::<bool>()).prop_map(|(r, l)| Op::Listed(r, l)),
        1 => (0u64..70_000).prop_map(Op::Expire),
    ]
}

proptest! {
    /// Whatever happens, the table holds at most its cap, every flow's relay is listed or
    /// the flow is on its way out, and a forwarded datagram goes to an eligible relay.
    #[test]
    fn bounded_and_only_to_eligible_relays(
        max_flows in 1usize..16,
        ops in proptest::collection::vec(op(), 1..300),
    ) {
        let mut now = Instant::now();
        let mut table = table(4, max_flows);
        let mut listed: Vec<u8> = (1..=4).collect();
        for op in ops {
            match op {
                Op::Viewer(v, ms) => {
                    now += Duration::from_millis(ms);
                    let verdict = table.viewer_sent(viewer(v), now);
                    if let Some(r) = relay_of(verdict) {
                        prop_assert!(table.is_eligible(r, now));
                        prop_assert_eq!(table.relay_of(viewer(v)), Some(r));
                    }
                    if let Verdict::Open { evicted: Some(e), .. } = verdict {
                        prop_assert_ne!(e, viewer(v));
                        prop_assert_eq!(table.relay_of(e), None);
                    }
                }
                Op::Answer(v, ms) => {
                    now += Duration::from_millis(ms);
                    if let Some(r) = table.relay_of(viewer(v)) {
                        prop_assert!(table.relay_sent(viewer(v), r, now));
                    }
                }
                Op::Health(r, h) => table.set_health(relay(r), h),
                Op::Listed(r, l) => {
                    listed.retain(|x| *x != r);
                    if l {
                        listed.push(r);
                    }
                    table.set_relays(listed.iter().map(|r| relay(*r)));
                }
                Op::Expire(ms) => {
                    now += Duration::from_millis(ms);
                    for gone in table.expire(now) {
                        prop_assert_eq!(table.relay_of(gone), None);
                    }
                }
            }
            prop_assert!(table.flows() <= max_flows);
            prop_assert_eq!(table.flows(), table.by_age.len());
        }
    }

    /// A viewer keeps its relay while that relay stays eligible, and a relay's departure
    /// moves only its own viewers.
    #[test]
    fn sticky_and_minimal_moves(
        viewers in proptest::collection::btree_set(0u16..2_000, 1..40),
        gone in 1u8..=4,
    ) {
        let now = Instant::now();
        let mut table = table(4, 4_096);
        let mut placed = Vec::new();
        for &v in &viewers {
            let r = relay_of(table.viewer_sent(viewer(v), now)).expect("placed");
            table.relay_sent(viewer(v), r, now);
            placed.push((v, r));
        }
        for _ in 0..3 {
            for &(v, r) in &placed {
                prop_assert_eq!(table.viewer_sent(viewer(v), now), Verdict::Forward { relay: r });
                table.relay_sent(viewer(v), r, now);
            }
        }
        // Another load balancer with the same relays places every viewer the same way.
        let other = self::table(4, 4_096);
        for &(v, r) in &placed {
            prop_assert_eq!(other.choose(viewer(v), now), Some(r));
        }
        table.set_relays((1..=4).filter(|r| *r != gone).map(relay));
        for &(v, r) in &placed {
            let verdict = table.viewer_sent(viewer(v), now);
            if r == relay(gone) {
                match verdict {
                    Verdict::Open { relay: to, moved_from, .. } => {
                        prop_assert_ne!(to, relay(gone));
                        prop_assert_eq!(moved_from, Some(relay(gone)));
                    }
                    other => prop_assert!(false, "expected a move, got {:?}", other),
                }
            } else {
                prop_assert_eq!(verdict, Verdict::Forward { relay: r });
            }
        }
    }

    /// A flood of one-datagram sources never costs a viewer that keeps sending its place.
    #[test]
    fn a_flood_does_not_evict_live_viewers(
        max_flows in 2usize..32,
        flood in 1u16..500,
        step_ms in 1u64..400,
    ) {
        let mut now = Instant::now();
        let mut table = table(2, max_flows);
        let live = viewer(60_000 - 40_000);
        prop_assert!(relay_of(table.viewer_sent(live, now)).is_some());
        for n in 0..flood {
            now += Duration::from_millis(step_ms);
            let _ = table.viewer_sent(viewer(n), now);
            // The live viewer sends at least once a second.
            if n % 2 == 0 {
                let r = relay_of(table.viewer_sent(live, now));
                prop_assert!(r.is_some());
                // Its relay answers it (a flood's sources get no say in a relay's health).
                if let Some(r) = r {
                    table.relay_sent(live, r, now);
                }
            }
            prop_assert!(table.relay_of(live).is_some(), "the live viewer lost its flow");
            prop_assert!(table.flows() <= max_flows);
        }
    }
}
