//! The signature gate, sans-IO: a pushed segment is published only when its bytes and a
//! verified manifest have both arrived and agree, in sequence order per rendition.
//!
//! The caller checks the manifest's signature against its trust store first and hands
//! over either the verified manifest or the rejection reason; this module never fails
//! open: bytes without a valid manifest are held for at most `hold` and then dropped, and
//! the sequence number becomes a gap (`#EXT-X-GAP`) so players skip it. Held bytes are
//! bounded by `max_held_bytes`; beyond it the oldest held segment is dropped (`overflow`).
//! Time is a number of milliseconds the caller passes in.
//!
//! A lane (one rendition of one stream) starts at the first *bytes* it receives, not at the
//! first manifest: a node that joins late gets live manifests over MQTT before the
//! catch-up pushes of the older segments in the window, and those must still publish.
//! Manifests that wait for a lane that never starts are forgotten after the hold time.
//!
//! `crate::edge` feeds it from the push endpoint, the MQTT side and a timer.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use domain::manifest::SegmentManifest;
use domain::{RenditionName, Segment, SegmentMeta, StreamName};

/// Why a segment or manifest was not published; the label of
/// `sealcast_segments_rejected_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The signature did not verify.
    BadSignature,
    /// Signed by a key no certificate vouches for.
    UnknownKey,
    /// Signed by a key whose certificate expired.
    ExpiredKey,
    /// Signed by a revoked key.
    RevokedKey,
    /// A sequence number at or before one already published or given up on.
    Replay,
    /// Bytes and manifest disagree (digest, length or any other field).
    DigestMismatch,
    /// No valid manifest arrived within the hold time.
    Timeout,
    /// Too many bytes held; the oldest was dropped.
    Overflow,
}

impl RejectReason {
    /// The metric label, exactly as the brief names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::ExpiredKey => "expired_key",
            Self::RevokedKey => "revoked_key",
            Self::Replay => "replay",
            Self::DigestMismatch => "digest_mismatch",
            Self::Timeout => "timeout",
            Self::Overflow => "overflow",
        }
    }
}

/// What the gate decided.
#[derive(Debug, Clone, PartialEq)]
pub enum GateOutput {
    /// Bytes and verified manifest met and agree: publish.
    Publish {
        /// The segment, exactly the bytes that were pushed.
        segment: Segment,
        /// When its bytes arrived (the caller's clock, ms): the signature wait ends now.
        arrived_ms: u64,
    },
    /// This sequence number will never be published: list it as a gap.
    Gap {
        /// The stream.
        stream: StreamName,
        /// The rendition.
        rendition: RenditionName,
        /// The sequence number given up on.
        sequence: u64,
        /// Its duration, if its bytes or a manifest for it arrived (else the caller uses
        /// the target duration).
        duration: Option<Duration>,
        /// Its discontinuity sequence, known in the same cases.
        discontinuity_sequence: Option<u64>,
    },
    /// Something was refused (count it).
    Rejected(RejectReason),
}

#[derive(Debug)]
struct Held {
    meta: SegmentMeta,
    bytes: Bytes,
    digest: [u8; 32],
    since_ms: u64,
}

#[derive(Debug, Default)]
struct Lane {
    /// Every sequence number below this is published or a gap.
    next: Option<u64>,
    held: BTreeMap<u64, Held>,
    /// Verified manifests and when they arrived.
    manifests: BTreeMap<u64, (SegmentManifest, u64)>,
    /// Matched and verified, waiting only for earlier sequence numbers; with the arrival
    /// time of their bytes.
    ready: BTreeMap<u64, (Segment, u64)>,
    /// When the lane last started waiting for `next` while later segments were ready.
    blocked_since_ms: Option<u64>,
}

/// The gate of one broadcast node.
#[derive(Debug)]
pub struct SignatureGate {
    hold_ms: u64,
    max_held_bytes: usize,
    held_bytes: usize,
    lanes: HashMap<(StreamName, RenditionName), Lane>,
}

impl SignatureGate {
    /// A gate holding unverified segments at most `hold_ms` and `max_held_bytes` in total.
    pub fn new(hold_ms: u64, max_held_bytes: usize) -> Self {
        SignatureGate {
            hold_ms,
            max_held_bytes,
            held_bytes: 0,
            lanes: HashMap::new(),
        }
    }

    /// Bytes held now, unverified or waiting for order.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// For each rendition of `stream` with pushed bytes still waiting (unverified or
    /// waiting for order), the highest such sequence number: what a control event that
    /// arrives now must wait for (see `Edge`'s barriers).
    pub fn waiting(&self, stream: &StreamName) -> Vec<(RenditionName, u64)> {
        self.lanes
            .iter()
            .filter(|((s, _), _)| s == stream)
            .filter_map(|((_, r), lane)| {
                let held = lane.held.keys().next_back();
                let ready = lane.ready.keys().next_back();
                Some((r.clone(), *held.into_iter().chain(ready).max()?))
            })
            .collect()
    }

    /// Segments waiting (the `sealcast_pending_segments` gauge).
    pub fn pending(&self) -> usize {
        self.lanes
            .values()
            .map(|l| l.held.len() + l.ready.len())
            .sum()
    }

    /// Pushed bytes arrived; `digest` is their SHA-256, computed while they streamed in.
    pub fn bytes(
        &mut self,
        now_ms: u64,
        meta: SegmentMeta,
        bytes: Bytes,
        digest: [u8; 32],
    ) -> Vec<GateOutput> {
        let mut out = Vec::new();
        let key = (meta.stream.clone(), meta.rendition.clone());
        let seq = meta.sequence;
        let lane = self.lanes.entry(key.clone()).or_default();
        if lane.next.is_some_and(|n| seq < n)
            || lane.held.contains_key(&seq)
            || lane.ready.contains_key(&seq)
        {
            out.push(GateOutput::Rejected(RejectReason::Replay));
            return out;
        }
        self.held_bytes += bytes.len();
        lane.held.insert(
            seq,
            Held {
                meta,
                bytes,
                digest,
                since_ms: now_ms,
            },
        );
        self.try_match(&key, seq, &mut out);
        self.enforce_cap(&mut out);
        self.advance(&key, now_ms, &mut out);
        out
    }

    /// A manifest whose signature the caller verified.
    pub fn manifest(&mut self, now_ms: u64, manifest: SegmentManifest) -> Vec<GateOutput> {
        let mut out = Vec::new();
        let key = (manifest.stream.clone(), manifest.rendition.clone());
        let seq = manifest.sequence;
        let lane = self.lanes.entry(key.clone()).or_default();
        if lane.next.is_some_and(|n| seq < n)
            || lane.manifests.contains_key(&seq)
            || lane.ready.contains_key(&seq)
        {
            out.push(GateOutput::Rejected(RejectReason::Replay));
            return out;
        }
        lane.manifests.insert(seq, (manifest, now_ms));
        self.try_match(&key, seq, &mut out);
        self.advance(&key, now_ms, &mut out);
        out
    }

    /// A manifest the caller refused (bad signature, unknown/expired/revoked key).
    pub fn refused(&mut self, reason: RejectReason) -> Vec<GateOutput> {
        vec![GateOutput::Rejected(reason)]
    }

    /// Time passes: held segments past the hold time become gaps.
    pub fn tick(&mut self, now_ms: u64) -> Vec<GateOutput> {
        let mut out = Vec::new();
        let keys: Vec<_> = self.lanes.keys().cloned().collect();
        for key in keys {
            self.advance(&key, now_ms, &mut out);
        }
        out
    }

    fn try_match(
        &mut self,
        key: &(StreamName, RenditionName),
        seq: u64,
        out: &mut Vec<GateOutput>,
    ) {
        let Some(lane) = self.lanes.get_mut(key) else {
            return;
        };
        if !(lane.held.contains_key(&seq) && lane.manifests.contains_key(&seq)) {
            return;
        }
        let (Some(held), Some((manifest, manifest_since))) =
            (lane.held.remove(&seq), lane.manifests.remove(&seq))
        else {
            return;
        };
        self.held_bytes -= held.bytes.len();
        let expected = SegmentManifest::from_meta(
            &held.meta,
            manifest.algorithm,
            manifest.key_id,
            held.bytes.len() as u64,
            held.digest,
        );
        if expected == manifest {
            let segment = Segment {
                meta: held.meta,
                bytes: held.bytes,
            };
            self.held_bytes += segment.bytes.len();
            lane.ready.insert(seq, (segment, held.since_ms));
        } else {
            // Altered bytes (or a manifest for other bytes): never served. The verified
            // manifest stays, so a correct retry of the push can still match it; if none
            // comes within the hold time the sequence number becomes a gap.
            out.push(GateOutput::Rejected(RejectReason::DigestMismatch));
            lane.manifests.insert(seq, (manifest, manifest_since));
        }
    }

    fn enforce_cap(&mut self, out: &mut Vec<GateOutput>) {
        while self.held_bytes > self.max_held_bytes {
            let oldest = self
                .lanes
                .iter()
                .filter_map(|(k, l)| {
                    l.held
                        .iter()
                        .next()
                        .map(|(s, h)| (h.since_ms, k.clone(), *s))
                })
                .min_by_key(|(since, ..)| *since);
            let Some((_, key, seq)) = oldest else { break };
            if let Some(lane) = self.lanes.get_mut(&key) {
                if let Some(h) = lane.held.remove(&seq) {
                    self.held_bytes -= h.bytes.len();
                    out.push(GateOutput::Rejected(RejectReason::Overflow));
                }
            }
        }
    }

    /// Publishes what is ready in order; gives up on the next sequence number when it has
    /// waited past the hold time.
    fn advance(
        &mut self,
        key: &(StreamName, RenditionName),
        now_ms: u64,
        out: &mut Vec<GateOutput>,
    ) {
        let hold = self.hold_ms;
        let Some(lane) = self.lanes.get_mut(key) else {
            return;
        };
        if lane.next.is_none() {
            let first = [lane.held.keys().next(), lane.ready.keys().next()]
                .into_iter()
                .flatten()
                .min()
                .copied();
            match first {
                Some(first) => {
                    // Manifests before the lane's start have no bytes coming: forget them.
                    lane.manifests = lane.manifests.split_off(&first);
                    lane.next = Some(first);
                }
                None => {
                    lane.manifests
                        .retain(|_, (_, since)| now_ms.saturating_sub(*since) < hold);
                    return;
                }
            }
        }
        loop {
            let lowest = [
                lane.held.keys().next(),
                lane.manifests.keys().next(),
                lane.ready.keys().next(),
            ]
            .into_iter()
            .flatten()
            .min()
            .copied();
            let (Some(_), Some(next)) = (lowest, lane.next) else {
                lane.blocked_since_ms = None;
                return;
            };
            if let Some((segment, arrived_ms)) = lane.ready.remove(&next) {
                self.held_bytes -= segment.bytes.len();
                out.push(GateOutput::Publish {
                    segment,
                    arrived_ms,
                });
                lane.next = Some(next + 1);
                lane.blocked_since_ms = None;
                continue;
            }
            // `next` is not ready: how long has the lane waited for it?
            let waiting_since = match lane.held.get(&next) {
                Some(h) => h.since_ms,
                None => *lane.blocked_since_ms.get_or_insert(now_ms),
            };
            if now_ms.saturating_sub(waiting_since) < hold {
                return;
            }
            let mut duration = None;
            let mut discontinuity_sequence = None;
            if let Some(h) = lane.held.remove(&next) {
                self.held_bytes -= h.bytes.len();
                duration = Some(h.meta.duration);
                discontinuity_sequence = Some(h.meta.discontinuity_sequence);
                out.push(GateOutput::Rejected(RejectReason::Timeout));
            }
            if let Some((m, _)) = lane.manifests.remove(&next) {
                duration = duration.or(Some(Duration::from_micros(m.duration_us)));
                discontinuity_sequence = discontinuity_sequence.or(Some(m.discontinuity_sequence));
            }
            out.push(GateOutput::Gap {
                stream: key.0.clone(),
                rendition: key.1.clone(),
                sequence: next,
                duration,
                discontinuity_sequence,
            });
            lane.next = Some(next + 1);
            lane.blocked_since_ms = Some(now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::manifest::{KeyId, SignatureAlgorithm};
    use domain::SessionId;
    use proptest::prelude::*;
    use std::time::Duration;

    fn meta(seq: u64) -> SegmentMeta {
        SegmentMeta {
            stream: StreamName::new("s").expect("valid"),
            rendition: RenditionName::new("720p").expect("valid"),
            session: SessionId(1),
            sequence: seq,
            discontinuity_sequence: 0,
            discontinuity: false,
            duration: Duration::from_secs(2),
            start_pts_90k: 0,
        }
    }

    fn digest(bytes: &[u8]) -> [u8; 32] {
        // Any injective-enough stand-in: the gate only compares digests.
        let mut d = [0u8; 32];
        for (i, b) in bytes.iter().enumerate() {
            d[i % 32] = d[i % 32].wrapping_mul(31).wrapping_add(*b);
        }
        d[31] = bytes.len() as u8;
        d
    }

    fn seg(seq: u64) -> (SegmentMeta, Bytes, [u8; 32], SegmentManifest) {
        let bytes = Bytes::from(vec![seq as u8; 100 + seq as usize]);
        let d = digest(&bytes);
        let m = SegmentManifest::from_meta(
            &meta(seq),
            SignatureAlgorithm::Ed25519,
            KeyId([1; 16]),
            bytes.len() as u64,
            d,
        );
        (meta(seq), bytes, d, m)
    }

    fn published(out: &[GateOutput]) -> Vec<u64> {
        out.iter()
            .filter_map(|o| match o {
                GateOutput::Publish { segment, .. } => Some(segment.meta.sequence),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn publishes_only_when_bytes_and_manifest_meet() {
        let mut g = SignatureGate::new(2000, 1 << 20);
        let (m, b, d, man) = seg(5);
        assert!(g.bytes(0, m, b, d).is_empty());
        assert_eq!(published(&g.manifest(10, man)), [5]);
        assert_eq!(g.held_bytes(), 0);
    }

    #[test]
    fn altered_bytes_are_never_served_and_become_a_gap() {
        let mut g = SignatureGate::new(2000, 1 << 20);
        let (m, _, d, man) = seg(5);
        let altered = Bytes::from(vec![9u8; 105]);
        g.bytes(0, m, altered.clone(), digest(&altered));
        let out = g.manifest(10, man);
        assert!(out.contains(&GateOutput::Rejected(RejectReason::DigestMismatch)));
        assert!(published(&out).is_empty());
        let _ = d;
        let out = g.tick(5000);
        assert!(
            out.iter()
                .any(|o| matches!(o, GateOutput::Gap { sequence: 5, .. })),
            "{out:?}"
        );
    }

    #[test]
    fn a_missing_manifest_times_out_into_a_gap_and_later_segments_follow() {
        let mut g = SignatureGate::new(2000, 1 << 20);
        let (m0, b0, d0, _) = seg(0);
        let (m1, b1, d1, man1) = seg(1);
        g.bytes(0, m0, b0, d0);
        g.bytes(100, m1, b1, d1);
        assert!(
            published(&g.manifest(200, man1)).is_empty(),
            "1 waits for 0"
        );
        let out = g.tick(2100);
        assert_eq!(out[0], GateOutput::Rejected(RejectReason::Timeout));
        assert!(matches!(out[1], GateOutput::Gap { sequence: 0, .. }));
        assert_eq!(published(&out), [1]);
    }

    #[test]
    fn replays_are_refused() {
        let mut g = SignatureGate::new(2000, 1 << 20);
        let (m, b, d, man) = seg(3);
        g.bytes(0, m.clone(), b.clone(), d);
        g.manifest(0, man.clone());
        assert_eq!(
            g.manifest(1, man),
            [GateOutput::Rejected(RejectReason::Replay)]
        );
        assert_eq!(
            g.bytes(1, m, b, d),
            [GateOutput::Rejected(RejectReason::Replay)]
        );
    }

    #[test]
    fn held_bytes_are_bounded() {
        let mut g = SignatureGate::new(60_000, 250);
        for seq in 0..5 {
            let (m, b, d, _) = seg(seq);
            g.bytes(seq, m, b, d);
            assert!(g.held_bytes() <= 250);
        }
    }

    #[test]
    fn a_late_manifest_for_an_older_sequence_is_a_replay() {
        let mut g = SignatureGate::new(2000, 1 << 20);
        for seq in [4, 5] {
            let (m, b, d, man) = seg(seq);
            g.bytes(0, m, b, d);
            assert_eq!(published(&g.manifest(1, man)), [seq]);
        }
        let (.., old) = seg(3);
        assert_eq!(
            g.manifest(2, old),
            [GateOutput::Rejected(RejectReason::Replay)]
        );
    }

    #[test]
    fn live_manifests_before_catch_up_bytes_do_not_start_the_lane() {
        // A late joiner: the manifest of live segment 9 arrives first (MQTT), then the
        // catch-up pushes of 7 and 8 (manifests in the push), then 9's bytes.
        let mut g = SignatureGate::new(2000, 1 << 20);
        let (.., man9) = seg(9);
        assert!(g.manifest(0, man9).is_empty());
        let mut out = Vec::new();
        for seq in [7, 8] {
            let (m, b, d, man) = seg(seq);
            out.extend(g.bytes(10, m, b, d));
            out.extend(g.manifest(10, man));
        }
        let (m9, b9, d9, _) = seg(9);
        out.extend(g.bytes(20, m9, b9, d9));
        assert_eq!(published(&out), [7, 8, 9]);
    }

    #[test]
    fn manifests_without_bytes_are_forgotten_after_the_hold() {
        let mut g = SignatureGate::new(2000, 1 << 20);
        let (.., man) = seg(3);
        g.manifest(0, man);
        assert!(g.tick(1999).is_empty());
        assert!(g.tick(2000).is_empty(), "no gap: the lane never started");
        // Bytes after that wait for a manifest again.
        let (m, b, d, _) = seg(3);
        assert!(g.bytes(2001, m, b, d).is_empty());
        assert_eq!(g.pending(), 1);
    }

    #[test]
    fn gaps_carry_what_is_known_of_the_segment() {
        let mut g = SignatureGate::new(1000, 1 << 20);
        let (m0, b0, d0, _) = seg(0);
        g.bytes(0, m0, b0, d0);
        let (_, _, _, man1) = seg(1);
        g.manifest(0, man1);
        // Each missing sequence number gets its own hold time.
        let mut out = g.tick(5000);
        out.extend(g.tick(6000));
        let gaps: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                GateOutput::Gap {
                    sequence,
                    duration,
                    discontinuity_sequence,
                    ..
                } => Some((*sequence, *duration, *discontinuity_sequence)),
                _ => None,
            })
            .collect();
        assert_eq!(
            gaps,
            [
                (0, Some(Duration::from_secs(2)), Some(0)),
                (1, Some(Duration::from_secs(2)), Some(0)),
            ]
        );
    }

    #[test]
    fn publish_reports_when_the_bytes_arrived() {
        let mut g = SignatureGate::new(2000, 1 << 20);
        let (m, b, d, man) = seg(0);
        g.bytes(40, m, b, d);
        let out = g.manifest(90, man);
        assert!(matches!(
            out[..],
            [GateOutput::Publish { arrived_ms: 40, .. }]
        ));
    }

    proptest! {
        #[test]
        fn never_fails_open_and_publishes_in_order(
            events in proptest::collection::vec((0u64..12, 0u8..4, 0u64..500), 1..120)
        ) {
            let mut g = SignatureGate::new(1000, 4000);
            let mut now = 0;
            let mut out = Vec::new();
            for (seq, kind, dt) in events {
                now += dt;
                let (m, b, d, man) = seg(seq);
                match kind {
                    0 => out.extend(g.bytes(now, m, b, d)),
                    1 => out.extend(g.manifest(now, man)),
                    2 => {
                        let altered = Bytes::from(vec![0xee; b.len()]);
                        out.extend(g.bytes(now, m, altered.clone(), digest(&altered)));
                    }
                    _ => out.extend(g.tick(now)),
                }
                prop_assert!(g.held_bytes() <= 4000 + 200);
            }
            // Each missing sequence number costs one hold time: after enough of them every
            // held segment is published or given up on.
            for i in 1..=16 {
                out.extend(g.tick(now + i * 1000));
            }
            prop_assert_eq!(g.pending(), 0);
            prop_assert_eq!(g.held_bytes(), 0);
            let mut last = None;
            for o in &out {
                let seq = match o {
                    GateOutput::Publish { segment: s, .. } => {
                        // Every published segment is exactly the genuine bytes.
                        let (_, genuine, ..) = seg(s.meta.sequence);
                        prop_assert_eq!(&s.bytes, &genuine);
                        s.meta.sequence
                    }
                    GateOutput::Gap { sequence, .. } => *sequence,
                    GateOutput::Rejected(_) => continue,
                };
                prop_assert!(last.is_none_or(|l| seq > l), "out of order: {last:?} then {seq}");
                last = Some(seq);
            }
        }
    }
}
