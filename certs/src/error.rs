//! The one error type of the certs crate.
//!
//! Variants carry key ids, times and paths, never key material: a private key's bytes are
//! not in any error, `Display` or `Debug` output of this crate.

use std::path::PathBuf;

use domain::wire::{KeyId, SignatureAlgorithm};

/// What can go wrong with keys, certificates, revocations and signatures, segment-signing
/// and TLS alike.
///
/// [`CertsError::reason`] gives the `sealcast_segments_rejected_total{reason}` label of the
/// errors that can stop a segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertsError {
    /// The signature does not verify over the message with the claimed key (including a
    /// signature of the wrong length).
    #[error("bad signature")]
    BadSignature,
    /// No certificate vouches for this key id.
    #[error("unknown signing key {key_id}")]
    UnknownKey {
        /// The key id a statement named.
        key_id: KeyId,
    },
    /// The key's certificate starts later than now (a clock skew or an early announcement).
    #[error("signing key {key_id} is not valid before {not_before} (now {now})")]
    NotYetValid {
        /// The certified key.
        key_id: KeyId,
        /// Start of validity, unix seconds.
        not_before: u64,
        /// The time checked, unix seconds.
        now: u64,
    },
    /// The key's certificate has ended.
    #[error("signing key {key_id} expired at {not_after} (now {now})")]
    Expired {
        /// The certified key.
        key_id: KeyId,
        /// End of validity, unix seconds.
        not_after: u64,
        /// The time checked, unix seconds.
        now: u64,
    },
    /// The root revoked this key.
    #[error("signing key {key_id} revoked as of {revoked_at}")]
    Revoked {
        /// The revoked key.
        key_id: KeyId,
        /// When the revocation took effect, unix seconds.
        revoked_at: u64,
    },
    /// A certificate or key of another algorithm than the cluster's: one cluster runs one
    /// algorithm, so an Ed25519 key can never stand in for an ML-DSA one (no downgrade).
    #[error("wrong algorithm: expected {expected:?}, found {found:?}")]
    WrongAlgorithm {
        /// The algorithm of the pinned root (the cluster's).
        expected: SignatureAlgorithm,
        /// The algorithm presented.
        found: SignatureAlgorithm,
    },
    /// A certificate or revocation names a root other than the pinned one.
    #[error("issued by root {issuer}, not by the pinned root")]
    UnknownIssuer {
        /// The issuer the statement names.
        issuer: KeyId,
    },
    /// A validity period that ends before it starts.
    #[error("invalid validity period: not_after {not_after} is before not_before {not_before}")]
    InvalidValidity {
        /// Start, unix seconds.
        not_before: u64,
        /// End, unix seconds.
        not_after: u64,
    },
    /// Bytes that are not a valid key, certificate or revocation.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A part signed by a delegated key for another stream, publish session or rendition
    /// than the one its delegation names.
    #[error("part key {key_id} was not delegated for this stream, session and rendition")]
    DelegationScope {
        /// The delegated key.
        key_id: KeyId,
    },
    /// A part signed by a delegated key outside the run of segments it was delegated for.
    #[error("part key {key_id} was delegated for segments {first}..={last}, not {sequence}")]
    DelegationExpired {
        /// The delegated key.
        key_id: KeyId,
        /// The part's segment.
        sequence: u64,
        /// The first segment of the run.
        first: u64,
        /// The last segment of the run.
        last: u64,
    },
    /// A presence that is not to be believed: unsigned where a signature is required, about
    /// another node than its topic's, or not a presence at all.
    #[error("presence refused: {reason}")]
    Presence {
        /// Why.
        reason: &'static str,
    },
    /// The operating system's random number generator failed while making a key.
    #[error("the operating system's random number generator failed")]
    Randomness,
    /// A key or certificate file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A key or certificate file was read but its contents are not what was expected.
    #[error("{path}: not a usable {what}: {reason}")]
    FileFormat {
        /// The file.
        path: PathBuf,
        /// What the file should hold.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Half a CA: its certificate without its key or the other way round. A CA is never
    /// replaced on its own (users trust it), so the missing file must be restored, or both
    /// removed to start over with a new CA.
    #[error(
        "{present} exists but {missing} does not; restore it, or remove both to make a new CA"
    )]
    IncompleteCa {
        /// The file that is there.
        present: PathBuf,
        /// The file that is not.
        missing: PathBuf,
    },
    /// A private key that does not belong to the certificate it is paired with.
    #[error("{key} is not the key of the certificate in {certificate}")]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        certificate: PathBuf,
    },
    /// A host name that cannot go into a TLS certificate.
    #[error("invalid host name {name:?}: {reason}")]
    InvalidHostName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The X.509 library could not make a key or certificate (for instance a CA key of an
    /// algorithm it cannot sign with).
    #[error("could not make the {what}: {reason}")]
    CertificateBuild {
        /// What was being made.
        what: &'static str,
        /// The library's explanation.
        reason: String,
    },
    /// Media that C2PA signing could not take (not CMAF as sealcast writes it).
    #[error("C2PA signing: {0}")]
    Provenance(domain::DomainError),
}

impl CertsError {
    /// A short, stable, snake_case label for this error, for metrics and logs.
    ///
    /// The errors [`crate::signing::TrustStore::verify`] can return map onto the brief's
    /// segment rejection reasons: `bad_signature`, `unknown_key`, `expired_key` (also for a
    /// key not valid *yet*: the brief has one label for "outside its validity") and
    /// `revoked_key`; [`crate::signing::TrustStore::verify_part`] adds the parts' own
    /// `unknown_delegation` and `expired_delegation` (counted under
    /// `sealcast_parts_rejected_total` only). The other variants only arise while loading
    /// keys or admitting certificates and revocations; their labels are not rejection
    /// reasons and must not be counted under `sealcast_segments_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadSignature => "bad_signature",
            Self::UnknownKey { .. } => "unknown_key",
            Self::NotYetValid { .. } | Self::Expired { .. } => "expired_key",
            Self::Revoked { .. } => "revoked_key",
            Self::DelegationScope { .. } => "unknown_delegation",
            Self::DelegationExpired { .. } => "expired_delegation",
            Self::WrongAlgorithm { .. } => "wrong_algorithm",
            Self::UnknownIssuer { .. } => "unknown_issuer",
            Self::InvalidValidity { .. } => "invalid_validity",
            Self::Malformed { .. } => "malformed",
            Self::Presence { .. } => "presence",
            Self::Randomness => "randomness",
            Self::File { .. } => "file",
            Self::FileFormat { .. } => "file_format",
            Self::IncompleteCa { .. } => "incomplete_ca",
            Self::KeyMismatch { .. } => "key_mismatch",
            Self::InvalidHostName { .. } => "invalid_host_name",
            Self::CertificateBuild { .. } => "certificate_build",
            Self::Provenance(_) => "provenance",
        }
    }
}
