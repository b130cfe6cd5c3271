//! The report of `bench/lb.sh` (issue 18): what `sealcast lb` costs per request against
//! HAProxy, both sticky by cookie over TLS with HTTP/2 in front of two nginx backends, the
//! latency each adds at a paced load, and their backend connection reuse. It was Python
//! (`bench/lib/reports/lb.py`'s `report` and `tls-check`, in git history before this
//! module), whose text and raw results it writes. What the script measures each load with
//! is [`h2load_pair`] (with the segment the backends serve, [`random_segment`]); HAProxy's
//! health checks, paused while ours is measured, are switched by [`health`].
//!
//! The script's work directory gives `results.jsonl` (one line a load: server, kind, mode,
//! run, the load balancer's CPU seconds, the backends' counter deltas and what h2load
//! measured) and `lb.metrics` (our load balancer's `/metrics` after the runs).

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::{json, Map, Value};

use super::{json_lines, Report};
use section::median;

mod haproxy;
mod load;
mod section;

pub use haproxy::{health, Health};
pub use load::{h2load_pair, random_segment, H2loadPair};
pub use section::HEADING;

/// The kinds of request, in the tables' order.
const KINDS: [&str; 2] = ["playlist", "segment"];
/// The figures of a saturating load summarised per server.
const METRICS: [&str; 10] = [
    "req_per_s",
    "mb_per_s",
    "cpu_share",
    "cpu_ms_per_1k_requests",
    "cpu_ms_per_mb",
    "p50_us",
    "p99_us",
    "p999_us",
    "errors",
    "backend_split_b1",
];
/// The figures of a paced load summarised per server.
const PACED_METRICS: [&str; 6] = [
    "req_per_s",
    "p50_us",
    "p99_us",
    "p999_us",
    "errors",
    "cpu_ms_per_1k_requests",
];
/// The goals (issue 18): HAProxy's CPU over ours, our backend connection reuse, the p99 we
/// add at the paced load.
const CPU_RATIO_MIN: f64 = 1.2;
const REUSE_MIN: f64 = 0.99;
const ADDED_P99_MAX_US: i64 = 200;

/// What `bench/lb.sh` measured with.
#[derive(Debug, Clone, clap::Args)]
pub struct Run {
    /// Interleaved runs of every load.
    #[arg(long)]
    pub runs: u64,
    /// Seconds each load lasted.
    #[arg(long)]
    pub seconds: u64,
    /// h2load's clients at the saturating load.
    #[arg(long)]
    pub clients: u64,
    /// Streams per client at the saturating load.
    #[arg(long)]
    pub streams: u64,
    /// h2load's clients at the paced load.
    #[arg(long)]
    pub paced_clients: u64,
    /// Requests per second per client at the paced load.
    #[arg(long)]
    pub paced_rps: u64,
    /// The playlist's size.
    #[arg(long)]
    pub playlist_bytes: u64,
    /// The segment's size.
    #[arg(long)]
    pub segment_bytes: u64,
    /// The day of the run, as the section prints it (`date +%F`).
    #[arg(long)]
    pub date: String,
}

/// The first lines the peers' programs print of their versions (`haproxy -v`,
/// `h2load --version`, `nginx -v`).
#[derive(Debug, Clone)]
pub struct Versions {
    /// HAProxy's.
    pub haproxy: String,
    /// h2load's.
    pub h2load: String,
    /// nginx's.
    pub nginx: String,
}

/// One load's figures, drawn from its line of `results.jsonl`.
#[derive(Debug)]
struct Derived {
    run: i64,
    /// By name ([`METRICS`] and the backends' counts); null for none, as Python's None.
    m: BTreeMap<&'static str, Value>,
}

impl Derived {
    /// A figure as a number (none for null).
    fn f(&self, key: &str) -> Option<f64> {
        self.m.get(key).and_then(Value::as_f64)
    }

    /// A figure as Python tests it (`if x`): there and not zero.
    fn truthy(&self, key: &str) -> bool {
        self.f(key).is_some_and(|x| x != 0.0)
    }
}

/// A number of a load's line.
fn field<'a>(row: &'a Value, path: &str) -> anyhow::Result<&'a Value> {
    row.pointer(path)
        .filter(|v| v.is_number() || v.is_null())
        .with_context(|| format!("a load's line has no {path}: {row}"))
}

fn derived(row: &Value) -> anyhow::Result<Derived> {
    let f = |path| -> anyhow::Result<f64> {
        field(row, path)?
            .as_f64()
            .with_context(|| format!("{path} is null: {row}"))
    };
    let i = |path| -> anyhow::Result<i64> {
        field(row, path)?
            .as_i64()
            .with_context(|| format!("{path} is not a whole number: {row}"))
    };
    let requests = i("/h2load/requests")?;
    let duration = f("/h2load/duration_s")?;
    let mb = f("/h2load/bytes")? / 1e6;
    let cpu = f("/cpu_s")?;
    let per_s = |x: f64| if duration != 0.0 { x / duration } else { 0.0 };
    let (b1, b2) = (i("/backend/b1_requests")?, i("/backend/b2_requests")?);
    let mut m = BTreeMap::new();
    m.insert("requests", json!(requests));
    m.insert(
        "errors",
        json!(i("/h2load/failed")? + i("/h2load/errored")? + i("/h2load/timeout")?),
    );
    m.insert("req_per_s", json!(per_s(requests as f64)));
    m.insert("mb_per_s", json!(per_s(mb)));
    m.insert("cpu_share", json!(per_s(cpu)));
    m.insert(
        "cpu_ms_per_1k_requests",
        json!((requests != 0).then(|| 1e6 * cpu / requests as f64)),
    );
    m.insert("cpu_ms_per_mb", json!((mb != 0.0).then(|| 1e3 * cpu / mb)));
    for q in ["p50_us", "p99_us", "p999_us"] {
        m.insert(q, field(row, &format!("/h2load/{q}"))?.clone());
    }
    m.insert(
        "backend_accepts",
        json!(i("/backend/b1_accepts")? + i("/backend/b2_accepts")?),
    );
    m.insert("backend_requests", json!(b1 + b2));
    m.insert(
        "backend_split_b1",
        json!(b1 as f64 / (b1 + b2).max(1) as f64),
    );
    Ok(Derived { run: i("/run")?, m })
}

/// `lib/stats.py`'s `spread` of JSON numbers (nulls left out), as Python gives it
/// ([`super::python::spread`]).
fn spread_json(xs: impl IntoIterator<Item = Value>) -> Value {
    super::python::spread(&xs.into_iter().collect::<Vec<_>>())
}

/// The loads of one server, kind and mode, in the file's order.
fn pick<'a>(
    rows: &'a [(&Value, Derived)],
    server: &str,
    kind: &str,
    mode: &str,
) -> Vec<&'a Derived> {
    rows.iter()
        .filter(|(r, _)| {
            r["server"].as_str() == Some(server)
                && r["kind"].as_str() == Some(kind)
                && r["mode"].as_str() == Some(mode)
        })
        .map(|(_, d)| d)
        .collect()
}

/// The loads by run (a later one of the same run replaces an earlier one).
fn by_run<'a>(xs: &[&'a Derived]) -> BTreeMap<i64, &'a Derived> {
    xs.iter().map(|d| (d.run, *d)).collect()
}

/// The spread of each of `metrics` over `xs`.
fn summarise(xs: &[&Derived], metrics: &[&str]) -> Value {
    let e: Map<String, Value> = metrics
        .iter()
        .map(|m| {
            let values = xs
                .iter()
                .map(|x| x.m.get(m).cloned().unwrap_or(Value::Null));
            ((*m).to_owned(), spread_json(values))
        })
        .collect();
    Value::Object(e)
}

/// The backends' connections against their requests over some loads.
fn reuse(xs: &[&Derived]) -> Value {
    let sum = |key| {
        xs.iter()
            .filter_map(|x| x.m.get(key)?.as_i64())
            .sum::<i64>()
    };
    let (acc, req) = (sum("backend_accepts"), sum("backend_requests"));
    let reuse = (req != 0).then(|| 1.0 - acc as f64 / req as f64);
    json!({"backend_accepts": acc, "backend_requests": req, "reuse": reuse})
}

/// `a - b` as Python gives it: whole numbers stay whole.
fn minus(a: &Value, b: &Value) -> Value {
    match (a.as_i64(), b.as_i64()) {
        (Some(a), Some(b)) => json!(a - b),
        _ => json!(a.as_f64().unwrap_or(f64::NAN) - b.as_f64().unwrap_or(f64::NAN)),
    }
}

/// Our load balancer's placements by outcome, from its `/metrics`.
fn choices(metrics: &str) -> anyhow::Result<BTreeMap<String, f64>> {
    const PREFIX: &str = "sealcast_lb_choices_total{outcome=\"";
    let mut out = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix(PREFIX) else {
            continue;
        };
        let word = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let (outcome, rest) = rest.split_at(word);
        let Some(rest) = rest.strip_prefix("\"}") else {
            continue;
        };
        let value = rest.trim_start();
        if outcome.is_empty() || value.len() == rest.len() {
            continue;
        }
        let end = value
            .find(|c: char| !(c.is_ascii_digit() || ".e+".contains(c)))
            .unwrap_or(value.len());
        if end == 0 {
            continue;
        }
        let v: f64 = value[..end]
            .parse()
            .with_context(|| format!("lb.metrics: {line:?}"))?;
        out.insert(outcome.to_owned(), v);
    }
    Ok(out)
}

/// What `bench/lb.sh`'s warm-up negotiated, per load balancer, as the line it prints
/// (`lb: negotiated: …`), and whether both negotiated the same, known TLS.
pub fn tls_check(results_jsonl: &str) -> anyhow::Result<(String, bool)> {
    let mut seen = BTreeMap::new();
    for row in json_lines("a load", results_jsonl)? {
        let server = row["server"]
            .as_str()
            .context("a load without its server")?;
        if server != "direct" {
            let protocol = row
                .pointer("/h2load/protocol")
                .and_then(Value::as_str)
                .context("a load without its protocol")?;
            seen.insert(server.to_owned(), protocol.to_owned());
        }
    }
    let line = seen
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let protocols: std::collections::BTreeSet<&String> = seen.values().collect();
    let same = protocols.len() == 1 && !seen.values().any(String::is_empty);
    Ok((format!("lb: negotiated: {line}"), same))
}

/// The report of a run: `results_jsonl` and `metrics` are the work directory's
/// `results.jsonl` and `lb.metrics`; `notes`, what `bench/lb-notes.md` says.
pub fn report(
    results_jsonl: &str,
    metrics: &str,
    run: &Run,
    versions: &Versions,
    notes: Option<&str>,
) -> anyhow::Result<Report> {
    let raw_rows = json_lines("a load", results_jsonl)?;
    let rows = raw_rows
        .iter()
        .map(|r| Ok((r, derived(r)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let protocol = |s: &str| {
        raw_rows
            .iter()
            .find(|r| r["server"].as_str() == Some(s))
            .and_then(|r| r.pointer("/h2load/protocol"))
            .cloned()
            .unwrap_or_else(|| json!(""))
    };

    let mut saturating = Map::new();
    let mut latency = Map::new();
    for kind in KINDS {
        let (ha, us) = (
            pick(&rows, "haproxy", kind, "load"),
            pick(&rows, "sealcast", kind, "load"),
        );
        let mut e = Map::new();
        e.insert("haproxy".to_owned(), summarise(&ha, &METRICS));
        e.insert("sealcast".to_owned(), summarise(&us, &METRICS));
        let (h, u) = (by_run(&ha), by_run(&us));
        let runs: Vec<i64> = h.keys().filter(|i| u.contains_key(i)).copied().collect();
        let ratio = |m: &str| {
            spread_json(runs.iter().filter_map(|i| {
                let (h, u) = (h[i], u[i]);
                if !(h.truthy(m) && u.truthy(m)) {
                    return None;
                }
                Some(json!(h.f(m)? / u.f(m)?))
            }))
        };
        e.insert(
            "ratio_haproxy_over_ours".to_owned(),
            json!({"cpu_per_1k_requests": ratio("cpu_ms_per_1k_requests"), "cpu_per_mb": ratio("cpu_ms_per_mb")}),
        );
        e.insert(
            "throughput_ours_over_haproxy".to_owned(),
            spread_json(runs.iter().filter_map(|i| {
                let (h, u) = (h[i], u[i]);
                if !h.truthy("req_per_s") {
                    return None;
                }
                Some(json!(u.f("req_per_s")? / h.f("req_per_s")?))
            })),
        );
        let cpu = "cpu_ms_per_1k_requests";
        let aa = ha.windows(2).filter_map(|w| {
            if !(w[0].truthy(cpu) && w[1].truthy(cpu)) {
                return None;
            }
            Some(json!(w[0].f(cpu)? / w[1].f(cpu)?))
        });
        e.insert(
            "noise_floor_haproxy_aa".to_owned(),
            json!({"cpu_per_1k_requests": spread_json(aa)}),
        );
        saturating.insert(kind.to_owned(), Value::Object(e));

        let mut le = Map::new();
        let lat: Vec<(&str, Vec<&Derived>)> = ["direct", "haproxy", "sealcast"]
            .into_iter()
            .map(|s| (s, pick(&rows, s, kind, "paced")))
            .collect();
        for (s, xs) in &lat {
            le.insert((*s).to_owned(), summarise(xs, &PACED_METRICS));
        }
        let d = by_run(&lat[0].1);
        let mut added = Map::new();
        for (s, xs) in &lat[1..] {
            let by = by_run(xs);
            let mut a = Map::new();
            for q in ["p50_us", "p99_us"] {
                let diffs = by.iter().filter_map(|(i, x)| {
                    let (sv, dv) = (x.m.get(q)?, d.get(i)?.m.get(q)?);
                    (!sv.is_null() && !dv.is_null()).then(|| minus(sv, dv))
                });
                a.insert(q.to_owned(), spread_json(diffs));
            }
            added.insert((*s).to_owned(), Value::Object(a));
        }
        le.insert("added_us".to_owned(), Value::Object(added));
        latency.insert(kind.to_owned(), Value::Object(le));
    }

    let mut reuses = Map::new();
    for s in ["haproxy", "sealcast"] {
        let all: Vec<&Derived> = rows
            .iter()
            .filter(|(r, _)| r["server"].as_str() == Some(s))
            .map(|(_, d)| d)
            .collect();
        let mut r = reuse(&all);
        let by_load: Map<String, Value> = KINDS
            .iter()
            .flat_map(|k| ["load", "paced"].map(|m| (*k, m)))
            .map(|(k, m)| (format!("{k} {m}"), reuse(&pick(&rows, s, k, m))))
            .collect();
        r["by_load"] = Value::Object(by_load);
        reuses.insert(s.to_owned(), r);
    }
    reuses.insert("note".to_owned(), json!("1 - TCP connections the backends accepted / requests they served (nginx stub_status), over every load; the health checks of the load balancer under test count in both (HAProxy's are paused while ours is measured)"));
    let choices = choices(metrics)?;
    let errors: Map<String, Value> = ["haproxy", "sealcast", "direct"]
        .into_iter()
        .map(|s| {
            let n: i64 = rows
                .iter()
                .filter(|(r, _)| r["server"].as_str() == Some(s))
                .filter_map(|(_, d)| d.m["errors"].as_i64())
                .sum();
            (s.to_owned(), json!(n))
        })
        .collect();
    let cpu_met = KINDS.iter().all(|k| {
        median(&saturating[*k]["ratio_haproxy_over_ours"]["cpu_per_1k_requests"])
            .is_some_and(|m| m >= CPU_RATIO_MIN)
    });
    let our_reuse = reuses["sealcast"]["reuse"].as_f64().unwrap_or(0.0);
    let p99_met: Map<String, Value> = KINDS
        .iter()
        .map(|k| {
            let p99 = median(&latency[*k]["added_us"]["sealcast"]["p99_us"]);
            (
                (*k).to_owned(),
                json!(p99.is_some_and(|m| m < ADDED_P99_MAX_US as f64)),
            )
        })
        .collect();
    let protocols = json!({"haproxy": protocol("haproxy"), "sealcast": protocol("sealcast"), "direct": protocol("direct")});
    let raw = json!({
        "benchmark": "load-balancer overhead: sealcast lb (Pingora) vs HAProxy, sticky cookie, TLS h2, 2 nginx backends",
        "date": run.date,
        "runs": run.runs, "seconds_per_load": run.seconds, "clients": run.clients,
        "streams_per_client": run.streams, "paced_clients": run.paced_clients,
        "paced_rps_per_client": run.paced_rps, "playlist_bytes": run.playlist_bytes,
        "segment_bytes": run.segment_bytes,
        "haproxy": versions.haproxy, "h2load": versions.h2load, "nginx": versions.nginx,
        "protocol": protocols,
        "direct_baseline": "h2load --h1 (HTTP/1.1, no TLS) on the backends' own ports, same clients and rate",
        "saturating": saturating, "latency": latency, "reuse": reuses,
        "sealcast_choices": choices, "errors": errors,
        "target": {
            "cpu_ratio_haproxy_over_ours_min": CPU_RATIO_MIN, "reuse_min": REUSE_MIN,
            "added_p99_max_us": ADDED_P99_MAX_US,
            "aim": "cpu ratio >= 1.2; added p99 < 200 us",
            "cpu_met": cpu_met, "reuse_met": our_reuse >= REUSE_MIN,
            "added_p99_met": p99_met,
        },
        "raw": raw_rows,
    });

    let section = section::section(&raw, notes);
    Ok(Report {
        section,
        heading: "## Load-balancer overhead",
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
            runs: 3,
            seconds: 10,
            clients: 100,
            streams: 1,
            paced_clients: 10,
            paced_rps: 50,
            playlist_bytes: 193,
            segment_bytes: 204_544,
            date: "2026-11-30".to_owned(),
        }
    }

    fn versions() -> Versions {
        Versions {
            haproxy: "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/"
                .to_owned(),
            h2load: "h2load nghttp2/1.52.0".to_owned(),
            nginx: "nginx version: nginx/1.22.1".to_owned(),
        }
    }

    /// The loads of 42b87e2's committed run (its raw results' `raw`), given to the Python
    /// report (`bench/lib/reports/lb.py report`, before this module), gave this section and
    /// these raw results.
    #[test]
    fn gives_the_section_and_raw_results_the_python_report_wrote() {
        let rows = include_str!("testdata/lb-42b87e2.jsonl");
        let report = report(
            rows,
            include_str!("testdata/lb-42b87e2.metrics"),
            &run(),
            &versions(),
            Some("Notes.\n"),
        )
        .expect("a report");
        assert_eq!(report.section, include_str!("testdata/lb-python.md"));
        let mut raw = report.raw;
        let loads = raw.as_object_mut().and_then(|o| o.remove("raw"));
        assert_eq!(
            loads,
            Some(Value::Array(json_lines("a load", rows).expect("rows")))
        );
        let python: Value =
            serde_json::from_str(include_str!("testdata/lb-python.json")).expect("JSON");
        // Compared as text would be: serde_json reads a float's last digit loosely, the same
        // loose way for the same text.
        let printed: Value = serde_json::from_str(&raw.to_string()).expect("JSON");
        assert_eq!(printed, python);
    }

    #[test]
    fn spreads_keep_whole_numbers_as_python_does() {
        assert_eq!(
            spread_json([json!(3), Value::Null, json!(1), json!(2)]),
            json!({"median": 2, "min": 1, "max": 3})
        );
        assert_eq!(
            spread_json([json!(3), json!(1)]),
            json!({"median": 2.0, "min": 1, "max": 3})
        );
        assert_eq!(spread_json([Value::Null]), Value::Null);
        assert_eq!(minus(&json!(5), &json!(7)), json!(-2));
        assert_eq!(minus(&json!(5.5), &json!(7)), json!(-1.5));
    }

    #[test]
    fn the_tls_check_wants_one_known_protocol() {
        let line = |server: &str, protocol: &str| {
            format!("{{\"server\": \"{server}\", \"h2load\": {{\"protocol\": \"{protocol}\"}}}}\n")
        };
        let same = line("haproxy", "TLSv1.3 A h2")
            + &line("sealcast", "TLSv1.3 A h2")
            + &line("direct", "");
        assert_eq!(
            tls_check(&same).expect("checked"),
            (
                "lb: negotiated: haproxy TLSv1.3 A h2; sealcast TLSv1.3 A h2".to_owned(),
                true
            )
        );
        let differ = line("sealcast", "TLSv1.3 B h2") + &line("haproxy", "TLSv1.3 A h2");
        assert!(!tls_check(&differ).expect("checked").1);
        let none = line("sealcast", "") + &line("haproxy", "");
        assert!(!tls_check(&none).expect("checked").1);
    }

    #[test]
    fn placements_and_versions_are_read_as_the_python_read_them() {
        let metrics = "sealcast_lb_choices_total{outcome=\"sticky_hit\"} 1.5e+3\n\
                       sealcast_lb_choices_total{outcome=\"new\"}7\n\
                       # sealcast_lb_choices_total{outcome=\"x\"} 1\n\
                       sealcast_lb_choices_total{outcome=\"hashed\"}  0\n";
        let c = choices(metrics).expect("choices");
        assert_eq!(c.len(), 2);
        assert_eq!(c["sticky_hit"], 1500.0);
        assert_eq!(c["hashed"], 0.0);
    }
}
