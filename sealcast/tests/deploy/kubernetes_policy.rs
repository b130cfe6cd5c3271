//! A policy scanner made for Kubernetes manifests, not ours: checkov (issue 50), pinned by
//! `scripts/setup.sh test` into a virtual environment of its own, over every rendered
//! overlay.
//!
//! - No finding is left: each check either passes or is skipped by a `checkov.io/skipN`
//!   annotation on the workload, whose reason checkov reports and which must say why
//!   (docs/deployment.md, "Policy scanner", lists them).
//! - The scan is real and the skips are what keeps it clean: the same manifests with the
//!   skip annotations taken off, or a container made to run as root, have findings.
//! - Pod Security "restricted": every pod meets it but for the ingests' WHIP media
//!   hostPorts (UDP and TCP 8189), the namespaces warn and audit against it, and
//!   `components/restricted` (no hostPort) meets and enforces it.
//! - Egress: no pod reaches the cloud's metadata endpoint (169.254.169.254).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value as Json;
use serde_yaml::Value;

use crate::kubernetes::{kind_of, render, OVERLAYS};

/// setup's virtual environment for checkov, under `$HOME`.
const CHECKOV_UNDER_HOME: &str = ".cache/sealcast/checkov";

/// A scan takes seconds; this only bounds a hang.
const SCAN_DEADLINE: Duration = Duration::from_secs(300);

/// The shortest reason a skip may give.
const SHORTEST_REASON: usize = 30;

fn checkov() -> Result<PathBuf> {
    let venv = std::env::var_os("SEALCAST_CHECKOV_TOOLS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(CHECKOV_UNDER_HOME)));
    let path = std::env::var_os("PATH").unwrap_or_default();
    let candidates = venv
        .map(|v| v.join("bin/checkov"))
        .into_iter()
        .chain(std::env::split_paths(&path).map(|d| d.join("checkov")));
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "no checkov (setup's ~/.cache/sealcast/checkov or PATH): the rendered overlays are \
         scanned with it and the check cannot run without it: `scripts/setup.sh test` \
         installs it (PyPI's checkov)"
    )
}

/// What checkov says of `docs`: (check id, resource) of every failed check, and (check id,
/// reason) of every skipped one.
struct Scan {
    failed: Vec<(String, String)>,
    skipped: Vec<(String, String)>,
}

fn scan(docs: &[Value]) -> Result<Scan> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("rendered.yaml");
    let mut text = String::new();
    for doc in docs {
        text.push_str("---\n");
        text.push_str(&serde_yaml::to_string(doc)?);
    }
    std::fs::write(&file, text)?;
    let mut command = Command::new(checkov()?);
    command
        .arg("--file")
        .arg(&file)
        .args(["--framework", "kubernetes", "--compact"])
        .args(["--output", "json", "--skip-download"])
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false");
    let out =
        testkit::process::run_with_deadline(command, SCAN_DEADLINE).context("running checkov")?;
    // Exit status 1 means findings; the JSON says which.
    let report: Json = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "checkov printed no JSON report ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let report = match report {
        Json::Array(mut reports) if reports.len() == 1 => reports.remove(0),
        other => other,
    };
    let results = &report["results"];
    ensure!(
        results.is_object(),
        "checkov's report has no results: {report}"
    );
    let pairs = |key: &str, second: &dyn Fn(&Json) -> String| -> Vec<(String, String)> {
        results[key]
            .as_array()
            .map(|checks| {
                checks
                    .iter()
                    .map(|c| (c["check_id"].as_str().unwrap_or("?").to_owned(), second(c)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let resource = |c: &Json| c["resource"].as_str().unwrap_or("?").to_owned();
    let reason = |c: &Json| {
        c["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let passed = results["passed_checks"].as_array().map_or(0, Vec::len);
    ensure!(
        passed > 0,
        "checkov passed no check at all: it scanned nothing"
    );
    Ok(Scan {
        failed: pairs("failed_checks", &resource),
        skipped: pairs("skipped_checks", &reason),
    })
}

fn is_workload(doc: &Value) -> bool {
    matches!(kind_of(doc), "Deployment" | "StatefulSet" | "DaemonSet")
}

#[test]
fn kubernetes_policy_scanner_leaves_no_finding_unexplained() {
    for (dir, _) in OVERLAYS {
        let (_, docs) = render(dir).unwrap();
        let scan = scan(&docs).unwrap();
        assert!(
            scan.failed.is_empty(),
            "{dir}: checkov findings that are neither mended nor explained: {:#?}",
            scan.failed
        );
        for (check, reason) in &scan.skipped {
            assert!(
                reason.len() >= SHORTEST_REASON,
                "{dir}: {check} is skipped without saying why ({reason:?})"
            );
        }
        assert!(!scan.skipped.is_empty(), "{dir}: the skips were not read");
    }
}

#[test]
fn kubernetes_policy_scanner_finds_what_the_skips_and_the_hardening_hold_back() {
    let (_, docs) = render("overlays/production").unwrap();

    let mut unexplained = docs.clone();
    for doc in unexplained.iter_mut().filter(|d| is_workload(d)) {
        if let Some(annotations) = doc["metadata"]["annotations"].as_mapping_mut() {
            annotations.retain(|k, _| !k.as_str().is_some_and(|k| k.starts_with("checkov.io/")));
        }
    }
    let found = scan(&unexplained).unwrap().failed;
    for check in ["CKV_K8S_11", "CKV_K8S_15", "CKV_K8S_43"] {
        assert!(
            found.iter().any(|(id, _)| id == check),
            "without the skips, no {check}: {found:#?}"
        );
    }

    let mut root = docs.clone();
    let postgres = root
        .iter_mut()
        .find(|d| kind_of(d) == "StatefulSet" && d["metadata"]["name"] == "postgres")
        .expect("a postgres StatefulSet");
    postgres["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = Value::from(0);
    postgres["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = Value::from(false);
    let found = scan(&root).unwrap().failed;
    assert!(
        found
            .iter()
            .any(|(id, resource)| id == "CKV_K8S_23" && resource.contains("postgres")),
        "a root postgres is not found: {found:#?}"
    );
}

/// Where a pod breaks Pod Security "restricted" (the fields the standard names that these
/// manifests could set): host namespaces and ports, root, privilege escalation,
/// capabilities, seccomp, volume types, sysctls.
fn restricted_findings(docs: &[Value]) -> Vec<String> {
    let mut found = Vec::new();
    for doc in docs.iter().filter(|d| is_workload(d)) {
        let name = doc["metadata"]["name"].as_str().unwrap_or("?");
        let pod = &doc["spec"]["template"]["spec"];
        for key in ["hostNetwork", "hostPID", "hostIPC"] {
            if pod[key].as_bool() == Some(true) {
                found.push(format!("{name}: {key}"));
            }
        }
        for volume in crate::kubernetes::items(&pod["volumes"]) {
            let allowed = [
                "configMap",
                "csi",
                "downwardAPI",
                "emptyDir",
                "ephemeral",
                "persistentVolumeClaim",
                "projected",
                "secret",
            ];
            let kinds: Vec<&str> = volume
                .as_mapping()
                .into_iter()
                .flatten()
                .filter_map(|(k, _)| k.as_str())
                .filter(|k| *k != "name")
                .collect();
            if kinds.iter().any(|k| !allowed.contains(k)) {
                found.push(format!("{name}: volume {kinds:?}"));
            }
        }
        for sysctl in crate::kubernetes::items(&pod["securityContext"]["sysctls"]) {
            let safe = [
                "kernel.shm_rmid_forced",
                "net.ipv4.ip_local_port_range",
                "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range",
                "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time",
                "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes",
            ];
            let sysctl = sysctl["name"].as_str().unwrap_or("?");
            if !safe.contains(&sysctl) {
                found.push(format!("{name}: sysctl {sysctl}"));
            }
        }
        let pod_non_root = pod["securityContext"]["runAsNonRoot"].as_bool() == Some(true);
        let pod_seccomp = pod["securityContext"]["seccompProfile"]["type"].as_str();
        let containers = crate::kubernetes::items(&pod["containers"])
            .chain(crate::kubernetes::items(&pod["initContainers"]));
        for container in containers {
            let c = container["name"].as_str().unwrap_or("?");
            let sc = &container["securityContext"];
            let non_root = sc["runAsNonRoot"].as_bool().unwrap_or(pod_non_root);
            let user = sc["runAsUser"]
                .as_i64()
                .or(pod["securityContext"]["runAsUser"].as_i64());
            if !non_root || user == Some(0) {
                found.push(format!("{name}/{c}: may run as root"));
            }
            if sc["allowPrivilegeEscalation"].as_bool() != Some(false) {
                found.push(format!("{name}/{c}: privilege escalation not refused"));
            }
            if sc["privileged"].as_bool() == Some(true) {
                found.push(format!("{name}/{c}: privileged"));
            }
            let drops_all = crate::kubernetes::items(&sc["capabilities"]["drop"])
                .any(|d| d.as_str() == Some("ALL"));
            if !drops_all {
                found.push(format!("{name}/{c}: does not drop ALL capabilities"));
            }
            for add in crate::kubernetes::items(&sc["capabilities"]["add"]) {
                if add.as_str() != Some("NET_BIND_SERVICE") {
                    found.push(format!("{name}/{c}: adds {add:?}"));
                }
            }
            let seccomp = sc["seccompProfile"]["type"].as_str().or(pod_seccomp);
            if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
                found.push(format!("{name}/{c}: seccomp {seccomp:?}"));
            }
            for port in crate::kubernetes::items(&container["ports"]) {
                if port["hostPort"].as_i64().is_some_and(|p| p != 0) {
                    let host = port["hostPort"].as_i64().unwrap_or_default();
                    let protocol = port["protocol"].as_str().unwrap_or("TCP");
                    found.push(format!("{name}/{c}: hostPort {host}/{protocol}"));
                }
            }
        }
    }
    found
}

/// `overlay` with `components/{component}`, rendered from a kustomization of the test's
/// own.
pub(crate) fn render_with(overlay: &str, component: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    // kustomize takes only relative paths: up from the temporary directory to `/`, then
    // down to the manifests.
    let up = "../".repeat(dir.path().components().count() - 1);
    let base = crate::kubernetes::kubernetes_dir();
    let base = format!("{up}{}", base.strip_prefix("/").unwrap().display());
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: sealcast\nresources:\n  - {base}/{overlay}\ncomponents:\n  - {base}/components/{component}\n"
        ),
    )
    .unwrap();
    let mut command = Command::new(crate::kubernetes::kubectl().unwrap());
    command.arg("kustomize").arg(dir.path());
    let text = crate::kubernetes::run(command, "kubectl kustomize (with a component)").unwrap();
    crate::kubernetes::documents(&text).unwrap()
}

fn namespace_label(docs: &[Value], mode: &str) -> Option<String> {
    docs.iter()
        .find(|d| kind_of(d) == "Namespace")
        .and_then(|ns| {
            ns["metadata"]["labels"][format!("pod-security.kubernetes.io/{mode}").as_str()]
                .as_str()
                .map(str::to_owned)
        })
}

#[test]
fn kubernetes_pods_meet_pod_security_restricted_but_the_ingests_whip_port() {
    for (dir, _) in OVERLAYS {
        let (_, docs) = render(dir).unwrap();
        assert_eq!(
            restricted_findings(&docs),
            vec![
                "ingest/ingest: hostPort 8189/UDP".to_owned(),
                "ingest/ingest: hostPort 8189/TCP".to_owned()
            ],
            "{dir}: only the WHIP media port (UDP, and TCP for ICE-TCP) may fall outside \"restricted\""
        );
        assert_eq!(
            namespace_label(&docs, "warn").as_deref(),
            Some("restricted")
        );
        assert_eq!(
            namespace_label(&docs, "audit").as_deref(),
            Some("restricted")
        );
    }
    let restricted = render_with("overlays/production", "restricted");
    assert_eq!(restricted_findings(&restricted), Vec::<String>::new());
    assert_eq!(
        namespace_label(&restricted, "enforce").as_deref(),
        Some("restricted"),
        "components/restricted enforces it"
    );
    // The checker finds what it looks for.
    let mut broken = restricted.clone();
    let lb = broken
        .iter_mut()
        .find(|d| kind_of(d) == "Deployment" && d["metadata"]["name"] == "lb")
        .expect("an lb Deployment");
    lb["spec"]["template"]["spec"]["containers"][0]["securityContext"]
        ["allowPrivilegeEscalation"] = Value::from(true);
    lb["spec"]["template"]["spec"]["hostNetwork"] = Value::from(true);
    let found = restricted_findings(&broken);
    assert!(
        found.iter().any(|f| f.contains("privilege escalation"))
            && found.iter().any(|f| f.contains("hostNetwork")),
        "{found:?}"
    );
}

#[test]
fn kubernetes_whip_services_give_each_ingest_pod_its_own_udp_address() {
    let docs = render_with("overlays/production", "whip-services");
    let ingest = docs
        .iter()
        .find(|d| kind_of(d) == "StatefulSet" && d["metadata"]["name"] == "ingest")
        .expect("an ingest StatefulSet");
    let replicas = ingest["spec"]["replicas"].as_u64().expect("a count");
    let found = restricted_findings(&docs);
    assert!(
        !found.iter().any(|f| f.contains("hostPort")),
        "the hostPort is still there: {found:?}"
    );
    for n in 0..replicas {
        let pod = format!("ingest-{n}");
        let service = docs.iter().find(|d| {
            kind_of(d) == "Service"
                && d["spec"]["selector"]["statefulset.kubernetes.io/pod-name"].as_str()
                    == Some(pod.as_str())
        });
        let Some(service) = service else {
            panic!("no Service selects {pod}");
        };
        assert_eq!(service["spec"]["type"].as_str(), Some("LoadBalancer"));
        let port = &service["spec"]["ports"][0];
        assert_eq!(port["protocol"].as_str(), Some("UDP"), "{pod}");
        assert_eq!(port["targetPort"].as_str(), Some("webrtc"), "{pod}");
    }
    // The pods read their address from the ConfigMap the component's comment names.
    let script = ingest["spec"]["template"]["spec"]["containers"][0]["command"][2]
        .as_str()
        .unwrap_or_default();
    assert!(
        script.contains("/etc/sealcast/whip-advertise/$SEALCAST_NODE_ID"),
        "{script}"
    );
    let volumes = ingest["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .expect("volumes");
    assert!(volumes
        .iter()
        .any(|v| v["configMap"]["name"].as_str() == Some("sealcast-whip-advertise")));
}

/// Where a workload's pods may reach the cloud's metadata endpoint: no Egress policy
/// selects them, or one lets them reach 169.254.169.254 (an `ipBlock` that holds it and
/// does not except it, or a rule with no peers).
fn metadata_findings(docs: &[Value]) -> Vec<String> {
    let policies: Vec<&Value> = docs
        .iter()
        .filter(|d| kind_of(d) == "NetworkPolicy")
        .filter(|p| {
            crate::kubernetes::items(&p["spec"]["policyTypes"])
                .any(|t| t.as_str() == Some("Egress"))
        })
        .collect();
    let mut found = Vec::new();
    for doc in docs.iter().filter(|d| is_workload(d)) {
        let name = doc["metadata"]["name"].as_str().unwrap_or("?");
        let pod = crate::kubernetes::labels(&doc["spec"]["template"]["metadata"]["labels"]);
        let selecting: Vec<&&Value> = policies
            .iter()
            .filter(|p| crate::kubernetes::selects(&p["spec"]["podSelector"], &pod).unwrap())
            .collect();
        if selecting.is_empty() {
            found.push(format!(
                "{name}: no Egress policy: it reaches the metadata endpoint"
            ));
        }
        for policy in selecting {
            for rule in crate::kubernetes::items(&policy["spec"]["egress"]) {
                let peers: Vec<&Value> = crate::kubernetes::items(&rule["to"]).collect();
                let open = peers.is_empty()
                    || peers.iter().any(|peer| {
                        let cidr = peer["ipBlock"]["cidr"].as_str().unwrap_or_default();
                        let holds = cidr == "0.0.0.0/0" || cidr.starts_with("169.254.");
                        let excepted = crate::kubernetes::items(&peer["ipBlock"]["except"])
                            .any(|e| e.as_str() == Some("169.254.169.254/32"));
                        holds && !excepted
                    });
                if open {
                    found.push(format!(
                        "{name}: {} lets it reach the metadata endpoint",
                        policy["metadata"]["name"].as_str().unwrap_or("?")
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn kubernetes_no_pod_reaches_the_cloud_metadata_endpoint() {
    for (dir, _) in OVERLAYS {
        let (_, docs) = render(dir).unwrap();
        assert_eq!(metadata_findings(&docs), Vec::<String>::new(), "{dir}");
    }
    let (_, docs) = render("overlays/production").unwrap();
    let mut open = docs.clone();
    for policy in open.iter_mut().filter(|d| kind_of(d) == "NetworkPolicy") {
        if let Some(rules) = policy["spec"]["egress"].as_sequence_mut() {
            for rule in rules {
                if let Some(peers) = rule["to"].as_sequence_mut() {
                    for peer in peers {
                        if let Some(block) = peer["ipBlock"].as_mapping_mut() {
                            block.remove("except");
                        }
                    }
                }
            }
        }
    }
    let found = metadata_findings(&open);
    assert!(
        found.iter().any(|f| f.starts_with("broadcast:")),
        "the check does not see an open metadata endpoint: {found:?}"
    );
}
