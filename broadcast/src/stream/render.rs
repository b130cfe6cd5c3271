//! Rendering one rendition's snapshot ([`RenditionView`]) after a change: the MPEG-TS
//! playlist, a plain CMAF one, or the LL-HLS full and delta playlists with the other
//! renditions' reports, each written by `domain::hls`.

use std::sync::Arc;

use domain::hls::RenditionReport;
use domain::segment::SegmentFormat;

use super::RenditionState;
use crate::view::{live_max_age, Document, RenditionView, ENDED_MAX_AGE};

impl RenditionState {
    /// Re-renders the media playlist (an LL one with the other renditions' `reports`).
    /// Nothing to serve before the first segment.
    pub(super) fn refresh(&mut self, reports: &[RenditionReport]) {
        if self.window.entries().len() == 0 {
            return;
        }
        let ended = self.window.is_ended();
        let max_age = if ended {
            ENDED_MAX_AGE
        } else {
            live_max_age(self.window.target_duration())
        };
        let format = self.info.format();
        let init = match (&self.info.init, format) {
            (Some(init), SegmentFormat::Cmaf) => Some(Document {
                signed: self.init_signed.clone(),
                ..Document::init(init.bytes().clone(), max_age)
            }),
            _ => None,
        };
        let (playlist, delta, ll, parts) = match (&self.ll, format) {
            (Some(ll), SegmentFormat::Cmaf) => {
                // A live LL playlist moves every part: cached at most a second.
                let (full, delta) = ll.render(reports, if ended { max_age } else { 1 });
                (
                    full,
                    Some(delta),
                    Some(ll.window().clone()),
                    ll.part_documents(),
                )
            }
            (_, SegmentFormat::Cmaf) => (
                Document::playlist(self.window.render_cmaf(), max_age),
                None,
                None,
                Vec::new(),
            ),
            (_, SegmentFormat::Ts) => (
                Document::playlist(self.window.render(), max_age),
                None,
                None,
                Vec::new(),
            ),
        };
        self.view = Some(Arc::new(RenditionView {
            playlist,
            delta,
            format,
            init,
            session: self.announced_by,
            ll,
            segments: self.kept.iter().cloned().collect(),
            parts,
            part_keys: self.part_keys.iter().cloned().collect(),
        }));
    }
}
