//! The load balancer's Prometheus metrics (`sealcast_lb_*`).
//!
//! Label values are bounded: status classes, choice outcomes, cookie rejection reasons and
//! node ids (the members of the cluster).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The metric families this role registers: each name as registered (the exposition adds
/// `_total` to a counter's) with the kind `/metrics` declares it as. prometheus-client
/// leaves a `Family` out of `/metrics` until it has a label set, so a freshly started
/// process does not show them all; this list does (the dashboards' test reads it, and a
/// test below checks it against a scrape with every family in use).
pub const FAMILIES: [(&str, &str); 19] = [
    (REQUESTS, "counter"),
    (UPSTREAM_ERRORS, "counter"),
    (RETRIES, "counter"),
    (BACKEND_CHANGES, "counter"),
    (CHOICES, "counter"),
    (COOKIES_REJECTED, "counter"),
    (BACKEND_SECONDS, "histogram"),
    (BACKENDS_ELIGIBLE, "gauge"),
    (BACKENDS_BEHIND, "gauge"),
    (HTTPS_REDIRECTS, "counter"),
    (PRESENCES_REFUSED, "counter"),
    (LIMITED, "counter"),
    (TOKENS_REFUSED, "counter"),
    (COLLAPSED, "counter"),
    (FOLLOWERS_WAITING, "gauge"),
    (QUIC_FLOWS, "gauge"),
    (QUIC_RELAYS, "gauge"),
    (QUIC_FLOW_CHANGES, "counter"),
    (QUIC_DROPPED, "counter"),
];

/// `sealcast_lb_requests`, a counter.
pub const REQUESTS: &str = "sealcast_lb_requests";
/// `sealcast_lb_upstream_errors`, a counter.
pub const UPSTREAM_ERRORS: &str = "sealcast_lb_upstream_errors";
/// `sealcast_lb_retries`, a counter.
pub const RETRIES: &str = "sealcast_lb_retries";
/// `sealcast_lb_backend_changes`, a counter.
pub const BACKEND_CHANGES: &str = "sealcast_lb_backend_changes";
/// `sealcast_lb_choices`, a counter.
pub const CHOICES: &str = "sealcast_lb_choices";
/// `sealcast_lb_cookies_rejected`, a counter.
pub const COOKIES_REJECTED: &str = "sealcast_lb_cookies_rejected";
/// `sealcast_lb_backend_seconds`, a histogram.
pub const BACKEND_SECONDS: &str = "sealcast_lb_backend_seconds";
/// `sealcast_lb_backends_eligible`, a gauge.
pub const BACKENDS_ELIGIBLE: &str = "sealcast_lb_backends_eligible";
/// `sealcast_lb_backends_behind`, a gauge.
pub const BACKENDS_BEHIND: &str = "sealcast_lb_backends_behind";
/// `sealcast_lb_https_redirects`, a counter.
pub const HTTPS_REDIRECTS: &str = "sealcast_lb_https_redirects";
/// `sealcast_lb_presences_refused`, a counter.
pub const PRESENCES_REFUSED: &str = "sealcast_lb_presences_refused";
/// `sealcast_lb_limited`, a counter.
pub const LIMITED: &str = "sealcast_lb_limited";
/// `sealcast_lb_tokens_refused`, a counter.
pub const TOKENS_REFUSED: &str = "sealcast_lb_tokens_refused";
/// `sealcast_lb_collapsed`, a counter.
pub const COLLAPSED: &str = "sealcast_lb_collapsed";
/// `sealcast_lb_followers_waiting`, a gauge.
pub const FOLLOWERS_WAITING: &str = "sealcast_lb_followers_waiting";
/// `sealcast_lb_quic_flows`, a gauge.
pub const QUIC_FLOWS: &str = "sealcast_lb_quic_flows";
/// `sealcast_lb_quic_relays_eligible`, a gauge.
pub const QUIC_RELAYS: &str = "sealcast_lb_quic_relays_eligible";
/// `sealcast_lb_quic_flow_changes`, a counter.
pub const QUIC_FLOW_CHANGES: &str = "sealcast_lb_quic_flow_changes";
/// `sealcast_lb_quic_dropped`, a counter.
pub const QUIC_DROPPED: &str = "sealcast_lb_quic_dropped";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

type LatencyFamily = Family<NodeLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// What the load balancer counts. Cheap to clone (shared counters).
#[derive(Debug, Clone)]
pub struct LbMetrics {
    requests: Family<ClassLabel, Counter>,
    upstream_errors: Family<NodeLabel, Counter>,
    retries: Counter,
    choice_changes: Counter,
    choices: Family<OutcomeLabel, Counter>,
    cookies_rejected: Family<ReasonLabel, Counter>,
    backend_latency: LatencyFamily,
    eligible: Gauge,
    behind: Gauge,
    redirects: Counter,
    presences_refused: Family<ReasonLabel, Counter>,
    limited: Family<KindLabel, Counter>,
    tokens_refused: Family<ReasonLabel, Counter>,
    collapsed: Family<OutcomeLabel, Counter>,
    followers_waiting: Gauge,
    quic_flows: Gauge,
    quic_relays: Gauge,
    quic_flow_changes: Family<KindLabel, Counter>,
    quic_dropped: Family<ReasonLabel, Counter>,
}

/// A request waiting for an identical one's answer, counted while it lives.
#[derive(Debug)]
pub(crate) struct WaitingFollower(Gauge);

impl Drop for WaitingFollower {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for LbMetrics {
    fn default() -> Self {
        LbMetrics {
            requests: Family::default(),
            upstream_errors: Family::default(),
            retries: Counter::default(),
            choice_changes: Counter::default(),
            choices: Family::default(),
            cookies_rejected: Family::default(),
            backend_latency: Family::new_with_constructor(latency_histogram),
            eligible: Gauge::default(),
            behind: Gauge::default(),
            redirects: Counter::default(),
            presences_refused: Family::default(),
            limited: Family::default(),
            tokens_refused: Family::default(),
            collapsed: Family::default(),
            followers_waiting: Gauge::default(),
            quic_flows: Gauge::default(),
            quic_relays: Gauge::default(),
            quic_flow_changes: Family::default(),
            quic_dropped: Family::default(),
        }
    }
}

/// How a request was placed, for `sealcast_lb_choices_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A trusted cookie named an eligible node.
    StickyHit,
    /// A cookie could not be honoured (rejected, or its node is not eligible).
    StickyMiss,
    /// No cookie: a new viewer.
    NewViewer,
    /// Placed by the hash ring.
    Hashed,
    /// No node was eligible.
    NoBackend,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::StickyHit => "sticky_hit",
            Outcome::StickyMiss => "sticky_miss",
            Outcome::NewViewer => "new_viewer",
            Outcome::Hashed => "hashed",
            Outcome::NoBackend => "no_backend",
        }
    }
}

impl LbMetrics {
    /// Registers every metric on `registry`, with the outcome and class labels
    /// pre-registered so they read 0 rather than being absent.
    pub fn register(&self, registry: &mut Registry) {
        for outcome in [
            Outcome::StickyHit,
            Outcome::StickyMiss,
            Outcome::NewViewer,
            Outcome::Hashed,
            Outcome::NoBackend,
        ] {
            let _ = self.choices.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }
        for class in ["2xx", "3xx", "4xx", "5xx"] {
            let _ = self.requests.get_or_create(&ClassLabel { class });
        }
        for kind in ["request", "connection"] {
            let _ = self.limited.get_or_create(&KindLabel { kind });
        }
        for outcome in ["shared", "own"] {
            let _ = self.collapsed.get_or_create(&OutcomeLabel { outcome });
        }
        registry.register(
            REQUESTS,
            "Requests answered by the load balancer, by status class",
            self.requests.clone(),
        );
        registry.register(
            UPSTREAM_ERRORS,
            "Failed connections or exchanges with a broadcast node",
            self.upstream_errors.clone(),
        );
        registry.register(
            RETRIES,
            "Requests sent again (to another node) after an upstream failure",
            self.retries.clone(),
        );
        registry.register(
            BACKEND_CHANGES,
            "Viewers moved off the node their cookie named (it left or failed)",
            self.choice_changes.clone(),
        );
        registry.register(
            CHOICES,
            "How requests were placed: sticky hit or miss, new viewer, hashed, no backend",
            self.choices.clone(),
        );
        registry.register(
            COOKIES_REJECTED,
            "sealcast_node cookies that were not trusted, by reason",
            self.cookies_rejected.clone(),
        );
        registry.register(
            BACKEND_SECONDS,
            "Time from sending a request to a broadcast node to its response header",
            self.backend_latency.clone(),
        );
        registry.register(
            BACKENDS_ELIGIBLE,
            "Broadcast nodes that are present, ready and healthy",
            self.eligible.clone(),
        );
        registry.register(
            BACKENDS_BEHIND,
            "Eligible broadcast nodes that say they are behind live (no new viewers while a node is caught up)",
            self.behind.clone(),
        );
        registry.register(
            HTTPS_REDIRECTS,
            "Plain HTTP requests answered with a redirect to HTTPS",
            self.redirects.clone(),
        );
        registry.register(
            PRESENCES_REFUSED,
            "Presence messages not believed (unsigned, forged, or for another node), by reason",
            self.presences_refused.clone(),
        );
        registry.register(
            LIMITED,
            "Requests (429) and new connections (dropped) refused for being over their client's budget, by kind",
            self.limited.clone(),
        );
        registry.register(
            TOKENS_REFUSED,
            "Requests refused for their playback token (401 or 403), by reason",
            self.tokens_refused.clone(),
        );
        registry.register(
            COLLAPSED,
            "Requests that waited for an identical one in flight: answered with its answer (shared) or sent on themselves (own: not shareable, failed, too large or too slow)",
            self.collapsed.clone(),
        );
        registry.register(
            QUIC_FLOWS,
            "Viewer flows the QUIC front door holds (an upstream socket each)",
            self.quic_flows.clone(),
        );
        registry.register(
            QUIC_RELAYS,
            "MoQ relays the QUIC front door may send new flows to (listed, checked, answering)",
            self.quic_relays.clone(),
        );
        registry.register(
            QUIC_FLOW_CHANGES,
            "QUIC front door flows opened, moved off a relay that is gone, evicted at the cap for a new viewer, or expired idle, by kind",
            self.quic_flow_changes.clone(),
        );
        registry.register(
            QUIC_DROPPED,
            "Datagrams the QUIC front door dropped, by reason (oversize, no_relay, table_full, socket, relay_refused, upstream_busy, viewer_busy)",
            self.quic_dropped.clone(),
        );
        registry.register(
            FOLLOWERS_WAITING,
            "Requests waiting now for an identical one's answer",
            self.followers_waiting.clone(),
        );
    }

    pub(crate) fn request(&self, status: u16) {
        let class = match status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            500..=599 => "5xx",
            _ => "other",
        };
        self.requests.get_or_create(&ClassLabel { class }).inc();
    }

    pub(crate) fn upstream_error(&self, node: &str) {
        self.upstream_errors
            .get_or_create(&NodeLabel {
                node: node.to_owned(),
            })
            .inc();
    }

    pub(crate) fn retry(&self) {
        self.retries.inc();
    }

    pub(crate) fn choice(&self, outcome: Outcome) {
        self.choices
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    pub(crate) fn choice_changed(&self) {
        self.choice_changes.inc();
    }

    pub(crate) fn cookie_rejected(&self, reason: &'static str) {
        self.cookies_rejected
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub(crate) fn presence_refused(&self, reason: &'static str) {
        self.presences_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub(crate) fn backend_latency(&self, node: &str, seconds: f64) {
        self.backend_latency
            .get_or_create(&NodeLabel {
                node: node.to_owned(),
            })
            .observe(seconds);
    }

    pub(crate) fn set_eligible(&self, count: usize, behind: usize) {
        self.eligible.set(i64::try_from(count).unwrap_or(i64::MAX));
        self.behind.set(i64::try_from(behind).unwrap_or(i64::MAX));
    }

    pub(crate) fn redirect(&self) {
        self.redirects.inc();
    }

    /// A request or a new connection over its client's budget.
    pub(crate) fn limited(&self, kind: &'static str) {
        self.limited.get_or_create(&KindLabel { kind }).inc();
    }

    /// A request waiting for an identical one's answer, until the guard is dropped.
    pub(crate) fn follower_waiting(&self) -> WaitingFollower {
        self.followers_waiting.inc();
        WaitingFollower(self.followers_waiting.clone())
    }

    /// How a request that waited for an identical one was answered.
    pub(crate) fn collapsed(&self, shared: bool) {
        let outcome = if shared { "shared" } else { "own" };
        self.collapsed
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// Flows the QUIC door holds now.
    pub(crate) fn set_quic_flows(&self, count: usize) {
        self.quic_flows
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Relays the QUIC door may send new flows to now.
    pub(crate) fn set_quic_relays(&self, count: usize) {
        self.quic_relays
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// A QUIC door flow `opened`, `moved`, `evicted` or `expired`.
    pub(crate) fn quic_flow(&self, kind: &'static str) {
        self.quic_flow_changes
            .get_or_create(&KindLabel { kind })
            .inc();
    }

    /// A datagram the QUIC door dropped, and why.
    pub(crate) fn quic_dropped(&self, reason: &'static str) {
        self.quic_dropped
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// A request refused for its playback token.
    pub(crate) fn token_refused(&self, reason: &'static str) {
        self.tokens_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With every family in use, `/metrics` declares exactly [`FAMILIES`].
    #[test]
    fn families_are_what_the_registry_declares() {
        let metrics = LbMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.request(200);
        metrics.upstream_error("edge1");
        metrics.choice(Outcome::NewViewer);
        metrics.cookie_rejected("bad_signature");
        metrics.presence_refused("presence");
        metrics.backend_latency("edge1", 0.01);
        metrics.limited("request");
        metrics.token_refused("expired");
        metrics.collapsed(true);
        drop(metrics.follower_waiting());
        metrics.quic_flow("opened");
        metrics.quic_dropped("oversize");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        testkit::prometheus::assert_declares_exactly(&text, &FAMILIES);
    }
}
