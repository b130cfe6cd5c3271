//! The report of `bench/ladder.sh`: the ingest's ladder transcoder against the ffmpeg CLI
//! on the same 60 s 720p30 FLV, run as fast as possible, interleaved. It was a Python
//! report (`bench/lib/reports/ladder.py`, in git history before this module), whose text it
//! writes.
//!
//! What the script leaves in its work directory: `runs` (one line a run, `ours` or
//! `ffmpeg`, then wall, user and system seconds), `quality` (one line a side and encoded
//! rung: `ours` or `ff`, the rung, the PSNR in dB against the source, empty when ffmpeg
//! printed none) and the first run's outputs (`ours1/RUNG/init.mp4` and `*.m4s`,
//! `ff1/RUNG_init.mp4` and `RUNG_*.m4s`), whose sizes [`outputs`] reads.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde_json::{json, Map, Value};

use super::Report;
use crate::spread::{spread, Spread};

/// The section's heading with LL-HLS parts (the default ladder).
pub const HEADING: &str = "## Ladder transcode (bench/ladder.sh)";
/// The section's heading without parts (`LADDER_PARTS=0`).
pub const HEADING_PLAIN: &str =
    "## Ladder transcode without parts (LADDER_PARTS=0 bench/ladder.sh)";

/// The rungs, in the order the tables list them.
const RUNGS: [&str; 4] = ["src", "720p", "480p", "360p"];
/// The source's length: bitrates are its bytes over this.
const SOURCE_S: f64 = 60.0;
/// Like for like: each rung's bitrate within this share of ffmpeg's...
const KBPS_TOLERANCE: f64 = 0.05;
/// ...and its PSNR within this many dB.
const PSNR_TOLERANCE_DB: f64 = 0.1;
/// The goals: ffmpeg's CPU-seconds over ours, and its wall seconds over ours.
const CPU_GOAL: f64 = 1.0;
const WALL_GOAL: f64 = 1.3;

/// Where the raw results go, with parts or without.
pub fn results_file(parts: bool) -> &'static str {
    if parts {
        "bench/out/ladder.json"
    } else {
        "bench/out/ladder-plain.json"
    }
}

/// What `bench/ladder.sh` measured with, as options.
#[derive(Debug, Clone, clap::Args)]
pub struct Run {
    /// The runs each side made.
    #[arg(long)]
    pub runs: u64,
    /// Whether the ladder had LL-HLS parts (the script's `LADDER_PARTS`, 1 or 0).
    #[arg(long)]
    pub parts: u8,
    /// The x264 parameters both sides were given (none without parts).
    #[arg(long, default_value = "", allow_hyphen_values = true)]
    pub x264: String,
    /// The day of the run, as the section prints it (`date +%F`).
    #[arg(long)]
    pub date: String,
}

/// One rung's output files of the first run: how many media segments, and all their
/// bytes with the init segment's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RungFiles {
    /// The media segments.
    pub segments: usize,
    /// Their bytes and the init segment's.
    pub bytes: u64,
}

/// Both sides' first-run outputs, per rung.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    /// `sealcast ladder`'s, by rung.
    pub sealcast: BTreeMap<String, RungFiles>,
    /// The ffmpeg CLI's, by rung.
    pub ffmpeg: BTreeMap<String, RungFiles>,
}

/// Reads the sizes of the first run's outputs in the work directory `work`.
pub fn outputs(work: &Path) -> anyhow::Result<Outputs> {
    let mut out = Outputs::default();
    for rung in RUNGS {
        let ours = work.join("ours1").join(rung);
        out.sealcast.insert(
            rung.to_owned(),
            files(
                &ours,
                |name| name == "init.mp4",
                |name| name.ends_with(".m4s"),
            )?,
        );
        let init = format!("{rung}_init.mp4");
        let prefix = format!("{rung}_");
        out.ffmpeg.insert(
            rung.to_owned(),
            files(
                &work.join("ff1"),
                |name| name == init,
                |name| name.starts_with(&prefix) && name.ends_with(".m4s"),
            )?,
        );
    }
    Ok(out)
}

/// The segments (`segment`) and init segment (`init`) among `dir`'s files; a directory
/// that is not there holds none.
fn files(
    dir: &Path,
    init: impl Fn(&str) -> bool,
    segment: impl Fn(&str) -> bool,
) -> anyhow::Result<RungFiles> {
    let mut found = RungFiles::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e).with_context(|| dir.display().to_string()),
    };
    for entry in entries {
        let entry = entry.with_context(|| dir.display().to_string())?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_segment = segment(&name);
        if is_segment || init(&name) {
            found.bytes += entry.metadata()?.len();
            found.segments += usize::from(is_segment);
        }
    }
    Ok(found)
}

/// One run of one side: wall seconds and CPU seconds (user and system).
#[derive(Debug, Clone, Copy)]
struct Timing {
    wall: f64,
    cpu: f64,
}

/// The `runs` file's lines: `ours` and `ffmpeg` runs, in order.
fn timings(runs: &str) -> anyhow::Result<(Vec<Timing>, Vec<Timing>)> {
    let (mut ours, mut ffmpeg) = (Vec::new(), Vec::new());
    for (i, line) in runs.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let [side, wall, user, sys] = fields[..] else {
            anyhow::bail!("runs line {}: not `SIDE WALL USER SYS`: {line:?}", i + 1);
        };
        let number = |s: &str| {
            s.parse::<f64>()
                .with_context(|| format!("runs line {}: {s:?}", i + 1))
        };
        let timing = Timing {
            wall: number(wall)?,
            cpu: number(user)? + number(sys)?,
        };
        match side {
            "ours" => ours.push(timing),
            "ffmpeg" => ffmpeg.push(timing),
            _ => {}
        }
    }
    Ok((ours, ffmpeg))
}

/// One rung's PSNR per side (`sealcast`, `ffmpeg`, in the order the file gives them; none
/// when ffmpeg printed none).
type Psnr = Vec<(&'static str, Option<f64>)>;

/// Each encoded rung's [`Psnr`], from the `quality` file.
fn psnr(quality: &str) -> anyhow::Result<BTreeMap<String, Psnr>> {
    let mut psnr: BTreeMap<String, Psnr> = BTreeMap::new();
    for (i, line) in quality.lines().enumerate() {
        let mut fields = line.split_whitespace();
        let (Some(side), Some(rung)) = (fields.next(), fields.next()) else {
            continue;
        };
        let value = fields
            .next()
            .map(|v| {
                v.parse::<f64>()
                    .with_context(|| format!("quality line {}: {v:?}", i + 1))
            })
            .transpose()?;
        let side = if side == "ours" { "sealcast" } else { "ffmpeg" };
        // A side given twice keeps its place with the later value (as a dict does).
        let sides = psnr.entry(rung.to_owned()).or_default();
        match sides.iter_mut().find(|(s, _)| *s == side) {
            Some(slot) => slot.1 = value,
            None => sides.push((side, value)),
        }
    }
    Ok(psnr)
}

/// The ratios `a[i] / b[i]` of the pairs.
fn ratios(a: &[f64], b: &[f64]) -> Vec<Option<f64>> {
    a.iter().zip(b).map(|(a, b)| Some(a / b)).collect()
}

/// A spread as the raw results give it.
fn spread_json(s: Option<Spread>) -> Value {
    s.map_or(
        Value::Null,
        |s| json!({"median": s.median, "min": s.min, "max": s.max}),
    )
}

/// The report of a run: `runs` and `quality` are the work directory's files of those
/// names, `outputs` the sizes of the first run's outputs, `notes` what
/// `bench/ladder-notes.md` says (the default ladder's section only).
pub fn report(
    runs: &str,
    quality: &str,
    outputs: &Outputs,
    run: &Run,
    notes: Option<&str>,
) -> anyhow::Result<Report> {
    let parts = run.parts != 0;
    let (ours, ffmpeg) = timings(runs)?;
    let cpu = |t: &[Timing]| t.iter().map(|t| t.cpu).collect::<Vec<_>>();
    let wall = |t: &[Timing]| t.iter().map(|t| t.wall).collect::<Vec<_>>();
    let cpu_ratio = spread(ratios(&cpu(&ffmpeg), &cpu(&ours)));
    let wall_ratio = spread(ratios(&wall(&ffmpeg), &wall(&ours)));
    // ffmpeg against itself, run after run: the noise floor (1.0 with one run).
    let against_itself = |xs: Vec<f64>| {
        let aa: Vec<Option<f64>> = xs.windows(2).map(|w| Some(w[0] / w[1])).collect();
        spread(if aa.is_empty() { vec![Some(1.0)] } else { aa })
    };
    let aa_cpu = against_itself(cpu(&ffmpeg));
    let aa_wall = against_itself(wall(&ffmpeg));
    let known = |xs: Vec<f64>| spread(xs.into_iter().map(Some));
    let (Some(rc), Some(rw), Some(aa_c), Some(aa_w)) = (cpu_ratio, wall_ratio, aa_cpu, aa_wall)
    else {
        anyhow::bail!("no run of both sides in the runs file");
    };
    let (Some(cpu_ours), Some(cpu_ff), Some(wall_ours), Some(wall_ff)) = (
        known(cpu(&ours)),
        known(cpu(&ffmpeg)),
        known(wall(&ours)),
        known(wall(&ffmpeg)),
    ) else {
        anyhow::bail!("no run of both sides in the runs file");
    };

    let kbps = |f: &RungFiles| f.bytes as f64 * 8.0 / SOURCE_S / 1000.0;
    let psnr = psnr(quality)?;
    let mut rungs_ours = Map::new();
    let mut rungs_ff = Map::new();
    let mut checks = Map::new();
    let mut rows = Vec::new();
    let mut like_for_like = true;
    for rung in RUNGS {
        let o = outputs.sealcast.get(rung).copied().unwrap_or_default();
        let f = outputs.ffmpeg.get(rung).copied().unwrap_or_default();
        let (o_kbps, f_kbps) = (kbps(&o), kbps(&f));
        rungs_ours.insert(
            rung.to_owned(),
            json!({"segments": o.segments, "kbps": o_kbps}),
        );
        rungs_ff.insert(
            rung.to_owned(),
            json!({"segments": f.segments, "kbps": f_kbps}),
        );
        let kbps_ratio = (f_kbps != 0.0).then(|| o_kbps / f_kbps);
        let kbps_ok = kbps_ratio.is_some_and(|r| (r - 1.0).abs() <= KBPS_TOLERANCE);
        let mut check = Map::new();
        check.insert("kbps_ratio".to_owned(), json!(kbps_ratio));
        check.insert("kbps_ok".to_owned(), json!(kbps_ok));
        let mut psnr_ok = true;
        let mut psnr_text = "— (copied)".to_owned();
        let mut delta_text = "—".to_owned();
        if let Some(sides) = psnr.get(rung) {
            let side = |name| sides.iter().find(|(s, _)| *s == name).and_then(|(_, v)| *v);
            let both = sides.len() == 2 && sides.iter().all(|(_, v)| v.is_some());
            let delta = both
                .then(|| Some(side("sealcast")? - side("ffmpeg")?))
                .flatten();
            psnr_ok = delta.is_some_and(|d| d.abs() <= PSNR_TOLERANCE_DB);
            let db: Map<String, Value> = sides
                .iter()
                .map(|(s, v)| ((*s).to_owned(), json!(v)))
                .collect();
            check.insert("psnr_db".to_owned(), Value::Object(db));
            check.insert("psnr_delta_db".to_owned(), json!(delta));
            check.insert("psnr_ok".to_owned(), json!(psnr_ok));
            if let (true, Some(a), Some(b)) = (both, side("sealcast"), side("ffmpeg")) {
                psnr_text = format!("{a:.2} / {b:.2}");
            }
            if let Some(d) = delta {
                delta_text = format!("{d:+.2}");
            }
        }
        like_for_like &= kbps_ok && psnr_ok;
        checks.insert(rung.to_owned(), Value::Object(check));
        let ratio = kbps_ratio.map_or_else(|| "—".to_owned(), |r| format!("{r:.3}"));
        rows.push(format!(
            "| {rung} | {} | {o_kbps:.0} | {} | {f_kbps:.0} | {ratio} | {psnr_text} | {delta_text} |",
            o.segments, f.segments
        ));
    }

    let results = results_file(parts);
    let mode = if parts {
        format!(
            "sealcast's default ladder (CMAF with LL-HLS parts: x264 without B-frames or \
             lookahead, slice threads), ffmpeg given the same x264 parameters (`{}`)",
            run.x264
        )
    } else {
        "the ladder without LL-HLS parts (`part_target = 0`): x264's own `veryfast` settings \
         on both sides"
            .to_owned()
    };
    let heading = if parts { HEADING } else { HEADING_PLAIN };
    let met = |x: f64, goal: f64| if x >= goal { "met" } else { "NOT met" };
    let mut lines = vec![
        heading.to_owned(),
        String::new(),
        format!(
            "60 s 720p30 FLV → src + 720p/480p/360p, CMAF (fMP4) on both sides, x264 \
             veryfast, 2 s closed GOPs, VBV, bicubic scaling, frames passed through; {mode}. \
             {} interleaved runs, {}, median (min–max).",
            run.runs, run.date
        ),
        String::new(),
        "| | sealcast | ffmpeg | ratio ffmpeg/ours | A/A noise | goal |".to_owned(),
        "|---|---|---|---|---|---|".to_owned(),
        format!(
            "| CPU-seconds | {:.1} | {:.1} | {:.2} ({:.2}–{:.2}) | {:.2} | ≥ 1.0 ({}: {:.3}) |",
            cpu_ours.median,
            cpu_ff.median,
            rc.median,
            rc.min,
            rc.max,
            aa_c.median,
            met(rc.median, CPU_GOAL),
            rc.median
        ),
        format!(
            "| wall seconds | {:.1} | {:.1} | {:.2} ({:.2}–{:.2}) | {:.2} | ≥ 1.3 ({}: {:.3}) |",
            wall_ours.median,
            wall_ff.median,
            rw.median,
            rw.min,
            rw.max,
            aa_w.median,
            met(rw.median, WALL_GOAL),
            rw.median
        ),
        String::new(),
        format!(
            "Like for like (run 1): bitrate within 5 % and PSNR against the source, scaled to \
             the rung, within 0.1 dB of ffmpeg's, per rung: **{}**.",
            if like_for_like {
                "yes"
            } else {
                "NO: the ratios above compare different work"
            }
        ),
        String::new(),
        "| rung | sealcast segments | sealcast kb/s | ffmpeg segments | ffmpeg kb/s | kb/s \
         ours/ffmpeg | PSNR dB ours / ffmpeg | Δ dB |"
            .to_owned(),
        "|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    lines.extend(rows);
    lines.push(String::new());
    if let (true, Some(notes)) = (parts, notes) {
        lines.push(notes.trim().to_owned());
        lines.push(String::new());
    }
    lines.push(format!(
        "Run it with `bench/ladder.sh [RUNS]` (`LADDER_PARTS=0` for the ladder without \
         parts); raw numbers in `{results}`."
    ));
    lines.push(String::new());

    let raw = json!({
        "benchmark": "ladder transcode, 60 s 720p30 H.264+AAC FLV, as fast as possible",
        "date": run.date,
        "runs": run.runs,
        "ll_hls_parts": parts,
        "x264_params_both": run.x264,
        "cpu_seconds": {"sealcast": spread_json(Some(cpu_ours)), "ffmpeg": spread_json(Some(cpu_ff))},
        "wall_seconds": {"sealcast": spread_json(Some(wall_ours)), "ffmpeg": spread_json(Some(wall_ff))},
        "ratio_ffmpeg_over_ours": {"cpu": spread_json(Some(rc)), "wall": spread_json(Some(rw))},
        "noise_floor_ffmpeg_aa": {"cpu": spread_json(Some(aa_c)), "wall": spread_json(Some(aa_w))},
        "rungs": {"sealcast": rungs_ours, "ffmpeg": rungs_ff},
        "checks": checks,
        "like_for_like": like_for_like,
    });
    Ok(Report {
        section: lines.join("\n"),
        heading,
        // The variant without parts goes right after the default's section.
        after: (!parts).then_some(HEADING),
        raw,
        refusal: (!like_for_like).then(|| {
            "ladder: the outputs are not like for like (bitrate or PSNR per rung differ \
             beyond the limits); see the table"
                .to_owned()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs_of(ours: [(usize, u64); 4], ffmpeg: [(usize, u64); 4]) -> Outputs {
        let side = |files: [(usize, u64); 4]| {
            RUNGS
                .iter()
                .zip(files)
                .map(|(rung, (segments, bytes))| {
                    ((*rung).to_owned(), RungFiles { segments, bytes })
                })
                .collect()
        };
        Outputs {
            sealcast: side(ours),
            ffmpeg: side(ffmpeg),
        }
    }

    const RUNS: &str =
        "ours 20.3 35.1 3.5\nffmpeg 27.2 38.0 3.5\nours 21.0 36.0 3.0\nffmpeg 26.0 37.0 4.0\n";
    const QUALITY: &str =
        "ours 720p 59.93\nff 720p 59.92\nours 480p 50.68\nff 480p 50.684\nours 360p 48.76\nff 360p 48.77\n";

    fn parts_run() -> Run {
        Run {
            runs: 2,
            parts: 1,
            x264: "bframes=0".to_owned(),
            date: "2026-11-30".to_owned(),
        }
    }

    /// Inputs the Python report (`bench/lib/reports/ladder.py`, before this module) was
    /// run on give the section it wrote, byte for byte.
    #[test]
    fn gives_the_section_the_python_report_wrote() {
        let outputs = outputs_of(
            [
                (30, 29_617_500),
                (30, 23_647_500),
                (30, 10_102_500),
                (30, 6_562_500),
            ],
            [
                (30, 29_587_500),
                (30, 23_602_500),
                (30, 10_057_500),
                (30, 6_517_500),
            ],
        );
        let report =
            report(RUNS, QUALITY, &outputs, &parts_run(), Some("Notes.\n\n")).expect("a report");
        assert_eq!(report.section, include_str!("testdata/ladder-python.md"));
        assert_eq!(report.heading, HEADING);
        assert_eq!(report.after, None);
        assert!(report.refusal.is_none());
        assert_eq!(report.raw["like_for_like"], json!(true));
    }

    #[test]
    fn outputs_that_differ_are_refused_after_the_section() {
        let outputs = outputs_of(
            [(30, 1000); 4],
            [(30, 1000), (30, 1000), (30, 2000), (30, 1000)],
        );
        let run = Run {
            parts: 0,
            ..parts_run()
        };
        let report = report(RUNS, QUALITY, &outputs, &run, Some("Notes.")).expect("a report");
        assert!(report.refusal.is_some());
        assert!(report
            .section
            .contains("**NO: the ratios above compare different work**"));
        assert!(
            !report.section.contains("Notes."),
            "notes are the default ladder's"
        );
        assert_eq!(report.heading, HEADING_PLAIN);
        assert_eq!(report.after, Some(HEADING));
        assert!(report.section.ends_with("`bench/out/ladder-plain.json`.\n"));
    }

    #[test]
    fn bad_lines_and_no_runs_are_errors() {
        let outputs = Outputs::default();
        assert!(report("ours 1 2\n", "", &outputs, &parts_run(), None).is_err());
        assert!(report("ours x 2 3\n", "", &outputs, &parts_run(), None).is_err());
        assert!(report("", "", &outputs, &parts_run(), None).is_err());
    }

    #[test]
    fn outputs_reads_both_sides_layouts() {
        let work =
            std::env::temp_dir().join(format!("sealcast-bench-ladder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let ours = work.join("ours1/720p");
        std::fs::create_dir_all(&ours).expect("ours");
        std::fs::write(ours.join("init.mp4"), [0; 10]).expect("init");
        std::fs::write(ours.join("1.m4s"), [0; 100]).expect("segment");
        std::fs::write(ours.join("1.0.m4s.part"), [0; 7]).expect("other");
        let ff = work.join("ff1");
        std::fs::create_dir_all(&ff).expect("ff");
        std::fs::write(ff.join("720p_init.mp4"), [0; 20]).expect("init");
        std::fs::write(ff.join("720p_0.m4s"), [0; 200]).expect("segment");
        std::fs::write(ff.join("480p_0.m4s"), [0; 50]).expect("other rung");
        let found = outputs(&work).expect("outputs");
        let _ = std::fs::remove_dir_all(&work);
        assert_eq!(
            found.sealcast["720p"],
            RungFiles {
                segments: 1,
                bytes: 110
            }
        );
        assert_eq!(
            found.ffmpeg["720p"],
            RungFiles {
                segments: 1,
                bytes: 220
            }
        );
        assert_eq!(
            found.ffmpeg["480p"],
            RungFiles {
                segments: 1,
                bytes: 50
            }
        );
        assert_eq!(found.sealcast["src"], RungFiles::default());
    }
}
