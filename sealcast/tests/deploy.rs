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
//!   `/metrics`).
//!
//! Fast: no ffmpeg, no browser; each test makes its own temporary project copy.

#![allow(clippy::unwrap_used)]

#[path = "support/compose.rs"]
mod compose;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use compose::{
    Container, Dockerfile, Healthcheck, InitCluster, Mosquitto, MountKind, Project, Service, Vars,
};
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_sealcast");

fn bin() -> &'static Path {
    Path::new(BIN)
}

fn repo() -> PathBuf {
    compose::repo_root()
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

// ----------------------------------------------------------------------------------------
// The support module's parsing
// ----------------------------------------------------------------------------------------

#[test]
fn interpolation_follows_compose_rules() {
    let vars: Vars = [("SET", "value"), ("EMPTY", "")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let i = |s: &str| compose::interpolate(s, &vars);
    for (text, expected) in [
        ("plain", "plain"),
        ("${SET}", "value"),
        ("$SET/x", "value/x"),
        ("a${UNSET}b", "ab"),
        ("${SET:-d}", "value"),
        ("${EMPTY:-d}", "d"),
        ("${UNSET:-d e/f}", "d e/f"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${UNSET:-${SET}}", "value"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${SET:?must}", "value"),
        ("${EMPTY?may be empty}", ""),
        ("$$(cmd) $${SET} $$", "$(cmd) ${SET} $"),
        ("pre-${SET}-post", "pre-value-post"),
    ] {
        assert_eq!(i(text).unwrap(), expected, "{text}");
    }
    for bad in [
        "${UNSET:?run init}",
        "${EMPTY:?run init}",
        "${UNSET?x}",
        "$",
        "a $ b",
        "${",
        "${1X}",
        "${SET!}",
    ] {
        assert!(i(bad).is_err(), "{bad} should be an error");
    }
    let message = format!(
        "{:#}",
        i("${UNSET:?run scripts/init-cluster.sh first}").unwrap_err()
    );
    assert!(
        message.contains("UNSET") && message.contains("run scripts/init-cluster.sh first"),
        "{message}"
    );

    let found = compose::interpolations("u:${P:?x y/z}@h:${PORT:-1883}/$${NOT}").unwrap();
    let names: Vec<(&str, bool)> = found
        .iter()
        .map(|f| (f.name.as_str(), f.has_default()))
        .collect();
    assert_eq!(names, [("P", false), ("PORT", true)]);
    assert_eq!(&"u:${P:?x y/z}@h"[found[0].range.clone()], "${P:?x y/z}");

    let env = compose::parse_env_file("# c\n\nA=1\nexport B='two words'\nC=\"x=y\"\nA=3\n");
    assert_eq!(env.get("A").map(String::as_str), Some("3"));
    assert_eq!(env.get("B").map(String::as_str), Some("two words"));
    assert_eq!(env.get("C").map(String::as_str), Some("x=y"));
}

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
volumes:
  named:
"#;
    let vars: Vars = [("FROM_VARS".to_owned(), "v".to_owned())].into();
    let project = Project::parse(text, Path::new("/p"), Some(&vars)).unwrap();
    let a = project.service("a").unwrap();
    assert_eq!(a.image.as_deref(), Some("img:1"));
    assert_eq!(
        a.command.as_deref().unwrap(),
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
    let b = project.service("b").unwrap();
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
}

// ----------------------------------------------------------------------------------------
// scripts/init-cluster.sh
// ----------------------------------------------------------------------------------------

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .with_context(|| path.display().to_string())
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_script_writes_secrets_keys_and_broker_files_and_keeps_them() {
    let mut init = init_cluster().await;
    let dir = init.project_dir().to_path_buf();
    let mut f = Findings::default();

    // .env: every secret compose needs, private, each its own.
    f.check(mode(&dir.join(".env")) == 0o600, || {
        format!(".env has mode {:o}, not 600", mode(&dir.join(".env")))
    });
    let secrets = [
        "MQTT_PASSWORD_INGEST1",
        "MQTT_PASSWORD_INGEST2",
        "MQTT_PASSWORD_BROADCAST",
        "MQTT_PASSWORD_LB",
        "MQTT_PASSWORD_ADMIN",
        "POSTGRES_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
        "SEALCAST_PUSH_TOKEN",
    ];
    let mut seen = BTreeSet::new();
    for name in secrets {
        match init.env.get(name) {
            None => f.fail(format!(".env lacks {name}")),
            Some(v) => {
                f.check(v.len() >= 32, || {
                    format!("{name} is shorter than 32 characters")
                });
                f.check(seen.insert(v.clone()), || {
                    format!("{name} repeats another secret")
                });
            }
        }
    }
    for name in ["RUN_UID", "RUN_GID", "INGEST_NODES"] {
        f.check(init.env.contains_key(name), || format!(".env lacks {name}"));
    }
    f.check(
        init.env.get("INGEST_NODES").map(String::as_str) == Some("ingest1 ingest2"),
        || "INGEST_NODES is not \"ingest1 ingest2\"".into(),
    );
    f.check(!leaks(&init, &init.stderr), || {
        "init-cluster.sh printed a secret".into()
    });

    // Keys: private files 0600, root.pub readable by the broadcast nodes' user.
    let keys = dir.join("deploy/state/keys");
    for (file, expected) in [
        ("root.key", 0o600),
        ("root.pub", 0o644),
        ("push-token", 0o600),
        ("cookie-key", 0o600),
        ("ingest/ingest1.key", 0o600),
        ("ingest/ingest1.cert", 0o644),
        ("ingest/ingest2.key", 0o600),
        ("ingest/ingest2.cert", 0o644),
    ] {
        let path = keys.join(file);
        if !path.is_file() {
            f.fail(format!("deploy/state/keys/{file} is missing"));
            continue;
        }
        // A certificate is public; only check that it is not writable by others.
        let m = mode(&path);
        let ok = if file.ends_with(".cert") {
            m & 0o022 == 0
        } else {
            m == expected
        };
        f.check(ok, || {
            format!("deploy/state/keys/{file} has mode {m:o}, want {expected:o}")
        });
    }
    let token = std::fs::read_to_string(keys.join("push-token")).unwrap_or_default();
    f.check(
        Some(token.trim()) == init.env.get("SEALCAST_PUSH_TOKEN").map(String::as_str),
        || "deploy/state/keys/push-token differs from SEALCAST_PUSH_TOKEN in .env".into(),
    );
    f.check(mode(&dir.join("deploy/state")) == 0o700, || {
        "deploy/state is not 0700".into()
    });

    // The broker's files: hashed passwords per listener, installed ACLs, all 0600.
    let broker = dir.join("deploy/state/mosquitto");
    for (file, users) in [
        ("passwd-nodes", &["ingest1", "ingest2", "broadcast"][..]),
        ("passwd-control", &["lb", "admin"][..]),
    ] {
        let path = broker.join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let listed: Vec<&str> = text.lines().filter_map(|l| l.split(':').next()).collect();
        f.check(listed == users, || {
            format!("{file} lists {listed:?}, not {users:?}")
        });
        f.check(
            text.lines()
                .all(|l| l.split_once(':').is_some_and(|(_, h)| h.starts_with("$7$"))),
            || format!("{file} holds something other than PBKDF2 hashes"),
        );
        f.check(!leaks(&init, &text), || {
            format!("{file} holds a plain password")
        });
        f.check(path.exists() && mode(&path) == 0o600, || {
            format!("{file} is not 0600")
        });
    }
    for acl in ["acl-nodes", "acl-control"] {
        let installed = std::fs::read(broker.join(acl)).unwrap_or_default();
        let source = std::fs::read(repo().join("deploy/mosquitto").join(acl)).unwrap();
        f.check(installed == source, || {
            format!("deploy/state/mosquitto/{acl} is not deploy/mosquitto/{acl}")
        });
        f.check(mode(&broker.join(acl)) == 0o600, || {
            format!("{acl} is not 0600")
        });
    }
    f.check(dir.join("deploy/state/mosquitto-data").is_dir(), || {
        "deploy/state/mosquitto-data is missing".into()
    });

    // The load balancer's certificate and the local CA.
    for file in ["ca.pem", "ca.key", "server.pem", "server.key"] {
        f.check(dir.join("certs/generated").join(file).is_file(), || {
            format!("certs/generated/{file} is missing")
        });
    }

    // Again: nothing secret changes.
    let env_before = init.env.clone();
    let keys_before = snapshot(&keys);
    let certs_before = snapshot(&dir.join("certs/generated"));
    let passwd_before = std::fs::read(broker.join("passwd-nodes")).unwrap_or_default();
    tokio::task::block_in_place(|| init.rerun(bin(), &[])).unwrap();
    for (name, value) in &env_before {
        f.check(init.env.get(name) == Some(value), || {
            format!("the second run changed {name} in .env")
        });
    }
    f.check(init.env.len() == env_before.len(), || {
        "the second run added variables to .env".into()
    });
    f.check(snapshot(&keys) == keys_before, || {
        "the second run changed deploy/state/keys/".into()
    });
    f.check(
        snapshot(&dir.join("certs/generated")) == certs_before,
        || "the second run changed certs/generated/".into(),
    );
    f.check(!init.stderr.contains("new in .env"), || {
        format!(
            "the second run reports new secrets:\n{}",
            init.redact(&init.stderr)
        )
    });
    // The password files are written anew (new salts) from the same passwords.
    f.check(
        std::fs::read(broker.join("passwd-nodes")).unwrap_or_default() != passwd_before,
        || "the second run did not rewrite passwd-nodes (expected: new salts)".into(),
    );
    f.check(!leaks(&init, &init.stderr), || {
        "the second init-cluster.sh run printed a secret".into()
    });
    f.assert_none("scripts/init-cluster.sh");
}

// ----------------------------------------------------------------------------------------
// Static checks of docker-compose.yml and the Dockerfile
// ----------------------------------------------------------------------------------------

/// Paths the init script makes (never committed).
const GENERATED: [&str; 2] = ["deploy/state", "certs/generated"];

fn is_generated(relative: &Path) -> bool {
    GENERATED.iter().any(|g| relative.starts_with(g))
}

/// A bind source as a path relative to the project directory.
fn relative_source(source: &str) -> PathBuf {
    Path::new(source)
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_referenced_file_exists_or_is_made_by_the_init_script() {
    let init = init_cluster().await;
    let project = init.project().unwrap();
    let image = dockerfile();
    let mut f = Findings::default();

    // Bind mounts: committed files in the repository; generated ones after the script.
    for service in project.services.values() {
        for (source, mount) in service.bind_mounts() {
            let relative = relative_source(source);
            f.check(!Path::new(source).is_absolute(), || {
                format!(
                    "{}: the bind source {source} is an absolute host path",
                    service.name
                )
            });
            if is_generated(&relative) {
                f.check(init.project_dir().join(&relative).exists(), || {
                    format!(
                        "{}: {source} (for {}) is not made by scripts/init-cluster.sh",
                        service.name, mount.target
                    )
                });
                f.check(
                    !repo().join(".gitignore").exists() || gitignored(&relative),
                    || format!("{source} is not in .gitignore"),
                );
            } else {
                f.check(repo().join(&relative).exists(), || {
                    format!(
                        "{}: {source} (for {}) does not exist in the repository",
                        service.name, mount.target
                    )
                });
            }
        }
        for mount in &service.volumes {
            if let MountKind::Named(name) = &mount.kind {
                f.check(project.named_volumes.contains(name), || {
                    format!("{}: volume {name} is not declared", service.name)
                });
            }
        }
        if let Some(build) = &service.build {
            let context = repo().join(&build.context);
            f.check(context.is_dir(), || {
                format!(
                    "{}: build context {} is missing",
                    service.name, build.context
                )
            });
            f.check(context.join(&build.dockerfile).is_file(), || {
                format!("{}: {} is missing", service.name, build.dockerfile)
            });
        }
    }
    let used: BTreeSet<&String> = project
        .services
        .values()
        .flat_map(|s| &s.volumes)
        .filter_map(|m| match &m.kind {
            MountKind::Named(n) => Some(n),
            _ => None,
        })
        .collect();
    for declared in &project.named_volumes {
        f.check(used.contains(declared), || {
            format!("volume {declared} is declared but unused")
        });
    }

    // The Dockerfile's COPY sources from the build context exist and are not excluded.
    let ignored = ignore_lines(".dockerignore");
    let stage_names: Vec<Option<&str>> = image.stages.iter().map(|s| s.name.as_deref()).collect();
    for (index, stage) in image.stages.iter().enumerate() {
        for copy in &stage.copies {
            match &copy.from {
                Some(from) => f.check(stage_names[..index].contains(&Some(from.as_str())), || {
                    format!("Dockerfile: COPY --from={from} names no earlier stage")
                }),
                None => {
                    for source in &copy.sources {
                        f.check(repo().join(source).exists(), || {
                            format!("Dockerfile: COPY {source} does not exist")
                        });
                        f.check(
                            source == "."
                                || !ignored.iter().any(|i| Path::new(source).starts_with(i)),
                            || format!("Dockerfile: COPY {source} is excluded by .dockerignore"),
                        );
                    }
                }
            }
        }
    }

    // Mosquitto: its image reads /mosquitto/config/mosquitto.conf; every path in that
    // conf is a mount of the service, present after the init script.
    let mosquitto = project.service("mosquitto").unwrap();
    match Container::materialize(mosquitto, init.project_dir(), None) {
        Err(e) => f.fail(format!("mosquitto: {e:#}")),
        Ok(container) => {
            f.check(container.mount("/mosquitto/config/mosquitto.conf").is_some(), || {
                "mosquitto: nothing mounted at /mosquitto/config/mosquitto.conf (the image's conf)".into()
            });
            let conf =
                std::fs::read_to_string(repo().join("deploy/mosquitto/mosquitto.conf")).unwrap();
            for line in conf.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
                for word in line.split_whitespace().filter(|w| w.starts_with('/')) {
                    match container.host_path(word) {
                        Some(host) if host.exists() => {}
                        _ => f.fail(format!("mosquitto.conf: {word} is not in the container")),
                    }
                }
            }
        }
    }

    // Prometheus: its configuration file is mounted where --config.file says.
    let prometheus = project.service("prometheus").unwrap();
    match Container::materialize(prometheus, init.project_dir(), None) {
        Err(e) => f.fail(format!("prometheus: {e:#}")),
        Ok(container) => {
            let args = prometheus.command.clone().unwrap_or_default();
            let config =
                flag_value(&args, "--config.file").unwrap_or("/etc/prometheus/prometheus.yml");
            match container.host_path(config) {
                Some(host) if host.is_file() => {
                    let yaml = compose::load_yaml(&host);
                    f.check(yaml.is_ok(), || {
                        format!("prometheus.yml: {:#}", yaml.as_ref().err().unwrap())
                    });
                    // Files it names (rules, file discovery, credentials) are mounted too.
                    for (key, value) in yaml.ok().iter().flat_map(|y| yaml_strings(y, "")) {
                        let names_file = key.ends_with("_file")
                            || key.ends_with("_files")
                            || key.contains("rule_files")
                            || key.contains(".files");
                        if names_file && value.starts_with('/') {
                            f.check(
                                container.host_path(&value).is_some_and(|p| p.exists()),
                                || {
                                    format!(
                                        "prometheus.yml: {key} = {value} is not in the container"
                                    )
                                },
                            );
                        }
                    }
                }
                _ => f.fail(format!("prometheus: {config} is not mounted")),
            }
            if let Some(storage) = flag_value(&args, "--storage.tsdb.path") {
                f.check(
                    prometheus.volumes.iter().any(|m| m.target == storage),
                    || format!("prometheus: no volume at --storage.tsdb.path {storage}"),
                );
            }
        }
    }

    // Grafana: provisioning where the image reads it; every path its environment and the
    // dashboard providers name is in the container.
    let grafana = project.service("grafana").unwrap();
    match Container::materialize(grafana, init.project_dir(), None) {
        Err(e) => f.fail(format!("grafana: {e:#}")),
        Ok(container) => {
            let provisioning = grafana
                .environment
                .get("GF_PATHS_PROVISIONING")
                .map_or("/etc/grafana/provisioning", String::as_str);
            match container.host_path(provisioning) {
                Some(host)
                    if host.join("dashboards").is_dir() && host.join("datasources").is_dir() =>
                {
                    for file in yaml_files(&host) {
                        let yaml = compose::load_yaml(&file);
                        let Ok(yaml) = yaml else {
                            f.fail(format!("{}: {:#}", file.display(), yaml.err().unwrap()));
                            continue;
                        };
                        for provider in yaml["providers"].as_sequence().into_iter().flatten() {
                            let path = provider["options"]["path"].as_str().unwrap_or_default();
                            let dashboards = container.host_path(path);
                            f.check(
                                dashboards.as_ref().is_some_and(|d| !yaml_files(d).is_empty() || json_files(d) > 0),
                                || format!("grafana: the dashboard provider's path {path} holds no dashboard in the container"),
                            );
                        }
                    }
                }
                _ => f.fail(format!(
                    "grafana: {provisioning} (dashboards/, datasources/) is not mounted"
                )),
            }
            for (name, value) in &grafana.environment {
                if value.starts_with('/') {
                    f.check(
                        container.host_path(value).is_some_and(|p| p.exists()),
                        || format!("grafana: {name} = {value} is not in the container"),
                    );
                }
            }
        }
    }
    f.assert_none("files referenced by the deployment");
}

/// Whether `.gitignore` has a line covering `path`.
fn gitignored(path: &Path) -> bool {
    ignore_lines(".gitignore")
        .iter()
        .any(|i| path.starts_with(i))
}

/// The patterns of an ignore file, as paths (leading `/` dropped; globs kept as text).
fn ignore_lines(file: &str) -> Vec<PathBuf> {
    std::fs::read_to_string(repo().join(file))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| PathBuf::from(l.trim_start_matches('/').trim_end_matches('/')))
        .collect()
}

/// `--flag=value` or `--flag value` in `args`.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, a)| {
        if let Some(v) = a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            Some(v)
        } else if a == flag {
            args.get(i + 1).map(String::as_str)
        } else {
            None
        }
    })
}

/// Every string in a YAML document with its key path (`a.b.0.c`).
fn yaml_strings(value: &serde_yaml::Value, path: &str) -> Vec<(String, String)> {
    use serde_yaml::Value;
    match value {
        Value::String(s) => vec![(path.to_owned(), s.clone())],
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, v)| yaml_strings(v, &format!("{path}.{i}")))
            .collect(),
        Value::Mapping(map) => map
            .iter()
            .flat_map(|(k, v)| {
                let key = compose::scalar(k).unwrap_or_default();
                let path = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                yaml_strings(v, &path)
            })
            .collect(),
        Value::Tagged(t) => yaml_strings(&t.value, path),
        _ => Vec::new(),
    }
}

fn files_with(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    files_with(dir, &["yml", "yaml"])
}

fn json_files(dir: &Path) -> usize {
    files_with(dir, &["json"]).len()
}

/// A variable name that holds a secret (not a path to one: `SEALCAST_KEYS_DIR`).
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["PASSWORD", "PASSWD", "TOKEN", "SECRET", "KEY"]
        .iter()
        .any(|w| upper.contains(w))
        && !["_DIR", "_FILE", "_PATH"]
            .iter()
            .any(|s| upper.ends_with(s))
}

/// The variable a value is taken from when it is exactly one `${VAR}` / `${VAR:?message}`
/// without a default (a default would be a literal secret in the file).
fn required_variable(value: &str) -> Option<String> {
    let found = compose::interpolations(value.trim()).ok()?;
    match found.as_slice() {
        [one] if one.range == (0..value.trim().len()) && !one.has_default() => {
            Some(one.name.clone())
        }
        _ => None,
    }
}

/// The password parts of `scheme://user:password@host` URLs in `text`, as written.
fn url_passwords(text: &str) -> Vec<String> {
    // Interpolations may contain '/', ' ' or '@' in their messages: look at the text with
    // each replaced by a placeholder, then take the original back.
    let Ok(found) = compose::interpolations(text) else {
        return vec![text.to_owned()];
    };
    let mut masked = String::new();
    let mut originals = Vec::new();
    let mut last = 0;
    for (i, one) in found.iter().enumerate() {
        masked.push_str(&text[last..one.range.start]);
        masked.push_str(&format!("\u{1}{i}\u{1}"));
        originals.push(&text[one.range.clone()]);
        last = one.range.end;
    }
    masked.push_str(&text[last..]);
    let unmask = |s: &str| {
        let mut s = s.to_owned();
        for (i, original) in originals.iter().enumerate() {
            s = s.replace(&format!("\u{1}{i}\u{1}"), original);
        }
        s
    };
    let mut out = Vec::new();
    let mut rest = masked.as_str();
    while let Some(at) = rest.find("://") {
        let after = &rest[at + 3..];
        let authority = after
            .split(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .next()
            .unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, password)) = userinfo.split_once(':') {
                out.push(unmask(password));
            }
        }
        rest = after;
    }
    out
}

#[tokio::test]
async fn no_secret_is_written_in_the_compose_file_or_the_dockerfile() {
    let project = raw_project();
    let init = init_cluster().await;
    let mut f = Findings::default();
    let mut from_env_file = BTreeSet::new();
    for service in project.services.values() {
        let build_args = service.build.iter().flat_map(|b| &b.args);
        for (name, value) in service.environment.iter().chain(build_args) {
            if is_secret_name(name) && !value.starts_with('/') {
                match required_variable(value) {
                    Some(var) => {
                        from_env_file.insert(var);
                    }
                    None => f.fail(format!(
                        "{}: {name} is not taken from .env as a required ${{VAR}} (a literal or a default)",
                        service.name
                    )),
                }
            }
        }
    }
    // URL credentials anywhere in the file (anchors included, before merging).
    let doc = compose::load_yaml(&repo().join("docker-compose.yml")).unwrap();
    for (path, value) in yaml_strings(&doc, "") {
        for password in url_passwords(&value) {
            match required_variable(&password) {
                Some(var) => {
                    from_env_file.insert(var);
                }
                None => f.fail(format!(
                    "{path}: a URL with a password that is not a required ${{VAR}}"
                )),
            }
        }
    }
    // Each comes from .env, which the init script writes.
    for var in &from_env_file {
        f.check(init.env.contains_key(var), || {
            format!("{var} is used for a secret but scripts/init-cluster.sh does not write it")
        });
    }
    for expected in [
        "MQTT_PASSWORD_INGEST1",
        "MQTT_PASSWORD_BROADCAST",
        "SEALCAST_PUSH_TOKEN",
        "POSTGRES_PASSWORD",
    ] {
        f.check(from_env_file.contains(expected), || {
            format!("{expected} is not used as a secret: the check did not see the compose file's secrets")
        });
    }

    // The image bakes in no secret.
    let image = dockerfile();
    let args = image
        .global_args
        .iter()
        .chain(image.stages.iter().flat_map(|s| &s.args));
    for arg in args {
        f.check(!is_secret_name(&arg.name), || {
            format!("Dockerfile: ARG {} looks like a secret", arg.name)
        });
    }
    for stage in &image.stages {
        for (name, value) in &stage.env {
            f.check(!is_secret_name(name) || value.starts_with('/'), || {
                format!("Dockerfile: ENV {name} looks like a secret")
            });
            f.check(url_passwords(value).is_empty(), || {
                format!("Dockerfile: ENV {name} has a URL password")
            });
        }
    }
    // Never committed, never in the build context.
    for file in [".gitignore", ".dockerignore"] {
        let lines = ignore_lines(file);
        for path in [".env", "deploy/state", "certs/generated"] {
            f.check(lines.contains(&PathBuf::from(path)), || {
                format!("{file} does not exclude {path}")
            });
        }
    }
    f.assert_none("secrets in the deployment files");
}

#[test]
fn secret_checks_catch_literals() {
    assert!(is_secret_name("SEALCAST_PUSH_TOKEN"));
    assert!(is_secret_name("GF_SECURITY_ADMIN_PASSWORD"));
    assert!(is_secret_name("SEALCAST_TLS_KEY"));
    assert!(!is_secret_name("SEALCAST_KEYS_DIR"));
    assert!(!is_secret_name("SEALCAST_NODE_ID"));
    assert_eq!(required_variable("${A:?run init}").as_deref(), Some("A"));
    assert_eq!(required_variable("${A}").as_deref(), Some("A"));
    assert_eq!(required_variable("${A:-hunter2}"), None);
    assert_eq!(required_variable("hunter2"), None);
    assert_eq!(required_variable("x${A}"), None);
    assert_eq!(
        url_passwords("mqtt://u:${P:?run scripts/init-cluster.sh first}@h:1883 postgres://a:lit@db/x http://h/a:b@c"),
        ["${P:?run scripts/init-cluster.sh first}", "lit"]
    );
    assert!(url_passwords("mqtt://user@host:1883").is_empty());
}

/// The port of a `host:port` listen address.
fn port_of(address: &str) -> Option<u16> {
    address.rsplit_once(':')?.1.parse().ok()
}

/// The first word of a service's sealcast command (`ingest`, `broadcast`, `lb`), if the
/// container runs `sealcast ROLE`.
fn sealcast_role(service: &Service, image: &Dockerfile) -> Option<String> {
    let argv = service.argv(Some(image));
    (argv.first().map(String::as_str) == Some("sealcast"))
        .then(|| argv.get(1).cloned())
        .flatten()
}

/// The ports a sealcast role serves HTTP on (metrics, health) in a container's
/// environment, with the CLI's defaults.
fn http_port(role: &str, env: &Vars) -> Option<u16> {
    let (var, default) = match role {
        "ingest" => ("SEALCAST_METRICS_LISTEN", 9100),
        "lb" => ("SEALCAST_METRICS_LISTEN", 9102),
        "broadcast" => ("SEALCAST_HTTP_LISTEN", 8080),
        _ => return None,
    };
    Some(env.get(var).and_then(|a| port_of(a)).unwrap_or(default))
}

#[test]
fn compose_topology_scales_and_the_image_is_mirrorable() {
    let project = raw_project();
    let image = dockerfile();
    let mut f = Findings::default();
    let published = |s: &Service| -> BTreeMap<String, String> {
        s.ports
            .iter()
            .filter_map(|p| Some((p.published.clone()?, p.target.clone())))
            .collect()
    };

    // `--scale broadcast=N`: no fixed name, no host port; replicas from a variable.
    let broadcast = project.service("broadcast").unwrap();
    f.check(broadcast.container_name.is_none(), || {
        "broadcast has a container_name".into()
    });
    f.check(broadcast.ports.is_empty(), || {
        "broadcast publishes host ports".into()
    });
    let http = broadcast
        .environment
        .get("SEALCAST_HTTP_LISTEN")
        .and_then(|a| port_of(a));
    f.check(
        broadcast
            .expose
            .iter()
            .any(|e| Some(e.as_str()) == http.map(|p| p.to_string()).as_deref()),
        || "broadcast does not expose its SEALCAST_HTTP_LISTEN port".into(),
    );
    let replicas = broadcast.replicas.clone().unwrap_or_default();
    let interpolated = compose::interpolate(&replicas, &Vars::new()).unwrap_or_default();
    f.check(replicas.starts_with("${") && interpolated.parse::<u32>().is_ok_and(|n| n >= 1), || {
        format!("broadcast deploy.replicas is {replicas:?}, not a variable with a number as default")
    });

    // RTMP on the host: ingest1 on 1935, ingest2 on 1936, each to its RTMP listener.
    for (name, host) in [("ingest1", "1935"), ("ingest2", "1936")] {
        let service = project.service(name).unwrap();
        let rtmp = service
            .environment
            .get("SEALCAST_RTMP_LISTEN")
            .and_then(|a| port_of(a))
            .unwrap_or(1935);
        f.check(
            published(service).get(host) == Some(&rtmp.to_string()),
            || format!("{name} does not publish host port {host} to its RTMP port {rtmp}"),
        );
    }
    // The load balancer on 443 and 80.
    let lb = project.service("lb").unwrap();
    for (host, var) in [
        ("443", "SEALCAST_LB_HTTPS_LISTEN"),
        ("80", "SEALCAST_LB_HTTP_LISTEN"),
    ] {
        let target = lb.environment.get(var).and_then(|a| port_of(a));
        f.check(
            target.is_some() && published(lb).get(host) == target.map(|t| t.to_string()).as_ref(),
            || format!("lb does not publish host port {host} to its {var} port"),
        );
    }
    // Only viewers' and publishers' ports face the network; the rest is loopback or none.
    for service in project.services.values() {
        if ["ingest1", "ingest2", "lb"].contains(&service.name.as_str()) {
            continue;
        }
        for port in &service.ports {
            f.check(port.host_ip.as_deref() == Some("127.0.0.1"), || {
                format!(
                    "{} publishes {} on every address",
                    service.name, port.target
                )
            });
        }
    }

    // Healthchecks: every sealcast container has one (its own or the image's) on the port
    // its role serves /healthz on, or has it disabled explicitly.
    let installed: BTreeSet<String> = image
        .final_stage()
        .copies
        .iter()
        .map(|c| c.dest.clone())
        .collect();
    for service in project.services.values().filter(|s| s.build.is_some()) {
        let Some(check) = service.effective_healthcheck(Some(&image)) else {
            f.fail(format!(
                "{} has no healthcheck (and does not disable one)",
                service.name
            ));
            continue;
        };
        let Some(command) = check.command() else {
            f.check(check == Healthcheck::Disabled, || {
                format!("{}: a healthcheck that is not CMD", service.name)
            });
            continue;
        };
        let program = &command[0];
        f.check(
            installed.contains(program) || installed.contains(&format!("/usr/local/bin/{program}")),
            || {
                format!(
                    "{}: the healthcheck runs {program}, which the image does not install",
                    service.name
                )
            },
        );
        let role = sealcast_role(service, &image);
        let env = project.container_env(service, Some(&image));
        let expected = role.as_deref().and_then(|r| http_port(r, &env));
        let checked = command.get(1).and_then(|p| p.parse::<u16>().ok());
        f.check(expected.is_some() && checked == expected, || {
            format!("{}: the healthcheck probes port {checked:?}, the role serves /healthz on {expected:?}", service.name)
        });
    }

    // Images from variables, so a mirror can stand in; build arguments match the
    // Dockerfile's (names and defaults).
    for service in project.services.values() {
        if let Some(image_name) = &service.image {
            let found = compose::interpolations(image_name).unwrap_or_default();
            f.check(
                found.len() == 1
                    && found[0].range == (0..image_name.len())
                    && found[0].op.starts_with(":-"),
                || {
                    format!(
                        "{}: image {image_name} is not ${{VAR:-default}}",
                        service.name
                    )
                },
            );
        }
        if let Some(build) = &service.build {
            for (name, value) in &build.args {
                let arg = image.global_args.iter().find(|a| &a.name == name);
                let found = compose::interpolations(value).unwrap_or_default();
                let default = found.first().and_then(|i| i.op.strip_prefix(":-"));
                f.check(
                    arg.is_some()
                        && found.len() == 1
                        && default == arg.and_then(|a| a.default.as_deref()),
                    || {
                        format!(
                            "{}: build arg {name} = {value} does not match the Dockerfile's ARG",
                            service.name
                        )
                    },
                );
            }
        }
    }

    // The image: multi-stage, every base an ARG given before FROM (or an earlier stage),
    // non-root, a healthcheck, `sealcast` as entrypoint.
    let global: BTreeSet<&str> = image.global_args.iter().map(|a| a.name.as_str()).collect();
    for name in ["RUST_IMAGE", "NODE_IMAGE", "RUNTIME_IMAGE"] {
        f.check(global.contains(name), || {
            format!("Dockerfile: no ARG {name} before FROM")
        });
    }
    f.check(image.stages.len() >= 2, || {
        "Dockerfile: not multi-stage".into()
    });
    for (index, stage) in image.stages.iter().enumerate() {
        let arg = stage
            .base
            .strip_prefix("${")
            .and_then(|b| b.strip_suffix('}'));
        let earlier = image.stages[..index]
            .iter()
            .any(|s| s.name.as_deref() == Some(stage.base.as_str()));
        f.check(arg.is_some_and(|a| global.contains(a)) || earlier, || {
            format!("Dockerfile: FROM {} is not a build argument", stage.base)
        });
    }
    let last = image.final_stage();
    let user = last.user.as_deref().unwrap_or("root");
    let uid = user.split(':').next().unwrap_or_default();
    f.check(!["", "0", "root"].contains(&uid), || {
        format!("Dockerfile: the image runs as {user}")
    });
    f.check(
        matches!(last.healthcheck, Some(Healthcheck::Test(_))),
        || "Dockerfile: no HEALTHCHECK".into(),
    );
    f.check(
        last.entrypoint.as_deref() == Some(&["sealcast".to_owned()][..]),
        || "Dockerfile: ENTRYPOINT is not [\"sealcast\"]".into(),
    );
    f.check(installed.contains("/usr/local/bin/sealcast"), || {
        "Dockerfile: sealcast is not installed in /usr/local/bin".into()
    });
    f.check(
        last.env.get("SEALCAST_DATA_DIR").map(String::as_str) == Some(compose::IMAGE_DATA_DIR),
        || {
            format!(
                "Dockerfile: SEALCAST_DATA_DIR is not {}",
                compose::IMAGE_DATA_DIR
            )
        },
    );

    // Start order: every depends_on names a service.
    let doc = compose::load_yaml(&repo().join("docker-compose.yml")).unwrap();
    for (name, body) in doc["services"].as_mapping().into_iter().flatten() {
        let name = compose::scalar(name).unwrap_or_default();
        let depends: Vec<String> = match &body["depends_on"] {
            serde_yaml::Value::Mapping(m) => m.keys().filter_map(compose::scalar).collect(),
            serde_yaml::Value::Sequence(s) => s.iter().filter_map(compose::scalar).collect(),
            _ => Vec::new(),
        };
        for dependency in depends {
            f.check(project.services.contains_key(&dependency), || {
                format!("{name} depends on {dependency}, which is no service")
            });
        }
    }
    f.assert_none("docker-compose.yml and Dockerfile");
}

// ----------------------------------------------------------------------------------------
// --check-config with each service's command and environment
// ----------------------------------------------------------------------------------------

/// A service's container, laid out, with its environment (interpolated from the init
/// script's `.env`, the image's `ENV` included).
struct Prepared {
    container: Container,
    env: Vars,
    argv: Vec<String>,
}

fn prepare(init: &InitCluster, project: &Project, name: &str) -> Result<Prepared> {
    let service = project.service(name)?;
    let image = project.dockerfile(service)?;
    let container = Container::materialize(service, init.project_dir(), image.as_ref())?;
    Ok(Prepared {
        env: project.container_env(service, image.as_ref()),
        argv: service.argv(image.as_ref()),
        container,
    })
}

/// The result of one `sealcast ... --check-config`.
struct Checked {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

fn check_config(prepared: &Prepared, args: &[String], env: &Vars) -> Result<Checked> {
    let mut command = prepared.container.command(bin(), env);
    command.args(args).arg("--check-config");
    let out = compose::run_with_deadline(command, Duration::from_secs(20))?;
    Ok(Checked {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The `rtmp://HOST:PORT/live/` a source script publishes to.
fn source_target(script: &str) -> Option<(String, u16)> {
    let start = script.find("rtmp://")? + "rtmp://".len();
    let authority = script[start..].split('/').next()?;
    let (host, port) = authority.split_once(':')?;
    Some((host.to_owned(), port.parse().ok()?))
}

/// Services built from the image that are not checked, and why.
const NOT_CHECKED: [(&str, &str); 1] = [(
    "tools",
    "profile `tools`: runs the operator's one-shot commands (`streams`, `keys`, `certs`), given on the command line",
)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_passes_check_config_with_its_compose_environment() {
    let init = init_cluster().await;
    let project = init.project().unwrap();
    let image = dockerfile();
    let mut f = Findings::default();
    let mut checked = Vec::new();
    for service in project.services.values().filter(|s| s.build.is_some()) {
        if NOT_CHECKED.iter().any(|(n, _)| *n == service.name) {
            f.check(!service.profiles.is_empty(), || {
                format!("{} is skipped but starts with `up`", service.name)
            });
            continue;
        }
        let prepared = match prepare(&init, &project, &service.name) {
            Ok(p) => p,
            Err(e) => {
                f.fail(format!("{}: {e:#}", service.name));
                continue;
            }
        };
        let (args, env) = match prepared.argv.as_slice() {
            [program, args @ ..] if program == "sealcast" => (args.to_vec(), prepared.env.clone()),
            [sh, c, script] if sh == "/bin/sh" && c == "-c" => {
                // A test source: it makes a stream key and runs `sealcast source`.
                if !script.contains("exec sealcast source") {
                    f.fail(format!(
                        "{}: the script does not run `exec sealcast source`",
                        service.name
                    ));
                    continue;
                }
                let Some((host, port)) = source_target(script) else {
                    f.fail(format!(
                        "{}: no rtmp://HOST:PORT/live/ in its script",
                        service.name
                    ));
                    continue;
                };
                let rtmp = project
                    .services
                    .get(&host)
                    .filter(|s| sealcast_role(s, &image).as_deref() == Some("ingest"))
                    .map(|s| {
                        s.environment
                            .get("SEALCAST_RTMP_LISTEN")
                            .and_then(|a| port_of(a))
                            .unwrap_or(1935)
                    });
                f.check(rtmp == Some(port), || {
                    format!(
                        "{}: publishes to {host}:{port}, which is no ingest's RTMP port",
                        service.name
                    )
                });
                let mut env = prepared.env.clone();
                env.insert(
                    "SEALCAST_SOURCE_URL".into(),
                    format!("rtmp://{host}:{port}/live/sk_0123456789abcdef"),
                );
                (vec!["source".to_owned()], env)
            }
            other => {
                f.fail(format!(
                    "{}: runs {other:?}, which this test does not know",
                    service.name
                ));
                continue;
            }
        };
        let role = args.first().cloned().unwrap_or_default();
        match check_config(&prepared, &args, &env) {
            Err(e) => f.fail(format!("{}: {e:#}", service.name)),
            Ok(out) => {
                f.check(out.status.success(), || {
                    format!(
                        "{}: `sealcast {} --check-config` exited with {}:\n{}",
                        service.name,
                        args.join(" "),
                        out.status,
                        init.redact(out.stderr.trim())
                    )
                });
                f.check(
                    out.stdout.contains(&format!("configuration ok ({role}")),
                    || {
                        format!(
                            "{}: stdout is {:?}, not \"configuration ok ({role})\"",
                            service.name,
                            out.stdout.trim()
                        )
                    },
                );
                f.check(
                    !leaks(&init, &out.stdout) && !leaks(&init, &out.stderr),
                    || format!("{}: --check-config printed a secret", service.name),
                );
            }
        }
        // A variable another role reads is not an error.
        if role == "ingest" {
            let mut other = env.clone();
            other.insert("SEALCAST_HTTP_LISTEN".into(), "0.0.0.0:8080".into());
            let out = check_config(&prepared, &args, &other);
            f.check(out.as_ref().is_ok_and(|o| o.status.success()), || {
                format!(
                    "{}: SEALCAST_HTTP_LISTEN (broadcast's) is refused by ingest",
                    service.name
                )
            });
        }
        checked.push(service.name.clone());
    }
    let expected = [
        "broadcast",
        "ingest1",
        "ingest2",
        "lb",
        "source1",
        "source2",
    ];
    f.check(checked == expected, || {
        format!("checked {checked:?}, expected {expected:?}")
    });
    f.assert_none("--check-config with the compose environment");
}

/// How a negative case breaks a key file.
#[derive(Debug, Clone, Copy)]
enum Break {
    Remove,
    Unreadable,
}

/// Makes the mounted file at `target` missing or unreadable (the symlink is replaced; its
/// source stays).
fn break_file(container: &Container, target: &str, how: Break) -> Result<()> {
    let mount = container
        .mount(target)
        .with_context(|| format!("nothing is mounted at {target}"))?;
    std::fs::remove_file(&mount.host)?;
    if let Break::Unreadable = how {
        if compose::running_as_root(container.root())? {
            // Permission bits do not stop root: a directory cannot be read as a file.
            std::fs::create_dir(&mount.host)?;
        } else {
            std::fs::write(&mount.host, b"unreadable")?;
            std::fs::set_permissions(&mount.host, std::fs::Permissions::from_mode(0o000))?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_reports_every_problem_at_once_with_its_variable() {
    let init = init_cluster().await;
    let project = init.project().unwrap();
    let mut f = Findings::default();
    // (service, variables to set, variables to remove, key file to break, expected
    // (variable, and a word on the same line) pairs)
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, String)>,
        &'a [&'a str],
        (&'a str, Break),
        Vec<(&'a str, &'a str)>,
    );
    let lb_password = init.var("MQTT_PASSWORD_LB").unwrap().to_owned();
    let cases: Vec<Case> = vec![
        (
            "broadcast",
            vec![
                ("SEALCAST_RTMP_LISTN", "0.0.0.0:1935".into()),
                ("SEALCAST_HTTP_LISTEN", "not-an-address".into()),
            ],
            &["SEALCAST_PUSH_TOKEN"],
            ("/etc/sealcast/keys/root.pub", Break::Remove),
            vec![
                ("SEALCAST_RTMP_LISTN", ""),
                ("SEALCAST_HTTP_LISTEN", ""),
                ("SEALCAST_PUSH_TOKEN", ""),
                ("SEALCAST_KEYS_DIR", "root.pub"),
            ],
        ),
        (
            "ingest1",
            vec![
                ("SEALCAST_METRICS_LISTN", "0.0.0.0:9100".into()),
                ("SEALCAST_RTMP_LISTEN", "not-an-address".into()),
            ],
            &["SEALCAST_PUSH_TOKEN"],
            ("/etc/sealcast/keys/ingest/ingest1.key", Break::Unreadable),
            vec![
                ("SEALCAST_METRICS_LISTN", ""),
                ("SEALCAST_RTMP_LISTEN", ""),
                ("SEALCAST_PUSH_TOKEN", ""),
                ("SEALCAST_KEYS_DIR", "ingest1.key"),
            ],
        ),
        (
            "lb",
            vec![
                ("SEALCAST_LB_MOD", "hash".into()),
                ("SEALCAST_LB_HTTPS_LISTEN", "not-an-address".into()),
                // The real password in a broken URL: reported, never echoed.
                (
                    "SEALCAST_MQTT_URL",
                    format!("mqtt://lb:{lb_password}@mosquitto:not-a-port"),
                ),
            ],
            &[],
            ("/etc/sealcast/keys/cookie-key", Break::Remove),
            vec![
                ("SEALCAST_LB_MOD", ""),
                ("SEALCAST_LB_HTTPS_LISTEN", ""),
                ("SEALCAST_MQTT_URL", ""),
                ("SEALCAST_KEYS_DIR", "cookie-key"),
            ],
        ),
    ];
    for (name, set, remove, (file, how), expected) in cases {
        let before = f.0.len();
        let prepared = match prepare(&init, &project, name) {
            Ok(p) => p,
            Err(e) => {
                f.fail(format!("{name}: {e:#}"));
                continue;
            }
        };
        let mut env = prepared.env.clone();
        for (k, v) in set {
            env.insert(k.to_owned(), v);
        }
        for k in remove {
            env.remove(*k);
        }
        if let Err(e) = break_file(&prepared.container, file, how) {
            f.fail(format!("{name}: {e:#}"));
            continue;
        }
        let args = prepared.argv[1..].to_vec();
        let out = match check_config(&prepared, &args, &env) {
            Ok(out) => out,
            Err(e) => {
                f.fail(format!("{name}: {e:#}"));
                continue;
            }
        };
        f.check(out.status.code() == Some(2), || {
            format!(
                "{name}: a broken configuration exited with {}, not 2",
                out.status
            )
        });
        f.check(!out.stdout.contains("configuration ok"), || {
            format!("{name}: a broken configuration printed \"configuration ok\"")
        });
        for (variable, word) in expected {
            let named = out
                .stderr
                .lines()
                .any(|l| l.contains(variable) && l.contains(word));
            f.check(named, || {
                let what = if word.is_empty() {
                    String::new()
                } else {
                    format!(" with {word}")
                };
                format!("{name}: no stderr line names {variable}{what}")
            });
        }
        f.check(
            !leaks(&init, &out.stdout) && !leaks(&init, &out.stderr),
            || format!("{name}: --check-config printed a secret"),
        );
        // What the binary said, for whoever reads the failure (secrets redacted).
        if f.0.len() > before {
            f.fail(format!(
                "{name}: stderr was:\n{}",
                init.redact(out.stderr.trim())
            ));
        }
    }
    f.assert_none("--check-config with a broken environment");
}

// ----------------------------------------------------------------------------------------
// The broker's ACLs against the real Mosquitto
// ----------------------------------------------------------------------------------------

/// The compose file's broker with the init script's users, on free ports.
async fn broker(init: &InitCluster) -> Mosquitto {
    let project = init.project().unwrap();
    tokio::task::spawn_blocking(move || Mosquitto::start_for(&project, "mosquitto"))
        .await
        .unwrap()
        .unwrap()
}

/// What a connection reports, in order.
#[derive(Debug)]
enum Incoming {
    Publish { topic: String, payload: Vec<u8> },
    PubAck,
    SubAck(bool),
    Closed(String),
}

/// A test client: rumqttc driven by a task that forwards what arrives.
struct Client {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Incoming>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The CONNACK's verdict.
enum Connected {
    Accepted(Client),
    Refused(ConnectReturnCode),
}

const DEADLINE: Duration = Duration::from_secs(10);

async fn connect(
    port: u16,
    client_id: &str,
    credentials: Option<(&str, &str)>,
) -> Result<Connected> {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options
        .set_clean_session(true)
        .set_keep_alive(Duration::from_secs(30));
    if let Some((user, password)) = credentials {
        options.set_credentials(user, password);
    }
    let (client, mut events) = AsyncClient::new(options, 64);
    let code = tokio::time::timeout(DEADLINE, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return Ok(ack.code),
                Ok(_) => {}
                Err(ConnectionError::ConnectionRefused(code)) => return Ok(code),
                Err(e) => return Err(anyhow::anyhow!("{client_id}: no CONNACK: {e}")),
            }
        }
    })
    .await
    .with_context(|| format!("{client_id}: no CONNACK in {DEADLINE:?}"))??;
    if code != ConnectReturnCode::Success {
        return Ok(Connected::Refused(code));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            let incoming = match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => Incoming::Publish {
                    topic: p.topic,
                    payload: p.payload.to_vec(),
                },
                Ok(Event::Incoming(Packet::PubAck(_))) => Incoming::PubAck,
                Ok(Event::Incoming(Packet::SubAck(ack))) => Incoming::SubAck(
                    ack.return_codes
                        .iter()
                        .all(|c| !matches!(c, rumqttc::SubscribeReasonCode::Failure)),
                ),
                Ok(_) => continue,
                Err(e) => {
                    let _ = tx.send(Incoming::Closed(e.to_string()));
                    return;
                }
            };
            if tx.send(incoming).is_err() {
                return;
            }
        }
    });
    Ok(Connected::Accepted(Client { client, rx, task }))
}

/// Connects, which must be accepted.
async fn accepted(port: u16, client_id: &str, user: &str, password: &str) -> Result<Client> {
    match connect(port, client_id, Some((user, password))).await? {
        Connected::Accepted(c) => Ok(c),
        Connected::Refused(code) => bail!("{user} ({client_id}) was refused: {code:?}"),
    }
}

impl Client {
    async fn next(&mut self) -> Result<Incoming> {
        let incoming = tokio::time::timeout(DEADLINE, self.rx.recv())
            .await
            .context("nothing arrived in time")?
            .context("the connection task ended")?;
        if let Incoming::Closed(why) = &incoming {
            bail!("the connection closed: {why}");
        }
        Ok(incoming)
    }

    /// Subscribes and waits for the SUBACK, which must grant it.
    async fn subscribe(&mut self, filter: &str) -> Result<()> {
        self.client.subscribe(filter, QoS::AtLeastOnce).await?;
        loop {
            if let Incoming::SubAck(granted) = self.next().await? {
                ensure!(granted, "subscription to {filter} refused");
                return Ok(());
            }
        }
    }

    /// Publishes each (QoS 1, not retained) and waits for every PUBACK. Mosquitto
    /// acknowledges a refused publish too (MQTT 3.1.1 has no way to say no): once acked,
    /// the broker has dealt with it.
    async fn publish_all(&mut self, messages: &[(String, Vec<u8>)]) -> Result<()> {
        for (topic, payload) in messages {
            self.client
                .publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone())
                .await?;
        }
        let mut acks = 0;
        while acks < messages.len() {
            if let Incoming::PubAck = self.next().await? {
                acks += 1;
            }
        }
        Ok(())
    }
}

/// A key id (32 hex digits), for revocation topics.
const KEY_ID: &str = "00112233445566778899aabbccddeeff";

fn topic(rest: &str) -> String {
    format!("sealcast/v1/{rest}")
}

/// The broker, an observer that reads everything (`admin` on the control listener) and a
/// marker publisher (`admin` too).
struct Acl {
    init: InitCluster,
    broker: Mosquitto,
    observer: Client,
    marker: Client,
    runs: u32,
}

impl Acl {
    async fn start() -> Result<Self> {
        let init = init_cluster().await;
        let broker = broker(&init).await;
        let control = broker.port(1884)?;
        let admin = init.var("MQTT_PASSWORD_ADMIN")?.to_owned();
        let mut observer = accepted(control, "observer", "admin", &admin).await?;
        observer.subscribe("sealcast/v1/#").await?;
        let marker = accepted(control, "marker", "admin", &admin).await?;
        Ok(Acl {
            init,
            broker,
            observer,
            marker,
            runs: 0,
        })
    }

    fn password(&self, user: &str) -> Result<String> {
        Ok(self
            .init
            .var(&format!("MQTT_PASSWORD_{}", user.to_ascii_uppercase()))?
            .to_owned())
    }

    fn port(&self, listener: Listener) -> u16 {
        self.broker
            .port(match listener {
                Listener::Nodes => 1883,
                Listener::Control => 1884,
            })
            .unwrap()
    }

    /// `user` (client id `client_id`, on `listener`) publishes `forbidden` and `allowed`
    /// topics; returns what went wrong: an allowed message that never reached the
    /// observer, or a forbidden one that did. Forbidden ones go first; the last message is
    /// an allowed one (or, when `allowed` is empty, the marker client's, published after
    /// every PUBACK), so once it arrives every earlier one would have.
    async fn publishes(
        &mut self,
        listener: Listener,
        user: &str,
        client_id: &str,
        allowed: &[String],
        forbidden: &[String],
    ) -> Result<Vec<String>> {
        self.runs += 1;
        let nonce = format!("run{}-{client_id}", self.runs);
        let password = self.password(user)?;
        let mut client = accepted(self.port(listener), client_id, user, &password).await?;
        let payload = |i: usize| format!("{nonce} {i}").into_bytes();
        let mut messages: Vec<(String, Vec<u8>)> = forbidden
            .iter()
            .chain(allowed)
            .enumerate()
            .map(|(i, t)| (t.clone(), payload(i)))
            .collect();
        let mut last = messages.last().cloned().context("nothing to publish")?;
        if allowed.is_empty() {
            client.publish_all(&messages).await?;
            last = (
                topic(&format!("revocations/{KEY_ID}")),
                format!("{nonce} marker").into_bytes(),
            );
            self.marker.publish_all(std::slice::from_ref(&last)).await?;
            messages.push(last.clone());
        } else {
            client.publish_all(&messages).await?;
        }
        let mut arrived = BTreeSet::new();
        loop {
            match self.observer.next().await {
                Ok(Incoming::Publish { topic, payload }) => {
                    if payload.starts_with(nonce.as_bytes()) {
                        let done = (&topic, &payload) == (&last.0, &last.1);
                        arrived.insert((topic, payload));
                        if done {
                            break;
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => bail!("waiting for {user}'s messages: {e:#}"),
            }
        }
        let mut wrong = Vec::new();
        for (i, t) in forbidden.iter().chain(allowed).enumerate() {
            let got = arrived.contains(&(t.clone(), payload(i)));
            let may = i >= forbidden.len();
            if got != may {
                wrong.push(format!(
                    "{user} (client id {client_id}) {} publish {t}",
                    if may { "could not" } else { "could" }
                ));
            }
        }
        Ok(wrong)
    }

    /// Whether `user` connecting to `listener` is refused at CONNACK.
    async fn refused(
        &self,
        listener: Listener,
        user: Option<&str>,
        password: Option<String>,
    ) -> Result<Option<String>> {
        let id = format!("probe-{}", user.unwrap_or("anonymous"));
        let password = match (user, password) {
            (Some(_), Some(p)) => Some(p),
            (Some(u), None) => Some(self.password(u)?),
            (None, _) => None,
        };
        let credentials = user.zip(password.as_deref());
        Ok(
            match connect(self.port(listener), &id, credentials).await? {
                Connected::Refused(
                    ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword,
                ) => None,
                Connected::Refused(other) => Some(format!(
                    "{} on {listener:?}: refused, but with {other:?}",
                    user.unwrap_or("anonymous")
                )),
                Connected::Accepted(_) => Some(format!(
                    "{} on {listener:?}: accepted",
                    user.unwrap_or("anonymous")
                )),
            },
        )
    }
}

#[derive(Debug, Clone, Copy)]
enum Listener {
    /// 1883: ingest and broadcast nodes.
    Nodes,
    /// 1884: the load balancer and the operator.
    Control,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_credentials_write_only_their_own_presence_and_load() {
    let mut acl = Acl::start().await.unwrap();
    let wrong = acl
        .publishes(
            Listener::Nodes,
            "broadcast",
            "broadcast-r1",
            &[
                topic("nodes/broadcast-r1/presence"),
                topic("nodes/broadcast-r1/load"),
            ],
            &[
                topic("streams/s/r/manifest"),
                topic("ingest/ingest1/cert"),
                topic(&format!("revocations/{KEY_ID}")),
                topic("streams/s/announce"),
                topic("ingest/ingest1/load"),
                topic("nodes/broadcast-r2/presence"),
                topic("nodes/broadcast-r2/load"),
            ],
        )
        .await
        .unwrap();
    assert!(
        wrong.is_empty(),
        "{wrong:#?}\nmosquitto's log:\n{}",
        acl.broker.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_cannot_impersonate_another_ingest() {
    let mut acl = Acl::start().await.unwrap();
    let mut wrong = Vec::new();
    for (me, other) in [("ingest1", "ingest2"), ("ingest2", "ingest1")] {
        wrong.extend(
            acl.publishes(
                Listener::Nodes,
                me,
                me,
                &[
                    topic(&format!("ingest/{me}/cert")),
                    topic(&format!("nodes/{me}/presence")),
                    topic(&format!("ingest/{me}/load")),
                    topic("streams/s/r/manifest"),
                    topic("streams/s/announce"),
                ],
                &[
                    topic(&format!("ingest/{other}/cert")),
                    topic(&format!("nodes/{other}/presence")),
                    topic(&format!("ingest/{other}/load")),
                    topic(&format!("revocations/{KEY_ID}")),
                    topic("nodes/broadcast-r1/presence"),
                ],
            )
            .await
            .unwrap(),
        );
    }
    // Whatever client id it claims, an ingest cannot certify under another's name.
    wrong.extend(
        acl.publishes(
            Listener::Nodes,
            "ingest1",
            "ingest2",
            &[topic("ingest/ingest1/cert")],
            &[topic("ingest/ingest2/cert"), topic("ingest/ingest2/load")],
        )
        .await
        .unwrap(),
    );
    assert!(
        wrong.is_empty(),
        "{wrong:#?}\nmosquitto's log:\n{}",
        acl.broker.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_balancer_writes_nothing_and_the_operator_revokes() {
    let mut acl = Acl::start().await.unwrap();
    let mut wrong = acl
        .publishes(
            Listener::Control,
            "lb",
            "lb1",
            &[],
            &[
                topic("nodes/lb1/presence"),
                topic("nodes/lb1/load"),
                topic("nodes/broadcast-r1/presence"),
                topic(&format!("revocations/{KEY_ID}")),
                topic("streams/s/r/manifest"),
                topic("streams/s/announce"),
                topic("ingest/lb1/cert"),
            ],
        )
        .await
        .unwrap();
    wrong.extend(
        acl.publishes(
            Listener::Control,
            "admin",
            "operator",
            &[
                topic(&format!("revocations/{KEY_ID}")),
                topic("nodes/gone/presence"),
            ],
            &[topic("streams/s/r/manifest"), topic("ingest/ingest1/cert")],
        )
        .await
        .unwrap(),
    );
    assert!(
        wrong.is_empty(),
        "{wrong:#?}\nmosquitto's log:\n{}",
        acl.broker.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_other_listeners_users_are_refused() {
    let acl = Acl::start().await.unwrap();
    let mut wrong = Vec::new();
    let cases: Vec<(Listener, Option<&str>, Option<String>)> = vec![
        (Listener::Nodes, None, None),
        (Listener::Control, None, None),
        (
            Listener::Nodes,
            Some("ingest1"),
            Some("not-the-password".into()),
        ),
        (Listener::Nodes, Some("broadcast"), Some(String::new())),
        (
            Listener::Control,
            Some("admin"),
            Some("not-the-password".into()),
        ),
        (Listener::Nodes, Some("nobody"), Some("x".into())),
        // per_listener_settings: each listener knows only its own users.
        (Listener::Control, Some("ingest1"), None),
        (Listener::Control, Some("ingest2"), None),
        (Listener::Control, Some("broadcast"), None),
        (Listener::Nodes, Some("lb"), None),
        (Listener::Nodes, Some("admin"), None),
    ];
    for (listener, user, password) in cases {
        if let Some(w) = acl.refused(listener, user, password).await.unwrap() {
            wrong.push(w);
        }
    }
    // The same users are accepted where they belong (so the refusals above mean something).
    for (listener, user) in [
        (Listener::Nodes, "ingest1"),
        (Listener::Nodes, "ingest2"),
        (Listener::Nodes, "broadcast"),
        (Listener::Control, "lb"),
        (Listener::Control, "admin"),
    ] {
        let password = acl.password(user).unwrap();
        if let Err(e) = accepted(acl.port(listener), &format!("ok-{user}"), user, &password).await {
            wrong.push(format!("{e:#}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{wrong:#?}\nmosquitto's log:\n{}",
        acl.broker.log()
    );
}

// ----------------------------------------------------------------------------------------
// Prometheus and Grafana
// ----------------------------------------------------------------------------------------

#[test]
fn prometheus_and_grafana_provisioning_match_the_compose_services() {
    let project = raw_project();
    let image = dockerfile();
    let mut f = Findings::default();

    // Every sealcast role that serves /metrics is scraped where it listens, and every
    // scrape target is such a service.
    let mut expected_static = BTreeSet::new();
    let mut expected_dns = BTreeSet::new();
    for service in project.services.values().filter(|s| s.build.is_some()) {
        let Some(role) = sealcast_role(service, &image) else {
            continue;
        };
        let env = project.container_env(service, Some(&image));
        let Some(port) = http_port(&role, &env) else {
            continue;
        };
        if service.replicas.is_some() && service.container_name.is_none() {
            expected_dns.insert((service.name.clone(), port));
        } else {
            expected_static.insert(format!("{}:{port}", service.name));
        }
    }
    f.check(
        !expected_dns.is_empty() && expected_static.len() >= 3,
        || format!("the scrape expectations look wrong: {expected_dns:?} {expected_static:?}"),
    );
    let prometheus = compose::load_yaml(&repo().join("deploy/prometheus/prometheus.yml")).unwrap();
    let mut scraped_static = BTreeSet::new();
    let mut scraped_dns = BTreeSet::new();
    for job in prometheus["scrape_configs"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        let name = job["job_name"].as_str().unwrap_or_default();
        let path = job["metrics_path"].as_str().unwrap_or("/metrics");
        f.check(path == "/metrics", || {
            format!("prometheus job {name}: metrics_path {path}")
        });
        for sc in job["static_configs"].as_sequence().into_iter().flatten() {
            for target in sc["targets"].as_sequence().into_iter().flatten() {
                scraped_static.insert(target.as_str().unwrap_or_default().to_owned());
            }
        }
        for sd in job["dns_sd_configs"].as_sequence().into_iter().flatten() {
            let port = sd["port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0);
            f.check(sd["type"].as_str().unwrap_or("SRV") == "A", || {
                format!(
                    "prometheus job {name}: DNS discovery of Docker's service names needs type A"
                )
            });
            for dns in sd["names"].as_sequence().into_iter().flatten() {
                scraped_dns.insert((dns.as_str().unwrap_or_default().to_owned(), port));
            }
        }
    }
    f.check(scraped_static == expected_static, || {
        format!("prometheus scrapes {scraped_static:?}; the compose services serve metrics at {expected_static:?}")
    });
    f.check(scraped_dns == expected_dns, || {
        format!("prometheus discovers {scraped_dns:?} by DNS; the scalable services are {expected_dns:?}")
    });

    // Grafana's data source is the compose file's Prometheus.
    let datasources =
        compose::load_yaml(&repo().join("deploy/grafana/provisioning/datasources/prometheus.yml"))
            .unwrap();
    let mut uids = BTreeSet::new();
    for ds in datasources["datasources"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        uids.insert(ds["uid"].as_str().unwrap_or_default().to_owned());
        let url = ds["url"].as_str().unwrap_or_default();
        let prometheus_service = project.service("prometheus").unwrap();
        let listen = prometheus_service
            .command
            .as_deref()
            .and_then(|c| flag_value(c, "--web.listen-address"))
            .and_then(port_of)
            .unwrap_or(9090);
        f.check(url == format!("http://prometheus:{listen}"), || {
            format!("grafana's data source points at {url}, not http://prometheus:{listen}")
        });
    }
    // The dashboard provider reads where compose mounts the dashboards.
    let providers =
        compose::load_yaml(&repo().join("deploy/grafana/provisioning/dashboards/sealcast.yml"))
            .unwrap();
    let grafana = project.service("grafana").unwrap();
    for provider in providers["providers"].as_sequence().into_iter().flatten() {
        let path = provider["options"]["path"].as_str().unwrap_or_default();
        let mounted = grafana
            .bind_mounts()
            .find(|(_, m)| m.target == path)
            .map(|(source, _)| relative_source(source));
        f.check(
            mounted == Some(PathBuf::from("deploy/grafana/dashboards")),
            || format!("the dashboard provider reads {path}, where compose mounts {mounted:?}"),
        );
    }
    // Every panel queries something, from a provisioned data source.
    let panels = compose::dashboard_panels().unwrap();
    f.check(panels.iter().any(|p| !p.exprs.is_empty()), || {
        "no dashboard panel has a query".into()
    });
    for panel in &panels {
        if panel.kind == "row" {
            continue;
        }
        f.check(
            !panel.exprs.is_empty() && panel.exprs.iter().all(|e| !e.trim().is_empty()),
            || {
                format!(
                    "{}: panel {:?} has no target expression",
                    panel.file, panel.title
                )
            },
        );
        for uid in &panel.datasources {
            f.check(uids.contains(uid) || uid.starts_with("${"), || {
                format!(
                    "{}: panel {:?} uses data source {uid}, which is not provisioned",
                    panel.file, panel.title
                )
            });
        }
    }
    let referenced = compose::referenced_metrics();
    f.check(referenced.len() >= 10, || {
        format!("only {} metrics referenced", referenced.len())
    });
    f.assert_none("Prometheus and Grafana provisioning");
}

#[test]
fn metric_names_and_exposition_parse() {
    assert_eq!(
        compose::metric_names(
            "sum(rate(sealcast_a_total[1m])) / xsealcast_b + sealcast_c{x=\"sealcast_d\"}"
        )
        .into_iter()
        .collect::<Vec<_>>(),
        ["sealcast_a_total", "sealcast_c", "sealcast_d"]
    );
    let families = compose::exported_families(
        "# HELP sealcast_x X.\n# TYPE sealcast_x counter\nsealcast_x_total 1\n# TYPE sealcast_h histogram\n# TYPE sealcast_g gauge\n# EOF\n",
    );
    assert!(compose::is_exported("sealcast_x_total", &families));
    assert!(!compose::is_exported("sealcast_x", &families));
    assert!(compose::is_exported("sealcast_h_bucket", &families));
    assert!(compose::is_exported("sealcast_h_count", &families));
    assert!(!compose::is_exported("sealcast_h_total", &families));
    assert!(compose::is_exported("sealcast_g", &families));
    assert!(!compose::is_exported("sealcast_g_total", &families));
    assert!(!compose::is_exported("sealcast_y", &families));
}

/// A role process for its `/metrics`: stderr to a log file, killed when dropped.
struct Role {
    name: &'static str,
    child: tokio::process::Child,
    log: PathBuf,
    /// Redacted from the log when it is shown.
    secrets: Vec<String>,
}

impl Role {
    /// Starts `sealcast ARGS` with a clean environment plus `env`, and waits for the stdout
    /// line starting with `ready`; returns the process and the rest of that line.
    async fn start(
        name: &'static str,
        args: &[String],
        env: &Vars,
        dir: &Path,
        ready: &str,
        secrets: &[&str],
    ) -> Result<(Self, String)> {
        let log = dir.join(format!("{name}.log"));
        let mut child = tokio::process::Command::new(BIN)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("SEALCAST_LOG", "info")
            .envs(env)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()?;
        let line = compose::stdout_line(&mut child, ready).await;
        let role = Role {
            name,
            child,
            log,
            secrets: secrets.iter().map(|s| (*s).to_owned()).collect(),
        };
        match line {
            Ok(line) => Ok((role, line)),
            Err(e) => bail!("sealcast {name}: {e:#}; its log:\n{}", role.log()),
        }
    }

    fn log(&self) -> String {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        compose::redact(
            &std::fs::read_to_string(&self.log).unwrap_or_default(),
            &secrets,
        )
    }

    /// Its `/metrics` at `url`, retried until the deadline (it may bind just after it
    /// says where).
    async fn metrics(&mut self, url: &str) -> Result<String> {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "sealcast {} exited with {status}; its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            match client.get(url).timeout(Duration::from_secs(5)).send().await {
                Ok(r) if r.status().is_success() => return Ok(r.text().await?),
                other => {
                    if tokio::time::Instant::now() >= deadline {
                        bail!("GET {url}: {other:?}; its log:\n{}", self.log());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_query_only_metrics_the_roles_export() {
    let referenced = compose::referenced_metrics();
    assert!(
        !referenced.is_empty(),
        "the dashboards reference no sealcast metric"
    );
    let init = init_cluster().await;
    let broker = broker(&init).await;
    let dir = tempfile::tempdir().unwrap();
    let keys = init.project_dir().join("deploy/state/keys");
    let certs = init.project_dir().join("certs/generated");
    let nodes = broker.port(1883).unwrap();
    let control = broker.port(1884).unwrap();
    let url = |user: &str, port: u16| {
        let password = init
            .var(&format!("MQTT_PASSWORD_{}", user.to_ascii_uppercase()))
            .unwrap();
        format!("mqtt://{user}:{password}@127.0.0.1:{port}")
    };
    let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    let env = |pairs: &[(&str, String)]| -> Vars {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    };
    let data = |name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d.to_string_lossy().into_owned()
    };
    let keys_dir = keys.to_string_lossy().into_owned();

    let broadcast_args = s(&[
        "broadcast",
        "--listen",
        "127.0.0.1:0",
        "--node-id",
        "metrics-b1",
    ]);
    let broadcast_env = env(&[
        ("SEALCAST_MQTT_URL", url("broadcast", nodes)),
        ("SEALCAST_KEYS_DIR", keys_dir.clone()),
        ("SEALCAST_DATA_DIR", data("broadcast")),
    ]);
    let ingest_args = s(&[
        "ingest",
        "--rtmp-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--node-id",
        "ingest1",
    ]);
    let ingest_env = env(&[
        ("SEALCAST_MQTT_URL", url("ingest1", nodes)),
        ("SEALCAST_KEYS_DIR", keys_dir.clone()),
        ("SEALCAST_DATA_DIR", data("ingest")),
    ]);
    let lb_args = s(&[
        "lb",
        "--https-listen",
        "127.0.0.1:0",
        "--http-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--node-id",
        "lb1",
    ]);
    let lb_env = env(&[
        ("SEALCAST_MQTT_URL", url("lb", control)),
        ("SEALCAST_KEYS_DIR", keys_dir.clone()),
        ("SEALCAST_CERTS_DIR", certs.to_string_lossy().into_owned()),
        ("SEALCAST_DATA_DIR", data("lb")),
    ]);
    let secrets = init.secret_values();
    let broadcast = Role::start(
        "broadcast",
        &broadcast_args,
        &broadcast_env,
        dir.path(),
        "metrics-b1 ",
        &secrets,
    );
    let ingest = Role::start(
        "ingest",
        &ingest_args,
        &ingest_env,
        dir.path(),
        "metrics ",
        &secrets,
    );
    let lb = Role::start("lb", &lb_args, &lb_env, dir.path(), "metrics ", &secrets);
    let (broadcast, ingest, lb) = tokio::join!(broadcast, ingest, lb);
    let (mut broadcast, broadcast_url) = broadcast.unwrap();
    let (mut ingest, ingest_metrics) = ingest.unwrap();
    let (mut lb, lb_metrics) = lb.unwrap();

    let mut exported: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    let pages = [
        (
            broadcast.metrics(&format!("{broadcast_url}/metrics")).await,
            "broadcast",
        ),
        (ingest.metrics(&ingest_metrics).await, "ingest"),
        (lb.metrics(&lb_metrics).await, "lb"),
    ];
    for (page, role) in pages {
        let page = page.unwrap();
        assert!(!leaks(&init, &page), "{role}'s /metrics shows a secret");
        let families = compose::exported_families(&page);
        assert!(
            families.keys().any(|k| k.starts_with("sealcast_")),
            "{role} exports no sealcast_* family:\n{page}"
        );
        exported.insert(role, families);
    }
    drop((broadcast, ingest, lb, broker));

    // prometheus-client leaves a `Family` out of /metrics until it has a label set, so
    // families that need traffic (per rung, per node, per reason) are missing from a role
    // that just started. For those, the registration in the code stands in; it must
    // agree with every family the roles do declare.
    let registered = compose::registered_metrics().unwrap();
    let mut f = Findings::default();
    for (role, families) in &exported {
        for (name, kind) in families.iter().filter(|(n, _)| n.starts_with("sealcast_")) {
            let found = registered.get(name);
            f.check(found.and_then(|r| r.kind.as_ref()) == Some(kind), || {
                format!("{role} declares {name} as a {kind}; the source scan found {found:?}")
            });
        }
    }
    let live = |name: &str| {
        exported
            .values()
            .any(|families| compose::is_exported(name, families))
    };
    let mut only_registered = Vec::new();
    for name in &referenced {
        if live(name) {
            continue;
        }
        // A family the roles do not declare yet, registered in the code with a kind whose
        // series this name is.
        let from_code = registered.iter().find(|(base, r)| {
            let declared_live = exported
                .values()
                .any(|families| families.contains_key(*base));
            let kind = r.kind.clone().unwrap_or_default();
            !declared_live && compose::is_exported(name, &[((*base).clone(), kind)].into())
        });
        match from_code {
            Some((base, r)) => {
                only_registered.push(format!("{name} ({base}, {})", r.file.display()))
            }
            None => f.fail(format!(
                "the dashboards query {name}, which no role exports"
            )),
        }
    }
    f.check(only_registered.len() < referenced.len(), || {
        "no dashboard metric was found on a running role".into()
    });
    if !f.0.is_empty() {
        f.fail(format!(
            "declared by the running roles: {:#?}\nonly registered in the code (empty until traffic): {only_registered:#?}",
            exported
                .iter()
                .map(|(role, families)| (role, families.keys().collect::<Vec<_>>()))
                .collect::<Vec<_>>()
        ));
    }
    f.assert_none("metrics the Grafana dashboards query");
}
