//! A C2PA 2.3 live-video validator (§19.7.3, the VSI method) for viewers who pin only the
//! cluster's root: `sealcast verify`, and the rules `web/src/verify.js` follows too
//! (both run the vectors of `certs::c2pa::vectors`).
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
//!    One without may also chain, as in step 3, to a CA named by an anchor the root signed
//!    apart ([`LiveValidator::with_delivered_anchors`]: other signers' CAs, which edges
//!    serve as `/trust/v1/provenance-anchors`), each checked against the root now.
//! 4. the claim signature: EdDSA by an Ed25519 claim signer or ES256 by a P-256 one
//!    (`claimSignature.mismatch`; any other `alg`, checked before step 3's chain,
//!    `algorithm.unsupported`);
//! 5. every assertion's hash in the claim (`assertion.hashedURI.mismatch`);
//! 6. the init segment's `c2pa.hash.bmff.v3` (`assertion.bmffHash.mismatch`);
//! 7. every session key's signer binding (`livevideo.sessionkey.invalid`).
//!
//! A verified manifest's claim signer and CA can be revoked by the root like any key,
//! under their credential ids ([`super::credential_id`]); the caller re-checks them as
//! revocations arrive ([`LiveValidator::check_revocation`], `signingCredential.revoked`).
//!
//! A fragment must open with a VSI `emsg` whose COSE_Sign1, by a session key of the
//! manifest, signs its sequence number (a part's: its first `moof`'s; a segment's: its
//! place in the rendition; at least the key's `minSequenceNumber`, above the last one
//! verified of the same kind), the manifest's id
//! and the BMFF hash of the fragment without its VSIs, issued within the key's validity
//! (`livevideo.segment.invalid`).

use domain::c2pa::decode::{self, Value};
use domain::c2pa::{bmff, cose, read, vsi};

mod chain;
mod manifest;
mod verdict;

use verdict::{refuse, SessionKey};
pub use verdict::{Code, Cosignature, FragmentVerdict, InitVerdict, Refusal};

use manifest::{
    check_assertion_hashes, check_init_hash, cosignature, session_keys, verify_claim, Sign1, Trust,
};

pub use chain::trust_anchors_from_pem;

use super::{credential_id, ProvenanceAnchor, ANCHOR_ASSERTION};
use crate::signing::KeyId;
use crate::signing::RootPublicKey;

#[derive(Debug, Clone)]
enum State {
    NoInit,
    Unsigned,
    Refused,
    Signed {
        label: String,
        keys: Vec<SessionKey>,
        last_segment: Option<u64>,
        last_part: Option<u64>,
    },
}

/// One rendition's validator (see the module's rules).
#[derive(Debug, Clone)]
pub struct LiveValidator {
    root: RootPublicKey,
    /// C2PA trust anchors (CA certificates, DER) for manifests without a provenance
    /// anchor; none for [`LiveValidator::new`].
    anchors: Vec<Vec<u8>>,
    /// Provenance anchors the root signed apart from any manifest, for the CAs of claim
    /// signers that are not the cluster's (`/trust/v1/provenance-anchors`).
    delivered: Vec<ProvenanceAnchor>,
    state: State,
    /// The credential ids ([`super::credential_id`]) of the verified manifest's claim
    /// signer and CA: what [`LiveValidator::check_revocation`] looks up.
    credentials: Vec<KeyId>,
    /// The verified manifest's co-signature, for the caller to check against the keys the
    /// root certified.
    cosignature: Option<Cosignature>,
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
            delivered: Vec::new(),
            state: State::NoInit,
            credentials: Vec::new(),
            cosignature: None,
        }
    }

    /// The same validator, also trusting claim signers (in manifests without a provenance
    /// anchor) issued by a CA one of `anchors` names: anchors the root signed for the CAs
    /// of other signers (`sealcast keys init` makes them from
    /// `keys/provenance/trusted.pem`; edges serve them as `/trust/v1/provenance-anchors`).
    /// Each is checked against the root, and its validity, at every init segment.
    pub fn with_delivered_anchors(mut self, anchors: Vec<ProvenanceAnchor>) -> Self {
        self.delivered = anchors;
        self
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
        // A manifest that carries a provenance anchor is held to it; one that does not
        // (signed by others) may chain to a CA the root anchored apart, or to a C2PA
        // trust anchor given.
        let own = manifest.assertion(ANCHOR_ASSERTION).is_some();
        let trust = if own {
            Trust {
                anchored: vec![self.anchor(&manifest, now)?],
                anchors: &[],
            }
        } else {
            let anchored: Vec<[u8; 32]> = (self.delivered.iter())
                .filter_map(|a| self.root.verify_anchor(a, now).ok())
                .collect();
            if anchored.is_empty() && self.anchors.is_empty() {
                return refuse(
                    Code::Untrusted,
                    "no provenance anchor: the claim signer does not chain to the root",
                );
            }
            Trust {
                anchored,
                anchors: &self.anchors,
            }
        };
        let signer = verify_claim(&manifest, &trust, now)?;
        check_assertion_hashes(&manifest, own)?;
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
        // A part is numbered by its `mfhd`; a segment by its place in the rendition
        // (`vsi::Numbering`), which only has to rise.
        if part && sequence != u64::from(found.sequence) {
            return Err(bad("its VSI's sequence number is not its fragment's"));
        }
        if sequence < key.min_sequence {
            return Err(bad("a sequence number below its key's minimum"));
        }
        if last.is_some_and(|l| sequence <= l) {
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
        *last = Some(sequence);
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
