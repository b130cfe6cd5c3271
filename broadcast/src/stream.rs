//! The live state of one stream, sans-IO: [`LiveEvent`]s in, a fresh [`StreamView`] out.
//!
//! Rules it keeps:
//! - renditions are listed in the master playlist in the order they were first announced,
//!   once they have at least one segment, until they are dropped;
//! - a publisher reconnect (a new session) keeps the windows (sequence numbers keep
//!   counting); renditions the new session does not announce are closed when its first
//!   segment arrives, so a smaller ladder after a reconnect does not leave stale variants;
//! - a segment that slid out of the window stays fetchable for [`GRACE_SEGMENTS`] more
//!   segments, for players that read the playlist just before it moved on;
//! - a refused event leaves the state exactly as it was;
//! - a CMAF rendition (one with an init segment) serves `init.mp4` and `{seq}.m4s`; with a
//!   part target it also keeps an LL-HLS window (`ll`): published parts are listed as they
//!   come, its playlists carry the stream's other LL renditions' reports, and every LL
//!   rendition is re-rendered when any of them changes, so those reports stay current.
//!   MPEG-TS renditions keep their playlists as they were;
//! - what is published keeps the envelope of the statement that let it through: a
//!   segment's and a part's served beside them as `.sig`, the rendition description's as
//!   `init.mp4.sig`, trimmed and kept through the grace window with them; a rendition
//!   keeps the part-key delegations of its newest [`PART_KEYS`](part_keys::PART_KEYS) runs
//!   (`{seq}.partkey`), and those that came before their session announced it, once it does.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use domain::hls::RenditionReport;
use domain::hls::{render_master, Entry, MediaWindow, PushError, Variant};
use domain::paths::PublicPath;
use domain::segment::{Part, SegmentFormat};
use domain::{
    BitrateMeter, LiveEvent, RenditionInfo, RenditionName, Segment, SessionId, StreamName,
};

use self::ll::Ll;

use crate::view::{
    live_max_age, Document, RenditionSummary, RenditionView, StreamSummary, StreamView,
    ENDED_MAX_AGE,
};
use crate::{BroadcastError, NodeConfig};

/// Segments kept fetchable after they slid out of the window.
pub(crate) const GRACE_SEGMENTS: usize = 2;

/// Everything a node knows about one stream.
#[derive(Debug)]
pub(crate) struct StreamState {
    name: StreamName,
    config: NodeConfig,
    /// The session whose events are accepted; `None` before the first start and after an
    /// end.
    live_session: Option<SessionId>,
    /// The most recent session, live or ended: a repeated `Ended` for it is not an error.
    last_session: Option<SessionId>,
    /// A new session started and has not published a segment yet: at its first segment,
    /// renditions it did not announce are closed.
    roll_call: bool,
    /// Verified part-key delegations that came before their session announced their
    /// rendition: kept when it does.
    pending_part_keys: part_keys::Waiting,
    /// In order of first announcement, which is the master playlist's order.
    renditions: Vec<RenditionState>,
}

#[derive(Debug)]
struct RenditionState {
    info: RenditionInfo,
    /// The session that last announced it; segments are accepted only from the live one.
    announced_by: SessionId,
    /// In the master playlist (once it has a segment): announced and not dropped.
    listed: bool,
    window: MediaWindow,
    /// Listed segments plus up to [`GRACE_SEGMENTS`] older ones, ascending.
    kept: VecDeque<(u64, Document)>,
    /// Over every segment this rendition published on this node.
    meter: BitrateMeter,
    /// Re-rendered whenever the window changes; `None` before the first segment.
    view: Option<Arc<RenditionView>>,
    /// A CMAF rendition's LL-HLS state, when it has a part target.
    ll: Option<Ll>,
    /// The signed rendition description it was last announced with (`init.mp4.sig`), made
    /// once per announcement.
    init_signed: Option<Arc<Document>>,
    /// The newest part-key delegations, by (first, last) segment, ascending.
    part_keys: VecDeque<((u64, u64), Document)>,
}

impl StreamState {
    /// A stream that has not started yet.
    pub(crate) fn new(name: StreamName, config: NodeConfig) -> Self {
        StreamState {
            name,
            config,
            live_session: None,
            last_session: None,
            roll_call: false,
            pending_part_keys: part_keys::Waiting::default(),
            renditions: Vec::new(),
        }
    }

    /// Whether a publish session is live.
    pub(crate) fn is_live(&self) -> bool {
        self.live_session.is_some()
    }

    /// The live publish session, if one is.
    pub(crate) fn live_session(&self) -> Option<SessionId> {
        self.live_session
    }

    /// Applies one event about this stream. On error nothing changed.
    #[cfg(test)]
    pub(crate) fn apply(&mut self, event: LiveEvent) -> Result<(), BroadcastError> {
        self.apply_signed(event, None)
    }

    /// Applies one event about this stream with the envelope of the statement the node
    /// verified for it (a segment's, a part's, a rendition description's), kept to be
    /// served beside what it signs. On error nothing changed.
    pub(crate) fn apply_signed(
        &mut self,
        event: LiveEvent,
        signed: Option<Bytes>,
    ) -> Result<(), BroadcastError> {
        match event {
            LiveEvent::SessionStarted { session, .. } => {
                self.start(session);
                Ok(())
            }
            LiveEvent::Rendition { info, .. } => self.announce(info, signed),
            LiveEvent::Segment(segment) => self.publish(segment, signed),
            LiveEvent::Part(part) => self.part(part, signed),
            LiveEvent::RenditionDropped { rendition, .. } => self.drop_rendition(&rendition),
            LiveEvent::Ended { session, .. } => self.end(session),
            // Kept beside the stream by the edge that verified it (`crate::thumbnails`),
            // not in its window.
            LiveEvent::Thumbnail(_) => Ok(()),
        }
    }

    fn start(&mut self, session: SessionId) {
        if self.live_session == Some(session) {
            return; // a repeated start changes nothing
        }
        self.live_session = Some(session);
        self.last_session = Some(session);
        self.roll_call = true;
    }

    fn live(&self) -> Result<SessionId, BroadcastError> {
        self.live_session.ok_or_else(|| BroadcastError::NotLive {
            stream: self.name.clone(),
        })
    }

    fn announce(
        &mut self,
        info: RenditionInfo,
        signed: Option<Bytes>,
    ) -> Result<(), BroadcastError> {
        let session = self.live()?;
        let init_signed = match (&info.init, signed) {
            (Some(init), Some(envelope)) => {
                let max_age = live_max_age(self.config.segment_target.as_secs());
                Document::init(init.bytes().clone(), max_age)
                    .with_signed(Some(envelope))
                    .signed
            }
            _ => None,
        };
        let (window, target) = (self.config.window, self.config.segment_target);
        let index = match self
            .renditions
            .iter()
            .position(|r| r.info.name == info.name)
        {
            Some(i) => {
                let r = &mut self.renditions[i];
                r.info = info;
                r.announced_by = session;
                r.listed = true;
                r.init_signed = init_signed;
                i
            }
            None => {
                self.renditions.push(RenditionState {
                    info,
                    announced_by: session,
                    listed: true,
                    window: MediaWindow::new(window, target),
                    kept: VecDeque::new(),
                    meter: BitrateMeter::default(),
                    view: None,
                    ll: None,
                    init_signed,
                    part_keys: VecDeque::new(),
                });
                self.renditions.len() - 1
            }
        };
        let name = self.renditions[index].info.name.clone();
        for (run, envelope) in self.pending_part_keys.announced(&name, session) {
            part_keys::keep(&mut self.renditions[index].part_keys, run, envelope);
        }
        // LL-HLS for a CMAF rendition with a part target (kept if it does not change).
        let r = &mut self.renditions[index];
        let part_target = r
            .info
            .part_target_us
            .filter(|_| r.info.format() == SegmentFormat::Cmaf)
            .map(Duration::from_micros);
        match part_target {
            None => r.ll = None,
            Some(p) if r.ll.as_ref().is_some_and(|ll| ll.part_target() == p) => {}
            Some(p) => r.ll = Some(Ll::new(window, target, p, &r.window)),
        }
        self.refresh(index);
        Ok(())
    }

    /// A verified LL-HLS part: listed once the parts before it are (see `ll`); a late part
    /// of the last segment is listed when its bytes continue it, one of an older segment
    /// is dropped without a word.
    fn part(&mut self, part: Part, signed: Option<Bytes>) -> Result<(), BroadcastError> {
        let live = self.live()?;
        let meta = &part.meta;
        if meta.session != live {
            return Err(BroadcastError::StaleSession {
                stream: self.name.clone(),
                session: meta.session,
            });
        }
        let Some(index) = self.renditions.iter().position(|r| {
            r.info.name == meta.rendition && r.listed && r.announced_by == live && r.ll.is_some()
        }) else {
            return Err(BroadcastError::UnknownRendition {
                stream: self.name.clone(),
                rendition: meta.rendition.clone(),
            });
        };
        let r = &mut self.renditions[index];
        let changed = match &mut r.ll {
            Some(ll) => ll.push_part(part, signed),
            None => false,
        };
        if changed {
            self.refresh(index);
        }
        Ok(())
    }

    /// Re-renders rendition `index`, and with an LL rendition every LL rendition of the
    /// stream (their rendition reports name each other).
    fn refresh(&mut self, index: usize) {
        if self.renditions.get(index).is_none_or(|r| r.ll.is_none()) {
            if let Some(r) = self.renditions.get_mut(index) {
                r.refresh(&[]);
            }
            return;
        }
        let reports: Vec<(usize, RenditionReport)> = self
            .renditions
            .iter()
            .enumerate()
            .filter(|(_, r)| r.listed)
            .filter_map(|(i, r)| {
                let uri = format!("../{}/index.m3u8", r.info.name);
                Some((i, r.ll.as_ref()?.report(uri)?))
            })
            .collect();
        for i in 0..self.renditions.len() {
            if self.renditions[i].ll.is_some() {
                let others: Vec<RenditionReport> = reports
                    .iter()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, report)| report.clone())
                    .collect();
                self.renditions[i].refresh(&others);
            }
        }
    }

    fn publish(&mut self, segment: Segment, signed: Option<Bytes>) -> Result<(), BroadcastError> {
        let live = self.live()?;
        let meta = &segment.meta;
        if meta.session != live {
            return Err(BroadcastError::StaleSession {
                stream: self.name.clone(),
                session: meta.session,
            });
        }
        let Some(index) = self
            .renditions
            .iter()
            .position(|r| r.info.name == meta.rendition && r.listed && r.announced_by == live)
        else {
            return Err(BroadcastError::UnknownRendition {
                stream: self.name.clone(),
                rendition: meta.rendition.clone(),
            });
        };
        let r = &mut self.renditions[index];
        let entry = Entry::published(meta);
        // The first mutation, and the only one that can fail: nothing changes on a refusal.
        r.window.push(entry.clone()).map_err(|e| match e {
            PushError::NotAfterLast { last } => BroadcastError::OutOfOrder {
                stream: self.name.clone(),
                rendition: meta.rendition.clone(),
                sequence: meta.sequence,
                last,
            },
        })?;
        r.meter.record(segment.bytes.len(), meta.duration);
        if let Some(ll) = &mut r.ll {
            ll.share_with_segment(meta.sequence, &segment.bytes);
        }
        r.kept.push_back((
            meta.sequence,
            Document::segment(meta.session, meta.sequence, segment.bytes).with_signed(signed),
        ));
        if let Some(ll) = &mut r.ll {
            ll.finish(&entry, &r.window);
        }
        r.trim_kept();
        self.refresh(index);

        if std::mem::take(&mut self.roll_call) {
            for i in 0..self.renditions.len() {
                let r = &mut self.renditions[i];
                if r.listed && r.announced_by != live {
                    r.close();
                    self.refresh(i);
                }
            }
        }
        Ok(())
    }

    /// Keeps a verified part-key delegation of `rendition` for segments `first..=last`
    /// (`envelope`, served as `{seq}.partkey` for those segments): at once if `session` is
    /// the live one and announced the rendition, else when it does (a publisher that
    /// reconnects: the new session's delegation may come before its announcement, and its
    /// first parts must not be served beside the old session's delegation alone).
    pub(crate) fn part_key(
        &mut self,
        rendition: &RenditionName,
        session: SessionId,
        run: (u64, u64),
        envelope: Bytes,
    ) {
        let index = self
            .renditions
            .iter()
            .position(|r| &r.info.name == rendition);
        match index {
            Some(index) if self.check_segment(rendition, session).is_ok() => {
                if part_keys::keep(&mut self.renditions[index].part_keys, run, envelope) {
                    self.refresh(index);
                }
            }
            _ => self
                .pending_part_keys
                .hold(rendition, session, run, envelope),
        }
    }

    /// Whether a segment of `session` for `rendition` would be accepted now: the same
    /// checks as [`StreamState::apply`] makes on a segment, without the sequence number.
    /// The push endpoint asks before it reads a body.
    pub(crate) fn check_segment(
        &self,
        rendition: &RenditionName,
        session: SessionId,
    ) -> Result<(), BroadcastError> {
        let live = self.live()?;
        if session != live {
            return Err(BroadcastError::StaleSession {
                stream: self.name.clone(),
                session,
            });
        }
        if !self
            .renditions
            .iter()
            .any(|r| &r.info.name == rendition && r.listed && r.announced_by == live)
        {
            return Err(BroadcastError::UnknownRendition {
                stream: self.name.clone(),
                rendition: rendition.clone(),
            });
        }
        Ok(())
    }

    /// Lists `sequence` of `rendition` as a gap (`#EXT-X-GAP`): the signature gate gave up
    /// on it. `discontinuity_sequence` defaults to the last listed one. On error nothing
    /// changed.
    pub(crate) fn gap(
        &mut self,
        rendition: &RenditionName,
        sequence: u64,
        duration: std::time::Duration,
        discontinuity_sequence: Option<u64>,
    ) -> Result<(), BroadcastError> {
        self.live()?;
        let Some(index) = self
            .renditions
            .iter()
            .position(|r| &r.info.name == rendition && r.listed)
        else {
            return Err(BroadcastError::UnknownRendition {
                stream: self.name.clone(),
                rendition: rendition.clone(),
            });
        };
        let r = &mut self.renditions[index];
        let last = r.window.entries().last().map(|e| e.discontinuity_sequence);
        let discontinuity_sequence = discontinuity_sequence.or(last).unwrap_or(0);
        let entry = Entry {
            sequence,
            duration,
            discontinuity_sequence,
            // A gap that starts a new discontinuity sequence still carries the marker, so
            // the segments after it are read as a new timeline.
            discontinuity: last.is_some_and(|l| l < discontinuity_sequence),
            gap: true,
        };
        r.window.push(entry.clone()).map_err(|e| match e {
            PushError::NotAfterLast { last } => BroadcastError::OutOfOrder {
                stream: self.name.clone(),
                rendition: rendition.clone(),
                sequence,
                last,
            },
        })?;
        if let Some(ll) = &mut r.ll {
            ll.finish(&entry, &r.window);
        }
        r.trim_kept();
        self.refresh(index);
        Ok(())
    }

    fn drop_rendition(&mut self, name: &RenditionName) -> Result<(), BroadcastError> {
        self.live()?;
        let Some(index) = self.renditions.iter().position(|r| &r.info.name == name) else {
            return Err(BroadcastError::UnknownRendition {
                stream: self.name.clone(),
                rendition: name.clone(),
            });
        };
        self.renditions[index].close();
        self.refresh(index);
        Ok(())
    }

    fn end(&mut self, session: SessionId) -> Result<(), BroadcastError> {
        match self.live_session {
            Some(live) if live == session => {}
            // A repeated end of the session that already ended.
            None if self.last_session == Some(session) => return Ok(()),
            _ => {
                return Err(BroadcastError::StaleSession {
                    stream: self.name.clone(),
                    session,
                })
            }
        }
        self.live_session = None;
        self.roll_call = false;
        for i in 0..self.renditions.len() {
            let r = &mut self.renditions[i];
            r.window.end();
            if let Some(ll) = &mut r.ll {
                ll.end();
            }
            self.refresh(i);
        }
        Ok(())
    }

    /// Renders what readers see now. Rendition views are shared with the previous
    /// snapshot unless they changed; the master playlist is rendered every time (its
    /// bitrates move with every segment).
    pub(crate) fn view(&self) -> StreamView {
        let listed: Vec<&RenditionState> = self
            .renditions
            .iter()
            .filter(|r| r.listed && r.view.is_some())
            .collect();
        let variants: Vec<Variant> = listed
            .iter()
            .map(|r| Variant {
                info: r.info.clone(),
                peak_bps: r.meter.peak_bps(),
                average_bps: r.meter.average_bps(),
            })
            .collect();
        let master = (!variants.is_empty()).then(|| {
            let max_age = if self.is_live() {
                let target = listed.iter().map(|r| r.window.target_duration()).max();
                live_max_age(target.unwrap_or(1))
            } else {
                ENDED_MAX_AGE
            };
            Document::playlist(render_master(&variants), max_age)
        });
        let summary = StreamSummary {
            name: self.name.clone(),
            live: self.is_live(),
            master_url: PublicPath::Master(self.name.clone()).to_string(),
            thumbnail_url: None,
            renditions: variants
                .iter()
                .map(|v| RenditionSummary {
                    name: v.info.name.clone(),
                    width: v.info.width,
                    height: v.info.height,
                    codecs: v.info.codecs.to_string(),
                    frame_rate: v.info.frame_rate,
                    bandwidth: v.peak_bps.max(1),
                    average_bandwidth: v.average_bps.max(1),
                })
                .collect(),
            dvr: None,
        };
        StreamView {
            summary,
            master,
            renditions: self
                .renditions
                .iter()
                .filter_map(|r| Some((r.info.name.clone(), Arc::clone(r.view.as_ref()?))))
                .collect(),
        }
    }
}

impl RenditionState {
    /// Out of the master playlist, `#EXT-X-ENDLIST` on the media playlist; its segments
    /// stay fetchable.
    /// (The caller re-renders it.)
    fn close(&mut self) {
        self.listed = false;
        self.window.end();
        if let Some(ll) = &mut self.ll {
            ll.end();
        }
    }

    /// Forgets segments that slid out of the window, beyond the grace ones.
    fn trim_kept(&mut self) {
        let Some(first_listed) = self.window.entries().next().map(|e| e.sequence) else {
            return;
        };
        let outside = self
            .kept
            .iter()
            .take_while(|(seq, _)| *seq < first_listed)
            .count();
        for _ in GRACE_SEGMENTS..outside {
            self.kept.pop_front();
        }
    }
}

mod ll;
#[cfg(test)]
mod ll_tests;
mod part_keys;
mod render;
#[cfg(test)]
mod tests;
