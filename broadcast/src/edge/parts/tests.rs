use proptest::prelude::*;

use super::*;
use crate::edge::candidates::MAX_CANDIDATES;
use crate::edge::fixtures::{part_bytes, part_claim, sha256, signed_part};

fn published(out: &[PartOutput]) -> Vec<(u64, u32)> {
    out.iter()
        .filter_map(|o| match o {
            PartOutput::Publish { part: p, .. } => Some((p.meta.sequence, p.meta.index)),
            PartOutput::Rejected(_) => None,
        })
        .collect()
}

fn push(g: &mut PartGate, now: u64, seq: u64, index: u32, bytes: Bytes) -> Vec<PartOutput> {
    let d = sha256(&bytes);
    g.bytes(now, part_claim(0, seq, index), bytes, d)
}

#[test]
fn publishes_when_bytes_and_statement_meet_in_either_order() {
    let mut g = PartGate::new(1000, 1 << 20);
    assert!(push(&mut g, 0, 5, 0, part_bytes(0, 5, 0)).is_empty());
    assert_eq!(published(&g.statement(1, signed_part(0, 5, 0))), [(5, 0)]);
    assert!(g.statement(2, signed_part(0, 5, 1)).is_empty());
    assert_eq!(
        published(&push(&mut g, 3, 5, 1, part_bytes(0, 5, 1))),
        [(5, 1)]
    );
    assert_eq!(g.held_bytes(), 0);
    // Replays of published parts are refused.
    assert_eq!(
        push(&mut g, 4, 5, 1, part_bytes(0, 5, 1)),
        [PartOutput::Rejected(RejectReason::Replay)]
    );
}

#[test]
fn a_rival_push_first_does_not_keep_the_genuine_part_out() {
    let mut g = PartGate::new(1000, 1 << 20);
    push(&mut g, 0, 5, 0, Bytes::from_static(b"forged"));
    push(&mut g, 1, 5, 0, part_bytes(0, 5, 0));
    let out = g.statement(2, signed_part(0, 5, 0));
    assert_eq!(published(&out), [(5, 0)]);
    assert!(out.contains(&PartOutput::Rejected(RejectReason::DigestMismatch)));
    match &out.iter().find(|o| matches!(o, PartOutput::Publish { .. })) {
        Some(PartOutput::Publish { part: p, .. }) => assert_eq!(p.bytes, part_bytes(0, 5, 0)),
        _ => unreachable!(),
    }
}

#[test]
fn a_tampered_part_is_refused_and_a_correct_retry_still_matches() {
    let mut g = PartGate::new(1000, 1 << 20);
    g.statement(0, signed_part(0, 5, 2));
    let out = push(&mut g, 1, 5, 2, Bytes::from_static(b"tampered"));
    assert_eq!(out, [PartOutput::Rejected(RejectReason::DigestMismatch)]);
    assert_eq!(
        published(&push(&mut g, 2, 5, 2, part_bytes(0, 5, 2))),
        [(5, 2)]
    );
}

#[test]
fn unmatched_bytes_time_out_and_far_ahead_parts_are_refused() {
    let mut g = PartGate::new(1000, 1 << 20);
    push(&mut g, 0, 5, 0, part_bytes(0, 5, 0));
    g.statement(0, signed_part(0, 6, 0));
    assert!(g.tick(999).is_empty());
    assert_eq!(g.tick(1000), [PartOutput::Rejected(RejectReason::Timeout)]);
    assert_eq!(g.held_bytes(), 0);
    // The statement was forgotten too: its bytes now wait alone.
    assert!(push(&mut g, 1001, 6, 0, part_bytes(0, 6, 0)).is_empty());
    g.statement(1002, signed_part(0, 7, 0));
    assert_eq!(
        published(&push(&mut g, 1003, 7, 0, part_bytes(0, 7, 0))),
        [(7, 0)]
    );
    assert_eq!(
        push(&mut g, 1004, 7 + PART_AHEAD + 1, 0, part_bytes(0, 11, 0)),
        [PartOutput::Rejected(RejectReason::Overflow)]
    );
}

#[test]
fn held_bytes_and_entries_are_bounded() {
    let mut g = PartGate::new(1000, 200);
    for i in 0..5 {
        push(&mut g, u64::from(i), 5, i, part_bytes(0, 5, i));
        assert!(g.held_bytes() <= 200);
    }
    let mut g = PartGate::new(1000, 1 << 20);
    for i in 0..(MAX_LANE_ENTRIES as u32 + 10) {
        push(&mut g, 0, 1, i, part_bytes(0, 1, i));
    }
    let id = g.lanes.keys().next().expect("lane");
    let (pushes, statements) = g.candidates.entries(id);
    assert!(pushes + statements <= MAX_LANE_ENTRIES);
}

#[derive(Debug, Clone)]
enum Op {
    Genuine(u64, u32),
    Forged(u64, u32, u8),
    Statement(u64, u32),
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..6, 0u32..4).prop_map(|(s, i)| Op::Genuine(s, i)),
        (0u64..6, 0u32..4, any::<u8>()).prop_map(|(s, i, b)| Op::Forged(s, i, b)),
        (0u64..6, 0u32..4).prop_map(|(s, i)| Op::Statement(s, i)),
        (0u64..1500).prop_map(Op::Tick),
    ]
}

proptest! {
    /// Whatever is pushed, in whatever order: only bytes a verified statement describes are
    /// published, each part at most once, and the held-bytes count stays true and capped.
    #[test]
    fn never_publishes_bytes_whose_statement_did_not_verify_and_agree(
        ops in prop::collection::vec(op(), 1..80),
        cap in 100usize..2000,
    ) {
        let mut g = PartGate::new(1000, cap);
        let mut now = 0;
        let mut verified = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for op in ops {
            let out = match op {
                Op::Genuine(s, i) => push(&mut g, now, s, i, part_bytes(0, s, i)),
                Op::Forged(s, i, b) => {
                    let mut forged = part_bytes(0, s, i).to_vec();
                    forged[0] ^= b | 1;
                    push(&mut g, now, s, i, Bytes::from(forged))
                }
                Op::Statement(s, i) => {
                    verified.insert((s, i));
                    g.statement(now, signed_part(0, s, i))
                }
                Op::Tick(dt) => {
                    now += dt;
                    g.tick(now)
                }
            };
            for o in &out {
                if let PartOutput::Publish { part: p, signed, .. } = o {
                    let key = (p.meta.sequence, p.meta.index);
                    prop_assert!(verified.contains(&key), "published without a statement");
                    prop_assert_eq!(&p.bytes, &part_bytes(0, key.0, key.1));
                    prop_assert_eq!(signed, &signed_part(0, key.0, key.1).envelope);
                    prop_assert!(seen.insert(key), "published twice");
                }
            }
            prop_assert_eq!(g.candidates.counted_bytes(), g.held_bytes());
            prop_assert!(g.held_bytes() <= cap);
        }
    }
}

fn lane0() -> LaneId {
    part_claim(0, 0, 0).lane()
}

#[test]
fn a_segment_is_assembled_from_published_parts_and_sole_candidates() {
    let mut g = PartGate::new(1000, 1 << 20);
    // Part 0 published, part 1 pushed and its statement not here yet, part 2 missing.
    push(&mut g, 0, 5, 0, part_bytes(0, 5, 0));
    g.statement(1, signed_part(0, 5, 0));
    push(&mut g, 2, 5, 1, part_bytes(0, 5, 1));
    assert_eq!(g.assemble(&lane0(), 5, 3), Err(2));
    assert_eq!(
        g.assemble(&lane0(), 5, 2),
        Ok(vec![part_bytes(0, 5, 0), part_bytes(0, 5, 1)])
    );
    // A rival for part 1: which is genuine only its statement can say.
    push(&mut g, 3, 5, 1, Bytes::from_static(b"forged"));
    assert_eq!(g.assemble(&lane0(), 5, 2), Err(1));
    // It said: the genuine one is published, the rival gone.
    g.statement(4, signed_part(0, 5, 1));
    assert_eq!(
        g.assemble(&lane0(), 5, 2),
        Ok(vec![part_bytes(0, 5, 0), part_bytes(0, 5, 1)])
    );
    assert_eq!(g.assemble(&lane0(), 6, 1), Err(0));
}

#[test]
fn kept_parts_go_with_their_segment_and_are_bounded() {
    let mut g = PartGate::new(1000, 1 << 20);
    for seq in 1..=4 {
        for i in 0..3 {
            push(&mut g, seq, seq, i, part_bytes(0, seq, i));
            g.statement(seq, signed_part(0, seq, i));
        }
    }
    // The newest two segments' parts are kept, no more.
    assert_eq!(g.assemble(&lane0(), 2, 3), Err(0));
    assert!(g.assemble(&lane0(), 3, 3).is_ok());
    assert!(g.assemble(&lane0(), 4, 3).is_ok());
    let kept: usize = (3..=4)
        .flat_map(|s| (0..3).map(move |i| part_bytes(0, s, i).len()))
        .sum();
    assert_eq!(g.kept_bytes(), kept);
    // Segment 3 published: its parts are the segment's now.
    g.segment_done(&lane0(), 3);
    assert_eq!(g.assemble(&lane0(), 3, 3), Err(0));
    assert!(g.assemble(&lane0(), 4, 3).is_ok());
    g.segment_done(&lane0(), 4);
    assert_eq!(g.kept_bytes(), 0);
}

/// What the model knows of one part of segment 5: published, a verified statement
/// waiting, the distinct pushes held.
#[derive(Debug, Default, Clone)]
struct Model {
    published: bool,
    statement: bool,
    held: Vec<Bytes>,
}

proptest! {
    /// Whatever is pushed and verified, in whatever order: a segment is assembled only
    /// when each of its parts is published (then from the genuine bytes) or has exactly
    /// one push held (then from it), and refused at the first part that has neither.
    #[test]
    fn assembly_takes_published_parts_or_unambiguous_pushes(
        ops in prop::collection::vec((0u32..4, 0u8..4), 1..40),
    ) {
        let mut g = PartGate::new(1_000_000, 1 << 20);
        let mut model = vec![Model::default(); 4];
        for (now, (index, what)) in (0u64..).zip(ops) {
            let genuine = part_bytes(0, 5, index);
            let m = &mut model[index as usize];
            match what {
                0 => {
                    g.statement(now, signed_part(0, 5, index));
                    if !m.published && !m.statement {
                        if m.held.contains(&genuine) {
                            m.published = true;
                        } else {
                            m.statement = true;
                        }
                        m.held.clear();
                    }
                }
                n => {
                    let bytes = if n == 1 {
                        genuine.clone()
                    } else {
                        Bytes::from(vec![n; 8])
                    };
                    push(&mut g, now, 5, index, bytes.clone());
                    if m.published {
                    } else if m.statement {
                        // Met at once: published if genuine, else refused.
                        if bytes == genuine {
                            m.published = true;
                            m.statement = false;
                        }
                    } else if !m.held.contains(&bytes) && m.held.len() < MAX_CANDIDATES {
                        m.held.push(bytes);
                    }
                }
            }
        }
        let expected: Result<Vec<Bytes>, u32> = (0u32..4)
            .map(|i| {
                let m = &model[i as usize];
                if m.published {
                    Ok(part_bytes(0, 5, i))
                } else if let [only] = m.held.as_slice() {
                    Ok(only.clone())
                } else {
                    Err(i)
                }
            })
            .collect();
        prop_assert_eq!(g.assemble(&lane0(), 5, 4), expected);
    }
}
