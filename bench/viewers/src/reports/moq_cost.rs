//! The report of `bench/moq-cost.sh` (issue 48's cost goals): a MoQ viewer's cost on the
//! servers against an LL-HLS viewer's (the node alone, and through `sealcast lb` over
//! TLS), the same node and stream, and against nginx's polled LL-HLS of the same stream,
//! all in one run. It was a Python report (`bench/lib/reports/moq_cost.py`, in git history
//! before this module), whose text it writes.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{json_lines, push_notes, Report};
use crate::spread::{spread, text};

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## MoQ viewers' cost on one node";

/// The systems a run may measure, and how the table names them.
const SYSTEMS: [(&str, &str); 5] = [
    ("moq", "MoQ (node + moq-relay)"),
    ("moq+", "MoQ (node + moq-relay `VARIANT`)"),
    ("ll-hls", "LL-HLS (node, plain HTTP)"),
    ("ll-tls", "LL-HLS over TLS (lb + node)"),
    ("nginx", "polled LL-HLS (nginx, the peer)"),
];

/// One measurement, a line of the script's `runs.jsonl`.
#[derive(Debug, Deserialize)]
struct Measurement {
    system: String,
    run: u64,
    viewers: u64,
    window_s: u64,
    idle_cpu_s: f64,
    busy_cpu_s: f64,
    idle_rss_kib: f64,
    busy_rss_kib: f64,
    /// What the viewers reported (`sealcast-viewers` or `sealcast-moq-viewers`).
    report: serde_json::Value,
}

/// The share of a MoQ measurement's viewers that may fail before it is void (no figure, out
/// of the ratios): a relay that refused many of them was not serving the audience measured.
const VOID: f64 = 0.05;

/// What the script ran with, as it tells the report.
#[derive(Debug, Default)]
pub struct Run {
    /// `VIEWERS` as the script was given it.
    pub viewers: Option<String>,
    /// `RUNS` as the script was given it.
    pub runs: Option<String>,
    /// `RELAY_VARIANT`: the second relay's flags, when there was one.
    pub variant: String,
    /// The day of the run.
    pub date: String,
    /// `bench/moq-cost-notes.md`, when there is one.
    pub notes: Option<String>,
}

/// A measurement's cost per viewer, and how its viewers fared (the raw results' `figures`).
#[derive(Debug, Serialize)]
struct Figures {
    system: String,
    run: u64,
    viewers_per_cpu_s: Option<f64>,
    cpu_ms_per_viewer_s: Option<f64>,
    kib_per_viewer: Option<f64>,
    idle_cpu_pct: f64,
    stalls: u64,
    stalled_viewers: u64,
    failed: u64,
    /// MoQ's fan-out lateness, p50 and p99 (ms), when the viewers measured it.
    late_ms: Option<(Option<f64>, f64)>,
}

impl Figures {
    fn of(m: &Measurement) -> Figures {
        let n = m.viewers as f64;
        let window = m.window_s as f64;
        let extra = m.busy_cpu_s - m.idle_cpu_s;
        let r = &m.report;
        let count =
            |v: &serde_json::Value, key: &str| v.get(key).and_then(|x| x.as_u64()).unwrap_or(0);
        let (stalls, stalled_viewers, failed, late_ms) = if m.system.starts_with("moq") {
            let failed = r
                .get("failed")
                .and_then(|f| f.as_object())
                .map(|f| f.values().filter_map(|x| x.as_u64()).sum())
                .unwrap_or(0);
            let late = r.get("late");
            let p = |key: &str| late.and_then(|l| l.get(key)).and_then(|x| x.as_f64());
            let late_ms = p("p99_ms").map(|p99| (p("p50_ms"), p99));
            (
                count(r, "stalls"),
                count(r, "viewers_stalled"),
                failed,
                late_ms,
            )
        } else {
            let ll = r.get("ll").cloned().unwrap_or_default();
            (
                count(&ll, "stalls"),
                count(&ll, "stalled_viewers"),
                count(r, "errors"),
                None,
            )
        };
        // A MoQ viewer that failed cost nothing to serve: the cost is per viewer served, and
        // a measurement that lost more than VOID of its viewers says nothing at all.
        let moq = m.system.starts_with("moq");
        let served = if moq { n - failed as f64 } else { n };
        let valid = served > 0.0 && (!moq || failed as f64 <= VOID * n);
        Figures {
            system: m.system.clone(),
            run: m.run,
            viewers_per_cpu_s: (valid && extra > 0.0).then(|| served * window / extra),
            cpu_ms_per_viewer_s: valid.then(|| 1000.0 * extra / window / served),
            kib_per_viewer: valid.then(|| (m.busy_rss_kib - m.idle_rss_kib) / served),
            idle_cpu_pct: 100.0 * m.idle_cpu_s / window,
            stalls,
            stalled_viewers,
            failed,
            late_ms,
        }
    }
}

/// `system`'s viewers per server CPU-second over `peer`'s, for each run that measured both.
fn ratios(rows: &[Figures], system: &str, peer: &str) -> Vec<f64> {
    let mut runs: Vec<u64> = rows.iter().map(|r| r.run).collect();
    runs.sort_unstable();
    runs.dedup();
    let of = |run: u64, s: &str| {
        // The last measurement of that system in that run, as a mapping would keep it.
        rows.iter()
            .rev()
            .find(|r| r.run == run && r.system == s)
            .and_then(|r| r.viewers_per_cpu_s)
            .filter(|v| *v != 0.0)
    };
    runs.into_iter()
        .filter_map(|run| Some(of(run, system)? / of(run, peer)?))
        .collect()
}

/// Ratios as the summary prints them: their spread, then each.
fn ratio_text(xs: &[f64]) -> (String, String) {
    let spread_of = if xs.is_empty() {
        "—".to_owned()
    } else {
        text(spread(xs.iter().copied().map(Some)), 2)
    };
    let each = xs
        .iter()
        .map(|x| format!("{x:.2}"))
        .collect::<Vec<_>>()
        .join(", ");
    (spread_of, each)
}

/// The report of the measurements in `runs_jsonl` (one JSON object a line).
pub fn report(runs_jsonl: &str, run: &Run) -> anyhow::Result<Report> {
    let raw = json_lines("runs line", runs_jsonl)?;
    let measured = raw
        .iter()
        .enumerate()
        .map(|(i, v)| Measurement::deserialize(v).with_context(|| format!("runs line {}", i + 1)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rows: Vec<Figures> = measured.iter().map(Figures::of).collect();
    let of = |system: &'static str| rows.iter().filter(move |r| r.system == system);
    let to_ll = ratios(&rows, "moq", "ll-hls");
    let to_tls = ratios(&rows, "moq", "ll-tls");
    let to_nginx = ratios(&rows, "moq", "nginx");
    let n = measured.first().map_or(0, |m| m.viewers);
    let window = measured.first().map_or(0, |m| m.window_s);
    let viewers_arg = run.viewers.clone().unwrap_or_else(|| n.to_string());
    let runs_arg = run.runs.clone().unwrap_or_else(|| to_ll.len().to_string());
    let mut lines = vec![
        format!("{HEADING} (bench/moq-cost.sh)"),
        String::new(),
        format!(
            "`bench/moq-cost.sh {viewers_arg} {runs_arg}`, {}: \
             one `sealcast broadcast` node and the moq-relay it publishes to (0.17.10) on one core; a 640x360 30 fps \
             stream (~730 kb/s, CMAF, 0.333 s parts) from an ingest on the other core. \
             {n} viewers on the other core, one system at a time, interleaved: LL-HLS viewers of the node \
             (`sealcast-viewers --mode ll`, hls.js's requests, plain HTTP/1.1), the same viewers through `sealcast lb` \
             over TLS (HTTP/2, as browsers reach the node; lb + node measured), MoQ viewers of the relay (`sealcast-moq-viewers`, \
             a QUIC connection each, media and statements tracks), and the peer: nginx (one worker, sendfile) \
             serving a mirror of the node's files to viewers that poll (`--mode ll-poll`, as bench/llhls-node.sh). \
             The servers' CPU (node + relay; lb + node over TLS; nginx's own for nginx) over \
             {window} s with the viewers, less the same without, per viewer; memory likewise. \
             Goals: a MoQ viewer costs a third of an LL-HLS viewer or less (≥ 3× viewers per CPU-second), \
             and no more than nginx's polled LL-HLS viewer (≥ 1×).",
            run.date
        ),
        String::new(),
        "| | viewers per server CPU-second | CPU ms per viewer-second | memory per viewer | stalls (viewers) | failed | MoQ fan-out lateness p50 / p99 |".to_owned(),
        "|---|---|---|---|---|---|---|".to_owned(),
    ];
    for (system, label) in SYSTEMS {
        let rs: Vec<&Figures> = of(system).collect();
        if rs.is_empty() {
            continue;
        }
        let late: Vec<(Option<f64>, f64)> = rs.iter().filter_map(|r| r.late_ms).collect();
        let late = if late.is_empty() {
            "—".to_owned()
        } else {
            format!(
                "{} / {} ms",
                text(spread(late.iter().map(|l| l.0)), 0),
                text(spread(late.iter().map(|l| Some(l.1))), 0)
            )
        };
        lines.push(format!(
            "| {} | {} | {} | {} KiB | {} ({}) | {} | {late} |",
            label.replace("VARIANT", &run.variant),
            text(spread(rs.iter().map(|r| r.viewers_per_cpu_s)), 0),
            text(spread(rs.iter().map(|r| r.cpu_ms_per_viewer_s)), 3),
            text(spread(rs.iter().map(|r| r.kib_per_viewer)), 0),
            rs.iter().map(|r| r.stalls).sum::<u64>(),
            rs.iter().map(|r| r.stalled_viewers).sum::<u64>(),
            rs.iter().map(|r| r.failed).sum::<u64>(),
        ));
    }
    let (ll, ll_each) = ratio_text(&to_ll);
    let (tls, tls_each) = ratio_text(&to_tls);
    let (nginx, nginx_each) = ratio_text(&to_nginx);
    let idle = text(
        spread(
            rows.iter()
                .filter(|r| r.system != "nginx")
                .map(|r| Some(r.idle_cpu_pct)),
        ),
        1,
    );
    lines.push(String::new());
    lines.push(format!(
        "MoQ / LL-HLS, viewers per server CPU-second, per run: {ll} ({ll_each}); \
         MoQ / LL-HLS over TLS: {tls} ({tls_each}); MoQ / nginx: {nginx} ({nginx_each}). \
         Figures are median (min–max) over runs; the servers' idle CPU \
         (publishing, the relay's and node's own work) was {idle} % of a core."
    ));
    let void: Vec<String> = rows
        .iter()
        .filter(|r| r.viewers_per_cpu_s.is_none() && r.cpu_ms_per_viewer_s.is_none())
        .map(|r| format!("{} in run {} ({} failed)", r.system, r.run, r.failed))
        .collect();
    if !void.is_empty() {
        lines.push(String::new());
        lines.push(format!(
            "Void, more than {:.0} % of the viewers failed (no figure, out of the ratios): {}.",
            VOID * 100.0,
            void.join(", ")
        ));
    }
    if of("moq+").next().is_some() {
        let (plus, plus_each) = ratio_text(&ratios(&rows, "moq+", "moq"));
        let (over_ll, _) = ratio_text(&ratios(&rows, "moq+", "ll-hls"));
        lines.push(String::new());
        lines.push(format!(
            "With `{}` (a second relay, the node publishing to both): its viewers per server CPU-second \
             over the shipped relay's, per run: {plus} ({plus_each}); over LL-HLS: {over_ll}.",
            run.variant
        ));
    }
    push_notes(&mut lines, run.notes.as_deref());
    Ok(Report {
        section: lines.join("\n") + "\n",
        heading: HEADING,
        after: None,
        raw: json!({ "date": run.date, "measurements": raw, "figures": rows }),
        refusal: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(system: &str, run: u64, busy: f64, report: serde_json::Value) -> String {
        json!({
            "system": system, "run": run, "viewers": 200, "window_s": 20,
            "idle_cpu_s": 1.0, "busy_cpu_s": busy, "idle_rss_kib": 1000, "busy_rss_kib": 3000,
            "report": report,
        })
        .to_string()
    }

    #[test]
    fn the_table_and_the_ratios_come_from_each_runs_pair() {
        let moq = json!({"stalls": 1, "viewers_stalled": 1, "failed": {"dial": 2},
                         "late": {"p50_ms": 15.0, "p99_ms": 900.0}});
        let ll = json!({"errors": 3, "ll": {"stalls": 0, "stalled_viewers": 0}});
        let runs = [
            line("moq", 1, 5.0, moq.clone()),
            line("ll-hls", 1, 2.0, ll.clone()),
            line("ll-tls", 1, 3.0, ll.clone()),
            line("moq", 2, 9.0, moq),
            line("ll-hls", 2, 3.0, ll),
        ]
        .join("\n");
        let report = report(
            &runs,
            &Run {
                date: "2026-11-30".into(),
                ..Run::default()
            },
        )
        .expect("a report");
        let s = &report.section;
        assert!(s.starts_with("## MoQ viewers' cost on one node (bench/moq-cost.sh)\n\n`bench/moq-cost.sh 200 2`, 2026-11-30:"), "{s}");
        // The 198 viewers served (2 of 200 failed) × 20 s over 4 and 8 extra CPU-seconds:
        // 990 and 495.
        assert!(s.contains("| MoQ (node + moq-relay) | 742 (495–990) | 1.515 (1.010–2.020) | 10 (10–10) KiB | 2 (2) | 4 | 15 (15–15) / 900 (900–900) ms |"), "{s}");
        assert!(
            s.contains("| LL-HLS over TLS (lb + node) | 2000 (2000–2000) |"),
            "{s}"
        );
        assert!(
            !s.contains("nginx, the peer)"),
            "no row for a system not measured: {s}"
        );
        // Per run: 990 / 4000 and 495 / 2000; 990 / 2000 over TLS.
        assert!(s.contains("MoQ / LL-HLS, viewers per server CPU-second, per run: 0.25 (0.25–0.25) (0.25, 0.25); MoQ / LL-HLS over TLS: 0.49 (0.49–0.49) (0.49); MoQ / nginx: — ()."), "{s}");
        assert_eq!(report.raw["figures"].as_array().map(Vec::len), Some(5));
    }

    #[test]
    fn a_measurement_that_lost_its_viewers_is_void() {
        let lost = json!({"failed": {"not found": 104, "internal error": 96}});
        let few = json!({"failed": {"not found": 4}});
        let ll = json!({"errors": 0, "ll": {}});
        let runs = [
            line("moq", 1, 5.0, lost),
            line("ll-hls", 1, 2.0, ll.clone()),
            line("moq", 2, 5.0, few),
            line("ll-hls", 2, 2.0, ll),
        ]
        .join("\n");
        let s = report(&runs, &Run::default()).expect("a report").section;
        // Run 2 counts the 196 viewers served: 196 × 20 s over 4 extra CPU-seconds.
        assert!(
            s.contains("| MoQ (node + moq-relay) | 980 (980–980) | 1.020 (1.020–1.020) |"),
            "{s}"
        );
        assert!(s.contains("per run: 0.24 (0.24–0.24) (0.24);"), "{s}");
        assert!(s.contains("Void, more than 5 % of the viewers failed (no figure, out of the ratios): moq in run 1 (200 failed)."), "{s}");
    }

    #[test]
    fn a_bad_line_is_named() {
        let err = report("{}\n", &Run::default()).expect_err("no system");
        assert!(format!("{err:#}").contains("runs line 1"), "{err:#}");
    }
}
