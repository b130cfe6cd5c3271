//! The HLS playlist reader (issue 46): `domain::hls::read_media` and `read_master`, fed
//! what a cluster node, a cache or a server under test serves (`sealcast verify` and the
//! benchmark viewers read playlists with it).

use domain::hls::{
    read_master, read_media, MAX_PARTS, MAX_REPORTS, MAX_SEGMENTS, MAX_URI, MAX_VARIANTS,
};

/// HLS: any bytes through the playlist reader, as a media playlist and as a master; what it
/// accepts keeps its caps and its numbering: one sequence number per segment from
/// `EXT-X-MEDIA-SEQUENCE` plus the skipped ones, only the last segment open (parts, no
/// `EXTINF`), dates carried through a segment's parts in order, the hint after the last
/// part.
pub fn hls_playlist(data: &[u8]) {
    if let Ok(p) = read_media(data) {
        assert!(p.segments.len() <= MAX_SEGMENTS);
        assert!(p.parts().count() <= MAX_PARTS);
        assert!(p.reports.len() <= MAX_REPORTS);
        let last = p.segments.len().saturating_sub(1);
        for (i, s) in p.segments.iter().enumerate() {
            let expected = p
                .media_sequence
                .checked_add(p.skipped)
                .and_then(|n| n.checked_add(i as u64));
            assert_eq!(Some(s.sequence), expected, "segment {i} of {p:?}");
            assert_eq!(s.complete(), s.duration.is_some());
            assert!(s.complete() || (i == last && !s.parts.is_empty()), "{p:?}");
            assert!(s
                .uri
                .as_ref()
                .is_none_or(|u| !u.is_empty() && u.len() <= MAX_URI));
            let mut dates = s.parts.iter().map(|part| part.program_date_time_ms);
            if let Some(first) = dates.next() {
                assert_eq!(first, s.program_date_time_ms);
            }
        }
        if let (Some(hint), Some(part)) = (p.hint_position(), p.last_part()) {
            assert!(hint > part, "hint {hint:?} not after {part:?}");
        }
    }
    if let Ok(variants) = read_master(data) {
        assert!(!variants.is_empty() && variants.len() <= MAX_VARIANTS);
        assert!(variants
            .iter()
            .all(|v| !v.uri.is_empty() && v.uri.len() <= MAX_URI));
    }
}
