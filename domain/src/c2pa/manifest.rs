//! The C2PA manifest store sealcast puts in every CMAF init segment (C2PA 2.3 §19.2,
//! §19.4): one standard manifest whose claim (v2) an X.509 claim signer signs, with the
//! assertions a live stream needs:
//! - `c2pa.actions.v2`: the stream was created (captured) here;
//! - `c2pa.hash.bmff.v3`: the init segment's boxes but the manifest's own `uuid` box (and
//!   `ftyp`, `free`, `skip`, `mfra`, as C2PA's defaults), so swapping an init segment is
//!   seen;
//! - `c2pa.session-keys`: the session key(s) whose VSIs sign the media segments, each
//!   bound to the claim signer's certificate;
//! - any of sealcast's own (the stream's identity, the post-quantum co-signature).
//!
//! Laid out as c2pa-rs lays it out: a `uuid` box (C2PA's UUID, purpose `manifest`) right
//! after `ftyp`, holding the manifest store superbox (`c2pa`), which holds the manifest
//! (`c2ma`, labelled `urn:c2pa:…`), which holds the assertion store (`c2as`), the claim
//! (`c2cl`, `c2pa.claim.v2`) and the claim signature (`c2cs`, `c2pa.signature`).

use sha2::{Digest, Sha256};

use super::bmff::{self, BmffBox};
use super::cbor::Cbor;
use super::{cose, jumbf, vsi};
use crate::DomainError;

/// The extended type of a `uuid` box holding a C2PA manifest store.
pub const C2PA_BOX_UUID: [u8; 16] = [
    0xd8, 0xfe, 0xc3, 0xd6, 0x1b, 0x0e, 0x48, 0x3c, 0x92, 0x97, 0x58, 0x28, 0x87, 0x7e, 0xc4, 0x81,
];
/// The label of the BMFF hash assertion.
pub const BMFF_HASH_LABEL: &str = "c2pa.hash.bmff.v3";
/// The label of the session keys assertion.
pub const SESSION_KEYS_LABEL: &str = "c2pa.session-keys";
/// The label of the actions assertion.
pub const ACTIONS_LABEL: &str = "c2pa.actions.v2";
/// The label of sealcast's co-signature assertion: the cluster's own algorithm (ML-DSA-65
/// by default, which C2PA does not allow as a claim signature) over every other
/// assertion of the manifest, by the ingest key the cluster root certified.
pub const COSIGNATURE_LABEL: &str = "io.sealcast.cosignature";
/// The domain-separation tag of what a co-signature signs ([`cosignature_message`]).
pub const COSIGNATURE_TAG: &[u8] = b"sealcast/v1/c2pa-cosignature\0";

/// IPTC's digital source type of media captured by a camera (and sent on live).
pub const DIGITAL_CAPTURE: &str = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture";

/// One assertion: its label and its CBOR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// Its label (`c2pa.…`, or `io.sealcast.…` for ours).
    pub label: String,
    /// Its content, one CBOR item.
    pub cbor: Vec<u8>,
}

/// What an init segment's manifest says, beyond the segment's bytes.
#[derive(Debug, Clone)]
pub struct InitManifest<'a> {
    /// The manifest's label, `urn:c2pa:` and a UUID; VSIs name it as their `manifestId`.
    pub label: &'a str,
    /// The claim's `instanceID` (`xmp:iid:` and a UUID).
    pub instance_id: &'a str,
    /// The claim generator: `sealcast` and its version.
    pub generator: (&'a str, &'a str),
    /// The claim's `dc:title`.
    pub title: &'a str,
    /// The encoded `c2pa.session-keys` assertion ([`session_keys`]).
    pub session_keys: Vec<u8>,
    /// Further assertions, after the standard ones.
    pub extra: Vec<Assertion>,
    /// The claim signer's certificate chain, DER, its own first.
    pub chain: Vec<Vec<u8>>,
    /// The claim signature's COSE algorithm: [`cose::ALG_EDDSA`] (ours), or
    /// [`cose::ALG_ES256`] for an operator's certificate; both sign 64 bytes.
    pub claim_alg: i64,
    /// Who co-signs the other assertions ([`COSIGNATURE_LABEL`]), if anyone.
    pub cosigner: Option<CoSigner>,
}

/// The ingest key that co-signs a manifest's assertions in the cluster's own algorithm.
#[derive(Debug, Clone, Copy)]
pub struct CoSigner {
    /// The algorithm's code (docs/wire.md: 1 ML-DSA-65, 2 Ed25519).
    pub algorithm: u8,
    /// The key's id, as the cluster root certified it.
    pub key_id: [u8; 16],
    /// The length of its signatures (fixed by the algorithm).
    pub signature_len: usize,
}

/// What a co-signature signs: [`COSIGNATURE_TAG`], the manifest's label, then each
/// assertion before it (label and the SHA-256 of its superbox payload, as the claim's
/// hashed URIs give it), lengths as big-endian u16.
pub fn cosignature_message(label: &str, assertions: &[(&str, [u8; 32])]) -> Vec<u8> {
    let mut out = COSIGNATURE_TAG.to_vec();
    let put = |bytes: &[u8], out: &mut Vec<u8>| {
        out.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    put(label.as_bytes(), &mut out);
    out.extend_from_slice(
        &u16::try_from(assertions.len())
            .unwrap_or(u16::MAX)
            .to_be_bytes(),
    );
    for (label, digest) in assertions {
        put(label.as_bytes(), &mut out);
        out.extend_from_slice(digest);
    }
    out
}

/// The co-signature assertion's CBOR: `{"alg": code, "keyId": bstr, "signature": bstr}`.
fn cosignature_assertion(cosigner: &CoSigner, signature: &[u8]) -> Assertion {
    let mut c = Cbor::new();
    c.map(3)
        .text("alg")
        .uint(u64::from(cosigner.algorithm))
        .text("keyId")
        .bytes(&cosigner.key_id)
        .text("signature")
        .bytes(signature);
    Assertion {
        label: COSIGNATURE_LABEL.into(),
        cbor: c.into_bytes(),
    }
}

/// One session key of a `c2pa.session-keys` assertion.
#[derive(Debug, Clone)]
pub struct SessionKeyEntry {
    /// The key's id.
    pub kid: Vec<u8>,
    /// The Ed25519 public key.
    pub public: [u8; 32],
    /// The first sequence number it may sign.
    pub min_sequence: u64,
    /// When it was made, RFC 3339.
    pub created_at: String,
    /// How long it may sign, seconds from `created_at`.
    pub validity_secs: u64,
    /// Its signer binding ([`signer_binding`]).
    pub signer_binding: Vec<u8>,
}

/// The COSE_Key of an Ed25519 session key.
pub fn ed25519_cose_key(c: &mut Cbor, kid: &[u8], public: &[u8; 32]) {
    c.map(5)
        .uint(1)
        .uint(1) // kty: OKP
        .uint(2)
        .bytes(kid)
        .uint(3)
        .int(cose::ALG_EDDSA)
        .int(-1)
        .uint(6) // crv: Ed25519
        .int(-2)
        .bytes(public);
}

/// The signer binding of a session key (C2PA 2.3 §18.25): a COSE_Sign1 by the session key
/// (`sign`) over the claim signer's certificate (DER), detached.
pub fn signer_binding(claim_signer_der: &[u8], sign: &mut dyn FnMut(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let mut payload = Cbor::new();
    payload.bytes(claim_signer_der);
    cose::sign1(
        &cose::eddsa_header(),
        &cose::empty_header(),
        &payload.into_bytes(),
        false,
        sign,
    )
}

/// The `c2pa.session-keys` assertion.
pub fn session_keys(keys: &[SessionKeyEntry]) -> Vec<u8> {
    let mut c = Cbor::new();
    c.map(1).text("keys").array(keys.len());
    for k in keys {
        c.map(5).text("key");
        ed25519_cose_key(&mut c, &k.kid, &k.public);
        c.text("minSequenceNumber")
            .uint(k.min_sequence)
            .text("createdAt")
            .tag(0)
            .text(&k.created_at)
            .text("validityPeriod")
            .uint(k.validity_secs)
            .text("signerBinding")
            .raw(&k.signer_binding);
    }
    c.into_bytes()
}

/// An assertion's superbox without its `jumb` header: what the claim's hashed URI hashes.
fn assertion_payload(a: &Assertion) -> Vec<u8> {
    jumbf::superbox_payload(b"cbor", &a.label, &[&jumbf::cbor_box(&a.cbor)])
}

fn assertion_digest(a: &Assertion) -> [u8; 32] {
    Sha256::digest(assertion_payload(a)).into()
}

/// Whether a top-level box is a C2PA manifest store's `uuid` box.
fn is_c2pa_box(b: &BmffBox<'_>) -> bool {
    &b.kind == b"uuid" && b.bytes.get(8..24) == Some(&C2PA_BOX_UUID[..])
}

/// Whether a top-level box is left out of an init segment's BMFF hash.
fn init_excluded(b: &BmffBox<'_>) -> bool {
    matches!(&b.kind, b"ftyp" | b"free" | b"skip" | b"mfra") || is_c2pa_box(b)
}

fn init_exclusions() -> Vec<u8> {
    let mut c = Cbor::new();
    c.array(5)
        .map(2)
        .text("xpath")
        .text("/uuid")
        .text("data")
        .array(1)
        .map(2)
        .text("offset")
        .uint(8)
        .text("value")
        .bytes(&C2PA_BOX_UUID);
    for x in ["/ftyp", "/mfra", "/free", "/skip"] {
        c.map(1).text("xpath").text(x);
    }
    c.into_bytes()
}

/// `init` (a CMAF init segment without a manifest) with `manifest`'s store in a `uuid`
/// box after its `ftyp`, the claim signed by `sign` (the claim signer's key, in the
/// manifest's `claim_alg`: 64 bytes, Ed25519 or ES256's `r ‖ s`) and,
/// when the manifest names a co-signer, the other assertions co-signed by `cosign`.
pub fn sign_init(
    init: &[u8],
    manifest: &InitManifest<'_>,
    sign: &mut dyn FnMut(&[u8]) -> Vec<u8>,
    cosign: &mut dyn FnMut(&[u8]) -> Vec<u8>,
) -> Result<Vec<u8>, DomainError> {
    let boxes = bmff::top_level(init)?;
    if boxes.iter().any(|b| &b.kind == b"mdat") {
        return Err(DomainError::InvalidBmff {
            reason: "an init segment with media (mdat)",
        });
    }
    if boxes.iter().any(is_c2pa_box) {
        return Err(DomainError::InvalidBmff {
            reason: "the init segment already carries a C2PA manifest",
        });
    }
    let at = match boxes.first() {
        Some(b) if &b.kind == b"ftyp" => b.bytes.len(),
        _ => {
            return Err(DomainError::InvalidBmff {
                reason: "an init segment that does not open with ftyp",
            })
        }
    };
    // The hash takes moov's offset behind the manifest (every box but ftyp moves by its
    // size), which the signature cannot change: a draft with a blank signature measures it.
    let blank_len = manifest.cosigner.map_or(0, |c| c.signature_len);
    let draft = store_box(manifest, &[0; 32], &mut cose::blank_signature, &mut |_| {
        vec![0; blank_len]
    });
    let hash = bmff::hash_v3(&boxes, draft.len() as u64, init_excluded);
    let done = store_box(manifest, &hash, sign, cosign);
    if done.len() != draft.len() {
        return Err(DomainError::InvalidBmff {
            reason: "the manifest changed size between its draft and its signature",
        });
    }
    let mut out = Vec::with_capacity(init.len() + done.len());
    out.extend_from_slice(&init[..at]);
    out.extend_from_slice(&done);
    out.extend_from_slice(&init[at..]);
    Ok(out)
}

/// The `uuid` box: C2PA's extended type, version and flags 0, purpose `manifest`, no
/// auxiliary boxes (offset 0), then the manifest store.
fn store_box(
    manifest: &InitManifest<'_>,
    hash: &[u8; 32],
    sign: &mut dyn FnMut(&[u8]) -> Vec<u8>,
    cosign: &mut dyn FnMut(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let store = manifest_store(manifest, hash, sign, cosign);
    let mut payload = Vec::with_capacity(16 + 4 + 9 + 8 + store.len());
    payload.extend_from_slice(&C2PA_BOX_UUID);
    payload.extend_from_slice(&[0; 4]);
    payload.extend_from_slice(b"manifest\0");
    payload.extend_from_slice(&0u64.to_be_bytes());
    payload.extend_from_slice(&store);
    let mut out = Vec::new();
    bmff::write_box(&mut out, b"uuid", &payload);
    out
}

fn manifest_store(
    manifest: &InitManifest<'_>,
    hash: &[u8; 32],
    sign: &mut dyn FnMut(&[u8]) -> Vec<u8>,
    cosign: &mut dyn FnMut(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let mut hash_assertion = Cbor::new();
    vsi::bmff_hash_map(&mut hash_assertion, &init_exclusions(), hash);
    let mut actions = Cbor::new();
    actions
        .map(1)
        .text("actions")
        .array(1)
        .map(2)
        .text("action")
        .text("c2pa.created")
        .text("digitalSourceType")
        .text(DIGITAL_CAPTURE);
    let mut assertions = vec![
        Assertion {
            label: ACTIONS_LABEL.into(),
            cbor: actions.into_bytes(),
        },
        Assertion {
            label: BMFF_HASH_LABEL.into(),
            cbor: hash_assertion.into_bytes(),
        },
        Assertion {
            label: SESSION_KEYS_LABEL.into(),
            cbor: manifest.session_keys.clone(),
        },
    ];
    assertions.extend(manifest.extra.iter().cloned());
    if let Some(cosigner) = &manifest.cosigner {
        let digests: Vec<(&str, [u8; 32])> = assertions
            .iter()
            .map(|a| (a.label.as_str(), assertion_digest(a)))
            .collect();
        let signature = cosign(&cosignature_message(manifest.label, &digests));
        let cosigned = cosignature_assertion(cosigner, &signature);
        assertions.push(cosigned);
    }

    let prefix = format!("self#jumbf=/c2pa/{}", manifest.label);
    let mut boxes = Vec::with_capacity(assertions.len());
    let mut claim = Cbor::new();
    claim
        .map(6)
        .text("instanceID")
        .text(manifest.instance_id)
        .text("claim_generator_info")
        .map(2)
        .text("name")
        .text(manifest.generator.0)
        .text("version")
        .text(manifest.generator.1)
        .text("signature")
        .text(&format!("{prefix}/c2pa.signature"))
        .text("created_assertions")
        .array(assertions.len());
    for a in &assertions {
        let payload = assertion_payload(a);
        let digest: [u8; 32] = Sha256::digest(&payload).into();
        claim
            .map(2)
            .text("url")
            .text(&format!("{prefix}/c2pa.assertions/{}", a.label))
            .text("hash")
            .bytes(&digest);
        boxes.push(jumbf::wrap(&payload));
    }
    claim.text("dc:title").text(manifest.title);
    claim.text("alg").text(vsi::HASH_ALG);
    let claim = claim.into_bytes();

    let mut protected = Cbor::new();
    protected
        .map(2)
        .uint(cose::HEADER_ALG)
        .int(manifest.claim_alg)
        .uint(cose::HEADER_X5CHAIN);
    match manifest.chain.as_slice() {
        [one] => {
            protected.bytes(one);
        }
        many => {
            protected.array(many.len());
            for der in many {
                protected.bytes(der);
            }
        }
    }
    let signature = cose::sign1(
        &protected.into_bytes(),
        &cose::empty_header(),
        &claim,
        false,
        sign,
    );

    let refs: Vec<&[u8]> = boxes.iter().map(Vec::as_slice).collect();
    let assertion_store = jumbf::superbox(b"c2as", "c2pa.assertions", &refs);
    let claim_box = jumbf::superbox(b"c2cl", "c2pa.claim.v2", &[&jumbf::cbor_box(&claim)]);
    let signature_box = jumbf::superbox(b"c2cs", "c2pa.signature", &[&jumbf::cbor_box(&signature)]);
    let one = jumbf::superbox(
        b"c2ma",
        manifest.label,
        &[&assertion_store, &claim_box, &signature_box],
    );
    jumbf::superbox(b"c2pa", "c2pa", &[&one])
}
