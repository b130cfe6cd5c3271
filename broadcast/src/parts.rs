//! The part gate, sans-IO: an LL-HLS part (`domain::segment::Part`) is published only when
//! its pushed bytes and a verified [`PartManifest`] have both arrived and every field
//! agrees (`PartManifest::from_meta` of the pushed metadata, length and SHA-256 equals the
//! signed manifest).
//!
//! Parts are ephemeral, unlike segments: a part that never verifies is not a gap, it is
//! simply never listed (its segment's parts stop there; the full segment still comes
//! through [`crate::gate`]). So this gate keeps no order and lists no gaps: it publishes a
//! part the moment its bytes and manifest meet, and the live state (`crate::stream`) puts
//! parts in order and drops those that come too late.
//!
//! Bounded: bytes held by `max_held_bytes` (the oldest held part goes first), entries per
//! lane by [`MAX_LANE_ENTRIES`], how far ahead by [`PART_AHEAD`] segments past the newest
//! published part; unmatched bytes and manifests are forgotten after the hold time. Rival
//! pushes of other bytes for the same part are all kept as candidates (up to
//! [`MAX_CANDIDATES`]) and the verified manifest picks the genuine one, so a push-token
//! holder cannot keep a genuine part out by pushing first. Refusals are counted by the
//! same reasons as segments ([`RejectReason`]), in `sealcast_parts_rejected_total`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use domain::manifest::PartManifest;
use domain::segment::{Part, PartMeta};
use domain::{RenditionName, StreamName};

pub use crate::gate::{RejectReason, MAX_CANDIDATES};

/// How many segments past the newest one a part was published for a lane takes parts
/// (the open segment and the next two); further ones are refused as `overflow`.
pub const PART_AHEAD: u64 = 3;

/// Most parts (held bytes or verified manifests) one lane keeps waiting; beyond it the
/// oldest goes, as `overflow`.
pub const MAX_LANE_ENTRIES: usize = 64;

/// How many published parts a lane remembers, to refuse their replays.
const REMEMBERED: usize = 128;

/// What the part gate decided.
#[derive(Debug, Clone, PartialEq)]
pub enum PartOutput {
    /// Bytes and verified manifest met and agree: publish. `arrived_ms`: when the bytes
    /// arrived (the gate's added latency is the time from then to now).
    Publish {
        /// The part.
        part: Part,
        /// When its bytes arrived, in the gate's milliseconds.
        arrived_ms: u64,
    },
    /// Something was refused (count it).
    Rejected(RejectReason),
}

/// (segment sequence, part index).
type PartKey = (u64, u32);

#[derive(Debug)]
struct Held {
    meta: PartMeta,
    bytes: Bytes,
    digest: [u8; 32],
    since_ms: u64,
}

#[derive(Debug, Default)]
struct Lane {
    /// Pushes waiting for their manifest: the first, then rivals with other bytes.
    held: BTreeMap<PartKey, Vec<Held>>,
    /// Verified manifests waiting for their bytes, and when they arrived.
    manifests: BTreeMap<PartKey, (PartManifest, u64)>,
    /// Recently published parts (replays of them are refused).
    published: BTreeSet<PartKey>,
    /// The newest segment a part was published for.
    newest: Option<u64>,
    /// Last time anything arrived for the lane (idle lanes are forgotten).
    touched_ms: u64,
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

    fn entries(&self) -> usize {
        self.held.len() + self.manifests.len()
    }
}

/// The part gate of one broadcast node.
#[derive(Debug)]
pub struct PartGate {
    hold_ms: u64,
    max_held_bytes: usize,
    held_bytes: usize,
    lanes: HashMap<(StreamName, RenditionName), Lane>,
}

impl PartGate {
    /// A gate holding unmatched parts at most `hold_ms` and `max_held_bytes` in total.
    pub fn new(hold_ms: u64, max_held_bytes: usize) -> Self {
        PartGate {
            hold_ms,
            max_held_bytes,
            held_bytes: 0,
            lanes: HashMap::new(),
        }
    }

    /// Bytes of pushed parts held now, waiting for their manifests.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Pushed part bytes arrived; `digest` is their SHA-256.
    pub fn bytes(
        &mut self,
        now_ms: u64,
        meta: PartMeta,
        bytes: Bytes,
        digest: [u8; 32],
    ) -> Vec<PartOutput> {
        let mut out = Vec::new();
        let lane_key = (meta.stream.clone(), meta.rendition.clone());
        let key = (meta.sequence, meta.index);
        let lane = self.lanes.entry(lane_key.clone()).or_default();
        lane.touched_ms = now_ms;
        if lane.is_replay(key) {
            out.push(PartOutput::Rejected(RejectReason::Replay));
            return out;
        }
        if lane.too_far_ahead(key.0) {
            out.push(PartOutput::Rejected(RejectReason::Overflow));
            return out;
        }
        if let Some(candidates) = lane.held.get_mut(&key) {
            if candidates.iter().any(|c| c.digest == digest) {
                out.push(PartOutput::Rejected(RejectReason::Replay));
                return out;
            }
            if candidates.len() >= MAX_CANDIDATES {
                out.push(PartOutput::Rejected(RejectReason::Overflow));
                return out;
            }
        } else if lane.entries() >= MAX_LANE_ENTRIES {
            self.held_bytes -= drop_oldest(lane, RejectReason::Overflow, &mut out);
        }
        self.held_bytes += bytes.len();
        lane.held.entry(key).or_default().push(Held {
            meta,
            bytes,
            digest,
            since_ms: now_ms,
        });
        self.try_match(&lane_key, key, &mut out);
        self.enforce_cap(&mut out);
        out
    }

    /// A part manifest whose signature the caller verified.
    pub fn manifest(&mut self, now_ms: u64, manifest: PartManifest) -> Vec<PartOutput> {
        let mut out = Vec::new();
        let lane_key = (manifest.stream.clone(), manifest.rendition.clone());
        let key = (manifest.sequence, manifest.index);
        let lane = self.lanes.entry(lane_key.clone()).or_default();
        lane.touched_ms = now_ms;
        if lane.is_replay(key) || lane.manifests.contains_key(&key) {
            out.push(PartOutput::Rejected(RejectReason::Replay));
            return out;
        }
        if lane.too_far_ahead(key.0) {
            out.push(PartOutput::Rejected(RejectReason::Overflow));
            return out;
        }
        if !lane.held.contains_key(&key) && lane.entries() >= MAX_LANE_ENTRIES {
            self.held_bytes -= drop_oldest(lane, RejectReason::Overflow, &mut out);
        }
        lane.manifests.insert(key, (manifest, now_ms));
        self.try_match(&lane_key, key, &mut out);
        out
    }

    /// A part manifest the caller refused (bad signature, unknown/expired/revoked key).
    pub fn refused(&mut self, reason: RejectReason) -> Vec<PartOutput> {
        vec![PartOutput::Rejected(reason)]
    }

    /// Time passes: bytes unmatched for the hold time are dropped (`timeout`), manifests
    /// unmatched as long are forgotten, lanes idle for a hundred hold times go.
    pub fn tick(&mut self, now_ms: u64) -> Vec<PartOutput> {
        let mut out = Vec::new();
        let hold = self.hold_ms;
        let expired = |since: u64| now_ms.saturating_sub(since) >= hold;
        for lane in self.lanes.values_mut() {
            lane.held.retain(|_, candidates| {
                if candidates.iter().all(|c| expired(c.since_ms)) {
                    for c in candidates.iter() {
                        self.held_bytes -= c.bytes.len();
                        out.push(PartOutput::Rejected(RejectReason::Timeout));
                    }
                    false
                } else {
                    true
                }
            });
            lane.manifests.retain(|_, (_, since)| !expired(*since));
        }
        let idle = hold.saturating_mul(100);
        self.lanes
            .retain(|_, lane| lane.entries() > 0 || now_ms.saturating_sub(lane.touched_ms) < idle);
        out
    }

    fn try_match(
        &mut self,
        lane_key: &(StreamName, RenditionName),
        key: PartKey,
        out: &mut Vec<PartOutput>,
    ) {
        let Some(lane) = self.lanes.get_mut(lane_key) else {
            return;
        };
        if !(lane.held.contains_key(&key) && lane.manifests.contains_key(&key)) {
            return;
        }
        let (Some(candidates), Some((manifest, since))) =
            (lane.held.remove(&key), lane.manifests.remove(&key))
        else {
            return;
        };
        let mut genuine = None;
        for held in candidates {
            self.held_bytes -= held.bytes.len();
            let expected = PartManifest::from_meta(
                &held.meta,
                manifest.algorithm,
                manifest.key_id,
                held.bytes.len() as u64,
                held.digest,
            );
            if genuine.is_none() && expected == manifest {
                genuine = Some(held);
            } else {
                // Altered bytes or metadata: never served.
                out.push(PartOutput::Rejected(RejectReason::DigestMismatch));
            }
        }
        match genuine {
            Some(held) => {
                lane.published.insert(key);
                while lane.published.len() > REMEMBERED {
                    lane.published.pop_first();
                }
                lane.newest = lane.newest.max(Some(key.0));
                out.push(PartOutput::Publish {
                    arrived_ms: held.since_ms,
                    part: Part {
                        meta: held.meta,
                        bytes: held.bytes,
                    },
                });
            }
            // The verified manifest stays for a correct retry, until the hold time.
            None => {
                lane.manifests.insert(key, (manifest, since));
            }
        }
    }

    fn enforce_cap(&mut self, out: &mut Vec<PartOutput>) {
        while self.held_bytes > self.max_held_bytes {
            let oldest = self
                .lanes
                .iter()
                .flat_map(|(lane_key, lane)| {
                    lane.held
                        .iter()
                        .map(move |(key, c)| (c.first().map_or(0, |h| h.since_ms), lane_key, *key))
                })
                .min_by_key(|(since, ..)| *since)
                .map(|(_, lane_key, key)| (lane_key.clone(), key));
            let Some((lane_key, key)) = oldest else { break };
            if let Some(candidates) = self
                .lanes
                .get_mut(&lane_key)
                .and_then(|lane| lane.held.remove(&key))
            {
                for c in candidates {
                    self.held_bytes -= c.bytes.len();
                    out.push(PartOutput::Rejected(RejectReason::Overflow));
                }
            }
        }
    }
}

/// Drops the lane's oldest waiting entry (held bytes before manifests, lowest part first);
/// returns the bytes freed.
fn drop_oldest(lane: &mut Lane, reason: RejectReason, out: &mut Vec<PartOutput>) -> usize {
    let held = lane.held.keys().next().copied();
    let manifest = lane.manifests.keys().next().copied();
    match (held, manifest) {
        (Some(h), m) if m.is_none_or(|m| h <= m) => {
            let candidates = lane.held.remove(&h).unwrap_or_default();
            out.extend(candidates.iter().map(|_| PartOutput::Rejected(reason)));
            candidates.iter().map(|c| c.bytes.len()).sum()
        }
        (_, Some(m)) => {
            lane.manifests.remove(&m);
            0
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
