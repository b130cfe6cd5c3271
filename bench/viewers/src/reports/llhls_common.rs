//! The report of `bench/llhls-node.sh` and `bench/llhls-lb.sh` (their common part,
//! `bench/llhls-common.sh`; issue 33): how many LL-HLS viewers a node, or the load
//! balancer in front of one, holds against its peer (nginx, HAProxy), from one ramp of
//! `sealcast-viewers` per system and run ([`super::ramps`]). It was a Python report
//! (`bench/lib/reports/llhls_common.py`, in git history before this module), whose
//! section and raw results it writes.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use serde_json::{json, Map, Value};

use super::python::{counted_json, median_json, python_float, truthy};
use super::ramps::{self, Judged, RampFile};
use super::{push_notes, Report};
use crate::spread::{grouped, of_json, text};

/// The node row's heading.
pub const NODE_HEADING: &str = "## LL-HLS viewers one node holds (bench/llhls-node.sh)";
/// The load balancer row's heading.
pub const LB_HEADING: &str = "## LL-HLS viewers through the load balancer (bench/llhls-lb.sh)";
/// The section bench/capacity.sh writes: the rows go after it.
const CAPACITY_HEADING: &str = "## Viewers per edge worker";
/// The node row's heading's start: the load balancer's row goes after it.
pub const NODE_SECTION: &str = "## LL-HLS viewers one node holds";

/// Which row of issue 33's table the run measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Row {
    /// `bench/llhls-node.sh`: a node against nginx.
    Node,
    /// `bench/llhls-lb.sh`: the load balancer against HAProxy.
    Lb,
}

impl Row {
    fn name(self) -> &'static str {
        match self {
            Row::Node => "node",
            Row::Lb => "lb",
        }
    }
}

/// What the script ran with (what it gave the Python report by its environment).
#[derive(Debug, Clone, clap::Args)]
pub struct Run {
    /// The row.
    #[arg(long, value_enum)]
    pub row: Row,
    /// The runs asked for.
    #[arg(long)]
    pub runs: u64,
    /// The machine's cores (`nproc`).
    #[arg(long)]
    pub cores: u64,
    /// The systems, in the table's order, separated by spaces (the script's SYSTEMS).
    #[arg(long)]
    pub systems: String,
    /// The ramp's settings as the script had them (the raw results keep the text): STEP_SECS.
    #[arg(long)]
    pub step_secs: String,
    /// JOIN_SECS.
    #[arg(long)]
    pub join_secs: String,
    /// TTFB_MS.
    #[arg(long)]
    pub ttfb_ms: String,
    /// START.
    #[arg(long)]
    pub start: String,
    /// STEP.
    #[arg(long)]
    pub step: String,
    /// GROWTH.
    #[arg(long)]
    pub growth: String,
    /// MAX_VIEWERS.
    #[arg(long)]
    pub max_viewers: String,
    /// ARRIVAL.
    #[arg(long)]
    pub arrival: String,
    /// SOURCES (empty or 0: every viewer from 127.0.0.1).
    #[arg(long, default_value = "")]
    pub sources: String,
    /// The parts' target duration (PART_TARGET).
    #[arg(long)]
    pub part_target: f64,
    /// The bytes of a part, as measured.
    #[arg(long)]
    pub part_bytes: i64,
    /// The seconds the ramps took.
    #[arg(long)]
    pub elapsed: i64,
    /// Issue lag p99 (ms) above which the load generator was short of CPU.
    #[arg(long)]
    pub lag_limit_ms: f64,
    /// Core 1's busy share from which the load generator was short of CPU.
    #[arg(long)]
    pub gen_busy: f64,
    /// The TLS our load balancer negotiated (lb row).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub server_tls: String,
    /// The TLS HAProxy negotiated (lb row).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub peer_tls: String,
    /// What `nginx -v` printed (its first line is kept).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub nginx_version: String,
    /// What `haproxy -v` printed (its first line is kept).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub haproxy_version: String,
    /// The day of the run, as the section prints it (`date +%F`).
    #[arg(long)]
    pub date: String,
}

/// Where the raw results go by default.
pub fn results_file(row: Row) -> &'static str {
    match row {
        Row::Node => "bench/out/llhls-node.json",
        Row::Lb => "bench/out/llhls-lb.json",
    }
}

/// A table's name for a system; none for a system the scripts do not run.
fn name(system: &str, cores: u64) -> Option<String> {
    Some(match system {
        "node" => format!("sealcast node, default workers ({cores})"),
        "node-1w" => "sealcast node, 1 worker".to_owned(),
        "nginx" => "nginx, 1 worker (polled)".to_owned(),
        "lb" => format!("sealcast lb + node, default workers ({cores} each)"),
        "lb-1w" => "sealcast lb 1 worker + node".to_owned(),
        "haproxy" => "HAProxy nbthread 1 + node".to_owned(),
        _ => return None,
    })
}

/// Per CPU-second, ours over the peer's, at the largest step both ramps of a run passed:
/// that audience and the ratio.
fn equal_audience(ours: &Judged, theirs: &Judged) -> Option<(Value, f64)> {
    // The passed steps' server CPU by audience (a later step of the same audience wins).
    let passed = |x: &Judged| -> BTreeMap<i64, (Value, f64)> {
        let steps = x.ramp["steps"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        steps
            .iter()
            .filter(|s| truthy(&s["passed"]))
            .filter_map(|s| {
                let cpu = ramps::or_zero(&s["cpu"]["watched"]).as_f64().unwrap_or(0.0);
                (cpu > 0.0).then(|| {
                    let v = &s["viewers"];
                    (
                        v.as_i64().unwrap_or(0),
                        (v.clone(), s["cpu"]["watched"].as_f64().unwrap_or(0.0)),
                    )
                })
            })
            .collect()
    };
    let (a, b) = (passed(ours), passed(theirs));
    let (v, (viewers, a_cpu)) = a.iter().rev().find(|(v, _)| b.contains_key(*v))?;
    Some((viewers.clone(), b[v].1 / a_cpu))
}

/// The report of a run: the ramps as the script left them ([`ramps::read`]), `doc_has_node`
/// whether the doc already has the node row's section (the load balancer's goes after it),
/// `notes` what `bench/llhls-ROW-notes.md` says.
pub fn report(
    files: &[RampFile],
    run: &Run,
    doc_has_node: bool,
    notes: Option<&str>,
) -> anyhow::Result<Report> {
    let row = run.row.name();
    let peer = match run.row {
        Row::Node => "nginx",
        Row::Lb => "haproxy",
    };
    let systems: Vec<&str> = run.systems.split_whitespace().collect();
    let names = systems
        .iter()
        .map(|s| {
            Ok((
                *s,
                name(s, run.cores).with_context(|| format!("no system {s}"))?,
            ))
        })
        .collect::<anyhow::Result<BTreeMap<&str, String>>>()?;
    let mut per: Vec<(String, Vec<Judged>)> = Vec::new();
    for (system, rs) in ramps::by_system(files)? {
        let mut xs = Vec::new();
        for ramp in rs {
            let mut entry = ramps::judge_ll(&ramp.report, run.lag_limit_ms, run.gen_busy)
                .with_context(|| format!("ramp {system}-{}", ramp.run))?;
            entry.insert("run".into(), json!(ramp.run));
            if let Some(counted) = ramp
                .counted
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
            {
                let n: f64 = counted
                    .parse()
                    .with_context(|| format!("{system}-{}.counted: {counted:?}", ramp.run))?;
                let viewers = ramp
                    .report
                    .get("per_viewer")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                entry.insert(
                    "node_counted".into(),
                    json!({"counted": n.trunc() as i64, "viewers": viewers}),
                );
            }
            let mut kept = ramp.report;
            if let Some(o) = kept.as_object_mut() {
                // Each viewer's own summary stays out of the results (megabytes);
                // viewers_seen sums it up.
                o.remove("per_viewer");
            }
            xs.push(Judged { entry, ramp: kept });
        }
        per.push((system, xs));
    }
    let of = |system: &str| ramps::of(&per, system);
    let spread = |xs: Vec<Value>| counted_json(&xs);

    let mut systems_out = Map::new();
    for (system, xs) in &per {
        systems_out.insert(
            system.clone(),
            json!({"capacity": spread(xs.iter().map(|x| x.capacity().clone()).collect()),
                   "exact_runs": xs.iter().filter(|x| x.exact()).count(),
                   "runs": xs.iter().map(|x| Value::Object(x.entry.clone())).collect::<Vec<_>>()}),
        );
    }
    let p = ramps::by_run(of(peer));
    let mut pairs = Map::new();
    for ours in systems.iter().filter(|s| **s != peer) {
        let o = ramps::by_run(of(ours));
        let common: Vec<i64> = o.keys().filter(|r| p.contains_key(r)).copied().collect();
        let both = ramps::both_exact(&o, &p);
        // Per CPU-second at each ramp's last passed step, whether or not its count is
        // exact: what a server spends per viewer does not depend on why the ramp stopped.
        let vpc = |x: &Judged| {
            x.at_capacity("viewers_per_cpu")
                .filter(|v| truthy(v))
                .cloned()
        };
        let per_cpu: Vec<Value> = common
            .iter()
            .filter_map(|r| Some(ramps::divide(&vpc(o[r])?, &vpc(p[r])?)))
            .collect();
        // The same per run at the largest audience both ramps passed: like for like, where
        // the ratio above also compares a ramp that went further.
        let at_equal: Vec<(Value, f64)> = common
            .iter()
            .filter_map(|r| equal_audience(o[r], p[r]))
            .collect();
        pairs.insert(
            format!("{ours}/{peer}"),
            json!({"ratio_viewers": spread(both.iter().map(|r| ramps::divide(o[r].capacity(), p[r].capacity())).collect()),
                   "ratio_viewers_per_cpu": spread(per_cpu), "runs_with_both_exact": both.len(),
                   "ratio_per_cpu_at_equal_audience": spread(at_equal.iter().map(|x| json!(x.1)).collect()),
                   "equal_audiences": at_equal.iter().map(|x| x.0.clone()).collect::<Vec<_>>()}),
        );
    }
    let pc: Vec<Option<Value>> = p
        .values()
        .map(|x| x.at_capacity("viewers_per_cpu").cloned())
        .collect();
    let aa_per_cpu: Vec<Value> = pc
        .windows(2)
        .filter_map(|w| match (&w[0], &w[1]) {
            (Some(a), Some(b)) if truthy(a) && truthy(b) => Some(ramps::divide(a, b)),
            _ => None,
        })
        .collect();
    let nginx = ramps::first_line(&run.nginx_version);
    let haproxy = ramps::first_line(&run.haproxy_version);
    let raw = ramps::raw(&per);
    let out = json!({
        "benchmark": format!("LL-HLS viewers ({row}): held with part TTFB p99 < threshold, no stall, no failed request"),
        "date": run.date, "runs": run.runs, "cores": run.cores, "systems_order": systems,
        "ramp": {"step_secs": run.step_secs, "join_secs": run.join_secs, "ttfb_ms": run.ttfb_ms,
                 "start": run.start, "step": run.step, "growth": run.growth,
                 "max_viewers": run.max_viewers, "arrival": run.arrival, "sources": run.sources},
        "part_target": run.part_target, "part_bytes": run.part_bytes, "elapsed_secs": run.elapsed,
        "generator_saturated_when": {"issue_lag_p99_ms_above": run.lag_limit_ms, "core1_busy_at_least": run.gen_busy},
        "tls": {"sealcast": run.server_tls, "haproxy": run.peer_tls},
        "nginx": nginx, "haproxy": haproxy,
        "systems": systems_out, "pairs": pairs,
        "noise_floor_peer_aa": spread(ramps::against_itself(&p)),
        "noise_floor_peer_aa_per_cpu": spread(aa_per_cpu),
        "raw": raw,
    });

    let section = section(&out, run, &per, &names)?;
    let mut lines = vec![section];
    push_notes(&mut lines, notes);
    lines.push(String::new());
    let (heading, after) = match run.row {
        Row::Node => (NODE_HEADING, CAPACITY_HEADING),
        // After bench/capacity.sh's section, the node's row before the load balancer's.
        Row::Lb if doc_has_node => (LB_HEADING, NODE_SECTION),
        Row::Lb => (LB_HEADING, CAPACITY_HEADING),
    };
    Ok(Report {
        section: lines.join("\n"),
        heading,
        after: Some(after),
        raw: out,
        refusal: None,
    })
}

/// A whole number the script gave as text (Python's `int(text)`).
fn int(what: &str, text: &str) -> anyhow::Result<i64> {
    text.trim()
        .parse()
        .with_context(|| format!("{what} is not a whole number: {text:?}"))
}

/// The section up to its notes: heading, method, table and what the ramps say.
fn section(
    out: &Value,
    run: &Run,
    per: &[(String, Vec<Judged>)],
    names: &BTreeMap<&str, String>,
) -> anyhow::Result<String> {
    let row = run.row.name();
    let peer = if run.row == Row::Node {
        "nginx"
    } else {
        "haproxy"
    };
    let of = |system: &str| ramps::of(per, system);
    let systems: Vec<&str> = run.systems.split_whitespace().collect();
    let med = |system: &str, key: &str, comma: bool| {
        let known: Vec<Value> = of(system)
            .iter()
            .filter_map(|x| x.at_capacity(key).cloned())
            .collect();
        match median_json(&known).as_f64() {
            None => "-".to_owned(),
            Some(m) if comma => grouped(Some(m), 0),
            Some(m) => format!("{m:.0}"),
        }
    };
    let rps = |system: &str| {
        let xs: Vec<&Map<String, Value>> = of(system)
            .iter()
            .filter_map(|x| x.at_capacity("requests_per_viewer_sec")?.as_object())
            .collect();
        if xs.is_empty() {
            return "-".to_owned();
        }
        let kinds: BTreeSet<&String> = xs.iter().flat_map(|x| x.keys()).collect();
        kinds
            .iter()
            .map(|k| {
                let values: Vec<Value> = xs
                    .iter()
                    .map(|x| x.get(*k).cloned().unwrap_or(json!(0)))
                    .collect();
                format!("{k} {:.2}", median_json(&values).as_f64().unwrap_or(0.0))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rng = |v: &Value| text(of_json(v), 2);
    let pair = |s: &str| out["pairs"].get(format!("{s}/{peer}"));

    let sources = if run.sources.is_empty() {
        0
    } else {
        int("SOURCES", &run.sources)?
    };
    let cores = run.cores;
    let setup = match run.row {
        Row::Node => format!(
            "Servers on core 0, one at a time: `sealcast broadcast` at its default worker threads ({cores}, one per core) and \
             with one (`TOKIO_WORKER_THREADS=1`), both fed by the same ingest, against {} (1 worker, `sendfile on`, \
             `access_log off`) serving the same files on tmpfs: a mirror on core 1 follows the node with blocking reloads and \
             writes each new part, segment and init segment, then the node's playlist, by rename (at most a few ms behind \
             the node). nginx cannot hold a request, so its viewers poll the playlist every part target (no hints): the \
             LL-HLS nginx can offer. Plain HTTP/1.1 keep-alive for all (a viewer keeps up to 3 connections).",
            ramps::nginx_name(out["nginx"].as_str().unwrap_or_default())
        ),
        Row::Lb => {
            let dash = |s: &str| if s.is_empty() { "-".to_owned() } else { s.to_owned() };
            format!(
                "`sealcast lb` at its default worker threads ({cores}) and with one, against {} (`nbthread 1`), over TLS 1.3 \
                 with HTTP/2 by ALPN (ours {}, HAProxy {}), each in \
                 front of the same `sealcast broadcast` node (default workers), which shares core 0 with the proxy under test; \
                 the sticky cookie kept per viewer; one HTTP/2 connection per viewer.",
                ramps::haproxy_name(out["haproxy"].as_str().unwrap_or_default()),
                dash(&run.server_tls),
                dash(&run.peer_tls)
            )
        }
    };
    let ttfb: f64 = run
        .ttfb_ms
        .trim()
        .parse()
        .with_context(|| format!("TTFB_MS is not a number: {:?}", run.ttfb_ms))?;
    let from = if sources > 0 {
        format!(
            "each from its own loopback address (of {}). ",
            grouped(Some(sources as f64), 0)
        )
    } else {
        "all from 127.0.0.1. ".to_owned()
    };
    let thousands = |what: &str, t: &str| -> anyhow::Result<String> {
        Ok(grouped(Some(int(what, t)? as f64), 0))
    };
    let mut lines = vec![
        (if run.row == Row::Node { NODE_HEADING } else { LB_HEADING }).to_owned(),
        String::new(),
        format!(
            "LL-HLS viewers of one stream's 360p rung (the publisher's 640x360 ~730 kb/s H.264 passed through, CMAF, 2 s segments, \
             parts of {} s, {} KiB each) held while no viewer stalls, no request fails and \
             the parts' time to first byte stays at p99 < {ttfb:.0} ms (a hinted part's from when it existed, \
             i.e. the first answer any viewer had for it). `sealcast-viewers --mode ll` on core 1 (one thread) behaves like hls.js \
             in low-latency mode: blocking reloads with `_HLS_msn`/`_HLS_part` and delta updates, the preload-hinted part asked \
             for as it is hinted, every listed part from PART-HOLD-BACK behind the edge, a buffer model for stalls; viewers \
             arrive open loop ({}) over the first {} s of each {} s step, {} \
             first, then +{} or ×{}, up to {}, {from}{setup} {} run{}, the order rotated each run, {}.",
            python_float(run.part_target),
            run.part_bytes.div_euclid(1024),
            run.arrival,
            run.join_secs,
            run.step_secs,
            thousands("START", &run.start)?,
            thousands("STEP", &run.step)?,
            run.growth,
            thousands("MAX_VIEWERS", &run.max_viewers)?,
            run.runs,
            if run.runs > 1 { "s" } else { "" },
            run.date
        ),
        String::new(),
        "| system | viewers, median (min–max) | ratio to the peer (median, min–max) | viewers per server CPU-second | \
         at capacity: part TTFB p99 / latency behind the edge p50, p99 / reload wait p50 (ms) | requests per viewer-second |"
            .to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
    ];
    for s in &systems {
        let ratio = match pair(s) {
            None => "—".to_owned(),
            Some(p) => {
                let n = p["runs_with_both_exact"].as_u64().unwrap_or(0);
                let over = if n < run.runs {
                    format!(" over {n} of {} runs", run.runs)
                } else {
                    String::new()
                };
                rng(&p["ratio_viewers"]) + &over
            }
        };
        let timing = [
            "part_ttfb_p99_ms",
            "latency_p50_ms",
            "latency_p99_ms",
            "reload_wait_p50_ms",
        ]
        .map(|k| med(s, k, false))
        .join(" / ");
        lines.push(format!(
            "| {} | {} | {ratio} | {} | {timing} | {} |",
            names[s],
            ramps::count_text(of(s), "a lower bound"),
            med(s, "viewers_per_cpu", true),
            rps(s)
        ));
    }
    let with_pair = || systems.iter().filter_map(|s| Some((&names[s], pair(s)?)));
    let per_cpu = with_pair()
        .map(|(n, p)| format!("{n} {}", rng(&p["ratio_viewers_per_cpu"])))
        .collect::<Vec<_>>()
        .join("; ");
    let equal_text = with_pair()
        .map(|(n, p)| {
            let at = p["equal_audiences"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| grouped(v.as_f64(), 0))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "{n} {} at {at} viewers",
                rng(&p["ratio_per_cpu_at_equal_audience"])
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let or_dash = |t: String| if t.is_empty() { "-".to_owned() } else { t };
    lines.push(String::new());
    lines.push(format!(
        "Viewers per server CPU-second relative to the peer, per run at each ramp's last passed step (median, min–max): \
         {}; at the largest audience both ramps of a run passed (like for like: \
         {}); the peer against itself in consecutive runs (A/A): {} \
         per CPU-second, {} in exact counts.",
        or_dash(per_cpu),
        or_dash(equal_text),
        rng(&out["noise_floor_peer_aa_per_cpu"]),
        rng(&out["noise_floor_peer_aa"])
    ));
    let counts: Vec<String> = systems
        .iter()
        .flat_map(|s| {
            of(s).iter().filter_map(move |x| {
                let c = x.entry.get("node_counted")?;
                Some(format!(
                    "{} {} of {}",
                    names[s],
                    grouped(c["counted"].as_f64(), 0),
                    grouped(c["viewers"].as_f64(), 0)
                ))
            })
        })
        .collect();
    if !counts.is_empty() {
        lines.push(String::new());
        lines.push(format!(
            "Viewers the node counted (`sealcast_viewers`, by client address over its last 10 s) at the end of each \
             ramp through ours, against the viewers the ramp started (those of the step judged last, and those of the next \
             step that had joined by then): {}.",
            counts.join("; ")
        ));
    }
    let stopped: Vec<String> = systems
        .iter()
        .filter(|s| !of(s).is_empty())
        .map(|s| {
            let why: BTreeSet<&str> = of(s).iter().map(Judged::limited_by).collect();
            format!(
                "{}: {}",
                names[s],
                why.into_iter().collect::<Vec<_>>().join(", ")
            )
        })
        .collect();
    lines.push(String::new());
    lines.push(format!("Why the ramps stopped: {}.", stopped.join("; ")));
    let goal = match run.row {
        Row::Node => "a node ≥ nginx",
        Row::Lb => "through the load balancer ≥ 1.2 × HAProxy's viewers per core",
    };
    lines.push(String::new());
    lines.push(format!(
        "A count is a lower bound (≥) when the step that failed shows the load generator short of CPU (requests issued \
         more than {:.0} ms late at p99, or core 1 ≥ {:.0}% busy), or when the ramp reached its last step. \
         Goal (issue 33): {goal}. Run it with `bench/llhls-{row}.sh [RUNS]` (default 5; settings by environment, see \
         bench/llhls-common.sh); raw numbers in `bench/out/llhls-{row}.json`. This run took {} min.",
        run.lag_limit_ms,
        run.gen_busy * 100.0,
        run.elapsed.div_euclid(60)
    ));
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::ramps::from_bundle as files;

    fn lb_run() -> Run {
        let text = |s: &str| s.to_owned();
        Run {
            row: Row::Lb,
            runs: 3,
            cores: 2,
            systems: text("lb lb-1w haproxy"),
            step_secs: text("8"),
            join_secs: text("4"),
            ttfb_ms: text("250"),
            start: text("100"),
            step: text("100"),
            growth: text("1.25"),
            max_viewers: text("3000"),
            arrival: text("poisson"),
            sources: text("0"),
            part_target: 0.333,
            part_bytes: 12587,
            elapsed: 631,
            lag_limit_ms: 50.0,
            gen_busy: 0.95,
            server_tls: String::new(),
            peer_tls: String::new(),
            nginx_version: text("nginx version: nginx/1.22.1\n"),
            haproxy_version: text("haproxy: not found\n"),
            date: text("2026-11-30"),
        }
    }

    /// Ramps synthesized from 651450b's llhls-lb results (steps cut, figures rounded,
    /// verdicts altered: counts exact by server CPU and by latency, a ramp ceiling, a ramp
    /// that passed no step, `.counted` files) give the section and the raw results the
    /// Python report (`llhls_common.py`, before this module) wrote from them.
    #[test]
    fn gives_what_the_python_report_wrote() {
        let files = files(include_str!("testdata/llhls-lb-ramps.json"));
        let report = report(&files, &lb_run(), false, Some("Notes.\n\n")).expect("a report");
        assert_eq!(report.section, include_str!("testdata/llhls-lb-python.md"));
        assert_eq!(report.heading, LB_HEADING);
        assert_eq!(report.after, Some(CAPACITY_HEADING));
        let (raw, ramps, python) =
            ramps::raw_and_ramps(&report, include_str!("testdata/llhls-lb-python.json"));
        assert_eq!(raw, python);
        // The ramps as they were, without each viewer's summary.
        let first = &ramps["haproxy"][0];
        assert!(first.get("per_viewer").is_none());
        assert_eq!(
            first["steps"],
            crate::reports::python::parse_json(&files[0].text).expect("ramp")["steps"]
        );

        let after_node = report_after(&files, true);
        assert_eq!(after_node, Some(NODE_SECTION));
    }

    fn report_after(files: &[RampFile], doc_has_node: bool) -> Option<&'static str> {
        report(files, &lb_run(), doc_has_node, None)
            .expect("a report")
            .after
    }

    #[test]
    fn an_unknown_system_or_a_bad_ramp_is_an_error() {
        let files = files(include_str!("testdata/llhls-lb-ramps.json"));
        let run = Run {
            systems: "lb edge".to_owned(),
            ..lb_run()
        };
        assert!(report(&files, &run, false, None).is_err());
        let bad = RampFile {
            name: "lb-1".to_owned(),
            text: "{\"steps\": 3}".to_owned(),
            counted: None,
        };
        assert!(report(&[bad], &lb_run(), false, None).is_err());
        let none = report(&[], &lb_run(), false, None).expect("a report");
        assert!(none.section.contains(
            "| sealcast lb 1 worker + node | - | - over 0 of 3 runs | - | - / - / - / - | - |"
        ));
    }
}
