//! sealcast lb: the sticky-session load balancer in front of the broadcast nodes.
//!
//! This crate is the load balancer's sans-IO core: values in, values out, no sockets, no
//! clocks. The Pingora proxy that terminates TLS, health-checks nodes, follows MQTT
//! presence and forwards requests comes next and calls into it; until then `sealcast up`
//! prints a broadcast node's own URL as the player URL.
//!
//! - [`cookie`]: the `sealcast_node` sticky cookie. [`cookie::CookieKey`] holds the HMAC
//!   key; [`cookie::StickyCookies`] issues `Set-Cookie` values and verifies `Cookie:`
//!   headers (forged, malformed, stale and future-dated cookies are refused).
//! - [`select`]: the backend set ([`select::Backends`]): membership, health and presence
//!   readiness, active connections, weights, and [`select::Backends::choose`], which
//!   applies the stickiness rule and counts sticky hits, misses and choice changes.
//! - [`ring`]: the Ketama-style consistent-hash ring behind [`select::Mode::Hash`].
//! - [`error`]: the crate's one error enum, for configuration values that are out of range.
//!
//! How the proxy will use it, per request: build a [`select::RequestInfo`] from the
//! `Cookie:` header, the client address and the time; call `choose`; proxy to the chosen
//! node (or answer 503 on [`select::Choice::NoBackend`]); add the `Set-Cookie` value of the
//! [`select::Route`], if any, to the response; bracket the upstream request with
//! `connection_opened` / `connection_closed`.

pub mod cookie;
pub mod error;
pub mod ring;
pub mod select;

pub use cookie::{CookieKey, StickyCookies, COOKIE_NAME};
pub use error::Error;
pub use select::{Backends, Choice, Mode, RequestInfo, Route, Weight};
