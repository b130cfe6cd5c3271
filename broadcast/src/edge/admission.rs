//! Control-event admission, sans-IO: which signed control events (session start,
//! rendition, drop, end, `synced`) an edge takes, once their signature verified.
//!
//! The push token lets a client send an event; only the ingest's signature makes it
//! count, and even a genuine signature is not enough on its own: a statement captured
//! once must not be replayed later to end or rewind a stream. So an event is taken only
//! when it is fresh (signed within [`EVENT_SKEW`] of this node's clock, either way), its
//! body is a control event, a `synced` names the ingest whose key signed it, and it
//! belongs to the newest session this node knows of:
//! - a session start of a session older than the one taken (session ids order as their
//!   starts do, `SessionId::starting_at`) is refused: two ingests that each bring a node
//!   that joins late up to date, one with the stream's current session and one with the
//!   session it had before the publisher moved, sign both starts afresh, so the signing
//!   time cannot tell which is newer, and the order they arrive in must not matter;
//! - an end or rendition change signed before the start taken, of another session, is an
//!   old statement, refused; a rendition change (which names no session) signed by
//!   another ingest than the one whose start was taken is refused too (the catch-up of a
//!   session that ended there);
//! - a start of the session taken (what the ingest signs again when an operator makes
//!   the stream private or public, or switches its recording, while live) changes the
//!   stream's privacy and recording only if it was signed after every start of that
//!   session taken so far: a copy of an earlier one, replayed within the skew, is taken
//!   with what the newest one said, so a stream made private cannot be flipped back by
//!   replaying its earlier, public start, nor a recording switched back on or off.
//!
//! The caller verifies the signature (on the blocking pool) and reads the wall clock;
//! [`Admission`] decides, and remembers the session starts.

use std::collections::HashMap;
use std::time::Duration;

use domain::push_protocol::ControlEvent;
use domain::wire::EventStatement;
use domain::{LiveEvent, NodeId, SessionId, StreamName};

/// How far from this node's clock the signing time of a control event may lie, either way:
/// a statement older than this is not taken, so one captured cannot be replayed later.
pub(crate) const EVENT_SKEW: Duration = Duration::from_secs(120);

/// Why a verified statement was not taken.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Signed further than [`EVENT_SKEW`] from now.
    Stale {
        /// When it says it was signed, unix milliseconds.
        issued_at_ms: u64,
    },
    /// Its body is not a control event.
    Malformed(serde_json::Error),
    /// A `synced` signed by another ingest's key than the one it names.
    ForeignSync,
    /// Signed before the start of a session other than its own that this node took (the
    /// event, for the log; boxed, as refusals are rare).
    BeforeSession(Box<ControlEvent>),
}

impl Refusal {
    /// The label of `sealcast_control_events_refused_total{reason}`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Refusal::Stale { .. } | Refusal::BeforeSession(_) => "stale",
            Refusal::Malformed(_) => "malformed",
            Refusal::ForeignSync => "bad_signature",
        }
    }
}

/// The control events an edge has taken, as far as later ones depend on them.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    /// Per stream, the newest session start taken: its session, when the ingest signed it
    /// (statements of other sessions signed before it cannot change the stream) and the
    /// ingest whose certificate signed it, when the certificate names one.
    starts: HashMap<StreamName, Start>,
}

/// A session start an edge took.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Start {
    session: SessionId,
    signed_at_ms: u64,
    signer: Option<NodeId>,
    /// What the newest start of the session (by signing time) said.
    private: bool,
    /// Likewise, of its recording.
    record: bool,
}

impl Admission {
    /// A statement whose signature verified against a key certified for `signer` (if the
    /// certificate names one), at `now_ms` (wall clock, unix milliseconds): the event it
    /// carries, or why it is refused.
    pub(crate) fn admit(
        &mut self,
        statement: &EventStatement,
        signer: Option<&NodeId>,
        now_ms: u64,
    ) -> Result<ControlEvent, Refusal> {
        let skew = u64::try_from(EVENT_SKEW.as_millis()).unwrap_or(u64::MAX);
        if statement.issued_at_ms.abs_diff(now_ms) > skew {
            return Err(Refusal::Stale {
                issued_at_ms: statement.issued_at_ms,
            });
        }
        let event: ControlEvent =
            serde_json::from_slice(&statement.body).map_err(Refusal::Malformed)?;
        if let ControlEvent::Synced { ingest } = &event {
            if signer != Some(ingest) {
                return Err(Refusal::ForeignSync);
            }
        }
        let mut event = event;
        if !self.in_order(&mut event, statement.issued_at_ms, signer) {
            return Err(Refusal::BeforeSession(Box::new(event)));
        }
        Ok(event)
    }

    /// Whether `event`, signed at `issued_at_ms` by `signer`, may change its stream; a
    /// session start taken is remembered, and one of the session taken that is not newer
    /// than its latest start gets that start's privacy and recording.
    fn in_order(
        &mut self,
        event: &mut ControlEvent,
        issued_at_ms: u64,
        signer: Option<&NodeId>,
    ) -> bool {
        let (stream, session) = match &*event {
            ControlEvent::Live(LiveEvent::SessionStarted {
                stream, session, ..
            })
            | ControlEvent::Live(LiveEvent::Ended { stream, session }) => {
                (stream.clone(), Some(*session))
            }
            ControlEvent::Live(LiveEvent::Rendition { stream, .. })
            | ControlEvent::Live(LiveEvent::RenditionDropped { stream, .. }) => {
                (stream.clone(), None)
            }
            // A segment never arrives as a control event (its variant does not deserialize).
            ControlEvent::Synced { .. }
            | ControlEvent::Live(
                LiveEvent::Segment(_) | LiveEvent::Part(_) | LiveEvent::Thumbnail(_),
            ) => return true,
        };
        let latest = self.starts.get(&stream);
        if let ControlEvent::Live(LiveEvent::SessionStarted {
            session,
            private,
            record,
            ..
        }) = event
        {
            if latest.is_some_and(|l| l.session.is_newer_than(*session)) {
                return false;
            }
            let (signed_at_ms, newest_private, newest_record) = match latest {
                // An equal or older statement of the session never changes its privacy or
                // recording.
                Some(l) if l.session == *session && issued_at_ms <= l.signed_at_ms => {
                    (l.signed_at_ms, l.private, l.record)
                }
                _ => (issued_at_ms, *private, *record),
            };
            *private = newest_private;
            *record = newest_record;
            let start = Start {
                session: *session,
                signed_at_ms,
                signer: signer.cloned(),
                private: newest_private,
                record: newest_record,
            };
            self.starts.insert(stream, start);
            return true;
        }
        let Some(latest) = latest else {
            return true;
        };
        if issued_at_ms < latest.signed_at_ms && session != Some(latest.session) {
            return false;
        }
        // A rendition change names no session: one from another ingest than the one whose
        // start was taken belongs to a session of that ingest's (its catch-up of a session
        // that ended when the publisher moved).
        let foreign = matches!((signer, &latest.signer), (Some(a), Some(b)) if a != b);
        !(session.is_none() && foreign)
    }
}

#[cfg(test)]
mod tests {
    use domain::wire::{KeyId, SignatureAlgorithm};
    use proptest::prelude::*;

    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn stream() -> StreamName {
        StreamName::new("s").expect("valid")
    }

    fn statement(event: &ControlEvent, issued_at_ms: u64) -> EventStatement {
        EventStatement {
            algorithm: SignatureAlgorithm::Ed25519,
            key_id: KeyId([1; 16]),
            issued_at_ms,
            body: serde_json::to_vec(event).expect("serializes"),
        }
    }

    fn start(session: u64) -> ControlEvent {
        ControlEvent::Live(LiveEvent::SessionStarted {
            stream: stream(),
            session: SessionId(session),
            private: false,
            record: true,
        })
    }

    fn end(session: u64) -> ControlEvent {
        ControlEvent::Live(LiveEvent::Ended {
            stream: stream(),
            session: SessionId(session),
        })
    }

    fn admit(a: &mut Admission, event: &ControlEvent, at: u64) -> Result<ControlEvent, Refusal> {
        a.admit(&statement(event, at), None, NOW)
    }

    #[test]
    fn a_fresh_event_is_taken_and_a_stale_one_either_way_is_not() {
        let mut a = Admission::default();
        let skew = EVENT_SKEW.as_millis() as u64;
        for at in [NOW, NOW - skew, NOW + skew] {
            assert_eq!(admit(&mut a, &start(1), at).ok(), Some(start(1)));
        }
        for at in [NOW - skew - 1, NOW + skew + 1] {
            let refused = admit(&mut a, &start(1), at).expect_err("stale");
            assert_eq!(refused.label(), "stale");
        }
    }

    #[test]
    fn a_body_that_is_not_an_event_is_malformed() {
        let mut s = statement(&start(1), NOW);
        s.body = b"{\"not\": \"an event\"}".to_vec();
        let refused = Admission::default()
            .admit(&s, None, NOW)
            .expect_err("malformed");
        assert!(matches!(refused, Refusal::Malformed(_)));
        assert_eq!(refused.label(), "malformed");
    }

    #[test]
    fn synced_must_come_from_the_key_of_the_ingest_it_names() {
        let ingest = NodeId::new("ingest1").expect("valid");
        let other = NodeId::new("ingest2").expect("valid");
        let synced = ControlEvent::Synced {
            ingest: ingest.clone(),
        };
        let mut a = Admission::default();
        let s = statement(&synced, NOW);
        assert_eq!(a.admit(&s, Some(&ingest), NOW).ok(), Some(synced));
        for signer in [Some(&other), None] {
            let refused = a.admit(&s, signer, NOW).expect_err("another ingest's");
            assert_eq!(refused.label(), "bad_signature");
        }
    }

    #[test]
    fn an_end_of_an_old_session_signed_before_the_new_start_is_refused() {
        let mut a = Admission::default();
        assert!(admit(&mut a, &start(2), NOW).is_ok());
        // Session 1's end and start, captured before session 2 began: replayed now.
        let refused = admit(&mut a, &end(1), NOW - 10).expect_err("replayed end");
        assert!(matches!(refused, Refusal::BeforeSession(_)));
        assert!(admit(&mut a, &start(1), NOW - 10).is_err());
        // Session 1's start signed afresh (another ingest's catch-up): still older.
        assert!(admit(&mut a, &start(1), NOW + 10).is_err());
        // Session 2's own statements, even signed a little earlier, are taken; so is an
        // old session's end signed after the start (a late end of a session takes nothing
        // from the new one: the stream ignores it).
        assert!(admit(&mut a, &end(2), NOW - 10).is_ok());
        assert!(admit(&mut a, &end(1), NOW + 10).is_ok());
        // A rendition change names no session: only its time counts.
        let rendition_drop = ControlEvent::Live(LiveEvent::RenditionDropped {
            stream: stream(),
            rendition: domain::RenditionName::new("720p").expect("valid"),
        });
        assert!(admit(&mut a, &rendition_drop, NOW - 10).is_err());
        assert!(admit(&mut a, &rendition_drop, NOW + 1).is_ok());
    }

    fn start_private(session: u64, private: bool) -> ControlEvent {
        ControlEvent::Live(LiveEvent::SessionStarted {
            stream: stream(),
            session: SessionId(session),
            private,
            record: true,
        })
    }

    /// The privacy of the start `admit` gives out (what the node applies).
    fn privacy_taken(a: &mut Admission, event: &ControlEvent, at: u64) -> Option<bool> {
        match admit(a, event, at) {
            Ok(ControlEvent::Live(LiveEvent::SessionStarted { private, .. })) => Some(private),
            _ => None,
        }
    }

    /// Issue 45 item 10: a stream made private while live (its start signed again, later,
    /// saying so) is not made public again by replaying its earlier start within the skew.
    #[test]
    fn a_replayed_earlier_start_does_not_undo_a_privacy_change() {
        let mut a = Admission::default();
        assert_eq!(
            privacy_taken(&mut a, &start_private(1, false), NOW - 60_000),
            Some(false)
        );
        // The operator makes it private: the ingest signs the start again.
        assert_eq!(
            privacy_taken(&mut a, &start_private(1, true), NOW - 30_000),
            Some(true)
        );
        // The captured public start, replayed (and a copy signed at the same time).
        assert_eq!(
            privacy_taken(&mut a, &start_private(1, false), NOW - 60_000),
            Some(true)
        );
        assert_eq!(
            privacy_taken(&mut a, &start_private(1, false), NOW - 30_000),
            Some(true)
        );
        // The operator makes it public again: a newer statement changes it.
        assert_eq!(
            privacy_taken(&mut a, &start_private(1, false), NOW - 1_000),
            Some(false)
        );
        assert_eq!(
            privacy_taken(&mut a, &start_private(1, true), NOW - 30_000),
            Some(false)
        );
        // A new session says its own privacy.
        assert_eq!(
            privacy_taken(&mut a, &start_private(2, true), NOW - 90_000),
            Some(true)
        );
    }

    /// The recording taken (what the node applies) of a start that says `record`.
    fn recording_taken(a: &mut Admission, record: bool, at: u64) -> Option<bool> {
        let event = ControlEvent::Live(LiveEvent::SessionStarted {
            stream: stream(),
            session: SessionId(1),
            private: false,
            record,
        });
        match admit(a, &event, at) {
            Ok(ControlEvent::Live(LiveEvent::SessionStarted { record, .. })) => Some(record),
            _ => None,
        }
    }

    /// Recording switched off while live (its start signed again, later) is not switched
    /// back on by replaying the earlier start, nor off again once switched on; a newer
    /// statement switches it.
    #[test]
    fn a_replayed_earlier_start_does_not_undo_a_recording_switch() {
        let mut a = Admission::default();
        assert_eq!(recording_taken(&mut a, true, NOW - 60_000), Some(true));
        assert_eq!(recording_taken(&mut a, false, NOW - 30_000), Some(false));
        assert_eq!(recording_taken(&mut a, true, NOW - 60_000), Some(false));
        assert_eq!(recording_taken(&mut a, true, NOW - 30_000), Some(false));
        assert_eq!(recording_taken(&mut a, true, NOW - 1_000), Some(true));
        assert_eq!(recording_taken(&mut a, false, NOW - 30_000), Some(true));
    }

    #[test]
    fn two_ingests_catch_up_in_either_order_and_the_newer_session_stays() {
        let (one, two) = (
            NodeId::new("ingest1").expect("valid"),
            NodeId::new("ingest2").expect("valid"),
        );
        let (old, new) = (
            SessionId::starting_at(NOW - 60_000, 7),
            SessionId::starting_at(NOW - 5_000, 3),
        );
        let start_of = |session| {
            ControlEvent::Live(LiveEvent::SessionStarted {
                stream: stream(),
                session,
                private: false,
                record: true,
            })
        };
        let rendition = ControlEvent::Live(LiveEvent::RenditionDropped {
            stream: stream(),
            rendition: domain::RenditionName::new("720p").expect("valid"),
        });
        // ingest1 had the stream until the publisher moved to ingest2; a node joining now
        // is brought up to date by both, every statement signed afresh, in either order.
        for new_first in [true, false] {
            let mut a = Admission::default();
            let mut signed_at = NOW;
            let mut send = |a: &mut Admission, event: &ControlEvent, by: &NodeId| {
                signed_at += 1;
                a.admit(&statement(event, signed_at), Some(by), NOW).is_ok()
            };
            let (first, second) = if new_first { (new, old) } else { (old, new) };
            let by = |s| if s == new { &two } else { &one };
            send(&mut a, &start_of(first), by(first));
            send(&mut a, &start_of(second), by(second));
            assert_eq!(a.starts[&stream()].session, new, "new first: {new_first}");
            // The old session's rendition changes from its ingest: not the new session's.
            assert!(!send(&mut a, &rendition, &one));
            assert!(send(&mut a, &rendition, &two));
        }
    }

    proptest! {
        /// Whatever starts of one session arrive, in whatever order and however often: the
        /// privacy given out is always the one of the latest-signed start taken so far (of
        /// those signed at the same time, the first), so replaying any of them changes
        /// nothing.
        #[test]
        fn privacy_follows_the_newest_start_only(
            steps in prop::collection::vec((0u64..50, any::<bool>()), 1..40),
        ) {
            let mut a = Admission::default();
            let mut newest: Option<(u64, bool)> = None;
            for (at, private) in steps {
                let signed = NOW - at * 1000;
                if newest.is_none_or(|(t, _)| signed > t) {
                    newest = Some((signed, private));
                }
                let expected = newest.map(|(_, p)| p);
                prop_assert_eq!(privacy_taken(&mut a, &start_private(1, private), signed), expected);
            }
        }

        /// Whatever statements arrive, in whatever order: the session taken never goes
        /// back to an older one, any statement of another session signed before the start
        /// taken, taken earlier or not, is refused when it comes again (a captured
        /// statement cannot be replayed), and the remembered start of a stream never moves
        /// back in time.
        #[test]
        fn statements_of_another_session_signed_before_the_latest_start_are_refused(
            steps in prop::collection::vec((any::<bool>(), 0u64..3, 0u64..1000), 1..60),
        ) {
            let mut a = Admission::default();
            let mut seen = Vec::new();
            for (is_start, session, at) in steps {
                let event = if is_start { start(session) } else { end(session) };
                let before = a.starts.get(&stream()).cloned();
                let _ = admit(&mut a, &event, NOW + at);
                seen.push((event, session, NOW + at));
                let after = a.starts.get(&stream()).cloned();
                if let (Some(b), Some(c)) = (before, after) {
                    prop_assert!(!b.session.is_newer_than(c.session), "the session went back");
                    if b.session == c.session {
                        prop_assert!(c.signed_at_ms >= b.signed_at_ms, "the start went back in time");
                    }
                }
            }
            let Some(latest) = a.starts.get(&stream()).cloned() else {
                return Ok(());
            };
            for (event, session, signed_at) in seen {
                if session != latest.session.0 && signed_at < latest.signed_at_ms {
                    prop_assert!(admit(&mut a, &event, signed_at).is_err(), "{:?} replayed", event);
                }
            }
        }
    }
}
