//! The docker compose cluster without a container engine: what `docker-compose.yml`, the
//! `Dockerfile` and `scripts/init-cluster.sh` give each container, turned into things a
//! test can run as plain processes on this machine. Shared by the test binaries that need
//! it (`tests/deploy.rs`, the end-to-end test) through
//! `#[path = "support/compose.rs"] mod compose;`.
//!
//! - **Compose file**: [`Project::load`] parses `docker-compose.yml` (YAML anchors and
//!   `<<` merge keys resolved), interpolates `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//!   `${VAR:?message}` and `$$` from a variable map ([`interpolate`], the `.env` the init
//!   script writes), and gives each [`Service`]'s command, entrypoint, environment,
//!   mounts, ports, healthcheck, profiles and replicas. [`Project::parse`] with no
//!   variables keeps the text as written (for checks on the file itself).
//! - **Dockerfile**: [`Dockerfile::load`] reads the build arguments, the stages and what
//!   the final stage sets (`ENV`, `USER`, `WORKDIR`, `HEALTHCHECK`, `ENTRYPOINT`, `CMD`,
//!   `COPY`). The image's `ENV` is part of every container built from it
//!   ([`Project::container_env`]).
//! - **A container's file system**: [`Container::materialize`] lays a service's bind
//!   mounts out under a temporary root (a symlink at `root + target` to each source), with
//!   empty directories for volumes and the image's own directories, and maps container
//!   paths in environment values to host paths under that root ([`Container::host_path`],
//!   [`Container::map_env`]).
//! - **The init script**: [`InitCluster::run`] runs `scripts/init-cluster.sh` in a copy of
//!   the files it needs and returns the `.env` it wrote and the project directory.
//! - **The broker**: [`Mosquitto::start`] runs the real Mosquitto (the Debian package)
//!   with the compose file's `mosquitto.conf`, password and ACL files, on free loopback
//!   ports.
//! - **Processes and metrics**: [`free_port`], [`wait_for_tcp`], [`stdout_line`],
//!   [`run_with_deadline`]; [`referenced_metrics`] (every `sealcast_*` name the Grafana
//!   dashboards query, [`dashboard_panels`]), [`exported_families`] and [`is_exported`]
//!   (what a `/metrics` page declares), [`registered_metrics`] (what the code registers,
//!   for families prometheus-client leaves out until they have a sample).
//!
//! Nothing here prints a secret: errors name variables and files, never their values.

// Every test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_yaml::Value;

/// Variables for interpolation (a parsed `.env`), or a container's environment.
pub(crate) type Vars = BTreeMap<String, String>;

/// The data directory of the sealcast image (`SEALCAST_DATA_DIR` and `WORKDIR` in the
/// `Dockerfile`).
pub(crate) const IMAGE_DATA_DIR: &str = "/var/lib/sealcast";

/// The repository's root (the workspace directory).
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

// ----------------------------------------------------------------------------------------
// Interpolation
// ----------------------------------------------------------------------------------------

/// Compose's variable interpolation of one string: `$$` is a literal `$`; `${VAR}` and
/// `$VAR` the value (empty when unset); `${VAR:-default}` the default when unset or empty,
/// `${VAR-default}` only when unset; `${VAR:?message}` an error when unset or empty,
/// `${VAR?message}` only when unset; `${VAR:+alt}`/`${VAR+alt}` the alternative when set.
/// Defaults are interpolated too (`${A:-${B}}`). A `$` followed by anything else is an
/// error, as in compose. Error messages name the variable, never a value.
pub(crate) fn interpolate(text: &str, vars: &Vars) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = closing_brace(inner).with_context(|| format!("unclosed ${{ in {text:?}"))?;
            out.push_str(&expand(&inner[..end], vars)?);
            rest = &inner[end + 1..];
        } else {
            let len = name_len(after);
            ensure!(
                len > 0,
                "invalid interpolation format in {text:?}: a lone $ (write $$ for a literal $)"
            );
            out.push_str(vars.get(&after[..len]).map_or("", String::as_str));
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// One `${...}` of a text: where it is, the variable and what follows the name
/// (`:-default`, `:?message`, ... or nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interpolation {
    /// Byte range of the whole `${...}` in the text.
    pub(crate) range: std::ops::Range<usize>,
    pub(crate) name: String,
    pub(crate) op: String,
}

impl Interpolation {
    /// Whether it has a value of its own when the variable is unset (`:-`, `-`, `:+`,
    /// `+`): a literal that the file, not `.env`, supplies.
    pub(crate) fn has_default(&self) -> bool {
        self.op.starts_with(":-")
            || self.op.starts_with('-')
            || self.op.starts_with(":+")
            || self.op.starts_with('+')
    }
}

/// The top-level `${...}` of `text` (those nested in a default are part of their outer
/// one); `$$` is skipped. Unbraced `$VAR` is not listed.
pub(crate) fn interpolations(text: &str) -> Result<Vec<Interpolation>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = text[i..].find('$') {
        let start = i + at;
        let after = &text[start + 1..];
        if after.starts_with('$') {
            i = start + 2;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = closing_brace(body).with_context(|| format!("unclosed ${{ in {text:?}"))?;
            let body = &body[..end];
            let len = name_len(body);
            ensure!(len > 0, "invalid interpolation format: ${{{body}}}");
            let whole_end = start + 2 + end + 1;
            out.push(Interpolation {
                range: start..whole_end,
                name: body[..len].to_owned(),
                op: body[len..].to_owned(),
            });
            i = whole_end;
        } else {
            i = start + 1;
        }
    }
    Ok(out)
}

/// The length of a variable name at the start of `s` (`[A-Za-z_][A-Za-z0-9_]*`), or 0.
fn name_len(s: &str) -> usize {
    match s.bytes().next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => s
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count(),
        _ => 0,
    }
}

/// The index of the `}` closing a `${` whose body starts `s`, counting nested `${`.
fn closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 1;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// One `${...}` body.
fn expand(body: &str, vars: &Vars) -> Result<String> {
    let len = name_len(body);
    ensure!(len > 0, "invalid interpolation format: ${{{body}}}");
    let (name, op) = body.split_at(len);
    let value = vars.get(name);
    let set = value.is_some();
    let non_empty = value.is_some_and(|v| !v.is_empty());
    let own = || value.cloned().unwrap_or_default();
    Ok(if op.is_empty() {
        own()
    } else if let Some(default) = op.strip_prefix(":-") {
        if non_empty {
            own()
        } else {
            interpolate(default, vars)?
        }
    } else if let Some(default) = op.strip_prefix('-') {
        if set {
            own()
        } else {
            interpolate(default, vars)?
        }
    } else if let Some(message) = op.strip_prefix(":?") {
        ensure!(
            non_empty,
            "required variable {name} is missing a value: {message}"
        );
        own()
    } else if let Some(message) = op.strip_prefix('?') {
        ensure!(
            set,
            "required variable {name} is missing a value: {message}"
        );
        own()
    } else if let Some(alternative) = op.strip_prefix(":+") {
        if non_empty {
            interpolate(alternative, vars)?
        } else {
            String::new()
        }
    } else if let Some(alternative) = op.strip_prefix('+') {
        if set {
            interpolate(alternative, vars)?
        } else {
            String::new()
        }
    } else {
        bail!("invalid interpolation format: ${{{body}}}")
    })
}

/// The variables of an env file (`NAME=value` lines; `#` comments, blank lines and an
/// `export ` prefix allowed; one pair of surrounding quotes removed), as compose reads
/// `.env`.
pub(crate) fn parse_env_file(text: &str) -> Vars {
    let mut vars = Vars::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
            .unwrap_or(value);
        vars.insert(name.trim().to_owned(), unquoted.to_owned());
    }
    vars
}

// ----------------------------------------------------------------------------------------
// The compose file
// ----------------------------------------------------------------------------------------

/// A parsed compose file.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    /// The directory relative bind-mount sources and build contexts start from.
    pub(crate) dir: PathBuf,
    /// Every service, by name (profiles included).
    pub(crate) services: BTreeMap<String, Service>,
    /// The top-level named volumes.
    pub(crate) named_volumes: BTreeSet<String>,
}

/// One service of the compose file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Service {
    pub(crate) name: String,
    pub(crate) image: Option<String>,
    /// Built from a Dockerfile (then containers also get the image's `ENV`).
    pub(crate) build: Option<Build>,
    /// A fixed container name (which `--scale` cannot have).
    pub(crate) container_name: Option<String>,
    /// `command`, split into arguments (a string is split like a shell would, without
    /// running one); `None`: the image's `CMD`.
    pub(crate) command: Option<Vec<String>>,
    /// `entrypoint`, likewise; `None`: the image's `ENTRYPOINT`.
    pub(crate) entrypoint: Option<Vec<String>>,
    /// `environment` (map or list form); variables given without a value take theirs from
    /// the interpolation variables, or are left out when there is none.
    pub(crate) environment: Vars,
    pub(crate) volumes: Vec<Mount>,
    pub(crate) ports: Vec<Port>,
    pub(crate) expose: Vec<String>,
    pub(crate) user: Option<String>,
    /// `None`: the image's `HEALTHCHECK` applies.
    pub(crate) healthcheck: Option<Healthcheck>,
    pub(crate) profiles: Vec<String>,
    /// `deploy.replicas`, as written (a number after interpolation).
    pub(crate) replicas: Option<String>,
}

/// A service's `build`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Build {
    /// The build context, relative to the project directory.
    pub(crate) context: String,
    /// The Dockerfile, relative to the context (default `Dockerfile`).
    pub(crate) dockerfile: String,
    /// Build arguments.
    pub(crate) args: Vars,
}

/// What is mounted at a container path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MountKind {
    /// A host path, relative to the project directory unless absolute.
    Bind {
        /// As written (`./deploy/...`).
        source: String,
        /// `bind.create_host_path` (long syntax; the short syntax creates it).
        create_host_path: bool,
    },
    /// A named volume (declared under the top-level `volumes`).
    Named(String),
    /// An anonymous volume (`- /var/lib/sealcast`).
    Anonymous,
    /// A tmpfs.
    Tmpfs,
}

/// One entry of a service's `volumes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub(crate) kind: MountKind,
    /// The container path.
    pub(crate) target: String,
    pub(crate) read_only: bool,
}

/// One entry of a service's `ports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Port {
    /// The host address it is published on (`None`: every address).
    pub(crate) host_ip: Option<String>,
    /// The host port (or range); `None`: an ephemeral port.
    pub(crate) published: Option<String>,
    /// The container port.
    pub(crate) target: String,
    pub(crate) protocol: Option<String>,
}

/// A healthcheck (compose `healthcheck` or Dockerfile `HEALTHCHECK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Healthcheck {
    /// `disable: true`, `test: ["NONE"]` or `HEALTHCHECK NONE`.
    Disabled,
    /// The test: `["CMD", program, args...]` or `["CMD-SHELL", script]`.
    Test(Vec<String>),
}

impl Healthcheck {
    /// The program and arguments of a `CMD` test.
    pub(crate) fn command(&self) -> Option<&[String]> {
        match self {
            Healthcheck::Test(test) if test.first().map(String::as_str) == Some("CMD") => {
                Some(&test[1..])
            }
            _ => None,
        }
    }
}

/// Reads a YAML file with anchors, aliases and `<<` merge keys resolved, nothing
/// interpolated.
pub(crate) fn load_yaml(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_yaml(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Parses YAML text and applies `<<` merge keys.
pub(crate) fn parse_yaml(text: &str) -> Result<Value> {
    let mut value: Value = serde_yaml::from_str(text)?;
    value.apply_merge()?;
    Ok(value)
}

/// Interpolates every string of `value` (mapping keys stay as written, as in compose).
fn interpolate_value(value: &mut Value, vars: &Vars) -> Result<()> {
    match value {
        Value::String(s) => *s = interpolate(s, vars)?,
        Value::Sequence(items) => {
            for item in items {
                interpolate_value(item, vars)?;
            }
        }
        Value::Mapping(map) => {
            for (key, item) in map.iter_mut() {
                interpolate_value(item, vars)
                    .with_context(|| format!("in {}", scalar(key).unwrap_or_default()))?;
            }
        }
        Value::Tagged(tagged) => interpolate_value(&mut tagged.value, vars)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// A scalar as compose turns it into a string (numbers and booleans as written).
pub(crate) fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_at(map: &Value, key: &str) -> Result<Option<String>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => Ok(Some(
            scalar(v).with_context(|| format!("{key} is not a scalar"))?,
        )),
    }
}

fn strings_at(map: &Value, key: &str) -> Result<Vec<String>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|v| scalar(v).with_context(|| format!("an item of {key} is not a scalar")))
            .collect(),
        Some(v) => Ok(vec![
            scalar(v).with_context(|| format!("{key} is not a list"))?
        ]),
    }
}

/// A `command` or `entrypoint`: a list as is, a string split into words.
fn command_at(map: &Value, key: &str) -> Result<Option<Vec<String>>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(shell_words(s)?)),
        Some(_) => Ok(Some(strings_at(map, key)?)),
    }
}

/// Splits a command string into words the way compose does (POSIX shell quoting, no
/// expansion).
pub(crate) fn shell_words(s: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => bail!("unclosed ' in {s:?}"),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => bail!("unclosed \" in {s:?}"),
                        },
                        Some(c) => w.push(c),
                        None => bail!("unclosed \" in {s:?}"),
                    }
                }
            }
            '\\' => {
                if let Some(c) = chars.next() {
                    word.get_or_insert_with(String::new).push(c);
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

impl Project {
    /// Reads `dir/docker-compose.yml`, interpolated with `vars`.
    pub(crate) fn load(dir: &Path, vars: &Vars) -> Result<Self> {
        let path = dir.join("docker-compose.yml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, dir, Some(vars))
    }

    /// Parses compose text. With `vars`, every string is interpolated first (as compose
    /// does); without, strings stay as written (`${...}` and `$$` included).
    pub(crate) fn parse(text: &str, dir: &Path, vars: Option<&Vars>) -> Result<Self> {
        let mut doc = parse_yaml(text)?;
        if let Some(vars) = vars {
            interpolate_value(&mut doc, vars)?;
        }
        let mut services = BTreeMap::new();
        let Some(Value::Mapping(list)) = doc.get("services") else {
            bail!("no services");
        };
        for (name, body) in list {
            let name = scalar(name).context("a service name is not a string")?;
            let service =
                Service::parse(&name, body, vars).with_context(|| format!("service {name}"))?;
            services.insert(name, service);
        }
        let named_volumes = match doc.get("volumes") {
            Some(Value::Mapping(v)) => v.keys().filter_map(scalar).collect(),
            _ => BTreeSet::new(),
        };
        Ok(Project {
            dir: dir.to_path_buf(),
            services,
            named_volumes,
        })
    }

    /// A service by name.
    pub(crate) fn service(&self, name: &str) -> Result<&Service> {
        self.services
            .get(name)
            .with_context(|| format!("docker-compose.yml has no service {name}"))
    }

    /// The Dockerfile a service is built from, if it is built.
    pub(crate) fn dockerfile(&self, service: &Service) -> Result<Option<Dockerfile>> {
        let Some(build) = &service.build else {
            return Ok(None);
        };
        let path = self.dir.join(&build.context).join(&build.dockerfile);
        Dockerfile::load(&path).map(Some)
    }

    /// A container's environment: the image's `ENV` (when the service is built from
    /// `image`), then the service's `environment` over it. Docker's own variables
    /// (`HOSTNAME`, `PATH`) are not included.
    pub(crate) fn container_env(&self, service: &Service, image: Option<&Dockerfile>) -> Vars {
        let mut env = match (image, &service.build) {
            (Some(image), Some(_)) => image.final_stage().env.clone(),
            _ => Vars::new(),
        };
        env.extend(service.environment.clone());
        env
    }
}

impl Service {
    fn parse(name: &str, body: &Value, vars: Option<&Vars>) -> Result<Self> {
        let build = match body.get("build") {
            None | Some(Value::Null) => None,
            Some(Value::String(context)) => Some(Build {
                context: context.clone(),
                dockerfile: "Dockerfile".to_owned(),
                args: Vars::new(),
            }),
            Some(b) => Some(Build {
                context: string_at(b, "context")?.unwrap_or_else(|| ".".to_owned()),
                dockerfile: string_at(b, "dockerfile")?.unwrap_or_else(|| "Dockerfile".to_owned()),
                args: key_values(b.get("args"), vars)?,
            }),
        };
        let healthcheck = match body.get("healthcheck") {
            None | Some(Value::Null) => None,
            Some(h) => Some(if h.get("disable").and_then(Value::as_bool) == Some(true) {
                Healthcheck::Disabled
            } else {
                match h.get("test") {
                    Some(Value::String(s)) => {
                        Healthcheck::Test(vec!["CMD-SHELL".to_owned(), s.clone()])
                    }
                    Some(_) => {
                        let test = strings_at(h, "test")?;
                        if test.first().map(String::as_str) == Some("NONE") {
                            Healthcheck::Disabled
                        } else {
                            Healthcheck::Test(test)
                        }
                    }
                    None => bail!("a healthcheck without test"),
                }
            }),
        };
        let volumes = match body.get("volumes") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(items)) => {
                items.iter().map(Mount::parse).collect::<Result<Vec<_>>>()?
            }
            Some(_) => bail!("volumes is not a list"),
        };
        let ports = match body.get("ports") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(items)) => {
                items.iter().map(Port::parse).collect::<Result<Vec<_>>>()?
            }
            Some(_) => bail!("ports is not a list"),
        };
        Ok(Service {
            name: name.to_owned(),
            image: string_at(body, "image")?,
            build,
            container_name: string_at(body, "container_name")?,
            command: command_at(body, "command")?,
            entrypoint: command_at(body, "entrypoint")?,
            environment: key_values(body.get("environment"), vars)?,
            volumes,
            ports,
            expose: strings_at(body, "expose")?,
            user: string_at(body, "user")?,
            healthcheck,
            profiles: strings_at(body, "profiles")?,
            replicas: match body.get("deploy") {
                Some(deploy) => string_at(deploy, "replicas")?,
                None => None,
            },
        })
    }

    /// The program and arguments the container runs: the service's entrypoint (or the
    /// image's), then its command (or the image's `CMD`, unless the service replaced the
    /// entrypoint, which clears it, as in Docker).
    pub(crate) fn argv(&self, image: Option<&Dockerfile>) -> Vec<String> {
        let stage = image.map(Dockerfile::final_stage);
        let mut argv = self
            .entrypoint
            .clone()
            .or_else(|| stage.and_then(|s| s.entrypoint.clone()))
            .unwrap_or_default();
        let command = match (&self.command, &self.entrypoint) {
            (Some(command), _) => command.clone(),
            (None, Some(_)) => Vec::new(),
            (None, None) => stage.and_then(|s| s.cmd.clone()).unwrap_or_default(),
        };
        argv.extend(command);
        argv
    }

    /// The healthcheck that applies: the service's, else the image's.
    pub(crate) fn effective_healthcheck(&self, image: Option<&Dockerfile>) -> Option<Healthcheck> {
        self.healthcheck.clone().or_else(|| {
            image
                .filter(|_| self.build.is_some())
                .and_then(|i| i.final_stage().healthcheck.clone())
        })
    }

    /// The bind mounts: (source as written, mount).
    pub(crate) fn bind_mounts(&self) -> impl Iterator<Item = (&str, &Mount)> {
        self.volumes.iter().filter_map(|m| match &m.kind {
            MountKind::Bind { source, .. } => Some((source.as_str(), m)),
            _ => None,
        })
    }
}

/// `environment` or `build.args`: a map (null values resolved from `vars`) or a list of
/// `NAME=value` / `NAME`.
fn key_values(value: Option<&Value>, vars: Option<&Vars>) -> Result<Vars> {
    let from_vars = |name: &str| vars.and_then(|v| v.get(name)).cloned();
    let mut out = Vars::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(map)) => {
            for (k, v) in map {
                let k = scalar(k).context("a variable name is not a string")?;
                let v = match v {
                    Value::Null => from_vars(&k),
                    v => Some(scalar(v).with_context(|| format!("{k} is not a scalar"))?),
                };
                if let Some(v) = v {
                    out.insert(k, v);
                }
            }
        }
        Some(Value::Sequence(items)) => {
            for item in items {
                let item = scalar(item).context("an environment item is not a string")?;
                match item.split_once('=') {
                    Some((k, v)) => {
                        out.insert(k.to_owned(), v.to_owned());
                    }
                    None => {
                        if let Some(v) = from_vars(&item) {
                            out.insert(item, v);
                        }
                    }
                }
            }
        }
        Some(_) => bail!("not a map or a list"),
    }
    Ok(out)
}

impl Mount {
    fn parse(value: &Value) -> Result<Self> {
        if let Some(short) = value.as_str() {
            // [SOURCE:]TARGET[:MODE]
            let parts: Vec<&str> = short.split(':').collect();
            let (source, target, mode) = match parts.as_slice() {
                [target] => (None, *target, ""),
                [source, target] => (Some(*source), *target, ""),
                [source, target, mode] => (Some(*source), *target, *mode),
                _ => bail!("volume {short:?} has too many ':'"),
            };
            let kind = match source {
                None => MountKind::Anonymous,
                Some(s) if s.starts_with('.') || s.starts_with('/') || s.starts_with('~') => {
                    MountKind::Bind {
                        source: s.to_owned(),
                        create_host_path: true,
                    }
                }
                Some(name) => MountKind::Named(name.to_owned()),
            };
            return Ok(Mount {
                kind,
                target: target.to_owned(),
                read_only: mode.split(',').any(|m| m == "ro"),
            });
        }
        let kind = string_at(value, "type")?.context("a long-syntax volume without type")?;
        let source = string_at(value, "source")?;
        let target = string_at(value, "target")?.context("a volume without target")?;
        let kind = match (kind.as_str(), source) {
            ("bind", Some(source)) => MountKind::Bind {
                source,
                create_host_path: value
                    .get("bind")
                    .and_then(|b| b.get("create_host_path"))
                    .and_then(Value::as_bool)
                    .unwrap_or(true),
            },
            ("bind", None) => bail!("a bind mount without source"),
            ("volume", Some(name)) => MountKind::Named(name),
            ("volume", None) => MountKind::Anonymous,
            ("tmpfs", _) => MountKind::Tmpfs,
            (other, _) => bail!("volume type {other} is not supported here"),
        };
        Ok(Mount {
            kind,
            target,
            read_only: value.get("read_only").and_then(Value::as_bool) == Some(true),
        })
    }
}

impl Port {
    fn parse(value: &Value) -> Result<Self> {
        if let Some(short) = scalar(value).filter(|_| !value.is_mapping()) {
            // [[HOST_IP:]PUBLISHED:]TARGET[/PROTOCOL]
            let (spec, protocol) = match short.split_once('/') {
                Some((s, p)) => (s, Some(p.to_owned())),
                None => (short.as_str(), None),
            };
            let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
            let (host_ip, published, target) = match parts.as_slice() {
                [target] => (None, None, *target),
                [target, published] => (None, Some(*published), *target),
                [target, published, ip] => (Some(*ip), Some(*published), *target),
                _ => bail!("port {short:?}"),
            };
            return Ok(Port {
                host_ip: host_ip.map(str::to_owned),
                published: published.filter(|p| !p.is_empty()).map(str::to_owned),
                target: target.to_owned(),
                protocol,
            });
        }
        Ok(Port {
            host_ip: string_at(value, "host_ip")?,
            published: string_at(value, "published")?,
            target: string_at(value, "target")?.context("a port without target")?,
            protocol: string_at(value, "protocol")?,
        })
    }
}

// ----------------------------------------------------------------------------------------
// The Dockerfile
// ----------------------------------------------------------------------------------------

/// A parsed Dockerfile.
#[derive(Debug, Clone, Default)]
pub(crate) struct Dockerfile {
    /// `ARG`s before the first `FROM` (those a `FROM` line may use).
    pub(crate) global_args: Vec<BuildArg>,
    pub(crate) stages: Vec<Stage>,
}

/// An `ARG` with its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuildArg {
    pub(crate) name: String,
    pub(crate) default: Option<String>,
}

/// One `FROM` stage and what it sets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stage {
    /// The base image as written (`${RUNTIME_IMAGE}`).
    pub(crate) base: String,
    /// `AS name`.
    pub(crate) name: Option<String>,
    pub(crate) args: Vec<BuildArg>,
    pub(crate) env: Vars,
    pub(crate) user: Option<String>,
    pub(crate) workdir: Option<String>,
    pub(crate) healthcheck: Option<Healthcheck>,
    pub(crate) entrypoint: Option<Vec<String>>,
    pub(crate) cmd: Option<Vec<String>>,
    pub(crate) copies: Vec<Copy>,
    pub(crate) expose: Vec<String>,
}

/// A `COPY` (or `ADD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Copy {
    /// `--from=stage`: `None` copies from the build context.
    pub(crate) from: Option<String>,
    pub(crate) sources: Vec<String>,
    pub(crate) dest: String,
}

impl Dockerfile {
    /// Reads and parses a Dockerfile.
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Parses Dockerfile text (line continuations joined, comment lines dropped).
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let mut file = Dockerfile::default();
        for instruction in instructions(text) {
            let (keyword, rest) = instruction
                .split_once(char::is_whitespace)
                .unwrap_or((instruction.as_str(), ""));
            let keyword = keyword.to_ascii_uppercase();
            let rest = rest.trim();
            if keyword == "FROM" {
                let words: Vec<&str> = rest.split_whitespace().collect();
                let words: Vec<&str> = words.into_iter().filter(|w| !w.starts_with("--")).collect();
                let (base, name) = match words.as_slice() {
                    [base] => (*base, None),
                    [base, as_, name] if as_.eq_ignore_ascii_case("as") => {
                        (*base, Some((*name).to_owned()))
                    }
                    _ => bail!("FROM {rest}"),
                };
                file.stages.push(Stage {
                    base: base.to_owned(),
                    name,
                    ..Stage::default()
                });
                continue;
            }
            let Some(stage) = file.stages.last_mut() else {
                match keyword.as_str() {
                    "ARG" => file.global_args.push(parse_arg(rest)),
                    _ => bail!("{keyword} before the first FROM"),
                }
                continue;
            };
            match keyword.as_str() {
                "ARG" => stage.args.push(parse_arg(rest)),
                "ENV" => stage.env.extend(parse_env(rest)?),
                "USER" => stage.user = Some(rest.to_owned()),
                "WORKDIR" => stage.workdir = Some(rest.to_owned()),
                "ENTRYPOINT" => stage.entrypoint = Some(exec_form(rest)?),
                "CMD" => stage.cmd = Some(exec_form(rest)?),
                "EXPOSE" => stage
                    .expose
                    .extend(rest.split_whitespace().map(str::to_owned)),
                "HEALTHCHECK" => {
                    let mut words = rest;
                    while let Some(flag) = words.strip_prefix("--") {
                        words = flag
                            .split_once(char::is_whitespace)
                            .map_or("", |(_, r)| r.trim_start());
                    }
                    stage.healthcheck = Some(if words.eq_ignore_ascii_case("NONE") {
                        Healthcheck::Disabled
                    } else {
                        let command = words
                            .strip_prefix("CMD")
                            .with_context(|| format!("HEALTHCHECK {rest}"))?
                            .trim();
                        if command.starts_with('[') {
                            let mut test = vec!["CMD".to_owned()];
                            test.extend(exec_form(command)?);
                            Healthcheck::Test(test)
                        } else {
                            Healthcheck::Test(vec!["CMD-SHELL".to_owned(), command.to_owned()])
                        }
                    });
                }
                "COPY" | "ADD" => {
                    let mut from = None;
                    let mut words = Vec::new();
                    if rest.starts_with('[') {
                        words = exec_form(rest)?;
                    } else {
                        for word in rest.split_whitespace() {
                            if let Some(flag) = word.strip_prefix("--") {
                                if let Some(stage) = flag.strip_prefix("from=") {
                                    from = Some(stage.to_owned());
                                }
                            } else {
                                words.push(word.to_owned());
                            }
                        }
                    }
                    let dest = words.pop().with_context(|| format!("COPY {rest}"))?;
                    ensure!(!words.is_empty(), "COPY {rest} has no source");
                    stage.copies.push(Copy {
                        from,
                        sources: words,
                        dest,
                    });
                }
                _ => {}
            }
        }
        ensure!(!file.stages.is_empty(), "no FROM");
        Ok(file)
    }

    /// The stage the image is (the last one).
    pub(crate) fn final_stage(&self) -> &Stage {
        // `parse` refuses a Dockerfile without a stage.
        &self.stages[self.stages.len() - 1]
    }

    /// Directories the image has that a container uses: the final stage's `WORKDIR` and
    /// every absolute path its `ENV` sets (`SEALCAST_DATA_DIR`).
    pub(crate) fn image_dirs(&self) -> Vec<String> {
        let stage = self.final_stage();
        stage
            .workdir
            .iter()
            .chain(stage.env.values())
            .filter(|v| v.starts_with('/'))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}

/// The instructions of a Dockerfile, one string each.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(continued) = trimmed.strip_suffix('\\') {
            current.push_str(continued);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            if !current.trim().is_empty() {
                out.push(current.trim().to_owned());
            }
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
    out
}

fn parse_arg(rest: &str) -> BuildArg {
    match rest.split_once('=') {
        Some((name, default)) => BuildArg {
            name: name.trim().to_owned(),
            default: Some(unquote(default.trim())),
        },
        None => BuildArg {
            name: rest.trim().to_owned(),
            default: None,
        },
    }
}

fn unquote(s: &str) -> String {
    ['"', '\'']
        .iter()
        .find_map(|q| s.strip_prefix(*q)?.strip_suffix(*q))
        .unwrap_or(s)
        .to_owned()
}

/// `ENV A=1 B="two words"` or the old `ENV A value`.
fn parse_env(rest: &str) -> Result<Vars> {
    let words = shell_words(rest)?;
    let mut vars = Vars::new();
    if words.first().is_some_and(|w| !w.contains('=')) {
        let (name, value) = rest
            .split_once(char::is_whitespace)
            .with_context(|| format!("ENV {rest}"))?;
        vars.insert(name.to_owned(), value.trim().to_owned());
        return Ok(vars);
    }
    for word in words {
        let (name, value) = word
            .split_once('=')
            .with_context(|| format!("ENV {rest}"))?;
        vars.insert(name.to_owned(), value.to_owned());
    }
    Ok(vars)
}

/// `["a", "b"]` (exec form) or a shell command (`/bin/sh -c "..."`).
fn exec_form(rest: &str) -> Result<Vec<String>> {
    if rest.starts_with('[') {
        serde_json::from_str(rest).with_context(|| format!("{rest} is not a JSON list"))
    } else {
        Ok(vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.to_owned()])
    }
}

// ----------------------------------------------------------------------------------------
// A container's file system
// ----------------------------------------------------------------------------------------

/// A service's view of the file system, laid out under a temporary root: each bind mount's
/// source appears (as a symlink) at `root + target`, each volume and each of the image's
/// directories as an empty directory. Processes get container paths mapped to host paths
/// under the root ([`Container::map_env`]). Removed when dropped (the sources stay).
#[derive(Debug)]
pub(crate) struct Container {
    root: tempfile::TempDir,
    /// What is mounted where.
    pub(crate) mounts: Vec<MountedPath>,
    /// Directories of the image (`WORKDIR`, paths its `ENV` sets).
    image_dirs: Vec<String>,
    workdir: Option<String>,
    /// The host name Docker gives the container (a container id), for `HOSTNAME`.
    pub(crate) hostname: String,
}

/// One mount of a materialized container.
#[derive(Debug, Clone)]
pub(crate) struct MountedPath {
    /// The container path.
    pub(crate) target: String,
    /// Where the target is under the root.
    pub(crate) host: PathBuf,
    /// The bind mount's source on the host (`None`: a volume, an empty directory).
    pub(crate) source: Option<PathBuf>,
    /// Mounted read-only (kept as information: a symlink cannot enforce it).
    pub(crate) read_only: bool,
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
    pub(crate) fn materialize(
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
    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }

    /// The host path of a container path, when the container has it: at or under a mount
    /// target, a directory leading to one (Docker creates those), or at or under one of
    /// the image's directories. `None` for anything else (and for relative paths).
    pub(crate) fn host_path(&self, container_path: &str) -> Option<PathBuf> {
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
    pub(crate) fn mount(&self, target: &str) -> Option<&MountedPath> {
        self.mounts.iter().find(|m| m.target == target)
    }

    /// `env` with every value that is a container path the container has replaced by its
    /// host path under the root; everything else as is.
    pub(crate) fn map_env(&self, env: &Vars) -> Vars {
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
    pub(crate) fn workdir(&self) -> PathBuf {
        self.workdir
            .as_deref()
            .and_then(|w| self.host_path(w))
            .unwrap_or_else(|| self.root.path().to_path_buf())
    }

    /// A command for `program` as the container would run it: no inherited environment
    /// but `PATH`, the container's `env` (paths mapped), `HOSTNAME` as Docker sets it, the
    /// image's working directory.
    pub(crate) fn command(&self, program: &Path, env: &Vars) -> Command {
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

// ----------------------------------------------------------------------------------------
// scripts/init-cluster.sh
// ----------------------------------------------------------------------------------------

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
pub(crate) struct InitCluster {
    dir: tempfile::TempDir,
    /// The `.env` it wrote.
    pub(crate) env: Vars,
    /// What the last run wrote on stderr (no secrets: the script prints none).
    pub(crate) stderr: String,
}

impl InitCluster {
    /// Copies the project files from `repo` into a temporary directory and runs
    /// `scripts/init-cluster.sh` there with `SEALCAST_BIN=sealcast` and `PATH` only.
    pub(crate) fn run(repo: &Path, sealcast: &Path) -> Result<Self> {
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
        };
        init.rerun(sealcast, &[])?;
        Ok(init)
    }

    /// Runs the script again in the same directory (with `args`), and reads `.env` again.
    pub(crate) fn rerun(&mut self, sealcast: &Path, args: &[&str]) -> Result<()> {
        let mut command = Command::new("bash");
        command
            .arg("scripts/init-cluster.sh")
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("SEALCAST_BIN", sealcast);
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
    pub(crate) fn project_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The compose file of the copy, interpolated with the `.env` the script wrote.
    pub(crate) fn project(&self) -> Result<Project> {
        Project::load(self.dir.path(), &self.env)
    }

    /// A variable of `.env`, which must be there (the error names it, not its value).
    pub(crate) fn var(&self, name: &str) -> Result<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .with_context(|| format!(".env has no {name}"))
    }

    /// The values of `.env` that are secrets (passwords and tokens), for checking that
    /// nothing prints them.
    pub(crate) fn secret_values(&self) -> Vec<&str> {
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
    pub(crate) fn redact(&self, text: &str) -> String {
        redact(text, &self.secret_values())
    }
}

/// `text` with each of `secrets` replaced by `***`.
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |t, s| t.replace(s, "***"))
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

// ----------------------------------------------------------------------------------------
// Mosquitto
// ----------------------------------------------------------------------------------------

/// The Debian package's broker.
pub(crate) const MOSQUITTO_BIN: &str = "/usr/sbin/mosquitto";

/// The real Mosquitto, started with the compose file's `mosquitto.conf` where only the
/// listener ports (free loopback ports instead) and the container paths (host paths
/// instead) are changed. Killed when dropped.
#[derive(Debug)]
pub(crate) struct Mosquitto {
    child: std::process::Child,
    /// Container port (as in the conf, 1883) to the port it listens on here.
    ports: BTreeMap<u16, u16>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts the broker of the compose file's `mosquitto` service in `init`'s project:
    /// its conf is the bind mount at `/mosquitto/config/mosquitto.conf`, the container
    /// paths of its other bind mounts become their sources (the init script's password
    /// files and ACLs), except its data directory, which is a fresh temporary directory.
    pub(crate) fn start_for(project: &Project, service: &str) -> Result<Self> {
        let service = project.service(service)?;
        let mut conf = None;
        let mut paths = Vec::new();
        for (source, mount) in service.bind_mounts() {
            let source = project.dir.join(source);
            if mount.target == "/mosquitto/config/mosquitto.conf" {
                conf = Some(source);
            } else if mount.target != "/mosquitto/data" {
                paths.push((mount.target.clone(), source));
            }
        }
        let conf =
            conf.context("the mosquitto service mounts no /mosquitto/config/mosquitto.conf")?;
        Self::start(&conf, &paths)
    }

    /// Starts `mosquitto -c` with `conf` rewritten: each `listener PORT` on a free port
    /// of 127.0.0.1, each container path prefix of `paths` replaced by its host path,
    /// `/mosquitto/data` by a temporary directory. Any other `/mosquitto/` path left in
    /// the conf is an error (the test would not know what it points at). Waits until every
    /// listener accepts connections.
    pub(crate) fn start(conf: &Path, paths: &[(String, PathBuf)]) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("mosquitto-").tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data)?;
        let mut paths: Vec<(String, String)> = paths
            .iter()
            .map(|(c, h)| {
                (
                    c.trim_end_matches('/').to_owned(),
                    h.to_string_lossy().into_owned(),
                )
            })
            .collect();
        paths.push((
            "/mosquitto/data".to_owned(),
            data.to_string_lossy().into_owned(),
        ));
        // Longest prefix first.
        paths.sort_by_key(|(c, _)| std::cmp::Reverse(c.len()));
        let text =
            std::fs::read_to_string(conf).with_context(|| format!("reading {}", conf.display()))?;
        let mut ports = BTreeMap::new();
        let mut out = String::new();
        for line in text.lines() {
            let trimmed = line.trim();
            let mut words = trimmed.split_whitespace();
            if trimmed.starts_with('#') || trimmed.is_empty() {
                out.push_str(line);
            } else if words.next() == Some("listener") {
                let port: u16 = words
                    .next()
                    .and_then(|p| p.parse().ok())
                    .with_context(|| format!("{}: {trimmed:?}", conf.display()))?;
                let free = free_port()?;
                ensure!(
                    ports.insert(port, free).is_none(),
                    "two listeners on {port}"
                );
                out.push_str(&format!("listener {free} 127.0.0.1"));
            } else {
                // Every absolute path must be one the test knows a host path for.
                let mut words = Vec::new();
                for word in trimmed.split_whitespace() {
                    if !word.starts_with('/') {
                        words.push(word.to_owned());
                        continue;
                    }
                    let mapped = paths.iter().find_map(|(container, host)| {
                        let rest = word.strip_prefix(container.as_str())?;
                        (rest.is_empty() || rest.starts_with('/')).then(|| format!("{host}{rest}"))
                    });
                    words.push(mapped.with_context(|| {
                        format!(
                            "{}: {trimmed:?} names {word}, which the compose service does not mount",
                            conf.display()
                        )
                    })?);
                }
                out.push_str(&words.join(" "));
            }
            out.push('\n');
        }
        ensure!(!ports.is_empty(), "{} has no listener", conf.display());
        if running_as_root(dir.path())? {
            // In compose the broker runs as RUN_UID, the owner of its 0600 files. Started
            // by root, Mosquitto would drop to the `mosquitto` user, who cannot read them.
            out.push_str("# The test runs as root: stay the files' owner.\nuser root\n");
        }
        let test_conf = dir.path().join("mosquitto.conf");
        std::fs::write(&test_conf, out)?;
        let log = dir.path().join("mosquitto.log");
        let log_file = std::fs::File::create(&log)?;
        // Mosquitto writes its log with stdio, block-buffered into a file: line-buffered
        // through coreutils' stdbuf, the log is there when a test reports it.
        let mut command = if Path::new("/usr/bin/stdbuf").exists() {
            let mut c = Command::new("/usr/bin/stdbuf");
            c.arg("-oL").arg(MOSQUITTO_BIN);
            c
        } else {
            Command::new(MOSQUITTO_BIN)
        };
        let child = command
            .arg("-c")
            .arg(&test_conf)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {MOSQUITTO_BIN}"))?;
        let mut broker = Mosquitto {
            child,
            ports,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        for port in broker.ports.values().copied().collect::<Vec<_>>() {
            if let Err(e) = wait_for_tcp(port, deadline, || broker.exited()) {
                bail!("{e:#}; mosquitto's log:\n{}", broker.log());
            }
        }
        Ok(broker)
    }

    /// Whether the broker has exited (with its status).
    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("mosquitto exited with {status}")),
            Ok(None) => None,
            Err(e) => Some(format!("mosquitto: {e}")),
        }
    }

    /// The local port of the conf's `listener container_port`.
    pub(crate) fn port(&self, container_port: u16) -> Result<u16> {
        self.ports
            .get(&container_port)
            .copied()
            .with_context(|| format!("mosquitto.conf has no listener {container_port}"))
    }

    /// What the broker logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this process runs as root (judged by the owner of a file it creates in `dir`).
pub(crate) fn running_as_root(dir: &Path) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let probe = dir.join(".owner");
    std::fs::write(&probe, b"")?;
    let uid = std::fs::metadata(&probe)?.uid();
    std::fs::remove_file(&probe)?;
    Ok(uid == 0)
}

// ----------------------------------------------------------------------------------------
// Processes
// ----------------------------------------------------------------------------------------

/// A free TCP port of 127.0.0.1 (bound to port 0, read, released). For programs that do
/// not say which port they bound.
pub(crate) fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Polls until 127.0.0.1:`port` accepts a connection, `deadline` passes, or `gone` says
/// the server exited.
pub(crate) fn wait_for_tcp(
    port: u16,
    deadline: Instant,
    mut gone: impl FnMut() -> Option<String>,
) -> Result<()> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    loop {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(why) = gone() {
            bail!("{why} before accepting connections on {addr}");
        }
        ensure!(
            Instant::now() < deadline,
            "nothing accepted connections on {addr} in time"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `command` to completion (stdout and stderr captured), killing it at `timeout`.
pub(crate) fn run_with_deadline(mut command: Command, timeout: Duration) -> Result<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", command.get_program()))?;
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{:?} did not finish within {timeout:?}",
                command.get_program()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Reads `child`'s stdout until a line starts with `prefix` (30 s at most) and returns
/// the rest of that line (without a trailing `/`); stdout is then drained in the
/// background so the child never blocks on it.
pub(crate) async fn stdout_line(child: &mut tokio::process::Child, prefix: &str) -> Result<String> {
    use tokio::io::AsyncBufReadExt;
    let stdout = child.stdout.take().context("stdout not piped")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.strip_prefix(prefix) {
                return Some(rest.trim_end_matches('/').to_owned());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .with_context(|| format!("no line starting with {prefix:?} on stdout"))?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(found)
}

// ----------------------------------------------------------------------------------------
// Metrics
// ----------------------------------------------------------------------------------------

/// A panel of a Grafana dashboard (or a query variable, `kind` "variable").
#[derive(Debug, Clone)]
pub(crate) struct Panel {
    /// The dashboard's file name.
    pub(crate) file: String,
    pub(crate) title: String,
    /// `timeseries`, `stat`, `row`, ... or `variable`.
    pub(crate) kind: String,
    /// The query expressions of its targets.
    pub(crate) exprs: Vec<String>,
    /// The data source uids it (or its targets) names.
    pub(crate) datasources: Vec<String>,
}

/// Every panel of the Grafana dashboards in `deploy/grafana/dashboards/` (panels inside
/// rows included), and their query variables.
pub(crate) fn dashboard_panels() -> Result<Vec<Panel>> {
    let dir = repo_root().join("deploy/grafana/dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path)?)
                .with_context(|| format!("parsing {}", path.display()))?;
        let uid = |v: &serde_json::Value| v["datasource"]["uid"].as_str().map(str::to_owned);
        let mut panels: Vec<&serde_json::Value> = dashboard["panels"]
            .as_array()
            .map(|p| p.iter().collect())
            .unwrap_or_default();
        while let Some(panel) = panels.pop() {
            if let Some(inner) = panel["panels"].as_array() {
                panels.extend(inner);
            }
            let targets = panel["targets"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            out.push(Panel {
                file: file.clone(),
                title: panel["title"].as_str().unwrap_or_default().to_owned(),
                kind: panel["type"].as_str().unwrap_or_default().to_owned(),
                exprs: targets
                    .iter()
                    .filter_map(|t| t["expr"].as_str().map(str::to_owned))
                    .collect(),
                datasources: uid(panel)
                    .into_iter()
                    .chain(targets.iter().filter_map(uid))
                    .collect(),
            });
        }
        for variable in dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if variable["type"].as_str() != Some("query") {
                continue;
            }
            let query = match &variable["query"] {
                serde_json::Value::String(q) => Some(q.clone()),
                q => q["query"].as_str().map(str::to_owned),
            };
            out.push(Panel {
                file: file.clone(),
                title: format!("${}", variable["name"].as_str().unwrap_or_default()),
                kind: "variable".to_owned(),
                exprs: query.into_iter().collect(),
                datasources: uid(variable).into_iter().collect(),
            });
        }
    }
    Ok(out)
}

/// Every `sealcast_*` metric name in `text` (a whole identifier, not part of a longer one).
pub(crate) fn metric_names(text: &str) -> BTreeSet<String> {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let bytes = text.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while let Some(at) = text[i..].find("sealcast_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && ident(bytes[end]) {
            end += 1;
        }
        if start == 0 || !ident(bytes[start - 1]) {
            names.insert(text[start..end].to_owned());
        }
        i = end.max(start + 1);
    }
    names
}

/// Every `sealcast_*` metric the Grafana dashboards query.
/// (A dashboard that cannot be read references nothing; the provisioning test reports
/// why.)
pub(crate) fn referenced_metrics() -> BTreeSet<String> {
    dashboard_panels()
        .unwrap_or_default()
        .iter()
        .flat_map(|p| &p.exprs)
        .flat_map(|expr| metric_names(expr))
        .collect()
}

/// The metric families a Prometheus exposition declares (`# TYPE name kind`), with their
/// kind. prometheus-client declares every registered family, samples or not.
pub(crate) fn exported_families(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect()
}

/// Whether a queried name is a series one of `families` exports: a gauge (or untyped)
/// family by its name, a counter as `_total` (or `_created`), a histogram as `_bucket`,
/// `_sum`, `_count`, a summary by its name, `_sum` or `_count`, an info as `_info`. (A
/// counter's bare family name is no series: a query of it finds nothing.)
pub(crate) fn is_exported(name: &str, families: &BTreeMap<String, String>) -> bool {
    families.iter().any(|(base, kind)| {
        let suffixes: &[&str] = match kind.as_str() {
            "counter" => &["_total", "_created"],
            "histogram" | "gaugehistogram" => &["_bucket", "_sum", "_count", "_created"],
            "summary" => &["", "_sum", "_count", "_created"],
            "info" => &["_info"],
            _ => &[""],
        };
        name.strip_prefix(base.as_str())
            .is_some_and(|s| suffixes.contains(&s))
    })
}

/// A metric family registered in the workspace's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Registered {
    /// `counter`, `gauge`, `histogram`, `info`, as the exposition would say; `None` when
    /// the registered value's type could not be made out.
    pub(crate) kind: Option<String>,
    /// The source file (relative to the repository).
    pub(crate) file: PathBuf,
}

/// Every `sealcast_*` family registered with a literal name in the workspace crates'
/// `src/` (`registry.register("name", "help", value)`), with its kind read from the
/// registered value's type (its field or `let` in the same file, through one `type`
/// alias).
///
/// Why this exists: prometheus-client 0.25 leaves out of `/metrics` every `Family` that
/// has no label set yet (`Registry::encode` skips empty metrics), so a role that just
/// started does not declare, say, its per-rung encode speed until it encodes. A test that
/// reads the running roles' `/metrics` uses this for those families only, after checking
/// that it agrees with every family the roles do declare.
pub(crate) fn registered_metrics() -> Result<BTreeMap<String, Registered>> {
    let root = repo_root();
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&root)? {
        let src = entry?.path().join("src");
        if !src.is_dir() || !src.parent().is_some_and(|c| c.join("Cargo.toml").is_file()) {
            continue;
        }
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().and_then(|e| e.to_str()) == Some("rs") {
                    let text = std::fs::read_to_string(&path)?;
                    for (name, kind) in registrations(&text) {
                        let file = path.strip_prefix(&root).unwrap_or(&path).to_path_buf();
                        out.insert(name, Registered { kind, file });
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The `register("sealcast_...", "help", value)` calls of one source file.
fn registrations(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices(".register(") {
        let rest = text[at + ".register(".len()..].trim_start();
        let Some((name, rest)) = string_literal(rest) else {
            continue;
        };
        if !name.starts_with("sealcast_") {
            continue;
        }
        let kind = rest
            .trim_start()
            .strip_prefix(',')
            .and_then(|r| string_literal(r.trim_start()))
            .and_then(|(_, r)| r.trim_start().strip_prefix(','))
            .and_then(|r| call_argument(r.trim_start()))
            .and_then(|value| value_kind(text, value));
        out.push((name, kind));
    }
    out
}

/// A Rust string literal at the start of `s` (escapes kept as written) and what follows.
fn string_literal(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some((body[..i].to_owned(), &body[i + 1..])),
            _ => escaped = false,
        }
    }
    None
}

/// The last argument of a call, from its start to the call's closing parenthesis.
fn call_argument(s: &str) -> Option<&str> {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth > 0 => depth -= 1,
            ')' => return Some(s[..i].trim().trim_end_matches(',').trim()),
            _ => {}
        }
    }
    None
}

/// The metric kind of a registered value (`x.clone()`, `self.inner.x.clone()`, or a
/// constructor), from its declaration in `text`.
fn value_kind(text: &str, value: &str) -> Option<String> {
    let value = value.strip_suffix(".clone()").unwrap_or(value);
    if let Some(kind) = kind_of_type(value) {
        return Some(kind);
    }
    let ident = value.rsplit('.').next()?.trim();
    // Every declaration of the name (`let x = ...`, `let x: T`, a field `x: T`); the first
    // whose type names a metric kind (initialisers like `x: Family::default()` name none).
    [
        format!("let {ident} = "),
        format!("let {ident}: "),
        format!("{ident}: "),
    ]
    .iter()
    .flat_map(|pattern| {
        text.match_indices(pattern.as_str())
            .map(move |(at, _)| (at, pattern.len()))
    })
    .filter(|(at, _)| {
        let before = text[..*at].chars().next_back();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
    })
    .find_map(|(at, len)| {
        let rest = &text[at + len..];
        let end = rest.find([';', '\n']).unwrap_or(rest.len());
        let declared = rest[..end].trim().trim_end_matches(',');
        // Through a type alias (`push_seconds: HistogramFamily`).
        let alias = text
            .match_indices(&format!("type {declared} = "))
            .next()
            .and_then(|(at, _)| {
                let rest = &text[at..];
                rest.find(';').map(|end| &rest[..end])
            });
        kind_of_type(alias.unwrap_or(declared))
    })
}

/// The metric kind a type or constructor names.
fn kind_of_type(text: &str) -> Option<String> {
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .collect();
    ["Histogram", "Counter", "Gauge", "Info"]
        .iter()
        .find(|kind| words.contains(kind))
        .map(|kind| kind.to_ascii_lowercase())
}
