//! The compose file as Docker would run it — rendered by `docker compose config` where
//! Compose v2 is installed, else read by `testkit::compose` with the `.env` the init script
//! wrote — keeps the internet-facing load balancer away from the data: networks, the load
//! balancer's mounts, and healthchecks that test what they claim.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testkit::compose::{InitCluster, MountKind, Project, Service};

use crate::files::relative_source;
use crate::{init_cluster, Findings};

/// The project as compose renders it in `init`'s directory, and how it was rendered.
fn rendered(init: &InitCluster) -> (Project, &'static str) {
    let dir = init.project_dir();
    let compose_v2 = Command::new("docker")
        .args(["compose", "version", "--short"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.starts_with(b"1."));
    if compose_v2 {
        let mut command = Command::new("docker");
        command
            .args(["compose", "config", "--format", "json"])
            .current_dir(dir);
        let out = testkit::process::run_with_deadline(command, Duration::from_secs(60)).unwrap();
        assert!(
            out.status.success(),
            "docker compose config: {}",
            init.redact(&String::from_utf8_lossy(&out.stderr))
        );
        let text = String::from_utf8(out.stdout).unwrap();
        // Rendered: everything interpolated, long syntax throughout.
        let project = Project::parse(&text, dir, None).unwrap();
        (project, "docker compose config")
    } else {
        (
            init.project().unwrap(),
            "testkit::compose (no Compose v2 here)",
        )
    }
}

/// The services on network `name`.
fn members<'a>(project: &'a Project, name: &str) -> BTreeSet<&'a str> {
    project
        .services
        .values()
        .filter(|s| s.networks.contains(name))
        .map(|s| s.name.as_str())
        .collect()
}

/// Whether two services share a network (can reach each other).
fn connected(a: &Service, b: &Service) -> bool {
    !a.networks.is_disjoint(&b.networks)
}

/// Every file under `path` (or `path` itself), by name.
fn file_names(path: &Path) -> Vec<String> {
    if path.is_file() {
        return path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .into_iter()
            .collect();
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        out.extend(file_names(&entry.path()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_balancer_faces_the_network_alone_with_its_certificate() {
    let init = init_cluster().await;
    let (project, how) = rendered(&init);
    let service = |name: &str| project.service(name).unwrap();
    let mut f = Findings::default();

    // Two networks at least, and every service says which it is on (none lands on compose's
    // implicit `default`).
    for name in ["frontend", "backend"] {
        f.check(project.networks.contains(name), || {
            format!("no network {name}")
        });
    }
    for s in project.services.values() {
        f.check(!s.networks.is_empty(), || {
            format!("{} is on the default network", s.name)
        });
        f.check(s.networks.is_subset(&project.networks), || {
            format!("{} uses an undeclared network: {:?}", s.name, s.networks)
        });
    }

    // Faces viewers and publishers: whatever publishes a port on every address is on the
    // frontend; PostgreSQL and Mosquitto are on the backend and not on the frontend.
    for s in project.services.values() {
        if s.ports.iter().any(|p| p.host_ip.is_none()) {
            f.check(s.networks.contains("frontend"), || {
                format!("{} publishes a port but is not on the frontend", s.name)
            });
        }
    }
    let frontend = members(&project, "frontend");
    for name in ["lb", "ingest1", "ingest2"] {
        f.check(frontend.contains(name), || {
            format!("{name} is not on the frontend")
        });
    }
    for name in ["postgres", "mosquitto"] {
        let s = service(name);
        f.check(
            s.networks.contains("backend") && !s.networks.contains("frontend"),
            || format!("{name} is on {:?}, not the backend alone", s.networks),
        );
    }

    // The load balancer: no network with PostgreSQL; besides the frontend, only networks
    // it shares with the broker and nothing else.
    let lb = service("lb");
    f.check(!connected(lb, service("postgres")), || {
        format!("lb shares a network with PostgreSQL: {:?}", lb.networks)
    });
    f.check(!lb.networks.contains("backend"), || {
        "lb is on the backend".into()
    });
    for network in lb.networks.iter().filter(|n| *n != "frontend") {
        let others = members(&project, network);
        f.check(
            others.iter().all(|m| ["lb", "mosquitto"].contains(m)),
            || format!("lb's network {network} also holds {others:?}"),
        );
    }
    f.check(connected(lb, service("mosquitto")), || {
        "lb cannot reach the broker (its presence and load reports)".into()
    });
    f.check(connected(lb, service("broadcast")), || {
        "lb cannot reach the broadcast nodes it proxies to".into()
    });
    // The push path and the rest of the backend's users.
    for name in ["ingest1", "ingest2"] {
        let ingest = service(name);
        f.check(
            ingest.networks.contains("backend")
                && service("broadcast").networks.contains("backend"),
            || format!("{name} does not push to the broadcast nodes over the backend"),
        );
        f.check(
            connected(ingest, service("postgres")) && connected(ingest, service("mosquitto")),
            || format!("{name} cannot reach PostgreSQL and Mosquitto"),
        );
    }
    let broadcast = service("broadcast");
    f.check(
        connected(broadcast, service("postgres")) && connected(broadcast, service("mosquitto")),
        || "broadcast cannot reach PostgreSQL and Mosquitto".into(),
    );
    let prometheus = service("prometheus");
    for target in ["ingest1", "ingest2", "broadcast", "lb"] {
        f.check(connected(prometheus, service(target)), || {
            format!("Prometheus cannot scrape {target}")
        });
    }

    // The load balancer's files: its server certificate and key, the cookie key and the
    // root's public key (presences are checked against it), no other key (the CA's key
    // least of all).
    let mut files = Vec::new();
    for mount in &lb.volumes {
        match &mount.kind {
            MountKind::Bind { source, .. } => {
                let host = init.project_dir().join(relative_source(source));
                files.extend(file_names(&host));
                f.check(mount.read_only, || {
                    format!("lb mounts {} writable", mount.target)
                });
            }
            other => f.fail(format!("lb mounts {other:?} at {}", mount.target)),
        }
    }
    files.sort();
    f.check(
        files == ["cookie-key", "root.pub", "server.key", "server.pem"],
        || format!("lb's mounts hold {files:?}"),
    );
    let ca_key = init.project_dir().join("certs/generated/ca.key");
    f.check(ca_key.is_file(), || {
        "the check above looked for the CA's key under the wrong name".into()
    });
    f.check(
        std::fs::read(&ca_key).ok()
            != std::fs::read(init.project_dir().join("deploy/state/lb-tls/server.key")).ok(),
        || "lb's key is the CA's".into(),
    );
    let served: BTreeMap<&str, PathBuf> = [
        ("server.pem", "certs/generated/server.pem"),
        ("server.key", "certs/generated/server.key"),
    ]
    .into_iter()
    .map(|(name, path)| (name, init.project_dir().join(path)))
    .collect();
    for (name, original) in &served {
        let copy = init.project_dir().join("deploy/state/lb-tls").join(name);
        f.check(
            std::fs::read(&copy).ok() == std::fs::read(original).ok(),
            || format!("lb's {name} is not the one `sealcast certs` made"),
        );
    }
    let env = &lb.environment;
    f.check(
        env.get("SEALCAST_TLS_CERT").map(String::as_str) == Some("/etc/sealcast/tls/server.pem")
            && env.get("SEALCAST_TLS_KEY").map(String::as_str)
                == Some("/etc/sealcast/tls/server.key")
            && !env.contains_key("SEALCAST_CERTS_DIR"),
        || format!("lb's TLS variables: {env:?}"),
    );

    // PostgreSQL is healthy once it answers over TCP, not on the socket the image's init
    // script serves first.
    let check = service("postgres").healthcheck.clone();
    let command = check.as_ref().and_then(|c| c.command()).unwrap_or_default();
    let words: Vec<&str> = command.iter().flat_map(|w| w.split_whitespace()).collect();
    let tcp = words.contains(&"pg_isready")
        && words
            .windows(2)
            .any(|w| w[0] == "-h" && ["127.0.0.1", "localhost"].contains(&w[1]));
    let sql = words.contains(&"psql") && words.contains(&"-c");
    f.check(tcp || sql, || {
        format!("PostgreSQL's healthcheck {command:?} does not test TCP or run SQL")
    });

    f.assert_none(&format!("docker-compose.yml as {how} renders it"));
}
