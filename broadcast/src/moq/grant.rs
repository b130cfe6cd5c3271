//! `/live/{stream}/moq-grant`: what a viewer of a private stream trades its playback token
//! for before it dials a relay (`?grant=…`, [`super::credential`]). The access layer in
//! front of the live tree has already checked the token as it checks every private
//! request (the stream, the client address the node sees, the `on_play` hook), so a
//! grant is only minted for a request that could have fetched the stream's parts; it
//! lasts as long as the token (and the clock skew LL-HLS allows).

use axum::response::{IntoResponse, Response};
use certs::tokens::{query_token, QueryToken, CLOCK_SKEW_SECS};
use domain::time::WallClock;
use domain::StreamName;
use http::header;

use crate::{BroadcastError, Node};

/// What the endpoint answers: the grant and when it ends (unix seconds).
#[derive(Debug, serde::Serialize)]
struct Answer {
    grant: String,
    expires: u64,
}

/// The answer for `stream`: a grant when the node mints them and the stream is private
/// here, else the live tree's answer for a path it does not serve.
pub(crate) fn grant(
    node: &Node,
    stream: &StreamName,
    query: Option<&str>,
) -> Result<Response, BroadcastError> {
    let (Some(key), true) = (node.moq_grants(), node.is_private(stream)) else {
        return Err(BroadcastError::NotFound);
    };
    // The access layer let this request through only with a verified token for this
    // stream; read again for its expiry (a cache hit).
    let token = match query_token(query) {
        QueryToken::Present(token) => token,
        _ => return Err(BroadcastError::NotFound),
    };
    let verifier = node.access().config.verifier.clone();
    let now = WallClock.unix_secs();
    let claims = verifier
        .and_then(|v| v.check(token, now).ok())
        .filter(|claims| &claims.sub == stream)
        .ok_or(BroadcastError::NotFound)?;
    let expires = claims.exp.saturating_add(CLOCK_SKEW_SECS);
    let answer = Answer {
        grant: key.grant(stream, expires),
        expires,
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(answer)).into_response())
}
