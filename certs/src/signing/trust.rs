//! What an edge trusts: the pinned root, the ingest keys the root certified, the keys it
//! revoked, and the part keys certified ingest keys delegated. Fed with the retained
//! certificate and revocation messages and the delegations as they arrive; asked once per
//! segment and part statement.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use domain::wire::KeyId;

use super::bundle::TrustBundle;
use super::cert::{IngestCertificate, Revocation, VerifiedKey};
use super::delegation::{Delegation, Delegations, PartScope};
use super::keys::RootPublicKey;
use crate::CertsError;

/// The trust an edge applies to every statement signature. Sans-IO: bytes and times in,
/// verdicts out. Everything it holds was signed by the pinned root, so its size is bounded
/// by what the root issued, not by what the broker delivers.
#[derive(Debug, Clone)]
pub struct TrustStore {
    root: RootPublicKey,
    /// Certified keys by id: admitted even before their validity starts (a certificate
    /// announced early is retained once and must still count when its time comes), checked
    /// against the clock at each [`TrustStore::verify`].
    keys: HashMap<KeyId, VerifiedKey>,
    /// Revoked keys and when the revocation takes effect. Kept apart from `keys` so that a
    /// revocation that arrives before the certificate still wins.
    revoked: HashMap<KeyId, u64>,
    /// The encoded certificate behind each key in `keys` (the one kept), for
    /// [`TrustStore::bundle`].
    certificates: HashMap<KeyId, Vec<u8>>,
    /// The encoded revocation behind each time in `revoked` (the earliest), likewise.
    revocations: HashMap<KeyId, Vec<u8>>,
    /// Part keys certified keys delegated, by delegated key id (bounded; not in the bundle:
    /// viewers fetch them beside the parts).
    delegations: Delegations,
}

impl TrustStore {
    /// A store that trusts what `root` signs, and nothing else.
    pub fn new(root: RootPublicKey) -> Self {
        TrustStore {
            root,
            keys: HashMap::new(),
            revoked: HashMap::new(),
            certificates: HashMap::new(),
            revocations: HashMap::new(),
            delegations: Delegations::default(),
        }
    }

    /// The pinned root.
    pub fn root(&self) -> &RootPublicKey {
        &self.root
    }

    /// Admits an announced certificate (its encoded bytes) at `now`, returning the key id it
    /// vouches for. Refused: anything not signed by the pinned root or of another algorithm,
    /// a certificate already expired, a revoked key. A certificate not valid *yet* is kept.
    /// For a key already known, the certificate that runs longest is kept, so an old
    /// certificate replayed after a renewal cannot shorten the key's life.
    pub fn add_certificate(&mut self, bytes: &[u8], now: u64) -> Result<KeyId, CertsError> {
        let cert = IngestCertificate::decode(bytes)?;
        let key = self.root.check_certificate(&cert)?;
        let key_id = key.key_id();
        if let Err(err @ CertsError::Expired { .. }) = key.check_validity(now) {
            return Err(err);
        }
        self.check_revoked(key_id, now)?;
        match self.keys.entry(key_id) {
            Entry::Occupied(mut held) => {
                if key.validity().not_after() > held.get().validity().not_after() {
                    held.insert(key);
                    self.certificates.insert(key_id, bytes.to_vec());
                }
            }
            Entry::Vacant(slot) => {
                slot.insert(key);
                self.certificates.insert(key_id, bytes.to_vec());
            }
        }
        Ok(key_id)
    }

    /// Applies an announced revocation (its encoded bytes) after checking the pinned root
    /// signed it; returns the revoked key id. Revocations only ever tighten: of several for
    /// one key, the earliest time holds, so a replayed or later one cannot postpone it.
    pub fn revoke(&mut self, bytes: &[u8]) -> Result<KeyId, CertsError> {
        let revocation = Revocation::decode(bytes)?;
        self.root.verify_revocation(&revocation)?;
        let key_id = revocation.key_id();
        let earliest = match self.revoked.get(&key_id) {
            Some(&at) => revocation.revoked_at() < at,
            None => true,
        };
        if earliest {
            self.revoked.insert(key_id, revocation.revoked_at());
            self.revocations.insert(key_id, bytes.to_vec());
        }
        // What the key delegated goes with it, at once even when the revocation takes
        // effect later: an ingest still allowed to sign delegates its next run again.
        self.delegations.drop_signer(key_id);
        Ok(key_id)
    }

    /// Admits a signed part-key delegation (its envelope's bytes) at `now`: its signer must
    /// be certified, valid and unrevoked now and its signature verify (the reasons of
    /// [`TrustStore::verify`]), the statement of the cluster's algorithm and the
    /// delegated key a key of its own algorithm. Returns what was admitted (again, if it
    /// already was: nothing changes).
    pub fn admit_delegation(&mut self, bytes: &[u8], now: u64) -> Result<&Delegation, CertsError> {
        let (signed, delegation) = Delegation::decode(bytes)?;
        let statement = delegation.statement();
        if statement.algorithm != self.root.algorithm() {
            return Err(CertsError::WrongAlgorithm {
                expected: self.root.algorithm(),
                found: statement.algorithm,
            });
        }
        self.verify(
            statement.key_id,
            &signed.statement_bytes,
            &signed.signature,
            now,
        )?;
        let key_id = delegation.key_id();
        self.delegations.insert(delegation);
        self.delegations
            .get(key_id)
            .ok_or(CertsError::UnknownKey { key_id })
    }

    /// The delegation of part key `key_id`, if admitted.
    pub fn delegation(&self, key_id: KeyId) -> Option<&Delegation> {
        self.delegations.get(key_id)
    }

    /// Checks a part statement's `signature` over `message` by key `key_id` at `now`, for
    /// the part at `scope`: a certified key as [`TrustStore::verify`] does (parts signed
    /// the way they were before delegations keep verifying); a delegated key only for the
    /// stream, session and rendition its delegation names (`unknown_delegation`) and the
    /// segments of its run (`expired_delegation`), and only while its delegator is
    /// unrevoked and valid; any other key is `unknown_key`.
    pub fn verify_part(
        &self,
        key_id: KeyId,
        scope: PartScope<'_>,
        message: &[u8],
        signature: &[u8],
        now: u64,
    ) -> Result<(), CertsError> {
        let delegated = self
            .delegations
            .get(key_id)
            .filter(|_| !self.keys.contains_key(&key_id));
        let Some(delegation) = delegated else {
            return self.verify(key_id, message, signature, now);
        };
        delegation.check_scope(scope)?;
        let delegator = delegation.statement().key_id;
        self.check_revoked(delegator, now)?;
        self.keys
            .get(&delegator)
            .ok_or(CertsError::UnknownKey { key_id: delegator })?
            .check_validity(now)?;
        delegation.verify(message, signature)
    }

    /// Everything this store admitted, as a [`TrustBundle`] a viewer can rebuild it from:
    /// per key the certificate kept and the earliest revocation, in key id order (so the
    /// same trust always encodes to the same bytes).
    pub fn bundle(&self) -> TrustBundle {
        let sorted = |map: &HashMap<KeyId, Vec<u8>>| {
            let mut items: Vec<_> = map.iter().collect();
            items.sort_by_key(|(id, _)| id.0);
            items.into_iter().map(|(_, b)| b.clone()).collect()
        };
        TrustBundle {
            certificates: sorted(&self.certificates),
            revocations: sorted(&self.revocations),
        }
    }

    /// Admits every item of `bundle` at `now`, revocations first (so a revoked key's
    /// certificate is refused rather than admitted and then revoked); returns what was
    /// refused, one error per item, in the bundle's order.
    pub fn admit(&mut self, bundle: &TrustBundle, now: u64) -> Vec<CertsError> {
        let mut refused = Vec::new();
        for revocation in &bundle.revocations {
            if let Err(e) = self.revoke(revocation) {
                refused.push(e);
            }
        }
        for cert in &bundle.certificates {
            if let Err(e) = self.add_certificate(cert, now) {
                refused.push(e);
            }
        }
        refused
    }

    /// Checks `signature` over `message` by key `key_id` at `now` (unix seconds). Every error
    /// is one of the brief's rejection reasons ([`CertsError::reason`]): `revoked_key`,
    /// `unknown_key`, `expired_key` (outside the validity, either side), `bad_signature`;
    /// checked in that order, so a revoked key reads as revoked even when it is also
    /// unknown or expired.
    pub fn verify(
        &self,
        key_id: KeyId,
        message: &[u8],
        signature: &[u8],
        now: u64,
    ) -> Result<(), CertsError> {
        self.check_revoked(key_id, now)?;
        let key = self
            .keys
            .get(&key_id)
            .ok_or(CertsError::UnknownKey { key_id })?;
        key.check_validity(now)?;
        key.verify(message, signature)
    }

    /// The certified key `key_id`, if admitted (whatever its validity or revocation).
    pub fn key(&self, key_id: KeyId) -> Option<&VerifiedKey> {
        self.keys.get(&key_id)
    }

    fn check_revoked(&self, key_id: KeyId, now: u64) -> Result<(), CertsError> {
        match self.revoked.get(&key_id) {
            Some(&revoked_at) if now >= revoked_at => {
                Err(CertsError::Revoked { key_id, revoked_at })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{RootKey, SigningKey, Validity};
    use domain::wire::SignatureAlgorithm;
    use domain::NodeId;

    const NOW: u64 = 1_800_000_000;
    const REASONS: [&str; 4] = ["bad_signature", "unknown_key", "expired_key", "revoked_key"];

    struct Cluster {
        root: RootKey,
        ingest: SigningKey,
        cert: Vec<u8>,
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
        assert_eq!(
            store.add_certificate(&cert, NOW).expect("admitted"),
            ingest.key_id()
        );
        Cluster {
            root,
            ingest,
            cert,
            store,
        }
    }

    fn reason(result: Result<(), CertsError>) -> &'static str {
        let reason = result.expect_err("rejected").reason();
        assert!(REASONS.contains(&reason), "{reason} is not a brief reason");
        reason
    }

    #[test]
    fn both_algorithms_verify_through_the_store() {
        for algorithm in [SignatureAlgorithm::MlDsa65, SignatureAlgorithm::Ed25519] {
            let c = cluster(algorithm);
            let id = c.ingest.key_id();
            let sig = c.ingest.sign(b"statement");
            c.store
                .verify(id, b"statement", &sig, NOW)
                .expect("verifies");
            assert_eq!(
                reason(c.store.verify(id, b"statemenT", &sig, NOW)),
                "bad_signature"
            );
            let mut flipped = sig.clone();
            flipped[sig.len() / 3] ^= 0x20;
            assert_eq!(
                reason(c.store.verify(id, b"statement", &flipped, NOW)),
                "bad_signature"
            );
        }
    }

    #[test]
    fn each_failure_has_its_reason() {
        let mut c = cluster(SignatureAlgorithm::Ed25519);
        let id = c.ingest.key_id();
        let sig = c.ingest.sign(b"m");
        assert_eq!(
            reason(c.store.verify(id, b"m", &sig, NOW + 3601)),
            "expired_key"
        );
        assert_eq!(
            reason(c.store.verify(id, b"m", &sig, NOW - 11)),
            "expired_key"
        );
        assert_eq!(
            reason(c.store.verify(KeyId([9; 16]), b"m", &sig, NOW)),
            "unknown_key"
        );
        // A valid signature by a key nobody certified.
        let stranger = SigningKey::generate(SignatureAlgorithm::Ed25519).expect("key");
        assert_eq!(
            reason(
                c.store
                    .verify(stranger.key_id(), b"m", &stranger.sign(b"m"), NOW)
            ),
            "unknown_key"
        );
        c.store.verify(id, b"m", &sig, NOW).expect("still fine");
        let revoked = c
            .store
            .revoke(&c.root.revoke(id, NOW).encode())
            .expect("root-signed");
        assert_eq!(revoked, id);
        assert_eq!(reason(c.store.verify(id, b"m", &sig, NOW)), "revoked_key");
        // Revoked wins over expired, and the certificate cannot be re-admitted.
        assert_eq!(
            reason(c.store.verify(id, b"m", &sig, NOW + 9999)),
            "revoked_key"
        );
        assert!(matches!(
            c.store.add_certificate(&c.cert, NOW),
            Err(CertsError::Revoked { .. })
        ));
    }

    #[test]
    fn a_scheduled_revocation_takes_effect_at_its_time_and_cannot_be_postponed() {
        let mut c = cluster(SignatureAlgorithm::Ed25519);
        let id = c.ingest.key_id();
        let sig = c.ingest.sign(b"m");
        c.store
            .revoke(&c.root.revoke(id, NOW + 100).encode())
            .expect("root-signed");
        c.store
            .verify(id, b"m", &sig, NOW + 99)
            .expect("not yet revoked");
        assert_eq!(
            reason(c.store.verify(id, b"m", &sig, NOW + 100)),
            "revoked_key"
        );
        c.store
            .revoke(&c.root.revoke(id, NOW + 500).encode())
            .expect("root-signed");
        assert_eq!(
            reason(c.store.verify(id, b"m", &sig, NOW + 100)),
            "revoked_key"
        );
    }

    #[test]
    fn a_revocation_before_the_certificate_still_holds() {
        let c = cluster(SignatureAlgorithm::Ed25519);
        let mut fresh = TrustStore::new(c.root.public_key());
        fresh
            .revoke(&c.root.revoke(c.ingest.key_id(), NOW).encode())
            .expect("root-signed");
        assert!(matches!(
            fresh.add_certificate(&c.cert, NOW),
            Err(CertsError::Revoked { .. })
        ));
        assert_eq!(
            reason(fresh.verify(c.ingest.key_id(), b"m", &c.ingest.sign(b"m"), NOW)),
            "revoked_key"
        );
    }

    #[test]
    fn foreign_and_tampered_statements_change_nothing() {
        let mut c = cluster(SignatureAlgorithm::Ed25519);
        let id = c.ingest.key_id();
        let other = cluster(SignatureAlgorithm::Ed25519);
        // Another cluster's certificate and revocation.
        assert!(c.store.add_certificate(&other.cert, NOW).is_err());
        assert!(c
            .store
            .revoke(&other.root.revoke(id, NOW).encode())
            .is_err());
        c.store
            .verify(id, b"m", &c.ingest.sign(b"m"), NOW)
            .expect("not revoked by a stranger");
        assert_eq!(
            reason(
                c.store
                    .verify(other.ingest.key_id(), b"m", &other.ingest.sign(b"m"), NOW)
            ),
            "unknown_key"
        );
        // Garbage.
        assert!(c.store.add_certificate(b"garbage", NOW).is_err());
        assert!(c.store.revoke(b"garbage").is_err());
    }

    #[test]
    fn expired_certificates_are_refused_early_ones_kept_and_renewals_win() {
        let c = cluster(SignatureAlgorithm::Ed25519);
        let mut store = TrustStore::new(c.root.public_key());
        assert!(matches!(
            store.add_certificate(&c.cert, NOW + 3601),
            Err(CertsError::Expired { .. })
        ));
        let sig = c.ingest.sign(b"m");
        // Announced before its start: admitted, usable once the time comes.
        store.add_certificate(&c.cert, NOW - 100).expect("kept");
        assert_eq!(
            reason(store.verify(c.ingest.key_id(), b"m", &sig, NOW - 100)),
            "expired_key"
        );
        store
            .verify(c.ingest.key_id(), b"m", &sig, NOW)
            .expect("valid now");

        let node = NodeId::new("ingest1").expect("valid");
        let renewal = c
            .root
            .certify(
                c.ingest.public_key(),
                node,
                Validity::new(NOW, NOW + 7200).expect("valid"),
            )
            .expect("same algorithm")
            .encode();
        store.add_certificate(&renewal, NOW).expect("renewed");
        store
            .add_certificate(&c.cert, NOW)
            .expect("replayed old one");
        store
            .verify(c.ingest.key_id(), b"m", &sig, NOW + 7000)
            .expect("the renewal still holds");
    }
}
