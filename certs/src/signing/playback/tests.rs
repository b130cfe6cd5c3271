//! The vectors of `vectors.rs`, which the browser's test
//! (`broadcast/tests/broadcast/player_verify.rs`) runs through `web/src/verify.js`, against the
//! Rust twin: each case a run of fragments through one fresh verifier, with the verdict each
//! must get. Below them, what only this crate's API has (the delegation asked for once,
//! another root's bundle) and the reason strings checked against verify.js's.

use super::vectors::{self, cases, Keys, Step, Verdict, LIVE, RENDITION, STREAM};
use super::*;
use crate::signing::SignatureAlgorithm;

/// The viewer's clock of the vectors, unix seconds (any time will do: nothing here reads
/// the machine's clock).
const NOW: u64 = 1_800_000_000;

/// Runs one case on a fresh verifier; the verdicts, as reason strings.
fn run(trust: &ViewerTrust, playback: &str, steps: &[Step]) -> Vec<String> {
    let mut verifier = PlaybackVerifier::new(trust.clone(), Playback::of_path(playback));
    let mut out = Vec::new();
    for s in steps {
        if s.reposition {
            verifier.reposition();
        }
        let fragment = Fragment {
            path: &s.url,
            bytes: &s.bytes,
            sidecar: s.sidecar.as_deref(),
            sequence: s.sequence,
            part: s.part,
            discontinuity: s.discontinuity,
            duration: s.duration,
            now_ms: s.now_ms,
        };
        let gaps = s.gaps.clone();
        let mut verdict = verifier.check(&fragment, |n| gaps.contains(&n));
        // The browser fetches `{seq}.partkey` itself; here the caller hands it in.
        if let Check::NeedsPartKey { .. } = verdict {
            verdict = match verifier.admit_part_key(&fragment, s.part_key.as_deref()) {
                Ok(()) => verifier.check(&fragment, |n| gaps.contains(&n)),
                Err(refused) => Check::Refused(refused),
            };
        }
        out.push(match verdict {
            Check::Verified => "ok".to_owned(),
            Check::Refused(r) => r.reason.label().to_owned(),
            Check::NeedsPartKey { .. } => "needs_part_key".to_owned(),
        });
    }
    out
}

#[test]
fn every_case_gets_the_verdicts_the_browser_gets() {
    for algorithm in [SignatureAlgorithm::MlDsa65, SignatureAlgorithm::Ed25519] {
        let keys = Keys::new(algorithm, NOW);
        let mut trust = ViewerTrust::new(keys.root.public_key());
        assert_eq!(trust.admit_bundle(&keys.bundle()), 0);
        let mut wrong = Vec::new();
        for case in cases(&keys) {
            let got = run(&trust, case.playback, &case.steps);
            assert_eq!(got.len(), case.steps.len());
            for (i, (step, verdict)) in case.steps.iter().zip(&got).enumerate() {
                if verdict != step.expect.label() {
                    wrong.push(format!(
                        "{algorithm:?} {}, step {} ({}): expected {}, got {verdict}",
                        case.name,
                        i + 1,
                        step.url,
                        step.expect.label()
                    ));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}

#[test]
fn another_roots_bundle_admits_nothing() {
    let keys = Keys::new(SignatureAlgorithm::Ed25519, NOW);
    let other = Keys::new(SignatureAlgorithm::Ed25519, NOW);
    let mut trust = ViewerTrust::new(other.root.public_key());
    assert_eq!(trust.admit_bundle(&keys.bundle()), 4);
    let got = run(&trust, LIVE, &[keys.ok(&vectors::Fragment::segment(10))]);
    assert_eq!(got, ["unknown_key"]);
}

#[test]
fn a_delegation_is_asked_for_once_per_segment() {
    let keys = Keys::new(SignatureAlgorithm::Ed25519, NOW);
    let mut trust = ViewerTrust::new(keys.root.public_key());
    trust.admit_bundle(&keys.bundle());
    let mut verifier = PlaybackVerifier::new(trust, Playback::Live);
    let d = keys.delegate(&keys.ingest, (STREAM, RENDITION, 30, 34));
    let step = keys.by(&vectors::Fragment::part(30, 0), &d, Some(&d), Verdict::Ok);
    let fragment = Fragment {
        path: &step.url,
        bytes: &step.bytes,
        sidecar: step.sidecar.as_deref(),
        sequence: step.sequence,
        part: step.part,
        discontinuity: 0,
        duration: step.duration,
        now_ms: step.now_ms,
    };
    assert_eq!(
        verifier.check(&fragment, |_| false),
        Check::NeedsPartKey {
            path: format!("/live/{STREAM}/{RENDITION}/30.partkey")
        }
    );
    // Nothing was served: the second check says so instead of asking again.
    verifier
        .admit_part_key(&fragment, None)
        .expect("nothing to admit");
    let Check::Refused(r) = verifier.check(&fragment, |_| false) else {
        panic!("refused");
    };
    assert_eq!(r.reason, Reason::UnknownKey);
}

/// verify.js's header lists every reason this verifier gives, and its code refuses with
/// each: the strings are the product's contract (scripts and tests name them), so a reason
/// renamed or added on one side only fails here.
#[test]
fn the_reasons_are_verify_js_reasons() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/src/verify.js");
    let js = std::fs::read_to_string(path).expect("web/src/verify.js");
    let header: String = js
        .lines()
        .take_while(|l| l.starts_with("//"))
        .skip_while(|l| !l.starts_with("// Refusal reasons"))
        .take_while(|l| !l.trim_end().eq("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let listed = |label: &str| {
        header
            .split(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .any(|w| w == label)
    };
    let mut labels = HashSet::new();
    for reason in Reason::ALL {
        let label = reason.label();
        assert!(labels.insert(label), "{label} twice");
        assert!(
            listed(label),
            "{label} is not in verify.js's list of reasons"
        );
        assert!(
            js.contains(&format!("refuse('{label}'")),
            "verify.js never refuses with {label}"
        );
    }
}

/// Every reason is some vector's verdict, for both algorithms: the contract is tested
/// whole, in the browser as here.
#[test]
fn every_reason_has_a_vector() {
    for algorithm in [SignatureAlgorithm::MlDsa65, SignatureAlgorithm::Ed25519] {
        let keys = Keys::new(algorithm, NOW);
        let tested: HashSet<Verdict> = cases(&keys)
            .iter()
            .flat_map(|c| c.steps.iter().map(|s| s.expect))
            .collect();
        for reason in Reason::ALL {
            assert!(
                tested.contains(&Verdict::Refused(reason)),
                "{algorithm:?}: no vector is refused for {reason}"
            );
        }
        assert!(tested.contains(&Verdict::Ok));
    }
}
