//! Compose's variable interpolation (`${VAR}`, `${VAR:-default}`, `${VAR:?message}`, `$$`,
//! ...) and the `.env` file it reads variables from.

use anyhow::{bail, ensure, Context, Result};

use super::Vars;

/// Compose's variable interpolation of one string: `$$` is a literal `$`; `${VAR}` and
/// `$VAR` the value (empty when unset); `${VAR:-default}` the default when unset or empty,
/// `${VAR-default}` only when unset; `${VAR:?message}` an error when unset or empty,
/// `${VAR?message}` only when unset; `${VAR:+alt}`/`${VAR+alt}` the alternative when set.
/// Defaults are interpolated too (`${A:-${B}}`). A `$` followed by anything else is an
/// error, as in compose. Error messages name the variable, never a value.
pub fn interpolate(text: &str, vars: &Vars) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(inner) = after.strip_prefix('{') {
            let end = closing_brace(inner).with_context(|| format!("unclosed ${{ in {text:?}"))?;
            out.push_str(&expand(&inner[..end], vars)?);
            rest = &inner[end + 1..];
        } else {
            let len = name_len(after);
            ensure!(
                len > 0,
                "invalid interpolation format in {text:?}: a lone $ (write $$ for a literal $)"
            );
            out.push_str(vars.get(&after[..len]).map_or("", String::as_str));
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// One `${...}` of a text: where it is, the variable and what follows the name
/// (`:-default`, `:?message`, ... or nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolation {
    /// Byte range of the whole `${...}` in the text.
    pub range: std::ops::Range<usize>,
    /// The variable's name.
    pub name: String,
    /// What follows the name (`:-default`, `?message`, ...), or empty.
    pub op: String,
}

impl Interpolation {
    /// Whether it has a value of its own when the variable is unset (`:-`, `-`, `:+`,
    /// `+`): a literal that the file, not `.env`, supplies.
    pub fn has_default(&self) -> bool {
        self.op.starts_with(":-")
            || self.op.starts_with('-')
            || self.op.starts_with(":+")
            || self.op.starts_with('+')
    }
}

/// The top-level `${...}` of `text` (those nested in a default are part of their outer
/// one); `$$` is skipped. Unbraced `$VAR` is not listed.
pub fn interpolations(text: &str) -> Result<Vec<Interpolation>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = text[i..].find('$') {
        let start = i + at;
        let after = &text[start + 1..];
        if after.starts_with('$') {
            i = start + 2;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = closing_brace(body).with_context(|| format!("unclosed ${{ in {text:?}"))?;
            let body = &body[..end];
            let len = name_len(body);
            ensure!(len > 0, "invalid interpolation format: ${{{body}}}");
            let whole_end = start + 2 + end + 1;
            out.push(Interpolation {
                range: start..whole_end,
                name: body[..len].to_owned(),
                op: body[len..].to_owned(),
            });
            i = whole_end;
        } else {
            i = start + 1;
        }
    }
    Ok(out)
}

/// The length of a variable name at the start of `s` (`[A-Za-z_][A-Za-z0-9_]*`), or 0.
fn name_len(s: &str) -> usize {
    match s.bytes().next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => s
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count(),
        _ => 0,
    }
}

/// The index of the `}` closing a `${` whose body starts `s`, counting nested `${`.
fn closing_brace(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 1;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// One `${...}` body.
fn expand(body: &str, vars: &Vars) -> Result<String> {
    let len = name_len(body);
    ensure!(len > 0, "invalid interpolation format: ${{{body}}}");
    let (name, op) = body.split_at(len);
    let value = vars.get(name);
    let set = value.is_some();
    let non_empty = value.is_some_and(|v| !v.is_empty());
    let own = || value.cloned().unwrap_or_default();
    Ok(if op.is_empty() {
        own()
    } else if let Some(default) = op.strip_prefix(":-") {
        if non_empty {
            own()
        } else {
            interpolate(default, vars)?
        }
    } else if let Some(default) = op.strip_prefix('-') {
        if set {
            own()
        } else {
            interpolate(default, vars)?
        }
    } else if let Some(message) = op.strip_prefix(":?") {
        ensure!(
            non_empty,
            "required variable {name} is missing a value: {message}"
        );
        own()
    } else if let Some(message) = op.strip_prefix('?') {
        ensure!(
            set,
            "required variable {name} is missing a value: {message}"
        );
        own()
    } else if let Some(alternative) = op.strip_prefix(":+") {
        if non_empty {
            interpolate(alternative, vars)?
        } else {
            String::new()
        }
    } else if let Some(alternative) = op.strip_prefix('+') {
        if set {
            interpolate(alternative, vars)?
        } else {
            String::new()
        }
    } else {
        bail!("invalid interpolation format: ${{{body}}}")
    })
}

/// The variables of an env file (`NAME=value` lines; `#` comments, blank lines and an
/// `export ` prefix allowed; one pair of surrounding quotes removed), as compose reads
/// `.env`.
pub fn parse_env_file(text: &str) -> Vars {
    let mut vars = Vars::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q)?.strip_suffix(*q))
            .unwrap_or(value);
        vars.insert(name.trim().to_owned(), unquoted.to_owned());
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_follows_compose_rules() {
        let vars: Vars = [("SET", "value"), ("EMPTY", "")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let i = |s: &str| interpolate(s, &vars);
        for (text, expected) in [
            ("plain", "plain"),
            ("${SET}", "value"),
            ("$SET/x", "value/x"),
            ("a${UNSET}b", "ab"),
            ("${SET:-d}", "value"),
            ("${EMPTY:-d}", "d"),
            ("${UNSET:-d e/f}", "d e/f"),
            ("${EMPTY-d}", ""),
            ("${UNSET-d}", "d"),
            ("${UNSET:-${SET}}", "value"),
            ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
            ("${SET:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${SET:?must}", "value"),
            ("${EMPTY?may be empty}", ""),
            ("$$(cmd) $${SET} $$", "$(cmd) ${SET} $"),
            ("pre-${SET}-post", "pre-value-post"),
        ] {
            assert_eq!(i(text).expect("ok"), expected, "{text}");
        }
        for bad in [
            "${UNSET:?run init}",
            "${EMPTY:?run init}",
            "${UNSET?x}",
            "$",
            "a $ b",
            "${",
            "${1X}",
            "${SET!}",
        ] {
            assert!(i(bad).is_err(), "{bad} should be an error");
        }
        let message = format!(
            "{:#}",
            i("${UNSET:?run scripts/init-cluster.sh first}").expect_err("an error")
        );
        assert!(
            message.contains("UNSET") && message.contains("run scripts/init-cluster.sh first"),
            "{message}"
        );

        let found = interpolations("u:${P:?x y/z}@h:${PORT:-1883}/$${NOT}").expect("ok");
        let names: Vec<(&str, bool)> = found
            .iter()
            .map(|f| (f.name.as_str(), f.has_default()))
            .collect();
        assert_eq!(names, [("P", false), ("PORT", true)]);
        assert_eq!(&"u:${P:?x y/z}@h"[found[0].range.clone()], "${P:?x y/z}");

        let env = parse_env_file("# c\n\nA=1\nexport B='two words'\nC=\"x=y\"\nA=3\n");
        assert_eq!(env.get("A").map(String::as_str), Some("3"));
        assert_eq!(env.get("B").map(String::as_str), Some("two words"));
        assert_eq!(env.get("C").map(String::as_str), Some("x=y"));
    }
}
