//! The report of `bench/ingest-latency.sh`: glass-to-glass latency per ingest protocol
//! (LL-HLS in Chromium), or, in MoQ mode (`TRANSPORTS="moq hls"`), each protocol's
//! publishes played over Media over QUIC and LL-HLS side by side. It was Python
//! (`bench/lib/reports/ingest_latency.py`, in git history before this module), whose text
//! it writes. Its input is `runs.jsonl`: a `sealcast-glass` record a line, with the round,
//! the protocol and the transport; a system's runs are summed up as `bench/latency.sh`'s
//! are (`super::latency::summary`).

use serde_json::{json, Map, Value};

use super::latency::{cells, summary};
use super::python::{python_float, sum, truthy};
use super::{json_lines, push_notes, Report, Rounds};

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## Glass-to-glass latency per ingest protocol";
/// The section's heading in MoQ mode.
pub const HEADING_MOQ: &str = "## Glass-to-glass over Media over QUIC and LL-HLS";

/// The publisher of each protocol, as the table says it.
const PUBLISHERS: [(&str, &str); 5] = [
    (
        "source",
        "`sealcast source` itself over RTMP (no pipe, no ffmpeg)",
    ),
    (
        "rtmp-bframes",
        "as RTMP, the source's x264 as OBS's default (B-frames, lookahead)",
    ),
    ("rtmp", "Debian's ffmpeg 5.1, `-c copy` into FLV over RTMP"),
    (
        "srt",
        "Debian's ffmpeg 5.1 (libsrt 1.5, latency 120 ms), `-c copy` into MPEG-TS over SRT",
    ),
    (
        "whip",
        "FFmpeg 9 re-encoding (x264 zerolatency, no B-frames, Opus), its whip muxer through \
         the load balancer",
    ),
];

/// The protocols measured as the reference, without a goal.
const REFERENCES: [&str; 3] = ["rtmp", "rtmp-bframes", "source"];

/// The transports a publish was played over in MoQ mode, as the table names them.
const TRANSPORTS: [(&str, &str); 2] = [
    (
        "moq",
        "MoQ (WebTransport to the relay, every object verified)",
    ),
    ("hls", "LL-HLS (hls.js, through the load balancer)"),
];

/// The goal for SRT and WHIP: a median p50 this long or shorter.
const GOAL_S: f64 = 1.5;
/// MoQ mode's goal over MoQ: a median p50 this long or shorter, and no stall...
const GOAL_MOQ_S: f64 = 0.5;
/// ...a longest stall this long or longer being a stall.
const STALL_S: f64 = 0.5;

/// What the script ran with.
#[derive(Debug, clap::Args)]
pub struct Run {
    /// Seconds per run (`--seconds`) and the rounds (`--rounds`).
    #[command(flatten)]
    pub rounds: Rounds,
    /// The ladder (`src` or `full`).
    #[arg(long)]
    pub ladder: String,
    /// The protocols, as the script was given them (`PROTOCOLS`).
    #[arg(long)]
    pub protocols: String,
    /// The transports each publish was played over (`TRANSPORTS`): `hls`, or MoQ mode.
    #[arg(long, default_value = "hls")]
    pub transports: String,
    /// The part's (and MoQ object's) duration in seconds (`PART`; MoQ mode).
    #[arg(long, default_value_t = 0.333)]
    pub part: f64,
    /// moq-relay's build, `debug` or `release` (MoQ mode).
    #[arg(long, default_value = "debug")]
    pub relay_build: String,
}

impl Run {
    /// Whether the publishes were played over more than LL-HLS (MoQ mode).
    pub fn moq(&self) -> bool {
        self.transports.split_whitespace().ne(["hls"])
    }

    /// Where the raw results go.
    pub fn results_file(&self) -> &'static str {
        if self.moq() {
            "bench/out/moq-latency.json"
        } else {
            "bench/out/ingest-latency.json"
        }
    }

    /// The section's notes.
    pub fn notes_file(&self) -> &'static str {
        if self.moq() {
            "bench/moq-latency-notes.md"
        } else {
            "bench/ingest-latency-notes.md"
        }
    }
}

/// The first of each word of `words`, in order.
fn unique(words: &str) -> Vec<&str> {
    let mut seen: Vec<&str> = Vec::new();
    for w in words.split_whitespace() {
        if !seen.contains(&w) {
            seen.push(w);
        }
    }
    seen
}

/// A run's `key`, a string.
fn text<'a>(run: &'a Value, key: &str) -> Option<&'a str> {
    run.get(key).and_then(Value::as_str)
}

/// The report of a run from its `runs.jsonl`; `notes`, what [`Run::notes_file`] says.
pub fn report(runs: &str, run: &Run, notes: Option<&str>) -> anyhow::Result<Report> {
    let runs = json_lines("run", runs)?;
    if run.moq() {
        return moq(runs, run, notes);
    }
    let Rounds { seconds, rounds } = run.rounds;
    let mut protocols = Map::new();
    let mut rows = Vec::new();
    for proto in unique(&run.protocols) {
        let Some((_, publisher)) = PUBLISHERS.iter().find(|(p, _)| *p == proto) else {
            anyhow::bail!("no publisher known for protocol {proto}");
        };
        let mine: Vec<&Value> = runs
            .iter()
            .filter(|r| text(r, "protocol") == Some(proto))
            .collect();
        let mut p = summary(&mine);
        let goal = if REFERENCES.contains(&proto) {
            "reference"
        } else if p["p50_s"]["median"].as_f64().is_some_and(|m| m <= GOAL_S) {
            "met"
        } else {
            "not met"
        };
        rows.push(format!(
            "| {} | {publisher} | {} | {} | {} | {goal} |",
            proto.to_uppercase(),
            cells(&p),
            p["stamped_samples"],
            p["failed_runs"]
        ));
        p.insert("publisher".into(), json!(publisher));
        protocols.insert(proto.to_owned(), Value::Object(p));
    }
    let mut lines = vec![
        HEADING.to_owned(),
        String::new(),
        format!(
            "`bench/ingest-latency.sh {seconds} {rounds}`: `sealcast source` (720p30, x264 \
             `--low-latency` unless the row says otherwise, GOP 2 s, AAC, the clock stamped \
             into every frame) published over each protocol into one `sealcast up` cluster (2 \
             edges), in turn, {rounds} rounds interleaved; Chromium plays each stream as \
             LL-HLS (the sealcast player, hls.js in low-latency mode) through the load \
             balancer and reads the stamped clock every 250 ms, {seconds} s per run after a 10 \
             s settle. Ladder: {}. Goal: p50 ≤ 1.5 s for SRT and WHIP. p50 and p90: median of \
             the runs (lowest–highest).",
            run.ladder
        ),
        String::new(),
        "| protocol | publisher | p50 s | p90 s | max s | longest stall s | samples | failed \
         runs | goal |"
            .to_owned(),
        "|---|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    lines.extend(rows);
    push_notes(&mut lines, notes);
    let raw = json!({
        "seconds_per_run": seconds,
        "rounds": rounds,
        "ladder": run.ladder,
        "goal_p50_s": GOAL_S,
        "protocols": protocols,
        "runs": runs,
    });
    Ok(Report {
        section: lines.join("\n") + "\n",
        heading: HEADING,
        after: Some("## Glass-to-glass latency"),
        raw,
        refusal: None,
    })
}

/// MoQ mode: each protocol's runs over each transport.
fn moq(runs: Vec<Value>, run: &Run, notes: Option<&str>) -> anyhow::Result<Report> {
    let Rounds { seconds, rounds } = run.rounds;
    let transports = unique(&run.transports);
    let mut table = Map::new();
    let mut rows = Vec::new();
    for proto in unique(&run.protocols) {
        for &transport in &transports {
            let mine: Vec<&Value> = runs
                .iter()
                .filter(|r| text(r, "protocol") == Some(proto))
                .filter(|r| text(r, "transport") == Some(transport))
                .collect();
            let mut p = summary(&mine);
            let stalled = mine
                .iter()
                .filter_map(|r| r.get("longest_stall_s").and_then(Value::as_f64))
                .filter(|s| *s >= STALL_S)
                .count();
            let refused: Vec<Value> = mine
                .iter()
                .map(|r| {
                    r.get("player")
                        .filter(|p| truthy(p))
                        .and_then(|p| p.get("refused"))
                        .filter(|n| truthy(n))
                        .cloned()
                        .unwrap_or(json!(0))
                })
                .collect();
            let refused = sum(&refused);
            let failed = p["failed_runs"].as_u64().unwrap_or(0);
            let goal = if transport != "moq" {
                "—"
            } else if p["p50_s"]["median"]
                .as_f64()
                .is_some_and(|m| m <= GOAL_MOQ_S)
                && stalled == 0
                && failed == 0
            {
                "met"
            } else {
                "not met"
            };
            let name = TRANSPORTS
                .iter()
                .find(|(t, _)| *t == transport)
                .map_or(transport, |(_, name)| *name);
            rows.push(format!(
                "| {} | {name} | {} | {stalled} | {refused} | {} | {failed} | {goal} |",
                proto.to_uppercase(),
                cells(&p),
                p["stamped_samples"],
            ));
            p.insert("protocol".into(), json!(proto));
            p.insert("transport".into(), json!(transport));
            p.insert("runs_with_a_stall".into(), json!(stalled));
            p.insert("refused".into(), refused);
            let key = format!("{proto}/{transport}");
            table.entry(key).or_insert(Value::Object(p));
        }
    }
    let part = python_float(run.part);
    let mut lines =
        vec![
        HEADING_MOQ.to_owned(),
        String::new(),
        format!(
            "`TRANSPORTS=\"{}\" PROTOCOLS=\"{}\" PART={part} bench/ingest-latency.sh {seconds} \
             {rounds}`: `sealcast source` (720p30, x264 `--low-latency`, GOP 2 s, AAC, the \
             clock stamped into every frame) published into one `sealcast up` cluster (2 \
             edges, `--moq-run-relay`: moq-relay 0.17.10, a {} build, run by `up`), a publish \
             per run, {rounds} rounds with the transports interleaved; Chromium plays each \
             publish with the page forced onto one path (`?transport=moq` or \
             `?transport=hls`) and reads the stamped clock every 250 ms, {seconds} s per run \
             after a 10 s settle. Parts (and MoQ objects) of {part} s; ladder: {}. Goal over \
             MoQ: p50 ≤ 0.5 s with no stall (a stall: media time standing still ≥ 0.5 s). p50 \
             and p90: median of the runs (lowest–highest).",
            run.transports.split_whitespace().collect::<Vec<_>>().join(" "),
            run.protocols,
            run.relay_build,
            run.ladder
        ),
        String::new(),
        "| publish | played over | p50 s | p90 s | max s | longest stall s | runs with a stall | \
         refused | samples | failed runs | goal |"
            .to_owned(),
        "|---|---|---|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    lines.extend(rows);
    push_notes(&mut lines, notes);
    let raw = json!({
        "seconds_per_run": seconds,
        "rounds": rounds,
        "ladder": run.ladder,
        "part_s": run.part,
        "goal_p50_s": GOAL_MOQ_S,
        "relay_build": run.relay_build,
        "rows": table,
        "runs": runs,
    });
    Ok(Report {
        section: lines.join("\n") + "\n",
        heading: HEADING_MOQ,
        after: Some(HEADING),
        raw,
        refusal: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(protocols: &str, transports: &str) -> Run {
        Run {
            rounds: Rounds {
                seconds: 30,
                rounds: 3,
            },
            ladder: "src".to_owned(),
            protocols: protocols.to_owned(),
            transports: transports.to_owned(),
            part: 0.333,
            relay_build: "debug".to_owned(),
        }
    }

    /// The runs of e88a2fc's bench/results/ingest-latency.json give the section the
    /// Python report (`ingest_latency.py`) wrote on them.
    #[test]
    fn gives_the_section_the_python_report_wrote() {
        let run = run("rtmp rtmp-bframes srt whip", "hls");
        assert!(!run.moq());
        let report = report(
            include_str!("testdata/ingest-latency-e88a2fc.jsonl"),
            &run,
            Some("Notes.\n"),
        )
        .expect("a report");
        assert_eq!(
            report.section,
            include_str!("testdata/ingest-latency-python.md")
        );
        assert_eq!(report.heading, HEADING);
        assert_eq!(run.results_file(), "bench/out/ingest-latency.json");
        assert_eq!(report.raw["runs"].as_array().map(Vec::len), Some(12));
        assert_eq!(
            report.raw["protocols"]["srt"]["stamped_samples"],
            json!(360)
        );
        let unknown = super::tests::run("carrier-pigeon", "hls");
        assert!(super::report("", &unknown, None).is_err());
    }

    /// MoQ mode on a failed MoQ run and an LL-HLS one: the section the Python wrote.
    #[test]
    fn moq_mode_gives_the_section_the_python_report_wrote() {
        let mut run = run("whip", "moq hls");
        run.rounds = Rounds {
            seconds: 60,
            rounds: 1,
        };
        run.relay_build = "release".to_owned();
        assert!(run.moq());
        let report = report(
            include_str!("testdata/ingest-latency-moq.jsonl"),
            &run,
            Some("Notes.\n"),
        )
        .expect("a report");
        assert_eq!(
            report.section,
            include_str!("testdata/ingest-latency-moq-python.md")
        );
        assert_eq!((report.heading, report.after), (HEADING_MOQ, Some(HEADING)));
        assert_eq!(run.results_file(), "bench/out/moq-latency.json");
        let rows = &report.raw["rows"];
        assert_eq!(rows["whip/moq"]["failed_runs"], json!(1));
        assert_eq!(rows["whip/hls"]["refused"], json!(0));
        assert_eq!(report.raw["part_s"], json!(0.333));
    }
}
