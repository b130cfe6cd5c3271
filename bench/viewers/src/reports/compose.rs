//! The report of `bench/compose.sh`: the compose cluster in containers (start, scale-out,
//! the floating address's failover) and what each service costs idle and with one stream,
//! beside `sealcast up` in one process. It was a Python report
//! (`bench/lib/reports/compose.py`, in git history before this module), whose text it
//! writes.

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::{json, Value};

use super::python::python_number;
use super::{json_lines, Report};
use crate::spread::{spread, text};

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## Compose cluster in containers";

/// What the script measured, as it hands it over (`sealcast-bench report compose`'s
/// options).
#[derive(Debug, clap::Args)]
pub struct Run {
    /// Rounds run.
    #[arg(long)]
    pub runs: u64,
    /// `init-cluster.sh`'s seconds with the images made cold, as the script wrote them
    /// (`null`: not measured).
    #[arg(long)]
    pub cold: String,
    /// `init-cluster.sh`'s seconds with the images cached.
    #[arg(long)]
    pub warm: f64,
    /// Each round's timings, a JSON object a line.
    #[arg(long)]
    pub rounds: String,
    /// `docker stats` of every container idle, a JSON object a line (`service`, `cpu`
    /// "0.29%", `mem` "39.05MiB").
    #[arg(long)]
    pub idle: String,
    /// The same with one stream.
    #[arg(long)]
    pub streaming: String,
    /// `sealcast up`'s process idle: `{"rss_kib", "cpu_percent"}`.
    #[arg(long)]
    pub process_idle: String,
    /// The same with one stream.
    #[arg(long)]
    pub process_stream: String,
    /// The compose command (`docker-compose`).
    #[arg(long)]
    pub tool: String,
}

/// `docker stats`' memory ("39.05MiB", "1.2GiB", "512KiB", "13MiB") in MiB.
fn mib(text: &str) -> anyhow::Result<f64> {
    let number = text.trim_end_matches(['K', 'M', 'G', 'i', 'B']).trim();
    let unit = text.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    let n: f64 = number.parse().with_context(|| format!("memory {text:?}"))?;
    Ok(n * match unit {
        "KiB" => 1.0 / 1024.0,
        "GiB" => 1024.0,
        "B" => 1.0 / 1_048_576.0,
        _ => 1.0,
    })
}

/// Per service: containers, CPU % summed, MiB summed.
fn by_service(rows: &[Value]) -> anyhow::Result<BTreeMap<String, (u64, f64, f64)>> {
    let mut out: BTreeMap<String, (u64, f64, f64)> = BTreeMap::new();
    for r in rows {
        let s = |k: &str| {
            r.get(k)
                .and_then(Value::as_str)
                .with_context(|| format!("{k} of {r}"))
        };
        let cpu: f64 = s("cpu")?
            .trim_end_matches('%')
            .parse()
            .with_context(|| format!("cpu of {r}"))?;
        let mem = mib(s("mem")?)?;
        let e = out.entry(s("service")?.to_owned()).or_default();
        *e = (e.0 + 1, e.1 + cpu, e.2 + mem);
    }
    Ok(out)
}

/// The report of a run.
pub fn report(run: &Run) -> anyhow::Result<Report> {
    let rounds = json_lines("a round", &run.rounds)?;
    let idle = json_lines("a container idle", &run.idle)?;
    let streaming = json_lines("a container with one stream", &run.streaming)?;
    let p_idle: Value = serde_json::from_str(&run.process_idle).context("the process idle")?;
    let p_stream: Value =
        serde_json::from_str(&run.process_stream).context("the process with one stream")?;
    let cold: Value = serde_json::from_str(&run.cold).context("the cold start's seconds")?;
    let med = |key: &str| {
        text(
            spread(rounds.iter().map(|r| r.get(key).and_then(Value::as_f64))),
            2,
        )
    };
    let (ti, ts) = (by_service(&idle)?, by_service(&streaming)?);
    let runs = run.runs;
    let mut lines = vec![
        HEADING.to_owned(),
        String::new(),
        format!(
            "`bench/compose.sh {runs}` with `{}` on this machine's Docker engine (images made \
             from Debian's packages by the init script; {runs} rounds, median (min–max)).",
            run.tool
        ),
        String::new(),
        "| what | seconds |".to_owned(),
        "|---|---|".to_owned(),
        format!(
            "| `init-cluster.sh`, images cold (debootstrap and every image) | {} |",
            if run.cold == "null" {
                "not measured this run (BENCH_COLD=1)"
            } else {
                &run.cold
            }
        ),
        format!("| `init-cluster.sh`, images cached | {:.1} |", run.warm),
        format!("| `up -d` to every service healthy | {} |", med("up_to_healthy_s")),
        format!(
            "| `up -d` to the first playable master playlist (demo1 through lb1's HTTPS port) | {} |",
            med("up_to_master_s")
        ),
        format!(
            "| `--scale broadcast=6` to the first new viewer on a new edge | {} |",
            med("scale_to_new_edge_s")
        ),
        format!(
            "| floating address: holder SIGKILLed to the address on the other balancer | {} |",
            med("failover_moved_s")
        ),
        format!(
            "| floating address: holder SIGKILLed to the first answer through it | {} |",
            med("failover_answered_s")
        ),
        String::new(),
        "CPU (% of one core) and RSS per container, `docker stats`, idle (no stream: the test \
         sources stopped) and with one 1280x720 stream from `source1` through the whole ladder:"
            .to_owned(),
        String::new(),
        "| service | containers | CPU idle | RSS idle (MiB) | CPU one stream | RSS one stream (MiB) |"
            .to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
    ];
    let mut total = [0.0; 4];
    let services: std::collections::BTreeSet<&String> = ti.keys().chain(ts.keys()).collect();
    for service in services {
        let a = ti.get(service).copied().unwrap_or_default();
        let b = ts.get(service).copied().unwrap_or_default();
        lines.push(format!(
            "| {service} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            a.0.max(b.0),
            a.1,
            a.2,
            b.1,
            b.2
        ));
        total = [
            total[0] + a.1,
            total[1] + a.2,
            total[2] + b.1,
            total[3] + b.2,
        ];
    }
    lines.push(format!(
        "| **all containers** | | {:.1} | {:.1} | {:.1} | {:.1} |",
        total[0], total[1], total[2], total[3]
    ));
    let rss = |p: &Value| p.get("rss_kib").and_then(Value::as_f64).unwrap_or(f64::NAN) / 1024.0;
    lines.push(format!(
        "| `sealcast up --broadcast 3` (one process, embedded broker, SQLite) | 1 | {} | {:.1} | {} | {:.1} |",
        python_number(&p_idle["cpu_percent"]),
        rss(&p_idle),
        python_number(&p_stream["cpu_percent"]),
        rss(&p_stream)
    ));
    lines.extend(
        [
            "",
            "Run it with `sudo bench/compose.sh [RUNS]` (`BENCH_COLD=1` to make the images again first).",
        ]
        .map(str::to_owned),
    );
    Ok(Report {
        section: lines.join("\n") + "\n",
        heading: HEADING,
        after: None,
        raw: json!({
            "runs": runs, "init_cold_s": cold, "init_warm_s": run.warm, "rounds": rounds,
            "containers_idle": idle, "containers_one_stream": streaming,
            "process_idle": p_idle, "process_one_stream": p_stream, "compose": run.tool,
        }),
        refusal: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(v: &Value) -> String {
        v.as_array()
            .expect("a list")
            .iter()
            .map(|x| x.to_string() + "\n")
            .collect()
    }

    /// The raw results of the run in `docs/benchmarks.md` (ce56c7d's
    /// bench/results/compose.json), handed over as the script hands them, give the section
    /// the Python report wrote there.
    #[test]
    fn the_committed_run_gives_the_section_the_python_report_wrote() {
        let raw: Value =
            serde_json::from_str(include_str!("testdata/compose-ce56c7d.json")).expect("JSON");
        let run = Run {
            runs: 5,
            cold: raw["init_cold_s"].to_string(),
            warm: raw["init_warm_s"].as_f64().expect("warm"),
            rounds: lines_of(&raw["rounds"]),
            idle: lines_of(&raw["containers_idle"]),
            streaming: lines_of(&raw["containers_one_stream"]),
            process_idle: raw["process_idle"].to_string(),
            process_stream: raw["process_one_stream"].to_string(),
            tool: "docker-compose".to_owned(),
        };
        let report = report(&run).expect("a report");
        let want = "\
## Compose cluster in containers

`bench/compose.sh 5` with `docker-compose` on this machine's Docker engine (images made from Debian's packages by the init script; 5 rounds, median (min–max)).

| what | seconds |
|---|---|
| `init-cluster.sh`, images cold (debootstrap and every image) | 188.01 |
| `init-cluster.sh`, images cached | 2.1 |
| `up -d` to every service healthy | 19.07 (19.03–19.78) |
| `up -d` to the first playable master playlist (demo1 through lb1's HTTPS port) | 22.94 (21.51–23.48) |
| `--scale broadcast=6` to the first new viewer on a new edge | 3.70 (3.29–4.94) |
| floating address: holder SIGKILLed to the address on the other balancer | 0.96 (0.83–1.13) |
| floating address: holder SIGKILLed to the first answer through it | 1.31 (1.10–1.75) |

CPU (% of one core) and RSS per container, `docker stats`, idle (no stream: the test sources stopped) and with one 1280x720 stream from `source1` through the whole ladder:

| service | containers | CPU idle | RSS idle (MiB) | CPU one stream | RSS one stream (MiB) |
|---|---|---|---|---|---|
| broadcast | 3 | 0.9 | 117.8 | 5.5 | 152.5 |
| ingest1 | 1 | 0.1 | 44.7 | 71.6 | 128.4 |
| ingest2 | 1 | 0.1 | 47.3 | 0.1 | 47.6 |
| lb1 | 1 | 3.0 | 22.2 | 1.1 | 21.9 |
| lb2 | 1 | 0.7 | 21.5 | 0.8 | 21.4 |
| mosquitto | 1 | 3.6 | 11.1 | 0.5 | 13.0 |
| postgres | 1 | 3.3 | 109.9 | 0.2 | 110.8 |
| prometheus | 1 | 3.6 | 20.3 | 0.3 | 20.3 |
| source1 | 1 | 0.0 | 0.0 | 49.7 | 119.9 |
| **all containers** | | 15.3 | 394.8 | 129.7 | 635.9 |
| `sealcast up --broadcast 3` (one process, embedded broker, SQLite) | 1 | 0.4 | 63.3 | 63.9 | 236.8 |

Run it with `sudo bench/compose.sh [RUNS]` (`BENCH_COLD=1` to make the images again first).
";
        assert_eq!(report.section, want);
        assert_eq!(report.raw["rounds"], raw["rounds"]);
        let unmeasured = Run {
            cold: "null".to_owned(),
            ..run
        };
        let section = super::report(&unmeasured).expect("a report").section;
        assert!(section.contains("| not measured this run (BENCH_COLD=1) |"));
    }

    #[test]
    fn memory_reads_in_every_unit_docker_prints() {
        for (text, want) in [
            ("39.05MiB", 39.05),
            ("13MiB", 13.0),
            ("1.5GiB", 1536.0),
            ("512KiB", 0.5),
            ("1048576B", 1.0),
        ] {
            assert!((mib(text).expect(text) - want).abs() < 1e-9, "{text}");
        }
        assert!(mib("lots").is_err());
        assert_eq!(python_number(&json!(0.4)), "0.4");
        assert_eq!(python_number(&json!(12.0)), "12.0");
        assert_eq!(python_number(&json!(3)), "3");
    }
}
