//! The live media playlist of a rendition without LL-HLS parts: a sliding window of
//! segments ([`MediaWindow`]), rendered for MPEG-TS ([`MediaWindow::render`], `{seq}.ts`)
//! or CMAF ([`MediaWindow::render_cmaf`]: `EXT-X-MAP` naming the init segment, `{seq}.m4s`).

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

use m3u8_rs::{ExtTag, MediaPlaylist, MediaSegment};

use super::{ceil_secs, discontinuity_tags, write_discontinuities, write_to_string};
use crate::segment::SegmentMeta;

/// The init segment's URI, relative to the media playlist.
const INIT_URI: &str = "init.mp4";

/// `EXT-X-VERSION` of a playlist with `EXT-X-MAP` on fragmented MP4 (RFC 8216 §7).
const CMAF_VERSION: u8 = 7;

/// One line item of a media playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Media sequence number; the URI is `{sequence}.ts` (or `.m4s`).
    pub sequence: u64,
    /// EXTINF.
    pub duration: Duration,
    /// Discontinuity sequence number of this segment.
    pub discontinuity_sequence: u64,
    /// Whether a discontinuity comes before it. Rendered for the first listed entry only
    /// (one `#EXT-X-DISCONTINUITY`); a later one is tagged as far as its
    /// `discontinuity_sequence` moved on from the entry before it.
    pub discontinuity: bool,
    /// `#EXT-X-GAP`: the segment was never published (for example its signature never came).
    pub gap: bool,
}

impl Entry {
    /// The entry for a published segment.
    pub fn published(meta: &SegmentMeta) -> Self {
        Entry {
            sequence: meta.sequence,
            duration: meta.duration,
            discontinuity_sequence: meta.discontinuity_sequence,
            discontinuity: meta.discontinuity,
            gap: false,
        }
    }
}

/// Why an entry was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// Its sequence number is not after the last one: a replay or a reorder.
    NotAfterLast {
        /// The last sequence number in the window.
        last: u64,
    },
}

/// The sliding window of one rendition's live media playlist.
#[derive(Debug, Clone)]
pub struct MediaWindow {
    capacity: usize,
    /// Never lowered: EXT-X-TARGETDURATION must not change downwards while a playlist lives.
    target_duration: u64,
    entries: VecDeque<Entry>,
    ended: bool,
}

impl MediaWindow {
    /// A window of at most `capacity` entries for segments targeting `target` seconds.
    pub fn new(capacity: usize, target: Duration) -> Self {
        MediaWindow {
            capacity: capacity.max(1),
            target_duration: ceil_secs(target).max(1),
            entries: VecDeque::with_capacity(capacity.clamp(1, 64) + 1),
            ended: false,
        }
    }

    /// A window that never slides: every entry stays, for a recording (see `vod`).
    pub fn unbounded(target: Duration) -> Self {
        MediaWindow {
            capacity: usize::MAX,
            target_duration: ceil_secs(target).max(1),
            entries: VecDeque::new(),
            ended: false,
        }
    }

    /// Appends an entry; returns the sequence numbers that slid out of the window.
    /// Sequence numbers must increase (gaps in numbering are allowed: they stay gaps).
    pub fn push(&mut self, entry: Entry) -> Result<Vec<u64>, PushError> {
        if let Some(last) = self.entries.back() {
            if entry.sequence <= last.sequence {
                return Err(PushError::NotAfterLast {
                    last: last.sequence,
                });
            }
        }
        self.target_duration = self.target_duration.max(ceil_secs(entry.duration));
        self.ended = false;
        self.entries.push_back(entry);
        let mut evicted = Vec::new();
        while self.entries.len() > self.capacity {
            if let Some(old) = self.entries.pop_front() {
                evicted.push(old.sequence);
            }
        }
        Ok(evicted)
    }

    /// Marks the playlist as finished (`#EXT-X-ENDLIST`); a later push reopens it.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// Whether `#EXT-X-ENDLIST` is present.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The entries currently listed, oldest first.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Whether `sequence` is listed (and not as a gap).
    pub fn contains(&self, sequence: u64) -> bool {
        self.entries
            .iter()
            .any(|e| e.sequence == sequence && !e.gap)
    }

    /// The last sequence number listed.
    pub fn last_sequence(&self) -> Option<u64> {
        self.entries.back().map(|e| e.sequence)
    }

    /// EXT-X-TARGETDURATION in seconds.
    pub fn target_duration(&self) -> u64 {
        self.target_duration
    }

    /// Renders the MPEG-TS media playlist text.
    pub fn render(&self) -> String {
        let playlist = self.playlist();
        write_to_string(|w| playlist.write_to(w))
    }

    /// Renders the CMAF media playlist text: a rendition without parts.
    pub fn render_cmaf(&self) -> String {
        self.cmaf(false)
    }

    /// The MPEG-TS playlist, for m3u8-rs to write.
    pub(super) fn playlist(&self) -> MediaPlaylist {
        let first = self.entries.front();
        MediaPlaylist {
            version: Some(3),
            target_duration: self.target_duration,
            media_sequence: first.map_or(0, |e| e.sequence),
            discontinuity_sequence: first.map_or(0, first_discontinuity_sequence),
            end_list: self.ended,
            independent_segments: true,
            segments: self
                .entries
                .iter()
                .scan(None, |before, e| {
                    let tags =
                        discontinuity_tags(*before, e.discontinuity_sequence, e.discontinuity);
                    *before = Some(e.discontinuity_sequence);
                    // m3u8-rs writes one `EXT-X-DISCONTINUITY`; a jump by more is the rest.
                    let tag = |tag: &str| ExtTag {
                        tag: tag.to_owned(),
                        rest: None,
                    };
                    let mut unknown_tags: Vec<ExtTag> =
                        (1..tags).map(|_| tag("X-DISCONTINUITY")).collect();
                    if e.gap {
                        unknown_tags.push(tag("X-GAP"));
                    }
                    Some(MediaSegment {
                        uri: format!("{}.ts", e.sequence),
                        duration: e.duration.as_secs_f32(),
                        discontinuity: tags > 0,
                        unknown_tags,
                        ..MediaSegment::default()
                    })
                })
                .collect(),
            ..MediaPlaylist::default()
        }
    }

    /// The CMAF playlist, written by hand (m3u8-rs has no `EXT-X-MAP` of its own); `vod`
    /// for a finished recording (`EXT-X-PLAYLIST-TYPE:VOD` and `EXT-X-ENDLIST`).
    pub(super) fn cmaf(&self, vod: bool) -> String {
        let mut out = String::with_capacity(256 + 48 * self.entries.len());
        let first = self.entries.front();
        let _ = writeln!(out, "#EXTM3U");
        let _ = writeln!(out, "#EXT-X-VERSION:{CMAF_VERSION}");
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", self.target_duration);
        if vod {
            let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:VOD");
        }
        let _ = writeln!(
            out,
            "#EXT-X-MEDIA-SEQUENCE:{}",
            first.map_or(0, |e| e.sequence)
        );
        let _ = writeln!(
            out,
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            first.map_or(0, first_discontinuity_sequence)
        );
        let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
        let _ = writeln!(out, "#EXT-X-MAP:URI=\"{INIT_URI}\"");
        let mut before = None;
        for e in &self.entries {
            write_discontinuities(&mut out, before, e.discontinuity_sequence, e.discontinuity);
            before = Some(e.discontinuity_sequence);
            let _ = writeln!(out, "#EXTINF:{:.5},", e.duration.as_secs_f64());
            if e.gap {
                let _ = writeln!(out, "#EXT-X-GAP");
            }
            let _ = writeln!(out, "{}.m4s", e.sequence);
        }
        if vod || self.ended {
            let _ = writeln!(out, "#EXT-X-ENDLIST");
        }
        out
    }
}

/// `EXT-X-DISCONTINUITY-SEQUENCE` of a window that starts with `first`: the discontinuity
/// before it, if listed, is not counted yet.
fn first_discontinuity_sequence(first: &Entry) -> u64 {
    first
        .discontinuity_sequence
        .saturating_sub(u64::from(first.discontinuity))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(in crate::hls) fn entry(seq: u64, ms: u64, disc_seq: u64, disc: bool) -> Entry {
        Entry {
            sequence: seq,
            duration: Duration::from_millis(ms),
            discontinuity_sequence: disc_seq,
            discontinuity: disc,
            gap: false,
        }
    }

    #[test]
    fn renders_a_sliding_window() {
        let mut w = MediaWindow::new(3, Duration::from_secs(2));
        for seq in 0..5 {
            w.push(entry(seq, 2000, 0, false)).expect("in order");
        }
        let text = w.render();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:2"), "{text}");
        assert!(text.contains("#EXT-X-TARGETDURATION:2"), "{text}");
        assert!(text.contains("2.ts") && text.contains("4.ts") && !text.contains("\n1.ts"));
        assert!(!text.contains("ENDLIST"));
        w.end();
        assert!(w.render().contains("#EXT-X-ENDLIST"));
    }

    #[test]
    fn gaps_and_discontinuities_are_marked() {
        let mut w = MediaWindow::new(6, Duration::from_secs(2));
        w.push(entry(7, 2000, 0, false)).expect("push");
        let mut gap = entry(8, 2000, 0, false);
        gap.gap = true;
        w.push(gap).expect("push");
        w.push(entry(9, 2000, 1, true)).expect("push");
        let text = w.render();
        assert!(text.contains("#EXT-X-GAP\n#EXTINF:2,\n8.ts"), "{text}");
        assert!(
            text.contains("#EXT-X-DISCONTINUITY\n#EXTINF:2,\n9.ts"),
            "{text}"
        );
        assert!(!w.contains(8));
        assert!(w.contains(9));
    }

    #[test]
    fn rejects_replays() {
        let mut w = MediaWindow::new(6, Duration::from_secs(2));
        w.push(entry(3, 2000, 0, false)).expect("push");
        assert_eq!(
            w.push(entry(3, 2000, 0, false)),
            Err(PushError::NotAfterLast { last: 3 })
        );
    }

    fn cmaf_entry(sequence: u64, discontinuity: bool, gap: bool) -> Entry {
        Entry {
            sequence,
            duration: Duration::from_millis(2002),
            discontinuity_sequence: u64::from(discontinuity),
            discontinuity,
            gap,
        }
    }

    #[test]
    fn cmaf_lists_fragments_after_the_map_and_parses() {
        let mut w = MediaWindow::new(3, Duration::from_secs(2));
        for e in [
            cmaf_entry(7, false, false),
            cmaf_entry(8, false, true),
            cmaf_entry(9, true, false),
            cmaf_entry(10, true, false),
        ] {
            let _ = w.push(Entry {
                discontinuity: e.sequence == 9,
                ..e
            });
        }
        let text = w.render_cmaf();
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\"\n"), "{text}");
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:8\n"), "{text}");
        assert!(text.contains("#EXT-X-GAP\n8.m4s\n"), "{text}");
        assert!(!text.contains("ENDLIST"));
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses");
        let uris: Vec<_> = parsed.segments.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, ["8.m4s", "9.m4s", "10.m4s"]);
        assert!(parsed.segments[1].discontinuity);

        let vod = w.render_cmaf_vod();
        assert!(vod.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
        assert!(vod.ends_with("#EXT-X-ENDLIST\n"));
    }

    /// The exact text of both formats, so a change to either shows here first.
    #[test]
    fn both_formats_are_pinned() {
        let mut w = MediaWindow::new(3, Duration::from_secs(2));
        w.push(entry(7, 2000, 3, false)).expect("push");
        w.push(Entry {
            gap: true,
            ..entry(8, 2002, 3, false)
        })
        .expect("push");
        w.push(entry(9, 1500, 4, true)).expect("push");
        assert_eq!(
            w.render(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-TARGETDURATION:3\n\
             #EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-DISCONTINUITY-SEQUENCE:3\n\
             #EXTINF:2,\n7.ts\n#EXT-X-GAP\n#EXTINF:2.002,\n8.ts\n\
             #EXT-X-DISCONTINUITY\n#EXTINF:1.5,\n9.ts\n"
        );
        assert_eq!(
            w.render_cmaf(),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:7\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.00000,\n7.m4s\n\
             #EXTINF:2.00200,\n#EXT-X-GAP\n8.m4s\n\
             #EXT-X-DISCONTINUITY\n#EXTINF:1.50000,\n9.m4s\n"
        );
    }

    proptest! {
        #[test]
        fn rendered_window_parses_back_and_respects_target_duration(
            durs in proptest::collection::vec(500u64..6000, 1..40),
            cap in 2usize..10,
        ) {
            let mut w = MediaWindow::new(cap, Duration::from_secs(2));
            let mut disc_seq = 0;
            for (i, ms) in durs.iter().enumerate() {
                let disc = i % 7 == 6;
                disc_seq += u64::from(disc);
                w.push(entry(i as u64 + 10, *ms, disc_seq, disc)).expect("in order");
            }
            let text = w.render();
            let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses");
            prop_assert!(parsed.segments.len() <= cap);
            prop_assert_eq!(parsed.media_sequence, w.entries().next().map(|e| e.sequence).unwrap_or(0));
            for s in &parsed.segments {
                prop_assert!(f64::from(s.duration) <= parsed.target_duration as f64 + 1e-6);
            }
            // Sequence numbers listed are consecutive from MEDIA-SEQUENCE.
            for (i, s) in parsed.segments.iter().enumerate() {
                prop_assert_eq!(s.uri.clone(), format!("{}.ts", parsed.media_sequence + i as u64));
            }
        }
    }
}
