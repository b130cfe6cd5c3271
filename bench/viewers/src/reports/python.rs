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

/// Python's `str.splitlines`: the lines of `text` without their ends, which are `\n`,
/// `\r\n`, `\r` and the other breaks Python counts (`\v`, `\f`, `\x1c`-`\x1e`, NEL, LS,
/// PS); no empty line after a final break.
pub(crate) fn splitlines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let breaks = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if breaks {
            out.push(&text[start..i]);
            start = i + c.len_utf8();
            if c == '\r' && chars.peek().is_some_and(|&(_, n)| n == '\n') {
                chars.next();
                start += 1;
            }
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Python's `float(text)`: blanks around it allowed, `_` between digits, `inf`, `infinity`
/// and `nan` in any case with a sign.
pub(crate) fn float(text: &str) -> anyhow::Result<f64> {
    let t = text.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c));
    let digits = t.replace('_', "");
    let underscores_fit = t.match_indices('_').all(|(i, _)| {
        let around = (t[..i].chars().next_back(), t[i + 1..].chars().next());
        matches!(around, (Some(a), Some(b)) if a.is_ascii_digit() && b.is_ascii_digit())
    });
    match underscores_fit {
        true => digits.parse(),
        false => "x".parse(),
    }
    .with_context(|| format!("could not convert string to float: {text:?}"))
}

/// Python's `round(x, digits)` of a float: the decimal nearest to `x` with that many
/// digits (ties to even on `x`'s exact value, as formatting rounds), read back.
pub(crate) fn round(x: f64, digits: usize) -> f64 {
    format!("{x:.digits$}").parse().unwrap_or(x)
}

/// `statistics.mean` of floats: their exact sum over their count, rounded once to the
/// nearest float (ties to even), as Python computes it with fractions; a float sum divided
/// by the count can be a unit in the last place off. None for none. With an infinite or
/// NaN among them, or a mean below the normal floats, the float sum over the count.
pub(crate) fn mean(xs: &[f64]) -> Option<f64> {
    use std::cmp::Ordering;
    if xs.is_empty() {
        return None;
    }
    let plain = xs.iter().sum::<f64>() / xs.len() as f64;
    if xs.iter().any(|x| !x.is_finite()) {
        return Some(plain);
    }
    // Each x is ±m·2^e, m < 2^53: the sum, exact, in units of the smallest 2^e.
    let parts: Vec<(bool, u64, i32)> = xs
        .iter()
        .filter(|x| **x != 0.0)
        .map(|x| {
            let bits = x.to_bits();
            let (field, fraction) = ((bits >> 52) & 0x7ff, bits & ((1 << 52) - 1));
            match field {
                0 => (x.is_sign_negative(), fraction, -1074),
                _ => (
                    x.is_sign_negative(),
                    fraction | 1 << 52,
                    field as i32 - 1075,
                ),
            }
        })
        .collect();
    let Some(unit) = parts.iter().map(|p| p.2).min() else {
        return Some(0.0);
    };
    let (mut positive, mut negative) = (Wide::default(), Wide::default());
    for &(minus, m, e) in &parts {
        let side = if minus { &mut negative } else { &mut positive };
        side.add_shifted(m, (e - unit) as usize);
    }
    let (minus, sum) = match positive.cmp(&negative) {
        Ordering::Equal => return Some(0.0),
        Ordering::Greater => (false, positive.minus(&negative)),
        Ordering::Less => (true, negative.minus(&positive)),
    };
    // The quotient with at least 55 bits, then its top 53 rounded by the rest.
    let shift = 119usize.saturating_sub(sum.bits());
    let (quotient, remainder) = sum.shifted(shift).div_rem(xs.len() as u64);
    let drop = quotient.bits() - 53;
    let mut m = quotient.bits_at(drop, 53);
    let half = quotient.bit(drop - 1);
    if half && (remainder != 0 || quotient.any_below(drop - 1) || m & 1 == 1) {
        m += 1;
    }
    let mut exponent = unit - shift as i32 + drop as i32;
    if m == 1 << 53 {
        m >>= 1;
        exponent += 1;
    }
    let biased = exponent + 52 + 1023;
    if !(1..2047).contains(&biased) {
        return Some(plain);
    }
    let x = f64::from_bits(((biased as u64) << 52) | (m & ((1 << 52) - 1)));
    Some(if minus { -x } else { x })
}

/// An unsigned integer of any size, 64-bit limbs from the least significant: [`mean`]'s
/// exact sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Wide(Vec<u64>);

impl Wide {
    /// Adds `m`·2^`shift`.
    fn add_shifted(&mut self, m: u64, shift: usize) {
        let mut at = shift / 64;
        // What is left to add from limb `at` up.
        let mut carry = u128::from(m) << (shift % 64);
        while carry != 0 {
            if self.0.len() <= at {
                self.0.resize(at + 1, 0);
            }
            let sum = u128::from(self.0[at]) + (carry & u128::from(u64::MAX));
            self.0[at] = sum as u64;
            carry = (carry >> 64) + (sum >> 64);
            at += 1;
        }
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    /// `self` − `other`, `other` being no larger.
    fn minus(&self, other: &Wide) -> Wide {
        let mut out = self.0.clone();
        let mut borrow = false;
        for (i, limb) in out.iter_mut().enumerate() {
            let take = other.0.get(i).copied().unwrap_or(0);
            let (d, o1) = limb.overflowing_sub(take);
            let (d, o2) = d.overflowing_sub(u64::from(borrow));
            *limb = d;
            borrow = o1 || o2;
        }
        let mut out = Wide(out);
        out.trim();
        out
    }

    /// How many bits it takes (0 for 0).
    fn bits(&self) -> usize {
        self.0
            .last()
            .map_or(0, |top| 64 * self.0.len() - top.leading_zeros() as usize)
    }

    /// `self`·2^`shift`.
    fn shifted(&self, shift: usize) -> Wide {
        let mut out = Wide::default();
        for (i, limb) in self.0.iter().enumerate() {
            out.add_shifted(*limb, shift + 64 * i);
        }
        out
    }

    /// The quotient and remainder of the division by `n` (not 0).
    fn div_rem(&self, n: u64) -> (Wide, u64) {
        let mut quotient = vec![0; self.0.len()];
        let mut rest: u128 = 0;
        for i in (0..self.0.len()).rev() {
            rest = (rest << 64) | u128::from(self.0[i]);
            quotient[i] = (rest / u128::from(n)) as u64;
            rest %= u128::from(n);
        }
        let mut quotient = Wide(quotient);
        quotient.trim();
        (quotient, rest as u64)
    }

    fn bit(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|l| (l >> (i % 64)) & 1 == 1)
    }

    /// Whether a bit below bit `i` is set.
    fn any_below(&self, i: usize) -> bool {
        (0..i).any(|b| self.bit(b))
    }

    /// `count` (at most 64) bits from bit `from` up, as a number.
    fn bits_at(&self, from: usize, count: usize) -> u64 {
        (0..count).fold(0, |m, b| m | u64::from(self.bit(from + b)) << b)
    }
}

impl PartialOrd for Wide {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Wide {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }
}

/// JSON object members in the order given, serialized so (serde_json's own map sorts its
/// keys; Python's dicts keep their insertion order).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct InOrder<V>(pub(crate) Vec<(String, V)>);

impl<V: serde::Serialize> serde::Serialize for InOrder<V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
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
    fn means_and_rounds_are_python_s() {
        // statistics.mean: the float sum over 3 gives ...008.2.
        let xs = [
            237_964_627_091_891.4,
            369_955_166_548_079.25,
            625_720_304_108_054.0,
        ];
        assert_eq!(mean(&xs), Some(411_213_365_916_008.25));
        assert_ne!(xs.iter().sum::<f64>() / 3.0, 411_213_365_916_008.25);
        assert_eq!(mean(&[-0.0]), Some(0.0));
        assert_eq!(mean(&[1.5, -1.5]), Some(0.0));
        assert_eq!(mean(&[-3.0, 1.0]), Some(-1.0));
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[0.1, 0.2, 0.3]), Some(0.2));
        // round(x, 3), round(2.675, 2): the binary value's nearest decimal, ties to even.
        assert_eq!(round(2.675, 2), 2.67);
        assert_eq!(round(123.4565, 3), 123.457);
        assert_eq!(round(1.0005, 3), 1.0);
        assert_eq!(
            splitlines("a\r\nb\rc\x0cd\n\ne\n"),
            ["a", "b", "c", "d", "", "e"]
        );
        assert_eq!(float(" 1_000.5\n").expect("a float"), 1000.5);
        assert_eq!(float("+Inf").expect("a float"), f64::INFINITY);
        assert!(float("1__0").is_err() && float("_1").is_err() && float("").is_err());
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
