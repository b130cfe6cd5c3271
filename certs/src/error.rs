//! The one error type of the certs crate.

use std::path::PathBuf;

/// What can go wrong with keys, certificates and signatures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertsError {
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// No trusted certificate for this key id.
    #[error("unknown signing key")]
    UnknownKey,
    /// The key's certificate is not valid at this time (expired or not yet valid).
    #[error("signing key outside its validity period")]
    ExpiredKey,
    /// The key was revoked by the root.
    #[error("signing key revoked")]
    RevokedKey,
    /// A certificate or revocation was signed by a root other than the pinned one.
    #[error("signed by an untrusted root")]
    UntrustedRoot,
    /// Bytes that are not a valid key, certificate or revocation; says what is wrong.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being parsed.
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The cryptography library refused (for example, no randomness).
    #[error("cryptography failed: {0}")]
    Crypto(&'static str),
    /// A key file could not be read or written.
    #[error("key file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl CertsError {
    /// The `sealcast_segments_rejected_total{reason}` label this error counts under, if it
    /// is a rejection reason of the brief.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Self::BadSignature | Self::UntrustedRoot => Some("bad_signature"),
            Self::UnknownKey => Some("unknown_key"),
            Self::ExpiredKey => Some("expired_key"),
            Self::RevokedKey => Some("revoked_key"),
            _ => None,
        }
    }
}
