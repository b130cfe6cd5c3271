//! The signature gate, sans-IO: a pushed segment is published only when its bytes and a
//! verified statement have both arrived and agree, in sequence order per rendition.
//!
//! Bytes and statements meet in the node's [`CandidateSet`] (shared rules with the part
//! gate: rival pushes, the held-byte budget, the hold time); this module adds what only
//! segments have: order and gaps. The caller checks the statement's signature against its
//! trust store first and hands over either the verified statement (with the envelope it
//! came in, which travels on with the published segment) or the rejection reason; this
//! module never fails open: bytes without a valid statement are held for at most `hold` and
//! then dropped, and the sequence number becomes a gap (`#EXT-X-GAP`) so players skip it.
//! Held bytes, unverified or verified and waiting for order, are bounded by
//! `max_held_bytes`; beyond it the oldest unverified segment is dropped (`overflow`). Time
//! is a number of milliseconds the caller passes in.
//!
//! A lane (one rendition of one stream) starts at the first segment whose bytes and
//! verified statement met, not at the first statement nor at the first bytes: a node that
//! joins late gets live statements over MQTT before the catch-up pushes of the older
//! segments in the window (which carry their statements and match at once), and bytes
//! alone are only the push token's word. Until a lane starts, its statements and bytes are
//! forgotten after the hold time.
//!
//! Nothing unverified reaches a playlist: a gap's duration and discontinuity sequence come
//! from a verified statement or not at all (the caller then uses the target duration).
//! What the gate holds is bounded: bytes by `max_held_bytes`, entries per lane by
//! [`MAX_AHEAD`] sequence numbers past the next one expected. A lane that waited the hold
//! time for one sequence number gives up the whole missing run up to the next segment it
//! has at once, instead of one hold time per missing number. It gives up only once a
//! verified statement says live moved on (one for that number or a later one); while none
//! has come, pushed bytes wait [`SILENT_HOLDS`] hold times, so a broker link that stalls
//! for a few seconds delays segments rather than losing them.
//!
//! `crate::edge` feeds it from the push endpoint, the MQTT side and a timer.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use domain::wire::SegmentStatement;
use domain::{RenditionName, Segment, SegmentMeta, StreamName};

use super::candidates::RejectReason;
use super::candidates::{CandidateSet, LaneId, Match, Placed, Pushed, Signed};

/// How far past the next expected sequence number a lane takes bytes or statements (about
/// two minutes of 2 s segments); further ones are refused as `overflow`. Before a lane has
/// started, it holds at most this many unverified segments (the oldest goes first).
pub(crate) const MAX_AHEAD: u64 = 64;

/// How many hold times a started lane waits for a sequence number when no verified
/// statement has arrived for it or for anything after it: the statements may only be late
/// (a stalled broker link), and listing gaps then would lose segments whose bytes are here.
pub(crate) const SILENT_HOLDS: u64 = 8;

/// What the gate decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GateOutput {
    /// Bytes and verified statement met and agree: publish.
    Publish {
        /// The segment, exactly the bytes that were pushed.
        segment: Segment,
        /// When its bytes arrived (the caller's clock, ms): the signature wait ends now.
        arrived_ms: u64,
        /// The envelope of the statement that matched it, exactly as the ingest signed it:
        /// what a viewer checks the segment against.
        signed: Bytes,
    },
    /// This sequence number will never be published: list it as a gap.
    Gap {
        /// The stream.
        stream: StreamName,
        /// The rendition.
        rendition: RenditionName,
        /// The sequence number given up on.
        sequence: u64,
        /// Its duration, if a verified statement for it arrived (else the caller uses the
        /// target duration; pushed bytes alone never decide it).
        duration: Option<Duration>,
        /// Its discontinuity sequence, known in the same case.
        discontinuity_sequence: Option<u64>,
    },
    /// Something was refused (count it).
    Rejected(RejectReason),
}

impl From<RejectReason> for GateOutput {
    fn from(reason: RejectReason) -> Self {
        GateOutput::Rejected(reason)
    }
}

/// The order bookkeeping of one lane; its bytes and statements wait in the candidate set.
#[derive(Debug, Default)]
struct Lane {
    /// Every sequence number below this is published or a gap.
    next: Option<u64>,
    /// Matched and verified, waiting only for earlier sequence numbers.
    ready: BTreeMap<u64, Match<SegmentMeta>>,
    /// When the lane last started waiting for `next` while later segments were ready.
    blocked_since_ms: Option<u64>,
    /// The discontinuity sequence of the last segment or gap it resolved, when a verified
    /// statement told it: whether the next segment starts a discontinuity follows from it.
    last_discontinuity_sequence: Option<u64>,
    /// The first and the newest sequence number a verified statement was accepted for, and
    /// when the newest arrived: where live is, as far as this node knows.
    first_verified: Option<u64>,
    newest_verified: Option<(u64, u64)>,
    /// The last sequence number published with its bytes (gaps do not count).
    last_published: Option<u64>,
}

impl Lane {
    /// How many sequence numbers a verified statement has announced past the last segment
    /// this lane published: 1 in the normal course (the statement of the next segment came
    /// before its bytes), more when live has moved on without this node. A lane that never
    /// published counts from its first verified statement. A lane whose newest statement is
    /// older than `live_within_ms` is not live any more and counts 0.
    fn behind(&self, now_ms: u64, live_within_ms: u64) -> u64 {
        let Some((newest, since_ms)) = self.newest_verified else {
            return 0;
        };
        if now_ms.saturating_sub(since_ms) > live_within_ms {
            return 0;
        }
        match self.last_published {
            Some(published) => newest.saturating_sub(published),
            None => newest
                .saturating_sub(self.first_verified.unwrap_or(newest))
                .saturating_add(1),
        }
    }

    /// Whether `seq` is published, given up on, or matched and waiting for order: nothing
    /// more for it is taken.
    fn decided(&self, seq: u64) -> bool {
        self.next.is_some_and(|n| seq < n) || self.ready.contains_key(&seq)
    }

    /// Whether `seq` is too far past the next expected sequence number to be held.
    fn too_far_ahead(&self, seq: u64) -> bool {
        self.next
            .is_some_and(|n| seq >= n.saturating_add(MAX_AHEAD))
    }
}

/// The gate of one broadcast node.
#[derive(Debug)]
pub(crate) struct SignatureGate {
    /// Pushed bytes and verified statements waiting for each other.
    candidates: CandidateSet<SegmentMeta>,
    /// Bytes of matched segments waiting for order: they count against the same budget.
    ready_bytes: usize,
    lanes: HashMap<LaneId, Lane>,
}

impl SignatureGate {
    /// A gate holding unverified segments at most `hold_ms` and `max_held_bytes` in total.
    pub(crate) fn new(hold_ms: u64, max_held_bytes: usize) -> Self {
        SignatureGate {
            candidates: CandidateSet::new(hold_ms, max_held_bytes),
            ready_bytes: 0,
            lanes: HashMap::new(),
        }
    }

    /// Bytes held now, unverified or waiting for order.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        self.candidates.held_bytes() + self.ready_bytes
    }

    /// For each rendition of `stream` with pushed bytes still waiting (unverified or
    /// waiting for order), the highest such sequence number: what a control event that
    /// arrives now must wait for (see `Edge`'s barriers).
    pub(crate) fn waiting(&self, stream: &StreamName) -> Vec<(RenditionName, u64)> {
        self.lanes
            .iter()
            .filter(|((s, _), _)| s == stream)
            .filter_map(|(id, lane)| {
                let held = self.candidates.last_push(id);
                let ready = lane.ready.keys().next_back().copied();
                Some((id.1.clone(), held.into_iter().chain(ready).max()?))
            })
            .collect()
    }

    /// How far the furthest-behind live lane is from the newest verified statement, in
    /// segments: 1 in the normal course, more while live moves on without this node (its
    /// pushes lost or late, or a missing run being given up). Lanes whose newest verified
    /// statement is older than `live_within_ms` (ended streams) count 0.
    pub(crate) fn behind(&self, now_ms: u64, live_within_ms: u64) -> u64 {
        self.lanes
            .values()
            .map(|lane| lane.behind(now_ms, live_within_ms))
            .max()
            .unwrap_or(0)
    }

    /// Segments waiting (the `sealcast_pending_segments` gauge).
    pub(crate) fn pending(&self) -> usize {
        let ready: usize = self.lanes.values().map(|l| l.ready.len()).sum();
        self.candidates.waiting_pushes() + ready
    }

    /// Pushed bytes arrived; `digest` is their SHA-256, computed while they streamed in.
    pub(crate) fn bytes(
        &mut self,
        now_ms: u64,
        meta: SegmentMeta,
        bytes: Bytes,
        digest: [u8; 32],
    ) -> Vec<GateOutput> {
        let (id, seq) = (meta.lane(), meta.key());
        let lane = self.lanes.entry(id.clone()).or_default();
        if lane.decided(seq) {
            return vec![GateOutput::Rejected(RejectReason::Replay)];
        }
        let mut out = Vec::new();
        if !self.candidates.has_pushes(&id, seq) {
            if lane.too_far_ahead(seq) {
                return vec![GateOutput::Rejected(RejectReason::Overflow)];
            }
            let (held, _) = self.candidates.entries(&id);
            if lane.next.is_none() && held >= MAX_AHEAD as usize {
                if let Some(oldest) = self.candidates.first_push(&id) {
                    self.candidates
                        .drop_pushes(&id, oldest, RejectReason::Overflow, &mut out);
                }
            }
        }
        match self.candidates.push(now_ms, meta, bytes, digest, &mut out) {
            Pushed::Refused => {}
            // A rival waits for the statement its number already waits for.
            Pushed::Rival => self.candidates.enforce_budget(self.ready_bytes, &mut out),
            Pushed::First(matched) => {
                self.ready(&id, matched);
                self.candidates.enforce_budget(self.ready_bytes, &mut out);
                self.advance(&id, now_ms, &mut out);
            }
        }
        out
    }

    /// A statement whose signature the caller verified, with the envelope it came in.
    pub(crate) fn statement(
        &mut self,
        now_ms: u64,
        signed: Signed<SegmentStatement>,
    ) -> Vec<GateOutput> {
        let (id, seq) = (signed.statement.lane(), signed.statement.key());
        let lane = self.lanes.entry(id.clone()).or_default();
        if lane.decided(seq) || self.candidates.has_statement(&id, seq) {
            return vec![GateOutput::Rejected(RejectReason::Replay)];
        }
        if lane.too_far_ahead(seq) {
            return vec![GateOutput::Rejected(RejectReason::Overflow)];
        }
        let mut out = Vec::new();
        lane.first_verified.get_or_insert(seq);
        if lane.newest_verified.is_none_or(|(newest, _)| seq > newest) {
            lane.newest_verified = Some((seq, now_ms));
        }
        let matched = self.candidates.verified(now_ms, signed, &mut out);
        self.ready(&id, matched);
        self.advance(&id, now_ms, &mut out);
        out
    }

    /// Time passes: held segments past the hold time become gaps.
    pub(crate) fn tick(&mut self, now_ms: u64) -> Vec<GateOutput> {
        let mut out = Vec::new();
        let ids: Vec<_> = self.lanes.keys().cloned().collect();
        for id in ids {
            self.advance(&id, now_ms, &mut out);
        }
        out
    }

    /// A segment whose bytes and statement met waits for the earlier numbers of its lane
    /// (still counted against the budget).
    fn ready(&mut self, id: &LaneId, matched: Option<Match<SegmentMeta>>) {
        let (Some(matched), Some(lane)) = (matched, self.lanes.get_mut(id)) else {
            return;
        };
        self.ready_bytes += matched.bytes.len();
        lane.ready.insert(matched.claim.sequence, matched);
    }

    /// Publishes what is ready in order; gives up on the next sequence number when it has
    /// waited past the hold time.
    fn advance(&mut self, id: &LaneId, now_ms: u64, out: &mut Vec<GateOutput>) {
        let hold = self.candidates.hold_ms();
        let Some(lane) = self.lanes.get_mut(id) else {
            return;
        };
        let candidates = &mut self.candidates;
        if lane.next.is_none() {
            let Some(first) = lane.ready.keys().next().copied() else {
                // Not started: what waited the hold time is forgotten.
                candidates.expire(id, now_ms, out);
                return;
            };
            // Statements before the lane's start have no bytes coming, and bytes before it
            // no statement: forget them.
            candidates.forget_before(id, first, RejectReason::Timeout, out);
            lane.next = Some(first);
        }
        loop {
            let lowest = [
                candidates.first_push(id),
                candidates.first_statement(id),
                lane.ready.keys().next().copied(),
            ]
            .into_iter()
            .flatten()
            .min();
            let (Some(_), Some(next)) = (lowest, lane.next) else {
                lane.blocked_since_ms = None;
                return;
            };
            if let Some(matched) = lane.ready.remove(&next) {
                self.ready_bytes -= matched.bytes.len();
                let mut segment = Segment {
                    meta: matched.claim,
                    bytes: matched.bytes,
                };
                // The pushed flag is not signed; the signed discontinuity sequence says it
                // (the first segment of a lane keeps the flag: it only moves the tag against
                // EXT-X-DISCONTINUITY-SEQUENCE, which stays consistent either way).
                let dseq = segment.meta.discontinuity_sequence;
                if let Some(last) = lane.last_discontinuity_sequence {
                    segment.meta.discontinuity = dseq != last;
                }
                lane.last_discontinuity_sequence = Some(dseq);
                lane.last_published = Some(next);
                out.push(GateOutput::Publish {
                    segment,
                    arrived_ms: matched.arrived_ms,
                    signed: matched.signed,
                });
                lane.next = Some(next + 1);
                lane.blocked_since_ms = None;
                continue;
            }
            // `next` is not ready: how long has the lane waited for it?
            // Bytes wait for their statement from their arrival, a verified statement for its
            // bytes from its own; a number nothing has arrived for, from when the lane
            // started waiting for it (or for the run it belongs to).
            let blocked_since = *lane.blocked_since_ms.get_or_insert(now_ms);
            let waiting_since = match (
                candidates.pushes_since(id, next),
                candidates.statement_since(id, next),
            ) {
                (Some(since), _) => since,
                (None, Some(since)) => blocked_since.max(since),
                (None, None) => blocked_since,
            };
            // Without a verified statement for `next` or for anything after it, the node cannot
            // tell a lost statement from a late one (its broker link may be stalled while
            // pushes still arrive): it waits up to SILENT_HOLDS hold times for it.
            let evidence = candidates.has_statement(id, next)
                || lane
                    .newest_verified
                    .is_some_and(|(newest, _)| newest > next);
            let limit = if evidence {
                hold
            } else {
                hold.saturating_mul(SILENT_HOLDS)
            };
            if now_ms.saturating_sub(waiting_since) < limit {
                return;
            }
            candidates.drop_pushes(id, next, RejectReason::Timeout, out);
            let statement = candidates.take_statement(id, next);
            if let Some(m) = &statement {
                lane.last_discontinuity_sequence = Some(m.discontinuity_sequence);
            }
            out.push(GateOutput::Gap {
                stream: id.0.clone(),
                rendition: id.1.clone(),
                sequence: next,
                duration: statement
                    .as_ref()
                    .map(|m| Duration::from_micros(m.duration_us)),
                discontinuity_sequence: statement.map(|m| m.discontinuity_sequence),
            });
            lane.next = Some(next + 1);
            // The rest of a missing run has waited as long as this one: it goes at once.
            lane.blocked_since_ms = Some(waiting_since);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edge::fixtures::{self, sha256 as digest};
    use domain::wire::{KeyId, SignatureAlgorithm};
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

    fn signed(statement: SegmentStatement) -> Signed<SegmentStatement> {
        fixtures::signed(statement, SegmentStatement::encode)
    }

    /// Segment `seq`: its metadata, genuine bytes, their digest and its verified statement.
    fn seg(seq: u64) -> (SegmentMeta, Bytes, [u8; 32], Signed<SegmentStatement>) {
        let bytes = Bytes::from(vec![seq as u8; 100 + seq as usize]);
        let d = digest(&bytes);
        let m = SegmentStatement::from_meta(
            &meta(seq),
            SignatureAlgorithm::Ed25519,
            KeyId([1; 16]),
            bytes.len() as u64,
            d,
        );
        (meta(seq), bytes, d, signed(m))
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
    fn publishes_only_when_bytes_and_statement_meet() {
        let mut g = SignatureGate::new(2000, 1 << 20);
        let (m, b, d, man) = seg(5);
        assert!(g.bytes(0, m, b, d).is_empty());
        assert_eq!(published(&g.statement(10, man)), [5]);
        assert_eq!(g.held_bytes(), 0);
    }

    /// A gate whose lane has started: segment `seq` published.
    fn started(hold_ms: u64, seq: u64) -> SignatureGate {
        let mut g = SignatureGate::new(hold_ms, 1 << 20);
        let (m, b, d, man) = seg(seq);
        g.bytes(0, m, b, d);
        assert_eq!(published(&g.statement(0, man)), [seq]);
        g
    }

    #[test]
    fn altered_bytes_are_never_served_and_become_a_gap() {
        let mut g = started(2000, 4);
        let (m, _, d, man) = seg(5);
        let altered = Bytes::from(vec![9u8; 105]);
        g.bytes(0, m, altered.clone(), digest(&altered));
        let out = g.statement(10, man);
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
    fn a_missing_statement_times_out_into_a_gap_and_later_segments_follow() {
        let mut g = started(2000, 0);
        let (m1, b1, d1, _) = seg(1);
        let (m2, b2, d2, man2) = seg(2);
        g.bytes(0, m1, b1, d1);
        g.bytes(100, m2, b2, d2);
        assert!(
            published(&g.statement(200, man2)).is_empty(),
            "2 waits for 1"
        );
        let out = g.tick(2100);
        assert_eq!(out[0], GateOutput::Rejected(RejectReason::Timeout));
        assert!(matches!(out[1], GateOutput::Gap { sequence: 1, .. }));
        assert_eq!(published(&out), [2]);
    }

    #[test]
    fn bytes_alone_never_start_a_lane_and_are_forgotten_after_the_hold() {
        // Bytes of 0 and 1 with no statement yet; 1's statement comes first: the lane starts
        // at 1, and 0's bytes (before the start) are dropped.
        let mut g = SignatureGate::new(2000, 1 << 20);
        let (m0, b0, d0, _) = seg(0);
        let (m1, b1, d1, man1) = seg(1);
        g.bytes(0, m0, b0, d0);
        g.bytes(100, m1, b1, d1);
        let out = g.statement(200, man1);
        assert_eq!(published(&out), [1]);
        assert!(out.contains(&GateOutput::Rejected(RejectReason::Timeout)));
        assert_eq!(g.held_bytes(), 0);

        // Garbage pushed for a lane that never gets a statement goes after the hold.
        let mut g = SignatureGate::new(2000, 1 << 20);
        let mut other = meta(7);
        other.rendition = RenditionName::new("360p").expect("valid");
        g.bytes(0, other, Bytes::from_static(b"x"), [0; 32]);
        assert!(g.tick(1999).is_empty());
        assert_eq!(g.tick(2000), [GateOutput::Rejected(RejectReason::Timeout)]);
        assert_eq!((g.pending(), g.held_bytes()), (0, 0));
    }

    #[test]
    fn entries_are_bounded_in_count_and_in_how_far_ahead_they_reach() {
        // Zero-length pushes for far-future sequence numbers: refused once a lane started
        // (10 published, 11 expected next).
        let mut g = started(2000, 10);
        let (far, ..) = seg(11 + MAX_AHEAD);
        assert_eq!(
            g.bytes(1, far, Bytes::new(), [0; 32]),
            [GateOutput::Rejected(RejectReason::Overflow)]
        );
        let (.., mut man) = seg(0);
        man.statement.sequence = u64::MAX;
        assert_eq!(
            g.statement(1, man),
            [GateOutput::Rejected(RejectReason::Overflow)]
        );
        let (near, ..) = seg(11 + MAX_AHEAD - 1);
        assert!(g.bytes(1, near, Bytes::new(), [0; 32]).is_empty());

        // Before a lane starts: at most MAX_AHEAD entries, the oldest dropped first.
        let mut g = SignatureGate::new(60_000, 1 << 20);
        for seq in 0..MAX_AHEAD * 2 {
            let mut m = meta(seq);
            m.sequence = seq * 1000;
            g.bytes(seq, m, Bytes::new(), [0; 32]);
        }
        assert_eq!(g.pending(), MAX_AHEAD as usize);
    }

    #[test]
    fn the_discontinuity_flag_follows_the_signed_sequence_not_the_push() {
        let mut g = started(1000, 0);
        let mut out = Vec::new();
        for (seq, dseq, claimed) in [(1, 0, true), (2, 1, false), (3, 1, false)] {
            let (mut m, b, _, _) = seg(seq);
            m.discontinuity_sequence = dseq;
            m.discontinuity = claimed;
            let d = digest(&b);
            let man = SegmentStatement::from_meta(
                &m,
                SignatureAlgorithm::Ed25519,
                KeyId([1; 16]),
                b.len() as u64,
                d,
            );
            out.extend(g.bytes(1, m, b, d));
            out.extend(g.statement(1, signed(man)));
        }
        let flags: Vec<(u64, bool)> = out
            .iter()
            .filter_map(|o| match o {
                GateOutput::Publish { segment, .. } => {
                    Some((segment.meta.sequence, segment.meta.discontinuity))
                }
                _ => None,
            })
            .collect();
        assert_eq!(flags, [(1, false), (2, true), (3, false)]);
    }

    #[test]
    fn a_missing_run_is_given_up_at_once() {
        let mut g = started(1000, 0);
        let (m5, b5, d5, man5) = seg(5);
        g.bytes(10, m5, b5, d5);
        g.statement(10, man5);
        assert!(g.tick(1009).is_empty());
        let out = g.tick(1010);
        let gaps: Vec<u64> = out
            .iter()
            .filter_map(|o| match o {
                GateOutput::Gap { sequence, .. } => Some(*sequence),
                _ => None,
            })
            .collect();
        assert_eq!(gaps, [1, 2, 3, 4]);
        assert_eq!(published(&out), [5]);
    }

    #[test]
    fn behind_counts_verified_segments_past_the_last_one_published() {
        let mut g = started(2000, 0);
        assert_eq!(g.behind(0, 10_000), 0);
        // The normal course: the next segment's statement before its bytes.
        let (m1, b1, d1, man1) = seg(1);
        g.statement(2000, man1);
        assert_eq!(g.behind(2000, 10_000), 1);
        g.bytes(2010, m1, b1, d1);
        assert_eq!(g.behind(2010, 10_000), 0);
        // Pushes lost: statements keep coming, and gaps do not catch the node up.
        for seq in 2..=4 {
            let (.., man) = seg(seq);
            g.statement(seq * 2000, man);
            g.tick(seq * 2000);
        }
        assert_eq!(g.behind(8000, 10_000), 3);
        // Bytes again: caught up as soon as a segment at live is published.
        let (.., man5) = seg(5);
        let (m5, b5, d5, _) = seg(5);
        g.statement(10_000, man5);
        g.bytes(10_000, m5, b5, d5);
        g.tick(12_000);
        assert_eq!(g.behind(12_000, 10_000), 0);
        // An ended stream is not behind, whatever it last saw.
        let (.., man7) = seg(7);
        g.statement(12_000, man7);
        assert_eq!(g.behind(12_000, 10_000), 2);
        assert_eq!(g.behind(22_001, 10_000), 0);
    }

    #[test]
    fn a_lane_that_never_published_is_behind_by_its_verified_statements() {
        let mut g = SignatureGate::new(2000, 1 << 20);
        let (.., man3) = seg(3);
        let (.., man4) = seg(4);
        g.statement(0, man3);
        assert_eq!(g.behind(0, 10_000), 1);
        g.statement(1500, man4);
        assert_eq!(g.behind(1500, 10_000), 2);
    }

    #[test]
    fn bytes_wait_longer_while_no_statement_says_live_moved_on() {
        // A stalled broker link: bytes of 1 and 2 arrive, no statement after 0's.
        let mut g = started(1000, 0);
        for seq in 1..=2 {
            let (m, b, d, _) = seg(seq);
            g.bytes(seq * 1000, m, b, d);
        }
        assert!(g.tick(5000).is_empty(), "no gap without statement evidence");
        // The statements arrive late, together: both segments are published, no gap.
        let (.., man1) = seg(1);
        let (.., man2) = seg(2);
        assert_eq!(published(&g.statement(7000, man1)), [1]);
        assert_eq!(published(&g.statement(7000, man2)), [2]);
        // With no statement at all, bytes are given up after SILENT_HOLDS hold times.
        let (m3, b3, d3, _) = seg(3);
        g.bytes(8000, m3, b3, d3);
        assert!(g.tick(8000 + 1000 * SILENT_HOLDS - 1).is_empty());
        let out = g.tick(8000 + 1000 * SILENT_HOLDS);
        assert!(
            out.iter()
                .any(|o| matches!(o, GateOutput::Gap { sequence: 3, .. })),
            "{out:?}"
        );
    }

    #[test]
    fn replays_are_refused() {
        let mut g = SignatureGate::new(2000, 1 << 20);
        let (m, b, d, man) = seg(3);
        g.bytes(0, m.clone(), b.clone(), d);
        g.statement(0, man.clone());
        assert_eq!(
            g.statement(1, man),
            [GateOutput::Rejected(RejectReason::Replay)]
        );
        assert_eq!(
            g.bytes(1, m, b, d),
            [GateOutput::Rejected(RejectReason::Replay)]
        );
    }

    #[test]
    fn other_bytes_pushed_first_do_not_keep_the_genuine_segment_out() {
        for forged_first in [true, false] {
            let mut g = SignatureGate::new(2000, 1 << 20);
            let (m, b, d, man) = seg(3);
            let forged = Bytes::from_static(b"forged bytes, pushed with the token");
            let forged_digest = [9; 32];
            let mut out = Vec::new();
            let pushes = if forged_first {
                [(forged.clone(), forged_digest), (b.clone(), d)]
            } else {
                [(b.clone(), d), (forged.clone(), forged_digest)]
            };
            for (bytes, digest) in pushes {
                out.extend(g.bytes(0, m.clone(), bytes, digest));
            }
            assert!(out.is_empty(), "both held as candidates: {out:?}");
            // The same bytes again are a replay; a third and fourth candidate: the third
            // is held, the fourth overflows.
            assert_eq!(
                g.bytes(1, m.clone(), forged.clone(), forged_digest),
                [GateOutput::Rejected(RejectReason::Replay)]
            );
            assert!(g
                .bytes(1, m.clone(), Bytes::from_static(b"third"), [7; 32])
                .is_empty());
            assert_eq!(
                g.bytes(1, m.clone(), Bytes::from_static(b"fourth"), [6; 32]),
                [GateOutput::Rejected(RejectReason::Overflow)]
            );
            let out = g.statement(2, man.clone());
            let published: Vec<_> = out
                .iter()
                .filter_map(|o| match o {
                    GateOutput::Publish { segment, .. } => Some(segment.bytes.clone()),
                    _ => None,
                })
                .collect();
            assert_eq!(published, vec![b.clone()], "forged first: {forged_first}");
            let mismatches = out
                .iter()
                .filter(|o| **o == GateOutput::Rejected(RejectReason::DigestMismatch))
                .count();
            assert_eq!(mismatches, 2);
            assert_eq!(g.held_bytes(), 0);
        }
    }

    #[test]
    fn rival_pushes_go_with_their_number() {
        let mut g = SignatureGate::new(2000, 1 << 20);
        let (m, b, d, _) = seg(3);
        g.bytes(0, m.clone(), b, d);
        g.bytes(0, m, Bytes::from_static(b"rival"), [1; 32]);
        assert!(g.held_bytes() > 0);
        // No statement within the hold time: both go, counted.
        let out = g.tick(5000);
        let timeouts = out
            .iter()
            .filter(|o| **o == GateOutput::Rejected(RejectReason::Timeout))
            .count();
        assert_eq!(timeouts, 2, "{out:?}");
        assert_eq!(g.held_bytes(), 0);
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
    fn a_late_statement_for_an_older_sequence_is_a_replay() {
        let mut g = SignatureGate::new(2000, 1 << 20);
        for seq in [4, 5] {
            let (m, b, d, man) = seg(seq);
            g.bytes(0, m, b, d);
            assert_eq!(published(&g.statement(1, man)), [seq]);
        }
        let (.., old) = seg(3);
        assert_eq!(
            g.statement(2, old),
            [GateOutput::Rejected(RejectReason::Replay)]
        );
    }

    #[test]
    fn live_statements_before_catch_up_bytes_do_not_start_the_lane() {
        // A late joiner: the statement of live segment 9 arrives first (MQTT), then the
        // catch-up pushes of 7 and 8 (statements in the push), then 9's bytes.
        let mut g = SignatureGate::new(2000, 1 << 20);
        let (.., man9) = seg(9);
        assert!(g.statement(0, man9).is_empty());
        let mut out = Vec::new();
        for seq in [7, 8] {
            let (m, b, d, man) = seg(seq);
            out.extend(g.bytes(10, m, b, d));
            out.extend(g.statement(10, man));
        }
        let (m9, b9, d9, _) = seg(9);
        out.extend(g.bytes(20, m9, b9, d9));
        assert_eq!(published(&out), [7, 8, 9]);
    }

    #[test]
    fn statements_without_bytes_are_forgotten_after_the_hold() {
        let mut g = SignatureGate::new(2000, 1 << 20);
        let (.., man) = seg(3);
        g.statement(0, man);
        assert!(g.tick(1999).is_empty());
        assert!(g.tick(2000).is_empty(), "no gap: the lane never started");
        // Bytes after that wait for a statement again.
        let (m, b, d, _) = seg(3);
        assert!(g.bytes(2001, m, b, d).is_empty());
        assert_eq!(g.pending(), 1);
    }

    #[test]
    fn gaps_carry_only_what_a_verified_statement_says() {
        let mut g = started(1000, 0);
        // 1: bytes that claim an hour and another discontinuity, never verified.
        let (mut m1, b1, d1, _) = seg(1);
        m1.duration = Duration::from_secs(3600);
        m1.discontinuity_sequence = 9;
        g.bytes(0, m1, b1, d1);
        // 2: a verified statement whose bytes never come.
        let (_, _, _, man2) = seg(2);
        g.statement(0, man2);
        let out = g.tick(5000);
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
            [(1, None, None), (2, Some(Duration::from_secs(2)), Some(0))]
        );
    }

    #[test]
    fn publish_reports_when_the_bytes_arrived() {
        let mut g = SignatureGate::new(2000, 1 << 20);
        let (m, b, d, man) = seg(0);
        g.bytes(40, m, b, d);
        let out = g.statement(90, man);
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
                    1 => out.extend(g.statement(now, man)),
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
                    GateOutput::Publish { segment: s, signed, .. } => {
                        // Every published segment is exactly the genuine bytes, with the
                        // envelope of the statement that describes them.
                        let (_, genuine, _, man) = seg(s.meta.sequence);
                        prop_assert_eq!(&s.bytes, &genuine);
                        prop_assert_eq!(signed, &man.envelope);
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
