//! Reading back what this module writes, the one reader for every caller: [`read_media`]
//! for a media playlist (MPEG-TS, CMAF or low-latency, a delta update included) and
//! [`read_master`] for a master playlist. `sealcast verify` follows a cluster's playlists
//! with it; the benchmark viewer emulator plays them with it.
//!
//! The bytes come from outside (a cluster node, a cache, a server under test), so reading
//! is bounded and strict: at most [`MAX_PLAYLIST`] bytes of UTF-8, lines of at most
//! [`MAX_LINE`] bytes, [`MAX_SEGMENTS`] segments, [`MAX_PARTS`] parts, [`MAX_REPORTS`]
//! rendition reports, [`MAX_VARIANTS`] variants, [`MAX_ATTRIBUTES`] attributes in a tag and
//! URIs of at most [`MAX_URI`] bytes; over a cap is refused, not truncated. A tag it reads
//! that breaks the grammar is refused ([`DomainError::InvalidPlaylist`], with its line);
//! tags it does not read are passed over, as players do. Numbers are decimal digits only,
//! durations decimal seconds (read exactly, to the nanosecond, never through a float) of
//! at most a day.
//!
//! Segments are numbered the way players number them (hls.js): from
//! `EXT-X-MEDIA-SEQUENCE` plus `EXT-X-SKIP`'s skipped segments, one per URI line; the
//! discontinuity sequence from `EXT-X-DISCONTINUITY-SEQUENCE` plus every
//! `EXT-X-DISCONTINUITY`; parts after the last URI line are the open segment's. Program
//! date-times are carried: a segment without its own `EXT-X-PROGRAM-DATE-TIME` starts
//! where the one before it ended (not across a discontinuity), and a part where the parts
//! before it in its segment end, so every part has the wall-clock time of its first
//! sample.

use std::time::Duration;

use super::ll::RenditionReport;
use crate::DomainError;

mod values;

use values::{attributes, date_time_ms, integer, seconds, uri};
pub use values::{MAX_ATTRIBUTES, MAX_URI};

/// The largest playlist read, in bytes.
pub const MAX_PLAYLIST: usize = 1 << 20;
/// The longest line read, in bytes.
pub const MAX_LINE: usize = 4096;
/// The most segments (complete or open) one media playlist may list: a recording of
/// eleven hours in 2 s segments.
pub const MAX_SEGMENTS: usize = 20_000;
/// The most parts one media playlist may list, over all its segments.
pub const MAX_PARTS: usize = 16_384;
/// The most rendition reports read.
pub const MAX_REPORTS: usize = 64;
/// The most variants one master playlist may list.
pub const MAX_VARIANTS: usize = 256;

/// A media playlist as read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadMedia {
    /// `EXT-X-TARGETDURATION`, if given.
    pub target_duration: Option<Duration>,
    /// `EXT-X-MEDIA-SEQUENCE`: the sequence number of the first segment, skipped or not.
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`: that of the first segment, skipped or not.
    pub discontinuity_sequence: u64,
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
    /// `EXT-X-PLAYLIST-TYPE:VOD`: a recording, nothing is added or removed.
    pub vod: bool,
    /// The URI of the first `EXT-X-MAP` (each segment has the one in force).
    pub map: Option<String>,
    /// `EXT-X-SKIP:SKIPPED-SEGMENTS`: a delta update left out this many segments.
    pub skipped: u64,
    /// The listed segments in order, from `media_sequence + skipped`; the last one is the
    /// open segment when it has parts but no URI yet.
    pub segments: Vec<ReadSegment>,
    /// `EXT-X-PRELOAD-HINT:TYPE=PART`: the URI of the part the server publishes next.
    pub preload_hint: Option<String>,
    /// `EXT-X-RENDITION-REPORT`s: where the other renditions are.
    pub reports: Vec<RenditionReport>,
    /// `EXT-X-ENDLIST`.
    pub ended: bool,
}

/// A listed segment, or the open one (parts only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSegment {
    /// Its media sequence number.
    pub sequence: u64,
    /// Its discontinuity sequence (hls.js's `frag.cc`). In a delta update it counts only
    /// the discontinuities listed: exact when nothing was skipped.
    pub discontinuity_sequence: u64,
    /// `EXT-X-DISCONTINUITY` before it.
    pub discontinuity: bool,
    /// `EXTINF`; `None` for the open segment.
    pub duration: Option<Duration>,
    /// Its URI; `None` for the open segment.
    pub uri: Option<String>,
    /// `EXT-X-GAP`.
    pub gap: bool,
    /// The init segment in force (`EXT-X-MAP`).
    pub map: Option<String>,
    /// The wall-clock time of its first sample in milliseconds since the Unix epoch, from
    /// its own `EXT-X-PROGRAM-DATE-TIME` or carried from the segment before it.
    pub program_date_time_ms: Option<i64>,
    /// Its parts, in order.
    pub parts: Vec<ReadPart>,
}

impl ReadSegment {
    /// Whether it is finished (has its `EXTINF` and URI).
    pub fn complete(&self) -> bool {
        self.uri.is_some()
    }
}

/// An `EXT-X-PART`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadPart {
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

/// A variant of a master playlist (`EXT-X-STREAM-INF` and the URI after it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadVariant {
    /// Its media playlist, relative to the master.
    pub uri: String,
    /// `BANDWIDTH`, bit/s.
    pub bandwidth: Option<u64>,
    /// `AVERAGE-BANDWIDTH`, bit/s.
    pub average_bandwidth: Option<u64>,
    /// `CODECS`.
    pub codecs: Option<String>,
    /// `RESOLUTION`: width and height.
    pub resolution: Option<(u64, u64)>,
}

impl ReadMedia {
    /// Every listed part with its position (segment sequence, index in the segment), in
    /// playback order.
    pub fn parts(&self) -> impl Iterator<Item = ((u64, u32), &ReadPart)> {
        self.segments.iter().flat_map(|s| {
            s.parts
                .iter()
                .enumerate()
                .map(move |(i, p)| ((s.sequence, u32::try_from(i).unwrap_or(u32::MAX)), p))
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
            (last.sequence.checked_add(1)?, 0)
        } else {
            (last.sequence, u32::try_from(last.parts.len()).ok()?)
        })
    }

    /// Whether segment `sequence` is listed as a gap.
    pub fn is_gap(&self, sequence: u64) -> bool {
        self.segments
            .iter()
            .any(|s| s.sequence == sequence && s.gap)
    }
}

/// Reads a media playlist; refuses anything over a cap, a master playlist, or a tag it
/// reads that breaks the grammar.
pub fn read_media(bytes: &[u8]) -> Result<ReadMedia, DomainError> {
    let mut reader = MediaReader::default();
    let mut last = 0;
    for line in lines(bytes)? {
        let (n, line) = line?;
        reader.line(line).map_err(|reason| refuse(n, reason))?;
        last = n;
    }
    reader.finish().map_err(|reason| refuse(last, reason))
}

/// Reads a master playlist: its variants in order; refuses one without variants, a media
/// playlist, or a tag it reads that breaks the grammar.
pub fn read_master(bytes: &[u8]) -> Result<Vec<ReadVariant>, DomainError> {
    let mut variants = Vec::new();
    let mut pending: Option<ReadVariant> = None;
    let mut last = 0;
    for line in lines(bytes)? {
        let (n, line) = line?;
        last = n;
        let Some(tag) = line.strip_prefix('#') else {
            // A URI line: the variant's, or one that belongs to no tag this reads.
            if let Some(mut variant) = pending.take() {
                if variants.len() >= MAX_VARIANTS {
                    return Err(refuse(n, "too many variants"));
                }
                variant.uri = uri(line).map_err(|r| refuse(n, r))?;
                variants.push(variant);
            }
            continue;
        };
        let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
        match name {
            "EXT-X-STREAM-INF" => {
                if pending.is_some() {
                    return Err(refuse(n, "EXT-X-STREAM-INF without a URI"));
                }
                pending = Some(stream_inf(value).map_err(|r| refuse(n, r))?);
            }
            "EXTINF" | "EXT-X-TARGETDURATION" | "EXT-X-PART" => {
                return Err(refuse(n, "a media playlist"));
            }
            _ => {}
        }
    }
    if pending.is_some() {
        return Err(refuse(last, "EXT-X-STREAM-INF without a URI"));
    }
    if variants.is_empty() {
        return Err(refuse(last, "a master playlist without variants"));
    }
    Ok(variants)
}

fn refuse(line: usize, reason: &'static str) -> DomainError {
    DomainError::InvalidPlaylist { line, reason }
}

/// The numbered lines (from 1) after `#EXTM3U`, blank ones left out, each trimmed; the
/// size, the encoding and the header checked first, the length of each line as it comes.
fn lines(
    bytes: &[u8],
) -> Result<impl Iterator<Item = Result<(usize, &str), DomainError>>, DomainError> {
    if bytes.len() > MAX_PLAYLIST {
        return Err(refuse(0, "larger than 1 MiB"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| refuse(0, "not UTF-8"))?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim()));
    if lines.next().map(|(_, l)| l) != Some("#EXTM3U") {
        return Err(refuse(1, "no #EXTM3U"));
    }
    Ok(lines.filter(|(_, l)| !l.is_empty()).map(|(n, l)| {
        if l.len() > MAX_LINE {
            Err(refuse(n, "a line longer than 4096 bytes"))
        } else {
            Ok((n, l))
        }
    }))
}

/// What a media playlist's lines so far make.
#[derive(Default)]
struct MediaReader {
    p: ReadMedia,
    /// The segment being read: its tags so far.
    current: ReadSegment,
    /// `EXTINF` of the segment being read, until its URI.
    duration: Option<Duration>,
    /// The `EXT-X-MAP` in force.
    map: Option<String>,
    /// The discontinuity sequence of the last segment read.
    discontinuity_sequence: u64,
    /// `EXT-X-DISCONTINUITY` tags before the segment being read (each counts, as hls.js
    /// counts them: a jump of the sequence by more than one is that many tags).
    discontinuities: u64,
    parts: usize,
    /// Where the last segment ended, to carry program date-times.
    carried: Option<i64>,
    /// A segment or a part was read: the playlist's header is over.
    started: bool,
}

impl MediaReader {
    fn line(&mut self, line: &str) -> Result<(), &'static str> {
        let Some(tag) = line.strip_prefix('#') else {
            // A URI line: the segment is complete.
            let duration = self.duration.take().ok_or("a URI without EXTINF")?;
            self.current.duration = Some(duration);
            self.current.uri = Some(uri(line)?);
            return self.close_segment();
        };
        let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
        let p = &mut self.p;
        match name {
            "EXT-X-TARGETDURATION" => {
                p.target_duration = Some(Duration::from_secs(integer(value)?));
            }
            "EXT-X-MEDIA-SEQUENCE" | "EXT-X-DISCONTINUITY-SEQUENCE" if self.started => {
                return Err("a sequence number after the first segment");
            }
            "EXT-X-MEDIA-SEQUENCE" => p.media_sequence = integer(value)?,
            "EXT-X-DISCONTINUITY-SEQUENCE" => {
                p.discontinuity_sequence = integer(value)?;
                self.discontinuity_sequence = p.discontinuity_sequence;
            }
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
            "EXT-X-PLAYLIST-TYPE" => p.vod |= value == "VOD",
            "EXT-X-MAP" => {
                let found = attributes(value)?.into_iter().find(|(k, _)| *k == "URI");
                let map = uri(found.ok_or("EXT-X-MAP without URI")?.1)?;
                p.map.get_or_insert_with(|| map.clone());
                self.map = Some(map);
            }
            "EXT-X-SKIP" => {
                if self.started || p.skipped > 0 {
                    return Err("EXT-X-SKIP after a segment");
                }
                for (k, v) in attributes(value)? {
                    if k == "SKIPPED-SEGMENTS" {
                        p.skipped = integer(v)?;
                    }
                }
            }
            "EXT-X-PROGRAM-DATE-TIME" => {
                self.current.program_date_time_ms = Some(date_time_ms(value)?);
            }
            "EXT-X-DISCONTINUITY" => {
                self.current.discontinuity = true;
                self.discontinuities = self
                    .discontinuities
                    .checked_add(1)
                    .ok_or("discontinuity sequence out of range")?;
            }
            "EXT-X-GAP" => self.current.gap = true,
            "EXTINF" => {
                let number = value.split(',').next().unwrap_or("");
                self.duration = Some(seconds(number)?);
            }
            "EXT-X-PART" => {
                self.parts += 1;
                if self.parts > MAX_PARTS {
                    return Err("too many parts");
                }
                self.started = true;
                let part = part(value)?;
                self.current.parts.push(part);
            }
            "EXT-X-PRELOAD-HINT" => {
                let attrs = attributes(value)?;
                let is_part = attrs.iter().any(|(k, v)| *k == "TYPE" && *v == "PART");
                if let (true, Some((_, u))) = (is_part, attrs.iter().find(|(k, _)| *k == "URI")) {
                    p.preload_hint = Some(uri(u)?);
                }
            }
            "EXT-X-RENDITION-REPORT" => {
                if p.reports.len() >= MAX_REPORTS {
                    return Err("too many rendition reports");
                }
                p.reports.push(report(value)?);
            }
            "EXT-X-ENDLIST" => p.ended = true,
            "EXT-X-STREAM-INF" => return Err("a master playlist"),
            _ => {}
        }
        Ok(())
    }

    /// The end of the playlist: the open segment, if it has parts.
    fn finish(mut self) -> Result<ReadMedia, &'static str> {
        if self.duration.is_some() {
            return Err("EXTINF without a URI");
        }
        if !self.current.parts.is_empty() {
            self.close_segment()?;
        }
        Ok(self.p)
    }

    /// Numbers the segment being read, gives it and its parts their date-times and its
    /// map, and appends it.
    fn close_segment(&mut self) -> Result<(), &'static str> {
        if self.p.segments.len() >= MAX_SEGMENTS {
            return Err("too many segments");
        }
        let mut segment = std::mem::take(&mut self.current);
        segment.sequence = u64::try_from(self.p.segments.len())
            .ok()
            .and_then(|n| {
                self.p
                    .media_sequence
                    .checked_add(self.p.skipped)?
                    .checked_add(n)
            })
            .ok_or("media sequence out of range")?;
        self.discontinuity_sequence = self
            .discontinuity_sequence
            .checked_add(std::mem::take(&mut self.discontinuities))
            .ok_or("discontinuity sequence out of range")?;
        segment.discontinuity_sequence = self.discontinuity_sequence;
        segment.map.clone_from(&self.map);
        if segment.program_date_time_ms.is_none() && !segment.discontinuity {
            segment.program_date_time_ms = self.carried;
        }
        let mut at = segment.program_date_time_ms;
        for part in &mut segment.parts {
            part.program_date_time_ms = at;
            at = at.map(|ms| ms.saturating_add(millis(part.duration)));
        }
        self.carried = match (segment.program_date_time_ms, segment.duration) {
            (Some(ms), Some(d)) => Some(ms.saturating_add(millis(d))),
            _ => None,
        };
        self.started = true;
        self.p.segments.push(segment);
        Ok(())
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// An `EXT-X-PART`'s attributes.
fn part(list: &str) -> Result<ReadPart, &'static str> {
    let mut part = ReadPart::default();
    let mut has = (false, false);
    for (k, v) in attributes(list)? {
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
        return Err("EXT-X-PART without DURATION or URI");
    }
    Ok(part)
}

/// An `EXT-X-RENDITION-REPORT`'s attributes.
fn report(list: &str) -> Result<RenditionReport, &'static str> {
    let mut report = RenditionReport {
        uri: String::new(),
        last_msn: 0,
        last_part: None,
    };
    for (k, v) in attributes(list)? {
        match k {
            "URI" => report.uri = uri(v)?,
            "LAST-MSN" => report.last_msn = integer(v)?,
            "LAST-PART" => {
                report.last_part =
                    Some(u32::try_from(integer(v)?).map_err(|_| "LAST-PART out of range")?);
            }
            _ => {}
        }
    }
    Ok(report)
}

/// An `EXT-X-STREAM-INF`'s attributes (the URI comes on the next line).
fn stream_inf(list: &str) -> Result<ReadVariant, &'static str> {
    let mut variant = ReadVariant::default();
    for (k, v) in attributes(list)? {
        match k {
            "BANDWIDTH" => variant.bandwidth = Some(integer(v)?),
            "AVERAGE-BANDWIDTH" => variant.average_bandwidth = Some(integer(v)?),
            "CODECS" => variant.codecs = Some(v.to_owned()),
            "RESOLUTION" => {
                let (w, h) = v.split_once(['x', 'X']).ok_or("RESOLUTION is not WxH")?;
                variant.resolution = Some((integer(w)?, integer(h)?));
            }
            _ => {}
        }
    }
    Ok(variant)
}

#[cfg(test)]
mod tests;
