//! A viewer's buffer, sans-IO, with time passed in: parts play one after the other, each
//! for its duration, from the moment the first one arrives; when the next part has not
//! arrived by the time the one before it ends, the viewer stalls until it does.
//!
//! Parts are known by their position (segment sequence, index in the segment) and may be
//! learnt in any order: a part can arrive before a playlist has told its duration (a
//! preload-hinted part), and its duration can be known before it arrives (a listed one).
//! A part plays once both are known; one that arrived but whose duration is still unknown
//! counts as playing (a player has its samples), so no stall is announced behind it
//! unless it arrived after the buffer had already run dry. The timeline is a pure function
//! of arrival times and durations, whatever order they were learnt in, so a stall is
//! announced once ([`PlayEvent::StallBegan`], as soon as it is certain) and closed once
//! ([`PlayEvent::StallEnded`]).

use std::collections::BTreeMap;
use std::time::Duration;

/// Where a part sits in the stream: its segment's media sequence number and its index in
/// that segment. Ordered as played.
pub type Position = (u64, u32);

/// What happened to playback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayEvent {
    /// The first part arrived and playback started.
    Started {
        /// When.
        at: Duration,
    },
    /// The buffer ran dry: nothing to play until the next part arrives.
    StallBegan {
        /// When it ran dry.
        at: Duration,
    },
    /// A stall is over.
    StallEnded {
        /// When playback went on.
        at: Duration,
        /// How long it stood still.
        lasted: Duration,
    },
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    ready: Option<Duration>,
    duration: Option<Duration>,
}

/// The buffer model of one viewer.
#[derive(Debug, Clone, Default)]
pub struct Playout {
    /// Parts expected and not yet played.
    slots: BTreeMap<Position, Slot>,
    /// When the media scheduled so far runs out; `None` until playback starts.
    runs_out: Option<Duration>,
    /// A stall announced and not over, since when.
    stalled_since: Option<Duration>,
    /// The last part played: anything at or before it is in the past.
    played: Option<Position>,
    stalls: u32,
    stalled: Duration,
    /// The stream ended: no part comes after those expected, and running out of them is
    /// the end of playback, not a stall.
    ended: bool,
}

impl Playout {
    /// The stream ended (`Playout::ended`).
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// The part at `at` will come (listed, or hinted); `false` if it is in the past.
    pub fn expect(&mut self, at: Position) -> bool {
        if self.played.is_some_and(|p| at <= p) {
            return false;
        }
        self.slots.entry(at).or_default();
        true
    }

    /// The part at `at` lasts `duration` (a playlist listed it).
    pub fn listed(&mut self, at: Position, duration: Duration) {
        if self.expect(at) {
            if let Some(slot) = self.slots.get_mut(&at) {
                slot.duration = Some(duration);
            }
        }
    }

    /// The part at `at` arrived (or is skipped: a gap, a failed request) at `now`.
    pub fn ready(&mut self, at: Position, now: Duration) {
        if self.expect(at) {
            if let Some(slot) = self.slots.get_mut(&at) {
                slot.ready.get_or_insert(now);
            }
        }
    }

    /// The part at `at` will not come after all (a hinted part the server never made);
    /// one that already arrived stays.
    pub fn forget(&mut self, at: Position) {
        if self.slots.get(&at).is_some_and(|s| s.ready.is_none()) {
            self.slots.remove(&at);
        }
    }

    /// The last part played.
    pub fn played(&self) -> Option<Position> {
        self.played
    }

    /// Plays what can be played by `now` and says what happened.
    pub fn advance(&mut self, now: Duration) -> Vec<PlayEvent> {
        let mut events = Vec::new();
        while let Some((&at, slot)) = self.slots.first_key_value() {
            let (Some(ready), Some(duration)) = (slot.ready, slot.duration) else {
                break;
            };
            self.slots.pop_first();
            self.played = Some(at);
            self.runs_out = Some(match self.runs_out {
                None => {
                    events.push(PlayEvent::Started { at: ready });
                    ready + duration
                }
                Some(end) if ready > end => {
                    if self.stalled_since.take().is_none() {
                        events.push(PlayEvent::StallBegan { at: end });
                    }
                    let lasted = ready - end;
                    events.push(PlayEvent::StallEnded { at: ready, lasted });
                    self.stalls += 1;
                    self.stalled += lasted;
                    ready + duration
                }
                Some(end) => end + duration,
            });
        }
        let nothing_to_come = self.ended && self.slots.is_empty();
        if let (Some(end), None, false) = (self.runs_out, self.stalled_since, nothing_to_come) {
            if end < now && !self.front_playing(end) {
                self.stalled_since = Some(end);
                events.push(PlayEvent::StallBegan { at: end });
            }
        }
        events
    }

    /// Whether the next part arrived in time (by `end`) but its duration is not known yet:
    /// it plays, for a while nobody knows.
    fn front_playing(&self, end: Duration) -> bool {
        self.slots
            .first_key_value()
            .and_then(|(_, s)| s.ready)
            .is_some_and(|r| r <= end)
    }

    /// When to look again if nothing arrives: the time the buffer runs dry; `None` while
    /// stalled, before playback starts, or while the length of what plays is unknown.
    pub fn runs_out(&self) -> Option<Duration> {
        let end = self.runs_out?;
        let nothing_to_come = self.ended && self.slots.is_empty();
        (self.stalled_since.is_none() && !self.front_playing(end) && !nothing_to_come)
            .then_some(end)
    }

    /// The viewer leaves at `now`: a stall still going on ends here and counts.
    pub fn finish(&mut self, now: Duration) -> Vec<PlayEvent> {
        let mut events = self.advance(now);
        if let Some(since) = self.stalled_since.take() {
            let lasted = now.saturating_sub(since);
            events.push(PlayEvent::StallEnded { at: now, lasted });
            self.stalls += 1;
            self.stalled += lasted;
        }
        events
    }

    /// Stalls so far (ended ones) and the time they stood still.
    pub fn stalls(&self) -> (u32, Duration) {
        (self.stalls, self.stalled)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn parts_in_time_play_without_a_stall() {
        let mut p = Playout::default();
        for i in 0..3 {
            p.listed((1, i), ms(300));
        }
        p.ready((1, 0), ms(100));
        assert_eq!(p.advance(ms(100)), [PlayEvent::Started { at: ms(100) }]);
        assert_eq!(p.runs_out(), Some(ms(400)));
        p.ready((1, 1), ms(350));
        p.ready((1, 2), ms(690));
        assert_eq!(p.advance(ms(690)), []);
        assert_eq!(p.runs_out(), Some(ms(1000)));
        assert_eq!(p.played(), Some((1, 2)));
        assert_eq!(p.finish(ms(900)), []);
        assert_eq!(p.stalls(), (0, Duration::ZERO));
    }

    #[test]
    fn a_late_part_is_a_stall_announced_when_the_buffer_runs_dry() {
        let mut p = Playout::default();
        p.listed((1, 0), ms(300));
        p.listed((1, 1), ms(300));
        p.ready((1, 0), ms(0));
        p.advance(ms(0));
        // At 350 ms the first part has run out and the second is not here.
        assert_eq!(p.advance(ms(350)), [PlayEvent::StallBegan { at: ms(300) }]);
        assert_eq!(p.runs_out(), None, "stalled: nothing to wait for");
        assert_eq!(p.advance(ms(400)), [], "announced once");
        p.ready((1, 1), ms(500));
        assert_eq!(
            p.advance(ms(500)),
            [PlayEvent::StallEnded {
                at: ms(500),
                lasted: ms(200)
            }]
        );
        assert_eq!(p.runs_out(), Some(ms(800)));
        assert_eq!(p.stalls(), (1, ms(200)));
    }

    #[test]
    fn a_hinted_part_plays_before_its_duration_is_known_and_a_void_hint_is_forgotten() {
        let mut p = Playout::default();
        p.listed((1, 0), ms(300));
        p.ready((1, 0), ms(0));
        p.advance(ms(0));
        // The hinted part arrives in time, its duration unknown: no stall, no timer.
        p.expect((1, 1));
        p.ready((1, 1), ms(250));
        assert_eq!(p.advance(ms(400)), []);
        assert_eq!(p.runs_out(), None);
        p.listed((1, 1), ms(300));
        assert_eq!(p.advance(ms(450)), []);
        assert_eq!(p.runs_out(), Some(ms(600)));
        // A hint for (1, 2) that the server never made: the next part is (2, 0).
        p.expect((1, 2));
        p.forget((1, 2));
        p.listed((2, 0), ms(300));
        p.ready((2, 0), ms(550));
        assert_eq!(p.advance(ms(550)), []);
        assert_eq!(p.runs_out(), Some(ms(900)));
        // The past is refused.
        assert!(!p.expect((1, 1)));
    }

    #[test]
    fn a_stall_still_going_at_the_end_counts() {
        let mut p = Playout::default();
        p.listed((1, 0), ms(300));
        p.ready((1, 0), ms(0));
        p.expect((1, 1));
        assert_eq!(
            p.finish(ms(1000)),
            [
                PlayEvent::Started { at: ms(0) },
                PlayEvent::StallBegan { at: ms(300) },
                PlayEvent::StallEnded {
                    at: ms(1000),
                    lasted: ms(700)
                }
            ]
        );
        assert_eq!(p.stalls(), (1, ms(700)));
    }

    #[test]
    fn the_end_of_a_stream_is_no_stall() {
        let mut p = Playout::default();
        p.listed((1, 0), ms(300));
        p.ready((1, 0), ms(0));
        p.end();
        assert_eq!(p.advance(ms(0)), [PlayEvent::Started { at: ms(0) }]);
        assert_eq!(p.runs_out(), None);
        assert_eq!(p.finish(ms(1000)), []);
        assert_eq!(p.stalls(), (0, Duration::ZERO));
        // Parts still expected when it ended: running dry before they come is a stall.
        let mut p = Playout::default();
        p.listed((1, 0), ms(300));
        p.ready((1, 0), ms(0));
        p.listed((1, 1), ms(300));
        p.end();
        p.advance(ms(0));
        assert_eq!(p.advance(ms(400)), [PlayEvent::StallBegan { at: ms(300) }]);
    }

    proptest! {
        /// Whatever the order facts are learnt in and however often it is advanced, the
        /// stalls are those of the timeline computed directly: part k starts at
        /// max(end of k-1, arrival of k), and each stall is announced once and closed once.
        #[test]
        fn the_timeline_does_not_depend_on_when_it_is_looked_at(
            parts in prop::collection::vec((1u64..600, 0u64..800), 1..25),
            listing_late in prop::collection::vec(any::<bool>(), 25),
            peeks in prop::collection::vec(0u64..20_000, 0..20),
        ) {
            // Arrival times rise (each part after the one before it, by up to 800 ms).
            let mut arrivals = Vec::new();
            let mut t = 0;
            for (_, gap) in &parts {
                t += gap;
                arrivals.push(t);
            }
            // The direct timeline.
            let mut end = arrivals[0] + parts[0].0;
            let (mut stalls, mut stalled) = (0u32, 0u64);
            for (k, (duration, _)) in parts.iter().enumerate().skip(1) {
                if arrivals[k] > end {
                    stalls += 1;
                    stalled += arrivals[k] - end;
                    end = arrivals[k];
                }
                end += duration;
            }
            // The model, fed event by event in time order, some durations learnt only at
            // the next arrival, advanced at arbitrary extra moments.
            let mut events: Vec<(u64, u8, usize)> = Vec::new();
            for (k, a) in arrivals.iter().enumerate() {
                events.push((*a, 1, k));
                let learnt = if listing_late[k] { arrivals.get(k + 1).copied().unwrap_or(*a) } else { a.saturating_sub(1) };
                events.push((learnt.max(*a), 0, k));
            }
            let last = arrivals[arrivals.len() - 1];
            // Looking after the last arrival would see the stream end in a stall.
            for p in peeks.iter().filter(|p| **p <= last) {
                events.push((*p, 2, 0));
            }
            events.sort();
            let mut p = Playout::default();
            let (mut began, mut ended) = (0, 0);
            for (at, what, k) in events {
                let pos = (1, k as u32);
                match what {
                    0 => p.listed(pos, ms(parts[k].0)),
                    1 => p.ready(pos, ms(at)),
                    _ => {}
                }
                for e in p.advance(ms(at)) {
                    match e {
                        PlayEvent::StallBegan { .. } => began += 1,
                        PlayEvent::StallEnded { .. } => ended += 1,
                        PlayEvent::Started { .. } => {}
                    }
                }
                prop_assert!(began >= ended && began <= ended + 1);
            }
            for e in p.advance(ms(last)) {
                if let PlayEvent::StallEnded { .. } = e { ended += 1 }
            }
            prop_assert_eq!(p.stalls(), (stalls, ms(stalled)));
            prop_assert_eq!(began, ended);
        }
    }
}
