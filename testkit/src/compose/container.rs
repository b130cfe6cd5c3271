//! A container's file system without a container engine: a service's mounts laid out
//! under a temporary root, container paths in its environment mapped to host paths.

use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};

use super::{Dockerfile, MountKind, Service, Vars};

/// A service's view of the file system, laid out under a temporary root: each bind mount's
/// source appears (as a symlink) at `root + target`, each volume and each of the image's
/// directories as an empty directory. Processes get container paths mapped to host paths
/// under the root ([`Container::map_env`]). Removed when dropped (the sources stay).
#[derive(Debug)]
pub struct Container {
    root: tempfile::TempDir,
    /// What is mounted where.
    pub mounts: Vec<MountedPath>,
    /// Directories of the image (`WORKDIR`, paths its `ENV` sets).
    image_dirs: Vec<String>,
    workdir: Option<String>,
    /// The host name Docker gives the container (a container id), for `HOSTNAME`.
    pub hostname: String,
}

/// One mount of a materialized container.
#[derive(Debug, Clone)]
pub struct MountedPath {
    /// The container path.
    pub target: String,
    /// Where the target is under the root.
    pub host: PathBuf,
    /// The bind mount's source on the host (`None`: a volume, an empty directory).
    pub source: Option<PathBuf>,
    /// Mounted read-only (kept as information: a symlink cannot enforce it).
    pub read_only: bool,
}

/// `path` made relative to `/`, refusing `..` and relative paths.
fn container_relative(path: &str) -> Result<PathBuf> {
    let path = Path::new(path);
    ensure!(
        path.is_absolute(),
        "{} is not an absolute container path",
        path.display()
    );
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(c) => out.push(c),
            _ => bail!("{} has a .. component", path.display()),
        }
    }
    Ok(out)
}

impl Container {
    /// Lays `service`'s mounts out under a new temporary root. Bind sources are resolved
    /// against `project_dir` and must exist (as with `create_host_path: false`; for a test
    /// a missing source is a finding, not something to create). `image` adds the image's
    /// directories (the data directory, which is also the working directory).
    pub fn materialize(
        service: &Service,
        project_dir: &Path,
        image: Option<&Dockerfile>,
    ) -> Result<Self> {
        let root = tempfile::Builder::new()
            .prefix(&format!("container-{}-", service.name))
            .tempdir()?;
        let mut mounts = Vec::new();
        let targets: Vec<PathBuf> = service
            .volumes
            .iter()
            .map(|m| container_relative(&m.target))
            .collect::<Result<_>>()?;
        for (mount, relative) in service.volumes.iter().zip(&targets) {
            // A mount inside a bind mount would be created inside its source.
            if let Some(outer) = service.volumes.iter().zip(&targets).find(|(m, t)| {
                matches!(m.kind, MountKind::Bind { .. })
                    && *t != relative
                    && relative.starts_with(t)
            }) {
                bail!(
                    "{}: {} is inside the bind mount {}, which is not supported here",
                    service.name,
                    mount.target,
                    outer.0.target
                );
            }
            let host = root.path().join(relative);
            let source = match &mount.kind {
                MountKind::Bind { source, .. } => {
                    let source = project_dir.join(source);
                    let source = source.canonicalize().with_context(|| {
                        format!(
                            "{}: the bind mount source {} does not exist",
                            service.name,
                            source.display()
                        )
                    })?;
                    if let Some(parent) = host.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::os::unix::fs::symlink(&source, &host)?;
                    Some(source)
                }
                MountKind::Named(_) | MountKind::Anonymous | MountKind::Tmpfs => {
                    std::fs::create_dir_all(&host)?;
                    None
                }
            };
            mounts.push(MountedPath {
                target: mount.target.clone(),
                host,
                source,
                read_only: mount.read_only,
            });
        }
        let image_dirs = if service.build.is_some() {
            image.map(Dockerfile::image_dirs).unwrap_or_default()
        } else {
            Vec::new()
        };
        for dir in &image_dirs {
            let host = root.path().join(container_relative(dir)?);
            if std::fs::symlink_metadata(&host).is_err() {
                std::fs::create_dir_all(&host)?;
            }
        }
        let workdir = image
            .filter(|_| service.build.is_some())
            .and_then(|i| i.final_stage().workdir.clone());
        let hostname = format!(
            "{:012x}",
            (u64::from(std::process::id()) << 20)
                ^ (std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
                    & 0xffff_ffff_ffff)
        );
        Ok(Container {
            root,
            mounts,
            image_dirs,
            workdir,
            hostname,
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The host path of a container path, when the container has it: at or under a mount
    /// target, a directory leading to one (Docker creates those), or at or under one of
    /// the image's directories. `None` for anything else (and for relative paths).
    pub fn host_path(&self, container_path: &str) -> Option<PathBuf> {
        let path = container_relative(container_path).ok()?;
        let relative = |t: &str| container_relative(t).ok();
        let in_mount = self
            .mounts
            .iter()
            .filter_map(|m| relative(&m.target))
            .any(|t| path.starts_with(&t) || t.starts_with(&path));
        let in_image = self
            .image_dirs
            .iter()
            .filter_map(|d| relative(d))
            .any(|d| path.starts_with(&d));
        (in_mount || in_image).then(|| self.root.path().join(path))
    }

    /// The mount at exactly `target`.
    pub fn mount(&self, target: &str) -> Option<&MountedPath> {
        self.mounts.iter().find(|m| m.target == target)
    }

    /// `env` with every value that is a container path the container has replaced by its
    /// host path under the root; everything else as is.
    pub fn map_env(&self, env: &Vars) -> Vars {
        env.iter()
            .map(|(k, v)| {
                let mapped = self
                    .host_path(v)
                    .map_or_else(|| v.clone(), |p| p.to_string_lossy().into_owned());
                (k.clone(), mapped)
            })
            .collect()
    }

    /// The process's working directory: the image's `WORKDIR` under the root, else the
    /// root.
    pub fn workdir(&self) -> PathBuf {
        self.workdir
            .as_deref()
            .and_then(|w| self.host_path(w))
            .unwrap_or_else(|| self.root.path().to_path_buf())
    }

    /// A command for `program` as the container would run it: no inherited environment
    /// but `PATH`, the container's `env` (paths mapped), `HOSTNAME` as Docker sets it, the
    /// image's working directory.
    pub fn command(&self, program: &Path, env: &Vars) -> Command {
        let mut command = Command::new(program);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOSTNAME", &self.hostname)
            .envs(self.map_env(env))
            .current_dir(self.workdir());
        command
    }
}
