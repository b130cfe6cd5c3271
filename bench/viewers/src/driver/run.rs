//! The driver's `run` family: a benchmark run whole (what its script was), from the
//! cluster and its peers to the report ([`crate::benches`]); the report is written as
//! `report` writes it.

use std::path::Path;

use clap::Subcommand;

use super::report::{report, ReportCmd, ReportOut};

/// The benchmarks `run` runs whole.
#[derive(Debug, Subcommand)]
pub(super) enum RunCmd {
    /// bench/llhls-node.sh (`--row node`) and bench/llhls-lb.sh (`--row lb`).
    Llhls(Box<crate::benches::llhls::Args>),
    /// bench/moq-cost.sh.
    MoqCost(Box<crate::benches::moq_cost::Args>),
}

/// Runs a benchmark whole: the cluster, the peers, the interleaved runs and the report.
pub(super) fn run(docs: &Path, which: RunCmd) -> anyhow::Result<()> {
    match which {
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
                variant: args.variant.clone(),
                out: ReportOut {
                    no_doc: args.no_doc,
                    results_file: None,
                },
            };
            report(docs, moq_cost)
        }),
    }
}
