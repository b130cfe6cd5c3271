//! The benchmarks' reports that moved into `sealcast-bench` (issue 46 item 4), one module
//! each: a run's raw measurements in, its section of `docs/benchmarks.md` and the raw
//! results' JSON out. The rest are still `bench/lib/reports/*.py`.

pub mod capacity;
pub mod compose;
pub mod dvr_seek;
pub mod ladder;
pub mod ladder_codecs;
pub mod ll_quality;
pub mod llhls_cdn;
pub mod llhls_common;
pub mod moq_cost;
pub mod push_bytes;
pub mod ramps;
pub mod viewer_verify;

use anyhow::Context;

/// What a report makes of a run.
#[derive(Debug)]
pub struct Report {
    /// The section, its `## ` heading line first, ending in a newline.
    pub section: String,
    /// The `## ` heading the section replaces in the doc (or the start of it).
    pub heading: &'static str,
    /// Where a section the doc lacks goes: after this one (its heading or the start of
    /// it); none, at the end.
    pub after: Option<&'static str>,
    /// The raw results: the measurements and the figures drawn from them.
    pub raw: serde_json::Value,
    /// Why the run does not count (its figures compare different work), said once the
    /// section is written: the command then fails.
    pub refusal: Option<String>,
}

/// How long and how often a script measured (`--seconds N --rounds N`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Rounds {
    /// Seconds each measurement lasted.
    #[arg(long)]
    pub seconds: u64,
    /// Rounds of measurements.
    #[arg(long)]
    pub rounds: u64,
}

/// A section's notes (a notes file's text), after a blank line, when there are any.
pub(crate) fn push_notes(lines: &mut Vec<String>, notes: Option<&str>) {
    if let Some(notes) = notes {
        lines.push(String::new());
        lines.push(notes.trim().to_owned());
    }
}

/// The JSON objects of `text`, one a line (blank lines passed over); an error names the
/// object that does not parse (`what` and its number, counting objects).
pub(crate) fn json_lines(what: &str, text: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{what} {}", i + 1)))
        .collect()
}

/// Whether Python takes `v` for true: not null, false, zero, or empty.
pub(crate) fn truthy(v: &serde_json::Value) -> bool {
    use serde_json::Value;
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

/// A JSON number as Python's `str` prints it (`3`, `2.5`, `2.0`).
pub(crate) fn python_number(v: &serde_json::Value) -> String {
    match (v.as_i64(), v.as_u64(), v.as_f64()) {
        (Some(i), _, _) => i.to_string(),
        (None, Some(u), _) => u.to_string(),
        (None, None, Some(f)) => python_float(f),
        _ => v.to_string(),
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_print_as_python_prints_them() {
        let cases = [
            (0.333, "0.333"),
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (3.4783, "3.4783"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (9_999_999_999_999_998.0, "9999999999999998.0"),
            (123_456.789, "123456.789"),
            (f64::INFINITY, "inf"),
        ];
        for (x, want) in cases {
            assert_eq!(python_float(x), want, "{x:e}");
        }
        assert_eq!(python_number(&json!(3)), "3");
        assert_eq!(python_number(&json!(2.5)), "2.5");
        assert_eq!(python_number(&json!(2.0)), "2.0");
        assert!(truthy(&json!(0.5)) && !truthy(&json!(0.0)) && !truthy(&json!(null)));
        assert!(!truthy(&json!({})) && truthy(&json!([0])) && !truthy(&json!("")));
    }

    #[test]
    fn json_numbers_are_read_exactly() {
        // serde_json's default parser reads this one a unit in the last place off.
        let text = r#" {"a": [2.3053602689946002, 1, -2, 1e-05, 18446744073709551615],
                        "b\"\u00e9": {"c": true, "d": null, "e": false}, "f": [], "g": {}} "#;
        let v = parse_json(text).expect("JSON");
        assert_eq!(
            v["a"][0].as_f64(),
            Some("2.3053602689946002".parse().expect("f64"))
        );
        assert!(v["a"][1].is_i64() && v["a"][2] == json!(-2) && v["a"][3] == json!(1e-5));
        assert!(v["a"][4].is_u64());
        assert_eq!(v["b\"\u{e9}"], json!({"c": true, "d": null, "e": false}));
        assert_eq!((v["f"].clone(), v["g"].clone()), (json!([]), json!({})));
        for bad in ["", "[1,", "{\"a\" 1}", "[1] 2", "\"open", "[tru]", "{1: 2}"] {
            assert!(parse_json(bad).is_err(), "{bad:?}");
        }
    }
}
