//! Part-key delegations (`domain::wire::PartKeyStatement`): the ingest side that makes
//! one ([`PartKey`]) and the verifier side that keeps what was admitted ([`Delegations`],
//! inside [`TrustStore`](super::TrustStore)).
//!
//! An ingest signs every LL-HLS part of one run of segments (about ten seconds of one
//! stream, session and rendition) with a fresh Ed25519 key, and vouches for that key once
//! with its certified key. Viewers then fetch a 64-byte signature per part instead of a
//! 3.3 KB ML-DSA-65 one, and a forger must break Ed25519 within the run; segments (and so
//! recordings) keep the certified key's signatures.
//!
//! A delegated key signs parts only: the part of the stream, session and rendition its
//! statement names, and of a segment within its run. Its authority ends with its
//! delegator's: a revoked or expired ingest key's delegations verify nothing.

use std::collections::{HashMap, VecDeque};

use domain::wire::{KeyId, PartKeyStatement, SignatureAlgorithm, SignedPartKey};
use domain::{RenditionName, SessionId, StreamName};

use super::keys::{PublicKey, SigningKey};
use crate::CertsError;

/// Delegations kept per (stream, rendition): the run being played and a few before it
/// (a viewer a little behind live, parts still served from the previous run).
pub const DELEGATIONS_PER_LANE: usize = 4;

/// Delegations kept in all; past that the oldest admitted goes. Every one was signed by a
/// certified key, so this bounds what even a misbehaving ingest can make a verifier hold.
pub const MAX_DELEGATIONS: usize = 4096;

/// The algorithm of every key this build delegates to: small signatures are the point.
pub const DELEGATED_ALGORITHM: SignatureAlgorithm = SignatureAlgorithm::Ed25519;

/// An ingest's delegated part key for one run: the private key that signs the run's part
/// statements, and the signed delegation that vouches for it.
pub struct PartKey {
    key: SigningKey,
    statement: PartKeyStatement,
    /// `SignedPartKey::encode`: published on the manifest topic before the first part of
    /// the run, and again at every segment of it for nodes that join late.
    envelope: Vec<u8>,
}

impl std::fmt::Debug for PartKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartKey")
            .field("key", &self.key)
            .field("statement", &self.statement)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Delegates the signing of the parts of `stream`, `session` and `rendition`, segments
    /// `first..=last`, to a fresh Ed25519 key, vouched for by this (certified) key.
    pub fn delegate_parts(
        &self,
        stream: &StreamName,
        session: SessionId,
        rendition: &RenditionName,
        first: u64,
        last: u64,
    ) -> Result<PartKey, CertsError> {
        let key = SigningKey::generate(DELEGATED_ALGORITHM)?;
        let statement = PartKeyStatement {
            algorithm: self.algorithm(),
            key_id: self.key_id(),
            stream: stream.clone(),
            session,
            rendition: rendition.clone(),
            first_sequence: first,
            last_sequence: last,
            delegated_algorithm: DELEGATED_ALGORITHM,
            delegated_key: key.public_key().as_bytes().to_vec(),
        };
        let envelope = SignedPartKey::sign(&statement, |bytes| self.sign(bytes)).encode();
        Ok(PartKey {
            key,
            statement,
            envelope,
        })
    }
}

impl PartKey {
    /// What it vouches for.
    pub fn statement(&self) -> &PartKeyStatement {
        &self.statement
    }

    /// The signed delegation's bytes.
    pub fn envelope(&self) -> &[u8] {
        &self.envelope
    }

    /// Whether it may sign the parts of segment `sequence` of `stream`, `session` and
    /// `rendition`.
    pub fn covers(
        &self,
        stream: &StreamName,
        session: SessionId,
        rendition: &RenditionName,
        sequence: u64,
    ) -> bool {
        let s = &self.statement;
        &s.stream == stream
            && s.session == session
            && &s.rendition == rendition
            && s.covers_sequence(sequence)
    }

    /// The scheme its part statements name.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.key.algorithm()
    }

    /// The key id its part statements name.
    pub fn key_id(&self) -> KeyId {
        self.key.key_id()
    }

    /// Signs a part statement's canonical bytes.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message)
    }
}

/// Where a part belongs: what a delegation must cover for its key to sign the part.
#[derive(Debug, Clone, Copy)]
pub struct PartScope<'a> {
    /// The part's stream.
    pub stream: &'a StreamName,
    /// Its publish session.
    pub session: SessionId,
    /// Its rendition.
    pub rendition: &'a RenditionName,
    /// The media sequence of its segment.
    pub sequence: u64,
}

/// An admitted delegation: checked against its certified signer when it arrived.
#[derive(Debug, Clone)]
pub struct Delegation {
    statement: PartKeyStatement,
    key: PublicKey,
    envelope: Vec<u8>,
}

impl Delegation {
    /// Decodes a signed delegation (its envelope's bytes) without checking the signature:
    /// the envelope, the statement, and the delegated key parsed as a key of its
    /// algorithm. [`super::TrustStore::admit_delegation`] checks the rest.
    pub fn decode(bytes: &[u8]) -> Result<(SignedPartKey, Self), CertsError> {
        let malformed = |_| CertsError::Malformed {
            what: "part-key delegation",
            reason: "not a signed part-key delegation",
        };
        let signed = SignedPartKey::decode(bytes).map_err(malformed)?;
        let statement = signed.statement().map_err(malformed)?;
        let key = PublicKey::from_bytes(statement.delegated_algorithm, &statement.delegated_key)?;
        let delegation = Delegation {
            statement,
            key,
            envelope: bytes.to_vec(),
        };
        Ok((signed, delegation))
    }

    /// What it says.
    pub fn statement(&self) -> &PartKeyStatement {
        &self.statement
    }

    /// The signed delegation's bytes, as admitted (served again as `{seq}.partkey`).
    pub fn envelope(&self) -> &[u8] {
        &self.envelope
    }

    /// The delegated key's id (what its part statements name).
    pub fn key_id(&self) -> KeyId {
        self.key.key_id()
    }

    /// Checks that it covers a part at `scope`: `unknown_delegation` for a part of another
    /// stream, session or rendition, `expired_delegation` for one outside its run.
    pub fn check_scope(&self, scope: PartScope<'_>) -> Result<(), CertsError> {
        let s = &self.statement;
        let key_id = self.key_id();
        if &s.stream != scope.stream
            || s.session != scope.session
            || &s.rendition != scope.rendition
        {
            return Err(CertsError::DelegationScope { key_id });
        }
        if !s.covers_sequence(scope.sequence) {
            return Err(CertsError::DelegationExpired {
                key_id,
                sequence: scope.sequence,
                first: s.first_sequence,
                last: s.last_sequence,
            });
        }
        Ok(())
    }

    /// Checks a part statement's signature with the delegated key.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CertsError> {
        self.key.verify(message, signature)
    }
}

/// The delegations a verifier admitted, by delegated key id, bounded per lane and in all.
#[derive(Debug, Clone, Default)]
pub(crate) struct Delegations {
    by_key: HashMap<KeyId, Delegation>,
    /// Admission order, for the overall bound (may name keys already dropped).
    order: VecDeque<KeyId>,
}

impl Delegations {
    /// The delegation of delegated key `key_id`.
    pub(crate) fn get(&self, key_id: KeyId) -> Option<&Delegation> {
        self.by_key.get(&key_id)
    }

    /// Keeps `delegation` (again, if already held: nothing changes), dropping the oldest
    /// of its lane past [`DELEGATIONS_PER_LANE`] and the oldest overall past
    /// [`MAX_DELEGATIONS`].
    pub(crate) fn insert(&mut self, delegation: Delegation) {
        let key_id = delegation.key_id();
        if self.by_key.contains_key(&key_id) {
            return;
        }
        let lane = |d: &Delegation| (d.statement.stream.clone(), d.statement.rendition.clone());
        let mine = lane(&delegation);
        let mut same_lane: Vec<(u64, KeyId)> = self
            .by_key
            .values()
            .filter(|d| lane(d) == mine)
            .map(|d| (d.statement.first_sequence, d.key_id()))
            .collect();
        same_lane.sort_unstable();
        let excess = (same_lane.len() + 1).saturating_sub(DELEGATIONS_PER_LANE);
        for (_, old) in same_lane.into_iter().take(excess) {
            self.by_key.remove(&old);
        }
        self.by_key.insert(key_id, delegation);
        self.order.push_back(key_id);
        while self.by_key.len() > MAX_DELEGATIONS {
            match self.order.pop_front() {
                Some(old) => {
                    self.by_key.remove(&old);
                }
                None => break,
            }
        }
        // Keys dropped per lane linger in `order`; keep it from growing past the map.
        if self.order.len() > 2 * MAX_DELEGATIONS {
            let held = &self.by_key;
            self.order.retain(|k| held.contains_key(k));
        }
    }

    /// Drops every delegation signed by `signer` (its key was revoked).
    pub(crate) fn drop_signer(&mut self, signer: KeyId) {
        self.by_key.retain(|_, d| d.statement.key_id != signer);
    }

    /// How many are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{RootKey, TrustStore, Validity};
    use domain::NodeId;

    const NOW: u64 = 1_800_000_000;

    fn names() -> (StreamName, RenditionName) {
        (
            StreamName::new("cam1").expect("valid"),
            RenditionName::new("360p").expect("valid"),
        )
    }

    struct Cluster {
        root: RootKey,
        ingest: SigningKey,
        store: TrustStore,
    }

    fn cluster(algorithm: SignatureAlgorithm) -> Cluster {
        let root = RootKey::generate(algorithm).expect("root");
        let ingest = SigningKey::generate(algorithm).expect("ingest");
        let cert = root
            .certify(
                ingest.public_key(),
                NodeId::new("ingest1").expect("valid"),
                Validity::new(NOW - 10, NOW + 3600).expect("valid"),
            )
            .expect("same algorithm")
            .encode();
        let mut store = TrustStore::new(root.public_key());
        store.add_certificate(&cert, NOW).expect("admitted");
        Cluster {
            root,
            ingest,
            store,
        }
    }

    fn scope<'a>(names: &'a (StreamName, RenditionName), sequence: u64) -> PartScope<'a> {
        PartScope {
            stream: &names.0,
            session: SessionId(7),
            rendition: &names.1,
            sequence,
        }
    }

    #[test]
    fn a_delegated_key_signs_its_runs_parts_and_nothing_else() {
        for algorithm in [SignatureAlgorithm::MlDsa65, SignatureAlgorithm::Ed25519] {
            let mut c = cluster(algorithm);
            let n = names();
            let part_key = c
                .ingest
                .delegate_parts(&n.0, SessionId(7), &n.1, 10, 14)
                .expect("delegated");
            assert_eq!(part_key.algorithm(), DELEGATED_ALGORITHM);
            let admitted = c
                .store
                .admit_delegation(part_key.envelope(), NOW)
                .expect("admitted");
            assert_eq!(admitted.key_id(), part_key.key_id());
            assert_eq!(admitted.envelope(), part_key.envelope());
            let id = part_key.key_id();
            let sig = part_key.sign(b"part");
            c.store
                .verify_part(id, scope(&n, 12), b"part", &sig, NOW)
                .expect("verifies");
            let reason = |r: Result<(), CertsError>| r.expect_err("refused").reason();
            assert_eq!(
                reason(c.store.verify_part(id, scope(&n, 12), b"parT", &sig, NOW)),
                "bad_signature"
            );
            assert_eq!(
                reason(c.store.verify_part(id, scope(&n, 15), b"part", &sig, NOW)),
                "expired_delegation"
            );
            let other = (n.0.clone(), RenditionName::new("720p").expect("valid"));
            assert_eq!(
                reason(
                    c.store
                        .verify_part(id, scope(&other, 12), b"part", &sig, NOW)
                ),
                "unknown_delegation"
            );
            let later = PartScope {
                session: SessionId(8),
                ..scope(&n, 12)
            };
            assert_eq!(
                reason(c.store.verify_part(id, later, b"part", &sig, NOW)),
                "unknown_delegation"
            );
            // Only parts: a segment's check does not know delegated keys.
            assert_eq!(
                reason(c.store.verify(id, b"part", &sig, NOW)),
                "unknown_key"
            );
            // Its authority ends with its delegator's.
            assert_eq!(
                reason(
                    c.store
                        .verify_part(id, scope(&n, 12), b"part", &sig, NOW + 3601)
                ),
                "expired_key"
            );
            // The ingest key signs parts directly as before.
            let direct = c.ingest.sign(b"part");
            c.store
                .verify_part(c.ingest.key_id(), scope(&n, 12), b"part", &direct, NOW)
                .expect("a certified key verifies");
            // Revoking the ingest key drops what it delegated, and no more is admitted.
            c.store
                .revoke(&c.root.revoke(c.ingest.key_id(), NOW).encode())
                .expect("root-signed");
            assert!(c.store.delegation(id).is_none());
            assert_eq!(
                reason(c.store.verify_part(id, scope(&n, 12), b"part", &sig, NOW)),
                "unknown_key"
            );
            assert_eq!(
                c.store
                    .admit_delegation(part_key.envelope(), NOW)
                    .map(|_| ())
                    .expect_err("revoked")
                    .reason(),
                "revoked_key"
            );
        }
    }

    #[test]
    fn delegations_need_a_certified_signer_and_one_encoding() {
        let mut c = cluster(SignatureAlgorithm::Ed25519);
        let n = names();
        let stranger = SigningKey::generate(SignatureAlgorithm::Ed25519).expect("key");
        let forged = stranger
            .delegate_parts(&n.0, SessionId(7), &n.1, 1, 2)
            .expect("delegated");
        let refused = |store: &mut TrustStore, bytes: &[u8]| {
            store
                .admit_delegation(bytes, NOW)
                .map(|_| ())
                .expect_err("refused")
                .reason()
        };
        assert_eq!(refused(&mut c.store, forged.envelope()), "unknown_key");
        let genuine = c
            .ingest
            .delegate_parts(&n.0, SessionId(7), &n.1, 1, 2)
            .expect("delegated");
        let mut bytes = genuine.envelope().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(refused(&mut c.store, &bytes), "bad_signature");
        bytes[last] ^= 1;
        bytes.push(0);
        assert_eq!(refused(&mut c.store, &bytes), "malformed");
        assert_eq!(refused(&mut c.store, b"garbage"), "malformed");
        // An ML-DSA cluster refuses a delegation signed under Ed25519 (no downgrade).
        let mut mldsa = cluster(SignatureAlgorithm::MlDsa65);
        assert_eq!(
            refused(&mut mldsa.store, genuine.envelope()),
            "wrong_algorithm"
        );
        c.store
            .admit_delegation(genuine.envelope(), NOW)
            .expect("admitted");
    }

    #[test]
    fn a_lane_keeps_its_newest_runs_only() {
        let mut c = cluster(SignatureAlgorithm::Ed25519);
        let n = names();
        let keys: Vec<PartKey> = (0..6u64)
            .map(|run| {
                c.ingest
                    .delegate_parts(&n.0, SessionId(7), &n.1, run * 5, run * 5 + 4)
                    .expect("delegated")
            })
            .collect();
        for k in &keys {
            c.store
                .admit_delegation(k.envelope(), NOW)
                .expect("admitted");
        }
        for (run, k) in keys.iter().enumerate() {
            let held = c.store.delegation(k.key_id()).is_some();
            assert_eq!(held, run >= 6 - DELEGATIONS_PER_LANE, "run {run}");
        }
        let mut set = Delegations::default();
        for k in &keys {
            set.insert(Delegation::decode(k.envelope()).expect("decodes").1);
        }
        assert_eq!(set.len(), DELEGATIONS_PER_LANE);
    }
}
