//! A copy of the project where `scripts/init-cluster.sh` ran ([`Project`]), and what the
//! compose tool's own `config` makes of it ([`Config`], [`Service`]).
//!
//! The model is deliberately thin: the compose tool has already merged the anchors,
//! interpolated `.env` and resolved relative paths; all that is left is reading its YAML.
//! Debian 12's `docker-compose` 1.29 and Compose v2 print a few things differently (short
//! or long volume and port syntax, a disabled healthcheck as `test: [NONE]` or
//! `disable: true`), so each accessor takes both.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_yaml::Value;

use crate::{bin, repo};

/// What the copy holds from the repository: the compose file, the image's build inputs,
/// the scripts, and `deploy/` without `deploy/state/` (a developer's own keys and
/// passwords never enter a test).
const COPIED: [&str; 5] = [
    "docker-compose.yml",
    "Dockerfile",
    ".dockerignore",
    "scripts",
    "deploy",
];

/// Never copied: the state the init script writes.
const NOT_COPIED: [&str; 1] = ["deploy/state"];

/// The options that turn every profile of the compose file on.
pub(crate) const ALL_PROFILES: [&str; 8] = [
    "--profile",
    "grafana",
    "--profile",
    "tools",
    "--profile",
    "cdn",
    "--profile",
    "s3",
];

/// How long a compose tool or the init script may take (they take about a second).
const DEADLINE: Duration = Duration::from_secs(60);

/// A temporary copy of the project after `scripts/init-cluster.sh`.
#[derive(Debug)]
pub(crate) struct Project {
    dir: tempfile::TempDir,
    /// The `.env` the script wrote.
    pub(crate) env: BTreeMap<String, String>,
    /// What the last run wrote on stderr (the script prints no secret; tests check it).
    pub(crate) stderr: String,
    /// Variables every run of the script gets besides `PATH`, `HOME`, `SEALCAST_BIN` and
    /// `SEALCAST_IMAGES`.
    extra_env: Vec<(String, String)>,
}

impl Project {
    /// Copies the project and runs the init script there, with `SEALCAST_IMAGES=upstream`
    /// (it builds, pulls and names no image) and the test's own `sealcast`.
    pub(crate) fn init() -> Result<Self> {
        Self::init_with_env(&[])
    }

    /// [`Project::init`] with `extra_env` for this and every later run of the script
    /// (`SUDO_UID` as sudo sets it, another `PATH`).
    pub(crate) fn init_with_env(extra_env: &[(&str, &str)]) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sealcast-deploy-")
            .tempdir()?;
        let excluded: Vec<PathBuf> = NOT_COPIED.iter().map(|p| repo().join(p)).collect();
        for name in COPIED {
            copy(&repo().join(name), &dir.path().join(name), &excluded)?;
        }
        // The compose file names no other file at the top of the project (hosts.example is
        // the operator's, for /etc/hosts); anything it does name is checked to exist.
        let mut project = Project {
            dir,
            env: BTreeMap::new(),
            stderr: String::new(),
            extra_env: extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        project.rerun(&[])?;
        Ok(project)
    }

    /// Runs the init script again (with `args`) and reads `.env` again.
    pub(crate) fn rerun(&mut self, args: &[&str]) -> Result<()> {
        let mut command = Command::new("bash");
        command
            .arg("scripts/init-cluster.sh")
            .args(args)
            .current_dir(self.dir())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir())
            .env("SEALCAST_BIN", bin())
            .env("SEALCAST_IMAGES", "upstream")
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)));
        let out = testkit::process::run_with_deadline(command, DEADLINE)?;
        self.stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        ensure!(
            out.status.success(),
            "scripts/init-cluster.sh exited with {}:\n{}",
            out.status,
            self.stderr
        );
        let text = std::fs::read_to_string(self.dir().join(".env"))
            .context("scripts/init-cluster.sh wrote no .env")?;
        self.env = parse_env_file(&text);
        Ok(())
    }

    /// The project directory.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A variable of `.env`, which must be there (the error names it, never its value).
    pub(crate) fn var(&self, name: &str) -> Result<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .with_context(|| format!(".env has no {name}"))
    }

    /// The names of the secrets in `.env` (passwords, tokens, secrets, access keys).
    pub(crate) fn secret_names(&self) -> Vec<&str> {
        self.env
            .keys()
            .filter(|k| {
                ["PASSWORD", "TOKEN", "SECRET", "ACCESS_KEY"]
                    .iter()
                    .any(|w| k.contains(w))
            })
            .map(String::as_str)
            .collect()
    }

    /// The values of those secrets, for checking that nothing shows them.
    pub(crate) fn secret_values(&self) -> Vec<&str> {
        self.secret_names()
            .into_iter()
            .filter_map(|k| self.env.get(k).map(String::as_str))
            .filter(|v| v.len() >= 8)
            .collect()
    }

    /// `text` with every secret of `.env` replaced by `***`.
    pub(crate) fn redact(&self, text: &str) -> String {
        testkit::process::redact(text, &self.secret_values())
    }

    /// Whether `text` shows a secret of `.env`.
    pub(crate) fn leaks(&self, text: &str) -> bool {
        self.secret_values().iter().any(|s| text.contains(s))
    }

    /// `config` of the compose tool in the project, with `.env` as the script wrote it
    /// and every profile on (Compose v2 leaves out the services of the others;
    /// docker-compose 1.29 shows them all anyway).
    pub(crate) fn config(&self) -> Result<Config> {
        self.config_with(&ALL_PROFILES, &[])
    }

    /// `config` with global options `args` (`--profile NAME`) and `env` set in the tool's
    /// environment (which wins over `.env`). Nothing else of the test's environment gets
    /// through but what the tool needs to run, so a developer's `COMPOSE_PROFILES` or
    /// `SEALCAST_IMAGE` changes nothing.
    pub(crate) fn config_with(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Config> {
        let out = self.run_config(args, env)?;
        ensure!(
            out.status.success(),
            "{} config in the project exited with {}:\n{}",
            compose_tool()?.join(" "),
            out.status,
            self.redact(&String::from_utf8_lossy(&out.stderr))
        );
        let text = String::from_utf8(out.stdout).context("config printed something not UTF-8")?;
        let doc: Value = serde_yaml::from_str(&text).with_context(|| {
            format!(
                "config printed YAML that does not parse:\n{}",
                self.redact(&text)
            )
        })?;
        ensure!(
            doc["services"].is_mapping(),
            "config printed no services:\n{}",
            self.redact(&text)
        );
        Ok(Config {
            doc,
            dir: self.dir().to_path_buf(),
            real_dir: self.dir().canonicalize()?,
        })
    }

    /// `config` run, whatever its outcome.
    pub(crate) fn run_config(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<std::process::Output> {
        let tool = compose_tool()?;
        let mut command = Command::new(&tool[0]);
        command
            .args(&tool[1..])
            .args(args)
            .arg("config")
            .current_dir(self.dir())
            .env_clear();
        for name in PASSED_TO_THE_TOOL {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command.envs(env.iter().copied());
        testkit::process::run_with_deadline(command, DEADLINE)
    }
}

/// What the compose tool needs from the test's environment: where programs are, and
/// where Docker's CLI keeps its plugins (Compose v2 is one) and settings.
const PASSED_TO_THE_TOOL: [&str; 3] = ["PATH", "HOME", "DOCKER_CONFIG"];

/// Copies a file or a directory tree (files keep their permissions), skipping `excluded`.
fn copy(from: &Path, to: &Path, excluded: &[PathBuf]) -> Result<()> {
    if excluded.iter().any(|e| e == from) {
        return Ok(());
    }
    let kind = std::fs::symlink_metadata(from)
        .with_context(|| format!("reading {}", from.display()))?
        .file_type();
    if kind.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            copy(&entry.path(), &to.join(entry.file_name()), excluded)?;
        }
    } else if kind.is_file() {
        std::fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    }
    Ok(())
}

/// `NAME=value` lines of a `.env` file (comments and blank lines skipped; the script
/// writes no quotes).
pub(crate) fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .collect()
}

/// The compose tool of this machine as a command line: `docker-compose` if it runs, else
/// Compose v2's `docker compose`. Neither is an error, never a reason to skip: these
/// checks read the tool's own output.
pub(crate) fn compose_tool() -> Result<Vec<String>> {
    static TOOL: OnceLock<std::result::Result<Vec<String>, String>> = OnceLock::new();
    TOOL.get_or_init(|| {
        compose_tool_on(&std::env::var_os("PATH").unwrap_or_default()).map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

/// [`compose_tool`] with `path` as `PATH`.
pub(crate) fn compose_tool_on(path: &OsStr) -> Result<Vec<String>> {
    let runs = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .env("PATH", path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    // Command::new looks the program up in the test's PATH, not the child's: resolve it
    // in `path` first.
    let find = |program: &str| -> Option<PathBuf> {
        std::env::split_paths(path)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    };
    if let Some(v1) = find("docker-compose") {
        if runs(&v1.to_string_lossy(), &["version"]) {
            return Ok(vec![v1.to_string_lossy().into_owned()]);
        }
    }
    if let Some(docker) = find("docker") {
        if runs(&docker.to_string_lossy(), &["compose", "version"]) {
            return Ok(vec![
                docker.to_string_lossy().into_owned(),
                "compose".to_owned(),
            ]);
        }
    }
    bail!(
        "no compose tool: neither `docker-compose` nor `docker compose` runs with PATH={}. \
         The deployment checks read the compose tool's own `config` output and cannot run \
         without one (Debian 12: apt-get install docker-compose; or Docker's Compose v2 plugin)",
        path.to_string_lossy()
    )
}

/// The YAML `config` printed.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) doc: Value,
    /// The project directory, which bind sources are relative to.
    pub(crate) dir: PathBuf,
    /// The same with symbolic links resolved (what the tool may print instead).
    pub(crate) real_dir: PathBuf,
}

impl Config {
    /// Every service, by name.
    pub(crate) fn services(&self) -> Vec<Service<'_>> {
        self.doc["services"]
            .as_mapping()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                Some(Service {
                    name: k.as_str()?.to_owned(),
                    body: v,
                })
            })
            .collect()
    }

    /// The names of the services.
    pub(crate) fn names(&self) -> BTreeSet<String> {
        self.services().into_iter().map(|s| s.name).collect()
    }

    /// The service `name`, which must be there.
    pub(crate) fn service(&self, name: &str) -> Result<Service<'_>> {
        self.services()
            .into_iter()
            .find(|s| s.name == name)
            .with_context(|| format!("config has no service {name}"))
    }

    /// The top-level keys of section `section` (`networks`, `volumes`).
    pub(crate) fn declared(&self, section: &str) -> BTreeSet<String> {
        keys(&self.doc[section])
    }

    /// A path the tool printed (a bind source, the build context) relative to the
    /// project directory; `None` outside it.
    pub(crate) fn relative<'p>(&self, path: &'p Path) -> Option<&'p Path> {
        path.strip_prefix(&self.dir)
            .or_else(|_| path.strip_prefix(&self.real_dir))
            .ok()
    }
}

/// One service of [`Config`].
#[derive(Debug, Clone)]
pub(crate) struct Service<'a> {
    pub(crate) name: String,
    pub(crate) body: &'a Value,
}

/// A volume of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mount {
    /// A host path (absolute: the tool resolved it).
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    /// A named volume.
    Named { name: String, target: String },
    /// An anonymous volume or a tmpfs.
    Anonymous { target: String },
}

impl Mount {
    pub(crate) fn target(&self) -> &str {
        match self {
            Mount::Bind { target, .. }
            | Mount::Named { target, .. }
            | Mount::Anonymous { target } => target,
        }
    }
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Port {
    /// `None`: every address.
    pub(crate) host_ip: Option<String>,
    /// `None`: Docker picks one.
    pub(crate) published: Option<u16>,
    pub(crate) target: u16,
}

/// A service's own healthcheck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    /// None given: the image's applies.
    Unset,
    /// Turned off.
    Disabled,
    /// `CMD` words, or `CMD-SHELL` and its line.
    Test(Vec<String>),
}

impl Service<'_> {
    /// A scalar field (`image`, `user`, `container_name`) as text.
    pub(crate) fn text(&self, key: &str) -> Option<String> {
        scalar(&self.body[key])
    }

    /// Its environment (values as text; a variable without a value is empty).
    pub(crate) fn environment(&self) -> BTreeMap<String, String> {
        match &self.body["environment"] {
            Value::Mapping(map) => map
                .iter()
                .filter_map(|(k, v)| Some((scalar(k)?, scalar(v).unwrap_or_default())))
                .collect(),
            Value::Sequence(items) => items
                .iter()
                .filter_map(scalar)
                .map(|item| match item.split_once('=') {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None => (item, String::new()),
                })
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// `entrypoint` or `command` as words (`None`: not set, the image's applies).
    pub(crate) fn words(&self, key: &str) -> Option<Vec<String>> {
        match &self.body[key] {
            Value::Sequence(items) => Some(items.iter().filter_map(scalar).collect()),
            Value::String(s) => Some(vec![s.clone()]),
            _ => None,
        }
    }

    /// The networks it is on.
    pub(crate) fn networks(&self) -> BTreeSet<String> {
        keys(&self.body["networks"])
    }

    /// Its address on `network`, if fixed.
    pub(crate) fn address(&self, network: &str) -> Option<String> {
        scalar(&self.body["networks"][network]["ipv4_address"])
    }

    /// Its profiles.
    pub(crate) fn profiles(&self) -> Vec<String> {
        self.body["profiles"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(scalar)
            .collect()
    }

    /// Whether it is built from the project's `Dockerfile`.
    pub(crate) fn built(&self) -> bool {
        !self.body["build"].is_null() && !self.relay_image()
    }

    /// Whether it runs the MoQ relay tier's image: built from `deploy/docker/moq-relay`,
    /// the sealcast image with moq-relay beside it (`relay_tier` checks those services).
    pub(crate) fn relay_image(&self) -> bool {
        scalar(&self.body["build"]["context"])
            .is_some_and(|c| c.ends_with("deploy/docker/moq-relay"))
    }

    /// Its build arguments.
    pub(crate) fn build_args(&self) -> BTreeMap<String, String> {
        match &self.body["build"]["args"] {
            Value::Mapping(map) => map
                .iter()
                .filter_map(|(k, v)| Some((scalar(k)?, scalar(v).unwrap_or_default())))
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    /// Its volumes, in either syntax.
    pub(crate) fn mounts(&self) -> Result<Vec<Mount>> {
        let mut out = Vec::new();
        for item in self.body["volumes"].as_sequence().into_iter().flatten() {
            let mount = match item {
                Value::String(short) => parse_short_volume(short),
                Value::Mapping(_) => {
                    let target = scalar(&item["target"]).unwrap_or_default();
                    let source = scalar(&item["source"]);
                    match (scalar(&item["type"]).as_deref(), source) {
                        (Some("bind"), Some(source)) => Some(Mount::Bind {
                            source: PathBuf::from(source),
                            target,
                            read_only: item["read_only"].as_bool().unwrap_or(false),
                        }),
                        (Some("volume"), Some(name)) => Some(Mount::Named { name, target }),
                        (Some("volume" | "tmpfs"), None) => Some(Mount::Anonymous { target }),
                        _ => None,
                    }
                }
                _ => None,
            };
            out.push(mount.with_context(|| {
                format!(
                    "{}: a volume config printed in an unknown form: {item:?}",
                    self.name
                )
            })?);
        }
        Ok(out)
    }

    /// Its bind mounts: (host source, container target, read-only).
    pub(crate) fn binds(&self) -> Result<Vec<(PathBuf, String, bool)>> {
        Ok(self
            .mounts()?
            .into_iter()
            .filter_map(|m| match m {
                Mount::Bind {
                    source,
                    target,
                    read_only,
                } => Some((source, target, read_only)),
                _ => None,
            })
            .collect())
    }

    /// The host path behind container path `path`, through its bind mounts.
    pub(crate) fn host_path(&self, path: &str) -> Result<Option<PathBuf>> {
        Ok(self.binds()?.into_iter().find_map(|(source, target, _)| {
            let rest = path.strip_prefix(target.trim_end_matches('/'))?;
            if rest.is_empty() {
                Some(source)
            } else {
                rest.strip_prefix('/').map(|r| source.join(r))
            }
        }))
    }

    /// Its published ports, in either syntax.
    pub(crate) fn ports(&self) -> Result<Vec<Port>> {
        let mut out = Vec::new();
        for item in self.body["ports"].as_sequence().into_iter().flatten() {
            let port = match item {
                Value::String(short) => parse_short_port(short),
                Value::Mapping(_) => Some(Port {
                    host_ip: scalar(&item["host_ip"])
                        .filter(|ip| !ip.is_empty() && ip != "0.0.0.0"),
                    published: scalar(&item["published"]).and_then(|p| p.parse().ok()),
                    target: scalar(&item["target"])
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(0),
                }),
                Value::Number(n) => n
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .map(|target| Port {
                        host_ip: None,
                        published: None,
                        target,
                    }),
                _ => None,
            };
            out.push(port.with_context(|| {
                format!(
                    "{}: a port config printed in an unknown form: {item:?}",
                    self.name
                )
            })?);
        }
        Ok(out)
    }

    /// Its own healthcheck.
    pub(crate) fn health(&self) -> Health {
        let check = &self.body["healthcheck"];
        if check.is_null() {
            return Health::Unset;
        }
        if check["disable"].as_bool() == Some(true) {
            return Health::Disabled;
        }
        let test: Vec<String> = match &check["test"] {
            Value::Sequence(items) => items.iter().filter_map(scalar).collect(),
            Value::String(line) => vec!["CMD-SHELL".to_owned(), line.clone()],
            _ => Vec::new(),
        };
        match test.first().map(String::as_str) {
            Some("NONE") | None => Health::Disabled,
            Some(_) => Health::Test(test),
        }
    }

    /// `deploy.replicas`, if set.
    pub(crate) fn replicas(&self) -> Option<u64> {
        scalar(&self.body["deploy"]["replicas"]).and_then(|r| r.parse().ok())
    }
}

/// `SOURCE:TARGET[:MODE]`, `NAME:TARGET[:MODE]` or `TARGET`, as docker-compose 1.29
/// prints volumes.
fn parse_short_volume(short: &str) -> Option<Mount> {
    let parts: Vec<&str> = short.split(':').collect();
    match parts.as_slice() {
        [target] => Some(Mount::Anonymous {
            target: (*target).to_owned(),
        }),
        [source, target, mode @ ..] if mode.len() <= 1 => {
            let read_only = mode
                .first()
                .is_some_and(|m| m.split(',').any(|o| o == "ro"));
            if source.starts_with('/') || source.starts_with('.') {
                Some(Mount::Bind {
                    source: PathBuf::from(source),
                    target: (*target).to_owned(),
                    read_only,
                })
            } else {
                Some(Mount::Named {
                    name: (*source).to_owned(),
                    target: (*target).to_owned(),
                })
            }
        }
        _ => None,
    }
}

/// `[[IP:]PUBLISHED:]TARGET[/PROTOCOL]`.
fn parse_short_port(short: &str) -> Option<Port> {
    let spec = short.split('/').next()?;
    let parts: Vec<&str> = spec.split(':').collect();
    let (host_ip, published, target) = match parts.as_slice() {
        [target] => (None, None, *target),
        [published, target] => (None, Some(*published), *target),
        [ip, published, target] => (Some(*ip), Some(*published), *target),
        _ => return None,
    };
    Some(Port {
        host_ip: host_ip
            .filter(|ip| !ip.is_empty() && *ip != "0.0.0.0")
            .map(str::to_owned),
        published: match published {
            Some(p) if !p.is_empty() => Some(p.parse().ok()?),
            _ => None,
        },
        target: target.parse().ok()?,
    })
}

/// The keys of a mapping, or the items of a list (compose takes both for networks).
fn keys(value: &Value) -> BTreeSet<String> {
    match value {
        Value::Mapping(map) => map.keys().filter_map(scalar).collect(),
        Value::Sequence(items) => items.iter().filter_map(scalar).collect(),
        _ => BTreeSet::new(),
    }
}

/// A YAML scalar as text.
pub(crate) fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Every string in a YAML document with its key path (`services.lb1.environment.X`).
pub(crate) fn strings(value: &Value, path: &str) -> Vec<(String, String)> {
    match value {
        Value::String(s) => vec![(path.to_owned(), s.clone())],
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, v)| strings(v, &format!("{path}.{i}")))
            .collect(),
        Value::Mapping(map) => map
            .iter()
            .flat_map(|(k, v)| {
                let key = scalar(k).unwrap_or_default();
                let path = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                strings(v, &path)
            })
            .collect(),
        Value::Tagged(t) => strings(&t.value, path),
        _ => Vec::new(),
    }
}

/// A YAML file of the project.
pub(crate) fn load_yaml(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Every file under `path` (or `path` itself), recursively, in order.
pub(crate) fn files_under(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        out.extend(files_under(&entry.path()));
    }
    out.sort();
    out
}

/// `git` in the repository (the tests' view of what is committed and ignored).
pub(crate) fn git(args: &[&OsStr]) -> Result<std::process::Output> {
    let mut command = Command::new("git");
    command.arg("-C").arg(repo()).args(args);
    testkit::process::run_with_deadline(command, DEADLINE)
}

/// Whether `git` ignores `path` (relative to the repository).
pub(crate) fn git_ignores(path: &Path) -> Result<bool> {
    let out = git(&[
        OsStr::new("check-ignore"),
        OsStr::new("-q"),
        OsStr::new("--no-index"),
        path.as_os_str(),
    ])?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => bail!(
            "git check-ignore {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[test]
fn short_and_long_syntax_read_alike() {
    assert_eq!(
        parse_short_volume("/p/deploy/state/keys/root.pub:/etc/k/root.pub:ro"),
        Some(Mount::Bind {
            source: "/p/deploy/state/keys/root.pub".into(),
            target: "/etc/k/root.pub".into(),
            read_only: true
        })
    );
    assert_eq!(
        parse_short_volume("grafana-data:/var/lib/grafana:rw"),
        Some(Mount::Named {
            name: "grafana-data".into(),
            target: "/var/lib/grafana".into()
        })
    );
    assert_eq!(
        parse_short_volume("/var/lib/sealcast"),
        Some(Mount::Anonymous {
            target: "/var/lib/sealcast".into()
        })
    );
    assert_eq!(
        parse_short_port("127.0.0.1:9090:9090/tcp"),
        Some(Port {
            host_ip: Some("127.0.0.1".into()),
            published: Some(9090),
            target: 9090
        })
    );
    assert_eq!(
        parse_short_port("1936:1935"),
        Some(Port {
            host_ip: None,
            published: Some(1936),
            target: 1935
        })
    );
    let long: Value = serde_yaml::from_str(
        "services:\n  s:\n    volumes:\n      - {type: bind, source: /p/a, target: /a, read_only: true}\n      - {type: volume, source: v, target: /v}\n    ports:\n      - {target: 1935, published: \"1936\", protocol: tcp, mode: ingress}\n    healthcheck: {disable: true}\n",
    )
    .unwrap();
    let config = Config {
        doc: long,
        dir: "/p".into(),
        real_dir: "/p".into(),
    };
    let s = config.service("s").unwrap();
    assert_eq!(
        s.mounts().unwrap(),
        [
            Mount::Bind {
                source: "/p/a".into(),
                target: "/a".into(),
                read_only: true
            },
            Mount::Named {
                name: "v".into(),
                target: "/v".into()
            }
        ]
    );
    assert_eq!(
        s.ports().unwrap(),
        [Port {
            host_ip: None,
            published: Some(1936),
            target: 1935
        }]
    );
    assert_eq!(s.health(), Health::Disabled);
    assert_eq!(
        s.host_path("/a/b/c").unwrap(),
        Some(PathBuf::from("/p/a/b/c"))
    );
    assert_eq!(s.host_path("/ab").unwrap(), None);
}

/// Without a compose tool the checks fail, saying so; they never pass without one.
#[test]
fn no_compose_tool_is_a_failure_that_says_so() {
    let empty = tempfile::tempdir().unwrap();
    let e = compose_tool_on(empty.path().as_os_str()).unwrap_err();
    let text = format!("{e:#}");
    assert!(
        text.contains("neither `docker-compose` nor `docker compose`"),
        "{text}"
    );
}
