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
//! scan. No per-viewer state is kept, except the `on_play` hook's verdicts.
//!
//! The `on_play` hook is asked once per token *and client address* (a verdict given for
//! one client says nothing about another using the same token), and its answer is kept
//! for at most [`VERDICT_FOR`] (or until the token expires, if sooner): a token the
//! operator's backend stops allowing stops playing within that time, however long the
//! token runs. A hook that could not be asked (it failed or timed out) gives a verdict by
//! its failure mode that is never kept: the next request asks again. Requests that need
//! the same verdict at the same time share one call (the first asks, the others wait for
//! its answer; if the first gives up, the next in line asks), so a hook is not stampeded
//! when a popular link is opened by many at once.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use certs::tokens::{Claims, ClientNetwork, TokenCache, TokenVerifier, CLOCK_SKEW_SECS};
use domain::hls::UriMarks;
use domain::StreamName;
use http::HeaderValue;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

/// Hook verdicts remembered at most (one per token and client in use; the oldest goes
/// first when full).
const MAX_VERDICTS: usize = 65_536;
/// How long an `on_play` verdict is kept at most: the hook is asked again after it, so a
/// token its backend stopped allowing stops playing within a minute.
pub const VERDICT_FOR: Duration = Duration::from_secs(60);
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

/// What the `on_play` hook said about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayVerdict {
    /// It answered and allowed the token.
    Allowed,
    /// It answered and refused the token.
    Refused,
    /// It could not be asked (it failed or timed out); `allowed` is what its failure mode
    /// says (fail-open or fail-closed). Never remembered: the next request asks again.
    Failed {
        /// Whether the failure mode lets the request through.
        allowed: bool,
    },
}

impl PlayVerdict {
    /// Whether the request may go on.
    pub fn allows(self) -> bool {
        matches!(
            self,
            PlayVerdict::Allowed | PlayVerdict::Failed { allowed: true }
        )
    }
}

/// Asks the operator's `on_play` hook about a token (the binary wires in
/// `api::hooks::Hook`, with its timeout and failure mode).
pub type PlayHook =
    Arc<dyn Fn(PlayRequest) -> Pin<Box<dyn Future<Output = PlayVerdict> + Send>> + Send + Sync>;

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
    /// The hook's answers, by [`verdict_key`], each kept until [`VERDICT_FOR`] has passed
    /// or its token expired.
    verdicts: Mutex<TokenCache<bool>>,
    /// Hook calls under way, by [`verdict_key`]: requests that need the same verdict wait
    /// for one call. An entry lives while a request waits on it.
    flights: Mutex<HashMap<[u8; 32], Arc<OnceCell<PlayVerdict>>>>,
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
            flights: Mutex::new(HashMap::new()),
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

    /// Whether `token` (verified claims `claims`) may play here for `client`: the hook's
    /// verdict, asked once per token and client, kept for [`VERDICT_FOR`] at most (a
    /// failure not at all), one call for requests that need it at once.
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
        let key = verdict_key(token, client);
        if let Some(verdict) = lock(&self.verdicts).get(&key, now) {
            return verdict;
        }
        let flight = Flight::join(&self.flights, key);
        let ask = || {
            hook(PlayRequest {
                stream: claims.sub.clone(),
                jti: claims.jti.clone(),
                client,
                expires_at: claims.exp,
                recordings: claims.rec,
            })
        };
        let verdict = match &flight.cell {
            Some(cell) => *cell.get_or_init(ask).await,
            // Never: the handle is there until the flight is dropped.
            None => PlayVerdict::Failed { allowed: false },
        };
        if !matches!(verdict, PlayVerdict::Failed { .. }) {
            let until = claims
                .exp
                .saturating_add(CLOCK_SKEW_SECS)
                .min(now.saturating_add(VERDICT_FOR.as_secs()));
            // Before the flight ends: a request coming after it finds the verdict here.
            lock(&self.verdicts).insert(key, until, verdict.allows(), now);
        }
        drop(flight);
        verdict.allows()
    }
}

/// What a verdict is kept by: the token with the client it was asked for (SHA-256, so a
/// lookup's timing says nothing about a valid token's bytes).
fn verdict_key(token: &str, client: IpAddr) -> [u8; 32] {
    let client = match client {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    Sha256::new()
        .chain_update(token.as_bytes())
        .chain_update([0xff])
        .chain_update(client.octets())
        .finalize()
        .into()
}

/// One request's part in a hook call: joins the call under way for its key, or starts
/// one; the last to leave (done or given up) removes it.
struct Flight<'a> {
    flights: &'a Mutex<HashMap<[u8; 32], Arc<OnceCell<PlayVerdict>>>>,
    key: [u8; 32],
    /// `None` only while leaving.
    cell: Option<Arc<OnceCell<PlayVerdict>>>,
}

impl<'a> Flight<'a> {
    fn join(
        flights: &'a Mutex<HashMap<[u8; 32], Arc<OnceCell<PlayVerdict>>>>,
        key: [u8; 32],
    ) -> Self {
        let cell = Arc::clone(lock(flights).entry(key).or_default());
        Flight {
            flights,
            key,
            cell: Some(cell),
        }
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut flights = lock(self.flights);
        // Let go of this request's handle under the lock: every handle is taken under it
        // too, so a count of one left means nobody else waits on this call.
        if let Some(cell) = self.cell.take() {
            drop(cell);
        }
        if flights
            .get(&self.key)
            .is_some_and(|cell| Arc::strong_count(cell) == 1)
        {
            flights.remove(&self.key);
        }
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    use certs::tokens::PlaybackKey;
    use tokio::sync::Semaphore;

    use super::*;

    const NOW: u64 = 1_800_000_000;

    /// A fake `on_play` hook: counts its calls, answers the verdicts given in turn (the
    /// last one from then on), each only once `gate` gives a permit when there is one.
    struct FakeHook {
        calls: Arc<AtomicUsize>,
        gate: Option<Arc<Semaphore>>,
    }

    fn access_with(verdicts: Vec<PlayVerdict>, gate: Option<Arc<Semaphore>>) -> (Access, FakeHook) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let waits = gate.clone();
        let hook: PlayHook = Arc::new(move |_request| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            let verdict = verdicts
                .get(n)
                .or(verdicts.last())
                .copied()
                .unwrap_or(PlayVerdict::Refused);
            let waits = waits.clone();
            Box::pin(async move {
                if let Some(gate) = waits {
                    let _permit = gate.acquire().await;
                }
                verdict
            })
        });
        let access = Access::new(AccessConfig {
            on_play: Some(hook),
            ..AccessConfig::default()
        });
        (access, FakeHook { calls, gate })
    }

    /// A token valid for a year, and its claims.
    fn token() -> (String, Claims) {
        let claims = Claims::new(
            StreamName::new("town-hall").expect("valid"),
            NOW,
            NOW + 365 * 86_400,
        );
        let key = PlaybackKey::new(&[9; 32]).expect("key");
        (key.mint(&claims), claims)
    }

    fn client(n: u8) -> IpAddr {
        IpAddr::from([203, 0, 113, n])
    }

    /// Issue 45 item 9: requests that need the same verdict at once cause one hook call.
    #[tokio::test]
    async fn concurrent_first_uses_ask_the_hook_once() {
        let gate = Arc::new(Semaphore::new(0));
        let (access, hook) = access_with(vec![PlayVerdict::Allowed], Some(Arc::clone(&gate)));
        let (token, claims) = token();
        let ask = || access.hook_allows(&token, &claims, client(1), NOW);
        // `join!` polls each in turn: all four are waiting before the gate opens.
        let release = async {
            tokio::task::yield_now().await;
            gate.add_permits(100);
        };
        let (a, b, c, d, ()) = tokio::join!(ask(), ask(), ask(), ask(), release);
        assert!(a && b && c && d);
        assert_eq!(hook.calls.load(Ordering::SeqCst), 1);
        assert!(ask().await, "remembered");
        assert_eq!(hook.calls.load(Ordering::SeqCst), 1);
        assert!(lock(&access.flights).is_empty(), "no flight left behind");
        drop(hook.gate);
    }

    /// A request that gives up while it asks leaves the call to the next in line.
    #[tokio::test]
    async fn a_caller_giving_up_hands_the_call_on() {
        let gate = Arc::new(Semaphore::new(0));
        let (access, hook) = access_with(vec![PlayVerdict::Allowed], Some(Arc::clone(&gate)));
        let (token, claims) = token();
        let first = access.hook_allows(&token, &claims, client(1), NOW);
        // Polled once (it asks and waits), then dropped.
        let polled = tokio::time::timeout(Duration::ZERO, first).await;
        assert!(polled.is_err(), "the hook holds it");
        assert!(
            lock(&access.flights).is_empty(),
            "the flight went with its caller"
        );
        gate.add_permits(100);
        assert!(access.hook_allows(&token, &claims, client(1), NOW).await);
        assert_eq!(hook.calls.load(Ordering::SeqCst), 2);
    }

    /// Issue 45 item 9: a hook that could not be asked is asked again at the next
    /// request; its failure is never kept (a fail-closed refusal once kept until the
    /// token expired, up to a year).
    #[tokio::test]
    async fn a_failure_is_asked_again_not_kept() {
        let (access, hook) = access_with(
            vec![
                PlayVerdict::Failed { allowed: false },
                PlayVerdict::Failed { allowed: true },
                PlayVerdict::Allowed,
            ],
            None,
        );
        let (token, claims) = token();
        assert!(!access.hook_allows(&token, &claims, client(1), NOW).await);
        assert!(
            access.hook_allows(&token, &claims, client(1), NOW).await,
            "fail-open"
        );
        assert!(access.hook_allows(&token, &claims, client(1), NOW).await);
        assert!(
            access
                .hook_allows(&token, &claims, client(1), NOW + 1)
                .await
        );
        assert_eq!(
            hook.calls.load(Ordering::SeqCst),
            3,
            "the answer is kept, no failure"
        );
    }

    /// Issue 45 item 9: a verdict is kept for `VERDICT_FOR` at most however long the
    /// token runs (a refusal as much as an allowance), and only for the client it was
    /// asked about.
    #[tokio::test]
    async fn verdicts_are_kept_for_a_bounded_time_and_per_client() {
        let (access, hook) = access_with(vec![PlayVerdict::Refused, PlayVerdict::Allowed], None);
        let (token, claims) = token();
        let bound = VERDICT_FOR.as_secs();
        assert!(!access.hook_allows(&token, &claims, client(1), NOW).await);
        assert!(
            !access
                .hook_allows(&token, &claims, client(1), NOW + bound)
                .await
        );
        assert_eq!(hook.calls.load(Ordering::SeqCst), 1);
        assert!(
            access
                .hook_allows(&token, &claims, client(1), NOW + bound + 1)
                .await,
            "asked again"
        );
        assert_eq!(hook.calls.load(Ordering::SeqCst), 2);
        // Another client with the same token: its own question.
        assert!(access.hook_allows(&token, &claims, client(2), NOW).await);
        assert_eq!(hook.calls.load(Ordering::SeqCst), 3);
        // A token expiring sooner than the bound: kept until it expires only.
        let short = Claims {
            exp: NOW + 5,
            ..claims
        };
        let short_token = PlaybackKey::new(&[9; 32]).expect("key").mint(&short);
        assert!(
            access
                .hook_allows(&short_token, &short, client(1), NOW)
                .await
        );
        assert_eq!(hook.calls.load(Ordering::SeqCst), 4);
        assert!(
            access
                .hook_allows(&short_token, &short, client(1), NOW + 5 + CLOCK_SKEW_SECS)
                .await
        );
        assert_eq!(hook.calls.load(Ordering::SeqCst), 4);
        assert!(
            access
                .hook_allows(&short_token, &short, client(1), NOW + 6 + CLOCK_SKEW_SECS)
                .await
        );
        assert_eq!(hook.calls.load(Ordering::SeqCst), 5);
    }

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
