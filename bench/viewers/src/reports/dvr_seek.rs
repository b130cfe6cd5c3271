//! The report of `bench/dvr-seek.sh` (issue 49): the time to play after going back in a
//! live stream, ours against hls.js on FFmpeg's hls muxer output served by nginx. It was
//! Python (`bench/lib/reports/dvr_seek.py`, in git history before this module), whose
//! text it writes. Its input is what `sealcast-dvr-seek` prints: the run's rounds and
//! their summary per side. Before the seeks, the script waits until both time-shift
//! windows are long enough: [`window_seconds`] (`sealcast-bench check dvr-window`) and
//! [`playlist_seconds`] (`check playlist-seconds`), `python3 -c` one-liners before.

use anyhow::Context;
use serde_json::Value;

use super::python::{float, python_number};
use super::{push_notes, Report};

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## Seeking back in a live stream";

/// What `bench/dvr-seek.sh` was given, as the section's command line says it.
#[derive(Debug, Clone, clap::Args)]
pub struct Run {
    /// How far back each round seeks, as the script was given it (default: the result's).
    #[arg(long)]
    pub back: Option<String>,
    /// The rounds the script was given (default: the result's).
    #[arg(long)]
    pub rounds: Option<String>,
    /// The day of the run, as the section prints it (`date +%F`).
    #[arg(long)]
    pub date: String,
}

/// A summary's `key` (milliseconds) in seconds; "—" for none.
fn cell(summary: Option<&Value>, key: &str) -> String {
    summary
        .and_then(|s| s.get(key))
        .and_then(Value::as_f64)
        .map_or_else(|| "—".to_owned(), |ms| format!("{:.2} s", ms / 1000.0))
}

/// A side's row of the table.
fn row(name: &str, side: &Value) -> String {
    let seek = side.get("seek_ms");
    let failed = seek
        .and_then(|s| s.get("failed"))
        .map_or_else(|| "0".to_owned(), python_number);
    format!(
        "| {name} | {} | {} | {} | {failed} |",
        cell(seek, "p50"),
        cell(seek, "min"),
        cell(seek, "max")
    )
}

/// The report of a run: `result` is what `sealcast-dvr-seek` printed; `notes`, what
/// `bench/dvr-seek-notes.md` says.
pub fn report(result: &str, run: &Run, notes: Option<&str>) -> anyhow::Result<Report> {
    use anyhow::Context;
    let r: Value = serde_json::from_str(result).context("the result")?;
    let back = r
        .get("back_s")
        .and_then(Value::as_f64)
        .context("no back_s")?;
    let rounds = r.get("rounds").context("no rounds")?;
    let ours = r.get("ours").context("no ours")?;
    let peer = r
        .get("peer")
        .filter(|p| p.as_object().is_some_and(|o| !o.is_empty()));
    let runs: &[Value] = ours
        .get("runs")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let behind: Vec<String> = runs
        .iter()
        .filter_map(|run| run.get("behind_s").and_then(Value::as_f64))
        .map(|b| format!("{b:.1} s"))
        .collect();
    let count = |key: &str| -> i64 {
        runs.iter()
            .filter_map(|run| run.get(key).and_then(Value::as_i64))
            .sum()
    };
    let given_back = run
        .back
        .clone()
        .unwrap_or_else(|| python_number(&r["back_s"]));
    let given_rounds = run.rounds.clone().unwrap_or_else(|| python_number(rounds));
    let mut lines = vec![
        format!("{HEADING} (bench/dvr-seek.sh)"),
        String::new(),
        format!(
            "`bench/dvr-seek.sh {given_back} {given_rounds}`, {}: a live 854x480 30 fps \
             stream; a fresh headless Chromium plays it live, then goes {back:.0} s behind \
             live; the time is from the request to the video playing with data ahead, each \
             side once per round, interleaved. Ours: the player page through the load \
             balancer, the stream's time-shift window (`/live/{{s}}/dvr.m3u8`, `sealcast up`, \
             a 30-minute `--dvr-window`), every fragment verified in the page. Peer: hls.js \
             (the same build) on FFmpeg's hls muxer output (2 s fMP4 segments, a 30-minute \
             sliding playlist) served as files by nginx, nothing verified. Goal: within 1 s.",
            run.date
        ),
        String::new(),
        "| | p50 | min | max | failed rounds |".to_owned(),
        "|---|---|---|---|---|".to_owned(),
        row("sealcast", ours),
    ];
    if let Some(peer) = peer {
        lines.push(row("nginx + FFmpeg hls (peer)", peer));
    }
    lines.push(String::new());
    lines.push(format!(
        "Behind live after the seek, read from the stamp in the picture (ours): {}; \
         fragments verified over the rounds: {}, refused: {}.",
        if behind.is_empty() {
            "—".to_owned()
        } else {
            behind.join(", ")
        },
        count("verified"),
        count("refused"),
    ));
    push_notes(&mut lines, notes);
    Ok(Report {
        section: lines.join("\n") + "\n",
        heading: HEADING,
        after: None,
        raw: r,
        refusal: None,
    })
}

/// The seconds of `stream`'s time-shift window as the node lists it (`/api/v1/streams`:
/// the first stream of that name, its `dvr.seconds`; 0 without one); none when the stream
/// is not listed or its window is not a number. An error when the listing is not a list
/// of named streams.
pub fn window_seconds(listing: &str, stream: &str) -> anyhow::Result<Option<f64>> {
    let listing: Value = serde_json::from_str(listing).context("the streams listed")?;
    let streams = listing
        .as_array()
        .context("the streams listed are not a list")?;
    let mut mine = Vec::new();
    for s in streams {
        if s.get("name").context("a stream without a name")?.as_str() == Some(stream) {
            mine.push(s);
        }
    }
    let Some(first) = mine.first() else {
        return Ok(None);
    };
    let seconds = match first.get("dvr") {
        None => Some(0.0),
        Some(dvr) => match dvr.get("seconds") {
            None if dvr.is_object() => Some(0.0),
            seconds => seconds.and_then(Value::as_f64),
        },
    };
    Ok(seconds)
}

/// The seconds a media playlist lists: its `#EXTINF:` durations summed.
pub fn playlist_seconds(playlist: &str) -> anyhow::Result<f64> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| float(d.split(',').next().unwrap_or_default()))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_read_as_the_python_read_them() {
        let listing = r#"[{"name": "other", "dvr": {"seconds": 900}},
            {"name": "dvr", "live": true, "dvr": {"seconds": 632.5, "start": 1}},
            {"name": "dvr", "dvr": {"seconds": 1}}]"#;
        assert_eq!(
            window_seconds(listing, "dvr").expect("a listing"),
            Some(632.5)
        );
        assert_eq!(window_seconds(listing, "x").expect("a listing"), None);
        let bare = r#"[{"name": "dvr"}]"#;
        assert_eq!(window_seconds(bare, "dvr").expect("a listing"), Some(0.0));
        let no_window = r#"[{"name": "dvr", "dvr": null}]"#;
        assert_eq!(window_seconds(no_window, "dvr").expect("a listing"), None);
        assert!(window_seconds(r#"[{"live": true}]"#, "dvr").is_err());
        assert!(window_seconds("", "dvr").is_err());
        // FFmpeg's hls muxer's playlist.
        let playlist = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n\
            #EXT-X-MEDIA-SEQUENCE:3\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000000,\n\
            index3.m4s\n#EXTINF:2.000000,\nindex4.m4s\n#EXTINF:1.966667,\nindex5.m4s\n";
        assert_eq!(playlist_seconds(playlist).expect("a playlist"), 5.966667);
        assert!(playlist_seconds("#EXTINF:x,\n").is_err());
    }

    fn run() -> Run {
        Run {
            back: Some("600".to_owned()),
            rounds: Some("5".to_owned()),
            date: "2026-11-30".to_owned(),
        }
    }

    /// A result the Python report (`bench/lib/reports/dvr_seek.py`, before this module)
    /// was run on gives the section it wrote, byte for byte.
    #[test]
    fn gives_the_section_the_python_report_wrote() {
        let report = report(
            include_str!("testdata/dvr-seek-result.json"),
            &run(),
            Some("Notes.\n"),
        )
        .expect("a report");
        assert_eq!(report.section, include_str!("testdata/dvr-seek-python.md"));
        assert_eq!(report.heading, HEADING);
    }

    #[test]
    fn a_run_without_a_peer_or_measurements_prints_dashes() {
        let result = r#"{"back_s": 60, "rounds": 1, "ours": {"seek_ms": {"failed": 1}, "runs": [{"behind_s": null}]}, "peer": {}}"#;
        let report = report(
            result,
            &Run {
                back: None,
                rounds: None,
                date: "d".to_owned(),
            },
            None,
        )
        .expect("a report");
        assert!(report.section.contains("`bench/dvr-seek.sh 60 1`, d: "));
        assert!(report.section.contains("| sealcast | — | — | — | 1 |"));
        assert!(!report.section.contains("peer) |"));
        assert!(report
            .section
            .contains("(ours): —; fragments verified over the rounds: 0, refused: 0.\n"));
        assert!(super::report("{}", &run(), None).is_err());
    }
}
