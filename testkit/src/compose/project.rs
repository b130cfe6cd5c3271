//! The compose file: YAML (anchors and `<<` merge keys resolved), interpolated, and each
//! service's command, entrypoint, environment, mounts, ports, healthcheck, profiles and
//! replicas.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_yaml::Value;

use super::{interpolate, Dockerfile, Vars};
use crate::shell::shell_words;

/// A parsed compose file.
#[derive(Debug, Clone)]
pub struct Project {
    /// The directory relative bind-mount sources and build contexts start from.
    pub dir: PathBuf,
    /// Every service, by name (profiles included).
    pub services: BTreeMap<String, Service>,
    /// The top-level named volumes.
    pub named_volumes: BTreeSet<String>,
    /// The top-level networks.
    pub networks: BTreeSet<String>,
}

/// One service of the compose file.
#[derive(Debug, Clone, Default)]
pub struct Service {
    /// Its key under `services`.
    pub name: String,
    /// `image`, as written.
    pub image: Option<String>,
    /// Built from a Dockerfile (then containers also get the image's `ENV`).
    pub build: Option<Build>,
    /// A fixed container name (which `--scale` cannot have).
    pub container_name: Option<String>,
    /// `command`, split into arguments (a string is split like a shell would, without
    /// running one); `None`: the image's `CMD`.
    pub command: Option<Vec<String>>,
    /// `entrypoint`, likewise; `None`: the image's `ENTRYPOINT`.
    pub entrypoint: Option<Vec<String>>,
    /// `environment` (map or list form); variables given without a value take theirs from
    /// the interpolation variables, or are left out when there is none.
    pub environment: Vars,
    /// `volumes`.
    pub volumes: Vec<Mount>,
    /// `ports`.
    pub ports: Vec<Port>,
    /// `expose`, as written.
    pub expose: Vec<String>,
    /// `user`; `None`: the image's `USER`.
    pub user: Option<String>,
    /// `None`: the image's `HEALTHCHECK` applies.
    pub healthcheck: Option<Healthcheck>,
    /// `profiles`: a service with any runs only when one is asked for.
    pub profiles: Vec<String>,
    /// `deploy.replicas`, as written (a number after interpolation).
    pub replicas: Option<String>,
    /// `networks` (list or map form); empty: compose's `default` network.
    pub networks: BTreeSet<String>,
}

/// A service's `build`.
#[derive(Debug, Clone, Default)]
pub struct Build {
    /// The build context, relative to the project directory.
    pub context: String,
    /// The Dockerfile, relative to the context (default `Dockerfile`).
    pub dockerfile: String,
    /// Build arguments.
    pub args: Vars,
}

/// What is mounted at a container path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
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
pub struct Mount {
    /// What is mounted.
    pub kind: MountKind,
    /// The container path.
    pub target: String,
    /// `read_only` (or `:ro`).
    pub read_only: bool,
}

/// One entry of a service's `ports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// The host address it is published on (`None`: every address).
    pub host_ip: Option<String>,
    /// The host port (or range); `None`: an ephemeral port.
    pub published: Option<String>,
    /// The container port.
    pub target: String,
    /// `tcp` or `udp`, if written.
    pub protocol: Option<String>,
}

/// A healthcheck (compose `healthcheck` or Dockerfile `HEALTHCHECK`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `disable: true`, `test: ["NONE"]` or `HEALTHCHECK NONE`.
    Disabled,
    /// The test: `["CMD", program, args...]` or `["CMD-SHELL", script]`.
    Test(Vec<String>),
}

impl Healthcheck {
    /// The program and arguments of a `CMD` test.
    pub fn command(&self) -> Option<&[String]> {
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
pub fn load_yaml(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_yaml(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Parses YAML text and applies `<<` merge keys.
pub fn parse_yaml(text: &str) -> Result<Value> {
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
pub fn scalar(value: &Value) -> Option<String> {
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

impl Project {
    /// Reads `dir/docker-compose.yml`, interpolated with `vars`.
    pub fn load(dir: &Path, vars: &Vars) -> Result<Self> {
        let path = dir.join("docker-compose.yml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, dir, Some(vars))
    }

    /// Parses compose text. With `vars`, every string is interpolated first (as compose
    /// does); without, strings stay as written (`${...}` and `$$` included).
    pub fn parse(text: &str, dir: &Path, vars: Option<&Vars>) -> Result<Self> {
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
        let keys = |name: &str| match doc.get(name) {
            Some(Value::Mapping(v)) => v.keys().filter_map(scalar).collect(),
            _ => BTreeSet::new(),
        };
        Ok(Project {
            dir: dir.to_path_buf(),
            services,
            named_volumes: keys("volumes"),
            networks: keys("networks"),
        })
    }

    /// A service by name.
    pub fn service(&self, name: &str) -> Result<&Service> {
        self.services
            .get(name)
            .with_context(|| format!("docker-compose.yml has no service {name}"))
    }

    /// The Dockerfile a service is built from, if it is built.
    pub fn dockerfile(&self, service: &Service) -> Result<Option<Dockerfile>> {
        let Some(build) = &service.build else {
            return Ok(None);
        };
        let path = self.dir.join(&build.context).join(&build.dockerfile);
        Dockerfile::load(&path).map(Some)
    }

    /// A container's environment: the image's `ENV` (when the service is built from
    /// `image`), then the service's `environment` over it. Docker's own variables
    /// (`HOSTNAME`, `PATH`) are not included.
    pub fn container_env(&self, service: &Service, image: Option<&Dockerfile>) -> Vars {
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
            networks: match body.get("networks") {
                None | Some(Value::Null) => BTreeSet::new(),
                Some(Value::Mapping(m)) => m.keys().filter_map(scalar).collect(),
                Some(_) => strings_at(body, "networks")?.into_iter().collect(),
            },
        })
    }

    /// The program and arguments the container runs: the service's entrypoint (or the
    /// image's), then its command (or the image's `CMD`, unless the service replaced the
    /// entrypoint, which clears it, as in Docker).
    pub fn argv(&self, image: Option<&Dockerfile>) -> Vec<String> {
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
    pub fn effective_healthcheck(&self, image: Option<&Dockerfile>) -> Option<Healthcheck> {
        self.healthcheck.clone().or_else(|| {
            image
                .filter(|_| self.build.is_some())
                .and_then(|i| i.final_stage().healthcheck.clone())
        })
    }

    /// The bind mounts: (source as written, mount).
    pub fn bind_mounts(&self) -> impl Iterator<Item = (&str, &Mount)> {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn compose_syntax_forms_parse() {
        let text = r#"
    x-base: &base
      image: ${IMG:-img:1}
      environment: &env
        SHARED: s
    services:
      a:
        <<: *base
        command: sealcast ingest --flag "two words"
        entrypoint: ["/bin/sh", "-c"]
        environment:
          <<: *env
          OWN: "1"
          NUMBER: 5
          FROM_VARS:
        volumes:
          - ./src:/dst:ro
          - named:/data
          - /anon
          - type: bind
            source: ./f
            target: /etc/f
            read_only: true
            bind: { create_host_path: false }
          - type: volume
            target: /v
        ports:
          - "1935:1935"
          - "127.0.0.1:9090:9090/tcp"
          - "8080"
          - target: 443
            published: "8443"
        healthcheck:
          disable: true
        networks: [front, back]
      b:
        image: other
        environment:
          - A=1
          - FROM_VARS
          - MISSING
        healthcheck:
          test: curl -f http://localhost
        deploy:
          replicas: ${N:-3}
        profiles: [tools]
        networks:
          back:
            aliases: [bee]
    volumes:
      named:
    networks:
      front:
      back:
    "#;
        let vars: Vars = [("FROM_VARS".to_owned(), "v".to_owned())].into();
        let project = Project::parse(text, Path::new("/p"), Some(&vars)).expect("ok");
        let a = project.service("a").expect("ok");
        assert_eq!(a.image.as_deref(), Some("img:1"));
        assert_eq!(
            a.command.as_deref().expect("ok"),
            ["sealcast", "ingest", "--flag", "two words"]
        );
        assert_eq!(a.argv(None)[..2], ["/bin/sh".to_owned(), "-c".to_owned()]);
        assert_eq!(
            a.environment,
            [
                ("SHARED", "s"),
                ("OWN", "1"),
                ("NUMBER", "5"),
                ("FROM_VARS", "v")
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vars>()
        );
        let kinds: Vec<(&MountKind, &str, bool)> = a
            .volumes
            .iter()
            .map(|m| (&m.kind, m.target.as_str(), m.read_only))
            .collect();
        assert_eq!(
            kinds,
            [
                (
                    &MountKind::Bind {
                        source: "./src".into(),
                        create_host_path: true
                    },
                    "/dst",
                    true
                ),
                (&MountKind::Named("named".into()), "/data", false),
                (&MountKind::Anonymous, "/anon", false),
                (
                    &MountKind::Bind {
                        source: "./f".into(),
                        create_host_path: false
                    },
                    "/etc/f",
                    true
                ),
                (&MountKind::Anonymous, "/v", false),
            ]
        );
        let ports: Vec<(Option<&str>, Option<&str>, &str)> = a
            .ports
            .iter()
            .map(|p| {
                (
                    p.host_ip.as_deref(),
                    p.published.as_deref(),
                    p.target.as_str(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                (None, Some("1935"), "1935"),
                (Some("127.0.0.1"), Some("9090"), "9090"),
                (None, None, "8080"),
                (None, Some("8443"), "443"),
            ]
        );
        assert_eq!(a.healthcheck, Some(Healthcheck::Disabled));
        let b = project.service("b").expect("ok");
        assert_eq!(b.environment.len(), 2, "{:?}", b.environment.keys());
        assert_eq!(b.replicas.as_deref(), Some("3"));
        assert_eq!(b.profiles, ["tools"]);
        assert_eq!(
            b.healthcheck,
            Some(Healthcheck::Test(vec![
                "CMD-SHELL".into(),
                "curl -f http://localhost".into()
            ]))
        );
        assert!(project.named_volumes.contains("named"));
        assert_eq!(project.networks, ["back", "front"].map(String::from).into());
        assert_eq!(a.networks, ["back", "front"].map(String::from).into());
        assert_eq!(b.networks, ["back"].map(String::from).into());
    }
}
