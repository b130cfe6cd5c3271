//! The report of `bench/latency.sh`: glass-to-glass latency in Chromium for sealcast's
//! LL-HLS, its plain HLS and nginx-rtmp's HLS, fed by one publisher, and what signing every
//! part costs the LL cluster. It was Python (`bench/lib/reports/latency.py`, in git history
//! before this module), whose text it writes.
//!
//! Its inputs: `runs.jsonl` (a `sealcast-glass` record a line, with the system and the
//! round) and the LL node's metrics before and after the runs (`{"at": seconds since the
//! epoch, "m": {"name{labels}": value}}`, as `sealcast-bench sample metrics` reads
//! them). The glass-to-glass summary of a system's runs is `summary`, which
//! `bench/ingest-latency.sh`'s report shares.

use anyhow::Context;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::python::{max, median_high, min, sum, truthy, Ordered};
use super::{json_lines, Report, Rounds};

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## Glass-to-glass latency";

/// The systems, in the table's order, with the names it gives them.
const SYSTEMS: [(&str, &str); 3] = [
    ("ll", "sealcast LL-HLS (lb, HTTPS)"),
    ("plain", "sealcast plain HLS (lb, HTTPS)"),
    ("nginx", "nginx-rtmp HLS (hls_fragment 2s)"),
];

/// An envelope's bytes: u32 ‖ manifest ‖ u32 ‖ ML-DSA-65 signature (3309 bytes); a part
/// manifest of stream "main", rendition "src" is 27+1+16+5+8+4+8+4+1+8+8+8+8+32 bytes...
const PART_ENVELOPE: f64 =
    (8 + (27 + 1 + 16 + 5 + 8 + 4 + 8 + 4 + 1 + 8 + 8 + 8 + 8 + 32) + 3309) as f64;
/// ...and a segment's 29+1+16+5+8+4+8·4+32.
const SEGMENT_ENVELOPE: f64 = (8 + (29 + 1 + 16 + 5 + 8 + 4 + 8 * 4 + 32) + 3309) as f64;

/// What the script ran with.
#[derive(Debug, clap::Args)]
pub struct Run {
    /// Seconds per run (`--seconds`) and the rounds (`--rounds`).
    #[command(flatten)]
    pub rounds: Rounds,
    /// The ladder (`src` or `full`).
    #[arg(long)]
    pub ladder: String,
}

/// The node's metrics at one time.
#[derive(Debug, Deserialize)]
struct Snapshot {
    /// Seconds since the epoch.
    at: f64,
    /// Each sample's `name{labels}` and value, in the page's order.
    m: Ordered,
}

impl Snapshot {
    /// The sum of the values of the samples whose key `pick` takes; none when none is.
    fn total(&self, pick: impl Fn(&str) -> bool) -> Option<f64> {
        let mut values = self
            .m
            .0
            .iter()
            .filter(|(k, _)| pick(k))
            .map(|(_, v)| v.as_f64().unwrap_or(0.0))
            .peekable();
        values.peek()?;
        // Python's sum, from the int 0.
        Some(values.fold(0.0, |a, b| a + b))
    }
}

/// What changed between two snapshots of the samples `pick` takes, as Python had it: the
/// int 0 when neither had one.
fn change(m0: &Snapshot, m1: &Snapshot, pick: impl Fn(&str) -> bool) -> Value {
    match (m0.total(&pick), m1.total(&pick)) {
        (None, None) => json!(0),
        (a, b) => json!(b.unwrap_or(0.0) - a.unwrap_or(0.0)),
    }
}

/// The buckets of histogram `name` that filled between two snapshots: (upper bound,
/// cumulative count), by bound.
fn buckets(m0: &Snapshot, m1: &Snapshot, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{");
    let by_bound = |s: &Snapshot| {
        let mut bounds: Vec<(f64, f64)> = Vec::new();
        for (key, value) in &s.m.0 {
            let Some(le) = key
                .strip_prefix(&prefix)
                .and_then(|labels| labels.split_once("le=\""))
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(le, _)| le)
            else {
                continue;
            };
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::NAN)
            };
            let v = value.as_f64().unwrap_or(0.0);
            match bounds.iter_mut().find(|(b, _)| *b == le) {
                Some(slot) => slot.1 += v,
                None => bounds.push((le, v)),
            }
        }
        bounds
    };
    let before = by_bound(m0);
    let mut out: Vec<(f64, f64)> = by_bound(m1)
        .into_iter()
        .map(|(le, after)| {
            let was = before.iter().find(|(b, _)| *b == le).map_or(0.0, |b| b.1);
            (le, after - was)
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    out
}

/// Prometheus' `histogram_quantile`: linear inside the bucket; none without counts
/// (publish-latency's report reads its histograms with it too).
pub(crate) fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let &(_, total) = buckets.last()?;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut prev_le, mut prev_c) = (0.0, 0.0);
    for &(le, c) in buckets {
        if c >= rank {
            if le == f64::INFINITY {
                return Some(prev_le);
            }
            if c == prev_c {
                return Some(le);
            }
            return Some(prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c));
        }
        (prev_le, prev_c) = (le, c);
    }
    Some(prev_le)
}

/// A quantile in milliseconds as Python had it: `(q or 0) * 1000`, the int 0 for none or 0.
fn quantile_ms(q: Option<f64>) -> Value {
    match q {
        Some(q) if q != 0.0 => json!(q * 1000.0),
        _ => json!(0),
    }
}

/// The figures of some runs of one system (`sealcast-glass`'s records): the median (the
/// higher middle one), least and greatest of their p50 and p90, the worst sample, the
/// longest stall, the failed runs and the stamped samples.
pub(crate) fn summary(runs: &[&Value]) -> Map<String, Value> {
    let glass: Vec<&Value> = runs
        .iter()
        .filter_map(|r| r.get("glass_to_glass_s"))
        .filter(|g| truthy(g))
        .collect();
    let of = |key: &str| -> Vec<Value> {
        glass
            .iter()
            .map(|g| g.get(key).cloned().unwrap_or(Value::Null))
            .collect()
    };
    let spread =
        |xs: Vec<Value>| json!({"median": median_high(&xs), "min": min(&xs), "max": max(&xs)});
    let stalls: Vec<Value> = runs
        .iter()
        .filter_map(|r| r.get("longest_stall_s"))
        .filter(|s| !s.is_null())
        .cloned()
        .collect();
    let failed = runs
        .iter()
        .filter(|r| r.get("failed").is_some_and(truthy))
        .count();
    let mut m = Map::new();
    m.insert("p50_s".into(), spread(of("p50")));
    m.insert("p90_s".into(), spread(of("p90")));
    m.insert("max_s".into(), json!(max(&of("max"))));
    m.insert("longest_stall_s".into(), json!(max(&stalls)));
    m.insert("failed_runs".into(), json!(failed));
    m.insert(
        "stamped_samples".into(),
        sum(runs.iter().filter_map(|r| r.get("stamped_samples"))),
    );
    m
}

/// A figure with `d` decimals; "—" for none.
fn fixed(v: &Value, d: usize) -> String {
    v.as_f64()
        .map_or_else(|| "—".to_owned(), |x| format!("{x:.d$}"))
}

/// A figure with two decimals; "—" for none.
fn cell(v: &Value) -> String {
    fixed(v, 2)
}

/// A [`summary`]'s cells `p50 | p90 | max | longest stall`, each spread as "median
/// (min–max)".
pub(crate) fn cells(s: &Map<String, Value>) -> String {
    let spread = |key: &str| {
        let s = &s[key];
        format!(
            "{} ({}–{})",
            cell(&s["median"]),
            cell(&s["min"]),
            cell(&s["max"])
        )
    };
    format!(
        "{} | {} | {} | {}",
        spread("p50_s"),
        spread("p90_s"),
        cell(&s["max_s"]),
        cell(&s["longest_stall_s"])
    )
}

/// The report of a run: `runs` is `runs.jsonl`, `m0` and `m1` the LL node's metrics
/// before and after.
pub fn report(runs: &str, m0: &str, m1: &str, run: &Run) -> anyhow::Result<Report> {
    let runs = json_lines("run", runs)?;
    let m0: Snapshot = serde_json::from_str(m0).context("the metrics before")?;
    let m1: Snapshot = serde_json::from_str(m1).context("the metrics after")?;
    let span = m1.at - m0.at;
    let named = |name: &'static str| move |k: &str| k.split('{').next() == Some(name);
    let delta = |name: &'static str| change(&m0, &m1, named(name));
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let parts_signed = delta("sealcast_ingest_parts_signed_total");
    let segments = delta("sealcast_ingest_sign_seconds_count");
    let part_sign_s = delta("sealcast_ingest_part_sign_seconds_sum");
    let sign_s = delta("sealcast_ingest_sign_seconds_sum");
    let verify_s = delta("sealcast_signature_verify_seconds_sum");
    let verified = delta("sealcast_signature_verify_seconds_count");
    let wait = "sealcast_part_wait_seconds";
    let waits = change(&m0, &m1, |k: &str| k.starts_with(&format!("{wait}_count")));
    let buckets = buckets(&m0, &m1, wait);
    let per_span = |x: f64| (span != 0.0).then(|| x / span);
    let per = |x: f64, by: &Value| (f(by) != 0.0).then(|| 1000.0 * x / f(by));
    let cost = json!({
        "seconds": span,
        "parts_per_s": per_span(f(&parts_signed)),
        "segments_per_s": per_span(f(&segments)),
        "ingest_sign_ms_per_s": per_span(1000.0 * (f(&part_sign_s) + f(&sign_s))),
        "part_sign_ms_mean": per(f(&part_sign_s), &parts_signed),
        "edge_verify_ms_per_s_per_node": per_span(1000.0 * f(&verify_s)).map(|x| x / 2.0),
        "verify_ms_mean": per(f(&verify_s), &verified),
        "mqtt_manifest_bytes_per_s": per_span(
            f(&parts_signed) * PART_ENVELOPE + f(&segments) * SEGMENT_ENVELOPE
        ),
        "part_wait_ms": {
            "p50": quantile_ms(quantile(&buckets, 0.5)),
            "p99": quantile_ms(quantile(&buckets, 0.99)),
            "n": waits,
        },
    });
    let Rounds { seconds, rounds } = run.rounds;
    let mut systems = Map::new();
    let mut lines = vec![
        HEADING.to_owned(),
        String::new(),
        format!(
            "`bench/latency.sh {seconds} {rounds}`: Chromium (the sealcast player, hls.js in \
             low-latency mode) reads the clock `sealcast source` stamps into each frame every \
             250 ms, {seconds} s per run after a 10 s settle, {rounds} rounds interleaved; one \
             publisher feeds all three (nginx-rtmp relays it to both sealcast clusters). \
             Ladder: {}. Median of the runs' p50 and p90 (min–max), the worst sample, and the \
             longest stall.",
            run.ladder
        ),
        String::new(),
        "| system | p50 s | p90 s | max s | longest stall s | samples | failed runs |".to_owned(),
        "|---|---|---|---|---|---|---|".to_owned(),
    ];
    for (system, name) in SYSTEMS {
        let mine: Vec<&Value> = runs
            .iter()
            .filter(|r| r.get("system").and_then(Value::as_str) == Some(system))
            .collect();
        let mut s = summary(&mine);
        lines.push(format!(
            "| {name} | {} | {} | {} |",
            cells(&s),
            s["stamped_samples"],
            s["failed_runs"]
        ));
        s.insert("name".into(), json!(name));
        s.insert("runs".into(), json!(mine));
        systems.insert(system.to_owned(), Value::Object(s));
    }
    let c = |key: &str, d| fixed(&cost[key], d);
    let mqtt_kb = cost["mqtt_manifest_bytes_per_s"].as_f64().unwrap_or(0.0) / 1000.0;
    lines.push(String::new());
    lines.push(format!(
        "Cost of signing every part, on the LL cluster over the {} s of the runs (one stream, \
         ML-DSA-65): {} parts and {} segments signed per second; the ingest spends {} ms of CPU \
         per second on hashing and signing ({} ms per part); each edge {} ms per second \
         verifying ({} ms per manifest); signed manifests on MQTT {mqtt_kb:.1} KB/s per stream \
         and rendition. The part gate's added latency (bytes arrived → listed): p50 {} ms, p99 \
         {} ms over {} parts.",
        c("seconds", 0),
        c("parts_per_s", 2),
        c("segments_per_s", 2),
        c("ingest_sign_ms_per_s", 2),
        c("part_sign_ms_mean", 2),
        c("edge_verify_ms_per_s_per_node", 2),
        c("verify_ms_mean", 3),
        fixed(&cost["part_wait_ms"]["p50"], 2),
        fixed(&cost["part_wait_ms"]["p99"], 2),
        f(&cost["part_wait_ms"]["n"]) as i64,
    ));
    let raw = json!({
        "seconds_per_run": seconds,
        "rounds": rounds,
        "ladder": run.ladder,
        "publisher": "`sealcast source` 1280x720 30 fps via nginx-rtmp",
        "systems": systems,
        "signing": cost,
    });
    Ok(Report {
        section: lines.join("\n") + "\n",
        heading: HEADING,
        after: None,
        raw,
        refusal: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Run {
        Run {
            rounds: Rounds {
                seconds: 60,
                rounds: 2,
            },
            ladder: "src".to_owned(),
        }
    }

    /// The runs of the run in `docs/benchmarks.md` (17dfc89's bench/results/latency.json)
    /// with metrics snapshots made for them give the section and the raw results the
    /// Python report (`latency.py`) wrote on them.
    #[test]
    fn gives_the_section_and_results_the_python_report_wrote() {
        let report = report(
            include_str!("testdata/latency-17dfc89.jsonl"),
            include_str!("testdata/latency-m0.json"),
            include_str!("testdata/latency-m1.json"),
            &run(),
        )
        .expect("a report");
        assert_eq!(report.section, include_str!("testdata/latency-python.md"));
        let python: Value =
            serde_json::from_str(include_str!("testdata/latency-python.json")).expect("JSON");
        assert!(super::super::python::same_json(&report.raw, &python));
    }

    #[test]
    fn metrics_without_the_series_give_python_s_zeros() {
        let m0 = r#"{"at": 10.0, "m": {}}"#;
        let m1 = r#"{"at": 10.0, "m": {"other_total": 1.0}}"#;
        let report = report("", m0, m1, &run()).expect("a report");
        let signing = &report.raw["signing"];
        assert_eq!(signing["parts_per_s"], Value::Null);
        assert_eq!(
            signing["part_wait_ms"].to_string(),
            r#"{"n":0,"p50":0,"p99":0}"#
        );
        assert!(report
            .section
            .contains("| sealcast LL-HLS (lb, HTTPS) | — (—–—) | — (—–—) | — | — | 0 | 0 |"));
        assert!(report.section.contains("over the 0 s of the runs"));
        assert!(report
            .section
            .contains("p50 0.00 ms, p99 0.00 ms over 0 parts."));
    }

    #[test]
    fn quantiles_interpolate_as_prometheus_does() {
        let buckets = [(0.1, 10.0), (0.2, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(quantile(&buckets, 0.5), Some(0.1));
        assert!((quantile(&buckets, 0.75).expect("q") - 0.15).abs() < 1e-12);
        assert_eq!(quantile(&[(f64::INFINITY, 4.0)], 0.5), Some(0.0));
        assert_eq!(quantile(&[(0.1, 0.0)], 0.5), None);
        assert_eq!(quantile(&[], 0.5), None);
    }
}
