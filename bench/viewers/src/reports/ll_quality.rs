//! The report of `bench/ll-quality.sh` (issue 17): what the ingest's low-latency x264
//! settings cost in quality and speed, per encoded rung, against its settings without
//! parts. It was a Python report (`bench/lib/reports/ll_quality.py`, in git history before
//! this module), whose text it writes.

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::json;

use super::Report;

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## Low-latency x264 settings: quality cost";

/// The rungs the script encodes, in the table's order.
const RUNGS: [&str; 3] = ["720p", "480p", "360p"];

/// One encode: a rung in one mode (`plain` or `ll`), and what it reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Row {
    rung: String,
    mode: String,
    target_kbps: u64,
    /// The bitrate reached (kb/s, one decimal).
    kbps: f64,
    /// ffmpeg's average PSNR against the source (dB; infinite for identical pictures).
    psnr_db: Option<f64>,
    /// ffmpeg's SSIM, all planes.
    ssim: Option<f64>,
    /// Frames encoded per second (30 fps source, one decimal).
    encode_fps: f64,
}

impl Row {
    /// A line of the script's `encodes.tsv`: rung, mode, target kb/s, the encoded file's
    /// bytes, the encode's wall time in nanoseconds, and ffmpeg's `psnr` and `ssim` lines
    /// (tabs between the fields; the lines joined by spaces). `seconds`: the source's length.
    fn of_line(line: &str, seconds: u64) -> anyhow::Result<Row> {
        let fields: Vec<&str> = line.splitn(6, '\t').collect();
        let [rung, mode, target, bytes, nanos, metrics] = fields[..] else {
            bail!(
                "an encode line with {} fields, not 6: {line:?}",
                fields.len()
            );
        };
        let number = |what: &str, s: &str| -> anyhow::Result<u64> {
            s.trim().parse().with_context(|| format!("{what} {s:?}"))
        };
        let (target, bytes, nanos) = (
            number("target kb/s", target)?,
            number("bytes", bytes)?,
            number("nanoseconds", nanos)?,
        );
        anyhow::ensure!(seconds > 0 && nanos > 0, "an encode of no time: {line:?}");
        let dur = seconds as f64;
        Ok(Row {
            rung: rung.to_owned(),
            mode: mode.to_owned(),
            target_kbps: target,
            kbps: one_decimal(bytes as f64 * 8.0 / dur / 1000.0),
            psnr_db: after(metrics, "average:", true),
            ssim: after(metrics, "All:", false),
            encode_fps: one_decimal(dur * 30.0 / (nanos as f64 / 1e9)),
        })
    }
}

/// `x` rounded to one decimal as its text shows it (Python's `round(x, 1)`).
fn one_decimal(x: f64) -> f64 {
    format!("{x:.1}").parse().unwrap_or(x)
}

/// The number right after the first `key` in `text` (digits and dots; `inf` too when
/// `infinite`).
fn after(text: &str, key: &str, infinite: bool) -> Option<f64> {
    let rest = &text[text.find(key)? + key.len()..];
    if infinite && rest.starts_with("inf") {
        return Some(f64::INFINITY);
    }
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// `x` with `decimals` decimals; "-" when ffmpeg said nothing.
fn fixed(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.decimals$}"))
}

/// The report of a run of `seconds` seconds from its `encodes.tsv`.
pub fn report(encodes_tsv: &str, seconds: u64) -> anyhow::Result<Report> {
    let rows = encodes_tsv
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Row::of_line(l, seconds))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Report {
        section: section(&rows, seconds)?,
        heading: "## Low-latency x264 settings",
        after: None,
        raw: json!({ "seconds": seconds, "rows": rows }),
        refusal: None,
    })
}

fn section(rows: &[Row], seconds: u64) -> anyhow::Result<String> {
    let mut out = vec![
        HEADING.to_owned(),
        String::new(),
        format!(
            "`bench/ll-quality.sh {seconds}`: a {seconds} s 720p30 source (testsrc2 with noise) \
             encoded per rung at the ladder's bitrate with the ingest's x264 settings without \
             parts and with them (no B-frames, no lookahead, sliced threads). PSNR/SSIM against \
             the source scaled to the rung; encode speed on this 2-core machine."
        ),
        String::new(),
        "| rung | kb/s (target) | PSNR dB, plain → LL | Δ dB | SSIM, plain → LL | kb/s reached, \
         plain / LL | encode fps, plain / LL |"
            .to_owned(),
        "|---|---|---|---|---|---|---|".to_owned(),
    ];
    let of = |rung: &str, mode: &str| {
        rows.iter()
            .find(|r| r.rung == rung && r.mode == mode)
            .with_context(|| format!("no {mode} encode of {rung}"))
    };
    for rung in RUNGS {
        let (p, l) = (of(rung, "plain")?, of(rung, "ll")?);
        let delta = p.psnr_db.zip(l.psnr_db).map(|(p, l)| l - p);
        out.push(format!(
            "| {rung} | {} | {} → {} | {} | {} → {} | {:.1} / {:.1} | {:.1} / {:.1} |",
            p.target_kbps,
            fixed(p.psnr_db, 2),
            fixed(l.psnr_db, 2),
            delta.map_or_else(|| "-".to_owned(), |d| format!("{d:+.2}")),
            fixed(p.ssim, 4),
            fixed(l.ssim, 4),
            p.kbps,
            l.kbps,
            p.encode_fps,
            l.encode_fps,
        ));
    }
    Ok(out.join("\n") + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(rung: &str, mode: &str, target: u64, kbps: f64, psnr: f64, ssim: f64, fps: f64) -> Row {
        Row {
            rung: rung.to_owned(),
            mode: mode.to_owned(),
            target_kbps: target,
            kbps,
            psnr_db: Some(psnr),
            ssim: Some(ssim),
            encode_fps: fps,
        }
    }

    /// The raw results of the run in `docs/benchmarks.md` (17dfc89's
    /// bench/results/ll-quality.json) give the table the Python report wrote there.
    #[test]
    fn the_committed_run_gives_the_table_the_python_report_wrote() {
        let rows = [
            row("720p", "plain", 3000, 3010.3, 30.816333, 0.601209, 59.2),
            row("720p", "ll", 3000, 3026.2, 30.826774, 0.603381, 88.6),
            row("480p", "plain", 1200, 1206.6, 35.321831, 0.831258, 113.2),
            row("480p", "ll", 1200, 1218.0, 35.036448, 0.830541, 133.6),
            row("360p", "plain", 730, 733.5, 37.366776, 0.897878, 193.8),
            row("360p", "ll", 730, 736.1, 36.999247, 0.896902, 191.7),
        ];
        let text = section(&rows, 10).expect("a section");
        let table: Vec<&str> = text.lines().skip(6).collect();
        assert_eq!(
            table,
            [
                "| 720p | 3000 | 30.82 → 30.83 | +0.01 | 0.6012 → 0.6034 | 3010.3 / 3026.2 | 59.2 / 88.6 |",
                "| 480p | 1200 | 35.32 → 35.04 | -0.29 | 0.8313 → 0.8305 | 1206.6 / 1218.0 | 113.2 / 133.6 |",
                "| 360p | 730 | 37.37 → 37.00 | -0.37 | 0.8979 → 0.8969 | 733.5 / 736.1 | 193.8 / 191.7 |",
            ]
        );
        assert!(text.starts_with(
            "## Low-latency x264 settings: quality cost\n\n`bench/ll-quality.sh 10`: a 10 s "
        ));
        assert!(section(&rows[1..], 10).is_err(), "a missing encode is said");
    }

    #[test]
    fn an_encode_line_gives_its_row() {
        let line = "480p\tll\t1200\t1522500\t2500000000\t[Parsed_psnr_2 @ 0x5] PSNR y:34.1 \
                    u:40.2 v:40.9 average:35.036448 min:33.0 max:36.1 [Parsed_ssim_3 @ 0x5] \
                    SSIM Y:0.80 (7.0) U:0.9 (10.1) V:0.9 (10.4) All:0.830541 (7.70)";
        let r = Row::of_line(line, 10).expect("a row");
        assert_eq!(
            r,
            row("480p", "ll", 1200, 1218.0, 35.036448, 0.830541, 120.0)
        );
        let same = Row::of_line(&line.replace("average:35.036448", "average:inf"), 10);
        assert_eq!(same.expect("a row").psnr_db, Some(f64::INFINITY));
        let silent = Row::of_line("480p\tll\t1200\t1\t1\t", 10).expect("a row");
        assert_eq!((silent.psnr_db, silent.ssim), (None, None));
        assert!(Row::of_line("480p\tll\t1200", 10).is_err());
        assert!(Row::of_line("480p\tll\tmany\t1\t1\t", 10).is_err());
        assert!(Row::of_line("480p\tll\t1200\t1\t0\t", 10).is_err());
    }
}
