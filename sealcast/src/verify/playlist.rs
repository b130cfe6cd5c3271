//! The few playlist tags `sealcast verify` needs, read the way hls.js numbers fragments:
//! a master playlist's variant URIs, and a media playlist's segments (media sequence,
//! discontinuity sequence counted from `EXT-X-DISCONTINUITY-SEQUENCE` and every
//! `EXT-X-DISCONTINUITY`, `EXTINF` duration, `EXT-X-GAP`, the `EXT-X-MAP` in force) with
//! their LL-HLS parts (`EXT-X-PART`, indexed from 0 within their segment), and the parts
//! of the segment still open at the end.
//!
//! Bounded: at most [`MAX_PLAYLIST`] bytes and [`MAX_ENTRIES`] segments are read, and a
//! playlist that breaks the grammar is an error rather than a guess. m3u8-rs is not used:
//! it reads none of the LL-HLS tags.

use anyhow::{bail, Context};

/// Largest playlist read.
pub(crate) const MAX_PLAYLIST: usize = 1 << 20;
/// Most segments one media playlist may list.
const MAX_ENTRIES: usize = 20_000;

/// A segment, or the parts of the one still open at the end of the playlist.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// Its media sequence number.
    pub(crate) sequence: u64,
    /// Its discontinuity sequence (hls.js's `frag.cc`).
    pub(crate) discontinuity: u64,
    /// `EXTINF`, seconds; `None` for the open segment.
    pub(crate) duration: Option<f64>,
    /// Its URI; `None` for the open segment.
    pub(crate) uri: Option<String>,
    /// Listed as `EXT-X-GAP`.
    pub(crate) gap: bool,
    /// The init segment in force (`EXT-X-MAP`).
    pub(crate) map: Option<String>,
    /// Its parts, in order.
    pub(crate) parts: Vec<PartEntry>,
}

/// One `EXT-X-PART`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PartEntry {
    /// Its index within its segment.
    pub(crate) index: u32,
    /// `DURATION`, seconds.
    pub(crate) duration: f64,
    /// `URI`.
    pub(crate) uri: String,
    /// `GAP=YES`.
    pub(crate) gap: bool,
}

/// A media playlist as far as verification cares.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MediaPlaylist {
    /// `EXT-X-ENDLIST` (or a VOD playlist type): nothing more will come.
    pub(crate) ended: bool,
    /// The segments, then the open segment if parts of it are listed.
    pub(crate) entries: Vec<Entry>,
}

impl MediaPlaylist {
    /// Whether `sequence` is listed as a gap.
    pub(crate) fn is_gap(&self, sequence: u64) -> bool {
        self.entries.iter().any(|e| e.sequence == sequence && e.gap)
    }
}

/// The variant URIs of a master playlist, in order.
pub(crate) fn master(text: &str) -> anyhow::Result<Vec<String>> {
    check_header(text)?;
    let mut variants = Vec::new();
    let mut expecting = false;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("#EXT-X-STREAM-INF:") {
            expecting = true;
        } else if line.starts_with('#') {
            continue;
        } else if expecting {
            variants.push(line.to_owned());
            expecting = false;
            if variants.len() > MAX_ENTRIES {
                bail!("over {MAX_ENTRIES} variants");
            }
        }
    }
    if variants.is_empty() {
        bail!("a master playlist without variants");
    }
    Ok(variants)
}

/// A media playlist.
pub(crate) fn media(text: &str) -> anyhow::Result<MediaPlaylist> {
    check_header(text)?;
    let mut sequence: u64 = 0;
    let mut discontinuity: u64 = 0;
    let mut ended = false;
    let mut map: Option<String> = None;
    let mut duration: Option<f64> = None;
    let mut gap = false;
    let mut parts: Vec<PartEntry> = Vec::new();
    let mut entries = Vec::new();
    let mut pending_discontinuity = false;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            sequence = v.parse().context("EXT-X-MEDIA-SEQUENCE")?;
        } else if let Some(v) = line.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:") {
            discontinuity = v.parse().context("EXT-X-DISCONTINUITY-SEQUENCE")?;
        } else if line == "#EXT-X-DISCONTINUITY" {
            pending_discontinuity = true;
        } else if line == "#EXT-X-ENDLIST" || line == "#EXT-X-PLAYLIST-TYPE:VOD" {
            ended = true;
        } else if line == "#EXT-X-GAP" {
            gap = true;
        } else if line.starts_with("#EXT-X-SKIP") {
            bail!("a delta update (EXT-X-SKIP): ask for the full playlist");
        } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
            map = Some(attribute(v, "URI").context("EXT-X-MAP without URI")?);
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let value = v.split(',').next().unwrap_or_default();
            duration = Some(value.parse().context("EXTINF")?);
        } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
            if pending_discontinuity && parts.is_empty() {
                discontinuity += 1;
                pending_discontinuity = false;
            }
            let index = u32::try_from(parts.len()).context("parts")?;
            parts.push(PartEntry {
                index,
                duration: attribute(v, "DURATION")
                    .context("EXT-X-PART without DURATION")?
                    .parse()
                    .context("EXT-X-PART DURATION")?,
                uri: attribute(v, "URI").context("EXT-X-PART without URI")?,
                gap: attribute(v, "GAP").as_deref() == Some("YES"),
            });
        } else if line.starts_with('#') {
            continue;
        } else {
            if pending_discontinuity {
                discontinuity += 1;
                pending_discontinuity = false;
            }
            entries.push(Entry {
                sequence,
                discontinuity,
                duration: Some(duration.take().context("a URI without EXTINF")?),
                uri: Some(line.to_owned()),
                gap: std::mem::take(&mut gap),
                map: map.clone(),
                parts: std::mem::take(&mut parts),
            });
            if entries.len() > MAX_ENTRIES {
                bail!("over {MAX_ENTRIES} segments");
            }
            sequence = sequence.checked_add(1).context("media sequence overflow")?;
        }
    }
    if !parts.is_empty() {
        entries.push(Entry {
            sequence,
            discontinuity,
            duration: None,
            uri: None,
            gap: false,
            map,
            parts,
        });
    }
    Ok(MediaPlaylist { ended, entries })
}

fn check_header(text: &str) -> anyhow::Result<()> {
    if text.len() > MAX_PLAYLIST {
        bail!("a playlist over {MAX_PLAYLIST} bytes");
    }
    if !text.starts_with("#EXTM3U") {
        bail!("not a playlist (no #EXTM3U)");
    }
    Ok(())
}

/// The value of attribute `name` in an attribute list (quotes removed).
fn attribute(list: &str, name: &str) -> Option<String> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let (value, tail) = quoted.split_once('"')?;
            (value, tail.strip_prefix(',').unwrap_or(tail))
        } else {
            match after.split_once(',') {
                Some((value, tail)) => (value, tail),
                None => (after, ""),
            }
        };
        if key.trim() == name {
            return Some(value.to_owned());
        }
        rest = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_ll_playlist_as_hls_js_numbers_it() {
        let text = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
            #EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-DISCONTINUITY-SEQUENCE:3\n\
            #EXT-X-MAP:URI=\"init.mp4\"\n\
            #EXTINF:2.00000,\n10.m4s\n\
            #EXT-X-GAP\n#EXTINF:2.00000,\n11.m4s\n\
            #EXT-X-DISCONTINUITY\n\
            #EXT-X-PART:DURATION=0.33333,URI=\"12.0.m4s\",INDEPENDENT=YES\n\
            #EXT-X-PART:DURATION=0.33333,URI=\"12.1.m4s\"\n\
            #EXTINF:0.66666,\n12.m4s\n\
            #EXT-X-PART:DURATION=0.33333,URI=\"13.0.m4s\",INDEPENDENT=YES\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"13.1.m4s\"\n";
        let p = media(text).expect("parses");
        assert!(!p.ended);
        let seqs: Vec<(u64, u64, bool)> = p
            .entries
            .iter()
            .map(|e| (e.sequence, e.discontinuity, e.gap))
            .collect();
        assert_eq!(
            seqs,
            [
                (10, 3, false),
                (11, 3, true),
                (12, 4, false),
                (13, 4, false)
            ]
        );
        assert_eq!(p.entries[2].parts.len(), 2);
        assert_eq!(p.entries[2].parts[1].uri, "12.1.m4s");
        assert_eq!(p.entries[3].uri, None);
        assert_eq!(p.entries[3].parts[0].index, 0);
        assert_eq!(p.entries[0].map.as_deref(), Some("init.mp4"));
        assert!(p.is_gap(11) && !p.is_gap(10));
    }

    #[test]
    fn masters_list_their_variants() {
        let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"a,b\"\n720p/index.m3u8\n\
            #EXT-X-STREAM-INF:BANDWIDTH=2\nsrc/index.m3u8\n";
        assert_eq!(
            master(text).expect("parses"),
            ["720p/index.m3u8", "src/index.m3u8"]
        );
        assert!(master("#EXTM3U\n").is_err());
        assert!(master("<html>").is_err());
    }

    #[test]
    fn broken_playlists_are_errors() {
        assert!(media("#EXTM3U\n1.ts\n").is_err());
        assert!(media("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n").is_err());
        assert!(media("#EXTM3U\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n").is_err());
        assert!(media("#EXTM3U\n#EXT-X-PART:URI=\"1.0.m4s\"\n").is_err());
        assert!(media(&format!("#EXTM3U\n{}", "#".repeat(MAX_PLAYLIST))).is_err());
        let ended = media("#EXTM3U\n#EXTINF:2,\n1.ts\n#EXT-X-ENDLIST\n").expect("parses");
        assert!(ended.ended);
        assert_eq!(ended.entries[0].duration, Some(2.0));
    }

    #[test]
    fn attributes_with_quotes_and_commas() {
        let list = "DURATION=0.33,URI=\"a,b.m4s\",GAP=YES";
        assert_eq!(attribute(list, "URI").as_deref(), Some("a,b.m4s"));
        assert_eq!(attribute(list, "GAP").as_deref(), Some("YES"));
        assert_eq!(attribute(list, "DURATION").as_deref(), Some("0.33"));
        assert_eq!(attribute(list, "NOPE"), None);
    }
}
