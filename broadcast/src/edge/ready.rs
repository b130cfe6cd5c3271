//! When an edge may call itself ready, sans-IO: presence and `Synced` events in, a verdict
//! out. The brief: "a node that joins late receives the current window before it is marked
//! ready". Ingest pushes its window to a node it sees joining and then says `Synced`; the
//! node waits for that from every ingest that is up.
//!
//! Retained presences arrive right after the node subscribes, but a busy broker can take
//! its time, so the node does not guess how long to wait: it knows it has seen every
//! retained presence once its own presence, published after it subscribed, comes back to
//! it live (not as a retained message). A broker delivers to one connection in order, so
//! whatever was retained when the node subscribed was delivered before that echo. Only the
//! presence it announced last counts as the echo: a restarted node's persistent session
//! may first deliver its previous run's last will, queued while it was down. Since a
//! broker or an ingest can misbehave, the node reports ready after the readiness timeout
//! regardless (the caller logs a warning then). Once ready it stays ready: flapping would
//! only move viewers around.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use domain::NodeId;
use tokio::time::Instant;

/// Why the node became ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every ingest that is up has synced this node (possibly none).
    Synced,
    /// The timeout passed; these ingests were up and had not synced.
    TimedOut {
        /// Ingests still owing their window.
        waiting_for: Vec<NodeId>,
    },
}

/// The readiness bookkeeping of one edge.
#[derive(Debug)]
pub(crate) struct Readiness {
    /// When the edge started; the timeout counts from here.
    started: Instant,
    timeout: Duration,
    /// Whether the node's own presence came back live: every retained presence is known.
    echoed: bool,
    /// Ingest nodes by id: whether their latest presence says they are up.
    ingests: HashMap<NodeId, bool>,
    /// Ingests that sent `Synced` since this node started.
    synced: HashSet<NodeId>,
    ready: bool,
}

impl Readiness {
    pub(crate) fn new(started: Instant, timeout: Duration) -> Self {
        Readiness {
            started,
            timeout,
            echoed: false,
            ingests: HashMap::new(),
            synced: HashSet::new(),
            ready: false,
        }
    }

    /// The node's own presence came back from the broker as a live (not retained) message.
    pub(crate) fn echoed(&mut self) {
        self.echoed = true;
    }

    /// An ingest's presence: up (joining or ready) or not (offline, cleared).
    pub(crate) fn ingest(&mut self, node: NodeId, up: bool) {
        self.ingests.insert(node, up);
    }

    /// An ingest said it has sent everything it holds.
    pub(crate) fn synced(&mut self, node: NodeId) {
        self.synced.insert(node);
    }

    /// Decides at `now`; `Some` exactly once, when the node becomes ready.
    pub(crate) fn check(&mut self, now: Instant) -> Option<Verdict> {
        if self.ready {
            return None;
        }
        let mut waiting_for: Vec<NodeId> = self
            .ingests
            .iter()
            .filter(|(node, up)| **up && !self.synced.contains(*node))
            .map(|(node, _)| node.clone())
            .collect();
        let verdict = if self.echoed && waiting_for.is_empty() {
            Verdict::Synced
        } else if now.saturating_duration_since(self.started) >= self.timeout {
            waiting_for.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            Verdict::TimedOut { waiting_for }
        } else {
            return None;
        };
        self.ready = true;
        Some(verdict)
    }
}

/// Whether a ready edge has fallen behind live, sans-IO: the gate's
/// [`behind`](super::gate::SignatureGate::behind) count in, a change of verdict out. More
/// than [`BEHIND_SEGMENTS`] segments behind for [`SETTLE`] makes the node behind (its
/// presence says so and the load balancer gives it no new viewers); back within it for
/// `SETTLE` makes it caught up again. The settling time keeps one late push or one lost
/// segment from moving the node in and out of rotation.
#[derive(Debug, Default)]
pub(crate) struct Lag {
    behind: bool,
    /// Since when the count has said the opposite of `behind`.
    changing_since: Option<Instant>,
}

/// Segments behind live that are normal: the next segment's statement arrived, its bytes
/// not yet.
pub(crate) const BEHIND_SEGMENTS: u64 = 1;

/// How long the count must say otherwise before the verdict changes.
pub(crate) const SETTLE: Duration = Duration::from_secs(1);

impl Lag {
    /// The gate counts `segments` behind at `now`; `Some(behind)` when the verdict changes.
    pub(crate) fn observe(&mut self, now: Instant, segments: u64) -> Option<bool> {
        if (segments > BEHIND_SEGMENTS) == self.behind {
            self.changing_since = None;
            return None;
        }
        let since = *self.changing_since.get_or_insert(now);
        if now.saturating_duration_since(since) < SETTLE {
            return None;
        }
        self.behind = !self.behind;
        self.changing_since = None;
        Some(self.behind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_changes_only_after_settling() {
        let t0 = Instant::now();
        let mut lag = Lag::default();
        assert_eq!(lag.observe(t0, 1), None, "one segment behind is normal");
        assert_eq!(lag.observe(at(t0, 100), 3), None);
        assert_eq!(lag.observe(at(t0, 600), 1), None, "a blip");
        assert_eq!(lag.observe(at(t0, 700), 2), None);
        assert_eq!(lag.observe(at(t0, 1699), 2), None);
        assert_eq!(lag.observe(at(t0, 1700), 5), Some(true));
        assert_eq!(lag.observe(at(t0, 1800), 5), None, "reported once");
        assert_eq!(lag.observe(at(t0, 2000), 0), None);
        assert_eq!(lag.observe(at(t0, 2500), 4), None, "still behind");
        assert_eq!(lag.observe(at(t0, 2600), 1), None);
        assert_eq!(lag.observe(at(t0, 3600), 0), Some(false));
    }

    fn node(s: &str) -> NodeId {
        NodeId::new(s).expect("valid")
    }

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn waits_for_its_own_presence_to_come_back_when_no_ingest_is_up() {
        let t0 = Instant::now();
        let mut r = Readiness::new(t0, Duration::from_secs(10));
        assert_eq!(
            r.check(at(t0, 5000)),
            None,
            "retained presences may still come"
        );
        r.echoed();
        assert_eq!(r.check(at(t0, 5001)), Some(Verdict::Synced));
        assert_eq!(r.check(at(t0, 7000)), None, "reported once");
    }

    #[test]
    fn an_ingest_retained_before_the_echo_is_waited_for() {
        let t0 = Instant::now();
        let mut r = Readiness::new(t0, Duration::from_secs(10));
        r.ingest(node("ingest1"), true);
        r.echoed();
        assert_eq!(r.check(at(t0, 100)), None);
        r.synced(node("ingest1"));
        assert_eq!(r.check(at(t0, 200)), Some(Verdict::Synced));
    }

    #[test]
    fn waits_for_every_ingest_that_is_up() {
        let t0 = Instant::now();
        let mut r = Readiness::new(t0, Duration::from_secs(10));
        r.echoed();
        r.ingest(node("ingest1"), true);
        r.ingest(node("ingest2"), true);
        r.ingest(node("ingest3"), false);
        r.synced(node("ingest1"));
        assert_eq!(r.check(at(t0, 2000)), None);
        // An ingest that goes away is not waited for.
        r.ingest(node("ingest2"), false);
        assert_eq!(r.check(at(t0, 2100)), Some(Verdict::Synced));
    }

    #[test]
    fn a_sync_before_the_presence_counts() {
        let t0 = Instant::now();
        let mut r = Readiness::new(t0, Duration::from_secs(10));
        r.echoed();
        r.synced(node("ingest1"));
        r.ingest(node("ingest1"), true);
        assert_eq!(r.check(at(t0, 1000)), Some(Verdict::Synced));
    }

    #[test]
    fn times_out_naming_who_it_waited_for() {
        let t0 = Instant::now();
        let mut r = Readiness::new(t0, Duration::from_secs(10));
        r.echoed();
        r.ingest(node("ingest1"), true);
        assert_eq!(r.check(at(t0, 9999)), None);
        assert_eq!(
            r.check(at(t0, 10_000)),
            Some(Verdict::TimedOut {
                waiting_for: vec![node("ingest1")]
            })
        );
        // Without any broker at all, too.
        let mut r = Readiness::new(t0, Duration::from_secs(3));
        assert!(matches!(
            r.check(at(t0, 3000)),
            Some(Verdict::TimedOut { .. })
        ));
    }

    /// One thing that can happen to the readiness bookkeeping.
    #[derive(Debug, Clone)]
    enum Step {
        Echoed,
        Ingest(u8, bool),
        Synced(u8),
        Check(u64),
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Step::Echoed),
            (0u8..4, any::<bool>()).prop_map(|(n, up)| Step::Ingest(n, up)),
            (0u8..4).prop_map(Step::Synced),
            (0u64..3000).prop_map(Step::Check),
        ]
    }

    proptest::proptest! {
        /// Whatever presences, syncs and checks come in whatever order: the node becomes
        /// ready exactly once, `Synced` only after its own echo with every ingest that is
        /// up synced, `TimedOut` only once the timeout passed and naming exactly the
        /// ingests still owed (sorted); and it does become ready as soon as either holds.
        #[test]
        fn ready_exactly_once_and_only_for_a_reason(
            steps in proptest::collection::vec(step(), 0..60),
        ) {
            let t0 = Instant::now();
            let timeout = Duration::from_secs(10);
            let mut r = Readiness::new(t0, timeout);
            let (mut echoed, mut up, mut synced) = (false, HashMap::new(), HashSet::new());
            let (mut elapsed, mut verdicts) = (0, 0);
            for step in steps.into_iter().chain([Step::Check(10_000)]) {
                match step {
                    Step::Echoed => {
                        echoed = true;
                        r.echoed();
                    }
                    Step::Ingest(n, is_up) => {
                        up.insert(node(&format!("ingest{n}")), is_up);
                        r.ingest(node(&format!("ingest{n}")), is_up);
                    }
                    Step::Synced(n) => {
                        synced.insert(node(&format!("ingest{n}")));
                        r.synced(node(&format!("ingest{n}")));
                    }
                    Step::Check(dt) => {
                        elapsed += dt;
                        let mut owed: Vec<NodeId> = up
                            .iter()
                            .filter(|(n, is_up)| **is_up && !synced.contains(*n))
                            .map(|(n, _)| n.clone())
                            .collect();
                        owed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                        let timed_out = elapsed >= 10_000;
                        match r.check(at(t0, elapsed)) {
                            Some(Verdict::Synced) => {
                                proptest::prop_assert!(echoed && owed.is_empty());
                                verdicts += 1;
                            }
                            Some(Verdict::TimedOut { waiting_for }) => {
                                proptest::prop_assert!(timed_out && !(echoed && owed.is_empty()));
                                proptest::prop_assert_eq!(waiting_for, owed);
                                verdicts += 1;
                            }
                            None => proptest::prop_assert!(
                                verdicts == 1 || !(timed_out || echoed && owed.is_empty()),
                                "not ready though it should be"
                            ),
                        }
                        proptest::prop_assert!(verdicts <= 1, "ready twice");
                    }
                }
            }
            proptest::prop_assert_eq!(verdicts, 1, "never ready, even after the timeout");
        }

        /// Whatever counts the gate reports at whatever times: the verdict flips between
        /// behind and caught up (starting caught up), only once the counts have said the
        /// other thing for at least SETTLE without a break, and always by then.
        #[test]
        fn lag_flips_only_and_always_after_settling(
            steps in proptest::collection::vec((0u64..400, 0u64..4), 0..80),
        ) {
            let t0 = Instant::now();
            let settle = u64::try_from(SETTLE.as_millis()).expect("small");
            let mut lag = Lag::default();
            let mut behind = false;
            // When the counts started to say the opposite of `behind`, without a break.
            let mut other_since: Option<u64> = None;
            let mut now = 0;
            for (dt, segments) in steps {
                now += dt;
                let says_behind = segments > BEHIND_SEGMENTS;
                other_since = if says_behind == behind {
                    None
                } else {
                    Some(other_since.unwrap_or(now))
                };
                let settled = other_since.is_some_and(|since| now - since >= settle);
                match lag.observe(at(t0, now), segments) {
                    Some(verdict) => {
                        proptest::prop_assert_eq!(verdict, !behind, "not a flip");
                        proptest::prop_assert!(settled, "flipped at {} before settling", now);
                        behind = verdict;
                        other_since = None;
                    }
                    None => proptest::prop_assert!(!settled, "settled at {} but no flip", now),
                }
            }
        }
    }
}
