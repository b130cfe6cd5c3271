//! The auth server moq-relay asks (`--auth-url`, issue 48): one JSON POST per session
//! event (`connect`, `revalidate`, `end`), answered with a grant of broadcast patterns or
//! a refusal. The relay admits nothing without it.
//!
//! Two may answer ([`MoqAuthority`]): the node that publishes to the relay, or a relay
//! tier's gate (`sealcast moq-gate`), which holds the tier's key and nothing else. Who
//! gets what, relative to the relay path the node publishes to:
//!
//! - a session whose dial URL carries a fresh publish credential
//!   (`?publish=…`, [`super::credential`]): publish `*` and `_private/*`, the node's
//!   broadcasts, and nothing to read;
//! - another relay of the tier with the cluster credential (`?jwt=…`): publish and
//!   subscribe both, as a peer;
//! - a viewer with a grant a node minted (`?grant=…`): subscribe `*` and
//!   `_private/{stream}` until the grant ends;
//! - at a node only, a viewer with a playback token (`?token=…`, `certs::tokens`, as over LL-HLS) that
//!   verifies, whose `cidr` holds the address the relay reports and that the `on_play`
//!   hook allows: subscribe `*` (every public stream) and `_private/{sub}` (its own
//!   stream), until the token expires, asked again every [`crate::VERDICT_FOR`] so that a
//!   hook that stops allowing it stops it within that time;
//! - anyone else: subscribe `*`.
//!
//! At most one credential per dial. A stream name starts with a letter or digit and never holds `/`, so `*` matches every
//! public stream and no private one (`_private/NAME`). Anything else is refused: a token
//! or credential that does not check out (401, never "public instead": the viewer asked
//! for more), another dial path, an unknown event, a body that does not parse.
//!
//! The endpoint is not on the node's public listener: moq-auth's client presents nothing
//! over `http://` (loopback only) and a client certificate over `https://`, so the node
//! serves it on a Unix socket (`run_moq_auth`) that only the relay's user may open. Who
//! can reach it can ask about any token and state any `remote`; the socket's permissions
//! are the door.

use std::net::SocketAddr;
use std::sync::Arc;

use certs::tokens::{query_token, QueryToken, CLOCK_SKEW_SECS};
use serde::{Deserialize, Serialize};

use super::credential::{self, MoqKey};
use crate::Node;

/// Where a private stream's broadcast is, under the relay path: `_private/{stream}`. Not
/// a stream name (those start with a letter or digit), so no public pattern names it.
pub const PRIVATE_PREFIX: &str = "_private/";

/// What anonymous sessions may subscribe to: every public stream, one path segment.
const PUBLIC: &str = "*";

/// Largest request body read; a relay's requests are a few hundred bytes.
pub(crate) const MAX_BODY: usize = 16 * 1024;

/// The broadcast path of `stream` on the relay.
pub(crate) fn broadcast_name(stream: &domain::StreamName, private: bool) -> String {
    if private {
        format!("{PRIVATE_PREFIX}{stream}")
    } else {
        stream.to_string()
    }
}

/// What the auth endpoint is configured with.
#[derive(Debug, Clone)]
pub struct MoqAuthConfig {
    /// Checks the node's publish credentials (the key [`crate::MoqConfig::key`]
    /// mints them with).
    pub key: MoqKey,
    /// The relay path broadcasts are under (the path of the node's relay URL and of the
    /// viewers' endpoint, `/` most often): a session that dialed another is refused.
    pub root: String,
}

/// The fields of moq-auth's `Request` the decision reads; the rest is ignored.
#[derive(Debug, Deserialize)]
pub(crate) struct AuthRequest {
    /// `connect`, `revalidate` or `end`.
    event: String,
    /// The path exactly as dialed.
    path: String,
    /// The raw query string, without the `?`.
    #[serde(default)]
    query: Option<String>,
    /// The peer's socket address, as the relay saw it.
    #[serde(default)]
    remote: Option<SocketAddr>,
}

/// moq-auth's `Grant`, as much of it as we give.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Grant {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) publish: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) subscribe: Vec<String>,
    /// When the session closes, unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expires: Option<u64>,
    /// Seconds until the relay asks again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) revalidate: Option<u64>,
    /// The session is another relay of the tier: what it announces entered the cluster
    /// elsewhere.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) peer: bool,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Admitted (200 with the grant).
    Grant(Grant),
    /// Refused (401), counted by this reason (one of `metrics::ACCESS_REFUSALS`, or
    /// `publish` for a bad publish credential and `request` for a request we do not
    /// take, which are not counted).
    Refused(&'static str),
    /// An `end` noted (200).
    Noted,
}

/// Who answers the relay: a node (it checks playback tokens itself) or a relay tier's
/// gate, which holds the tier's key and nothing else (no playback key, no `on_play` hook:
/// a private stream's viewer brings a grant a node minted after those checks).
#[derive(Debug, Clone)]
pub enum MoqAuthority {
    /// A node, for the relay it publishes to ([`run_moq_auth`] beside `sealcast
    /// broadcast` or `up`).
    Node(Arc<Node>),
    /// A relay tier's gate (`sealcast moq-gate`): publish credentials, grants and the
    /// tier's cluster credential; anonymous viewers read public streams.
    Gate,
}

/// Decides `request` at `now` (unix seconds).
pub(crate) async fn decide(
    authority: &MoqAuthority,
    config: &MoqAuthConfig,
    request: &AuthRequest,
    now: u64,
) -> Verdict {
    match decide_keyed(config, request, now) {
        Keyed::Decided(verdict) => verdict,
        Keyed::Token(token) => match authority {
            MoqAuthority::Node(node) => decide_token(node, token, request, now).await,
            // The gate checks no playback token: a viewer asks a node for a grant.
            MoqAuthority::Gate => Verdict::Refused("missing"),
        },
    }
}

/// What the key alone decides, or the playback token left to check.
enum Keyed<'a> {
    Decided(Verdict),
    Token(&'a str),
}

/// The decision on everything but a playback token: the event and path, then at most
/// one credential (a publish credential, a cluster credential, a viewer grant or a
/// token), none being an anonymous viewer.
fn decide_keyed<'a>(config: &MoqAuthConfig, request: &'a AuthRequest, now: u64) -> Keyed<'a> {
    use Keyed::Decided;
    match request.event.as_str() {
        "end" => return Decided(Verdict::Noted),
        "connect" | "revalidate" => {}
        _ => return Decided(Verdict::Refused("request")),
    }
    if request.path.trim_matches('/') != config.root.trim_matches('/') {
        return Decided(Verdict::Refused("request"));
    }
    let query = request.query.as_deref();
    let publish = query_parameter(query, credential::PARAMETER);
    let cluster = query_parameter(query, credential::CLUSTER_PARAMETER);
    let grant = query_parameter(query, credential::GRANT_PARAMETER);
    let token = query_token(query);
    let present = [&publish, &cluster, &grant, &token]
        .iter()
        .filter(|p| !matches!(p, QueryToken::Absent))
        .count();
    if present > 1 {
        return Decided(Verdict::Refused("request"));
    }
    let ours = vec![PUBLIC.to_owned(), format!("{PRIVATE_PREFIX}*")];
    match (publish, cluster, grant, token) {
        (QueryToken::Present(c), ..) if config.key.verify(c, now) => {
            // The node's publisher: its broadcasts only. The session lasts as long as it
            // stays up; a redial mints a new credential.
            Decided(Verdict::Grant(Grant {
                publish: ours,
                ..Grant::default()
            }))
        }
        (_, QueryToken::Present(c), ..) if config.key.verify_cluster(c) => {
            // Another relay of the tier: it carries the broadcasts both ways.
            Decided(Verdict::Grant(Grant {
                publish: ours.clone(),
                subscribe: ours,
                peer: true,
                ..Grant::default()
            }))
        }
        (_, _, QueryToken::Present(g), _) => match config.key.verify_grant(g, now) {
            // A node checked the viewer's token, address and hook when it minted this.
            Some((stream, expires)) => Decided(Verdict::Grant(Grant {
                subscribe: vec![PUBLIC.to_owned(), broadcast_name(&stream, true)],
                expires: Some(expires),
                ..Grant::default()
            })),
            None => Decided(Verdict::Refused("bad_signature")),
        },
        (QueryToken::Absent, QueryToken::Absent, QueryToken::Absent, QueryToken::Absent) => {
            Decided(Verdict::Grant(Grant {
                subscribe: vec![PUBLIC.to_owned()],
                ..Grant::default()
            }))
        }
        (QueryToken::Present(_) | QueryToken::Ambiguous, ..)
        | (_, QueryToken::Present(_) | QueryToken::Ambiguous, ..) => {
            Decided(Verdict::Refused("publish"))
        }
        (_, _, QueryToken::Ambiguous, _) => Decided(Verdict::Refused("malformed")),
        (.., QueryToken::Present(t)) if !t.is_empty() => Keyed::Token(t),
        (.., QueryToken::Present(_)) => Decided(Verdict::Refused("missing")),
        (.., QueryToken::Ambiguous) => Decided(Verdict::Refused("malformed")),
    }
}

/// A viewer's playback token, checked by `node` as LL-HLS checks it.
async fn decide_token(node: &Node, token: &str, request: &AuthRequest, now: u64) -> Verdict {
    let access = node.access();
    let Some(verifier) = &access.config.verifier else {
        return Verdict::Refused("missing");
    };
    let claims = match verifier.check(token, now) {
        Ok(claims) => claims,
        Err(why) => return Verdict::Refused(why.label()),
    };
    // The relay is the only client the socket lets in, so its `remote` is believed; a
    // session without one (a transport with no address) cannot be judged by address. A
    // relay listening on `[::]` reports IPv4 viewers as `::ffff:a.b.c.d`: the IPv4 address
    // is the one a `cidr` names and the hook is told.
    let Some(client) = request.remote.map(|r| r.ip().to_canonical()) else {
        return Verdict::Refused("wrong_address");
    };
    if let Err(why) = claims.grants(&claims.sub, client, certs::tokens::Resource::Live) {
        return Verdict::Refused(why.label());
    }
    if !access.hook_allows(token, &claims, client, now).await {
        return Verdict::Refused("refused_by_hook");
    }
    // Accepted as LL-HLS accepts it: until `exp` and the clock skew both allow.
    let expires = claims.exp.saturating_add(CLOCK_SKEW_SECS);
    if expires <= now {
        return Verdict::Refused("expired");
    }
    let revalidate = crate::VERDICT_FOR.as_secs().min(expires - now).max(1);
    Verdict::Grant(Grant {
        subscribe: vec![PUBLIC.to_owned(), broadcast_name(&claims.sub, true)],
        expires: Some(expires),
        revalidate: Some(revalidate),
        ..Grant::default()
    })
}

/// The value of `name` in `query`, the way `certs::tokens::query_token` reads `token`:
/// exactly one, or ambiguous.
fn query_parameter<'a>(query: Option<&'a str>, name: &str) -> QueryToken<'a> {
    let mut found = QueryToken::Absent;
    for pair in query.unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == name {
            found = match found {
                QueryToken::Absent => QueryToken::Present(value),
                _ => return QueryToken::Ambiguous,
            };
        }
    }
    found
}

/// Serves the auth endpoint on `listener` (a Unix socket only the relay may open) until
/// `stop`: `POST /` with moq-auth's JSON, a bounded body, 200 with a grant or 401.
pub async fn run_moq_auth(
    authority: MoqAuthority,
    config: MoqAuthConfig,
    listener: tokio::net::UnixListener,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), crate::BroadcastError> {
    axum::serve(listener, router(authority, config))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(|e| crate::BroadcastError::Moq(format!("the MoQ auth endpoint: {e}")))
}

/// The endpoint's routes: `POST /` only, bodies up to [`MAX_BODY`] (413 past it).
pub(crate) fn router(authority: MoqAuthority, config: MoqAuthConfig) -> axum::Router {
    axum::Router::new()
        .route("/", axum::routing::post(answer))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new((authority, config)))
}

async fn answer(
    axum::extract::State(state): axum::extract::State<Arc<(MoqAuthority, MoqAuthConfig)>>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (authority, config) = &*state;
    let Ok(request) = serde_json::from_slice::<AuthRequest>(&body) else {
        tracing::debug!("a MoQ auth request that does not parse was refused");
        return http::StatusCode::BAD_REQUEST.into_response();
    };
    let now = domain::time::WallClock.unix_secs();
    match decide(authority, config, &request, now).await {
        Verdict::Grant(grant) => axum::Json(grant).into_response(),
        Verdict::Noted => http::StatusCode::OK.into_response(),
        Verdict::Refused(reason) => {
            if let (MoqAuthority::Node(node), false) =
                (authority, matches!(reason, "publish" | "request"))
            {
                node.metrics.access_refused(reason);
            }
            // The reason only: never the query (it holds the token).
            tracing::debug!(reason, "a MoQ session was refused");
            http::StatusCode::UNAUTHORIZED.into_response()
        }
    }
}

#[cfg(test)]
mod tests;
