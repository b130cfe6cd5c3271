//! The report of `bench/lb-profile.sh`: user-space instructions per request of `sealcast
//! lb` and of HAProxy under valgrind's callgrind, the same load on each, and where ours go
//! by crate. It was Python (`bench/lib/reports/lb_profile.py`, in git history before this
//! module), whose text and raw results it writes.
//!
//! The script's work directory gives, per load balancer (`sealcast`, `haproxy`) and kind
//! of request (`playlist`, `segment`), `cg.NAME.KIND.txt` (`callgrind_annotate
//! --auto=no --threshold=100`'s listing: exclusive instructions per function) and
//! `cg.NAME.KIND.h2load` (h2load's lines of requests and TLS, joined into one).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Map, Value};

use super::{push_notes, Report};
use crate::spread::grouped;

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## Load-balancer instructions per request (bench/lb-profile.sh)";

/// The kinds of request, in the tables' order.
const KINDS: [&str; 2] = ["playlist", "segment"];
/// The load balancers, ours first.
const NAMES: [&str; 2] = ["sealcast", "haproxy"];
/// Our crates: their functions are "sealcast (our code)".
const OURS: [&str; 5] = ["loadbalancer", "sealcast", "domain", "certs", "plumbing"];
/// The groups of ours the section lists per kind.
const TOP: usize = 14;

/// What `bench/lb-profile.sh` measured with.
#[derive(Debug, Clone, clap::Args)]
pub struct Run {
    /// Playlist requests counted.
    #[arg(long)]
    pub requests: u64,
    /// Segment requests counted.
    #[arg(long)]
    pub seg_requests: u64,
    /// h2load's clients for the playlist.
    #[arg(long)]
    pub clients: u64,
    /// h2load's clients for the segment.
    #[arg(long)]
    pub seg_clients: u64,
    /// Playlist requests per second per client.
    #[arg(long)]
    pub playlist_rps: u64,
    /// Segment requests per second per client.
    #[arg(long)]
    pub segment_rps: u64,
    /// The day of the run, as the section prints it (`date +%F`).
    #[arg(long)]
    pub date: String,
}

/// One profiled load: callgrind's listing and h2load's line.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// `cg.NAME.KIND.txt`.
    pub annotate: String,
    /// `cg.NAME.KIND.h2load`.
    pub h2load: String,
}

/// Each load's [`Profile`], by `NAME.KIND`.
pub type Profiles = BTreeMap<String, Profile>;

/// Reads the profiles of the work directory `work`.
pub fn profiles(work: &Path) -> anyhow::Result<Profiles> {
    let mut out = Profiles::new();
    for kind in KINDS {
        for name in NAMES {
            let file = |ext: &str| {
                let path = work.join(format!("cg.{name}.{kind}.{ext}"));
                std::fs::read_to_string(&path).with_context(|| path.display().to_string())
            };
            let profile = Profile {
                annotate: file("txt")?,
                h2load: file("h2load")?,
            };
            out.insert(format!("{name}.{kind}"), profile);
        }
    }
    Ok(out)
}

/// The text after the maximal run of `s`'s leading characters that `keep` takes, and that
/// run.
fn run_of(s: &str, keep: impl Fn(char) -> bool) -> (&str, &str) {
    let end = s.find(|c: char| !keep(c)).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// A listing's line `  1,234 ( 5.67%)  FUNCTION`: the count and the function.
fn count_line(line: &str) -> Option<(u64, &str)> {
    let (digits, rest) = run_of(line.trim_start(), |c| c.is_ascii_digit() || c == ',');
    let rest = rest.strip_prefix(" (")?;
    let (share, rest) = run_of(rest, |c| c == ' ' || c == '.' || c.is_ascii_digit());
    let function = rest.strip_prefix("%)  ")?;
    if digits.is_empty()
        || share.is_empty()
        || function.starts_with(char::is_whitespace)
        || function.is_empty()
    {
        return None;
    }
    Some((digits.replace(',', "").parse().ok()?, function))
}

/// The object of an annotated line, `… [OBJECT]` at its end (`\[(\S+?)\]$`).
fn object(line: &str) -> Option<&str> {
    let token = line.rsplit(char::is_whitespace).next()?.strip_suffix(']')?;
    let (_, inner) = token.split_once('[')?;
    (!inner.is_empty()).then_some(inner)
}

/// The crate of a registry path's file (`index.crates.io-HASH/NAME-1.2…`).
fn registry_crate(file: &str) -> Option<&str> {
    const REGISTRY: &str = "index.crates.io-";
    file.match_indices(REGISTRY).find_map(|(i, _)| {
        let (hash, rest) = run_of(
            &file[i + REGISTRY.len()..],
            |c| matches!(c, '0'..='9' | 'a'..='f'),
        );
        let rest = rest.strip_prefix('/').filter(|_| !hash.is_empty())?;
        let (name, _) = run_of(rest, |c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        // The shortest name followed by `-MAJOR.MINOR`.
        name.match_indices('-')
            .map(|(j, _)| j)
            .find(|&j| {
                let (major, after) = run_of(&rest[j + 1..], |c| c.is_ascii_digit());
                let minor = after
                    .strip_prefix('.')
                    .map(|a| run_of(a, |c| c.is_ascii_digit()).0);
                j > 0 && !major.is_empty() && minor.is_some_and(|m| !m.is_empty())
            })
            .map(|j| &rest[..j])
    })
}

/// The crate (or library) an annotated `file:function [object]` line belongs to.
fn group(line: &str) -> String {
    if line.contains("memmove") || line.contains("memcpy") {
        return "memcpy".to_owned();
    }
    let (file, func) = line.split_once(':').unwrap_or((line, ""));
    if let Some(name) = registry_crate(file) {
        return name.to_owned();
    }
    let std = file.contains("/rustc/");
    if !std && OURS.iter().any(|c| file.contains(&format!("/{c}/src/"))) {
        return "sealcast (our code)".to_owned();
    }
    // Without a source file (or inlined from std), by the function's path or symbol.
    let name = func
        .split(" as ")
        .next()
        .unwrap_or("")
        .trim_start_matches('<');
    let (path, rest) = run_of(name, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
    });
    if !path.is_empty() && rest.starts_with("::") {
        let krate = path.replace('_', "-");
        let krate = if OURS.contains(&krate.as_str()) {
            "sealcast (our code)".to_owned()
        } else {
            krate
        };
        return krate + if std { " (inlined std)" } else { "" };
    }
    for (prefix, krate) in [
        ("ring_core_", "ring"),
        ("mi_", "libmimalloc-sys"),
        ("_mi_", "libmimalloc-sys"),
    ] {
        if name.starts_with(prefix) {
            return krate.to_owned();
        }
    }
    object(line).map_or_else(
        || "other".to_owned(),
        |o| o.rsplit('/').next().unwrap_or(o).to_owned(),
    )
}

/// A listing's total and its instructions by group, in the order the groups first appear.
fn read(annotate: &str) -> (u64, Vec<(String, u64)>) {
    let mut total = 0;
    let mut parts: Vec<(String, u64)> = Vec::new();
    for line in annotate.lines() {
        let Some((count, function)) = count_line(line) else {
            continue;
        };
        if function.contains("PROGRAM TOTALS") {
            total = count;
            continue;
        }
        let g = group(function);
        match parts.iter_mut().find(|(name, _)| *name == g) {
            Some(part) => part.1 += count,
            None => parts.push((g, count)),
        }
    }
    (total, parts)
}

/// h2load's requests that succeeded (`N succeeded`), none when it does not say.
fn succeeded(h2load: &str) -> Option<u64> {
    h2load.match_indices(" succeeded").find_map(|(i, _)| {
        let before = &h2load[..i];
        let start = before
            .rfind(|c: char| !c.is_ascii_digit())
            .map_or(0, |j| j + 1);
        before[start..].parse().ok()
    })
}

/// The TLS h2load negotiated, "" when it does not say: `TLS Protocol: (\S+).*Cipher:
/// (\S+).*Application protocol: (\S+)`, the first protocol, then the last cipher that has
/// an application protocol after it, and the last of those.
fn tls(h2load: &str) -> String {
    let word_at = |i: usize| {
        let w = h2load[i..].split(char::is_whitespace).next().unwrap_or("");
        (!w.is_empty()).then_some((i, w))
    };
    let at = |label: &'static str| {
        h2load
            .match_indices(label)
            .filter_map(move |(i, _)| word_at(i + label.len()).map(|(j, w)| (i, j, w)))
    };
    let found = (|| {
        let (_, p_at, protocol) = at("TLS Protocol: ").next()?;
        let p_end = p_at + protocol.len();
        let (a_label, _, application) = at("Application protocol: ")
            .filter(|a| a.0 >= p_end)
            .last()?;
        let (_, _, cipher) = at("Cipher: ")
            .filter(|c| c.0 >= p_end && c.1 + c.2.len() <= a_label)
            .last()?;
        Some(format!("{protocol} {cipher} {application}"))
    })();
    found.unwrap_or_default()
}

/// The report of a run; `valgrind` is what `valgrind --version` printed, `notes` what
/// `bench/lb-profile-notes.md` says. Fails as the Python did when more than 5 % of a
/// load's requests failed.
pub fn report(
    profiles: &Profiles,
    run: &Run,
    valgrind: &str,
    notes: Option<&str>,
) -> anyhow::Result<Report> {
    let n = |kind: &str| {
        if kind == "playlist" {
            run.requests
        } else {
            run.seg_requests
        }
    };
    let mut kinds = Map::new();
    // Ours by crate per request, largest first, per kind.
    let mut by_crate: Vec<Vec<(String, f64)>> = Vec::new();
    let mut failed = Vec::new();
    for kind in KINDS {
        let nk = n(kind) as f64;
        let mut e = Map::new();
        for name in NAMES {
            let p = profiles
                .get(&format!("{name}.{kind}"))
                .with_context(|| format!("no profile of {name} {kind}"))?;
            let (total, mut parts) = read(&p.annotate);
            let ok = succeeded(&p.h2load).unwrap_or(0);
            // Under valgrind a health check can miss its timeout (ours: 800 ms) and take
            // the backend out of rotation for a moment; the few requests answered 503
            // meanwhile are counted (they cost less than a proxied one) and reported.
            if (ok as f64) < 0.95 * nk {
                anyhow::bail!(
                    "lb-profile: {name} {kind}: too many requests failed: {}",
                    p.h2load
                );
            }
            let memcpy = parts.iter().find(|(g, _)| g == "memcpy").map_or(0, |p| p.1) as f64;
            // Largest first; equal counts in the order they first appeared.
            parts.sort_by_key(|p| std::cmp::Reverse(p.1));
            parts.truncate(TOP);
            let top: Vec<(String, f64)> =
                parts.into_iter().map(|(g, c)| (g, c as f64 / nk)).collect();
            let lost = n(kind) as i64 - ok as i64;
            if lost != 0 {
                failed.push(format!("{name} {kind} {lost}"));
            }
            let by: Map<String, Value> = top.iter().map(|(g, v)| (g.clone(), json!(v))).collect();
            e.insert(
                name.to_owned(),
                json!({
                    "instructions": total, "per_request": total as f64 / nk, "failed": lost,
                    "tls": tls(&p.h2load), "memcpy_per_request": memcpy / nk,
                    "per_request_without_memcpy": (total as f64 - memcpy) / nk,
                    "by_crate_per_request": by,
                }),
            );
            if name == "sealcast" {
                by_crate.push(top);
            }
        }
        let ratio = |key: &str| {
            e["haproxy"][key].as_f64().unwrap_or(f64::NAN)
                / e["sealcast"][key].as_f64().unwrap_or(f64::NAN)
        };
        let (r, rw) = (ratio("per_request"), ratio("per_request_without_memcpy"));
        e.insert("ratio_haproxy_over_ours".to_owned(), json!(r));
        e.insert("ratio_without_memcpy".to_owned(), json!(rw));
        kinds.insert(kind.to_owned(), Value::Object(e));
    }
    let raw = json!({
        "benchmark": "load-balancer instructions per request under callgrind: sealcast lb (Pingora) vs HAProxy, TLS h2, sticky cookie, one nginx backend",
        "date": run.date,
        "clients": {"playlist": run.clients, "segment": run.seg_clients},
        "requests": {"playlist": run.requests, "segment": run.seg_requests},
        "rps": {"playlist": run.playlist_rps, "segment": run.segment_rps},
        "valgrind": valgrind.trim(),
        "kinds": kinds,
    });
    let count = |x: f64| grouped(Some(x), 0);
    let mut lines = vec![
        HEADING.to_owned(),
        String::new(),
        format!(
            "User-space instructions per request counted by valgrind's callgrind ({}), the same load on each: \
             h2load over TLS + h2 with the backend's sticky cookie, one nginx backend: {} playlist requests (193 B) from \
             {} clients at {} requests/s each, {} segment requests (200 KiB) from \
             {} clients at {}/s each; counted from just before the load to just after it \
             (the clients' TLS handshakes included), {}. Deterministic, so one run; the kernel's \
             share is not in it (bench/lb.sh's CPU-seconds are). Valgrind's virtual CPU has no SHA or VAES instructions, so \
             SHA-256 and AES-GCM are overstated for both. Valgrind also counts each byte a `rep movsb` copies as an \
             instruction (glibc's memcpy uses it for large copies on this CPU; checked by hand: a C program's 200 KiB memcpy counts 204,802), \
             where the CPU moves tens of bytes per cycle, so copies are overstated too: the figures without memcpy are the \
             closer measure of the code's own work.",
            valgrind.trim(),
            count(run.requests as f64),
            run.clients,
            run.playlist_rps,
            count(run.seg_requests as f64),
            run.seg_clients,
            run.segment_rps,
            run.date
        ),
        String::new(),
        "| request | sealcast lb | HAProxy | HAProxy / ours | without memcpy: sealcast lb | HAProxy | HAProxy / ours | TLS (ours / HAProxy) |".to_owned(),
        "|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    for kind in KINDS {
        let e = &raw["kinds"][kind];
        let x = |who: &str, key: &str| e[who][key].as_f64().unwrap_or(f64::NAN);
        lines.push(format!(
            "| {kind} | {} | {} | {:.2} | {} | {} | {:.2} | {} / {} |",
            count(x("sealcast", "per_request")),
            count(x("haproxy", "per_request")),
            e["ratio_haproxy_over_ours"].as_f64().unwrap_or(f64::NAN),
            count(x("sealcast", "per_request_without_memcpy")),
            count(x("haproxy", "per_request_without_memcpy")),
            e["ratio_without_memcpy"].as_f64().unwrap_or(f64::NAN),
            e["sealcast"]["tls"].as_str().unwrap_or(""),
            e["haproxy"]["tls"].as_str().unwrap_or(""),
        ));
    }
    if !failed.is_empty() {
        lines.push(String::new());
        lines.push(format!(
            "Requests answered with an error under valgrind (a health check that missed its timeout took the \
             backend out of rotation for a moment; counted in the per-request figure): {}.",
            failed.join(", ")
        ));
    }
    lines.extend([
        String::new(),
        "Ours by crate (exclusive instructions per request, the largest first):".to_owned(),
        String::new(),
        "| playlist | | segment | |".to_owned(),
        "|---|---|---|---|".to_owned(),
    ]);
    let (pl, sg) = (&by_crate[0], &by_crate[1]);
    for i in 0..pl.len().max(sg.len()) {
        let cell = |xs: &[(String, f64)]| {
            xs.get(i)
                .map_or_else(|| " | ".to_owned(), |(g, v)| format!("{g} | {}", count(*v)))
        };
        lines.push(format!("| {} | {} |", cell(pl), cell(sg)));
    }
    push_notes(&mut lines, notes);
    lines.push(String::new());
    lines.push(
        "Run it with `bench/lb-profile.sh [REQUESTS [CLIENTS]]`; raw numbers in `bench/out/lb-profile.json`."
            .to_owned(),
    );
    Ok(Report {
        section: lines.join("\n") + "\n",
        heading: "## Load-balancer instructions per request",
        after: None,
        raw,
        refusal: None,
    })
}

/// The lines the script prints of a run, one per kind of request.
pub fn summary(raw: &Value) -> Vec<String> {
    KINDS
        .iter()
        .map(|kind| {
            let e = &raw["kinds"][*kind];
            let x = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
            format!(
                "{kind}: ours {} instructions/request, HAProxy {} (HAProxy/ours {:.2}; without memcpy {:.2}); TLS {} / {}",
                grouped(Some(x(&e["sealcast"]["per_request"])), 0),
                grouped(Some(x(&e["haproxy"]["per_request"])), 0),
                x(&e["ratio_haproxy_over_ours"]),
                x(&e["ratio_without_memcpy"]),
                e["sealcast"]["tls"].as_str().unwrap_or(""),
                e["haproxy"]["tls"].as_str().unwrap_or(""),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Run {
        Run {
            requests: 20_000,
            seg_requests: 1000,
            clients: 100,
            seg_clients: 10,
            playlist_rps: 2,
            segment_rps: 1,
            date: "2026-11-30".to_owned(),
        }
    }

    fn testdata() -> Profiles {
        let files = [
            (
                "sealcast.playlist",
                include_str!("testdata/lb-profile/cg.sealcast.playlist.txt"),
                include_str!("testdata/lb-profile/cg.sealcast.playlist.h2load"),
            ),
            (
                "haproxy.playlist",
                include_str!("testdata/lb-profile/cg.haproxy.playlist.txt"),
                include_str!("testdata/lb-profile/cg.haproxy.playlist.h2load"),
            ),
            (
                "sealcast.segment",
                include_str!("testdata/lb-profile/cg.sealcast.segment.txt"),
                include_str!("testdata/lb-profile/cg.sealcast.segment.h2load"),
            ),
            (
                "haproxy.segment",
                include_str!("testdata/lb-profile/cg.haproxy.segment.txt"),
                include_str!("testdata/lb-profile/cg.haproxy.segment.h2load"),
            ),
        ];
        files
            .into_iter()
            .map(|(k, annotate, h2load)| {
                let profile = Profile {
                    annotate: annotate.to_owned(),
                    h2load: h2load.to_owned(),
                };
                (k.to_owned(), profile)
            })
            .collect()
    }

    /// Listings made from 42b87e2's committed figures, with failed requests, a load
    /// without its TLS lines and groups of equal counts, given to the Python report
    /// (`bench/lib/reports/lb_profile.py`, before this module), gave this section, these
    /// raw results and these lines.
    #[test]
    fn gives_the_section_and_raw_results_the_python_report_wrote() {
        let valgrind = "valgrind-3.19.0\n";
        let report = report(&testdata(), &run(), valgrind, Some("Notes.\n")).expect("a report");
        assert_eq!(
            report.section,
            include_str!("testdata/lb-profile-python.md")
        );
        let python: Value =
            serde_json::from_str(include_str!("testdata/lb-profile-python.json")).expect("JSON");
        // Compared as text would be: serde_json reads a float's last digit loosely, the same
        // loose way for the same text.
        let printed: Value = serde_json::from_str(&report.raw.to_string()).expect("JSON");
        assert_eq!(printed, python);
        assert_eq!(summary(&report.raw)[1], "segment: ours 1,173,095 instructions/request, HAProxy 932,650 (HAProxy/ours 0.80; without memcpy 0.93); TLS  / TLSv1.3 TLS_AES_128_GCM_SHA256 h2");
        let mut fewer = testdata();
        if let Some(p) = fewer.get_mut("haproxy.segment") {
            p.h2load = "requests: 1000 total, 949 succeeded, 51 failed".to_owned();
        }
        let refused = super::report(&fewer, &run(), valgrind, None).expect_err("refused");
        assert!(refused
            .to_string()
            .starts_with("lb-profile: haproxy segment: too many requests failed: "));
    }

    #[test]
    fn lines_are_grouped_by_crate_as_the_python_grouped_them() {
        let cases = [
            (
                "./string/memmove-vec.S:__memmove_avx [/lib/libc.so.6]",
                "memcpy",
            ),
            (
                "/r/index.crates.io-1949cf8c/tokio-util-0.7.1/src/x.rs:tokio_util::f [/b]",
                "tokio-util",
            ),
            (
                "/r/index.crates.io-1949cf8c/x86-0.47.0/src/x.rs:f [/b]",
                "x86",
            ),
            (
                "/w/sealcast/loadbalancer/src/proxy.rs:loadbalancer::f [/b]",
                "sealcast (our code)",
            ),
            (
                "/rustc/abc/library/core/src/ptr.rs:core::ptr::drop [/b]",
                "core (inlined std)",
            ),
            (
                "/rustc/abc/library/core/src/ptr.rs:plumbing::f [/b]",
                "sealcast (our code) (inlined std)",
            ),
            (
                "???:<alloc::vec::Vec<T> as core::ops::Drop>::drop [/b]",
                "alloc",
            ),
            ("???:ring_core_0_17_8_aes [/b]", "ring"),
            ("???:_mi_free [/b]", "libmimalloc-sys"),
            ("???:0x1234 [/usr/lib/libc.so.6]", "libc.so.6"),
            ("???:0x1234 [a b]", "other"),
            ("???:0x1234 [lib[1].so]", "lib[1].so"),
            ("???:0x1234", "other"),
        ];
        for (line, want) in cases {
            assert_eq!(group(line), want, "{line}");
        }
        assert_eq!(count_line("  1,234 ( 5.67%)  f [x]"), Some((1234, "f [x]")));
        assert_eq!(
            count_line("1 (100.0%)  PROGRAM TOTALS"),
            Some((1, "PROGRAM TOTALS"))
        );
        assert_eq!(count_line("  12 (bogus)  x"), None);
        assert_eq!(count_line("  12 ( 1.0%)   x"), None);
        assert_eq!(succeeded("a 12 succeeded, 3 succeeded"), Some(12));
        assert_eq!(succeeded("none"), None);
        assert_eq!(
            tls("TLS Protocol: TLSv1.3 Cipher: A Application protocol: h2 x"),
            "TLSv1.3 A h2"
        );
        assert_eq!(tls("Cipher: A Application protocol: h2"), "");
    }
}
