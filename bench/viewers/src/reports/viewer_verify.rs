//! The report of `bench/viewer-verify.sh` (issue 31): what checking every fragment costs
//! one Chromium viewer, per verification path (WebCrypto, the vendored library), as the
//! page's own records say. It was a Python report (`bench/lib/reports/viewer_verify.py`,
//! in git history before this module), whose text it writes. What one viewer's page
//! recorded becomes a run's record with [`measure`] (`sealcast-bench sample viewer-verify`,
//! [`crate::viewer_verify`]; `bench/viewer_verify.py`, in git history, before).

use std::collections::BTreeSet;

use anyhow::Context;
use serde::Serialize;
use serde_json::{json, Value};

use super::python::{truthy, InOrder};
use super::{json_lines, Report, Rounds};
use crate::spread::{grouped, median};

/// An ML-DSA-65 part envelope's bytes for stream `stream`, rendition `rendition`: u32 ‖
/// part statement ‖ u32 ‖ 3309-byte signature; the statement is 27 + 1 + 16 + (1+|S|) + 8
/// + (1+|R|) + 8 + 4 + 1 + 32 + 32 bytes.
pub fn mldsa_part_envelope(stream: &str, rendition: &str) -> u64 {
    let (s, r) = (
        stream.chars().count() as u64,
        rendition.chars().count() as u64,
    );
    8 + (27 + 1 + 16 + 1 + s + 8 + 1 + r + 8 + 4 + 1 + 32 + 32) + 3309
}

/// Python's `a + b` or `a - b` (`minus`) of JSON numbers: an int when both are, else a
/// float.
fn arith(a: &Value, b: &Value, minus: bool) -> anyhow::Result<Value> {
    let ints = (a.as_i64(), b.as_i64());
    if let (Some(x), Some(y), false, false) = (ints.0, ints.1, a.is_f64(), b.is_f64()) {
        let r = if minus {
            x.checked_sub(y)
        } else {
            x.checked_add(y)
        };
        return r.map(Value::from).context("an int beyond 64 bits");
    }
    let (x, y) = (
        a.as_f64().with_context(|| format!("{a} is not a number"))?,
        b.as_f64().with_context(|| format!("{b} is not a number"))?,
    );
    Ok(json!(if minus { x - y } else { x + y }))
}

/// What a kind of request came to: how many, and their bytes (`encodedBodySize`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kind {
    /// Requests.
    pub requests: u64,
    /// Their bodies' bytes as they came over the wire.
    pub bytes: Value,
}

/// One viewer's run, as `runs.jsonl` holds it (its members in the Python's order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measured {
    /// The player's verification path (`window.sealcast.verification.mode`).
    pub mode: Value,
    /// The page's query (`?verify=library`, or none).
    pub query: String,
    /// The rung played.
    pub rendition: String,
    /// Media seconds played while measured.
    pub played_s: Value,
    /// Wall seconds measured.
    pub wall_s: f64,
    /// Fragments verified.
    pub verified: Value,
    /// Fragments refused.
    pub refused: Value,
    /// Milliseconds the loader spent in its checks per second played.
    pub verify_cpu_ms_per_viewer_s: Option<f64>,
    /// Requests and bytes by kind (media, sidecar, partkey, trust, playlist, other), in the
    /// order first requested.
    pub(crate) kinds: InOrder<Kind>,
    /// Media bytes per second played.
    pub media_bytes_per_s: Option<f64>,
    /// Requests verification added (sidecars, delegations, trust) per second played.
    pub added_requests_per_s: Option<f64>,
    /// Their bytes per second played.
    pub added_bytes_per_s: Option<f64>,
    /// Their bytes over the media's.
    pub added_bytes_share: Option<f64>,
    /// Part sidecars fetched.
    pub parts: u64,
    /// The added bytes per second played had every part's sidecar been an ML-DSA-65
    /// envelope, and no delegation fetched (computed).
    pub without_delegation_bytes_per_s: Option<f64>,
    /// Those bytes over the media's.
    pub without_delegation_share: Option<f64>,
}

/// The kind of a request, by its URL's path.
fn kind(url: &str) -> &'static str {
    let path = url.split('?').next().unwrap_or_default();
    if path.ends_with(".sig") {
        "sidecar"
    } else if path.ends_with(".partkey") {
        "partkey"
    } else if path.contains("/trust/v1/") {
        "trust"
    } else if path.ends_with(".m3u8") {
        "playlist"
    } else if [".m4s", ".mp4", ".ts"].iter().any(|e| path.ends_with(e)) {
        "media"
    } else {
        "other"
    }
}

/// A run's record from what the page said at the start (`t`, `timeMs`, `verified`,
/// `refused`, `wall`) and at the end (the same, `mode`, and every resource's `[url,
/// encodedBodySize, transferSize]` since the start).
pub fn measure(
    start: &Value,
    end: &Value,
    stream: &str,
    rendition: &str,
    query: &str,
) -> anyhow::Result<Measured> {
    let sub = |k: &str| arith(&end[k], &start[k], true).with_context(|| format!("the page's {k}"));
    let played = sub("t")?;
    let played_f = played.as_f64().unwrap_or(0.0);
    let per_s = |n: &Value| -> Option<f64> {
        (played_f > 0.0).then(|| n.as_f64().unwrap_or(0.0) / played_f)
    };
    let mut kinds: Vec<(String, Kind)> = Vec::new();
    let (mut parts, mut part_sidecar_bytes) = (0u64, json!(0));
    let entries = end["entries"]
        .as_array()
        .context("the page listed no resources")?;
    for entry in entries {
        let url = entry[0].as_str().context("a resource without its URL")?;
        let body = &entry[1];
        let k = kind(url);
        let slot = match kinds.iter().position(|(n, _)| n == k) {
            Some(i) => i,
            None => {
                kinds.push((
                    k.to_owned(),
                    Kind {
                        requests: 0,
                        bytes: json!(0),
                    },
                ));
                kinds.len() - 1
            }
        };
        let slot = &mut kinds[slot].1;
        slot.requests += 1;
        slot.bytes = arith(&slot.bytes, body, false)?;
        // Without delegation: each part sidecar at the ML-DSA-65 envelope size.
        let name = url.split('?').next().unwrap_or_default();
        let name = name.rsplit('/').next().unwrap_or_default();
        if name.ends_with(".m4s.sig") && name.matches('.').count() == 3 {
            part_sidecar_bytes = arith(&part_sidecar_bytes, body, false)?;
            parts += 1;
        }
    }
    let of = |k: &str| {
        kinds.iter().find(|(n, _)| n == k).map_or(
            Kind {
                requests: 0,
                bytes: json!(0),
            },
            |(_, v)| v.clone(),
        )
    };
    let media = of("media");
    let added = [of("sidecar"), of("partkey"), of("trust")];
    let added_requests: u64 = added.iter().map(|k| k.requests).sum();
    let mut added_bytes = json!(0);
    for k in &added {
        added_bytes = arith(&added_bytes, &k.bytes, false)?;
    }
    let without = arith(&added_bytes, &added[1].bytes, true)?;
    let without = arith(&without, &part_sidecar_bytes, true)?;
    let envelopes = json!(parts * mldsa_part_envelope(stream, rendition));
    let without = arith(&without, &envelopes, false)?;
    let share = |n: &Value| {
        truthy(&media.bytes)
            .then(|| n.as_f64().unwrap_or(0.0) / media.bytes.as_f64().unwrap_or(1.0))
    };
    let wall = arith(&end["wall"], &start["wall"], true)?
        .as_f64()
        .unwrap_or(0.0)
        / 1000.0;
    Ok(Measured {
        mode: end["mode"].clone(),
        query: query.to_owned(),
        rendition: rendition.to_owned(),
        played_s: played.clone(),
        wall_s: wall,
        verified: sub("verified")?,
        refused: sub("refused")?,
        verify_cpu_ms_per_viewer_s: per_s(&sub("timeMs")?),
        media_bytes_per_s: per_s(&media.bytes),
        added_requests_per_s: per_s(&json!(added_requests)),
        added_bytes_per_s: per_s(&added_bytes),
        added_bytes_share: share(&added_bytes),
        parts,
        without_delegation_bytes_per_s: per_s(&without),
        without_delegation_share: share(&without),
        kinds: InOrder(kinds),
    })
}

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## Viewer verification";

/// The median of `field` over `runs`, the runs without it left out.
fn median_of(runs: &[&Value], value: impl Fn(&Value) -> Option<f64>) -> Option<f64> {
    let known: Vec<f64> = runs.iter().filter_map(|r| value(r)).collect();
    median(&known)
}

fn field(key: &'static str) -> impl Fn(&Value) -> Option<f64> {
    move |r| r.get(key).and_then(Value::as_f64)
}

/// Media requests per second played.
fn media_requests_per_s(r: &Value) -> Option<f64> {
    let requests = r
        .pointer("/kinds/media/requests")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let played = r.get("played_s").and_then(Value::as_f64)?;
    (played > 0.0).then(|| requests / played)
}

/// The report of a run from its `runs.jsonl` (one viewer's records a line, as
/// `sealcast-bench sample viewer-verify` prints them, with the round `sample tagged` adds).
/// `run`: the seconds each viewer played, the rounds per path.
pub fn report(runs_jsonl: &str, run: &Rounds) -> anyhow::Result<Report> {
    let runs = json_lines("run", runs_jsonl)?;
    let modes: BTreeSet<&str> = runs
        .iter()
        .filter_map(|r| r.get("mode").and_then(Value::as_str))
        .collect();
    let mut lines = vec![
        HEADING.to_owned(),
        String::new(),
        format!(
            "One Chromium viewer plays the 360p rung (730 kb/s, LL-HLS parts of 0.333 s) of a \
             live 720p30 `sealcast source` through the load balancer for {} s, {} rounds per \
             path (medians below), checking every fragment itself (issue 31). CPU is the time \
             the player's loader spends in its checks (SHA-256, signature, delegation) per \
             second of media played; requests and bytes are the page's Resource Timing \
             (`encodedBodySize`) per second played: what verification adds (sidecars, \
             part-key delegations, trust bundle) against the media. \"Without delegation\" is \
             the same requests with every part's sidecar at the size of an ML-DSA-65 part \
             envelope and no delegation: computed, not measured.",
            run.seconds, run.rounds
        ),
        String::new(),
        "| path | runs | verify CPU ms per viewer-s | added requests/s | media requests/s | \
         added bytes/s | media bytes/s | added share | without delegation: bytes/s | share | \
         refused |"
            .to_owned(),
        "|---|---|---|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    for mode in modes {
        let mine: Vec<&Value> = runs
            .iter()
            .filter(|r| r.get("mode").and_then(Value::as_str) == Some(mode))
            .collect();
        let share = |key| median_of(&mine, field(key)).map(|s| s * 100.0);
        let refused: u64 = mine
            .iter()
            .filter_map(|r| r.get("refused").and_then(Value::as_u64))
            .sum();
        lines.push(format!(
            "| {mode} | {} | {} | {} | {} | {} | {} | {} % | {} | {} % | {refused} |",
            mine.len(),
            grouped(median_of(&mine, field("verify_cpu_ms_per_viewer_s")), 2),
            grouped(median_of(&mine, field("added_requests_per_s")), 2),
            grouped(median_of(&mine, media_requests_per_s), 2),
            grouped(median_of(&mine, field("added_bytes_per_s")), 0),
            grouped(median_of(&mine, field("media_bytes_per_s")), 0),
            grouped(share("added_bytes_share"), 1),
            grouped(median_of(&mine, field("without_delegation_bytes_per_s")), 0),
            grouped(share("without_delegation_share"), 1),
        ));
    }
    lines.extend(
        [
            "",
            "Goal (issue 31): added bytes under 3 % of the media at the 360p rung.",
            "",
            "Run it with `bench/viewer-verify.sh [SECONDS] [ROUNDS]`.",
        ]
        .map(str::to_owned),
    );
    Ok(Report {
        section: lines.join("\n") + "\n",
        heading: HEADING,
        after: Some("## Glass-to-glass latency"),
        raw: Value::Array(runs),
        refusal: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The raw results of the run in `docs/benchmarks.md` (84c3c4c's
    /// bench/results/viewer-verify.json) give the section the Python report wrote there.
    #[test]
    fn the_committed_run_gives_the_section_the_python_report_wrote() {
        let runs = include_str!("testdata/viewer-verify-84c3c4c.jsonl");
        let report = report(
            runs,
            &Rounds {
                seconds: 40,
                rounds: 2,
            },
        )
        .expect("a report");
        let table: Vec<&str> = report.section.lines().skip(6).take(2).collect();
        assert_eq!(
            table,
            [
                "| in this browser (WebCrypto) | 2 | 1.08 | 3.15 | 3.06 | 977 | 98,901 | 1.0 % | 10,560 | 10.7 % | 0 |",
                "| in this browser (library) | 2 | 4.60 | 3.24 | 3.14 | 995 | 100,693 | 1.0 % | 10,844 | 10.8 % | 0 |",
            ]
        );
        assert!(report
            .section
            .contains("through the load balancer for 40 s, 2 rounds per path"));
        assert_eq!(report.raw.as_array().map(Vec::len), Some(4));
    }

    /// What `measure` makes of a page's records against what `bench/viewer_verify.py`
    /// printed for them: the same members in the same order, the same numbers (an int
    /// where it had an int).
    fn same_as_python(case: &str, stream: &str, rendition: &str, query: &str) {
        use crate::reports::python::{parse_json, Ordered};
        let case = parse_json(case).expect("a case");
        let python = case["python"].as_str().expect("the Python's line");
        let ours =
            measure(&case["start"], &case["end"], stream, rendition, query).expect("a record");
        let ours = serde_json::to_string(&ours).expect("JSON");
        assert_eq!(
            parse_json(&ours).expect("JSON"),
            parse_json(python).expect("JSON")
        );
        let keys = |text: &str| {
            let o: Ordered = serde_json::from_str(text).expect("an object");
            let kinds: Ordered = serde_json::from_value(
                o.0.iter()
                    .find(|(k, _)| k == "kinds")
                    .expect("kinds")
                    .1
                    .clone(),
            )
            .expect("kinds");
            (
                o.0.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
                kinds.0.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
        };
        assert_eq!(keys(&ours), keys(python));
    }

    /// A live viewer of the 360p rung for 10 s (WebCrypto): what the page said at the
    /// start and at the end, and what the Python made of it.
    #[test]
    fn a_page_s_records_give_the_python_s_record() {
        let case = include_str!("testdata/viewer-verify-page.json");
        same_as_python(case, "main", "360p", "");
        assert_eq!(mldsa_part_envelope("main", "360p"), 3456);
        assert_eq!(
            kind("https://h/live/main/360p/5.2.m4s.sig?x=.m4s"),
            "sidecar"
        );
        assert_eq!(kind("https://h/trust/v1/bundle.json"), "trust");
        assert_eq!(kind("https://h/live/main/360p/12.ts"), "media");
        assert!(measure(&json!({}), &json!({}), "main", "360p", "").is_err());
    }

    #[test]
    fn runs_that_measured_nothing_print_dashes() {
        let report = report(
            "{\"mode\": \"m\", \"played_s\": 0, \"refused\": 2}\n\n",
            &Rounds {
                seconds: 1,
                rounds: 1,
            },
        )
        .expect("a report");
        assert!(
            report
                .section
                .contains("| m | 1 | — | — | — | — | — | — % | — | — % | 2 |"),
            "{}",
            report.section
        );
        assert!(super::report(
            "{",
            &Rounds {
                seconds: 1,
                rounds: 1
            }
        )
        .is_err());
    }
}
