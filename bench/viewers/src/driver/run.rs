//! The driver's `run` family: a benchmark run whole (what its script was), from the
//! cluster and its peers to the report ([`crate::benches`]); the report is written as
//! `report` writes it.

use std::path::Path;

use anyhow::Context;
use clap::Subcommand;

use crate::reports;

use super::report::{report, ReportCmd, ReportOut};

/// The benchmarks `run` runs whole.
#[derive(Debug, Subcommand)]
pub(super) enum RunCmd {
    /// bench/capacity.sh.
    Capacity(Box<crate::benches::capacity::Args>),
    /// bench/llhls-node.sh (`--row node`) and bench/llhls-lb.sh (`--row lb`).
    Llhls(Box<crate::benches::llhls::Args>),
    /// bench/moq-cost.sh.
    MoqCost(Box<crate::benches::moq_cost::Args>),
    /// bench/llhls-cdn.sh.
    LlhlsCdn(Box<crate::benches::llhls_cdn::Args>),
    /// bench/memory.sh.
    Memory(Box<crate::benches::memory::Args>),
    /// bench/stream-memory.sh.
    StreamMemory(Box<crate::benches::stream_memory::Args>),
    /// bench/compose.sh.
    Compose(Box<crate::benches::compose::Args>),
    /// bench/push-bytes.sh.
    PushBytes(Box<crate::benches::push_bytes::Args>),
    /// bench/c2pa-overhead.sh.
    C2paOverhead(Box<crate::benches::c2pa_overhead::Args>),
    /// bench/archive-disk.sh.
    ArchiveDisk(Box<crate::benches::archive_disk::Args>),
    /// bench/ll-quality.sh.
    LlQuality(Box<crate::benches::ll_quality::Args>),
    /// bench/ladder-codecs.sh.
    LadderCodecs(Box<crate::benches::ladder_codecs::Args>),
    /// bench/ladder.sh.
    Ladder(Box<crate::benches::ladder::Args>),
    /// bench/edge.sh.
    Edge(Box<crate::benches::edge::Args>),
    /// bench/lb.sh.
    Lb(Box<crate::benches::lb::Args>),
    /// bench/lb-profile.sh.
    LbProfile(Box<crate::benches::lb_profile::Args>),
    /// bench/publish-latency.sh.
    PublishLatency(Box<crate::benches::publish_latency::Args>),
    /// bench/viewer-verify.sh.
    ViewerVerify(Box<crate::benches::viewer_verify::Args>),
    /// bench/dvr-seek.sh.
    DvrSeek(Box<crate::benches::dvr_seek::Args>),
    /// bench/latency.sh.
    Latency(Box<crate::benches::latency::Args>),
    /// bench/ingest-latency.sh.
    IngestLatency(Box<crate::benches::ingest_latency::Args>),
}

/// Runs a benchmark whole: the cluster, the peers, the interleaved runs and the report.
pub(super) fn run(docs: &Path, which: RunCmd) -> anyhow::Result<()> {
    match which {
        RunCmd::Capacity(args) => crate::benches::capacity::run(&args, |ramps| {
            let capacity = ReportCmd::Capacity {
                ramps: ramps.dir.to_path_buf(),
                run: ramps.run,
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: args.results.clone(),
                },
            };
            report(docs, capacity)
        }),
        RunCmd::Llhls(args) => crate::benches::llhls::run(&args, |ramps| {
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
        RunCmd::MoqCost(args) => crate::benches::moq_cost::run(&args, |runs| {
            let moq_cost = ReportCmd::MoqCost {
                runs: runs.to_path_buf(),
                viewers: Some(args.viewers.to_string()),
                runs_given: Some(args.runs.to_string()),
                date: crate::harness::today(true)?,
                variant: args.variant_label(),
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: None,
                },
            };
            report(docs, moq_cost)
        }),
        RunCmd::LlhlsCdn(args) => crate::benches::llhls_cdn::run(&args, |runs| {
            let out = ReportOut {
                no_doc: args.no_doc,
                results_file: args.results.clone(),
            };
            let llhls_cdn = ReportCmd::LlhlsCdn {
                runs_dir: runs.dir.to_path_buf(),
                run: runs.run,
                out,
            };
            report(docs, llhls_cdn)
        }),
        RunCmd::Compose(args) => crate::benches::compose::run(&args, |run| {
            let out = ReportOut {
                no_doc: args.no_doc,
                results_file: None,
            };
            report(docs, ReportCmd::Compose { run, out })
        }),
        RunCmd::PushBytes(args) => crate::benches::push_bytes::run(&args, |results| {
            let push_bytes = ReportCmd::PushBytes {
                results: results.to_path_buf(),
                run: reports::push_bytes::Run {
                    rounds: reports::Rounds {
                        seconds: args.seconds,
                        rounds: args.rounds,
                    },
                    date: crate::harness::today(true)?,
                },
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: None,
                },
            };
            report(docs, push_bytes)
        }),
        RunCmd::C2paOverhead(args) => crate::benches::c2pa_overhead::run(&args, |measured| {
            let c2pa_overhead = ReportCmd::C2paOverhead {
                measured: measured.to_path_buf(),
                run: reports::c2pa_overhead::Run {
                    seconds: args.seconds,
                    date: crate::harness::today(false)?,
                },
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: None,
                },
            };
            report(docs, c2pa_overhead)
        }),
        RunCmd::ArchiveDisk(args) => crate::benches::archive_disk::run(&args, |result| {
            let archive_disk = ReportCmd::ArchiveDisk {
                result: result.to_path_buf(),
                date: crate::harness::today(false)?,
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: None,
                },
            };
            report(docs, archive_disk)
        }),
        RunCmd::LlQuality(args) => crate::benches::ll_quality::run(&args, |encodes| {
            let ll_quality = ReportCmd::LlQuality {
                encodes: encodes.to_path_buf(),
                seconds: args.seconds,
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: None,
                },
            };
            report(docs, ll_quality)
        }),
        RunCmd::LadderCodecs(args) => crate::benches::ladder_codecs::run(&args, |work| {
            let ladder_codecs = ReportCmd::LadderCodecs {
                work: work.to_path_buf(),
                seconds: args.seconds,
                codecs: args.codecs(),
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: None,
                },
            };
            report(docs, ladder_codecs)
        }),
        RunCmd::Ladder(args) => crate::benches::ladder::run(&args, |work, x264| {
            let ladder = ReportCmd::Ladder {
                work: work.to_path_buf(),
                run: reports::ladder::Run {
                    runs: args.runs,
                    parts: args.parts,
                    x264: x264.to_owned(),
                    date: crate::harness::today(false)?,
                },
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: None,
                },
            };
            report(docs, ladder)
        }),
        RunCmd::Memory(args) => crate::benches::memory::run(&args, |raw, ciphers| {
            let memory = ReportCmd::Memory {
                raw: raw.to_path_buf(),
                ciphers: ciphers.to_path_buf(),
                run: reports::memory::Run {
                    connections: args.connections,
                    runs: args.runs,
                    date: crate::harness::today(false)?,
                },
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: args.results.clone(),
                },
            };
            report(docs, memory)
        }),
        RunCmd::StreamMemory(args) => crate::benches::stream_memory::run(&args, |measured| {
            use crate::benches::stream_memory::{GRACE, SOURCE_KBPS};
            let stream_memory = ReportCmd::StreamMemory {
                raw: measured.raw.to_path_buf(),
                run: reports::stream_memory::Run {
                    runs: args.runs,
                    streams: args.streams as i64,
                    ladder: args.ladder.clone(),
                    size: measured.size.to_owned(),
                    source_kbps: SOURCE_KBPS,
                    sample_seconds: args.sample_seconds,
                    node_workers: args.node_workers,
                    grace: GRACE as u64,
                    date: crate::harness::today(false)?,
                },
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: args.results.clone(),
                },
            };
            report(docs, stream_memory)
        }),
        RunCmd::Edge(args) => crate::benches::edge::run(&args, |measured| {
            let edge = ReportCmd::Edge {
                results: measured.results.clone(),
                run: reports::edge::Run {
                    rounds: reports::Rounds {
                        seconds: args.seconds,
                        rounds: args.runs,
                    },
                    segments: measured.segments,
                    segment_bytes: measured.segment_bytes,
                    h2c: measured.h2c,
                    nginx: measured.nginx.clone(),
                    date: crate::harness::today(false)?,
                },
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: args.results.clone(),
                },
            };
            report(docs, edge)
        }),
        RunCmd::Lb(args) => crate::benches::lb::run(&args, |measured| {
            let lb = ReportCmd::Lb {
                results: measured.results.clone(),
                metrics: measured.metrics.clone(),
                run: reports::lb::Run {
                    runs: args.runs,
                    seconds: args.seconds,
                    clients: args.clients,
                    streams: args.streams,
                    paced_clients: args.lat_clients,
                    paced_rps: args.lat_rps,
                    playlist_bytes: measured.playlist_bytes,
                    segment_bytes: measured.segment_bytes,
                    date: crate::harness::today(false)?,
                },
                haproxy: measured.haproxy.display().to_string(),
                nginx: measured.nginx.display().to_string(),
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: Some(args.results.clone()),
                },
            };
            report(docs, lb)
        }),
        RunCmd::LbProfile(args) => crate::benches::lb_profile::run(&args, |work| {
            let lb_profile = ReportCmd::LbProfile {
                work: work.to_path_buf(),
                run: reports::lb_profile::Run {
                    requests: args.requests,
                    seg_requests: args.seg_requests(),
                    clients: args.clients,
                    seg_clients: args.seg_clients,
                    playlist_rps: args.playlist_rps,
                    segment_rps: args.segment_rps,
                    date: crate::harness::today(false)?,
                },
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: Some(args.results.clone()),
                },
            };
            report(docs, lb_profile)
        }),
        RunCmd::PublishLatency(args) => crate::benches::publish_latency::run(&args, |raw| {
            let publish_latency = ReportCmd::PublishLatency {
                raw: raw.to_path_buf(),
                date: crate::harness::today(false)?,
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: args.results.clone(),
                },
            };
            report(docs, publish_latency)
        }),
        RunCmd::ViewerVerify(args) => crate::benches::viewer_verify::run(&args, |runs| {
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
        RunCmd::DvrSeek(args) => crate::benches::dvr_seek::run(&args, |result| {
            let dvr_seek = ReportCmd::DvrSeek {
                result: result.to_path_buf(),
                run: reports::dvr_seek::Run {
                    back: Some(args.back.to_string()),
                    rounds: Some(args.rounds.to_string()),
                    date: crate::harness::today(false)?,
                },
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: args.results.clone(),
                },
            };
            report(docs, dvr_seek)
        }),
        RunCmd::Latency(args) => crate::benches::latency::run(&args, |measured| {
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
        RunCmd::IngestLatency(args) => crate::benches::ingest_latency::run(&args, |runs| {
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
