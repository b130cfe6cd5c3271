//! The compose deployment (issue 6), checked without a container engine: neither this
//! machine nor CI has one.
//!
//! - `docker-compose.yml` and the `Dockerfile` statically: every file they (and the
//!   Mosquitto, Prometheus and Grafana configuration they mount) reference exists or is
//!   made by `scripts/init-cluster.sh`; no secret is written in them; the topology
//!   (scalable `broadcast`, published ports, healthchecks, image variables, a non-root
//!   multi-stage image).
//! - `scripts/init-cluster.sh`: what it writes, with which modes, and that a second run
//!   changes no secret.
//! - Every sealcast service's command and environment, as the container would see them
//!   (`support/compose.rs` lays out its mounts), passes `sealcast ... --check-config`; a
//!   broken environment fails with every problem named at once.
//! - The broker's ACLs against the real Mosquitto, started with the compose file's
//!   `mosquitto.conf`, password files and ACLs.
//! - Prometheus's and Grafana's provisioning parse, match the compose services, and the
//!   dashboards query only metrics the roles export (read from the running processes'
//!   `/metrics` and each role crate's `metrics::FAMILIES`).
//!
//! One module per concern: [`init_script`], [`files`], [`secrets`], [`topology`],
//! [`check_config`], [`acl`], [`monitoring`]. The compose model they read the files with is
//! `testkit::compose`. Fast: no ffmpeg, no browser; each test makes its own temporary
//! project copy.

#![allow(clippy::unwrap_used)]

mod acl;
mod check_config;
mod files;
mod init_script;
mod monitoring;
mod networks;
mod secrets;
mod topology;

use std::path::{Path, PathBuf};

use testkit::compose::{Dockerfile, InitCluster, Project};

const BIN: &str = env!("CARGO_BIN_EXE_sealcast");

fn bin() -> &'static Path {
    Path::new(BIN)
}

fn repo() -> PathBuf {
    testkit::repo_root()
}

/// The compose file as written (nothing interpolated).
fn raw_project() -> Project {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    Project::parse(&text, &repo(), None).unwrap()
}

fn dockerfile() -> Dockerfile {
    Dockerfile::load(&repo().join("Dockerfile")).unwrap()
}

/// Runs the init script in a temporary copy of the project (blocking work, off the
/// runtime).
async fn init_cluster() -> InitCluster {
    tokio::task::spawn_blocking(|| InitCluster::run(&repo(), bin()))
        .await
        .unwrap()
        .unwrap()
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

/// Whether no secret value of `.env` appears in `text`.
fn leaks(init: &InitCluster, text: &str) -> bool {
    init.secret_values().iter().any(|s| text.contains(s))
}
