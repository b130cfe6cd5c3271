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
//! Not wired into the node yet: the push endpoint and MQTT delivery (issue 3) feed it.

use std::collections::{BTreeMap, HashMap};

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
    Publish(Segment),
    /// This sequence number will never be published: list it as a gap.
    Gap {
        /// The stream.
        stream: StreamName,
        /// The rendition.
        rendition: RenditionName,
        /// The sequence number given up on.
        sequence: u64,
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
    manifests: BTreeMap<u64, SegmentManifest>,
    /// Matched and verified, waiting only for earlier sequence numbers.
    ready: BTreeMap<u64, Segment>,
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
        lane.manifests.insert(seq, manifest);
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
        let (Some(held), Some(manifest)) = (lane.held.remove(&seq), lane.manifests.remove(&seq))
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
            lane.ready.insert(seq, segment);
        } else {
            // Altered bytes (or a manifest for other bytes): never served. The verified
            // manifest stays, so a correct retry of the push can still match it; if none
            // comes within the hold time the sequence number becomes a gap.
            out.push(GateOutput::Rejected(RejectReason::DigestMismatch));
            lane.manifests.insert(seq, manifest);
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
            let Some(lowest) = lowest else {
                lane.blocked_since_ms = None;
                return;
            };
            let next = *lane.next.get_or_insert(lowest);
            if let Some(segment) = lane.ready.remove(&next) {
                self.held_bytes -= segment.bytes.len();
                out.push(GateOutput::Publish(segment));
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
            if let Some(h) = lane.held.remove(&next) {
                self.held_bytes -= h.bytes.len();
                out.push(GateOutput::Rejected(RejectReason::Timeout));
            }
            lane.manifests.remove(&next);
            out.push(GateOutput::Gap {
                stream: key.0.clone(),
                rendition: key.1.clone(),
                sequence: next,
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
                GateOutput::Publish(s) => Some(s.meta.sequence),
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
            out.extend(g.tick(now + 10_000));
            let mut last = None;
            for o in &out {
                let seq = match o {
                    GateOutput::Publish(s) => {
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
