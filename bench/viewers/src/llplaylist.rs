//! A bounded reader of the LL-HLS media playlist tags the low-latency viewer needs
//! (RFC 8216bis): `EXT-X-TARGETDURATION`, `EXT-X-SERVER-CONTROL`, `EXT-X-PART-INF`,
//! `EXT-X-MEDIA-SEQUENCE`, `EXT-X-MAP`, `EXT-X-SKIP`, `EXT-X-PROGRAM-DATE-TIME`,
//! `EXT-X-DISCONTINUITY`, `EXTINF`, `EXT-X-GAP`, `EXT-X-PART`, `EXT-X-PRELOAD-HINT`,
//! `EXT-X-RENDITION-REPORT`, `EXT-X-INDEPENDENT-SEGMENTS` and `EXT-X-ENDLIST`; every
//! other line is passed over.
//!
//! Why not m3u8-rs, which the plain-HLS viewer uses: its version 6 knows none of the LL
//! tags, and the parts after the last segment (the open segment, the one a low-latency
//! viewer wants most) belong to no segment it returns. The input comes from the server
//! under test, so every size is capped ([`MAX_BYTES`], [`MAX_SEGMENTS`], [`MAX_PARTS`],
//! [`MAX_REPORTS`], [`MAX_ATTRIBUTES`], [`MAX_URI`]) and a playlist over a cap is refused,
//! not truncated.
//!
//! Program date-times are carried: a segment without its own `EXT-X-PROGRAM-DATE-TIME`
//! starts where the previous one ended (not across a discontinuity), and a part starts
//! where the parts before it in its segment end, so every part gets the wall-clock time
//! of its first sample the way a player computes it.

use std::time::Duration;

use crate::plan::PlanError;

/// The largest playlist read, in bytes.
pub const MAX_BYTES: usize = 1 << 20;
/// The most segments (complete or open) one playlist may list.
pub const MAX_SEGMENTS: usize = 4096;
/// The most parts one playlist may list, over all its segments.
pub const MAX_PARTS: usize = 16_384;
/// The most rendition reports read.
pub const MAX_REPORTS: usize = 64;
/// The most attributes one tag may carry.
pub const MAX_ATTRIBUTES: usize = 32;
/// The longest URI kept.
pub const MAX_URI: usize = 1024;
/// The longest duration believed, in seconds (a day).
const MAX_SECONDS: f64 = 86_400.0;

/// A media playlist as far as a low-latency viewer reads it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlPlaylist {
    /// `EXT-X-TARGETDURATION`.
    pub target_duration: Duration,
    /// `EXT-X-MEDIA-SEQUENCE`: the sequence number of the first segment, skipped or not.
    pub media_sequence: u64,
    /// `EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES`.
    pub can_block_reload: bool,
    /// `CAN-SKIP-UNTIL`: the server answers delta updates.
    pub can_skip_until: Option<Duration>,
    /// `PART-HOLD-BACK`: how far behind the end of the playlist a player starts.
    pub part_hold_back: Option<Duration>,
    /// `EXT-X-PART-INF:PART-TARGET`.
    pub part_target: Option<Duration>,
    /// `EXT-X-INDEPENDENT-SEGMENTS`: every segment (so its first part) starts with a
    /// keyframe.
    pub independent_segments: bool,
    /// The URI of the first `EXT-X-MAP`.
    pub map: Option<String>,
    /// `EXT-X-SKIP:SKIPPED-SEGMENTS`: a delta update left out this many segments.
    pub skipped: u64,
    /// The listed segments in order, from `media_sequence + skipped`; the last one is the
    /// open segment when it has parts but no URI yet.
    pub segments: Vec<LlSegment>,
    /// `EXT-X-PRELOAD-HINT:TYPE=PART`: the URI of the part the server will publish next.
    pub preload_hint: Option<String>,
    /// `EXT-X-RENDITION-REPORT`s: where the other renditions are.
    pub reports: Vec<RenditionReport>,
    /// `EXT-X-ENDLIST`.
    pub ended: bool,
}

/// A listed segment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlSegment {
    /// Its media sequence number.
    pub sequence: u64,
    /// `EXTINF`; `None` for the open segment (parts only, not finished).
    pub duration: Option<Duration>,
    /// Its URI; `None` for the open segment.
    pub uri: Option<String>,
    /// `EXT-X-GAP`.
    pub gap: bool,
    /// `EXT-X-DISCONTINUITY` before it.
    pub discontinuity: bool,
    /// The wall-clock time of its first sample in milliseconds since the Unix epoch, from
    /// its own `EXT-X-PROGRAM-DATE-TIME` or carried from the segment before it.
    pub program_date_time_ms: Option<i64>,
    /// Its parts, in order.
    pub parts: Vec<LlPart>,
}

impl LlSegment {
    /// Whether it is finished (has its `EXTINF` and URI).
    pub fn complete(&self) -> bool {
        self.uri.is_some()
    }
}

/// An `EXT-X-PART`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LlPart {
    /// `DURATION`.
    pub duration: Duration,
    /// `URI`.
    pub uri: String,
    /// `INDEPENDENT=YES`.
    pub independent: bool,
    /// `GAP=YES`: there is nothing to fetch.
    pub gap: bool,
    /// The wall-clock time of its first sample, ms since the epoch (its segment's plus the
    /// parts before it).
    pub program_date_time_ms: Option<i64>,
}

/// An `EXT-X-RENDITION-REPORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionReport {
    /// `URI`: the other rendition's playlist.
    pub uri: String,
    /// `LAST-MSN`.
    pub last_msn: u64,
    /// `LAST-PART`.
    pub last_part: Option<u32>,
}

impl LlPlaylist {
    /// Every listed part with its position (segment sequence, index in the segment), in
    /// playback order.
    pub fn parts(&self) -> impl Iterator<Item = ((u64, u32), &LlPart)> {
        self.segments.iter().flat_map(|s| {
            s.parts
                .iter()
                .enumerate()
                .map(move |(i, p)| ((s.sequence, i as u32), p))
        })
    }

    /// The position of the last listed part.
    pub fn last_part(&self) -> Option<(u64, u32)> {
        self.parts().last().map(|(at, _)| at)
    }

    /// The position of the part the preload hint names: the next one after the last part,
    /// in the open segment if there is one, else the first of the segment after the last.
    pub fn hint_position(&self) -> Option<(u64, u32)> {
        self.preload_hint.as_ref()?;
        let last = self.segments.last()?;
        Some(if last.complete() {
            (last.sequence + 1, 0)
        } else {
            (last.sequence, last.parts.len() as u32)
        })
    }

    /// Parses a media playlist; refuses anything over a cap or not a media playlist.
    pub fn parse(body: &[u8]) -> Result<Self, PlanError> {
        let bad = |reason: &'static str| PlanError::BadPlaylist(reason);
        if body.len() > MAX_BYTES {
            return Err(bad("larger than 1 MiB"));
        }
        let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
        if lines.next() != Some("#EXTM3U") {
            return Err(bad("no #EXTM3U"));
        }
        let mut p = LlPlaylist::default();
        let mut target = None;
        let mut current = LlSegment::default();
        let mut pending_duration: Option<Duration> = None;
        let mut parts_total = 0usize;
        // The end of the previous segment, to carry the program date-time.
        let mut carried: Option<i64> = None;
        let mut started = false;
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let Some(tag) = line.strip_prefix('#') else {
                // A URI line: the segment is complete.
                let duration = pending_duration.take().ok_or(bad("a URI without EXTINF"))?;
                current.duration = Some(duration);
                current.uri = Some(uri(line)?);
                close_segment(&mut p, &mut current, &mut carried, &mut started)?;
                continue;
            };
            let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
            match name {
                "EXT-X-TARGETDURATION" => {
                    target = Some(Duration::from_secs(integer(value)?));
                }
                "EXT-X-MEDIA-SEQUENCE" => p.media_sequence = integer(value)?,
                "EXT-X-SERVER-CONTROL" => {
                    for (k, v) in attributes(value)? {
                        match k {
                            "CAN-BLOCK-RELOAD" => p.can_block_reload = v == "YES",
                            "CAN-SKIP-UNTIL" => p.can_skip_until = Some(seconds(v)?),
                            "PART-HOLD-BACK" => p.part_hold_back = Some(seconds(v)?),
                            _ => {}
                        }
                    }
                }
                "EXT-X-PART-INF" => {
                    for (k, v) in attributes(value)? {
                        if k == "PART-TARGET" {
                            p.part_target = Some(seconds(v)?);
                        }
                    }
                }
                "EXT-X-INDEPENDENT-SEGMENTS" => p.independent_segments = true,
                // The first map only: one rendition, one init segment.
                "EXT-X-MAP" if p.map.is_none() => {
                    let found = attributes(value)?.into_iter().find(|(k, _)| *k == "URI");
                    p.map = Some(uri(found.ok_or(bad("EXT-X-MAP without URI"))?.1)?);
                }
                "EXT-X-SKIP" => {
                    if started || !current.parts.is_empty() {
                        return Err(bad("EXT-X-SKIP after a segment"));
                    }
                    for (k, v) in attributes(value)? {
                        if k == "SKIPPED-SEGMENTS" {
                            p.skipped = integer(v)?;
                        }
                    }
                }
                "EXT-X-PROGRAM-DATE-TIME" => {
                    current.program_date_time_ms = Some(date_time_ms(value)?);
                }
                "EXT-X-DISCONTINUITY" => current.discontinuity = true,
                "EXT-X-GAP" => current.gap = true,
                "EXTINF" => {
                    let number = value.split(',').next().unwrap_or("");
                    pending_duration = Some(seconds(number)?);
                }
                "EXT-X-PART" => {
                    parts_total += 1;
                    if parts_total > MAX_PARTS {
                        return Err(bad("too many parts"));
                    }
                    let mut part = LlPart::default();
                    let mut has = (false, false);
                    for (k, v) in attributes(value)? {
                        match k {
                            "DURATION" => {
                                part.duration = seconds(v)?;
                                has.0 = true;
                            }
                            "URI" => {
                                part.uri = uri(v)?;
                                has.1 = true;
                            }
                            "INDEPENDENT" => part.independent = v == "YES",
                            "GAP" => part.gap = v == "YES",
                            _ => {}
                        }
                    }
                    if has != (true, true) {
                        return Err(bad("EXT-X-PART without DURATION or URI"));
                    }
                    current.parts.push(part);
                }
                "EXT-X-PRELOAD-HINT" => {
                    let attrs = attributes(value)?;
                    let is_part = attrs.iter().any(|(k, v)| *k == "TYPE" && *v == "PART");
                    if let (true, Some((_, u))) = (is_part, attrs.iter().find(|(k, _)| *k == "URI"))
                    {
                        p.preload_hint = Some(uri(u)?);
                    }
                }
                "EXT-X-RENDITION-REPORT" => {
                    if p.reports.len() >= MAX_REPORTS {
                        return Err(bad("too many rendition reports"));
                    }
                    let mut report = RenditionReport {
                        uri: String::new(),
                        last_msn: 0,
                        last_part: None,
                    };
                    for (k, v) in attributes(value)? {
                        match k {
                            "URI" => report.uri = uri(v)?,
                            "LAST-MSN" => report.last_msn = integer(v)?,
                            "LAST-PART" => {
                                report.last_part = Some(
                                    u32::try_from(integer(v)?)
                                        .map_err(|_| bad("LAST-PART out of range"))?,
                                );
                            }
                            _ => {}
                        }
                    }
                    p.reports.push(report);
                }
                "EXT-X-ENDLIST" => p.ended = true,
                "EXT-X-STREAM-INF" => return Err(bad("a master playlist")),
                _ => {}
            }
        }
        if pending_duration.is_some() {
            return Err(bad("EXTINF without a URI"));
        }
        if !current.parts.is_empty() {
            // The open segment: its parts so far.
            close_segment(&mut p, &mut current, &mut carried, &mut started)?;
        }
        p.target_duration = target.ok_or(bad("no EXT-X-TARGETDURATION"))?;
        Ok(p)
    }
}

/// Numbers `current`, gives it and its parts their program date-times, and appends it.
fn close_segment(
    p: &mut LlPlaylist,
    current: &mut LlSegment,
    carried: &mut Option<i64>,
    started: &mut bool,
) -> Result<(), PlanError> {
    if p.segments.len() >= MAX_SEGMENTS {
        return Err(PlanError::BadPlaylist("too many segments"));
    }
    let mut segment = std::mem::take(current);
    segment.sequence = p
        .media_sequence
        .checked_add(p.skipped)
        .and_then(|s| s.checked_add(p.segments.len() as u64))
        .ok_or(PlanError::BadPlaylist("media sequence out of range"))?;
    if segment.program_date_time_ms.is_none() && !segment.discontinuity {
        segment.program_date_time_ms = *carried;
    }
    let mut at = segment.program_date_time_ms;
    for part in &mut segment.parts {
        part.program_date_time_ms = at;
        at = at.map(|ms| ms + millis(part.duration));
    }
    *carried = match (segment.program_date_time_ms, segment.duration) {
        (Some(ms), Some(d)) => Some(ms + millis(d)),
        _ => None,
    };
    *started = true;
    p.segments.push(segment);
    Ok(())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An attribute list (`KEY=VALUE,KEY="quoted, value"`), quotes removed.
fn attributes(list: &str) -> Result<Vec<(&str, &str)>, PlanError> {
    let bad = PlanError::BadPlaylist;
    let mut out = Vec::new();
    let mut rest = list;
    while !rest.is_empty() {
        if out.len() >= MAX_ATTRIBUTES {
            return Err(bad("too many attributes"));
        }
        let (key, after) = rest.split_once('=').ok_or(bad("an attribute without ="))?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or(bad("an unterminated quoted attribute"))?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            after.split_at(after.find(',').unwrap_or(after.len()))
        };
        out.push((key.trim(), value));
        rest = match next.strip_prefix(',') {
            Some(r) => r,
            None if next.is_empty() => next,
            None => return Err(bad("garbage after an attribute")),
        };
    }
    Ok(out)
}

fn uri(s: &str) -> Result<String, PlanError> {
    if s.is_empty() || s.len() > MAX_URI {
        return Err(PlanError::BadPlaylist("a URI that is empty or too long"));
    }
    Ok(s.to_owned())
}

/// A decimal integer of at most 20 digits.
fn integer(s: &str) -> Result<u64, PlanError> {
    let s = s.trim();
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PlanError::BadPlaylist("not a decimal integer"));
    }
    s.parse()
        .map_err(|_| PlanError::BadPlaylist("an integer out of range"))
}

/// Decimal seconds, finite, 0 to a day.
fn seconds(s: &str) -> Result<Duration, PlanError> {
    let s = s.trim();
    let ok = !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let value: f64 = if ok { s.parse().unwrap_or(-1.0) } else { -1.0 };
    if !(0.0..=MAX_SECONDS).contains(&value) {
        return Err(PlanError::BadPlaylist("not a duration in seconds"));
    }
    Ok(Duration::from_secs_f64(value))
}

/// An ISO 8601 date-time as `EXT-X-PROGRAM-DATE-TIME` writes it
/// (`YYYY-MM-DDThh:mm:ss[.fff…][Z|±hh:mm|±hhmm]`), in milliseconds since the Unix epoch.
pub fn date_time_ms(s: &str) -> Result<i64, PlanError> {
    let bad = || PlanError::BadPlaylist("not an ISO 8601 date-time");
    let s = s.trim();
    if s.len() < 20 || s.len() > 40 || !s.is_ascii() {
        return Err(bad());
    }
    let b = s.as_bytes();
    if b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b'T' && b[10] != b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |from: usize, to: usize| -> Result<i64, PlanError> {
        let part = &s[from..to];
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let first3 = &fraction[..digits.min(3)];
        millis = first3.parse::<i64>().map_err(|_| bad())? * 10i64.pow(3 - first3.len() as u32);
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return Err(bad()),
            };
            let hm = rest[1..].replace(':', "");
            if hm.len() != 4 || !hm.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            let (h, m): (i64, i64) = (
                hm[..2].parse().map_err(|_| bad())?,
                hm[2..].parse().map_err(|_| bad())?,
            );
            sign * (h * 60 + m)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Ok(secs * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// What the node renders (domain::hls): three complete segments with parts on the
    /// last two, an open one with two parts, the hint, a report.
    pub(crate) const NODE: &str = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.0,PART-HOLD-BACK=0.999\n\
#EXT-X-PART-INF:PART-TARGET=0.33300\n#EXT-X-MEDIA-SEQUENCE:100\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n\
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n#EXTINF:2.00000,\n100.m4s\n\
#EXT-X-PART:DURATION=1.00000,URI=\"101.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=1.00000,URI=\"101.1.m4s\"\n\
#EXTINF:2.00000,\n101.m4s\n\
#EXT-X-PART:DURATION=1.00000,URI=\"102.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=1.00000,URI=\"102.1.m4s\",GAP=YES\n\
#EXTINF:2.00000,\n#EXT-X-GAP\n102.m4s\n\
#EXT-X-PART:DURATION=0.50000,URI=\"103.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=0.50000,URI=\"103.1.m4s\"\n\
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"103.2.m4s\"\n\
#EXT-X-RENDITION-REPORT:URI=\"../720p/index.m3u8\",LAST-MSN=103,LAST-PART=1\n";

    const T0: i64 = 1_700_000_000_000;

    #[test]
    fn reads_what_the_node_writes() {
        let p = LlPlaylist::parse(NODE.as_bytes()).expect("parses");
        assert_eq!(p.target_duration, Duration::from_secs(2));
        assert!(p.can_block_reload && p.independent_segments && !p.ended);
        assert_eq!(p.can_skip_until, Some(Duration::from_secs(12)));
        assert_eq!(p.part_hold_back, Some(Duration::from_millis(999)));
        assert_eq!(p.part_target, Some(Duration::from_millis(333)));
        assert_eq!(p.map.as_deref(), Some("init.mp4"));
        assert_eq!(p.media_sequence, 100);
        let seqs: Vec<(u64, bool, usize)> = p
            .segments
            .iter()
            .map(|s| (s.sequence, s.complete(), s.parts.len()))
            .collect();
        assert_eq!(
            seqs,
            [
                (100, true, 0),
                (101, true, 2),
                (102, true, 2),
                (103, false, 2)
            ]
        );
        assert!(p.segments[2].gap && p.segments[2].parts[1].gap);
        assert!(p.segments[1].parts[0].independent && !p.segments[1].parts[1].independent);
        // Date-times carried over segments and parts.
        let dates: Vec<((u64, u32), Option<i64>)> = p
            .parts()
            .map(|(at, part)| (at, part.program_date_time_ms))
            .collect();
        assert_eq!(
            dates,
            [
                ((101, 0), Some(T0 + 2000)),
                ((101, 1), Some(T0 + 3000)),
                ((102, 0), Some(T0 + 4000)),
                ((102, 1), Some(T0 + 5000)),
                ((103, 0), Some(T0 + 6000)),
                ((103, 1), Some(T0 + 6500)),
            ]
        );
        assert_eq!(p.last_part(), Some((103, 1)));
        assert_eq!(p.preload_hint.as_deref(), Some("103.2.m4s"));
        assert_eq!(p.hint_position(), Some((103, 2)));
        assert_eq!(
            p.reports,
            [RenditionReport {
                uri: "../720p/index.m3u8".into(),
                last_msn: 103,
                last_part: Some(1)
            }]
        );
    }

    #[test]
    fn a_delta_update_numbers_from_after_the_skip_and_a_closed_segment_hints_the_next() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n\
#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20Z\n\
#EXT-X-PART:DURATION=1.0,URI=\"13.0.m4s\"\n#EXTINF:1.0,\n13.m4s\n\
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"14.0.m4s\"\n";
        let p = LlPlaylist::parse(text.as_bytes()).expect("parses");
        assert_eq!((p.skipped, p.segments[0].sequence), (3, 13));
        assert_eq!(p.hint_position(), Some((14, 0)));
        assert_eq!(p.segments[0].parts[0].program_date_time_ms, Some(T0));
    }

    #[test]
    fn date_times_with_offsets_and_fractions() {
        assert_eq!(date_time_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(date_time_ms("2023-11-14T22:13:20.000Z"), Ok(T0));
        assert_eq!(date_time_ms("2023-11-14T22:13:20.5Z"), Ok(T0 + 500));
        assert_eq!(date_time_ms("2023-11-14T22:13:20.123456Z"), Ok(T0 + 123));
        assert_eq!(date_time_ms("2023-11-14T23:13:20+01:00"), Ok(T0));
        assert_eq!(date_time_ms("2023-11-14T21:13:20-0100"), Ok(T0));
        assert_eq!(date_time_ms("2000-03-01T00:00:00Z"), Ok(951_868_800_000));
        for bad in [
            "",
            "2023-11-14",
            "2023-13-14T22:13:20Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20.Z",
            "2023-11-14 22:13:20Z",
            "２０２３-11-14T22:13:20Z",
        ] {
            assert!(date_time_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_trust() {
        let refused = [
            "",
            "#EXT-X-TARGETDURATION:2\n",
            "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:1\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n1.m4s\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:-2\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART:URI=\"a\"\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART:DURATION=1,URI=\"a\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART:DURATION=nan,URI=\"a\"\n",
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n1.m4s\n#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n",
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na/index.m3u8\n",
        ];
        for text in refused {
            assert!(LlPlaylist::parse(text.as_bytes()).is_err(), "{text:?}");
        }
        let mut many = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n");
        for i in 0..=MAX_SEGMENTS {
            many.push_str(&format!("#EXTINF:2,\n{i}.m4s\n"));
        }
        assert_eq!(
            LlPlaylist::parse(many.as_bytes()),
            Err(PlanError::BadPlaylist("too many segments"))
        );
        let attrs = format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART:{}\n",
            "A=1,".repeat(40)
        );
        assert!(LlPlaylist::parse(attrs.as_bytes()).is_err());
        assert!(LlPlaylist::parse(&vec![b'#'; MAX_BYTES + 1]).is_err());
    }

    proptest! {
        /// Whatever bytes come, the parser answers (no panic), and what it accepts keeps
        /// its caps.
        #[test]
        fn any_input_is_answered_within_bounds(body in prop::collection::vec(any::<u8>(), 0..2048)) {
            if let Ok(p) = LlPlaylist::parse(&body) {
                prop_assert!(p.segments.len() <= MAX_SEGMENTS);
                prop_assert!(p.reports.len() <= MAX_REPORTS);
            }
        }

        /// Any playlist of complete segments with parts and an open segment reads back
        /// with its numbering, its parts in order and their date-times adding up.
        #[test]
        fn rendered_windows_read_back(first in 0u64..1_000_000, complete in 0usize..8,
                                      parts in 1usize..7, open in 0usize..7, hint in any::<bool>()) {
            let mut text = format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{first}\n\
                #EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z\n");
            for s in 0..complete as u64 {
                for i in 0..parts {
                    text.push_str(&format!("#EXT-X-PART:DURATION=0.25,URI=\"{}.{i}.m4s\"\n", first + s));
                }
                text.push_str(&format!("#EXTINF:{},\n{}.m4s\n", parts as f64 * 0.25, first + s));
            }
            for i in 0..open {
                text.push_str(&format!("#EXT-X-PART:DURATION=0.25,URI=\"{}.{i}.m4s\"\n", first + complete as u64));
            }
            if hint {
                text.push_str("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"next.m4s\"\n");
            }
            let p = LlPlaylist::parse(text.as_bytes()).expect("parses");
            let listed: Vec<(u64, u32)> = p.parts().map(|(at, _)| at).collect();
            prop_assert_eq!(listed.len(), complete * parts + open);
            for (k, ((seq, i), part)) in p.parts().enumerate() {
                prop_assert_eq!(part.uri.clone(), format!("{seq}.{i}.m4s"));
                prop_assert_eq!(part.program_date_time_ms, Some(T0 + 250 * k as i64));
            }
            let expected_hint = match (hint, open, complete) {
                (false, _, _) | (true, 0, 0) => None,
                (true, 0, c) => Some((first + c as u64, 0)),
                (true, o, c) => Some((first + c as u64, o as u32)),
            };
            prop_assert_eq!(p.hint_position(), expected_hint);
        }
    }
}
