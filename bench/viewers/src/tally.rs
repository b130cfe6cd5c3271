//! What low-latency viewers went through in a step or a run, besides their requests:
//! their latency behind the live edge, stalls and jumps ([`LlTally`]), and the report of it
//! beside the requests' own statistics ([`LlReport`]). Apart from [`crate::stats`], which
//! knows requests only, and from [`crate::ll`], whose viewers produce the events.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use crate::ll::LlEvent;
use crate::plan::Kind;
use crate::playout::PlayEvent;
use crate::stats::{Percentiles, Stats};

/// What low-latency viewers went through in a step (or a run), besides their requests:
/// their latency behind the live edge, stalls, jumps.
#[derive(Debug, Clone, Default)]
pub struct LlTally {
    latencies: Vec<Duration>,
    stalls: u64,
    stalled_viewers: BTreeSet<usize>,
    stalled: Duration,
    jumps: u64,
}

impl LlTally {
    /// Counts what happened to viewer `viewer` (a latency below 0, a clock that disagrees
    /// with the server's date-times, counts as 0).
    pub fn event(&mut self, viewer: usize, event: &LlEvent) {
        match *event {
            LlEvent::Latency { latency_ms, .. } => self
                .latencies
                .push(Duration::from_secs_f64(latency_ms.max(0.0) / 1000.0)),
            LlEvent::Play(PlayEvent::StallBegan { .. }) => {
                self.stalls += 1;
                self.stalled_viewers.insert(viewer);
            }
            LlEvent::Play(PlayEvent::StallEnded { lasted, .. }) => self.stalled += lasted,
            LlEvent::Jump { .. } => self.jumps += 1,
            LlEvent::Play(PlayEvent::Started { .. }) => {}
        }
    }

    /// The report of a step of `secs` seconds whose requests are `stats`.
    pub fn report(&self, stats: &Stats, secs: f64) -> LlReport {
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        LlReport {
            part_ttfb: stats.ttfb_of(&[Kind::Part, Kind::HintedPart]),
            reload_wait: stats.ttfb_of(&[Kind::Reload]),
            latency: Percentiles::of(self.latencies.clone()),
            stalls: self.stalls,
            stalled_viewers: self.stalled_viewers.len(),
            stalled_secs: self.stalled.as_secs_f64(),
            jumps: self.jumps,
            requests_per_sec: stats
                .requests()
                .into_iter()
                .map(|(kind, n)| (kind, per_sec(n)))
                .collect(),
        }
    }
}

/// The low-latency side of a step or run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LlReport {
    /// Time to first byte of parts, listed and hinted together. A listed part's is from
    /// the time it was asked for; a hinted part's from when it existed, which is taken to
    /// be when the first viewer of the run had its headers (the server held every
    /// request for it until then; the first viewer counts 0).
    pub part_ttfb: Option<Percentiles>,
    /// How long blocking reloads waited for their headers, from the time they were asked
    /// for (the server holds them until the next part exists: about a part target).
    pub reload_wait: Option<Percentiles>,
    /// Latency behind the live edge of the parts received: wall clock at arrival minus the
    /// part's `EXT-X-PROGRAM-DATE-TIME`.
    pub latency: Option<Percentiles>,
    /// Stalls that began (the buffer ran dry).
    pub stalls: u64,
    /// Viewers that stalled.
    pub stalled_viewers: usize,
    /// Time stood still in stalls that ended.
    pub stalled_secs: f64,
    /// Viewers that found the playlist moved past parts they never saw.
    pub jumps: u64,
    /// Requests per second by kind.
    pub requests_per_sec: BTreeMap<Kind, f64>,
}
