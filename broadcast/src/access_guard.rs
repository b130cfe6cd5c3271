//! The layer in front of `/live/{stream}/` and `/vod/{stream}/` that asks [`Access`] about
//! private streams (what it checks, and why: `access.rs`). Apart from `access.rs` because
//! it reads the [`Node`] (is the stream private, its metrics) and the node holds the
//! [`Access`]: one file each way would be an import circle.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use certs::tokens::{query_token, AccessRefusal, QueryToken, Resource, TokenRefusal};
use domain::paths::StreamTree;
use http::{header, HeaderValue, StatusCode};

use crate::access::Access;
use crate::{BroadcastError, Node};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The layer: public streams pass, private ones need a token for them.
pub(crate) async fn guard(State(node): State<Arc<Node>>, request: Request, next: Next) -> Response {
    guarded(&node, request, |request| next.run(request)).await
}

/// What [`guard`] does around `next` (the live tree's direct path calls it as is).
pub(crate) async fn guarded<F, Fut>(node: &Node, request: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let Some(tree) = StreamTree::of(request.uri().path()) else {
        return next(request).await;
    };
    let stream = tree.stream().clone();
    let (private, resource) = match &tree {
        StreamTree::Live(_) => (node.is_private(&stream), Resource::Live),
        StreamTree::Recording(_, id) => (
            node.is_private(&stream) || node.recording_is_private(&stream, *id).await,
            Resource::Recording,
        ),
    };
    if !private {
        return next(request).await;
    }
    let access = node.access();
    let token = match query_token(request.uri().query()) {
        QueryToken::Present(token) if !token.is_empty() => token.to_owned(),
        QueryToken::Ambiguous => return refuse(node, Refused::Token(TokenRefusal::Malformed)),
        _ => return refuse(node, Refused::Missing),
    };
    let Some(verifier) = &access.config.verifier else {
        return refuse(node, Refused::Missing);
    };
    let now = unix_now();
    let claims = match verifier.check(&token, now) {
        Ok(claims) => claims,
        Err(why) => return refuse(node, Refused::Token(why)),
    };
    let Some(client) = access.client(&request) else {
        return refuse(node, Refused::Access(AccessRefusal::WrongAddress));
    };
    if let Err(why) = claims.grants(&stream, client, resource) {
        return refuse(node, Refused::Access(why));
    }
    if !access.hook_allows(&token, &claims, client, now).await {
        return refuse(node, Refused::Hook);
    }
    let response = next(request).await;
    private_response(access, response, &token).await
}

/// Why a request for a private stream was refused.
#[derive(Debug, Clone, Copy)]
enum Refused {
    Missing,
    Token(TokenRefusal),
    Access(AccessRefusal),
    Hook,
}

fn refuse(node: &Node, why: Refused) -> Response {
    let (error, label) = match why {
        Refused::Missing => (BroadcastError::TokenRequired, "missing"),
        Refused::Token(t) => (
            BroadcastError::TokenRefused { reason: t.label() },
            t.label(),
        ),
        Refused::Access(a) => (
            BroadcastError::AccessRefused { reason: a.label() },
            a.label(),
        ),
        Refused::Hook => (
            BroadcastError::AccessRefused {
                reason: "refused_by_hook",
            },
            "refused_by_hook",
        ),
    };
    node.metrics.access_refused(label);
    error.into_response()
}

/// A private stream's answer: never kept by a shared cache, and a playlist's URIs carry
/// the viewer's token on.
async fn private_response(access: &Access, response: Response, token: &str) -> Response {
    let (mut parts, body) = response.into_parts();
    let cache_control = parts
        .headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(private_cache_control);
    if let Some(value) = cache_control.and_then(|v| HeaderValue::try_from(v).ok()) {
        parts.headers.insert(header::CACHE_CONTROL, value);
    }
    let playlist = parts
        .headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t == crate::respond::PLAYLIST_TYPE);
    let etag = parts.headers.get(header::ETAG).cloned();
    let (true, StatusCode::OK, Some(etag)) = (playlist, parts.status, etag) else {
        return Response::from_parts(parts, body);
    };
    // A playlist is a whole document in memory: collecting it takes no wait.
    let Ok(text) = axum::body::to_bytes(body, usize::MAX).await else {
        return BroadcastError::NotFound.into_response();
    };
    let marks = access.marks(&etag, &text);
    let carried = Bytes::from(marks.insert(&text, &format!("token={token}")));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(carried))
}

/// `public, max-age=N` → `private, max-age=N`; anything else gets `private` in front.
fn private_cache_control(value: &str) -> String {
    match value.strip_prefix("public") {
        Some(rest) => format!("private{rest}"),
        None if value.contains("private") || value.contains("no-store") => value.to_owned(),
        None => format!("private, {value}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_answers_are_never_shared() {
        assert_eq!(
            private_cache_control("public, max-age=1"),
            "private, max-age=1"
        );
        assert_eq!(
            private_cache_control("public, max-age=31536000, immutable"),
            "private, max-age=31536000, immutable"
        );
        assert_eq!(private_cache_control("no-cache"), "private, no-cache");
        assert_eq!(private_cache_control("no-store"), "no-store");
    }
}
