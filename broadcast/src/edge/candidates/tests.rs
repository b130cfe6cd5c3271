use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::edge::fixtures::{part_bytes, part_claim, rendition, sha256, signed_part};

const HOLD: u64 = 1000;

fn lane_id(lane: u8) -> LaneId {
    part_claim(lane, 0, 0).lane()
}

fn push(
    set: &mut CandidateSet<PartMeta>,
    now: u64,
    claim: PartMeta,
    bytes: Bytes,
    out: &mut Vec<RejectReason>,
) -> Pushed<PartMeta> {
    let digest = sha256(&bytes);
    set.push(now, claim, bytes, digest, out)
}

#[test]
fn the_statement_picks_the_genuine_push_among_rivals_in_any_order() {
    for genuine_first in [true, false] {
        let mut set = CandidateSet::new(HOLD, 1 << 20);
        let mut out = Vec::new();
        let forged = Bytes::from_static(b"forged, with the push token");
        let pushes = if genuine_first {
            [part_bytes(0, 5, 1), forged.clone()]
        } else {
            [forged.clone(), part_bytes(0, 5, 1)]
        };
        for bytes in pushes {
            let pushed = push(&mut set, 0, part_claim(0, 5, 1), bytes, &mut out);
            assert!(!matches!(pushed, Pushed::Refused));
        }
        // The same bytes again are a replay.
        assert!(matches!(
            push(&mut set, 1, part_claim(0, 5, 1), forged, &mut out),
            Pushed::Refused
        ));
        assert_eq!(out, [RejectReason::Replay]);
        out.clear();
        let matched = set
            .verified(2, signed_part(0, 5, 1), &mut out)
            .expect("a match");
        assert_eq!(matched.bytes, part_bytes(0, 5, 1));
        assert_eq!(matched.signed, signed_part(0, 5, 1).envelope);
        assert_eq!(matched.arrived_ms, 0);
        assert_eq!(out, [RejectReason::DigestMismatch]);
        assert_eq!(set.held_bytes(), 0);
    }
}

#[test]
fn genuine_bytes_under_a_false_claim_first_do_not_make_the_genuine_push_a_replay() {
    let mut set = CandidateSet::new(HOLD, 1 << 20);
    let mut out = Vec::new();
    let mut lying = part_claim(0, 3, 0);
    lying.program_date_time_ms += 1;
    push(&mut set, 0, lying, part_bytes(0, 3, 0), &mut out);
    assert!(matches!(
        push(
            &mut set,
            1,
            part_claim(0, 3, 0),
            part_bytes(0, 3, 0),
            &mut out
        ),
        Pushed::Rival
    ));
    let matched = set
        .verified(2, signed_part(0, 3, 0), &mut out)
        .expect("a match");
    assert_eq!(matched.claim, part_claim(0, 3, 0));
    assert_eq!(out, [RejectReason::DigestMismatch]);
}

#[test]
fn candidates_beyond_the_limit_overflow() {
    let mut set = CandidateSet::new(HOLD, 1 << 20);
    let mut out = Vec::new();
    for n in 0..MAX_CANDIDATES as u8 {
        let bytes = Bytes::from(vec![n; 10]);
        assert!(!matches!(
            push(&mut set, 0, part_claim(0, 1, 0), bytes, &mut out),
            Pushed::Refused
        ));
    }
    let one_more = Bytes::from_static(b"one more");
    assert!(matches!(
        push(&mut set, 0, part_claim(0, 1, 0), one_more, &mut out),
        Pushed::Refused
    ));
    assert_eq!(out, [RejectReason::Overflow]);
}

#[test]
fn a_claim_that_differs_from_the_statement_is_refused_even_with_genuine_bytes() {
    let mut set = CandidateSet::new(HOLD, 1 << 20);
    let mut out = Vec::new();
    let mut lying = part_claim(0, 2, 0);
    lying.duration = Duration::from_secs(60);
    push(&mut set, 0, lying, part_bytes(0, 2, 0), &mut out);
    assert_eq!(set.verified(0, signed_part(0, 2, 0), &mut out), None);
    assert_eq!(out, [RejectReason::DigestMismatch]);
    // The statement stays: a correct retry still matches.
    assert!(set.has_statement(&lane_id(0), (2, 0)));
    let Pushed::First(Some(m)) = push(
        &mut set,
        1,
        part_claim(0, 2, 0),
        part_bytes(0, 2, 0),
        &mut out,
    ) else {
        panic!("the retry matches");
    };
    assert_eq!(m.claim, part_claim(0, 2, 0));
}

#[test]
fn the_budget_drops_the_key_waiting_longest_with_its_rivals() {
    let mut set = CandidateSet::new(HOLD, 100);
    let mut out = Vec::new();
    push(
        &mut set,
        0,
        part_claim(0, 1, 0),
        Bytes::from(vec![1; 30]),
        &mut out,
    );
    push(
        &mut set,
        5,
        part_claim(0, 1, 0),
        Bytes::from(vec![2; 30]),
        &mut out,
    );
    push(
        &mut set,
        1,
        part_claim(1, 0, 0),
        Bytes::from(vec![3; 30]),
        &mut out,
    );
    set.enforce_budget(0, &mut out);
    assert!(out.is_empty());
    // The owner now holds 20 bytes of its own: the first key goes, both its candidates.
    set.enforce_budget(20, &mut out);
    assert_eq!(out, [RejectReason::Overflow, RejectReason::Overflow]);
    assert_eq!(set.held_bytes(), 30);
    assert!(set.has_pushes(&lane_id(1), (0, 0)));
}

#[test]
fn pushes_time_out_with_their_first_and_statements_are_forgotten() {
    let mut set = CandidateSet::new(HOLD, 1 << 20);
    let mut out = Vec::new();
    push(
        &mut set,
        0,
        part_claim(0, 1, 0),
        Bytes::from(vec![1; 10]),
        &mut out,
    );
    push(
        &mut set,
        900,
        part_claim(0, 1, 0),
        Bytes::from(vec![2; 10]),
        &mut out,
    );
    set.verified(500, signed_part(0, 2, 0), &mut out);
    set.expire(&lane_id(0), HOLD - 1, &mut out);
    assert!(out.is_empty());
    set.expire(&lane_id(0), HOLD, &mut out);
    assert_eq!(out, [RejectReason::Timeout, RejectReason::Timeout]);
    assert!(set.has_statement(&lane_id(0), (2, 0)));
    set.expire(&lane_id(0), 500 + HOLD, &mut out);
    assert_eq!(set.entries(&lane_id(0)), (0, 0));
    assert!(set.lanes.is_empty(), "an empty lane is forgotten");
}

#[test]
fn forgetting_before_a_key_counts_the_pushes_only() {
    let mut set = CandidateSet::new(HOLD, 1 << 20);
    let mut out = Vec::new();
    for seq in 0..3 {
        push(
            &mut set,
            0,
            part_claim(0, seq, 0),
            part_bytes(0, seq, 0),
            &mut out,
        );
    }
    set.verified(0, signed_part(0, 1, 1), &mut out);
    set.forget_before(&lane_id(0), (2, 0), RejectReason::Timeout, &mut out);
    assert_eq!(out, [RejectReason::Timeout, RejectReason::Timeout]);
    assert_eq!(set.entries(&lane_id(0)), (1, 0));
    assert_eq!(set.held_bytes(), set.counted_bytes());
}

/// One thing that can happen to the set.
#[derive(Debug, Clone)]
enum Op {
    /// The genuine bytes and claim of a part.
    Genuine(u8, u64, u32),
    /// Other bytes of the same length (a forgery that keeps the length).
    SameLength(u8, u64, u32, u8),
    /// Other bytes of another length.
    OtherLength(u8, u64, u32, u8),
    /// The genuine bytes with a claim that lies (another duration).
    LyingClaim(u8, u64, u32),
    /// The verified statement of a part.
    Statement(u8, u64, u32),
    /// The owner holds this many bytes besides, and enforces the budget.
    Budget(u16),
    /// Time passes, and every lane expires what waited too long.
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let at = || (0u8..2, 0u64..4, 0u32..3);
    prop_oneof![
        3 => at().prop_map(|(l, s, i)| Op::Genuine(l, s, i)),
        2 => (at(), any::<u8>()).prop_map(|((l, s, i), b)| Op::SameLength(l, s, i, b)),
        1 => (at(), any::<u8>()).prop_map(|((l, s, i), b)| Op::OtherLength(l, s, i, b)),
        1 => at().prop_map(|(l, s, i)| Op::LyingClaim(l, s, i)),
        3 => at().prop_map(|(l, s, i)| Op::Statement(l, s, i)),
        1 => (0u16..300).prop_map(Op::Budget),
        1 => (0u64..700).prop_map(Op::Tick),
    ]
}

proptest! {
    /// Whatever order bytes, statements, rival and forged pushes arrive in: only bytes
    /// whose digest and length (and every claimed field) match a verified statement ever
    /// leave, with that statement's envelope, at most once per statement; a genuine push
    /// held when its statement comes (or the other way round) always leaves; the budget
    /// holds after every enforcement, the running count stays true, and nothing outlives
    /// the hold time.
    #[test]
    fn only_what_a_verified_statement_describes_ever_leaves(
        ops in prop::collection::vec(op(), 1..120),
        cap in 50usize..400,
    ) {
        let mut set = CandidateSet::<PartMeta>::new(HOLD, cap);
        let mut now = 0;
        let mut matched = Vec::new();
        // How many statements each key was given (one at a time: a second statement of a
        // key still waiting is a replay the gates refuse before the set).
        let mut given: BTreeMap<(u8, u64, u32), usize> = BTreeMap::new();
        for op in ops {
            let mut out = Vec::new();
            let pushed = match op {
                Op::Genuine(l, s, i) => Some((l, s, i, part_claim(l, s, i), part_bytes(l, s, i))),
                Op::SameLength(l, s, i, b) => {
                    let mut forged = part_bytes(l, s, i).to_vec();
                    let at = usize::from(b) % forged.len();
                    forged[at] ^= b | 1;
                    Some((l, s, i, part_claim(l, s, i), Bytes::from(forged)))
                }
                Op::OtherLength(l, s, i, b) => {
                    let mut longer = part_bytes(l, s, i).to_vec();
                    longer.push(b);
                    Some((l, s, i, part_claim(l, s, i), Bytes::from(longer)))
                }
                Op::LyingClaim(l, s, i) => {
                    let mut lying = part_claim(l, s, i);
                    lying.independent = !lying.independent;
                    Some((l, s, i, lying, part_bytes(l, s, i)))
                }
                Op::Statement(l, s, i) => {
                    let lane = lane_id(l);
                    if !set.has_statement(&lane, (s, i)) {
                        let genuine_held = set.lanes.get(&lane)
                            .and_then(|ln| ln.pushes.get(&(s, i)))
                            .is_some_and(|p| p.candidates.iter()
                                .any(|c| c.bytes == part_bytes(l, s, i) && c.claim == part_claim(l, s, i)));
                        let m = set.verified(now, signed_part(l, s, i), &mut out);
                        prop_assert_eq!(m.is_some(), genuine_held, "statement of {:?}", (l, s, i));
                        *given.entry((l, s, i)).or_default() += 1;
                        matched.extend(m.map(|m| ((l, s, i), m)));
                    }
                    None
                }
                Op::Budget(also) => {
                    set.enforce_budget(usize::from(also), &mut out);
                    prop_assert!(set.held_bytes() + usize::from(also) <= cap || set.held_bytes() == 0);
                    None
                }
                Op::Tick(dt) => {
                    now += dt;
                    for l in 0..2 {
                        set.expire(&lane_id(l), now, &mut out);
                    }
                    None
                }
            };
            if let Some((l, s, i, c, bytes)) = pushed {
                let waiting = set.has_statement(&lane_id(l), (s, i));
                let is_genuine = c == part_claim(l, s, i) && bytes == part_bytes(l, s, i);
                match push(&mut set, now, c, bytes, &mut out) {
                    Pushed::First(m) => {
                        prop_assert_eq!(m.is_some(), waiting && is_genuine);
                        matched.extend(m.map(|m| ((l, s, i), m)));
                    }
                    Pushed::Rival | Pushed::Refused => prop_assert!(!waiting),
                }
                set.enforce_budget(0, &mut out);
                prop_assert!(set.held_bytes() <= cap);
            }
            prop_assert_eq!(set.held_bytes(), set.counted_bytes());
            for ln in set.lanes.values() {
                prop_assert!(ln.pushes.keys().all(|k| !ln.statements.contains_key(k)),
                    "pushes and statement of one key never wait for each other");
            }
        }
        let mut spent: BTreeMap<(u8, u64, u32), usize> = BTreeMap::new();
        for ((l, s, i), m) in &matched {
            prop_assert_eq!(&m.bytes, &part_bytes(*l, *s, *i));
            prop_assert_eq!(&m.claim, &part_claim(*l, *s, *i));
            // The envelope handed on is the statement that describes exactly these bytes.
            let statement = PartStatement::decode(&m.signed).expect("an envelope of ours");
            prop_assert_eq!(&statement.digest, &sha256(&m.bytes));
            prop_assert_eq!(statement.byte_len, m.bytes.len() as u64);
            prop_assert_eq!(statement.key(), (*s, *i));
            prop_assert_eq!(statement.rendition(), &rendition(*l));
            *spent.entry((*l, *s, *i)).or_default() += 1;
        }
        for (key, n) in spent {
            prop_assert!(n <= given.get(&key).copied().unwrap_or(0), "{:?} left more often than it was signed", key);
        }
        // The hold time later nothing is left.
        for l in 0..2 {
            let mut out: Vec<RejectReason> = Vec::new();
            set.expire(&lane_id(l), now + HOLD, &mut out);
            prop_assert!(out.iter().all(|r| *r == RejectReason::Timeout));
        }
        prop_assert_eq!(set.held_bytes(), 0);
        prop_assert!(set.lanes.is_empty());
    }
}
