//! The docker compose cluster without a container engine: what `docker-compose.yml`, the
//! `Dockerfile` and `scripts/init-cluster.sh` give each container, turned into things a
//! test can run as plain processes on this machine.
//!
//! - [`mod@interpolate`]: `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`
//!   and `$$` from a variable map (the `.env` the init script writes).
//! - [`project`]: [`Project::load`] parses `docker-compose.yml` and gives each
//!   [`Service`]'s command, entrypoint, environment, mounts, ports, healthcheck, profiles
//!   and replicas. [`Project::parse`] with no variables keeps the text as written (for
//!   checks on the file itself).
//! - [`dockerfile`]: [`Dockerfile::load`] reads the build arguments, the stages and what
//!   the final stage sets. The image's `ENV` is part of every container built from it
//!   ([`Project::container_env`]).
//! - [`container`]: [`Container::materialize`] lays a service's bind mounts out under a
//!   temporary root (a symlink at `root + target` to each source), with empty directories
//!   for volumes and the image's own directories, and maps container paths in environment
//!   values to host paths under that root.
//! - [`init_cluster`]: [`InitCluster::run`] runs `scripts/init-cluster.sh` in a copy of the
//!   files it needs and returns the `.env` it wrote and the project directory.
//!
//! The broker of the compose file runs with [`crate::mosquitto::Mosquitto::start_for`].
//! Nothing here prints a secret: errors name variables and files, never their values.

pub mod container;
pub mod dockerfile;
pub mod init_cluster;
pub mod interpolate;
pub mod project;

use std::collections::BTreeMap;

pub use container::{Container, MountedPath};
pub use dockerfile::{BuildArg, Copy, Dockerfile, Stage};
pub use init_cluster::InitCluster;
pub use interpolate::{interpolate, interpolations, parse_env_file, Interpolation};
pub use project::{
    load_yaml, parse_yaml, scalar, Build, Healthcheck, Mount, MountKind, Port, Project, Service,
};

/// Variables for interpolation (a parsed `.env`), or a container's environment.
pub type Vars = BTreeMap<String, String>;

/// The data directory of the sealcast image (`SEALCAST_DATA_DIR` and `WORKDIR` in the
/// `Dockerfile`).
pub const IMAGE_DATA_DIR: &str = "/var/lib/sealcast";
