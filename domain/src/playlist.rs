//! Playlist bookkeeping and rendering, pure: a [`MediaWindow`] takes segment descriptions
//! and renders the live media playlist; [`render_master`] renders the master playlist.
//! Callers render into memory and swap the whole text at once, so a player never reads a
//! half-written playlist.

use std::collections::VecDeque;
use std::time::Duration;

use m3u8_rs::{ExtTag, MasterPlaylist, MediaPlaylist, MediaSegment, Resolution, VariantStream};

use crate::segment::{RenditionInfo, SegmentMeta};

/// One line item of a media playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Media sequence number; the URI is `{sequence}.ts`.
    pub sequence: u64,
    /// EXTINF.
    pub duration: Duration,
    /// Discontinuity sequence number of this segment.
    pub discontinuity_sequence: u64,
    /// `#EXT-X-DISCONTINUITY` before it.
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

    /// A window that never slides: every entry stays, for a recording.
    pub fn unbounded(target: Duration) -> Self {
        MediaWindow {
            capacity: usize::MAX,
            target_duration: ceil_secs(target).max(1),
            entries: VecDeque::new(),
            ended: false,
        }
    }

    /// Renders the media playlist text.
    pub fn render(&self) -> String {
        let playlist = self.playlist();
        write_to_string(|w| playlist.write_to(w))
    }

    /// Renders the whole window as a finished recording: `#EXT-X-PLAYLIST-TYPE:VOD` and
    /// `#EXT-X-ENDLIST`.
    pub fn render_vod(&self) -> String {
        let mut playlist = self.playlist();
        playlist.playlist_type = Some(m3u8_rs::MediaPlaylistType::Vod);
        playlist.end_list = true;
        write_to_string(|w| playlist.write_to(w))
    }

    fn playlist(&self) -> MediaPlaylist {
        let first = self.entries.front();
        MediaPlaylist {
            version: Some(3),
            target_duration: self.target_duration,
            media_sequence: first.map_or(0, |e| e.sequence),
            discontinuity_sequence: first.map_or(0, |e| {
                e.discontinuity_sequence
                    .saturating_sub(u64::from(e.discontinuity))
            }),
            end_list: self.ended,
            independent_segments: true,
            segments: self
                .entries
                .iter()
                .map(|e| MediaSegment {
                    uri: format!("{}.ts", e.sequence),
                    duration: e.duration.as_secs_f32(),
                    discontinuity: e.discontinuity,
                    unknown_tags: if e.gap {
                        vec![ExtTag {
                            tag: "X-GAP".to_owned(),
                            rest: None,
                        }]
                    } else {
                        Vec::new()
                    },
                    ..MediaSegment::default()
                })
                .collect(),
            ..MediaPlaylist::default()
        }
    }
}

/// A variant line of the master playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// What the rendition is.
    pub info: RenditionInfo,
    /// Measured peak bitrate (bit/s), audio included.
    pub peak_bps: u64,
    /// Measured average bitrate (bit/s), audio included.
    pub average_bps: u64,
}

/// Renders the master playlist: one variant per rendition, in the order given.
pub fn render_master(variants: &[Variant]) -> String {
    let playlist = MasterPlaylist {
        version: Some(3),
        independent_segments: true,
        variants: variants
            .iter()
            .map(|v| VariantStream {
                uri: format!("{}/index.m3u8", v.info.name),
                bandwidth: v.peak_bps.max(1),
                average_bandwidth: Some(v.average_bps.max(1)),
                codecs: Some(v.info.codecs.to_string()),
                resolution: Some(Resolution {
                    width: u64::from(v.info.width),
                    height: u64::from(v.info.height),
                }),
                frame_rate: Some((v.info.frame_rate * 1000.0).round() / 1000.0),
                ..VariantStream::default()
            })
            .collect(),
        ..MasterPlaylist::default()
    };
    write_to_string(|w| playlist.write_to(w))
}

fn ceil_secs(d: Duration) -> u64 {
    let secs = d.as_secs();
    if d.subsec_nanos() > 0 {
        secs + 1
    } else {
        secs
    }
}

fn write_to_string(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::with_capacity(1024);
    // Writing into a Vec cannot fail, and m3u8-rs only writes UTF-8.
    let _ = write(&mut out);
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RenditionName;
    use proptest::prelude::*;

    fn entry(seq: u64, ms: u64, disc_seq: u64, disc: bool) -> Entry {
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
    fn recordings_keep_everything_and_render_as_vod() {
        let mut w = MediaWindow::unbounded(Duration::from_secs(2));
        for seq in 0..100 {
            w.push(entry(seq, 2000, 0, false)).expect("push");
        }
        let text = w.render_vod();
        let p = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses");
        assert_eq!(p.segments.len(), 100);
        assert_eq!(p.media_sequence, 0);
        assert!(p.end_list);
        assert_eq!(p.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
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

    #[test]
    fn master_lists_every_variant_with_its_attributes() {
        let info = RenditionInfo {
            name: RenditionName::new("720p").expect("valid"),
            width: 1280,
            height: 720,
            frame_rate: 29.97002997,
            codecs: "avc1.64001f,mp4a.40.2".parse().expect("valid codecs"),
            init: None,
            part_target_us: None,
        };
        let text = render_master(&[Variant {
            info,
            peak_bps: 3_200_000,
            average_bps: 2_900_000,
        }]);
        for needle in [
            "BANDWIDTH=3200000",
            "AVERAGE-BANDWIDTH=2900000",
            "RESOLUTION=1280x720",
            "FRAME-RATE=29.97",
            "CODECS=\"avc1.64001f,mp4a.40.2\"",
            "720p/index.m3u8",
        ] {
            assert!(text.contains(needle), "{needle} missing in {text}");
        }
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
