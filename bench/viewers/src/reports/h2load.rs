//! What h2load (nghttp2's load tool) prints at the end of a run and writes in its
//! per-request log (`--log-file`), read as the benchmarks' Python read them with regular
//! expressions. Two samples use it: `bench/edge.sh`'s, one run ([`super::edge::h2load`]),
//! and `bench/lb.sh`'s, two runs at once, one per backend cookie
//! ([`super::lb::h2load_pair`]). Each reader finds the first place in the text where its
//! line reads whole, as `re.search` did.

use std::path::Path;

use anyhow::Context;

/// The start of `text` made of the characters `keep` takes, and the rest.
fn split_while(text: &str, keep: impl Fn(char) -> bool) -> (&str, &str) {
    text.split_at(text.find(|c: char| !keep(c)).unwrap_or(text.len()))
}

/// What `parse` reads after each `start` in `text`, in order.
fn after<'a, T: 'a>(
    text: &'a str,
    start: &'a str,
    parse: impl Fn(&'a str) -> Option<T> + 'a,
) -> impl Iterator<Item = T> + 'a {
    text.match_indices(start)
        .filter_map(move |(i, _)| parse(&text[i + start.len()..]))
}

/// A number in decimal digits at the start of `text`, and the rest.
fn digits(text: &str) -> Option<(u64, &str)> {
    let (number, rest) = split_while(text, |c| c.is_ascii_digit());
    Some((number.parse().ok()?, rest))
}

/// `finished in 4.00s` (or `3.91ms`): the run's seconds (`finished in ([\d.]+)(m?s)`).
pub fn finished(out: &str) -> Option<f64> {
    after(out, "finished in ", |rest| {
        let (number, unit) = split_while(rest, |c| c.is_ascii_digit() || c == '.');
        let scale = if unit.starts_with("ms") {
            1000.0
        } else if unit.starts_with('s') {
            1.0
        } else {
            return None;
        };
        Some(number.parse::<f64>().ok()? / scale)
    })
    .next()
}

/// h2load's line of requests: `requests: N total, N started, N done, N succeeded, N
/// failed, N errored, N timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requests {
    /// Requests that succeeded.
    pub succeeded: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Requests that errored.
    pub errored: u64,
    /// Requests that timed out; none when the line stops after `errored`.
    pub timeout: Option<u64>,
}

/// Every line of requests that reads as far as `N errored`, in order (`.timeout` tells
/// whether it goes on to `, N timeout`).
pub fn requests(out: &str) -> impl Iterator<Item = Requests> + '_ {
    after(out, "requests: ", |mut rest| {
        let mut counts = [0; 6];
        let words = [
            " total, ",
            " started, ",
            " done, ",
            " succeeded, ",
            " failed, ",
            " errored",
        ];
        for (count, word) in counts.iter_mut().zip(words) {
            let (n, tail) = digits(rest)?;
            *count = n;
            rest = tail.strip_prefix(word)?;
        }
        let timeout = rest
            .strip_prefix(", ")
            .and_then(digits)
            .and_then(|(n, tail)| tail.starts_with(" timeout").then_some(n));
        Some(Requests {
            succeeded: counts[3],
            failed: counts[4],
            errored: counts[5],
            timeout,
        })
    })
}

/// Every `traffic: 143.80MB (150790264) total` in order: the size as printed (a run of
/// characters that are not blank) and the bytes.
pub fn traffic(out: &str) -> impl Iterator<Item = (&str, u64)> + '_ {
    after(out, "traffic: ", |rest| {
        let (size, rest) = split_while(rest, |c| !c.is_whitespace());
        let (bytes, rest) = digits(rest.strip_prefix(" (")?)?;
        (!size.is_empty() && rest.starts_with(") total")).then_some((size, bytes))
    })
}

/// The first word after the first `label` in `text` that has one.
fn word_after<'a>(text: &'a str, label: &'a str) -> Option<&'a str> {
    after(text, label, |rest| {
        let (word, _) = split_while(rest, |c| !c.is_whitespace());
        (!word.is_empty()).then_some(word)
    })
    .next()
}

/// What h2load says it negotiated, its words joined by spaces ("" when it says nothing):
/// the TLS version and cipher (`TLS Protocol: (\S+)\s+Cipher: (\S+)`, when it used TLS)
/// and the application protocol (`Application protocol: (\S+)`): `TLSv1.3
/// TLS_AES_128_GCM_SHA256 h2`, or `http/1.1` over plain TCP.
pub fn negotiated(out: &str) -> String {
    let tls = after(out, "TLS Protocol: ", |rest| {
        let (protocol, rest) = split_while(rest, |c| !c.is_whitespace());
        let (blank, rest) = split_while(rest, char::is_whitespace);
        let (cipher, _) = split_while(rest.strip_prefix("Cipher: ")?, |c| !c.is_whitespace());
        (!protocol.is_empty() && !blank.is_empty() && !cipher.is_empty())
            .then_some([protocol, cipher])
    })
    .next();
    let application = word_after(out, "Application protocol: ");
    tls.into_iter()
        .flatten()
        .chain(application)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The microseconds each 200 answer took, in the log's order: its lines are `start
/// status microseconds` (a line whose time is not a whole number is passed over).
pub fn latencies_us(log: &str) -> Vec<i64> {
    log.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields[..] {
                [_, "200", us, ..] => us.parse().ok(),
                _ => None,
            }
        })
        .collect()
}

/// A per-request log: none when h2load wrote none (it made no connection).
pub fn read_log(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| path.display().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What h2load 1.52 printed, read line by line.
    #[test]
    fn reads_each_line_as_the_python_regular_expressions_did() {
        let out = include_str!("testdata/edge-h2load.out");
        assert_eq!(finished(out), Some(0.00391));
        assert_eq!(
            requests(out).next(),
            Some(Requests {
                succeeded: 30,
                failed: 10,
                errored: 0,
                timeout: Some(0)
            })
        );
        assert_eq!(traffic(out).next(), Some(("1.44MB", 1_507_998)));
        assert_eq!(negotiated(out), "h2c");
        assert_eq!(finished("finished in 12.5s, 3 req/s"), Some(12.5));
        assert_eq!(finished("finished in 12.5us"), None);
        let cut = "requests: 5 total, 5 started, 5 done, 5 succeeded, 0 failed, 0 errored\n";
        assert_eq!(requests(cut).next().map(|r| r.timeout), Some(None));
        assert_eq!(traffic("traffic: ? (7) total").next(), Some(("?", 7)));
        assert_eq!(traffic("traffic:  (7) total").next(), None);
        let tls = "TLS Protocol: TLSv1.3\nCipher: TLS_AES_128_GCM_SHA256\nServer Temp Key: \
                   X25519 253 bits\nApplication protocol: h2\n";
        assert_eq!(negotiated(tls), "TLSv1.3 TLS_AES_128_GCM_SHA256 h2");
        assert_eq!(negotiated("TLS Protocol: TLSv1.3 x\nCipher: A\n"), "");
        assert_eq!(negotiated(""), "");
        let log = "1\t200\t204\n2\t404\t9\n3 200 x\n4\t200\t-3\n5\t200\n";
        assert_eq!(latencies_us(log), [204, -3]);
    }
}
