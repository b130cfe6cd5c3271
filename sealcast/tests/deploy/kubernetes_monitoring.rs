//! `deploy/kubernetes/components/monitoring/` (issue 50 item 5): PodMonitors and a
//! PrometheusRule for the Prometheus Operator. The validator has no schema for the
//! operator's kinds (it skips them with a warning), so they are read here as data, from
//! the production overlay rendered with the component added as an operator's overlay
//! would:
//!
//! - every role whose pods carry the `prometheus.io/scrape` annotation is scraped by one
//!   PodMonitor, on the port and path the annotations name; nothing else is;
//! - every alert reads only metrics a role exports (each role crate's `FAMILIES`), with
//!   a [`Query`] reader of the PromQL used; every label value it matches on is a string
//!   the roles' source writes (a misspelt `reason` matches nothing and never fires);
//! - the alerts the issue asks for are there: an edge not ready, gate refusals, shed
//!   rungs, and the nearest to "spool full" the roles export;
//! - the component stays out of the overlays, which must apply without the operator;
//! - each check fails on the rendered manifests with one thing broken.
//!
//! [`adapter_series`] is for the dashboards' test, which scrapes a broadcast node that has
//! no viewer: the autoscaler's series must be there (issue 50 item 5).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use serde_yaml::Value;
use testkit::prometheus;

use crate::kubernetes::{
    assert_catches, documents, items, kind_of, kubectl, kubernetes_dir, labels, name_of, run,
    selects, validate, Mutation, Workload, KUBERNETES_VERSIONS, ROLES,
};
use crate::monitoring::registered_families;
use crate::{repo, Findings};

/// The component, under deploy/kubernetes/.
const COMPONENT: &str = "components/monitoring";

/// The overlay it is checked with, and that overlay's namespace.
const OVERLAY: (&str, &str) = ("overlays/production", "sealcast");

/// The crates whose source a matched label value must come from: the roles'.
const ROLE_SOURCES: [&str; 3] = ["broadcast/src", "ingest/src", "loadbalancer/src"];

/// Labels Prometheus or the operator sets, whose values no role writes.
const TARGET_LABELS: [&str; 6] = [
    "namespace",
    "pod",
    "job",
    "instance",
    "container",
    "endpoint",
];

/// What the issue asks the alerts to watch, each with a family an alert must read.
const REQUIRED: [(&str, &str); 6] = [
    (
        "an edge not ready (as the balancers count them)",
        loadbalancer::metrics::BACKENDS_ELIGIBLE,
    ),
    (
        "gate refusals of segments",
        broadcast::metrics::SEGMENTS_REJECTED,
    ),
    ("gate refusals of parts", broadcast::metrics::PARTS_REJECTED),
    ("shed rungs", ingest::metrics::RUNGS_SHED),
    (
        "spool full: an edge's archive spool dropped recorded segments",
        broadcast::SPOOL_DROPPED_BYTES,
    ),
    (
        "an ingest's full push queue",
        ingest::metrics::PARTS_DROPPED,
    ),
];

// --- PromQL, as much as the rules use -------------------------------------------------------

/// What a PromQL expression reads: the metric names of its selectors, and their label
/// matchers `(label, operator, value)`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Query {
    metrics: BTreeSet<String>,
    matchers: Vec<(String, String, String)>,
}

/// PromQL's aggregations: words before `(` or `by`/`without`, never metric names.
const AGGREGATIONS: [&str; 14] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
/// Binary operators, modifiers and numbers written as words.
const WORDS: [&str; 8] = [
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];
/// Modifiers followed by a list of label names in parentheses.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Reads `expr`: selectors (`name{label op "value", ...}`), function calls, aggregations
/// with their label lists, binary operators, ranges and subqueries, offsets, numbers,
/// durations and strings. A selector without a metric name (`{__name__=...}`) is an
/// error: this reader would not know what it reads.
fn read_query(expr: &str) -> Result<Query> {
    let chars: Vec<char> = expr.chars().collect();
    let mut query = Query::default();
    let mut i = 0;
    let skip_spaces = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if matches!(c, '"' | '\'' | '`') {
            string_at(&chars, &mut i)?;
        } else if c == '{' {
            i += 1;
            loop {
                skip_spaces(&mut i);
                match chars.get(i) {
                    Some('}') => {
                        i += 1;
                        break;
                    }
                    Some(',') => {
                        i += 1;
                        continue;
                    }
                    Some(_) => {}
                    None => bail!("{expr}: an unclosed {{"),
                }
                let label = word_at(&chars, &mut i);
                ensure!(!label.is_empty(), "{expr}: a matcher without a label");
                ensure!(
                    label != "__name__",
                    "{expr}: a selector by __name__, which this reader does not follow"
                );
                skip_spaces(&mut i);
                let op: String = chars[i..]
                    .iter()
                    .take_while(|c| matches!(c, '=' | '!' | '~'))
                    .collect();
                ensure!(
                    matches!(op.as_str(), "=" | "!=" | "=~" | "!~"),
                    "{expr}: matcher {label} has operator {op:?}"
                );
                i += op.len();
                skip_spaces(&mut i);
                let value = string_at(&chars, &mut i)?;
                query.matchers.push((label, op, value));
            }
        } else if c == '[' {
            let end = chars[i..]
                .iter()
                .position(|c| *c == ']')
                .with_context(|| format!("{expr}: an unclosed ["))?;
            i += end + 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '.' | '_'))
            {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || matches!(c, '_' | ':') {
            let word = word_at(&chars, &mut i);
            let mut next = i;
            skip_spaces(&mut next);
            let call = chars.get(next) == Some(&'(');
            if LABEL_LISTS.contains(&word.as_str()) {
                if call {
                    let end = chars[next..]
                        .iter()
                        .position(|c| *c == ')')
                        .with_context(|| format!("{expr}: an unclosed ( after {word}"))?;
                    i = next + end + 1;
                }
            } else if !call
                && !AGGREGATIONS.contains(&word.as_str())
                && !WORDS.contains(&word.as_str())
            {
                query.metrics.insert(word);
            }
        } else {
            i += 1;
        }
    }
    Ok(query)
}

/// The identifier at `i` (letters, digits, `_` and `:`), moving past it.
fn word_at(chars: &[char], i: &mut usize) -> String {
    let start = *i;
    while *i < chars.len() && (chars[*i].is_ascii_alphanumeric() || matches!(chars[*i], '_' | ':'))
    {
        *i += 1;
    }
    chars[start..*i].iter().collect()
}

/// The string literal at `i` (its escapes kept as written), moving past it.
fn string_at(chars: &[char], i: &mut usize) -> Result<String> {
    let quote = *chars.get(*i).context("a string expected, the end found")?;
    ensure!(
        matches!(quote, '"' | '\'' | '`'),
        "a string expected, {quote:?} found"
    );
    let mut out = String::new();
    let mut j = *i + 1;
    while j < chars.len() && chars[j] != quote {
        if chars[j] == '\\' && quote != '`' {
            out.push(chars[j]);
            j += 1;
        }
        if let Some(c) = chars.get(j) {
            out.push(*c);
        }
        j += 1;
    }
    ensure!(j < chars.len(), "an unclosed string");
    *i = j + 1;
    Ok(out)
}

// --- the component, rendered ----------------------------------------------------------------

/// The overlay with the component added, as an operator's own overlay would: its
/// namespace, the overlay, the component. Rendered from a temporary directory, which
/// kustomize reaches the repository's from by a relative path (it refuses absolute ones).
fn render_with_component() -> Result<(String, Vec<Value>)> {
    let dir = tempfile::tempdir()?;
    let up: String = dir.path().components().skip(1).map(|_| "../").collect();
    let relative = |sub: &str| -> Result<String> {
        let path = kubernetes_dir().join(sub);
        let inside = path
            .strip_prefix("/")
            .with_context(|| format!("{} is not absolute", path.display()))?;
        Ok(format!("{up}{}", inside.display()))
    };
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: {}\nresources:\n  - {}\ncomponents:\n  - {}\n",
            OVERLAY.1,
            relative(OVERLAY.0)?,
            relative(COMPONENT)?
        ),
    )?;
    let mut command = Command::new(kubectl()?);
    command.arg("kustomize").arg(dir.path());
    let text = run(
        command,
        &format!("kubectl kustomize {OVERLAY:?} + {COMPONENT}"),
    )?;
    let docs = documents(&text)?;
    Ok((text, docs))
}

/// An alerting rule of a PrometheusRule.
struct Alert<'a> {
    name: &'a str,
    rule: &'a Value,
}

fn alerts(docs: &[Value]) -> Vec<Alert<'_>> {
    docs.iter()
        .filter(|d| kind_of(d) == "PrometheusRule")
        .flat_map(|d| items(&d["spec"]["groups"]))
        .flat_map(|g| items(&g["rules"]))
        .filter_map(|rule| {
            Some(Alert {
                name: rule["alert"].as_str()?,
                rule,
            })
        })
        .collect()
}

/// Every string literal (`"..."`) in the roles' source: the label values they write.
fn role_literals() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for dir in ROLE_SOURCES {
        for file in crate::project::files_under(&repo().join(dir)) {
            if file.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for (n, piece) in text.split('"').enumerate() {
                if n % 2 == 1 {
                    out.insert(piece.to_owned());
                }
            }
        }
    }
    out
}

/// The rules: each alert reads only exported metrics, matches only label values the
/// roles write, and says how bad and what; the alerts are there.
fn check_rules(docs: &[Value], literals: &BTreeSet<String>) -> Findings {
    let mut f = Findings::default();
    let families: BTreeMap<String, String> = registered_families()
        .into_iter()
        .map(|(name, (kind, _))| (name.to_owned(), kind.to_owned()))
        .collect();
    let alerts = alerts(docs);
    f.check(!alerts.is_empty(), || {
        "no PrometheusRule has an alert".into()
    });
    let mut seen = BTreeSet::new();
    let mut read: BTreeSet<String> = BTreeSet::new();
    for Alert { name, rule } in &alerts {
        f.check(seen.insert(*name), || {
            format!("{name}: two alerts have that name")
        });
        let expr = rule["expr"].as_str().unwrap_or_default();
        let query = match read_query(expr) {
            Ok(q) => q,
            Err(e) => {
                f.fail(format!("{name}: {e:#}"));
                continue;
            }
        };
        f.check(!query.metrics.is_empty(), || {
            format!("{name}: its expression reads no metric: {expr:?}")
        });
        for metric in &query.metrics {
            f.check(prometheus::is_exported(metric, &families), || {
                format!("{name}: reads {metric}, which no role exports")
            });
        }
        read.extend(query.metrics);
        for (label, op, value) in &query.matchers {
            if TARGET_LABELS.contains(&label.as_str()) {
                continue;
            }
            let values: Vec<&str> = if op.contains('~') {
                value.split('|').collect()
            } else {
                vec![value.as_str()]
            };
            for v in values {
                f.check(
                    !v.is_empty()
                        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        && literals.contains(v),
                    || format!("{name}: matches {label}{op}{value:?}, and {v:?} is not a value the roles write"),
                );
            }
        }
        f.check(
            matches!(
                rule["labels"]["severity"].as_str(),
                Some("critical" | "warning")
            ),
            || format!("{name}: severity is not critical or warning"),
        );
        f.check(
            rule["annotations"]["summary"]
                .as_str()
                .is_some_and(|s| !s.trim().is_empty()),
            || format!("{name}: no summary"),
        );
    }
    for (what, family) in REQUIRED {
        let kinds = BTreeMap::from([(
            family.to_owned(),
            families.get(family).cloned().unwrap_or_default(),
        )]);
        f.check(
            read.iter().any(|m| prometheus::is_exported(m, &kinds)),
            || format!("no alert reads {family}: {what}"),
        );
    }
    f
}

/// The PodMonitors: one per role that serves metrics, where its annotations say.
fn check_pod_monitors(docs: &[Value]) -> Findings {
    let mut f = Findings::default();
    let monitors: Vec<&Value> = docs.iter().filter(|d| kind_of(d) == "PodMonitor").collect();
    let mut used = BTreeSet::new();
    for role_name in ROLES {
        let workload = match Workload::find(docs, role_name) {
            Ok(w) => w,
            Err(e) => {
                f.fail(format!("{e:#}"));
                continue;
            }
        };
        let pod_labels = workload.pod_labels();
        let namespace = workload.doc["metadata"]["namespace"].as_str();
        let mut selecting = Vec::new();
        for monitor in &monitors {
            match selects(&monitor["spec"]["selector"], &pod_labels) {
                Ok(true) if monitor["metadata"]["namespace"].as_str() == namespace => {
                    selecting.push(*monitor);
                    used.insert(name_of(monitor));
                }
                Ok(_) => {}
                Err(e) => f.fail(format!("PodMonitor {}: {e:#}", name_of(monitor))),
            }
        }
        let annotations = labels(&workload.doc["spec"]["template"]["metadata"]["annotations"]);
        let scraped = annotations.get("prometheus.io/scrape").map(String::as_str) == Some("true");
        if !scraped {
            f.check(selecting.is_empty(), || {
                format!("{role_name}: serves no metrics, and a PodMonitor scrapes it")
            });
            continue;
        }
        let [monitor] = selecting.as_slice() else {
            f.fail(format!(
                "{role_name}: {} PodMonitors in its namespace select its pods, not one",
                selecting.len()
            ));
            continue;
        };
        let want_port = annotations
            .get("prometheus.io/port")
            .and_then(|p| p.parse::<u16>().ok());
        let want_path = annotations
            .get("prometheus.io/path")
            .map_or("/metrics", String::as_str);
        let ports = workload.ports();
        let endpoints: Vec<&Value> = items(&monitor["spec"]["podMetricsEndpoints"]).collect();
        f.check(endpoints.len() == 1, || {
            format!("{role_name}: {} endpoints, not one", endpoints.len())
        });
        for endpoint in endpoints {
            let port = endpoint["port"]
                .as_str()
                .and_then(|p| ports.get(p))
                .copied();
            let path = endpoint["path"].as_str().unwrap_or("/metrics");
            f.check(port.is_some() && port == want_port && path == want_path, || {
                format!(
                    "{role_name}: PodMonitor {} scrapes port {:?} ({port:?}) at {path}; its pods serve metrics on {want_port:?} at {want_path}",
                    name_of(monitor),
                    endpoint["port"]
                )
            });
        }
    }
    for monitor in monitors {
        f.check(used.contains(name_of(monitor)), || {
            format!("PodMonitor {} selects no role's pods", name_of(monitor))
        });
    }
    f
}

/// The series the Prometheus adapter's rules read
/// (deploy/kubernetes/prometheus-adapter/config.yaml): what the autoscaler scales on.
pub(crate) fn adapter_series() -> Result<Vec<String>> {
    let path = kubernetes_dir().join("prometheus-adapter/config.yaml");
    let config: Value = serde_yaml::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )?;
    let series: Vec<String> = items(&config["rules"])
        .filter_map(|r| r["seriesQuery"].as_str())
        .map(|q| q.split('{').next().unwrap_or_default().trim().to_owned())
        .collect();
    ensure!(!series.is_empty(), "{} has no rule", path.display());
    Ok(series)
}

/// Whether an exposition has a sample of `series` (not only its `# TYPE`).
pub(crate) fn has_sample(exposition: &str, series: &str) -> bool {
    exposition.lines().any(|l| {
        l.strip_prefix(series)
            .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
    })
}

#[test]
fn kubernetes_monitoring_component_scrapes_every_role_and_alerts_on_what_they_export() {
    let (text, docs) = render_with_component().unwrap();
    let mut f = Findings::default();
    // The kinds the validator knows are validated; it skips the operator's.
    for version in KUBERNETES_VERSIONS {
        if let Err(e) = validate(&text, version) {
            f.fail(format!("{e:#}"));
        }
    }
    for doc in docs.iter().filter(|d| {
        d["apiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("monitoring.coreos.com/"))
    }) {
        f.check(
            doc["metadata"]["namespace"].as_str() == Some(OVERLAY.1),
            || {
                format!(
                    "{} {}: not in the overlay's namespace",
                    kind_of(doc),
                    name_of(doc)
                )
            },
        );
    }
    f.0.extend(check_pod_monitors(&docs).0);
    f.0.extend(check_rules(&docs, &role_literals()).0);
    // Optional: the overlays apply on a cluster without the operator's CRDs.
    for (dir, _) in crate::kubernetes::OVERLAYS {
        let (_, rendered) = crate::kubernetes::render(dir).unwrap();
        for doc in &rendered {
            f.check(
                !doc["apiVersion"]
                    .as_str()
                    .is_some_and(|v| v.starts_with("monitoring.coreos.com/")),
                || format!("{dir} renders {} {}: the overlays must apply without the Prometheus Operator", kind_of(doc), name_of(doc)),
            );
        }
    }
    f.assert_none("the monitoring component");
}

/// The rule named `alert`.
fn rule_mut<'a>(docs: &'a mut [Value], alert: &str) -> &'a mut Value {
    docs.iter_mut()
        .filter(|d| kind_of(d) == "PrometheusRule")
        .flat_map(|d| d["spec"]["groups"].as_sequence_mut().unwrap())
        .flat_map(|g| g["rules"].as_sequence_mut().unwrap())
        .find(|r| r["alert"].as_str() == Some(alert))
        .unwrap()
}

fn monitor_mut<'a>(docs: &'a mut [Value], name: &str) -> &'a mut Value {
    crate::kubernetes::doc_mut(docs, "PodMonitor", name)
}

const BREAKAGES: [Mutation; 8] = [
    (
        "an alert on kube-state-metrics",
        |docs| {
            rule_mut(docs, "SealcastNoEdgeReady")["expr"] =
                Value::String("kube_pod_status_ready{condition=\"false\"} > 0".into())
        },
        "SealcastNoEdgeReady: reads kube_pod_status_ready, which no role exports",
    ),
    (
        "a counter read without _total",
        |docs| {
            rule_mut(docs, "SealcastRungsShed")["expr"] =
                Value::String("increase(sealcast_ingest_rungs_shed[10m]) > 0".into())
        },
        "SealcastRungsShed: reads sealcast_ingest_rungs_shed, which no role exports",
    ),
    (
        "a misspelt reason",
        |docs| {
            let rule = rule_mut(docs, "SealcastGateHoldFull");
            let expr = rule["expr"]
                .as_str()
                .unwrap()
                .replace("overflow", "overflown");
            rule["expr"] = Value::String(expr);
        },
        "\"overflown\" is not a value the roles write",
    ),
    (
        "no alert on shed rungs",
        |docs| {
            rule_mut(docs, "SealcastRungsShed")["alert"] = Value::Null;
        },
        "no alert reads sealcast_ingest_rungs_shed: shed rungs",
    ),
    (
        "no alert on the archive spool",
        |docs| {
            rule_mut(docs, "SealcastArchiveSpoolFull")["alert"] = Value::Null;
        },
        "no alert reads sealcast_archive_spool_dropped_bytes: spool full",
    ),
    (
        "an alert without a severity",
        |docs| {
            rule_mut(docs, "SealcastEdgeNotReady")["labels"] = Value::Null;
        },
        "SealcastEdgeNotReady: severity",
    ),
    (
        "the balancers scraped on their redirecting port",
        |docs| {
            monitor_mut(docs, "sealcast-lb")["spec"]["podMetricsEndpoints"][0]["port"] =
                Value::String("http".into())
        },
        "lb: PodMonitor sealcast-lb scrapes port String(\"http\")",
    ),
    (
        "the edges not scraped",
        |docs| {
            monitor_mut(docs, "sealcast-broadcast")["spec"]["selector"]["matchLabels"]
                ["app.kubernetes.io/component"] = Value::String("edge".into())
        },
        "broadcast: 0 PodMonitors in its namespace select its pods",
    ),
];

#[test]
fn kubernetes_monitoring_checks_catch_drift() {
    let (_, docs) = render_with_component().unwrap();
    let literals = role_literals();
    assert_catches(&docs, &BREAKAGES, |docs| {
        let mut found = check_pod_monitors(docs).0;
        found.extend(check_rules(docs, &literals).0);
        found
    });
}

#[test]
fn promql_reader_finds_metrics_and_matchers_and_nothing_else() {
    let q = read_query(
        "sum by (namespace, pod, reason) (increase(sealcast_a_total{reason=~\"x|y\", pod!=\"p\"}[10m] offset 5m)) > 0",
    )
    .unwrap();
    assert_eq!(q.metrics, BTreeSet::from(["sealcast_a_total".to_owned()]));
    assert_eq!(
        q.matchers,
        [
            ("reason".to_owned(), "=~".to_owned(), "x|y".to_owned()),
            ("pod".to_owned(), "!=".to_owned(), "p".to_owned()),
        ]
    );
    let q = read_query(
        "count by (namespace) (count by (namespace, pod) (a)) > min by(namespace) (b) and on (pod) group_left(node) c == bool 1e3",
    )
    .unwrap();
    assert_eq!(
        q.metrics.iter().map(String::as_str).collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    let q = read_query(
        "label_replace(up, \"dst\", \"$1\", \"src\", \"(.*)\") or rate(d[5m:1m]) * .5 + sum without(x)(e)",
    )
    .unwrap();
    assert_eq!(
        q.metrics.iter().map(String::as_str).collect::<Vec<_>>(),
        ["d", "e", "up"]
    );
    assert!(read_query("{__name__=\"a\"}").is_err());
    assert!(read_query("a{b=\"c\"").is_err());
    assert!(read_query("a{b~\"c\"}").is_err());
}

/// `has_sample` tells a sample from a declaration alone, and one series from a longer one.
#[test]
fn a_sample_is_a_series_with_a_value() {
    let text =
        "# TYPE sealcast_x gauge\n# TYPE sealcast_y gauge\nsealcast_y{a=\"1\"} 2\nsealcast_zz 0\n";
    assert!(!has_sample(text, "sealcast_x"));
    assert!(has_sample(text, "sealcast_y"));
    assert!(!has_sample(text, "sealcast_z"));
    assert!(has_sample(text, "sealcast_zz"));
}
