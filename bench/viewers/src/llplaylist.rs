//! A media playlist as the low-latency viewer reads it: `domain::hls::read_media`, the
//! one bounded reader of what the cluster writes (its caps, its numbering, its program
//! date-times carried to every part), plus what this viewer cannot do without that a
//! playlist may leave out: `EXT-X-TARGETDURATION` (the poll interval and the hold-back
//! fall back on it). A playlist the reader refuses is [`PlanError::BadPlaylist`], with the
//! reader's reason.
//!
//! Why not m3u8-rs, which the plain-HLS viewer uses: its version 6 knows none of the LL
//! tags, and the parts after the last segment (the open segment, the one a low-latency
//! viewer wants most) belong to no segment it returns.

use std::time::Duration;

use domain::hls::{read_media, ReadMedia};
use domain::DomainError;

pub use domain::hls::RenditionReport;

use crate::plan::PlanError;

/// A media playlist as far as a low-latency viewer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlPlaylist {
    /// `EXT-X-TARGETDURATION`.
    pub target_duration: Duration,
    /// Everything else, as `domain::hls` reads it.
    pub read: ReadMedia,
}

impl LlPlaylist {
    /// Parses a media playlist; refuses anything the reader refuses, and one without
    /// `EXT-X-TARGETDURATION`.
    pub fn parse(body: &[u8]) -> Result<Self, PlanError> {
        let read = read_media(body).map_err(|e| match e {
            DomainError::InvalidPlaylist { reason, .. } => PlanError::BadPlaylist(reason),
            _ => PlanError::BadPlaylist("unreadable"),
        })?;
        let target_duration = read
            .target_duration
            .ok_or(PlanError::BadPlaylist("no EXT-X-TARGETDURATION"))?;
        Ok(LlPlaylist {
            target_duration,
            read,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the node renders (domain::hls): three complete segments with parts on the
    /// last two, an open one with two parts, the hint, a report.
    const NODE: &str = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=0.999\n\
#EXT-X-PART-INF:PART-TARGET=0.33300\n#EXT-X-MEDIA-SEQUENCE:100\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n\
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n#EXTINF:2.00000,\n100.m4s\n\
#EXT-X-PART:DURATION=1.00000,URI=\"101.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=1.00000,URI=\"101.1.m4s\"\n\
#EXTINF:2.00000,\n101.m4s\n\
#EXT-X-PART:DURATION=0.50000,URI=\"102.0.m4s\",INDEPENDENT=YES\n\
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"102.1.m4s\"\n\
#EXT-X-RENDITION-REPORT:URI=\"../720p/index.m3u8\",LAST-MSN=102,LAST-PART=0\n";

    #[test]
    fn reads_what_the_node_writes() {
        let p = LlPlaylist::parse(NODE.as_bytes()).expect("parses");
        assert_eq!(p.target_duration, Duration::from_secs(2));
        assert_eq!(p.read.last_part(), Some((102, 0)));
        assert_eq!(p.read.hint_position(), Some((102, 1)));
        assert_eq!(p.read.part_hold_back, Some(Duration::from_millis(999)));
        assert_eq!(
            p.read.reports,
            [RenditionReport {
                uri: "../720p/index.m3u8".into(),
                last_msn: 102,
                last_part: Some(0)
            }]
        );
        let dates: Vec<Option<i64>> = p
            .read
            .parts()
            .map(|(_, part)| part.program_date_time_ms)
            .collect();
        let t0 = 1_700_000_000_000;
        assert_eq!(dates, [Some(t0 + 2000), Some(t0 + 3000), Some(t0 + 4000)]);
    }

    #[test]
    fn refuses_what_the_reader_refuses_and_a_playlist_without_a_target() {
        assert_eq!(
            LlPlaylist::parse(b"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:1\n"),
            Err(PlanError::BadPlaylist("no EXT-X-TARGETDURATION"))
        );
        assert_eq!(
            LlPlaylist::parse(b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n1.m4s\n"),
            Err(PlanError::BadPlaylist("a URI without EXTINF"))
        );
        let mut many = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n");
        for i in 0..=domain::hls::MAX_SEGMENTS {
            many.push_str(&format!("#EXTINF:2,\n{i}.m4s\n"));
        }
        assert_eq!(
            LlPlaylist::parse(many.as_bytes()),
            Err(PlanError::BadPlaylist("too many segments"))
        );
        assert!(LlPlaylist::parse(&vec![b'#'; domain::hls::MAX_PLAYLIST + 1]).is_err());
    }
}
