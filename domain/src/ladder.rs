//! The bitrate ladder: which renditions a stream is turned into, and how each is encoded.
//!
//! A ladder is configuration (TOML, see `sealcast.example.toml`); [`Ladder::plan`] turns it
//! into the rungs that make sense for one source, skipping rungs taller than the source.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{DomainError, RenditionName};

/// What one rung of the ladder is made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RungKind {
    /// The publisher's own H.264, cut into segments but not re-encoded.
    Source,
    /// Scaled to `height` (width follows the source's aspect ratio) and encoded with x264.
    Encode {
        /// Output height in pixels; the rung is skipped for sources shorter than this.
        height: u32,
        /// Target video bitrate in kb/s.
        bitrate_kbps: u32,
        /// VBV maximum rate in kb/s, so that BANDWIDTH in the master playlist is honest.
        maxrate_kbps: u32,
        /// VBV buffer size in kbit.
        bufsize_kbits: u32,
    },
}

/// One rung as configured. (No `deny_unknown_fields` here: serde does not support it
/// together with `flatten`; [`RungKind`] rejects unknown keys instead.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rung {
    /// The rendition name in URLs (`720p`).
    pub name: RenditionName,
    /// How the rung is produced.
    #[serde(flatten)]
    pub kind: RungKind,
}

/// The whole ladder and the segmenting rules every rung shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ladder {
    /// Target segment duration; segments are cut at the first source keyframe at or after it.
    #[serde(with = "secs_f64")]
    pub segment_target: Duration,
    /// How many segments a live media playlist lists.
    pub window: usize,
    /// x264 preset for every encoded rung.
    pub preset: String,
    /// How segments are packaged: `cmaf` (the default) or `ts`.
    #[serde(default)]
    pub format: crate::SegmentFormat,
    /// LL-HLS part target with CMAF (default 0.333 s); `0` turns parts off. Parts are cut
    /// at the first frame at or after it, and at every segment boundary.
    #[serde(default = "default_part_target", with = "secs_f64")]
    pub part_target: Duration,
    /// The rungs, in priority order: when encoding falls behind real time, the last encoded
    /// rung is shed first.
    pub rungs: Vec<Rung>,
}

/// The default LL-HLS part target: a third of a second.
pub const DEFAULT_PART_TARGET: Duration = Duration::from_millis(333);

fn default_part_target() -> Duration {
    DEFAULT_PART_TARGET
}

mod secs_f64 {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

fn encode(name: &str, height: u32, bitrate_kbps: u32) -> Rung {
    Rung {
        name: RenditionName::new(name)
            .unwrap_or_else(|_| unreachable!("static rung names are valid")),
        kind: RungKind::Encode {
            height,
            bitrate_kbps,
            maxrate_kbps: bitrate_kbps * 107 / 100,
            bufsize_kbits: bitrate_kbps * 3 / 2,
        },
    }
}

impl Default for Ladder {
    /// `src` + 720p 3000k + 480p 1200k + 360p 730k, 2 s segments, 6 in the live window.
    fn default() -> Self {
        Ladder {
            segment_target: Duration::from_secs(2),
            window: 6,
            preset: "veryfast".to_owned(),
            format: crate::SegmentFormat::Cmaf,
            part_target: DEFAULT_PART_TARGET,
            rungs: vec![
                Rung {
                    name: RenditionName::new("src")
                        .unwrap_or_else(|_| unreachable!("static rung names are valid")),
                    kind: RungKind::Source,
                },
                encode("720p", 720, 3000),
                encode("480p", 480, 1200),
                encode("360p", 360, 730),
            ],
        }
    }
}

/// A rung planned for one particular source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRung {
    /// The rendition name.
    pub name: RenditionName,
    /// Source passthrough or an encode at `width`×`height`.
    pub kind: RungKind,
    /// Output width (even), following the source's aspect ratio.
    pub width: u32,
    /// Output height (even).
    pub height: u32,
}

impl Ladder {
    /// The part target when LL-HLS parts are made: CMAF with a part target above zero.
    pub fn parts(&self) -> Option<Duration> {
        (self.format == crate::SegmentFormat::Cmaf && !self.part_target.is_zero())
            .then_some(self.part_target)
    }

    /// Checks what serde cannot: unique names, sane numbers, at most one source rung.
    pub fn validate(&self) -> Result<(), DomainError> {
        let bad = |m: String| Err(DomainError::InvalidLadder(m));
        if self.rungs.is_empty() {
            return bad("the ladder has no rungs".into());
        }
        if !(0.5..=30.0).contains(&self.segment_target.as_secs_f64()) {
            return bad("segment_target must be between 0.5 and 30 seconds".into());
        }
        if !self.part_target.is_zero()
            && !(0.1..=self.segment_target.as_secs_f64() / 2.0)
                .contains(&self.part_target.as_secs_f64())
        {
            return bad(
                "part_target must be 0 (no parts) or 0.1 s to half of segment_target".into(),
            );
        }
        if !(2..=1000).contains(&self.window) {
            return bad("window must be between 2 and 1000 segments".into());
        }
        const PRESETS: [&str; 10] = [
            "ultrafast",
            "superfast",
            "veryfast",
            "faster",
            "fast",
            "medium",
            "slow",
            "slower",
            "veryslow",
            "placebo",
        ];
        if !PRESETS.contains(&self.preset.as_str()) {
            return bad(format!("unknown x264 preset {:?}", self.preset));
        }
        let mut seen = std::collections::HashSet::new();
        let mut sources = 0;
        for rung in &self.rungs {
            if !seen.insert(rung.name.as_str()) {
                return bad(format!("rung {} appears twice", rung.name));
            }
            match rung.kind {
                RungKind::Source => sources += 1,
                RungKind::Encode {
                    height,
                    bitrate_kbps,
                    maxrate_kbps,
                    bufsize_kbits,
                } => {
                    if !(64..=4320).contains(&height) {
                        return bad(format!("rung {}: height must be 64..=4320", rung.name));
                    }
                    if !(50..=100_000).contains(&bitrate_kbps) {
                        return bad(format!(
                            "rung {}: bitrate_kbps must be 50..=100000",
                            rung.name
                        ));
                    }
                    if maxrate_kbps < bitrate_kbps || bufsize_kbits == 0 {
                        return bad(format!(
                            "rung {}: maxrate_kbps must be >= bitrate_kbps and bufsize_kbits > 0",
                            rung.name
                        ));
                    }
                }
            }
        }
        if sources > 1 {
            return bad("at most one rung may be the source".into());
        }
        Ok(())
    }

    /// The rungs to produce for a `width`×`height` source: encoded rungs taller than the
    /// source are skipped (upscaling wastes bits and shows nothing new).
    pub fn plan(&self, width: u32, height: u32) -> Vec<PlannedRung> {
        self.rungs
            .iter()
            .filter_map(|rung| match rung.kind {
                RungKind::Source => Some(PlannedRung {
                    name: rung.name.clone(),
                    kind: rung.kind.clone(),
                    width,
                    height,
                }),
                RungKind::Encode { height: h, .. } if h <= height && width > 0 => {
                    let w = scaled_width(width, height, h);
                    Some(PlannedRung {
                        name: rung.name.clone(),
                        kind: rung.kind.clone(),
                        width: w,
                        height: h & !1,
                    })
                }
                RungKind::Encode { .. } => None,
            })
            .collect()
    }
}

/// Width for `out_h` keeping the aspect of `in_w`×`in_h`, rounded to an even number.
pub fn scaled_width(in_w: u32, in_h: u32, out_h: u32) -> u32 {
    if in_h == 0 {
        return 0;
    }
    let w = (u64::from(in_w) * u64::from(out_h) + u64::from(in_h) / 2) / u64::from(in_h);
    let even = (w + 1) & !1;
    u32::try_from(even.max(2)).unwrap_or(u32::MAX - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_ladder_is_valid_and_plans_all_rungs_for_720p() {
        let ladder = Ladder::default();
        ladder.validate().expect("default is valid");
        let plan = ladder.plan(1280, 720);
        let names: Vec<_> = plan.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["src", "720p", "480p", "360p"]);
        assert_eq!((plan[2].width, plan[2].height), (854, 480));
        assert_eq!((plan[3].width, plan[3].height), (640, 360));
    }

    #[test]
    fn smaller_source_skips_taller_rungs() {
        let plan = Ladder::default().plan(854, 480);
        let names: Vec<_> = plan.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["src", "480p", "360p"]);
    }

    #[test]
    fn rejects_duplicate_names_and_bad_numbers() {
        let mut l = Ladder::default();
        l.rungs.push(l.rungs[1].clone());
        assert!(l.validate().is_err());
        let l = Ladder {
            window: 0,
            ..Ladder::default()
        };
        assert!(l.validate().is_err());
        let l = Ladder {
            preset: "warp".into(),
            ..Ladder::default()
        };
        assert!(l.validate().is_err());
        let l = Ladder {
            part_target: Duration::from_millis(50),
            ..Ladder::default()
        };
        assert!(l.validate().is_err());
        let l = Ladder {
            part_target: Duration::from_millis(1500),
            ..Ladder::default()
        };
        assert!(l.validate().is_err());
        let l = Ladder {
            part_target: Duration::ZERO,
            ..Ladder::default()
        };
        assert!(l.validate().is_ok() && l.parts().is_none());
        let l = Ladder {
            format: crate::SegmentFormat::Ts,
            ..Ladder::default()
        };
        assert!(l.validate().is_ok() && l.parts().is_none());
        assert_eq!(Ladder::default().parts(), Some(DEFAULT_PART_TARGET));
    }

    proptest! {
        #[test]
        fn planned_sizes_are_even_and_never_upscale(w in 16u32..4000, h in 16u32..3000) {
            for rung in Ladder::default().plan(w, h) {
                if matches!(rung.kind, RungKind::Encode { .. }) {
                    prop_assert_eq!(rung.width % 2, 0);
                    prop_assert_eq!(rung.height % 2, 0);
                    prop_assert!(rung.height <= h);
                }
            }
        }
    }
}
