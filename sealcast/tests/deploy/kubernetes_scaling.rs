//! What scales and what drains in `deploy/kubernetes/` (issue 50 item 4), read from the
//! rendered overlays:
//!
//! - Every workload a HorizontalPodAutoscaler scales has no `replicas` of its own (an
//!   apply would reset the autoscaler's count) and a PodDisruptionBudget that holds at
//!   any count: `maxUnavailable`, leaving at least one pod at the autoscaler's minimum.
//! - Production scales the load balancers, never below two.
//! - A load balancer that goes keeps serving for its `preStop` sleep (Kubernetes' own
//!   action: no binary in the image needed) while the cloud's load balancer stops sending
//!   to it, and its grace period covers that sleep and `sealcast lb`'s own stop, which
//!   waits for each listener in turn (`STOP_WAIT`, read from the load balancer's source).
//! - Each check fails on the rendered production overlay with one thing broken.

use anyhow::{Context, Result};
use serde_yaml::Value;

use crate::kubernetes::{
    assert_catches, container_mut, kind_of, labels, name_of, render, selects, workload_mut,
    Mutation, Workload, OVERLAYS,
};
use crate::{repo, Findings};

/// The shortest drain a balancer may have: the time AWS's Network Load Balancer takes to
/// stop sending to a node whose health check fails (2 checks 10 s apart), the quickest of
/// the clouds' defaults that is not Azure's 10 s.
const MIN_DRAIN_SECONDS: u64 = 20;

/// The load balancer's listeners, each one a service `sealcast lb` waits for in turn when
/// it stops (`Running::stop` in loadbalancer/src/server.rs).
const LB_LISTENERS: [&str; 3] = [
    "SEALCAST_LB_HTTPS_LISTEN",
    "SEALCAST_LB_HTTP_LISTEN",
    "SEALCAST_LB_ORIGIN_LISTEN",
];

/// How long `sealcast lb` waits for one listener's open requests when it stops: the
/// seconds of `const STOP_WAIT: Duration = Duration::from_secs(N);` in its source.
fn lb_stop_wait() -> Result<u64> {
    let path = repo().join("loadbalancer/src/server.rs");
    let source =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    source
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("const STOP_WAIT: Duration = Duration::from_secs(")?
                .strip_suffix(");")?
                .parse()
                .ok()
        })
        .with_context(|| {
            format!(
                "{} has no `const STOP_WAIT: Duration = Duration::from_secs(N);` any more: \
                 say here how long the load balancer's stop takes",
                path.display()
            )
        })
}

/// The autoscalers and the workloads they scale, and their disruption budgets.
fn check_autoscaled(docs: &[Value]) -> Findings {
    let mut f = Findings::default();
    for hpa in docs
        .iter()
        .filter(|d| kind_of(d) == "HorizontalPodAutoscaler")
    {
        let target = &hpa["spec"]["scaleTargetRef"];
        let name = target["name"].as_str().unwrap_or_default();
        let Some(workload) = docs
            .iter()
            .find(|d| Some(kind_of(d)) == target["kind"].as_str() && name_of(d) == name)
        else {
            f.fail(format!(
                "autoscaler {}: no {target:?} to scale",
                name_of(hpa)
            ));
            continue;
        };
        f.check(workload["spec"]["replicas"].is_null(), || {
            format!(
                "{name}: replicas {:?} beside its autoscaler (every apply resets the count)",
                workload["spec"]["replicas"]
            )
        });
        let min = hpa["spec"]["minReplicas"].as_u64().unwrap_or(1);
        let pod_labels = labels(&workload["spec"]["template"]["metadata"]["labels"]);
        let budgets: Vec<&Value> = docs
            .iter()
            .filter(|d| kind_of(d) == "PodDisruptionBudget")
            .filter(|d| selects(&d["spec"]["selector"], &pod_labels).unwrap_or(false))
            .collect();
        match budgets.as_slice() {
            [budget] => {
                let spec = &budget["spec"];
                let unavailable = spec["maxUnavailable"].as_u64();
                f.check(
                    spec["minAvailable"].is_null()
                        && unavailable.is_some_and(|u| u >= 1 && u < min),
                    || {
                        format!(
                            "{name}: its PodDisruptionBudget ({spec:?}) does not let one pod at a time go while one stays at the autoscaler's minimum of {min}: a fixed minAvailable blocks every eviction at that minimum or lets a drain take all but it"
                        )
                    },
                );
            }
            other => f.fail(format!(
                "{name}: {} PodDisruptionBudgets select its pods, not one",
                other.len()
            )),
        }
    }
    f
}

/// Production's balancers: autoscaled, two at least.
fn check_lb_autoscaled(docs: &[Value]) -> Findings {
    let mut f = Findings::default();
    let hpa = docs.iter().find(|d| {
        kind_of(d) == "HorizontalPodAutoscaler"
            && d["spec"]["scaleTargetRef"]["name"].as_str() == Some("lb")
    });
    match hpa {
        None => f.fail("no autoscaler scales the load balancers (lb)"),
        Some(hpa) => {
            let min = hpa["spec"]["minReplicas"].as_u64().unwrap_or(1);
            let max = hpa["spec"]["maxReplicas"].as_u64().unwrap_or(0);
            f.check(min >= 2 && max > min, || {
                format!(
                    "the load balancers scale from {min} to {max}: at least two, and room above"
                )
            });
        }
    }
    f
}

/// Every overlay's balancers drain before they stop, within their grace period.
fn check_lb_drain(docs: &[Value], stop_wait: u64) -> Findings {
    let mut f = Findings::default();
    let lb = match Workload::find(docs, "lb") {
        Ok(w) => w,
        Err(e) => {
            f.fail(format!("{e:#}"));
            return f;
        }
    };
    let pre_stop = &lb.container["lifecycle"]["preStop"];
    let sleep = pre_stop["sleep"]["seconds"].as_u64();
    f.check(sleep.is_some_and(|s| s >= MIN_DRAIN_SECONDS), || {
        format!(
            "lb: preStop is {pre_stop:?}, not a sleep of at least {MIN_DRAIN_SECONDS} s: it stops accepting while the cloud's load balancer still sends to it"
        )
    });
    let env = lb.environment();
    let listeners = LB_LISTENERS
        .iter()
        .filter(|v| env.contains_key(**v))
        .count() as u64;
    let needed = sleep.unwrap_or(0) + listeners * stop_wait;
    let grace = lb.pod["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap_or(30);
    f.check(grace > needed, || {
        format!(
            "lb: terminationGracePeriodSeconds {grace} does not cover its preStop sleep ({sleep:?} s) and its own stop ({listeners} listeners, up to {stop_wait} s each): {needed} s"
        )
    });
    f
}

#[test]
fn kubernetes_balancers_autoscale_and_drain_before_they_stop() {
    let stop_wait = lb_stop_wait().unwrap();
    let mut f = Findings::default();
    for (dir, _) in OVERLAYS {
        let (_, docs) = render(dir).unwrap();
        let mut found = check_autoscaled(&docs).0;
        found.extend(check_lb_drain(&docs, stop_wait).0);
        if dir == "overlays/production" {
            found.extend(check_lb_autoscaled(&docs).0);
        }
        for finding in found {
            f.fail(format!("{dir}: {finding}"));
        }
    }
    f.assert_none("autoscaling and draining in Kubernetes");
}

fn budget<'a>(docs: &'a mut [Value], name: &str) -> &'a mut Value {
    docs.iter_mut()
        .find(|d| kind_of(d) == "PodDisruptionBudget" && name_of(d) == name)
        .unwrap()
}

/// A fixed `minAvailable` of 2 in place of the budget `name`'s `maxUnavailable`.
fn fixed_budget(docs: &mut [Value], name: &str) {
    let spec = &mut budget(docs, name)["spec"];
    spec["minAvailable"] = Value::from(2);
    spec.as_mapping_mut().unwrap().remove("maxUnavailable");
}

/// One thing broken in production's rendered manifests, and what a finding then says.
const BREAKAGES: [Mutation; 7] = [
    (
        "the balancers' autoscaler gone",
        |docs| {
            for d in docs.iter_mut() {
                if kind_of(d) == "HorizontalPodAutoscaler" && name_of(d) == "lb" {
                    d["kind"] = Value::String("Removed".into());
                }
            }
        },
        "no autoscaler scales the load balancers",
    ),
    (
        "a fixed count beside the autoscaler",
        |docs| workload_mut(docs, "lb")["spec"]["replicas"] = Value::from(2),
        "lb: replicas Number(2) beside its autoscaler",
    ),
    (
        "the balancers' budget a fixed minAvailable",
        |docs| fixed_budget(docs, "lb"),
        "lb: its PodDisruptionBudget",
    ),
    (
        "the edges' budget a fixed minAvailable",
        |docs| fixed_budget(docs, "broadcast"),
        "broadcast: its PodDisruptionBudget",
    ),
    (
        "no preStop",
        |docs| {
            container_mut(docs, "lb")
                .as_mapping_mut()
                .unwrap()
                .remove("lifecycle");
        },
        "lb: preStop is Null",
    ),
    (
        "a preStop shorter than the clouds' health checks",
        |docs| {
            container_mut(docs, "lb")["lifecycle"]["preStop"]["sleep"]["seconds"] = Value::from(5)
        },
        "not a sleep of at least",
    ),
    (
        "the grace period of the base before the drain",
        |docs| {
            workload_mut(docs, "lb")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] =
                Value::from(30)
        },
        "lb: terminationGracePeriodSeconds 30 does not cover",
    ),
];

#[test]
fn kubernetes_scaling_checks_catch_drift() {
    let stop_wait = lb_stop_wait().unwrap();
    let (_, docs) = render("overlays/production").unwrap();
    assert_catches(&docs, &BREAKAGES, |docs| {
        let mut found = check_autoscaled(docs).0;
        found.extend(check_lb_autoscaled(docs).0);
        found.extend(check_lb_drain(docs, stop_wait).0);
        found
    });
}
