//! What the reports' Python did with numbers and objects that Rust does not do the same
//! way, for the reports that moved here to print what it printed and keep the raw results
//! it wrote: how `str` prints a number, `round`, `min`, `max`, `statistics.median_high` and
//! `lib/stats.py`'s `spread` on JSON numbers (an int stays an int, as it did there), and a
//! JSON object's members in the order its text gives them (a dict keeps that order;
//! serde_json's map sorts its keys).

use anyhow::Context;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{json, Value};

/// A JSON number as Python's `str` prints it (`3`, `2.5`, `12.0`); other values as JSON.
pub(crate) fn python_number(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if v.is_f64() => python_float(x),
        _ => v.to_string(),
    }
}

/// Whether Python takes `v` for true: not null, false, zero, or empty.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `x` as Python's `str` (or `repr`) prints a float: the shortest digits that read back
/// as `x`, with at least one decimal, and as `1e-05` or `1e+16` outside 1e-4 ≤ |x| < 1e16.
pub(crate) fn python_float(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan"
        } else if x > 0.0 {
            "inf"
        } else {
            "-inf"
        }
        .to_owned();
    }
    let exp = format!("{x:e}");
    let (mantissa, power) = exp.split_once('e').unwrap_or((&exp, "0"));
    let power: i32 = power.parse().unwrap_or(0);
    if x != 0.0 && !(-4..16).contains(&power) {
        let sign = if power < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", power.abs());
    }
    let text = x.to_string();
    if text.contains('.') {
        text
    } else {
        text + ".0"
    }
}

/// Python's `round(x, digits)` of a float: the float nearest the decimal `x` rounds to
/// (half to even, on `x`'s exact value), as Rust's formatting with a precision rounds it.
pub(crate) fn python_round(x: f64, digits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.digits$}").parse().unwrap_or(x)
}

/// JSON text parsed as Python's `json` parses it, numbers exactly: serde_json's own parser
/// (without its `float_roundtrip` feature, which would change the product's build too) can
/// put a long float one unit in the last place off, and the raw results would carry it.
/// Integers stay integers; strings are read by serde_json.
pub(crate) fn parse_json(text: &str) -> anyhow::Result<serde_json::Value> {
    let mut p = JsonText { text, at: 0 };
    let value = p.value()?;
    p.blank();
    anyhow::ensure!(
        p.at == text.len(),
        "JSON: more after the value at byte {}",
        p.at
    );
    Ok(value)
}

/// [`parse_json`]'s place in the text.
struct JsonText<'a> {
    text: &'a str,
    at: usize,
}

impl JsonText<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn blank(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// The next byte after blanks, consumed.
    fn next(&mut self) -> anyhow::Result<u8> {
        self.blank();
        let c = self.peek().context("JSON: cut short")?;
        self.at += 1;
        Ok(c)
    }

    fn value(&mut self) -> anyhow::Result<serde_json::Value> {
        use serde_json::{Map, Value};
        self.blank();
        match self.peek().context("JSON: cut short")? {
            open @ (b'{' | b'[') => {
                self.at += 1;
                let close = if open == b'{' { b'}' } else { b']' };
                let (mut map, mut list) = (Map::new(), Vec::new());
                self.blank();
                if self.peek() == Some(close) {
                    self.at += 1;
                } else {
                    loop {
                        if open == b'{' {
                            self.blank();
                            let key = self.string()?;
                            anyhow::ensure!(
                                self.next()? == b':',
                                "JSON: no ':' at byte {}",
                                self.at
                            );
                            map.insert(key, self.value()?);
                        } else {
                            list.push(self.value()?);
                        }
                        match self.next()? {
                            b',' => {}
                            c if c == close => break,
                            _ => anyhow::bail!("JSON: unexpected byte at {}", self.at - 1),
                        }
                    }
                }
                Ok(if open == b'{' {
                    Value::Object(map)
                } else {
                    Value::Array(list)
                })
            }
            b'"' => Ok(Value::String(self.string()?)),
            _ => {
                let start = self.at;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
                {
                    self.at += 1;
                }
                let token = &self.text[start..self.at];
                let exact = token.contains(['.', 'e', 'E'])
                    && token
                        .bytes()
                        .all(|c| !c.is_ascii_alphabetic() || c == b'e' || c == b'E');
                if exact {
                    let x: f64 = token.parse().with_context(|| format!("JSON: {token:?}"))?;
                    Ok(serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number))
                } else {
                    // Integers, true, false and null as serde_json reads them.
                    serde_json::from_str(token).with_context(|| format!("JSON: {token:?}"))
                }
            }
        }
    }

    /// A string, from its opening quote to its closing one (its escapes read by serde_json).
    fn string(&mut self) -> anyhow::Result<String> {
        let start = self.at;
        anyhow::ensure!(self.peek() == Some(b'"'), "JSON: no string at byte {start}");
        self.at += 1;
        while let Some(c) = self.peek() {
            self.at += 1;
            match c {
                b'\\' => self.at += 1,
                b'"' => {
                    return serde_json::from_str(&self.text[start..self.at])
                        .with_context(|| format!("JSON: the string at byte {start}"));
                }
                _ => {}
            }
        }
        anyhow::bail!("JSON: a string without its end at byte {start}")
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

/// `lib/stats.py`'s `spread`: `{"median", "min", "max"}` (the median as [`median_json`]),
/// null for none.
pub(crate) fn spread(xs: &[Value]) -> Value {
    match median_json(xs) {
        Value::Null => Value::Null,
        median => json!({"median": median, "min": min(xs), "max": max(xs)}),
    }
}

/// The median of the known numbers among `xs` as `bench/lib/stats.py` gives it in raw
/// results, its JSON type kept: of an odd count the middle value itself (an int stays an
/// int), of an even count the mean of the middle two (a float); null when none is known.
pub(crate) fn median_json(xs: &[Value]) -> Value {
    let sorted = sorted(xs);
    let n = sorted.len();
    match n {
        0 => Value::Null,
        _ if n % 2 == 1 => sorted[n / 2].1.clone(),
        _ => json!((sorted[n / 2 - 1].0 + sorted[n / 2].0) / 2.0),
    }
}

/// `bench/lib/stats.py`'s `spread(xs, count=True)` in raw results: [`spread`] and `n`, how
/// many are known; null when none is.
pub(crate) fn counted_json(xs: &[Value]) -> Value {
    match spread(xs) {
        Value::Object(mut members) => {
            members.insert("n".to_owned(), json!(known(xs).len()));
            Value::Object(members)
        }
        other => other,
    }
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
        // round(): half to even on the exact value, the sign of a zero kept.
        assert_eq!(python_round(0.25, 1), 0.2);
        assert_eq!(python_round(2.675, 2), 2.67);
        assert_eq!(python_round(2.5, 0), 2.0);
        assert_eq!(python_float(python_round(-0.04, 1)), "-0.0");
        assert_eq!(python_float(python_round(12.3456, 3)), "12.346");
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
