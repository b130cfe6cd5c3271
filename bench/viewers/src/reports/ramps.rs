//! What the reports of `bench/capacity.sh` and `bench/llhls-common.sh` share: their ramps
//! (one `sealcast-viewers` ramp report per system and run, `SYSTEM-RUN.json` in the work
//! directory's `ramps/`, with a `SYSTEM-RUN.counted` beside it when the script asked the
//! node how many viewers it counted), and an LL-HLS ramp judged ([`judge_ll`]); how a
//! system's counts print; the peers' names from their versions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Map, Value};

use super::python::{median_json, parse_json, truthy};
use crate::spread::grouped;

/// A ramp's files as the script left them.
#[derive(Debug, Clone)]
pub struct RampFile {
    /// The report's file name without `.json`: `SYSTEM-RUN`.
    pub name: String,
    /// The ramp report (`sealcast-viewers --json`).
    pub text: String,
    /// The `.counted` file beside it, when there is one.
    pub counted: Option<String>,
}

/// The ramps in `dir`: every `*.json` there, in the order of their names.
pub fn read(dir: &Path) -> anyhow::Result<Vec<RampFile>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let path = entry.with_context(|| dir.display().to_string())?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        // As glob's `*.json`: not the hidden files.
        let Some(stem) = name
            .strip_suffix(".json")
            .filter(|_| !name.starts_with('.'))
        else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        let read = |p: &Path| std::fs::read_to_string(p).with_context(|| p.display().to_string());
        let counted = path.with_extension("counted");
        files.push(RampFile {
            name: stem.to_owned(),
            text: read(&path)?,
            counted: counted.is_file().then(|| read(&counted)).transpose()?,
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// One ramp of a system.
#[derive(Debug, Clone)]
pub struct Ramp {
    /// The run it was part of.
    pub run: i64,
    /// Its report.
    pub report: Value,
    /// What its `.counted` file says, if there is one.
    pub counted: Option<String>,
}

/// The ramps of each system, the systems in the order their first file comes (as the
/// Python's dict), each system's ramps in the order of their runs.
pub fn by_system(files: &[RampFile]) -> anyhow::Result<Vec<(String, Vec<Ramp>)>> {
    let mut per: Vec<(String, Vec<Ramp>)> = Vec::new();
    for file in files {
        let (system, run) = file
            .name
            .rsplit_once('-')
            .with_context(|| format!("{}.json: not SYSTEM-RUN.json", file.name))?;
        let run = run
            .parse()
            .with_context(|| format!("{}.json: run {run:?}", file.name))?;
        let report =
            parse_json(&file.text).with_context(|| format!("{}.json is not JSON", file.name))?;
        let ramp = Ramp {
            run,
            report,
            counted: file.counted.clone(),
        };
        match per.iter_mut().find(|(s, _)| s == system) {
            Some((_, ramps)) => ramps.push(ramp),
            None => per.push((system.to_owned(), vec![ramp])),
        }
    }
    for (_, ramps) in &mut per {
        ramps.sort_by_key(|r| r.run);
    }
    Ok(per)
}

/// A ramp judged: what the raw results say of it (`run`, `capacity`, `exact`,
/// `limited_by` and the rest), and the ramp's report.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The run's entry in the raw results.
    pub entry: Map<String, Value>,
    /// The ramp's report, as the raw results keep it.
    pub ramp: Value,
}

impl Judged {
    /// The run it was part of.
    pub fn run(&self) -> i64 {
        self.entry.get("run").and_then(Value::as_i64).unwrap_or(0)
    }

    /// The viewers of the last step that passed.
    pub fn capacity(&self) -> &Value {
        self.entry.get("capacity").unwrap_or(&Value::Null)
    }

    /// Whether the count is the server's (not a lower bound).
    pub fn exact(&self) -> bool {
        self.entry.get("exact").and_then(Value::as_bool) == Some(true)
    }

    /// Why the ramp stopped.
    pub fn limited_by(&self) -> &str {
        self.entry
            .get("limited_by")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// A figure of the last step that passed; none without one.
    pub fn at_capacity(&self, key: &str) -> Option<&Value> {
        self.entry.get("at_capacity")?.get(key)
    }
}

/// Each system's ramps as the raw results keep them, by system.
pub fn raw(per: &[(String, Vec<Judged>)]) -> serde_json::Map<String, Value> {
    per.iter()
        .map(|(s, xs)| {
            let ramps = xs.iter().map(|x| x.ramp.clone()).collect();
            (s.clone(), Value::Array(ramps))
        })
        .collect()
}

/// The judged ramps of `system` (none when it has none).
pub fn of<'a>(per: &'a [(String, Vec<Judged>)], system: &str) -> &'a [Judged] {
    per.iter()
        .find(|(s, _)| s == system)
        .map_or(&[][..], |(_, xs)| xs.as_slice())
}

/// Each judged ramp by its run.
pub fn by_run(xs: &[Judged]) -> BTreeMap<i64, &Judged> {
    xs.iter().map(|x| (x.run(), x)).collect()
}

/// The runs where both ramps' counts are exact and the peer's is not 0, in order.
pub fn both_exact(ours: &BTreeMap<i64, &Judged>, peer: &BTreeMap<i64, &Judged>) -> Vec<i64> {
    ours.iter()
        .filter_map(|(r, o)| {
            let p = peer.get(r)?;
            (o.exact() && p.exact() && truthy(p.capacity())).then_some(*r)
        })
        .collect()
}

/// `a / b` of two JSON numbers, as Python's `/`.
pub fn divide(a: &Value, b: &Value) -> Value {
    let (a, b) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
    json!(a / b)
}

/// `v` or, when Python takes it for false, 0 (Python's `v or 0`).
pub(crate) fn or_zero(v: &Value) -> Value {
    if truthy(v) {
        v.clone()
    } else {
        json!(0)
    }
}

/// `v[key]`, null when `v` has none (Python's `(v or {}).get(key)`).
fn get<'a>(v: Option<&'a Value>, key: &str) -> &'a Value {
    v.and_then(|v| v.get(key)).unwrap_or(&Value::Null)
}

/// An LL-HLS ramp (`bench/llhls-common.sh`'s) judged: its count, whether the count is the
/// server's (exact) or a lower bound, and why; the load generator was short of CPU when
/// the step that failed issued requests more than `lag_limit_ms` late at p99 or core 1 was
/// `gen_busy` busy.
pub fn judge_ll(
    report: &Value,
    lag_limit_ms: f64,
    gen_busy: f64,
) -> anyhow::Result<Map<String, Value>> {
    let steps = report["steps"].as_array().context("a ramp without steps")?;
    let mut got = Map::new();
    got.insert("capacity".into(), report["capacity"].clone());
    got.insert("steps_run".into(), json!(steps.len()));
    if let Some(s) = steps.iter().rev().find(|s| truthy(&s["passed"])) {
        let ll = s.get("ll").filter(|ll| truthy(ll));
        let cpu = or_zero(&s["cpu"]["watched"]);
        let viewers = &s["viewers"];
        let per_viewer: Map<String, Value> = get(ll, "requests_per_sec")
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), divide(v, viewers)))
            .collect();
        let per_cpu = if cpu.as_f64().unwrap_or(0.0) > 0.0 {
            divide(viewers, &cpu)
        } else {
            Value::Null
        };
        let of = |what: &str, key: &str| get(Some(get(ll, what)), key).clone();
        got.insert(
            "at_capacity".into(),
            json!({
                "viewers": viewers, "server_cpu": cpu, "generator_cpu": s["cpu"]["own"],
                "viewers_per_cpu": per_cpu,
                "part_ttfb_p99_ms": of("part_ttfb", "p99_ms"),
                "reload_wait_p50_ms": of("reload_wait", "p50_ms"),
                "latency_p50_ms": of("latency", "p50_ms"),
                "latency_p99_ms": of("latency", "p99_ms"),
                "requests_per_viewer_sec": per_viewer,
            }),
        );
    }
    let viewers = report
        .get("per_viewer")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let lat: Vec<Value> = viewers
        .iter()
        .map(|v| get(Some(v), "latency_p50_ms").clone())
        .filter(|v| !v.is_null())
        .collect();
    let count = |key: &str| viewers.iter().filter(|v| truthy(&v[key])).count();
    got.insert(
        "viewers_seen".into(),
        json!({"viewers": viewers.len(), "stalled": count("stalls"), "failed": count("failed"),
               "latency_p50_ms_median": median_json(&lat)}),
    );
    if !truthy(&report["ended_on_failure"]) {
        got.insert("exact".into(), json!(false));
        got.insert("limited_by".into(), json!("ramp ceiling (MAX_VIEWERS)"));
        return Ok(got);
    }
    let f = steps.last().context("a ramp that failed without steps")?;
    let cores_busy = f["cpu"]["cores"].as_array().cloned().unwrap_or_default();
    got.insert(
        "failed_step".into(),
        json!({"viewers": f["viewers"], "verdict": f["verdict"], "errors": f["errors"],
               "ll": get(Some(f), "ll"), "issue_lag_p99_ms": f["issue_lag_p99_ms"],
               "server_cpu": f["cpu"]["watched"], "generator_cpu": f["cpu"]["own"],
               "cores_busy": cores_busy}),
    );
    let busy = |i: usize| cores_busy.get(i).and_then(Value::as_f64);
    let verdict = f["verdict"]
        .as_str()
        .map_or_else(|| f["verdict"].to_string(), str::to_owned);
    let (exact, why) = if f["issue_lag_p99_ms"].as_f64().unwrap_or(0.0) > lag_limit_ms
        || (cores_busy.len() > 1 && busy(1).unwrap_or(0.0) >= gen_busy)
    {
        (false, "load generator".to_owned())
    } else if or_zero(&f["cpu"]["watched"]).as_f64().unwrap_or(0.0) >= 0.9
        || busy(0).unwrap_or(0.0) >= 0.9
    {
        (true, format!("server CPU ({verdict})"))
    } else {
        (
            true,
            format!("server latency, core 0 not saturated ({verdict})"),
        )
    };
    got.insert("exact".into(), json!(exact));
    got.insert("limited_by".into(), json!(why));
    Ok(got)
}

/// The peer against itself: its count over the next run's, for each two consecutive runs
/// whose counts are both exact (the second not 0).
pub fn against_itself(peer: &BTreeMap<i64, &Judged>) -> Vec<Value> {
    let pe: Vec<&Judged> = peer.values().copied().collect();
    pe.windows(2)
        .filter(|w| w[0].exact() && w[1].exact() && truthy(w[1].capacity()))
        .map(|w| divide(w[0].capacity(), w[1].capacity()))
        .collect()
}

/// A system's counts as the tables print them: "median (min–max)", and when some are
/// lower bounds, how many and why (`lower_bound`: what a table calls one, "a lower bound"
/// or "runs a lower bound"); a "≥ " before it when all are; "-" without ramps.
pub fn count_text(xs: &[Judged], lower_bound: &str) -> String {
    if xs.is_empty() {
        return "-".to_owned();
    }
    let caps: Vec<Value> = xs.iter().map(|x| x.capacity().clone()).collect();
    let numbers: Vec<f64> = caps.iter().filter_map(Value::as_f64).collect();
    let int = |x: f64| grouped(Some(x), 0);
    let mut text = format!(
        "{} ({}–{})",
        grouped(median_json(&caps).as_f64(), 0),
        int(numbers.iter().copied().fold(f64::INFINITY, f64::min)),
        int(numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
    );
    let lower: Vec<&Judged> = xs.iter().filter(|x| !x.exact()).collect();
    if !lower.is_empty() {
        let why: BTreeSet<&str> = lower.iter().map(|x| x.limited_by()).collect();
        let all = if lower.len() == xs.len() { "≥ " } else { "" };
        text = format!(
            "{all}{text}; {} of {} {lower_bound} ({})",
            lower.len(),
            xs.len(),
            why.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    text
}

/// The first line a program printed about its version (`nginx -v`, `haproxy -v`),
/// trimmed.
pub fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}

/// nginx as the sections name it: its version line without "nginx version: ".
pub fn nginx_name(version: &str) -> String {
    version.replace("nginx version: ", "")
}

/// HAProxy as the sections name it: "HAProxy" and the word after "version " in its
/// version line, when there is one.
pub fn haproxy_name(version: &str) -> String {
    let word = version.match_indices("version ").find_map(|(i, m)| {
        let rest = &version[i + m.len()..];
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        (end > 0).then(|| &rest[..end])
    });
    word.map_or_else(|| "HAProxy".to_owned(), |w| format!("HAProxy {w}"))
}

/// A report's raw results without its ramps, the ramps, and the Python's raw results
/// (`python`, its text) to compare the first with.
#[cfg(test)]
pub(crate) fn raw_and_ramps(report: &super::Report, python: &str) -> (Value, Value, Value) {
    let mut raw = report.raw.clone();
    let ramps = raw
        .as_object_mut()
        .and_then(|o| o.remove("raw"))
        .expect("raw");
    (raw, ramps, parse_json(python).expect("JSON"))
}

/// The ramps of a test's bundle (`{"SYSTEM-RUN": {"ramp": …, "counted": "…"}}`), as
/// [`read`] gives them from a directory.
#[cfg(test)]
pub(crate) fn from_bundle(bundle: &str) -> Vec<RampFile> {
    let bundle = parse_json(bundle).expect("a bundle");
    let Value::Object(bundle) = bundle else {
        panic!("a bundle is an object")
    };
    bundle
        .into_iter()
        .filter_map(|(name, e)| {
            Some(RampFile {
                name,
                text: e.get("ramp")?.to_string(),
                counted: e.get("counted").and_then(Value::as_str).map(str::to_owned),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn judged(run: i64, capacity: u64, exact: bool, why: &str) -> Judged {
        let entry = json!({"run": run, "capacity": capacity, "exact": exact, "limited_by": why});
        Judged {
            entry: entry.as_object().cloned().unwrap_or_default(),
            ramp: Value::Null,
        }
    }

    #[test]
    fn counts_print_as_the_tables_print_them() {
        assert_eq!(count_text(&[], "a lower bound"), "-");
        let xs = [
            judged(1, 1000, true, "server"),
            judged(2, 1563, false, "load generator"),
            judged(3, 9000, false, "ramp ceiling (MAX_VIEWERS)"),
            judged(4, 1250, true, "server"),
        ];
        assert_eq!(
            count_text(&xs, "runs a lower bound"),
            "1,406 (1,000–9,000); 2 of 4 runs a lower bound (load generator, ramp ceiling \
             (MAX_VIEWERS))"
        );
        assert_eq!(
            count_text(&xs[1..2], "a lower bound"),
            "≥ 1,563 (1,563–1,563); 1 of 1 a lower bound (load generator)"
        );
        let runs = by_run(&xs);
        assert_eq!(both_exact(&runs, &runs), [1, 4]);
        assert_eq!(against_itself(&runs), Vec::<Value>::new());
    }

    #[test]
    fn peers_are_named_from_their_versions() {
        assert_eq!(
            haproxy_name("HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/"),
            "HAProxy 2.6.12-1+deb12u4"
        );
        assert_eq!(haproxy_name("sh: haproxy: not found"), "HAProxy");
        assert_eq!(haproxy_name("version  x version 3"), "HAProxy 3");
        assert_eq!(nginx_name("nginx version: nginx/1.22.1"), "nginx/1.22.1");
        assert_eq!(first_line("  a b \nc\n"), "a b");
        assert_eq!(first_line(""), "");
    }

    #[test]
    fn ramps_group_by_system_in_run_order() {
        let file = |name: &str| RampFile {
            name: name.to_owned(),
            text: "{}".to_owned(),
            counted: None,
        };
        let files = [
            file("lb-10"),
            file("lb-1w-1"),
            file("lb-9"),
            file("haproxy-1"),
        ];
        let per = by_system(&files).expect("grouped");
        let order: Vec<(&str, Vec<i64>)> = per
            .iter()
            .map(|(s, r)| (s.as_str(), r.iter().map(|r| r.run).collect()))
            .collect();
        assert_eq!(
            order,
            [
                ("lb", vec![9, 10]),
                ("lb-1w", vec![1]),
                ("haproxy", vec![1])
            ]
        );
        assert!(by_system(&[file("nodash")]).is_err());
        assert!(by_system(&[file("lb-x")]).is_err());
    }
}
