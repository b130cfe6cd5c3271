//! What a validation says: the C2PA status codes, a refusal, the verdicts, and the
//! session keys and co-signature a verified manifest yields.

use crate::signing::{KeyId, SignatureAlgorithm};

/// A refusal's C2PA status code (C2PA 2.3 §15 and §19.7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// `livevideo.init.invalid`
    InitInvalid,
    /// `livevideo.segment.invalid`
    SegmentInvalid,
    /// `livevideo.sessionkey.invalid`
    SessionKeyInvalid,
    /// `signingCredential.untrusted`
    Untrusted,
    /// `signingCredential.expired`
    Expired,
    /// `signingCredential.revoked`
    Revoked,
    /// `io.sealcast.cosignature.mismatch`: sealcast's own co-signature (in the cluster's
    /// algorithm, by a certified ingest key) does not verify.
    CosignatureMismatch,
    /// `claimSignature.mismatch`
    ClaimSignatureMismatch,
    /// `assertion.hashedURI.mismatch`
    HashedUriMismatch,
    /// `assertion.bmffHash.mismatch`
    BmffHashMismatch,
    /// `algorithm.unsupported`: the claim signature's `alg` is neither EdDSA (-8) nor
    /// ES256 (-7); C2PA's other algorithms (ES384/512, PS256/384/512) are not supported.
    AlgorithmUnsupported,
}

impl Code {
    /// The status code as C2PA spells it: what `sealcast verify` prints and the player
    /// reports as a refusal's `reason`.
    pub fn label(self) -> &'static str {
        match self {
            Code::InitInvalid => "livevideo.init.invalid",
            Code::SegmentInvalid => "livevideo.segment.invalid",
            Code::SessionKeyInvalid => "livevideo.sessionkey.invalid",
            Code::Untrusted => "signingCredential.untrusted",
            Code::Expired => "signingCredential.expired",
            Code::Revoked => "signingCredential.revoked",
            Code::CosignatureMismatch => "io.sealcast.cosignature.mismatch",
            Code::ClaimSignatureMismatch => "claimSignature.mismatch",
            Code::HashedUriMismatch => "assertion.hashedURI.mismatch",
            Code::BmffHashMismatch => "assertion.bmffHash.mismatch",
            Code::AlgorithmUnsupported => "algorithm.unsupported",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// A refused init segment or fragment: its code, and a detail for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The status code.
    pub code: Code,
    /// What was wrong.
    pub detail: String,
}

pub(super) fn refuse<T>(code: Code, detail: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        code,
        detail: detail.into(),
    })
}

/// What an init segment says of provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitVerdict {
    /// No C2PA manifest: the rendition's media are not C2PA-signed.
    Unsigned,
    /// A manifest that verified: the claim signer's subject (common name).
    Verified {
        /// Who signed.
        signer: String,
    },
}

/// What a fragment's check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentVerdict {
    /// Its rendition is unsigned: nothing checked.
    Unsigned,
    /// Its VSI verified.
    Verified,
}

/// A public key a COSE_Sign1 is checked with: a claim signer's (Ed25519 or P-256) or a
/// session key's (Ed25519).
#[derive(Debug, Clone)]
pub(super) enum VerifyKey {
    /// Verifies EdDSA (-8).
    Ed25519(ed25519_dalek::VerifyingKey),
    /// Verifies ES256 (-7).
    P256(p256::ecdsa::VerifyingKey),
}

#[derive(Debug, Clone)]
pub(super) struct SessionKey {
    pub(super) kid: Vec<u8>,
    pub(super) key: VerifyKey,
    pub(super) min_sequence: u64,
    /// When it may sign: from, until (unix seconds, inclusive).
    pub(super) window: (u64, u64),
}

/// A manifest's co-signature ((`io.sealcast.cosignature`)): what `LiveValidator::cosignature`
/// hands over, with the message it signs rebuilt from the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// The algorithm it names.
    pub algorithm: SignatureAlgorithm,
    /// The certified ingest key it names.
    pub key_id: KeyId,
    /// What it signs (`cosignature_message` over the assertions before it).
    pub message: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
    /// When the manifest was made (its first session key's `createdAt`): the time the key
    /// must have been valid and unrevoked at.
    pub signed_at: u64,
}
