//! The LL-HLS side of one CMAF rendition, sans-IO: published parts into a
//! `domain::hls::LlWindow`, in order, beside the rendition's `MediaWindow` (which stays
//! the record of its segments and gaps).
//!
//! Parts come from the part gate as they verify, in any order: a part is applied when it
//! is the next one (the next index of the open segment, or part 0 of the segment after the
//! last one); others wait, at most [`MAX_PENDING`] of them, until the parts before them or
//! their segment's predecessor arrive. A part of the last complete segment that comes after
//! it (its push or statement was slower than the segment's) is still listed when its bytes
//! continue the segment's, so that every edge lists the same parts whatever the order they
//! arrived in; a part of an older segment is dropped (parts are not re-sent). No part opens
//! a segment before the window has a segment: the catch-up of a node that joins late comes
//! as whole segments, after live parts.
//!
//! Should the two windows ever disagree (a segment the open one's parts do not belong to,
//! a window reopened after an end), the LL window is rebuilt from the `MediaWindow`: the
//! segments stay, the parts of finished segments are no longer listed.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use domain::hls::{self, LlWindow, RenditionReport, PART_SEGMENTS};
use domain::hls::{Entry, MediaWindow};
use domain::segment::Part;
use domain::SessionId;

use crate::view::Document;

/// Parts waiting for their turn, at most; the furthest ahead go first.
pub(crate) const MAX_PENDING: usize = 32;

/// (segment sequence, part index).
type PartKey = (u64, u32);

/// The LL-HLS state of one rendition.
#[derive(Debug)]
pub(super) struct Ll {
    window: LlWindow,
    capacity: usize,
    target: Duration,
    part_target: Duration,
    /// Verified parts not applied yet, with their signed statements.
    pending: BTreeMap<PartKey, (Part, Option<Bytes>)>,
    /// Bytes of applied parts: those listed, and the segment before them.
    parts: BTreeMap<PartKey, Document>,
    /// The last published segment's sequence number and bytes, which its late parts must
    /// continue.
    last_segment: Option<(u64, Bytes)>,
}

impl Ll {
    /// The LL state of a rendition whose segments so far are `media`'s.
    pub(super) fn new(
        capacity: usize,
        target: Duration,
        part_target: Duration,
        media: &MediaWindow,
    ) -> Self {
        let mut ll = Ll {
            window: LlWindow::new(capacity, target, part_target),
            capacity,
            target,
            part_target,
            pending: BTreeMap::new(),
            parts: BTreeMap::new(),
            last_segment: None,
        };
        ll.rebuild(media);
        ll
    }

    /// Whether this state was made for `part_target`.
    pub(super) fn part_target(&self) -> Duration {
        self.part_target
    }

    /// A fresh window with `media`'s segments (and its end), no parts listed.
    fn rebuild(&mut self, media: &MediaWindow) {
        // Each segment keeps its discontinuity sequence, so the playlist's carries on from
        // the first listed segment's and never goes back across a rebuild.
        let mut window = LlWindow::new(self.capacity, self.target, self.part_target);
        for e in media.entries() {
            // Entries of a MediaWindow increase: this cannot fail.
            let _ = window.finish_segment(
                e.sequence,
                e.duration,
                e.gap,
                (e.discontinuity_sequence, e.discontinuity),
                None,
            );
        }
        if media.is_ended() {
            window.end();
        }
        self.window = window;
    }

    /// A verified part (with the envelope of its signed statement, served as its `.sig`);
    /// true if the window changed.
    pub(super) fn push_part(&mut self, part: Part, signed: Option<Bytes>) -> bool {
        let key = (part.meta.sequence, part.meta.index);
        let late = self.is_late(key.0);
        if late && self.window.last_sequence() != Some(key.0) {
            return false;
        }
        self.pending.insert(key, (part, signed));
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_last();
        }
        if late {
            self.drain_late()
        } else {
            self.drain()
        }
    }

    /// Whether parts of segment `sequence` can no longer be listed.
    fn is_late(&self, sequence: u64) -> bool {
        self.window.last_sequence().is_some_and(|l| sequence <= l)
    }

    /// A part of a segment already complete: listed when it is the next part of the last
    /// segment and its bytes continue that segment's (a CMAF segment is its parts joined);
    /// true if it was.
    fn push_late(&mut self, part: Part, signed: Option<Bytes>) -> bool {
        let (sequence, index) = (part.meta.sequence, part.meta.index);
        let Some((last, segment)) = self.last_segment.clone() else {
            return false;
        };
        if last != sequence || self.window.last_sequence() != Some(sequence) {
            return false;
        }
        let held = self.parts.range((sequence, 0)..=(sequence, u32::MAX));
        let (count, offset) = held.fold((0usize, 0usize), |(n, len), (_, d)| {
            (n + 1, len + d.body.len())
        });
        let end = offset.saturating_add(part.bytes.len());
        let continues = usize::try_from(index).is_ok_and(|i| i == count)
            && segment.get(offset..end) == Some(&part.bytes[..]);
        if !continues {
            return false;
        }
        let listed = hls::PartEntry {
            duration: part.meta.duration,
            independent: part.meta.independent,
            gap: false,
        };
        // The window checks that `index` is its next listed part of the segment too (after
        // a rebuild it lists none while the bytes of earlier parts are still held).
        if self.window.push_late_part(sequence, index, listed).is_err() {
            return false;
        }
        let body = segment.slice(offset..end);
        self.parts.insert(
            (sequence, index),
            Document::part(part.meta.session, sequence, index, body).with_signed(signed),
        );
        if end == segment.len() {
            self.share_with_segment(sequence, &segment);
        }
        true
    }

    /// Late parts of the last complete segment whose turn came (they wait, like the others,
    /// until the part before them is there, while their segment is the last).
    fn drain_late(&mut self) -> bool {
        let mut changed = false;
        while let Some(last) = self.window.last_sequence() {
            let count = self.parts.range((last, 0)..=(last, u32::MAX)).count();
            let Some(next) = u32::try_from(count)
                .ok()
                .and_then(|i| self.pending.remove(&(last, i)))
            else {
                break;
            };
            if !self.push_late(next.0, next.1) {
                break;
            }
            changed = true;
        }
        changed
    }

    /// The next part the window takes: the next index of the open segment, or part 0 of
    /// the segment after the last one.
    fn next_part(&self) -> Option<PartKey> {
        self.window.last_sequence()?;
        self.window.hinted_part()
    }

    /// Applies pending parts while the next one is there.
    fn drain(&mut self) -> bool {
        let mut changed = false;
        while let Some(next) = self.next_part() {
            let Some((part, signed)) = self.pending.remove(&next) else {
                break;
            };
            let listed = hls::PartEntry {
                duration: part.meta.duration,
                independent: part.meta.independent,
                gap: false,
            };
            if self
                .window
                .push_part(
                    next.0,
                    listed,
                    part.meta.discontinuity_sequence,
                    i64::try_from(part.meta.program_date_time_ms).ok(),
                )
                .is_err()
            {
                break; // ended
            }
            let session: SessionId = part.meta.session;
            self.parts.insert(
                next,
                Document::part(session, next.0, next.1, part.bytes).with_signed(signed),
            );
            changed = true;
        }
        // Parts of the last complete segment may still join it late; older ones never.
        let last = self.window.last_sequence();
        self.pending
            .retain(|(sequence, _), _| last.is_none_or(|l| *sequence >= l));
        changed
    }

    /// `entry` was just added to `media` (a published segment or a gap): the open segment
    /// finishes with it, or it is appended whole.
    pub(super) fn finish(&mut self, entry: &Entry, media: &MediaWindow) {
        let finished = self.window.finish_segment(
            entry.sequence,
            entry.duration,
            entry.gap,
            (entry.discontinuity_sequence, entry.discontinuity),
            None,
        );
        if finished.is_err() {
            self.rebuild(media);
        }
        if self
            .last_segment
            .as_ref()
            .is_some_and(|(sequence, _)| *sequence != entry.sequence)
        {
            self.last_segment = None; // a gap: no bytes for late parts to continue
        }
        self.drain_late();
        // The parts of the segments that list them, and of the one before them (both
        // windows hold the same segments, so the media window says which those are).
        let listed = media.entries().len();
        let before = media.entries().nth(listed.wrapping_sub(PART_SEGMENTS + 1));
        if let Some(from) = before
            .filter(|_| listed > PART_SEGMENTS)
            .map(|e| e.sequence)
        {
            self.parts = self.parts.split_off(&(from, 0));
        }
        self.drain();
    }

    /// Segment `sequence` was published with `bytes`: when its applied parts are exactly
    /// the end of those bytes, in order (a CMAF segment is its parts joined, after its own
    /// VSI `emsg` when it is signed), each part's document becomes a slice of the
    /// segment's buffer, so the node holds those bytes once, not twice. Parts that do not
    /// add up to the segment keep their own bytes.
    pub(super) fn share_with_segment(&mut self, sequence: u64, bytes: &bytes::Bytes) {
        self.last_segment = Some((sequence, bytes.clone()));
        let mut offset = domain::c2pa::vsi::segment_prefix(bytes).len();
        let mut shared = Vec::new();
        for (key, doc) in self.parts.range((sequence, 0)..=(sequence, u32::MAX)) {
            let end = offset + doc.body.len();
            if bytes.get(offset..end) != Some(&doc.body[..]) {
                return;
            }
            shared.push((*key, bytes.slice(offset..end)));
            offset = end;
        }
        if offset != bytes.len() {
            return;
        }
        for (key, slice) in shared {
            if let Some(doc) = self.parts.get_mut(&key) {
                doc.body = slice;
            }
        }
    }

    /// The stream ended or the rendition closed: `EXT-X-ENDLIST`, no preload hint.
    pub(super) fn end(&mut self) {
        self.window.end();
        self.pending.clear();
    }

    /// This rendition's report for the others' playlists.
    pub(super) fn report(&self, uri: String) -> Option<RenditionReport> {
        self.window.report(uri)
    }

    /// The full playlist and the delta update, with the other renditions' `reports`.
    pub(super) fn render(&self, reports: &[RenditionReport], max_age: u64) -> (Document, Document) {
        (
            Document::playlist(self.window.render(false, reports), max_age),
            Document::playlist(self.window.render(true, reports), max_age),
        )
    }

    /// The window as rendered.
    pub(super) fn window(&self) -> &LlWindow {
        &self.window
    }

    /// The bytes of the parts held, ascending.
    pub(super) fn part_documents(&self) -> Vec<(PartKey, Document)> {
        self.parts.iter().map(|(k, d)| (*k, d.clone())).collect()
    }
}
