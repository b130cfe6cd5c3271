//! A recording's playlists: its window never slides ([`MediaWindow::unbounded`]) and is
//! rendered finished, `EXT-X-PLAYLIST-TYPE:VOD` and `EXT-X-ENDLIST`, in either format.

use super::media::MediaWindow;
use super::write_to_string;

impl MediaWindow {
    /// Renders the whole window as a finished MPEG-TS recording.
    pub fn render_vod(&self) -> String {
        let mut playlist = self.playlist();
        playlist.playlist_type = Some(m3u8_rs::MediaPlaylistType::Vod);
        playlist.end_list = true;
        write_to_string(|w| playlist.write_to(w))
    }

    /// Renders the whole window as a finished CMAF recording (`EXT-X-MAP`, `.m4s`).
    pub fn render_cmaf_vod(&self) -> String {
        self.cmaf(true)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::hls::media::tests::entry;

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
        let cmaf = w.render_cmaf_vod();
        let p = m3u8_rs::parse_media_playlist_res(cmaf.as_bytes()).expect("parses");
        assert_eq!(p.segments.len(), 100);
        assert!(p.end_list);
        assert_eq!(p.playlist_type, Some(m3u8_rs::MediaPlaylistType::Vod));
        assert_eq!(p.segments[99].uri, "99.m4s");
    }
}
