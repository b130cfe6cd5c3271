//! Media playlists of CMAF renditions without LL-HLS parts, pure: what
//! `domain::playlist::MediaWindow::render` writes for MPEG-TS, with `EXT-X-MAP` naming the
//! init segment and `{seq}.m4s` URIs. Used live (a CMAF rendition without a part target)
//! and for recordings (`vod`: `EXT-X-PLAYLIST-TYPE:VOD` and `EXT-X-ENDLIST`).
//!
//! Written here, over the domain's `MediaWindow` bookkeeping (entries, target,
//! discontinuity sequence), because the domain crate only renders MPEG-TS windows; its
//! natural home is a CMAF option of `MediaWindow::render` / `render_vod` in
//! `domain::playlist`, where it can move unchanged.

use std::fmt::Write as _;

use domain::playlist::MediaWindow;

/// The init segment's URI, relative to the media playlist.
pub(crate) const INIT_URI: &str = "init.mp4";

/// `EXT-X-VERSION` of a playlist with `EXT-X-MAP` on fragmented MP4 (RFC 8216 §7).
const VERSION: u8 = 7;

/// Renders `window` as a CMAF media playlist; `vod` for a finished recording.
pub(crate) fn render(window: &MediaWindow, vod: bool) -> String {
    let mut out = String::with_capacity(256 + 48 * window.entries().len());
    let first = window.entries().next();
    let _ = writeln!(out, "#EXTM3U");
    let _ = writeln!(out, "#EXT-X-VERSION:{VERSION}");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", window.target_duration());
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
        first.map_or(0, |e| e
            .discontinuity_sequence
            .saturating_sub(u64::from(e.discontinuity)))
    );
    let _ = writeln!(out, "#EXT-X-INDEPENDENT-SEGMENTS");
    let _ = writeln!(out, "#EXT-X-MAP:URI=\"{INIT_URI}\"");
    for e in window.entries() {
        if e.discontinuity {
            let _ = writeln!(out, "#EXT-X-DISCONTINUITY");
        }
        let _ = writeln!(out, "#EXTINF:{:.5},", e.duration.as_secs_f64());
        if e.gap {
            let _ = writeln!(out, "#EXT-X-GAP");
        }
        let _ = writeln!(out, "{}.m4s", e.sequence);
    }
    if vod || window.is_ended() {
        let _ = writeln!(out, "#EXT-X-ENDLIST");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use domain::playlist::Entry;

    use super::*;

    fn entry(sequence: u64, discontinuity: bool, gap: bool) -> Entry {
        Entry {
            sequence,
            duration: Duration::from_millis(2002),
            discontinuity_sequence: u64::from(discontinuity),
            discontinuity,
            gap,
        }
    }

    #[test]
    fn lists_fragments_after_the_map_and_parses() {
        let mut w = MediaWindow::new(3, Duration::from_secs(2));
        for e in [
            entry(7, false, false),
            entry(8, false, true),
            entry(9, true, false),
            entry(10, true, false),
        ] {
            let _ = w.push(Entry {
                discontinuity: e.sequence == 9,
                ..e
            });
        }
        let text = render(&w, false);
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\"\n"), "{text}");
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:8\n"), "{text}");
        assert!(text.contains("#EXT-X-GAP\n8.m4s\n"), "{text}");
        assert!(!text.contains("ENDLIST"));
        let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).expect("parses");
        let uris: Vec<_> = parsed.segments.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, ["8.m4s", "9.m4s", "10.m4s"]);
        assert!(parsed.segments[1].discontinuity);

        let vod = render(&w, true);
        assert!(vod.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"));
        assert!(vod.ends_with("#EXT-X-ENDLIST\n"));
    }
}
