//! The candidate set, sans-IO: where pushed bytes and verified statements meet. One set
//! serves both gates, the signature gate (`gate`, keyed by a segment's sequence number)
//! and the part gate (`parts`, keyed by a part's sequence number and index), so the rules
//! that keep forged bytes out are written, and property-tested, once:
//!
//! - Bytes leave only in a [`Match`]: a push whose claim (the metadata headers), length and
//!   digest describe exactly the statement a verified envelope carries
//!   ([`Claim::describe`]). The match carries that envelope's raw bytes, so what is
//!   published can be shown with exactly what the ingest signed.
//! - Pushes of one key that arrive before its statement are all candidates, up to
//!   [`MAX_CANDIDATES`] different byte strings, and the statement picks the one it
//!   describes: a push-token holder who pushes other bytes first (or the genuine bytes
//!   under a false claim) cannot keep the genuine ones out. The same bytes under the same
//!   claim again are a `replay`, more than that many candidates an `overflow`, the losers a
//!   `digest_mismatch`. A statement that matched none of them stays for a correct
//!   retry.
//! - What is held is bounded: candidate bytes by a budget the owner may share with bytes
//!   it holds for its own reasons ([`CandidateSet::enforce_budget`]: the key waiting longest
//!   goes first, `overflow`), everything by the hold time ([`CandidateSet::expire`]: pushes
//!   as `timeout`, statements without a word). A key's candidates share the clock of its
//!   first push.
//!
//! What the set does not know is each gate's own: order and gaps (segments), replays of
//! what was already published, how far ahead a lane takes entries.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use bytes::Bytes;
use domain::segment::PartMeta;
use domain::wire::{KeyId, PartStatement, SegmentStatement, SignatureAlgorithm};
use domain::{RenditionName, SegmentMeta, SessionId, StreamName};

/// How many different pushes of one key are held while its statement has not come; more
/// are refused as `overflow`.
pub(crate) const MAX_CANDIDATES: usize = 3;

/// Why a segment, a part or a statement was not published; the label of
/// `sealcast_segments_rejected_total{reason}` (and of the parts' counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RejectReason {
    /// The signature did not verify.
    BadSignature,
    /// Signed by a key no certificate vouches for.
    UnknownKey,
    /// Signed by a key whose certificate expired.
    ExpiredKey,
    /// Signed by a revoked key.
    RevokedKey,
    /// Something already published, given up on, or held (the same bytes or statement
    /// again).
    Replay,
    /// Bytes and statement disagree (digest, length or any other field).
    DigestMismatch,
    /// No valid statement arrived within the hold time.
    Timeout,
    /// Too many bytes or entries held (the oldest was dropped), or a key too far ahead.
    Overflow,
    /// A part signed by a delegated key outside the stream, session or rendition it was
    /// delegated for (parts only).
    UnknownDelegation,
    /// A part signed by a delegated key outside the run of segments it was delegated for
    /// (parts only).
    ExpiredDelegation,
}

impl RejectReason {
    /// The metric label, exactly as the brief names it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::BadSignature => "bad_signature",
            Self::UnknownKey => "unknown_key",
            Self::ExpiredKey => "expired_key",
            Self::RevokedKey => "revoked_key",
            Self::Replay => "replay",
            Self::DigestMismatch => "digest_mismatch",
            Self::Timeout => "timeout",
            Self::Overflow => "overflow",
            Self::UnknownDelegation => "unknown_delegation",
            Self::ExpiredDelegation => "expired_delegation",
        }
    }
}

/// One rendition of one stream: the unit a gate orders and bounds.
pub(crate) type LaneId = (StreamName, RenditionName);

/// Something with a place in a lane: a pushed claim, or the statement that confirms it.
pub(crate) trait Placed: PartialEq + Debug {
    /// Where in its lane it belongs: a sequence number, or (sequence, part index).
    type Key: Ord + Copy + Debug;
    /// Its stream.
    fn stream(&self) -> &StreamName;
    /// Its rendition.
    fn rendition(&self) -> &RenditionName;
    /// Its place in the lane.
    fn key(&self) -> Self::Key;
    /// Its lane.
    fn lane(&self) -> LaneId {
        (self.stream().clone(), self.rendition().clone())
    }
}

/// A signed statement about one segment or part ([`SegmentStatement`], [`PartStatement`]).
pub(crate) trait Statement: Placed {
    /// The scheme it was signed with.
    fn algorithm(&self) -> SignatureAlgorithm;
    /// The key it was signed with.
    fn key_id(&self) -> KeyId;
}

/// What a push says about its bytes (the metadata headers and path), which only a
/// verified statement can confirm: [`SegmentMeta`], [`PartMeta`].
pub(crate) trait Claim: Placed {
    /// The statement that confirms it, about the same place.
    type Statement: Statement<Key = Self::Key>;
    /// The publish session it claims.
    fn session(&self) -> SessionId;
    /// The statement that would describe these bytes, `byte_len` long and hashing to
    /// `digest`, signed with `algorithm` and `key_id`: ingest and edge build it alike, so
    /// equality with the verified one is the whole check.
    fn describe(
        &self,
        algorithm: SignatureAlgorithm,
        key_id: KeyId,
        byte_len: u64,
        digest: [u8; 32],
    ) -> Self::Statement;
}

/// The key of a claim's place in its lane.
pub(crate) type Key<C> = <C as Placed>::Key;

/// A statement and the push metadata it confirms differ only in their types and key
/// (their fields carry the same names), so one expansion writes both.
macro_rules! statement_and_claim {
    ($statement:ty, $claim:ty, $key:ty, |$x:ident| $key_of:expr) => {
        statement_and_claim!(@placed $statement, $key, |$x| $key_of);
        statement_and_claim!(@placed $claim, $key, |$x| $key_of);

        impl Statement for $statement {
            fn algorithm(&self) -> SignatureAlgorithm {
                self.algorithm
            }
            fn key_id(&self) -> KeyId {
                self.key_id
            }
        }

        impl Claim for $claim {
            type Statement = $statement;
            fn session(&self) -> SessionId {
                self.session
            }
            fn describe(
                &self,
                algorithm: SignatureAlgorithm,
                key_id: KeyId,
                byte_len: u64,
                digest: [u8; 32],
            ) -> $statement {
                <$statement>::from_meta(self, algorithm, key_id, byte_len, digest)
            }
        }
    };
    (@placed $ty:ty, $key:ty, |$x:ident| $key_of:expr) => {
        impl Placed for $ty {
            type Key = $key;
            fn stream(&self) -> &StreamName {
                &self.stream
            }
            fn rendition(&self) -> &RenditionName {
                &self.rendition
            }
            fn key(&self) -> $key {
                let $x = self;
                $key_of
            }
        }
    };
}

statement_and_claim!(SegmentStatement, SegmentMeta, u64, |x| x.sequence);
statement_and_claim!(PartStatement, PartMeta, (u64, u32), |x| (
    x.sequence, x.index
));

/// A statement whose signature the caller verified, with the envelope it arrived in
/// (`SignedMedia::encode`: statement bytes and signature, exactly as the ingest sent
/// them), which travels with the bytes it confirms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Signed<S> {
    /// The decoded statement.
    pub(crate) statement: S,
    /// The envelope's raw bytes.
    pub(crate) envelope: Bytes,
}

/// Pushed bytes and the verified statement that describes them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Match<C> {
    /// What the push said, now confirmed field by field.
    pub(crate) claim: C,
    /// Exactly the pushed bytes.
    pub(crate) bytes: Bytes,
    /// When they arrived (the caller's clock, ms): the signature wait ends now.
    pub(crate) arrived_ms: u64,
    /// The envelope of the statement that matched them.
    pub(crate) signed: Bytes,
}

/// What became of a push.
#[derive(Debug)]
pub(crate) enum Pushed<C> {
    /// Refused (counted in the output): the same bytes again, or too many candidates.
    Refused,
    /// Held beside other candidates of its key, for the statement to choose.
    Rival,
    /// The first push of its key: held, or matched at once by a statement waiting for it.
    First(Option<Match<C>>),
}

#[derive(Debug)]
struct Candidate<C> {
    claim: C,
    bytes: Bytes,
    digest: [u8; 32],
    arrived_ms: u64,
}

/// The candidates of one key; the first push starts the hold clock of them all.
#[derive(Debug)]
struct Pushes<C> {
    since_ms: u64,
    candidates: Vec<Candidate<C>>,
}

#[derive(Debug)]
struct Waiting<S> {
    signed: Signed<S>,
    since_ms: u64,
}

/// One lane's pushes and statements waiting for each other. Never both for one key: when
/// the second arrives they meet at once, and only a statement that matched no candidate
/// stays.
#[derive(Debug)]
struct Lane<C: Claim> {
    pushes: BTreeMap<Key<C>, Pushes<C>>,
    statements: BTreeMap<Key<C>, Waiting<C::Statement>>,
}

impl<C: Claim> Default for Lane<C> {
    fn default() -> Self {
        Lane {
            pushes: BTreeMap::new(),
            statements: BTreeMap::new(),
        }
    }
}

/// Pushed bytes and verified statements waiting for each other, on every lane of a node.
#[derive(Debug)]
pub(crate) struct CandidateSet<C: Claim> {
    hold_ms: u64,
    max_held_bytes: usize,
    /// Bytes of every candidate held, the budget's measure.
    held_bytes: usize,
    lanes: HashMap<LaneId, Lane<C>>,
}

impl<C: Claim> CandidateSet<C> {
    /// A set that holds what does not meet for `hold_ms`, and candidates of at most
    /// `max_held_bytes` (with what its owner holds besides: [`Self::enforce_budget`]).
    pub(crate) fn new(hold_ms: u64, max_held_bytes: usize) -> Self {
        CandidateSet {
            hold_ms,
            max_held_bytes,
            held_bytes: 0,
            lanes: HashMap::new(),
        }
    }

    /// The hold time, in the caller's milliseconds.
    pub(crate) fn hold_ms(&self) -> u64 {
        self.hold_ms
    }

    /// Bytes of the candidates held now.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Keys with pushes waiting, on every lane.
    pub(crate) fn waiting_pushes(&self) -> usize {
        self.lanes.values().map(|l| l.pushes.len()).sum()
    }

    /// Pushed bytes arrived; `digest` is their SHA-256.
    pub(crate) fn push<O: From<RejectReason>>(
        &mut self,
        now_ms: u64,
        claim: C,
        bytes: Bytes,
        digest: [u8; 32],
        out: &mut Vec<O>,
    ) -> Pushed<C> {
        let lane_id = claim.lane();
        let key = claim.key();
        let lane = self.lanes.entry(lane_id.clone()).or_default();
        let candidate = Candidate {
            claim,
            bytes,
            digest,
            arrived_ms: now_ms,
        };
        if let Some(pushes) = lane.pushes.get_mut(&key) {
            // The same push again is a replay; other bytes, or the same bytes with another
            // claim, a candidate, since the first push may be the forgery.
            let same = |c: &Candidate<C>| c.digest == digest && c.claim == candidate.claim;
            let reason = if pushes.candidates.iter().any(same) {
                RejectReason::Replay
            } else if pushes.candidates.len() >= MAX_CANDIDATES {
                RejectReason::Overflow
            } else {
                self.held_bytes += candidate.bytes.len();
                pushes.candidates.push(candidate);
                return Pushed::Rival;
            };
            out.push(reason.into());
            return Pushed::Refused;
        }
        self.held_bytes += candidate.bytes.len();
        lane.pushes.insert(
            key,
            Pushes {
                since_ms: now_ms,
                candidates: vec![candidate],
            },
        );
        Pushed::First(self.meet(&lane_id, key, out))
    }

    /// A statement whose signature the caller verified (and found no replay of): matched
    /// with the candidates of its key, or kept until they come.
    pub(crate) fn verified<O: From<RejectReason>>(
        &mut self,
        now_ms: u64,
        signed: Signed<C::Statement>,
        out: &mut Vec<O>,
    ) -> Option<Match<C>> {
        let lane_id = signed.statement.lane();
        let key = signed.statement.key();
        let waiting = Waiting {
            signed,
            since_ms: now_ms,
        };
        let lane = self.lanes.entry(lane_id.clone()).or_default();
        lane.statements.insert(key, waiting);
        self.meet(&lane_id, key, out)
    }

    /// Pushes and statement of `key`, if both are here: the candidate the statement
    /// describes, the others refused. Without one the statement stays, for a correct
    /// retry within the hold time.
    fn meet<O: From<RejectReason>>(
        &mut self,
        lane_id: &LaneId,
        key: Key<C>,
        out: &mut Vec<O>,
    ) -> Option<Match<C>> {
        let lane = self.lanes.get_mut(lane_id)?;
        if !(lane.pushes.contains_key(&key) && lane.statements.contains_key(&key)) {
            return None;
        }
        let pushes = lane.pushes.remove(&key)?;
        let waiting = lane.statements.remove(&key)?;
        let statement = &waiting.signed.statement;
        let mut genuine = None;
        for c in pushes.candidates {
            self.held_bytes -= c.bytes.len();
            let described = c.claim.describe(
                statement.algorithm(),
                statement.key_id(),
                c.bytes.len() as u64,
                c.digest,
            );
            if genuine.is_none() && described == *statement {
                genuine = Some(c);
            } else {
                // Altered bytes or metadata (or a statement for other bytes): never served.
                out.push(RejectReason::DigestMismatch.into());
            }
        }
        match genuine {
            Some(c) => Some(Match {
                claim: c.claim,
                bytes: c.bytes,
                arrived_ms: c.arrived_ms,
                signed: waiting.signed.envelope,
            }),
            None => {
                lane.statements.insert(key, waiting);
                None
            }
        }
    }

    /// Whether pushes of `key` are waiting.
    pub(crate) fn has_pushes(&self, lane: &LaneId, key: Key<C>) -> bool {
        self.lanes
            .get(lane)
            .is_some_and(|l| l.pushes.contains_key(&key))
    }

    /// The bytes of `key`'s only candidate: `None` without pushes, or with rivals (which
    /// of them is genuine only its statement can say).
    pub(crate) fn sole(&self, lane: &LaneId, key: Key<C>) -> Option<&Bytes> {
        match self
            .lanes
            .get(lane)?
            .pushes
            .get(&key)?
            .candidates
            .as_slice()
        {
            [only] => Some(&only.bytes),
            _ => None,
        }
    }

    /// Whether a verified statement of `key` is waiting.
    pub(crate) fn has_statement(&self, lane: &LaneId, key: Key<C>) -> bool {
        self.lanes
            .get(lane)
            .is_some_and(|l| l.statements.contains_key(&key))
    }

    /// Since when the pushes of `key` wait (their first one's arrival).
    pub(crate) fn pushes_since(&self, lane: &LaneId, key: Key<C>) -> Option<u64> {
        Some(self.lanes.get(lane)?.pushes.get(&key)?.since_ms)
    }

    /// Since when the statement of `key` waits.
    pub(crate) fn statement_since(&self, lane: &LaneId, key: Key<C>) -> Option<u64> {
        Some(self.lanes.get(lane)?.statements.get(&key)?.since_ms)
    }

    /// The lowest key with pushes waiting.
    pub(crate) fn first_push(&self, lane: &LaneId) -> Option<Key<C>> {
        self.lanes.get(lane)?.pushes.keys().next().copied()
    }

    /// The highest key with pushes waiting.
    pub(crate) fn last_push(&self, lane: &LaneId) -> Option<Key<C>> {
        self.lanes.get(lane)?.pushes.keys().next_back().copied()
    }

    /// The lowest key with a statement waiting.
    pub(crate) fn first_statement(&self, lane: &LaneId) -> Option<Key<C>> {
        self.lanes.get(lane)?.statements.keys().next().copied()
    }

    /// Keys waiting on `lane`: (with pushes, with a statement).
    pub(crate) fn entries(&self, lane: &LaneId) -> (usize, usize) {
        self.lanes
            .get(lane)
            .map_or((0, 0), |l| (l.pushes.len(), l.statements.len()))
    }

    /// Drops every candidate of `key`, each counted as `reason`.
    pub(crate) fn drop_pushes<O: From<RejectReason>>(
        &mut self,
        lane: &LaneId,
        key: Key<C>,
        reason: RejectReason,
        out: &mut Vec<O>,
    ) {
        let Some(pushes) = self.lanes.get_mut(lane).and_then(|l| l.pushes.remove(&key)) else {
            return;
        };
        for c in pushes.candidates {
            self.held_bytes -= c.bytes.len();
            out.push(reason.into());
        }
    }

    /// Takes the statement of `key` out (a gate giving up on the key reads it for what
    /// it still says).
    pub(crate) fn take_statement(&mut self, lane: &LaneId, key: Key<C>) -> Option<C::Statement> {
        let waiting = self.lanes.get_mut(lane)?.statements.remove(&key)?;
        Some(waiting.signed.statement)
    }

    /// Forgets everything of `lane` below `key`: pushes counted as `reason`, statements
    /// without a word.
    pub(crate) fn forget_before<O: From<RejectReason>>(
        &mut self,
        lane: &LaneId,
        key: Key<C>,
        reason: RejectReason,
        out: &mut Vec<O>,
    ) {
        let Some(l) = self.lanes.get_mut(lane) else {
            return;
        };
        l.statements = l.statements.split_off(&key);
        let kept = l.pushes.split_off(&key);
        for (_, pushes) in std::mem::replace(&mut l.pushes, kept) {
            for c in pushes.candidates {
                self.held_bytes -= c.bytes.len();
                out.push(reason.into());
            }
        }
    }

    /// Time passes on `lane`: pushes that waited the hold time go (`timeout`, each
    /// candidate), statements as old are forgotten. A lane left empty is forgotten.
    pub(crate) fn expire<O: From<RejectReason>>(
        &mut self,
        lane: &LaneId,
        now_ms: u64,
        out: &mut Vec<O>,
    ) {
        let hold = self.hold_ms;
        let expired = |since: u64| now_ms.saturating_sub(since) >= hold;
        let Some(l) = self.lanes.get_mut(lane) else {
            return;
        };
        l.statements.retain(|_, w| !expired(w.since_ms));
        l.pushes.retain(|_, pushes| {
            if !expired(pushes.since_ms) {
                return true;
            }
            for c in &pushes.candidates {
                self.held_bytes -= c.bytes.len();
                out.push(RejectReason::Timeout.into());
            }
            false
        });
        if l.pushes.is_empty() && l.statements.is_empty() {
            self.lanes.remove(lane);
        }
    }

    /// Keeps the candidates' bytes, with `also_held` bytes the owner holds besides, within
    /// the budget: the key that has waited longest goes first (the lower key on a tie),
    /// each of its candidates counted `overflow`.
    pub(crate) fn enforce_budget<O: From<RejectReason>>(
        &mut self,
        also_held: usize,
        out: &mut Vec<O>,
    ) {
        while self.held_bytes.saturating_add(also_held) > self.max_held_bytes {
            let oldest = self
                .lanes
                .iter()
                .flat_map(|(id, l)| l.pushes.iter().map(move |(k, p)| (p.since_ms, *k, id)))
                .min_by_key(|(since, key, _)| (*since, *key))
                .map(|(_, key, id)| (id.clone(), key));
            let Some((lane, key)) = oldest else { break };
            self.drop_pushes(&lane, key, RejectReason::Overflow, out);
        }
    }

    /// The sum of every candidate's length, counted afresh (tests check the running count
    /// against it).
    #[cfg(test)]
    pub(crate) fn counted_bytes(&self) -> usize {
        self.lanes
            .values()
            .flat_map(|l| l.pushes.values())
            .flat_map(|p| &p.candidates)
            .map(|c| c.bytes.len())
            .sum()
    }
}

#[cfg(test)]
mod tests;
