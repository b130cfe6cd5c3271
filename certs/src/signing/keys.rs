//! Keys of both algorithms: [`PublicKey`], the root's pair ([`RootKey`],
//! [`RootPublicKey`]) and an ingest node's private [`SigningKey`].
//!
//! A private key is its 32-byte seed: the Ed25519 secret key, or ML-DSA's ξ from which
//! FIPS 204 `KeyGen_internal` derives the whole key pair. Keeping only the seed makes key
//! files small and means a loaded key can never have halves that do not match. Seeds live
//! in [`Zeroizing`] buffers and the expanded keys zeroize themselves on drop; `Debug` shows
//! the algorithm and key id, never secret bytes.

use std::fmt;

use domain::wire::{EventStatement, KeyId, SignatureAlgorithm, SignedEvent};
use fips204::ml_dsa_65;
use fips204::traits::{KeyGen, SerDes, Signer, Verifier};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::CertsError;

/// ML-DSA context string (FIPS 204 §5.2): binds every ML-DSA signature to this protocol.
/// Ed25519 has no context; for both algorithms the domain tag at the start of every signed
/// structure (statement, certificate, revocation) keeps one kind from passing for another.
const MLDSA_CONTEXT: &[u8] = b"sealcast/v1";

/// Length of a private key seed, both algorithms.
pub(crate) const SEED_LEN: usize = 32;

/// Length of a public key of `algorithm`: the encodings have no length prefixes.
pub(crate) fn public_key_len(algorithm: SignatureAlgorithm) -> usize {
    match algorithm {
        SignatureAlgorithm::MlDsa65 => ml_dsa_65::PK_LEN,
        SignatureAlgorithm::Ed25519 => ed25519_dalek::PUBLIC_KEY_LENGTH,
    }
}

/// Length of a signature of `algorithm`.
pub(crate) fn signature_len(algorithm: SignatureAlgorithm) -> usize {
    match algorithm {
        SignatureAlgorithm::MlDsa65 => ml_dsa_65::SIG_LEN,
        SignatureAlgorithm::Ed25519 => ed25519_dalek::SIGNATURE_LENGTH,
    }
}

/// The parsed form, kept so that verifying does not re-parse the key every time.
#[derive(Clone)]
enum ParsedPublic {
    // Boxed: the expanded ML-DSA key is several kilobytes.
    MlDsa65(Box<ml_dsa_65::PublicKey>),
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A public key of either algorithm: an ingest node's (what the root certifies) or, wrapped
/// in [`RootPublicKey`], the root's.
#[derive(Clone)]
pub struct PublicKey {
    algorithm: SignatureAlgorithm,
    /// The canonical encoding: what certificates carry and the key id hashes.
    bytes: Vec<u8>,
    /// Derived from `algorithm` and `bytes` once, as every lookup needs it.
    key_id: KeyId,
    parsed: ParsedPublic,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && self.bytes == other.bytes
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm)
            .field("key_id", &format_args!("{}", self.key_id))
            .finish()
    }
}

/// First 16 bytes of SHA-256(algorithm code ‖ public key): the algorithm is hashed in so that
/// the same bytes under two algorithms could never share an id.
fn key_id_of(algorithm: SignatureAlgorithm, bytes: &[u8]) -> KeyId {
    let digest = Sha256::new()
        .chain_update([algorithm.code()])
        .chain_update(bytes)
        .finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    KeyId(id)
}

impl PublicKey {
    /// Parses the canonical encoding of a public key of `algorithm`, refusing a wrong
    /// length and, for Ed25519, bytes that are not a point or are a weak (small-order) key.
    pub fn from_bytes(algorithm: SignatureAlgorithm, bytes: &[u8]) -> Result<Self, CertsError> {
        let malformed = |reason| CertsError::Malformed {
            what: "public key",
            reason,
        };
        let parsed = match algorithm {
            SignatureAlgorithm::MlDsa65 => {
                let array = <[u8; ml_dsa_65::PK_LEN]>::try_from(bytes)
                    .map_err(|_| malformed("wrong length for ML-DSA-65"))?;
                let key = ml_dsa_65::PublicKey::try_from_bytes(array)
                    .map_err(|_| malformed("not an ML-DSA-65 public key"))?;
                ParsedPublic::MlDsa65(Box::new(key))
            }
            SignatureAlgorithm::Ed25519 => {
                let array = <[u8; ed25519_dalek::PUBLIC_KEY_LENGTH]>::try_from(bytes)
                    .map_err(|_| malformed("wrong length for Ed25519"))?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&array)
                    .map_err(|_| malformed("not an Ed25519 point"))?;
                if key.is_weak() {
                    return Err(malformed("weak Ed25519 key"));
                }
                ParsedPublic::Ed25519(key)
            }
        };
        Ok(PublicKey {
            algorithm,
            bytes: bytes.to_vec(),
            key_id: key_id_of(algorithm, bytes),
            parsed,
        })
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The id statements, certificates and revocations name this key by.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The canonical encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Checks `signature` over `message`. Ed25519 uses strict verification (no malleable
    /// signatures, no small-order points), ML-DSA the sealcast context string.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), CertsError> {
        let valid = match &self.parsed {
            ParsedPublic::MlDsa65(key) => <[u8; ml_dsa_65::SIG_LEN]>::try_from(signature)
                .is_ok_and(|sig| key.verify(message, &sig, MLDSA_CONTEXT)),
            ParsedPublic::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify_strict(message, &sig).is_ok()),
        };
        if valid {
            Ok(())
        } else {
            Err(CertsError::BadSignature)
        }
    }
}

/// The expanded private half.
/// Both boxed: the expanded ML-DSA key (with precomputed NTT forms) is tens of kilobytes,
/// and a boxed secret is not copied around when the key pair moves.
enum ParsedPrivate {
    MlDsa65(Box<ml_dsa_65::PrivateKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// A private key of either algorithm with its public half; the shared inside of
/// [`RootKey`] and [`SigningKey`], which differ only in what they may sign.
pub(crate) struct KeyPair {
    seed: Zeroizing<[u8; SEED_LEN]>,
    private: ParsedPrivate,
    public: PublicKey,
}

impl KeyPair {
    fn generate(algorithm: SignatureAlgorithm) -> Result<Self, CertsError> {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        OsRng
            .try_fill_bytes(&mut seed[..])
            .map_err(|_| CertsError::Randomness)?;
        Ok(Self::from_seed(algorithm, seed))
    }

    /// Every seed is a valid key for both algorithms, so this cannot fail.
    pub(crate) fn from_seed(
        algorithm: SignatureAlgorithm,
        seed: Zeroizing<[u8; SEED_LEN]>,
    ) -> Self {
        let (private, public_bytes, parsed_public) = match algorithm {
            SignatureAlgorithm::MlDsa65 => {
                let (public, private) = ml_dsa_65::KG::keygen_from_seed(&seed);
                let bytes = public.clone().into_bytes().to_vec();
                (
                    ParsedPrivate::MlDsa65(Box::new(private)),
                    bytes,
                    ParsedPublic::MlDsa65(Box::new(public)),
                )
            }
            SignatureAlgorithm::Ed25519 => {
                let private = ed25519_dalek::SigningKey::from_bytes(&seed);
                let public = private.verifying_key();
                (
                    ParsedPrivate::Ed25519(Box::new(private)),
                    public.as_bytes().to_vec(),
                    ParsedPublic::Ed25519(public),
                )
            }
        };
        let public = PublicKey {
            algorithm,
            key_id: key_id_of(algorithm, &public_bytes),
            bytes: public_bytes,
            parsed: parsed_public,
        };
        KeyPair {
            seed,
            private,
            public,
        }
    }

    pub(crate) fn seed(&self) -> &[u8; SEED_LEN] {
        &self.seed
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.private {
            ParsedPrivate::MlDsa65(key) => {
                // FIPS 204's deterministic variant (Algorithm 2, line 5: rnd = 0³²): the
                // same bytes signed again give the same signature, as C2PA 2.4 §13.2.1 asks
                // of streaming signers so caches are not defeated (a re-signed sidecar or
                // manifest is byte for byte the one a cache holds). Ed25519 is deterministic
                // too. The hedged variant's fresh randomness guards against fault and
                // side-channel attacks on the signer's own machine; the ingest's key sits on
                // a machine that also holds its other secrets, so that is the trade taken.
                let rnd = [0u8; 32];
                match key.try_sign_with_seed(&rnd, message, MLDSA_CONTEXT) {
                    Ok(signature) => signature.to_vec(),
                    // The context is a short constant, so the only error left is FIPS 204's
                    // bound of 814 rejection rounds, which only a malformed private key
                    // reaches, and ours all come from `keygen_from_seed`. Were it ever
                    // reached, an empty signature fails closed: every verifier refuses it.
                    Err(_) => Vec::new(),
                }
            }
            ParsedPrivate::Ed25519(key) => ed25519_dalek::Signer::sign(key.as_ref(), message)
                .to_bytes()
                .to_vec(),
        }
    }
}

/// Shared `Debug` for private keys: which key, never its bytes.
fn debug_private(name: &str, pair: &KeyPair, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct(name)
        .field("algorithm", &pair.public.algorithm)
        .field("key_id", &format_args!("{}", pair.public.key_id))
        .field("private", &format_args!("<redacted>"))
        .finish()
}

/// The cluster root's private key: it certifies ingest keys and revokes them, and signs
/// nothing else. Kept offline or in the operator's data directory, never on an edge.
pub struct RootKey(pub(crate) KeyPair);

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_private("RootKey", &self.0, f)
    }
}

impl RootKey {
    /// A new root key of `algorithm` from the operating system's random number generator.
    /// The algorithm chosen here is the cluster's: every certified key must share it.
    pub fn generate(algorithm: SignatureAlgorithm) -> Result<Self, CertsError> {
        KeyPair::generate(algorithm).map(RootKey)
    }

    /// The cluster's algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.0.public.algorithm
    }

    /// The root's key id; certificates and revocations name their issuer by it.
    pub fn key_id(&self) -> KeyId {
        self.0.public.key_id
    }

    /// What every edge pins.
    pub fn public_key(&self) -> RootPublicKey {
        RootPublicKey(self.0.public.clone())
    }
}

/// The root's public key: the one piece of trust an edge is configured with; everything
/// else (ingest certificates, revocations) it learns over MQTT and checks against this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootPublicKey(pub(crate) PublicKey);

impl RootPublicKey {
    /// Parses a root public key (see also [`RootPublicKey::read_file`]).
    pub fn from_bytes(algorithm: SignatureAlgorithm, bytes: &[u8]) -> Result<Self, CertsError> {
        PublicKey::from_bytes(algorithm, bytes).map(RootPublicKey)
    }

    /// The cluster's algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.0.algorithm
    }

    /// The root's key id.
    pub fn key_id(&self) -> KeyId {
        self.0.key_id
    }

    /// The key itself.
    pub fn public_key(&self) -> &PublicKey {
        &self.0
    }
}

/// An ingest node's private key: signs segment statements. Its public half goes to the root
/// to be certified.
pub struct SigningKey(pub(crate) KeyPair);

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_private("SigningKey", &self.0, f)
    }
}

impl SigningKey {
    /// A new signing key of `algorithm` from the operating system's random number generator.
    pub fn generate(algorithm: SignatureAlgorithm) -> Result<Self, CertsError> {
        KeyPair::generate(algorithm).map(SigningKey)
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.0.public.algorithm
    }

    /// The key id statements signed with this key carry.
    pub fn key_id(&self) -> KeyId {
        self.0.public.key_id
    }

    /// The public half, for [`RootKey::certify`].
    pub fn public_key(&self) -> &PublicKey {
        &self.0.public
    }

    /// Signs a control event's bytes (`body`, JSON of a `domain::push_protocol::ControlEvent`),
    /// stating `issued_at_ms` (unix milliseconds) as the time of signing.
    pub fn sign_event(&self, body: Vec<u8>, issued_at_ms: u64) -> SignedEvent {
        let statement = EventStatement {
            algorithm: self.algorithm(),
            key_id: self.key_id(),
            issued_at_ms,
            body,
        };
        SignedEvent::sign(&statement, |bytes| self.sign(bytes))
    }

    /// Signs `message` (a segment statement's canonical bytes). ML-DSA-65 signatures are
    /// 3309 bytes, Ed25519 signatures 64 bytes; both deterministic (the same message gives
    /// the same signature).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: [SignatureAlgorithm; 2] =
        [SignatureAlgorithm::MlDsa65, SignatureAlgorithm::Ed25519];

    #[test]
    fn signing_the_same_bytes_again_gives_the_same_signature() {
        for algorithm in BOTH {
            let key = SigningKey::generate(algorithm).expect("key");
            assert_eq!(key.sign(b"a statement"), key.sign(b"a statement"));
            assert_ne!(key.sign(b"a statement"), key.sign(b"another statement"));
        }
    }

    #[test]
    fn sign_and_verify_round_trip_and_bit_flips_fail() {
        for algorithm in BOTH {
            let key = SigningKey::generate(algorithm).expect("key");
            let public = key.public_key();
            let message = b"sealcast/v1/segment-manifest\0 stand-in";
            let signature = key.sign(message);
            assert_eq!(signature.len(), signature_len(algorithm));
            public.verify(message, &signature).expect("verifies");

            let mut message_flipped = message.to_vec();
            message_flipped[3] ^= 0x10;
            assert!(matches!(
                public.verify(&message_flipped, &signature),
                Err(CertsError::BadSignature)
            ));
            for i in [0, signature.len() / 2, signature.len() - 1] {
                let mut sig_flipped = signature.clone();
                sig_flipped[i] ^= 0x01;
                assert!(
                    matches!(
                        public.verify(message, &sig_flipped),
                        Err(CertsError::BadSignature)
                    ),
                    "{algorithm:?} byte {i}"
                );
            }
            assert!(matches!(
                public.verify(message, &signature[1..]),
                Err(CertsError::BadSignature)
            ));
            assert!(matches!(
                public.verify(message, &[]),
                Err(CertsError::BadSignature)
            ));
        }
    }

    #[test]
    fn another_keys_signature_does_not_verify() {
        let a = SigningKey::generate(SignatureAlgorithm::Ed25519).expect("key");
        let b = SigningKey::generate(SignatureAlgorithm::Ed25519).expect("key");
        assert_ne!(a.key_id(), b.key_id());
        assert!(b.public_key().verify(b"m", &a.sign(b"m")).is_err());
    }

    #[test]
    fn public_keys_parse_back_and_wrong_sizes_are_refused() {
        for algorithm in BOTH {
            let key = SigningKey::generate(algorithm).expect("key");
            let bytes = key.public_key().as_bytes();
            assert_eq!(bytes.len(), public_key_len(algorithm));
            let back = PublicKey::from_bytes(algorithm, bytes).expect("parses");
            assert_eq!(&back, key.public_key());
            assert_eq!(back.key_id(), key.key_id());
            assert!(PublicKey::from_bytes(algorithm, &bytes[1..]).is_err());
        }
        // The Ed25519 identity point is a valid encoding but a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey::from_bytes(SignatureAlgorithm::Ed25519, &identity).is_err());
    }

    #[test]
    fn key_ids_bind_the_algorithm() {
        let bytes = [7u8; 32];
        assert_ne!(
            key_id_of(SignatureAlgorithm::Ed25519, &bytes),
            key_id_of(SignatureAlgorithm::MlDsa65, &bytes)
        );
    }

    #[test]
    fn the_same_seed_makes_the_same_key() {
        for algorithm in BOTH {
            let a = KeyPair::from_seed(algorithm, Zeroizing::new([5; SEED_LEN]));
            let b = KeyPair::from_seed(algorithm, Zeroizing::new([5; SEED_LEN]));
            assert_eq!(a.public, b.public);
            b.public.verify(b"x", &a.sign(b"x")).expect("same key");
        }
    }

    #[test]
    fn debug_of_private_keys_shows_no_key_bytes() {
        for algorithm in BOTH {
            let root = RootKey::generate(algorithm).expect("key");
            let signing = SigningKey::generate(algorithm).expect("key");
            for (debug, seed) in [
                (format!("{root:?}"), root.0.seed()),
                (format!("{signing:?}"), signing.0.seed()),
                (format!("{root:#?}"), root.0.seed()),
            ] {
                assert!(debug.contains("<redacted>"), "{debug}");
                let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
                assert!(!debug.contains(&hex), "{debug}");
                assert!(!debug.contains(&format!("{seed:?}")), "{debug}");
                assert!(!debug.contains(&format!("{:?}", &seed[..4])), "{debug}");
            }
        }
    }
}
