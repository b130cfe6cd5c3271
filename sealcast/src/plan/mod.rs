//! What each long-running role starts with, derived once, here, from its command line,
//! `SEALCAST_*` variables, configuration file and the key, certificate and token files it
//! reads. `--check-config` (`check`) derives a role's plan and reports its problems; the
//! role (`roles`) derives the same plan and starts from it, so the check and the start
//! cannot drift apart. Deriving reads files but binds, connects to and writes nothing (one
//! exception: a probe file where a missing certificate would be generated).
//!
//! - `problem`: [`Problem`] (what is wrong, and the variable or flag it comes from) and
//!   [`Problems`], which collects them so that every one is reported at once.
//! - `inputs`: the derivations roles share: configuration file, catalog, key directory,
//!   push token, root and edge keys, node ids, HTTPS certificate, listeners.
//! - `archive`: where recordings are kept once per cluster: a directory or an S3 bucket.
//! - `moq`: the MoQ relay a node publishes to and the endpoint its viewers are told.
//! - `ingest`, `broadcast`, `lb`, `up`, `source`: one plan per role. `up` makes its keys
//!   on the first start, so it derives what depends on them with the same functions the
//!   other roles' plans use, once they exist.

mod archive;
mod broadcast;
mod ingest;
mod inputs;
mod lb;
mod moq;
mod problem;
mod source;
mod up;

pub(crate) use archive::ArchivePlan;
pub(crate) use broadcast::{access_config, BroadcastPlan, EdgeTrust};
pub(crate) use ingest::{distribution, provenance, signing_key, IngestPlan, SrtPlan};
pub(crate) use inputs::{cache_purge, key_dir, CatalogLocation, TlsPlan};
pub(crate) use lb::{Balancer, BalancerKeys, LbPlan};
pub(crate) use moq::{for_run_relay, MoqGatePlan, MoqPlan, RunRelayPlan};
pub(crate) use problem::{Problem, Problems};
pub(crate) use source::derive as source;
pub(crate) use up::{Broker, UpPlan};

use crate::cli::Command;

/// The problems of the plan `command` would start with (none for a one-shot command).
pub(crate) fn problems(command: &Command) -> Vec<Problem> {
    let derived = match command {
        Command::Up(args) => UpPlan::derive(args).map(drop),
        Command::Ingest(args) => IngestPlan::derive(args).map(drop),
        Command::Broadcast(args) => BroadcastPlan::derive(args).map(drop),
        Command::Lb(args) => LbPlan::derive(args).map(drop),
        Command::Source(args) => source(args).map(drop),
        Command::MoqGate(args) => MoqGatePlan::derive(args).map(drop),
        _ => Ok(()),
    };
    derived.err().map(Problems::into_vec).unwrap_or_default()
}
