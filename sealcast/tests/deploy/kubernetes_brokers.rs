//! The two MQTT brokers of `deploy/kubernetes/` (issue 50 item 3; docs/deployment.md,
//! "Two brokers"), read from the rendered overlays:
//!
//! - the broker StatefulSet runs two pods, and each pod has a Service of its own (the names
//!   compose gives its two broker services);
//! - every broker URL any workload is given names every one of those Services, so every
//!   role is connected to both brokers;
//! - the pods keep off each other's node (production: required) and a
//!   PodDisruptionBudget lets a drain take one at a time;
//! - each check fails on the rendered production overlay with one thing broken.

use std::collections::BTreeSet;

use serde_yaml::Value;

use crate::kubernetes::{
    assert_catches, items, kind_of, labels, name_of, render, Mutation, OVERLAYS,
};
use crate::Findings;

/// How many brokers, and the Services clients name them by (compose's service names).
const BROKERS: [&str; 2] = ["mosquitto", "mosquitto2"];

fn is_broker(doc: &Value) -> bool {
    labels(&doc["metadata"]["labels"])
        .get("app.kubernetes.io/component")
        .map(String::as_str)
        == Some("mosquitto")
}

/// Every string below `value` (a container's env, command and args alike).
fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Sequence(seq) => seq.iter().for_each(|v| strings(v, out)),
        Value::Mapping(map) => map.values().for_each(|v| strings(v, out)),
        Value::Tagged(tagged) => strings(&tagged.value, out),
        _ => {}
    }
}

/// The host names of each `mqtt://...@h1:p,h2:p` in `text`.
fn broker_hosts(text: &str) -> Vec<BTreeSet<String>> {
    text.split("mqtt://")
        .skip(1)
        .map(|rest| {
            let end = rest
                .find(|c: char| c == '"' || c == '\'' || c.is_whitespace())
                .unwrap_or(rest.len());
            let url = &rest[..end];
            let hosts = url.rsplit_once('@').map_or(url, |(_, h)| h);
            hosts
                .split(',')
                .map(|h| h.split(':').next().unwrap_or_default().to_owned())
                .collect()
        })
        .collect()
}

fn check_brokers(docs: &[Value], production: bool) -> Vec<String> {
    let mut f = Findings::default();
    let Some(set) = docs
        .iter()
        .find(|d| kind_of(d) == "StatefulSet" && name_of(d) == "mosquitto")
    else {
        return vec!["no StatefulSet mosquitto".into()];
    };
    let replicas = set["spec"]["replicas"].as_u64();
    f.check(replicas == Some(BROKERS.len() as u64), || {
        format!(
            "the broker StatefulSet runs {replicas:?} replicas, not {}",
            BROKERS.len()
        )
    });

    // A Service per pod, named as compose names the brokers.
    let wanted: BTreeSet<(String, String)> = BROKERS
        .iter()
        .enumerate()
        .map(|(i, name)| ((*name).to_owned(), format!("mosquitto-{i}")))
        .collect();
    let services: BTreeSet<(String, String)> = docs
        .iter()
        .filter(|d| kind_of(d) == "Service" && is_broker(d))
        .map(|d| {
            let pod = d["spec"]["selector"]["statefulset.kubernetes.io/pod-name"]
                .as_str()
                .unwrap_or("(every broker pod)");
            (name_of(d).to_owned(), pod.to_owned())
        })
        .collect();
    f.check(services == wanted, || {
        format!("the broker Services (name, pod) are {services:?}, not {wanted:?}")
    });

    // Every role is given every broker.
    let every: BTreeSet<String> = BROKERS.iter().map(|b| (*b).to_owned()).collect();
    let mut urls = 0;
    for doc in docs {
        let pod = &doc["spec"]["template"]["spec"];
        for container in items(&pod["containers"]).chain(items(&pod["initContainers"])) {
            let mut texts = Vec::new();
            strings(container, &mut texts);
            for hosts in texts.iter().flat_map(|t| broker_hosts(t)) {
                urls += 1;
                f.check(hosts == every, || {
                    format!(
                        "{}/{}: a broker URL names {hosts:?}, not every broker {every:?}",
                        name_of(doc),
                        container["name"].as_str().unwrap_or_default()
                    )
                });
            }
        }
    }
    f.check(urls >= 3, || {
        format!("only {urls} broker URLs (ingest, broadcast, lb)")
    });

    // Apart, and drained one at a time.
    let anti = &set["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"];
    let terms: Vec<&Value> = items(&anti["requiredDuringSchedulingIgnoredDuringExecution"])
        .chain(
            items(&anti["preferredDuringSchedulingIgnoredDuringExecution"])
                .map(|t| &t["podAffinityTerm"]),
        )
        .collect();
    let apart = |terms: &[&Value]| {
        terms.iter().any(|t| {
            t["topologyKey"].as_str() == Some("kubernetes.io/hostname")
                && t["labelSelector"]["matchLabels"]["app.kubernetes.io/component"].as_str()
                    == Some("mosquitto")
        })
    };
    f.check(apart(&terms), || "the brokers may share a node".into());
    if production {
        let required: Vec<&Value> =
            items(&anti["requiredDuringSchedulingIgnoredDuringExecution"]).collect();
        f.check(apart(&required), || {
            "production does not require the brokers on two nodes".into()
        });
    }
    let budget = docs.iter().find(|d| {
        kind_of(d) == "PodDisruptionBudget"
            && d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"].as_str()
                == Some("mosquitto")
    });
    let one_at_a_time = budget.is_some_and(|b| {
        b["spec"]["maxUnavailable"].as_u64() == Some(1)
            || b["spec"]["minAvailable"].as_u64() == Some(BROKERS.len() as u64 - 1)
    });
    f.check(one_at_a_time, || {
        "no PodDisruptionBudget keeps one broker up".into()
    });
    f.0
}

#[test]
fn kubernetes_runs_two_brokers_and_gives_every_role_both() {
    let mut f = Findings::default();
    for (dir, _) in OVERLAYS {
        let (_, docs) = render(dir).unwrap();
        for finding in check_brokers(&docs, dir.ends_with("production")) {
            f.fail(format!("{dir}: {finding}"));
        }
    }
    f.assert_none("the brokers of the Kubernetes manifests");
}

fn set_broker_url(docs: &mut [Value], role: &str, url: &str) {
    let container = crate::kubernetes::container_mut(docs, role);
    for var in container["env"].as_sequence_mut().unwrap() {
        if var["name"].as_str() == Some("SEALCAST_MQTT_URL") {
            var["value"] = Value::String(url.into());
        }
    }
}

const MUTATIONS: [Mutation; 5] = [
    (
        "one broker",
        |docs| crate::kubernetes::workload_mut(docs, "mosquitto")["spec"]["replicas"] = 1.into(),
        "replicas",
    ),
    (
        "no Service for the second broker",
        |docs| {
            for d in docs.iter_mut() {
                if kind_of(d) == "Service" && name_of(d) == "mosquitto2" {
                    d["spec"]["selector"]
                        .as_mapping_mut()
                        .unwrap()
                        .remove("statefulset.kubernetes.io/pod-name");
                }
            }
        },
        "the broker Services",
    ),
    (
        "the balancers on one broker",
        |docs| set_broker_url(docs, "lb", "mqtt://lb:$(MQTT_PASSWORD)@mosquitto:1884"),
        "not every broker",
    ),
    (
        "brokers that may share a node",
        |docs| {
            crate::kubernetes::workload_mut(docs, "mosquitto")["spec"]["template"]["spec"]
                .as_mapping_mut()
                .unwrap()
                .remove("affinity");
        },
        "may share a node",
    ),
    (
        "no disruption budget",
        |docs| {
            for d in docs.iter_mut() {
                if kind_of(d) == "PodDisruptionBudget" && name_of(d) == "mosquitto" {
                    d["spec"]["maxUnavailable"] = 2.into();
                }
            }
        },
        "PodDisruptionBudget",
    ),
];

#[test]
fn kubernetes_broker_checks_catch_one_broker() {
    let (_, docs) = render("overlays/production").unwrap();
    assert_catches(&docs, &MUTATIONS, |docs| check_brokers(docs, true));
}
