//! The compose deployment (issue 6, issue 30), checked statically and fast: no container
//! is built, pulled or started.
//!
//! Every test copies the project into a temporary directory (`docker-compose.yml`,
//! `Dockerfile`, `.dockerignore`, `scripts/`, `deploy/` without `deploy/state/`), runs
//! `scripts/init-cluster.sh` there with `SEALCAST_IMAGES=upstream` and this build's
//! `sealcast` (so it writes `.env`, keys, certificates and broker files, and touches no
//! image), then reads what the compose tool itself makes of the file: `docker-compose
//! config` (Debian 12's 1.29), or `docker compose config` where only Compose v2 is there.
//! Without either the tests fail, saying so. Their YAML is read with `serde_yaml`
//! ([`project`]); the `Dockerfile` is read as plain text lines ([`dockerfile`]).
//!
//! - [`init_script`]: what the script writes, with which modes; a second run changes no
//!   secret; under sudo the files go to the invoking user; in `upstream` mode it touches
//!   no image.
//! - [`files`]: every bind-mounted host path exists after the script (committed, or made
//!   by it and ignored by git); the `Dockerfile`'s `COPY` sources are in the build
//!   context; the paths Mosquitto's, Prometheus's and Grafana's configuration name are
//!   mounted.
//! - [`secrets`]: every secret in the rendered file is a value of `.env`, each one is
//!   required (empty, the tool refuses the file), none appears in what is committed or in
//!   the image; a literal or a default secret added to a copy is caught.
//! - [`keys`]: each container mounts only its own keys (ingests their own key and
//!   certificate, edges the edge key, load balancers the cookie key, `root.pub` and their
//!   TLS pair, edges and load balancers the playback key, only `tools` the whole key
//!   directory).
//! - [`hardening`]: every container drops every capability but the few it is granted,
//!   cannot gain privileges, and has a read-only root file system; keepalived believes
//!   only the other balancers (issue 45 item 15).
//! - [`networks`]: the network split (the load balancers share no network with
//!   PostgreSQL; PostgreSQL is on the backend alone; ...) and the load balancers'
//!   addresses, which the server certificate the script made names.
//! - [`image_build`]: the `Dockerfile` builds the binary itself (a Debian 12 builder stage
//!   with the host's build packages, a locked release build) and the compose image is its
//!   runtime stage with the host's binary (`deploy/docker/prebuilt.sh`).
//! - [`topology`]: `broadcast` scales; published ports are the documented variables;
//!   image variables are honoured; healthchecks on every long-running service; non-root
//!   (`USER 10001` in the `Dockerfile`).
//! - [`check_config`]: every sealcast service's command and environment, as `config`
//!   gives them with its mounts laid out as the container sees them, passes
//!   `sealcast ... --check-config`; a broken one fails with every problem named.
//! - [`acl`]: the broker's ACLs against a real Mosquitto started with the rendered
//!   service's `mosquitto.conf`, password files and ACLs.
//! - [`monitoring`]: Prometheus's scrape targets and Grafana's provisioning match the
//!   rendered services (Grafana behind its profile), the dashboards query only metrics
//!   the roles export, and a node without viewers exports the autoscaler's series.
//! - [`cdn`]: the cache tier (profile `cdn`): Varnish behind its profile, in front of the
//!   load balancers' origin listeners with the VCL of `deploy/varnish/`, which compiles.
//! - [`relay_tier`]: the MoQ relay tier (issue 48): `relay` scales, viewers reach it only
//!   through the load balancers' QUIC door (lb1 publishes its UDP port), every relay runs
//!   behind its gate with the tier's key, the relays' cluster survives one relay's death,
//!   and every name dialed is a certified one.
//! - [`kubernetes`]: `deploy/kubernetes/` rendered with `kubectl kustomize` and validated
//!   with `kubernetes-validate`, in parity with what the compose file gives each role (the
//!   MoQ relays too); [`kubernetes_relay_tier`]: the relay tier behind the QUIC door as
//!   compose's (gates, links, door, policies that let exactly its paths through) and the
//!   key and certificate secrets.sh makes for it;
//!   [`kubernetes_scaling`]: what the autoscalers scale, the disruption budgets, and the
//!   load balancers' drain; [`kubernetes_monitoring`]: the optional monitoring component
//!   (PodMonitors and alert rules on metrics the roles export); [`kubernetes_brokers`]:
//!   two brokers, a Service each, apart, one drained at a time, and every role given both;
//!   [`kubernetes_policy`]: checkov over the rendered overlays leaves no finding
//!   unexplained; [`kubernetes_storage`]: every volume an edge writes is bounded, with the
//!   archive's spool below it, the archive's URL and key from an optional ConfigMap and
//!   Secret (which secrets.sh makes and sealcast reads), PostgreSQL's init script
//!   compose's byte for byte, and the offline stand-in images.
//! - [`mutants`]: each of those checks fails on a copy with one thing broken (a
//!   `docker-compose.override.yml` the tools merge in); [`secrets`] and [`keys`] have their
//!   own such cases.
//! - [`tree`]: the source tree itself: every `vendor/` fork is what the lock files
//!   resolve (a `[patch]` that silently stops applying fails here) and names the upstream
//!   change that retires it; unsafe code is allowed in one audited function; the crates'
//!   layering (`domain` at the bottom, no role imports another, `testkit` for tests only).
//!
//! Dropped with the home-made compose interpreter (`testkit::compose`, which nothing here
//! uses): checks of how the file is written rather than of what it renders to (long bind
//! syntax, `create_host_path`, interpolation forms), and requiring Compose v2.

#![allow(clippy::unwrap_used)]

mod acl;
mod catalog_roles;
mod cdn;
mod check_config;
mod dockerfile;
mod files;
mod hardening;
mod image_build;
mod init_script;
mod keys;
mod kubernetes;
mod kubernetes_brokers;
mod kubernetes_monitoring;
mod kubernetes_policy;
mod kubernetes_relay_tier;
mod kubernetes_scaling;
mod kubernetes_storage;
mod monitoring;
mod mutants;
mod networks;
mod project;
mod relay_tier;
mod secrets;
mod topology;
mod tree;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dockerfile::Instruction;
use project::{Config, Project, Service};

const BIN: &str = env!("CARGO_BIN_EXE_sealcast");

fn bin() -> &'static Path {
    Path::new(BIN)
}

fn repo() -> PathBuf {
    testkit::repo_root()
}

/// A project copy after the init script.
fn init() -> Project {
    Project::init().unwrap()
}

/// `config` of `project` with every profile the checks need.
fn config(project: &Project) -> Config {
    project.config().unwrap()
}

/// Collects failures so that one run reports all of them.
#[derive(Debug, Default)]
struct Findings(Vec<String>);

impl Findings {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    fn fail(&mut self, what: impl Into<String>) {
        self.0.push(what.into());
    }

    #[track_caller]
    fn assert_none(self, context: &str) {
        assert!(
            self.0.is_empty(),
            "{context}:\n  - {}",
            self.0.join("\n  - ")
        );
    }
}

/// The image's entrypoint for the load balancers: a script that starts keepalived and
/// then runs `sealcast lb` (deploy/docker/lb.sh, installed by the `Dockerfile`).
const LB_ENTRYPOINT: &str = "sealcast-lb";

/// The roles that need the cluster's playback key (`keys/playback-key`, issue 45 item
/// 16), each with why: without it a role refuses every private stream to everyone (an
/// edge), or leaves every bad token to the nodes (a load balancer).
const PLAYBACK_KEY_ROLES: [(&str, &str); 2] = [
    (
        "broadcast",
        "checks viewers' playback tokens, and mints them on the API's token route",
    ),
    (
        "lb",
        "refuses a bad playback token where the request arrives",
    ),
];

/// What a container built from the `Dockerfile` runs: its entrypoint and command, each
/// the service's or else the image's (a service that sets `entrypoint` drops the image's
/// `CMD`, as Docker does).
fn argv(service: &Service<'_>, image: &[Instruction]) -> Vec<String> {
    let image_words = |keyword| {
        dockerfile::last(image, keyword)
            .and_then(dockerfile::exec_form)
            .unwrap_or_default()
    };
    let entrypoint = service.words("entrypoint");
    let command = match (&entrypoint, service.words("command")) {
        (_, Some(command)) => command,
        (None, None) => image_words("CMD"),
        (Some(_), None) => Vec::new(),
    };
    let mut out = entrypoint.unwrap_or_else(|| image_words("ENTRYPOINT"));
    out.extend(command);
    out
}

/// The sealcast role a container built from the `Dockerfile` runs: `sealcast ROLE`,
/// the load balancers' entrypoint (`lb`), or a test source's shell script (`source`).
fn role(service: &Service<'_>, image: &[Instruction]) -> Option<String> {
    if !service.built() {
        return None;
    }
    let argv = argv(service, image);
    match argv.as_slice() {
        [program, role, ..] if program == "sealcast" && !role.starts_with('-') => {
            Some(role.clone())
        }
        [program, ..] if program == LB_ENTRYPOINT => Some("lb".to_owned()),
        [sh, c, script]
            if sh == "/bin/sh" && c == "-c" && script.contains("exec sealcast source") =>
        {
            Some("source".to_owned())
        }
        _ => None,
    }
}

/// The port of a `host:port` listen address.
fn port_of(address: &str) -> Option<u16> {
    address.rsplit_once(':')?.1.parse().ok()
}

/// The port a sealcast role serves `/healthz` and `/metrics` on in an environment, with
/// the CLI's defaults.
fn http_port(role: &str, env: &BTreeMap<String, String>) -> Option<u16> {
    let (var, default) = match role {
        "ingest" => ("SEALCAST_METRICS_LISTEN", 9100),
        "lb" => ("SEALCAST_METRICS_LISTEN", 9102),
        "broadcast" => ("SEALCAST_HTTP_LISTEN", 8080),
        _ => return None,
    };
    Some(env.get(var).and_then(|a| port_of(a)).unwrap_or(default))
}
