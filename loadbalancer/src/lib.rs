//! sealcast lb: the sticky-session load balancer in front of the broadcast nodes.
//!
//! The sans-IO core (values in, values out, no sockets, no clocks):
//!
//! - [`cookie`]: the `sealcast_node` sticky cookie. [`cookie::CookieKey`] holds the HMAC
//!   key; [`cookie::StickyCookies`] issues `Set-Cookie` values and verifies `Cookie:`
//!   headers (forged, malformed, stale and future-dated cookies are refused).
//! - [`selection`]: the backend set ([`selection::Backends`]): membership, health and
//!   presence readiness, active connections, weights, and [`selection::Backends::choose`],
//!   which applies the placement mode and counts sticky hits, misses and choice changes;
//!   one file per policy: [`selection::sticky`] (the cookie rule),
//!   [`selection::least_loaded`] (viewers without a say) and [`selection::ketama`] (the
//!   consistent-hash ring behind [`selection::Mode::Hash`]).
//!
//! Around it, the Pingora load balancer:
//!
//! - [`proxy`]: the HTTPS proxy ([`pingora::proxy::ProxyHttp`]). Per request it builds a
//!   [`selection::RequestInfo`] from the `Cookie:` header, the client address and the
//!   time; calls `choose`; proxies to the chosen node over a pooled connection (or answers
//!   503 on [`selection::Choice::NoBackend`]); adds the `Set-Cookie` of the
//!   [`selection::Route`]; brackets the upstream request with `connection_opened` /
//!   `connection_closed`. A node that refuses a connection leaves rotation at once and the
//!   request is retried on another one.
//! - `request`: what it reads off a request (client address, cookies, Host).
//! - `answers`: what it answers itself (JSON errors, redirects, a collapsed request's
//!   copy).
//! - [`collapse`]: identical requests for a node in flight at the same time (LL-HLS
//!   hinted parts and blocking reloads, a new segment) reach it once; the others get a
//!   copy of a public answer.
//! - [`counted`]: which viewers each node has counted lately, by their live playlist
//!   requests; only their playlist requests collapse, so every viewer stays counted.
//! - [`redirect`]: the plain-HTTP port: redirect to HTTPS, except `/healthz` and ACME
//!   challenges.
//! - [`members`]: backends from MQTT presence, and `/healthz` checks.
//! - [`ingests`]: where WHIP publishes go (issue 32): the ingests that announced a WHIP URL
//!   in a presence signed by their own key, and rendezvous hashing of the stream name.
//! - [`access`]: [`access::Gate`], what the proxy decides before a node spends anything
//!   on a request: the client's request budget and, where the request carries one, its
//!   playback token (issue 34).
//! - [`caches`]: who the client is on the origin listener: a trusted cache's
//!   `X-Forwarded-For` (issue 45), anyone else's peer address.
//! - [`limits`]: per-client token buckets (sans-IO) for requests and new connections, and
//!   the connection filter that drops a client over its connection budget.
//! - [`quic_door`]: the QUIC front door (issue 48), a UDP forwarder beside Pingora that
//!   sends each viewer's datagrams to a MoQ relay, sticky by rendezvous hashing of the
//!   viewer's address, with a bounded flow table ([`quic_door::table`], sans-IO).
//! - [`tls`]: the server certificate, reloaded when its files change.
//! - [`metrics`]: the `sealcast_lb_*` metrics.
//! - [`server`]: [`server::start`] wires all of it onto bound listeners.
//! - [`error`]: the crate's one error enum.

pub mod access;
pub(crate) mod answers;
pub mod caches;
pub mod collapse;
pub mod cookie;
pub mod counted;
pub mod error;
pub mod ingests;
pub mod limits;
pub mod members;
pub mod metrics;
pub mod proxy;
pub mod quic_door;
pub mod redirect;
pub(crate) mod request;
pub mod selection;
pub mod server;
pub mod tls;

pub use cookie::{CookieKey, StickyCookies, COOKIE_NAME};
pub use error::LoadBalancerError;
pub use metrics::LbMetrics;
pub use selection::{Backends, Choice, Mode, RequestInfo, Route, Weight};
pub use server::{start, LbConfig, LbListeners, Running};
