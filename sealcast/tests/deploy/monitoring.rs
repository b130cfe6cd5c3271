//! Prometheus's and Grafana's provisioning, as the rendered `prometheus` and `grafana`
//! services mount it, matches the rendered sealcast services; Grafana is behind its
//! profile; the dashboards query only metrics the roles export; and a broadcast node with
//! no viewer exports the series the Kubernetes autoscaler reads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use testkit::process::Spawned;
use testkit::prometheus;

use crate::acl::{broker, DEADLINE};
use crate::files::flag_value;
use crate::project::{self, Config, Project};
use crate::topology::sealcast_services;
use crate::{config, dockerfile, http_port, init, port_of, Findings, BIN};

type Vars = BTreeMap<String, String>;

/// The YAML files under container directory `dir` of `service` (through its mounts).
fn mounted_yaml(
    config: &Config,
    service: &str,
    dir: &str,
) -> Result<Vec<(PathBuf, serde_yaml::Value)>> {
    let host = config
        .service(service)?
        .host_path(dir)?
        .with_context(|| format!("{service}: {dir} is not mounted"))?;
    project::files_under(&host)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .map(|p| {
            let yaml = project::load_yaml(&p)?;
            Ok((p, yaml))
        })
        .collect()
}

#[test]
fn prometheus_and_grafana_provisioning_match_the_compose_services() {
    let project = init();
    check_provisioning(&project).assert_none("Prometheus and Grafana provisioning");
}

/// The findings of [`prometheus_and_grafana_provisioning_match_the_compose_services`] for `project`.
pub(crate) fn check_provisioning(project: &Project) -> Findings {
    let config = config(project);
    let image = dockerfile::instructions(project.dir()).unwrap();
    let mut f = Findings::default();

    // Every sealcast role that serves /metrics is scraped where it listens, and every
    // scrape target is such a service: a scalable one through Docker's DNS.
    let mut expected_static = BTreeSet::new();
    let mut expected_dns = BTreeSet::new();
    for (service, role) in sealcast_services(&config, &image) {
        let Some(port) = http_port(&role, &service.environment()) else {
            continue;
        };
        if service.replicas().is_some() && service.text("container_name").is_none() {
            expected_dns.insert((service.name.clone(), port));
        } else {
            expected_static.insert(format!("{}:{port}", service.name));
        }
    }
    let named: BTreeSet<String> = ["ingest1:9100", "ingest2:9100", "lb1:9102", "lb2:9102"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    f.check(expected_static == named && expected_dns == BTreeSet::from([("broadcast".to_owned(), 8080)]), || {
        format!("the rendered services serve metrics at {expected_static:?} and, by DNS, {expected_dns:?}")
    });
    let prometheus_service = config.service("prometheus").unwrap();
    let args = prometheus_service.words("command").unwrap_or_default();
    let conf = flag_value(&args, "--config.file").unwrap_or("/etc/prometheus/prometheus.yml");
    let prometheus =
        project::load_yaml(&prometheus_service.host_path(conf).unwrap().unwrap()).unwrap();
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

    // Grafana's data source is the rendered Prometheus.
    let listen = flag_value(&args, "--web.listen-address")
        .and_then(port_of)
        .unwrap_or(9090);
    let mut uids = BTreeSet::new();
    let datasources =
        mounted_yaml(&config, "grafana", "/etc/grafana/provisioning/datasources").unwrap();
    f.check(!datasources.is_empty(), || {
        "grafana: no data source provisioned".into()
    });
    for (_, yaml) in &datasources {
        for ds in yaml["datasources"].as_sequence().into_iter().flatten() {
            uids.insert(ds["uid"].as_str().unwrap_or_default().to_owned());
            let url = ds["url"].as_str().unwrap_or_default();
            f.check(url == format!("http://prometheus:{listen}"), || {
                format!("grafana's data source points at {url}, not http://prometheus:{listen}")
            });
        }
    }
    // The dashboard provider reads where compose mounts the dashboards.
    let grafana = config.service("grafana").unwrap();
    for (_, yaml) in
        mounted_yaml(&config, "grafana", "/etc/grafana/provisioning/dashboards").unwrap()
    {
        for provider in yaml["providers"].as_sequence().into_iter().flatten() {
            let path = provider["options"]["path"].as_str().unwrap_or_default();
            let mounted = grafana.host_path(path).unwrap();
            let relative = mounted
                .as_deref()
                .and_then(|m| config.relative(m))
                .map(Path::to_path_buf);
            f.check(
                relative == Some(PathBuf::from("deploy/grafana/dashboards")),
                || {
                    format!(
                        "the dashboard provider reads {path}, where compose mounts {relative:?}"
                    )
                },
            );
        }
    }
    // Every panel queries something, from a provisioned data source.
    let panels = dashboard_panels().unwrap();
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
    let referenced = referenced_metrics();
    f.check(referenced.len() >= 10, || {
        format!("only {} metrics referenced", referenced.len())
    });
    f
}

/// Grafana starts only with its profile on: the init script turns it on in `.env` when its
/// image can be had (always with `SEALCAST_IMAGES=upstream`); without it Compose v2's
/// `config` leaves Grafana out, and docker-compose 1.29's, which lists every service,
/// keeps its `profiles`, which `up` honours.
#[test]
fn grafana_is_behind_its_profile() {
    let project = init();
    check_grafana_profile(&project).assert_none("the grafana profile");
}

/// The findings of [`grafana_is_behind_its_profile`] for `project`.
pub(crate) fn check_grafana_profile(project: &Project) -> Findings {
    let mut f = Findings::default();
    f.check(
        project.env.get("COMPOSE_PROFILES").map(String::as_str) == Some("grafana"),
        || "the init script did not turn the grafana profile on".into(),
    );
    let grafana_profiles = |config: &Config| config.service("grafana").ok().map(|s| s.profiles());
    let grafana = Some(vec!["grafana".to_owned()]);
    // As .env says (COMPOSE_PROFILES=grafana), and with --profile grafana where the
    // environment turns every profile off.
    type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: [Case<'_>; 2] = [
        (".env", &[], &[]),
        (
            "--profile grafana",
            &["--profile", "grafana"],
            &[("COMPOSE_PROFILES", "")],
        ),
    ];
    for (what, args, env) in cases {
        let config = project.config_with(args, env).unwrap();
        f.check(grafana_profiles(&config) == grafana, || {
            format!(
                "with {what}, grafana is {:?}, not there behind its profile",
                grafana_profiles(&config)
            )
        });
    }
    // Off: the tool's environment wins over .env.
    let off = project
        .config_with(&[], &[("COMPOSE_PROFILES", "")])
        .unwrap();
    let profiles = grafana_profiles(&off);
    f.check(profiles.is_none() || profiles == grafana, || {
        format!("without the profile, grafana is there with profiles {profiles:?}")
    });
    // Everything else starts with `up` but the operator's tools.
    for service in off.services() {
        let want: Vec<String> = match service.name.as_str() {
            "grafana" => vec!["grafana".into()],
            "tools" => vec!["tools".into()],
            "varnish" => vec!["cdn".into()],
            "garage" => vec!["s3".into()],
            _ => Vec::new(),
        };
        f.check(service.profiles() == want, || {
            format!(
                "{} has profiles {:?}, not {want:?}",
                service.name,
                service.profiles()
            )
        });
    }
    let names = off.names();
    for name in [
        "mosquitto",
        "postgres",
        "ingest1",
        "ingest2",
        "broadcast",
        "lb1",
        "lb2",
        "prometheus",
    ] {
        f.check(names.contains(name), || {
            format!("{name} is not there without a profile")
        });
    }
    f
}

/// Starts `sealcast ARGS` with a clean environment plus `env` (its log in `dir`), and waits
/// for the stdout line starting with `ready`; returns the process and the rest of that line.
async fn start_role(
    name: &'static str,
    args: &[String],
    env: &Vars,
    dir: &Path,
    ready: &str,
    secrets: &[&str],
) -> Result<(Spawned, String)> {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SEALCAST_LOG", "info")
        .envs(env)
        .current_dir(dir);
    let mut role =
        Spawned::start(name, command, &dir.join(format!("{name}.log")))?.redacting(secrets);
    let line = role.line(ready, Duration::from_secs(30)).await?;
    role.drain();
    Ok((role, line))
}

/// `url`'s body, retried until the deadline (a role may bind its metrics listener just
/// after it says where), as long as `role` runs.
async fn scrape(role: &mut Spawned, url: &str) -> Result<String> {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(status) = role.try_wait()? {
            bail!(
                "sealcast {} exited with {status}; its log:\n{}",
                role.name(),
                role.log()
            );
        }
        match client.get(url).timeout(Duration::from_secs(5)).send().await {
            Ok(r) if r.status().is_success() => return Ok(r.text().await?),
            other => {
                if tokio::time::Instant::now() >= deadline {
                    bail!("GET {url}: {other:?}; its log:\n{}", role.log());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_query_only_metrics_the_roles_export() {
    let referenced = referenced_metrics();
    assert!(
        !referenced.is_empty(),
        "the dashboards reference no sealcast metric"
    );
    let (init, broker) = tokio::task::block_in_place(|| {
        let project = init();
        let broker = broker(&project);
        (project, broker)
    });
    let dir = tempfile::tempdir().unwrap();
    let keys = init.dir().join("deploy/state/keys");
    let certs = init.dir().join("certs/generated");
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
    let broadcast = start_role(
        "broadcast",
        &broadcast_args,
        &broadcast_env,
        dir.path(),
        "metrics-b1 ",
        &secrets,
    );
    let ingest = start_role(
        "ingest",
        &ingest_args,
        &ingest_env,
        dir.path(),
        "metrics ",
        &secrets,
    );
    let lb = start_role("lb", &lb_args, &lb_env, dir.path(), "metrics ", &secrets);
    let (broadcast, ingest, lb) = tokio::join!(broadcast, ingest, lb);
    let (mut broadcast, broadcast_url) = broadcast.unwrap();
    let (mut ingest, ingest_metrics) = ingest.unwrap();
    let (mut lb, lb_metrics) = lb.unwrap();

    let mut exported: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    let pages = [
        (
            scrape(&mut broadcast, &format!("{broadcast_url}/metrics")).await,
            "broadcast",
        ),
        (scrape(&mut ingest, &ingest_metrics).await, "ingest"),
        (scrape(&mut lb, &lb_metrics).await, "lb"),
    ];
    let mut broadcast_page = String::new();
    for (page, role) in pages {
        let page = page.unwrap();
        if role == "broadcast" {
            broadcast_page.clone_from(&page);
        }
        assert!(!init.leaks(&page), "{role}'s /metrics shows a secret");
        let families = prometheus::exported_families(&page);
        assert!(
            families.keys().any(|k| k.starts_with("sealcast_")),
            "{role} exports no sealcast_* family:\n{page}"
        );
        exported.insert(role, families);
    }
    drop((broadcast, ingest, lb, broker));

    // prometheus-client leaves a `Family` out of /metrics until it has a label set, so
    // families that need traffic (per rung, per node, per reason) are missing from a role
    // that just started. For those, each role crate's list of its families stands in; it
    // must agree with every family the roles do declare.
    let registered = registered_families();
    let mut f = Findings::default();
    // The autoscaler's series is there on a node nobody watches (it has no stream at
    // all): an autoscaler that finds no metric for a pod never scales down.
    match crate::kubernetes_monitoring::adapter_series() {
        Ok(series) => {
            for name in series {
                f.check(
                    crate::kubernetes_monitoring::has_sample(&broadcast_page, &name),
                    || format!("the Prometheus adapter reads {name}, which a broadcast node without viewers does not export"),
                );
            }
        }
        Err(e) => f.fail(format!("{e:#}")),
    }
    for (role, families) in &exported {
        for (name, kind) in families.iter().filter(|(n, _)| n.starts_with("sealcast_")) {
            let found = registered.get(name.as_str());
            f.check(found == Some(&(kind.as_str(), *role)), || {
                format!("{role} declares {name} as a {kind}; the role crates list {found:?}")
            });
        }
    }
    let live = |name: &str| {
        exported
            .values()
            .any(|families| prometheus::is_exported(name, families))
    };
    let mut only_registered = Vec::new();
    for name in &referenced {
        if live(name) {
            continue;
        }
        // A family the roles do not declare yet, listed by its crate with a kind whose
        // series this name is.
        let listed = registered.iter().find(|(base, (kind, _))| {
            let declared_live = exported
                .values()
                .any(|families| families.contains_key(**base));
            !declared_live
                && prometheus::is_exported(name, &[(base.to_string(), kind.to_string())].into())
        });
        match listed {
            Some((base, (_, role))) => only_registered.push(format!("{name} ({base}, {role})")),
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

/// Every metric family the roles register, by name: its kind and its role (each role
/// crate's `FAMILIES`, and broadcast's `ARCHIVE_FAMILIES`).
pub(crate) fn registered_families() -> BTreeMap<&'static str, (&'static str, &'static str)> {
    [
        ("ingest", &ingest::metrics::FAMILIES[..]),
        ("broadcast", &broadcast::metrics::FAMILIES[..]),
        // The archive's spool and uploads (a registry of their own, beside the node's).
        ("broadcast", &broadcast::ARCHIVE_FAMILIES[..]),
        ("lb", &loadbalancer::metrics::FAMILIES[..]),
    ]
    .into_iter()
    .flat_map(|(role, families)| {
        families
            .iter()
            .map(move |(name, kind)| (*name, (*kind, role)))
    })
    .collect()
}

/// A panel of a Grafana dashboard (or a query variable, `kind` "variable").
#[derive(Debug, Clone)]
struct Panel {
    /// The dashboard's file name.
    file: String,
    title: String,
    /// `timeseries`, `stat`, `row`, ... or `variable`.
    kind: String,
    /// The query expressions of its targets.
    exprs: Vec<String>,
    /// The data source uids it (or its targets) names.
    datasources: Vec<String>,
}

/// Every panel of the Grafana dashboards in `deploy/grafana/dashboards/` (panels inside
/// rows included), and their query variables.
fn dashboard_panels() -> Result<Vec<Panel>> {
    let dir = testkit::repo_root().join("deploy/grafana/dashboards");
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

/// Every `sealcast_*` metric the Grafana dashboards query.
/// (A dashboard that cannot be read references nothing; the provisioning test reports
/// why.)
fn referenced_metrics() -> BTreeSet<String> {
    dashboard_panels()
        .unwrap_or_default()
        .iter()
        .flat_map(|p| &p.exprs)
        .flat_map(|expr| prometheus::metric_names(expr))
        .collect()
}
