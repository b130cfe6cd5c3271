//! What a segment is: a few seconds of one rendition, starting with a keyframe, identified
//! by its media sequence number. Segments of one sequence number cover the same time in
//! every rendition, so a player can switch renditions at any boundary.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{DomainError, RenditionName, SessionId, StreamName};

/// Everything about a segment except its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentMeta {
    /// The stream it belongs to.
    pub stream: StreamName,
    /// The rendition it belongs to.
    pub rendition: RenditionName,
    /// The publish session that produced it.
    pub session: SessionId,
    /// Media sequence number; keeps counting across publisher reconnects.
    pub sequence: u64,
    /// Discontinuity sequence number: how many publisher reconnects came before it.
    pub discontinuity_sequence: u64,
    /// True for the first segment after a reconnect (`#EXT-X-DISCONTINUITY` before it).
    pub discontinuity: bool,
    /// Exact duration, from the presentation times of its boundaries.
    pub duration: Duration,
    /// Presentation time of its first frame, in 90 kHz ticks; equal in every rendition.
    pub start_pts_90k: u64,
}

/// A finished segment: its description and the exact bytes every edge will serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Where it belongs and how long it lasts.
    pub meta: SegmentMeta,
    /// MPEG-TS bytes, shared without copying between everyone who serves them.
    pub bytes: Bytes,
}

/// Everything about an LL-HLS partial segment except its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartMeta {
    /// The stream it belongs to.
    pub stream: StreamName,
    /// The rendition it belongs to.
    pub rendition: RenditionName,
    /// The publish session that produced it.
    pub session: SessionId,
    /// Media sequence number of the segment it is part of.
    pub sequence: u64,
    /// Its index within that segment, from 0.
    pub index: u32,
    /// Discontinuity sequence number of its segment.
    pub discontinuity_sequence: u64,
    /// Whether it starts with a keyframe (`INDEPENDENT=YES`).
    pub independent: bool,
    /// Exact duration.
    pub duration: Duration,
    /// When its first frame was captured, in Unix milliseconds by the ingest's clock
    /// (`EXT-X-PROGRAM-DATE-TIME` of a segment is its part 0's).
    pub program_date_time_ms: u64,
}

/// A finished part: one CMAF fragment. A segment's bytes are its parts' bytes in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Where it belongs and how long it lasts.
    pub meta: PartMeta,
    /// The fragment's bytes (`moof` + `mdat`).
    pub bytes: Bytes,
}

/// How a rendition's segments are packaged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentFormat {
    /// CMAF: an init segment (`init.mp4`) and fragmented-MP4 segments (`{seq}.m4s`),
    /// with LL-HLS parts when a part target is set. The default.
    #[default]
    Cmaf,
    /// MPEG-TS segments (`{seq}.ts`), for old players; no parts.
    Ts,
}

impl SegmentFormat {
    /// The file extension of a segment, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Cmaf => "m4s",
            Self::Ts => "ts",
        }
    }
}

/// A CMAF init segment (`ftyp` + `moov`): what a player needs before any fragment of the
/// rendition. It travels inside the signed rendition description, as hex, so it is
/// verified with it. At most [`InitSegment::MAX_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InitSegment(Bytes);

impl InitSegment {
    /// Largest init segment (an H.264 + AAC init segment is under 1 KB; its C2PA
    /// manifest, certificate included, adds about 2.5 KB).
    pub const MAX_LEN: usize = 16 * 1024;

    /// Checks the size; nothing else is assumed about the bytes.
    pub fn new(bytes: Bytes) -> Result<Self, DomainError> {
        if bytes.is_empty() || bytes.len() > Self::MAX_LEN {
            return Err(DomainError::InvalidInitSegment {
                reason: "give 1 to 16384 bytes",
            });
        }
        Ok(InitSegment(bytes))
    }

    /// The bytes, as served at `init.mp4`.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }
}

impl TryFrom<String> for InitSegment {
    type Error = DomainError;

    fn try_from(s: String) -> Result<Self, DomainError> {
        if s.len() > 2 * Self::MAX_LEN {
            return Err(DomainError::InvalidInitSegment {
                reason: "give 1 to 4096 bytes",
            });
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DomainError::InvalidInitSegment {
                reason: "give the bytes as lowercase hex",
            });
        }
        let bytes = hex::decode(&s).map_err(|_| DomainError::InvalidInitSegment {
            reason: "give the bytes as lowercase hex",
        })?;
        InitSegment::new(Bytes::from(bytes))
    }
}

impl From<InitSegment> for String {
    fn from(init: InitSegment) -> String {
        hex::encode(&init.0)
    }
}

/// What a master playlist says about one rendition. Deserializing checks every field that
/// a playlist will carry (see [`RenditionInfo::check`]): it arrives from another process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawRenditionInfo")]
pub struct RenditionInfo {
    /// The rendition's name (its rung's).
    pub name: RenditionName,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Frames per second, as measured from the segments.
    pub frame_rate: f64,
    /// RFC 6381 codecs, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: Codecs,
    /// Its CMAF init segment; `None` for MPEG-TS renditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitSegment>,
    /// The LL-HLS part target in microseconds (`EXT-X-PART-INF`), when the rendition is
    /// cut into parts; 0.1 s to 15 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_target_us: Option<u64>,
}

/// Largest picture side a rendition may declare.
pub const MAX_PICTURE_SIDE: u32 = 16_384;
/// Highest frame rate a rendition may declare.
pub const MAX_FRAME_RATE: f64 = 1000.0;

impl RenditionInfo {
    /// How its segments are packaged: CMAF when it has an init segment.
    pub fn format(&self) -> SegmentFormat {
        if self.init.is_some() {
            SegmentFormat::Cmaf
        } else {
            SegmentFormat::Ts
        }
    }

    /// Refuses sizes of zero or over [`MAX_PICTURE_SIDE`] and a frame rate that is not a
    /// finite number in (0, [`MAX_FRAME_RATE`]]: what `RESOLUTION` and `FRAME-RATE` could
    /// not honestly say.
    pub fn check(&self) -> Result<(), DomainError> {
        let bad = |reason| Err(DomainError::InvalidRendition { reason });
        if !(1..=MAX_PICTURE_SIDE).contains(&self.width)
            || !(1..=MAX_PICTURE_SIDE).contains(&self.height)
        {
            return bad("width and height must be 1 to 16384 pixels");
        }
        if !(self.frame_rate.is_finite()
            && self.frame_rate > 0.0
            && self.frame_rate <= MAX_FRAME_RATE)
        {
            return bad("the frame rate must be a number above 0 and at most 1000");
        }
        if let Some(us) = self.part_target_us {
            if !(100_000..=15_000_000).contains(&us) {
                return bad("the part target must be 0.1 s to 15 s");
            }
            if self.init.is_none() {
                return bad("only a CMAF rendition (with an init segment) has parts");
            }
        }
        Ok(())
    }
}

/// [`RenditionInfo`] as it arrives, before [`RenditionInfo::check`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRenditionInfo {
    name: RenditionName,
    width: u32,
    height: u32,
    frame_rate: f64,
    codecs: Codecs,
    #[serde(default)]
    init: Option<InitSegment>,
    #[serde(default)]
    part_target_us: Option<u64>,
}

impl TryFrom<RawRenditionInfo> for RenditionInfo {
    type Error = DomainError;

    fn try_from(raw: RawRenditionInfo) -> Result<Self, DomainError> {
        let info = RenditionInfo {
            name: raw.name,
            width: raw.width,
            height: raw.height,
            frame_rate: raw.frame_rate,
            codecs: raw.codecs,
            init: raw.init,
            part_target_us: raw.part_target_us,
        };
        info.check()?;
        Ok(info)
    }
}

/// The `CODECS` attribute of a variant: a comma-separated list of RFC 6381 codec ids, each
/// a sample-entry code and dot-separated parameters of letters, digits, `-`, `_` and `+`
/// (`avc1.64001f`, `mp4a.40.2`, `hvc1.1.6.L93.B0`, `ec-3`). At most [`Codecs::MAX_IDS`] ids
/// and [`Codecs::MAX_LEN`] bytes. Nothing else (quotes, spaces, line breaks) can reach a
/// playlist through it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Codecs(String);

impl Codecs {
    /// Most codec ids in one list.
    pub const MAX_IDS: usize = 8;
    /// Longest list in bytes.
    pub const MAX_LEN: usize = 256;

    /// `avc1.640028`: H.264 High profile, level 4.0, no audio.
    pub fn avc1_high() -> Self {
        Codecs("avc1.640028".to_owned())
    }

    /// The list as it goes into `CODECS="…"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Codecs {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, DomainError> {
        let bad = |reason| Err(DomainError::InvalidCodecs { reason });
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return bad("give 1 to 256 bytes");
        }
        let ids: Vec<&str> = s.split(',').collect();
        if ids.len() > Self::MAX_IDS {
            return bad("give at most 8 codec ids");
        }
        let element_ok = |e: &str| {
            !e.is_empty()
                && e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+'))
        };
        if !ids.iter().all(|id| id.split('.').all(element_ok)) {
            return bad("each codec id is dot-separated letters, digits, '-', '_' or '+'");
        }
        Ok(Codecs(s.to_owned()))
    }
}

impl TryFrom<String> for Codecs {
    type Error = DomainError;

    fn try_from(s: String) -> Result<Self, DomainError> {
        s.parse()
    }
}

impl From<Codecs> for String {
    fn from(c: Codecs) -> String {
        c.0
    }
}

impl fmt::Display for Codecs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Peak and average bitrate of a rendition, measured from its segments (BANDWIDTH and
/// AVERAGE-BANDWIDTH must describe what was really sent, not what was asked for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BitrateMeter {
    peak_bps: u64,
    total_bits: u128,
    total_micros: u128,
}

impl BitrateMeter {
    /// Accounts for one segment of `byte_len` bytes lasting `duration`.
    pub fn record(&mut self, byte_len: usize, duration: Duration) {
        let micros = duration.as_micros();
        if micros == 0 {
            return;
        }
        let bits = byte_len as u128 * 8;
        let bps = bits * 1_000_000 / micros;
        self.peak_bps = self.peak_bps.max(u64::try_from(bps).unwrap_or(u64::MAX));
        self.total_bits += bits;
        self.total_micros += micros;
    }

    /// The highest bitrate of any one segment so far, in bit/s.
    pub fn peak_bps(&self) -> u64 {
        self.peak_bps
    }

    /// The average over all segments so far, in bit/s.
    pub fn average_bps(&self) -> u64 {
        if self.total_micros == 0 {
            return 0;
        }
        u64::try_from(self.total_bits * 1_000_000 / self.total_micros).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn meter_reports_peak_and_average() {
        let mut m = BitrateMeter::default();
        m.record(250_000, Duration::from_secs(2)); // 1 Mb/s
        m.record(750_000, Duration::from_secs(2)); // 3 Mb/s
        assert_eq!(m.peak_bps(), 3_000_000);
        assert_eq!(m.average_bps(), 2_000_000);
    }

    #[test]
    fn codecs_follow_the_rfc_6381_shape() {
        for good in [
            "avc1.64001f,mp4a.40.2",
            "avc1.42c01e",
            "hvc1.1.6.L93.B0",
            "ec-3",
            "mp4a.40.2",
        ] {
            assert_eq!(good.parse::<Codecs>().expect(good).as_str(), good);
        }
        for bad in [
            "",
            "avc1.64001f,",
            ",mp4a.40.2",
            "avc1..64001f",
            "avc1.64001f, mp4a.40.2",
            "avc1\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttps://evil.example/x.m3u8",
            "a,b,c,d,e,f,g,h,i",
            &"a".repeat(257),
        ] {
            assert!(bad.parse::<Codecs>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rendition_info_is_checked_when_it_arrives() {
        let ok =
            r#"{"name":"720p","width":1280,"height":720,"frame_rate":30.0,"codecs":"avc1.64001f"}"#;
        let info: RenditionInfo = serde_json::from_str(ok).expect("valid");
        assert_eq!(info.codecs.as_str(), "avc1.64001f");
        for bad in [
            r#"{"name":"720p","width":1280,"height":720,"frame_rate":30.0,"codecs":"avc1\"x"}"#,
            r#"{"name":"720p","width":0,"height":720,"frame_rate":30.0,"codecs":"avc1"}"#,
            r#"{"name":"720p","width":1280,"height":99999,"frame_rate":30.0,"codecs":"avc1"}"#,
            r#"{"name":"720p","width":1280,"height":720,"frame_rate":0.0,"codecs":"avc1"}"#,
            r#"{"name":"720p","width":1280,"height":720,"frame_rate":1e300,"codecs":"avc1"}"#,
            r#"{"name":"720p","width":1280,"height":720,"frame_rate":30.0,"codecs":"avc1","x":1}"#,
        ] {
            assert!(serde_json::from_str::<RenditionInfo>(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn codecs_never_carry_playlist_syntax(s in ".{0,80}") {
            if let Ok(c) = s.parse::<Codecs>() {
                prop_assert!(!c.as_str().contains(['"', '\n', '\r', ' ', '#', ':', '=']));
            }
        }

        #[test]
        fn average_never_exceeds_peak(segs in proptest::collection::vec((0usize..5_000_000, 1u64..10_000), 1..50)) {
            let mut m = BitrateMeter::default();
            for (len, ms) in segs {
                m.record(len, Duration::from_millis(ms));
            }
            prop_assert!(m.average_bps() <= m.peak_bps());
        }
    }
}
