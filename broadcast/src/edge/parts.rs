//! The part gate, sans-IO: an LL-HLS part (`domain::segment::Part`) is published only when
//! its pushed bytes and a verified [`PartStatement`] have both arrived and every field
//! agrees (`PartStatement::from_meta` of the pushed metadata, length and SHA-256 equals the
//! signed statement).
//!
//! Bytes and statements meet in a [`CandidateSet`], the same as the segment gate's
//! ([`super::gate`]), so rival pushes, the held-byte budget and the hold time follow the
//! same rules: a push-token holder cannot keep a genuine part out by pushing first, and
//! refusals are counted by the same reasons ([`RejectReason`]), in
//! `sealcast_parts_rejected_total`.
//!
//! Parts are ephemeral, unlike segments: a part that never verifies is not a gap, it is
//! simply never listed (its segment's parts stop there; the full segment still comes
//! through the segment gate). So this gate keeps no order and lists no gaps: it publishes
//! a part the moment its bytes and statement meet, and the live state (`crate::stream`)
//! puts parts in order and drops those that come too late. What it adds to the set:
//! replays of published parts, entries per lane by [`MAX_LANE_ENTRIES`], how far ahead by
//! [`PART_AHEAD`] segments past the newest published part, and forgetting idle lanes.
//!
//! It also lends its parts to a segment pushed without a body (`domain::push_protocol`'s
//! `Assemble`): [`PartGate::assemble`] hands out the bytes of parts `0..N` of a segment,
//! each a part published (verified) or else the only candidate pushed for it, and refuses
//! when one is missing or has rivals. Unverified bytes are fine there, because what is
//! made of them is only a candidate for the segment gate, which publishes it only when
//! the segment's own signed statement agrees with its length and digest; rivals are not,
//! because picking the forged one would make a segment that never verifies (a gap) where
//! the whole segment, pushed instead, would. Published parts are kept for this, as shared
//! `Bytes` (the node's window holds the same buffers), for the newest [`KEPT_SEGMENTS`]
//! segments of a lane and until their segment is published or given up on
//! ([`PartGate::segment_done`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use domain::segment::{Part, PartMeta};
use domain::wire::PartStatement;

use super::candidates::RejectReason;
use super::candidates::{CandidateSet, LaneId, Match, Placed, Pushed, Signed};

/// How many segments past the newest one a part was published for a lane takes parts
/// (the open segment and the next two); further ones are refused as `overflow`.
pub(crate) const PART_AHEAD: u64 = 3;

/// Most parts (held bytes or verified statements) one lane keeps waiting; beyond it the
/// oldest goes, as `overflow`.
pub(crate) const MAX_LANE_ENTRIES: usize = 64;

/// Of how many segments (the newest a part was published for, and those before it) a lane
/// keeps the published parts' bytes, for [`PartGate::assemble`].
pub(crate) const KEPT_SEGMENTS: u64 = 2;

/// How many published parts a lane remembers, to refuse their replays.
const REMEMBERED: usize = 128;

/// What the part gate decided.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PartOutput {
    /// Bytes and verified statement met and agree: publish. `arrived_ms`: when the bytes
    /// arrived (the gate's added latency is the time from then to now).
    Publish {
        /// The part.
        part: Part,
        /// When its bytes arrived, in the gate's milliseconds.
        arrived_ms: u64,
        /// The envelope of the statement that matched it, exactly as the ingest signed it.
        signed: Bytes,
    },
    /// Something was refused (count it).
    Rejected(RejectReason),
}

impl From<RejectReason> for PartOutput {
    fn from(reason: RejectReason) -> Self {
        PartOutput::Rejected(reason)
    }
}

/// (segment sequence, part index).
type PartKey = (u64, u32);

/// What one lane remembers beyond what waits in the candidate set.
#[derive(Debug, Default)]
struct Lane {
    /// Recently published parts (replays of them are refused).
    published: BTreeSet<PartKey>,
    /// The newest segment a part was published for.
    newest: Option<u64>,
    /// Last time anything arrived for the lane (idle lanes are forgotten).
    touched_ms: u64,
    /// The bytes of recently published parts, which a bodiless segment push is made of.
    kept: BTreeMap<PartKey, Bytes>,
}

impl Lane {
    fn is_replay(&self, key: PartKey) -> bool {
        self.published.contains(&key)
            || self
                .published
                .first()
                .is_some_and(|first| key < *first && self.published.len() >= REMEMBERED)
    }

    fn too_far_ahead(&self, sequence: u64) -> bool {
        self.newest
            .is_some_and(|n| sequence > n.saturating_add(PART_AHEAD))
    }
}

/// The part gate of one broadcast node.
#[derive(Debug)]
pub(crate) struct PartGate {
    /// Pushed parts and verified part statements waiting for each other.
    candidates: CandidateSet<PartMeta>,
    lanes: HashMap<LaneId, Lane>,
}

impl PartGate {
    /// A gate holding unmatched parts at most `hold_ms` and `max_held_bytes` in total.
    pub(crate) fn new(hold_ms: u64, max_held_bytes: usize) -> Self {
        PartGate {
            candidates: CandidateSet::new(hold_ms, max_held_bytes),
            lanes: HashMap::new(),
        }
    }

    /// Bytes of pushed parts held now, waiting for their statements.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        self.candidates.held_bytes()
    }

    /// Pushed part bytes arrived; `digest` is their SHA-256.
    pub(crate) fn bytes(
        &mut self,
        now_ms: u64,
        meta: PartMeta,
        bytes: Bytes,
        digest: [u8; 32],
    ) -> Vec<PartOutput> {
        let (id, key) = (meta.lane(), meta.key());
        let mut out = Vec::new();
        if !self.admit(now_ms, &id, key, false, &mut out) {
            return out;
        }
        let matched = match self.candidates.push(now_ms, meta, bytes, digest, &mut out) {
            Pushed::Refused => return out,
            Pushed::Rival => None,
            Pushed::First(matched) => matched,
        };
        self.publish(&id, matched, &mut out);
        self.candidates.enforce_budget(0, &mut out);
        out
    }

    /// A part statement whose signature the caller verified, with the envelope it came in.
    pub(crate) fn statement(
        &mut self,
        now_ms: u64,
        signed: Signed<PartStatement>,
    ) -> Vec<PartOutput> {
        let (id, key) = (signed.statement.lane(), signed.statement.key());
        let mut out = Vec::new();
        if !self.admit(now_ms, &id, key, true, &mut out) {
            return out;
        }
        let matched = self.candidates.verified(now_ms, signed, &mut out);
        self.publish(&id, matched, &mut out);
        out
    }

    /// The bytes of parts `0..parts` of segment `sequence` of lane `id`, in order: each
    /// the published part's, else its only pushed candidate's. `Err(index)` names the
    /// first part that is neither here nor unambiguous.
    pub(crate) fn assemble(
        &self,
        id: &LaneId,
        sequence: u64,
        parts: u32,
    ) -> Result<Vec<Bytes>, u32> {
        let kept = self.lanes.get(id).map(|lane| &lane.kept);
        (0..parts)
            .map(|index| {
                let key = (sequence, index);
                kept.and_then(|k| k.get(&key))
                    .or_else(|| self.candidates.sole(id, key))
                    .cloned()
                    .ok_or(index)
            })
            .collect()
    }

    /// Segment `sequence` of lane `id` was published or given up on: the bytes of its
    /// parts (and of earlier ones) are no longer kept for assembly (the window shares
    /// them with the segment's buffer, or drops them).
    pub(crate) fn segment_done(&mut self, id: &LaneId, sequence: u64) {
        if let Some(lane) = self.lanes.get_mut(id) {
            lane.kept = lane.kept.split_off(&(sequence.saturating_add(1), 0));
        }
    }

    /// Bytes of the published parts kept for assembly.
    #[cfg(test)]
    pub(crate) fn kept_bytes(&self) -> usize {
        let kept = self.lanes.values().flat_map(|l| l.kept.values());
        kept.map(Bytes::len).sum()
    }

    /// Time passes: bytes unmatched for the hold time are dropped (`timeout`), statements
    /// unmatched as long are forgotten, lanes idle for a hundred hold times go.
    pub(crate) fn tick(&mut self, now_ms: u64) -> Vec<PartOutput> {
        let mut out = Vec::new();
        for id in self.lanes.keys() {
            self.candidates.expire(id, now_ms, &mut out);
        }
        let idle = self.candidates.hold_ms().saturating_mul(100);
        let candidates = &self.candidates;
        self.lanes.retain(|id, lane| {
            candidates.entries(id) != (0, 0) || now_ms.saturating_sub(lane.touched_ms) < idle
        });
        out
    }

    /// Whether bytes or (`statement`) a statement for `key` may come in: not a replay of a
    /// published part or of a statement waiting, not too far ahead (else the reason goes to
    /// `out`). If so, room is made for a new entry. Either way the lane counts as used.
    fn admit(
        &mut self,
        now_ms: u64,
        id: &LaneId,
        key: PartKey,
        statement: bool,
        out: &mut Vec<PartOutput>,
    ) -> bool {
        let lane = self.lanes.entry(id.clone()).or_default();
        lane.touched_ms = now_ms;
        let refused =
            if lane.is_replay(key) || (statement && self.candidates.has_statement(id, key)) {
                Some(RejectReason::Replay)
            } else if lane.too_far_ahead(key.0) {
                Some(RejectReason::Overflow)
            } else {
                None
            };
        if let Some(reason) = refused {
            out.push(PartOutput::Rejected(reason));
            return false;
        }
        if !self.candidates.has_pushes(id, key) {
            self.make_room(id, out);
        }
        true
    }

    /// A new entry is coming to a lane at its limit: its oldest entry goes (held bytes
    /// before statements, the lowest part first), as `overflow`.
    fn make_room(&mut self, id: &LaneId, out: &mut Vec<PartOutput>) {
        let (pushes, statements) = self.candidates.entries(id);
        if pushes + statements < MAX_LANE_ENTRIES {
            return;
        }
        let push = self.candidates.first_push(id);
        match (push, self.candidates.first_statement(id)) {
            (Some(p), s) if s.is_none_or(|s| p <= s) => {
                self.candidates
                    .drop_pushes(id, p, RejectReason::Overflow, out);
            }
            (_, Some(s)) => {
                self.candidates.take_statement(id, s);
            }
            _ => {}
        }
    }

    fn publish(
        &mut self,
        id: &LaneId,
        matched: Option<Match<PartMeta>>,
        out: &mut Vec<PartOutput>,
    ) {
        let (Some(matched), Some(lane)) = (matched, self.lanes.get_mut(id)) else {
            return;
        };
        let key = (matched.claim.sequence, matched.claim.index);
        lane.published.insert(key);
        while lane.published.len() > REMEMBERED {
            lane.published.pop_first();
        }
        lane.newest = lane.newest.max(Some(key.0));
        lane.kept.insert(key, matched.bytes.clone());
        if let Some(newest) = lane.newest {
            let oldest = newest.saturating_sub(KEPT_SEGMENTS - 1);
            lane.kept = lane.kept.split_off(&(oldest, 0));
        }
        while lane.kept.len() > MAX_LANE_ENTRIES {
            lane.kept.pop_first();
        }
        out.push(PartOutput::Publish {
            arrived_ms: matched.arrived_ms,
            signed: matched.signed,
            part: Part {
                meta: matched.claim,
                bytes: matched.bytes,
            },
        });
    }
}

#[cfg(test)]
mod tests;
