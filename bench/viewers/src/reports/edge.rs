//! The report of `bench/edge.sh`: one broadcast node against nginx serving the same fixed
//! window, under wrk (HTTP/1.1) and h2load (h2c) loads, interleaved. It was Python
//! (`bench/lib/reports/edge.py`, in git history before this module), whose text it writes.
//!
//! The script measures each load into one JSON line of its `results.jsonl`: the server,
//! the kind (`playlists`, `segments`), the tool, the server's CPU-seconds and the load's
//! figures, which wrk's Lua script prints and, for h2load, [`h2load()`] reads from its output
//! and log (`sealcast-bench sample h2load`, with the lines read as [`super::h2load`] reads
//! them).

use anyhow::Context;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::h2load as h2;
use super::python::spread;
use super::{json_lines, push_notes, Report, Rounds};
use crate::spread::grouped;

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## Edge serving (bench/edge.sh)";

/// The figures of each server per load, in the raw results' order.
const FIGURES: [&str; 7] = [
    "req_per_s",
    "req_per_cpu_s",
    "cpu_share",
    "p50_ms",
    "p99_ms",
    "mb_per_s",
    "errors",
];

/// What the script measured with.
#[derive(Debug, clap::Args)]
pub struct Run {
    /// Seconds per load (`--seconds`), and the interleaved runs (`--rounds`).
    #[command(flatten)]
    pub rounds: Rounds,
    /// The segments of the window.
    #[arg(long)]
    pub segments: u64,
    /// Their average size, in bytes.
    #[arg(long)]
    pub segment_bytes: u64,
    /// The node spoke h2c with prior knowledge (so the h2load loads ran).
    #[arg(long)]
    pub h2c: bool,
    /// What `nginx -v` printed.
    #[arg(long)]
    pub nginx: String,
    /// The day of the run, as the section prints it (`date +%F`).
    #[arg(long)]
    pub date: String,
}

/// One h2load run's figures, as a results line's `load` gives them (in this order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct H2load {
    /// Requests that succeeded.
    pub requests: u64,
    /// How long the run was, in seconds.
    pub duration_s: f64,
    /// Requests failed and errored.
    pub errors: u64,
    /// Bytes received.
    pub bytes: u64,
    /// The median time of a 200 answer, in milliseconds.
    pub p50_ms: f64,
    /// Its 99th percentile.
    pub p99_ms: f64,
    /// Its mean.
    pub mean_ms: f64,
}

/// One h2load run's figures from what it printed (`out`) and its per-request log (none
/// when it wrote none): the latencies are the 200 answers'.
pub fn h2load(out: &str, log: Option<&str>) -> H2load {
    let mut ms: Vec<f64> = h2::latencies_us(log.unwrap_or_default())
        .into_iter()
        .map(|us| us as f64 / 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    // Python's int(p / 100 * n), capped at the last.
    let pct = |p: f64| {
        let at = (p / 100.0 * ms.len() as f64) as usize;
        ms.get(at.min(ms.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    let counts = h2::requests(out).next();
    let mean = if ms.is_empty() {
        0.0
    } else {
        ms.iter().sum::<f64>() / ms.len() as f64
    };
    // `traffic: [\d.]+\w* \((\d+)\) total`: a size in digits and a unit.
    let sized = |size: &str| {
        let (number, unit) = size.split_at(
            size.find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(size.len()),
        );
        !number.is_empty() && unit.chars().all(|c| c.is_alphanumeric() || c == '_')
    };
    H2load {
        requests: counts.map_or(0, |c| c.succeeded),
        duration_s: h2::finished(out).unwrap_or(0.0),
        errors: counts.map_or(0, |c| c.failed + c.errored),
        bytes: h2::traffic(out)
            .find(|(size, _)| sized(size))
            .map_or(0, |(_, bytes)| bytes),
        p50_ms: pct(50.0),
        p99_ms: pct(99.0),
        mean_ms: mean,
    }
}

/// A number of `v` at `key`; an error names what is missing.
fn number(v: &Value, key: &str) -> anyhow::Result<f64> {
    v.get(key)
        .and_then(Value::as_f64)
        .with_context(|| format!("no number {key} in {v}"))
}

/// A run's figures ([`FIGURES`]) from its results line.
fn figures(row: &Value) -> anyhow::Result<Map<String, Value>> {
    let load = row.get("load").context("a row without its load")?;
    let duration = number(load, "duration_s")?;
    let cpu = number(row, "cpu_s")?;
    let requests = number(load, "requests")?;
    let per = |x: f64, by: f64| if by != 0.0 { x / by } else { 0.0 };
    // Python's int 0 when the load lasted nothing.
    let or_zero = |x: f64| if duration != 0.0 { json!(x) } else { json!(0) };
    let field = |key| load.get(key).cloned().unwrap_or(Value::Null);
    let mut m = Map::new();
    m.insert("req_per_s".into(), json!(per(requests, duration)));
    m.insert("req_per_cpu_s".into(), json!(per(requests, cpu)));
    m.insert("cpu_share".into(), or_zero(cpu / duration));
    m.insert("p50_ms".into(), field("p50_ms"));
    m.insert("p99_ms".into(), field("p99_ms"));
    m.insert("errors".into(), field("errors"));
    let bytes = number(load, "bytes")?;
    m.insert("mb_per_s".into(), or_zero(bytes / duration / 1e6));
    Ok(m)
}

/// The ratios `a[i] / b[i]` of a figure over the runs both had, where `b[i]` is not 0.
fn ratios(a: &[Map<String, Value>], b: &[Map<String, Value>], key: &str) -> Vec<Value> {
    a.iter()
        .zip(b)
        .filter_map(|(a, b)| {
            let (x, y) = (a.get(key)?.as_f64()?, b.get(key)?.as_f64()?);
            (y != 0.0).then(|| json!(x / y))
        })
        .collect()
}

/// A spread's figure (`median`, `min`, `max`); an error when the load has none.
fn of(spread: &Value, name: &str, figure: &str) -> anyhow::Result<f64> {
    spread
        .get(figure)
        .and_then(Value::as_f64)
        .with_context(|| format!("{name}: no {figure}"))
}

/// The report of a run from its `results.jsonl` (a line per load measured).
pub fn report(results_jsonl: &str, run: &Run, notes: Option<&str>) -> anyhow::Result<Report> {
    let rows = json_lines("row", results_jsonl)?;
    // Per load (`TOOL KIND`, in the order the rows first name it), per server, the runs.
    let mut loads: Vec<(String, Map<String, Value>)> = Vec::new();
    let mut runs: Vec<(String, String, Map<String, Value>)> = Vec::new();
    for row in &rows {
        let s = |key: &str| {
            row.get(key)
                .and_then(Value::as_str)
                .with_context(|| format!("no {key} in {row}"))
        };
        let name = format!("{} {}", s("tool")?, s("kind")?);
        runs.push((name, s("server")?.to_owned(), figures(row)?));
    }
    let mut names: Vec<&str> = Vec::new();
    for (name, _, _) in &runs {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    for name in names {
        let side = |server: &str| -> Vec<Map<String, Value>> {
            runs.iter()
                .filter(|(n, s, _)| n == name && s == server)
                .map(|(_, _, f)| f.clone())
                .collect()
        };
        let (o, n) = (side("sealcast"), side("nginx"));
        let mut entry = Map::new();
        for (server, xs) in [("sealcast", &o), ("nginx", &n)] {
            let stats: Map<String, Value> = FIGURES
                .iter()
                .map(|m| {
                    let values: Vec<Value> = xs.iter().map(|x| x[*m].clone()).collect();
                    ((*m).to_owned(), spread(&values))
                })
                .collect();
            entry.insert(server.to_owned(), Value::Object(stats));
        }
        entry.insert(
            "ratio_ours_over_nginx".to_owned(),
            json!({
                "req_per_cpu_s": spread(&ratios(&o, &n, "req_per_cpu_s")),
                "req_per_s": spread(&ratios(&o, &n, "req_per_s")),
                "p99": spread(&ratios(&o, &n, "p99_ms")),
            }),
        );
        let aa = ratios(&n, n.get(1..).unwrap_or_default(), "req_per_cpu_s");
        let aa = if aa.is_empty() { vec![json!(1.0)] } else { aa };
        entry.insert(
            "noise_floor_nginx_aa".to_owned(),
            json!({"req_per_cpu_s": spread(&aa)}),
        );
        loads.push((name.to_owned(), entry));
    }

    let Rounds { seconds, rounds } = run.rounds;
    let nginx = run.nginx.trim();
    let mut lines = vec![
        HEADING.to_owned(),
        String::new(),
        format!(
            "One broadcast node (`sealcast up --broadcast 1`, 1 tokio worker) vs {} (1 worker, \
             `sendfile on`, files on tmpfs) serving the same fixed window: master + 4 media \
             playlists, {} segments of {} KiB on average. Servers on core 0, load generator \
             on core 1; wrk `-t1 -c64` HTTP/1.1 keep-alive, h2load `-t1 -c16 -m4` over h2c \
             (prior knowledge); {rounds} interleaved runs of {seconds} s per load, {}. Ratios \
             are ours/nginx: > 1 is ahead for requests per CPU-second, < 1 is ahead for p99.",
            nginx.replace("nginx version: ", ""),
            run.segments,
            run.segment_bytes / 1024,
            run.date
        ),
        String::new(),
        "| load | sealcast req/s | sealcast req/CPU-s | sealcast p99 ms | nginx req/s | nginx \
         req/CPU-s | nginx p99 ms | ratio req/CPU-s (median, min–max) | ratio p99 | A/A nginx |"
            .to_owned(),
        "|---|---|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    let mut shares = Vec::new();
    let mut verdicts = Vec::new();
    for (name, e) in &loads {
        let fig = |server: &str, figure: &str, which: &str| {
            of(
                &e[server][figure],
                &format!("{name} {server} {figure}"),
                which,
            )
        };
        let ratio = |figure: &str, which: &str| {
            of(
                &e["ratio_ours_over_nginx"][figure],
                &format!("{name} ratio {figure}"),
                which,
            )
        };
        let g = |x: f64| grouped(Some(x), 0);
        let aa = of(&e["noise_floor_nginx_aa"]["req_per_cpu_s"], name, "median")?;
        lines.push(format!(
            "| {name} | {} | {} | {:.2} | {} | {} | {:.2} | {:.2} ({:.2}–{:.2}) | {:.2} | {aa:.2} |",
            g(fig("sealcast", "req_per_s", "median")?),
            g(fig("sealcast", "req_per_cpu_s", "median")?),
            fig("sealcast", "p99_ms", "median")?,
            g(fig("nginx", "req_per_s", "median")?),
            g(fig("nginx", "req_per_cpu_s", "median")?),
            fig("nginx", "p99_ms", "median")?,
            ratio("req_per_cpu_s", "median")?,
            ratio("req_per_cpu_s", "min")?,
            ratio("req_per_cpu_s", "max")?,
            ratio("p99", "median")?,
        ));
        shares.push(format!(
            "{name} {:.2} / {:.2}",
            fig("sealcast", "cpu_share", "median")?,
            fig("nginx", "cpu_share", "median")?
        ));
        let goal = match name.split_whitespace().nth(1) {
            Some("playlists") => 1.3,
            Some("segments") => 1.5,
            _ => anyhow::bail!("{name}: no goal for this kind of load"),
        };
        let r = ratio("req_per_cpu_s", "median")?;
        let met = if r >= goal { "met" } else { "NOT met" };
        verdicts.push(format!("{name} {r:.2} ({met})"));
    }
    lines.push(String::new());
    lines.push(format!(
        "Server CPU-s per wall-second (ours / nginx, median): {}. Well below 1.0 means the \
         server did not get its core to itself (the machine is shared): raw req/s then mean \
         little, the per-CPU-second ratio is the figure to read. The sealcast CPU is the whole \
         `up` process (the node plus an idle ingest and MQTT broker); nginx's is master + \
         worker. On loopback the receiver's softirq work may be charged to whichever process \
         is running, so the byte-heavy segment figures carry more accounting noise than the \
         playlist ones.",
        shares.join("; ")
    ));
    lines.push(String::new());
    lines.push(format!(
        "Aim (brief): playlists ≥ 1.0× nginx req/CPU-s with p99 ≤ 1.1×, segments ≥ 0.9×. Goal \
         (issue 18): playlists ≥ 1.3×, segments ≥ 1.5×: {}.",
        verdicts.join("; ")
    ));
    push_notes(&mut lines, notes);
    lines.push(String::new());
    lines.push(
        "Run it with `bench/edge.sh [RUNS [SECONDS]]` (default 3 runs of 4 s; \
         `EDGE_PROFILE=DIR` adds a perf profile of each server under the wrk loads); raw \
         numbers in `bench/out/edge.json`."
            .to_owned(),
    );
    lines.push(String::new());

    let raw = json!({
        "benchmark": "edge serving: one broadcast node vs nginx, same fixed window",
        "date": run.date,
        "runs": rounds,
        "seconds_per_load": seconds as f64,
        "window": {"segments": run.segments, "average_segment_bytes": run.segment_bytes},
        "h2c_prior_knowledge_on_node": run.h2c,
        "nginx": nginx,
        "loads": loads.into_iter().map(|(n, e)| (n, Value::Object(e))).collect::<Map<_, _>>(),
    });
    Ok(Report {
        section: lines.join("\n"),
        heading: "## Edge serving",
        after: None,
        raw,
        refusal: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(h2c: bool) -> Run {
        Run {
            rounds: Rounds {
                seconds: 10,
                rounds: 3,
            },
            segments: 39,
            segment_bytes: 516_214,
            h2c,
            nginx: "nginx version: nginx/1.22.1\n".to_owned(),
            date: "2026-11-30".to_owned(),
        }
    }

    /// Generated results (wrk lines as its Lua script prints them, h2load lines from real
    /// h2load runs) give the section the Python report (`edge.py report`) wrote on them.
    #[test]
    fn gives_the_section_the_python_report_wrote() {
        let report = report(
            include_str!("testdata/edge-results.jsonl"),
            &run(true),
            Some("Notes.\n"),
        )
        .expect("a report");
        assert_eq!(report.section, include_str!("testdata/edge-python.md"));
        let loads = report.raw["loads"].as_object().expect("loads");
        assert_eq!(loads.len(), 4);
        // An int stays an int, as Python kept it.
        let errors = &loads["wrk playlists"]["sealcast"]["errors"];
        assert_eq!(errors.to_string(), r#"{"max":3,"median":0,"min":0}"#);
        assert_eq!(report.raw["seconds_per_load"], json!(10.0));
        assert_eq!(report.raw["nginx"], "nginx version: nginx/1.22.1");
    }

    /// What h2load 1.52 (Debian's) printed for a run against nginx, a fifth of the
    /// requests answered 404: what `edge.py h2load` made of it.
    #[test]
    fn reads_an_h2load_run_as_the_python_did() {
        let figures = h2load(
            include_str!("testdata/edge-h2load.out"),
            Some(include_str!("testdata/edge-h2load.log")),
        );
        assert_eq!(
            figures,
            H2load {
                requests: 30,
                duration_s: 0.00391,
                errors: 10,
                bytes: 1_507_998,
                p50_ms: 0.066,
                p99_ms: 0.298,
                mean_ms: 0.087_200_000_000_000_01,
            }
        );
        let line = serde_json::to_string(&figures).expect("JSON");
        assert!(line.starts_with(r#"{"requests":30,"duration_s":0.00391,"errors":10,"#));
        // Without a log (no connection made): no latencies, seconds in ms.
        let refused = "finished in 3.04ms, 0.00 req/s, 0B/s\nrequests: 5 total, 0 started, \
                       0 done, 0 succeeded, 5 failed, 5 errored, 0 timeout\ntraffic: 0B (0) \
                       total, 0B (0) headers (space savings 0.00%), 0B (0) data\n";
        let none = h2load(refused, None);
        assert_eq!((none.requests, none.errors, none.bytes), (0, 10, 0));
        assert_eq!(
            (none.duration_s, none.p50_ms, none.mean_ms),
            (0.00304, 0.0, 0.0)
        );
        assert_eq!(h2load("", None).duration_s, 0.0);
    }

    #[test]
    fn a_load_nginx_never_answered_is_an_error() {
        let line = |server: &str, p99: f64| {
            format!(
                r#"{{"server":"{server}","kind":"playlists","tool":"wrk","cpu_s":1.0,"load":{{"requests":10,"duration_s":4.0,"errors":0,"bytes":100,"p50_ms":1.0,"p99_ms":{p99},"mean_ms":1.0}}}}"#
            )
        };
        let results = format!("{}\n{}\n", line("sealcast", 2.0), line("nginx", 0.0));
        assert!(report(&results, &run(false), None).is_err());
        let results = format!("{}\n{}\n", line("sealcast", 2.0), line("nginx", 4.0));
        let report = report(&results, &run(false), None).expect("a report");
        assert!(report.section.contains(
            "| wrk playlists | 2 | 10 | 2.00 | 2 | 10 | 4.00 | 1.00 (1.00–1.00) | 0.50 | 1.00 |"
        ));
    }
}
