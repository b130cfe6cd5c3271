//! Every host path the rendered compose file mounts exists once `scripts/init-cluster.sh`
//! ran (committed in the repository, or made by the script and ignored by git); the
//! `Dockerfile`'s `COPY` sources are in the build context; and the paths Mosquitto's,
//! Prometheus's and Grafana's own configuration name are mounted in their containers.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::project::{self, Mount, Project, Service};
use crate::{config, dockerfile, init, repo, Findings};

/// What the init script makes (never committed).
const GENERATED: [&str; 3] = ["deploy/state", "certs/generated", "dist"];

fn is_generated(relative: &Path) -> bool {
    GENERATED.iter().any(|g| relative.starts_with(g))
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

/// Whether container path `path` of `service` is an existing host path (through its bind
/// mounts).
fn in_container(service: &Service<'_>, path: &str) -> bool {
    service
        .host_path(path)
        .ok()
        .flatten()
        .is_some_and(|p| p.exists())
}

#[test]
fn every_mounted_path_exists_after_the_init_script() {
    let project = init();
    check_mounted_paths(&project).assert_none("paths the deployment mounts");
}

/// The findings of [`every_mounted_path_exists_after_the_init_script`] for `project`.
pub(crate) fn check_mounted_paths(project: &Project) -> Findings {
    let config = config(project);
    let mut f = Findings::default();

    let mut named = BTreeSet::new();
    for service in config.services() {
        let mounts = match service.mounts() {
            Ok(m) => m,
            Err(e) => {
                f.fail(format!("{e:#}"));
                continue;
            }
        };
        for mount in mounts {
            match mount {
                Mount::Bind { source, target, .. } => {
                    let Some(relative) = config.relative(&source) else {
                        f.fail(format!(
                            "{}: {} (for {target}) is outside the project: an absolute host path",
                            service.name,
                            source.display()
                        ));
                        continue;
                    };
                    f.check(source.exists(), || {
                        format!(
                            "{}: {} (for {target}) does not exist after scripts/init-cluster.sh",
                            service.name,
                            relative.display()
                        )
                    });
                    if is_generated(relative) {
                        f.check(project::git_ignores(relative).unwrap(), || {
                            format!(
                                "{} is made by the script but not ignored by git",
                                relative.display()
                            )
                        });
                    } else {
                        f.check(repo().join(relative).exists(), || {
                            format!(
                                "{}: {} (for {target}) is not in the repository",
                                service.name,
                                relative.display()
                            )
                        });
                    }
                }
                Mount::Named { name, .. } => {
                    named.insert(name);
                }
                Mount::Anonymous { .. } => {}
            }
        }
        if service.built() {
            let context = project::scalar(&service.body["build"]["context"]).map(PathBuf::from);
            f.check(
                context.as_deref().and_then(|c| config.relative(c)) == Some(Path::new("")),
                || {
                    format!(
                        "{}: the build context is {context:?}, not the project",
                        service.name
                    )
                },
            );
            let dockerfile = project::scalar(&service.body["build"]["dockerfile"])
                .unwrap_or_else(|| "Dockerfile".to_owned());
            f.check(project.dir().join(&dockerfile).is_file(), || {
                format!("{}: no {dockerfile} in the build context", service.name)
            });
        }
    }
    let declared = config.declared("volumes");
    f.check(named == declared, || {
        format!("named volumes used {named:?}, declared {declared:?}")
    });

    // The image's COPY sources: in the context after the script (dist/sealcast is the
    // binary it installs there), committed unless the script makes them, and not left out
    // by .dockerignore.
    let image = dockerfile::instructions(project.dir()).unwrap();
    let ignored: Vec<PathBuf> = std::fs::read_to_string(repo().join(".dockerignore"))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| PathBuf::from(l.trim_start_matches('/').trim_end_matches('/')))
        .collect();
    let copies = dockerfile::all(&image, "COPY");
    f.check(!copies.is_empty(), || "Dockerfile: no COPY".into());
    for copy in copies {
        let words: Vec<&str> = copy
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        let Some((_, sources)) = words.split_last() else {
            f.fail(format!("Dockerfile: COPY {copy}"));
            continue;
        };
        for source in sources {
            let source = Path::new(source);
            f.check(project.dir().join(source).exists(), || {
                format!(
                    "Dockerfile: COPY {} is not in the context after the script",
                    source.display()
                )
            });
            f.check(is_generated(source) || repo().join(source).exists(), || {
                format!(
                    "Dockerfile: COPY {} is not in the repository",
                    source.display()
                )
            });
            f.check(!ignored.iter().any(|i| source.starts_with(i)), || {
                format!(
                    "Dockerfile: COPY {} is excluded by .dockerignore",
                    source.display()
                )
            });
        }
    }
    f.check(
        std::fs::read(project.dir().join("dist/sealcast")).ok() == std::fs::read(crate::bin()).ok(),
        || "dist/sealcast is not the binary the script was given".into(),
    );

    // Mosquitto reads /mosquitto/config/mosquitto.conf; every path in it is in the
    // container.
    let mosquitto = config.service("mosquitto").unwrap();
    match mosquitto
        .host_path("/mosquitto/config/mosquitto.conf")
        .unwrap()
    {
        Some(conf) if conf.is_file() => {
            let text = std::fs::read_to_string(conf).unwrap();
            for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
                for word in line.split_whitespace().filter(|w| w.starts_with('/')) {
                    f.check(in_container(&mosquitto, word), || {
                        format!("mosquitto.conf: {word} is not in the container")
                    });
                }
            }
        }
        _ => f.fail(
            "mosquitto: nothing mounted at /mosquitto/config/mosquitto.conf (the image's conf)",
        ),
    }

    // Prometheus: its configuration where --config.file says; files it names mounted
    // too; its storage a volume.
    let prometheus = config.service("prometheus").unwrap();
    let args = prometheus.words("command").unwrap_or_default();
    let conf = flag_value(&args, "--config.file").unwrap_or("/etc/prometheus/prometheus.yml");
    match prometheus.host_path(conf).unwrap() {
        Some(host) if host.is_file() => match project::load_yaml(&host) {
            Err(e) => f.fail(format!("{e:#}")),
            Ok(yaml) => {
                for (key, value) in project::strings(&yaml, "") {
                    let names_file = key.ends_with("_file")
                        || key.ends_with("_files")
                        || key.contains("rule_files")
                        || key.contains(".files");
                    if names_file && value.starts_with('/') {
                        f.check(in_container(&prometheus, &value), || {
                            format!("prometheus.yml: {key} = {value} is not in the container")
                        });
                    }
                }
            }
        },
        _ => f.fail(format!("prometheus: {conf} is not mounted")),
    }
    match flag_value(&args, "--storage.tsdb.path") {
        Some(storage) => f.check(
            prometheus
                .mounts()
                .unwrap()
                .iter()
                .any(|m| matches!(m, Mount::Named { .. }) && m.target() == storage),
            || format!("prometheus: no named volume at --storage.tsdb.path {storage}"),
        ),
        None => f.fail("prometheus: no --storage.tsdb.path"),
    }

    // Grafana: provisioning where the image reads it; the dashboard providers' paths
    // and every path its environment names are in the container.
    let grafana = config.service("grafana").unwrap();
    let env = grafana.environment();
    let provisioning = env
        .get("GF_PATHS_PROVISIONING")
        .map_or("/etc/grafana/provisioning", String::as_str);
    match grafana.host_path(provisioning).unwrap() {
        Some(host) if host.join("dashboards").is_dir() && host.join("datasources").is_dir() => {
            for file in project::files_under(&host.join("dashboards")) {
                match project::load_yaml(&file) {
                    Err(e) => f.fail(format!("{e:#}")),
                    Ok(yaml) => {
                        for provider in yaml["providers"].as_sequence().into_iter().flatten() {
                            let path = provider["options"]["path"].as_str().unwrap_or_default();
                            let dashboards = grafana.host_path(path).unwrap();
                            let count = dashboards
                                .as_deref()
                                .map(project::files_under)
                                .unwrap_or_default()
                                .iter()
                                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                                .count();
                            f.check(count > 0, || {
                                format!("grafana: the dashboard provider's path {path} holds no dashboard in the container")
                            });
                        }
                    }
                }
            }
        }
        _ => f.fail(format!(
            "grafana: {provisioning} (dashboards/, datasources/) is not mounted"
        )),
    }
    for (name, value) in &env {
        if value.starts_with('/') {
            f.check(in_container(&grafana, value), || {
                format!("grafana: {name} = {value} is not in the container")
            });
        }
    }
    f
}
