//! The report of `bench/push-bytes.sh` (issue 46 item 2): the bytes an ingest pushes to
//! each edge with whole segments against segments assembled from their parts, and what
//! that does to a segment's listing and to gaps. It was `bench/lib/reports/push_bytes.py`'s
//! `report` command (in git history before this module), whose text it writes; what the
//! script measures each round, that file's `latency` and `measure`, is [`follow`] and
//! [`measure`].

use serde_json::{json, Value};

use super::{json_lines, push_notes, Report, Rounds};

mod measure;

pub use measure::{follow, measure, measure_dir, Follower, Node, PushLatency};

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str =
    "## Ingest→edge bytes: segments assembled from their parts (bench/push-bytes.sh)";

/// The modes, in the table's order.
const MODES: [&str; 2] = ["whole", "assembled"];

/// The forms of a segment push, in the order the table names them.
const FORMS: [&str; 3] = ["whole", "assembled", "fallback"];

/// What the script ran with.
#[derive(Debug, clap::Args)]
pub struct Run {
    /// Seconds each mode was measured per round, and the rounds.
    #[command(flatten)]
    pub rounds: Rounds,
    /// The day of the run, as the section prints it (`date -u +%F`).
    #[arg(long)]
    pub date: String,
}

/// `x` as Python prints `round(x, 2)`: at most two decimals, at least one.
fn two_decimals(x: Option<f64>) -> String {
    let Some(x) = x else {
        return "None".to_owned();
    };
    let text = format!("{x:.2}");
    let trimmed = text.trim_end_matches('0');
    if trimmed.ends_with('.') {
        format!("{trimmed}0")
    } else {
        trimmed.to_owned()
    }
}

/// The report of a run from its `results.jsonl` (a line per mode and round, as
/// [`measure`] prints them); `notes`: `bench/push-bytes-notes.md`, if any.
pub fn report(results_jsonl: &str, run: &Run, notes: Option<&str>) -> anyhow::Result<Report> {
    let rows = json_lines("row", results_jsonl)?;
    let of = |mode: &'static str| {
        rows.iter()
            .filter(move |r| r.get("mode").and_then(Value::as_str) == Some(mode))
    };
    let mean = |mode, key: &str| {
        let known: Vec<f64> = of(mode)
            .filter_map(|r| r.get(key).and_then(Value::as_f64))
            .collect();
        (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64)
    };
    // Folded from +0.0: an empty f64 sum is -0.0, which prints as "-0".
    let total = |mode, key: &str| -> f64 {
        of(mode)
            .filter_map(|r| r.get(key).and_then(Value::as_f64))
            .fold(0.0, |a, b| a + b)
    };
    let forms = |mode| {
        FORMS
            .iter()
            .filter_map(|form| {
                let n: f64 = of(mode)
                    .filter_map(|r| r.pointer(&format!("/segment_pushes/{form}")))
                    .filter_map(Value::as_f64)
                    .map(f64::trunc)
                    .sum();
                (n != 0.0).then(|| format!("{form} {n}"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Rounds {
        seconds: secs,
        rounds,
    } = run.rounds;
    let mut lines = vec![
        HEADING.to_owned(),
        String::new(),
        format!(
            "`bench/push-bytes.sh {secs} {rounds}`, {}: `sealcast up` with two broadcast nodes, \
             the source rung only (720p30, 3000 kb/s from `sealcast source`), CMAF, 2 s \
             segments, 0.333 s parts; each mode measured {rounds} times for {secs} s, \
             interleaved, on this shared 2-core machine. `whole` is \
             `SEALCAST_PUSH_WHOLE_SEGMENTS=1` (every segment pushed with its bytes, as before \
             issue 46); `assembled` the default (a segment goes bodiless to a node that took \
             all its parts). Bytes are the ingest's body bytes per node \
             (`sealcast_ingest_push_bytes_total`; the edges' `sealcast_push_bytes_total` \
             agrees); latency is a segment's listing on node 1 after its end \
             (PROGRAM-DATE-TIME + EXTINF), through blocking reloads: the ingest's capture \
             clock, so only the difference between the rows means something (values are means \
             over the rounds; `bench/out/push-bytes.json` has each round).",
            run.date
        ),
        String::new(),
        "| mode | ingest→edge kb/s per node | of which segments | of which parts | edges received \
         kb/s per node | segment pushes | segment latency p50 / p90 / max s | gaps (listed / \
         counted) |"
            .to_owned(),
        "|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    for mode in MODES {
        let m = |key| two_decimals(mean(mode, key));
        lines.push(format!(
            "| {mode} | {} | {} | {} | {} | {} | {} / {} / {} | {} / {} |",
            m("ingest_to_edge_kbps_per_node"),
            m("segment_kbps_per_node"),
            m("part_kbps_per_node"),
            m("edges_received_kbps_per_node"),
            forms(mode),
            m("p50_s"),
            m("p90_s"),
            m("max_s"),
            total(mode, "gaps_listed"),
            total(mode, "gaps_counted").trunc(),
        ));
    }
    let kbps =
        |mode| mean(mode, "ingest_to_edge_kbps_per_node").map(|x| (x * 100.0).round() / 100.0);
    if let (Some(w), Some(a)) = (kbps("whole"), kbps("assembled")) {
        if w != 0.0 && a != 0.0 {
            lines.push(String::new());
            lines.push(format!(
                "Assembled, the ingest sends {:.0}% of the bytes it sent with whole segments.",
                a / w * 100.0
            ));
        }
    }
    push_notes(&mut lines, notes);
    Ok(Report {
        section: lines.join("\n") + "\n",
        heading: "## Ingest→edge bytes",
        after: None,
        raw: json!({ "seconds": secs, "rounds": rounds, "rows": rows }),
        refusal: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The raw results of the run in `docs/benchmarks.md` (9a72c82's
    /// bench/results/push-bytes.json) give the table the Python report wrote there.
    #[test]
    fn the_committed_run_gives_the_table_the_python_report_wrote() {
        let raw: Value =
            serde_json::from_str(include_str!("testdata/push-bytes-9a72c82.json")).expect("JSON");
        let lines: String = raw["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| r.to_string() + "\n")
            .collect();
        let run = Run {
            rounds: Rounds {
                seconds: 60,
                rounds: 2,
            },
            date: "2026-11-26".to_owned(),
        };
        let report = report(&lines, &run, Some("Notes.\n")).expect("a report");
        let text = &report.section;
        assert!(text.starts_with(&format!(
            "{HEADING}\n\n`bench/push-bytes.sh 60 2`, 2026-11-26: "
        )));
        let table: Vec<&str> = text.lines().skip(4).collect();
        assert_eq!(
            table,
            [
                "| mode | ingest→edge kb/s per node | of which segments | of which parts | edges received kb/s per node | segment pushes | segment latency p50 / p90 / max s | gaps (listed / counted) |",
                "|---|---|---|---|---|---|---|---|",
                "| whole | 6393.4 | 3191.4 | 3202.05 | 6393.4 | whole 122 | 0.04 / 0.59 / 0.9 | 0 / 0 |",
                "| assembled | 3241.6 | 0.0 | 3241.6 | 3241.6 | assembled 124 | -0.05 / 0.09 / 0.21 | 0 / 0 |",
                "",
                "Assembled, the ingest sends 51% of the bytes it sent with whole segments.",
                "",
                "Notes.",
            ]
        );
        assert_eq!(report.raw["rows"], raw["rows"]);
    }

    #[test]
    fn figures_print_as_python_prints_them() {
        assert_eq!(two_decimals(Some(0.9)), "0.9");
        assert_eq!(two_decimals(Some(0.0)), "0.0");
        assert_eq!(two_decimals(Some(-0.049)), "-0.05");
        assert_eq!(two_decimals(Some(3202.05)), "3202.05");
        assert_eq!(two_decimals(Some(12.0)), "12.0");
        assert_eq!(two_decimals(None), "None");
        let run = Run {
            rounds: Rounds {
                seconds: 1,
                rounds: 1,
            },
            date: "d".to_owned(),
        };
        let empty = report("", &run, None).expect("a report");
        assert!(empty
            .section
            .contains("| whole | None | None | None | None |  | None / None / None | 0 / 0 |"));
        assert!(report("{", &run, None).is_err());
    }
}
