//! A validator we did not write checks our C2PA live video in Chromium (issue 47): the
//! SVTA common media library's `@svta/cml-c2pa` (`validateC2paInitSegment`,
//! `validateC2paSegment`, §19.4 Verifiable Segment Info) over media signed by the real
//! signing code (`certs::c2pa::vectors`): every init segment, part and segment of the
//! signed rendition, then a flipped byte, a segment of another stream, a replayed older
//! segment and a session key outside its validity, each with the status codes SVTA reports.
//!
//! The library is not kept in this repository: the test runs one ES module of it and its
//! peer dependencies, named by `SEALCAST_SVTA_C2PA` (docs/provenance.md, What a
//! third-party validator sees), and is ignored unless asked for
//! (`cargo test -p broadcast --test broadcast -- --ignored svta`).
//!
//! SVTA reads the wall clock (`new Date()`) for a session key's validity; the page pins
//! `Date` to each step's time (the vectors are signed at `certs::c2pa::vectors::NOW`).
//! It is handed no trust anchor: it checks the claim signature against the certificate
//! the manifest carries, not a chain to a root (ours and c2pa-rs's do).
//!
//! A local axum server on 127.0.0.1:0 (a secure context, so WebCrypto is there) serves
//! the page, its script, the library and the steps.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use certs::c2pa::vectors::{self as c2pa_vectors, Case, Kind, NOW};
use http::header;
use serde_json::{json, Value};
use testkit::browser::Browser;
use tokio::net::TcpListener;

/// Where the library's ES module is read from.
const BUNDLE_VAR: &str = "SEALCAST_SVTA_C2PA";
/// Optional: a live stream as an edge served it, one folder per rendition holding
/// `init.mp4`, `seg_*.m4s` and `part_*.m4s` (names that sort in order), each rendition
/// then one more run in which SVTA must accept everything, at the wall clock.
const CAPTURE_VAR: &str = "SEALCAST_SVTA_C2PA_CAPTURE";
/// How long the page may take.
const PAGE_LIMIT: Duration = Duration::from_secs(60);

const SEGMENT_INVALID: &str = "livevideo.segment.invalid";
const ASSERTION_INVALID: &str = "livevideo.assertion.invalid";
const SESSIONKEY_INVALID: &str = "livevideo.sessionkey.invalid";
const INIT_INVALID: &str = "livevideo.init.invalid";

const TEST_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SVTA C2PA</title>
<script type="module" src="/svta-test.js"></script>
</head><body><p>@svta/cml-c2pa under test</p></body></html>"#;

/// Every run through fresh state: an init segment's session keys, and one sequence state
/// per kind (a viewer fetches parts or segments; a part's VSI carries its `mfhd`, a
/// segment's its place). `Date` is pinned to each step's `now_ms`. Leaves `window.result`.
const TEST_SCRIPT: &str = r#"
import { validateC2paInitSegment, validateC2paSegment } from '/cml-c2pa.js';

const RealDate = Date;
let clock = null;
class PinnedDate extends RealDate {
  constructor(...args) { super(...(args.length ? args : [clock ?? RealDate.now()])); }
  static now() { return clock ?? RealDate.now(); }
}
globalThis.Date = PinnedDate;

const fromHex = (hex) => Uint8Array.from(hex.match(/../g) || [], (h) => parseInt(h, 16));

async function run(r) {
  let keys = [];
  const sequences = {};
  const out = [];
  for (const s of r.steps) {
    clock = s.now_ms;
    const bytes = fromHex(s.bytes);
    try {
      if (s.kind === 'init') {
        const v = await validateC2paInitSegment(bytes);
        keys = v.sessionKeys;
        out.push({ valid: v.isValid, codes: v.errorCodes, keys: v.sessionKeys.length });
      } else {
        const v = await validateC2paSegment(bytes, keys, sequences[s.kind]);
        if (v === null) {
          out.push({ valid: false, codes: ['no VSI'] });
        } else {
          sequences[s.kind] = v.nextSequenceState;
          out.push({ valid: v.result.isValid, codes: v.result.errorCodes,
                     sequence: v.result.sequenceNumber, order: v.result.sequenceResult.reason });
        }
      }
    } catch (e) {
      out.push({ valid: false, codes: [`threw: ${e && e.message}`] });
    }
  }
  clock = null;
  return { name: r.name, steps: out };
}

async function main() {
  const runs = await (await fetch('/runs.json')).json();
  const out = [];
  for (const r of runs) out.push(await run(r));
  return out;
}

main().then(
  (r) => { window.result = r; },
  (e) => { window.result = { failed: `${e && e.stack || e}` }; },
);
"#;

/// What SVTA must say of a step: accepted, or refused with exactly these codes.
#[derive(Debug, Clone, Copy)]
enum Want {
    Valid,
    Refused(&'static [&'static str]),
}

/// One step of a run: what it is, its bytes, the clock SVTA reads, and its verdict.
struct Step {
    kind: Kind,
    bytes: Vec<u8>,
    now_ms: u64,
    want: Want,
}

struct Run {
    name: String,
    steps: Vec<Step>,
}

fn step(kind: Kind, bytes: &[u8], want: Want) -> Step {
    Step {
        kind,
        bytes: bytes.to_vec(),
        now_ms: NOW * 1000,
        want,
    }
}

fn at(now_ms: u64, s: Step) -> Step {
    Step { now_ms, ..s }
}

fn flip_last(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if let Some(b) = out.last_mut() {
        *b ^= 1;
    }
    out
}

fn case<'a>(cases: &'a [Case], name: &str) -> &'a Case {
    cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("the vectors have no case {name:?}"))
}

/// The runs and what SVTA must say of each step.
fn runs() -> Vec<Run> {
    use Kind::{Init, Part, Segment};
    use Want::{Refused, Valid};
    let cases = c2pa_vectors::cases();
    // init, parts 1 to 3, segment 1 (parts 1 to 3), part 4, segment 2 (parts 4 to 6).
    let signed = &cases[0].steps;
    assert_eq!(signed.len(), 7, "{}", cases[0].name);
    let bytes = |i: usize| signed[i].bytes.as_slice();
    let (init, seg1, seg2) = (bytes(0), bytes(4), bytes(6));
    let stale = case(
        &cases,
        "a fragment signed after its session key's validity is refused",
    );
    let (stale_init, stale_part) = (&stale.steps[0].bytes, &stale.steps[1].bytes);
    // Its session key was made 8 days before NOW, valid for 7: the clock an hour after.
    let key_valid_ms = (NOW - 8 * 86_400 + 3_600) * 1000;
    vec![
        Run {
            name: "the signed rendition: the init segment, every part and segment".into(),
            steps: vec![
                step(Init, init, Valid),
                step(Part, bytes(1), Valid),
                step(Part, bytes(2), Valid),
                step(Part, bytes(3), Valid),
                step(Segment, seg1, Valid),
                step(Part, bytes(5), Valid),
                // Segments are numbered by their place (1, 2), parts by their mfhd.
                step(Segment, seg2, Valid),
            ],
        },
        Run {
            name: "a flipped byte in a part and in a segment".into(),
            steps: vec![
                step(Init, init, Valid),
                step(Part, &flip_last(bytes(1)), Refused(&[SEGMENT_INVALID])),
                step(Part, bytes(2), Valid),
                step(Segment, &flip_last(seg1), Refused(&[SEGMENT_INVALID])),
            ],
        },
        Run {
            name: "a segment of another stream".into(),
            steps: vec![
                step(Init, init, Valid),
                step(Segment, seg1, Valid),
                step(
                    Segment,
                    &c2pa_vectors::another_stream_segment(),
                    Refused(&[SEGMENT_INVALID]),
                ),
            ],
        },
        Run {
            name: "a replayed older segment and part".into(),
            steps: vec![
                step(Init, init, Valid),
                step(Segment, seg1, Valid),
                step(Segment, seg2, Valid),
                step(Segment, seg1, Refused(&[ASSERTION_INVALID])),
                step(Part, bytes(1), Valid),
                step(Part, bytes(2), Valid),
                step(Part, bytes(1), Refused(&[ASSERTION_INVALID])),
            ],
        },
        Run {
            name: "a session key past its validity, at the init segment".into(),
            steps: vec![
                step(Init, stale_init, Refused(&[SESSIONKEY_INVALID])),
                step(Part, stale_part, Refused(&[SEGMENT_INVALID])),
            ],
        },
        Run {
            name: "a session key that expires between the init segment and a part".into(),
            steps: vec![
                at(key_valid_ms, step(Init, stale_init, Valid)),
                step(Part, stale_part, Refused(&[SESSIONKEY_INVALID])),
            ],
        },
        init_run(
            &cases,
            "a changed moov is refused",
            Refused(&[INIT_INVALID]),
        ),
        init_run(
            &cases,
            "a changed claim is refused",
            Refused(&["claim.signature.mismatch"]),
        ),
        init_run(
            &cases,
            "a changed assertion is refused",
            Refused(&["assertion.hashedURI.mismatch"]),
        ),
        init_run(
            &cases,
            "an init segment with media is refused",
            Refused(&[INIT_INVALID]),
        ),
        // What SVTA leaves to its caller: whom to trust (it returns the claim signer's
        // certificate) and the certificate's validity.
        init_run(
            &cases,
            "a claim signer without the root's anchor is refused",
            Valid,
        ),
        init_run(&cases, "an expired claim signer is refused", Valid),
        Run {
            // SVTA judges a key's validity by its clock, not the VSI's iat (its own note:
            // §19.7.3 asks for the segment's time, which the VSI map does not carry).
            name: "a part signed after its key's validity, checked while the key is valid".into(),
            steps: vec![
                at(key_valid_ms, step(Init, stale_init, Valid)),
                at(key_valid_ms, step(Part, stale_part, Valid)),
            ],
        },
    ]
}

/// One run per rendition of a captured live stream: its init segment, its segments in
/// order and its parts in order (SVTA keeps one sequence state per kind), all valid now.
fn captured(dir: &std::path::Path) -> Vec<Run> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let mut renditions: Vec<_> = std::fs::read_dir(dir)
        .expect("the capture folder")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.is_dir())
        .collect();
    renditions.sort();
    assert!(!renditions.is_empty(), "{}: no renditions", dir.display());
    renditions
        .iter()
        .map(|r| {
            let mut files: Vec<_> = std::fs::read_dir(r)
                .expect("a rendition folder")
                .map(|e| e.expect("an entry").path())
                .collect();
            files.sort();
            let of = |prefix: &str, kind: Kind| {
                (files.iter())
                    .filter(|f| {
                        f.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
                    })
                    .map(|f| {
                        at(
                            now_ms,
                            step(kind, &std::fs::read(f).expect("read"), Want::Valid),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            let init = std::fs::read(r.join("init.mp4")).expect("init.mp4");
            let mut steps = vec![at(now_ms, step(Kind::Init, &init, Want::Valid))];
            steps.extend(of("seg_", Kind::Segment));
            steps.extend(of("part_", Kind::Part));
            Run {
                name: format!("captured {}", r.display()),
                steps,
            }
        })
        .collect()
}

/// The init segment of the vectors' case `name` (one whose first step is an init segment
/// our validators refuse), alone, with what SVTA says of it.
fn init_run(cases: &[Case], name: &'static str, want: Want) -> Run {
    let c = case(cases, name);
    assert!(matches!(c.steps[0].kind, Kind::Init), "{name}");
    Run {
        name: name.into(),
        steps: vec![step(Kind::Init, &c.steps[0].bytes, want)],
    }
}

fn runs_json(runs: &[Run]) -> Value {
    Value::Array(
        runs.iter()
            .map(|r| {
                let steps: Vec<Value> = r
                    .steps
                    .iter()
                    .map(|s| {
                        let kind = match s.kind {
                            Kind::Init => "init",
                            Kind::Segment => "segment",
                            Kind::Part => "part",
                        };
                        json!({ "kind": kind, "bytes": hex::encode(&s.bytes), "now_ms": s.now_ms })
                    })
                    .collect();
                json!({ "name": r.name, "steps": steps })
            })
            .collect(),
    )
}

/// Serves the page, its script, the library and the runs; returns the origin.
async fn serve(bundle: Vec<u8>, runs: String) -> String {
    let js = |body: String| {
        move || {
            let body = body.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    body,
                )
            }
        }
    };
    let bundle = String::from_utf8(bundle).expect("the library's module is UTF-8");
    let app = Router::new()
        .route(
            "/svta-test.html",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    TEST_PAGE,
                )
            }),
        )
        .route("/svta-test.js", get(js(TEST_SCRIPT.to_owned())))
        .route("/cml-c2pa.js", get(js(bundle)))
        .route(
            "/runs.json",
            get(move || {
                let runs = runs.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], runs) }
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    origin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs SEALCAST_SVTA_C2PA, the SVTA's @svta/cml-c2pa as one ES module"]
async fn svta_cml_c2pa_validates_our_live_video_in_chromium() {
    let path = std::env::var_os(BUNDLE_VAR).unwrap_or_else(|| {
        panic!("{BUNDLE_VAR}: the path of @svta/cml-c2pa as one ES module (docs/provenance.md)")
    });
    let bundle = std::fs::read(&path).expect("read the library's module");
    let mut runs = runs();
    if let Some(dir) = std::env::var_os(CAPTURE_VAR) {
        runs.extend(captured(std::path::Path::new(&dir)));
    }
    let origin = serve(bundle, runs_json(&runs).to_string()).await;
    let mut browser = Browser::start(800, 600).await.expect("Chromium");
    let url = format!("{origin}/svta-test.html");
    browser.goto(&url).await.expect("open the page");
    let result = match browser
        .wait_for(
            "the page has SVTA's verdicts",
            "return window.result || null",
            Value::Null,
            PAGE_LIMIT,
            |_| Ok(()),
        )
        .await
    {
        Ok(result) => result,
        Err(error) => {
            let events = browser.events().await.map(|e| format!("{e:?}"));
            panic!("{url}: {error:#}\n{events:?}")
        }
    };
    let events = browser.events().await.expect("page events");
    assert!(
        events.errors.is_empty(),
        "{url}: uncaught {:?}",
        events.errors
    );
    let got = result
        .as_array()
        .unwrap_or_else(|| panic!("{url}: {result}"));
    assert_eq!(got.len(), runs.len(), "{result}");
    let mut wrong = Vec::new();
    for (run, seen) in runs.iter().zip(got) {
        assert_eq!(seen["name"], run.name);
        let steps = seen["steps"].as_array().expect("steps");
        assert_eq!(steps.len(), run.steps.len(), "{}: {seen}", run.name);
        for (i, (s, verdict)) in run.steps.iter().zip(steps).enumerate() {
            let ok = match s.want {
                Want::Valid => verdict["valid"] == true && verdict["codes"] == json!([]),
                Want::Refused(codes) => {
                    verdict["valid"] == false && verdict["codes"] == json!(codes)
                }
            };
            if !ok {
                wrong.push(format!(
                    "{}, step {}: expected {:?}, SVTA said {verdict}",
                    run.name,
                    i + 1,
                    s.want
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    browser.quit().await.expect("quit");
}
