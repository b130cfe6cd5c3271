//! Segment-signing keys and the chain of trust behind them.
//!
//! The cluster root key certifies each ingest node's signing key (and the broadcast nodes'
//! edge key, which signs only presences); every edge pins the
//! root's public key and admits ingest keys only through root-signed certificates, and
//! drops them again on root-signed revocations. One cluster runs one algorithm, the root's:
//! ML-DSA-65 ([`DEFAULT_ALGORITHM`]) or Ed25519.
//!
//! - `keys`: [`PublicKey`], the root's [`RootKey`] / [`RootPublicKey`], an ingest node's
//!   [`SigningKey`]; [`KeyId`]s derived from public keys.
//! - `cert`: [`IngestCertificate`] and [`Revocation`] with their canonical encodings,
//!   [`Validity`], and [`VerifiedKey`], what a certificate becomes once the root checks out.
//! - `trust`: [`TrustStore`], what an edge consults for every statement signature.
//! - `bundle`: [`TrustBundle`], a store's certificates and revocations as one resource a
//!   viewer fetches to rebuild the same trust from the root alone.
//! - `delegation`: part-key delegations: [`PartKey`], the short-lived Ed25519 key an
//!   ingest signs one run of LL-HLS parts with (vouched for by its certified key), and
//!   [`Delegation`], what a verifier admitted of one.
//! - [`playback`]: what a viewer checks on every fragment it plays (the player's checks in
//!   Rust, for `sealcast verify`), sans-IO.
//! - `presence`: [`PresenceSigner`] and [`PresenceVerifier`]: a broadcast node's presence
//!   signed with its edge key (certified by the root with an [`EdgeCertificate`]), so no
//!   process without one can announce an address for viewers or pushes.
//! - `file`: key and certificate files (private keys mode 0600, every file written
//!   atomically).
//! - `wire`: how the domain's one strict reader ([`domain::wire::Reader`]), which every
//!   decoder here uses, reports a refusal as a [`CertsError`](crate::CertsError).
//!
//! Every signed structure starts with its own domain-separation tag (this module's
//! [`CERTIFICATE_TAG`] and [`REVOCATION_TAG`], the statements' in `domain::wire`), so a
//! signature over one kind of thing never passes for a signature over another.
//!
//! Nothing here touches the network or the clock; times are unix seconds passed in.

mod bundle;
mod cert;
mod delegation;
mod file;
mod keys;
pub mod playback;
mod presence;
mod trust;
mod wire;

pub use bundle::{TrustBundle, BUNDLE_TAG, MAX_ITEMS, MAX_ITEM_LEN};
pub use cert::{
    Certificate, CertificateKind, Edge, EdgeCertificate, Ingest, IngestCertificate, Revocation,
    Validity, VerifiedKey, CERTIFICATE_TAG, EDGE_CERTIFICATE_TAG, REVOCATION_TAG,
};
pub use delegation::{
    Delegation, PartKey, PartScope, DELEGATED_ALGORITHM, DELEGATIONS_PER_LANE, MAX_DELEGATIONS,
};
pub(crate) use keys::signature_len;
#[cfg(any(test, feature = "test-vectors"))]
pub(crate) use keys::KeyPair as TestKeyPair;
pub use keys::{PublicKey, RootKey, RootPublicKey, SigningKey};
pub use presence::{PresenceSigner, PresenceVerifier};
pub use trust::TrustStore;

pub(crate) use file::{io_error, write_atomically, write_new_atomically};

/// The key id and algorithm types are the statements': a statement names its signer by the
/// same [`KeyId`] the certificates and revocations here carry.
pub use domain::wire::{KeyId, SignatureAlgorithm};

/// The algorithm of a cluster that chose none: ML-DSA-65 (FIPS 204).
pub const DEFAULT_ALGORITHM: SignatureAlgorithm = SignatureAlgorithm::MlDsa65;
