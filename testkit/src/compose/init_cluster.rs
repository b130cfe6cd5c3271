//! `scripts/init-cluster.sh`, run in a copy of the project.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};

use super::{parse_env_file, Project, Vars};
use crate::process::{redact, run_with_deadline};

/// The files `scripts/init-cluster.sh` needs, copied from the repository: the compose
/// file, the Dockerfile, the script, and `deploy/` without `deploy/state/` (what is
/// committed; never a developer's own state).
const PROJECT_FILES: [&str; 3] = [
    "docker-compose.yml",
    "Dockerfile",
    "scripts/init-cluster.sh",
];

/// A copy of the project where `scripts/init-cluster.sh` ran.
#[derive(Debug)]
pub struct InitCluster {
    dir: tempfile::TempDir,
    /// The `.env` it wrote.
    pub env: Vars,
    /// What the last run wrote on stderr (no secrets: the script prints none).
    pub stderr: String,
    /// Variables every run gets besides `PATH`, `HOME` and `SEALCAST_BIN`.
    extra_env: Vec<(String, String)>,
}

impl InitCluster {
    /// Copies the project files from `repo` into a temporary directory and runs
    /// `scripts/init-cluster.sh` there with `SEALCAST_BIN=sealcast` and `PATH` only.
    pub fn run(repo: &Path, sealcast: &Path) -> Result<Self> {
        Self::run_with_env(repo, sealcast, &[])
    }

    /// [`InitCluster::run`] with `extra_env` set for this and every later run (say
    /// `SUDO_UID`, as sudo sets it).
    pub fn run_with_env(repo: &Path, sealcast: &Path, extra_env: &[(&str, &str)]) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("init-cluster-").tempdir()?;
        for file in PROJECT_FILES {
            let to = dir.path().join(file);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::copy(repo.join(file), &to).with_context(|| format!("copying {file}"))?;
        }
        copy_tree(
            &repo.join("deploy"),
            &dir.path().join("deploy"),
            &[repo.join("deploy/state")],
        )?;
        let mut init = InitCluster {
            dir,
            env: Vars::new(),
            stderr: String::new(),
            extra_env: extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        init.rerun(sealcast, &[])?;
        Ok(init)
    }

    /// Runs the script again in the same directory (with `args`), and reads `.env` again.
    pub fn rerun(&mut self, sealcast: &Path, args: &[&str]) -> Result<()> {
        let mut command = Command::new("bash");
        command
            .arg("scripts/init-cluster.sh")
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("SEALCAST_BIN", sealcast)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)));
        let out = run_with_deadline(command, Duration::from_secs(60))?;
        self.stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        ensure!(
            out.status.success(),
            "scripts/init-cluster.sh exited with {}:\n{}",
            out.status,
            self.stderr
        );
        let env_path = self.dir.path().join(".env");
        self.env = parse_env_file(
            &std::fs::read_to_string(&env_path).context("init-cluster.sh wrote no .env")?,
        );
        Ok(())
    }

    /// The project directory (compose file, `.env`, `deploy/state/`, `certs/generated/`).
    pub fn project_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The compose file of the copy, interpolated with the `.env` the script wrote.
    pub fn project(&self) -> Result<Project> {
        Project::load(self.dir.path(), &self.env)
    }

    /// A variable of `.env`, which must be there (the error names it, not its value).
    pub fn var(&self, name: &str) -> Result<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .with_context(|| format!(".env has no {name}"))
    }

    /// The values of `.env` that are secrets (passwords and tokens), for checking that
    /// nothing prints them.
    pub fn secret_values(&self) -> Vec<&str> {
        self.env
            .iter()
            .filter(|(k, _)| k.contains("PASSWORD") || k.contains("TOKEN"))
            .map(|(_, v)| v.as_str())
            .filter(|v| v.len() >= 8)
            .collect()
    }
}

impl InitCluster {
    /// `text` with every secret value of `.env` replaced by `***`: for process output a
    /// test prints when it fails.
    pub fn redact(&self, text: &str) -> String {
        redact(text, &self.secret_values())
    }
}

/// Copies a directory tree (files with their permissions), skipping `exclude`.
fn copy_tree(from: &Path, to: &Path, exclude: &[PathBuf]) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let path = entry.path();
        if exclude.contains(&path) {
            continue;
        }
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&path, &target, exclude)?;
        } else if kind.is_file() {
            std::fs::copy(&path, &target).with_context(|| format!("copying {}", path.display()))?;
        }
    }
    Ok(())
}
