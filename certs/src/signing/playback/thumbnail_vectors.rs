//! The thumbnail cases both verifiers run: this crate's [`verify_thumbnail`] (the tests
//! below) and verify.js's `verifyThumbnail` in Chromium
//! (`broadcast/tests/broadcast/thumbnail_verify.rs`), each with the verdict both must give,
//! over the trust of [`Keys`] (the media vectors' keys: certified, revoked at `now`,
//! expired, never certified). Statements are made by the real signing code
//! (`ThumbnailStatement::from_meta`), then changed where a case says so.

use domain::wire::{SignedThumbnail, ThumbnailStatement};
use domain::{SegmentMeta, SessionId, StreamName, ThumbnailMeta, MAX_THUMBNAIL_BYTES};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::thumbnail::{verify_thumbnail, ThumbnailExpect};
use super::vectors::{media, Keys, LATER_SESSION, RENDITION, SESSION, STREAM};
use super::{Reason, ViewerTrust};
use crate::signing::SigningKey;

/// One thumbnail checked by a fresh verifier.
#[derive(Debug, Clone)]
pub struct ThumbnailCase {
    /// What it shows.
    pub name: &'static str,
    /// The JPEG's bytes (stand-ins: nobody decodes them here).
    pub jpeg: Vec<u8>,
    /// The sidecar's bytes.
    pub sidecar: Vec<u8>,
    /// The stream asked for.
    pub stream: &'static str,
    /// A recording's session, or `None` for a live thumbnail.
    pub recording: Option<SessionId>,
    /// The viewer's clock, unix milliseconds.
    pub now_ms: u64,
    /// `None`: it verifies; else the reason both verifiers give.
    pub expect: Option<Reason>,
}

fn meta(session: SessionId, captured_ms: u64) -> ThumbnailMeta {
    ThumbnailMeta {
        stream: StreamName::new(STREAM).expect("valid"),
        session,
        sequence: 7,
        captured_ms,
        width: 320,
        height: 180,
    }
}

fn sign(key: &SigningKey, statement: &ThumbnailStatement) -> Vec<u8> {
    SignedThumbnail::sign(statement, |b| key.sign(b)).encode()
}

fn statement(key: &SigningKey, meta: &ThumbnailMeta, jpeg: &[u8]) -> ThumbnailStatement {
    ThumbnailStatement::from_meta(
        meta,
        key.algorithm(),
        key.key_id(),
        jpeg.len() as u64,
        Sha256::digest(jpeg).into(),
    )
}

/// Every case, over `k`.
pub fn thumbnail_cases(k: &Keys) -> Vec<ThumbnailCase> {
    let now_ms = k.now * 1000;
    let jpeg = media(31, 1500);
    let live = meta(SESSION, now_ms - 2_000);
    let good = sign(&k.ingest, &statement(&k.ingest, &live, &jpeg));
    let case = |name, jpeg: &[u8], sidecar: Vec<u8>, recording, expect| ThumbnailCase {
        name,
        jpeg: jpeg.to_vec(),
        sidecar,
        stream: STREAM,
        recording,
        now_ms,
        expect,
    };
    let mut altered = jpeg.clone();
    altered[100] ^= 1;
    let mut forged = good.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let mut other_stream = live.clone();
    other_stream.stream = StreamName::new("other").expect("valid");
    let mut too_large = statement(&k.ingest, &live, &jpeg);
    too_large.byte_len = MAX_THUMBNAIL_BYTES as u64 + 1;
    // Captured ten minutes before the revocation: a recording's still counts.
    let before = meta(SESSION, now_ms - 600_000);
    let segment = {
        let m = SegmentMeta {
            stream: StreamName::new(STREAM).expect("valid"),
            rendition: domain::RenditionName::new(RENDITION).expect("valid"),
            session: SESSION,
            sequence: 7,
            discontinuity_sequence: 0,
            discontinuity: false,
            duration: std::time::Duration::from_secs(2),
            start_pts_90k: 0,
        };
        let s = domain::wire::SegmentStatement::from_meta(
            &m,
            k.ingest.algorithm(),
            k.ingest.key_id(),
            jpeg.len() as u64,
            Sha256::digest(&jpeg).into(),
        );
        domain::wire::SignedMedia::sign(&domain::wire::MediaStatement::Segment(s), |b| {
            k.ingest.sign(b)
        })
        .encode()
    };
    vec![
        case("live, genuine", &jpeg, good.clone(), None, None),
        case(
            "recording, genuine",
            &jpeg,
            good.clone(),
            Some(SESSION),
            None,
        ),
        case(
            "recording, another session's",
            &jpeg,
            good.clone(),
            Some(LATER_SESSION),
            Some(Reason::WrongSession),
        ),
        case(
            "another stream's",
            &jpeg,
            sign(&k.ingest, &statement(&k.ingest, &other_stream, &jpeg)),
            None,
            Some(Reason::WrongStream),
        ),
        case(
            "bytes altered",
            &altered,
            good.clone(),
            None,
            Some(Reason::DigestMismatch),
        ),
        case(
            "bytes cut",
            &jpeg[..1000],
            good.clone(),
            None,
            Some(Reason::WrongLength),
        ),
        case(
            "signature altered",
            &jpeg,
            forged,
            None,
            Some(Reason::BadSignature),
        ),
        case(
            "a key the root never certified",
            &jpeg,
            sign(&k.stranger, &statement(&k.stranger, &live, &jpeg)),
            None,
            Some(Reason::UnknownKey),
        ),
        case(
            "the revoked key, live",
            &jpeg,
            sign(&k.revoked, &statement(&k.revoked, &live, &jpeg)),
            None,
            Some(Reason::RevokedKey),
        ),
        case(
            "the revoked key, a recording's captured before",
            &jpeg,
            sign(&k.revoked, &statement(&k.revoked, &before, &jpeg)),
            Some(SESSION),
            None,
        ),
        case(
            "the expired key, live",
            &jpeg,
            sign(&k.expired, &statement(&k.expired, &live, &jpeg)),
            None,
            Some(Reason::ExpiredKey),
        ),
        case(
            "a segment's statement",
            &jpeg,
            segment,
            None,
            Some(Reason::WrongKind),
        ),
        case(
            "no sidecar",
            &jpeg,
            Vec::new(),
            None,
            Some(Reason::MissingSignature),
        ),
        case(
            "garbage",
            &jpeg,
            b"not an envelope".to_vec(),
            None,
            Some(Reason::MalformedSignature),
        ),
        case(
            "over the size cap",
            &jpeg,
            sign(&k.ingest, &too_large),
            None,
            Some(Reason::MalformedSignature),
        ),
    ]
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cases as the browser test's page reads them.
pub fn thumbnail_cases_json(cases: &[ThumbnailCase]) -> Value {
    let cases: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "jpeg": hex(&c.jpeg),
                "sidecar": hex(&c.sidecar),
                "stream": c.stream,
                "recording": c.recording.map(|s| s.to_string()),
                "now_ms": c.now_ms,
                "expect": c.expect.map_or("ok", Reason::label),
            })
        })
        .collect();
    Value::Array(cases)
}

/// `case` through [`verify_thumbnail`] over `trust`: `ok` or the refusal's label.
pub fn verdict(trust: &ViewerTrust, case: &ThumbnailCase) -> &'static str {
    let stream = StreamName::new(case.stream).expect("valid");
    let expect = ThumbnailExpect {
        stream: &stream,
        recording: case.recording,
    };
    match verify_thumbnail(trust, &case.jpeg, &case.sidecar, expect, case.now_ms) {
        Ok(_) => "ok",
        Err(refused) => refused.reason.label(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::wire::SignatureAlgorithm;

    #[test]
    fn the_rust_twin_gives_every_case_its_verdict() {
        for algorithm in [SignatureAlgorithm::Ed25519, SignatureAlgorithm::MlDsa65] {
            let keys = Keys::new(algorithm, 1_800_000_000);
            let mut trust = ViewerTrust::new(keys.root.public_key());
            assert_eq!(trust.admit_bundle(&keys.bundle()), 0);
            for case in thumbnail_cases(&keys) {
                assert_eq!(
                    verdict(&trust, &case),
                    case.expect.map_or("ok", Reason::label),
                    "{algorithm:?}: {}",
                    case.name
                );
            }
        }
    }
}
