//! Who may read a private stream: one layer in front of everything under
//! `/live/{stream}/` and `/vod/{stream}/`.
//!
//! A node knows a stream is private only from data an ingest signed: the flag of the
//! stream's signed session-start event (repeated, signed again, when an operator changes
//! it while live), kept in the stream's snapshot; a recording made while its stream was
//! private carries a marker file the recorder writes before its first segment. Nothing
//! unsigned (a push header, an MQTT message) can make a stream public.
//!
//! The layer works by path *shape*, before any handler: every resource under a private
//! stream's tree (playlists with their blocking reloads, parts and preload hints, segments,
//! `init.mp4`, signature sidecars, recordings, and whatever is added there later) needs a
//! playback token (`?token=…`, `certs::tokens`) for that stream: none, malformed or
//! expired → 401; another stream's, another address's, a live-only token for a recording,
//! or refused by the `on_play` hook → 403. Public streams pass through untouched.
//!
//! A private stream's answers then go out with `Cache-Control: private` (a shared cache
//! keeps none of them) and, for playlists, with the viewer's token carried into every URI.
//! A playlist is rendered once per change for every viewer, public or not, and stays so:
//! the positions of its URIs (`domain::hls::UriMarks`) are found once per playlist version
//! on this node, at its first private request, and kept by its `ETag` (a hash of its text)
//! in a small bounded table; each viewer's copy is then one copy of the text with the query
//! inserted at those positions. Public streams pay nothing for any of it, not even the
//! scan. No per-viewer state is kept, except the `on_play` hook's verdict per token
//! (bounded, until the token expires).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use certs::tokens::{
    token_digest, Claims, ClientNetwork, TokenCache, TokenVerifier, CLOCK_SKEW_SECS,
};
use domain::hls::UriMarks;
use domain::StreamName;
use http::HeaderValue;
use serde::Serialize;

/// Hook verdicts remembered at most (one per token in use).
const MAX_VERDICTS: usize = 65_536;
/// Playlist versions whose URI positions are kept (a few per rendition of each private
/// stream; LL-HLS playlists change every part).
const MAX_MARKED_PLAYLISTS: usize = 4096;

/// What the `on_play` hook is told at a token's first use on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlayRequest {
    /// The private stream.
    pub stream: StreamName,
    /// The token's `jti`, if it has one (the hook never sees the token itself).
    pub jti: Option<String>,
    /// The viewer's address.
    pub client: IpAddr,
    /// When the token expires, unix seconds.
    pub expires_at: u64,
    /// Whether the token opens recordings.
    pub recordings: bool,
}

/// Asks the operator's `on_play` hook: true allows the token (the binary wires in
/// `api::hooks::Hook`, with its timeout and failure mode).
pub type PlayHook =
    Arc<dyn Fn(PlayRequest) -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// How a node checks playback tokens.
#[derive(Clone, Default)]
pub struct AccessConfig {
    /// The cluster's playback key; without it no token opens a private stream here.
    pub verifier: Option<Arc<TokenVerifier>>,
    /// Asked at each token's first use, if configured.
    pub on_play: Option<PlayHook>,
    /// Peers whose `x-forwarded-for` is believed (the load balancers); empty: loopback
    /// and private ranges, where a cluster's load balancers are.
    pub trusted_proxies: Vec<ClientNetwork>,
}

impl std::fmt::Debug for AccessConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessConfig")
            .field("verifier", &self.verifier.is_some())
            .field("on_play", &self.on_play.is_some())
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

/// The checks a node runs, built once from its [`AccessConfig`].
pub(crate) struct Access {
    pub(crate) config: AccessConfig,
    verdicts: Mutex<TokenCache<bool>>,
    /// URI positions by playlist `ETag` and length.
    marks: Mutex<HashMap<(HeaderValue, usize), Arc<UriMarks>>>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Access {
    pub(crate) fn new(config: AccessConfig) -> Self {
        Access {
            config,
            verdicts: Mutex::new(TokenCache::new(MAX_VERDICTS)),
            marks: Mutex::new(HashMap::new()),
        }
    }

    /// Where the URIs of this playlist version end: scanned at its first private request,
    /// kept by `ETag` and length (the table is emptied when full).
    pub(crate) fn marks(&self, etag: &HeaderValue, text: &[u8]) -> Arc<UriMarks> {
        let key = (etag.clone(), text.len());
        if let Some(marks) = lock(&self.marks).get(&key) {
            return Arc::clone(marks);
        }
        let marks = Arc::new(UriMarks::scan(&String::from_utf8_lossy(text)));
        let mut table = lock(&self.marks);
        if table.len() >= MAX_MARKED_PLAYLISTS {
            table.clear();
        }
        table.insert(key, Arc::clone(&marks));
        marks
    }

    /// The client of a request: the peer, or the last `x-forwarded-for` hop when the peer
    /// is a trusted proxy (the load balancer sets it to the address it saw).
    pub(crate) fn client(&self, request: &Request) -> Option<IpAddr> {
        let peer = request
            .extensions()
            .get::<axum::extract::ConnectInfo<crate::audience::Peer>>()
            .map(|c| c.0 .0.ip())?;
        if !self.trusts(peer) {
            return Some(peer);
        }
        let forwarded = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|hop| hop.trim().parse().ok());
        Some(forwarded.unwrap_or(peer))
    }

    fn trusts(&self, peer: IpAddr) -> bool {
        if self.config.trusted_proxies.is_empty() {
            return is_local(peer);
        }
        self.config.trusted_proxies.iter().any(|n| n.contains(peer))
    }

    /// Whether `token` (verified claims `claims`) may play here: the hook's verdict,
    /// asked once per token and remembered until it expires.
    pub(crate) async fn hook_allows(
        &self,
        token: &str,
        claims: &Claims,
        client: IpAddr,
        now: u64,
    ) -> bool {
        let Some(hook) = &self.config.on_play else {
            return true;
        };
        let digest = token_digest(token);
        if let Some(verdict) = lock(&self.verdicts).get(&digest, now) {
            return verdict;
        }
        let verdict = hook(PlayRequest {
            stream: claims.sub.clone(),
            jti: claims.jti.clone(),
            client,
            expires_at: claims.exp,
            recordings: claims.rec,
        })
        .await;
        let until = claims.exp.saturating_add(CLOCK_SKEW_SECS);
        lock(&self.verdicts).insert(digest, until, verdict, now);
        verdict
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Loopback and private addresses (RFC 1918, unique-local): where a load balancer of the
/// cluster talks to its nodes from.
fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.is_loopback() || v4.is_private(),
            None => v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_peers_are_trusted_proxies_by_default() {
        for local in [
            "127.0.0.1",
            "10.0.0.2",
            "192.168.1.1",
            "172.20.0.3",
            "::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_local(local.parse().expect(local)), "{local}");
        }
        for public in ["8.8.8.8", "2001:db8::1", "::ffff:1.1.1.1"] {
            assert!(!is_local(public.parse().expect(public)), "{public}");
        }
    }
}
