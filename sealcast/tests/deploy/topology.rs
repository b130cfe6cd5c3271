//! The compose topology: a scalable `broadcast`, published ports, healthchecks, image
//! variables, a non-root multi-stage image.

use std::collections::{BTreeMap, BTreeSet};

use testkit::compose::{self, Dockerfile, Healthcheck, Service, Vars};

use crate::{dockerfile, raw_project, repo, Findings};

/// The port of a `host:port` listen address.
pub(crate) fn port_of(address: &str) -> Option<u16> {
    address.rsplit_once(':')?.1.parse().ok()
}

/// The first word of a service's sealcast command (`ingest`, `broadcast`, `lb`), if the
/// container runs `sealcast ROLE`.
pub(crate) fn sealcast_role(service: &Service, image: &Dockerfile) -> Option<String> {
    let argv = service.argv(Some(image));
    (argv.first().map(String::as_str) == Some("sealcast"))
        .then(|| argv.get(1).cloned())
        .flatten()
}

/// The ports a sealcast role serves HTTP on (metrics, health) in a container's
/// environment, with the CLI's defaults.
pub(crate) fn http_port(role: &str, env: &Vars) -> Option<u16> {
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

    // The image: multi-stage, every base an ARG given before FROM (or an earlier stage, or
    // `scratch`, which pulls nothing), non-root, a healthcheck, `sealcast` as entrypoint.
    let global: BTreeSet<&str> = image.global_args.iter().map(|a| a.name.as_str()).collect();
    for name in ["RUST_IMAGE", "RUNTIME_IMAGE", "SEALCAST_BINARY"] {
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
        f.check(
            arg.is_some_and(|a| global.contains(a)) || earlier || stage.base == "scratch",
            || format!("Dockerfile: FROM {} is not a build argument", stage.base),
        );
    }
    // The binary: built in the `build` stage by default, or a prebuilt one from the build
    // context (`--build-arg SEALCAST_BINARY=prebuilt`), so a host without the Rust image
    // can make the image; no stage runs npm or starts from a Node.js image.
    let stage = |name: &str| {
        image
            .stages
            .iter()
            .find(|s| s.name.as_deref() == Some(name))
    };
    let binary_from = image
        .global_args
        .iter()
        .find(|a| a.name == "SEALCAST_BINARY")
        .and_then(|a| a.default.clone());
    f.check(
        binary_from.as_deref().and_then(stage).is_some() && stage("prebuilt").is_some(),
        || format!("Dockerfile: SEALCAST_BINARY defaults to {binary_from:?}, or there is no prebuilt stage"),
    );
    f.check(
        stage("prebuilt").is_some_and(|s| {
            s.copies
                .iter()
                .any(|c| c.from.is_none() && c.sources == ["dist/sealcast"])
        }),
        || "Dockerfile: the prebuilt stage does not take dist/sealcast from the context".into(),
    );
    f.check(
        stage("binary").is_some_and(|s| s.base == "${SEALCAST_BINARY}"),
        || "Dockerfile: no `FROM ${SEALCAST_BINARY} AS binary`".into(),
    );
    let dockerfile_text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    f.check(
        !dockerfile_text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .any(|l| l.contains("npm") || l.contains("node")),
        || "Dockerfile: an instruction mentions npm or node".into(),
    );
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
    f.check(
        last.copies
            .iter()
            .any(|c| c.from.as_deref() == Some("binary") && c.dest == "/usr/local/bin/sealcast"),
        || "Dockerfile: sealcast is not installed in /usr/local/bin from the binary stage".into(),
    );
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
