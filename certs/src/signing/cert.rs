//! Root-signed statements: an ingest key's [`IngestCertificate`], a broadcast node's
//! [`EdgeCertificate`] and a key's [`Revocation`], how the root makes them and how they are
//! checked.
//!
//! The two certificates share one layout and differ in their domain-separation tag, so a
//! key the root certified for one role never passes for the other: an edge key cannot sign
//! a segment, an ingest key cannot announce a broadcast node. In code they are one type,
//! [`Certificate`], told apart by its [`CertificateKind`].
//!
//! Both have a fixed layout: a domain-separation tag, a version byte, then every field in a
//! fixed order, integers big-endian, the public key and signature at the lengths their
//! algorithm fixes (so no length prefixes), the node id prefixed by its one-byte length.
//! Decoding is strict (exactly this layout, no trailing bytes, key id consistent with the
//! key) so bytes that decode re-encode to themselves and the signature binds every byte.
//!
//! Certificate, version 1:
//!
//! | field | bytes |
//! |---|---|
//! | tag [`CERTIFICATE_TAG`] (31) or [`EDGE_CERTIFICATE_TAG`] (29) | 31 or 29 |
//! | version (1) | 1 |
//! | algorithm ([`SignatureAlgorithm::code`]) | 1 |
//! | key id of the certified key | 16 |
//! | issuer: the root's key id | 16 |
//! | node id (ingest) or key name (edge): length, then ASCII | 1 + 1..=64 |
//! | not before, unix seconds | 8 |
//! | not after, unix seconds (inclusive) | 8 |
//! | public key | 1952 (ML-DSA-65) or 32 (Ed25519) |
//! | root's signature over all of the above | 3309 or 64 |
//!
//! Revocation, version 1: tag [`REVOCATION_TAG`] (27), version (1), algorithm (1), issuer
//! (16), revoked key id (16), revoked at (8), root's signature.
//!
//! Long because the three root-signed kinds share one wire layout, one signing path and one
//! check, and keeping them side by side keeps their domain separation visible.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use domain::wire::{put_name, Codec, KeyId, Reader, SignatureAlgorithm, WireError};
use domain::NodeId;

use super::keys::{public_key_len, signature_len, PublicKey, RootKey, RootPublicKey};
use super::wire::malformed;
use crate::CertsError;

/// Domain-separation tag of ingest certificates.
pub const CERTIFICATE_TAG: &[u8] = b"sealcast/v1/ingest-certificate\0";
/// Domain-separation tag of edge (broadcast node) certificates.
pub const EDGE_CERTIFICATE_TAG: &[u8] = b"sealcast/v1/edge-certificate\0";
/// Domain-separation tag of revocations.
pub const REVOCATION_TAG: &[u8] = b"sealcast/v1/key-revocation\0";

const VERSION: u8 = 1;
const REVOCATION: &str = "revocation";

/// When a certified key may sign: from `not_before` to `not_after` inclusive, unix seconds.
/// Valid by construction (`not_before <= not_after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Validity {
    not_before: u64,
    not_after: u64,
}

impl Validity {
    /// The period from `not_before` to `not_after`, both inclusive.
    pub fn new(not_before: u64, not_after: u64) -> Result<Self, CertsError> {
        if not_after < not_before {
            return Err(CertsError::InvalidValidity {
                not_before,
                not_after,
            });
        }
        Ok(Validity {
            not_before,
            not_after,
        })
    }

    /// `lifetime` from `now` (saturating at the end of time).
    pub fn starting_at(now: u64, lifetime: Duration) -> Self {
        Validity {
            not_before: now,
            not_after: now.saturating_add(lifetime.as_secs()),
        }
    }

    /// First valid second.
    pub fn not_before(&self) -> u64 {
        self.not_before
    }

    /// Last valid second.
    pub fn not_after(&self) -> u64 {
        self.not_after
    }

    /// Whether `key_id` may be used at `now`.
    pub(crate) fn check(&self, key_id: KeyId, now: u64) -> Result<(), CertsError> {
        if now < self.not_before {
            Err(CertsError::NotYetValid {
                key_id,
                not_before: self.not_before,
                now,
            })
        } else if now > self.not_after {
            Err(CertsError::Expired {
                key_id,
                not_after: self.not_after,
                now,
            })
        } else {
            Ok(())
        }
    }
}

/// What a certificate lets its key do; fixes the certificate's domain-separation tag.
/// Implemented by [`Ingest`] and [`Edge`] only.
pub trait CertificateKind: sealed::Sealed + Clone + PartialEq + Eq + fmt::Debug {
    /// The domain-separation tag.
    const TAG: &'static [u8];
    /// The type's name, for `Debug`.
    const NAME: &'static str;
    /// What it is called in errors.
    const WHAT: &'static str;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Ingest {}
    impl Sealed for super::Edge {}
}

/// An ingest node's key: signs segment statements and control events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingest {}

/// A broadcast node's key: signs the node's presence (where it takes pushes and viewers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edge {}

impl CertificateKind for Ingest {
    const TAG: &'static [u8] = CERTIFICATE_TAG;
    const NAME: &'static str = "IngestCertificate";
    const WHAT: &'static str = "ingest certificate";
}

impl CertificateKind for Edge {
    const TAG: &'static [u8] = EDGE_CERTIFICATE_TAG;
    const NAME: &'static str = "EdgeCertificate";
    const WHAT: &'static str = "edge certificate";
}

/// "The root vouches that this public key belongs to this node for this period, in the
/// role `K`."
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate<K: CertificateKind> {
    public_key: PublicKey,
    issuer: KeyId,
    node_id: NodeId,
    validity: Validity,
    signature: Vec<u8>,
    kind: PhantomData<K>,
}

/// An ingest key's certificate. Ingest announces it as a retained MQTT message; edges
/// admit it through [`RootPublicKey::verify_certificate`] or
/// [`super::TrustStore::add_certificate`].
pub type IngestCertificate = Certificate<Ingest>;

/// A broadcast node's certificate: travels inside each of the node's signed presences,
/// where the load balancer and the ingests check it against the root
/// ([`super::PresenceVerifier`]). Its node id names the key, not one node: replicas that
/// share a key share its certificate.
pub type EdgeCertificate = Certificate<Edge>;

impl<K: CertificateKind> fmt::Debug for Certificate<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(K::NAME)
            .field("algorithm", &self.algorithm())
            .field("key_id", &format_args!("{}", self.key_id()))
            .field("issuer", &format_args!("{}", self.issuer))
            .field("node_id", &self.node_id)
            .field("validity", &self.validity)
            .field("signature_len", &self.signature.len())
            .finish()
    }
}

/// The signed part of a certificate.
fn certificate_body(
    tag: &[u8],
    public_key: &PublicKey,
    issuer: KeyId,
    node_id: &NodeId,
    validity: Validity,
) -> Vec<u8> {
    let node = node_id.as_str().as_bytes();
    let mut out = Vec::with_capacity(
        tag.len()
            + 51
            + node.len()
            + public_key.as_bytes().len()
            + signature_len(public_key.algorithm()),
    );
    out.extend_from_slice(tag);
    out.push(VERSION);
    public_key.algorithm().write(&mut out);
    public_key.key_id().write(&mut out);
    issuer.write(&mut out);
    put_name(&mut out, node_id.as_str());
    out.extend_from_slice(&validity.not_before.to_be_bytes());
    out.extend_from_slice(&validity.not_after.to_be_bytes());
    out.extend_from_slice(public_key.as_bytes());
    out
}

impl RootKey {
    /// Certifies `ingest_public` for ingest node `node_id` over `validity`.
    ///
    /// Fails only with [`CertsError::WrongAlgorithm`]: a cluster runs one algorithm, the
    /// root's, and no edge would accept a certificate for a key of another.
    pub fn certify(
        &self,
        ingest_public: &PublicKey,
        node_id: NodeId,
        validity: Validity,
    ) -> Result<IngestCertificate, CertsError> {
        self.certify_as(ingest_public, node_id, validity)
    }

    /// Certifies `edge_public` as a broadcast node key named `name` over `validity`; fails
    /// like [`RootKey::certify`].
    pub fn certify_edge(
        &self,
        edge_public: &PublicKey,
        name: NodeId,
        validity: Validity,
    ) -> Result<EdgeCertificate, CertsError> {
        self.certify_as(edge_public, name, validity)
    }

    pub(crate) fn certify_as<K: CertificateKind>(
        &self,
        public: &PublicKey,
        node_id: NodeId,
        validity: Validity,
    ) -> Result<Certificate<K>, CertsError> {
        if public.algorithm() != self.algorithm() {
            return Err(CertsError::WrongAlgorithm {
                expected: self.algorithm(),
                found: public.algorithm(),
            });
        }
        let signature = self.0.sign(&certificate_body(
            K::TAG,
            public,
            self.key_id(),
            &node_id,
            validity,
        ));
        Ok(Certificate {
            public_key: public.clone(),
            issuer: self.key_id(),
            node_id,
            validity,
            signature,
            kind: PhantomData,
        })
    }

    /// Revokes key `key_id` from `revoked_at` (unix seconds) on; a time in the future
    /// schedules the retirement of a key that is being rotated out.
    pub fn revoke(&self, key_id: KeyId, revoked_at: u64) -> Revocation {
        let signature = self.0.sign(&revocation_body(
            self.algorithm(),
            self.key_id(),
            key_id,
            revoked_at,
        ));
        Revocation {
            algorithm: self.algorithm(),
            issuer: self.key_id(),
            key_id,
            revoked_at,
            signature,
        }
    }
}

impl<K: CertificateKind> Certificate<K> {
    /// The certificate format version (1).
    pub fn version(&self) -> u8 {
        VERSION
    }

    /// The certified key's algorithm (the cluster's).
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.public_key.algorithm()
    }

    /// The certified key's id, as statements name it.
    pub fn key_id(&self) -> KeyId {
        self.public_key.key_id()
    }

    /// The key id of the root that signed this certificate.
    pub fn issuer(&self) -> KeyId {
        self.issuer
    }

    /// The node the key belongs to: for an ingest certificate also the node in its MQTT
    /// topic; for an edge certificate the key's name.
    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    /// The certified key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// When the key may sign.
    pub fn validity(&self) -> Validity {
        self.validity
    }

    /// The canonical bytes: what ingest announces and [`Certificate::decode`] reads.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = certificate_body(
            K::TAG,
            &self.public_key,
            self.issuer,
            &self.node_id,
            self.validity,
        );
        out.extend_from_slice(&self.signature);
        out
    }

    /// Strict decoding of [`Certificate::encode`]'s output for this kind (another kind's
    /// tag is an error); any other bytes are a [`CertsError::Malformed`], never a panic.
    /// Does not check the signature: that is [`RootPublicKey::verify_certificate`]'s job.
    pub fn decode(bytes: &[u8]) -> Result<Self, CertsError> {
        let bad = |reason| malformed(K::WHAT, reason);
        let mut r = Reader::new(K::WHAT, bytes);
        r.tag(K::TAG)?;
        r.version(VERSION)?;
        let algorithm: SignatureAlgorithm = r.read()?;
        let key_id: KeyId = r.read()?;
        let issuer = r.read()?;
        let node_id = r.name("node id", NodeId::new).map_err(|e| match e {
            WireError::InvalidName { .. } => bad("invalid node id"),
            e => e.into(),
        })?;
        let not_before = r.u64("not before")?;
        let not_after = r.u64("not after")?;
        let validity = Validity::new(not_before, not_after)
            .map_err(|_| bad("validity ends before it starts"))?;
        let key = r.take(public_key_len(algorithm), "public key")?;
        let public_key =
            PublicKey::from_bytes(algorithm, key).map_err(|_| bad("invalid public key"))?;
        if public_key.key_id() != key_id {
            return Err(bad("key id does not match the public key"));
        }
        let signature = r.take(signature_len(algorithm), "signature")?.to_vec();
        r.finish()?;
        Ok(Certificate {
            public_key,
            issuer,
            node_id,
            validity,
            signature,
            kind: PhantomData,
        })
    }
}

/// A certified key that checked out against the pinned root, for the role `K` (an ingest
/// key unless said otherwise): the only way to get one is
/// [`RootPublicKey::verify_certificate`] (or through a [`super::TrustStore`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey<K: CertificateKind = Ingest> {
    public_key: PublicKey,
    node_id: NodeId,
    validity: Validity,
    kind: PhantomData<K>,
}

impl<K: CertificateKind> VerifiedKey<K> {
    /// Checks `signature` over `message` (a statement) with this key. Validity and revocation
    /// are the caller's, or [`super::TrustStore::verify`]'s, to check at the time of use.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CertsError> {
        self.public_key.verify(message, signature)
    }

    /// The key's id.
    pub fn key_id(&self) -> KeyId {
        self.public_key.key_id()
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.public_key.algorithm()
    }

    /// The node the root certified the key for.
    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    /// When the key may sign.
    pub fn validity(&self) -> Validity {
        self.validity
    }

    /// Whether `now` is within the key's validity.
    pub(crate) fn check_validity(&self, now: u64) -> Result<(), CertsError> {
        self.validity.check(self.key_id(), now)
    }
}

impl RootPublicKey {
    /// Checks that the pinned root signed `cert` and that it is valid at `now` (unix
    /// seconds). The signature is checked first, so nothing unauthenticated decides which
    /// error comes back.
    pub fn verify_certificate<K: CertificateKind>(
        &self,
        cert: &Certificate<K>,
        now: u64,
    ) -> Result<VerifiedKey<K>, CertsError> {
        let key = self.check_certificate(cert)?;
        key.check_validity(now)?;
        Ok(key)
    }

    /// Algorithm, issuer and signature of `cert`, not its validity.
    pub(crate) fn check_certificate<K: CertificateKind>(
        &self,
        cert: &Certificate<K>,
    ) -> Result<VerifiedKey<K>, CertsError> {
        self.check_issuer(cert.algorithm(), cert.issuer)?;
        self.0.verify(
            &certificate_body(
                K::TAG,
                &cert.public_key,
                cert.issuer,
                &cert.node_id,
                cert.validity,
            ),
            &cert.signature,
        )?;
        Ok(VerifiedKey {
            public_key: cert.public_key.clone(),
            node_id: cert.node_id.clone(),
            validity: cert.validity,
            kind: PhantomData,
        })
    }

    /// Checks that the pinned root signed `revocation`.
    pub fn verify_revocation(&self, revocation: &Revocation) -> Result<(), CertsError> {
        self.check_issuer(revocation.algorithm, revocation.issuer)?;
        self.0.verify(
            &revocation_body(
                revocation.algorithm,
                revocation.issuer,
                revocation.key_id,
                revocation.revoked_at,
            ),
            &revocation.signature,
        )
    }

    fn check_issuer(&self, algorithm: SignatureAlgorithm, issuer: KeyId) -> Result<(), CertsError> {
        if algorithm != self.algorithm() {
            return Err(CertsError::WrongAlgorithm {
                expected: self.algorithm(),
                found: algorithm,
            });
        }
        if issuer != self.key_id() {
            return Err(CertsError::UnknownIssuer { issuer });
        }
        Ok(())
    }
}

/// "The root revokes this key from this time on." Published as a retained MQTT message;
/// edges apply it through [`super::TrustStore::revoke`].
#[derive(Clone, PartialEq, Eq)]
pub struct Revocation {
    algorithm: SignatureAlgorithm,
    issuer: KeyId,
    key_id: KeyId,
    revoked_at: u64,
    signature: Vec<u8>,
}

impl fmt::Debug for Revocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revocation")
            .field("algorithm", &self.algorithm)
            .field("issuer", &format_args!("{}", self.issuer))
            .field("key_id", &format_args!("{}", self.key_id))
            .field("revoked_at", &self.revoked_at)
            .field("signature_len", &self.signature.len())
            .finish()
    }
}

fn revocation_body(
    algorithm: SignatureAlgorithm,
    issuer: KeyId,
    key_id: KeyId,
    revoked_at: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(REVOCATION_TAG.len() + 42 + signature_len(algorithm));
    out.extend_from_slice(REVOCATION_TAG);
    out.push(VERSION);
    algorithm.write(&mut out);
    issuer.write(&mut out);
    key_id.write(&mut out);
    out.extend_from_slice(&revoked_at.to_be_bytes());
    out
}

impl Revocation {
    /// The revoked key.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// From when on (unix seconds).
    pub fn revoked_at(&self) -> u64 {
        self.revoked_at
    }

    /// The key id of the root that signed it.
    pub fn issuer(&self) -> KeyId {
        self.issuer
    }

    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = revocation_body(self.algorithm, self.issuer, self.key_id, self.revoked_at);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Strict decoding of [`Revocation::encode`]'s output; never panics. Does not check the
    /// signature (see [`RootPublicKey::verify_revocation`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, CertsError> {
        let mut r = Reader::new(REVOCATION, bytes);
        r.tag(REVOCATION_TAG)?;
        r.version(VERSION)?;
        let algorithm = r.read()?;
        let issuer = r.read()?;
        let key_id = r.read()?;
        let revoked_at = r.u64("revoked at")?;
        let signature = r.take(signature_len(algorithm), "signature")?.to_vec();
        r.finish()?;
        Ok(Revocation {
            algorithm,
            issuer,
            key_id,
            revoked_at,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::SigningKey;
    use proptest::prelude::*;

    const NOW: u64 = 1_800_000_000;

    fn node(s: &str) -> NodeId {
        NodeId::new(s).expect("valid node id")
    }

    fn certified(algorithm: SignatureAlgorithm) -> (RootKey, SigningKey, IngestCertificate) {
        let root = RootKey::generate(algorithm).expect("root");
        let ingest = SigningKey::generate(algorithm).expect("ingest");
        let cert = root
            .certify(
                ingest.public_key(),
                node("ingest1"),
                Validity::new(NOW - 10, NOW + 3600).expect("valid"),
            )
            .expect("same algorithm");
        (root, ingest, cert)
    }

    #[test]
    fn certificates_round_trip_and_verify_for_both_algorithms() {
        for algorithm in [SignatureAlgorithm::MlDsa65, SignatureAlgorithm::Ed25519] {
            let (root, ingest, cert) = certified(algorithm);
            let bytes = cert.encode();
            let decoded = IngestCertificate::decode(&bytes).expect("decodes");
            assert_eq!(decoded, cert);
            assert_eq!(decoded.encode(), bytes);
            assert_eq!(decoded.version(), 1);
            assert_eq!(decoded.key_id(), ingest.key_id());
            assert_eq!(decoded.issuer(), root.key_id());
            assert_eq!(decoded.node_id().as_str(), "ingest1");

            let key = root
                .public_key()
                .verify_certificate(&decoded, NOW)
                .expect("trusted");
            assert_eq!(key.key_id(), ingest.key_id());
            key.verify(b"statement", &ingest.sign(b"statement"))
                .expect("verifies");
            assert!(matches!(
                key.verify(b"statemenT", &ingest.sign(b"statement")),
                Err(CertsError::BadSignature)
            ));
        }
    }

    #[test]
    fn validity_is_checked_at_both_ends() {
        let (root, _, cert) = certified(SignatureAlgorithm::Ed25519);
        let pinned = root.public_key();
        pinned
            .verify_certificate(&cert, NOW - 10)
            .expect("first second");
        pinned
            .verify_certificate(&cert, NOW + 3600)
            .expect("last second");
        let early = pinned
            .verify_certificate(&cert, NOW - 11)
            .expect_err("early");
        assert!(matches!(early, CertsError::NotYetValid { .. }), "{early}");
        let late = pinned
            .verify_certificate(&cert, NOW + 3601)
            .expect_err("late");
        assert!(matches!(late, CertsError::Expired { .. }), "{late}");
        assert_eq!(late.reason(), "expired_key");
        assert!(Validity::new(5, 4).is_err());
        assert_eq!(
            Validity::starting_at(u64::MAX - 1, Duration::from_secs(10)).not_after(),
            u64::MAX
        );
    }

    #[test]
    fn another_roots_certificate_is_refused() {
        let (_, _, cert) = certified(SignatureAlgorithm::Ed25519);
        let other_root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
        let err = other_root
            .public_key()
            .verify_certificate(&cert, NOW)
            .expect_err("not ours");
        assert!(matches!(err, CertsError::UnknownIssuer { .. }), "{err}");

        // A forger who claims our root as issuer still cannot produce its signature.
        let (root, _, _) = certified(SignatureAlgorithm::Ed25519);
        let mut forged = cert.encode();
        let issuer_at = CERTIFICATE_TAG.len() + 2 + 16; // tag, version, algorithm, key id
        forged[issuer_at..issuer_at + 16].copy_from_slice(&root.key_id().0);
        let forged = IngestCertificate::decode(&forged).expect("well formed");
        let err = root
            .public_key()
            .verify_certificate(&forged, NOW)
            .expect_err("forged");
        assert!(matches!(err, CertsError::BadSignature), "{err}");
    }

    #[test]
    fn a_key_of_another_algorithm_is_refused() {
        let root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
        let ml = SigningKey::generate(SignatureAlgorithm::MlDsa65).expect("key");
        let validity = Validity::new(0, u64::MAX).expect("valid");
        assert!(matches!(
            root.certify(ml.public_key(), node("ingest1"), validity),
            Err(CertsError::WrongAlgorithm { .. })
        ));
        // An ML-DSA cluster's certificate shown to an Ed25519-pinned edge.
        let ml_root = RootKey::generate(SignatureAlgorithm::MlDsa65).expect("root");
        let cert = ml_root
            .certify(ml.public_key(), node("ingest1"), validity)
            .expect("same algorithm");
        assert!(matches!(
            root.public_key().verify_certificate(&cert, NOW),
            Err(CertsError::WrongAlgorithm { .. })
        ));
    }

    #[test]
    fn every_flipped_bit_of_a_certificate_is_caught() {
        let (root, _, cert) = certified(SignatureAlgorithm::Ed25519);
        let pinned = root.public_key();
        let bytes = cert.encode();
        for i in 0..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut bad = bytes.clone();
                bad[i] ^= bit;
                let accepted = IngestCertificate::decode(&bad)
                    .and_then(|c| pinned.verify_certificate(&c, NOW))
                    .is_ok();
                assert!(!accepted, "byte {i} bit {bit:#x} changed yet accepted");
            }
        }
    }

    #[test]
    fn a_flipped_ml_dsa_certificate_signature_is_a_bad_signature() {
        let (root, _, cert) = certified(SignatureAlgorithm::MlDsa65);
        let mut bytes = cert.encode();
        let last = bytes.len() - 100;
        bytes[last] ^= 0x04;
        let cert = IngestCertificate::decode(&bytes).expect("still well formed");
        assert!(matches!(
            root.public_key().verify_certificate(&cert, NOW),
            Err(CertsError::BadSignature)
        ));
    }

    #[test]
    fn decoding_is_strict() {
        let (_, _, cert) = certified(SignatureAlgorithm::Ed25519);
        let bytes = cert.encode();
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(IngestCertificate::decode(&longer).is_err());
        assert!(IngestCertificate::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut version_2 = bytes.clone();
        version_2[CERTIFICATE_TAG.len()] = 2;
        assert!(matches!(
            IngestCertificate::decode(&version_2),
            Err(CertsError::Malformed {
                reason: "unsupported version",
                ..
            })
        ));
        // A key id that does not belong to the key is refused before any signature check.
        let mut wrong_id = bytes;
        wrong_id[CERTIFICATE_TAG.len() + 2] ^= 1;
        assert!(matches!(
            IngestCertificate::decode(&wrong_id),
            Err(CertsError::Malformed {
                reason: "key id does not match the public key",
                ..
            })
        ));
    }

    #[test]
    fn revocations_round_trip_and_only_our_root_can_revoke() {
        let (root, ingest, _) = certified(SignatureAlgorithm::Ed25519);
        let revocation = root.revoke(ingest.key_id(), NOW);
        let decoded = Revocation::decode(&revocation.encode()).expect("decodes");
        assert_eq!(decoded, revocation);
        assert_eq!(decoded.key_id(), ingest.key_id());
        assert_eq!(decoded.revoked_at(), NOW);
        root.public_key()
            .verify_revocation(&decoded)
            .expect("root-signed");

        let stranger = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
        assert!(root
            .public_key()
            .verify_revocation(&stranger.revoke(ingest.key_id(), NOW))
            .is_err());

        let mut tampered = revocation.encode();
        let at = REVOCATION_TAG.len() + 2 + 16 + 16 + 7;
        tampered[at] ^= 1; // revoked_at moved by a second
        let tampered = Revocation::decode(&tampered).expect("well formed");
        assert!(matches!(
            root.public_key().verify_revocation(&tampered),
            Err(CertsError::BadSignature)
        ));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = IngestCertificate::decode(&bytes);
            let _ = Revocation::decode(&bytes);
        }

        #[test]
        fn decoding_a_valid_header_with_arbitrary_rest_never_panics(
            algorithm in 0u8..4,
            rest in proptest::collection::vec(any::<u8>(), 0..4096),
        ) {
            let mut cert = CERTIFICATE_TAG.to_vec();
            cert.extend_from_slice(&[VERSION, algorithm]);
            cert.extend_from_slice(&rest);
            let _ = IngestCertificate::decode(&cert);
            let mut revocation = REVOCATION_TAG.to_vec();
            revocation.extend_from_slice(&[VERSION, algorithm]);
            revocation.extend_from_slice(&rest);
            let _ = Revocation::decode(&revocation);
        }
    }
}
