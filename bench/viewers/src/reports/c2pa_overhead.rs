//! The report of `bench/c2pa-overhead.sh` (issue 47): what C2PA live video costs a viewer
//! in bytes, per rung, beside what our statements cost. It was Python
//! (`bench/lib/reports/c2pa_overhead.py`, in git history before this module), whose
//! results and text it writes. `sealcast-bench sample c2pa-overhead` follows a live node's
//! rungs and counts what a viewer fetches ([`rungs`], [`listed`], [`Counts`]), printing a
//! [`Measurement`]: `{"seconds", "rungs": {RUNG: counts}}`, the rungs in the master
//! playlist's order; [`report`] writes the section from it.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::python::{python_number, Ordered};
use super::{push_notes, Report};

/// The section's heading in `docs/benchmarks.md`.
pub const HEADING: &str = "## C2PA bytes per viewer (bench/c2pa-overhead.sh)";

/// What the script ran with.
#[derive(Debug, clap::Args)]
pub struct Run {
    /// Seconds the playlists were followed.
    #[arg(long)]
    pub seconds: u64,
    /// The day of the run, as the section prints it (`date +%F`).
    #[arg(long)]
    pub date: String,
}

/// The rungs of a measurement, in their order.
#[derive(Debug, Deserialize)]
struct Measured {
    rungs: Ordered,
}

/// `part` as a share of `whole`, in %, with two decimals; "—" when there is no whole.
fn share(part: f64, whole: f64) -> String {
    if whole == 0.0 {
        "—".to_owned()
    } else {
        format!("{:.2} %", 100.0 * part / whole)
    }
}

/// The report of a run from what `measure` printed; `notes`, what
/// `bench/c2pa-overhead-notes.md` says.
pub fn report(measured: &str, run: &Run, notes: Option<&str>) -> anyhow::Result<Report> {
    let raw: Value = serde_json::from_str(measured).context("the measurement")?;
    let Measured { rungs } = serde_json::from_str(measured).context("the measurement")?;
    let secs = run.seconds;
    let mut lines = vec![
        HEADING.to_owned(),
        String::new(),
        format!(
            "`bench/c2pa-overhead.sh {secs}`, {}: `sealcast up`, the default ladder from a \
             720p30 3000 kb/s `sealcast source` publish, CMAF with 2 s segments and 0.333 s \
             parts; every part and segment listed during {secs} s fetched once with its \
             statement. C2PA is the VSI `emsg` boxes in the media (a part's own; a segment's \
             own and its parts'), as a share of the media bytes; statements are the `.sig` \
             files a viewer fetches beside them; the init segment carries the manifest once \
             per rendition (docs/provenance.md).",
            run.date
        ),
        String::new(),
        "| rung | parts | C2PA in parts | statements beside parts | segments | C2PA in segments \
         | statements beside segments | init segment | of it the C2PA box |"
            .to_owned(),
        "|---|---|---|---|---|---|---|---|---|".to_owned(),
    ];
    for (rung, o) in &rungs.0 {
        let get = |key: &str| {
            o.get(key)
                .filter(|v| v.is_number())
                .with_context(|| format!("rung {rung}: no {key}"))
        };
        let n = |key: &str| get(key).map(|v| v.as_f64().unwrap_or(0.0));
        lines.push(format!(
            "| {rung} | {} | {} | {} | {} | {} | {} | {} B | {} B |",
            python_number(get("parts")?),
            share(n("part_vsi")?, n("part_bytes")?),
            share(n("part_sig")?, n("part_bytes")?),
            python_number(get("segments")?),
            share(n("segment_vsi")?, n("segment_bytes")?),
            share(n("segment_sig")?, n("segment_bytes")?),
            python_number(get("init_bytes")?),
            python_number(get("init_c2pa")?),
        ));
    }
    push_notes(&mut lines, notes);
    Ok(Report {
        section: lines.join("\n") + "\n",
        heading: "## C2PA bytes per viewer",
        after: None,
        raw,
        refusal: None,
    })
}

/// What a viewer of a rung fetched, as `measure` counts it (its fields in this order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Parts fetched.
    pub parts: u64,
    /// Their bytes.
    pub part_bytes: u64,
    /// The VSI `emsg` boxes' bytes in them.
    pub part_vsi: u64,
    /// Their statements' bytes.
    pub part_sig: u64,
    /// Segments fetched.
    pub segments: u64,
    /// Their bytes.
    pub segment_bytes: u64,
    /// The VSI `emsg` boxes' bytes in them.
    pub segment_vsi: u64,
    /// Their statements' bytes.
    pub segment_sig: u64,
    /// The init segment's bytes.
    pub init_bytes: u64,
    /// Its C2PA `uuid` box's.
    pub init_c2pa: u64,
}

impl Counts {
    /// Counts a fetched part (`part`) or segment with its statement.
    pub fn fetched(&mut self, part: bool, media: &[u8], statement: &[u8]) {
        let (n, bytes, vsi, sig) = if part {
            (
                &mut self.parts,
                &mut self.part_bytes,
                &mut self.part_vsi,
                &mut self.part_sig,
            )
        } else {
            (
                &mut self.segments,
                &mut self.segment_bytes,
                &mut self.segment_vsi,
                &mut self.segment_sig,
            )
        };
        *n += 1;
        *bytes += media.len() as u64;
        *vsi += vsi_bytes(media);
        *sig += statement.len() as u64;
    }
}

/// What `measure` prints: the seconds followed and each rung's counts, in the master
/// playlist's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The seconds the playlists were followed.
    pub seconds: f64,
    /// Each rung's counts.
    pub rungs: Vec<(String, Counts)>,
}

impl Serialize for Measurement {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeStruct};
        struct Rungs<'a>(&'a [(String, Counts)]);
        impl Serialize for Rungs<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (rung, counts) in self.0 {
                    map.serialize_entry(rung, counts)?;
                }
                map.end()
            }
        }
        let mut s = serializer.serialize_struct("Measurement", 2)?;
        s.serialize_field("seconds", &self.seconds)?;
        s.serialize_field("rungs", &Rungs(&self.rungs))?;
        s.end()
    }
}

/// The scheme of a C2PA verifiable segment info `emsg` box.
const SCHEME: &[u8] = b"urn:c2pa:verifiable-segment-info";
/// The type of the C2PA `uuid` box.
const C2PA_UUID: [u8; 16] = [
    0xd8, 0xfe, 0xc3, 0xd6, 0x1b, 0x0e, 0x48, 0x3c, 0x92, 0x97, 0x58, 0x28, 0x87, 0x7e, 0xc4, 0x81,
];

/// (type, offset, size) of every top-level box of `data`; stops at one that does not fit.
fn boxes(data: &[u8]) -> Vec<([u8; 4], usize, usize)> {
    let mut found = Vec::new();
    let mut at = 0usize;
    while at + 8 <= data.len() {
        let word = |from: usize, n: usize| {
            data[from..from + n]
                .iter()
                .fold(0u128, |v, b| v << 8 | u128::from(*b))
        };
        let mut size = word(at, 4);
        let kind = [data[at + 4], data[at + 5], data[at + 6], data[at + 7]];
        if size == 1 && at + 16 <= data.len() {
            size = word(at + 8, 8);
        }
        let Ok(size) = usize::try_from(size) else {
            break;
        };
        if size < 8 || at.saturating_add(size) > data.len() {
            break;
        }
        found.push((kind, at, size));
        at += size;
    }
    found
}

/// The bytes of `data`'s `emsg` boxes of the C2PA VSI scheme.
pub fn vsi_bytes(data: &[u8]) -> u64 {
    boxes(data)
        .into_iter()
        .filter(|(kind, at, _)| {
            kind == b"emsg" && data.get(at + 12..at + 12 + SCHEME.len()) == Some(SCHEME)
        })
        .map(|(_, _, size)| size as u64)
        .sum()
}

/// The bytes of `data`'s C2PA `uuid` boxes.
pub fn c2pa_box(data: &[u8]) -> u64 {
    boxes(data)
        .into_iter()
        .filter(|(kind, at, _)| {
            kind == b"uuid" && data.get(at + 8..at + 24) == Some(&C2PA_UUID[..])
        })
        .map(|(_, _, size)| size as u64)
        .sum()
}

/// The rungs a master playlist lists (each URI's first path segment), in its order.
pub fn rungs(master: &str) -> Vec<String> {
    master
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split('/').next().unwrap_or_default().to_owned())
        .collect()
}

/// The parts (`true`) and segments a media playlist lists, by URI, in its order.
pub fn listed(playlist: &str) -> Vec<(bool, String)> {
    playlist
        .lines()
        .filter_map(|line| {
            if line.starts_with("#EXT-X-PART:") && line.contains("URI=") {
                let uri = line.split("URI=\"").nth(1)?.split('"').next()?;
                Some((true, uri.to_owned()))
            } else if !line.is_empty() && !line.starts_with('#') {
                Some((false, line.to_owned()))
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A measurement of the default ladder (a rung with nothing fetched among them) gives
    /// the section the Python report (`c2pa_overhead.py report`) wrote on it, the rungs in
    /// the measurement's order.
    #[test]
    fn gives_the_section_the_python_report_wrote() {
        let measured = include_str!("testdata/c2pa-overhead-measure.json");
        let run = Run {
            seconds: 60,
            date: "2026-11-30".to_owned(),
        };
        let report = report(measured, &run, Some("Notes.\n")).expect("a report");
        assert_eq!(
            report.section,
            include_str!("testdata/c2pa-overhead-python.md")
        );
        let raw: Value = serde_json::from_str(measured).expect("JSON");
        assert_eq!(report.raw, raw);
        let broken = r#"{"seconds": 1.0, "rungs": {"src": {"parts": 1}}}"#;
        assert!(super::report(broken, &run, None).is_err());
    }

    fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let size = u32::try_from(8 + payload.len()).expect("a small box");
        [&size.to_be_bytes()[..], kind, payload].concat()
    }

    /// Boxes as the stand-in node of the check against the Python served them: the sizes
    /// `c2pa_overhead.py`'s `c2pa_box` and `vsi_bytes` gave.
    #[test]
    fn counts_the_c2pa_boxes_as_the_python_did() {
        let large = [
            &1u32.to_be_bytes()[..],
            b"free",
            &56u64.to_be_bytes(),
            &[b'f'; 40],
        ]
        .concat();
        let init = [
            mp4_box(b"ftyp", b"isomisomisomisom"),
            large,
            mp4_box(b"uuid", &[&C2PA_UUID[..], &[b'm'; 900]].concat()),
            mp4_box(b"uuid", &[b'x'; 66]),
            mp4_box(b"moov", &[b'o'; 700]),
        ]
        .concat();
        assert_eq!(c2pa_box(&init), 924);
        assert_eq!(vsi_bytes(&init), 0);
        let emsg = |scheme: &[u8]| {
            mp4_box(
                b"emsg",
                &[&[0u8; 4][..], scheme, &[0], &[b'v'; 300]].concat(),
            )
        };
        let part = [
            emsg(SCHEME),
            emsg(b"urn:other:scheme"),
            mp4_box(b"mdat", &[0; 3000]),
            emsg(SCHEME),
            b"\0\0\0\x05junk".to_vec(),
            emsg(SCHEME),
        ]
        .concat();
        // The walk stops at the box that does not fit: the last VSI is not counted.
        assert_eq!(vsi_bytes(&part), 2 * 345);
        assert_eq!(vsi_bytes(&emsg(SCHEME)[..100]), 0);
        assert_eq!(c2pa_box(&[]), 0);
    }

    #[test]
    fn reads_playlists_and_prints_the_counts_in_order() {
        let master = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nsrc/index.m3u8\n\n360p/index.m3u8\n";
        assert_eq!(rungs(master), ["src", "360p"]);
        let media = "#EXTM3U\n#EXTINF:2.0,\ns0.m4s\n#EXT-X-PART:DURATION=0.333,URI=\"p3.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p4.m4s\"\n";
        assert_eq!(
            listed(media),
            [(false, "s0.m4s".to_owned()), (true, "p3.m4s".to_owned())]
        );
        let mut counts = Counts::default();
        counts.fetched(true, &[0; 10], &[0; 3]);
        counts.fetched(false, &[0; 20], &[0; 4]);
        let measured = Measurement {
            seconds: 5.0,
            rungs: vec![
                ("src".to_owned(), counts.clone()),
                ("360p".to_owned(), counts),
            ],
        };
        let line = serde_json::to_string(&measured).expect("JSON");
        assert_eq!(
            line,
            r#"{"seconds":5.0,"rungs":{"src":{"parts":1,"part_bytes":10,"part_vsi":0,"part_sig":3,"segments":1,"segment_bytes":20,"segment_vsi":0,"segment_sig":4,"init_bytes":0,"init_c2pa":0},"360p":{"parts":1,"part_bytes":10,"part_vsi":0,"part_sig":3,"segments":1,"segment_bytes":20,"segment_vsi":0,"segment_sig":4,"init_bytes":0,"init_c2pa":0}}}"#
        );
    }
}
