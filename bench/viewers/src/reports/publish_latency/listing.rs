//! The listings in `bench/publish-latency.sh`'s report: per rendition, when each
//! sequence number was first listed on each node, made into the skew across nodes and the
//! jitter against the publisher's real-time clock, with the Python's statistics.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Context;
use serde_json::{json, Map, Value};

use crate::reports::python::{mean, truthy};

/// `pct`: the `p`th percentile of sorted `xs`, linear between the two nearest.
pub(super) fn pct(xs: &[f64], p: f64) -> f64 {
    let k = (xs.len() - 1) as f64 * p / 100.0;
    let lo = k as usize;
    let hi = (lo + 1).min(xs.len() - 1);
    xs[lo] + (xs[hi] - xs[lo]) * (k - lo as f64)
}

/// `summary`: n, p50, p99, max and mean of `xs` in ms; null for none.
pub(super) fn summary(xs: &[f64]) -> Value {
    let xs: Vec<f64> = xs.iter().map(|x| x * 1000.0).collect();
    let Some(&first) = xs.first() else {
        return Value::Null;
    };
    let max = xs.iter().fold(first, |m, &x| if x > m { x } else { m });
    let mut sorted = xs.clone();
    sorted.sort_by(f64::total_cmp);
    json!({
        "n": xs.len(),
        "p50": pct(&sorted, 50.0),
        "p99": pct(&sorted, 99.0),
        "max": max,
        "mean": mean(&xs),
    })
}

/// One sequence number's first listing on one node.
pub(super) struct Listing {
    pub(super) wall: f64,
    pub(super) duration: Value,
    pub(super) gap: bool,
}

/// A rendition's figures: the raw results' entry, and what the section needs besides.
pub(super) struct Rendition {
    pub(super) entry: Value,
    /// Each sequence number's first listing on any node.
    pub(super) first_any: BTreeMap<i64, f64>,
}

/// `statistics.median`.
pub(super) fn median(xs: &mut [f64]) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2]),
        _ => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
    }
}

/// The figures of one rendition, listed on `by_node` (node → sequence number → listing).
pub(super) fn rendition(
    nodes: &[String],
    by_node: &HashMap<String, BTreeMap<i64, Listing>>,
) -> anyhow::Result<Rendition> {
    let on = |n: &String, s: i64| by_node.get(n).and_then(|d| d.get(&s));
    let seqs: Vec<i64> = by_node
        .values()
        .flat_map(|d| d.keys().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (mut skew, mut first_to_each, mut gaps, mut missing) = (vec![], vec![], vec![], vec![]);
    let mut durations: BTreeMap<i64, &Value> = BTreeMap::new();
    let mut first_any = BTreeMap::new();
    for &s in &seqs {
        let ts: Vec<f64> = nodes
            .iter()
            .filter_map(|n| on(n, s))
            .map(|l| l.wall)
            .collect();
        for n in nodes {
            if let Some(l) = on(n, s) {
                durations.insert(s, &l.duration);
                if l.gap {
                    gaps.push(json!([n, s]));
                }
            }
        }
        let low = ts.iter().copied().reduce(|m, t| if t < m { t } else { m });
        let low = low.with_context(|| format!("sequence number {s} on no node the run names"))?;
        first_any.insert(s, low);
        if ts.len() < nodes.len() {
            missing.push(s);
            continue;
        }
        let high = ts
            .iter()
            .copied()
            .fold(low, |m, t| if t > m { t } else { m });
        skew.push(high - low);
        first_to_each.extend(ts.iter().filter(|&&t| t != low).map(|t| t - low));
    }
    // Segments are cut on a real-time clock: seq s closes at T0 + the sum of the durations
    // up to s. T0 is unknown, so this is the latency to the first listing relative to the
    // fastest segment of the run (its jitter), not an absolute latency.
    let med = if durations.is_empty() {
        2.0
    } else {
        let mut known: Vec<f64> = durations
            .values()
            .filter(|d| truthy(d))
            .filter_map(|d| d.as_f64())
            .collect();
        median(&mut known).context("no segment has a duration to take the median of")?
    };
    let mut end = BTreeMap::new();
    if let (Some(&lo), Some(&hi)) = (seqs.first(), seqs.last()) {
        let mut t = 0.0;
        for s in lo..=hi {
            t += durations
                .get(&s)
                .filter(|d| truthy(d))
                .and_then(|d| d.as_f64())
                .unwrap_or(med);
            end.insert(s, t);
        }
    }
    // The last segment is cut by the unpublish and flushed from the encoder at once, so it
    // skips the encoder's lookahead delay: it is left out of the jitter and shown apart.
    let body = if seqs.len() > 2 {
        &seqs[..seqs.len() - 1]
    } else {
        &seqs[..]
    };
    let rel: BTreeMap<i64, f64> = seqs.iter().map(|s| (*s, first_any[s] - end[s])).collect();
    let base = body
        .iter()
        .map(|s| rel[s])
        .reduce(|m, r| if r < m { r } else { m });
    let base = base.unwrap_or(0.0);
    let jitter: Vec<f64> = body.iter().map(|s| rel[s] - base).collect();
    let last = seqs.last().filter(|_| seqs.len() > 2);
    let per_segment: Map<String, Value> = seqs
        .iter()
        .map(|&s| {
            let after: Map<String, Value> = nodes
                .iter()
                .filter_map(|n| Some((n.clone(), json!((on(n, s)?.wall - first_any[&s]) * 1000.0))))
                .collect();
            let entry = json!({
                "first_listed_unix": first_any[&s],
                "duration": durations.get(&s).copied().cloned(),
                "rel_to_realtime_clock_ms": (rel[&s] - base) * 1000.0,
                "per_node_ms_after_first": after,
            });
            (s.to_string(), entry)
        })
        .collect();
    let entry = json!({
        "segments": seqs.len(),
        "first_seq": seqs.first(),
        "last_seq": seqs.last(),
        "not_on_every_node": missing,
        "gaps": gaps,
        "skew_ms": summary(&skew),
        "first_to_other_nodes_ms": summary(&first_to_each),
        "listing_jitter_vs_realtime_clock_ms": summary(&jitter),
        "last_segment_vs_fastest_other_ms": last.map(|s| (rel[s] - base) * 1000.0),
        "per_segment": per_segment,
    });
    Ok(Rendition { entry, first_any })
}
