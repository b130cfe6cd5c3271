//! The report of `bench/llhls-cdn.sh` (issue 33): LL-HLS viewers through Varnish in front
//! of the load balancer, the requests that reach the origin per audience and the latency
//! the cache adds; with the script's progress line per run ([`step`]) and the parts a
//! playlist lists per second ([`parts_per_second`]). It was a Python report
//! (`bench/lib/reports/llhls_cdn.py`, in git history before this module), whose section
//! and raw results it writes.
//!
//! What the script leaves in its work directory's `runs/` per system and run
//! (`SYSTEM-RUN`): the viewers' report (`.json`, one step), the start and end times
//! (`.times`, Unix seconds) and the samples taken every second (`.samples`: Unix time, the
//! node's requests, Varnish's backend requests, hits and misses).

use std::path::Path;

use anyhow::Context;
use serde_json::{json, Map, Value};

use super::python::{counted_json, parse_json, python_float, python_number, sum, truthy};
use super::{push_notes, Report};
use crate::spread::{grouped, grouped_text, of_json, text};

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## LL-HLS viewers through a cache (bench/llhls-cdn.sh)";
/// Where the raw results go by default.
pub const RESULTS: &str = "bench/out/llhls-cdn.json";

/// What the script ran with (what it gave the Python report by its environment).
#[derive(Debug, Clone, clap::Args)]
pub struct Run {
    /// The runs asked for.
    #[arg(long)]
    pub runs: u64,
    /// The systems (`lb-N`, `cdn-N`), in the table's order, separated by spaces.
    #[arg(long)]
    pub systems: String,
    /// How long each audience was measured (STEP_SECS).
    #[arg(long)]
    pub step_secs: f64,
    /// How long the viewers took to join (JOIN_SECS).
    #[arg(long)]
    pub join_secs: f64,
    /// Issue lag p99 (ms) above which the load generator was short of CPU.
    #[arg(long)]
    pub lag_limit_ms: f64,
    /// Core 1's busy share from which the load generator was short of CPU.
    #[arg(long)]
    pub gen_busy: f64,
    /// The parts the node published per second ([`parts_per_second`]).
    #[arg(long)]
    pub parts_per_sec: f64,
    /// The parts' target duration (PART_TARGET).
    #[arg(long)]
    pub part_target: f64,
    /// The machine's cores (`nproc`).
    #[arg(long)]
    pub cores: i64,
    /// What `varnishd -V` printed first.
    #[arg(long, allow_hyphen_values = true)]
    pub varnish_version: String,
    /// The seconds the runs took.
    #[arg(long)]
    pub elapsed: i64,
    /// The day of the run, as the section prints it (`date +%F`).
    #[arg(long)]
    pub date: String,
}

/// One run of one system, as the script left it.
#[derive(Debug, Clone)]
pub struct RunFiles {
    /// The system (`lb-100`, `cdn-1000`).
    pub system: String,
    /// The run.
    pub run: u64,
    /// The viewers' report.
    pub report: String,
    /// The start and end times.
    pub times: String,
    /// The samples.
    pub samples: String,
}

/// The runs in `dir` of each of `systems` (run 1 to `runs`, those there).
pub fn read(dir: &Path, systems: &str, runs: u64) -> anyhow::Result<Vec<RunFiles>> {
    let mut found = Vec::new();
    let mut seen = Vec::new();
    for system in systems.split_whitespace() {
        if seen.contains(&system) {
            continue;
        }
        seen.push(system);
        for run in 1..=runs {
            let base = dir.join(format!("{system}-{run}"));
            let report = base.with_extension("json");
            if !report.exists() {
                continue;
            }
            let read =
                |p: &Path| std::fs::read_to_string(p).with_context(|| p.display().to_string());
            found.push(RunFiles {
                system: system.to_owned(),
                run,
                report: read(&report)?,
                times: read(&base.with_extension("times"))?,
                samples: read(&base.with_extension("samples"))?,
            });
        }
    }
    Ok(found)
}

/// The parts a media playlist lists per second (their count over their durations), with
/// four decimals; "0" when it lists none.
pub fn parts_per_second(playlist: &str) -> anyhow::Result<String> {
    const TAG: &str = "#EXT-X-PART:DURATION=";
    let mut durations = Vec::new();
    for (i, _) in playlist.match_indices(TAG) {
        let rest = &playlist[i + TAG.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if end == 0 {
            continue;
        }
        let d: f64 = rest[..end]
            .parse()
            .with_context(|| format!("a part's duration: {:?}", &rest[..end]))?;
        durations.push(d);
    }
    if durations.is_empty() {
        return Ok("0".to_owned());
    }
    let total: f64 = durations.iter().sum();
    anyhow::ensure!(total != 0.0, "the parts last 0 s");
    Ok(format!("{:.4}", durations.len() as f64 / total))
}

/// `v[a][b]`, null when either is missing or null (Python's `(v.get(a) or {}).get(b)`).
fn pick<'a>(v: &'a Value, a: &str, b: &str) -> &'a Value {
    v.get(a).and_then(|x| x.get(b)).unwrap_or(&Value::Null)
}

/// `ll.get(key, 0)`.
fn get_or_zero(ll: &Value, key: &str) -> Value {
    ll.get(key).cloned().unwrap_or(json!(0))
}

/// The progress line the script prints after a run, from the viewers' report.
pub fn step(report: &str) -> anyhow::Result<String> {
    let report = parse_json(report).context("the viewers' report")?;
    let s = report["steps"].get(0).context("a report without steps")?;
    let ll = s.get("ll").unwrap_or(&Value::Null);
    let cpu = &s["cpu"];
    let g = |k: &str, f: &str| pick(ll, k, f).as_f64().unwrap_or(0.0);
    let or0 = |v: &Value| v.as_f64().unwrap_or(0.0);
    Ok(format!(
        "  {:>6} viewers: latency p50 {:.0} ms, part TTFB p50/p99 {:.0}/{:.0} ms, stalls {}, errors {}, \
         issue lag p99 {:.1} ms, generator CPU {:.2}, servers CPU {:.2}",
        python_number(&s["viewers"]),
        g("latency", "p50_ms"),
        g("part_ttfb", "p50_ms"),
        g("part_ttfb", "p99_ms"),
        python_number(&get_or_zero(ll, "stalls")),
        python_number(&s["errors"]),
        s["issue_lag_p99_ms"].as_f64().unwrap_or(0.0),
        or0(&cpu["own"]),
        or0(&cpu["watched"]),
    ))
}

/// `a - b` of two JSON numbers, as Python's `-`.
fn minus(a: &Value, b: &Value) -> Value {
    match (a.as_i64(), b.as_i64()) {
        (Some(a), Some(b)) => json!(a - b),
        _ => json!(a.as_f64().unwrap_or(0.0) - b.as_f64().unwrap_or(0.0)),
    }
}

/// Per-second rates of each sampled counter between `t0` and `t1` (from the first and last
/// samples inside the window): origin, backend, hits, misses; none with fewer than two.
fn window_rates(samples: &str, t0: f64, t1: f64) -> anyhow::Result<Option<[f64; 4]>> {
    let mut inside = Vec::new();
    for line in samples.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 5 {
            continue;
        }
        let row = fields
            .iter()
            .map(|f| {
                f.parse::<f64>()
                    .with_context(|| format!("a sample: {line:?}"))
            })
            .collect::<anyhow::Result<Vec<f64>>>()?;
        if t0 <= row[0] && row[0] <= t1 {
            inside.push(row);
        }
    }
    let (Some(a), Some(b)) = (inside.first(), inside.last()) else {
        return Ok(None);
    };
    if inside.len() < 2 {
        return Ok(None);
    }
    let dt = b[0] - a[0];
    Ok(Some([1, 2, 3, 4].map(|i| (b[i] - a[i]) / dt)))
}

/// One run's figures, as the raw results keep them.
fn one(files: &RunFiles, run: &Run) -> anyhow::Result<Map<String, Value>> {
    let name = format!("{}-{}", files.system, files.run);
    let report = parse_json(&files.report).with_context(|| format!("{name}.json is not JSON"))?;
    let s = report["steps"]
        .get(0)
        .with_context(|| format!("{name}.json: no step"))?;
    let ll = s.get("ll").filter(|ll| truthy(ll)).unwrap_or(&Value::Null);
    let start: f64 = files
        .times
        .split_whitespace()
        .next()
        .with_context(|| format!("{name}.times is empty"))?
        .parse()
        .with_context(|| format!("{name}.times"))?;
    let rates = window_rates(
        &files.samples,
        start + run.join_secs + 1.0,
        start + run.step_secs,
    )
    .with_context(|| format!("{name}.samples"))?;
    let cores = s["cpu"]["cores"].as_array().cloned().unwrap_or_default();
    let limited = s["issue_lag_p99_ms"].as_f64().unwrap_or(0.0) > run.lag_limit_ms
        || (cores.len() > 1 && cores[1].as_f64().unwrap_or(0.0) >= run.gen_busy);
    let viewers = report
        .get("per_viewer")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let requests = ll.get("requests_per_sec").filter(|r| truthy(r));
    let out = json!({
        "run": files.run, "viewers": s["viewers"],
        "origin_rps": rates.map(|r| r[0]),
        // Python's `rates and pps and rates["origin"] / pps`.
        "origin_per_part": rates.map(|r| if run.parts_per_sec == 0.0 { run.parts_per_sec } else { r[0] / run.parts_per_sec }),
        "varnish": rates.map(|r| json!({"backend": r[1], "hits": r[2], "misses": r[3]})),
        "client_rps": sum(requests.and_then(Value::as_object).into_iter().flat_map(|m| m.values())),
        "requests_per_sec": ll.get("requests_per_sec"),
        "latency_p50_ms": pick(ll, "latency", "p50_ms"), "latency_p99_ms": pick(ll, "latency", "p99_ms"),
        "part_ttfb_p50_ms": pick(ll, "part_ttfb", "p50_ms"), "part_ttfb_p99_ms": pick(ll, "part_ttfb", "p99_ms"),
        "reload_wait_p50_ms": pick(ll, "reload_wait", "p50_ms"), "stalls": get_or_zero(ll, "stalls"),
        "errors": s["errors"],
        "viewers_stalled": viewers.iter().filter(|v| v.get("stalls").is_some_and(truthy)).count(),
        "issue_lag_p99_ms": s["issue_lag_p99_ms"], "generator_cpu": s["cpu"]["own"],
        "servers_cpu": s["cpu"]["watched"], "cores_busy": cores, "client_limited": limited,
    });
    Ok(out.as_object().cloned().unwrap_or_default())
}

/// The figures the summary spreads, per system.
const SUMMED: [&str; 10] = [
    "origin_rps",
    "origin_per_part",
    "client_rps",
    "latency_p50_ms",
    "latency_p99_ms",
    "part_ttfb_p50_ms",
    "part_ttfb_p99_ms",
    "issue_lag_p99_ms",
    "generator_cpu",
    "servers_cpu",
];

/// A row's audience: "1,000 viewers, through Varnish (h2c)".
fn label(system: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = system.split('-').collect();
    let [kind, n] = parts[..] else {
        anyhow::bail!("system {system:?} is not KIND-N");
    };
    let n: i64 = n
        .parse()
        .with_context(|| format!("system {system:?} is not KIND-N"))?;
    let how = if kind == "lb" {
        "straight to the load balancer (TLS + h2)"
    } else {
        "through Varnish (h2c)"
    };
    Ok(format!("{} viewers, {how}", grouped(Some(n as f64), 0)))
}

/// The report of a run: its runs as the script left them ([`read`]); `notes`, what
/// `bench/llhls-cdn-notes.md` says.
pub fn report(files: &[RunFiles], run: &Run, notes: Option<&str>) -> anyhow::Result<Report> {
    let systems: Vec<&str> = run.systems.split_whitespace().collect();
    let mut per: Vec<(&str, Vec<Map<String, Value>>)> = Vec::new();
    for system in &systems {
        if per.iter().any(|(s, _)| s == system) {
            continue;
        }
        let xs = files
            .iter()
            .filter(|f| f.system == *system && (1..=run.runs).contains(&f.run))
            .map(|f| one(f, run))
            .collect::<anyhow::Result<Vec<_>>>()?;
        per.push((*system, xs));
    }
    let of = |system: &str| {
        per.iter()
            .find(|(s, _)| *s == system)
            .map_or(&[][..], |(_, xs)| xs.as_slice())
    };
    let spread = |xs: Vec<Value>| counted_json(&xs);
    let by_run = |system: &str, r: u64| of(system).iter().find(|x| x["run"] == json!(r));
    let added: Vec<Value> = (1..=run.runs)
        .filter_map(|r| {
            let (a, b) = (by_run("lb-100", r)?, by_run("cdn-100", r)?);
            let (a, b) = (&a["latency_p50_ms"], &b["latency_p50_ms"]);
            (!a.is_null() && !b.is_null()).then(|| minus(b, a))
        })
        .collect();
    let summary: Map<String, Value> = per
        .iter()
        .map(|(sy, xs)| {
            let figures: Map<String, Value> = SUMMED
                .iter()
                .map(|k| {
                    (
                        (*k).to_owned(),
                        spread(xs.iter().map(|x| x[*k].clone()).collect()),
                    )
                })
                .collect();
            ((*sy).to_owned(), Value::Object(figures))
        })
        .collect();
    let per_run: Map<String, Value> = per
        .iter()
        .map(|(sy, xs)| {
            let runs = xs.iter().cloned().map(Value::Object).collect();
            ((*sy).to_owned(), Value::Array(runs))
        })
        .collect();
    let out = json!({
        "benchmark": "LL-HLS viewers through Varnish in front of the load balancer: origin requests and added latency",
        "date": run.date, "runs": run.runs, "cores": run.cores, "systems": systems,
        "step_secs": run.step_secs, "join_secs": run.join_secs, "part_target": run.part_target,
        "parts_per_sec": run.parts_per_sec, "varnish": run.varnish_version, "elapsed_secs": run.elapsed,
        "generator_saturated_when": {"issue_lag_p99_ms_above": run.lag_limit_ms, "core1_busy_at_least": run.gen_busy},
        "added_latency_p50_ms": spread(added),
        "summary": summary,
        "per_run": per_run,
    });

    let varnish = run.varnish_version.split(" (").next().unwrap_or_default();
    let mut lines = vec![
        HEADING.to_owned(),
        String::new(),
        format!(
            "LL-HLS viewers of one stream's 360p rung (the publisher's 640x360 ~730 kb/s H.264 passed through, CMAF, 2 s \
             segments, parts of {} s: {:.2} parts/s) through {varnish} with \
             `deploy/varnish/sealcast.vcl` in front of `sealcast lb` (its plain-HTTP origin listener) and one `sealcast broadcast` \
             node, all three at their defaults on core 0. `sealcast-viewers --mode ll` on core 1 (one thread), like hls.js in \
             low-latency mode: blocking reloads, the preload-hinted part asked for as it is hinted, delta updates. Each audience \
             for {:.0} s, arriving open loop (Poisson) over the first {:.0} s and measured after; {} runs, order \
             rotated, {}. Origin requests: the node's own counter (every route a viewer reaches), per second and per \
             part published.",
            python_float(run.part_target),
            run.parts_per_sec,
            run.step_secs,
            run.join_secs,
            run.runs,
            run.date
        ),
        String::new(),
        "| audience | origin requests/s | per part | client requests/s | latency behind the edge p50 / p99 (ms) | part TTFB p50 / p99 (ms) | stalls, errors | generator: issue lag p99 (ms), CPU |".to_owned(),
        "|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    for sy in &systems {
        let xs = of(sy);
        if xs.is_empty() {
            continue;
        }
        let s = &out["summary"][*sy];
        let lim = xs.iter().filter(|x| truthy(&x["client_limited"])).count();
        let lim_text = if lim > 0 {
            format!("; the client was the limit in {lim} of {} runs", xs.len())
        } else {
            String::new()
        };
        let med =
            |k: &str| of_json(&s[k]).map_or_else(|| "-".to_owned(), |m| grouped(Some(m.median), 0));
        let total = |k: &str| python_number(&sum(xs.iter().map(|x| &x[k])));
        lines.push(format!(
            "| {} | {} | {} | {} | {} / {} | {} / {} | {}, {} | {}, {}{lim_text} |",
            label(sy)?,
            grouped_text(of_json(&s["origin_rps"]), 1),
            text(of_json(&s["origin_per_part"]), 2),
            grouped_text(of_json(&s["client_rps"]), 0),
            med("latency_p50_ms"),
            med("latency_p99_ms"),
            med("part_ttfb_p50_ms"),
            med("part_ttfb_p99_ms"),
            total("stalls"),
            total("errors"),
            text(of_json(&s["issue_lag_p99_ms"]), 0),
            text(of_json(&s["generator_cpu"]), 2),
        ));
    }
    lines.push(String::new());
    lines.push(format!(
        "The latency the cache adds (latency behind the edge p50 through Varnish minus straight to the load balancer, \
         100 viewers each, same run; median, min–max): {} ms (goal ≤ 300 ms).",
        grouped_text(of_json(&out["added_latency_p50_ms"]), 0)
    ));
    lines.push(String::new());
    lines.push(format!(
        "A run's audience is more than this machine could generate when its generator issued requests more than \
         {:.0} ms late at p99 or core 1 was ≥ {:.0}% busy: then the audience the cache served was smaller \
         than the one asked for, and the row says so. Goal (issue 33): origin load independent of audience size behind a \
         cache. Run it with `bench/llhls-cdn.sh [RUNS]` (default 5; settings by environment, see the script); raw numbers \
         in `bench/out/llhls-cdn.json`. This run took {} min.",
        run.lag_limit_ms,
        run.gen_busy * 100.0,
        run.elapsed.div_euclid(60)
    ));
    push_notes(&mut lines, notes);
    lines.push(String::new());
    Ok(Report {
        section: lines.join("\n"),
        heading: HEADING,
        after: Some("## LL-HLS viewers through the load balancer"),
        raw: out,
        refusal: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runs of a bundle (`{"SYSTEM-RUN": {"report", "times", "samples"}}`).
    fn files() -> Vec<RunFiles> {
        let bundle: Map<String, Value> =
            serde_json::from_str(include_str!("testdata/llhls-cdn-runs.json")).expect("JSON");
        bundle
            .into_iter()
            .map(|(name, e)| {
                let (system, run) = name.rsplit_once('-').expect("SYSTEM-RUN");
                let text = |k: &str| e[k].as_str().expect(k).to_owned();
                RunFiles {
                    system: system.to_owned(),
                    run: run.parse().expect("a run"),
                    report: text("report"),
                    times: text("times"),
                    samples: text("samples"),
                }
            })
            .collect()
    }

    /// Runs rebuilt from 651450b's llhls-cdn results (`per_run`, with times and samples
    /// synthesized; a window without samples, a run without `ll`, one without latency, a
    /// system without runs) give the section, the raw results and the progress lines the
    /// Python report (`llhls_cdn.py`, before this module) wrote from them.
    #[test]
    fn gives_what_the_python_report_wrote() {
        let run = Run {
            runs: 2,
            systems: "lb-100 cdn-100 cdn-1000 cdn-7".to_owned(),
            step_secs: 6.0,
            join_secs: 2.0,
            lag_limit_ms: 50.0,
            gen_busy: 0.95,
            parts_per_sec: 3.4783,
            part_target: 0.333,
            cores: 2,
            varnish_version:
                "varnishd (varnish-7.1.1 revision 7cee1c581bead20e88d101ab3d72afb29f14d87a)"
                    .to_owned(),
            elapsed: 125,
            date: "2026-11-30".to_owned(),
        };
        let files = files();
        let report = report(&files, &run, Some("Notes.\n\n")).expect("a report");
        assert_eq!(report.section, include_str!("testdata/llhls-cdn-python.md"));
        let python = parse_json(include_str!("testdata/llhls-cdn-python.json")).expect("JSON");
        assert_eq!(report.raw, python);
        let steps: String = files
            .iter()
            .map(|f| step(&f.report).expect("a step") + "\n")
            .collect();
        assert_eq!(steps, include_str!("testdata/llhls-cdn-steps.txt"));
        assert!(step("{\"steps\": []}").is_err());
    }

    #[test]
    fn parts_per_second_counts_the_listed_parts() {
        let playlist =
            "#EXTM3U\n#EXT-X-PART:DURATION=0.333,URI=\"a\"\n#EXT-X-PART:DURATION=0.334,URI=\"b\"\n\
                        #EXT-X-PART:DURATION=0.3,URI=\"c\"\n#EXTINF:2.0,\n";
        assert_eq!(parts_per_second(playlist).expect("a rate"), "3.1024");
        assert_eq!(parts_per_second("#EXTM3U\n").expect("none"), "0");
        assert!(parts_per_second("#EXT-X-PART:DURATION=1.2.3,").is_err());
        assert!(parts_per_second("#EXT-X-PART:DURATION=0,").is_err());
        assert!(label("cdn").is_err() && label("cdn-x").is_err());
    }
}
