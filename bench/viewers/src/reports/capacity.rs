//! The report of `bench/capacity.sh`: how many live viewers one edge worker holds, a node
//! against nginx over plain HTTP and the load balancer against HAProxy over TLS, from one
//! ramp of `sealcast-viewers` per system and run ([`super::ramps`]). It was a Python
//! report (`bench/lib/reports/capacity.py`, in git history before this module), whose
//! section and raw results it writes.

use anyhow::Context;
use serde_json::{json, Map, Value};

use super::python::{counted_json, python_float, truthy};
use super::ramps::{self, Judged, RampFile};
use super::Report;
use crate::spread::{grouped, median, of_json, text};

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## Viewers per edge worker (bench/capacity.sh)";
/// Where the raw results go by default.
pub const RESULTS: &str = "bench/out/capacity.json";

/// What the script ran with (what it gave the Python report by its environment).
#[derive(Debug, Clone, clap::Args)]
pub struct Run {
    /// The runs asked for.
    #[arg(long)]
    pub runs: u64,
    /// The parts run, separated by spaces: 1 (node vs nginx), 2 (lb vs HAProxy).
    #[arg(long)]
    pub parts: String,
    /// Seconds per step.
    #[arg(long)]
    pub step_secs: f64,
    /// Seconds over which a step's new viewers join.
    #[arg(long)]
    pub join_secs: f64,
    /// The segments' TTFB p99 a step must stay under (ms).
    #[arg(long)]
    pub ttfb_ms: f64,
    /// Plain HTTP ramps: the first step's viewers.
    #[arg(long)]
    pub start: i64,
    /// Plain HTTP ramps: viewers added per step (or GROWTH, whichever adds more).
    #[arg(long)]
    pub step: i64,
    /// Plain HTTP ramps: growth per step.
    #[arg(long)]
    pub growth: f64,
    /// Plain HTTP ramps: the last step's viewers.
    #[arg(long)]
    pub max_viewers: i64,
    /// TLS ramps: the first step's viewers.
    #[arg(long)]
    pub tls_start: i64,
    /// TLS ramps: viewers added per step.
    #[arg(long)]
    pub tls_step: i64,
    /// TLS ramps: growth per step.
    #[arg(long)]
    pub tls_growth: f64,
    /// TLS ramps: the last step's viewers.
    #[arg(long)]
    pub tls_max_viewers: i64,
    /// Issue lag p99 (ms) above which the load generator was short of CPU.
    #[arg(long)]
    pub lag_limit_ms: f64,
    /// Core 1's busy share from which the load generator was short of CPU.
    #[arg(long)]
    pub gen_busy: f64,
    /// The bytes of a segment, as measured.
    #[arg(long)]
    pub segment_bytes: i64,
    /// The seconds the ramps took.
    #[arg(long)]
    pub elapsed: i64,
    /// The TLS our load balancer negotiated.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub ours_tls: String,
    /// The TLS HAProxy negotiated.
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub ha_tls: String,
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

/// The table's name for a system; none for one the script does not run.
fn name(system: &str) -> Option<&'static str> {
    Some(match system {
        "node" => "sealcast node",
        "nginx" => "nginx",
        "lb" => "sealcast lb (+ node)",
        "haproxy" => "HAProxy (+ node)",
        _ => return None,
    })
}

/// A ramp's count, and whether it is exact or only a lower bound (and why).
fn judge(report: &Value, run: &Run) -> anyhow::Result<Map<String, Value>> {
    let steps = report["steps"].as_array().context("a ramp without steps")?;
    let planned = report["planned"].as_array().and_then(|p| p.last()).cloned();
    let mut out = Map::new();
    out.insert("capacity".into(), report["capacity"].clone());
    out.insert("planned_max".into(), planned.unwrap_or(json!(0)));
    out.insert("steps_run".into(), json!(steps.len()));
    let segment_ttfb = |s: &Value| {
        s["kinds"]
            .get("segment")
            .and_then(|k| k.get("ttfb_p99_ms"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    if let Some(s) = steps.iter().rev().find(|s| truthy(&s["passed"])) {
        out.insert(
            "at_capacity".into(),
            json!({"server_cpu": s["cpu"]["watched"], "generator_cpu": s["cpu"]["own"],
                   "cores_busy": s["cpu"]["cores"], "issue_lag_p99_ms": s["issue_lag_p99_ms"],
                   "segment_ttfb_p99_ms": segment_ttfb(s)}),
        );
    }
    if !truthy(&report["ended_on_failure"]) {
        out.insert("exact".into(), json!(false));
        out.insert("limited_by".into(), json!("ramp ceiling (MAX_VIEWERS)"));
        return Ok(out);
    }
    let f = steps.last().context("a ramp that failed without steps")?;
    let cores = f["cpu"]["cores"].as_array().cloned().unwrap_or_default();
    let gen_core = cores.get(1).and_then(Value::as_f64);
    let server_core = cores.first().and_then(Value::as_f64).unwrap_or(0.0);
    let server_cpu = f["cpu"]["watched"].as_f64().unwrap_or(0.0);
    // What else ran on the servers' core (another process of the machine, or the node
    // while nginx is measured... which is on core 1 then): a shared machine shows here.
    let others = server_core - server_cpu;
    let others = if others > 0.0 { others } else { 0.0 };
    out.insert(
        "failed_step".into(),
        json!({"viewers": f["viewers"], "verdict": f["verdict"], "errors": f["errors"],
               "segment_ttfb_p99_ms": segment_ttfb(f),
               "issue_lag_p99_ms": f["issue_lag_p99_ms"], "server_cpu": f["cpu"]["watched"],
               "generator_cpu": f["cpu"]["own"], "cores_busy": cores, "core0_others": others}),
    );
    let generator_short = f["issue_lag_p99_ms"].as_f64().unwrap_or(0.0) > run.lag_limit_ms
        || gen_core.is_some_and(|c| c >= run.gen_busy);
    let (exact, why) = if generator_short {
        (false, "load generator".to_owned())
    } else if others > 0.15 {
        (
            true,
            format!(
                "server, sharing core 0 ({:.0}% of it used by other processes)",
                others * 100.0
            ),
        )
    } else if server_core >= 0.9 || server_cpu >= 0.9 {
        (true, "server (CPU)".to_owned())
    } else {
        (
            true,
            "server (latency; its core was not saturated)".to_owned(),
        )
    };
    out.insert("exact".into(), json!(exact));
    out.insert("limited_by".into(), json!(why));
    Ok(out)
}

/// The report of a run: the ramps as the script left them ([`ramps::read`]).
pub fn report(files: &[RampFile], run: &Run) -> anyhow::Result<Report> {
    let mut per: Vec<(String, Vec<Judged>)> = Vec::new();
    for (system, rs) in ramps::by_system(files)? {
        name(&system).with_context(|| format!("no system {system}"))?;
        let mut xs = Vec::new();
        for ramp in rs {
            let mut entry =
                judge(&ramp.report, run).with_context(|| format!("ramp {system}-{}", ramp.run))?;
            entry.insert("run".into(), json!(ramp.run));
            xs.push(Judged {
                entry,
                ramp: ramp.report,
            });
        }
        per.push((system, xs));
    }
    let of = |system: &str| ramps::of(&per, system);
    let stat = |xs: Vec<Value>| counted_json(&xs);
    let parts: Vec<&str> = run.parts.split_whitespace().collect();
    let mut pairs = Vec::new();
    if parts.contains(&"1") {
        pairs.push(("node", "nginx", "plain HTTP/1.1"));
    }
    if parts.contains(&"2") {
        pairs.push(("lb", "haproxy", "TLS + h2"));
    }
    let mut systems = Map::new();
    for (system, xs) in &per {
        systems.insert(
            system.clone(),
            json!({"capacity": stat(xs.iter().map(|x| x.capacity().clone()).collect()),
                   "exact_runs": xs.iter().filter(|x| x.exact()).count(),
                   "limited_by": xs.iter().map(Judged::limited_by).collect::<Vec<_>>(),
                   "runs": xs.iter().map(|x| Value::Object(x.entry.clone())).collect::<Vec<_>>()}),
        );
    }
    let mut pairs_out = Map::new();
    for (ours, peer, proto) in &pairs {
        let (o, p) = (ramps::by_run(of(ours)), ramps::by_run(of(peer)));
        let both = ramps::both_exact(&o, &p);
        pairs_out.insert(
            format!("{ours}/{peer}"),
            json!({"protocol": proto,
                   "ratio_ours_over_peer": stat(both.iter().map(|r| ramps::divide(o[r].capacity(), p[r].capacity())).collect()),
                   "runs_with_both_exact": both.len(),
                   "noise_floor_peer_aa": stat(ramps::against_itself(&p))}),
        );
    }
    let raw = ramps::raw(&per);
    let out = json!({
        "benchmark": "viewers per edge worker: live 360p viewers held with segment TTFB p99 < threshold and no failed request",
        "date": run.date, "runs": run.runs,
        "ramp": {"step_secs": run.step_secs, "join_secs": run.join_secs, "ttfb_ms": run.ttfb_ms,
                 "plain": {"start": run.start, "step": run.step, "growth": run.growth, "max": run.max_viewers},
                 "tls": {"start": run.tls_start, "step": run.tls_step, "growth": run.tls_growth, "max": run.tls_max_viewers}},
        "generator_saturated_when": {"issue_lag_p99_ms_above": run.lag_limit_ms, "core1_busy_at_least": run.gen_busy},
        "segment_bytes": run.segment_bytes, "elapsed_secs": run.elapsed,
        "tls": {"sealcast": run.ours_tls, "haproxy": run.ha_tls},
        "nginx": ramps::first_line(&run.nginx_version), "haproxy": ramps::first_line(&run.haproxy_version),
        "systems": systems, "pairs": pairs_out,
        "raw": raw,
    });

    let rng = |v: &Value| text(of_json(v), 2);
    let int = |x: i64| grouped(Some(x as f64), 0);
    let dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    let mut lines = vec![
        HEADING.to_owned(),
        String::new(),
        format!(
            "Live viewers of one stream's 360p rung (the publisher's 640x360 ~730 kb/s H.264 passed through, CMAF, 2 s segments \
             of {} KiB, plain HLS) that one worker holds while the segments' time to first byte \
             (response headers, from the time each request was due) stays at p99 < {:.0} ms with no failed request. \
             `sealcast-viewers` on core 1 (one thread) ramps hls.js-like viewers (master, media playlist every target duration open loop, \
             init segment once, every new segment at once from the live edge; each its own client and keep-alive connection): \
             {} first, then +{} or ×{} (whichever adds more) every {:.0} s, \
             up to {} (TLS: {}, +{} or ×{}, up to {}); a step's new viewers join \
             over its first {:.0} s and it is judged on the requests due in it. The count is the last step that passed. \
             Servers on core 0: a `sealcast broadcast` node (1 tokio worker) vs {} (1 worker, `sendfile on`, `access_log off`) serving a mirror \
             of the node's live files on tmpfs (playlist polled every 100 ms, segments first, written by rename), over keep-alive HTTP/1.1; \
             `sealcast lb` (1 tokio worker) vs {} (`nbthread 1`) over TLS + h2 in front of the same node, which shares their core \
             (TLS: ours {}, HAProxy {}). \
             Ingest, publisher, broker and mirror on core 1 with the load generator. {} interleaved runs, {}.",
            run.segment_bytes.div_euclid(1024),
            run.ttfb_ms,
            int(run.start),
            int(run.step),
            python_float(run.growth),
            run.step_secs,
            int(run.max_viewers),
            int(run.tls_start),
            int(run.tls_step),
            python_float(run.tls_growth),
            int(run.tls_max_viewers),
            run.join_secs,
            ramps::nginx_name(out["nginx"].as_str().unwrap_or_default()),
            ramps::haproxy_name(out["haproxy"].as_str().unwrap_or_default()),
            dash(&run.ours_tls),
            dash(&run.ha_tls),
            run.runs,
            run.date
        ),
        String::new(),
        "| pair | sealcast viewers, median (min–max) | peer viewers, median (min–max) | ratio ours/peer (median, min–max) | A/A peer |".to_owned(),
        "|---|---|---|---|---|".to_owned(),
    ];
    let named = |s: &str| name(s).unwrap_or_default();
    for (ours, peer, proto) in &pairs {
        let p = &out["pairs"][format!("{ours}/{peer}")];
        let mut ratio = rng(&p["ratio_ours_over_peer"]);
        let n = p["runs_with_both_exact"].as_u64().unwrap_or(0);
        if n < run.runs {
            ratio += &format!(" over {n} of {} runs", run.runs);
        }
        lines.push(format!(
            "| {} vs {}, {proto} | {} | {} | {ratio} | {} |",
            named(ours),
            named(peer),
            ramps::count_text(of(ours), "runs a lower bound"),
            ramps::count_text(of(peer), "runs a lower bound"),
            rng(&p["noise_floor_peer_aa"])
        ));
    }
    let stopped: Vec<String> = per
        .iter()
        .map(|(sy, xs)| {
            // Counter.most_common: by count, ties in the order first seen.
            let mut counts: Vec<(&str, usize)> = Vec::new();
            for why in xs.iter().map(Judged::limited_by) {
                match counts.iter_mut().find(|(w, _)| *w == why) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((why, 1)),
                }
            }
            counts.sort_by_key(|c| std::cmp::Reverse(c.1));
            let whys: Vec<String> = counts.iter().map(|(w, n)| format!("{w} ×{n}")).collect();
            format!("{}: {}", named(sy), whys.join(", "))
        })
        .collect();
    lines.push(String::new());
    lines.push(format!("Why the ramps stopped: {}.", stopped.join("; ")));
    let at_capacity: Vec<String> = per
        .iter()
        .map(|(s, xs)| {
            let med = |key: &str| {
                let v: Vec<f64> = xs
                    .iter()
                    .filter_map(|x| Some(x.at_capacity(key)?.as_f64().unwrap_or(0.0)))
                    .collect();
                median(&v).unwrap_or(0.0)
            };
            format!(
                "{} CPU {:.2}, generator {:.2}",
                named(s),
                med("server_cpu"),
                med("generator_cpu")
            )
        })
        .collect();
    lines.push(String::new());
    lines.push(format!(
        "At the last step that passed (median over runs): {} (CPU-seconds per second; server = the processes under test, \
         for the load balancers with the node).",
        at_capacity.join("; ")
    ));
    lines.push(String::new());
    lines.push(format!(
        "A count is a lower bound (≥) when the step that failed shows the load generator short of CPU (it issued requests more than \
         {:.0} ms late at p99, or core 1 was ≥ {:.0}% busy): the TTFB it measured is then its own delay as much as \
         the server's; likewise when the ramp reached its last step. On this 2-core machine the load generator shares core 1 with the \
         live source, ingest and mirror. Why each ramp stopped is in the JSON (`systems.*.runs[].limited_by`, `failed_step`). \
         The node closes connections beyond 10,000 (its default cap), which bounds a plain-HTTP ramp too. \
         Aim (brief): ≥ 1.0× the peer. Run it with `bench/capacity.sh [RUNS]` (default 5; ramp settings by environment, see the script); \
         raw numbers in `bench/out/capacity.json`. This run took {} min.",
        run.lag_limit_ms,
        run.gen_busy * 100.0,
        run.elapsed.div_euclid(60)
    ));
    lines.push(String::new());
    Ok(Report {
        section: lines.join("\n"),
        heading: "## Viewers per edge worker",
        after: None,
        raw: out,
        refusal: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::ramps::from_bundle as files;

    /// Ramps synthesized from de1c3a3's capacity results (steps cut, figures rounded,
    /// verdicts altered: sharing core 0, server CPU, latency, no step passed, a ceiling)
    /// give the section and the raw results the Python report (`capacity.py`, before this
    /// module) wrote from them.
    #[test]
    fn gives_what_the_python_report_wrote() {
        let files = files(include_str!("testdata/capacity-ramps.json"));
        let text = |s: &str| s.to_owned();
        let run = Run {
            runs: 6,
            parts: text("1 2"),
            step_secs: 8.0,
            join_secs: 4.0,
            ttfb_ms: 250.0,
            start: 1000,
            step: 500,
            growth: 1.5,
            max_viewers: 9000,
            tls_start: 250,
            tls_step: 250,
            tls_growth: 2.0,
            tls_max_viewers: 6000,
            lag_limit_ms: 40.5,
            gen_busy: 0.9,
            segment_bytes: 230_421,
            elapsed: 1965,
            ours_tls: String::new(),
            ha_tls: String::new(),
            nginx_version: text("nginx version: nginx/1.22.1\n"),
            haproxy_version: text(
                "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/\n",
            ),
            date: text("2026-11-30"),
        };
        let report = report(&files, &run).expect("a report");
        assert_eq!(report.section, include_str!("testdata/capacity-python.md"));
        assert_eq!(
            (report.heading, report.after),
            ("## Viewers per edge worker", None)
        );
        let (raw, ramps, python) =
            ramps::raw_and_ramps(&report, include_str!("testdata/capacity-python.json"));
        assert_eq!(raw, python);
        assert_eq!(
            ramps["haproxy"][0],
            crate::reports::python::parse_json(&files[0].text).expect("ramp")
        );
        let other = RampFile {
            name: "edge-1".to_owned(),
            ..files[0].clone()
        };
        assert!(
            super::report(&[other], &run).is_err(),
            "a system capacity.sh does not run"
        );
    }
}
