//! The init manifest's checks (steps 3 to 7 of the module's list): the claim signer's
//! trust, the claim signature, the assertions' hashes, the init segment's BMFF hash, the
//! session keys and the co-signature; and the COSE_Sign1 reader they share with the VSI
//! check.

use domain::c2pa::decode::{self, Value};
use domain::c2pa::manifest::{
    cosignature_message, BMFF_HASH_LABEL, COSIGNATURE_LABEL, SESSION_KEYS_LABEL,
};
use domain::c2pa::{bmff, cose, read};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::chain::{self, valid_at};
use super::verdict::{refuse, Code, Cosignature, Refusal, SessionKey, VerifyKey};
use crate::c2pa::ANCHOR_ASSERTION;
use crate::signing::{KeyId, SignatureAlgorithm};

/// A COSE_Sign1_Tagged as read.
pub(super) struct Sign1<'a> {
    /// The protected header's `alg`, if it is an integer.
    pub(super) alg: Option<i64>,
    pub(super) protected_bytes: &'a [u8],
    pub(super) protected: Value<'a>,
    pub(super) unprotected: Value<'a>,
    pub(super) payload: Option<&'a [u8]>,
    pub(super) signature: &'a [u8],
}

impl<'a> Sign1<'a> {
    pub(super) fn read(bytes: &'a [u8]) -> Option<Self> {
        Self::from_value(&decode::read(bytes).ok()?)
    }

    pub(super) fn from_value(value: &Value<'a>) -> Option<Self> {
        let Value::Tag(cose::TAG_SIGN1, inner) = value else {
            return None;
        };
        let [protected_bytes, unprotected, payload, signature] = inner.as_array()? else {
            return None;
        };
        let protected_bytes = protected_bytes.as_bytes()?;
        let protected = decode::read(protected_bytes).ok()?;
        let alg = protected
            .get_int(cose::HEADER_ALG as i64)
            .and_then(Value::as_int);
        let payload = match payload {
            Value::Null => None,
            Value::Bytes(b) => Some(*b),
            _ => return None,
        };
        Some(Sign1 {
            alg,
            protected_bytes,
            protected,
            unprotected: unprotected.clone(),
            payload,
            signature: signature.as_bytes()?,
        })
    }

    /// Whether the signature verifies over the attached payload or `detached`: its `alg`
    /// must be the key's (EdDSA for Ed25519, ES256 for P-256, whose signature is `r ‖ s`).
    pub(super) fn verify_with(&self, key: &VerifyKey, detached: Option<&[u8]>) -> bool {
        use p256::ecdsa::signature::Verifier as _;
        let Some(payload) = self.payload.or(detached) else {
            return false;
        };
        let tbs = cose::to_be_signed(self.protected_bytes, payload);
        match (self.alg, key) {
            (Some(cose::ALG_EDDSA), VerifyKey::Ed25519(key)) => {
                ed25519_dalek::Signature::from_slice(self.signature)
                    .is_ok_and(|sig| key.verify_strict(&tbs, &sig).is_ok())
            }
            (Some(cose::ALG_ES256), VerifyKey::P256(key)) => {
                p256::ecdsa::Signature::from_slice(self.signature)
                    .is_ok_and(|sig| key.verify(&tbs, &sig).is_ok())
            }
            _ => false,
        }
    }

    pub(super) fn verify(&self, key: &VerifyKey) -> bool {
        self.verify_with(key, None)
    }
}

/// What a claim signer must chain to: a CA the root anchored, found in its `x5chain`, or
/// else one of the C2PA trust anchors.
pub(super) struct Trust<'a> {
    /// The CAs whose certificates have these SHA-256s (provenance anchors the root
    /// signed, each verified).
    pub(super) anchored: Vec<[u8; 32]>,
    /// C2PA trust anchors (DER).
    pub(super) anchors: &'a [Vec<u8>],
}

pub(super) struct Signer {
    pub(super) der: Vec<u8>,
    pub(super) ca_der: Vec<u8>,
    pub(super) subject: String,
}

pub(super) fn parse_cert<'a>(
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

/// A certificate's key, if it is one a claim may be signed with: Ed25519, or an
/// uncompressed P-256 point (id-ecPublicKey, prime256v1).
pub(super) fn certificate_key(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
) -> Option<VerifyKey> {
    use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_SIG_ED25519};
    let data = spki.subject_public_key.data.as_ref();
    let algorithm = &spki.algorithm;
    if algorithm.algorithm == OID_SIG_ED25519 {
        let raw: [u8; 32] = data.try_into().ok()?;
        return ed25519_dalek::VerifyingKey::from_bytes(&raw)
            .ok()
            .map(VerifyKey::Ed25519);
    }
    let curve = algorithm.parameters.as_ref()?.as_oid().ok()?;
    if algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY
        || curve != OID_EC_P256
        || data.len() != 65
        || data[0] != 4
    {
        return None;
    }
    p256::ecdsa::VerifyingKey::from_sec1_bytes(data)
        .ok()
        .map(VerifyKey::P256)
}

/// Checks the claim signer's chain up to the anchored CA (or a trust anchor) and the
/// claim signature.
pub(super) fn verify_claim(
    manifest: &read::FoundManifest<'_>,
    trust: &Trust<'_>,
    now: u64,
) -> Result<Signer, Refusal> {
    let sign1 = Sign1::read(manifest.signature).ok_or_else(|| Refusal {
        code: Code::ClaimSignatureMismatch,
        detail: "the claim signature is not a COSE_Sign1".into(),
    })?;
    if !matches!(sign1.alg, Some(cose::ALG_EDDSA | cose::ALG_ES256)) {
        return refuse(
            Code::AlgorithmUnsupported,
            format!(
                "a claim signature of alg {:?}: only EdDSA (-8) and ES256 (-7) are supported",
                sign1.alg
            ),
        );
    }
    let chain: Vec<&[u8]> = match sign1.protected.get_int(cose::HEADER_X5CHAIN as i64) {
        Some(Value::Bytes(one)) => vec![one],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_bytes).collect(),
        _ => return refuse(Code::Untrusted, "the claim signature carries no x5chain"),
    };
    let Some((&signer_der, rest)) = chain.split_first() else {
        return refuse(Code::Untrusted, "an empty x5chain");
    };
    let anchored = rest.iter().find(|der| {
        let digest = Sha256::digest(der);
        trust.anchored.iter().any(|a| digest.as_slice() == a)
    });
    let ca_der = match anchored {
        Some(&ca_der) => ca_der,
        None if trust.anchors.is_empty() => {
            return refuse(Code::Untrusted, "the x5chain does not hold the anchored CA")
        }
        None => {
            let ca_der =
                chain::to_anchor(signer_der, rest, trust.anchors, now).or_else(|b| match b {
                    chain::Broken::Untrusted(why) => refuse(Code::Untrusted, why),
                    chain::Broken::Expired => {
                        refuse(Code::Expired, "a certificate of the chain is not valid now")
                    }
                })?;
            let signer = parse_cert(signer_der, "claim signer")?;
            return claim_signed(manifest, &sign1, signer_der, &signer, ca_der);
        }
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
pub(super) fn claim_signed(
    manifest: &read::FoundManifest<'_>,
    sign1: &Sign1<'_>,
    signer_der: &[u8],
    signer: &x509_parser::certificate::X509Certificate<'_>,
    ca_der: &[u8],
) -> Result<Signer, Refusal> {
    let key = certificate_key(signer.public_key()).ok_or_else(|| Refusal {
        code: Code::Untrusted,
        detail: "the claim signer's key is neither Ed25519 nor P-256".into(),
    })?;
    let fits = matches!(
        (&key, sign1.alg),
        (VerifyKey::Ed25519(_), Some(cose::ALG_EDDSA))
            | (VerifyKey::P256(_), Some(cose::ALG_ES256))
    );
    if !fits {
        return refuse(
            Code::ClaimSignatureMismatch,
            "the claim signature's alg is not its signer's key's",
        );
    }
    if !sign1.verify_with(&key, Some(manifest.claim)) {
        return refuse(
            Code::ClaimSignatureMismatch,
            "the claim signature does not verify",
        );
    }
    let subject = crate::c2pa::common_name(signer);
    Ok(Signer {
        der: signer_der.to_vec(),
        ca_der: ca_der.to_vec(),
        subject,
    })
}

/// Every assertion the claim lists (created or gathered) is in the store with the hash the
/// claim gives it, and the claim lists every assertion checked below (the provenance
/// anchor when it is what the signer's trust rests on).
pub(super) fn check_assertion_hashes(
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
pub(super) fn check_init_hash(
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
pub(super) fn session_keys(
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
            .map(VerifyKey::Ed25519)
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
pub(super) fn cosignature(
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
