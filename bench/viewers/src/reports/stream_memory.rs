//! The report of `bench/stream-memory.sh`: the RSS a broadcast node adds per live stream
//! against the floor, the bytes of the windows it lists. It was Python
//! (`bench/lib/reports/stream_memory.py`, in git history before this module), whose text
//! and raw results it writes.
//!
//! Its input is the script's `raw.jsonl`: a line per point (`run`, `streams`, `wait_s`
//! and the `point` its sampler printed: the node's memory and the floor, medians over the
//! samples) and a line per run without a point (the rungs the ingest shed, CPU ticks).

use std::collections::BTreeMap;
use std::fmt;

use anyhow::Context;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::python::python_number;
use super::{json_lines, push_notes, Report};
use crate::spread::{median, spread};

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## Memory per live stream (bench/stream-memory.sh)";

/// The per-run figures the summary spreads, in its order.
const KEYS: [&str; 14] = [
    "added_rss_per_stream",
    "added_anon_per_stream",
    "added_pss_per_stream",
    "floor_listed_per_stream",
    "floor_unique_per_stream",
    "floor_served_per_stream",
    "ratio_listed",
    "ratio_unique",
    "ratio_served",
    "ratio_anon_listed",
    "ratio_pss_listed",
    "marginal_rss_per_stream",
    "marginal_floor_per_stream",
    "marginal_ratio",
];

/// What `bench/stream-memory.sh` measured with.
#[derive(Debug, Clone, clap::Args)]
pub struct Run {
    /// Runs, each with fresh processes.
    #[arg(long)]
    pub runs: u64,
    /// Streams added one by one per run.
    #[arg(long)]
    pub streams: i64,
    /// The ladder (`cheap` or `default`).
    #[arg(long)]
    pub ladder: String,
    /// The source's picture size (`640x360`).
    #[arg(long)]
    pub size: String,
    /// The source's bitrate.
    #[arg(long)]
    pub source_kbps: u64,
    /// Seconds each point was sampled.
    #[arg(long)]
    pub sample_seconds: u64,
    /// The node's tokio worker threads.
    #[arg(long)]
    pub node_workers: u64,
    /// Segments the node keeps fetchable after the window.
    #[arg(long)]
    pub grace: u64,
    /// The day of the run, as the section prints it (`date +%F`).
    #[arg(long)]
    pub date: String,
}

/// A JSON object's members in the order its text gives them (the section lists the
/// rungs' bitrates in the sampler's order).
#[derive(Debug, Default)]
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out: Vec<(String, Value)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    // A member given twice keeps its place with the later value.
                    match out.iter_mut().find(|(name, _)| *name == k) {
                        Some(slot) => slot.1 = v,
                        None => out.push((k, v)),
                    }
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Members)
    }
}

/// What a point's line says of the bitrates, in order.
#[derive(Debug, Deserialize)]
struct PointKbps {
    #[serde(default)]
    kbps: Option<Ordered>,
}

/// A point's line, for its bitrates.
#[derive(Debug, Deserialize)]
struct LineKbps {
    point: Option<PointKbps>,
}

/// One point: what the sampler printed, with the wait before it (`wait_s`).
#[derive(Debug)]
struct Point {
    values: Map<String, Value>,
    kbps: Vec<(String, Value)>,
}

impl Point {
    fn get(&self, key: &str) -> Option<f64> {
        self.values.get(key).and_then(Value::as_f64)
    }

    fn need(&self, key: &str) -> anyhow::Result<f64> {
        self.get(key)
            .with_context(|| format!("a point without {key}"))
    }
}

/// The least-squares slope of `ys` over `xs`; none for fewer than two points or no spread.
/// (Python's `statistics.fmean` sums exactly; these sums, of whole KiB and bytes, are
/// exact in floating point anyway.)
fn slope(xs: &[f64], ys: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mx, my) = (mean(xs), mean(ys));
    let den = xs.iter().fold(0.0, |a, x| a + (x - mx) * (x - mx));
    let num = xs
        .iter()
        .zip(ys)
        .fold(0.0, |a, (x, y)| a + (x - mx) * (y - my));
    (den != 0.0).then(|| num / den)
}

/// A megabyte figure as the section prints it.
fn mb(x: f64) -> String {
    format!("{:.2}", x / 1e6)
}

/// The report of a run from its `raw.jsonl`; `notes`, what
/// `bench/stream-memory-notes.md` says.
pub fn report(raw: &str, run: &Run, notes: Option<&str>) -> anyhow::Result<Report> {
    let mut points: BTreeMap<i64, BTreeMap<i64, Point>> = BTreeMap::new();
    let mut extra: BTreeMap<i64, Value> = BTreeMap::new();
    let lines = raw.lines().filter(|l| !l.trim().is_empty());
    for (o, line) in json_lines("a line", raw)?.into_iter().zip(lines) {
        let r = o["run"].as_i64().context("a line without its run")?;
        if let Some(point) = o.get("point") {
            let k = o["streams"].as_i64().context("a point without streams")?;
            let mut values = point.as_object().context("a point not an object")?.clone();
            values.insert(
                "wait_s".to_owned(),
                o.get("wait_s").cloned().unwrap_or(Value::Null),
            );
            let ordered: LineKbps = serde_json::from_str(line).context("a point's kbps")?;
            let kbps = ordered.point.and_then(|p| p.kbps).unwrap_or_default().0;
            points
                .entry(r)
                .or_default()
                .insert(k, Point { values, kbps });
        } else {
            extra.insert(r, o);
        }
    }

    let mut per_run: Vec<Value> = Vec::new();
    let mut rates: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    let mut runs_points: Vec<&BTreeMap<i64, Point>> = Vec::new();
    for (r, pts) in &points {
        let n = *pts.keys().max().context("a run without points")?;
        if n == 0 {
            continue;
        }
        let p0 = pts
            .get(&0)
            .context("a run without its point at 0 streams")?;
        let pn = &pts[&n];
        let added = |k: &str| Some((pn.get(k)? - p0.get(k)?) * 1024.0);
        let rss = added("VmRSS").context("a point without VmRSS")?;
        let anon = added("RssAnon").unwrap_or(0.0);
        let pss = added("Pss");
        let nf = n as f64;
        let (listed, unique, served) = (
            pn.need("floor_listed")?,
            pn.need("floor_unique")?,
            pn.need("floor_served")?,
        );
        let ks: Vec<i64> = pts.keys().filter(|k| **k >= 1).copied().collect();
        let kx: Vec<f64> = ks.iter().map(|k| *k as f64).collect();
        let of =
            |key| -> anyhow::Result<Vec<f64>> { ks.iter().map(|k| pts[k].need(key)).collect() };
        let s = slope(
            &kx,
            &of("VmRSS")?.iter().map(|v| v * 1024.0).collect::<Vec<_>>(),
        );
        let f = slope(&kx, &of("floor_listed")?);
        let mut e = Map::new();
        e.insert("run".into(), json!(r));
        e.insert("streams".into(), json!(n));
        e.insert("rss0_kib".into(), p0.values["VmRSS"].clone());
        e.insert("rss_kib".into(), pn.values["VmRSS"].clone());
        e.insert("added_rss_per_stream".into(), json!(rss / nf));
        e.insert("added_anon_per_stream".into(), json!(anon / nf));
        e.insert("added_pss_per_stream".into(), json!(pss.map(|p| p / nf)));
        e.insert("floor_listed_per_stream".into(), json!(listed / nf));
        e.insert("floor_unique_per_stream".into(), json!(unique / nf));
        e.insert("floor_served_per_stream".into(), json!(served / nf));
        e.insert("ratio_listed".into(), json!(rss / listed));
        e.insert("ratio_unique".into(), json!(rss / unique));
        e.insert("ratio_served".into(), json!(rss / served));
        e.insert("ratio_anon_listed".into(), json!(anon / listed));
        e.insert("ratio_pss_listed".into(), json!(pss.map(|p| p / listed)));
        e.insert("marginal_rss_per_stream".into(), json!(s));
        e.insert("marginal_floor_per_stream".into(), json!(f));
        let ratio = match (s, f) {
            (Some(s), Some(f)) if f != 0.0 => Some(s / f),
            _ => None,
        };
        e.insert("marginal_ratio".into(), json!(ratio));
        e.insert(
            "kbps".into(),
            pn.values.get("kbps").cloned().unwrap_or(Value::Null),
        );
        let x = extra.get(r);
        e.insert(
            "shed".into(),
            x.and_then(|x| x.get("shed"))
                .cloned()
                .unwrap_or(Value::Null),
        );
        let points_json: Map<String, Value> = pts
            .iter()
            .map(|(k, p)| (k.to_string(), Value::Object(p.values.clone())))
            .collect();
        e.insert("points".into(), Value::Object(points_json));
        if let Some(x) = x.filter(|x| x.as_object().is_some_and(|o| !o.is_empty())) {
            let ticks = |k: &str| -> anyhow::Result<f64> {
                let v = |k: &str| {
                    x[k].as_f64()
                        .with_context(|| format!("a run's line without {k}"))
                };
                Ok(v(k)? / v("hz")?)
            };
            e.insert("node_cpu_s".into(), json!(ticks("node_ticks")?));
            e.insert("ingest_cpu_s".into(), json!(ticks("ingest_ticks")?));
        }
        for (rung, v) in &pn.kbps {
            let v = v.as_f64();
            match rates.iter_mut().find(|(name, _)| name == rung) {
                Some((_, vs)) => vs.push(v),
                None => rates.push((rung.clone(), vec![v])),
            }
        }
        per_run.push(Value::Object(e));
        runs_points.push(pts);
    }

    let mut summary: Map<String, Value> = KEYS
        .iter()
        .map(|k| {
            let s = spread(per_run.iter().map(|r| r[*k].as_f64()));
            let s = s.map_or(
                Value::Null,
                |s| json!({"median": s.median, "min": s.min, "max": s.max}),
            );
            ((*k).to_owned(), s)
        })
        .collect();
    let kbps: Vec<(String, Option<f64>)> = rates
        .into_iter()
        .map(|(rung, vs)| (rung, median(&vs.into_iter().flatten().collect::<Vec<_>>())))
        .collect();
    let mut steps = Vec::new();
    for k in 1..=run.streams {
        let diffs = |key: &str| -> Vec<f64> {
            runs_points
                .iter()
                .filter_map(|pts| Some(pts.get(&k)?.get(key)? - pts.get(&(k - 1))?.get(key)?))
                .collect()
        };
        let xs: Vec<f64> = diffs("VmRSS").iter().map(|x| x * 1024.0).collect();
        if let (Some(x), Some(f)) = (median(&xs), median(&diffs("floor_listed"))) {
            steps.push(format!("stream {k} {} MB (floor {} MB)", mb(x), mb(f)));
        }
    }
    let huge: Vec<String> = runs_points
        .iter()
        .filter_map(|pts| {
            let a = pts.get(&0)?.get("AnonHugePages")?;
            let b = pts.get(&run.streams)?.get("AnonHugePages")?;
            Some(format!("{a:.0} / {b:.0}"))
        })
        .collect();
    let shed: Value = per_run.iter().fold(json!(0), |sum, r| {
        let s = &r["shed"];
        match (sum.as_i64(), s.as_i64()) {
            (Some(a), Some(b)) => json!(a + b),
            // `r["shed"] or 0`: none and zero add a whole 0.
            _ if s.is_null() || s.as_f64() == Some(0.0) => sum,
            _ => json!(sum.as_f64().unwrap_or(0.0) + s.as_f64().unwrap_or(0.0)),
        }
    });

    let fmt = |k: &str, f: &dyn Fn(f64) -> String, unit: &str| match summary.get(k) {
        Some(s) if s.is_object() => {
            let x = |q: &str| f(s[q].as_f64().unwrap_or(f64::NAN));
            format!("{}{unit} ({}–{})", x("median"), x("min"), x("max"))
        }
        _ => "—".to_owned(),
    };
    let r2 = |x: f64| format!("{x:.2}");
    let setup = if run.ladder == "cheap" {
        format!(
            "the default ladder's shape and bitrates at a quarter of the pixels (the 2-core machine cannot \
             transcode the default 720p ladder for more than one stream in real time): `sealcast source` \
             {} 30 fps {} kb/s (src) and encoded rungs of 360, 270 and 180 lines at 3000 / 1200 / \
             730 kb/s (x264 ultrafast, one thread each); 2 s segments, window 6, CMAF with 0.333 s parts",
            run.size, run.source_kbps
        )
    } else {
        format!(
            "the product's default ladder (`sealcast source` {} 30 fps {} kb/s)",
            run.size, run.source_kbps
        )
    };
    let rates = kbps
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} {}",
                v.map_or_else(|| "None".to_owned(), |v| format!("{v:.0}"))
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let streams = run.streams;
    let each = |key: &str| {
        per_run
            .iter()
            .map(|r| mb(r[key].as_f64().unwrap_or(f64::NAN) * 1024.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut lines = vec![
        HEADING.to_owned(),
        String::new(),
        format!(
            "A broadcast node as its own process (`sealcast broadcast`, {} tokio worker; `sealcast ingest` and \
             Mosquitto in processes of their own), live streams published at real-time pace with `sealcast source` \
             and added one by one up to {streams}; {setup}. Bitrates reached, kb/s over the listed window: {rates}. \
             After each stream, once every rung of it lists a full window and has slid on by {} segments \
             (so the node also holds the {} segments it keeps fetchable after the window), the node's VmRSS \
             and Pss and the floor are sampled every 0.5 s for {} s (medians). The floor is read from the \
             node: the size of every segment, LL-HLS part and init segment that every rung's media playlist lists \
             (the last three segments are listed both whole and as parts). {} run{} with fresh processes, \
             {}; median (min–max).",
            run.node_workers,
            run.grace + 1,
            run.grace,
            run.sample_seconds,
            per_run.len(),
            if per_run.len() == 1 { "" } else { "s" },
            run.date,
        ),
        String::new(),
        "| figure | per stream |".to_owned(),
        "|---|---|".to_owned(),
        format!("| added RSS, (RSS(k) − RSS(0)) / k at k = {streams} | {} |", fmt("added_rss_per_stream", &mb, " MB")),
        format!("| of which anonymous (RssAnon) | {} |", fmt("added_anon_per_stream", &mb, " MB")),
        format!("| added Pss | {} |", fmt("added_pss_per_stream", &mb, " MB")),
        format!("| floor: bytes listed (segments + parts + init) | {} |", fmt("floor_listed_per_stream", &mb, " MB")),
        format!("| each byte once (segments, the open segment's parts, init) | {} |", fmt("floor_unique_per_stream", &mb, " MB")),
        format!("| what the node answers for (listed + segments kept after the window + every part it serves) | {} |", fmt("floor_served_per_stream", &mb, " MB")),
        format!("| **ratio added RSS / floor listed** (goal ≤ 1.3) | **{}** |", fmt("ratio_listed", &r2, "")),
        format!("| ratio added RSS / each byte once | {} |", fmt("ratio_unique", &r2, "")),
        format!("| ratio added RSS / what the node answers for | {} |", fmt("ratio_served", &r2, "")),
        format!("| ratio added Pss / floor listed | {} |", fmt("ratio_pss_listed", &r2, "")),
        format!(
            "| marginal: slope of RSS over k = 1..{streams} / slope of the floor | {} ({} / {}) |",
            fmt("marginal_ratio", &r2, ""),
            fmt("marginal_rss_per_stream", &mb, " MB"),
            fmt("marginal_floor_per_stream", &mb, " MB")
        ),
        String::new(),
        format!(
            "Rungs shed by the ingest (it fell behind real time): {}. RSS(0), the node with no stream: {} MB; \
             at {streams} streams: {} MB (each run).",
            python_number(&shed),
            each("rss0_kib"),
            each("rss_kib")
        ),
        String::new(),
        format!(
            "RSS each stream added, median over the runs: {}. Transparent huge pages in the node \
             (AnonHugePages, KiB) with 0 / {streams} streams: {}.",
            steps.join("; "),
            huge.join(", ")
        ),
    ];
    push_notes(&mut lines, notes);
    lines.push(String::new());
    lines.push(
        "Run it with `bench/stream-memory.sh [RUNS [STREAMS]]` (default 5 runs of 3 streams; \
         `LADDER=default` for the product's ladder); raw numbers in `bench/out/stream-memory.json`."
            .to_owned(),
    );
    lines.push(String::new());
    summary.insert("steps".to_owned(), json!(steps));
    let kbps: Map<String, Value> = kbps.into_iter().map(|(k, v)| (k, json!(v))).collect();
    Ok(Report {
        section: lines.join("\n"),
        heading: HEADING,
        after: None,
        raw: json!({
            "date": run.date, "runs": run.runs, "streams": run.streams, "ladder": run.ladder,
            "source": format!("{} 30 fps {} kb/s", run.size, run.source_kbps),
            "sample_seconds": run.sample_seconds, "node_workers": run.node_workers,
            "kbps": kbps, "summary": summary, "per_run": per_run,
        }),
        refusal: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run rebuilt from 42b87e2's committed raw results, with a run cut short, points
    /// without Pss or huge pages, bitrates missing or of other rungs, shed rungs, a run
    /// without its CPU line and one without streams, given to the Python report
    /// (`bench/lib/reports/stream_memory.py`, before this module), gave this section and
    /// these raw results.
    #[test]
    fn gives_the_section_and_raw_results_the_python_report_wrote() {
        let run = Run {
            runs: 5,
            streams: 3,
            ladder: "cheap".to_owned(),
            size: "640x360".to_owned(),
            source_kbps: 2500,
            sample_seconds: 4,
            node_workers: 1,
            grace: 2,
            date: "2026-11-30".to_owned(),
        };
        let report = report(
            include_str!("testdata/stream-memory-raw.jsonl"),
            &run,
            Some("Notes.\n"),
        )
        .expect("a report");
        assert_eq!(
            report.section,
            include_str!("testdata/stream-memory-python.md")
        );
        let python: Value =
            serde_json::from_str(include_str!("testdata/stream-memory-python.json")).expect("JSON");
        // Compared as text would be: serde_json reads a float's last digit loosely, the same
        // loose way for the same text.
        let printed: Value = serde_json::from_str(&report.raw.to_string()).expect("JSON");
        assert_eq!(printed, python);
    }

    #[test]
    fn slopes_are_least_squares() {
        assert_eq!(slope(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]), Some(2.0));
        assert_eq!(slope(&[1.0], &[2.0]), None);
        assert_eq!(slope(&[1.0, 1.0], &[2.0, 3.0]), None);
    }
}
