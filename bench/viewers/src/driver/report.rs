//! The driver's `report` family: a run's report, each from what its script measured
//! ([`crate::reports`]). [`report`] writes the raw results (`bench/out/<name>.json` or
//! `--results`), prints the section and puts it in the doc as `doc` does; `run` hands
//! its benchmarks' measurements to it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use clap::Subcommand;

use super::common::{read, say};
use super::doc::{put, Block};
use crate::reports;

/// The reports `report` makes, each from what its script measured.
#[derive(Debug, Subcommand)]
pub(super) enum ReportCmd {
    /// bench/moq-cost.sh's.
    MoqCost {
        /// The run's measurements, one JSON object a line.
        runs: PathBuf,
        /// The viewers the script was given (default: what the runs say).
        #[arg(long)]
        viewers: Option<String>,
        /// The runs the script was given (default: how many runs measured each pair).
        #[arg(long)]
        runs_given: Option<String>,
        /// The day of the run, as the section prints it (`date -u +%F`).
        #[arg(long)]
        date: String,
        /// The second relay's flags, when the run had one.
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        variant: String,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/dvr-seek.sh's.
    DvrSeek {
        /// What `sealcast-dvr-seek` printed.
        result: PathBuf,
        #[command(flatten)]
        run: reports::dvr_seek::Run,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/ladder.sh's (fails when the outputs are not like for like).
    Ladder {
        /// The script's work directory: `runs`, `quality` and the first run's outputs.
        work: PathBuf,
        #[command(flatten)]
        run: reports::ladder::Run,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/ladder-codecs.sh's.
    LadderCodecs {
        /// The script's work directory: `samples.jsonl`, and per codec
        /// `src-CODEC.m3u8` and `master-CODEC.m3u8`.
        work: PathBuf,
        /// How long each codec was published.
        #[arg(long)]
        seconds: u64,
        /// The codecs, in the order the table lists them.
        #[arg(required = true)]
        codecs: Vec<String>,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/ll-quality.sh's.
    LlQuality {
        /// The encodes, one a line (see `viewers::reports::ll_quality`).
        encodes: PathBuf,
        /// The source's length.
        #[arg(long)]
        seconds: u64,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/compose.sh's.
    Compose {
        #[command(flatten)]
        run: reports::compose::Run,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/push-bytes.sh's.
    PushBytes {
        /// The measurements, one JSON object a line (`sample push-bytes`').
        results: PathBuf,
        #[command(flatten)]
        run: reports::push_bytes::Run,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/lb.sh's.
    Lb {
        /// The loads, one JSON object a line.
        results: PathBuf,
        /// Our load balancer's `/metrics` after the runs.
        metrics: PathBuf,
        #[command(flatten)]
        run: reports::lb::Run,
        /// The HAProxy measured (what its `-v` says goes in the raw results).
        #[arg(long, default_value = "haproxy")]
        haproxy: String,
        /// The nginx of the backends (likewise, `-v`).
        #[arg(long, default_value = "nginx")]
        nginx: String,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/lb-profile.sh's (fails when more than 5 % of a load's requests failed).
    LbProfile {
        /// The script's work directory: `cg.NAME.KIND.txt` and `cg.NAME.KIND.h2load`.
        work: PathBuf,
        #[command(flatten)]
        run: reports::lb_profile::Run,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/memory.sh's.
    Memory {
        /// The measurements, one a line: run, target, RSS before and after, open, failed.
        raw: PathBuf,
        /// The TLS each TLS target negotiated, one a line.
        ciphers: PathBuf,
        #[command(flatten)]
        run: reports::memory::Run,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/stream-memory.sh's.
    StreamMemory {
        /// The points and runs, one JSON object a line.
        raw: PathBuf,
        #[command(flatten)]
        run: reports::stream_memory::Run,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/edge.sh's.
    Edge {
        /// The loads measured, one JSON object a line.
        results: PathBuf,
        #[command(flatten)]
        run: reports::edge::Run,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/latency.sh's.
    Latency {
        /// The runs, one `sealcast-glass` record a line with its system and round.
        runs: PathBuf,
        /// The LL node's metrics before the runs (`{"at", "m"}`).
        before: PathBuf,
        /// And after.
        after: PathBuf,
        #[command(flatten)]
        run: reports::latency::Run,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/ingest-latency.sh's (MoQ mode's with `--transports "moq hls"`).
    IngestLatency {
        /// The runs, one `sealcast-glass` record a line with its round, protocol and
        /// transport.
        runs: PathBuf,
        #[command(flatten)]
        run: reports::ingest_latency::Run,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/c2pa-overhead.sh's.
    C2paOverhead {
        /// What `c2pa_overhead.py measure` printed.
        measured: PathBuf,
        #[command(flatten)]
        run: reports::c2pa_overhead::Run,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/archive-disk.sh's.
    ArchiveDisk {
        /// What `sample archive-disk` printed.
        result: PathBuf,
        /// The day of the run, as the section prints it (`date +%F`).
        #[arg(long)]
        date: String,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/capacity.sh's.
    Capacity {
        /// The ramps: `SYSTEM-RUN.json` per system and run.
        ramps: PathBuf,
        #[command(flatten)]
        run: reports::capacity::Run,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/llhls-cdn.sh's.
    LlhlsCdn {
        /// The runs: `SYSTEM-RUN.json`, `.times` and `.samples` per system and run.
        runs_dir: PathBuf,
        #[command(flatten)]
        run: reports::llhls_cdn::Run,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/llhls-node.sh's and bench/llhls-lb.sh's (bench/llhls-common.sh runs it).
    Llhls {
        /// The ramps: `SYSTEM-RUN.json` (and `SYSTEM-RUN.counted`) per system and run.
        ramps: PathBuf,
        #[command(flatten)]
        run: reports::llhls_common::Run,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/viewer-verify.sh's.
    ViewerVerify {
        /// The viewers' records, one JSON object a line.
        runs: PathBuf,
        #[command(flatten)]
        run: reports::Rounds,
        #[command(flatten)]
        out: ReportOut,
    },
    /// bench/publish-latency.sh's.
    PublishLatency {
        /// What `sample publish-latency` printed.
        raw: PathBuf,
        /// The day of the report, as the section prints it (`date +%F`).
        #[arg(long)]
        date: String,
        #[command(flatten)]
        out: ReportOut,
    },
}

/// Where a report goes besides the raw results and stdout.
#[derive(Debug, clap::Args)]
pub(super) struct ReportOut {
    /// Print the section only; the doc is left as it is.
    #[arg(long)]
    pub(super) no_doc: bool,
    /// Where the raw results go (default: the report's `bench/out/<name>.json`).
    #[arg(long = "results", value_name = "FILE")]
    pub(super) results_file: Option<PathBuf>,
}

/// Writes a report: the raw results, the section on stdout and in the doc `docs` (unless
/// told not to); fails when the report refuses the run.
pub(super) fn report(docs: &Path, which: ReportCmd) -> anyhow::Result<()> {
    let (script, results, report, out) = match which {
        ReportCmd::MoqCost {
            runs,
            viewers,
            runs_given,
            date,
            variant,
            out,
        } => {
            let notes = std::fs::read_to_string("bench/moq-cost-notes.md").ok();
            let run = reports::moq_cost::Run {
                viewers,
                runs: runs_given,
                variant,
                date,
                notes,
            };
            let report = reports::moq_cost::report(&read(&runs)?, &run)?;
            ("bench/moq-cost.sh", "bench/out/moq-cost.json", report, out)
        }
        ReportCmd::DvrSeek { result, run, out } => {
            let notes = std::fs::read_to_string("bench/dvr-seek-notes.md").ok();
            let report = reports::dvr_seek::report(&read(&result)?, &run, notes.as_deref())?;
            ("bench/dvr-seek.sh", "bench/out/dvr-seek.json", report, out)
        }
        ReportCmd::Ladder { work, run, out } => {
            let notes = std::fs::read_to_string("bench/ladder-notes.md").ok();
            let report = reports::ladder::report(
                &read(&work.join("runs"))?,
                &read(&work.join("quality"))?,
                &reports::ladder::outputs(&work)?,
                &run,
                notes.as_deref(),
            )?;
            let results = reports::ladder::results_file(run.parts != 0);
            ("bench/ladder.sh", results, report, out)
        }
        ReportCmd::LadderCodecs {
            work,
            seconds,
            codecs,
            out,
        } => {
            let playlists = codecs
                .into_iter()
                .map(|codec| {
                    Ok(reports::ladder_codecs::Playlists {
                        src: read(&work.join(format!("src-{codec}.m3u8")))?,
                        master: read(&work.join(format!("master-{codec}.m3u8")))?,
                        codec,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let samples = read(&work.join("samples.jsonl"))?;
            let report = reports::ladder_codecs::report(&samples, &playlists, seconds)?;
            let results = "bench/out/ladder-codecs.json";
            ("bench/ladder-codecs.sh", results, report, out)
        }
        ReportCmd::LlQuality {
            encodes,
            seconds,
            out,
        } => {
            let report = reports::ll_quality::report(&read(&encodes)?, seconds)?;
            let results = "bench/out/ll-quality.json";
            ("bench/ll-quality.sh", results, report, out)
        }
        ReportCmd::Compose { run, out } => {
            let report = reports::compose::report(&run)?;
            ("bench/compose.sh", "bench/out/compose.json", report, out)
        }
        ReportCmd::PushBytes { results, run, out } => {
            let notes = std::fs::read_to_string("bench/push-bytes-notes.md").ok();
            let report = reports::push_bytes::report(&read(&results)?, &run, notes.as_deref())?;
            (
                "bench/push-bytes.sh",
                "bench/out/push-bytes.json",
                report,
                out,
            )
        }
        ReportCmd::Lb {
            results,
            metrics,
            run,
            haproxy,
            nginx,
            out,
        } => {
            let notes = std::fs::read_to_string("bench/lb-notes.md").ok();
            let versions = reports::lb::Versions {
                haproxy: version(&haproxy, "-v")?,
                h2load: version("h2load", "--version")?,
                nginx: version(&nginx, "-v")?,
            };
            let (rows, metrics) = (read(&results)?, read(&metrics)?);
            let report = reports::lb::report(&rows, &metrics, &run, &versions, notes.as_deref())?;
            ("bench/lb.sh", "bench/out/lb.json", report, out)
        }
        ReportCmd::LbProfile { work, run, out } => {
            let notes = std::fs::read_to_string("bench/lb-profile-notes.md").ok();
            let profiles = reports::lb_profile::profiles(&work)?;
            let valgrind = version("valgrind", "--version")?;
            let report = reports::lb_profile::report(&profiles, &run, &valgrind, notes.as_deref())?;
            for line in reports::lb_profile::summary(&report.raw) {
                say(&line);
            }
            let results = "bench/out/lb-profile.json";
            ("bench/lb-profile.sh", results, report, out)
        }
        ReportCmd::Memory {
            raw,
            ciphers,
            run,
            out,
        } => {
            let notes = read(Path::new("bench/memory-notes.md"))?;
            let report = reports::memory::report(&read(&raw)?, &read(&ciphers)?, &run, &notes)?;
            ("bench/memory.sh", "bench/out/memory.json", report, out)
        }
        ReportCmd::StreamMemory { raw, run, out } => {
            let notes = std::fs::read_to_string("bench/stream-memory-notes.md").ok();
            let report = reports::stream_memory::report(&read(&raw)?, &run, notes.as_deref())?;
            let results = "bench/out/stream-memory.json";
            ("bench/stream-memory.sh", results, report, out)
        }
        ReportCmd::Edge { results, run, out } => {
            let notes = std::fs::read_to_string("bench/edge-notes.md").ok();
            let report = reports::edge::report(&read(&results)?, &run, notes.as_deref())?;
            ("bench/edge.sh", "bench/out/edge.json", report, out)
        }
        ReportCmd::Latency {
            runs,
            before,
            after,
            run,
            out,
        } => {
            let report =
                reports::latency::report(&read(&runs)?, &read(&before)?, &read(&after)?, &run)?;
            ("bench/latency.sh", "bench/out/latency.json", report, out)
        }
        ReportCmd::IngestLatency { runs, run, out } => {
            let notes = std::fs::read_to_string(run.notes_file()).ok();
            let report = reports::ingest_latency::report(&read(&runs)?, &run, notes.as_deref())?;
            ("bench/ingest-latency.sh", run.results_file(), report, out)
        }
        ReportCmd::C2paOverhead { measured, run, out } => {
            let notes = std::fs::read_to_string("bench/c2pa-overhead-notes.md").ok();
            let report = reports::c2pa_overhead::report(&read(&measured)?, &run, notes.as_deref())?;
            let results = "bench/out/c2pa-overhead.json";
            ("bench/c2pa-overhead.sh", results, report, out)
        }
        ReportCmd::ArchiveDisk { result, date, out } => {
            let notes = std::fs::read_to_string("bench/archive-disk-notes.md").ok();
            let report = reports::archive_disk::report(&read(&result)?, &date, notes.as_deref())?;
            let results = "bench/out/archive-disk.json";
            ("bench/archive-disk.sh", results, report, out)
        }
        ReportCmd::Capacity { ramps, run, out } => {
            let files = reports::ramps::read(&ramps)?;
            let report = reports::capacity::report(&files, &run)?;
            ("bench/capacity.sh", reports::capacity::RESULTS, report, out)
        }
        ReportCmd::LlhlsCdn { runs_dir, run, out } => {
            use reports::llhls_cdn;
            let notes = std::fs::read_to_string("bench/llhls-cdn-notes.md").ok();
            let files = llhls_cdn::read(&runs_dir, &run.systems, run.runs)?;
            let report = llhls_cdn::report(&files, &run, notes.as_deref())?;
            ("bench/llhls-cdn.sh", llhls_cdn::RESULTS, report, out)
        }
        ReportCmd::Llhls { ramps, run, out } => {
            use reports::llhls_common::{self as llhls, Row};
            let (script, notes) = match run.row {
                Row::Node => ("bench/llhls-node.sh", "bench/llhls-node-notes.md"),
                Row::Lb => ("bench/llhls-lb.sh", "bench/llhls-lb-notes.md"),
            };
            let notes = std::fs::read_to_string(notes).ok();
            let doc_has_node = !out.no_doc
                && std::fs::read_to_string(docs).is_ok_and(|doc| doc.contains(llhls::NODE_SECTION));
            let files = reports::ramps::read(&ramps)?;
            let report = llhls::report(&files, &run, doc_has_node, notes.as_deref())?;
            (script, llhls::results_file(run.row), report, out)
        }
        ReportCmd::ViewerVerify { runs, run, out } => {
            let report = reports::viewer_verify::report(&read(&runs)?, &run)?;
            let results = "bench/out/viewer-verify.json";
            ("bench/viewer-verify.sh", results, report, out)
        }
        ReportCmd::PublishLatency { raw, date, out } => {
            let report = reports::publish_latency::report(&read(&raw)?, &date)?;
            let results = "bench/out/publish-latency.json";
            ("bench/publish-latency.sh", results, report, out)
        }
    };
    let results = out.results_file.unwrap_or_else(|| PathBuf::from(results));
    if let Some(dir) = results.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("making {}", dir.display()))?;
    }
    std::fs::write(&results, serde_json::to_string_pretty(&report.raw)? + "\n")
        .with_context(|| results.display().to_string())?;
    say(report.section.trim_end());
    if !out.no_doc {
        let block = Block {
            script: script.to_owned(),
            heading: report.heading.to_owned(),
            results,
            section: None,
            after: report.after.map(str::to_owned),
            measured: None,
            committed: false,
        };
        put(docs, block, Some(report.section))?;
    }
    if let Some(why) = report.refusal {
        anyhow::bail!(why);
    }
    Ok(())
}

/// The first line `program arg` prints (its standard output, else its standard error),
/// trimmed: a program's version.
fn version(program: &str, arg: &str) -> anyhow::Result<String> {
    let out = Command::new(program)
        .arg(arg)
        .output()
        .with_context(|| format!("running {program} {arg}"))?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    let text = String::from_utf8_lossy(&text);
    let first = text
        .lines()
        .next()
        .with_context(|| format!("{program} {arg} printed nothing"))?;
    Ok(first.trim().to_owned())
}
