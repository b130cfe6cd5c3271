//! Where a rendered playlist names other resources, so that a query (a private stream's
//! `token=…`) can be carried into every URI of it without rendering it again.
//!
//! A playlist is rendered once per change and shared by every viewer. For a private stream
//! each viewer's copy must carry that viewer's token on every URI it lists (players resolve
//! relative URIs against the playlist's URL *without* its query, and Safari sends no
//! custom headers, so the token can only travel inside the URIs). [`UriMarks::scan`] runs
//! once, right after rendering, and records the byte offsets where URIs end: the end of
//! every URI line, and the closing quote of every `URI="…"` attribute (`EXT-X-MAP`,
//! `EXT-X-PART`, `EXT-X-PRELOAD-HINT`, `EXT-X-RENDITION-REPORT`, `EXT-X-MEDIA`,
//! `EXT-X-I-FRAME-STREAM-INF`). [`UriMarks::insert`] then makes one viewer's copy with a
//! single pass of copying. The playlists themselves are unchanged: a public stream's
//! viewers get the rendered bytes as they are.
//!
//! The URIs the cluster writes carry no query of their own, so a `?` opens the query; a URI
//! that already has one gets `&`.

/// Byte offsets in a playlist's text where a URI ends, ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UriMarks {
    /// `(offset, the URI already has a query)`.
    ends: Vec<(u32, bool)>,
}

impl UriMarks {
    /// The URI ends of a playlist (M3U8 text, lines ending in `\n` or `\r\n`).
    pub fn scan(text: &str) -> Self {
        let mut ends = Vec::new();
        let mut start = 0;
        for line in text.split_inclusive('\n') {
            let content = line.trim_end_matches(['\n', '\r']);
            if let Some(tag) = content.strip_prefix('#') {
                // Attributes: every `URI="…"` (quoted strings hold no quote, RFC 8216 §4.2).
                let mut from = 0;
                while let Some(found) = tag[from..].find("URI=\"") {
                    let value = from + found + 5;
                    let preceded = tag[..from + found]
                        .chars()
                        .next_back()
                        .is_none_or(|c| c == ':' || c == ',');
                    let Some(len) = tag[value..].find('"') else {
                        break;
                    };
                    if preceded {
                        let uri = &tag[value..value + len];
                        ends.push((offset(start + 1 + value + len), uri.contains('?')));
                    }
                    from = value + len + 1;
                }
            } else if !content.trim().is_empty() {
                ends.push((offset(start + content.len()), content.contains('?')));
            }
            start += line.len();
        }
        UriMarks { ends }
    }

    /// How many URIs were found.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the playlist names no URI.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// `text` (the playlist these marks were scanned from) with `parameter` (`token=…`)
    /// appended to the query of every URI.
    pub fn insert(&self, text: &[u8], parameter: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len() + self.ends.len() * (parameter.len() + 1));
        let mut copied = 0;
        for &(end, has_query) in &self.ends {
            let end = (end as usize).min(text.len());
            out.extend_from_slice(&text[copied..end]);
            out.push(if has_query { b'&' } else { b'?' });
            out.extend_from_slice(parameter.as_bytes());
            copied = end;
        }
        out.extend_from_slice(&text[copied..]);
        out
    }
}

/// Playlists are far below 4 GiB; an offset past that is clamped by `insert`.
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::hls::{render_master, LlWindow, MediaWindow, PartEntry, RenditionReport, Variant};
    use crate::segment::RenditionInfo;
    use crate::RenditionName;

    const TOKEN: &str = "token=aaa.bbb.ccc";

    fn ll_window(segments: u64, open_parts: usize) -> LlWindow {
        let part = |independent| PartEntry {
            duration: Duration::from_millis(333),
            independent,
            gap: false,
        };
        let mut w = LlWindow::new(6, Duration::from_secs(2), Duration::from_millis(333));
        for seq in 0..segments {
            for i in 0..6 {
                w.push_part(seq, part(i == 0), 0, Some(1_700_000_000_000))
                    .expect("in order");
            }
            w.finish_segment(seq, Duration::from_secs(2), false, (0, false), None)
                .expect("in order");
        }
        for i in 0..open_parts {
            w.push_part(segments, part(i == 0), 0, None)
                .expect("in order");
        }
        w
    }

    /// Every URI an HLS parser reads, in order.
    fn media_uris(text: &[u8]) -> Vec<String> {
        let mut uris = Vec::new();
        for line in String::from_utf8_lossy(text).lines() {
            if let Some(tag) = line.strip_prefix('#') {
                let mut rest = tag;
                while let Some(at) = rest.find("URI=\"") {
                    let value = &rest[at + 5..];
                    let end = value.find('"').expect("closed");
                    uris.push(value[..end].to_owned());
                    rest = &value[end..];
                }
            } else if !line.is_empty() {
                uris.push(line.to_owned());
            }
        }
        uris
    }

    fn check(text: &str) {
        let marks = UriMarks::scan(text);
        let before = media_uris(text.as_bytes());
        assert_eq!(marks.len(), before.len(), "{text}");
        let carried = marks.insert(text.as_bytes(), TOKEN);
        let after = media_uris(&carried);
        assert_eq!(after.len(), before.len());
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(a, &format!("{b}?{TOKEN}"));
        }
        // Taking the insertions out gives the rendered text back, byte for byte.
        let back = String::from_utf8(carried)
            .expect("utf-8")
            .replace(&format!("?{TOKEN}"), "");
        assert_eq!(back, text);
    }

    #[test]
    fn every_uri_of_every_playlist_kind_carries_the_token() {
        let info = RenditionInfo {
            name: RenditionName::new("720p").expect("valid"),
            width: 1280,
            height: 720,
            frame_rate: 30.0,
            codecs: "avc1.64001f,mp4a.40.2".parse().expect("codecs"),
            init: None,
            part_target_us: None,
        };
        let master = render_master(&[
            Variant {
                info: info.clone(),
                peak_bps: 3_000_000,
                average_bps: 2_000_000,
            },
            Variant {
                info: RenditionInfo {
                    name: RenditionName::new("src").expect("valid"),
                    ..info
                },
                peak_bps: 5_000_000,
                average_bps: 4_000_000,
            },
        ]);
        check(&master);
        let mut window = MediaWindow::new(3, Duration::from_secs(2));
        for seq in 0..5 {
            window
                .push(crate::hls::Entry {
                    sequence: seq,
                    duration: Duration::from_secs(2),
                    discontinuity_sequence: 0,
                    discontinuity: seq == 3,
                    gap: seq == 4,
                })
                .expect("in order");
        }
        check(&window.render());
        check(&window.render_cmaf());
        check(&window.render_vod());
        check(&window.render_cmaf_vod());
        let reports = [RenditionReport {
            uri: "../360p/index.m3u8".into(),
            last_msn: 4,
            last_part: Some(2),
        }];
        let ll = ll_window(5, 2);
        let full = ll.render(false, &reports);
        assert!(UriMarks::scan(&full).len() > 20);
        check(&full);
        check(&ll.render(true, &reports));
    }

    #[test]
    fn a_uri_with_a_query_gets_an_ampersand_and_tags_without_uris_get_nothing() {
        let text = "#EXTM3U\n#EXT-X-FOO:XURI=\"a\",VALUE=\"b\"\n#EXTINF:2,\nseg.ts?a=1\r\n\n";
        let marks = UriMarks::scan(text);
        assert_eq!(marks.len(), 1, "{marks:?}");
        let out = String::from_utf8(marks.insert(text.as_bytes(), TOKEN)).expect("utf-8");
        assert!(out.ends_with(&format!("seg.ts?a=1&{TOKEN}\r\n\n")), "{out}");
        assert!(UriMarks::scan("").is_empty());
    }

    proptest! {
        /// Whatever the LL window holds, the token lands on every URI and nowhere else.
        #[test]
        fn ll_playlists_carry_the_token_everywhere(
            segments in 0u64..12,
            open in 0usize..6,
            skip in any::<bool>(),
        ) {
            let text = ll_window(segments, open).render(skip, &[]);
            check(&text);
        }
    }
}
