//! The nodes' `/metrics` in `bench/publish-latency.sh`'s report: the histograms' changes
//! over the run (the Python's `hist`, `merge` and Prometheus' `histogram_quantile`) and
//! the counters that tell how it went, with the Python's arithmetic (a sum of no series was
//! its int 0) and its `json.dumps` of them.

use std::collections::HashMap;

use anyhow::Context;
use serde_json::{json, Value};

use crate::reports::latency::quantile;
use crate::reports::python::{float, python_float, Ordered};

/// One metrics snapshot of a node: each sample in the page's order, and where each is.
pub(super) struct Metrics {
    pub(super) samples: Vec<(String, f64)>,
    pub(super) at: HashMap<String, usize>,
}

impl Metrics {
    /// The samples `order` lists, their values from `exact` (a null, which the sampler
    /// writes for a value that was not finite, as NaN).
    pub(super) fn read(order: &Ordered, exact: &Value) -> Metrics {
        let mut m = Metrics {
            samples: Vec::new(),
            at: HashMap::new(),
        };
        for (key, _) in &order.0 {
            if m.at.contains_key(key) {
                continue;
            }
            let value = exact.get(key).and_then(Value::as_f64).unwrap_or(f64::NAN);
            m.at.insert(key.clone(), m.samples.len());
            m.samples.push((key.clone(), value));
        }
        m
    }

    /// `m.get(key, 0)`.
    pub(super) fn get(&self, key: &str) -> f64 {
        self.at.get(key).map_or(0.0, |&i| self.samples[i].1)
    }

    /// Python's `sum(v for k, v in m.items() if take(k))`: none (the int 0) when no key is
    /// taken.
    pub(super) fn sum(&self, take: impl Fn(&str) -> bool) -> Option<f64> {
        sum_of(
            self.samples
                .iter()
                .filter(|(k, _)| take(k))
                .map(|(_, v)| *v),
        )
    }
}

/// Python's `sum` of floats from its int 0: none when there are none.
pub(super) fn sum_of(xs: impl Iterator<Item = f64>) -> Option<f64> {
    xs.fold(None, |s, x| Some(s.unwrap_or(0.0) + x))
}

/// A number that Python kept as the int 0 (none) or a float.
pub(super) fn num(x: Option<f64>) -> Value {
    x.map_or(json!(0), |x| json!(x))
}

/// The value of label `name` in a sample's key, as `re.search(r'NAME="([^"]+)"', key)`
/// finds it (the first `NAME="` followed by at least one character and a quote).
pub(super) fn label<'a>(key: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("{name}=\"");
    key.match_indices(&open).find_map(|(i, _)| {
        let rest = &key[i + open.len()..];
        rest.find('"').filter(|&j| j > 0).map(|j| &rest[..j])
    })
}

/// [`label`], required: the Python failed without it.
pub(super) fn label_of<'a>(key: &'a str, name: &str) -> anyhow::Result<&'a str> {
    label(key, name).with_context(|| format!("no {name}=\"…\" label in {key}"))
}

/// A histogram's change between two snapshots: its sum and count (none: the int 0, no
/// series), and its buckets (upper bound, cumulative count) by bound.
pub(super) struct Hist {
    pub(super) sum: Option<f64>,
    pub(super) count: Option<f64>,
    pub(super) buckets: Vec<(f64, f64)>,
}

/// Adds `(bound, value)` pairs per bound, in order, from 0.
pub(super) fn by_bound(pairs: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (le, v) in pairs {
        match out.iter_mut().find(|(b, _)| *b == le) {
            Some(slot) => slot.1 += v,
            None => out.push((le, 0.0 + v)),
        }
    }
    out
}

/// Sorted as Python sorts `(bound, value)` tuples.
pub(super) fn sorted(mut buckets: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    buckets
}

/// Histogram `name`'s series whose key holds `labels`, between `m0` and `m1`.
pub(super) fn hist(m0: &Metrics, m1: &Metrics, name: &str, labels: &str) -> anyhow::Result<Hist> {
    let bucket = format!("{name}_bucket{{");
    let (sum, count) = (format!("{name}_sum"), format!("{name}_count"));
    let pick = |m: &Metrics| -> anyhow::Result<_> {
        let mut b = Vec::new();
        for (k, v) in &m.samples {
            if k.starts_with(&bucket) && k.contains(labels) {
                let le = label_of(k, "le")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    float(le)?
                };
                b.push((le, *v));
            }
        }
        let s = m.sum(|k| k.starts_with(&sum) && k.contains(labels));
        let c = m.sum(|k| k.starts_with(&count) && k.contains(labels));
        Ok((s, c, b))
    };
    let (s0, c0, b0) = pick(m0)?;
    let (s1, c1, b1) = pick(m1)?;
    let before = by_bound(b0.into_iter());
    let buckets = by_bound(b1.into_iter())
        .into_iter()
        .map(|(le, after)| {
            let was = before.iter().find(|(b, _)| *b == le).map_or(0.0, |b| b.1);
            (le, after - was)
        })
        .collect();
    let change = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (None, None) => None,
        (a, b) => Some(b.unwrap_or(0.0) - a.unwrap_or(0.0)),
    };
    Ok(Hist {
        sum: change(s0, s1),
        count: change(c0, c1),
        buckets: sorted(buckets),
    })
}

/// Python's `a + b` of numbers that are the int 0 (none) or floats.
pub(super) fn add(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}

/// Histograms added together (the nodes').
pub(super) fn merge(hs: &[Hist]) -> Hist {
    let pairs = hs.iter().flat_map(|h| h.buckets.iter().copied());
    Hist {
        sum: hs.iter().fold(None, |s, h| add(s, h.sum)),
        count: hs.iter().fold(None, |c, h| add(c, h.count)),
        buckets: sorted(by_bound(pairs)),
    }
}

/// A histogram as the raw results give it: count, sum, mean and estimated p50 and p99 in
/// ms (null without counts; `(q or 0) * 1000`, the int 0, for a quantile of none or 0),
/// and the buckets.
pub(super) fn hsum(h: &Hist) -> Value {
    let counted = h.count.filter(|c| *c != 0.0);
    let quantile_ms = |q: f64| {
        counted.map(|_| match quantile(&h.buckets, q) {
            Some(x) if x != 0.0 => json!(x * 1000.0),
            _ => json!(0),
        })
    };
    let buckets: Vec<Value> = h
        .buckets
        .iter()
        .map(|&(le, v)| match le == f64::INFINITY {
            true => json!(["+Inf", v]),
            false => json!([le, v]),
        })
        .collect();
    json!({
        "count": num(h.count),
        "sum_s": num(h.sum),
        "mean_ms": counted.map(|c| h.sum.unwrap_or(0.0) / c * 1000.0),
        "p50_ms_est": quantile_ms(0.5),
        "p99_ms_est": quantile_ms(0.99),
        "buckets": buckets,
    })
}

/// A string as Python's `json.dumps` writes it (ASCII only).
pub(super) fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out + "\""
}

/// Python's `json.dumps` of `{key: float}`, in the order given.
pub(super) fn dumps(members: &[(String, f64)]) -> String {
    let float = |x: f64| match x {
        x if x.is_nan() => "NaN".to_owned(),
        x if x.is_infinite() => if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned(),
        x => python_float(x),
    };
    let inner: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}: {}", json_str(k), float(*v)))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

/// Sets `key` in ordered `members` (a Python dict's assignment: a key already there keeps
/// its place).
pub(super) fn upsert<V>(members: &mut Vec<(String, V)>, key: &str, value: V) {
    match members.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => members.push((key.to_owned(), value)),
    }
}

/// The changes of the counters that tell how the run went, from the first node's
/// (the ingest's) and each node's metrics.
pub(super) struct Counters {
    /// Segments each node published.
    pub(super) published: Vec<(String, Option<f64>)>,
    /// Failed pushes, by node (or by series when it names none).
    pub(super) failures: Vec<(String, f64)>,
    /// Rungs the ingest shed.
    pub(super) shed: Option<f64>,
    /// Segments each node's gate rejected, by reason.
    pub(super) rejected: Vec<(String, Vec<(String, f64)>)>,
}

pub(super) fn counters(
    nodes: &[String],
    m0: &[Metrics],
    m1: &[Metrics],
) -> anyhow::Result<Counters> {
    let published = "sealcast_segments_published_total";
    let published = nodes
        .iter()
        .zip(m0.iter().zip(m1))
        .map(|(n, (a, b))| {
            let (a, b) = (
                a.sum(|k| k.starts_with(published)),
                b.sum(|k| k.starts_with(published)),
            );
            let change = (a.is_some() || b.is_some()).then(|| b.unwrap_or(0.0) - a.unwrap_or(0.0));
            (n.clone(), change)
        })
        .collect();
    let mut failures = Vec::new();
    for (k, v) in &m1[0].samples {
        let d = v - m0[0].get(k);
        if k.starts_with("sealcast_ingest_push_failures") && d != 0.0 {
            let key = if k.contains("node=") {
                label_of(k, "node")?
            } else {
                k
            };
            upsert(&mut failures, key, d);
        }
    }
    let shed = sum_of(
        m1[0]
            .samples
            .iter()
            .filter(|(k, _)| k.starts_with("sealcast_ingest_rungs_shed"))
            .map(|(k, v)| v - m0[0].get(k)),
    );
    let mut rejected = Vec::new();
    for (n, (a, b)) in nodes.iter().zip(m0.iter().zip(m1)) {
        let mut reasons = Vec::new();
        for (k, v) in &b.samples {
            let d = v - a.get(k);
            if k.starts_with("sealcast_segments_rejected_total") && d != 0.0 {
                upsert(&mut reasons, label_of(k, "reason")?, d);
            }
        }
        upsert(&mut rejected, n, reasons);
    }
    Ok(Counters {
        published,
        failures,
        shed,
        rejected,
    })
}
