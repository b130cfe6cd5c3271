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
//! - `sealcast-bench report NAME …` (`--help` lists them: moq-cost, ll-quality,
//!   viewer-verify, compose, push-bytes, ladder, ladder-codecs, dvr-seek, lb, lb-profile,
//!   memory, stream-memory, edge, latency, ingest-latency, c2pa-overhead, archive-disk,
//!   capacity, llhls (`--row node|lb`), llhls-cdn):
//!   the reports moved out of `bench/lib/reports/` ([`viewers::reports`]). Each writes the
//!   raw results to `bench/out/<name>.json` (or `--results`), prints the section and puts
//!   it in the doc as `doc` does.
//! - `sealcast-bench check lb-tls RESULTS.jsonl`: fails when bench/lb.sh's load balancers
//!   negotiated different TLS.
//! - `sealcast-bench sample ladder-codecs …`, `sample h2load OUT LOG`, `sample archive-disk
//!   DIR --nodes N --seconds N`, `sample archive-recording NODE STREAM --within S`, `sample
//!   c2pa-overhead BASE --seconds S`, `sample llhls-cdn-step RUN.json`, `sample
//!   parts-per-second PLAYLIST`, `sample h2load-pair OUT OUT LOG LOG`, `sample
//!   push-latency URL --seconds S`, `sample push-bytes DIR MODE ROUND --seconds S`: what a
//!   script measures, read from a tool's output, the disk or a node, printed as a JSON
//!   line.
//! - `sealcast-bench calc cpu-seconds|cpu-percent|elapsed|field …`: a script's sum between
//!   two readings, printed as Python printed it ([`viewers::reports::calc`]).
//! - `sealcast-bench random-ts PACKETS`: a TS segment of random payload on stdout;
//!   `sealcast-bench haproxy-health SOCKET enable|disable`: HAProxy's health checks of
//!   bench/lb.sh's backends, through its stats socket.
//! - The live scripts' helpers that were Python: `sealcast-bench mirror NODE MASTER
//!   PLAYLIST ROOT [--interval S]` ([`viewers::mirror`]), `progress capacity|llhls`,
//!   `free-port`, `check ll-window`, `sample llhls-cdn-origin` ([`viewers::live`]),
//!   `check stream-window`, `sample stream-memory`, `sample stream-memory-point`
//!   ([`viewers::floor`], [`viewers::memory_point`]).
//! - The latency tools: `sample publish-latency` ([`viewers::publish_latency`]), `sample
//!   metrics NODE`, `sample viewer-verify` ([`viewers::viewer_verify`]), `sample tagged`,
//!   `sample glass-failed`, `check dvr-window`, `check playlist-seconds`.
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
    Mirror(viewers::mirror::Args),
    /// Turns a ramp's step lines (`sealcast-viewers`' standard error, on standard input)
    /// into progress lines on standard error ([`viewers::live`]).
    Progress {
        /// Whose ramp: its line says what that script printed.
        #[arg(value_enum)]
        ramp: viewers::live::Ramp,
    },
    /// Prints a TCP port free on 127.0.0.1 (bench/lib.sh's `free_port`).
    FreePort,
    /// Runs a benchmark whole (what its script was): `run NAME` (`--help` lists them).
    #[command(subcommand)]
    Run(Box<RunCmd>),
    /// Lists the blocks whose measured code changed after their run.
    Stale {
        /// Exit 1 when a block is stale.
        #[arg(long)]
        check: bool,
    },
}

/// The benchmarks `run` runs whole.
#[derive(Debug, Subcommand)]
enum RunCmd {
    /// bench/llhls-node.sh (`--row node`) and bench/llhls-lb.sh (`--row lb`).
    Llhls(Box<viewers::benches::llhls::Args>),
    /// bench/moq-cost.sh.
    MoqCost(Box<viewers::benches::moq_cost::Args>),
    /// bench/publish-latency.sh.
    PublishLatency(Box<viewers::benches::publish_latency::Args>),
    /// bench/viewer-verify.sh.
    ViewerVerify(Box<viewers::benches::viewer_verify::Args>),
    /// bench/dvr-seek.sh.
    DvrSeek(Box<viewers::benches::dvr_seek::Args>),
    /// bench/latency.sh.
    Latency(Box<viewers::benches::latency::Args>),
    /// bench/ingest-latency.sh.
    IngestLatency(Box<viewers::benches::ingest_latency::Args>),
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
    /// bench/stream-memory.sh's: the node's memory and the floor of STREAMS every 0.5 s for
    /// SECONDS, the medians ([`viewers::memory_point`]).
    StreamMemory {
        /// The node's base URL.
        node: String,
        /// The node's process.
        pid: u32,
        /// Seconds to sample.
        seconds: f64,
        /// The live streams (none: the memory alone).
        streams: Vec<String>,
    },
    /// bench/stream-memory.sh's: what it says of a point `sample stream-memory` printed.
    StreamMemoryPoint {
        /// The point (its JSON).
        point: String,
        /// What of it.
        #[arg(long, value_enum, default_value = "summary")]
        show: viewers::memory_point::Show,
    },
    /// bench/llhls-cdn.sh's during a run: the node's and Varnish's requests every second
    /// into OUT until stopped ([`viewers::live::origin_samples`]).
    LlhlsCdnOrigin {
        /// The node's base URL.
        node: String,
        /// Varnish's working directory (`varnishstat -n`).
        varnish: PathBuf,
        /// The samples' file.
        out: PathBuf,
    },
    /// bench/ladder-codecs.sh's: the ingest's CPU and metrics.
    LadderCodecs {
        #[command(flatten)]
        tick: reports::ladder_codecs::Tick,
        /// The node's `/metrics` as fetched now.
        metrics: PathBuf,
    },
    /// bench/edge.sh's: one h2load run's figures, a results line's `load`.
    H2load {
        /// What h2load printed.
        out: PathBuf,
        /// Its `--log-file` (none when it is not there).
        log: PathBuf,
    },
    /// bench/lb.sh's: the two h2load runs of one load (one per backend cookie), a results
    /// line's `h2load`.
    H2loadPair {
        /// What the first printed.
        first_out: PathBuf,
        /// What the second printed.
        second_out: PathBuf,
        /// The first's `--log-file` (none when it is not there).
        first_log: PathBuf,
        /// The second's.
        second_log: PathBuf,
    },
    /// bench/push-bytes.sh's: follows node 1's media playlist with blocking reloads for
    /// SECONDS; the segments' publication latency (`latency.json`).
    PushLatency {
        /// The media playlist's URL.
        url: String,
        /// Seconds to follow it.
        #[arg(long)]
        seconds: f64,
    },
    /// bench/push-bytes.sh's: a round's line of `results.jsonl`.
    PushBytes {
        /// The round's directory: the nodes' metrics before and after, `latency.json`.
        dir: PathBuf,
        /// assembled or whole.
        mode: String,
        /// The round.
        round: i64,
        /// The seconds measured.
        #[arg(long)]
        seconds: f64,
    },
    /// bench/c2pa-overhead.sh's: follows each rung's media playlist and fetches every part
    /// and segment listed after the first look once, with its statement; the counts.
    C2paOverhead {
        /// The stream's base URL (`NODE/live/STREAM`).
        base: String,
        /// Seconds to follow the playlists.
        #[arg(long)]
        seconds: f64,
    },
    /// bench/archive-disk.sh's: waits (polling each second) until the node lists a
    /// recording of the stream and its archive spool is empty; the recording as listed.
    ArchiveRecording {
        /// The node's base URL.
        node: String,
        /// The stream recorded.
        stream: String,
        /// Seconds to wait at most.
        #[arg(long)]
        within: f64,
    },
    /// bench/archive-disk.sh's: the disk the run left (`du -sb` in the data directory).
    ArchiveDisk {
        /// The run's directory: `recording.json` (the node's listing) and `data`.
        dir: PathBuf,
        /// The broadcast nodes.
        #[arg(long)]
        nodes: u64,
        /// The seconds published.
        #[arg(long)]
        seconds: u64,
    },
    /// bench/publish-latency.sh's: when each segment is first listed on each node, and the
    /// `up` process's CPU, until the stop file appears (the raw JSON).
    PublishLatency(viewers::publish_latency::Poll),
    /// bench/latency.sh's: a node's `/metrics`, `{"at", "m"}`.
    Metrics {
        /// The node's base URL.
        node: String,
    },
    /// bench/viewer-verify.sh's: one Chromium viewer's run.
    ViewerVerify(viewers::viewer_verify::Viewer),
    /// bench/latency.sh's and bench/ingest-latency.sh's: the record of a browser run that
    /// failed.
    GlassFailed {
        /// Why (what the tool said).
        #[arg(allow_hyphen_values = true)]
        why: std::ffi::OsString,
    },
    /// The browser benchmarks': a run's record with what the script ran it as.
    Tagged {
        /// The record (a JSON object).
        record: PathBuf,
        /// KEY=N, set as an int.
        #[arg(long = "int", value_name = "KEY=N")]
        ints: Vec<String>,
        /// KEY=TEXT, set as a string.
        #[arg(long = "str", value_name = "KEY=TEXT")]
        strings: Vec<String>,
    },
}

/// The checks `check` makes.
#[derive(Debug, Subcommand)]
enum CheckCmd {
    /// The LL-HLS scripts' wait for a window to join: fails unless the media playlist
    /// (standard input) lists three `#EXTINF` and a part ([`viewers::live`]).
    LlWindow,
    /// bench/stream-memory.sh's: waits until every rung of STREAM lists a full window and
    /// has slid on by GRACE+1 segments; fails when it ended or after TIMEOUT
    /// ([`viewers::floor`]).
    StreamWindow {
        /// The node's base URL.
        node: String,
        /// The stream.
        stream: String,
        /// The rungs it must list.
        #[arg(long)]
        rungs: usize,
        /// The segments a full window lists.
        #[arg(long)]
        window: usize,
        /// The segments the node keeps after the window.
        #[arg(long)]
        grace: i64,
        /// Seconds to wait at most.
        #[arg(long)]
        timeout: f64,
    },
    /// bench/lb.sh's: both load balancers negotiated the same TLS (said on stderr).
    LbTls {
        /// The warm-up's loads, one JSON object a line.
        results: PathBuf,
    },
    /// bench/dvr-seek.sh's: the node's time-shift window of STREAM holds at least
    /// `--at-least` seconds (its `/api/v1/streams` on stdin).
    DvrWindow {
        /// The stream.
        stream: String,
        /// Seconds the window must hold.
        #[arg(long, allow_negative_numbers = true)]
        at_least: f64,
    },
    /// bench/dvr-seek.sh's: a media playlist lists at least `--at-least` seconds.
    PlaylistSeconds {
        /// The playlist.
        playlist: PathBuf,
        /// Seconds it must list.
        #[arg(long, allow_negative_numbers = true)]
        at_least: f64,
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
        Cmd::Report(which) => report(&args.docs, *which)?,
        Cmd::Run(which) => run(&args.docs, *which)?,
        Cmd::Check(CheckCmd::LbTls { results }) => {
            let (line, same) = reports::lb::tls_check(&read(&results)?)?;
            eprintln!("{line}");
            if !same {
                bail!("the load balancers negotiated different TLS");
            }
        }
        Cmd::Check(CheckCmd::DvrWindow { stream, at_least }) => {
            let listing = std::io::read_to_string(std::io::stdin()).context("reading stdin")?;
            let seconds = reports::dvr_seek::window_seconds(&listing, &stream)?;
            if !seconds.is_some_and(|s| s >= at_least) {
                bail!("the window of {stream} holds {seconds:?} s, not {at_least}");
            }
        }
        Cmd::Check(CheckCmd::PlaylistSeconds { playlist, at_least }) => {
            let seconds = reports::dvr_seek::playlist_seconds(&read(&playlist)?)?;
            let enough = seconds >= at_least; // NaN is not enough, as in the Python
            if !enough {
                bail!("{} lists {seconds} s, not {at_least}", playlist.display());
            }
        }
        Cmd::Sample(SampleCmd::PublishLatency(poll)) => {
            say(&viewers::publish_latency::poll(&poll)?);
        }
        Cmd::Sample(SampleCmd::Metrics { node }) => {
            say(&viewers::publish_latency::snapshot(&node)?);
        }
        Cmd::Sample(SampleCmd::ViewerVerify(viewer)) => {
            say(&viewers::viewer_verify::run(&viewer)?);
        }
        Cmd::Sample(SampleCmd::GlassFailed { why }) => {
            say(&viewers::runs::glass_failed(&why.to_string_lossy()));
        }
        Cmd::Sample(SampleCmd::Tagged {
            record,
            ints,
            strings,
        }) => {
            say(&viewers::runs::tagged(&read(&record)?, &ints, &strings)?);
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
        Cmd::Sample(SampleCmd::H2load { out, log }) => {
            let log = reports::h2load::read_log(&log)?;
            let figures = reports::edge::h2load(&read(&out)?, log.as_deref());
            say(&serde_json::to_string(&figures)?);
        }
        Cmd::Sample(SampleCmd::H2loadPair {
            first_out,
            second_out,
            first_log,
            second_log,
        }) => {
            let outs = [read(&first_out)?, read(&second_out)?];
            let logs = [
                reports::h2load::read_log(&first_log)?,
                reports::h2load::read_log(&second_log)?,
            ];
            let pair = reports::lb::h2load_pair(
                [outs[0].as_str(), outs[1].as_str()],
                [logs[0].as_deref(), logs[1].as_deref()],
            );
            say(&serde_json::to_string(&pair)?);
        }
        Cmd::Sample(SampleCmd::PushLatency { url, seconds }) => {
            let latency = runtime()?.block_on(reports::push_bytes::follow(&url, seconds))?;
            say(&serde_json::to_string(&latency)?);
        }
        Cmd::Sample(SampleCmd::PushBytes {
            dir,
            mode,
            round,
            seconds,
        }) => {
            say(&reports::push_bytes::measure_dir(
                &dir, &mode, round, seconds,
            )?);
        }
        Cmd::Calc(calc) => say(&calc.run()?),
        Cmd::RandomTs { packets } => {
            reports::lb::random_segment(packets, &mut std::io::stdout().lock())?;
        }
        Cmd::HaproxyHealth { socket, health } => reports::lb::health(&socket, health)?,
        Cmd::Sample(SampleCmd::C2paOverhead { base, seconds }) => {
            let measured = runtime()?.block_on(c2pa_measure(&base, seconds))?;
            say(&serde_json::to_string(&measured)?);
        }
        Cmd::Sample(SampleCmd::ArchiveRecording {
            node,
            stream,
            within,
        }) => {
            let within = std::time::Duration::from_secs_f64(within);
            let recording = runtime()?.block_on(archived(&node, &stream, within))?;
            say(&recording.to_string());
        }
        Cmd::Sample(SampleCmd::ArchiveDisk {
            dir,
            nodes,
            seconds,
        }) => {
            let data = dir.join("data");
            let mut disk = reports::archive_disk::Disk {
                archive: du(&data.join("archive"))?,
                spool: du(&data.join("recordings"))?,
                ..Default::default()
            };
            let entries = std::fs::read_dir(&data).with_context(|| data.display().to_string())?;
            for entry in entries {
                let name = entry?.file_name().to_string_lossy().into_owned();
                if name != "archive" && name != "recordings" {
                    let bytes = du(&data.join(&name))?;
                    disk.other.insert(name, bytes);
                }
            }
            let recording = read(&dir.join("recording.json"))?;
            let measured = reports::archive_disk::measure(&recording, disk, nodes, seconds)?;
            say(&serde_json::to_string(&measured)?);
        }
        Cmd::Mirror(mirror) => viewers::mirror::run(mirror)?,
        Cmd::Progress { ramp } => viewers::live::progress(ramp)?,
        Cmd::FreePort => say(&viewers::live::free_port()?.to_string()),
        Cmd::Check(CheckCmd::LlWindow) => {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("reading the playlist")?;
            // Not listed: exit 1 saying nothing, as the Python did (scripts poll it).
            if !viewers::live::window_listed(&text) {
                std::process::exit(1);
            }
        }
        Cmd::Check(CheckCmd::StreamWindow {
            node,
            stream,
            rungs,
            window,
            grace,
            timeout,
        }) => {
            // Its reason alone on standard error, as the Python's `sys.exit(reason)`.
            if let Err(e) = viewers::floor::wait(&node, &stream, rungs, window, grace, timeout) {
                eprintln!("{e:#}");
                std::process::exit(1);
            }
        }
        Cmd::Sample(SampleCmd::StreamMemory {
            node,
            pid,
            seconds,
            streams,
        }) => say(&viewers::memory_point::sample(
            &node, pid, seconds, &streams,
        )?),
        Cmd::Sample(SampleCmd::StreamMemoryPoint { point, show }) => {
            say(&viewers::memory_point::point_text(&point, show)?);
        }
        Cmd::Sample(SampleCmd::LlhlsCdnOrigin { node, varnish, out }) => {
            viewers::live::origin_samples(&node, &varnish, &out)?;
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

/// Writes a report: the raw results, the section on stdout and in the doc `docs` (unless
/// told not to); fails when the report refuses the run.
fn report(docs: &Path, which: ReportCmd) -> anyhow::Result<()> {
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

/// Runs a benchmark whole: the cluster, the peers, the interleaved runs and the report.
fn run(docs: &Path, which: RunCmd) -> anyhow::Result<()> {
    match which {
        RunCmd::Llhls(args) => viewers::benches::llhls::run(&args, |ramps| {
            let out = ReportOut {
                no_doc: args.no_doc,
                results_file: args.results.clone(),
            };
            let llhls = ReportCmd::Llhls {
                ramps: ramps.dir.to_path_buf(),
                run: ramps.run,
                out,
            };
            report(docs, llhls)
        }),
        RunCmd::MoqCost(args) => viewers::benches::moq_cost::run(&args, |runs| {
            let moq_cost = ReportCmd::MoqCost {
                runs: runs.to_path_buf(),
                viewers: Some(args.viewers.to_string()),
                runs_given: Some(args.runs.to_string()),
                date: viewers::harness::today(true)?,
                variant: args.variant.clone(),
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: None,
                },
            };
            report(docs, moq_cost)
        }),
        RunCmd::PublishLatency(args) => viewers::benches::publish_latency::run(&args, |raw| {
            let publish_latency = ReportCmd::PublishLatency {
                raw: raw.to_path_buf(),
                date: viewers::harness::today(false)?,
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: args.results.clone(),
                },
            };
            report(docs, publish_latency)
        }),
        RunCmd::ViewerVerify(args) => viewers::benches::viewer_verify::run(&args, |runs| {
            let viewer_verify = ReportCmd::ViewerVerify {
                runs: runs.to_path_buf(),
                run: reports::Rounds {
                    seconds: args.seconds,
                    rounds: args.rounds,
                },
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: args.results.clone(),
                },
            };
            report(docs, viewer_verify)
        }),
        RunCmd::DvrSeek(args) => viewers::benches::dvr_seek::run(&args, |result| {
            let dvr_seek = ReportCmd::DvrSeek {
                result: result.to_path_buf(),
                run: reports::dvr_seek::Run {
                    back: Some(args.back.to_string()),
                    rounds: Some(args.rounds.to_string()),
                    date: viewers::harness::today(false)?,
                },
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: args.results.clone(),
                },
            };
            report(docs, dvr_seek)
        }),
        RunCmd::Latency(args) => viewers::benches::latency::run(&args, |measured| {
            let latency = ReportCmd::Latency {
                runs: measured.runs.to_path_buf(),
                before: measured.before.to_path_buf(),
                after: measured.after.to_path_buf(),
                run: reports::latency::Run {
                    rounds: reports::Rounds {
                        seconds: args.seconds,
                        rounds: args.rounds,
                    },
                    ladder: args.ladder.clone(),
                },
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: args.results.clone(),
                },
            };
            report(docs, latency)
        }),
        RunCmd::IngestLatency(args) => viewers::benches::ingest_latency::run(&args, |runs| {
            let ingest_latency = ReportCmd::IngestLatency {
                runs: runs.to_path_buf(),
                run: reports::ingest_latency::Run {
                    rounds: reports::Rounds {
                        seconds: args.seconds,
                        rounds: args.rounds,
                    },
                    ladder: args.ladder.clone(),
                    protocols: args.protocols.clone(),
                    transports: args.transports.clone(),
                    part: args.part.trim().parse().context("PART is not a number")?,
                    relay_build: args.relay_build.clone(),
                },
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: args.results.clone(),
                },
            };
            report(docs, ingest_latency)
        }),
    }
}

/// A runtime for a sample that asks a node.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("a runtime")
}

/// What a viewer of each rung of the stream at `base` fetches in `seconds`: every part and
/// segment its media playlist lists after the first look, once, with its statement (one
/// that fails to come is left out), and the init segment.
async fn c2pa_measure(
    base: &str,
    seconds: f64,
) -> anyhow::Result<reports::c2pa_overhead::Measurement> {
    use reports::c2pa_overhead::{c2pa_box, listed, rungs, Counts, Measurement};
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .context("an HTTP client")?;
    let get = |url: String| {
        let request = client.get(url);
        async move { request.send().await?.error_for_status()?.bytes().await }
    };
    let text = |bytes: bytes::Bytes| String::from_utf8(bytes.to_vec()).context("not UTF-8");
    let master = text(get(format!("{base}/master.m3u8")).await?)?;
    let mut rungs: Vec<(String, Counts)> = rungs(&master)
        .into_iter()
        .map(|rung| (rung, Counts::default()))
        .collect();
    for (rung, counts) in &mut rungs {
        let init = get(format!("{base}/{rung}/init.mp4")).await?;
        counts.init_bytes = init.len() as u64;
        counts.init_c2pa = c2pa_box(&init);
    }
    let mut seen: Vec<std::collections::HashSet<String>> = vec![Default::default(); rungs.len()];
    let end = tokio::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
    let mut first = true;
    while tokio::time::Instant::now() < end {
        for ((rung, counts), seen) in rungs.iter_mut().zip(&mut seen) {
            let playlist = text(get(format!("{base}/{rung}/index.m3u8")).await?)?;
            for (part, uri) in listed(&playlist) {
                // What was listed before the count started is not counted.
                if !seen.insert(uri.clone()) || first {
                    continue;
                }
                let Ok(media) = get(format!("{base}/{rung}/{uri}")).await else {
                    continue;
                };
                let Ok(statement) = get(format!("{base}/{rung}/{uri}.sig")).await else {
                    continue;
                };
                counts.fetched(part, &media, &statement);
            }
        }
        first = false;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    Ok(Measurement { seconds, rungs })
}

/// The first recording of `stream` that `node` lists once its archive spool is empty,
/// asked each second for `within` (a node that does not answer, or answers an error
/// status, is asked again).
async fn archived(
    node: &str,
    stream: &str,
    within: std::time::Duration,
) -> anyhow::Result<serde_json::Value> {
    use reports::archive_disk::{recording_of, spool_bytes};
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .context("an HTTP client")?;
    let get = |path: &str| {
        let request = client.get(format!("{node}{path}"));
        async move { request.send().await?.error_for_status()?.text().await }
    };
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if let Ok(listed) = get("/api/v1/recordings").await {
            let mine = recording_of(&listed, stream)?;
            if let Ok(metrics) = get("/metrics").await {
                let spool = spool_bytes(&metrics)?;
                if let (Some(recording), true) = (mine, spool == 0.0) {
                    return Ok(recording);
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    bail!("no archived recording")
}

/// The bytes under `path` as `du -sb` counts them; 0 when du fails (it is not there).
fn du(path: &Path) -> anyhow::Result<u64> {
    let out = Command::new("du")
        .arg("-sb")
        .arg(path)
        .output()
        .context("running du")?;
    if !out.status.success() {
        return Ok(0);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let bytes = text.split_whitespace().next().unwrap_or_default();
    bytes
        .parse()
        .with_context(|| format!("du -sb {}: {text:?}", path.display()))
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
