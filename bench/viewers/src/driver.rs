//! `sealcast-bench`: the benchmarks' driver (issue 46 item 4), growing. Its `main` only
//! parses the command line and hands each family of subcommands to its module, where the
//! family's clap enum sits beside the code that runs it:
//!
//! - `sealcast-bench doc --script bench/edge.sh --heading '## Edge serving' --results
//!   bench/out/edge.json [--section FILE] [--after HEADING] [--measured COMMIT]`: stamps
//!   the section (the report's text from FILE, else the doc's own) with the raw results'
//!   blob id and the measured commit (default `HEAD`, `dirty=yes` when the measured paths
//!   have changes not committed); see [`crate::docblock`]. With it, `sealcast-bench stale
//!   [--check]`: every block whose measured paths changed in a commit after the one it
//!   names ([`crate::staleness`]); `--check` exits 1 when any did. Module `doc`.
//! - `sealcast-bench report NAME …` (`--help` lists them: moq-cost, ll-quality,
//!   viewer-verify, compose, push-bytes, ladder, ladder-codecs, dvr-seek, lb, lb-profile,
//!   memory, stream-memory, edge, latency, ingest-latency, c2pa-overhead, archive-disk,
//!   capacity, llhls (`--row node|lb`), llhls-cdn): the reports moved out of
//!   `bench/lib/reports/` ([`crate::reports`]). Each writes the raw results to
//!   `bench/out/<name>.json` (or `--results`), prints the section and puts it in the doc
//!   as `doc` does. Module `report`.
//! - `sealcast-bench run llhls|moq-cost …`: a benchmark run whole, its report written as
//!   `report` writes it ([`crate::benches`]). Module `run`.
//! - `sealcast-bench sample NAME …`: what a script measures, read from a tool's output,
//!   the disk or a node, printed as a JSON line (ladder-codecs, h2load, h2load-pair,
//!   archive-disk, archive-recording, c2pa-overhead, llhls-cdn-step, llhls-cdn-origin,
//!   parts-per-second, push-latency, push-bytes, stream-memory, stream-memory-point,
//!   publish-latency, metrics, viewer-verify, tagged, glass-failed). Module `sample`.
//! - `sealcast-bench check NAME …`: a check a script makes of what it measured, failing
//!   when it does not hold (lb-tls, ll-window, stream-window, dvr-window,
//!   playlist-seconds). Module `check`.
//! - Here, the one-line commands: `sealcast-bench calc cpu-seconds|cpu-percent|elapsed|field
//!   …`, a script's sum between two readings, printed as Python printed it
//!   ([`crate::reports::calc`]); `random-ts PACKETS`, a TS segment of random payload on
//!   stdout; `haproxy-health SOCKET enable|disable`, HAProxy's health checks of
//!   bench/lb.sh's backends, through its stats socket; the live scripts' helpers that were
//!   Python: `mirror NODE MASTER PLAYLIST ROOT [--interval S]` ([`crate::mirror`]),
//!   `progress capacity|llhls` and `free-port` ([`crate::live`]).
//!
//! Some help texts name modules as `viewers::…` (a link in the binary's docs they came
//! from): clap prints a doc comment as written, and the help stays as it was. Runs git
//! in the current directory (the repository's root, as the scripts do).

mod check;
mod common;
mod doc;
mod report;
mod run;
mod sample;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use self::check::CheckCmd;
use self::common::say;
use self::doc::Block;
use self::report::ReportCmd;
use self::run::RunCmd;
use self::sample::SampleCmd;
use crate::reports;

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
    /// A check a script makes of what it measured; fails when it does not hold.
    #[command(subcommand)]
    Check(CheckCmd),
    /// A script's sum between two readings, printed on a line.
    #[command(subcommand)]
    Calc(reports::calc::Calc),
    /// Writes PACKETS MPEG-TS packets of random payload (a 0x47 sync byte each) to stdout.
    RandomTs {
        /// How many packets of 188 bytes.
        packets: usize,
    },
    /// Switches HAProxy's health checks of `nodes/b1` and `nodes/b2` (bench/lb.sh's).
    HaproxyHealth {
        /// HAProxy's stats socket (`level admin`).
        socket: PathBuf,
        /// enable or disable.
        health: reports::lb::Health,
    },
    /// Keeps a directory a mirror of a node's live rendition (for nginx) until stopped
    /// (bench/lib.sh's `bench_ll_nginx`, bench/capacity.sh; [`viewers::mirror`]).
    Mirror(crate::mirror::Args),
    /// Turns a ramp's step lines (`sealcast-viewers`' standard error, on standard input)
    /// into progress lines on standard error ([`viewers::live`]).
    Progress {
        /// Whose ramp: its line says what that script printed.
        #[arg(value_enum)]
        ramp: crate::live::Ramp,
    },
    /// Prints a TCP port free on 127.0.0.1 (bench/lib.sh's `free_port`).
    FreePort,
    /// Runs a benchmark whole (what its script was): `run llhls --row node|lb`.
    #[command(subcommand)]
    Run(Box<RunCmd>),
    /// Lists the blocks whose measured code changed after their run.
    Stale {
        /// Exit 1 when a block is stale.
        #[arg(long)]
        check: bool,
    },
}

/// `sealcast-bench`'s `main`: parses the command line (the process's arguments) and runs
/// the command it names.
pub fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Cmd::Doc(block) => doc::doc(&args.docs, block)?,
        Cmd::Report(which) => report::report(&args.docs, *which)?,
        Cmd::Run(which) => run::run(&args.docs, *which)?,
        Cmd::Check(which) => check::check(which)?,
        Cmd::Sample(which) => sample::sample(which)?,
        Cmd::Calc(calc) => say(&calc.run()?),
        Cmd::RandomTs { packets } => {
            reports::lb::random_segment(packets, &mut std::io::stdout().lock())?;
        }
        Cmd::HaproxyHealth { socket, health } => reports::lb::health(&socket, health)?,
        Cmd::Mirror(mirror) => crate::mirror::run(mirror)?,
        Cmd::Progress { ramp } => crate::live::progress(ramp)?,
        Cmd::FreePort => say(&crate::live::free_port()?.to_string()),
        Cmd::Stale { check } => doc::stale(&args.docs, check)?,
    }
    Ok(())
}
