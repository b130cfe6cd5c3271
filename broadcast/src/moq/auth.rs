//! The auth server moq-relay asks (`--auth-url`, issue 48): one JSON POST per session
//! event (`connect`, `revalidate`, `end`), answered with a grant of broadcast patterns or
//! a refusal. The relay admits nothing without it.
//!
//! Who gets what, relative to the relay path the node publishes to:
//!
//! - a session whose dial URL carries a fresh publish credential
//!   (`?publish=…`, [`super::credential`]): publish `*` and `_private/*`, the node's
//!   broadcasts, and nothing to read;
//! - a viewer with a playback token (`?token=…`, `certs::tokens`, as over LL-HLS) that
//!   verifies, whose `cidr` holds the address the relay reports and that the `on_play`
//!   hook allows: subscribe `*` (every public stream) and `_private/{sub}` (its own
//!   stream), until the token expires, asked again every [`crate::VERDICT_FOR`] so that a
//!   hook that stops allowing it stops it within that time;
//! - anyone else: subscribe `*`.
//!
//! A stream name starts with a letter or digit and never holds `/`, so `*` matches every
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

use super::credential::{self, MoqPublishKey};
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
    /// Checks the node's publish credentials (the key [`crate::MoqConfig::publish_key`]
    /// mints them with).
    pub publish_key: MoqPublishKey,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// Decides `request` at `now` (unix seconds).
pub(crate) async fn decide(
    node: &Node,
    config: &MoqAuthConfig,
    request: &AuthRequest,
    now: u64,
) -> Verdict {
    match request.event.as_str() {
        "end" => return Verdict::Noted,
        "connect" | "revalidate" => {}
        _ => return Verdict::Refused("request"),
    }
    if request.path.trim_matches('/') != config.root.trim_matches('/') {
        return Verdict::Refused("request");
    }
    let query = request.query.as_deref();
    match query_parameter(query, credential::PARAMETER) {
        QueryToken::Absent => {}
        QueryToken::Present(c) if config.publish_key.verify(c, now) => {
            // The node's publisher: its broadcasts only. The session lasts as long as it
            // stays up; a redial mints a new credential.
            return Verdict::Grant(Grant {
                publish: vec![PUBLIC.to_owned(), format!("{PRIVATE_PREFIX}*")],
                subscribe: Vec::new(),
                expires: None,
                revalidate: None,
            });
        }
        _ => return Verdict::Refused("publish"),
    }
    let token = match query_token(query) {
        QueryToken::Absent => {
            return Verdict::Grant(Grant {
                publish: Vec::new(),
                subscribe: vec![PUBLIC.to_owned()],
                expires: None,
                revalidate: None,
            })
        }
        QueryToken::Present(t) if !t.is_empty() => t,
        QueryToken::Present(_) => return Verdict::Refused("missing"),
        QueryToken::Ambiguous => return Verdict::Refused("malformed"),
    };
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
        publish: Vec::new(),
        subscribe: vec![PUBLIC.to_owned(), broadcast_name(&claims.sub, true)],
        expires: Some(expires),
        revalidate: Some(revalidate),
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
    node: Arc<Node>,
    config: MoqAuthConfig,
    listener: tokio::net::UnixListener,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), crate::BroadcastError> {
    axum::serve(listener, router(node, config))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .map_err(|e| crate::BroadcastError::Moq(format!("the MoQ auth endpoint: {e}")))
}

/// The endpoint's routes: `POST /` only, bodies up to [`MAX_BODY`] (413 past it).
pub(crate) fn router(node: Arc<Node>, config: MoqAuthConfig) -> axum::Router {
    axum::Router::new()
        .route("/", axum::routing::post(answer))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new((node, config)))
}

async fn answer(
    axum::extract::State(state): axum::extract::State<Arc<(Arc<Node>, MoqAuthConfig)>>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (node, config) = &*state;
    let Ok(request) = serde_json::from_slice::<AuthRequest>(&body) else {
        tracing::debug!("a MoQ auth request that does not parse was refused");
        return http::StatusCode::BAD_REQUEST.into_response();
    };
    let now = domain::time::WallClock.unix_secs();
    match decide(node, config, &request, now).await {
        Verdict::Grant(grant) => axum::Json(grant).into_response(),
        Verdict::Noted => http::StatusCode::OK.into_response(),
        Verdict::Refused(reason) => {
            if !matches!(reason, "publish" | "request") {
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
