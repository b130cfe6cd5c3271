//! What readers see: immutable snapshots of a stream, built whole by the writer and swapped
//! in at once, so a request never observes a master playlist from one moment and a media
//! playlist from another.
//!
//! Everything a response needs that does not depend on the request (body, `ETag`,
//! `Cache-Control`) is computed here, once per change, not once per request.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use domain::hls::LlWindow;
use domain::segment::SegmentFormat;
use domain::{RenditionName, StreamName};
use http::HeaderValue;
use serde::{Deserialize, Serialize};

/// `Cache-Control` of a segment: its bytes never change under a URL, so a browser keeps it
/// a year; a shared cache two minutes at most (`s-maxage`): a stream can turn private and a
/// recording be deleted, and a cache that nobody purges must not serve it on for a year
/// (issue 45 item 7).
pub(crate) const SEGMENT_CACHE_CONTROL: HeaderValue =
    HeaderValue::from_static("public, max-age=31536000, s-maxage=120, immutable");

/// Seconds an ended playlist may be cached: it will not change again (unless the stream
/// comes back, which a minute of staleness tolerates).
pub(crate) const ENDED_MAX_AGE: u64 = 60;

/// How many part targets a cache may keep the answer to a blocking reload (`_HLS_msn`,
/// with or without `_HLS_part` and `_HLS_skip`). The answer lists what was asked for (or
/// later), so it is right for every later request of that exact URL: a shared cache keeps
/// one copy and makes every identical request that arrives while the first is held wait
/// for that one fetch, instead of sending each to the origin. About a segment's worth (2 s
/// at 0.333 s parts): by then players ask for later parts, and nobody asks that URL again.
const BLOCKING_PART_TARGETS: f64 = 6.0;

/// `Cache-Control` of a blocking reload's answer for `part_target`: six part targets,
/// rounded to whole seconds, at least one. The common values are static (no allocation
/// per request).
pub(crate) fn blocking_cache_control(part_target: std::time::Duration) -> HeaderValue {
    let secs = (part_target.as_secs_f64() * BLOCKING_PART_TARGETS).round();
    match secs as u64 {
        0 | 1 => HeaderValue::from_static("public, max-age=1"),
        2 => HeaderValue::from_static("public, max-age=2"),
        3 => HeaderValue::from_static("public, max-age=3"),
        4 => HeaderValue::from_static("public, max-age=4"),
        5 => HeaderValue::from_static("public, max-age=5"),
        6 => HeaderValue::from_static("public, max-age=6"),
        n => HeaderValue::try_from(format!("public, max-age={n}"))
            .unwrap_or(HeaderValue::from_static("public, max-age=6")),
    }
}

/// One servable body with its validators.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    /// Shared with every response; cloning is a reference count, not a copy.
    pub(crate) body: Bytes,
    /// Strong validator, quoted.
    pub(crate) etag: HeaderValue,
    /// How long clients and caches may keep it.
    pub(crate) cache_control: HeaderValue,
    /// The signed statement of the media it is, served at its URL plus `.sig`: the exact
    /// envelope the ingest signed and the node verified, for viewers to check the media
    /// themselves (issue 31). `None` for playlists, and for media a node holds without one.
    pub(crate) signed: Option<Arc<Document>>,
}

impl Document {
    /// A playlist: the `ETag` is a hash of the text, so identical playlists on different
    /// nodes (which see the same events) validate against each other.
    pub(crate) fn playlist(text: String, max_age: u64) -> Self {
        let body = Bytes::from(text);
        let etag = quoted(&format!("{:016x}", fnv1a(&body)));
        let cache_control = HeaderValue::try_from(format!("public, max-age={max_age}"))
            .unwrap_or(HeaderValue::from_static("no-cache"));
        Document {
            body,
            etag,
            cache_control,
            signed: None,
        }
    }

    /// An LL-HLS part: named like a segment, with its index.
    pub(crate) fn part(session: domain::SessionId, sequence: u64, index: u32, body: Bytes) -> Self {
        let etag = quoted(&format!(
            "{session}-{sequence:x}-{index:x}-{:x}",
            body.len()
        ));
        Document {
            body,
            etag,
            cache_control: SEGMENT_CACHE_CONTROL,
            signed: None,
        }
    }

    /// A CMAF init segment: validated by a hash of its bytes, and not immutable: its URL is
    /// the rendition's, not the publish session's, and every session changes it under the
    /// same URL (its C2PA manifest names the session's keys; other encoder settings change
    /// the rest). A shared cache keeps it as briefly as the live playlists
    /// (`s-maxage`), revalidating it (`If-None-Match`, a 304 without a body) at most once
    /// per `max_age` whatever the audience. A browser revalidates it on every use
    /// (`max-age=0`): a player that starts again right after its publisher came back
    /// would otherwise take the last session's init from its own cache, and refuse the
    /// new session's fragments against it.
    pub(crate) fn init(body: Bytes, max_age: u64) -> Self {
        let etag = quoted(&format!("{:016x}", fnv1a(&body)));
        let cache_control = HeaderValue::try_from(format!("public, max-age=0, s-maxage={max_age}"))
            .unwrap_or(HeaderValue::from_static("no-cache"));
        Document {
            body,
            etag,
            cache_control,
            signed: None,
        }
    }

    /// A segment: named by session, sequence number and length, which identify its bytes.
    pub(crate) fn segment(session: domain::SessionId, sequence: u64, body: Bytes) -> Self {
        let etag = quoted(&format!("{session}-{sequence:x}-{:x}", body.len()));
        Document {
            body,
            etag,
            cache_control: SEGMENT_CACHE_CONTROL,
            signed: None,
        }
    }
}

impl Document {
    /// This media with `envelope`, its signed statement (see [`Document::signed`]): a
    /// document of its own with the media's `Cache-Control` (immutable for segments and
    /// parts: the statement of a URL never changes either) and an `ETag` hashed from the
    /// envelope once, here, so every node that verified the same statement validates alike.
    pub(crate) fn with_signed(mut self, envelope: Option<Bytes>) -> Self {
        self.signed =
            envelope.map(|body| Arc::new(Document::statement(body, self.cache_control.clone())));
        self
    }

    /// A signed statement's envelope served as it is (a sidecar, a part-key delegation),
    /// kept as long as `cache_control` says.
    pub(crate) fn statement(body: Bytes, cache_control: HeaderValue) -> Self {
        Document {
            etag: quoted(&format!("{:016x}", fnv1a(&body))),
            body,
            cache_control,
            signed: None,
        }
    }
}

/// `max-age` of a live playlist: half the target duration, rounded down, at least 1 s, so
/// a cached copy is never more than half a segment behind.
pub(crate) fn live_max_age(target_duration_secs: u64) -> u64 {
    (target_duration_secs / 2).max(1)
}

fn quoted(tag: &str) -> HeaderValue {
    // Only hex digits and '-' go in, which are always valid header bytes.
    HeaderValue::try_from(format!("\"{tag}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// FNV-1a, 64 bit: stable across builds and machines (unlike `DefaultHasher`), which is
/// what a validator shared by several nodes needs. Not a security boundary.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A rendition as served: its media playlist and the segments still fetchable.
#[derive(Debug)]
pub(crate) struct RenditionView {
    /// The media playlist.
    pub(crate) playlist: Document,
    /// The delta update (`_HLS_skip=YES`) of an LL-HLS rendition, rendered with the full
    /// playlist, never per request.
    pub(crate) delta: Option<Document>,
    /// How its segments are packaged: which extension is served (`.ts` or `.m4s`).
    pub(crate) format: SegmentFormat,
    /// `init.mp4` of a CMAF rendition.
    pub(crate) init: Option<Document>,
    /// The publish session that announced the rendition last, whose init segment `init`
    /// is (a publisher that reconnects announces it again, often with other bytes).
    pub(crate) session: domain::SessionId,
    /// The LL-HLS window as rendered, to answer blocking requests (`_HLS_msn`,
    /// `_HLS_part`) and preload hints against this very snapshot.
    pub(crate) ll: Option<LlWindow>,
    /// Listed segments plus the few that slid out recently, by ascending sequence number.
    pub(crate) segments: Vec<(u64, Document)>,
    /// Bytes of the parts listed (and a few just before), by ascending (segment, index).
    pub(crate) parts: Vec<((u64, u32), Document)>,
    /// The signed part-key delegations of the runs its parts belong to (`{seq}.partkey`),
    /// by their first and last segment, ascending.
    pub(crate) part_keys: Vec<((u64, u64), Document)>,
}

impl RenditionView {
    /// The segment with this sequence number, if still held.
    pub(crate) fn segment(&self, sequence: u64) -> Option<&Document> {
        self.segments
            .binary_search_by_key(&sequence, |(seq, _)| *seq)
            .ok()
            .and_then(|i| self.segments.get(i))
            .map(|(_, doc)| doc)
    }

    /// Part `index` of segment `sequence`, if held.
    pub(crate) fn part(&self, sequence: u64, index: u32) -> Option<&Document> {
        self.parts
            .binary_search_by_key(&(sequence, index), |(key, _)| *key)
            .ok()
            .and_then(|i| self.parts.get(i))
            .map(|(_, doc)| doc)
    }

    /// The delegation whose run covers segment `sequence`, if held.
    pub(crate) fn part_key(&self, sequence: u64) -> Option<&Document> {
        self.part_keys
            .iter()
            .rev()
            .find(|((first, last), _)| (*first..=*last).contains(&sequence))
            .map(|(_, doc)| doc)
    }
}

/// A stream as served.
#[derive(Debug)]
pub(crate) struct StreamView {
    /// What `/api/v1/streams` says about it.
    pub(crate) summary: StreamSummary,
    /// `None` until some rendition has a description and a segment.
    pub(crate) master: Option<Document>,
    /// Every rendition that has published at least one segment, dropped ones included
    /// (their playlists carry ENDLIST and their last segments stay fetchable).
    pub(crate) renditions: HashMap<RenditionName, Arc<RenditionView>>,
}

/// One stream in `/api/v1/streams`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSummary {
    /// The public stream name.
    pub name: StreamName,
    /// False once the publisher has ended; the stream stays listed with its last window.
    pub live: bool,
    /// Path of the master playlist on this node (`/live/{name}/master.m3u8`).
    pub master_url: String,
    /// Path of its latest verified thumbnail (`/live/{name}/thumbnail.jpg`), once the
    /// node has one; its signed statement is at the same path plus `.sig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// The renditions the master playlist lists, in its order.
    pub renditions: Vec<RenditionSummary>,
    /// Its time-shift window, when this node keeps one (a live stream being recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dvr: Option<crate::DvrSummary>,
}

/// One rendition in `/api/v1/streams`: the same facts as its master-playlist variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionSummary {
    /// The rendition name (`720p`).
    pub name: RenditionName,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// RFC 6381 codecs.
    pub codecs: String,
    /// Frames per second.
    pub frame_rate: f64,
    /// Measured peak bitrate in bit/s (BANDWIDTH).
    pub bandwidth: u64,
    /// Measured average bitrate in bit/s (AVERAGE-BANDWIDTH).
    pub average_bandwidth: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_half_the_target_but_at_least_one_second() {
        assert_eq!(live_max_age(0), 1);
        assert_eq!(live_max_age(1), 1);
        assert_eq!(live_max_age(2), 1);
        assert_eq!(live_max_age(5), 2);
        assert_eq!(live_max_age(6), 3);
    }

    #[test]
    fn blocking_answers_are_kept_six_part_targets() {
        let kept = |ms| blocking_cache_control(std::time::Duration::from_millis(ms));
        assert_eq!(kept(333), "public, max-age=2");
        assert_eq!(kept(334), "public, max-age=2");
        assert_eq!(kept(100), "public, max-age=1");
        assert_eq!(kept(0), "public, max-age=1");
        assert_eq!(kept(1000), "public, max-age=6");
        assert_eq!(kept(2000), "public, max-age=12");
    }

    #[test]
    fn playlist_etag_follows_content() {
        let a = Document::playlist("#EXTM3U\n".into(), 1);
        let b = Document::playlist("#EXTM3U\n".into(), 1);
        let c = Document::playlist("#EXTM3U\n#EXT-X-ENDLIST\n".into(), 60);
        assert_eq!(a.etag, b.etag);
        assert_ne!(a.etag, c.etag);
        assert_eq!(c.cache_control, "public, max-age=60");
    }

    #[test]
    fn segment_lookup_finds_only_held_sequences() {
        let view = RenditionView {
            playlist: Document::playlist(String::new(), 1),
            delta: None,
            format: SegmentFormat::Ts,
            init: None,
            session: domain::SessionId(1),
            ll: None,
            parts: Vec::new(),
            part_keys: Vec::new(),
            segments: [3u64, 4, 7]
                .into_iter()
                .map(|s| {
                    (
                        s,
                        Document::segment(domain::SessionId(1), s, Bytes::from_static(b"x")),
                    )
                })
                .collect(),
        };
        assert!(view.segment(4).is_some());
        assert!(view.segment(5).is_none());
        assert!(view.segment(8).is_none());
    }
}
