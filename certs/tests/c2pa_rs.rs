//! Interoperability with c2pa-rs (issue 47): a stream signed by c2pa-rs's own VSI signer
//! (`c2patool live-video-sign --method vsi`; `fixtures/c2pa-rs/README.md` says how) is
//! accepted by [`LiveValidator::with_trust_anchors`] given c2pa-rs's test root as a C2PA
//! trust anchor, init segment and every segment, and refused when altered, replayed,
//! checked after its certificates expired or without that anchor.

use std::path::PathBuf;

use certs::c2pa::validate::{
    trust_anchors_from_pem, Code, FragmentVerdict, InitVerdict, LiveValidator,
};
use certs::c2pa::ProvenanceCa;
use certs::signing::{RootKey, RootPublicKey, SignatureAlgorithm};

/// When the fixture was signed (its VSIs' `iat`), unix seconds: the validators' clock.
const SIGNED_AT: u64 = 1_795_785_305;
/// After the claim signer's certificate expired (2030-08-26).
const AFTER_EXPIRY: u64 = 1_924_992_000;
/// The claim signer's common name in c2pa-rs's Ed25519 test certificate.
const SIGNER: &str = "C2PA Signer";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/c2pa-rs")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The signed media segments, in order.
fn segments() -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .expect("fixtures")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("seg_") && n.ends_with(".m4s"))
        .collect();
    names.sort_by_key(|n| {
        n.trim_start_matches("seg_")
            .trim_end_matches(".m4s")
            .parse::<u32>()
            .expect("a numbered segment")
    });
    names.into_iter().map(|n| (n.clone(), read(&n))).collect()
}

fn root() -> RootPublicKey {
    RootKey::generate(SignatureAlgorithm::Ed25519)
        .expect("root")
        .public_key()
}

fn validator() -> LiveValidator {
    let anchors = trust_anchors_from_pem(&read("anchors.pem")).expect("anchors");
    LiveValidator::with_trust_anchors(root(), anchors)
}

fn refusal_code<T: std::fmt::Debug>(r: Result<T, certs::c2pa::validate::Refusal>) -> Code {
    r.expect_err("refused").code
}

#[test]
fn the_c2pa_rs_sample_verifies_init_and_every_segment() {
    let mut v = validator();
    assert_eq!(
        v.admit_init(&read("init.mp4"), SIGNED_AT),
        Ok(InitVerdict::Verified {
            signer: SIGNER.into()
        })
    );
    let segments = segments();
    assert!(segments.len() >= 3, "the fixture has a few segments");
    for (name, bytes) in &segments {
        assert_eq!(
            v.check_fragment(bytes, false),
            Ok(FragmentVerdict::Verified),
            "{name}"
        );
    }
}

#[test]
fn a_flipped_byte_and_a_replayed_segment_are_refused() {
    let segments = segments();
    for (name, bytes) in &segments {
        let mut v = validator();
        v.admit_init(&read("init.mp4"), SIGNED_AT).expect("init");
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x01;
        assert_eq!(
            refusal_code(v.check_fragment(&flipped, false)),
            Code::SegmentInvalid,
            "{name} with its last byte flipped"
        );
    }
    let mut v = validator();
    v.admit_init(&read("init.mp4"), SIGNED_AT).expect("init");
    v.check_fragment(&segments[0].1, false).expect("first");
    v.check_fragment(&segments[1].1, false).expect("second");
    assert_eq!(
        refusal_code(v.check_fragment(&segments[0].1, false)),
        Code::SegmentInvalid,
        "the first segment replayed"
    );
    // Refused, it did not move the validator: the next one still verifies.
    v.check_fragment(&segments[2].1, false).expect("third");
}

#[test]
fn without_its_anchor_or_after_expiry_the_init_is_refused() {
    let init = read("init.mp4");
    // Pinned to a root alone: no provenance anchor in the manifest.
    let mut v = LiveValidator::new(root());
    assert_eq!(
        refusal_code(v.admit_init(&init, SIGNED_AT)),
        Code::Untrusted
    );
    assert_eq!(
        refusal_code(v.check_fragment(&segments()[0].1, false)),
        Code::SegmentInvalid
    );
    // Another CA as anchor.
    let other = ProvenanceCa::generate("another cluster", SIGNED_AT).expect("ca");
    let other = trust_anchors_from_pem(other.cert_pem().as_bytes()).expect("pem");
    let mut v = LiveValidator::with_trust_anchors(root(), other);
    assert_eq!(
        refusal_code(v.admit_init(&init, SIGNED_AT)),
        Code::Untrusted
    );
    // The right anchor, but the claim signer's certificate has expired.
    assert_eq!(
        refusal_code(validator().admit_init(&init, AFTER_EXPIRY)),
        Code::Expired
    );
}

#[test]
fn trust_anchor_files_hold_certificates_only() {
    assert!(trust_anchors_from_pem(b"").is_err());
    assert!(trust_anchors_from_pem(
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    )
    .is_err());
    assert_eq!(
        trust_anchors_from_pem(&read("anchors.pem"))
            .expect("anchors")
            .len(),
        1
    );
}
