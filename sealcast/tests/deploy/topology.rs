//! The shape of the rendered cluster: `broadcast` scales, the published ports are the
//! documented variables, the image variables are honoured, every long-running service
//! has a healthcheck that probes what its role serves and a restart policy, and nothing
//! runs as root that does not have to (the `Dockerfile`'s `USER 10001`, read as text).

use std::collections::{BTreeMap, BTreeSet};

use crate::dockerfile::{self, Instruction};
use crate::project::{Config, Health, Port, Project, Service};
use crate::{argv, config, http_port, init, port_of, role, Findings, LB_ENTRYPOINT};

/// The sealcast image's data directory (`SEALCAST_DATA_DIR` and `WORKDIR`).
const DATA_DIR: &str = "/var/lib/sealcast";

#[test]
fn broadcast_scales_without_an_edit() {
    let project = init();
    check_broadcast_scales(&project).assert_none("a scalable broadcast");
}

/// The findings of [`broadcast_scales_without_an_edit`] for `project`.
pub(crate) fn check_broadcast_scales(project: &Project) -> Findings {
    let config = config(project);
    let mut f = Findings::default();
    // No fixed names at all: a second project on the same engine (the end-to-end tests)
    // must not collide with this one.
    for service in config.services() {
        f.check(service.text("container_name").is_none(), || {
            format!("{} has a container_name", service.name)
        });
    }
    let broadcast = config.service("broadcast").unwrap();
    f.check(broadcast.ports().unwrap().is_empty(), || {
        "broadcast publishes host ports (a second replica could not)".into()
    });
    f.check(
        broadcast.address("frontend").is_none() && broadcast.address("backend").is_none(),
        || "broadcast has a fixed address".into(),
    );
    let env = broadcast.environment();
    f.check(!env.contains_key("SEALCAST_NODE_ID"), || {
        "broadcast sets SEALCAST_NODE_ID: every replica would have the same".into()
    });
    let http = env.get("SEALCAST_HTTP_LISTEN").and_then(|a| port_of(a));
    let exposed: Vec<String> = broadcast.body["expose"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(crate::project::scalar)
        .collect();
    f.check(
        http.is_some_and(|p| exposed.contains(&p.to_string())),
        || format!("broadcast exposes {exposed:?}, not its SEALCAST_HTTP_LISTEN port {http:?}"),
    );
    f.check(broadcast.replicas() == Some(3), || {
        format!(
            "broadcast runs {:?} replicas by default, not 3",
            broadcast.replicas()
        )
    });
    let five = project
        .config_with(&[], &[("BROADCAST_REPLICAS", "5")])
        .unwrap();
    let replicas = five.service("broadcast").unwrap().replicas();
    f.check(replicas == Some(5), || {
        format!("BROADCAST_REPLICAS=5 gives {replicas:?} replicas")
    });
    f
}

/// The host ports of docs/deployment.md: (variable, service, default, container port,
/// host address). Every other service publishes nothing.
const PORTS: [(&str, &str, u16, u16, Option<&str>); 12] = [
    ("INGEST1_RTMP_PORT", "ingest1", 1935, 1935, None),
    ("INGEST2_RTMP_PORT", "ingest2", 1936, 1935, None),
    ("INGEST1_SRT_PORT", "ingest1", 9000, 9000, None),
    ("INGEST2_SRT_PORT", "ingest2", 9001, 9000, None),
    ("INGEST1_WEBRTC_PORT", "ingest1", 8189, 8189, None),
    ("INGEST2_WEBRTC_PORT", "ingest2", 8190, 8189, None),
    ("LB_HTTPS_PORT", "lb1", 443, 443, None),
    ("LB_HTTP_PORT", "lb1", 80, 80, None),
    // The QUIC front door (UDP), beside HTTPS's TCP.
    ("LB_QUIC_PORT", "lb1", 443, 443, None),
    (
        "PROMETHEUS_PORT",
        "prometheus",
        9090,
        9090,
        Some("127.0.0.1"),
    ),
    ("GRAFANA_PORT", "grafana", 3000, 3000, Some("127.0.0.1")),
    ("VARNISH_PORT", "varnish", 6081, 6081, None),
];

/// Published ports by service: (host address, host port, container port).
type Published = BTreeMap<String, BTreeSet<(Option<String>, Option<u16>, u16)>>;

/// The ports each service of `config` publishes.
fn published(config: &Config) -> Published {
    config
        .services()
        .iter()
        .map(|s| {
            let ports = s
                .ports()
                .unwrap()
                .into_iter()
                .map(
                    |Port {
                         host_ip,
                         published,
                         target,
                     }| (host_ip, published, target),
                )
                .collect();
            (s.name.clone(), ports)
        })
        .collect()
}

/// What [`PORTS`] expects, with `port` giving each variable's value.
fn expected_ports(config: &Config, port: impl Fn(usize, u16) -> u16) -> Published {
    let mut out: BTreeMap<_, BTreeSet<_>> = config
        .names()
        .into_iter()
        .map(|n| (n, BTreeSet::new()))
        .collect();
    for (i, (_, service, default, target, ip)) in PORTS.iter().enumerate() {
        out.entry((*service).to_owned()).or_default().insert((
            ip.map(str::to_owned),
            Some(port(i, *default)),
            *target,
        ));
    }
    out
}

#[test]
fn published_ports_are_the_documented_variables() {
    let project = init();
    check_published_ports(&project).assert_none("published ports");
}

/// The findings of [`published_ports_are_the_documented_variables`] for `project`.
pub(crate) fn check_published_ports(project: &Project) -> Findings {
    let mut f = Findings::default();
    let defaults = config(project);
    let values: Vec<String> = (0..PORTS.len()).map(|i| (20_001 + i).to_string()).collect();
    let env: Vec<(&str, &str)> = PORTS
        .iter()
        .zip(&values)
        .map(|((var, ..), value)| (*var, value.as_str()))
        .collect();
    let moved = project
        .config_with(&crate::project::ALL_PROFILES, &env)
        .unwrap();
    for (what, config, expected) in [
        ("by default", &defaults, expected_ports(&defaults, |_, d| d)),
        (
            "with every port variable set",
            &moved,
            expected_ports(&moved, |i, _| values[i].parse().unwrap()),
        ),
    ] {
        let got = published(config);
        for (service, want) in &expected {
            let has = got.get(service).cloned().unwrap_or_default();
            f.check(&has == want, || {
                format!("{what}, {service} publishes (address, host port, container port) {has:?}, not {want:?}")
            });
        }
    }
    // The container ports are where the roles listen.
    for (service, var, target) in [
        ("ingest1", "SEALCAST_RTMP_LISTEN", 1935),
        ("ingest2", "SEALCAST_RTMP_LISTEN", 1935),
        ("ingest1", "SEALCAST_SRT_LISTEN", 9000),
        ("ingest2", "SEALCAST_SRT_LISTEN", 9000),
        ("ingest1", "SEALCAST_WEBRTC_LISTEN", 8189),
        ("ingest2", "SEALCAST_WEBRTC_LISTEN", 8189),
        ("lb1", "SEALCAST_LB_HTTPS_LISTEN", 443),
        ("lb1", "SEALCAST_LB_HTTP_LISTEN", 80),
        ("lb1", "SEALCAST_LB_QUIC_LISTEN", 443),
    ] {
        let listen = defaults
            .service(service)
            .unwrap()
            .environment()
            .get(var)
            .and_then(|a| port_of(a));
        f.check(listen == Some(target), || {
            format!("{service}: {var} listens on {listen:?}, the published port goes to {target}")
        });
    }
    f
}

/// The images by default, and the variables that name others: (variable, default,
/// services). `RUNTIME_IMAGE` is the sealcast image's base, a build argument.
const IMAGES: [(&str, &str, &[&str]); 8] = [
    (
        "SEALCAST_IMAGE",
        "sealcast:local",
        &[
            "ingest1",
            "ingest2",
            "broadcast",
            "lb1",
            "lb2",
            "source1",
            "source2",
            "tools",
        ],
    ),
    (
        "MOSQUITTO_IMAGE",
        "eclipse-mosquitto:2",
        &["mosquitto", "mosquitto2"],
    ),
    ("POSTGRES_IMAGE", "postgres:16-bookworm", &["postgres"]),
    (
        "PROMETHEUS_IMAGE",
        "prom/prometheus:v3.5.0",
        &["prometheus"],
    ),
    ("GRAFANA_IMAGE", "grafana/grafana:11.4.0", &["grafana"]),
    ("VARNISH_IMAGE", "varnish:7.1", &["varnish"]),
    ("GARAGE_IMAGE", "dxflrs/garage:v2.5.0", &["garage"]),
    (
        "MOQ_RELAY_IMAGE",
        "sealcast-moq-relay:local",
        &["relay-root1", "relay-root2", "relay"],
    ),
];

#[test]
fn image_variables_are_honoured() {
    let project = init();
    check_image_variables(&project).assert_none("image variables");
}

/// The findings of [`image_variables_are_honoured`] for `project`.
pub(crate) fn check_image_variables(project: &Project) -> Findings {
    let mut f = Findings::default();
    let image = dockerfile::instructions(project.dir()).unwrap();
    let runtime_default = dockerfile::all(&image, "ARG")
        .into_iter()
        .find_map(|a| a.strip_prefix("RUNTIME_IMAGE="))
        .map(str::to_owned);
    let mirror: Vec<(String, String)> = IMAGES
        .iter()
        .map(|(var, _, _)| {
            (
                (*var).to_owned(),
                format!("mirror.test/{}:1", var.to_ascii_lowercase()),
            )
        })
        .chain([(
            "RUNTIME_IMAGE".to_owned(),
            "mirror.test/debian:bookworm".to_owned(),
        )])
        .collect();
    let mirror_env: Vec<(&str, &str)> = mirror
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let value = |env: &[(&str, &str)], var: &str, default: &str| {
        env.iter()
            .find(|(k, _)| *k == var)
            .map_or(default.to_owned(), |(_, v)| (*v).to_owned())
    };
    for env in [&[][..], &mirror_env[..]] {
        let config = project
            .config_with(&crate::project::ALL_PROFILES, env)
            .unwrap();
        let mut covered = BTreeSet::new();
        for (var, default, services) in IMAGES {
            for name in services {
                let want = value(env, var, default);
                let got = config.service(name).unwrap().text("image");
                f.check(got.as_deref() == Some(want.as_str()), || {
                    format!("{name}: image {got:?}, not {want} ({var})")
                });
                covered.insert((*name).to_owned());
            }
        }
        f.check(covered == config.names(), || {
            format!(
                "services whose image no variable names: {:?}",
                config.names().difference(&covered).collect::<Vec<_>>()
            )
        });
        let want = value(
            env,
            "RUNTIME_IMAGE",
            runtime_default.as_deref().unwrap_or("?"),
        );
        for service in config.services().iter().filter(|s| s.built()) {
            let got = service.build_args().get("RUNTIME_IMAGE").cloned();
            f.check(got.as_deref() == Some(want.as_str()), || {
                format!(
                    "{}: build arg RUNTIME_IMAGE {got:?}, not {want}",
                    service.name
                )
            });
        }
        // The relay tier's image is the sealcast image with moq-relay beside it.
        let sealcast = value(env, "SEALCAST_IMAGE", "sealcast:local");
        for service in config.services().iter().filter(|s| s.relay_image()) {
            let got = service.build_args().get("SEALCAST_IMAGE").cloned();
            f.check(got.as_deref() == Some(sealcast.as_str()), || {
                format!(
                    "{}: build arg SEALCAST_IMAGE {got:?}, not {sealcast}",
                    service.name
                )
            });
        }
    }
    // The Dockerfile's base is that argument: declared before its only FROM, with the
    // default compose uses.
    let froms = dockerfile::all(&image, "FROM");
    f.check(froms == ["${RUNTIME_IMAGE}"], || {
        format!("Dockerfile: FROM {froms:?}, not one stage FROM ${{RUNTIME_IMAGE}}")
    });
    f.check(
        image
            .first()
            .is_some_and(|i| i.keyword == "ARG" && i.args.starts_with("RUNTIME_IMAGE=")),
        || "Dockerfile: ARG RUNTIME_IMAGE=... is not its first instruction".into(),
    );
    f.check(
        runtime_default.as_deref() == Some("debian:bookworm-slim"),
        || format!("Dockerfile: RUNTIME_IMAGE defaults to {runtime_default:?}"),
    );
    f
}

/// The image's healthcheck: the words after `CMD`.
fn image_healthcheck(image: &[Instruction]) -> Option<Vec<String>> {
    let args = dockerfile::last(image, "HEALTHCHECK")?;
    let (_, command) = args.split_once("CMD ")?;
    dockerfile::exec_form(command.trim())
}

/// A check's `CMD` words (`None` for `CMD-SHELL` or none).
fn cmd(health: &Health) -> Option<&[String]> {
    match health {
        Health::Test(words) if words.first().map(String::as_str) == Some("CMD") => {
            Some(&words[1..])
        }
        _ => None,
    }
}

/// Services without a healthcheck of their own or their image's, and why that is fine.
const NO_HEALTHCHECK: [(&str, &str); 1] = [(
    "grafana",
    "profile `grafana`, upstream image without one; nothing waits for it to be healthy",
)];

#[test]
fn every_long_running_service_has_a_healthcheck() {
    let project = init();
    check_healthchecks(&project).assert_none("healthchecks");
}

/// The findings of [`every_long_running_service_has_a_healthcheck`] for `project`.
pub(crate) fn check_healthchecks(project: &Project) -> Findings {
    let config = config(project);
    let image = dockerfile::instructions(project.dir()).unwrap();
    let mut f = Findings::default();
    let installed: BTreeSet<String> = dockerfile::all(&image, "COPY")
        .iter()
        .filter_map(|c| c.split_whitespace().last())
        .map(str::to_owned)
        .collect();
    let image_check = image_healthcheck(&image);
    f.check(image_check.is_some(), || {
        "Dockerfile: no HEALTHCHECK CMD [...]".into()
    });

    for service in config.services() {
        let own = service.health();
        let one_shot = service.text("restart").as_deref() == Some("no");
        let source = role(&service, &image).as_deref() == Some("source");
        if one_shot || source {
            // The operator's commands and the test sources: nothing to probe, and off
            // explicitly (the image's would probe a port they do not serve).
            f.check(own == Health::Disabled, || {
                format!("{}: the healthcheck is {own:?}, not disabled", service.name)
            });
            continue;
        }
        let effective = match (&own, service.built()) {
            (Health::Unset, true) => image_check.clone(),
            _ => cmd(&own).map(<[String]>::to_vec),
        };
        let Some(check) = effective else {
            f.check(
                NO_HEALTHCHECK.iter().any(|(n, _)| *n == service.name),
                || format!("{} has no healthcheck (its own: {own:?})", service.name),
            );
            continue;
        };
        // A sealcast role is probed where it serves /healthz, by a script the image has.
        if let Some(role) = service.built().then(|| role(&service, &image)).flatten() {
            let expected = http_port(&role, &service.environment());
            let probed = check.get(1).and_then(|p| p.parse::<u16>().ok());
            f.check(expected.is_some() && probed == expected, || {
                format!(
                    "{}: the healthcheck probes {probed:?}, {role} serves /healthz on {expected:?}",
                    service.name
                )
            });
            let program = check.first().cloned().unwrap_or_default();
            f.check(
                installed.contains(&format!("/usr/local/bin/{program}")),
                || {
                    format!(
                        "{}: the healthcheck runs {program}, which the image does not install",
                        service.name
                    )
                },
            );
        }
    }
    for name in [
        "mosquitto",
        "mosquitto2",
        "postgres",
        "ingest1",
        "ingest2",
        "lb1",
        "lb2",
        "prometheus",
        "relay-root1",
        "relay-root2",
        "relay",
    ] {
        let own = config.service(name).unwrap().health();
        f.check(cmd(&own).is_some(), || {
            format!("{name}: no healthcheck of its own: {own:?}")
        });
    }
    let broadcast = config.service("broadcast").unwrap().health();
    f.check(broadcast == Health::Unset, || {
        format!("broadcast overrides the image's healthcheck: {broadcast:?}")
    });
    // PostgreSQL is healthy once it answers over TCP, not on the socket the image's init
    // script serves first.
    let postgres = config.service("postgres").unwrap().health();
    let words = cmd(&postgres).unwrap_or_default();
    f.check(
        words.first().map(String::as_str) == Some("pg_isready")
            && words
                .windows(2)
                .any(|w| w[0] == "-h" && ["127.0.0.1", "localhost"].contains(&w[1].as_str())),
        || format!("PostgreSQL's healthcheck {words:?} does not test TCP"),
    );
    f
}

/// Issue 45 (health that tells the truth): a sealcast role whose listener task dies exits
/// non-zero, and plain Docker restarts a container for exiting, never for being unhealthy:
/// so every long-running service has a restart policy that restarts it after a failure.
#[test]
fn every_long_running_service_is_restarted_when_it_exits() {
    let project = init();
    let config = config(&project);
    let mut f = Findings::default();
    let mut checked = 0;
    for service in config.services() {
        let restart = service.text("restart");
        if restart.as_deref() == Some("no") {
            // The operator's one-shot commands.
            continue;
        }
        checked += 1;
        f.check(
            matches!(
                restart.as_deref(),
                Some("always" | "unless-stopped" | "on-failure")
            ) || restart
                .as_deref()
                .is_some_and(|r| r.starts_with("on-failure:")),
            || {
                format!(
                    "{}: restart is {restart:?}, so a role that exits on a dead listener stays down",
                    service.name
                )
            },
        );
    }
    f.check(checked >= 6, || {
        format!("only {checked} long-running services found")
    });
    f.assert_none("restart policies");
}

#[test]
fn nothing_runs_as_root_that_need_not() {
    let project = init();
    check_users(&project).assert_none("users");
}

/// The findings of [`nothing_runs_as_root_that_need_not`] for `project`.
pub(crate) fn check_users(project: &Project) -> Findings {
    let config = config(project);
    let image = dockerfile::instructions(project.dir()).unwrap();
    let mut f = Findings::default();
    let user = dockerfile::last(&image, "USER").unwrap_or("root");
    let uid = user.split(':').next().unwrap_or_default();
    f.check(uid == "10001", || {
        format!("Dockerfile: USER {user}, not 10001")
    });
    f.check(
        dockerfile::all(&image, "RUN")
            .iter()
            .any(|r| r.contains("useradd --uid 10001")),
        || "Dockerfile: no user 10001 is made".into(),
    );
    let entrypoint = dockerfile::last(&image, "ENTRYPOINT").and_then(dockerfile::exec_form);
    f.check(
        entrypoint.as_deref() == Some(&["sealcast".to_owned()][..]),
        || format!("Dockerfile: ENTRYPOINT {entrypoint:?}, not [\"sealcast\"]"),
    );
    let copies = dockerfile::all(&image, "COPY");
    for (from, to) in [
        ("dist/sealcast", "/usr/local/bin/sealcast"),
        (
            "deploy/docker/healthcheck.sh",
            "/usr/local/bin/sealcast-healthcheck",
        ),
        (
            "deploy/docker/lb.sh",
            &format!("/usr/local/bin/{LB_ENTRYPOINT}"),
        ),
    ] {
        f.check(copies.contains(&format!("{from} {to}").as_str()), || {
            format!("Dockerfile: no COPY {from} {to}")
        });
    }
    let env: BTreeMap<String, String> = dockerfile::env(&image).into_iter().collect();
    f.check(
        env.get("SEALCAST_DATA_DIR").map(String::as_str) == Some(DATA_DIR)
            && dockerfile::last(&image, "WORKDIR") == Some(DATA_DIR),
        || format!("Dockerfile: SEALCAST_DATA_DIR and WORKDIR are not {DATA_DIR}"),
    );
    // Recordings: a volume of each edge's own at the data directory.
    let broadcast = config.service("broadcast").unwrap();
    f.check(
        broadcast
            .mounts()
            .unwrap()
            .iter()
            .any(|m| m.target() == DATA_DIR),
        || format!("broadcast has no volume at {DATA_DIR}"),
    );

    let run = format!(
        "{}:{}",
        project.var("RUN_UID").unwrap(),
        project.var("RUN_GID").unwrap()
    );
    for service in config.services() {
        let user = service.text("user");
        let lb = service.words("entrypoint").as_deref() == Some(&[LB_ENTRYPOINT.to_owned()][..]);
        match (service.name.as_str(), user.as_deref()) {
            // Root for keepalived only; lb.sh runs sealcast as RUN_UID (keys.rs checks it).
            (_, Some("0:0" | "root" | "0")) if lb => {}
            (_, Some(u)) if u.starts_with("0:") || u == "0" || u.starts_with("root") => {
                f.fail(format!("{} runs as root ({u})", service.name));
            }
            (_, Some(u)) if service.built() || service.name.starts_with("mosquitto") => {
                f.check(u == run, || {
                    format!("{} runs as {u}, not RUN_UID:RUN_GID {run}", service.name)
                });
            }
            // The image's user: 10001 for sealcast's; the upstream images' own.
            _ => {}
        }
        if lb {
            f.check(argv(&service, &image) == [LB_ENTRYPOINT], || {
                format!("{}: runs {:?}", service.name, argv(&service, &image))
            });
        }
    }
    f
}

/// A service's own view, for the other modules.
pub(crate) fn sealcast_services<'a>(
    config: &'a Config,
    image: &[Instruction],
) -> Vec<(Service<'a>, String)> {
    config
        .services()
        .into_iter()
        .filter(|s| s.built())
        .filter_map(|s| {
            let role = role(&s, image)?;
            Some((s, role))
        })
        .collect()
}
