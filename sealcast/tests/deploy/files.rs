//! Every file `docker-compose.yml` and the `Dockerfile` (and the Mosquitto, Prometheus
//! and Grafana configuration they mount) reference exists or is made by
//! `scripts/init-cluster.sh`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use testkit::compose::{self, Container, MountKind};

use crate::{dockerfile, init_cluster, repo, Findings};

/// Paths the init script makes (never committed).
const GENERATED: [&str; 2] = ["deploy/state", "certs/generated"];

fn is_generated(relative: &Path) -> bool {
    GENERATED.iter().any(|g| relative.starts_with(g))
}

/// A bind source as a path relative to the project directory.
pub(crate) fn relative_source(source: &str) -> PathBuf {
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
                        // The prebuilt stage's binary is the operator's to put there
                        // (git ignores it); everything else is in the repository.
                        let operators = stage.name.as_deref() == Some("prebuilt");
                        f.check(
                            if operators {
                                gitignored(Path::new(source))
                            } else {
                                repo().join(source).exists()
                            },
                            || format!("Dockerfile: COPY {source} does not exist"),
                        );
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
pub(crate) fn gitignored(path: &Path) -> bool {
    ignore_lines(".gitignore")
        .iter()
        .any(|i| path.starts_with(i))
}

/// The patterns of an ignore file, as paths (leading `/` dropped; globs kept as text).
pub(crate) fn ignore_lines(file: &str) -> Vec<PathBuf> {
    std::fs::read_to_string(repo().join(file))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| PathBuf::from(l.trim_start_matches('/').trim_end_matches('/')))
        .collect()
}

/// `--flag=value` or `--flag value` in `args`.
pub(crate) fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
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
pub(crate) fn yaml_strings(value: &serde_yaml::Value, path: &str) -> Vec<(String, String)> {
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

pub(crate) fn files_with(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
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

pub(crate) fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    files_with(dir, &["yml", "yaml"])
}

pub(crate) fn json_files(dir: &Path) -> usize {
    files_with(dir, &["json"]).len()
}
