//! The report of `bench/viewer-verify.sh` (issue 31): what checking every fragment costs
//! one Chromium viewer, per verification path (WebCrypto, the vendored library), as the
//! page's own records say. It was a Python report (`bench/lib/reports/viewer_verify.py`,
//! in git history before this module), whose text it writes.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{json_lines, Report, Rounds};
use crate::spread::{grouped, median};

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
/// `bench/viewer_verify.py` prints them, with the round).
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
