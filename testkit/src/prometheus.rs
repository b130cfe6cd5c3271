//! Reading a Prometheus text exposition (what `/metrics` serves).

use std::collections::{BTreeMap, BTreeSet};

/// Sum of every sample of `name` whose labels contain all of `labels` (`key="value"`).
pub fn sample_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|x| rest.contains(x)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// The metric families an exposition declares (`# TYPE name kind`), with their kind.
/// prometheus-client declares every registered family that has samples (a `Family` with
/// no label set yet has none).
pub fn exported_families(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect()
}

/// Asserts that `exposition` declares exactly `families` (name and kind, as a role crate's
/// `metrics::FAMILIES` lists them) and no other family.
#[track_caller]
pub fn assert_declares_exactly(exposition: &str, families: &[(&str, &str)]) {
    let expected: BTreeMap<String, String> = families
        .iter()
        .map(|(name, kind)| ((*name).to_owned(), (*kind).to_owned()))
        .collect();
    assert_eq!(exported_families(exposition), expected, "{exposition}");
}

/// Whether a queried name is a series one of `families` exports: a gauge (or untyped)
/// family by its name, a counter as `_total` (or `_created`), a histogram as `_bucket`,
/// `_sum`, `_count`, a summary by its name, `_sum` or `_count`, an info as `_info`. (A
/// counter's bare family name is no series: a query of it finds nothing.)
pub fn is_exported(name: &str, families: &BTreeMap<String, String>) -> bool {
    families.iter().any(|(base, kind)| {
        let suffixes: &[&str] = match kind.as_str() {
            "counter" => &["_total", "_created"],
            "histogram" | "gaugehistogram" => &["_bucket", "_sum", "_count", "_created"],
            "summary" => &["", "_sum", "_count", "_created"],
            "info" => &["_info"],
            _ => &[""],
        };
        name.strip_prefix(base.as_str())
            .is_some_and(|s| suffixes.contains(&s))
    })
}

/// Every `sealcast_*` metric name in `text` (a whole identifier, not part of a longer one):
/// what a query expression reads.
pub fn metric_names(text: &str) -> BTreeSet<String> {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let bytes = text.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while let Some(at) = text[i..].find("sealcast_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && ident(bytes[end]) {
            end += 1;
        }
        if start == 0 || !ident(bytes[start - 1]) {
            names.insert(text[start..end].to_owned());
        }
        i = end.max(start + 1);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_samples_and_families() {
        assert_eq!(
            metric_names(
                "sum(rate(sealcast_a_total[1m])) / xsealcast_b + sealcast_c{x=\"sealcast_d\"}"
            )
            .into_iter()
            .collect::<Vec<_>>(),
            ["sealcast_a_total", "sealcast_c", "sealcast_d"]
        );
        let text = "# HELP sealcast_x X.\n# TYPE sealcast_x counter\nsealcast_x_total{a=\"1\"} 1\nsealcast_x_total{a=\"2\"} 2.5\n# TYPE sealcast_h histogram\n# TYPE sealcast_g gauge\n# EOF\n";
        assert_eq!(sample_sum(text, "sealcast_x_total", &[]), 3.5);
        assert_eq!(sample_sum(text, "sealcast_x_total", &["a=\"2\""]), 2.5);
        let families = exported_families(text);
        assert!(is_exported("sealcast_x_total", &families));
        assert!(!is_exported("sealcast_x", &families));
        assert!(is_exported("sealcast_h_bucket", &families));
        assert!(is_exported("sealcast_h_count", &families));
        assert!(!is_exported("sealcast_h_total", &families));
        assert!(is_exported("sealcast_g", &families));
        assert!(!is_exported("sealcast_g_total", &families));
        assert!(!is_exported("sealcast_y", &families));
    }
}
