//! Low-latency HLS (RFC 8216bis), pure: the live window of one CMAF rendition with its
//! partial segments ([`LlWindow`]), its media playlist with the LL tags, delta updates
//! (`_HLS_skip`), and the answer to a blocking reload ([`LlWindow::answer`] to a
//! [`PlaylistQuery`]).
//!
//! URIs follow the public layout: `init.mp4`, `{seq}.m4s` for a segment, `{seq}.{part}.m4s`
//! for a part, relative to the media playlist. Parts are listed for the last
//! [`PART_SEGMENTS`] segments and the open one; the preload hint names the part that comes
//! next. Players that ignore the LL tags play the full segments.
//!
//! Edges render it for CMAF renditions with parts (`broadcast::stream`). The window, its
//! rendering, delta updates and the blocking-reload answer implement one section of the RFC
//! together, so they stay in one file.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

use super::query::PlaylistQuery;
use super::{ceil_secs, write_discontinuities};
use crate::DomainError;

/// Segments before the open one whose parts stay listed (RFC 8216bis §4.4.4.9: at least
/// those within three target durations of the end; with parts of about a third of a
/// target that is three segments).
pub const PART_SEGMENTS: usize = 3;

/// The EXT-X-VERSION of LL playlists: 9 for `EXT-X-SKIP` (§4.4.5.2).
const VERSION: u8 = 9;

/// One partial segment as its playlist lists it (`EXT-X-PART`). Not the part itself: that
/// is [`crate::segment::Part`], bytes and all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartEntry {
    /// Its duration.
    pub duration: Duration,
    /// Whether it starts with a keyframe (`INDEPENDENT=YES`).
    pub independent: bool,
    /// Whether it was never published (`GAP=YES`).
    pub gap: bool,
}

/// One complete segment of the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlSegment {
    /// Media sequence number.
    pub sequence: u64,
    /// `EXTINF`.
    pub duration: Duration,
    /// `EXT-X-DISCONTINUITY` before it: as many as its discontinuity sequence is past the
    /// one of the segment before it (one, for the first listed segment).
    pub discontinuity: bool,
    /// Its discontinuity sequence, as its ingest signed it: what a player counting the
    /// playlist's tags (hls.js's `frag.cc`) arrives at.
    pub discontinuity_sequence: u64,
    /// `EXT-X-GAP`.
    pub gap: bool,
    /// When its first frame was captured, in Unix milliseconds (the ingest's clock).
    pub program_date_time_ms: Option<i64>,
    /// Its parts, in order (empty once they are no longer listed).
    pub parts: Vec<PartEntry>,
}

/// The segment being cut: its parts so far.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OpenSegment {
    sequence: u64,
    discontinuity: bool,
    discontinuity_sequence: u64,
    program_date_time_ms: Option<i64>,
    parts: Vec<PartEntry>,
}

/// What to do with a playlist request now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Render and answer now.
    Now,
    /// Hold the request until the window changes, then ask again.
    Wait,
    /// `_HLS_msn` more than two segments ahead of the last one: 400 (§6.2.5.2).
    TooFarAhead,
}

/// A rendition's position, for `EXT-X-RENDITION-REPORT` in the others' playlists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    /// URI of its media playlist relative to this one (`../720p/index.m3u8`).
    pub uri: String,
    /// Its last listed media sequence number.
    pub last_msn: u64,
    /// Its last listed part of that segment, if it lists parts.
    pub last_part: Option<u32>,
}

/// The live window of one rendition with partial segments.
#[derive(Debug, Clone)]
pub struct LlWindow {
    capacity: usize,
    /// Never lowered while the playlist lives.
    target_duration: u64,
    part_target: Duration,
    segments: VecDeque<LlSegment>,
    open: Option<OpenSegment>,
    ended: bool,
}

impl LlWindow {
    /// A window of at most `capacity` complete segments of about `target` each, cut into
    /// parts of at most `part_target`.
    pub fn new(capacity: usize, target: Duration, part_target: Duration) -> Self {
        LlWindow {
            capacity: capacity.max(1),
            target_duration: ceil_secs(target).max(1),
            part_target: part_target.max(Duration::from_millis(1)),
            segments: VecDeque::new(),
            open: None,
            ended: false,
        }
    }

    /// Appends a part to segment `sequence`, opening it if it is the next one, in
    /// `discontinuity_sequence` (the part's signed one: a new one after the last segment's
    /// opens a new timeline, `EXT-X-DISCONTINUITY`). A part of a segment other than the
    /// open one or the next is refused (`NotAfterLast` style), as is any part after the
    /// end.
    pub fn push_part(
        &mut self,
        sequence: u64,
        part: PartEntry,
        discontinuity_sequence: u64,
        program_date_time_ms: Option<i64>,
    ) -> Result<(), DomainError> {
        if self.ended {
            return Err(DomainError::OutOfOrder {
                what: "part after the end",
            });
        }
        match &mut self.open {
            Some(open) if open.sequence == sequence => {
                open.parts.push(part);
                return Ok(());
            }
            Some(_) => {
                return Err(DomainError::OutOfOrder {
                    what: "part of a segment that is not open",
                })
            }
            None => {}
        }
        if self.last_sequence().is_some_and(|last| sequence <= last) {
            return Err(DomainError::OutOfOrder {
                what: "part of a finished segment",
            });
        }
        let discontinuity = self
            .segments
            .back()
            .is_some_and(|last| discontinuity_sequence > last.discontinuity_sequence);
        self.open = Some(OpenSegment {
            sequence,
            discontinuity,
            discontinuity_sequence,
            program_date_time_ms,
            parts: vec![part],
        });
        Ok(())
    }

    /// Appends a part that came after its segment finished: to the last complete segment
    /// only (the one whose parts may still be missing on this node while another already
    /// lists them), as its next part `index`, never after the end. Whether the part belongs
    /// there is the caller's to know (its bytes continue the segment's).
    pub fn push_late_part(
        &mut self,
        sequence: u64,
        index: u32,
        part: PartEntry,
    ) -> Result<(), DomainError> {
        if self.ended {
            return Err(DomainError::OutOfOrder {
                what: "part after the end",
            });
        }
        match self.segments.back_mut() {
            Some(last)
                if last.sequence == sequence
                    && usize::try_from(index).is_ok_and(|i| i == last.parts.len()) =>
            {
                last.parts.push(part);
                Ok(())
            }
            _ => Err(DomainError::OutOfOrder {
                what: "late part that is not the next of the last segment",
            }),
        }
    }

    /// Closes the open segment `sequence` (its parts make it up) with its `EXTINF`, in
    /// `discontinuity_sequence`; returns the sequence numbers that slid out of the window.
    /// A segment that was never opened (no parts: a gap, or a segment published whole) is
    /// appended as it is. Whether a discontinuity comes before it follows from the
    /// segment before it; `discontinuity` says it for the first one of the window only.
    pub fn finish_segment(
        &mut self,
        sequence: u64,
        duration: Duration,
        gap: bool,
        (discontinuity_sequence, discontinuity): (u64, bool),
        program_date_time_ms: Option<i64>,
    ) -> Result<Vec<u64>, DomainError> {
        if self.ended {
            return Err(DomainError::OutOfOrder {
                what: "segment after the end",
            });
        }
        let discontinuity = match self.segments.back() {
            Some(last) => discontinuity_sequence > last.discontinuity_sequence,
            None => discontinuity,
        };
        let segment = match self.open.take() {
            Some(open) if open.sequence == sequence => LlSegment {
                sequence,
                duration,
                discontinuity,
                discontinuity_sequence,
                gap,
                program_date_time_ms: open.program_date_time_ms,
                parts: open.parts,
            },
            Some(open) => {
                self.open = Some(open);
                return Err(DomainError::OutOfOrder {
                    what: "segment other than the open one",
                });
            }
            None => {
                if self.last_sequence().is_some_and(|last| sequence <= last) {
                    return Err(DomainError::OutOfOrder {
                        what: "segment not after the last",
                    });
                }
                LlSegment {
                    sequence,
                    duration,
                    discontinuity,
                    discontinuity_sequence,
                    gap,
                    program_date_time_ms,
                    parts: Vec::new(),
                }
            }
        };
        self.target_duration = self.target_duration.max(ceil_secs(duration));
        self.segments.push_back(segment);
        // Parts are listed for the last few segments only.
        let keep_parts_from = self.segments.len().saturating_sub(PART_SEGMENTS);
        for old in self.segments.iter_mut().take(keep_parts_from) {
            old.parts = Vec::new();
        }
        let mut gone = Vec::new();
        while self.segments.len() > self.capacity {
            if let Some(old) = self.segments.pop_front() {
                gone.push(old.sequence);
            }
        }
        Ok(gone)
    }

    /// The stream ended: `EXT-X-ENDLIST`, no preload hint; an open segment is dropped.
    pub fn end(&mut self) {
        self.open = None;
        self.ended = true;
    }

    /// The part the preload hint names (`EXT-X-PRELOAD-HINT`): the next part of the open
    /// segment, or the first of the segment after the last one; none once ended.
    pub fn hinted_part(&self) -> Option<(u64, u32)> {
        if self.ended {
            return None;
        }
        Some(match &self.open {
            Some(open) => (
                open.sequence,
                u32::try_from(open.parts.len()).unwrap_or(u32::MAX),
            ),
            None => (self.last_sequence().map_or(0, |s| s + 1), 0),
        })
    }

    /// Whether the playlist ended (`EXT-X-ENDLIST`): no part comes any more.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// `EXT-X-DISCONTINUITY-SEQUENCE`: the first listed segment's (the open one when none
    /// is complete), less the discontinuity before it that the playlist lists. Every later
    /// segment is tagged as far as its own is past the one before it, so what a player
    /// counts is what the ingest signed. It never goes back as segments slide out.
    pub fn discontinuity_sequence(&self) -> u64 {
        let first = self
            .segments
            .front()
            .map(|s| (s.discontinuity_sequence, s.discontinuity))
            .or_else(|| {
                self.open
                    .as_ref()
                    .map(|o| (o.discontinuity_sequence, o.discontinuity))
            });
        first.map_or(0, |(sequence, tagged)| {
            sequence.saturating_sub(u64::from(tagged))
        })
    }

    /// The last complete segment's sequence number.
    pub fn last_sequence(&self) -> Option<u64> {
        self.segments.back().map(|s| s.sequence)
    }

    /// The part target (`EXT-X-PART-INF:PART-TARGET`): what a cache may keep a blocking
    /// reload's answer for is counted in it.
    pub fn part_target(&self) -> Duration {
        self.part_target
    }

    /// The last listed part: (segment, part index), in the open segment or the last one.
    pub fn last_part(&self) -> Option<(u64, u32)> {
        if let Some(open) = &self.open {
            return Some((open.sequence, part_index(open.parts.len())));
        }
        self.segments
            .back()
            .filter(|s| !s.parts.is_empty())
            .map(|s| (s.sequence, part_index(s.parts.len())))
    }

    /// This rendition's report for the others' playlists.
    pub fn report(&self, uri: String) -> Option<RenditionReport> {
        let (last_msn, last_part) = match self.last_part() {
            Some((msn, part)) => (msn, Some(part)),
            None => (self.last_sequence()?, None),
        };
        Some(RenditionReport {
            uri,
            last_msn,
            last_part,
        })
    }

    /// Whether a request with `query` can be answered now (§6.2.5.2). A part index past
    /// the last part of a finished segment means part 0 of the next one.
    pub fn answer(&self, query: &PlaylistQuery) -> Answer {
        let Some(msn) = query.msn else {
            return Answer::Now;
        };
        if self.ended {
            return Answer::Now;
        }
        let next = self
            .open
            .as_ref()
            .map_or_else(|| self.last_sequence().map_or(0, |s| s + 1), |o| o.sequence);
        if msn > next.saturating_add(2) {
            return Answer::TooFarAhead;
        }
        let listed = match query.part {
            None => self.last_sequence().is_some_and(|last| last >= msn),
            Some(part) => {
                let finished = self.segments.iter().rev().find(|s| s.sequence == msn);
                if self.last_sequence().is_some_and(|last| last > msn) {
                    true
                } else if let Some(segment) = finished {
                    // The segment is complete: a later part index means the next segment's
                    // first part, listed once that segment opens.
                    part < part_index(segment.parts.len()) + 1 || self.open.is_some()
                } else {
                    self.open
                        .as_ref()
                        .is_some_and(|o| o.sequence == msn && (part as usize) < o.parts.len())
                }
            }
        };
        if listed {
            Answer::Now
        } else {
            Answer::Wait
        }
    }

    /// Renders the media playlist: a delta update when `skip` (segments older than
    /// `CAN-SKIP-UNTIL` from the end become one `EXT-X-SKIP`), the other renditions'
    /// reports at the end.
    pub fn render(&self, skip: bool, reports: &[RenditionReport]) -> String {
        let mut out = String::with_capacity(256 + 64 * self.segments.len());
        let target = self.target_duration;
        let part_target = self.part_target.as_secs_f64();
        let skip_until = 6 * target;
        let _ = writeln!(out, "#EXTM3U");
        let _ = writeln!(out, "#EXT-X-VERSION:{VERSION}");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
        let _ = writeln!(
            out,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={skip_until}.0,PART-HOLD-BACK={:.3}",
            3.0 * part_target
        );
        let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={part_target:.5}");
        let first = self
            .segments
            .front()
            .map(|s| s.sequence)
            .or_else(|| self.open.as_ref().map(|o| o.sequence))
            .unwrap_or(0);
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first}");
        let _ = writeln!(
            out,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            self.discontinuity_sequence()
        );
        let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"init.mp4\"");

        // Skippable: segments that end more than CAN-SKIP-UNTIL before the playlist's end.
        let mut skipped: usize = 0;
        if skip {
            let total: Duration = self.segments.iter().map(|s| s.duration).sum();
            let horizon = Duration::from_secs(skip_until);
            let mut ends_at = Duration::ZERO;
            for s in &self.segments {
                ends_at += s.duration;
                if total.saturating_sub(ends_at) > horizon {
                    skipped += 1;
                } else {
                    break;
                }
            }
            if skipped > 0 {
                let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
            }
        }
        // The date is written on the first listed segment and after every discontinuity.
        let mut date_due = true;
        let mut before = skipped
            .checked_sub(1)
            .and_then(|i| self.segments.get(i))
            .map(|s| s.discontinuity_sequence);
        for s in self.segments.iter().skip(skipped) {
            if write_discontinuities(&mut out, before, s.discontinuity_sequence, s.discontinuity)
                > 0
            {
                date_due = true;
            }
            before = Some(s.discontinuity_sequence);
            if let (true, Some(ms)) = (date_due, s.program_date_time_ms) {
                let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(ms));
                date_due = false;
            }
            write_parts(&mut out, s.sequence, &s.parts);
            let _ = writeln!(out, "#EXTINF:{:.5},", s.duration.as_secs_f64());
            if s.gap {
                let _ = writeln!(out, "#EXT-X-GAP");
            }
            let _ = writeln!(out, "{}.m4s", s.sequence);
        }
        if let Some(open) = &self.open {
            if write_discontinuities(
                &mut out,
                before,
                open.discontinuity_sequence,
                open.discontinuity,
            ) > 0
            {
                date_due = true;
            }
            if let (true, Some(ms)) = (date_due, open.program_date_time_ms) {
                let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{}", iso8601(ms));
            }
            write_parts(&mut out, open.sequence, &open.parts);
        }
        if let Some((sequence, part)) = self.hinted_part() {
            let _ = writeln!(
                out,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{sequence}.{part}.m4s\""
            );
        }
        for report in reports {
            let _ = write!(
                out,
                "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={}",
                report.uri, report.last_msn
            );
            if let Some(part) = report.last_part {
                let _ = write!(out, ",LAST-PART={part}");
            }
            out.push('\n');
        }
        if self.ended {
            let _ = writeln!(out, "#EXT-X-ENDLIST");
        }
        out
    }
}

/// The index of the last of `count` parts (0 when there are none).
fn part_index(count: usize) -> u32 {
    u32::try_from(count.saturating_sub(1)).unwrap_or(u32::MAX)
}

fn write_parts(out: &mut String, sequence: u64, parts: &[PartEntry]) {
    for (i, part) in parts.iter().enumerate() {
        let _ = write!(
            out,
            "#EXT-X-PART:DURATION={:.5},URI=\"{sequence}.{i}.m4s\"",
            part.duration.as_secs_f64()
        );
        if part.independent {
            out.push_str(",INDEPENDENT=YES");
        }
        if part.gap {
            out.push_str(",GAP=YES");
        }
        out.push('\n');
    }
}

/// Unix milliseconds as an ISO 8601 UTC date with milliseconds (`2026-11-22T15:04:05.123Z`).
fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const PART: Duration = Duration::from_millis(333);

    impl LlWindow {
        /// What the window lists, for the reader's round trip (`read`): its discontinuity
        /// sequence, target duration, complete segments, and the open segment (no
        /// `EXTINF` yet: zero).
        pub(in crate::hls) fn listing(&self) -> (u64, u64, Vec<LlSegment>, Option<LlSegment>) {
            let open = self.open.as_ref().map(|o| LlSegment {
                sequence: o.sequence,
                duration: Duration::ZERO,
                discontinuity: o.discontinuity,
                discontinuity_sequence: o.discontinuity_sequence,
                gap: false,
                program_date_time_ms: o.program_date_time_ms,
                parts: o.parts.clone(),
            });
            let segments = self.segments.iter().cloned().collect();
            (
                self.discontinuity_sequence(),
                self.target_duration,
                segments,
                open,
            )
        }
    }

    fn part(independent: bool) -> PartEntry {
        PartEntry {
            duration: PART,
            independent,
            gap: false,
        }
    }

    /// A window with `segments` complete segments of six parts (2 s) from 100, and
    /// `open_parts` parts of the next.
    fn window(segments: u64, open_parts: usize) -> LlWindow {
        let mut w = LlWindow::new(6, Duration::from_secs(2), PART);
        for seq in 100..100 + segments {
            for i in 0..6 {
                w.push_part(seq, part(i == 0), 0, Some(1_700_000_000_000))
                    .expect("in order");
            }
            w.finish_segment(seq, Duration::from_secs(2), false, (0, false), None)
                .expect("in order");
        }
        for i in 0..open_parts {
            w.push_part(100 + segments, part(i == 0), 0, None)
                .expect("in order");
        }
        w
    }

    #[test]
    fn a_playlist_lists_recent_parts_the_hint_and_the_reports() {
        let w = window(4, 2);
        let text = w.render(
            false,
            &[RenditionReport {
                uri: "../720p/index.m3u8".into(),
                last_msn: 104,
                last_part: Some(1),
            }],
        );
        assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n"));
        assert!(text.contains(
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=0.999\n"
        ));
        assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.33300\n"));
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:100\n"));
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\"\n"));
        assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n"));
        // Parts of the last three complete segments and of the open one; not of 100.
        assert!(!text.contains("\"100.0.m4s\""));
        assert!(text.contains(
            "#EXT-X-PART:DURATION=0.33300,URI=\"101.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.33300,URI=\"101.1.m4s\"\n"
        ));
        assert!(text.contains("#EXTINF:2.00000,\n103.m4s\n#EXT-X-PART:DURATION=0.33300,URI=\"104.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.33300,URI=\"104.1.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"104.2.m4s\"\n"));
        assert!(text.ends_with(
            "#EXT-X-RENDITION-REPORT:URI=\"../720p/index.m3u8\",LAST-MSN=104,LAST-PART=1\n"
        ));
        assert_eq!(w.last_part(), Some((104, 1)));
    }

    #[test]
    fn the_regular_part_parses_as_hls() {
        let text = window(5, 3).render(false, &[]);
        let Ok((_, m3u8_rs::Playlist::MediaPlaylist(p))) = m3u8_rs::parse_playlist(text.as_bytes())
        else {
            panic!("not a media playlist:\n{text}");
        };
        assert_eq!(p.media_sequence, 100);
        let uris: Vec<&str> = p.segments.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(
            uris,
            ["100.m4s", "101.m4s", "102.m4s", "103.m4s", "104.m4s"]
        );
    }

    #[test]
    fn blocking_requests_wait_for_what_they_name() {
        let w = window(4, 2); // complete 100..=103, open 104 with parts 0 and 1
        let ask = |msn: u64, part: Option<u32>| {
            w.answer(&PlaylistQuery {
                msn: Some(msn),
                part,
                skip: false,
            })
        };
        assert_eq!(w.answer(&PlaylistQuery::default()), Answer::Now);
        assert_eq!(ask(103, None), Answer::Now);
        assert_eq!(ask(104, None), Answer::Wait, "104 is still open");
        assert_eq!(ask(104, Some(1)), Answer::Now);
        assert_eq!(ask(104, Some(2)), Answer::Wait, "the hinted part");
        assert_eq!(
            ask(103, Some(9)),
            Answer::Now,
            "past 103's parts: 104.0, listed"
        );
        assert_eq!(ask(106, None), Answer::Wait);
        assert_eq!(ask(107, None), Answer::TooFarAhead);
        let mut ended = w.clone();
        ended.end();
        assert_eq!(
            ended.answer(&PlaylistQuery {
                msn: Some(106),
                part: None,
                skip: false
            }),
            Answer::Now
        );
        assert!(ended.render(false, &[]).ends_with("#EXT-X-ENDLIST\n"));
        assert!(!ended.render(false, &[]).contains("PRELOAD-HINT"));
    }

    #[test]
    fn discontinuities_are_counted_as_they_slide_out() {
        let mut w = LlWindow::new(2, Duration::from_secs(2), PART);
        w.finish_segment(1, Duration::from_secs(2), false, (0, false), None)
            .expect("ok");
        w.finish_segment(2, Duration::from_secs(2), false, (1, true), Some(0))
            .expect("ok");
        w.finish_segment(3, Duration::from_secs(2), false, (1, false), None)
            .expect("ok");
        assert!(w.render(false, &[]).contains("#EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:00.000Z\n"));
        assert_eq!(
            w.finish_segment(4, Duration::from_secs(2), false, (1, false), None),
            Ok(vec![2])
        );
        assert!(w
            .render(false, &[])
            .contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"));
        assert!(w
            .finish_segment(4, Duration::from_secs(2), false, (1, false), None)
            .is_err());
        assert!(w.push_part(3, part(true), 1, None).is_err());
    }

    /// A discontinuity sequence that moves on by more than one (sessions that ended before
    /// their first segment) is as many tags, so a player counting them arrives at what
    /// the ingest signed, before and after the segments around it slide out; the caller's
    /// flag counts only for a window's first segment.
    #[test]
    fn a_jump_in_the_discontinuity_sequence_is_as_many_tags() {
        let mut w = LlWindow::new(3, Duration::from_secs(2), PART);
        w.finish_segment(10, Duration::from_secs(2), false, (4, false), None)
            .expect("ok");
        w.finish_segment(11, Duration::from_secs(2), false, (7, false), None)
            .expect("ok");
        w.push_part(12, part(true), 7, None).expect("open");
        w.push_part(12, part(false), 7, None).expect("open");
        let read = |w: &LlWindow| {
            let text = w.render(false, &[]);
            crate::hls::read_media(text.as_bytes())
                .expect("reads")
                .segments
                .iter()
                .map(|s| (s.sequence, s.discontinuity_sequence))
                .collect::<Vec<_>>()
        };
        assert_eq!(read(&w), vec![(10, 4), (11, 7), (12, 7)]);
        w.finish_segment(12, Duration::from_secs(2), false, (7, true), None)
            .expect("ok");
        w.push_part(13, part(true), 8, None).expect("open");
        assert_eq!(read(&w), vec![(10, 4), (11, 7), (12, 7), (13, 8)]);
        w.finish_segment(13, Duration::from_secs(2), false, (8, false), None)
            .expect("ok");
        assert_eq!(w.discontinuity_sequence(), 6);
        assert_eq!(read(&w), vec![(11, 7), (12, 7), (13, 8)]);
        // Backwards (a stale catalog's numbering): no tag, and the player's count then
        // disagrees with the signature, which it refuses.
        w.finish_segment(14, Duration::from_secs(2), false, (3, true), None)
            .expect("ok");
        assert_eq!(read(&w).last(), Some(&(14, 8)));
    }

    #[test]
    fn dates_are_iso_8601() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601(1_795_359_845_007), "2026-11-22T15:04:05.007Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59.999Z");
    }

    proptest! {
        /// A delta update lists exactly the segments it does not say it skipped, and
        /// skips only segments older than CAN-SKIP-UNTIL from the end.
        #[test]
        fn delta_updates_skip_what_they_say(
            durations in prop::collection::vec(500u64..4000, 1..40),
        ) {
            let mut w = LlWindow::new(30, Duration::from_secs(2), PART);
            for (i, ms) in durations.iter().enumerate() {
                w.finish_segment(i as u64, Duration::from_millis(*ms), false, (0, false), None)
                    .expect("in order");
            }
            let full = w.render(false, &[]);
            let delta = w.render(true, &[]);
            let count = |t: &str| t.lines().filter(|l| l.ends_with(".m4s")).count();
            let skipped = delta
                .lines()
                .find_map(|l| l.strip_prefix("#EXT-X-SKIP:SKIPPED-SEGMENTS="))
                .map_or(0, |n| n.parse::<usize>().expect("a number"));
            prop_assert_eq!(count(&delta) + skipped, count(&full));
            // What is still listed covers at least CAN-SKIP-UNTIL (or everything).
            let listed: Duration = w.segments.iter().skip(skipped).map(|s| s.duration).sum();
            let horizon = Duration::from_secs(6 * w.target_duration);
            prop_assert!(skipped == 0 || listed >= horizon);
            prop_assert!(delta.lines().any(|l| l.starts_with("#EXT-X-MEDIA-SEQUENCE:")));
        }
    }

    #[test]
    fn a_late_part_joins_the_last_segment_only() {
        // 100..=103 complete; 103 finished before its sixth part came.
        let mut w = LlWindow::new(6, Duration::from_secs(2), PART);
        for seq in 100..104 {
            let parts = if seq == 103 { 5 } else { 6 };
            for i in 0..parts {
                w.push_part(seq, part(i == 0), 0, None).expect("in order");
            }
            w.finish_segment(seq, Duration::from_secs(2), false, (0, false), None)
                .expect("in order");
        }
        assert_eq!(w.last_part(), Some((103, 4)));
        assert!(
            w.push_late_part(103, 6, part(false)).is_err(),
            "not the next"
        );
        w.push_late_part(103, 5, part(false))
            .expect("the last segment");
        assert_eq!(w.last_part(), Some((103, 5)));
        assert!(w.render(false, &[]).contains(
            "URI=\"103.5.m4s\"\n#EXTINF:2.00000,\n103.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"104.0.m4s\"\n"
        ));
        assert!(
            w.push_late_part(102, 6, part(false)).is_err(),
            "not the last one"
        );
        w.push_part(104, part(true), 0, None).expect("next");
        w.push_late_part(103, 6, part(false))
            .expect("still the last complete one while 104 is open");
        w.end();
        assert!(w.push_late_part(103, 7, part(false)).is_err(), "ended");
        assert!(w.is_ended());
    }
}
