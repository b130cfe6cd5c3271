//! The layer in front of `/live/{stream}/` and `/vod/{stream}/` that asks [`Access`] about
//! private streams (what it checks, and why: `access.rs`). Apart from `access.rs` because
//! it reads the [`Node`] (is the stream private, its metrics) and the node holds the
//! [`Access`]: one file each way would be an import circle.
//!
//! A refusal must not tell anyone that a private stream exists. A request that shows no
//! knowledge of the stream (no token, a token that does not verify, another stream's
//! token) gets exactly what the same request gets when no such stream (or recording)
//! exists on this node: [`absent`] gives the handlers' answer for that case, status, body
//! and headers alike (the same layers add the rest). Only a verified token minted for the
//! stream itself, which its holder was given, learns more: 403 when it does not open this
//! request (another client network, a live-only token for a recording, the `on_play`
//! hook's refusal).

use domain::time::WallClock;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use certs::tokens::{query_token, AccessRefusal, QueryToken, Resource, TokenRefusal};
use domain::hls::PlaylistQuery;
use domain::paths::{PublicPath, StreamTree};
use http::{header, HeaderValue, StatusCode};

use crate::access::Access;
use crate::{BroadcastError, Node};

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
    let uri = request.uri().clone();
    let refuse = |why| refuse(node, why, &tree, &uri);
    let token = match query_token(request.uri().query()) {
        QueryToken::Present(token) if !token.is_empty() => token.to_owned(),
        QueryToken::Ambiguous => return refuse(Refused::Token(TokenRefusal::Malformed)),
        _ => return refuse(Refused::Missing),
    };
    let Some(verifier) = &access.config.verifier else {
        return refuse(Refused::Missing);
    };
    let now = WallClock.unix_secs();
    let claims = match verifier.check(&token, now) {
        Ok(claims) => claims,
        Err(why) => return refuse(Refused::Token(why)),
    };
    // Another stream's token shows nothing about this one: before anything else is
    // judged, so that nothing else (the client) can tell this stream exists.
    if claims.sub != stream {
        return refuse(Refused::Access(AccessRefusal::WrongStream));
    }
    let Some(client) = access.client(&request) else {
        return refuse(Refused::Access(AccessRefusal::WrongAddress));
    };
    if let Err(why) = claims.grants(&stream, client, resource) {
        return refuse(Refused::Access(why));
    }
    if !access.hook_allows(&token, &claims, client, now).await {
        return refuse(Refused::Hook);
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

/// The answer to a refused request for `uri` under `tree`, counted by reason.
fn refuse(node: &Node, why: Refused, tree: &StreamTree, uri: &http::Uri) -> Response {
    let (error, label) = match why {
        // Nothing shows the client knows of the stream: as if it did not exist.
        Refused::Missing => (absent(tree, uri), "missing"),
        Refused::Token(t) => (absent(tree, uri), t.label()),
        Refused::Access(AccessRefusal::WrongStream) => {
            (absent(tree, uri), AccessRefusal::WrongStream.label())
        }
        // A verified token of this very stream: its holder knows of it.
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

/// What the handlers answer a request for `uri` under `tree` when no such stream (live)
/// or recording exists on this node: the live tree answers an unknown stream (after a
/// media playlist's query is parsed: a bad one is a 400 first), the VOD tree an unknown
/// recording, and both a path they do not parse with a plain 404. Kept beside the
/// handlers' answers by `broadcast/tests/broadcast/private.rs`, which compares the two
/// for every kind of resource.
fn absent(tree: &StreamTree, uri: &http::Uri) -> BroadcastError {
    let Some(path) = PublicPath::parse(uri.path()) else {
        return BroadcastError::NotFound;
    };
    match (tree, path) {
        (StreamTree::Live(stream), PublicPath::Media(..)) => {
            match uri.query().map(PlaylistQuery::parse) {
                Some(Err(e)) => BroadcastError::BadQuery(e),
                _ => BroadcastError::UnknownStream {
                    stream: stream.clone(),
                },
            }
        }
        (
            StreamTree::Live(stream),
            PublicPath::Master(..)
            | PublicPath::DvrMaster(..)
            | PublicPath::DvrMedia(..)
            | PublicPath::Segment(..)
            | PublicPath::Fragment(..)
            | PublicPath::Init(..)
            | PublicPath::Part(..)
            | PublicPath::Signature(..)
            | PublicPath::PartKey(..),
        ) => BroadcastError::UnknownStream {
            stream: stream.clone(),
        },
        (
            StreamTree::Recording(stream, _),
            PublicPath::VodMaster(_, id)
            | PublicPath::VodMedia(_, id, _)
            | PublicPath::VodInit(_, id, _)
            | PublicPath::VodFragment(_, id, _, _)
            | PublicPath::VodSegment(_, id, _, _)
            | PublicPath::VodSignature(_, id, _, _)
            | PublicPath::VodThumbnail(_, id)
            | PublicPath::VodThumbnailSignature(_, id),
        ) => BroadcastError::UnknownRecording {
            stream: stream.clone(),
            id,
        },
        _ => BroadcastError::NotFound,
    }
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
