//! The report of `bench/ladder-codecs.sh`: the ingest's CPU and realtime factor while it
//! transcodes a 1080p60 HEVC or AV1 publish into the default ladder. It was Python
//! (`bench/lib/reports/ladder_codecs.py`, in git history before this module), whose text it
//! writes.
//!
//! The script samples the running `sealcast up` every few seconds: [`sample`] makes one
//! JSON line of its CPU ticks and its `/metrics`; [`report`] reads those lines with each
//! codec's src media playlist and master playlist as the run ended.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::python::python_float;
use super::{json_lines, Report};

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## Ladder CPU for 1080p60 HEVC and AV1 sources";
/// What publishes, as the section says.
const SOURCE: &str =
    "1920x1080 60 fps test pattern + Opus, published over E-RTMP by FFmpeg 9 (-re -c copy)";
/// The metrics a sample keeps, by name (a counter's `_total` left off).
const SERIES: [(&str, &str); 4] = [
    (
        "sealcast_ingest_realtime_factor",
        "sealcast_ingest_realtime_factor",
    ),
    ("sealcast_ingest_lag_seconds", "sealcast_ingest_lag_seconds"),
    (
        "sealcast_ingest_rungs_shed_total",
        "sealcast_ingest_rungs_shed",
    ),
    ("sealcast_ingest_rungs_shed", "sealcast_ingest_rungs_shed"),
];

/// One sampling of the ingest, as `bench/ladder-codecs.sh` hands it over.
#[derive(Debug, Clone, clap::Args)]
pub struct Tick {
    /// The codec published (`hevc`, `av1`).
    pub codec: String,
    /// When the publish began (seconds since the epoch).
    pub start: f64,
    /// Now (seconds since the epoch).
    pub now: f64,
    /// The process's CPU ticks when the publish began.
    pub before: u64,
    /// The process's CPU ticks now.
    pub ticks: u64,
    /// Clock ticks per second (`getconf CLK_TCK`).
    pub tick: u64,
}

/// The series of stream `main` in a Prometheus text exposition: per kept name (see
/// [`SERIES`]), the value per rendition (`-` for none).
fn series(metrics: &str) -> BTreeMap<&'static str, Map<String, Value>> {
    let mut found: BTreeMap<&'static str, Map<String, Value>> = BTreeMap::new();
    for line in metrics.lines() {
        let Some((name, kept)) = SERIES.iter().find_map(|(exposed, kept)| {
            line.strip_prefix(exposed)
                .and_then(|rest| rest.strip_prefix('{'))
                .map(|rest| (rest, *kept))
        }) else {
            continue;
        };
        let Some((labels, value)) = name.split_once("} ") else {
            continue;
        };
        if labels.contains('}') || !labels.contains("stream=\"main\"") {
            continue;
        }
        // The value, and a timestamp after it if the exposition gives one.
        let Some(Ok(value)) = value.split_whitespace().next().map(str::parse::<f64>) else {
            continue;
        };
        let rung = labels
            .split_once("rendition=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map_or("-", |(rung, _)| rung);
        found
            .entry(kept)
            .or_default()
            .insert(rung.to_owned(), json!(value));
    }
    found
}

/// One sample's JSON line: the process's CPU in cores since the publish began and what the
/// ingest's metrics say of stream `main`.
pub fn sample(tick: &Tick, metrics: &str) -> Value {
    let mut series = series(metrics);
    let elapsed = tick.now - tick.start;
    let cores =
        tick.ticks.saturating_sub(tick.before) as f64 / tick.tick.max(1) as f64 / elapsed.max(1e-3);
    let lag = series
        .get("sealcast_ingest_lag_seconds")
        .and_then(|s| s.get("-"))
        .cloned()
        .unwrap_or(Value::Null);
    json!({
        "codec": tick.codec,
        "t": elapsed,
        "cpu_cores": cores,
        "realtime_factor": series.remove("sealcast_ingest_realtime_factor").unwrap_or_default(),
        "lag_s": lag,
        "shed": series.remove("sealcast_ingest_rungs_shed").unwrap_or_default(),
    })
}

/// What the run left for one codec: its samples' lines are in the samples file, its
/// playlists as the run ended here.
#[derive(Debug)]
pub struct Playlists {
    /// The codec.
    pub codec: String,
    /// The src rung's media playlist.
    pub src: String,
    /// The master playlist.
    pub master: String,
}

/// The CODECS of the master playlist's first variant whose URI names the src rung.
fn src_codecs(master: &str) -> Option<&str> {
    let lines: Vec<&str> = master.lines().collect();
    lines.windows(2).find_map(|pair| {
        let (_, rest) = pair[0].split_once("CODECS=\"")?;
        let (codecs, _) = rest.split_once('"')?;
        pair[1].contains("src/").then_some(codecs)
    })
}

/// `x` with two decimals; "—" for none.
fn fixed(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_owned(), |x| format!("{x:.2}"))
}

/// The report of a run: the samples (one JSON object a line, [`sample`]'s) and each
/// codec's playlists, in the order the table lists them; `seconds`, how long each codec
/// was published.
pub fn report(samples: &str, codecs: &[Playlists], seconds: u64) -> anyhow::Result<Report> {
    let samples = json_lines("sample", samples)?;
    let mut raw_codecs = Map::new();
    let mut rows = Vec::new();
    for Playlists { codec, src, master } in codecs {
        let mine: Vec<&Value> = samples
            .iter()
            .filter(|s| s.get("codec").and_then(Value::as_str) == Some(codec))
            .collect();
        let last = mine.last();
        let durations: Vec<f64> = src
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .filter_map(|d| {
                let end = d.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
                d[..end].parse().ok()
            })
            .collect();
        let gaps = src.matches("#EXT-X-GAP").count();
        // Each rung's lowest realtime factor over the samples.
        let mut lowest: BTreeMap<String, f64> = BTreeMap::new();
        // When each shed rung was first seen shed, seconds into the publish.
        let mut first_shed: BTreeMap<String, f64> = BTreeMap::new();
        let mut lag_max: Option<f64> = None;
        for s in &mine {
            for (rung, factor) in object(s, "realtime_factor") {
                if let Some(f) = factor.as_f64() {
                    let low = lowest.entry(rung.clone()).or_insert(f);
                    *low = low.min(f);
                }
            }
            let t = s.get("t").and_then(Value::as_f64).unwrap_or(0.0);
            for (rung, shed) in object(s, "shed") {
                if shed.as_f64().is_some_and(|v| v > 0.0) && !first_shed.contains_key(rung) {
                    first_shed.insert(rung.clone(), (t * 10.0).round() / 10.0);
                }
            }
            if let Some(lag) = s.get("lag_s").and_then(Value::as_f64) {
                lag_max = Some(lag_max.map_or(lag, |m: f64| m.max(lag)));
            }
        }
        // The rungs shed as the run ended.
        let shed: Map<String, Value> = last
            .map(|s| object(s, "shed"))
            .into_iter()
            .flatten()
            .filter(|(_, v)| v.as_f64().is_some_and(|v| v > 0.0))
            .map(|(rung, v)| (rung.clone(), v.clone()))
            .collect();
        let cpu = last
            .and_then(|s| s.get("cpu_cores"))
            .and_then(Value::as_f64);
        let codecs_text = src_codecs(master);
        let factors = lowest
            .iter()
            .map(|(rung, f)| format!("{rung} {f:.2}"))
            .collect::<Vec<_>>()
            .join(", ");
        let shed_text = shed
            .keys()
            .map(|rung| {
                let at = first_shed
                    .get(rung)
                    .map_or_else(|| "?".to_owned(), |t| python_float(*t));
                format!("{rung} at {at} s")
            })
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(format!(
            "| {codec} | {} | {} | {} | {} | {} | {gaps} |",
            fixed(cpu),
            if factors.is_empty() { "—" } else { &factors },
            fixed(lag_max),
            if shed_text.is_empty() {
                "none"
            } else {
                &shed_text
            },
            codecs_text.unwrap_or("—"),
        ));
        let window: f64 = durations.iter().fold(0.0, |a, d| a + d);
        raw_codecs.insert(
            codec.clone(),
            json!({
                "cpu_cores": cpu,
                "realtime_factor_min": lowest,
                "lag_max_s": lag_max,
                "rungs_shed": shed,
                "shed_at_s": first_shed,
                "src_codecs": codecs_text,
                "src_segments_listed": durations.len(),
                "src_gaps": gaps,
                "src_window_s": (window * 10.0).round() / 10.0,
                "samples": mine,
            }),
        );
    }
    let section = [
        HEADING.to_owned(),
        String::new(),
        format!(
            "`bench/ladder-codecs.sh {seconds}`: {SOURCE} to `sealcast up` with the default \
             ladder (src passed through in its own codec, 720p/480p/360p by x264 `veryfast`), \
             on this 2-core machine. CPU is `sealcast up`'s whole process (decode, three x264 \
             rungs, signing, pushing to 2 nodes) in cores; realtime factor is each rung's \
             lowest (1.0 keeps up); a rung the pipeline shed shows in \
             `sealcast_ingest_rungs_shed` and disappears from the dashboard's rung list; the \
             src rung's live window must have no gap (the stream never stalls)."
        ),
        String::new(),
        "| source | CPU cores | realtime factor (lowest per rung) | lag max s | rungs shed | src \
         CODECS | src gaps |"
            .to_owned(),
        "|---|---|---|---|---|---|---|".to_owned(),
    ]
    .into_iter()
    .chain(rows)
    .collect::<Vec<_>>()
    .join("\n")
        + "\n";
    Ok(Report {
        section,
        heading: HEADING,
        after: Some("## Ladder"),
        raw: json!({ "seconds": seconds, "source": SOURCE, "codecs": raw_codecs }),
        refusal: None,
    })
}

/// The members of the object `key` of `v` (none when it is not one).
fn object<'a>(v: &'a Value, key: &str) -> impl Iterator<Item = (&'a String, &'a Value)> {
    v.get(key).and_then(Value::as_object).into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playlists(codec: &str, codecs: &str) -> Playlists {
        Playlists {
            codec: codec.to_owned(),
            src: (1..=6).fold("#EXTM3U\n".to_owned(), |p, i| {
                p + &format!("#EXTINF:2.000,\n{i}.m4s\n")
            }),
            master: format!(
                "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1.64001f,mp4a.40.2\"\n720p/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2,CODECS=\"{codecs}\"\nsrc/index.m3u8\n"
            ),
        }
    }

    /// The samples of the run in `docs/benchmarks.md` (69a6009's
    /// bench/results/ladder-codecs.json) give the rows the Python report wrote there.
    #[test]
    fn the_committed_run_gives_the_rows_the_python_report_wrote() {
        let report = report(
            include_str!("testdata/ladder-codecs-69a6009.jsonl"),
            &[
                playlists("hevc", "hvc1.1.6.L123.90,mp4a.40.2"),
                playlists("av1", "av01.0.09M.08,mp4a.40.2"),
            ],
            30,
        )
        .expect("a report");
        let rows: Vec<&str> = report.section.lines().skip(6).collect();
        assert_eq!(
            rows,
            [
                "| hevc | 1.26 | 360p 0.99, 480p 0.99, 720p 0.99 | 0.03 | none | hvc1.1.6.L123.90,mp4a.40.2 | 0 |",
                "| av1 | 1.08 | 360p 0.99, 480p 1.00, 720p 0.99 | 0.01 | none | av01.0.09M.08,mp4a.40.2 | 0 |",
            ]
        );
        assert!(report
            .section
            .starts_with(&format!("{HEADING}\n\n`bench/ladder-codecs.sh 30`: ")));
        assert_eq!(report.raw["codecs"]["hevc"]["src_window_s"], json!(12.0));
        assert_eq!(
            report.raw["codecs"]["av1"]["samples"]
                .as_array()
                .map(Vec::len),
            Some(14)
        );
    }

    #[test]
    fn a_sample_reads_stream_mains_series_and_the_cpu() {
        let metrics = "# TYPE x gauge\n\
            sealcast_ingest_realtime_factor{stream=\"main\",rendition=\"720p\"} 0.98\n\
            sealcast_ingest_realtime_factor{stream=\"other\",rendition=\"720p\"} 0.5\n\
            sealcast_ingest_lag_seconds{stream=\"main\"} 0.25\n\
            sealcast_ingest_rungs_shed_total{stream=\"main\",rendition=\"360p\"} 1\n\
            sealcast_ingest_realtime_factor_other{stream=\"main\"} 9\n";
        let tick = Tick {
            codec: "hevc".to_owned(),
            start: 100.0,
            now: 110.0,
            before: 1000,
            ticks: 3000,
            tick: 100,
        };
        let s = sample(&tick, metrics);
        assert_eq!(s["cpu_cores"], json!(2.0));
        assert_eq!(s["t"], json!(10.0));
        assert_eq!(s["realtime_factor"], json!({"720p": 0.98}));
        assert_eq!(s["lag_s"], json!(0.25));
        assert_eq!(s["shed"], json!({"360p": 1.0}));
        assert_eq!(sample(&tick, "")["lag_s"], Value::Null);
    }

    #[test]
    fn a_shed_rung_says_when() {
        let samples = "{\"codec\":\"av1\",\"t\":4.04,\"cpu_cores\":1.9,\"realtime_factor\":{\"360p\":0.8},\"lag_s\":null,\"shed\":{}}\n\
            {\"codec\":\"av1\",\"t\":6.0,\"cpu_cores\":1.95,\"realtime_factor\":{\"360p\":0.7},\"lag_s\":1.5,\"shed\":{\"360p\":1}}\n\
            {\"codec\":\"av1\",\"t\":8.0,\"cpu_cores\":1.9,\"realtime_factor\":{},\"lag_s\":0.5,\"shed\":{\"360p\":1}}\n";
        let report = report(
            samples,
            &[playlists("av1", "av01"), playlists("hevc", "hvc1")],
            10,
        )
        .expect("a report");
        let rows: Vec<&str> = report.section.lines().skip(6).collect();
        assert_eq!(
            rows,
            [
                "| av1 | 1.90 | 360p 0.70 | 1.50 | 360p at 6.0 s | av01 | 0 |",
                "| hevc | — | — | — | none | hvc1 | 0 |",
            ]
        );
    }
}
