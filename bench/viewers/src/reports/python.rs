//! What the reports' Python did with numbers and objects that Rust does not do the same
//! way, for the reports that moved here to print what it printed and keep the raw results
//! it wrote: how `str` prints a number, `min`, `max`, `statistics.median_high` and
//! `lib/stats.py`'s `spread` on JSON numbers (an int stays an int, as it did there), and a
//! JSON object's members in the order its text gives them (a dict keeps that order;
//! serde_json's map sorts its keys).

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{json, Value};

/// A JSON number as Python's `str` prints it (`3`, `2.5`, `12.0`); other values as JSON.
pub(crate) fn python_number(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if v.is_f64() => python_float(x),
        _ => v.to_string(),
    }
}

/// `x` as Python's `str` prints a float: at least one decimal.
pub(crate) fn python_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        x.to_string()
    }
}

/// Whether Python takes `v` for true (`if v:`): not null, false, zero or empty.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Python's `sum` of numbers: an int while every one is an int (0 for none), else a float.
pub(crate) fn sum<'a>(xs: impl IntoIterator<Item = &'a Value>) -> Value {
    let mut int = Some(0i64);
    let mut float = 0.0;
    for x in xs {
        int = int.and_then(|i| i.checked_add(x.as_i64()?));
        float += x.as_f64().unwrap_or(0.0);
    }
    int.map_or_else(|| json!(float), |i| json!(i))
}

/// The numbers among `xs` (Python's reports left `None` out), each with its value.
fn known(xs: &[Value]) -> Vec<(f64, &Value)> {
    xs.iter().filter_map(|v| Some((v.as_f64()?, v))).collect()
}

/// The one Python's `min` (`less`) or `max` picks: the first that no later one beats.
fn pick(xs: &[Value], beats: impl Fn(f64, f64) -> bool) -> Option<Value> {
    let mut best: Option<(f64, &Value)> = None;
    for (x, v) in known(xs) {
        if best.is_none_or(|(b, _)| beats(x, b)) {
            best = Some((x, v));
        }
    }
    best.map(|(_, v)| v.clone())
}

/// Python's `min(xs, default=None)` of numbers.
pub(crate) fn min(xs: &[Value]) -> Option<Value> {
    pick(xs, |x, best| x < best)
}

/// Python's `max(xs, default=None)` of numbers.
pub(crate) fn max(xs: &[Value]) -> Option<Value> {
    pick(xs, |x, best| x > best)
}

/// `xs`' numbers sorted as Python's `sorted` does (stable).
fn sorted(xs: &[Value]) -> Vec<(f64, &Value)> {
    let mut sorted = known(xs);
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    sorted
}

/// `statistics.median_high`: the larger of the middle two (the middle one of an odd
/// count); none for none.
pub(crate) fn median_high(xs: &[Value]) -> Option<Value> {
    let sorted = sorted(xs);
    sorted.get(sorted.len() / 2).map(|(_, v)| (*v).clone())
}

/// `lib/stats.py`'s `spread`: `{"median", "min", "max"}` (the median of an even count the
/// mean of the middle two, a float), null for none.
pub(crate) fn spread(xs: &[Value]) -> Value {
    let sorted = sorted(xs);
    let n = sorted.len();
    let median = match n {
        0 => return Value::Null,
        _ if n % 2 == 1 => sorted[n / 2].1.clone(),
        _ => json!((sorted[n / 2 - 1].0 + sorted[n / 2].0) / 2.0),
    };
    json!({"median": median, "min": min(xs), "max": max(xs)})
}

/// A JSON object's members in the order of its text.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Ordered(pub(crate) Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Ordered(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// Whether two JSON values are the same but for the last bits of their floats (serde_json's
/// parsing of a float is not always the nearest one, as Python's is): the same ints, the
/// same kind of number, the same keys.
#[cfg(test)]
pub(crate) fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
            (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_and_pick_as_python_does() {
        assert_eq!(python_number(&json!(0.4)), "0.4");
        assert_eq!(python_number(&json!(12.0)), "12.0");
        assert_eq!(python_number(&json!(3)), "3");
        assert_eq!(python_float(0.333), "0.333");
        let xs = [json!(2), Value::Null, json!(1.0), json!(1), json!(3)];
        assert_eq!(min(&xs), Some(json!(1.0)));
        assert_eq!(max(&xs), Some(json!(3)));
        assert_eq!(median_high(&xs), Some(json!(2)));
        assert_eq!(median_high(&[json!(1), json!(2)]), Some(json!(2)));
        assert_eq!(median_high(&[]), None);
        assert_eq!(min(&[Value::Null]), None);
        assert_eq!(
            spread(&[json!(0), json!(0), json!(0)]).to_string(),
            r#"{"max":0,"median":0,"min":0}"#
        );
        assert_eq!(spread(&[json!(1), json!(2)])["median"], json!(1.5));
        assert_eq!(spread(&[Value::Null]), Value::Null);
    }

    #[test]
    fn an_object_keeps_its_order() {
        let o: Ordered = serde_json::from_str(r#"{"src": 1, "720p": {"a": 2}, "360p": null}"#)
            .expect("an object");
        let keys: Vec<&str> = o.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["src", "720p", "360p"]);
        assert!(serde_json::from_str::<Ordered>("[1]").is_err());
    }
}
