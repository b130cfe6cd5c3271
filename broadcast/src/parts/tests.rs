use std::time::Duration;

use domain::manifest::{KeyId, SignatureAlgorithm};
use domain::SessionId;
use proptest::prelude::*;

use super::*;

fn meta(seq: u64, index: u32) -> PartMeta {
    PartMeta {
        stream: StreamName::new("s").expect("valid"),
        rendition: RenditionName::new("720p").expect("valid"),
        session: SessionId(1),
        sequence: seq,
        index,
        discontinuity_sequence: 0,
        independent: index == 0,
        duration: Duration::from_millis(333),
        program_date_time_ms: 1_800_000_000_000,
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    // A stand-in for SHA-256: the gate only compares digests.
    let mut d = [0u8; 32];
    for (i, b) in bytes.iter().enumerate() {
        d[i % 32] = d[i % 32].wrapping_mul(31).wrapping_add(*b);
    }
    d[30] = bytes.len() as u8;
    d[31] = (bytes.len() >> 8) as u8;
    d
}

/// The genuine bytes of part (seq, index).
fn genuine(seq: u64, index: u32) -> Bytes {
    Bytes::from(vec![
        (seq as u8) ^ (index as u8).wrapping_mul(7);
        50 + index as usize
    ])
}

fn manifest(seq: u64, index: u32) -> PartManifest {
    let bytes = genuine(seq, index);
    PartManifest::from_meta(
        &meta(seq, index),
        SignatureAlgorithm::Ed25519,
        KeyId([1; 16]),
        bytes.len() as u64,
        digest(&bytes),
    )
}

fn published(out: &[PartOutput]) -> Vec<(u64, u32)> {
    out.iter()
        .filter_map(|o| match o {
            PartOutput::Publish { part: p, .. } => Some((p.meta.sequence, p.meta.index)),
            PartOutput::Rejected(_) => None,
        })
        .collect()
}

fn push(g: &mut PartGate, now: u64, seq: u64, index: u32, bytes: Bytes) -> Vec<PartOutput> {
    let d = digest(&bytes);
    g.bytes(now, meta(seq, index), bytes, d)
}

#[test]
fn publishes_when_bytes_and_manifest_meet_in_either_order() {
    let mut g = PartGate::new(1000, 1 << 20);
    assert!(push(&mut g, 0, 5, 0, genuine(5, 0)).is_empty());
    assert_eq!(published(&g.manifest(1, manifest(5, 0))), [(5, 0)]);
    assert!(g.manifest(2, manifest(5, 1)).is_empty());
    assert_eq!(published(&push(&mut g, 3, 5, 1, genuine(5, 1))), [(5, 1)]);
    assert_eq!(g.held_bytes(), 0);
    // Replays of published parts are refused.
    assert_eq!(
        push(&mut g, 4, 5, 1, genuine(5, 1)),
        [PartOutput::Rejected(RejectReason::Replay)]
    );
}

#[test]
fn a_rival_push_first_does_not_keep_the_genuine_part_out() {
    let mut g = PartGate::new(1000, 1 << 20);
    push(&mut g, 0, 5, 0, Bytes::from_static(b"forged"));
    push(&mut g, 1, 5, 0, genuine(5, 0));
    let out = g.manifest(2, manifest(5, 0));
    assert_eq!(published(&out), [(5, 0)]);
    assert!(out.contains(&PartOutput::Rejected(RejectReason::DigestMismatch)));
    match &out.iter().find(|o| matches!(o, PartOutput::Publish { .. })) {
        Some(PartOutput::Publish { part: p, .. }) => assert_eq!(p.bytes, genuine(5, 0)),
        _ => unreachable!(),
    }
}

#[test]
fn a_tampered_part_is_refused_and_a_correct_retry_still_matches() {
    let mut g = PartGate::new(1000, 1 << 20);
    g.manifest(0, manifest(5, 2));
    let out = push(&mut g, 1, 5, 2, Bytes::from_static(b"tampered"));
    assert_eq!(out, [PartOutput::Rejected(RejectReason::DigestMismatch)]);
    assert_eq!(published(&push(&mut g, 2, 5, 2, genuine(5, 2))), [(5, 2)]);
}

#[test]
fn unmatched_bytes_time_out_and_far_ahead_parts_are_refused() {
    let mut g = PartGate::new(1000, 1 << 20);
    push(&mut g, 0, 5, 0, genuine(5, 0));
    g.manifest(0, manifest(6, 0));
    assert!(g.tick(999).is_empty());
    assert_eq!(g.tick(1000), [PartOutput::Rejected(RejectReason::Timeout)]);
    assert_eq!(g.held_bytes(), 0);
    // The manifest was forgotten too: its bytes now wait alone.
    assert!(push(&mut g, 1001, 6, 0, genuine(6, 0)).is_empty());
    g.manifest(1002, manifest(7, 0));
    assert_eq!(
        published(&push(&mut g, 1003, 7, 0, genuine(7, 0))),
        [(7, 0)]
    );
    assert_eq!(
        push(&mut g, 1004, 7 + PART_AHEAD + 1, 0, genuine(11, 0)),
        [PartOutput::Rejected(RejectReason::Overflow)]
    );
}

#[test]
fn held_bytes_and_entries_are_bounded() {
    let mut g = PartGate::new(1000, 200);
    for i in 0..5 {
        push(&mut g, u64::from(i), 5, i, genuine(5, i));
        assert!(g.held_bytes() <= 200);
    }
    let mut g = PartGate::new(1000, 1 << 20);
    for i in 0..(MAX_LANE_ENTRIES as u32 + 10) {
        push(&mut g, 0, 1, i, genuine(1, i));
    }
    let lane = g.lanes.values().next().expect("lane");
    assert!(lane.entries() <= MAX_LANE_ENTRIES);
}

#[derive(Debug, Clone)]
enum Op {
    Genuine(u64, u32),
    Forged(u64, u32, u8),
    Manifest(u64, u32),
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..6, 0u32..4).prop_map(|(s, i)| Op::Genuine(s, i)),
        (0u64..6, 0u32..4, any::<u8>()).prop_map(|(s, i, b)| Op::Forged(s, i, b)),
        (0u64..6, 0u32..4).prop_map(|(s, i)| Op::Manifest(s, i)),
        (0u64..1500).prop_map(Op::Tick),
    ]
}

proptest! {
    /// Whatever is pushed, in whatever order: only bytes a verified manifest describes are
    /// published, each part at most once, and the held-bytes count stays true and capped.
    #[test]
    fn never_publishes_bytes_whose_manifest_did_not_verify_and_agree(
        ops in prop::collection::vec(op(), 1..80),
        cap in 100usize..2000,
    ) {
        let mut g = PartGate::new(1000, cap);
        let mut now = 0;
        let mut verified = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for op in ops {
            let out = match op {
                Op::Genuine(s, i) => push(&mut g, now, s, i, genuine(s, i)),
                Op::Forged(s, i, b) => {
                    let mut forged = genuine(s, i).to_vec();
                    forged[0] ^= b | 1;
                    push(&mut g, now, s, i, Bytes::from(forged))
                }
                Op::Manifest(s, i) => {
                    verified.insert((s, i));
                    g.manifest(now, manifest(s, i))
                }
                Op::Tick(dt) => {
                    now += dt;
                    g.tick(now)
                }
            };
            for o in &out {
                if let PartOutput::Publish { part: p, .. } = o {
                    let key = (p.meta.sequence, p.meta.index);
                    prop_assert!(verified.contains(&key), "published without a manifest");
                    prop_assert_eq!(&p.bytes, &genuine(key.0, key.1));
                    prop_assert!(seen.insert(key), "published twice");
                }
            }
            let held: usize = g
                .lanes
                .values()
                .flat_map(|l| l.held.values().flatten())
                .map(|h| h.bytes.len())
                .sum();
            prop_assert_eq!(held, g.held_bytes());
            prop_assert!(g.held_bytes() <= cap);
        }
    }
}
