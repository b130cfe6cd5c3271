//! Time-shift (DVR): a live stream's last minutes stay seekable.
//!
//! ```text
//! recorder thread ── every entry it lists ──► Dvr::listed (per stream: the recording in
//!                                             progress, each rendition's last `window`)
//! /live/{s}/dvr.m3u8, /live/{s}/{r}/dvr.m3u8 ◄── Dvr::master_playlist / media_playlist
//! /live/{s}/{r}/{seq}.m4s (and .ts, .sig) past the live window ◄── Dvr::locate, then the
//!     recording's file: on this disk while it waits for the archive, else the archive
//! ```
//!
//! The time-shift window is the recording in progress seen through a window of its latest
//! entries: nothing is stored twice. Its playlists name segments as the live tree does
//! (`{seq}.m4s` beside `index.m3u8`), so a segment has one URL whether the live window or
//! the time-shift window lists it, caches keep it once, and the player checks it with the
//! same statements and the same rules as live media (judged at the viewer's clock). A
//! node that does not record (the other nodes of `up`) can share the index of the node
//! that does ([`crate::Node::with_time_shift_of`]): the files are on the same disk, then in
//! the same archive.
//!
//! Bounded: per stream and rendition at most `window` of entries (and never more than
//! [`MAX_ENTRIES`]), each a few words; no media bytes are held here.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use domain::hls::{Entry, MediaWindow};
use domain::paths::PublicPath;
use domain::{RenditionName, SessionId, StreamName};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// The default time-shift window (`--dvr-window`).
pub const DEFAULT_DVR_WINDOW: Duration = Duration::from_secs(30 * 60);

/// The most entries one rendition's window lists, whatever the window (a day of 2 s
/// segments): bounds memory and playlist size against a mistaken setting.
const MAX_ENTRIES: usize = 43_200;

/// A stream's time-shift window as `/api/v1/streams` tells the player.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DvrSummary {
    /// The window's master playlist (`/live/{stream}/dvr.m3u8`).
    pub master_url: String,
    /// How many seconds back it reaches now (the shortest rendition's).
    pub seconds: f64,
}

/// The time-shift windows of the streams a node records.
#[derive(Debug)]
pub(crate) struct Dvr {
    window: Duration,
    /// The recorder's directory: a recording's files are there until archived.
    root: PathBuf,
    streams: RwLock<HashMap<StreamName, DvrStream>>,
}

#[derive(Debug)]
struct DvrStream {
    /// The recording in progress (a recording's id is its first session's).
    recording: SessionId,
    /// Its latest master playlist, as the recorder got it.
    master: Option<Bytes>,
    renditions: BTreeMap<RenditionName, DvrRendition>,
}

#[derive(Debug)]
struct DvrRendition {
    entries: VecDeque<Entry>,
    /// The sum of the entries' durations.
    listed: Duration,
    /// CMAF (`{seq}.m4s` and `init.mp4`), else MPEG-TS.
    cmaf: bool,
    target: Duration,
}

impl Dvr {
    /// Windows of `window` over the recordings under `root`.
    pub(crate) fn new(window: Duration, root: PathBuf) -> Self {
        Dvr {
            window,
            root,
            streams: RwLock::new(HashMap::new()),
        }
    }

    /// Called by the recorder for every entry it lists in recording `recording` of
    /// `stream` (after its file is on disk). A new recording of the stream replaces the
    /// window of the previous one.
    pub(crate) fn listed(
        &self,
        (stream, recording): (&StreamName, SessionId),
        rendition: &RenditionName,
        entry: &Entry,
        (cmaf, target): (bool, Duration),
    ) {
        let mut streams = self.streams.write();
        let s = stream_of(&mut streams, stream, recording);
        let r = s
            .renditions
            .entry(rendition.clone())
            .or_insert_with(|| DvrRendition {
                entries: VecDeque::new(),
                listed: Duration::ZERO,
                cmaf,
                target,
            });
        if r.entries
            .back()
            .is_some_and(|last| entry.sequence <= last.sequence)
        {
            return;
        }
        r.cmaf = cmaf;
        r.entries.push_back(entry.clone());
        r.listed += entry.duration;
        // Slides by duration: the oldest goes once the rest still cover the window.
        while let Some(front) = r.entries.front() {
            let rest = r.listed.saturating_sub(front.duration);
            if rest < self.window && r.entries.len() <= MAX_ENTRIES {
                break;
            }
            r.listed = rest;
            r.entries.pop_front();
        }
    }

    /// The stream's latest master playlist, for [`Dvr::master_playlist`].
    pub(crate) fn master(&self, (stream, recording): (&StreamName, SessionId), master: &Bytes) {
        let mut streams = self.streams.write();
        stream_of(&mut streams, stream, recording).master = Some(master.clone());
    }

    /// The recording ended (or stopped being recorded): its stream has no window.
    pub(crate) fn finished(&self, stream: &StreamName, recording: SessionId) {
        let mut streams = self.streams.write();
        if streams
            .get(stream)
            .is_some_and(|s| s.recording == recording)
        {
            streams.remove(stream);
        }
    }

    /// The window's master playlist: the stream's master with each variant's
    /// `{rendition}/index.m3u8` as `{rendition}/dvr.m3u8`, only the renditions it holds.
    pub(crate) fn master_playlist(&self, stream: &StreamName) -> Option<String> {
        let streams = self.streams.read();
        let s = streams.get(stream)?;
        let master = std::str::from_utf8(s.master.as_deref()?).ok()?;
        Some(dvr_master(master, |r| s.renditions.contains_key(r)))
    }

    /// A rendition's window as a live media playlist (no `EXT-X-ENDLIST`: it moves on).
    pub(crate) fn media_playlist(
        &self,
        stream: &StreamName,
        rendition: &RenditionName,
    ) -> Option<String> {
        let streams = self.streams.read();
        let r = streams.get(stream)?.renditions.get(rendition)?;
        let mut window = MediaWindow::new(r.entries.len(), r.target);
        for entry in &r.entries {
            let _ = window.push(entry.clone());
        }
        Some(if r.cmaf {
            window.render_cmaf()
        } else {
            window.render()
        })
    }

    /// The recording whose segment `sequence` of `rendition` the window lists (not as a
    /// gap), with the directory its files are written to.
    pub(crate) fn locate(
        &self,
        stream: &StreamName,
        rendition: &RenditionName,
        sequence: u64,
    ) -> Option<(SessionId, PathBuf)> {
        let streams = self.streams.read();
        let s = streams.get(stream)?;
        let r = s.renditions.get(rendition)?;
        let first = r.entries.front()?.sequence;
        let at = usize::try_from(sequence.checked_sub(first)?).ok()?;
        // Sequence numbers increase but may skip: look near the offset, then search.
        let listed = match r.entries.get(at) {
            Some(e) if e.sequence == sequence => Some(e),
            _ => r
                .entries
                .binary_search_by_key(&sequence, |e| e.sequence)
                .ok()
                .and_then(|i| r.entries.get(i)),
        };
        listed.filter(|e| !e.gap)?;
        let dir = crate::recording::recording_dir(&self.root, stream, s.recording);
        Some((s.recording, dir.join(rendition.as_str())))
    }

    /// What `/api/v1/streams` says of the stream's window, if it has one.
    pub(crate) fn summary(&self, stream: &StreamName) -> Option<DvrSummary> {
        let streams = self.streams.read();
        let s = streams.get(stream)?;
        s.master.as_ref()?;
        let seconds = s
            .renditions
            .values()
            .map(|r| r.listed)
            .min()
            .filter(|d| !d.is_zero())?;
        Some(DvrSummary {
            master_url: PublicPath::DvrMaster(stream.clone()).to_string(),
            seconds: seconds.as_secs_f64(),
        })
    }
}

/// The window of `stream`, made for `recording` if it has none or one of another
/// recording (a new recording of the stream replaces the window of the last).
fn stream_of<'a>(
    streams: &'a mut HashMap<StreamName, DvrStream>,
    stream: &StreamName,
    recording: SessionId,
) -> &'a mut DvrStream {
    let s = streams.entry(stream.clone()).or_insert_with(|| DvrStream {
        recording,
        master: None,
        renditions: BTreeMap::new(),
    });
    if s.recording != recording {
        *s = DvrStream {
            recording,
            master: None,
            renditions: BTreeMap::new(),
        };
    }
    s
}

/// `master` with every variant URI `{rendition}/index.m3u8` of a rendition `held` as
/// `{rendition}/dvr.m3u8`; a variant not held goes, with its `EXT-X-STREAM-INF`.
fn dvr_master(master: &str, held: impl Fn(&RenditionName) -> bool) -> String {
    let mut out = String::with_capacity(master.len());
    let mut pending: Vec<&str> = Vec::new();
    for line in master.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("#EXT-X-STREAM-INF") {
            pending.push(line);
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            if pending.is_empty() {
                out.push_str(line);
                out.push('\n');
            } else {
                pending.push(line);
            }
            continue;
        }
        let rendition = trimmed
            .strip_suffix("/index.m3u8")
            .and_then(|name| RenditionName::new(name).ok());
        match rendition {
            Some(r) if held(&r) => {
                for tag in pending.drain(..) {
                    out.push_str(tag);
                    out.push('\n');
                }
                out.push_str(r.as_str());
                out.push_str("/dvr.m3u8\n");
            }
            _ => pending.clear(),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(s: &str) -> StreamName {
        StreamName::new(s).expect("valid")
    }

    fn rung(s: &str) -> RenditionName {
        RenditionName::new(s).expect("valid")
    }

    fn entry(sequence: u64, ms: u64) -> Entry {
        Entry {
            sequence,
            duration: Duration::from_millis(ms),
            discontinuity_sequence: 0,
            discontinuity: false,
            gap: false,
        }
    }

    const TARGET: Duration = Duration::from_secs(2);

    #[test]
    fn the_window_slides_by_duration_and_a_new_recording_replaces_it() {
        let dvr = Dvr::new(Duration::from_secs(10), PathBuf::from("/rec"));
        let (s, r) = (name("a"), rung("360p"));
        for seq in 0..20 {
            dvr.listed((&s, SessionId(7)), &r, &entry(seq, 2000), (true, TARGET));
        }
        dvr.master(
            (&s, SessionId(7)),
            &Bytes::from_static(b"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n"),
        );
        let summary = dvr.summary(&s).expect("a window");
        assert_eq!(summary.seconds, 10.0);
        assert_eq!(summary.master_url, "/live/a/dvr.m3u8");
        assert!(dvr.locate(&s, &r, 14).is_none(), "slid out");
        let (id, dir) = dvr.locate(&s, &r, 15).expect("listed");
        assert_eq!(id, SessionId(7));
        assert_eq!(
            dir,
            PathBuf::from("/rec/a")
                .join(SessionId(7).to_string())
                .join("360p")
        );
        let text = dvr.media_playlist(&s, &r).expect("playlist");
        let p = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses");
        assert_eq!(p.media_sequence, 15);
        assert_eq!(p.segments.len(), 5);
        assert!(!p.end_list, "it moves on");
        assert_eq!(p.segments[0].uri, "15.m4s");
        dvr.listed((&s, SessionId(9)), &r, &entry(30, 2000), (true, TARGET));
        assert!(dvr.locate(&s, &r, 15).is_none());
        assert_eq!(dvr.locate(&s, &r, 30).map(|l| l.0), Some(SessionId(9)));
        dvr.finished(&s, SessionId(7));
        assert!(
            dvr.locate(&s, &r, 30).is_some(),
            "not the recording in progress"
        );
        dvr.finished(&s, SessionId(9));
        assert!(dvr.media_playlist(&s, &r).is_none());
    }

    #[test]
    fn gaps_are_listed_but_not_served() {
        let dvr = Dvr::new(Duration::from_secs(60), PathBuf::from("/rec"));
        let (s, r) = (name("a"), rung("src"));
        dvr.listed((&s, SessionId(1)), &r, &entry(3, 2000), (false, TARGET));
        let mut gap = entry(4, 2000);
        gap.gap = true;
        dvr.listed((&s, SessionId(1)), &r, &gap, (false, TARGET));
        dvr.listed((&s, SessionId(1)), &r, &entry(9, 2000), (false, TARGET));
        assert!(dvr.locate(&s, &r, 4).is_none());
        assert!(
            dvr.locate(&s, &r, 9).is_some(),
            "found past a skip in numbering"
        );
        let text = dvr.media_playlist(&s, &r).expect("playlist");
        assert!(text.contains("#EXT-X-GAP"), "{text}");
        assert!(text.contains("9.ts"), "{text}");
    }

    #[test]
    fn the_master_names_the_held_renditions_windows() {
        let master = "#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n\
            #EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720\n720p/index.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n360p/index.m3u8\n";
        let out = dvr_master(master, |r| r.as_str() == "360p");
        assert_eq!(
            out,
            "#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n360p/dvr.m3u8\n"
        );
    }

    proptest! {
        /// Whatever the durations, the window covers at least `window` once it holds
        /// that much, never drops an entry it still needs, and its playlist lists its
        /// entries in order.
        #[test]
        fn the_window_covers_what_it_should(
            durations in prop::collection::vec(100u64..4000, 1..200),
            window_s in 1u64..60,
        ) {
            let window = Duration::from_secs(window_s);
            let dvr = Dvr::new(window, PathBuf::from("/rec"));
            let (s, r) = (name("a"), rung("r"));
            let mut all = Vec::new();
            for (seq, ms) in durations.iter().enumerate() {
                let e = entry(seq as u64, *ms);
                dvr.listed((&s, SessionId(1)), &r, &e, (true, TARGET));
                all.push(e);
            }
            let text = dvr.media_playlist(&s, &r).expect("playlist");
            let p = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses");
            let first = usize::try_from(p.media_sequence).expect("small");
            let listed: Duration = all[first..].iter().map(|e| e.duration).sum();
            let total: Duration = all.iter().map(|e| e.duration).sum();
            prop_assert!(listed >= window.min(total));
            if first > 0 {
                prop_assert!(listed - all[first].duration < window);
            }
            prop_assert_eq!(p.segments.len(), all.len() - first);
            for (i, seg) in p.segments.iter().enumerate() {
                prop_assert_eq!(&seg.uri, &format!("{}.m4s", first + i));
            }
        }
    }
}
