//! One low-latency viewer, sans-IO: responses in (with the time they came), the requests
//! it makes next out, and what happened to its playback ([`LlEvent`]).
//!
//! Like hls.js in low-latency mode, on one rendition: the master playlist, the media
//! playlist, then
//! - **blocking reloads** ([`LlMode::Blocking`]): as soon as a playlist answers, the next
//!   one is asked for with `_HLS_msn`/`_HLS_part` naming the part after the last one
//!   listed (the server holds it until that part exists), with `_HLS_skip=YES` once a
//!   full playlist has been read and the server offers delta updates; a delta update that
//!   skipped past what the viewer knew makes the next reload a full one;
//! - the part an **`EXT-X-PRELOAD-HINT`** names, asked for as soon as it is hinted (the
//!   server holds that too); a hint the server answers 404 (it closed the segment instead)
//!   is not an error: the part is asked for again if a playlist lists it;
//! - every **listed part** from the start position on that was not asked for yet, at once;
//!   the start position is the last independent part at least `PART-HOLD-BACK` (else
//!   three part targets) behind the end of the first playlist;
//! - `EXT-X-RENDITION-REPORT`s read and kept (one rendition is watched, so they are only
//!   checked against its own position).
//!
//! [`LlMode::Poll`] is what a server that cannot block offers (nginx serving the same
//! files): the playlist reloaded without directives every part target, open loop (each
//! reload scheduled when the previous one is issued, answered or not), no hints, every new
//! listed part at once.
//!
//! Each part received is one latency sample: the wall clock at its arrival against its
//! `EXT-X-PROGRAM-DATE-TIME` (the parts already listed when the viewer joined are not
//! sampled: they are old by design). Playback runs through a [`Playout`]: stalls come
//! from there. A listed part whose request failed is skipped (played as if it came when
//! it failed), so one error does not stall a viewer for ever; the failure is counted by
//! the driver.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::llplaylist::{LlPlaylist, RenditionReport};
use crate::plan::{Kind, Pick, PlanError, Request};
use crate::playout::{PlayEvent, Playout, Position};
use crate::stats::percentile;

/// How long after a failed master or playlist request a viewer asks again.
const RETRY: Duration = Duration::from_secs(1);
/// The most latency samples one viewer keeps (about 9 hours of 0.33 s parts).
const MAX_SAMPLES: usize = 100_000;

/// How a viewer learns about new parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlMode {
    /// Blocking reloads and preload hints (a server that offers `CAN-BLOCK-RELOAD`; one
    /// that does not is polled).
    Blocking,
    /// Plain reloads at this interval (`None`: the playlist's part target), no hints.
    Poll(Option<Duration>),
}

/// What happened to a viewer, for the driver's accounting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LlEvent {
    /// A part arrived `latency_ms` behind its program date-time.
    Latency {
        /// When it arrived.
        at: Duration,
        /// Wall clock at arrival minus the part's program date-time, in milliseconds.
        latency_ms: f64,
    },
    /// Playback started, stalled or went on.
    Play(PlayEvent),
    /// The playlist had moved on past parts the viewer never saw: it jumped ahead.
    Jump {
        /// When it noticed.
        at: Duration,
    },
}

impl LlEvent {
    /// When it happened.
    pub fn at(&self) -> Duration {
        match *self {
            LlEvent::Latency { at, .. }
            | LlEvent::Jump { at }
            | LlEvent::Play(PlayEvent::Started { at })
            | LlEvent::Play(PlayEvent::StallBegan { at })
            | LlEvent::Play(PlayEvent::StallEnded { at, .. }) => at,
        }
    }
}

/// One viewer's outcome, as the report prints it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ViewerSummary {
    /// Parts received whole (listed ones and hinted ones).
    pub parts: u64,
    /// Of which were asked for on their preload hint.
    pub hinted_parts: u64,
    /// Requests that failed (hints refused with 404 are not failures).
    pub failed: u64,
    /// Hinted parts the server answered 404 (it closed the segment instead).
    pub hints_refused: u64,
    /// Latency behind the live edge of the parts received, median, in milliseconds.
    pub latency_p50_ms: Option<f64>,
    /// The same, the largest.
    pub latency_max_ms: Option<f64>,
    /// The same, of the last part received.
    pub latency_last_ms: Option<f64>,
    /// Whether playback started.
    pub playing: bool,
    /// Stalls (the buffer ran dry), the one still going on at the end included.
    pub stalls: u32,
    /// Time stood still in them, milliseconds.
    pub stalled_ms: f64,
    /// Times the playlist had moved past parts it never saw.
    pub jumps: u64,
    /// Rendition reports in the last playlist.
    pub rendition_reports: usize,
    /// The largest distance, in segments, between this rendition's last segment and
    /// another's `LAST-MSN` in a rendition report (renditions are cut together: 0 or 1).
    pub report_skew_max: Option<u64>,
}

/// A part from the start position on, until it has played.
#[derive(Debug, Clone)]
struct PartState {
    url: Url,
    /// A playlist listed it (else it is only hinted so far).
    listed: bool,
    /// It was asked for on its preload hint.
    hinted: bool,
    program_date_time_ms: Option<i64>,
    /// A request for it is out or done.
    requested: bool,
    /// The wall clock when it arrived, and when (run time), until its latency is taken.
    arrived: Option<(Duration, i64)>,
    /// Its latency was taken (or it is not to be).
    sampled: bool,
}

/// One low-latency viewer's state.
#[derive(Debug, Clone)]
pub struct LlViewer {
    pick: Pick,
    mode: LlMode,
    playlist: Option<Url>,
    init: Option<Url>,
    parts: BTreeMap<Position, PartState>,
    by_url: HashMap<Url, Position>,
    /// Where playback starts, chosen on the first playlist.
    start: Option<Position>,
    /// The last part of the first playlist: parts up to it are old when fetched.
    backlog: Option<Position>,
    /// The last part listed so far.
    last_listed: Option<Position>,
    /// A full playlist was read and nothing was lost since: a delta update will do.
    have_full: bool,
    /// The reload interval in poll mode, once known.
    poll_every: Option<Duration>,
    ended: bool,
    reports: Vec<RenditionReport>,
    playout: Playout,
    events: Vec<LlEvent>,
    latencies: Vec<f64>,
    summary: ViewerSummary,
}

impl LlViewer {
    /// A viewer of `pick`; its first request is the master playlist ([`crate::plan::master`]).
    pub fn new(pick: Pick, mode: LlMode) -> Self {
        LlViewer {
            pick,
            mode,
            playlist: None,
            init: None,
            parts: BTreeMap::new(),
            by_url: HashMap::new(),
            start: None,
            backlog: None,
            last_listed: None,
            have_full: false,
            poll_every: None,
            ended: false,
            reports: Vec::new(),
            playout: Playout::default(),
            events: Vec::new(),
            latencies: Vec::new(),
            summary: ViewerSummary::default(),
        }
    }

    /// Whether the stream has ended.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The rendition reports of the last playlist.
    pub fn reports(&self) -> &[RenditionReport] {
        &self.reports
    }

    /// The master playlist from `url` arrived at `now`: the media playlist, at once.
    pub fn on_master(
        &mut self,
        url: &Url,
        body: &[u8],
        now: Duration,
    ) -> Result<Vec<Request>, PlanError> {
        let request = crate::plan::media_playlist(&self.pick, url, body, now)?;
        self.playlist = Some(request.url.clone());
        Ok(vec![request])
    }

    /// A media playlist (the answer to `request`) arrived at `now`: the init segment once,
    /// every new listed part, the hinted part, and the next reload.
    pub fn on_playlist(
        &mut self,
        request: &Request,
        body: &[u8],
        now: Duration,
    ) -> Result<Vec<Request>, PlanError> {
        let p = LlPlaylist::parse(body)?;
        let base = self
            .playlist
            .clone()
            .ok_or(PlanError::NotAPlaylist(Kind::Playlist))?;
        let resolve = |uri: &str| {
            base.join(uri)
                .map_err(|_| PlanError::BadUri(uri.to_owned()))
        };
        let mut out = Vec::new();
        if let Some(map) = &p.read.map {
            let init = resolve(map)?;
            if self.init.as_ref() != Some(&init) {
                self.init = Some(init.clone());
                out.push(Request {
                    kind: Kind::Init,
                    url: init,
                    due: now,
                });
            }
        }
        let last = p.read.last_part();
        if last.is_none() && !p.read.ended {
            return Err(PlanError::NotLowLatency);
        }
        self.reports.clone_from(&p.read.reports);
        self.check_reports(&p);
        let start = match self.start {
            Some(start) => start,
            None => {
                let start = start_position(&p).ok_or(PlanError::NotLowLatency)?;
                self.start = Some(start);
                self.backlog = last;
                start
            }
        };
        // Parts the playlist no longer lists, never seen: the viewer jumps past them.
        let first = p.read.parts().map(|(at, _)| at).next();
        if let (Some(known), Some(first)) = (self.last_listed, first) {
            if first > known && !adjacent(known, first) {
                self.events.push(LlEvent::Jump { at: now });
                self.summary.jumps += 1;
                self.have_full = false;
            }
        }
        if p.read.skipped == 0 {
            self.have_full = true;
        }
        for (at, part) in p.read.parts().filter(|(at, _)| *at >= start) {
            if self.playout.played().is_some_and(|played| at <= played) {
                continue;
            }
            let url = resolve(&part.uri)?;
            let state = self.parts.entry(at).or_insert_with(|| PartState {
                url: url.clone(),
                listed: false,
                hinted: false,
                program_date_time_ms: None,
                requested: false,
                arrived: None,
                sampled: self.backlog.is_some_and(|b| at <= b),
            });
            if state.url != url {
                // Hinted under another name: the listed one is the part.
                self.by_url.remove(&state.url);
                state.url = url.clone();
                state.requested = false;
            }
            state.listed = true;
            state.program_date_time_ms = part.program_date_time_ms;
            self.by_url.insert(url.clone(), at);
            self.playout.listed(at, part.duration);
            if part.gap {
                state.requested = true;
                state.sampled = true;
                self.playout.ready(at, now);
            } else if !state.requested {
                state.requested = true;
                out.push(Request {
                    kind: Kind::Part,
                    url,
                    due: now,
                });
            }
        }
        // Hints the server did not keep: a later part is listed, and they are not.
        if let Some(last) = last {
            let void: Vec<Position> = self
                .parts
                .iter()
                .filter(|(at, s)| !s.listed && **at < last)
                .map(|(at, _)| *at)
                .collect();
            for at in void {
                if let Some(state) = self.parts.remove(&at) {
                    self.by_url.remove(&state.url);
                }
                self.playout.forget(at);
            }
            self.last_listed = Some(self.last_listed.map_or(last, |l| l.max(last)));
        }
        self.sample_latencies();
        if p.read.ended {
            self.ended = true;
            self.playout.end();
            self.advance(now);
            return Ok(out);
        }
        let blocking = self.mode == LlMode::Blocking && p.read.can_block_reload;
        if let (true, Some(hint), Some(at)) =
            (blocking, &p.read.preload_hint, p.read.hint_position())
        {
            let url = resolve(hint)?;
            let fresh = at >= start && !self.parts.contains_key(&at) && self.playout.expect(at);
            if fresh {
                self.parts.insert(
                    at,
                    PartState {
                        url: url.clone(),
                        listed: false,
                        hinted: true,
                        program_date_time_ms: None,
                        requested: true,
                        arrived: None,
                        sampled: false,
                    },
                );
                self.by_url.insert(url.clone(), at);
                out.push(Request {
                    kind: Kind::HintedPart,
                    url,
                    due: now,
                });
            }
        }
        if blocking {
            let skip = self.have_full && p.read.can_skip_until.is_some();
            out.push(Request {
                kind: Kind::Reload,
                url: reload_url(&base, &p, skip),
                due: now,
            });
        } else if self.poll_every.is_none() {
            let every = match self.mode {
                LlMode::Poll(Some(every)) => every,
                _ => p.read.part_target.unwrap_or(p.target_duration),
            };
            self.poll_every = Some(every.max(Duration::from_millis(1)));
            out.push(Request {
                kind: Kind::Playlist,
                url: base,
                due: (request.due + every).max(now),
            });
        }
        self.advance(now);
        Ok(out)
    }

    /// A part (listed or hinted) arrived whole at `now`, the wall clock then `wall_ms`.
    pub fn on_part(&mut self, url: &Url, now: Duration, wall_ms: i64) {
        let Some(&at) = self.by_url.get(url) else {
            return;
        };
        if let Some(state) = self.parts.get_mut(&at) {
            if state.arrived.is_none() {
                state.arrived = Some((now, wall_ms));
                self.summary.parts += 1;
                if state.hinted {
                    self.summary.hinted_parts += 1;
                }
            }
        }
        self.playout.ready(at, now);
        self.sample_latencies();
        self.advance(now);
    }

    /// `request` failed at `now` (`refused`: a hinted part answered 404): what to ask
    /// again. A listed part is skipped; a hinted one is asked for again once listed; a
    /// playlist is asked again after a second unless polling goes on anyway.
    pub fn on_failure(&mut self, request: &Request, refused: bool, now: Duration) -> Vec<Request> {
        if refused {
            self.summary.hints_refused += 1;
        } else {
            self.summary.failed += 1;
        }
        let mut out = Vec::new();
        match request.kind {
            Kind::Part | Kind::HintedPart => {
                let at = self.by_url.get(&request.url).copied();
                let state = at.and_then(|at| Some((at, self.parts.get_mut(&at)?)));
                match state {
                    // Refused on its hint but listed: asked for again as a listed part.
                    Some((_, state)) if refused && state.listed => out.push(Request {
                        kind: Kind::Part,
                        url: state.url.clone(),
                        due: now,
                    }),
                    // Skipped: it plays as if it came now.
                    Some((at, state)) if state.listed => {
                        state.sampled = true;
                        self.playout.ready(at, now);
                    }
                    // Asked for again if a playlist lists it.
                    Some((_, state)) => state.requested = false,
                    None => {}
                }
            }
            Kind::Master | Kind::Reload => out.push(Request {
                due: now + RETRY,
                ..request.clone()
            }),
            Kind::Playlist if self.poll_every.is_none() => out.push(Request {
                due: now + RETRY,
                ..request.clone()
            }),
            Kind::Playlist | Kind::Init | Kind::Segment => {}
        }
        self.advance(now);
        out
    }

    /// The request that follows from issuing `request`, answered or not: in poll mode,
    /// the next reload one interval after this one was due.
    pub fn after_issuing(&self, request: &Request) -> Option<Request> {
        crate::plan::next_reload(request, self.poll_every, self.ended)
    }

    /// When to call [`LlViewer::tick`] if nothing arrives before: the buffer runs dry then.
    pub fn wake_at(&self) -> Option<Duration> {
        self.playout.runs_out()
    }

    /// Time passed to `now` without news: a stall may have begun.
    pub fn tick(&mut self, now: Duration) {
        self.advance(now);
    }

    /// The events since the last call.
    pub fn take_events(&mut self) -> Vec<LlEvent> {
        std::mem::take(&mut self.events)
    }

    /// The viewer leaves at `now`: its summary (a stall going on counts).
    pub fn finish(&mut self, now: Duration) -> ViewerSummary {
        let events = self.playout.finish(now);
        self.push_play_events(events);
        let mut summary = self.summary.clone();
        let (stalls, stalled) = self.playout.stalls();
        summary.stalls = stalls;
        summary.stalled_ms = stalled.as_secs_f64() * 1000.0;
        summary.rendition_reports = self.reports.len();
        let mut sorted: Vec<Duration> = self
            .latencies
            .iter()
            .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0))
            .collect();
        sorted.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        summary.latency_p50_ms = percentile(&sorted, 50.0).map(ms);
        summary.latency_max_ms = self.latencies.iter().copied().reduce(f64::max);
        summary.latency_last_ms = self.latencies.last().copied();
        summary
    }

    fn advance(&mut self, now: Duration) {
        let events = self.playout.advance(now);
        self.push_play_events(events);
        // Parts played and done with are forgotten.
        if let Some(played) = self.playout.played() {
            while let Some(entry) = self.parts.first_entry() {
                let done = *entry.key() <= played && entry.get().sampled;
                if !done {
                    break;
                }
                let state = entry.remove();
                self.by_url.remove(&state.url);
            }
        }
    }

    fn push_play_events(&mut self, events: Vec<PlayEvent>) {
        for e in events {
            self.summary.playing |= matches!(e, PlayEvent::Started { .. });
            self.events.push(LlEvent::Play(e));
        }
    }

    /// Takes the latency of every part that has both arrived and a date-time.
    fn sample_latencies(&mut self) {
        for state in self.parts.values_mut() {
            if state.sampled || !state.listed {
                continue;
            }
            if let (Some((at, wall)), Some(pdt)) = (state.arrived, state.program_date_time_ms) {
                state.sampled = true;
                let latency_ms = (wall - pdt) as f64;
                if self.latencies.len() < MAX_SAMPLES {
                    self.latencies.push(latency_ms);
                }
                self.events.push(LlEvent::Latency { at, latency_ms });
            } else if state.arrived.is_some() {
                // Listed without a date-time: nothing to measure against.
                state.sampled = true;
            }
        }
    }

    fn check_reports(&mut self, p: &LlPlaylist) {
        let Some(own) = p.read.segments.last().map(|s| s.sequence) else {
            return;
        };
        for r in &p.read.reports {
            let skew = own.abs_diff(r.last_msn);
            let max = self.summary.report_skew_max.get_or_insert(0);
            *max = (*max).max(skew);
        }
    }
}

/// The blocking reload after playlist `p`: the part after its last one (an index past the
/// end of a finished segment means the next segment's first part, as hls.js asks it), and
/// a delta update when `skip`.
fn reload_url(base: &Url, p: &LlPlaylist, skip: bool) -> Url {
    let mut url = base.clone();
    {
        let mut q = url.query_pairs_mut();
        match p.read.last_part() {
            Some((msn, part)) => {
                q.append_pair("_HLS_msn", &msn.to_string());
                q.append_pair("_HLS_part", &(part + 1).to_string());
            }
            None => {
                let next = p
                    .read
                    .segments
                    .last()
                    .map_or(p.read.media_sequence, |s| s.sequence + 1);
                q.append_pair("_HLS_msn", &next.to_string());
            }
        }
        if skip {
            q.append_pair("_HLS_skip", "YES");
        }
    }
    url
}

/// Where a viewer joining with playlist `p` starts: the last independent part that is at
/// least the part hold-back from the end (the first listed part if none is).
fn start_position(p: &LlPlaylist) -> Option<Position> {
    let read = &p.read;
    let hold = read
        .part_hold_back
        .or(read.part_target.map(|t| t * 3))
        .unwrap_or(p.target_duration * 3);
    let parts: Vec<(Position, Duration, bool)> = read
        .parts()
        .map(|(at, part)| {
            let independent = part.independent || (read.independent_segments && at.1 == 0);
            (at, part.duration, independent)
        })
        .collect();
    let mut behind = Duration::ZERO;
    for (at, duration, independent) in parts.iter().rev() {
        behind += *duration;
        if behind >= hold && *independent {
            return Some(*at);
        }
    }
    parts.first().map(|(at, _, _)| *at)
}

/// Whether `next` may directly follow `known`: the next index in the same segment, or the
/// first part of the next segment.
fn adjacent(known: Position, next: Position) -> bool {
    next == (known.0, known.1 + 1) || next == (known.0 + 1, 0)
}

#[cfg(test)]
mod tests;
