//! The driver's `sample` family: one sample of a running measurement, read from a tool's
//! output, the disk or a node, printed as a JSON line (or a progress line) on stdout; with
//! the helpers that take the samples the reports do not (a C2PA viewer's fetches, an
//! archived recording, the disk a run left).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use clap::Subcommand;

use super::common::{read, say};
use crate::reports;

/// The samples `sample` takes while a script measures.
#[derive(Debug, Subcommand)]
pub(super) enum SampleCmd {
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
        show: crate::memory_point::Show,
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
    PublishLatency(crate::publish_latency::Poll),
    /// bench/latency.sh's: a node's `/metrics`, `{"at", "m"}`.
    Metrics {
        /// The node's base URL.
        node: String,
    },
    /// bench/viewer-verify.sh's: one Chromium viewer's run.
    ViewerVerify(crate::viewer_verify::Viewer),
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

/// Takes the sample `which` and prints it.
pub(super) fn sample(which: SampleCmd) -> anyhow::Result<()> {
    match which {
        SampleCmd::PublishLatency(poll) => {
            say(&crate::publish_latency::poll(&poll)?);
        }
        SampleCmd::Metrics { node } => {
            say(&crate::publish_latency::snapshot(&node)?);
        }
        SampleCmd::ViewerVerify(viewer) => {
            say(&crate::viewer_verify::run(&viewer)?);
        }
        SampleCmd::GlassFailed { why } => {
            say(&crate::runs::glass_failed(&why.to_string_lossy()));
        }
        SampleCmd::Tagged {
            record,
            ints,
            strings,
        } => {
            say(&crate::runs::tagged(&read(&record)?, &ints, &strings)?);
        }
        SampleCmd::LlhlsCdnStep { report } => {
            say(&reports::llhls_cdn::step(&read(&report)?)?);
        }
        SampleCmd::PartsPerSecond { playlist } => {
            say(&reports::llhls_cdn::parts_per_second(&read(&playlist)?)?);
        }
        SampleCmd::LadderCodecs { tick, metrics } => {
            // A node that did not answer leaves the file empty: a sample without series.
            let text = read(&metrics)?;
            say(&reports::ladder_codecs::sample(&tick, &text).to_string());
        }
        SampleCmd::H2load { out, log } => {
            let log = reports::h2load::read_log(&log)?;
            let figures = reports::edge::h2load(&read(&out)?, log.as_deref());
            say(&serde_json::to_string(&figures)?);
        }
        SampleCmd::H2loadPair {
            first_out,
            second_out,
            first_log,
            second_log,
        } => {
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
        SampleCmd::PushLatency { url, seconds } => {
            let latency = runtime()?.block_on(reports::push_bytes::follow(&url, seconds))?;
            say(&serde_json::to_string(&latency)?);
        }
        SampleCmd::PushBytes {
            dir,
            mode,
            round,
            seconds,
        } => {
            say(&reports::push_bytes::measure_dir(
                &dir, &mode, round, seconds,
            )?);
        }
        SampleCmd::C2paOverhead { base, seconds } => {
            let measured = runtime()?.block_on(c2pa_measure(&base, seconds))?;
            say(&serde_json::to_string(&measured)?);
        }
        SampleCmd::ArchiveRecording {
            node,
            stream,
            within,
        } => {
            let within = std::time::Duration::from_secs_f64(within);
            let recording = runtime()?.block_on(archived(&node, &stream, within))?;
            say(&recording.to_string());
        }
        SampleCmd::ArchiveDisk {
            dir,
            nodes,
            seconds,
        } => {
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
        SampleCmd::StreamMemory {
            node,
            pid,
            seconds,
            streams,
        } => say(&crate::memory_point::sample(&node, pid, seconds, &streams)?),
        SampleCmd::StreamMemoryPoint { point, show } => {
            say(&crate::memory_point::point_text(&point, show)?);
        }
        SampleCmd::LlhlsCdnOrigin { node, varnish, out } => {
            crate::live::origin_samples(&node, &varnish, &out)?;
        }
    }
    Ok(())
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
