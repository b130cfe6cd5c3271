//! A C2PA 2.3 live-video validator (§19.7.3, the VSI method) for viewers who pin only the
//! cluster's root: `sealcast verify`, and the rules `web/src/verify.js` follows too
//! (both run [`super::vectors`]).
//!
//! Per rendition, one [`LiveValidator`]: the init segment first ([`LiveValidator::admit_init`]),
//! then each segment or part ([`LiveValidator::check_fragment`]). An init segment without
//! a C2PA manifest makes the rendition [`InitVerdict::Unsigned`] (media from a key
//! directory older than provenance): nothing of it is checked here. Otherwise the checks
//! run in a fixed order and the first failure names the refusal's [`Code`]:
//!
//! 1. the manifest store parses and the init segment has no `mdat` (`livevideo.init.invalid`);
//! 2. the manifest's [`ANCHOR_ASSERTION`] verifies under the pinned root
//!    (`signingCredential.untrusted`);
//! 3. the claim signature's `x5chain` holds the anchored CA, and the CA signed the claim
//!    signer's certificate; both valid now (`signingCredential.untrusted`, or
//!    `signingCredential.expired` for time alone);
//!
//!    A validator given C2PA trust anchors ([`LiveValidator::with_trust_anchors`]) takes
//!    a manifest without a provenance anchor (one signed by others: c2pa-rs, a certificate
//!    of the C2PA trust list) through those instead of steps 2 and 3: the claim signer
//!    (claim-signing EKU, not a CA) and each certificate after it in `x5chain` must each
//!    have been signed by the next (a CA), until one was signed by an anchor (a CA); all
//!    valid now (module `chain`). A manifest that carries a provenance anchor is held to it.
//! 4. the claim signature (`claimSignature.mismatch`);
//! 5. every assertion's hash in the claim (`assertion.hashedURI.mismatch`);
//! 6. the init segment's `c2pa.hash.bmff.v3` (`assertion.bmffHash.mismatch`);
//! 7. every session key's signer binding (`livevideo.sessionkey.invalid`).
//!
//! A verified manifest's claim signer and CA can be revoked by the root like any key,
//! under their credential ids ([`super::credential_id`]); the caller re-checks them as
//! revocations arrive ([`LiveValidator::check_revocation`], `signingCredential.revoked`).
//!
//! A fragment must open with a VSI `emsg` whose COSE_Sign1, by a session key of the
//! manifest, signs its sequence number (the first `moof`'s, at least the key's
//! `minSequenceNumber`, above the last one verified of the same kind), the manifest's id
//! and the BMFF hash of the fragment without its VSIs, issued within the key's validity
//! (`livevideo.segment.invalid`).

use domain::c2pa::decode::{self, Value};
use domain::c2pa::manifest::{
    cosignature_message, BMFF_HASH_LABEL, COSIGNATURE_LABEL, SESSION_KEYS_LABEL,
};
use domain::c2pa::{bmff, cose, read, vsi};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

mod chain;

pub use chain::trust_anchors_from_pem;
use chain::valid_at;

use super::{credential_id, ProvenanceAnchor, ANCHOR_ASSERTION};
use crate::signing::RootPublicKey;
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

fn refuse<T>(code: Code, detail: impl Into<String>) -> Result<T, Refusal> {
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

#[derive(Debug, Clone)]
struct SessionKey {
    kid: Vec<u8>,
    key: ed25519_dalek::VerifyingKey,
    min_sequence: u64,
    /// When it may sign: from, until (unix seconds, inclusive).
    window: (u64, u64),
}

#[derive(Debug, Clone)]
enum State {
    NoInit,
    Unsigned,
    Refused,
    Signed {
        label: String,
        keys: Vec<SessionKey>,
        last_segment: Option<u32>,
        last_part: Option<u32>,
    },
}

/// One rendition's validator (see the module's rules).
#[derive(Debug, Clone)]
pub struct LiveValidator {
    root: RootPublicKey,
    /// C2PA trust anchors (CA certificates, DER) for manifests without a provenance
    /// anchor; none for [`LiveValidator::new`].
    anchors: Vec<Vec<u8>>,
    state: State,
    /// The credential ids ([`super::credential_id`]) of the verified manifest's claim
    /// signer and CA: what [`LiveValidator::check_revocation`] looks up.
    credentials: Vec<KeyId>,
    /// The verified manifest's co-signature, for the caller to check against the keys the
    /// root certified.
    cosignature: Option<Cosignature>,
}

/// A manifest's co-signature ([`COSIGNATURE_LABEL`]): what [`LiveValidator::cosignature`]
/// hands over, with the message it signs rebuilt from the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// The algorithm it names.
    pub algorithm: SignatureAlgorithm,
    /// The certified ingest key it names.
    pub key_id: KeyId,
    /// What it signs ([`cosignature_message`] over the assertions before it).
    pub message: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
    /// When the manifest was made (its first session key's `createdAt`): the time the key
    /// must have been valid and unrevoked at.
    pub signed_at: u64,
}

impl LiveValidator {
    /// A validator trusting what chains to `root`.
    pub fn new(root: RootPublicKey) -> Self {
        Self::with_trust_anchors(root, Vec::new())
    }

    /// A validator trusting what chains to `root` through a provenance anchor, and claim
    /// signers that chain to one of `anchors` (C2PA trust anchors: CA certificates, DER)
    /// in manifests without one: streams signed by others (see the module's rules).
    pub fn with_trust_anchors(root: RootPublicKey, anchors: Vec<Vec<u8>>) -> Self {
        LiveValidator {
            root,
            anchors,
            state: State::NoInit,
            credentials: Vec::new(),
            cosignature: None,
        }
    }

    /// Checks an init segment at `now` (unix seconds); what follows is checked against it.
    pub fn admit_init(&mut self, init: &[u8], now: u64) -> Result<InitVerdict, Refusal> {
        self.state = State::Refused;
        self.credentials.clear();
        self.cosignature = None;
        // Unsigned unless a C2PA box is found among the boxes that parse: bytes that are
        // not BMFF carry no manifest (their integrity is the statements' business).
        let walked: Vec<_> = bmff::walk(init).map_while(Result::ok).collect();
        if read::manifest_box(&walked).is_none() {
            self.state = State::Unsigned;
            return Ok(InitVerdict::Unsigned);
        }
        let boxes = match bmff::top_level(init) {
            Ok(b) => b,
            Err(e) => return refuse(Code::InitInvalid, e.to_string()),
        };
        let Some(uuid_box) = read::manifest_box(&boxes) else {
            return refuse(Code::InitInvalid, "no manifest");
        };
        if boxes.iter().any(|b| &b.kind == b"mdat") {
            return refuse(Code::InitInvalid, "an init segment with media (mdat)");
        }
        let manifest =
            read::manifest(&uuid_box).or_else(|e| refuse(Code::InitInvalid, e.to_string()))?;
        let trust = if self.anchors.is_empty() || manifest.assertion(ANCHOR_ASSERTION).is_some() {
            Trust::Provenance(self.anchor(&manifest, now)?)
        } else {
            Trust::Anchors(&self.anchors)
        };
        let signer = verify_claim(&manifest, &trust, now)?;
        check_assertion_hashes(&manifest, matches!(trust, Trust::Provenance(_)))?;
        check_init_hash(&manifest, &boxes)?;
        let keys = session_keys(&manifest, &signer.der)?;
        self.credentials = vec![credential_id(&signer.der), credential_id(&signer.ca_der)];
        let signed_at = keys.iter().map(|k| k.window.0).min().unwrap_or_default();
        self.cosignature = cosignature(&manifest, signed_at)?;
        self.state = State::Signed {
            label: manifest.label.to_owned(),
            keys,
            last_segment: None,
            last_part: None,
        };
        Ok(InitVerdict::Verified {
            signer: signer.subject,
        })
    }

    /// The CA certificate digest the manifest's anchor names, once the root's signature
    /// over it verified.
    fn anchor(&self, manifest: &read::FoundManifest<'_>, now: u64) -> Result<[u8; 32], Refusal> {
        let untrusted = |d: &str| Refusal {
            code: Code::Untrusted,
            detail: d.to_owned(),
        };
        let assertion = manifest.assertion(ANCHOR_ASSERTION).ok_or_else(|| {
            untrusted("no provenance anchor: the claim signer does not chain to the root")
        })?;
        let value = decode::read(assertion.cbor).map_err(|e| untrusted(&e.to_string()))?;
        let bytes = value
            .get("anchor")
            .and_then(Value::as_bytes)
            .ok_or_else(|| untrusted("a provenance anchor assertion without its anchor"))?;
        let anchor = ProvenanceAnchor::decode(bytes).map_err(|e| untrusted(&e.to_string()))?;
        self.root
            .verify_anchor(&anchor, now)
            .map_err(|e| untrusted(&format!("the provenance anchor: {e}")))
    }

    /// Checks a segment (`part == false`) or a part's VSI.
    pub fn check_fragment(&mut self, bytes: &[u8], part: bool) -> Result<FragmentVerdict, Refusal> {
        let (label, keys, last) = match &mut self.state {
            State::Unsigned => return Ok(FragmentVerdict::Unsigned),
            State::NoInit => {
                return refuse(Code::SegmentInvalid, "no init segment verified before it")
            }
            State::Refused => return refuse(Code::SegmentInvalid, "its init segment was refused"),
            State::Signed {
                label,
                keys,
                last_segment,
                last_part,
            } => (label, keys, if part { last_part } else { last_segment }),
        };
        let bad = |d: &str| Refusal {
            code: Code::SegmentInvalid,
            detail: d.to_owned(),
        };
        let found = read::vsi(bytes)
            .map_err(|e| bad(&e.to_string()))?
            .ok_or_else(|| bad("no VSI emsg"))?;
        let sign1 = Sign1::read(found.message).ok_or_else(|| bad("its VSI is not a COSE_Sign1"))?;
        let payload = sign1.payload.ok_or_else(|| bad("its VSI has no payload"))?;
        let kid = sign1
            .unprotected
            .get_int(cose::HEADER_KID as i64)
            .and_then(Value::as_bytes)
            .ok_or_else(|| bad("its VSI names no key"))?;
        let key = keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| bad("its VSI names a key the manifest does not hold"))?;
        if !sign1.verify(&key.key) {
            return Err(bad("its VSI's signature does not verify"));
        }
        let iat = sign1
            .protected
            .get("iat")
            .and_then(Value::as_uint)
            .ok_or_else(|| bad("its VSI has no iat"))?;
        if iat < key.window.0 || iat > key.window.1 {
            return Err(bad("signed outside its session key's validity"));
        }
        let info = decode::read(payload).map_err(|e| bad(&e.to_string()))?;
        let sequence = info
            .get("sequenceNumber")
            .and_then(Value::as_uint)
            .ok_or_else(|| bad("its VSI has no sequence number"))?;
        if sequence != u64::from(found.sequence) {
            return Err(bad("its VSI's sequence number is not its fragment's"));
        }
        if sequence < key.min_sequence {
            return Err(bad("a sequence number below its key's minimum"));
        }
        if last.is_some_and(|l| found.sequence <= l) {
            return Err(bad(
                "a sequence number not above the last one (replayed or reordered)",
            ));
        }
        if info.get("manifestId").and_then(Value::as_text) != Some(label.as_str()) {
            return Err(bad("its VSI names another manifest"));
        }
        let hash = info
            .get("bmffHash")
            .and_then(|h| h.get("hash"))
            .and_then(Value::as_bytes)
            .ok_or_else(|| bad("its VSI has no hash"))?;
        if hash != bmff::hash_v3(&found.boxes, 0, vsi::is_vsi_emsg) {
            return Err(bad("its bytes do not match its VSI's hash"));
        }
        *last = Some(found.sequence);
        Ok(FragmentVerdict::Verified)
    }

    /// Re-checks the verified manifest's credentials against revocations (C2PA 2.3
    /// §19.7.3 asks validators to during long sessions): `revoked_at` gives when the root
    /// revoked a credential id, if it did ([`super::credential_id`]: the claim signer's
    /// or its CA's). Refused from the revocation's time on; a rendition without a
    /// verified manifest has nothing to re-check.
    pub fn check_revocation(
        &self,
        revoked_at: impl Fn(KeyId) -> Option<u64>,
        now: u64,
    ) -> Result<(), Refusal> {
        for &id in &self.credentials {
            if let Some(at) = revoked_at(id).filter(|&at| at <= now) {
                return refuse(
                    Code::Revoked,
                    format!("the credential {id} was revoked at {at}"),
                );
            }
        }
        Ok(())
    }

    /// The verified manifest's co-signature, if it carries one: the caller checks it
    /// against the ingest keys the root certified (`ViewerTrust::verify_signed`), and
    /// refuses the init segment with [`Code::CosignatureMismatch`] when it does not verify.
    pub fn cosignature(&self) -> Option<&Cosignature> {
        self.cosignature.as_ref()
    }

    /// Forget the continuity of fragments (a discontinuity, or the viewer moved): the next
    /// segment and part may have any sequence number.
    pub fn reposition(&mut self) {
        if let State::Signed {
            last_segment,
            last_part,
            ..
        } = &mut self.state
        {
            *last_segment = None;
            *last_part = None;
        }
    }
}

/// A COSE_Sign1_Tagged as read.
struct Sign1<'a> {
    protected_bytes: &'a [u8],
    protected: Value<'a>,
    unprotected: Value<'a>,
    payload: Option<&'a [u8]>,
    signature: &'a [u8],
}

impl<'a> Sign1<'a> {
    fn read(bytes: &'a [u8]) -> Option<Self> {
        Self::from_value(&decode::read(bytes).ok()?)
    }

    fn from_value(value: &Value<'a>) -> Option<Self> {
        let Value::Tag(cose::TAG_SIGN1, inner) = value else {
            return None;
        };
        let [protected_bytes, unprotected, payload, signature] = inner.as_array()? else {
            return None;
        };
        let protected_bytes = protected_bytes.as_bytes()?;
        let protected = decode::read(protected_bytes).ok()?;
        if protected
            .get_int(cose::HEADER_ALG as i64)
            .and_then(Value::as_int)
            != Some(cose::ALG_EDDSA)
        {
            return None;
        }
        let payload = match payload {
            Value::Null => None,
            Value::Bytes(b) => Some(*b),
            _ => return None,
        };
        Some(Sign1 {
            protected_bytes,
            protected,
            unprotected: unprotected.clone(),
            payload,
            signature: signature.as_bytes()?,
        })
    }

    /// Whether the signature verifies over the attached payload or `detached`.
    fn verify_with(&self, key: &ed25519_dalek::VerifyingKey, detached: Option<&[u8]>) -> bool {
        let Some(payload) = self.payload.or(detached) else {
            return false;
        };
        let tbs = cose::to_be_signed(self.protected_bytes, payload);
        ed25519_dalek::Signature::from_slice(self.signature)
            .is_ok_and(|sig| key.verify_strict(&tbs, &sig).is_ok())
    }

    fn verify(&self, key: &ed25519_dalek::VerifyingKey) -> bool {
        self.verify_with(key, None)
    }
}

/// What a claim signer must chain to.
enum Trust<'a> {
    /// The CA whose certificate has this SHA-256 (a provenance anchor the root signed).
    Provenance([u8; 32]),
    /// One of these C2PA trust anchors (DER).
    Anchors(&'a [Vec<u8>]),
}

struct Signer {
    der: Vec<u8>,
    ca_der: Vec<u8>,
    subject: String,
}

fn parse_cert<'a>(
    der: &'a [u8],
    what: &str,
) -> Result<x509_parser::certificate::X509Certificate<'a>, Refusal> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|_| Refusal {
            code: Code::Untrusted,
            detail: format!("the {what} certificate does not parse"),
        })
}

fn ed25519_key(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> Option<ed25519_dalek::VerifyingKey> {
    let raw: [u8; 32] = spki.subject_public_key.data.as_ref().try_into().ok()?;
    ed25519_dalek::VerifyingKey::from_bytes(&raw).ok()
}

/// Checks the claim signer's chain up to the anchored CA (or a trust anchor) and the
/// claim signature.
fn verify_claim(
    manifest: &read::FoundManifest<'_>,
    trust: &Trust<'_>,
    now: u64,
) -> Result<Signer, Refusal> {
    let sign1 = Sign1::read(manifest.signature).ok_or_else(|| Refusal {
        code: Code::ClaimSignatureMismatch,
        detail: "the claim signature is not an EdDSA COSE_Sign1".into(),
    })?;
    let chain: Vec<&[u8]> = match sign1.protected.get_int(cose::HEADER_X5CHAIN as i64) {
        Some(Value::Bytes(one)) => vec![one],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_bytes).collect(),
        _ => return refuse(Code::Untrusted, "the claim signature carries no x5chain"),
    };
    let Some((&signer_der, rest)) = chain.split_first() else {
        return refuse(Code::Untrusted, "an empty x5chain");
    };
    let anchored_ca = match trust {
        Trust::Provenance(digest) => digest,
        Trust::Anchors(anchors) => {
            let ca_der = chain::to_anchor(signer_der, rest, anchors, now).or_else(|b| match b {
                chain::Broken::Untrusted(why) => refuse(Code::Untrusted, why),
                chain::Broken::Expired => {
                    refuse(Code::Expired, "a certificate of the chain is not valid now")
                }
            })?;
            let signer = parse_cert(signer_der, "claim signer")?;
            return claim_signed(manifest, &sign1, signer_der, &signer, ca_der);
        }
    };
    let Some(&ca_der) = rest
        .iter()
        .find(|der| Sha256::digest(der).as_slice() == anchored_ca)
    else {
        return refuse(Code::Untrusted, "the x5chain does not hold the anchored CA");
    };
    let ca = parse_cert(ca_der, "CA")?;
    let signer = parse_cert(signer_der, "claim signer")?;
    if signer.verify_signature(Some(ca.public_key())).is_err() {
        return refuse(
            Code::Untrusted,
            "the claim signer was not issued by the anchored CA",
        );
    }
    if !valid_at(&ca, now) || !valid_at(&signer, now) {
        return refuse(Code::Expired, "a certificate of the chain is not valid now");
    }
    claim_signed(manifest, &sign1, signer_der, &signer, ca_der)
}

/// Checks the claim signature by a claim signer whose chain held.
fn claim_signed(
    manifest: &read::FoundManifest<'_>,
    sign1: &Sign1<'_>,
    signer_der: &[u8],
    signer: &x509_parser::certificate::X509Certificate<'_>,
    ca_der: &[u8],
) -> Result<Signer, Refusal> {
    let key = ed25519_key(signer.public_key()).ok_or_else(|| Refusal {
        code: Code::Untrusted,
        detail: "the claim signer's key is not Ed25519".into(),
    })?;
    if !sign1.verify_with(&key, Some(manifest.claim)) {
        return refuse(
            Code::ClaimSignatureMismatch,
            "the claim signature does not verify",
        );
    }
    let subject = signer
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok(Signer {
        der: signer_der.to_vec(),
        ca_der: ca_der.to_vec(),
        subject,
    })
}

/// Every assertion the claim lists (created or gathered) is in the store with the hash the
/// claim gives it, and the claim lists every assertion checked below (the provenance
/// anchor when it is what the signer's trust rests on).
fn check_assertion_hashes(
    manifest: &read::FoundManifest<'_>,
    anchored: bool,
) -> Result<(), Refusal> {
    let bad = |d: &str| Refusal {
        code: Code::HashedUriMismatch,
        detail: d.to_owned(),
    };
    let claim = decode::read(manifest.claim).map_err(|e| bad(&e.to_string()))?;
    let listed = claim
        .get("created_assertions")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("the claim lists no assertions"))?;
    // c2pa-rs lists the assertions a signer adds itself (session keys) as gathered.
    let gathered = claim
        .get("gathered_assertions")
        .and_then(Value::as_array)
        .unwrap_or_default();
    let mut seen = Vec::new();
    for entry in listed.iter().chain(gathered) {
        let url = entry
            .get("url")
            .and_then(Value::as_text)
            .unwrap_or_default();
        let label = url.rsplit('/').next().unwrap_or_default();
        let hash = entry
            .get("hash")
            .and_then(Value::as_bytes)
            .unwrap_or_default();
        let found = manifest
            .assertion(label)
            .ok_or_else(|| bad(&format!("{label}: listed but not in the store")))?;
        if Sha256::digest(found.payload).as_slice() != hash {
            return Err(bad(&format!("{label}: its hash does not match")));
        }
        seen.push(label);
    }
    let needed: &[&str] = if anchored {
        &[BMFF_HASH_LABEL, SESSION_KEYS_LABEL, ANCHOR_ASSERTION]
    } else {
        &[BMFF_HASH_LABEL, SESSION_KEYS_LABEL]
    };
    for needed in needed {
        if !seen.contains(needed) {
            return Err(bad(&format!("{needed}: not listed in the claim")));
        }
    }
    Ok(())
}

/// The init segment's BMFF hash: every box but `ftyp`, `free`, `skip`, `mfra` and the
/// C2PA box, at its offset.
fn check_init_hash(
    manifest: &read::FoundManifest<'_>,
    boxes: &[bmff::BmffBox<'_>],
) -> Result<(), Refusal> {
    let bad = |d: &str| Refusal {
        code: Code::BmffHashMismatch,
        detail: d.to_owned(),
    };
    let assertion = manifest
        .assertion(BMFF_HASH_LABEL)
        .ok_or_else(|| bad("no BMFF hash"))?;
    let value = decode::read(assertion.cbor).map_err(|e| bad(&e.to_string()))?;
    let hash = value
        .get("hash")
        .and_then(Value::as_bytes)
        .ok_or_else(|| bad("a BMFF hash without its hash"))?;
    let excluded = |b: &bmff::BmffBox<'_>| {
        matches!(&b.kind, b"ftyp" | b"free" | b"skip" | b"mfra")
            || read::manifest_box(std::slice::from_ref(b)).is_some()
    };
    if hash != bmff::hash_v3(boxes, 0, excluded) {
        return Err(bad("the init segment does not match its hash"));
    }
    Ok(())
}

/// The manifest's session keys, each bound to the claim signer.
fn session_keys(
    manifest: &read::FoundManifest<'_>,
    signer_der: &[u8],
) -> Result<Vec<SessionKey>, Refusal> {
    let bad = |d: &str| Refusal {
        code: Code::SessionKeyInvalid,
        detail: d.to_owned(),
    };
    let assertion = manifest
        .assertion(SESSION_KEYS_LABEL)
        .ok_or_else(|| bad("no session keys"))?;
    let value = decode::read(assertion.cbor).map_err(|e| bad(&e.to_string()))?;
    let listed = value
        .get("keys")
        .and_then(Value::as_array)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| bad("no session keys"))?;
    let mut bound_payload = domain::c2pa::cbor::Cbor::new();
    bound_payload.bytes(signer_der);
    let bound_payload = bound_payload.into_bytes();
    let mut keys = Vec::with_capacity(listed.len());
    for entry in listed {
        let cose_key = entry
            .get("key")
            .ok_or_else(|| bad("a session key without its key"))?;
        let kid = cose_key
            .get_int(2)
            .and_then(Value::as_bytes)
            .ok_or_else(|| bad("a session key without its kid"))?;
        let public: [u8; 32] = cose_key
            .get_int(-2)
            .and_then(Value::as_bytes)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("a session key that is not Ed25519"))?;
        if cose_key.get_int(3).and_then(Value::as_int) != Some(cose::ALG_EDDSA) {
            return Err(bad("a session key that is not EdDSA"));
        }
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public)
            .map_err(|_| bad("a session key that is not a valid point"))?;
        let binding = entry
            .get("signerBinding")
            .and_then(Sign1::from_value)
            .ok_or_else(|| bad("a session key without a COSE_Sign1 signer binding"))?;
        if !binding.verify_with(&key, Some(&bound_payload)) {
            return Err(bad("a session key not bound to the claim signer"));
        }
        let created = entry
            .get("createdAt")
            .map(|v| v.untag(0))
            .and_then(Value::as_text)
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
            .and_then(|t| u64::try_from(t.unix_timestamp()).ok())
            .ok_or_else(|| bad("a session key without its creation time"))?;
        let validity = entry
            .get("validityPeriod")
            .and_then(Value::as_uint)
            .ok_or_else(|| bad("a session key without its validity period"))?;
        let min_sequence = entry
            .get("minSequenceNumber")
            .and_then(Value::as_uint)
            .ok_or_else(|| bad("a session key without its minimum sequence number"))?;
        keys.push(SessionKey {
            kid: kid.to_vec(),
            key,
            min_sequence,
            window: (created, created.saturating_add(validity)),
        });
    }
    Ok(keys)
}

/// The manifest's co-signature, if it has one: its fields, and the message rebuilt from
/// the assertions before it in the store (their hashes already checked against the claim).
fn cosignature(
    manifest: &read::FoundManifest<'_>,
    signed_at: u64,
) -> Result<Option<Cosignature>, Refusal> {
    let Some(at) = manifest
        .assertions
        .iter()
        .position(|a| a.label == COSIGNATURE_LABEL)
    else {
        return Ok(None);
    };
    let bad = |d: &str| Refusal {
        code: Code::CosignatureMismatch,
        detail: d.to_owned(),
    };
    let value = decode::read(manifest.assertions[at].cbor).map_err(|e| bad(&e.to_string()))?;
    let algorithm = value
        .get("alg")
        .and_then(Value::as_uint)
        .and_then(|c| u8::try_from(c).ok())
        .and_then(SignatureAlgorithm::from_code)
        .ok_or_else(|| bad("a co-signature of an unknown algorithm"))?;
    let key_id = value
        .get("keyId")
        .and_then(Value::as_bytes)
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .map(KeyId)
        .ok_or_else(|| bad("a co-signature without its key id"))?;
    let signature = value
        .get("signature")
        .and_then(Value::as_bytes)
        .ok_or_else(|| bad("a co-signature without its signature"))?;
    let before: Vec<(&str, [u8; 32])> = manifest.assertions[..at]
        .iter()
        .map(|a| (a.label, Sha256::digest(a.payload).into()))
        .collect();
    Ok(Some(Cosignature {
        algorithm,
        key_id,
        message: cosignature_message(manifest.label, &before),
        signature: signature.to_vec(),
        signed_at,
    }))
}
