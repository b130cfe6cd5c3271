//! `sealcast-bench`: the benchmarks' driver (issue 46 item 4), growing. For now it owns
//! the generated blocks of `docs/benchmarks.md`:
//!
//! - `sealcast-bench doc --script bench/edge.sh --heading '## Edge serving' --results
//!   bench/out/edge.json [--section FILE] [--after HEADING] [--measured COMMIT]`: stamps
//!   the section (the report's text from FILE, else the doc's own) with the raw results'
//!   blob id and the measured commit (default `HEAD`, `dirty=yes` when the measured paths
//!   have changes not committed); see [`viewers::docblock`].
//! - `sealcast-bench stale [--check]`: every block whose measured paths changed in a
//!   commit after the one it names ([`viewers::staleness`]); `--check` exits 1 when any
//!   did.
//! - `sealcast-bench report moq-cost RUNS.jsonl --date YYYY-MM-DD [--viewers N]
//!   [--runs-given N] [--variant FLAGS] [--no-doc]`, `sealcast-bench report ll-quality
//!   ENCODES.tsv --seconds N [--no-doc]`, `sealcast-bench report viewer-verify RUNS.jsonl
//!   --seconds N --rounds N [--no-doc]`, `sealcast-bench report compose --runs N …`,
//!   `sealcast-bench report push-bytes RESULTS.jsonl --seconds N --rounds N --date D`,
//!   `sealcast-bench report capacity RAMPS …`, `sealcast-bench report llhls RAMPS --row
//!   node|lb …`, `sealcast-bench report llhls-cdn RUNS …`: the reports moved out of
//!   `bench/lib/reports/` ([`viewers::reports`]). Each writes the raw results to
//!   `bench/out/<name>.json` (or `--results FILE`), prints the section and puts it in the
//!   doc as `doc` does.
//! - `sealcast-bench sample ladder-codecs …`, `sample llhls-cdn-step RUN.json`, `sample
//!   parts-per-second PLAYLIST`: what a script prints while it measures.
//!
//! Runs git in the current directory (the repository's root, as the scripts do).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use viewers::docblock::{self, Stamp};
use viewers::{reports, staleness};

/// The benchmarks' driver.
#[derive(Debug, Parser)]
#[command(name = "sealcast-bench", version)]
struct Args {
    /// The doc of the benchmarks.
    #[arg(long, default_value = "docs/benchmarks.md", global = true)]
    docs: PathBuf,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Writes or replaces a benchmark's generated block.
    Doc(Block),
    /// A run's report: the raw results, the section, the doc's block.
    #[command(subcommand)]
    Report(Box<ReportCmd>),
    /// One sample of a running measurement, as a JSON line (or a progress line) on stdout.
    #[command(subcommand)]
    Sample(SampleCmd),
    /// Lists the blocks whose measured code changed after their run.
    Stale {
        /// Exit 1 when a block is stale.
        #[arg(long)]
        check: bool,
    },
}

/// The samples `sample` takes while a script measures.
#[derive(Debug, Subcommand)]
enum SampleCmd {
    /// bench/llhls-cdn.sh's after each run: the run's step as one progress line.
    LlhlsCdnStep {
        /// The viewers' report of the run (`sealcast-viewers --json`).
        report: PathBuf,
    },
    /// bench/llhls-cdn.sh's at the end: the parts a media playlist lists per second.
    PartsPerSecond {
        /// The node's media playlist as fetched.
        playlist: PathBuf,
    },
    /// bench/ladder-codecs.sh's: the ingest's CPU and metrics.
    LadderCodecs {
        #[command(flatten)]
        tick: reports::ladder_codecs::Tick,
        /// The node's `/metrics` as fetched now.
        metrics: PathBuf,
    },
}

/// The reports `report` makes, each from what its script measured.
#[derive(Debug, Subcommand)]
enum ReportCmd {
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
        /// The measurements, one JSON object a line (`push_bytes.py measure`'s).
        results: PathBuf,
        #[command(flatten)]
        run: reports::push_bytes::Run,
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
}

/// Where a report goes besides the raw results and stdout.
#[derive(Debug, clap::Args)]
struct ReportOut {
    /// Print the section only; the doc is left as it is.
    #[arg(long)]
    no_doc: bool,
    /// Where the raw results go (default: the report's `bench/out/<name>.json`).
    #[arg(long = "results", value_name = "FILE")]
    results_file: Option<PathBuf>,
}

/// A file the report reads.
fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| path.display().to_string())
}

/// A generated block to write: what `doc` is given, and what `report` gives it.
#[derive(Debug, clap::Args)]
struct Block {
    /// The script that measured (`bench/edge.sh`).
    #[arg(long)]
    script: String,
    /// The section's `## ` heading, or its start.
    #[arg(long)]
    heading: String,
    /// The run's raw results (JSON).
    #[arg(long)]
    results: PathBuf,
    /// The section as the report wrote it, heading line first (default: the doc's).
    #[arg(long)]
    section: Option<PathBuf>,
    /// A new section goes after this one (its heading or the start of it).
    #[arg(long)]
    after: Option<String>,
    /// The commit measured (default: HEAD).
    #[arg(long)]
    measured: Option<String>,
    /// Results committed before they left the tree: the blob is the file's at the
    /// measured commit, which must hold it, and no dirty check is made.
    #[arg(long)]
    committed: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Cmd::Doc(block) => {
            let text = block.section.as_ref().map(|p| read(p)).transpose()?;
            put(&args.docs, block, text)?;
        }
        Cmd::Report(which) => {
            let (script, results, report, out) = match *which {
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
                    let report =
                        reports::dvr_seek::report(&read(&result)?, &run, notes.as_deref())?;
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
                    let report =
                        reports::push_bytes::report(&read(&results)?, &run, notes.as_deref())?;
                    (
                        "bench/push-bytes.sh",
                        "bench/out/push-bytes.json",
                        report,
                        out,
                    )
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
                        && std::fs::read_to_string(&args.docs)
                            .is_ok_and(|doc| doc.contains(llhls::NODE_SECTION));
                    let files = reports::ramps::read(&ramps)?;
                    let report = llhls::report(&files, &run, doc_has_node, notes.as_deref())?;
                    (script, llhls::results_file(run.row), report, out)
                }
                ReportCmd::ViewerVerify { runs, run, out } => {
                    let report = reports::viewer_verify::report(&read(&runs)?, &run)?;
                    let results = "bench/out/viewer-verify.json";
                    ("bench/viewer-verify.sh", results, report, out)
                }
            };
            let results = out.results_file.unwrap_or_else(|| PathBuf::from(results));
            if let Some(dir) = results.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("making {}", dir.display()))?;
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
                put(&args.docs, block, Some(report.section))?;
            }
            if let Some(why) = report.refusal {
                anyhow::bail!(why);
            }
        }
        Cmd::Sample(SampleCmd::LlhlsCdnStep { report }) => {
            say(&reports::llhls_cdn::step(&read(&report)?)?);
        }
        Cmd::Sample(SampleCmd::PartsPerSecond { playlist }) => {
            say(&reports::llhls_cdn::parts_per_second(&read(&playlist)?)?);
        }
        Cmd::Sample(SampleCmd::LadderCodecs { tick, metrics }) => {
            // A node that did not answer leaves the file empty: a sample without series.
            let text = read(&metrics)?;
            say(&reports::ladder_codecs::sample(&tick, &text).to_string());
        }
        Cmd::Stale { check } => {
            let doc = std::fs::read_to_string(&args.docs)
                .with_context(|| args.docs.display().to_string())?;
            let mut stale = 0;
            for block in docblock::blocks(&doc) {
                let s = &block.stamp;
                let range = format!("{}..HEAD", s.measured);
                let mut log = vec!["log", "--format=%h %<(72,trunc)%s", &range, "--"];
                let paths = staleness::measured_paths(&s.script);
                log.extend(paths.iter().map(String::as_str));
                let changes = git(&log)?;
                let n = changes.lines().count();
                let short = s.measured.get(..10).unwrap_or(&s.measured);
                let dirty = if s.dirty {
                    " (plus changes not committed)"
                } else {
                    ""
                };
                let verdict = if n == 0 && !s.dirty {
                    "current"
                } else {
                    "STALE"
                };
                let script = if block.heading.contains(&s.script) {
                    String::new()
                } else {
                    format!(" ({})", s.script)
                };
                say(&format!(
                    "{verdict}: {}{script}, measured {short}{dirty}, {n} commit(s) since touch what it measures",
                    block.heading
                ));
                for line in changes.lines().take(3) {
                    say(&format!("    {line}"));
                }
                if verdict != "current" {
                    stale += 1;
                }
            }
            if check && stale > 0 {
                bail!("{stale} benchmark(s) stale");
            }
        }
    }
    Ok(())
}

/// Writes or replaces `block` in the doc at `docs`, stamped with the raw results' blob id
/// and the commit measured; its text is `section` (default: the doc's own).
fn put(docs: &Path, block: Block, section: Option<String>) -> anyhow::Result<()> {
    let Block {
        script,
        heading,
        results,
        after,
        measured,
        committed,
        ..
    } = block;
    let doc = std::fs::read_to_string(docs).unwrap_or_default();
    let measured = git(&[
        "rev-parse",
        "--verify",
        &format!("{}^{{commit}}", measured.as_deref().unwrap_or("HEAD")),
    ])?;
    let path = results.to_string_lossy().into_owned();
    let (blob, dirty) = if committed {
        let spec = format!("{measured}:{path}");
        (git(&["rev-parse", "--verify", &spec])?, false)
    } else {
        let blob = git(&["hash-object", "--", &path])?;
        let mut status = vec!["status", "--porcelain", "--"];
        let paths = staleness::measured_paths(&script);
        status.extend(paths.iter().map(String::as_str));
        (blob, !git(&status)?.is_empty())
    };
    let date = raw_date(&results, committed.then_some(measured.as_str()))?;
    let stamp = Stamp {
        script,
        results: path,
        blob,
        measured,
        dirty,
        date,
    };
    let out = docblock::put(&doc, &heading, &stamp, section.as_deref(), after.as_deref())?;
    std::fs::write(docs, out).with_context(|| format!("writing {}", docs.display()))
}

/// A line of the output: the report, or a sample.
fn say(line: &str) {
    #[allow(clippy::print_stdout)] // the report is the program's output
    {
        println!("{line}");
    }
}

/// The `date` the raw results give (their top-level `date`, when they have one); read from
/// `commit` when given, else from the file.
fn raw_date(path: &Path, commit: Option<&str>) -> anyhow::Result<Option<String>> {
    let text = match commit {
        Some(c) => git(&["show", &format!("{c}:{}", path.display())])?,
        None => std::fs::read_to_string(path).with_context(|| path.display().to_string())?,
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    Ok(value
        .get("date")
        .and_then(|d| d.as_str())
        .filter(|d| !d.is_empty() && !d.contains(char::is_whitespace))
        .map(str::to_owned))
}

/// git's standard output, trimmed; an error with its standard error when it fails.
fn git(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .args(args)
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
